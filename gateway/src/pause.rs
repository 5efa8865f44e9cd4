//! CLIENT PAUSE / UNPAUSE: this gateway holds a group's client commands (all of them, or
//! writes only) until the pause ends or its timeout passes.

use ferrocache_common::command::CommandSpec;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::time::Instant;

#[derive(Default)]
pub struct Pause {
    /// Until when, and whether only writes wait.
    until: Mutex<Option<(Instant, bool)>>,
    /// Whether `until` may hold a pause: what every command reads, without the lock or the
    /// clock (cleared once a pause is found over).
    set: AtomicBool,
    resumed: tokio::sync::Notify,
    /// Clients whose command is held now: Redis counts them in INFO's blocked_clients.
    held: std::sync::atomic::AtomicUsize,
}

/// Counts a held client while it waits.
struct Held<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Pause {
    /// CLIENT PAUSE: a later pause replaces an earlier one only if it ends later or pauses
    /// more (as Redis keeps the stricter).
    pub fn pause(&self, until: Instant, writes_only: bool) {
        let mut current = self.until.lock();
        *current = Some(match *current {
            Some((t, w)) if t > Instant::now() => (t.max(until), w && writes_only),
            _ => (until, writes_only),
        });
        self.set.store(true, Ordering::Release);
    }

    pub fn unpause(&self) {
        let mut current = self.until.lock();
        *current = None;
        self.set.store(false, Ordering::Release);
        drop(current);
        self.resumed.notify_waiters();
    }

    /// Waits while the pause holds `spec` (CLIENT itself is never held, so UNPAUSE gets
    /// through; in WRITE mode only commands that may write wait: `writes_queued`, a call that
    /// writes although its spec does not say so, as FUNCTION LOAD or an EXEC whose
    /// transaction holds a write). True when it held it.
    pub async fn wait(&self, spec: &CommandSpec, writes_queued: bool) -> bool {
        if spec.name == "client" || !self.set.load(Ordering::Acquire) {
            return false;
        }
        let mut held: Option<Held<'_>> = None;
        loop {
            let resumed = self.resumed.notified();
            let state = {
                let mut current = self.until.lock();
                if current.is_some_and(|(until, _)| until <= Instant::now()) {
                    *current = None;
                    self.set.store(false, Ordering::Release);
                }
                *current
            };
            let Some((until, writes_only)) = state else { return held.is_some() };
            // WRITE mode holds what Redis holds: writes and every `may_replicate` command.
            let held_by_write_pause = replicates(spec) || writes_queued;
            if until <= Instant::now() || (writes_only && !held_by_write_pause) {
                return held.is_some();
            }
            if held.is_none() {
                self.held.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                held = Some(Held(&self.held));
            }
            let _ = tokio::time::timeout_at(until, resumed).await;
        }
    }

    /// How many clients the pause holds now.
    pub fn held(&self) -> usize {
        self.held.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// What a WRITE pause holds, as Redis: writes and every `may_replicate` command.
pub fn replicates(spec: &CommandSpec) -> bool {
    spec.is_write() || spec.has(ferrocache_common::command::Flag::MayReplicate)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrocache_common::command::lookup;
    use std::sync::Arc;

    #[tokio::test]
    async fn writes_wait_reads_pass_unpause_releases() {
        let p = Arc::new(Pause::default());
        let (get, set) = (lookup(b"get").unwrap(), lookup(b"set").unwrap());
        p.pause(Instant::now() + std::time::Duration::from_secs(30), true);
        tokio::time::timeout(std::time::Duration::from_millis(100), p.wait(get, false)).await.expect("reads pass");
        let exec = lookup(b"exec").unwrap();
        tokio::time::timeout(std::time::Duration::from_millis(100), p.wait(exec, false))
            .await
            .expect("a read EXEC passes");
        let waiting = tokio::spawn({
            let p = p.clone();
            async move { p.wait(set, false).await }
        });
        // PFCOUNT may replicate (it caches its estimate): a WRITE pause holds it too.
        let counting = tokio::spawn({
            let p = p.clone();
            async move { p.wait(lookup(b"pfcount").unwrap(), false).await }
        });
        // An EXEC whose transaction writes is held too.
        let exec_writes = tokio::spawn({
            let p = p.clone();
            async move { p.wait(lookup(b"exec").unwrap(), true).await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!waiting.is_finished() && !counting.is_finished() && !exec_writes.is_finished());
        assert_eq!(p.held(), 3);
        p.unpause();
        tokio::time::timeout(std::time::Duration::from_secs(1), waiting).await.expect("released").unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(1), counting).await.expect("released").unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(1), exec_writes).await.expect("released").unwrap();
        assert_eq!(p.held(), 0);
    }

    #[tokio::test]
    async fn a_pause_that_ran_out_is_forgotten_and_a_new_one_holds() {
        use std::time::Duration;
        let p = Arc::new(Pause::default());
        let set = lookup(b"set").unwrap();
        assert!(!p.set.load(Ordering::Acquire));
        p.pause(Instant::now() + Duration::from_millis(30), false);
        let held = tokio::time::timeout(Duration::from_secs(1), p.wait(set, false)).await.expect("let go when it ends");
        assert!(held);
        assert!(!p.set.load(Ordering::Acquire), "found over: commands pass without the lock again");
        p.pause(Instant::now() + Duration::from_secs(30), false);
        let waiting = tokio::spawn({
            let p = p.clone();
            async move { p.wait(set, false).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "a new pause holds again");
        p.unpause();
        assert!(tokio::time::timeout(Duration::from_secs(1), waiting).await.expect("released").unwrap());
    }
}
