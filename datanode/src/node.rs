//! One node: a member (primary or replica) of one node group, hosted by this datanode.
//!
//! All of a node's state sits behind one mutex held only for in-memory work, never across an
//! await or a disk write: a batch of commands is applied, its effects get offsets, enter the
//! backlog and are queued for the storage writer's log, all in one critical section, so the
//! keyspace, the replication stream and the disk agree on order. Disk writes, fsync,
//! replication and replies happen after it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferrocache_common::reply::errors;
use ferrocache_common::time::now_ms;
use ferrocache_common::Reply;
use parking_lot::Mutex;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::cmd::{self, Command, Ctx, WriteSet};
use crate::databases::{Databases, DbEntry};
use crate::durability::{self, Durability, Mode, WriteClock};
use crate::keyspace::WARM_AT_ONCE;
use crate::notify;
use crate::replication::backlog::{Backlog, Effect};
use crate::storage::compaction::{self, Capturable};
use crate::storage::files::NodeFiles;
use crate::storage::log::Record;
use crate::storage::writer::{BaseState, CompactionPolicy, LogItem, StoreWriter, WriterSetup};
use crate::storage::{Position, StoreError};
use crate::transaction::{Transaction, WatchVersions};

/// When writes reach the disk (Redis's `appendfsync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendFsync {
    Always,
    EverySec,
    No,
}

impl AppendFsync {
    pub fn parse(s: &str) -> AppendFsync {
        match s {
            "always" => AppendFsync::Always,
            "no" => AppendFsync::No,
            _ => AppendFsync::EverySec,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    Primary,
    /// Follows the node `primary_node_id` on the datanode at `primary_address`.
    Replica {
        primary_node_id: String,
        primary_address: String,
    },
}

pub struct NodeState {
    /// The databases (SELECT 0–15); cluster mode uses database 0 only.
    pub dbs: Databases,
    /// Lua scripts (EVAL, SCRIPT LOAD) and their VM.
    pub scripts: crate::script::Scripts,
    /// Keys changed since the storage writer last took them.
    pending: PendingLog,
    /// The segment whose base a compaction is capturing.
    compacting: Option<u64>,
    /// maxmemory, eviction policy and notifications, from the group's parameters.
    pub memory: crate::memory::MemoryPolicy,
    /// The group's parameters as last received (set ones only).
    pub parameters: std::collections::BTreeMap<String, String>,
    pub evict_pool: crate::memory::EvictionPool,
    pub role: Role,
    pub config_epoch: u64,
    pub position: Position,
    pub backlog: Backlog,
    /// A replica has streamed from this node since it became primary (see backlog_active).
    pub replicas_seen: bool,
    /// Replica: linked to its primary and past the initial sync.
    pub in_sync: bool,
    /// Sequence number of the last batch handed to the storage writer.
    pub store_seq: u64,
    /// Replica: a full sync is under way.
    pub full_syncing: bool,
    /// After a promotion: the previous primary's replication id and the last offset this
    /// node shares with it, so its other replicas can resume instead of full-syncing
    /// (Redis's replid2 / second_repl_offset).
    pub replid2: String,
    pub offset2: u64,
    /// A primary accepts writes only until this instant (its lease, renewed by heartbeats).
    pub lease_until: Option<std::time::Instant>,
    pub durability: Durability,
    /// Primary: a planned switch asked it to stop taking writes.
    pub writes_paused: bool,
    /// Primary: when its recent offsets were written (replica lag in time).
    pub write_clock: WriteClock,
    /// Write counters behind WATCH tokens.
    pub watch: WatchVersions,
    /// The hash slots this node's group owns: keyed commands for others are refused.
    pub slots: ferrocache_common::slot::SlotSet,
    /// Slots being copied to another node group: writes to them are refused meanwhile.
    pub frozen: ferrocache_common::slot::SlotSet,
    /// Slots being copied here from another node group (not owned yet: never purged).
    pub importing: ferrocache_common::slot::SlotSet,
    /// `slots` is every slot (cluster mode disabled): no per-command slot check needed.
    pub owns_all: bool,
    /// `frozen` is not empty (kept apart: asked for every command).
    pub any_frozen: bool,
    /// Keys of slots this node no longer owns are still here: a primary deletes them (and
    /// replicates the deletion) as soon as it may write.
    pub purge_pending: bool,
    pub stats: Stats,
    /// INFO commandstats of the commands scripts ran here, by statistics entry (the
    /// gateways count every other command themselves).
    pub script_calls: std::collections::BTreeMap<usize, crate::cmd::CallStats>,
}

/// INFO stats counters of one node.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    pub keyspace_hits: u64,
    pub keyspace_misses: u64,
    pub expired_keys: u64,
    pub evicted_keys: u64,
    /// Replicas served the whole keyspace, resumed from the backlog, and refused a resume.
    pub sync_full: u64,
    pub sync_partial_ok: u64,
    pub sync_partial_err: u64,
    /// The most `used_memory` seen after a write (INFO's used_memory_peak).
    pub used_memory_peak: usize,
}

impl NodeState {
    /// INFO's used_memory: the keyspaces (data and indexes) and the replication backlog.
    /// maxmemory is compared with it less the backlog (`mem_not_counted_for_evict`): a
    /// backlog that fills up to its size must not evict keys to make room for itself.
    pub fn used_memory(&self) -> usize {
        self.dbs.used_memory() + self.backlog.bytes()
    }

    /// Is the backlog kept? As in Redis: by replicas (they may be promoted, and the others
    /// then resume from them) and by primaries once a replica has streamed from them; a
    /// primary that never had one spends no memory on it.
    pub fn backlog_active(&self) -> bool {
        self.role != Role::Primary || self.replicas_seen
    }

    pub fn slot_checks(&self) -> bool {
        !self.owns_all || self.any_frozen
    }

    /// The context a client's command runs in on this node, with what scripts need. `oom`:
    /// over maxmemory when the command (or its transaction) started.
    fn client_ctx<'a>(
        &'a mut self,
        db: usize,
        out: &'a mut WriteSet,
        now: i64,
        writable: bool,
        max_string: usize,
        oom: bool,
    ) -> Ctx<'a> {
        let lfu = self.memory.lfu();
        let hll_sparse_max = self.memory.hll_sparse_max_bytes;
        let checks = self.slot_checks();
        let NodeState { dbs, scripts, slots, .. } = self;
        let (ks, others) = dbs.split(db);
        Ctx {
            ks,
            db,
            others,
            now,
            primary: writable,
            out,
            max_string,
            block: None,
            lfu,
            no_touch: false,
            woken: false,
            encodings: self.memory.encodings,
            hll_sparse_max,
            in_script: false,
            script: Some(crate::script::Env { scripts, oom, slots: checks.then_some(&*slots), monitor: false }),
        }
    }

    /// Whether this primary's lease still runs (a node never granted one has none).
    pub fn lease_live(&self) -> bool {
        self.lease_until.is_some_and(|u| u > std::time::Instant::now())
    }
}

pub struct Node {
    pub id: String,
    pub group_id: String,
    pub node_group_id: String,
    pub fsync: AppendFsync,
    pub max_string: usize,
    pub(crate) state: Arc<Mutex<NodeState>>,
    files: Arc<NodeFiles>,
    base: Arc<BaseState>,
    writer: StoreWriter,
    /// The latest replication offset; replication sources wait on it.
    offset_tx: watch::Sender<u64>,
    /// Acknowledged offsets per replica; WAIT waits on it.
    acks: Mutex<HashMap<String, Ack>>,
    acks_tx: watch::Sender<u64>,
    /// Cancels this node's background work (its follower loop) when it is removed or its
    /// role changes.
    pub cancel: Mutex<CancellationToken>,
    /// Blocked commands' wake-ups, by database and key, longest-waiting first.
    watchers: Mutex<HashMap<cmd::DbKey, Vec<Watcher>>>,
    block_seq: std::sync::atomic::AtomicU64,
    /// Pub/sub subscribers of the gateways listening here (used while primary).
    pub broker: crate::pubsub::Broker,
    /// The script running under the lock, if any (BUSY, SCRIPT KILL).
    pub busy: Arc<crate::script::busy::Busy>,
    /// Commands blocked on this node (BLPOP, XREAD BLOCK, ...): INFO's blocked_clients.
    pub blocked_clients: std::sync::atomic::AtomicUsize,
    /// Writes that grow memory are refused now (over maxmemory under noeviction), as of the
    /// last batch or parameter change: sent with every reply batch, so gateways refuse the
    /// commands clients queue in MULTI meanwhile without asking, as Redis does.
    out_of_memory: std::sync::atomic::AtomicBool,
}

/// A command of the batch that blocked: its index, what it waits for, its wake-up and its
/// place in its keys' queues.
pub struct Blocked {
    pub index: usize,
    pub block: cmd::Block,
    pub wake: Arc<tokio::sync::Notify>,
    pub seq: u64,
}

