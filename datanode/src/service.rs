//! The data path's server side: `Data.Execute`, a stream of command batches from a gateway.
//!
//! Each batch runs on its node in one critical section; under `appendfsync always` the batch
//! is fsynced (one group commit) before its replies go out. WAIT is answered later, by id,
//! so it never holds up the commands behind it on the same stream.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ferrocache_common::Reply;
use ferrocache_proto::internal::v1 as pb;
use pb::data_server::Data;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::host::Host;
use crate::node::{self, AppendFsync, Applied, Node};
use crate::script::busy::Gate;
use crate::transaction::Transaction;

mod scripts;

pub struct DataService {
    host: Arc<Host>,
}

impl DataService {
    pub fn new(host: Arc<Host>) -> DataService {
        DataService { host }
    }
}

type Out = mpsc::Sender<Result<pb::ReplyBatch, Status>>;

/// Blocked commands waiting on one stream, by command id, each counted in its node's
/// blocked_clients while it is here (a cancelled one stops counting as it is cancelled, not
/// once its task gets to run).
type Blocked =
    Arc<parking_lot::Mutex<std::collections::HashMap<u64, (tokio_util::sync::CancellationToken, BlockedClient)>>>;

#[tonic::async_trait]
impl Data for DataService {
    type ExecuteStream = ReceiverStream<Result<pb::ReplyBatch, Status>>;
    type ListenStream = ReceiverStream<Result<pb::ListenEvent, Status>>;

