//! A script keeping the group's primary busy: Redis answers BUSY to every command but the
//! `allow_busy` ones while a script runs past busy-reply-threshold, and the commands it
//! answers itself (PING, ECHO, CLIENT, ...) wait for the script until then. The node refuses
//! the data commands itself; for the ones the gateway answers, while a script this gateway
//! sent has been running for a while, it asks the primary first (a PING the node holds
//! and answers BUSY while it is busy).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// A script younger than this is not asked about: it most likely ends before a probe would.
pub const PROBE_AFTER: Duration = Duration::from_millis(1);

/// The scripts (EVAL, EVALSHA, FCALL and their _RO forms) this gateway sent to a group and
/// has not had the answer of.
#[derive(Default)]
pub struct ScriptsInFlight {
    next: AtomicU64,
    running: Mutex<HashMap<u64, Instant>>,
}

/// One script in flight; dropped when its answer arrives (or its client goes).
pub struct Running {
    scripts: Arc<ScriptsInFlight>,
    id: u64,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.scripts.running.lock().remove(&self.id);
    }
}

impl ScriptsInFlight {
    pub fn start(self: &Arc<Self>) -> Running {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.running.lock().insert(id, Instant::now());
        Running { scripts: self.clone(), id }
    }

    /// Whether a script has been running longer than [`PROBE_AFTER`].
    pub fn long_running(&self) -> bool {
        self.running.lock().values().any(|at| at.elapsed() >= PROBE_AFTER)
    }
}

/// The commands that are scripts.
pub fn is_script(name: &str) -> bool {
    matches!(name, "eval" | "evalsha" | "eval_ro" | "evalsha_ro" | "fcall" | "fcall_ro")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_script_counts_until_its_answer() {
        let scripts = Arc::new(ScriptsInFlight::default());
        assert!(!scripts.long_running());
        let running = scripts.start();
        std::thread::sleep(PROBE_AFTER * 2);
        assert!(scripts.long_running());
        drop(running);
        assert!(!scripts.long_running());
        assert!(is_script("fcall_ro") && !is_script("get"));
    }
}