/// A blocked command waiting on a key.
struct Watcher {
    seq: u64,
    consumes: bool,
    wake: std::sync::Weak<tokio::sync::Notify>,
}

/// What the storage writer has yet to append, in commit order.
#[derive(Default)]
struct PendingLog {
    items: Vec<LogItem>,
    /// A commit in it waits for an fsync.
    fsync: bool,
}

/// The storage writer's view of a node: takes what is queued, under the node's lock.
fn pending_source(state: &Arc<Mutex<NodeState>>) -> crate::storage::writer::Source {
    let state = Arc::downgrade(state);
    Box::new(move || {
        let state = state.upgrade()?;
        let mut st = state.lock();
        if st.pending.items.is_empty() {
            return None;
        }
        let pending = std::mem::take(&mut st.pending);
        Some(crate::storage::writer::Pulled { seq: st.store_seq, items: pending.items, fsync: pending.fsync })
    })
}

/// How long a batch (or a transaction) computes on the runtime worker before the rest of it
/// goes off it ([`off_worker`]): a handoff costs a thread wake-up, so short batches stay.
const LONG_BATCH: Duration = Duration::from_millis(20);

/// Commands run between two looks at the clock against `LONG_BATCH`.
const DEADLINE_EVERY: usize = 8;

/// Runs a wait that may be long: on a runtime worker it is handed to a thread of its own
/// (`block_in_place`), so the worker's other tasks (heartbeats, the data streams) go on.
pub(crate) fn off_worker<T>(wait: impl FnOnce() -> T) -> T {
    let multi_thread = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if multi_thread {
        tokio::task::block_in_place(wait)
    } else {
        wait()
    }
}

/// [`crate::keyspace::Keyspace::warm`] with the first keys of the next commands of a batch
/// (`(db, args)`), those in the first one's database (a batch rarely spans more).
fn warm<'a>(dbs: &Databases, mut commands: impl Iterator<Item = (usize, &'a [Bytes])>) {
    let Some((db, first)) = commands.next() else { return };
    if !Databases::valid(db) {
        return;
    }
    let same_db = commands.filter(|(d, _)| *d == db).map(|(_, args)| args);
    dbs.db(db).warm(std::iter::once(first).chain(same_db).filter_map(cmd::first_key));
}

/// Applies effects as a replica does (from its primary, or from its own log at start).
/// `encodings` are the node's settings (made once per batch: parsing them per effect was ~4 %
/// of a replica's CPU under SETs).
fn apply(
    node_id: &str,
    dbs: &mut Databases,
    scripts: &mut crate::script::Scripts,
    encodings: crate::memory::Encodings,
    effects: &[Effect],
) -> WriteSet {
    let now = now_ms();
    let mut out = WriteSet::default();
    for (i, effect) in effects.iter().enumerate() {
        if effects.len() > 1 && i.is_multiple_of(WARM_AT_ONCE) {
            warm(dbs, effects[i..].iter().take(WARM_AT_ONCE).filter_map(|e| cmd::effect_db(e)));
        }
        // An effect of a database this node does not have (a newer version's) changes nothing.
        let Some((db, args)) = cmd::effect_db(effect) else { continue };
        let (ks, others) = dbs.split(db);
        let mut ctx = Ctx {
            ks,
            db,
            others,
            now,
            primary: false,
            out: &mut out,
            max_string: usize::MAX,
            block: None,
            lfu: None,
            no_touch: false,
            woken: false,
            encodings,
            hll_sparse_max: usize::MAX,
            in_script: false,
            script: Some(crate::script::Env { scripts: &mut *scripts, oom: false, slots: None, monitor: false }),
        };
        // A replica that fails to apply an effect would diverge: it stops instead.
        // An effect this node cannot resolve (a frame marker, or one from a newer version)
        // changes nothing here.
        if let Ok(command) = Command::resolve(args) {
            let _ = crate::panic_guard::run(node_id, command.name(), true, || command.run(&mut ctx, args));
        }
    }
    out
}

/// The compaction's view of a node.
struct NodeCapture(std::sync::Weak<Mutex<NodeState>>);

impl Capturable for NodeCapture {
    fn begin(&self, segment: u64) -> Position {
        let Some(state) = self.0.upgrade() else { return Position::default() };
        let mut st = state.lock();
        st.pending.items.push(LogItem::Rotate(segment));
        // Images hold keys only: the new segment starts with the scripts loaded now.
        let scripts = st.scripts.bodies();
        if !scripts.is_empty() {
            st.pending.items.push(LogItem::Record(crate::storage::log::scripts_record(&scripts)));
        }
        for (db, ks) in st.dbs.iter_mut() {
            // An empty database has nothing to image (and needs no copy before writes).
            if ks.is_empty() {
                ks.abort_capture();
            } else {
                ks.start_capture(db);
            }
        }
        st.compacting = Some(segment);
        st.position.clone()
    }

    fn step(&self, segment: u64, max_bytes: usize) -> Option<crate::keyspace::CaptureChunk> {
        let state = self.0.upgrade()?;
        let mut st = state.lock();
        if st.compacting != Some(segment) {
            return None;
        }
        // Databases one after another; each chunk names its database (SWAPDB may move a
        // keyspace while it is being imaged, its records keep the number it had).
        let mut chunk = crate::keyspace::CaptureChunk { records: Vec::new(), keys: 0, done: true };
        for (_, ks) in st.dbs.iter_mut().filter(|(_, ks)| ks.capturing()) {
            let Some(step) = ks.capture_step(max_bytes) else { continue };
            chunk.records = step.records;
            chunk.keys = step.keys;
            // Done when this was the last database's last chunk.
            chunk.done = false;
            break;
        }
        if !st.dbs.iter().any(|(_, ks)| ks.capturing()) {
            chunk.done = true;
        }
        if chunk.done {
            st.compacting = None;
        }
        Some(chunk)
    }
}

/// Evicts keys under the group's policy until the node is under maxmemory; OOM when the
/// policy allows no (more) evictions. Evictions replicate as DELs.
fn make_room(st: &mut NodeState, now: i64, out: &mut WriteSet) -> Result<(), Reply> {
    let clock = now as u32;
    for _ in 0..crate::memory::MAX_EVICTIONS_PER_COMMAND {
        if !st.memory.over_limit(&st.dbs) {
            return Ok(());
        }
        let NodeState { dbs, memory, evict_pool, .. } = st;
        let Some((db, key)) = evict_pool.next_victim(dbs, memory, clock) else { break };
        st.dbs.db_mut(db).remove(&key);
        st.stats.evicted_keys += 1;
        out.dirty.push((db, key.clone()));
        out.effects.push(cmd::in_db(db, vec![Bytes::from_static(b"DEL"), key.clone()]));
        out.evicted.push((db, key));
    }
    if st.memory.over_limit(&st.dbs) {
        Err(Reply::error(crate::memory::OOM))
    } else {
        Ok(())
    }
}

/// Redis's keyspace_hits / keyspace_misses: every key a read command looks up.
///
/// Counted after the command ran: a read command changes no key except by deleting an
/// expired one, which counts as a miss either way, and its own lookup of the last key left
/// that key's hash remembered (keyspace.rs `locate`), so counting costs no second hash.
fn count_lookups(st: &mut NodeState, db: usize, command: Command, args: &[Bytes], now: i64) {
    if command.is_write() {
        return;
    }
    for i in command.spec.key_indexes(args.len()) {
        if st.dbs.db(db).get(&args[i]).is_some_and(|e| !e.is_expired(now)) {
            st.stats.keyspace_hits += 1;
        } else {
            st.stats.keyspace_misses += 1;
        }
    }
}

/// The keyspace events of one command that just ran, after those of the commands its
/// script ran (they happened first).
fn command_events(
    dbs: &Databases,
    command: Command,
    args: &[Bytes],
    out: &mut WriteSet,
    dirty_from: usize,
    expired_from: usize,
) -> Vec<notify::Event> {
    let mut events = std::mem::take(&mut out.events);
    let gone = |db: usize, k: &[u8]| dbs.db(db).get(k).is_none();
    events.extend(notify::events_since(gone, command.rule(), args, out, dirty_from, expired_from));
    events.append(&mut out.late_events);
    events
}

/// The command's keys (in `db`) that do not exist yet, when `new` events are wanted: those
/// that exist after it are new (Redis fires `new` where it adds a key).
fn absent_keys(dbs: &Databases, db: usize, command: Command, args: &[Bytes], now: i64, wanted: bool) -> Vec<Bytes> {
    if !wanted || !command.is_write() {
        return Vec::new();
    }
    let ks = dbs.db(db);
    command
        .spec
        .key_indexes(args.len())
        .map(|i| &args[i])
        .filter(|k| ks.get(k).is_none_or(|e| e.is_expired(now)))
        .cloned()
        .collect()
}

