//! The gateway's registry of client connections, for CLIENT LIST / INFO and INFO clients.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use parking_lot::Mutex;

/// Where a connection came in: what CLIENT LIST, KILL and UNBLOCK of other clients may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// The replication group of the endpoint: clients of other groups sharing this gateway
    /// are never seen (a group's users must not list or kill another group's clients).
    pub group: Arc<str>,
    /// On a cluster node port, the port: like a Redis Cluster node, it sees the clients
    /// connected to it alone.
    pub node_port: Option<u16>,
}

impl Scope {
    /// Whether a client of this scope sees one of `other`.
    pub fn sees(&self, other: &Scope) -> bool {
        self.group == other.group && (self.node_port.is_none() || self.node_port == other.node_port)
    }
}

#[derive(Debug, Clone)]
pub struct ClientInfo {
    pub id: u64,
    pub addr: SocketAddr,
    pub laddr: String,
    pub scope: Scope,
    /// The connection's socket descriptor.
    pub fd: i32,
    pub name: String,
    pub lib_name: String,
    pub lib_ver: String,
    pub created: Instant,
    pub last_active: Instant,
    /// The last command run, `container|subcommand` for subcommands ("" before any).
    pub last_cmd: &'static str,
    /// Bytes of the arguments of the command in flight (0 between commands).
    pub argv_mem: usize,
    pub proto: u8,
    /// The ACL user the connection is logged in as (empty before AUTH when one is needed).
    pub user: String,
    /// What the connection is doing, as of its last command.
    pub state: ClientState,
    /// The memory it held at its last report, as maxmemory-clients counts it (tot-mem's
    /// parts as of then).
    pub mem: u64,
    /// How other connections act on this one (CLIENT KILL, CLIENT UNBLOCK).
    pub control: Arc<Control>,
}

/// The CLIENT LIST fields a connection updates as it goes.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientState {
    pub sub: usize,
    pub psub: usize,
    pub ssub: usize,
    /// Commands queued in MULTI (None: not in MULTI), and their arguments' bytes.
    pub multi: Option<usize>,
    pub multi_mem: usize,
    /// A blocking command (BLPOP, XREAD BLOCK, WAIT, ...) is waiting.
    pub blocked: bool,
    pub monitor: bool,
    /// Bytes read and not yet parsed, and the buffer's spare room.
    pub qbuf: usize,
    pub qbuf_free: usize,
    /// Replies waiting for their turn, and bytes of output not yet written.
    pub oll: usize,
    pub omem: usize,
    /// The output buffer's size.
    pub rbs: usize,
    pub no_evict: bool,
    pub no_touch: bool,
    /// The selected database.
    pub db: usize,
    /// CLIENT TRACKING is on (Some), in BCAST mode (true).
    pub tracking: Option<bool>,
}

/// Requests other connections make of this one.
#[derive(Debug, Default)]
pub struct Control {
    /// CLIENT KILL, or its endpoint closing: the connection closes.
    pub kill: tokio_util::sync::CancellationToken,
    /// CLIENT UNBLOCK: Some(true) answers the blocked command an error, Some(false) as if
    /// it timed out.
    pub unblock: Mutex<Option<bool>>,
    /// Look again: CLIENT UNBLOCK set `unblock`, or a setting the connection applies itself
    /// changed (the group's idle `timeout`, which an idle connection has no timer for).
    pub attention: tokio::sync::Notify,
}

impl ClientInfo {
    /// One line of CLIENT LIST, every field of Redis 7.2's in its order (clients such as
    /// redis-py read argv-mem, obl and tot-mem as numbers). The output buffer is one growing
    /// buffer, not Redis's fixed one plus a reply list: obl and omem both show what is
    /// waiting in it, rbs and rbp its size. `current`: the command being answered when the
    /// line is the asking client's own, which Redis still counts in its query buffer.
    pub fn line(&self, current: Option<&[Bytes]>) -> String {
        let st = &self.state;
        let mut flags = String::new();
        if st.monitor {
            flags.push('O');
        }
        if st.sub + st.psub + st.ssub > 0 {
            flags.push('P');
        }
        if st.multi.is_some() {
            flags.push('x');
        }
        if st.blocked {
            flags.push('b');
        }
        if st.no_evict {
            flags.push('e');
        }
        if st.no_touch {
            flags.push('T');
        }
        if let Some(bcast) = st.tracking {
            flags.push('t');
            if bcast {
                flags.push('B');
            }
        }
        if flags.is_empty() {
            flags.push('N');
        }
        let qbuf = st.qbuf + current.map_or(0, wire_len);
        format!(
            "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={flags} db={} sub={} psub={} ssub={} multi={} qbuf={} qbuf-free={} argv-mem={} multi-mem={} rbs={} rbp={} obl={} oll={} omem={} tot-mem={} events={} cmd={} user={} redir=-1 resp={} lib-name={} lib-ver={}",
            self.id,
            self.addr,
            self.laddr,
            self.fd,
            self.name,
            self.created.elapsed().as_secs(),
            self.last_active.elapsed().as_secs(),
            st.db,
            st.sub,
            st.psub,
            st.ssub,
            st.multi.map_or(-1, |n| n as i64),
            qbuf,
            st.qbuf_free,
            self.argv_mem,
            st.multi_mem,
            st.rbs,
            st.rbs,
            st.omem,
            st.oll,
            st.omem,
            qbuf + st.qbuf_free + self.argv_mem + st.multi_mem + st.rbs,
            if st.omem > 0 { "rw" } else { "r" },
            if self.last_cmd.is_empty() { "NULL" } else { self.last_cmd },
            if self.user.is_empty() { "default" } else { &self.user },
            self.proto,
            self.lib_name,
            self.lib_ver,
        )
    }
}

