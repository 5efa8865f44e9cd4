//! What the leader has heard from datanodes: when each last reported and the state of each
//! node it hosts. Kept in memory on the leader only; a new leader learns it again from the
//! next heartbeats (within one interval) and waits a full timeout before calling anyone
//! dead.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ferrocache_proto::internal::v1 as pb;
use parking_lot::Mutex;

#[derive(Debug, Clone)]
pub struct Seen {
    pub at: Instant,
    pub nodes: HashMap<String, pb::NodeStatus>,
    pub incarnation: String,
}

pub struct Liveness {
    started: Instant,
    timeout: Duration,
    seen: Mutex<HashMap<String, Seen>>,
    /// Gateways: when each last reported.
    gateways: Mutex<HashMap<String, Instant>>,
}

impl Liveness {
    pub fn new(timeout: Duration) -> Liveness {
        Liveness {
            started: Instant::now(),
            timeout,
            seen: Mutex::new(HashMap::new()),
            gateways: Mutex::new(HashMap::new()),
        }
    }

    /// Records a report; true when it comes from a new process of a datanode this leader
    /// heard from before (it restarted).
    pub fn record(&self, datanode_id: &str, nodes: Vec<pb::NodeStatus>, incarnation: &str) -> bool {
        let nodes = nodes.into_iter().map(|n| (n.node_id.clone(), n)).collect();
        let seen = Seen { at: Instant::now(), nodes, incarnation: incarnation.to_string() };
        let previous = self.seen.lock().insert(datanode_id.to_string(), seen);
        previous.is_some_and(|p| !p.incarnation.is_empty() && p.incarnation != incarnation)
    }

    pub fn record_gateway(&self, gateway_id: &str) {
        self.gateways.lock().insert(gateway_id.to_string(), Instant::now());
    }

    /// A gateway reported within twice the timeout (gateways report every second).
    pub fn gateway_live(&self, gateway_id: &str) -> bool {
        self.gateways.lock().get(gateway_id).is_some_and(|at| at.elapsed() < self.timeout * 2)
    }

    /// Reported within the timeout.
    pub fn is_live(&self, datanode_id: &str) -> bool {
        self.seen.lock().get(datanode_id).is_some_and(|s| s.at.elapsed() < self.timeout)
    }

    /// How long since the datanode last reported (since this leader took office, if never).
    pub fn silent_for(&self, datanode_id: &str) -> Duration {
        self.seen.lock().get(datanode_id).map_or(self.started.elapsed(), |s| s.at.elapsed())
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Long enough in office to judge: a datanode not heard from since is really silent.
    pub fn can_judge(&self) -> bool {
        self.started.elapsed() >= self.timeout
    }

    pub fn live_datanodes(&self) -> Vec<String> {
        self.seen.lock().iter().filter(|(_, s)| s.at.elapsed() < self.timeout).map(|(id, _)| id.clone()).collect()
    }

    pub fn node_status(&self, datanode_id: &str, node_id: &str) -> Option<pb::NodeStatus> {
        let seen = self.seen.lock();
        let s = seen.get(datanode_id).filter(|s| s.at.elapsed() < self.timeout)?;
        s.nodes.get(node_id).cloned()
    }
}