/// `new` events for the keys of `absent` that exist now, before the command's own events.
fn new_key_events(dbs: &Databases, db: usize, absent: Vec<Bytes>, events: &mut Vec<notify::Event>, from: usize) {
    let ks = dbs.db(db);
    let mut seen = HashSet::new();
    let new = absent.into_iter().filter(|k| ks.get(k).is_some() && seen.insert(k.clone())).map(|key| notify::Event {
        class: ferrocache_common::parameters::notify::NEW,
        name: "new",
        db,
        key,
    });
    let at = from.min(events.len());
    let tail = events.split_off(at);
    events.extend(new);
    events.extend(tail);
}

/// A command looked up, with its arguments.
type Resolved<'a> = (Command, &'a [Bytes]);

/// What a transaction's commands may do: write (a primary with a live lease), and fire
/// keyspace events.
#[derive(Clone, Copy)]
struct Flags {
    writable: bool,
    notify: bool,
    /// CLIENT NO-TOUCH of the client that sent it.
    no_touch: bool,
    /// When the rest goes off the runtime worker (see `LONG_BATCH`); None when off it.
    deadline: Option<Instant>,
    /// The CLIENT TRACKING token of the client that sent it (0: none).
    writer: u64,
    /// Someone listens for `new` (key created) events.
    new_events: bool,
}

/// A transaction's (database, key, WATCH token) triples.
type Watches = [(usize, Bytes, Bytes)];

/// Records which changed keys a tracking client's request made: those from `start` on.
/// `writer`: where its changed keys began, its token, whether a flush had happened before it.
fn note_writer(out: &mut WriteSet, writer: Option<(usize, u64, bool)>) {
    if let Some((start, token, flushed_before)) = writer {
        if out.flushed && !flushed_before && out.flushed_by == 0 {
            out.flushed_by = token;
        }
        if out.dirty.len() > start {
            out.writers.push((start..out.dirty.len(), token));
        }
    }
}

/// Keys evicted to make room for a tracking client's request are not its writes: its
/// invalidations for them come before its reply, as Redis sends them, not after.
fn not_the_writers(writer: &mut Option<(usize, u64, bool)>, out: &WriteSet) {
    if let Some((start, _, _)) = writer {
        *start = out.dirty.len();
    }
}

/// A script that ran a read-only command, sent by tracking client `writer`: that client
/// tracks the script's keys now (CLIENT TRACKING, as Redis remembers them).
fn note_script_read(out: &mut WriteSet, writer: u64, command: Command, args: &[Bytes]) {
    if std::mem::take(&mut out.script_read) && writer != 0 {
        let keys = ferrocache_common::command::key_positions(command.spec, args);
        out.tracked_reads.push((writer, keys.into_iter().map(|k| args[k].clone()).collect()));
    }
}

/// What a gateway asks of a node in a batch.
#[derive(Debug, Clone)]
pub enum Request {
    /// A data command, name first, in database `db`; `no_touch`: CLIENT NO-TOUCH is on;
    /// `writer`: the client's CLIENT TRACKING token (0: none). `command`: its entry in the
    /// command table, looked up once when the request is made (see [`Request::data_in`]).
    Data { db: usize, args: Vec<Bytes>, command: Option<Command>, no_touch: bool, writer: u64 },
    /// WATCH: a token per key of database `db`.
    Watch { db: usize, keys: Vec<Bytes> },
    /// MULTI ... EXEC.
    Transaction(Transaction),
}

impl Request {
    /// A data command of database 0 (cluster mode, tests).
    pub fn data(args: Vec<Bytes>) -> Request {
        Request::data_in(0, args, false, 0)
    }

    /// A data command, looked up in the command table here, once: what runs it, and the
    /// checks before (scripts, long commands), read the answer. `command` stays empty for
    /// a name this node does not know or a wrong argument count; running it gives Redis's
    /// error.
    pub fn data_in(db: usize, args: Vec<Bytes>, no_touch: bool, writer: u64) -> Request {
        let command = Command::resolve(&args).ok();
        Request::Data { db, args, command, no_touch, writer }
    }

    /// The same data command with other arguments (a blocked command's retry form).
    pub fn replace_args(&mut self, new: Vec<Bytes>) {
        if let Request::Data { args, command, .. } = self {
            *command = Command::resolve(&new).ok();
            *args = new;
        }
    }

    /// The CLIENT TRACKING NOLOOP token of the client that sent it (0: none).
    pub fn writer(&self) -> u64 {
        match self {
            Request::Data { writer, .. } => *writer,
            Request::Transaction(t) => t.writer,
            Request::Watch { .. } => 0,
        }
    }

    /// CLIENT NO-TOUCH: its reads leave the keys' LRU/LFU data alone.
    pub fn no_touch(&self) -> bool {
        match self {
            Request::Data { no_touch, .. } => *no_touch,
            Request::Transaction(t) => t.no_touch,
            Request::Watch { .. } => false,
        }
    }

    /// Whether it may run Lua (and so hold the node for long).
    pub fn runs_script(&self) -> bool {
        self.any_command(Command::runs_script)
    }

    /// It may hold the node for long ([`Command::may_run_long`]).
    pub fn may_run_long(&self) -> bool {
        self.any_command(Command::may_run_long)
    }

    /// Whether any command it carries passes `test`.
    fn any_command(&self, test: fn(&Command) -> bool) -> bool {
        let passes = |args: &[Bytes]| Command::resolve(args).is_ok_and(|c| test(&c));
        match self {
            Request::Data { command, .. } => command.as_ref().is_some_and(test),
            Request::Watch { .. } => false,
            Request::Transaction(t) => t.commands.iter().any(|c| passes(c)),
        }
    }

    /// The database it starts in.
    pub fn db(&self) -> usize {
        match self {
            Request::Data { db, .. } | Request::Watch { db, .. } => *db,
            Request::Transaction(t) => t.db,
        }
    }
}

/// A replica's latest acknowledgement.
#[derive(Debug, Clone, Copy)]
pub struct Ack {
    pub offset: u64,
    pub at: std::time::Instant,
}

/// The smallest replication backlog a group's repl-backlog-size sets (Redis's minimum).
const MIN_BACKLOG_BYTES: usize = 16 * 1024;
/// Size of each preallocated log file under `appendfsync always` (storage/spare.rs): a
/// spare this big is kept ready beside the log.
const PREALLOCATED_PART: u64 = 32 << 20;

/// The error a primary without a live lease answers to writes.
pub const LEASE_EXPIRED: &str =
    "TRYAGAIN this primary cannot reach the coordinators and has stopped accepting writes (lease expired)";

/// What a node is: its place in the topology and its settings.
pub struct NodeSpec {
    pub id: String,
    pub group_id: String,
    pub node_group_id: String,
    pub role: Role,
    pub config_epoch: u64,
    pub fsync: AppendFsync,
    pub backlog_bytes: usize,
    pub max_string: usize,
    pub compaction: CompactionPolicy,
}

/// Outcome of applying a batch: the replies, and whether anything must be flushed.
pub struct Applied {
    pub replies: Vec<Reply>,
    /// The storage batch the replies depend on: the one holding this batch's writes, or for
    /// a batch that wrote nothing the newest one (its reads may show writes not yet fsynced).
    /// 0: nothing was ever written.
    pub store_seq: u64,
    /// The replication offset after the batch.
    pub offset: u64,
    /// Sync durability: how many replicas must acknowledge `offset` before the replies go out
    /// (0: none).
    pub acks_needed: usize,
    /// Which replies belong to writes that ran (they change if the acknowledgements fail).
    pub ran_writes: Vec<usize>,
    /// Blocking commands that found nothing: (index, what they wait on, their wake-up).
    pub blocked: Vec<Blocked>,
}

/// A new replication id: names one primary's history, as Redis's replid does.
fn new_replid() -> String {
    format!("{:016x}{:016x}{:08x}", rand::random::<u64>(), rand::random::<u64>(), rand::random::<u32>())
}

