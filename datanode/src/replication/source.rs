//! The primary side of replication: serves `Replication.Sync` to replicas.
//!
//! A replica whose replication id matches and whose offset is still in the backlog resumes
//! from there; any other gets a full sync (a consistent copy of the keyspace, in chunks)
//! and then the effects after it. While idle, an empty `Effects` message goes out every
//! second so the replica can tell a quiet primary from a dead link.

use std::sync::Arc;
use std::time::Duration;

use ferrocache_proto::internal::v1 as pb;
use pb::replication_server::Replication;
use pb::sync_message::Kind as Msg;
use pb::sync_request::Kind as Req;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::host::Host;
use crate::node::Node;

const CHUNK_ENTRIES: usize = 1000;
/// A message stops growing past this many bytes (one entry or effect alone may be larger,
/// up to the link's limit): big values must not add up to a message the replica refuses.
const MESSAGE_BYTES: usize = 32 << 20;
const EFFECTS_PER_MESSAGE: usize = 1024;
const IDLE_PING: Duration = Duration::from_secs(1);
const SNAPSHOT_CHUNK: usize = 1 << 20;

pub struct ReplicationSource {
    host: Arc<Host>,
}

impl ReplicationSource {
    pub fn new(host: Arc<Host>) -> ReplicationSource {
        ReplicationSource { host }
    }
}

type Out = mpsc::Sender<Result<pb::SyncMessage, Status>>;

#[tonic::async_trait]
impl Replication for ReplicationSource {
    type SyncStream = ReceiverStream<Result<pb::SyncMessage, Status>>;

