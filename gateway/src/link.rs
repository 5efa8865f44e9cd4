//! A link from this gateway to one node: one long-lived `Data.Execute` stream that carries
//! the commands of *all* client connections bound for that node.
//!
//! ```text
//!  connections ──Pending──▶ [bounded queue] ──writer: drain, one CommandBatch──▶ datanode
//!       ▲                                                                          │
//!       └──── oneshot per command ◀── reader: ReplyBatch, matched by id ◀──────────┘
//! ```
//! Batching is natural: the writer sends whatever is queued when it gets to run (and waits
//! one pass of the runtime for more while the node is busy with earlier batches), so under
//! load batches grow and per-command cost falls, with no timer adding latency.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ferrocache_common::credentials::Channel;
use ferrocache_common::tracking_feed::FeedMark;
use ferrocache_common::Reply;
use ferrocache_proto::internal::v1 as pb;
use parking_lot::Mutex;
use pb::data_client::DataClient;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use crate::batch_codec::BatchCodec;
use crate::node_queue::NodeQueue;

const QUEUE: usize = 16 * 1024;
const MAX_BATCH: usize = 1024;
const BATCHES_IN_FLIGHT: usize = 64;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Largest gRPC message (protobuf's own limit is 2 GiB).
const MAX_MESSAGE: usize = (1 << 31) - 1;
/// A batch stops growing past this many argument bytes: many clients' big commands must not
/// add up to a message over the limit (one command alone is bounded by the query buffer).
const BATCH_BYTES: usize = 32 << 20;
/// How often abandoned commands are looked for (and cancelled on the node).
const ABANDONED_SWEEP: Duration = Duration::from_millis(200);
/// Longest a reply batch waits for the tracking feed's messages published before it
/// (tracking.rs `FeedProgress`); they come on another stream, normally at once.
const FEED_WAIT: Duration = Duration::from_millis(20);
/// How long a link that left the routes stays open for replies in flight.
const RETIRE_GRACE: Duration = Duration::from_secs(3);

/// How the error for commands in flight on a broken stream begins (their fate is unknown).
pub const CONNECTION_LOST: &str = "ERR connection to node ";

pub struct Pending {
    pub request: crate::request::Request,
    pub slot: u32,
    /// The command has keys (all in `slot`): the node checks it owns the slot.
    pub keyed: bool,
    pub config_epoch: u64,
    pub readonly: bool,
    pub reply: oneshot::Sender<Reply>,
}

pub struct NodeLink {
    pub node_id: String,
    pub address: String,
    queue: Arc<NodeQueue<Pending>>,
    cancel: CancellationToken,
    heard: Arc<Heard>,
}

/// What the node's reply batches said of it (noted before their replies reach clients).
#[derive(Default)]
struct Heard {
    /// The node refused writes that grow memory as of its last reply batch.
    out_of_memory: AtomicBool,
    /// Its CLIENT TRACKING feed as of the newest reply batch.
    feed: Mutex<FeedMark>,
}

impl Heard {
    fn note(&self, batch: &pb::ReplyBatch) {
        self.out_of_memory.store(batch.out_of_memory, Ordering::Relaxed);
        if batch.feed_epoch != 0 {
            let mut feed = self.feed.lock();
            if feed.epoch == batch.feed_epoch {
                feed.seq = feed.seq.max(batch.feed_seq);
            } else {
                *feed = FeedMark { epoch: batch.feed_epoch, seq: batch.feed_seq };
            }
        }
    }
}

type Inflight = Arc<Mutex<HashMap<u64, oneshot::Sender<Reply>, BuildHasherDefault<IdHasher>>>>;

/// Hashes the link's own command ids (a counter, never a client's input): one multiply
/// spreads consecutive ids over the table; SipHash, which guards maps keyed by what clients
/// send, cost 1–2 % of the gateway here under pipelined GETs.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, id: u64) {
        self.0 = id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

impl NodeLink {
    pub fn spawn(node_id: String, address: String, cancel: CancellationToken) -> Arc<NodeLink> {
        let queue = Arc::new(NodeQueue::new(QUEUE));
        let heard = Arc::new(Heard::default());
        let link = Arc::new(NodeLink {
            node_id: node_id.clone(),
            address: address.clone(),
            queue: queue.clone(),
            cancel: cancel.clone(),
            heard: heard.clone(),
        });
        tokio::spawn(run(node_id, address, queue, cancel, heard));
        link
    }

    /// Whether the node refused writes that grow memory (over maxmemory under noeviction)
    /// when it sent its last replies.
    pub fn out_of_memory(&self) -> bool {
        self.heard.out_of_memory.load(Ordering::Relaxed)
    }

    /// Where the node's tracking feed stood when its newest replies here were sent: a read
    /// sent now runs after every write that feed had announced by then.
    pub fn feed_mark(&self) -> FeedMark {
        *self.heard.feed.lock()
    }

    /// Queues a command; waits only while the queue is full (backpressure).
    pub async fn send(&self, pending: Pending) {
        if let Err(p) = self.queue.push(pending).await {
            let _ = p.reply.send(Reply::error(format!("TRYAGAIN link to node {} is closed", self.node_id)));
        }
    }

    pub fn close(&self) {
        self.cancel.cancel();
    }

    /// Closes the link once the replies already on their way had time to arrive: a node
    /// that left the routes (its node group removed after resharding, or moved) still
    /// answers what it was sent, rather than every in-flight command getting "connection
    /// lost" with an unknown outcome. Nothing new is sent to it (it is out of the routes).
    pub fn retire(&self) {
        let cancel = self.cancel.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = tokio::time::sleep(RETIRE_GRACE) => cancel.cancel(),
            }
        });
    }
}