impl Node {
    /// Opens a node: its newest base, then its log replayed as a replica applies effects.
    pub fn open(spec: NodeSpec, files: Arc<NodeFiles>) -> Result<Node, StoreError> {
        let started = std::time::Instant::now();
        // Base keys all come before log records; both fill the one keyspace.
        let dbs = std::cell::RefCell::new(Databases::default());
        let mut scripts = crate::script::Scripts::default();
        // The group's settings come later, from the coordinators: replayed with the defaults.
        let encodings = crate::memory::Encodings::default();
        let mut replayed = 0u64;
        let recovered = files.recover(
            |db, key, entry| {
                dbs.borrow_mut().db_mut(db).insert(&key, entry);
            },
            |record| match record {
                Record::Effects { effects, .. } => {
                    replayed += effects.len() as u64;
                    apply(&spec.id, &mut dbs.borrow_mut(), &mut scripts, encodings, &effects);
                }
                Record::Scripts(bodies) => {
                    for body in &bodies {
                        if let Err(e) = scripts.restore(body) {
                            tracing::warn!(node = %spec.id, "a stored script does not compile: {e:?}");
                        }
                    }
                }
                Record::Position(_) => {}
            },
        )?;
        let dbs = dbs.into_inner();
        if recovered.base_bytes + recovered.log_bytes > 0 {
            tracing::info!(node = %spec.id, keys = dbs.len(), base_bytes = recovered.base_bytes, log_bytes = recovered.log_bytes, effects = replayed, ms = started.elapsed().as_millis() as u64, "node data loaded");
            // The replay's buffers (the image and log records read) are freed now.
            ferrocache_allocator::release_free_memory();
        }
        let mut position = recovered.position.clone();
        if position.replid.is_empty() {
            position.replid = new_replid();
        }
        let offset = position.offset;
        let start_position = position.clone();
        let base = Arc::new(BaseState::default());
        base.segment.store(recovered.base, std::sync::atomic::Ordering::Relaxed);
        // As Redis: LASTSAVE is the start until something is saved.
        base.mark_saved(offset);
        base.bytes.store(recovered.base_bytes, std::sync::atomic::Ordering::Relaxed);
        let fsync_every = match spec.fsync {
            AppendFsync::Always | AppendFsync::EverySec => Duration::from_secs(1),
            // Redis leaves `no` to the kernel, which writes dirty pages back within ~30 s.
            AppendFsync::No => Duration::from_secs(30),
        };
        let state = Arc::new(Mutex::new(NodeState {
            dbs,
            role: spec.role,
            config_epoch: spec.config_epoch,
            position,
            backlog: Backlog::new(spec.backlog_bytes),
            replicas_seen: false,
            in_sync: false,
            store_seq: 0,
            full_syncing: false,
            replid2: String::new(),
            offset2: 0,
            lease_until: None,
            durability: Durability::default(),
            writes_paused: false,
            write_clock: WriteClock::default(),
            watch: WatchVersions::default(),
            slots: ferrocache_common::slot::SlotSet::all(),
            frozen: ferrocache_common::slot::SlotSet::from_ranges([]),
            importing: ferrocache_common::slot::SlotSet::from_ranges([]),
            owns_all: true,
            any_frozen: false,
            purge_pending: false,
            stats: Stats::default(),
            script_calls: Default::default(),
            memory: crate::memory::MemoryPolicy::default(),
            // Where this run's appends start: the replid may be new, and the position
            // record makes the log self-describing from here on.
            pending: PendingLog { items: vec![LogItem::Position(start_position)], fsync: false },
            compacting: None,
            parameters: Default::default(),
            evict_pool: Default::default(),
            scripts,
        }));
        let busy = state.lock().scripts.busy.clone();
        let capture: Arc<dyn Capturable> = Arc::new(NodeCapture(Arc::downgrade(&state)));
        let compactor = {
            let (name, files, base, step) = (spec.id.clone(), files.clone(), base.clone(), spec.compaction.step_bytes);
            Box::new(move || compaction::spawn(&name, files.clone(), base.clone(), capture.clone(), step))
        };
        let writer = StoreWriter::start(WriterSetup {
            name: spec.id.clone(),
            files: files.clone(),
            segment: files.allocate(),
            segments: recovered.segments.clone(),
            base: base.clone(),
            policy: spec.compaction,
            fsync_every: Some(fsync_every),
            preallocate: (spec.fsync == AppendFsync::Always).then_some(PREALLOCATED_PART),
            source: pending_source(&state),
            compactor,
        });
        writer.kick()?;
        Ok(Node {
            writer,
            files,
            base,
            id: spec.id,
            group_id: spec.group_id,
            node_group_id: spec.node_group_id,
            fsync: spec.fsync,
            max_string: spec.max_string,
            state,
            offset_tx: watch::channel(offset).0,
            acks: Mutex::new(HashMap::new()),
            acks_tx: watch::channel(0).0,
            cancel: Mutex::new(CancellationToken::new()),
            watchers: Mutex::new(HashMap::new()),
            block_seq: Default::default(),
            broker: crate::pubsub::Broker::default(),
            busy,
            blocked_clients: Default::default(),
            out_of_memory: Default::default(),
        })
    }

    /// See the field: refused writes as of the last batch or parameter change.
    pub fn out_of_memory(&self) -> bool {
        self.out_of_memory.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn note_memory(&self, st: &NodeState) {
        let refused = st.memory.policy == crate::memory::Policy::NoEviction && st.memory.over_limit(&st.dbs);
        self.out_of_memory.store(refused, std::sync::atomic::Ordering::Relaxed);
    }

    /// The node's lock for work off the batch path (topology changes, INFO, snapshots...).
    /// Waiting for it may mean waiting for a long script: on a runtime worker that wait is
    /// handed to a thread of its own (`block_in_place`), so the worker's other tasks (the
    /// heartbeat, the data streams) go on meanwhile.
    pub fn lock_state(&self) -> parking_lot::MutexGuard<'_, NodeState> {
        if let Some(st) = self.state.try_lock() {
            return st;
        }
        off_worker(|| self.state.lock())
    }

