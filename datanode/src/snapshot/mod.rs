//! Snapshots on a datanode: taking them when the coordinators ask (from the node's
//! in-memory keyspace, copied under its lock and written off the async threads), keeping only
//! the files the coordinators still list, serving them to other datanodes, and restoring a new
//! primary from one.

pub mod file;

use std::collections::{HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ferrocache_proto::internal::v1 as pb;
use parking_lot::Mutex;

use crate::node::Node;

/// Reports kept for the heartbeat (the coordinators need each only once).
const MAX_REPORTS: usize = 64;
const FETCH_MESSAGE_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Snapshots {
    pub dir: PathBuf,
    in_progress: Mutex<HashSet<String>>,
    reports: Mutex<VecDeque<pb::SnapshotReport>>,
}

impl Snapshots {
    pub fn new(dir: PathBuf) -> Snapshots {
        Snapshots { dir, in_progress: Mutex::new(HashSet::new()), reports: Mutex::new(VecDeque::new()) }
    }

    fn report(&self, r: pb::SnapshotReport) {
        let mut reports = self.reports.lock();
        reports.retain(|old| old.snapshot_name != r.snapshot_name);
        reports.push_back(r);
        while reports.len() > MAX_REPORTS {
            reports.pop_front();
        }
    }

    pub fn reports(&self) -> Vec<pb::SnapshotReport> {
        self.reports.lock().iter().cloned().collect()
    }

    fn reported(&self, name: &str) -> bool {
        self.reports.lock().iter().any(|r| r.snapshot_name == name)
    }

    /// Starts snapshot `name` of `node` unless it is under way or done already.
    pub fn take(self: &Arc<Self>, name: &str, node: Option<Arc<Node>>) {
        if self.reported(name) || !self.in_progress.lock().insert(name.to_string()) {
            return;
        }
        let this = self.clone();
        let name = name.to_string();
        tokio::task::spawn_blocking(move || {
            let result = match &node {
                None => Err("the node is not hosted on this datanode".to_string()),
                Some(node) => {
                    // A consistent copy taken under the node's lock; on a replica this holds
                    // up only the replication stream, never the primary's writes.
                    let (_, entries, _) = node.snapshot();
                    file::write(&this.dir, &name, &entries).map_err(|e| e.to_string())
                }
            };
            let report = match result {
                Ok((keys, bytes)) => {
                    tracing::info!(snapshot = %name, keys, bytes, "snapshot written");
                    pb::SnapshotReport {
                        snapshot_name: name.clone(),
                        ok: true,
                        key_count: keys,
                        bytes,
                        error: String::new(),
                    }
                }
                Err(error) => {
                    tracing::error!(snapshot = %name, "snapshot failed: {error}");
                    pb::SnapshotReport { snapshot_name: name.clone(), ok: false, key_count: 0, bytes: 0, error }
                }
            };
            this.report(report);
            this.in_progress.lock().remove(&name);
        });
    }

    /// Deletes snapshot files the coordinators no longer list (never one being written).
    pub fn keep_only(&self, keep: &[String]) {
        let busy = self.in_progress.lock().clone();
        for name in file::list(&self.dir) {
            if keep.contains(&name) || busy.contains(&name) {
                continue;
            }
            if let Ok(path) = file::path(&self.dir, &name) {
                match std::fs::remove_file(&path) {
                    Ok(()) => tracing::info!(snapshot = %name, "snapshot file deleted"),
                    Err(e) => tracing::warn!(snapshot = %name, "cannot delete snapshot file: {e}"),
                }
            }
        }
    }

    /// Reads a snapshot file this datanode holds.
    pub fn read_local(&self, name: &str) -> Result<Vec<u8>, file::SnapshotError> {
        Ok(std::fs::read(file::path(&self.dir, name)?)?)
    }
}

/// Fetches snapshot `name` from the datanode at `address` (this one included).
pub async fn fetch(address: &str, name: &str) -> Result<Vec<u8>, String> {
    let channel = ferrocache_common::credentials::connect(format!("http://{address}"))
        .await
        .map_err(|e| format!("cannot reach datanode {address}: {e}"))?;
    let mut client = pb::replication_client::ReplicationClient::new(channel).max_decoding_message_size(64 << 20);
    let request = pb::FetchSnapshotRequest { snapshot_name: name.to_string() };
    let mut stream = client.fetch_snapshot(request).await.map_err(|s| s.message().to_string())?.into_inner();
    let mut data = Vec::new();
    loop {
        match tokio::time::timeout(FETCH_MESSAGE_TIMEOUT, stream.message()).await {
            Ok(Ok(Some(chunk))) => data.extend_from_slice(&chunk.data),
            Ok(Ok(None)) => return Ok(data),
            Ok(Err(s)) => return Err(s.message().to_string()),
            Err(_) => return Err(format!("datanode {address} stopped sending snapshot {name}")),
        }
    }
}