/// The routes let go of the link: what is queued still goes out, then the link ends.
impl Drop for NodeLink {
    fn drop(&mut self) {
        self.queue.close();
    }
}

async fn run(
    node_id: String,
    address: String,
    queue: Arc<NodeQueue<Pending>>,
    cancel: CancellationToken,
    heard: Arc<Heard>,
) {
    let mut next_id = 1u64;
    while !cancel.is_cancelled() {
        // Connect only when there is something to send.
        tokio::select! {
            _ = cancel.cancelled() => break,
            open = queue.ready() => if !open { break },
        }
        let channel = match connect_channel(&address).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(node = %node_id, %address, "cannot reach datanode: {e}");
                let msg = format!("TRYAGAIN node {node_id} at {address} is unreachable");
                for p in queue.take_all() {
                    let _ = p.reply.send(Reply::error(msg.clone()));
                }
                continue;
            }
        };
        let inflight: Inflight = Arc::new(Mutex::new(HashMap::default()));
        let reason = session(&node_id, channel, &queue, &inflight, &mut next_id, &cancel, &heard).await;
        tracing::info!(node = %node_id, %address, "data stream ended: {reason}");
        let msg = format!("{CONNECTION_LOST}{node_id} lost; the command may or may not have run");
        for (_, tx) in inflight.lock().drain() {
            let _ = tx.send(Reply::error(msg.clone()));
        }
    }
    // Closed: answer whatever is still queued.
    queue.close();
    for p in queue.take_all() {
        let _ = p.reply.send(Reply::error(format!("TRYAGAIN link to node {node_id} is closed")));
    }
}

/// A client of the node's Data service (pub/sub's Listen).
pub(crate) async fn connect(address: &str) -> Result<DataClient<Channel>, String> {
    let channel = connect_channel(address).await?;
    Ok(DataClient::new(channel).max_decoding_message_size(MAX_MESSAGE).max_encoding_message_size(MAX_MESSAGE))
}

async fn connect_channel(address: &str) -> Result<Channel, String> {
    // A hung datanode (SIGSTOP, a partition) accepts TCP connections in its kernel but never
    // answers the HTTP/2 handshake: the whole connect is bounded, not just the TCP part.
    match tokio::time::timeout(CONNECT_TIMEOUT, open_channel(address)).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Err(format!("no answer within {CONNECT_TIMEOUT:?}")),
    }
}

async fn open_channel(address: &str) -> Result<Channel, tonic::transport::Error> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}"))?
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        // A datanode that hangs (SIGSTOP, a dead host without RST) is detected in ~3 s and
        // its in-flight commands fail instead of waiting forever.
        .http2_keep_alive_interval(Duration::from_secs(1))
        .keep_alive_timeout(Duration::from_secs(2))
        .keep_alive_while_idle(true)
        .initial_stream_window_size(Some(4 << 20))
        .initial_connection_window_size(Some(8 << 20))
        .connect()
        .await?;
    Ok(ferrocache_common::credentials::channel(channel))
}

/// Opens `Data.Execute` as the generated client would, with the batch codec (batch_codec.rs).
async fn execute(
    channel: Channel,
    batches: ReceiverStream<pb::CommandBatch>,
) -> Result<tonic::Response<tonic::codec::Streaming<pb::ReplyBatch>>, tonic::Status> {
    let mut grpc =
        tonic::client::Grpc::new(channel).max_decoding_message_size(MAX_MESSAGE).max_encoding_message_size(MAX_MESSAGE);
    grpc.ready().await.map_err(|e| {
        let e: tonic::codegen::StdError = e.into();
        tonic::Status::unknown(format!("service was not ready: {e}"))
    })?;
    let mut request = tonic::IntoStreamingRequest::into_streaming_request(batches);
    request.extensions_mut().insert(tonic::GrpcMethod::new("ferrocache.internal.v1.Data", "Execute"));
    grpc.streaming(request, crate::batch_codec::execute_path(), BatchCodec).await
}

