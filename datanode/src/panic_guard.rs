//! What a command that panics does to its node.
//!
//! Commands never should panic (`cmd/adversarial.rs` hunts for ones that do), but a bug
//! that slips through must not leave a primary serving a keyspace that differs from its
//! replicas and its disk. A command that panics may have changed part of what it meant to
//! change, and nothing of it was replicated or stored, so:
//! - a read that panics changed nothing a client can see: its client gets an error and the
//!   batch goes on;
//! - a write (or a replica applying its primary's effects) may have changed anything: the
//!   datanode stops at once, as Redis does on a failed assertion. Its primaries fail over
//!   to replicas that never saw the half-applied write, and on restart it recovers from
//!   what it had stored, then resyncs.

use std::panic::{catch_unwind, AssertUnwindSafe};

use ferrocache_common::Reply;

/// Runs `f` (one command of a batch); see the module doc for what a panic does.
/// `name` is the command's, for the log.
pub fn run<T>(node: &str, name: &str, is_write: bool, f: impl FnOnce() -> T) -> Result<T, Reply> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => Ok(v),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            if is_write {
                tracing::error!(node, command = %name, panic = %what, "a write panicked: stopping the datanode so its primaries fail over");
                eprintln!("ferrocache datanode: the write '{name}' panicked on node {node} ({what}); stopping");
                std::process::abort();
            }
            tracing::error!(node, command = %name, panic = %what, "a read panicked; answered with an error");
            Err(Reply::error(format!("ERR internal error while running '{name}' (a bug, logged by the datanode)")))
        }
    }
}
