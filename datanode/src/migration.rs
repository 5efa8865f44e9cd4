//! Resharding on the datanodes: slots leave one node group and arrive in another.
//!
//! ```text
//!  coordinator leader ──ExportSlots──▶ source primary ──ImportSlots (stream)──▶ target primary
//!                                       (slots frozen)                          │ replicated as
//!                                                                               ▼ RESTORE effects
//! ```
//!
//! The source's slots are frozen by its assignment (writes to them answer TRYAGAIN, which
//! the gateways retry) before it copies them, so the copy is exact. The target clears the
//! slots first, so a repeated copy (after a failure, or by a new leader) is exact too. The
//! slots change owner only when the coordinators commit the move; after that the source's
//! primary deletes what it no longer owns (and replicates the deletion).

use std::time::Duration;

use bytes::Bytes;
use ferrocache_common::command::{self, CommandSpec};
use ferrocache_common::slot::{key_slot, SLOT_COUNT};
use ferrocache_common::Reply;
use ferrocache_proto::internal::v1 as pb;
use tonic::Status;

use crate::cmd::WriteSet;
use crate::durability::Mode;
use crate::host::Host;
use crate::keyspace::Entry;
use crate::node::{Node, NodeState, Role};
use crate::value::Value;

/// The answer to a write on a slot that is being copied away.
pub const MOVING: &str = "TRYAGAIN the slot is moving to another node group; try again";

/// Most keys in one import chunk (a chunk is one commit on the target).
const CHUNK_KEYS: usize = 512;
/// ... and at most this many bytes (one key alone may be larger, up to the link's limit).
const CHUNK_BYTES: usize = 32 << 20;
/// How long the source waits for its assignment to freeze the slots.
const FREEZE_WAIT: Duration = Duration::from_secs(5);
/// How long the target waits for its replicas to have a copied batch.
const REPLICA_WAIT: Duration = Duration::from_secs(10);
/// Most keys purged in one go (the rest on the next expiry cycle).
const PURGE_BATCH: usize = 50_000;

/// Why a command may not run here now, if it may not: a key in a slot this node group does
/// not own, or (for a write) in a slot being copied away.
pub fn check(st: &NodeState, spec: &CommandSpec, args: &[Bytes], is_write: bool) -> Option<Reply> {
    for i in command::key_positions(spec, args) {
        let slot = key_slot(&args[i]);
        if !st.slots.contains(slot) {
            return Some(Reply::error(format!(
                "TRYAGAIN slot {slot} is not served by this node group (routes are changing)"
            )));
        }
        if is_write && st.frozen.contains(slot) {
            return Some(Reply::error(MOVING));
        }
    }
    None
}

/// Deletes (and replicates the deletion of) keys in slots this node neither owns nor is
/// importing. Runs on a primary that may write.
pub fn purge_unowned(st: &mut NodeState, out: &mut WriteSet) {
    let mut purged = 0;
    for slot in 0..SLOT_COUNT {
        if st.slots.contains(slot) || st.importing.contains(slot) || st.dbs.db(0).slot_len(slot) == 0 {
            continue;
        }
        let keys: Vec<Bytes> = st.dbs.db(0).slot_entries(slot).map(|(k, _)| Bytes::copy_from_slice(k)).collect();
        for key in keys {
            st.dbs.db_mut(0).remove(&key);
            out.effects.push(vec![Bytes::from_static(b"DEL"), key.clone()]);
            out.dirty.push((0, key));
            purged += 1;
        }
        if purged >= PURGE_BATCH {
            return;
        }
    }
    if purged > 0 {
        tracing::info!(keys = purged, "deleted keys of slots this node group no longer owns");
    }
    st.purge_pending = false;
}

fn range(first: u32, last: u32) -> Result<(u16, u16), Status> {
    if first > last || last >= SLOT_COUNT as u32 {
        return Err(Status::invalid_argument(format!("bad slot range {first}-{last}")));
    }
    Ok((first as u16, last as u16))
}