    async fn listen(
        &self,
        request: Request<Streaming<pb::ListenRequest>>,
    ) -> Result<Response<Self::ListenStream>, Status> {
        let mut inbound = request.into_inner();
        let first = tokio::time::timeout(Duration::from_secs(5), inbound.message())
            .await
            .map_err(|_| Status::deadline_exceeded("the first ListenRequest did not arrive within 5 s"))??
            .ok_or_else(|| Status::invalid_argument("the stream ended before naming a node"))?;
        let node = self
            .host
            .node(&first.node_id)
            .ok_or_else(|| Status::unavailable(format!("node {} is not on this datanode", first.node_id)))?;
        let (tx, rx) = mpsc::channel(crate::pubsub::LISTENER_QUEUE);
        let id = node.broker.add(tx.clone());
        let cancel = self.host.cancel.clone();
        tokio::spawn(async move {
            let mut request = first;
            loop {
                node.broker.update(id, &request.subscriptions);
                if request.seq != 0 {
                    let ack = pb::ListenEvent { event: Some(pb::listen_event::Event::Ack(request.seq)) };
                    if tx.send(Ok(ack)).await.is_err() {
                        break;
                    }
                }
                request = tokio::select! {
                    _ = cancel.cancelled() => break,
                    m = inbound.message() => match m {
                        Ok(Some(r)) => r,
                        _ => break,
                    },
                };
            }
            node.broker.remove(id);
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn execute(
        &self,
        request: Request<Streaming<pb::CommandBatch>>,
    ) -> Result<Response<Self::ExecuteStream>, Status> {
        let mut inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(64);
        let host = self.host.clone();
        tokio::spawn(async move {
            // Blocked commands of this stream; all stop when it ends (nobody to answer).
            let blocked = Blocked::default();
            // A message read ahead that could not join the batch before it.
            let mut ahead = None;
            loop {
                let next = match ahead.take() {
                    Some(next) => next,
                    None => tokio::select! {
                        _ = host.cancel.cancelled() => break,
                        m = inbound.message() => m,
                    },
                };
                let Ok(Some(mut batch)) = next else { break };
                ahead = join_arrived(&mut inbound, &mut batch);
                for id in &batch.cancel {
                    if let Some((token, _counted)) = blocked.lock().remove(id) {
                        token.cancel();
                    }
                }
                if batch.commands.is_empty() {
                    continue;
                }
                let node = host.node(&batch.node_id);
                let replies = run_batch(&host, batch, &tx, &blocked).await;
                if !send_replies(&tx, node.as_deref(), replies).await {
                    break;
                }
            }
            for (_, (token, _counted)) in blocked.lock().drain() {
                token.cancel();
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

/// Most commands a batch takes in from the messages that arrived behind it.
const MAX_JOINED: usize = 1024;

/// Joins to `batch` the messages for the same node that have already arrived (what came in
/// while the last batch ran): they run in one critical section and are answered in one
/// message, as commands a gateway sends together are. Never waits. Returns the first
/// message read that could not join (another node's, one that cancels blocked commands,
/// the stream's end or error), to be handled next.
fn join_arrived(
    inbound: &mut Streaming<pb::CommandBatch>,
    batch: &mut pb::CommandBatch,
) -> Option<Result<Option<pb::CommandBatch>, Status>> {
    use std::future::Future;
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    while batch.commands.len() < MAX_JOINED {
        let next = std::pin::pin!(inbound.message());
        match next.poll(&mut cx) {
            std::task::Poll::Pending => return None,
            // A cancel is for commands already blocked: those before it must run first.
            std::task::Poll::Ready(Ok(Some(more))) if more.node_id == batch.node_id && more.cancel.is_empty() => {
                batch.commands.extend(more.commands);
            }
            std::task::Poll::Ready(other) => return Some(other),
        }
    }
    None
}

/// Replies per message: a pipeline's replies are split so that no message nears the link's
/// limit (a stream error would fail every client sharing the link).
const REPLY_BATCH_BYTES: usize = 32 << 20;

/// Sends `replies` in messages of at most [`REPLY_BATCH_BYTES`] (one reply alone may be
/// larger); a reply too large for the link at all becomes an error for its client only.
/// False when the stream is gone.
async fn send_replies(tx: &Out, node: Option<&Node>, replies: Vec<pb::Reply>) -> bool {
    use prost::Message;
    let out_of_memory = node.is_some_and(|n| n.out_of_memory());
    let feed = node.map(|n| n.broker.feed_mark()).unwrap_or_default();
    let message = |replies| pb::ReplyBatch { replies, out_of_memory, feed_epoch: feed.epoch, feed_seq: feed.seq };
    let mut batch = Vec::new();
    let mut bytes = 0usize;
    for mut r in replies {
        let len = r.encoded_len();
        if len > crate::MAX_REPLY {
            let msg = format!("ERR reply too large for the gateway link ({len} bytes); ask for less at once");
            r = reply(r.id, Reply::error(msg));
        }
        if !batch.is_empty() && bytes + len > REPLY_BATCH_BYTES {
            if tx.send(Ok(message(std::mem::take(&mut batch)))).await.is_err() {
                return false;
            }
            bytes = 0;
        }
        bytes += len.min(REPLY_BATCH_BYTES);
        batch.push(r);
    }
    batch.is_empty() || tx.send(Ok(message(batch))).await.is_ok()
}

fn reply(id: u64, r: Reply) -> pb::Reply {
    pb::Reply { id, value: Some(r.into()) }
}

async fn run_batch(host: &Arc<Host>, batch: pb::CommandBatch, tx: &Out, blocked: &Blocked) -> Vec<pb::Reply> {
    use pb::command::Request as R;
    let Some(node) = host.node(&batch.node_id) else {
        let msg = format!("TRYAGAIN node {} is not available on this datanode yet", batch.node_id);
        return batch.commands.into_iter().map(|c| reply(c.id, Reply::error(msg.clone()))).collect();
    };
    // A script keeps the node: wait for it up to busy-reply-threshold, then answer BUSY.
    let epoch = loop {
        if node.busy.gate().await == Gate::Busy {
            let busy = |c: &pb::Command| match &c.request {
                Some(pb::command::Request::Data(d)) => while_busy(&node, Some(&d.args)),
                // An EXEC refused as Redis refuses one: the transaction is discarded whole.
                Some(pb::command::Request::Transaction(_)) => match node.busy.busy_error() {
                    Reply::Error(e) => Reply::error(format!("EXECABORT Transaction discarded because of: {e}")),
                    other => other,
                },
                _ => while_busy(&node, None),
            };
            return batch.commands.iter().map(|c| reply(c.id, busy(c))).collect();
        }
        if let Some(epoch) = node.try_with_state(|st| st.config_epoch) {
            break epoch;
        }
    };
    // Requests for the keyspace run together, in order, in one critical section; the rest
    // are answered beside them.
    let mut ids = Vec::with_capacity(batch.commands.len());
    let mut requests = Vec::with_capacity(batch.commands.len());
    let mut others = Vec::new();
    let mut stale = Vec::new();
    for c in batch.commands {
        // The sender routed by another configuration than ours: one of us missed a failover.
        // Nothing runs; the gateway refreshes its routes and retries.
        if c.config_epoch != 0 && c.config_epoch != epoch {
            stale.push((c.id, c.config_epoch));
            continue;
        }
        let request = match c.request {
            // Database numbers go through as sent: the node refuses one it does not have.
            Some(R::Data(d)) => node::Request::data_in(d.db as usize, d.args, d.no_touch, d.writer),
            Some(R::Watch(w)) => node::Request::Watch { db: w.db as usize, keys: w.keys },
            Some(R::Transaction(t)) => node::Request::Transaction(Transaction {
                db: t.db as usize,
                watches: t.watches.into_iter().map(|w| (w.db as usize, w.key, w.token)).collect(),
                commands: t.commands.into_iter().map(|d| d.args).collect(),
                no_touch: t.no_touch,
                writer: t.writer,
            }),
            other => {
                others.push((c.id, other));
                continue;
            }
        };
        ids.push(c.id);
        requests.push((request, c.readonly));
    }
    let mut batch = Batch { node, epoch, ids, requests, others, stale };
    // A script may hold the node for long: it runs in a critical section of its own, off the
    // runtime's workers. What came before it runs first. The stream waits for a script that
    // ends soon (most do), so its reply goes out with the batch's others in one message; one
    // that holds the node past SCRIPT_INLINE is left to finish on its own task, and the
    // stream goes on: what follows (in this batch too) runs after it or is answered BUSY, as
    // other clients' commands are in Redis, and SCRIPT KILL reaches it.
    let mut replies = Vec::new();
    // Scripts back to back run together (scripts.rs) unless one of them found the node held
    // by another stream's script: the next then waits for it alone, as below.
    let mut together = true;
    while let Some(at) = batch.requests.iter().position(|(r, _)| r.runs_script()) {
        if at > 0 {
            let script_on = batch.split_off(at);
            replies.extend(finish_batch(host, std::mem::replace(&mut batch, script_on), tx, blocked, None).await);
        }
        let scripts = batch.requests.iter().take_while(|(r, _)| r.runs_script()).count();
        if scripts > 1 && together {
            let Some((next, stalled)) = scripts::run(host, batch, scripts, tx, blocked, &mut replies).await else {
                return Vec::new();
            };
            batch = next;
            together = !stalled;
            continue;
        }
        together = true;
        let rest = batch.split_off(1);
        let node = batch.node.clone();
        let (locked_tx, locked_rx) = tokio::sync::oneshot::channel();
        let (owned_host, owned_tx, owned_blocked) = (host.clone(), tx.clone(), blocked.clone());
        let mut script =
            Box::pin(async move { finish_batch(&owned_host, batch, &owned_tx, &owned_blocked, Some(locked_tx)).await });
        let held_long = async {
            if locked_rx.await.is_ok() {
                tokio::time::sleep(SCRIPT_INLINE).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            biased;
            done = &mut script => replies.extend(done),
            () = held_long => {
                // What ran before it is answered now, not after the script.
                if !send_replies(tx, Some(&node), std::mem::take(&mut replies)).await {
                    return Vec::new();
                }
                let tx = tx.clone();
                tokio::spawn(async move {
                    let done = script.await;
                    send_replies(&tx, Some(&node), done).await;
                });
            }
        }
        batch = rest;
    }
    replies.extend(finish_batch(host, batch, tx, blocked, None).await);
    replies
}

/// How long a stream waits for a script that holds the node before it goes on without it.
const SCRIPT_INLINE: Duration = Duration::from_millis(1);

/// A batch sorted out: keyspace requests (with their ids), the others, the stale ones.
struct Batch {
    node: Arc<Node>,
    epoch: u64,
    ids: Vec<u64>,
    requests: Vec<(node::Request, bool)>,
    others: Vec<(u64, Option<pb::command::Request>)>,
    stale: Vec<(u64, u64)>,
}

impl Batch {
    /// The keyspace requests from `at` on, as a batch of their own.
    fn split_off(&mut self, at: usize) -> Batch {
        Batch {
            node: self.node.clone(),
            epoch: self.epoch,
            ids: self.ids.split_off(at),
            requests: self.requests.split_off(at),
            others: Vec::new(),
            stale: Vec::new(),
        }
    }
}

/// Runs a batch's keyspace requests in one critical section and answers the rest. `locked`
/// (a script, run off the runtime's workers) is told once the lock is held.
async fn finish_batch(
    host: &Arc<Host>,
    batch: Batch,
    tx: &Out,
    blocked: &Blocked,
    mut locked: Option<tokio::sync::oneshot::Sender<()>>,
) -> Vec<pb::Reply> {
    let Batch { node, epoch, ids, mut requests, others, stale } = batch;
    let applied = loop {
        let ran = if locked.is_some() {
            // Not on a runtime worker: a script may run for long.
            let (n, taken, signal) = (node.clone(), std::mem::take(&mut requests), locked.take());
            tokio::task::spawn_blocking(move || {
                let mut signal = signal;
                let ran = n.try_execute_batch(&taken, &mut signal);
                (taken, ran, signal)
            })
            .await
            .map(|(taken, ran, signal)| {
                requests = taken;
                locked = signal;
                ran
            })
        } else if requests.iter().any(|(r, _)| r.may_run_long()) {
            // The worker hands its other tasks to another thread while this runs: with it
            // parked in a long command nothing might poll the sockets, and gateways would
            // drop their links to this datanode (their keep-alive pings unanswered).
            Ok(node::off_worker(|| node.try_execute_batch(&requests, &mut None)))
        } else {
            Ok(node.try_execute_batch(&requests, &mut None))
        };
        match ran {
            Ok(Some(applied)) => break applied,
            // A script took the lock first: as at the start.
            Ok(None) if node.busy.gate().await == Gate::Busy => {
                let mut replies: Vec<pb::Reply> =
                    ids.iter().zip(&requests).map(|(&id, (r, _))| reply(id, busy_answer(&node, r))).collect();
                replies.extend(others.iter().map(|(id, _)| reply(*id, node.busy.busy_error())));
                replies.extend(stale.iter().map(|(id, _)| reply(*id, node.busy.busy_error())));
                return replies;
            }
            Ok(None) => continue,
            Err(e) => {
                tracing::error!(node = %node.id, "a batch's thread failed: {e}");
                return ids.into_iter().map(|id| reply(id, Reply::error("ERR internal error"))).collect();
            }
        }
    };
    answer_batch(host, Batch { node, epoch, ids, requests, others, stale }, applied, tx, blocked)
}

/// The replies of a batch that ran (`applied`), and of its requests that were not for the
/// keyspace; replies that wait (blocked commands, sync durability, an fsync) go out later
/// from their own tasks.
fn answer_batch(
    host: &Arc<Host>,
    batch: Batch,
    applied: Result<Applied, crate::storage::StoreError>,
    tx: &Out,
    blocked: &Blocked,
) -> Vec<pb::Reply> {
    let Batch { node, epoch, mut ids, requests, others, stale } = batch;
    let applied = applied.map(|mut applied| {
        // Blocked commands answer later, from their own tasks.
        for node::Blocked { index: i, mut block, wake, seq } in std::mem::take(&mut applied.blocked).into_iter().rev() {
            let id = ids.remove(i);
            applied.replies.remove(i);
            applied.ran_writes.retain(|&w| w != i);
            for w in applied.ran_writes.iter_mut().filter(|w| **w > i) {
                *w -= 1;
            }
            let mut request = requests[i].clone();
            if let Some(args) = block.args.take() {
                request.0.replace_args(args);
            }
            let token = tokio_util::sync::CancellationToken::new();
            blocked.lock().insert(id, (token.clone(), BlockedClient::new(&node)));
            let waiter = Waiter { node: node.clone(), host: host.clone(), id, request, block, wake, seq, token };
            tokio::spawn(waiter.run(tx.clone(), blocked.clone()));
        }
        applied
    });
    let mut replies = match applied {
        Ok(applied) if applied.replies.is_empty() => Vec::new(),
        Ok(applied) if applied.acks_needed > 0 => {
            // Sync durability: the replies wait for the replicas on their own task, so the
            // stream goes on with the next batch meanwhile (replies carry ids).
            let node = node.clone();
            let tx = tx.clone();
            let timeout = Duration::from_millis(host.config.sync_ack_timeout_ms);
            tokio::spawn(async move {
                let replies = finish_sync(&node, applied, ids, timeout).await;
                send_replies(&tx, Some(&node), replies).await;
            });
            Vec::new()
        }
        Ok(applied) if node.fsync == AppendFsync::Always && !node.is_durable(applied.store_seq) => {
            // appendfsync always: the replies wait for the fsync on their own task while the
            // stream goes on with the next batch, so one fsync covers every batch that came
            // in meanwhile (group commit). Reads wait too: no reply shows a write that a
            // crash could still lose.
            let node = node.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                let replies = match durable(&node, applied.store_seq).await {
                    Ok(()) => ids.into_iter().zip(applied.replies).map(|(id, r)| reply(id, r)).collect(),
                    Err(msg) => ids.into_iter().map(|id| reply(id, Reply::error(msg.clone()))).collect(),
                };
                send_replies(&tx, Some(&node), replies).await;
            });
            Vec::new()
        }
        Ok(applied) => ids.into_iter().zip(applied.replies).map(|(id, r)| reply(id, r)).collect(),
        Err(e) => {
            tracing::error!(node = %node.id, "storage error: {e}");
            let msg = format!("MISCONF storage error: {e}");
            ids.into_iter().map(|id| reply(id, Reply::error(msg.clone()))).collect::<Vec<_>>()
        }
    };
    if let Some(&(_, theirs)) = stale.iter().max_by_key(|(_, e)| *e) {
        if theirs > epoch {
            // We are the stale one: ask the coordinators now rather than at the next beat.
            host.refresh.notify_one();
        }
    }
    for (id, theirs) in stale {
        let msg = format!("TRYAGAIN stale configuration: node {} is at config epoch {epoch}, not {theirs}", node.id);
        replies.push(reply(id, Reply::error(msg)));
    }
    for (id, request) in others {
        if let Some(r) = answer(host, &node, tx, id, request) {
            replies.push(reply(id, r));
        }
    }
    replies
}

/// [`while_busy`] for a keyspace request (a transaction or a WATCH is simply BUSY).
fn busy_answer(node: &Node, request: &node::Request) -> Reply {
    match request {
        node::Request::Data { args, .. } => while_busy(node, Some(args)),
        _ => while_busy(node, None),
    }
}

/// The reply to a command that came while a script keeps the node busy: SCRIPT KILL,
/// FUNCTION KILL and FUNCTION STATS are answered, anything else is BUSY.
fn while_busy(node: &Node, args: Option<&[bytes::Bytes]>) -> Reply {
    use crate::cmd::WhileBusy;
    let busy = &node.busy;
    let Some(args) = args else { return busy.busy_error() };
    match crate::cmd::while_busy(args) {
        Some(WhileBusy::ScriptKill) => busy.kill(true),
        Some(WhileBusy::FunctionKill) => busy.kill(false),
        Some(WhileBusy::FunctionStats) => busy.function_stats().unwrap_or_else(|| busy.busy_error()),
        None => busy.busy_error(),
    }
}

/// Answers a request that does not touch the keyspace; None when it answers later, on its
/// own task (WAIT, parameters applied).
fn answer(
    host: &Arc<Host>,
    node: &Arc<Node>,
    tx: &Out,
    id: u64,
    request: Option<pb::command::Request>,
) -> Option<Reply> {
    use pb::command::Request as R;
    let Some(request) = request else { return Some(Reply::error("ERR empty request")) };
    Some(match request {
        R::Info(_) => Reply::Bulk(crate::info::node_info(node).into()),
        // Only noeviction refuses outright; under another policy EXEC's writes evict (and
        // EXEC is refused whole if that cannot make room).
        R::Admission(_) if node.out_of_memory() => Reply::error(crate::memory::OOM),
        R::Admission(_) => Reply::ok(),
        R::ResetStat(_) => {
            node.with_state(|st| {
                st.stats = Default::default();
                st.script_calls.clear();
            });
            crate::lazyfree::reset_stats();
            Reply::ok()
        }
        R::Publish(p) => Reply::Integer(node.broker.publish(&p.channel, &p.message, p.shard)),
        R::Pubsub(q) => node.broker.query(&q),
        R::ParametersApplied(p) => {
            // From the gateway's CONFIG SET: answer once this node applies these values.
            let (node, host, tx) = (node.clone(), host.clone(), tx.clone());
            tokio::spawn(async move {
                let r = parameters_applied(&node, &host, &p.parameters).await;
                send_replies(&tx, Some(&node), vec![reply(id, r)]).await;
            });
            return None;
        }
        R::Wait(w) if w.aof => {
            if !node.is_primary() {
                return Some(Reply::error(WAITAOF_ON_REPLICA));
            }
            let needed = usize::try_from(w.replicas).unwrap_or(usize::MAX);
            let timeout = (w.timeout_ms > 0).then(|| Duration::from_millis(w.timeout_ms));
            let (node, tx) = (node.clone(), tx.clone());
            let (target, seq) = (node.offset(), node.store_seq());
            tokio::spawn(async move {
                let local = async {
                    let wait = w.local > 0;
                    let synced = match timeout {
                        _ if !wait => node.is_durable(seq),
                        Some(t) => tokio::time::timeout(t, fsynced(&node, seq)).await.unwrap_or(false),
                        None => fsynced(&node, seq).await,
                    };
                    Reply::Integer(synced as i64)
                };
                let replicas = wait_for_replicas(&node, target, needed, timeout);
                let (local, replicas) = tokio::join!(local, replicas);
                let r = Reply::Array(vec![local, Reply::Integer(replicas as i64)]);
                send_replies(&tx, Some(&node), vec![reply(id, r)]).await;
            });
            return None;
        }
        R::Wait(w) => {
            if !node.is_primary() {
                return Some(Reply::error(WAIT_ON_REPLICA));
            }
            let needed = usize::try_from(w.replicas).unwrap_or(usize::MAX);
            let timeout = (w.timeout_ms > 0).then(|| Duration::from_millis(w.timeout_ms));
            let (node, tx) = (node.clone(), tx.clone());
            let target = node.offset();
            tokio::spawn(async move {
                let n = wait_for_replicas(&node, target, needed, timeout).await;
                send_replies(&tx, Some(&node), vec![reply(id, Reply::Integer(n as i64))]).await;
            });
            return None;
        }
        // Keyspace requests run in the batch, never here.
        R::Data(_) | R::Watch(_) | R::Transaction(_) => Reply::error("ERR internal error: misrouted request"),
    })
}

const WAIT_ON_REPLICA: &str = "ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is configured to be writable (which is not the default) writes to replicas are just local and are not propagated.";

const WAITAOF_ON_REPLICA: &str = "ERR WAITAOF cannot be used with replica instances. Please also note that writes to replicas are just local and are not propagated.";

/// Whether this node's log holds storage batch `seq` on disk, waiting for it. Under
/// `appendfsync no` written counts as fsynced (the kernel's job, as Redis counts it).
async fn fsynced(node: &Node, seq: u64) -> bool {
    node.fsync == AppendFsync::No || seq == 0 || node.wait_durable(seq).await.is_ok()
}

/// Waits (asking the coordinators at once) until the node runs with the `name value` pairs.
async fn parameters_applied(node: &Node, host: &Host, pairs: &HashMap<String, String>) -> Reply {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let applied = node.with_state(|st| {
            pairs.iter().all(|(name, value)| ferrocache_common::parameters::value(&st.parameters, name) == value)
        });
        if applied {
            return Reply::ok();
        }
        if tokio::time::Instant::now() >= deadline {
            return Reply::error("ERR CONFIG SET is stored but this node has not applied it yet");
        }
        host.refresh.notify_one();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Under `appendfsync always`, waits until the batch is on disk.
async fn durable(node: &Node, store_seq: u64) -> Result<(), String> {
    if store_seq == 0 || node.fsync != AppendFsync::Always {
        return Ok(());
    }
    node.wait_durable(store_seq).await.map_err(|e| {
        tracing::error!(node = %node.id, "fsync failed: {e}");
        "MISCONF Errors writing to disk; writes may be lost".to_string()
    })
}

/// Sync durability: the batch's replies once enough replicas acknowledged it, or errors for
/// its writes when they did not in time (those writes ran here and may not survive a failover).
async fn finish_sync(node: &Node, applied: Applied, ids: Vec<u64>, timeout: Duration) -> Vec<pb::Reply> {
    if let Err(msg) = durable(node, applied.store_seq).await {
        return ids.into_iter().map(|id| reply(id, Reply::error(msg.clone()))).collect();
    }
    let acked = wait_for_replicas(node, applied.offset, applied.acks_needed, Some(timeout)).await;
    let mut replies = applied.replies;
    if acked < applied.acks_needed {
        let msg = format!(
            "ERR the write ran on the primary but only {acked} of {} replica(s) acknowledged it within {} ms; it may be lost in a failover",
            applied.acks_needed,
            timeout.as_millis()
        );
        for i in &applied.ran_writes {
            if let Some(r) = replies.get_mut(*i) {
                *r = Reply::error(msg.clone());
            }
        }
    }
    ids.into_iter().zip(replies).map(|(id, r)| reply(id, r)).collect()
}

/// Counts a blocked command in its node's `blocked_clients` while it lives.
struct BlockedClient(Arc<Node>);

impl BlockedClient {
    fn new(node: &Arc<Node>) -> BlockedClient {
        node.blocked_clients.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        BlockedClient(node.clone())
    }
}

impl Drop for BlockedClient {
    fn drop(&mut self) {
        self.0.blocked_clients.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A blocked command (BLPOP, BLMOVE, ...) parked until a write touches one of its keys, its
/// timeout passes (null reply), or its client goes away (no reply, nothing taken).
struct Waiter {
    node: Arc<Node>,
    host: Arc<Host>,
    id: u64,
    /// The blocked request and whether it came through the reader endpoint.
    request: (node::Request, bool),
    block: crate::cmd::Block,
    wake: Arc<tokio::sync::Notify>,
    /// Its place in its keys' queues.
    seq: u64,
    token: tokio_util::sync::CancellationToken,
}

impl Waiter {
    /// A waiter leaving without being served: if it was woken meanwhile, the wake-up goes to
    /// the next in line instead of being lost.
    async fn pass_on(&self) {
        if tokio::time::timeout(Duration::ZERO, self.wake.notified()).await.is_ok() {
            self.wake_next();
        }
    }

    /// Wakes the next client waiting on this one's keys.
    fn wake_next(&self) {
        let db = self.request.0.db();
        let keys: Vec<crate::cmd::DbKey> = self.block.keys.iter().map(|k| (db, k.clone())).collect();
        self.node.wake_watchers(keys.iter());
    }

    async fn run(mut self, tx: Out, blocked: Blocked) {
        let deadline = self.block.deadline(tokio::time::Instant::now());
        let reply = loop {
            let woken = async {
                match deadline {
                    Some(d) => tokio::time::timeout_at(d, self.wake.notified()).await.is_ok(),
                    None => {
                        self.wake.notified().await;
                        true
                    }
                }
            };
            let woken = tokio::select! {
                _ = self.token.cancelled() => return self.pass_on().await,
                _ = self.host.cancel.cancelled() => return,
                w = woken => w,
            };
            if !woken {
                self.pass_on().await;
                break reply(self.id, Reply::NullArray);
            }
            // A script holding the node is waited for here, not on a runtime worker.
            let ran = loop {
                match self.node.try_execute_again(&self.request, self.seq, &self.block.keys) {
                    Some(ran) => break ran,
                    None => self.node.busy.wait_idle(Duration::from_secs(1)).await,
                }
            };
            match ran {
                Ok(mut applied) => match applied.blocked.pop() {
                    // Still nothing (someone else took it): wait again on the fresh wake-up.
                    Some(node::Blocked { mut block, wake, .. }) => {
                        if let Some(args) = block.args.take() {
                            self.request.0.replace_args(args);
                        }
                        self.block.keys = block.keys;
                        self.wake = wake;
                    }
                    None => {
                        if matches!(applied.replies.last(), Some(Reply::Error(_))) {
                            // It failed and took nothing (BLMOVE to a key of another type):
                            // what woke it goes to the next in line, as Redis serves it.
                            self.wake_next();
                        }
                        let timeout = Duration::from_millis(self.host.config.sync_ack_timeout_ms);
                        let mut replies = if applied.acks_needed > 0 {
                            finish_sync(&self.node, applied, vec![self.id], timeout).await
                        } else {
                            match durable(&self.node, applied.store_seq).await {
                                Ok(()) => vec![reply(self.id, applied.replies.pop().unwrap_or(Reply::NullArray))],
                                Err(msg) => vec![reply(self.id, Reply::error(msg))],
                            }
                        };
                        break replies.pop().unwrap_or_else(|| reply(self.id, Reply::NullArray));
                    }
                },
                Err(e) => break reply(self.id, Reply::error(format!("MISCONF storage error: {e}"))),
            }
        };
        blocked.lock().remove(&self.id);
        send_replies(&tx, Some(&self.node), vec![reply]).await;
    }
}

/// Waits until `needed` replicas acknowledged `target` or the timeout passes (none = wait
/// forever, as WAIT 0 does); returns how many had.
pub async fn wait_for_replicas(node: &Node, target: u64, needed: usize, timeout: Option<Duration>) -> usize {
    let mut acks = node.subscribe_acks();
    let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
    loop {
        let n = node.replicas_at(target);
        if n >= needed {
            return n;
        }
        let changed = match deadline {
            Some(d) => tokio::time::timeout_at(d, acks.changed()).await.ok(),
            None => Some(acks.changed().await),
        };
        match changed {
            Some(Ok(())) => continue,
            _ => return node.replicas_at(target),
        }
    }
}
