//! Keeps the routing table current: a `WatchTopology` stream from any coordinator,
//! reopened on another one when it breaks. Every update also reconciles the endpoint
//! listeners.

use std::sync::Arc;
use std::time::Duration;

use ferrocache_proto::internal::v1 as pb;
use pb::cluster_client::ClusterClient;
use tokio_util::sync::CancellationToken;

use crate::endpoints::Endpoints;
use crate::router::{Router, Table};
use crate::Shared;

pub struct TopologyWatcher {
    pub coordinators: Vec<String>,
    pub router: Arc<Router>,
    pub endpoints: Arc<Endpoints>,
    /// Its clients are told when their group's idle timeout changes (idle connections
    /// have no timer to look again with).
    pub shared: Arc<Shared>,
}

impl TopologyWatcher {
    pub async fn run(self, cancel: CancellationToken) {
        let mut i = 0usize;
        while !cancel.is_cancelled() {
            let address = &self.coordinators[i % self.coordinators.len()];
            i += 1;
            tokio::select! {
                _ = cancel.cancelled() => return,
                r = self.watch(address) => {
                    if let Err(e) = r {
                        tracing::debug!(coordinator = %address, "topology watch ended: {e}");
                    }
                }
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
        }
    }

    async fn watch(&self, address: &str) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}"))?
            .connect_timeout(Duration::from_secs(1))
            .connect()
            .await?;
        let mut client =
            ClusterClient::new(ferrocache_common::credentials::channel(channel)).max_decoding_message_size(64 << 20);
        let mut stream = client.watch_topology(pb::WatchTopologyRequest {}).await?.into_inner();
        loop {
            // Coordinators resend the topology at least every few seconds; silence means trouble.
            let next = tokio::time::timeout(Duration::from_secs(10), stream.message()).await??;
            let Some(topology) = next else { return Ok(()) };
            let table = Table::from_proto_after(topology, Some(&self.router.table()));
            let old = self.router.table();
            if table.version >= old.version {
                self.endpoints.reconcile(&table).await;
                let idle_timeout = |t: &Table, g: &str| {
                    t.groups.get(g).map(|g| ferrocache_common::parameters::value(&g.parameters, "timeout").to_string())
                };
                let changed: Vec<String> =
                    table.groups.keys().filter(|g| idle_timeout(&old, g) != idle_timeout(&table, g)).cloned().collect();
                self.router.set_table(table);
                for group in changed {
                    self.shared.clients.nudge_group(&group);
                }
            }
        }
    }
}
