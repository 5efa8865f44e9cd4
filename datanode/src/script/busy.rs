//! The script running on a node, as seen from outside the node's lock: Redis's busy state.
//!
//! A script runs under the node's lock and may run long. Everything that would wait for
//! that lock from the async side asks here first: until `busy-reply-threshold` it waits for
//! the script to end (as a Redis client waits on a busy server), past it a client's commands
//! are answered BUSY, except SCRIPT KILL / FUNCTION KILL / FUNCTION STATS, which are answered
//! from here. The script's Lua hook reads the kill flag.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferrocache_common::Reply;
use parking_lot::Mutex;

/// Redis's default `busy-reply-threshold` (ms).
pub const DEFAULT_THRESHOLD_MS: u64 = 5000;

const BUSY_EVAL: &str = "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";
const BUSY_FUNCTION: &str = "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.";
const UNKILLABLE: &str = "UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.";
const NOTBUSY: &str = "NOTBUSY No scripts in execution right now.";

/// What runs: an EVAL-family script, or a function (its name, FCALL's arguments and
/// FUNCTION STATS as of its start, for FUNCTION STATS while it runs).
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Eval,
    Function { name: Bytes, command: Vec<Bytes>, stats: Reply },
}

#[derive(Debug)]
struct Running {
    since: Instant,
    kind: Kind,
    /// It has called a write command: killing it would leave half its effects (UNKILLABLE).
    wrote: bool,
}

/// What a command waiting for the node should do.
#[derive(Debug, PartialEq)]
pub enum Gate {
    /// No script runs: take the lock.
    Free,
    /// A script has run past the threshold: answer from here.
    Busy,
}

pub struct Busy {
    running: Mutex<Option<Running>>,
    kill: AtomicBool,
    threshold_ms: AtomicU64,
    ended: tokio::sync::Notify,
}

impl Default for Busy {
    fn default() -> Self {
        Busy {
            running: Mutex::new(None),
            kill: AtomicBool::new(false),
            threshold_ms: AtomicU64::new(DEFAULT_THRESHOLD_MS),
            ended: tokio::sync::Notify::new(),
        }
    }
}

/// Ends the run it was made for when dropped, however the script ends.
pub struct RunGuard(Arc<Busy>);

impl Drop for RunGuard {
    fn drop(&mut self) {
        *self.0.running.lock() = None;
        self.0.kill.store(false, Ordering::Release);
        self.0.ended.notify_waiters();
    }
}

impl Busy {
    pub fn set_threshold(&self, ms: u64) {
        self.threshold_ms.store(ms, Ordering::Relaxed);
    }

    fn threshold(&self) -> Duration {
        Duration::from_millis(self.threshold_ms.load(Ordering::Relaxed))
    }

    /// A script starts (under the node lock); it counts as running until the guard drops.
    pub fn start(self: &Arc<Self>, kind: Kind) -> RunGuard {
        self.kill.store(false, Ordering::Release);
        *self.running.lock() = Some(Running { since: Instant::now(), kind, wrote: false });
        RunGuard(self.clone())
    }

    /// The running script called a write command.
    pub fn note_write(&self) {
        if let Some(r) = self.running.lock().as_mut() {
            r.wrote = true;
        }
    }

    /// SCRIPT KILL or FUNCTION KILL asked the running script to stop.
    pub fn kill_requested(&self) -> bool {
        self.kill.load(Ordering::Acquire)
    }

    pub fn running(&self) -> bool {
        self.running.lock().is_some()
    }

    /// Waits while a script runs, up to the threshold from its start; never longer.
    pub async fn gate(&self) -> Gate {
        loop {
            let notified = self.ended.notified();
            let since = match self.running.lock().as_ref() {
                None => return Gate::Free,
                Some(r) => r.since,
            };
            let Some(left) = self.threshold().checked_sub(since.elapsed()).filter(|d| !d.is_zero()) else {
                return Gate::Busy;
            };
            // Woken when it ends; the timeout catches the threshold (and a missed wake-up).
            let _ = tokio::time::timeout(left.min(Duration::from_millis(100)), notified).await;
        }
    }

