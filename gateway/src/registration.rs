//! Reports this gateway to the coordinators every second, so the topology lists it and
//! cluster clients are told about every live gateway (CLUSTER SLOTS spreads node groups over
//! them). A gateway that stops reporting is listed offline by the leader.

use std::time::Duration;

use ferrocache_proto::internal::v1 as pb;
use pb::cluster_client::ClusterClient;
use tokio_util::sync::CancellationToken;

const PERIOD: Duration = Duration::from_secs(1);
const CALL_TIMEOUT: Duration = Duration::from_secs(1);

pub async fn run(coordinators: Vec<String>, gateway_id: String, announce_host: String, cancel: CancellationToken) {
    let mut clients: Vec<Option<ClusterClient<ferrocache_common::credentials::Channel>>> =
        coordinators.iter().map(|_| None).collect();
    // Start with the coordinator that answered last (the leader, usually).
    let mut first = 0;
    loop {
        let request =
            pb::GatewayHeartbeatRequest { gateway_id: gateway_id.clone(), announce_host: announce_host.clone() };
        for k in 0..coordinators.len() {
            let i = (first + k) % coordinators.len();
            if clients[i].is_none() {
                let uri = format!("http://{}", coordinators[i]);
                if let Ok(Ok(ch)) =
                    tokio::time::timeout(CALL_TIMEOUT, ferrocache_common::credentials::connect(uri)).await
                {
                    clients[i] = Some(ClusterClient::new(ch));
                }
            }
            let Some(client) = clients[i].as_mut() else { continue };
            match tokio::time::timeout(CALL_TIMEOUT, client.gateway_heartbeat(request.clone())).await {
                Ok(Ok(_)) => {
                    first = i;
                    break;
                }
                // A follower (not the leader): try the next one.
                Ok(Err(s)) if s.code() == tonic::Code::Unavailable => {}
                _ => clients[i] = None,
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(PERIOD) => {}
        }
    }
}
