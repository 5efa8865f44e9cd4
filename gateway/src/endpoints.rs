//! The Redis listeners: for each replication group, its primary endpoint and its reader
//! endpoint (and, in cluster mode, a port per member that cluster clients see as a node),
//! opened and closed as groups come and go.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::connection;
use crate::router::{EndpointKind, Table};
use crate::tls::{self, Accepted};
use crate::Shared;

/// What a client connection is attached to.
#[derive(Debug)]
pub struct Endpoint {
    pub group_id: String,
    pub kind: EndpointKind,
    pub port: u16,
    /// The group is cluster mode enabled (fixed at creation; an endpoint of a group
    /// recreated otherwise is reopened), so commands need not look it up.
    pub cluster_enabled: bool,
}

pub struct Endpoints {
    shared: Arc<Shared>,
    open: Mutex<HashMap<u16, (String, bool, CancellationToken)>>,
    /// maxclients per group, as each Redis server has its own: one tenant of a shared
    /// gateway cannot take the connections of another.
    group_limits: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// What the process's open-file limit allows over all groups.
    process_limit: Arc<Semaphore>,
}

/// Files kept for what is not a client: listeners, datanode and coordinator links, logs.
const RESERVED_FILES: usize = 256;

/// Client connections the process can hold: its open-file limit less [`RESERVED_FILES`]
/// (at least `maxclients`, so one group is never capped below its setting by this guard).
fn process_capacity(maxclients: usize) -> usize {
    let soft = std::fs::read_to_string("/proc/self/limits").ok().and_then(|limits| {
        let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
        line.split_whitespace().nth(3)?.parse::<usize>().ok()
    });
    soft.map_or(maxclients, |n| n.saturating_sub(RESERVED_FILES).max(maxclients)).min(Semaphore::MAX_PERMITS)
}

impl Endpoints {
    pub fn new(shared: Arc<Shared>) -> Endpoints {
        let process_limit = Arc::new(Semaphore::new(process_capacity(shared.config.maxclients)));
        Endpoints { shared, open: Mutex::new(HashMap::new()), group_limits: Mutex::new(HashMap::new()), process_limit }
    }

    /// The group's connection limit, made on first use.
    fn group_limit(&self, group: &str) -> Arc<Semaphore> {
        let mut limits = self.group_limits.lock();
        limits
            .entry(group.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(self.shared.config.maxclients.min(Semaphore::MAX_PERMITS))))
            .clone()
    }

    pub async fn reconcile(&self, table: &Table) {
        let mut wanted = HashMap::new();
        for g in table.groups.values() {
            if g.primary_port != 0 {
                wanted.insert(g.primary_port, (g.id.clone(), EndpointKind::Primary, g.cluster_enabled));
            }
            if g.reader_port != 0 {
                wanted.insert(g.reader_port, (g.id.clone(), EndpointKind::Reader, g.cluster_enabled));
            }
            if g.cluster_enabled {
                for m in g.shards.iter().flat_map(|s| s.members()).filter(|m| m.port != 0) {
                    wanted.insert(m.port, (g.id.clone(), EndpointKind::Node, true));
                }
            }
        }
        // A deleted group's limit goes with it (its open connections keep their permits).
        self.group_limits.lock().retain(|group, _| table.groups.contains_key(group));
        let to_open: Vec<(u16, String, EndpointKind, bool)> = {
            let mut open = self.open.lock();
            open.retain(|port, (group, cluster, token)| {
                let keep = wanted.get(port).is_some_and(|(g, _, c)| g == group && c == cluster);
                if !keep {
                    tracing::info!(port, %group, "closing endpoint");
                    token.cancel();
                }
                keep
            });
            wanted
                .iter()
                .filter(|(port, _)| !open.contains_key(port))
                .map(|(port, (g, k, c))| (*port, g.clone(), *k, *c))
                .collect()
        };
        for (port, group, kind, cluster_enabled) in to_open {
            let addr = format!("{}:{port}", self.shared.config.bind);
            match TcpListener::bind(&addr).await {
                Ok(listener) => {
                    tracing::info!(%addr, %group, ?kind, "endpoint open");
                    let token = self.shared.cancel.child_token();
                    self.open.lock().insert(port, (group.clone(), cluster_enabled, token.clone()));
                    let endpoint = Arc::new(Endpoint { group_id: group, kind, port, cluster_enabled });
                    let limits =
                        Limits { group: self.group_limit(&endpoint.group_id), process: self.process_limit.clone() };
                    tokio::spawn(accept_loop(listener, endpoint, self.shared.clone(), limits, token));
                }
                Err(e) => tracing::error!(%addr, %group, "cannot open endpoint: {e}"),
            }
        }
    }
}

/// The connection limits an endpoint's clients count against.
struct Limits {
    group: Arc<Semaphore>,
    process: Arc<Semaphore>,
}

impl Limits {
    /// Both permits, or None past either limit.
    fn admit(&self) -> Option<(OwnedSemaphorePermit, OwnedSemaphorePermit)> {
        let group = self.group.clone().try_acquire_owned().ok()?;
        let process = self.process.clone().try_acquire_owned().ok()?;
        Some((group, process))
    }
}

async fn accept_loop(
    listener: TcpListener,
    endpoint: Arc<Endpoint>,
    shared: Arc<Shared>,
    limits: Limits,
    cancel: CancellationToken,
) {
    loop {
        let (socket, peer) = tokio::select! {
            _ = cancel.cancelled() => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = socket.set_nodelay(true);
        let permit = limits.admit();
        let (endpoint, shared, cancel) = (endpoint.clone(), shared.clone(), cancel.clone());
        tokio::spawn(async move {
            let mode = shared.router.table().groups.get(&endpoint.group_id).map(|g| g.transit_encryption);
            let accepted = tls::accept(socket, mode.unwrap_or_default(), shared.tls.as_ref()).await;
            match (permit, accepted) {
                (_, Accepted::Refused(why)) => tracing::debug!(%peer, "connection refused: {why}"),
                (Some(_permit), Accepted::Plain(s)) => connection::serve(s, peer, endpoint, shared, cancel).await,
                (Some(_permit), Accepted::Tls(s)) => connection::serve_tls(*s, peer, endpoint, shared, cancel).await,
                (None, Accepted::Plain(s)) => refuse(s, &endpoint, &shared).await,
                (None, Accepted::Tls(s)) => refuse(*s, &endpoint, &shared).await,
            }
        });
    }
}

/// A connection past maxclients: counted (INFO's rejected_connections, the metrics) and told.
async fn refuse<S: tokio::io::AsyncWrite + Unpin>(socket: S, endpoint: &Endpoint, shared: &Shared) {
    use std::sync::atomic::Ordering;
    shared.clients.rejected_connections.fetch_add(1, Ordering::Relaxed);
    shared.stats.group(&endpoint.group_id).traffic.rejected.fetch_add(1, Ordering::Relaxed);
    connection::refuse(socket, "ERR max number of clients reached").await;
}