impl Node {
    fn writable_primary(st: &NodeState) -> Result<(), Status> {
        if st.role != Role::Primary || !st.lease_live() {
            return Err(Status::failed_precondition("not a primary that may write"));
        }
        Ok(())
    }

    /// The source side: the live keys of `first..=last`, once those slots are frozen here.
    fn export_entries(&self, first: u16, last: u16, now: i64) -> Result<Option<Vec<pb::ImportEntry>>, Status> {
        let st = self.lock_state();
        Self::writable_primary(&st)?;
        if (first..=last).any(|s| !st.slots.contains(s)) {
            return Err(Status::failed_precondition(format!("slots {first}-{last} are not owned by {}", self.id)));
        }
        if (first..=last).any(|s| !st.frozen.contains(s)) {
            return Ok(None);
        }
        let mut out = Vec::new();
        for slot in first..=last {
            for (k, e) in st.dbs.db(0).slot_entries(slot).filter(|(_, e)| !e.is_expired(now)) {
                out.push(pb::ImportEntry {
                    key: Bytes::copy_from_slice(k),
                    value: e.value.encode().into(),
                    expires_at_ms: e.expires_at,
                });
            }
        }
        Ok(Some(out))
    }

    /// The target side, first chunk: forgets whatever an earlier copy left in the slots.
    fn import_begin(&self, first: u16, last: u16) -> Result<u64, Status> {
        let mut out = WriteSet::default();
        let mut st = self.lock_state();
        Self::writable_primary(&st)?;
        st.importing.set_range(first, last, true);
        for slot in first..=last {
            let keys: Vec<Bytes> = st.dbs.db(0).slot_entries(slot).map(|(k, _)| Bytes::copy_from_slice(k)).collect();
            for key in keys {
                st.dbs.db_mut(0).remove(&key);
                out.effects.push(vec![Bytes::from_static(b"DEL"), key.clone()]);
                out.dirty.push((0, key));
            }
        }
        self.commit(&mut st, out).map_err(|e| Status::internal(e.to_string()))
    }

    /// The target side: writes a chunk of copied keys (replicated as RESTORE effects).
    fn import_entries(&self, entries: Vec<pb::ImportEntry>, now: i64) -> Result<u64, Status> {
        let mut out = WriteSet::default();
        let mut st = self.lock_state();
        Self::writable_primary(&st)?;
        for e in entries {
            if e.expires_at_ms != 0 && e.expires_at_ms <= now {
                continue;
            }
            let value = Value::decode(&e.value).map_err(|err| Status::invalid_argument(err.to_string()))?;
            let payload = crate::rdb::dump_exact(&value);
            st.dbs.db_mut(0).insert(&e.key, Entry::with_expiry(value, e.expires_at_ms));
            out.effects.push(vec![
                Bytes::from_static(b"RESTORE"),
                e.key.clone(),
                Bytes::from(e.expires_at_ms.to_string()),
                Bytes::from(payload),
                Bytes::from_static(b"ABSTTL"),
                Bytes::from_static(b"REPLACE"),
            ]);
            out.dirty.push((0, e.key));
        }
        self.commit(&mut st, out).map_err(|e| Status::internal(e.to_string()))
    }
}

