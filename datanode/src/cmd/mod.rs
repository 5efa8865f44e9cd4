//! Command execution against one node's keyspace.
//!
//! `execute` runs one command on a [`Ctx`]: the keyspace, the clock, whether this node is a
//! primary, and a [`WriteSet`] collecting what the command changed. Every change is recorded
//! twice: as an *effect* (a deterministic command — absolute expiry times, no randomness —
//! that replicas apply and that replays the change exactly) and as a dirty key for storage.
//! Replicas apply effects through this same code, so one implementation serves both.

mod args;
mod bitmaps;
mod dispatch;
mod geo;
mod hashes;
mod hyperloglog;
mod keys;
mod lcs;
mod lists;
mod server;
mod sets;
mod sort;
mod streams;
mod strings;
mod zsets;

use bytes::Bytes;
use ferrocache_common::reply::errors;
use ferrocache_common::Reply;

use crate::keyspace::{Entry, Keyspace};
use crate::value::Value;

pub use args::{check_subcommand, database_arg, parse_f64, parse_i64};
pub use dispatch::{
    effect_db, execute, first_key, frame, frame_marker, in_db, place_effects, place_selected, while_busy, Command,
    WhileBusy,
};

/// A key in one of the node's databases.
pub type DbKey = (usize, Bytes);

/// What a batch of commands changed.
#[derive(Default, Debug)]
pub struct WriteSet {
    /// Effects for the replication log, in order.
    pub effects: Vec<Vec<Bytes>>,
    /// Keys changed (WATCH, blocked clients, notifications, memory accounting).
    pub dirty: Vec<DbKey>,
    /// Whole databases were emptied or swapped (FLUSHALL, FLUSHDB, SWAPDB): clients that
    /// track keys forget them all and blocked clients look again.
    pub flushed: bool,
    /// The CLIENT TRACKING token of the client whose request flushed first (0: none): it
    /// hears of its flush after its reply, as Redis tells the client that flushed.
    pub flushed_by: u64,
    /// The databases FLUSHDB / FLUSHALL emptied (the WATCHes of their live keys are void).
    pub emptied: Vec<usize>,
    /// SWAPDB ran: every WATCH token is void.
    pub swapped: bool,
    /// Keys deleted because they had expired (INFO stats expired_keys).
    pub expired: u64,
    /// Keys evicted for maxmemory (keyspace notifications).
    pub evicted: Vec<DbKey>,
    /// Keys deleted because they had expired (keyspace notifications).
    pub expired_keys: Vec<DbKey>,
    /// Keyspace events of the commands a script ran (they fire as if sent one by one), and
    /// those a command fires itself besides its rule's (a consumer XREADGROUP created).
    pub events: Vec<crate::notify::Event>,
    /// Events a command fires after its rule's (XADD's own trim: `xtrim` after `xadd`).
    pub late_events: Vec<crate::notify::Event>,
    /// Which `dirty` entries a CLIENT TRACKING client wrote (its token): a NOLOOP client is
    /// not told of them, others after their reply.
    pub writers: Vec<(std::ops::Range<usize>, u64)>,
    /// A script ran a read-only command (set by the script's calls, taken by the node).
    pub script_read: bool,
    /// Scripts of tracking clients that read: the client's token and the script's keys,
    /// which that client now tracks (as Redis remembers them).
    pub tracked_reads: Vec<(u64, Vec<Bytes>)>,
    /// MONITOR lines of the commands scripts ran (only while some client monitors).
    pub monitor: Vec<Bytes>,
    /// INFO commandstats of the commands scripts ran, by statistics entry (one item per
    /// command: a script calling SET a million times adds to one).
    pub script_calls: Vec<(usize, CallStats)>,
}

/// INFO commandstats counts of one command.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CallStats {
    pub calls: u64,
    pub usec: u64,
    pub rejected: u64,
    pub failed: u64,
}

impl CallStats {
    pub fn add(&mut self, other: CallStats) {
        self.calls += other.calls;
        self.usec += other.usec;
        self.rejected += other.rejected;
        self.failed += other.failed;
    }
}

impl WriteSet {
    /// Counts one command a script called.
    pub fn note_script_call(&mut self, entry: usize, call: CallStats) {
        match self.script_calls.iter_mut().find(|(e, _)| *e == entry) {
            Some((_, c)) => c.add(call),
            None => self.script_calls.push((entry, call)),
        }
    }
}

impl WriteSet {
    pub fn is_empty(&self) -> bool {
        self.effects.is_empty() && self.dirty.is_empty() && !self.flushed
    }
}

/// A blocking command that found nothing to pop: what it waits on.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    pub keys: Vec<Bytes>,
    /// 0 = forever.
    pub timeout_secs: f64,
    /// The command to run when woken, if not the same one (XREAD's `$` becomes the ID it
    /// stood for when the command blocked).
    pub args: Option<Vec<Bytes>>,
    /// Serving it takes what it waits for (a pop, XREADGROUP `>`): waiters on a key are then
    /// served one at a time, longest-waiting first. XREAD takes nothing: all are woken.
    pub consumes: bool,
}

