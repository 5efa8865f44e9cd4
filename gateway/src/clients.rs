//! The gateway's registry of client connections, for CLIENT LIST / INFO and INFO clients.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;

#[derive(Debug, Clone)]
pub struct ClientInfo {
    pub id: u64,
    pub addr: SocketAddr,
    pub laddr: String,
    pub name: String,
    pub lib_name: String,
    pub lib_ver: String,
    pub created: Instant,
    pub last_active: Instant,
    pub last_cmd: String,
    pub proto: u8,
    /// The ACL user the connection is logged in as (empty before AUTH when one is needed).
    pub user: String,
}

impl ClientInfo {
    /// One line of CLIENT LIST, fields in Redis's order (buffers this gateway does not have
    /// are reported as 0).
    pub fn line(&self) -> String {
        format!(
            "id={} addr={} laddr={} fd=0 name={} age={} idle={} flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 watch=0 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd={} user={} redir=-1 resp={} lib-name={} lib-ver={}",
            self.id,
            self.addr,
            self.laddr,
            self.name,
            self.created.elapsed().as_secs(),
            self.last_active.elapsed().as_secs(),
            if self.last_cmd.is_empty() { "NULL" } else { &self.last_cmd },
            if self.user.is_empty() { "default" } else { &self.user },
            self.proto,
            self.lib_name,
            self.lib_ver,
        )
    }
}

#[derive(Default)]
pub struct Clients {
    next_id: AtomicU64,
    all: Mutex<BTreeMap<u64, Arc<Mutex<ClientInfo>>>>,
    pub total_connections: AtomicU64,
    pub total_commands: AtomicU64,
    pub rejected_connections: AtomicU64,
}

impl Clients {
    /// CONFIG RESETSTAT: the counters INFO stats reports.
    pub fn reset_stats(&self) {
        self.total_connections.store(0, Ordering::Relaxed);
        self.total_commands.store(0, Ordering::Relaxed);
        self.rejected_connections.store(0, Ordering::Relaxed);
    }

    pub fn register(&self, addr: SocketAddr, laddr: String) -> Arc<Mutex<ClientInfo>> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        self.total_connections.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let info = Arc::new(Mutex::new(ClientInfo {
            id,
            addr,
            laddr,
            name: String::new(),
            lib_name: String::new(),
            lib_ver: String::new(),
            created: now,
            last_active: now,
            last_cmd: String::new(),
            proto: 2,
            user: String::new(),
        }));
        self.all.lock().insert(id, info.clone());
        info
    }

    pub fn unregister(&self, id: u64) {
        self.all.lock().remove(&id);
    }

    pub fn count(&self) -> usize {
        self.all.lock().len()
    }

    pub fn list(&self) -> Vec<ClientInfo> {
        self.all.lock().values().map(|c| c.lock().clone()).collect()
    }
}