    /// The node's lock, unless a script holds it: then None at once, so an async caller never
    /// waits behind a script that may run for seconds (it asks `busy` instead). A command
    /// that holds the lock for long (FLUSHALL of a big keyspace, KEYS, SORT of a big list) is
    /// waited for off the runtime worker: with both workers parked on the lock, nothing would
    /// answer the data streams' HTTP/2 keep-alive pings, and gateways would drop their links
    /// to this node (failing every command in flight on them) after ~3 s.
    pub fn lock_unless_busy(&self) -> Option<parking_lot::MutexGuard<'_, NodeState>> {
        let wait = || loop {
            if let Some(st) = self.state.try_lock_for(std::time::Duration::from_millis(2)) {
                return Some(st);
            }
            if self.busy.running() {
                return None;
            }
        };
        if let Some(st) = self.state.try_lock_for(std::time::Duration::from_millis(2)) {
            return Some(st);
        }
        if self.busy.running() {
            return None;
        }
        off_worker(wait)
    }

    /// [`Node::with_state`], or None when the lock is not free within `wait` (a script or a
    /// long command holds it). Never waits longer.
    pub fn try_with_state_within<T>(
        &self,
        wait: std::time::Duration,
        f: impl FnOnce(&mut NodeState) -> T,
    ) -> Option<T> {
        self.state.try_lock_for(wait).map(|mut st| f(&mut st))
    }

    /// [`Node::with_state`], or None while a script holds the lock.
    pub fn try_with_state<T>(&self, f: impl FnOnce(&mut NodeState) -> T) -> Option<T> {
        self.lock_unless_busy().map(|mut st| f(&mut st))
    }

    pub fn with_state<T>(&self, f: impl FnOnce(&mut NodeState) -> T) -> T {
        f(&mut self.lock_state())
    }

    pub fn role(&self) -> Role {
        self.lock_state().role.clone()
    }

    pub fn is_primary(&self) -> bool {
        self.lock_state().role == Role::Primary
    }

    pub fn offset(&self) -> u64 {
        *self.offset_tx.borrow()
    }

    pub fn subscribe_offset(&self) -> watch::Receiver<u64> {
        self.offset_tx.subscribe()
    }

    /// The node's storage numbers (metrics).
    pub fn storage(&self) -> &BaseState {
        &self.base
    }

    pub fn files(&self) -> &Arc<NodeFiles> {
        &self.files
    }

    /// Applies client requests. `readonly` ones came through the reader endpoint.
    pub fn execute_batch(&self, requests: &[(Request, bool)]) -> Result<Applied, StoreError> {
        let st = self.lock_state();
        self.execute_locked(st, requests, None)
    }

    /// A woken blocked command runs again: it leaves its keys' queues (so no wake-up goes to
    /// it once served), and if it blocks again it comes back at its place `seq`. None while
    /// a script holds the lock.
    pub fn try_execute_again(
        &self,
        request: &(Request, bool),
        seq: u64,
        keys: &[Bytes],
    ) -> Option<Result<Applied, StoreError>> {
        let st = self.lock_unless_busy()?;
        self.unwatch(request.0.db(), keys, seq);
        Some(self.execute_locked(st, std::slice::from_ref(request), Some(seq)))
    }

    /// [`Node::execute_batch`], unless a script holds the lock (then None, nothing ran).
    /// `locked` is told once the lock is held (and taken then).
    pub fn try_execute_batch(
        &self,
        requests: &[(Request, bool)],
        locked: &mut Option<tokio::sync::oneshot::Sender<()>>,
    ) -> Option<Result<Applied, StoreError>> {
        self.try_execute_batch_then(requests, || {
            if let Some(signal) = locked.take() {
                let _ = signal.send(());
            }
        })
    }

    /// [`Node::try_execute_batch`], calling `on_locked` once the lock is held.
    pub fn try_execute_batch_then(
        &self,
        requests: &[(Request, bool)],
        on_locked: impl FnOnce(),
    ) -> Option<Result<Applied, StoreError>> {
        let st = self.lock_unless_busy()?;
        on_locked();
        Some(self.execute_locked(st, requests, None))
    }

    fn execute_locked(
        &self,
        mut st: parking_lot::MutexGuard<'_, NodeState>,
        requests: &[(Request, bool)],
        again: Option<u64>,
    ) -> Result<Applied, StoreError> {
        let now = now_ms();
        let mut out = WriteSet::default();
        let primary = st.role == Role::Primary;
        // A primary whose lease lapsed may already have been replaced, and a paused one is
        // handing over: neither writes nor deletes expired keys (reads then treat them as
        // missing, as a replica does).
        let writable = primary && st.lease_live() && !st.writes_paused;
        let mut refusal: Option<Option<Reply>> = None;
        let mut replies = Vec::with_capacity(requests.len());
        // Keyspace notifications, published once the batch has run.
        let notify_flags = if writable { st.memory.notify } else { 0 };
        let new_events = notify_flags & ferrocache_common::parameters::notify::NEW != 0;
        let monitor = self.broker.monitor_wanted();
        let mut events = Vec::new();
        let mut ran_writes = Vec::new();
        let mut blocked = Vec::new();
        // The NOLOOP client of the request before, and where its changed keys began.
        let mut writer: Option<(usize, u64, bool)> = None;
        // Runs the requests from `from` on; past `deadline` it stops and says where.
        let mut run = |from: usize, deadline: Option<Instant>| -> usize {
            for (i, (request, readonly)) in requests.iter().enumerate().skip(from) {
                // The clock is read every few commands: read before each, it cost 2 % of a
                // pipelined GET, and a few more commands are nothing next to LONG_BATCH.
                if i > from
                    && (i - from).is_multiple_of(DEADLINE_EVERY)
                    && deadline.is_some_and(|d| Instant::now() >= d)
                {
                    return i;
                }
                if requests.len() > 1 && (i - from).is_multiple_of(WARM_AT_ONCE) {
                    warm(
                        &st.dbs,
                        requests[i..].iter().take(WARM_AT_ONCE).filter_map(|(r, _)| match r {
                            Request::Data { db, args, .. } => Some((*db, args.as_slice())),
                            _ => None,
                        }),
                    );
                }
                note_writer(&mut out, writer.take());
                if request.writer() != 0 {
                    writer = Some((out.dirty.len(), request.writer(), out.flushed));
                }
                let db = request.db();
                // The gateway checks the number; the node never trusts it.
                let watched_dbs_ok = match request {
                    Request::Transaction(t) => t.watches.iter().all(|(d, _, _)| Databases::valid(*d)),
                    _ => true,
                };
                if !Databases::valid(db) || !watched_dbs_ok {
                    replies.push(Reply::error(errors::DB_INDEX));
                    continue;
                }
                // Each command is looked up once; everything below reads its answer.
                let single;
                let listed: Vec<Resolved<'_>>;
                let (commands, watches): (&[Resolved<'_>], Option<&Watches>) = match request {
                    Request::Watch { keys, .. } => {
                        let history = format!("{}:{}", st.position.replid, st.config_epoch);
                        let ks = st.dbs.db(db);
                        let tokens =
                            keys.iter().map(|k| Reply::Bulk(st.watch.token(&history, ks, db, k, now))).collect();
                        replies.push(Reply::Array(tokens));
                        continue;
                    }
                    Request::Data { args, command, .. } => match command.map_or_else(|| Command::resolve(args), Ok) {
                        Ok(c) => {
                            single = [(c, &args[..])];
                            (&single, None)
                        }
                        Err(e) => {
                            replies.push(e);
                            continue;
                        }
                    },
                    Request::Transaction(t) => {
                        match t.commands.iter().map(|c| Command::resolve(c).map(|r| (r, &c[..]))).collect() {
                            Ok(list) => listed = list,
                            Err(e) => {
                                // The gateway checks every queued command: only a bad sender gets here.
                                let why = match e {
                                    Reply::Error(m) => m,
                                    _ => String::new(),
                                };
                                replies.push(Reply::error(format!("EXECABORT Transaction discarded: {why}")));
                                continue;
                            }
                        }
                        (&listed, Some(&t.watches))
                    }
                };
                let is_write = commands.iter().any(|(c, _)| c.is_write());
                if is_write && (*readonly || !primary) {
                    replies.push(Reply::error(errors::READONLY));
                    continue;
                }
                // Slot ownership is checked here, under the node lock, so no command runs on a
                // slot after it left (or while it is being copied away).
                if st.slot_checks() {
                    if let Some(r) =
                        commands.iter().find_map(|(c, args)| crate::migration::check(&st, c.spec, args, is_write))
                    {
                        replies.push(r);
                        continue;
                    }
                }
                if is_write {
                    let refused = refusal.get_or_insert_with(|| self.write_refusal(&mut st, now));
                    if let Some(r) = refused {
                        replies.push(r.clone());
                        continue;
                    }
                    if commands.iter().any(|(c, _)| c.may_grow()) && st.memory.over_limit(&st.dbs) {
                        let evicted = make_room(&mut st, now, &mut out);
                        not_the_writers(&mut writer, &out);
                        if let Err(oom) = evicted {
                            // Redis refuses the EXEC itself: the transaction is discarded whole.
                            replies.push(match (watches, oom) {
                                (Some(_), Reply::Error(e)) => {
                                    Reply::error(format!("EXECABORT Transaction discarded because of: {e}"))
                                }
                                (_, oom) => oom,
                            });
                            continue;
                        }
                    }
                    ran_writes.push(i);
                } else if primary && st.memory.over_limit(&st.dbs) {
                    // Redis evicts before every command while over maxmemory, reads too
                    // (it refuses only those that may grow memory when it cannot).
                    let _ = make_room(&mut st, now, &mut out);
                    not_the_writers(&mut writer, &out);
                }
                if let Some(watches) = watches {
                    let reply = crate::panic_guard::run(&self.id, "exec", is_write, || {
                        let flags = Flags {
                            writable,
                            notify: notify_flags != 0,
                            no_touch: request.no_touch(),
                            deadline,
                            writer: request.writer(),
                            new_events,
                        };
                        self.exec(&mut st, db, watches, commands, now, flags, &mut out, &mut events)
                    });
                    replies.push(reply.unwrap_or_else(|e| e));
                    continue;
                }
                let (command, args) = commands[0];
                let (dirty_from, expired_from) = (out.dirty.len(), out.expired_keys.len());
                let absent = absent_keys(&st.dbs, db, command, args, now, new_events);
                let first_effect = out.effects.len();
                let oom = st.memory.over_limit(&st.dbs);
                let mut ctx = st.client_ctx(db, &mut out, now, writable, self.max_string, oom);
                if let Some(env) = ctx.script.as_mut() {
                    env.monitor = monitor;
                }
                ctx.no_touch = request.no_touch();
                ctx.woken = again.is_some();
                let reply = crate::panic_guard::run(&self.id, command.name(), is_write, || command.run(&mut ctx, args));
                replies.push(reply.unwrap_or_else(|e| e));
                if let Some(block) = ctx.block.take() {
                    // Registered under the lock, so no write can slip between the check and the wait.
                    let seq = again.unwrap_or_else(|| self.next_block_seq());
                    let wake = self.watch_keys(db, &block.keys, seq, block.consumes);
                    blocked.push(Blocked { index: i, block, wake, seq });
                }
                drop(ctx);
                count_lookups(&mut st, db, command, args, now);
                note_script_read(&mut out, request.writer(), command, args);
                cmd::place_effects(&mut out.effects[first_effect..], db);
                // A script's effects reach replicas whole, like a transaction's.
                if command.is_atomic() && out.effects.len() - first_effect >= 2 {
                    out.effects.insert(first_effect, cmd::frame(true));
                    out.effects.push(cmd::frame(false));
                }
                if notify_flags != 0 {
                    let from = events.len();
                    events.extend(command_events(&st.dbs, command, args, &mut out, dirty_from, expired_from));
                    new_key_events(&st.dbs, db, absent, &mut events, from);
                }
            }
            requests.len()
        };
        // A batch that computes for long goes on off the runtime worker, so the worker's
        // other tasks go on: with none polling the sockets, the gateways' HTTP/2 keep-alive
        // pings would go unanswered and they would drop their links (failing every command
        // in flight) after ~3 s. Commands known to run long went off the worker already.
        let stopped = run(0, Some(Instant::now() + LONG_BATCH));
        if stopped < requests.len() {
            off_worker(|| run(stopped, None));
        }
        note_writer(&mut out, writer);
        if notify_flags != 0 {
            self.publish_events(notify_flags, events, &out);
        }
        for (entry, call) in out.script_calls.drain(..) {
            st.script_calls.entry(entry).or_default().add(call);
        }
        if !out.monitor.is_empty() {
            let feed = Bytes::from_static(ferrocache_common::MONITOR_FEED);
            for line in std::mem::take(&mut out.monitor) {
                self.broker.publish(&feed, &line, false);
            }
        }
        if out.is_empty() && !out.tracked_reads.is_empty() && st.role == Role::Primary {
            // Scripts that only read: nothing to commit, but their readers track keys now.
            self.feed_tracking(&out);
        }
        let store_seq = if out.is_empty() { st.store_seq } else { self.commit(&mut st, out)? };
        self.note_memory(&st);
        let acks_needed = match st.durability.mode {
            Mode::Sync if !ran_writes.is_empty() => st.durability.min_replicas_to_ack,
            _ => 0,
        };
        Ok(Applied { replies, store_seq, offset: st.position.offset, acks_needed, ran_writes, blocked })
    }

    /// Runs a transaction in the caller's critical section: nil when a watched key changed,
    /// else every command's reply. Its effects are framed so replicas apply them whole; its
    /// commands fire their keyspace events as they would outside it (as in Redis). It starts
    /// in database `db`; a SELECT in it moves the commands after it to another.
    #[allow(clippy::too_many_arguments)]
    fn exec(
        &self,
        st: &mut NodeState,
        mut db: usize,
        watches: &Watches,
        commands: &[Resolved<'_>],
        now: i64,
        flags: Flags,
        out: &mut WriteSet,
        events: &mut Vec<notify::Event>,
    ) -> Reply {
        let history = format!("{}:{}", st.position.replid, st.config_epoch);
        if watches.iter().any(|(d, k, token)| st.watch.token(&history, st.dbs.db(*d), *d, k, now) != *token) {
            return Reply::NullArray;
        }
        let first_effect = out.effects.len();
        // Scripts in a transaction see the memory state of its start, as in Redis.
        let oom = st.memory.over_limit(&st.dbs);
        let monitor = self.broker.monitor_wanted();
        let mut replies = Vec::with_capacity(commands.len());
        let mut run = |from: usize, deadline: Option<Instant>| -> usize {
            for (i, &(command, args)) in commands.iter().enumerate().skip(from) {
                if i > from && deadline.is_some_and(|d| Instant::now() >= d) {
                    return i;
                }
                if command.selects() {
                    replies.push(match cmd::database_arg(&args[1]) {
                        Ok(n) => {
                            db = n;
                            Reply::ok()
                        }
                        Err(e) => e,
                    });
                    continue;
                }
                let (dirty_from, expired_from, effects_from) =
                    (out.dirty.len(), out.expired_keys.len(), out.effects.len());
                let absent = absent_keys(&st.dbs, db, command, args, now, flags.new_events);
                let mut ctx = st.client_ctx(db, out, now, flags.writable, self.max_string, oom);
                if let Some(env) = ctx.script.as_mut() {
                    env.monitor = monitor;
                }
                ctx.no_touch = flags.no_touch;
                // Inside a transaction a blocking pop does not block: it answers nil at once.
                replies.push(command.run(&mut ctx, args));
                drop(ctx);
                count_lookups(st, db, command, args, now);
                note_script_read(out, flags.writer, command, args);
                cmd::place_effects(&mut out.effects[effects_from..], db);
                if flags.notify {
                    let from = events.len();
                    events.extend(command_events(&st.dbs, command, args, out, dirty_from, expired_from));
                    new_key_events(&st.dbs, db, absent, events, from);
                }
            }
            commands.len()
        };
        let stopped = run(0, flags.deadline);
        if stopped < commands.len() {
            off_worker(|| run(stopped, None));
        }
        if out.effects.len() - first_effect >= 2 {
            out.effects.insert(first_effect, cmd::frame(true));
            out.effects.push(cmd::frame(false));
        }
        Reply::Array(replies)
    }

    /// Why a primary must refuse writes right now, if it must (nothing runs then).
    fn write_refusal(&self, st: &mut NodeState, now: i64) -> Option<Reply> {
        if !st.lease_live() {
            return Some(Reply::error(LEASE_EXPIRED));
        }
        if st.writes_paused {
            return Some(Reply::error(durability::PAUSED));
        }
        let d = st.durability;
        match d.mode {
            Mode::None => None,
            Mode::Sync => {
                let connected = self.acks.lock().len();
                (connected < d.min_replicas_to_ack).then(|| Reply::error(durability::NOREPLICAS))
            }
            Mode::Async => {
                let best = self.acks.lock().values().map(|a| a.offset).max();
                let lag = match best {
                    Some(acked) => st.write_clock.lag_ms(acked, now),
                    None => u64::MAX,
                };
                (lag > d.max_replica_lag_ms).then(|| {
                    let behind = if lag == u64::MAX {
                        "no replica is connected".to_string()
                    } else {
                        format!("the most up-to-date replica is {lag} ms behind")
                    };
                    Reply::error(format!(
                        "NOREPLICAS {behind} (durability async allows {} ms); write refused",
                        d.max_replica_lag_ms
                    ))
                })
            }
        }
    }

    /// Publishes keyspace notifications: the commands' `events`, then expirations and
    /// evictions recorded in `out`.
    fn publish_events(&self, flags: u32, mut events: Vec<notify::Event>, out: &WriteSet) {
        use ferrocache_common::parameters::notify as class;
        let event = |class, name, (db, key): &(usize, Bytes)| notify::Event { class, name, db: *db, key: key.clone() };
        let expired = out.expired_keys.iter().map(|k| event(class::EXPIRED, "expired", k));
        let evicted = out.evicted.iter().map(|k| event(class::EVICTED, "evicted", k));
        events.extend(expired.chain(evicted));
        for (channel, message) in notify::messages(flags, &events) {
            self.broker.publish(&channel, &message, false);
        }
    }

    /// Takes the group's Redis parameters (maxmemory, policy, notifications) from the
    /// coordinators.
    pub fn set_parameters(&self, set: &std::collections::BTreeMap<String, String>) {
        let threshold = ferrocache_common::parameters::value(set, "busy-reply-threshold").parse().unwrap_or(0);
        self.busy.set_threshold(threshold);
        let memory = crate::memory::MemoryPolicy::from_parameters(set);
        // Only once set for the group: until then the node's own --repl-backlog-bytes holds.
        let backlog = set.get("repl-backlog-size").and_then(|v| v.parse::<usize>().ok());
        let mut st = self.lock_state();
        if let Some(limit) = backlog.map(|b| b.max(MIN_BACKLOG_BYTES)) {
            if st.backlog.limit() != limit {
                tracing::info!(node = %self.id, limit, "replication backlog size changed");
                st.backlog.set_limit(limit);
            }
        }
        if st.parameters != *set {
            st.parameters = set.clone();
        }
        if st.memory != memory {
            tracing::info!(node = %self.id, ?memory, "memory parameters changed");
            st.memory = memory;
            self.evict_now(&mut st);
        }
        self.note_memory(&st);
    }

    /// A primary that finds itself over a new maxmemory evicts at once, as Redis does from
    /// CONFIG SET (not only when the next command comes).
    fn evict_now(&self, st: &mut NodeState) {
        if st.role != Role::Primary || !st.lease_live() || st.writes_paused || !st.memory.over_limit(&st.dbs) {
            return;
        }
        let mut out = WriteSet::default();
        let _ = make_room(st, now_ms(), &mut out);
        if st.memory.notify != 0 {
            self.publish_events(st.memory.notify, Vec::new(), &out);
        }
        if !out.is_empty() {
            if let Err(e) = self.commit(st, out) {
                tracing::error!(node = %self.id, "storage error after evicting: {e}");
            }
        }
    }

    /// Takes the node group's slots, and those frozen by a resharding, from the coordinators.
    pub fn set_slots(&self, slots: ferrocache_common::slot::SlotSet, frozen: ferrocache_common::slot::SlotSet) {
        let mut st = self.lock_state();
        if st.slots != slots {
            tracing::info!(node = %self.id, slots = slots.len(), "slots changed");
            // Slots that left: their keys go. Slots that arrived: no longer importing.
            st.purge_pending |= !slots.contains_all(&st.slots);
            st.importing.remove_all(&slots);
            st.owns_all = slots.len() == ferrocache_common::slot::SLOT_COUNT as usize;
            st.slots = slots;
        }
        if st.frozen != frozen {
            tracing::info!(node = %self.id, frozen = frozen.len(), "slots frozen for a move");
            st.any_frozen = !frozen.is_empty();
            st.frozen = frozen;
        }
    }

    /// Takes a group's durability settings and planned-switch pause from the coordinators.
    pub fn set_settings(&self, durability: Durability, pause_writes: bool) {
        let mut st = self.lock_state();
        if st.durability != durability {
            tracing::info!(node = %self.id, ?durability, "durability changed");
            st.durability = durability;
        }
        let pause = pause_writes && st.role == Role::Primary;
        if st.writes_paused != pause {
            tracing::info!(node = %self.id, paused = pause, "writes paused for a planned switch");
            st.writes_paused = pause;
        }
    }

    /// Deletes expired keys (primaries only); returns how many.
    pub fn active_expire(&self, limit: usize) -> Result<usize, StoreError> {
        let mut out = WriteSet::default();
        // A running script holds the lock: the next cycle expires instead.
        let Some(mut st) = self.lock_unless_busy() else { return Ok(0) };
        if st.role != Role::Primary || !st.lease_live() || st.writes_paused {
            return Ok(0);
        }
        // Every database in turn, until `limit` keys have gone.
        let mut n = 0;
        let now = now_ms();
        for db in 0..crate::databases::DATABASES {
            if n >= limit {
                break;
            }
            if st.dbs.db(db).keys_with_expiry() == 0 {
                continue;
            }
            let from = out.effects.len();
            let encodings = st.memory.encodings;
            let (ks, others) = st.dbs.split(db);
            let mut ctx = Ctx {
                ks,
                db,
                others,
                now,
                primary: true,
                out: &mut out,
                max_string: self.max_string,
                block: None,
                lfu: None,
                no_touch: false,
                woken: false,
                encodings,
                hll_sparse_max: usize::MAX,
                in_script: false,
                script: None,
            };
            n += ctx.expire_cycle(limit - n);
            drop(ctx);
            cmd::place_effects(&mut out.effects[from..], db);
        }
        if st.purge_pending {
            crate::migration::purge_unowned(&mut st, &mut out);
        }
        if st.memory.notify != 0 {
            self.publish_events(st.memory.notify, Vec::new(), &out);
        }
        if !out.is_empty() {
            self.commit(&mut st, out)?;
        }
        Ok(n)
    }

    /// Replica: applies effects received from the primary (taking `effects`); `offset` is
    /// the primary's offset after the last of them. None, with `effects` left alone, while a
    /// script holds the lock. `records`: the same effects as the primary's log records
    /// (each with its effect count), logged and kept in the backlog as they are.
    pub fn try_apply_effects(
        &self,
        effects: &mut Vec<Effect>,
        records: &mut Option<Vec<(u64, Bytes)>>,
        offset: u64,
    ) -> Option<Result<(), StoreError>> {
        let st = self.lock_unless_busy()?;
        Some(self.apply_effects_locked(st, std::mem::take(effects), records.take(), offset))
    }

    fn apply_effects_locked(
        &self,
        mut st: parking_lot::MutexGuard<'_, NodeState>,
        effects: Vec<Effect>,
        records: Option<Vec<(u64, Bytes)>>,
        offset: u64,
    ) -> Result<(), StoreError> {
        let NodeState { dbs, scripts, memory, .. } = &mut *st;
        let mut out = apply(&self.id, dbs, scripts, memory.encodings, &effects);
        // A replica logs the primary's effects verbatim, so its offsets are the primary's.
        out.effects = effects;
        st.position.offset = offset.saturating_sub(out.effects.len() as u64);
        self.commit_records(&mut st, out, records).map(|_| ())
    }

    /// Assigns offsets, fills the backlog and marks the touched keys pending for the storage
    /// writer, all under the caller's lock (so all three agree on order). Returns the commit's
    /// sequence number (durable once the writer has stored a state at least that new).
    pub(crate) fn commit(&self, st: &mut NodeState, out: WriteSet) -> Result<u64, StoreError> {
        self.commit_records(st, out, None)
    }

    /// [`Node::commit`], with the effects already encoded as log records when `records` is
    /// given (a replica's, as its primary sent them; their counts add up to the effects').
    fn commit_records(
        &self,
        st: &mut NodeState,
        out: WriteSet,
        records: Option<Vec<(u64, Bytes)>>,
    ) -> Result<u64, StoreError> {
        st.stats.expired_keys += out.expired;
        st.stats.used_memory_peak = st.stats.used_memory_peak.max(st.used_memory());
        let mut counted = HashSet::with_capacity(out.dirty.len());
        for dirty in &out.dirty {
            if counted.insert(dirty) {
                st.dbs.db_mut(dirty.0).recount(&dirty.1);
            }
        }
        if st.role == Role::Primary && (!out.dirty.is_empty() || out.flushed || !out.tracked_reads.is_empty()) {
            self.feed_tracking(&out);
        }
        if st.role == Role::Primary && !out.effects.is_empty() {
            st.write_clock.record(st.position.offset + out.effects.len() as u64, now_ms());
        }
        if !out.effects.is_empty() {
            let records = records.unwrap_or_else(|| {
                let record = crate::storage::log::effects_record(st.position.offset, &out.effects);
                vec![(out.effects.len() as u64, record)]
            });
            for (count, record) in records {
                if st.backlog_active() {
                    let first = st.position.offset + 1;
                    st.backlog.push(first, count, record.clone());
                }
                st.pending.items.push(LogItem::Record(record));
                st.position.offset += count;
            }
        }
        self.wake_watchers(out.dirty.iter());
        for db in &out.emptied {
            st.watch.flush(*db);
        }
        if out.swapped {
            st.watch.swap();
        }
        if out.flushed {
            // A swapped database may now hold what they wait for.
            self.wake_all_watchers();
        }
        for (db, k) in &out.dirty {
            st.watch.touch(*db, k);
        }
        st.pending.fsync |= self.fsync == AppendFsync::Always;
        st.store_seq += 1;
        // Under `always` the thread fsyncs, once for every commit queued by then (group commit),
        // unless the commit went into the log inline with a direct synchronous write.
        let (seq, fsync) = (st.store_seq, st.pending.fsync);
        self.writer.append_or_kick(seq, &mut st.pending.items, fsync)?;
        if st.pending.items.is_empty() {
            st.pending.fsync = false;
        }
        self.offset_tx.send_replace(st.position.offset);
        Ok(st.store_seq)
    }

    /// CLIENT TRACKING: the keys a commit changed (names, whatever their database), in one
    /// message to the gateways that track keys for their clients, each with the writer's
    /// NOLOOP token when one such client alone changed it; a flush invalidates everything.
    fn feed_tracking(&self, out: &WriteSet) {
        if !self.broker.tracking_wanted() {
            return;
        }
        let feed = Bytes::from_static(ferrocache_common::TRACKING_FEED);
        let mut keys: Vec<&Bytes> = Vec::with_capacity(out.dirty.len());
        let mut writers: HashMap<&Bytes, Option<u64>> = HashMap::with_capacity(out.dirty.len());
        for (i, (_, key)) in out.dirty.iter().enumerate() {
            let by = out.writers.iter().find(|(range, _)| range.contains(&i)).map(|(_, w)| *w);
            match writers.entry(key) {
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(by);
                    keys.push(key);
                }
                std::collections::hash_map::Entry::Occupied(mut o) if *o.get() != by => {
                    o.insert(None);
                }
                std::collections::hash_map::Entry::Occupied(_) => {}
            }
        }
        if !keys.is_empty() {
            let changes: Vec<(&[u8], Option<u64>)> =
                keys.iter().map(|k| (&k[..], writers.get(*k).copied().flatten())).collect();
            self.broker.publish(&feed, &ferrocache_common::tracking_feed::encode(&changes), false);
        }
        if out.flushed {
            self.broker.publish(&feed, &ferrocache_common::tracking_feed::encode_flushed(out.flushed_by), false);
        }
        // After the changes: a script that read and wrote a key still tracks it.
        for (token, keys) in &out.tracked_reads {
            self.broker.publish(&feed, &ferrocache_common::tracking_feed::encode_read(*token, keys), false);
        }
    }

    /// A wake-up for a blocked command: notified when one of `keys` is written (or the
    /// node's role changes). Waiters on a key queue by `seq` (their first blocking: one
    /// that blocks again keeps its place), as Redis serves the longest-waiting client first.
    /// Dropping the returned handle unregisters it.
    fn watch_keys(&self, db: usize, keys: &[Bytes], seq: u64, consumes: bool) -> Arc<tokio::sync::Notify> {
        let wake = Arc::new(tokio::sync::Notify::new());
        let mut watchers = self.watchers.lock();
        for k in keys {
            let list = watchers.entry((db, k.clone())).or_default();
            let at = list.partition_point(|w| w.seq <= seq);
            list.insert(at, Watcher { seq, consumes, wake: Arc::downgrade(&wake) });
        }
        wake
    }

    /// Wakes the waiters `keys` were written for: on each key, the longest-waiting one that
    /// takes what it waits for (when it is served, its own write wakes the next), and every
    /// one that only reads. A woken waiter leaves the queue; if it finds nothing it comes back
    /// at its place.
    pub(crate) fn wake_watchers<'k>(&self, keys: impl Iterator<Item = &'k cmd::DbKey>) {
        let mut watchers = self.watchers.lock();
        if watchers.is_empty() {
            return;
        }
        for k in keys {
            let Some(list) = watchers.get_mut(k) else { continue };
            let mut woke_consumer = false;
            list.retain(|w| {
                let Some(n) = w.wake.upgrade() else { return false };
                if w.consumes && woke_consumer {
                    return true;
                }
                woke_consumer |= w.consumes;
                n.notify_one();
                false
            });
            if list.is_empty() {
                watchers.remove(k);
            }
        }
    }

    /// Takes waiter `seq` out of the queues of `keys` (of database `db`).
    fn unwatch(&self, db: usize, keys: &[Bytes], seq: u64) {
        let mut watchers = self.watchers.lock();
        for k in keys {
            let k = (db, k.clone());
            if let Some(list) = watchers.get_mut(&k) {
                list.retain(|w| w.seq != seq);
                if list.is_empty() {
                    watchers.remove(&k);
                }
            }
        }
    }

    fn wake_all_watchers(&self) {
        let mut watchers = self.watchers.lock();
        for list in watchers.values() {
            for n in list.iter().filter_map(|w| w.wake.upgrade()) {
                n.notify_one();
            }
        }
        watchers.clear();
    }

    /// The place in line of a command blocking now for the first time.
    pub(crate) fn next_block_seq(&self) -> u64 {
        self.block_seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    /// The storage batch the latest write went into.
    pub fn store_seq(&self) -> u64 {
        self.with_state(|st| st.store_seq)
    }

    /// Whether storage batch `seq` is fsynced already (`appendfsync no`: once written).
    pub fn is_durable(&self, seq: u64) -> bool {
        self.fsync == AppendFsync::No || seq == 0 || self.writer.durable() >= seq
    }

    /// Waits until storage batch `seq` is fsynced.
    pub async fn wait_durable(&self, seq: u64) -> Result<(), StoreError> {
        self.writer.wait_durable(seq).await
    }

    /// Stops the writer's background file preparation (before the node's files are deleted).
    pub fn stop_preallocating(&self) {
        self.writer.stop_preallocating();
    }

    /// Applies and fsyncs every queued write (blocking): before shutdown or removal.
    pub fn sync_store(&self) -> Result<(), StoreError> {
        self.writer.sync()
    }

    /// Replica: replaces the whole keyspace with a primary's full sync (or a new primary's
    /// with a snapshot). Blocking: the image is written as a new base first, so a crash at
    /// any point leaves either the old data or the new, never a mix.
    /// `scripts`: the primary's loaded scripts, which replace this node's (None: keep them,
    /// as a snapshot restore does).
    pub fn install_full_sync(
        &self,
        entries: Vec<DbEntry>,
        position: Position,
        scripts: Option<Vec<Bytes>>,
    ) -> Result<(), StoreError> {
        let segment = self.files.allocate();
        let mut w = crate::snapshot::file::Writer::create(self.files.base_path(segment))?;
        w.position(&position)?;
        for (db, key, entry) in &entries {
            w.entry(*db, key, entry)?;
        }
        let (_, bytes) = w.finish()?;
        let dbs = Databases::from_entries(entries);
        let mut st = self.lock_state();
        let old = std::mem::replace(&mut st.dbs, dbs);
        st.compacting = None;
        st.position = position.clone();
        st.backlog.clear();
        st.pending.items.push(LogItem::Rotate(segment));
        st.pending.items.push(LogItem::Position(position.clone()));
        if let Some(bodies) = scripts {
            st.scripts.reset();
            for body in &bodies {
                // The primary compiled them; one that fails here is skipped, not fatal.
                let _ = st.scripts.restore(body);
            }
        }
        let bodies = st.scripts.bodies();
        if !bodies.is_empty() {
            st.pending.items.push(LogItem::Record(crate::storage::log::scripts_record(&bodies)));
        }
        st.pending.fsync = true;
        st.store_seq += 1;
        self.writer.kick()?;
        self.offset_tx.send_replace(position.offset);
        drop(st);
        // Freeing a big keyspace takes a while: not under the lock.
        drop(old);
        if self.base.segment.fetch_max(segment, std::sync::atomic::Ordering::AcqRel) < segment {
            self.base.bytes.store(bytes, std::sync::atomic::Ordering::Release);
            self.base.mark_saved(position.offset);
        }
        self.files.remove_before(segment)
    }

    /// Primary: a consistent copy of the keyspace and the position it corresponds to, with
    /// the scripts loaded then.
    pub fn snapshot(&self) -> (Position, Vec<DbEntry>, Vec<Bytes>) {
        let st = self.lock_state();
        (st.position.clone(), st.dbs.live_entries(now_ms()), st.scripts.bodies())
    }

    pub fn record_ack(&self, replica: &str, offset: u64) {
        let mut acks = self.acks.lock();
        acks.insert(replica.to_string(), Ack { offset, at: std::time::Instant::now() });
        self.acks_tx.send_modify(|v| *v = v.wrapping_add(1));
    }

    pub fn forget_replica(&self, replica: &str) {
        self.acks.lock().remove(replica);
    }

    /// How many replicas have acknowledged at least `offset`.
    pub fn replicas_at(&self, offset: u64) -> usize {
        self.acks.lock().values().filter(|a| a.offset >= offset).count()
    }

    pub fn acked_offsets(&self) -> HashMap<String, Ack> {
        self.acks.lock().clone()
    }

    /// Lag in ms of the most up-to-date replica (what `async` durability bounds); None
    /// without a replica.
    pub fn best_replica_lag_ms(&self) -> Option<u64> {
        let best = self.acks.lock().values().map(|a| a.offset).max()?;
        Some(self.lock_state().write_clock.lag_ms(best, now_ms()))
    }

    pub fn subscribe_acks(&self) -> watch::Receiver<u64> {
        self.acks_tx.subscribe()
    }

    /// Changes role (and epoch). A replica that becomes primary keeps its data and its
    /// backlog (which holds the old primary's effects at the same offsets) and starts a new
    /// replication history, remembering the old one so the other replicas can resume.
    pub fn set_role(&self, role: Role, config_epoch: u64) {
        let mut st = self.lock_state();
        if st.role != Role::Primary && role == Role::Primary {
            // A promoted replica may hold keys its old primary had not purged yet.
            st.purge_pending = true;
            st.replicas_seen = true;
            st.replid2 = std::mem::replace(&mut st.position.replid, new_replid());
            st.offset2 = st.position.offset;
            let p = st.position.clone();
            st.pending.items.push(LogItem::Position(p));
            st.lease_until = None;
        }
        if role != Role::Primary {
            st.writes_paused = false;
        }
        st.write_clock.clear();
        st.role = role;
        st.config_epoch = config_epoch;
        st.in_sync = false;
        drop(st);
        // Blocked commands try again: a demoted primary then answers them READONLY and the
        // gateway moves them to the new primary.
        self.wake_all_watchers();
    }

    /// Extends a primary's lease (the heartbeat that granted it was sent at `sent_at`).
    pub fn renew_lease(&self, until: std::time::Instant, wait: std::time::Duration) {
        // A script or a long command took the lock since the heartbeat looked: the next beat
        // renews (the heartbeat never waits out a long hold).
        self.try_with_state_within(wait, |st| {
            if st.role == Role::Primary && st.lease_until.is_none_or(|u| u < until) {
                st.lease_until = Some(until);
            }
        });
    }
}