impl Block {
    /// When the wait ends, counted from `now`: None = never (a timeout of 0, or one too far
    /// in the future for the clock to represent, which is as good as forever).
    pub fn deadline(&self, now: tokio::time::Instant) -> Option<tokio::time::Instant> {
        if self.timeout_secs <= 0.0 {
            return None;
        }
        std::time::Duration::try_from_secs_f64(self.timeout_secs).ok().and_then(|d| now.checked_add(d))
    }
}

pub struct Ctx<'a> {
    /// The database the command runs in (its connection's SELECT).
    pub ks: &'a mut Keyspace,
    pub db: usize,
    /// The node's other databases (MOVE, SWAPDB, COPY ... DB, FLUSHALL).
    pub others: crate::databases::Others<'a>,
    pub now: i64,
    /// Primaries delete expired keys (and propagate the deletion); replicas only hide them.
    pub primary: bool,
    pub out: &'a mut WriteSet,
    /// Largest string a write may create (proto-max-bulk-len).
    pub max_string: usize,
    /// Set by a blocking command that has to wait (its reply is then a placeholder).
    pub block: Option<Block>,
    /// LFU bookkeeping on access (log factor, decay minutes) while an LFU policy is in force.
    pub lfu: Option<(u32, u32)>,
    /// CLIENT NO-TOUCH: lookups leave the keys' LRU/LFU data as it was (TOUCH excepted).
    pub no_touch: bool,
    /// A blocked command running again after a write to a key it waits on.
    pub woken: bool,
    /// What OBJECT ENCODING names values by.
    pub encodings: crate::memory::Encodings,
    /// hll-sparse-max-bytes on a primary. Where writes are replayed (a replica, a restart)
    /// there is none: a value that turned dense did so on its primary and replicated whole.
    pub hll_sparse_max: usize,
    /// What EVAL and SCRIPT need (None where scripts cannot run, and inside a script).
    pub script: Option<crate::script::Env<'a>>,
    /// The command runs from a script (redis.call): where Redis answers a script otherwise
    /// (SORT of a set in one order), commands ask this.
    pub in_script: bool,
}

/// A script that selected another database leaves every keyspace where it belongs, even
/// when it ends in an error or a panic.
impl Drop for Ctx<'_> {
    fn drop(&mut self) {
        let home = self.others.home();
        if self.db != home && self.others.show(self.ks, home) {
            self.db = home;
        }
    }
}

impl<'a> Ctx<'a> {
    /// A script's SELECT: the commands after it run in database `db` (the caller's own
    /// database comes back when the script ends). False for no such database.
    pub fn select(&mut self, db: usize) -> bool {
        if self.others.show(self.ks, db) {
            self.db = db;
            true
        } else {
            false
        }
    }

    /// Records a change: `args` is its deterministic form; `keys` the keys it touched.
    fn propagate(&mut self, args: Vec<Bytes>, keys: &[&[u8]]) {
        for k in keys {
            self.out.dirty.push((self.db, Bytes::copy_from_slice(k)));
        }
        self.out.effects.push(args);
    }

    /// The entry under `key` if it exists and has not expired. A primary deletes an expired
    /// key on the spot and propagates a DEL, as Redis does.
    fn lookup(&mut self, key: &[u8]) -> Option<&Entry> {
        if self.no_touch {
            return self.peek(key);
        }
        self.expire_if_needed(key);
        let now = self.now;
        self.ks.touch(key, now as u32, self.lfu).filter(|e| !e.is_expired(now))
    }

    /// Like [`Ctx::lookup`] without recording an access (OBJECT, as Redis's LOOKUP_NOTOUCH).
    fn peek(&mut self, key: &[u8]) -> Option<&Entry> {
        self.expire_if_needed(key);
        self.ks.get(key).filter(|e| !e.is_expired(self.now))
    }

    /// The live string under `key`: Ok(None) if absent, Err(WRONGTYPE) for another type.
    fn get_string(&mut self, key: &[u8]) -> Result<Option<Bytes>, Reply> {
        match self.lookup(key) {
            None => Ok(None),
            Some(Entry { value: Value::Str(b), .. }) => Ok(Some(b.to_bytes())),
            Some(_) => Err(Reply::error(errors::WRONGTYPE)),
        }
    }

    /// The live value under `key` viewed as one collection type (`pick`): Ok(None) if absent,
    /// Err(WRONGTYPE) when it holds another type.
    fn read_as<T>(&mut self, key: &[u8], pick: fn(&Value) -> Option<&T>) -> Result<Option<&T>, Reply> {
        match self.lookup(key) {
            None => Ok(None),
            Some(e) => pick(&e.value).map(Some).ok_or_else(|| Reply::error(errors::WRONGTYPE)),
        }
    }