/// A command's size as a RESP multibulk (`*<n>\r\n` then `$<len>\r\n<arg>\r\n` each).
fn wire_len(args: &[Bytes]) -> usize {
    let header = |n: usize| 1 + n.to_string().len() + 2;
    header(args.len()) + args.iter().map(|a| header(a.len()) + a.len() + 2).sum::<usize>()
}

/// Every client of the gateway; the counters are the gateway's (its metrics page: never
/// reset). INFO's are each group's ([`crate::traffic::Traffic`]).
#[derive(Default)]
pub struct Clients {
    next_id: AtomicU64,
    all: Mutex<BTreeMap<u64, Arc<Mutex<ClientInfo>>>>,
    pub total_connections: AtomicU64,
    pub total_commands: AtomicU64,
    pub rejected_connections: AtomicU64,
}

impl Clients {
    /// `closed`: cancelled when the client's endpoint closes (the client is killed with it).
    pub fn register(
        &self,
        addr: SocketAddr,
        laddr: String,
        fd: i32,
        scope: Scope,
        closed: &tokio_util::sync::CancellationToken,
    ) -> Arc<Mutex<ClientInfo>> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        self.total_connections.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let info = Arc::new(Mutex::new(ClientInfo {
            id,
            addr,
            laddr,
            scope,
            fd,
            name: String::new(),
            lib_name: String::new(),
            lib_ver: String::new(),
            created: now,
            last_active: now,
            last_cmd: "",
            argv_mem: 0,
            proto: 2,
            user: String::new(),
            state: ClientState::default(),
            mem: 0,
            // One token to watch per command, not the endpoint's and its own.
            control: Arc::new(Control { kill: closed.child_token(), ..Control::default() }),
        }));
        self.all.lock().insert(id, info.clone());
        info
    }

    pub fn unregister(&self, id: u64) {
        self.all.lock().remove(&id);
    }

    /// Every client of `group` looks at its settings again (CONFIG SET timeout reaches
    /// connections that were idle already, as Redis's client cron does).
    pub fn nudge_group(&self, group: &str) {
        for c in self.all.lock().values() {
            let c = c.lock();
            if &*c.scope.group == group {
                c.control.attention.notify_one();
            }
        }
    }

    /// Every client of the gateway (its metrics).
    pub fn total(&self) -> usize {
        self.all.lock().len()
    }

    /// The clients a client of `scope` sees (INFO's connected_clients).
    pub fn count(&self, scope: &Scope) -> usize {
        self.all.lock().values().filter(|c| scope.sees(&c.lock().scope)).count()
    }

    /// The registry entry of client `id`, if a client of `scope` sees it.
    pub fn get(&self, id: u64, scope: &Scope) -> Option<Arc<Mutex<ClientInfo>>> {
        self.all.lock().get(&id).filter(|c| scope.sees(&c.lock().scope)).cloned()
    }

    /// The ids of the clients a client of `scope` sees.
    pub fn ids(&self, scope: &Scope) -> std::collections::HashSet<u64> {
        self.all.lock().iter().filter(|(_, c)| scope.sees(&c.lock().scope)).map(|(id, _)| *id).collect()
    }

    /// Looks at every client of the gateway, by id.
    pub fn for_each(&self, mut f: impl FnMut(&ClientInfo)) {
        for c in self.all.lock().values() {
            f(&c.lock());
        }
    }

    /// The clients a client of `scope` sees, by id.
    pub fn list(&self, scope: &Scope) -> Vec<ClientInfo> {
        self.all.lock().values().map(|c| c.lock().clone()).filter(|c| scope.sees(&c.scope)).collect()
    }
}