#[cfg(test)]
#[path = "node_storage_tests.rs"]
mod storage_tests;

#[cfg(test)]
mod request_tests {
    use super::*;

    fn looked_up(r: &Request) -> Option<&'static str> {
        match r {
            Request::Data { command, .. } => command.map(|c| c.name()),
            _ => None,
        }
    }

    #[test]
    fn a_data_request_carries_the_command_of_its_current_arguments() {
        let args = |a: &[&'static str]| a.iter().map(|s| Bytes::from_static(s.as_bytes())).collect();
        let mut r = Request::data(args(&["GET", "k"]));
        assert_eq!(looked_up(&r), Some("get"));
        // A blocked command's retry form is another command: looked up again.
        r.replace_args(args(&["lpop", "k"]));
        assert_eq!(looked_up(&r), Some("lpop"));
        // An unknown name or a wrong argument count: nothing, the execution answers the error.
        r.replace_args(args(&["nosuch", "k"]));
        assert_eq!(looked_up(&r), None);
        assert_eq!(looked_up(&Request::data(args(&["GET"]))), None);
        let node_request = Request::data_in(3, args(&["EVAL", "return 1", "0"]), false, 0);
        assert!(node_request.runs_script() && !Request::data(args(&["GET", "k"])).runs_script());
    }
}