    /// Waits until no script runs, at most `max`.
    pub async fn wait_idle(&self, max: Duration) {
        let deadline = tokio::time::Instant::now() + max;
        loop {
            let notified = self.ended.notified();
            if !self.running() {
                return;
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return;
            }
            let _ = tokio::time::timeout((deadline - now).min(Duration::from_millis(100)), notified).await;
        }
    }

    /// The BUSY error for a command refused while the script runs (it names the KILL that
    /// applies, as Redis does).
    pub fn busy_error(&self) -> Reply {
        match self.running.lock().as_ref().map(|r| &r.kind) {
            Some(Kind::Function { .. }) => Reply::error(BUSY_FUNCTION),
            _ => Reply::error(BUSY_EVAL),
        }
    }

    /// SCRIPT KILL (`eval`) or FUNCTION KILL, with Redis's checks in Redis's order.
    pub fn kill(&self, eval: bool) -> Reply {
        let running = self.running.lock();
        let Some(r) = running.as_ref() else {
            return Reply::error(NOTBUSY);
        };
        if r.wrote {
            return Reply::error(UNKILLABLE);
        }
        match (&r.kind, eval) {
            (Kind::Eval, true) | (Kind::Function { .. }, false) => {
                self.kill.store(true, Ordering::Release);
                Reply::ok()
            }
            (Kind::Function { .. }, true) => Reply::error(BUSY_FUNCTION),
            (Kind::Eval, false) => Reply::error(BUSY_EVAL),
        }
    }

    /// FUNCTION STATS while a function runs (None for a script: FUNCTION STATS is then
    /// refused BUSY, as in Redis).
    pub fn function_stats(&self) -> Option<Reply> {
        let running = self.running.lock();
        let r = running.as_ref()?;
        let Kind::Function { name, command, stats } = &r.kind else { return None };
        let Reply::Map(mut fields) = stats.clone() else { return None };
        let script = Reply::Map(vec![
            Reply::Bulk(Bytes::from_static(b"name")),
            Reply::Bulk(name.clone()),
            Reply::Bulk(Bytes::from_static(b"command")),
            Reply::Array(command.iter().cloned().map(Reply::Bulk).collect()),
            Reply::Bulk(Bytes::from_static(b"duration_ms")),
            Reply::Integer(r.since.elapsed().as_millis() as i64),
        ]);
        // `running_script` is the first field.
        if let Some(slot) = fields.get_mut(1) {
            *slot = script;
        }
        Some(Reply::Map(fields))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kill_follows_redis_checks() {
        let busy = Arc::new(Busy::default());
        assert_eq!(busy.kill(true), Reply::error(NOTBUSY));
        {
            let _run = busy.start(Kind::Eval);
            assert_eq!(busy.kill(false), Reply::error(BUSY_EVAL));
            assert!(!busy.kill_requested());
            assert_eq!(busy.kill(true), Reply::ok());
            assert!(busy.kill_requested());
        }
        assert!(!busy.running() && !busy.kill_requested());
        let stats = Reply::Map(vec![Reply::Bulk("running_script".into()), Reply::NullBulk]);
        let f = Kind::Function { name: "f".into(), command: vec!["FCALL".into()], stats };
        let _run = busy.start(f);
        assert_eq!(busy.kill(true), Reply::error(BUSY_FUNCTION));
        busy.note_write();
        assert_eq!(busy.kill(false), Reply::error(UNKILLABLE));
        let Some(Reply::Map(fields)) = busy.function_stats() else { panic!("no stats") };
        assert!(matches!(&fields[1], Reply::Map(m) if m[1] == Reply::Bulk("f".into())), "{fields:?}");
    }

    #[tokio::test]
    async fn gate_waits_until_the_threshold_only() {
        let busy = Arc::new(Busy::default());
        assert_eq!(busy.gate().await, Gate::Free);
        busy.set_threshold(150);
        let _run = busy.start(Kind::Eval);
        let started = Instant::now();
        assert_eq!(busy.gate().await, Gate::Busy);
        assert!(started.elapsed() >= Duration::from_millis(140), "{:?}", started.elapsed());
        assert_eq!(busy.busy_error(), Reply::error(BUSY_EVAL));
    }
}