    /// The collection under `key` for writing, created as `empty()` when absent.
    fn write_as<T>(
        &mut self,
        key: &[u8],
        empty: fn() -> Value,
        pick: fn(&mut Value) -> Option<&mut T>,
    ) -> Result<&mut T, Reply> {
        self.expire_if_needed(key);
        if self.ks.get(key).is_none() {
            self.ks.insert(key, Entry::new(empty()));
        }
        self.ks.get_value_mut(key).and_then(pick).ok_or_else(|| Reply::error(errors::WRONGTYPE))
    }

    /// Records a collection write; an emptied collection is deleted, as in Redis.
    fn collection_written(&mut self, key: &[u8], effect: Vec<Bytes>) {
        if self.ks.get(key).is_some_and(|e| e.value.is_empty_collection()) {
            self.ks.remove(key);
        }
        self.propagate(effect, &[key]);
    }

    /// Replaces whatever `dest` held with a command's result (None: `dest` is deleted) and
    /// records `effect`, the command itself (it gives the same result on a replica): the
    /// STORE of SORT, GEORADIUS/GEOSEARCHSTORE and the Z*STORE commands.
    /// An empty result where `dest` did not exist changes nothing: as in Redis, no event,
    /// no WATCH invalidation, nothing replicated.
    fn store(&mut self, dest: &Bytes, value: Option<Value>, effect: Vec<Bytes>) {
        self.expire_if_needed(dest);
        let existed = self.ks.remove(dest).is_some();
        match value {
            Some(value) => {
                self.ks.insert(dest, Entry::new(value));
            }
            None if !existed => return,
            None => {}
        }
        self.propagate(effect, &[dest]);
    }

    /// Parks a blocking command that found nothing: it waits on `keys` for `timeout` seconds
    /// (0 = forever). Its reply until then is a placeholder.
    fn block_on(&mut self, keys: Vec<Bytes>, timeout_secs: f64) -> CmdResult {
        self.block = Some(Block { keys, timeout_secs, args: None, consumes: true });
        Ok(Reply::NullArray)
    }

    /// A blocking command's answer: what it served, else it waits on `keys`. Woken by a
    /// write that left its keys holding other types (a SET over the list it waited on), it
    /// waits on rather than answer WRONGTYPE: Redis serves a waiter only from a key of its
    /// own type. A first run, or a key of the right type among `keys`, answers the error as
    /// Redis's run of it would.
    fn serve_or_block(
        &mut self,
        keys: &[Bytes],
        timeout_secs: f64,
        its_type: fn(&Value) -> bool,
        served: Result<Option<Reply>, Reply>,
    ) -> CmdResult {
        match served {
            Ok(Some(reply)) => return Ok(reply),
            Ok(None) => return self.block_on(keys.to_vec(), timeout_secs),
            Err(Reply::Error(e)) if self.woken && e.starts_with("WRONGTYPE") => {
                let now = self.now;
                let typed =
                    keys.iter().any(|k| self.ks.get(k).is_some_and(|e| !e.is_expired(now) && its_type(&e.value)));
                if typed {
                    return Err(Reply::Error(e));
                }
            }
            Err(e) => return Err(e),
        }
        self.block_on(keys.to_vec(), timeout_secs)
    }

    fn exists(&mut self, key: &[u8]) -> bool {
        self.lookup(key).is_some()
    }

    fn expire_if_needed(&mut self, key: &[u8]) {
        let expired = self.ks.get(key).is_some_and(|e| e.is_expired(self.now));
        if expired && self.primary {
            self.ks.remove(key);
            self.out.expired += 1;
            self.out.expired_keys.push((self.db, Bytes::copy_from_slice(key)));
            self.propagate(vec![Bytes::from_static(b"DEL"), Bytes::copy_from_slice(key)], &[key]);
        }
    }

    /// Deletes a live key; true when it existed.
    /// On a replica the key goes even when it has expired: the primary's DEL says so.
    fn delete(&mut self, key: &[u8]) -> bool {
        let live = self.exists(key);
        self.ks.remove(key);
        live
    }

    /// [`Ctx::delete`] for UNLINK: a big value is freed off the node's lock.
    fn unlink(&mut self, key: &[u8]) -> bool {
        let live = self.exists(key);
        if let Some(old) = self.ks.remove(key) {
            crate::lazyfree::free_value(old.value);
        }
        live
    }

    /// Deletes every key whose expiry has passed (primary only); at most `limit` per call.
    pub fn expire_cycle(&mut self, limit: usize) -> usize {
        let keys = self.ks.expired_keys(self.now, limit);
        for key in &keys {
            self.expire_if_needed(key);
        }
        keys.len()
    }
}

/// Outcome type of command functions: an error reply short-circuits with `?`.
pub(crate) type CmdResult = Result<Reply, Reply>;

#[cfg(test)]
mod adversarial;
#[cfg(test)]
mod tests;