/// ExportSlots: waits for the freeze, copies the slots to the target, returns how many keys.
pub async fn export(host: &Host, req: pb::ExportSlotsRequest) -> Result<u64, Status> {
    let (first, last) = range(req.first_slot, req.last_slot)?;
    let node = host.node(&req.node_id).ok_or_else(|| Status::not_found(format!("no node {}", req.node_id)))?;
    let deadline = tokio::time::Instant::now() + FREEZE_WAIT;
    let entries = loop {
        let now = ferrocache_common::time::now_ms();
        if let Some(entries) = node.export_entries(first, last, now)? {
            break entries;
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Status::unavailable(format!("slots {first}-{last} were not frozen within {FREEZE_WAIT:?}")));
        }
        // The freeze arrives with the next heartbeat's assignment: ask for it now.
        host.refresh.notify_one();
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let keys = entries.len();
    tracing::info!(node = %node.id, first, last, keys, target = %req.target_node_id, "copying slots");
    // By count and by bytes: big values must not add up to a message over the link's limit.
    let mut groups: Vec<Vec<pb::ImportEntry>> = Vec::new();
    let mut bytes = 0usize;
    for e in entries {
        let size = e.key.len() + e.value.len();
        match groups.last_mut() {
            Some(g) if g.len() < CHUNK_KEYS && bytes + size <= CHUNK_BYTES => {
                bytes += size;
                g.push(e);
            }
            _ => {
                bytes = size;
                groups.push(vec![e]);
            }
        }
    }
    let mut chunks: Vec<pb::ImportChunk> = groups
        .into_iter()
        .map(|entries| pb::ImportChunk {
            node_id: req.target_node_id.clone(),
            first_slot: first as u32,
            last_slot: last as u32,
            entries,
        })
        .collect();
    if chunks.is_empty() {
        chunks.push(pb::ImportChunk {
            node_id: req.target_node_id.clone(),
            first_slot: first as u32,
            last_slot: last as u32,
            entries: vec![],
        });
    }
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", req.target_address))
        .map_err(|e| Status::invalid_argument(e.to_string()))?
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(60))
        .connect()
        .await
        .map_err(|e| Status::unavailable(format!("target {} unreachable: {e}", req.target_address)))?;
    let mut client = pb::replication_client::ReplicationClient::new(ferrocache_common::credentials::channel(channel))
        .max_decoding_message_size(crate::MAX_MESSAGE)
        .max_encoding_message_size(crate::MAX_MESSAGE);
    let imported = client.import_slots(tokio_stream::iter(chunks)).await?.into_inner().keys;
    if imported != keys as u64 {
        return Err(Status::internal(format!("the target took {imported} of {keys} keys")));
    }
    Ok(imported)
}

/// ImportSlots: clears the slots, writes every chunk, answers once the writes are as durable
/// as the group's acknowledged writes are.
pub async fn import(host: &Host, mut chunks: tonic::Streaming<pb::ImportChunk>) -> Result<u64, Status> {
    let mut node: Option<std::sync::Arc<Node>> = None;
    let (mut keys, mut seq) = (0u64, 0u64);
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(30), chunks.message())
        .await
        .map_err(|_| Status::deadline_exceeded("import stalled"))??
    {
        let n = match &node {
            Some(n) => n.clone(),
            None => {
                let n =
                    host.node(&chunk.node_id).ok_or_else(|| Status::not_found(format!("no node {}", chunk.node_id)))?;
                let (first, last) = range(chunk.first_slot, chunk.last_slot)?;
                n.import_begin(first, last)?;
                node = Some(n.clone());
                n
            }
        };
        keys += chunk.entries.len() as u64;
        seq = n.import_entries(chunk.entries, ferrocache_common::time::now_ms())?;
    }
    let Some(n) = node else { return Ok(keys) };
    // Fsynced first under appendfsync always, as any acknowledged write.
    if n.fsync == crate::node::AppendFsync::Always {
        n.wait_durable(seq).await.map_err(|e| Status::internal(e.to_string()))?;
    }
    // Unlike a fresh write, these keys may be old: the move is handed over only once a
    // replica of the target has them too (MinReplicasToAck of them under `sync`), so losing
    // the target's primary right after the hand-over loses nothing.
    let (sync, min) = n.with_state(|st| (st.durability.mode == Mode::Sync, st.durability.min_replicas_to_ack));
    let needed = if sync { min } else { n.acked_offsets().len().min(1) };
    if needed > 0 {
        let offset = n.offset();
        let got = crate::service::wait_for_replicas(&n, offset, needed, Some(REPLICA_WAIT)).await;
        if got < needed {
            return Err(Status::unavailable(format!(
                "{got} of {needed} replicas of {} have the copied keys after {REPLICA_WAIT:?}",
                n.id
            )));
        }
    }
    Ok(keys)
}
