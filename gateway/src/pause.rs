//! CLIENT PAUSE / UNPAUSE: this gateway holds a group's client commands (all of them, or
//! writes only) until the pause ends or its timeout passes.

use ferrocache_common::command::CommandSpec;
use parking_lot::Mutex;
use tokio::time::Instant;

#[derive(Default)]
pub struct Pause {
    /// Until when, and whether only writes wait.
    until: Mutex<Option<(Instant, bool)>>,
    resumed: tokio::sync::Notify,
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
    }

    pub fn unpause(&self) {
        *self.until.lock() = None;
        self.resumed.notify_waiters();
    }

    /// Waits while the pause holds `spec` (CLIENT itself is never held, so UNPAUSE gets
    /// through; in WRITE mode only commands that may write wait). True when it held it.
    pub async fn wait(&self, spec: &CommandSpec) -> bool {
        if spec.name == "client" {
            return false;
        }
        let mut held = false;
        loop {
            let resumed = self.resumed.notified();
            let Some((until, writes_only)) = *self.until.lock() else { return held };
            if until <= Instant::now() || (writes_only && !spec.may_write()) {
                return held;
            }
            held = true;
            let _ = tokio::time::timeout_at(until, resumed).await;
        }
    }
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
        tokio::time::timeout(std::time::Duration::from_millis(100), p.wait(get)).await.expect("reads pass");
        let waiting = tokio::spawn({
            let p = p.clone();
            async move { p.wait(set).await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!waiting.is_finished());
        p.unpause();
        tokio::time::timeout(std::time::Duration::from_secs(1), waiting).await.expect("released").unwrap();
    }
}
