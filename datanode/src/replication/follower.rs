//! The replica side of replication: one loop per replica node that keeps a stream open to
//! its primary, applies what arrives in order and acknowledges offsets. It reconnects after
//! any error; the primary decides between partial resync and full sync.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ferrocache_proto::internal::v1 as pb;
use pb::replication_client::ReplicationClient;
use pb::sync_message::Kind as Msg;
use pb::sync_request::Kind as Req;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::keyspace::Entry;
use crate::node::Node;
use crate::replication::backlog::Effect;
use crate::storage::Position;
use crate::value::Value;

/// Without any message for this long (the primary pings every second), the link is dead.
const LINK_TIMEOUT: Duration = Duration::from_millis(2500);
const RETRY: Duration = Duration::from_millis(200);

#[derive(Debug, thiserror::Error)]
enum FollowError {
    #[error("connect: {0}")]
    Connect(#[from] tonic::transport::Error),
    #[error("stream: {0}")]
    Stream(#[from] tonic::Status),
    #[error("no message from the primary for {0:?}")]
    Timeout(Duration),
    #[error("storage: {0}")]
    Storage(#[from] crate::storage::StoreError),
    #[error("protocol: {0}")]
    Protocol(String),
}

pub struct Follower {
    pub node: Arc<Node>,
    pub primary_node_id: String,
    pub primary_address: String,
}

impl Follower {
    pub async fn run(self, cancel: CancellationToken) {
        while !cancel.is_cancelled() {
            let span = tracing::info_span!("replication", node = %self.node.id, primary = %self.primary_node_id);
            let result = tokio::select! {
                _ = cancel.cancelled() => break,
                r = self.session().instrument(span) => r,
            };
            self.node.with_state(|st| st.in_sync = false);
            if let Err(e) = result {
                tracing::debug!(node = %self.node.id, primary = %self.primary_node_id, "replication link down: {e}");
            }
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(RETRY) => {}
            }
        }
    }

    async fn session(&self) -> Result<(), FollowError> {
        let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{}", self.primary_address))
            .map_err(|e| FollowError::Protocol(e.to_string()))?
            .connect_timeout(Duration::from_secs(2))
            .tcp_nodelay(true)
            .initial_stream_window_size(Some(4 << 20))
            .initial_connection_window_size(Some(8 << 20));
        let channel = endpoint.connect().await?;
        let mut client = ReplicationClient::new(ferrocache_common::credentials::channel(channel))
            .max_decoding_message_size(crate::MAX_MESSAGE)
            .max_encoding_message_size(crate::MAX_MESSAGE);
        let (req_tx, req_rx) = mpsc::channel(16);
        let position = self.node.with_state(|st| st.position.clone());
        let start = pb::SyncStart {
            primary_node_id: self.primary_node_id.clone(),
            replica_node_id: self.node.id.clone(),
            replid: position.replid,
            offset: position.offset,
            reads_records: true,
        };
        let _ = req_tx.send(pb::SyncRequest { kind: Some(Req::Start(start)) }).await;
        let mut stream = client.sync(ReceiverStream::new(req_rx)).await?.into_inner();
        let mut full: Option<Vec<crate::databases::DbEntry>> = None;
        let mut scripts = Vec::new();
        loop {
            let msg = tokio::time::timeout(LINK_TIMEOUT, stream.message())
                .await
                .map_err(|_| FollowError::Timeout(LINK_TIMEOUT))??
                .ok_or_else(|| FollowError::Protocol("primary closed the stream".into()))?;
            let ack = match msg.kind {
                Some(Msg::Continue(p)) => {
                    tracing::info!(node = %self.node.id, offset = p.offset, "resumed replication (partial resync)");
                    self.node.with_state(|st| {
                        st.in_sync = true;
                        st.position.replid = p.replid.clone();
                    });
                    Some(p.offset)
                }
                Some(Msg::FullSyncBegin(_)) => {
                    self.node.with_state(|st| {
                        st.in_sync = false;
                        st.full_syncing = true;
                    });
                    full = Some(Vec::new());
                    scripts.clear();
                    None
                }
                Some(Msg::FullSyncScripts(s)) => {
                    if full.is_none() {
                        return Err(FollowError::Protocol("scripts outside a full sync".into()));
                    }
                    scripts = s.bodies;
                    None
                }
                Some(Msg::FullSyncChunk(chunk)) => {
                    let buf = full.as_mut().ok_or_else(|| FollowError::Protocol("chunk outside a full sync".into()))?;
                    for e in chunk.entries {
                        let value = Value::decode(&e.value).map_err(|e| FollowError::Protocol(e.to_string()))?;
                        let db = e.db as usize;
                        if !crate::databases::Databases::valid(db) {
                            return Err(FollowError::Protocol(format!(
                                "a key of database {db}, which this node lacks"
                            )));
                        }
                        buf.push((db, Bytes::copy_from_slice(&e.key), Entry::with_expiry(value, e.expires_at_ms)));
                    }
                    None
                }
                Some(Msg::FullSyncEnd(p)) => {
                    let entries = full.take().ok_or_else(|| FollowError::Protocol("end outside a full sync".into()))?;
                    let n = entries.len();
                    let node = self.node.clone();
                    let position = Position { replid: p.replid, offset: p.offset };
                    let scripts = std::mem::take(&mut scripts);
                    tokio::task::spawn_blocking(move || {
                        let installed = node.install_full_sync(entries, position, Some(scripts));
                        // The received image and the keyspace it replaced are freed now.
                        ferrocache_allocator::release_free_memory();
                        installed
                    })
                    .await
                    .map_err(|e| FollowError::Protocol(e.to_string()))??;
                    tracing::info!(node = %self.node.id, keys = n, offset = p.offset, "full sync done");
                    self.node.with_state(|st| {
                        st.in_sync = true;
                        st.full_syncing = false;
                    });
                    Some(p.offset)
                }
                Some(Msg::Effects(e)) => {
                    self.apply(e.effects.into_iter().map(|x| x.args).collect(), None, e.offset).await?;
                    Some(e.offset)
                }
                Some(Msg::Records(r)) => {
                    let (effects, records) = records_effects(r.records, r.skip, self.node.offset())?;
                    self.apply(effects, records, r.offset).await?;
                    Some(r.offset)
                }
                None => None,
            };
            if let Some(offset) = ack {
                // A full channel only means older acks are still queued; the next one covers this.
                let _ = req_tx.try_send(pb::SyncRequest { kind: Some(Req::Ack(offset)) });
            }
        }
    }

    /// Applies the effects of one message, which end at the primary's `offset` (`records`:
    /// the same effects as the primary's log records, logged as they came).
    async fn apply(
        &self,
        mut effects: Vec<Effect>,
        mut records: Option<Vec<(u64, Bytes)>>,
        offset: u64,
    ) -> Result<(), FollowError> {
        if effects.is_empty() {
            return Ok(());
        }
        let at = self.node.offset();
        if at + effects.len() as u64 != offset {
            return Err(FollowError::Protocol(format!(
                "offset gap: at {at} with {} effects, primary says {offset}",
                effects.len()
            )));
        }
        // A read-only script may hold this replica's lock: wait for it here, not on a
        // runtime worker.
        loop {
            match self.node.try_apply_effects(&mut effects, &mut records, offset) {
                Some(applied) => return Ok(applied?),
                None => self.node.busy.wait_idle(std::time::Duration::from_secs(1)).await,
            }
        }
    }
}

/// Records with their effect counts, as a replica logs them.
type Counted = Vec<(u64, Bytes)>;

/// The effects of a `records` message for a replica at offset `at`: each record decoded
/// (checksum included), the first `skip` effects left out, and the records checked to
/// follow on from `at` and from each other. With nothing skipped the records come back too,
/// with their counts: the replica logs them as they are (its offsets are the primary's).
fn records_effects(records: Vec<Bytes>, skip: u32, at: u64) -> Result<(Vec<Effect>, Option<Counted>), FollowError> {
    let mut effects = Vec::new();
    let mut counted = (skip == 0).then(|| Vec::with_capacity(records.len()));
    let mut next = at;
    for (i, record) in records.into_iter().enumerate() {
        let (before, mut decoded) = crate::storage::log::decode_effects(&record)
            .ok_or_else(|| FollowError::Protocol("a replication record does not decode".into()))?;
        let skip = if i == 0 { u64::from(skip) } else { 0 };
        if skip > decoded.len() as u64 || before + skip != next {
            return Err(FollowError::Protocol(format!(
                "offset gap: at {next}, a record of {} effects after {before}, skipping {skip}",
                decoded.len()
            )));
        }
        next = before + decoded.len() as u64;
        if let Some(counted) = counted.as_mut() {
            counted.push((decoded.len() as u64, record));
        }
        if effects.is_empty() {
            effects = if skip == 0 { decoded } else { decoded.split_off(skip as usize) };
        } else {
            effects.append(&mut decoded);
        }
    }
    Ok((effects, counted))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::log::effects_record;

    fn eff(n: u8) -> Effect {
        vec![Bytes::from(vec![n; 3])]
    }

    fn effects_of(records: &[&Bytes], skip: u32, at: u64) -> Result<Vec<Effect>, FollowError> {
        records_effects(records.iter().map(|r| (*r).clone()).collect(), skip, at).map(|(effects, _)| effects)
    }

    #[test]
    fn records_are_decoded_skipped_and_checked_for_gaps() {
        let (a, b) = (effects_record(4, &[eff(5), eff(6), eff(7)]), effects_record(7, &[eff(8)]));
        let (whole, counted) = records_effects(vec![a.clone(), b.clone()], 0, 4).unwrap();
        assert_eq!(whole, vec![eff(5), eff(6), eff(7), eff(8)]);
        assert_eq!(counted, Some(vec![(3, a.clone()), (1, b.clone())]), "logged as they came");
        // A replica at 6 resumes inside the first record: its effects are logged anew.
        let (resumed, counted) = records_effects(vec![a.clone(), b.clone()], 2, 6).unwrap();
        assert_eq!((resumed, counted), (vec![eff(7), eff(8)], None));
        // Records that do not follow on from the replica's offset, or from each other.
        assert!(effects_of(&[&a, &b], 0, 5).is_err());
        assert!(effects_of(&[&b, &a], 0, 7).is_err());
        assert!(effects_of(&[&a], 4, 8).is_err(), "skips past the record");
        // A damaged record is refused, not applied.
        let mut bad = a.to_vec();
        bad[12] ^= 1;
        assert!(effects_of(&[&Bytes::from(bad)], 0, 4).is_err());
    }
}