    async fn sync(&self, request: Request<Streaming<pb::SyncRequest>>) -> Result<Response<Self::SyncStream>, Status> {
        let mut inbound = request.into_inner();
        let first = tokio::time::timeout(Duration::from_secs(5), inbound.message())
            .await
            .map_err(|_| Status::deadline_exceeded("no start message within 5s"))??;
        let Some(pb::SyncRequest { kind: Some(Req::Start(start)) }) = first else {
            return Err(Status::invalid_argument("the first message of a sync must be `start`"));
        };
        let node = self
            .host
            .node(&start.primary_node_id)
            .ok_or_else(|| Status::not_found(format!("node {} is not hosted here", start.primary_node_id)))?;
        if !node.is_primary() {
            return Err(Status::failed_precondition(format!("node {} is not a primary", node.id)));
        }
        let (tx, rx) = mpsc::channel(16);
        let cancel = self.host.cancel.child_token();
        let replica = start.replica_node_id.clone();
        let acks_node = node.clone();
        tokio::spawn(async move {
            while let Ok(Some(msg)) = inbound.message().await {
                if let Some(Req::Ack(offset)) = msg.kind {
                    acks_node.record_ack(&replica, offset);
                }
            }
            acks_node.forget_replica(&replica);
        });
        tokio::spawn(async move {
            tokio::select! {
                _ = cancel.cancelled() => {}
                result = stream_to_replica(&node, &start, &tx) => {
                    if let Err(status) = result {
                        tracing::info!(node = %node.id, replica = %start.replica_node_id, "replication stream ended: {}", status.message());
                        let _ = tx.send(Err(status)).await;
                    }
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn export_slots(
        &self,
        request: Request<pb::ExportSlotsRequest>,
    ) -> Result<Response<pb::ExportSlotsResponse>, Status> {
        let keys = crate::migration::export(&self.host, request.into_inner()).await?;
        Ok(Response::new(pb::ExportSlotsResponse { keys }))
    }

    async fn import_slots(
        &self,
        request: Request<Streaming<pb::ImportChunk>>,
    ) -> Result<Response<pb::ImportSlotsResponse>, Status> {
        let keys = crate::migration::import(&self.host, request.into_inner()).await?;
        Ok(Response::new(pb::ImportSlotsResponse { keys }))
    }

    type FetchSnapshotStream = ReceiverStream<Result<pb::SnapshotChunk, Status>>;

    async fn fetch_snapshot(
        &self,
        request: Request<pb::FetchSnapshotRequest>,
    ) -> Result<Response<Self::FetchSnapshotStream>, Status> {
        let name = request.into_inner().snapshot_name;
        let path = crate::snapshot::file::path(&self.host.snapshots.dir, &name)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let file = std::fs::File::open(&path)
            .map_err(|e| Status::not_found(format!("snapshot {name} is not on this datanode: {e}")))?;
        let (tx, rx) = mpsc::channel(4);
        tokio::task::spawn_blocking(move || {
            use std::io::Read;
            let mut file = file;
            loop {
                let mut buf = vec![0u8; SNAPSHOT_CHUNK];
                match file.read(&mut buf) {
                    Ok(0) => return,
                    Ok(n) => {
                        buf.truncate(n);
                        if tx.blocking_send(Ok(pb::SnapshotChunk { data: buf.into() })).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = tx.blocking_send(Err(Status::internal(format!("reading snapshot: {e}"))));
                        return;
                    }
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

/// Whether the batch ends inside a MULTI/EXEC frame.
fn open_frame(batch: &[(u64, Vec<bytes::Bytes>)]) -> bool {
    let mut open = false;
    for (_, effect) in batch {
        if let Some(starts) = crate::cmd::frame_marker(effect) {
            open = starts;
        }
    }
    open
}

async fn send(tx: &Out, kind: Msg) -> Result<(), Status> {
    tx.send(Ok(pb::SyncMessage { kind: Some(kind) })).await.map_err(|_| Status::cancelled("replica went away"))
}

async fn stream_to_replica(node: &Arc<Node>, start: &pb::SyncStart, tx: &Out) -> Result<(), Status> {
    let mut offset_rx = node.subscribe_offset();
    let (partial, current) = node.with_state(|st| {
        // From now on the backlog keeps what follows, for this replica and its retries.
        st.replicas_seen = true;
        let p = &st.position;
        // Same history, or the previous primary's history up to where this node took over.
        let known = p.replid == start.replid
            || (!st.replid2.is_empty() && st.replid2 == start.replid && start.offset <= st.offset2);
        let partial = known && st.backlog.covers(start.offset, p.offset);
        // A replica with data asked to resume (Redis's PSYNC replid offset; a new one's
        // is PSYNC ? -1, a full sync only).
        if partial {
            st.stats.sync_partial_ok += 1;
        } else {
            st.stats.sync_full += 1;
            st.stats.sync_partial_err += u64::from(start.offset > 0);
        }
        (partial, p.clone())
    });
    let mut sent = if partial {
        tracing::info!(node = %node.id, replica = %start.replica_node_id, offset = start.offset, "partial resync");
        send(tx, Msg::Continue(pb::Position { replid: current.replid, offset: start.offset })).await?;
        start.offset
    } else {
        tracing::info!(node = %node.id, replica = %start.replica_node_id, "full sync");
        let (position, entries, scripts) = node.snapshot();
        let pos = pb::Position { replid: position.replid.clone(), offset: position.offset };
        send(tx, Msg::FullSyncBegin(pos.clone())).await?;
        if !scripts.is_empty() {
            send(tx, Msg::FullSyncScripts(pb::Scripts { bodies: scripts })).await?;
        }
        let mut chunk = Vec::with_capacity(CHUNK_ENTRIES);
        let mut bytes = 0usize;
        for (db, k, e) in &entries {
            let value: bytes::Bytes = e.value.encode().into();
            bytes += k.len() + value.len();
            chunk.push(pb::Entry { key: k.clone(), value, expires_at_ms: e.expires_at, db: *db as u32 });
            if chunk.len() >= CHUNK_ENTRIES || bytes >= MESSAGE_BYTES {
                send(tx, Msg::FullSyncChunk(pb::Entries { entries: std::mem::take(&mut chunk) })).await?;
                bytes = 0;
            }
        }
        if !chunk.is_empty() {
            send(tx, Msg::FullSyncChunk(pb::Entries { entries: chunk })).await?;
        }
        send(tx, Msg::FullSyncEnd(pos)).await?;
        position.offset
    };
    loop {
        // A script holding the node's lock is waited for here, not on a runtime worker; the
        // replica still hears from us meanwhile.
        let batch = node.try_with_state(|st| {
            if !st.backlog.covers(sent, st.position.offset) {
                return Err(Status::out_of_range("replica fell out of the backlog; a full sync is needed"));
            }
            if st.role != crate::node::Role::Primary {
                return Err(Status::failed_precondition("no longer a primary"));
            }
            if start.reads_records {
                // The records as stored: a few reference counts under the lock, one copy of
                // each record into the stream, nothing decoded per replica.
                if let Some((skip, records, last)) = st.backlog.records_after(sent, MESSAGE_BYTES) {
                    return Ok(Next::Records { skip, records, last });
                }
            }
            let mut batch = st.backlog.after(sent, EFFECTS_PER_MESSAGE);
            let mut bytes = 0usize;
            let keep = batch
                .iter()
                .position(|(_, effect)| {
                    bytes += effect.iter().map(|a| a.len()).sum::<usize>();
                    bytes > MESSAGE_BYTES
                })
                .map_or(batch.len(), |i| i.max(1));
            batch.truncate(keep);
            // A transaction's frame is never split over two messages: a replica applies each
            // message at once, so it never holds half a transaction.
            while open_frame(&batch) {
                let last = batch.last().map_or(sent, |(o, _)| *o);
                let more = st.backlog.after(last, EFFECTS_PER_MESSAGE);
                if more.is_empty() {
                    break;
                }
                batch.extend(more);
            }
            Ok(Next::Effects(batch))
        });
        let Some(batch) = batch else {
            node.busy.wait_idle(IDLE_PING).await;
            if node.busy.running() {
                send(tx, Msg::Effects(pb::Effects { offset: sent, effects: vec![] })).await?;
            }
            continue;
        };
        let (message, last) = match batch? {
            Next::Records { records, .. } if records.is_empty() => (None, sent),
            Next::Records { skip, records, last } => {
                let skip = u32::try_from(skip).map_err(|_| Status::internal("a record longer than u32 effects"))?;
                (Some(Msg::Records(pb::EffectRecords { offset: last, skip, records })), last)
            }
            Next::Effects(batch) if batch.is_empty() => (None, sent),
            Next::Effects(batch) => {
                let last = batch.last().map_or(sent, |(o, _)| *o);
                let effects = batch.into_iter().map(|(_, args)| pb::Effect { args }).collect();
                (Some(Msg::Effects(pb::Effects { offset: last, effects })), last)
            }
        };
        let Some(message) = message else {
            if tokio::time::timeout(IDLE_PING, offset_rx.changed()).await.is_err() {
                send(tx, Msg::Effects(pb::Effects { offset: sent, effects: vec![] })).await?;
            }
            continue;
        };
        send(tx, message).await?;
        sent = last;
    }
}

/// What goes to a replica next: the backlog's records as stored, or effects decoded from
/// them (a replica that does not read records, or one record too large for a message).
enum Next {
    Records { skip: u64, records: Vec<bytes::Bytes>, last: u64 },
    Effects(Vec<(u64, Vec<bytes::Bytes>)>),
}
