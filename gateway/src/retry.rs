//! Which failed replies the gateway may retry on the client's behalf during a failover.
//!
//! A command that certainly did not run (the node refused it before executing: stale
//! configuration, lapsed lease, demoted primary, node not reachable or not open yet) is
//! sent again once the routes change, reads and writes alike. A command whose fate is
//! unknown (the link broke while it was in flight) is retried only when it is a read;
//! a write then gets the error, so the client learns it may or may not have run.

use ferrocache_common::Reply;

/// What a reply says about the command that produced it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A real answer (including ordinary Redis errors): hand it to the client.
    Final,
    /// Refused before it ran: safe to send again.
    NotRun,
    /// May or may not have run.
    Unknown,
}

/// Classifies a reply; `sent_readonly` says whether the command went out as a read-only one
/// (a READONLY answer to a command sent to a primary means the primary was demoted).
pub fn classify(reply: &Reply, sent_readonly: bool) -> Outcome {
    let Reply::Error(e) = reply else { return Outcome::Final };
    if e.starts_with("TRYAGAIN ") || e.starts_with("CLUSTERDOWN ") || (e.starts_with("READONLY ") && !sent_readonly) {
        Outcome::NotRun
    } else if e.starts_with(crate::link::CONNECTION_LOST) {
        Outcome::Unknown
    } else {
        Outcome::Final
    }
}

/// Whether a command with this outcome may be sent again.
pub fn retryable(outcome: Outcome, is_write: bool) -> bool {
    match outcome {
        Outcome::Final => false,
        Outcome::NotRun => true,
        Outcome::Unknown => !is_write,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_retried_and_lost_writes_are_not() {
        let e = |s: &str| Reply::error(s.to_string());
        assert_eq!(classify(&e("TRYAGAIN stale configuration"), false), Outcome::NotRun);
        assert_eq!(classify(&e("READONLY You can't write against a read only replica."), false), Outcome::NotRun);
        assert_eq!(classify(&e("READONLY You can't write against a read only replica."), true), Outcome::Final);
        assert_eq!(
            classify(&e("ERR connection to node n lost; the command may or may not have run"), false),
            Outcome::Unknown
        );
        assert_eq!(
            classify(&e("WRONGTYPE Operation against a key holding the wrong kind of value"), false),
            Outcome::Final
        );
        assert_eq!(classify(&Reply::Integer(1), false), Outcome::Final);
        assert!(retryable(Outcome::Unknown, false));
        assert!(!retryable(Outcome::Unknown, true));
        assert!(retryable(Outcome::NotRun, true));
    }
}