#[allow(clippy::too_many_arguments)]
async fn session(
    node_id: &str,
    channel: Channel,
    queue: &NodeQueue<Pending>,
    inflight: &Inflight,
    next_id: &mut u64,
    cancel: &CancellationToken,
    heard: &Arc<Heard>,
) -> String {
    let (batch_tx, batch_rx) = mpsc::channel::<pb::CommandBatch>(BATCHES_IN_FLIGHT);
    // The first batch is queued before the call so the stream opens with data.
    let batch = collect(node_id, queue, inflight, next_id);
    let _ = batch_tx.try_send(batch);
    let opened = tokio::time::timeout(CONNECT_TIMEOUT, execute(channel, ReceiverStream::new(batch_rx))).await;
    let mut replies = match opened {
        Ok(Ok(r)) => r.into_inner(),
        Ok(Err(status)) => return format!("open failed: {}", status.message()),
        Err(_) => return format!("open failed: no answer within {CONNECT_TIMEOUT:?}"),
    };
    let reader_inflight = inflight.clone();
    let reader_heard = heard.clone();
    let reader = async move {
        loop {
            match replies.message().await {
                Ok(Some(batch)) => {
                    // Before the replies: a client answered now sees the node's state.
                    reader_heard.note(&batch);
                    // And hears first of the changes the node announced before them.
                    crate::tracking::FEED_PROGRESS.wait_for(batch.feed_epoch, batch.feed_seq, FEED_WAIT).await;
                    let mut map = reader_inflight.lock();
                    for r in batch.replies {
                        if let Some(tx) = map.remove(&r.id) {
                            let _ = tx.send(r.value.map(Reply::from).unwrap_or(Reply::NullBulk));
                        }
                    }
                }
                Ok(None) => return "closed by the datanode".to_string(),
                Err(status) => return format!("stream error: {}", status.message()),
            }
        }
    };
    tokio::pin!(reader);
    let mut sweep = tokio::time::interval(ABANDONED_SWEEP);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return "link closed".into(),
            reason = &mut reader => return reason,
            _ = abandoned(&mut sweep) => {
                // Commands whose clients went away (a blocked BLPOP's connection closed): the
                // node stops waiting for them, so they take nothing nobody will read.
                let gone: Vec<u64> = {
                    let mut map = inflight.lock();
                    let ids: Vec<u64> = map.iter().filter(|(_, tx)| tx.is_closed()).map(|(id, _)| *id).collect();
                    for id in &ids {
                        map.remove(id);
                    }
                    ids
                };
                if !gone.is_empty() {
                    let batch = pb::CommandBatch { node_id: node_id.to_string(), commands: vec![], cancel: gone };
                    if batch_tx.send(batch).await.is_err() {
                        return "request stream closed".into();
                    }
                }
            }
            open = queue.ready() => {
                if !open {
                    return "queue closed".into();
                }
                // While the node still works on what it was sent, let every client connection
                // that is ready now queue its commands first (one more pass of the runtime):
                // the batch grows at no cost, as the node could not start on it yet. With
                // nothing in flight the node is idle, waiting for this batch: it goes at once,
                // before the runtime next looks for ready sockets (SET -P16 +21 % in a median
                // of 11 runs; bench/RESULTS.md, session 29).
                if !inflight.lock().is_empty() {
                    tokio::task::yield_now().await;
                }
                let batch = collect(node_id, queue, inflight, next_id);
                if batch_tx.send(batch).await.is_err() {
                    return "request stream closed".into();
                }
            }
        }
    }
}

/// Told when a client that sent a blocking command goes (see [`sweep_abandoned`]).
static ABANDONED: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// A client that sent a blocking command went away: every link looks for commands whose
/// clients are gone now, so a datanode stops waiting for them (and no longer counts them
/// as blocked clients) at once rather than at the next periodic sweep.
pub(crate) fn sweep_abandoned() {
    ABANDONED.notify_waiters();
}

/// When to look for abandoned commands: told so, or every ABANDONED_SWEEP (which also
/// catches a notice given while the link was busy elsewhere).
async fn abandoned(sweep: &mut tokio::time::Interval) {
    tokio::select! {
        _ = ABANDONED.notified() => {}
        _ = sweep.tick() => {}
    }
}

/// Takes what is queued (up to a batch) into one CommandBatch and registers the replies.
fn collect(node_id: &str, queue: &NodeQueue<Pending>, inflight: &Inflight, next_id: &mut u64) -> pb::CommandBatch {
    let mut taken = Vec::new();
    let mut bytes = 0usize;
    queue.take_while(&mut taken, MAX_BATCH, |p| {
        let room = bytes < BATCH_BYTES;
        bytes += crate::request::size(&p.request);
        room
    });
    let mut map = inflight.lock();
    let commands = taken
        .into_iter()
        .map(|p| {
            let id = *next_id;
            *next_id += 1;
            map.insert(id, p.reply);
            pb::Command {
                id,
                slot: p.slot,
                config_epoch: p.config_epoch,
                request: Some(p.request),
                readonly: p.readonly,
                keyed: p.keyed,
            }
        })
        .collect();
    pb::CommandBatch { node_id: node_id.to_string(), commands, cancel: vec![] }
}
