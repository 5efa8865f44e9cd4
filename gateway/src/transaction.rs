//! MULTI / EXEC / DISCARD / WATCH / UNWATCH on a client connection. Commands after MULTI are
//! checked (unknown or wrong arity: the transaction is flagged and EXEC answers EXECABORT)
//! and queued; EXEC sends them, with the WATCH tokens, to the node as one unit that runs
//! atomically there. Gateway-answered commands (PING, ECHO, ...) are answered at queue time
//! and slotted into EXEC's reply in order.

use bytes::Bytes;
use ferrocache_common::Reply;

/// A command waiting for EXEC.
pub enum Queued {
    /// Runs on the node.
    Remote(Vec<Bytes>),
    /// Answered by the gateway.
    Local(Reply),
}

#[derive(Default)]
pub struct Multi {
    pub queued: Vec<Queued>,
    /// Bytes of the queued commands' arguments (CLIENT LIST's multi-mem).
    pub bytes: usize,
    /// An error while queueing: EXEC answers EXECABORT.
    pub dirty: bool,
}

/// A connection's transaction state.
#[derive(Default)]
pub struct TxState {
    pub multi: Option<Multi>,
    /// WATCHed keys (with the database they were watched in) and the node's tokens.
    pub watches: Vec<(usize, Bytes, Bytes)>,
}

impl TxState {
    pub fn in_multi(&self) -> bool {
        self.multi.is_some()
    }

    /// Marks the open transaction as failed (a queueing error).
    pub fn flag(&mut self) {
        if let Some(m) = &mut self.multi {
            m.dirty = true;
        }
    }
}

/// EXEC's reply: the node's replies with the gateway's slotted in where they were queued.
pub fn merge(queued_local: Vec<Option<Reply>>, node: Reply) -> Reply {
    let Reply::Array(remote) = node else { return node };
    let mut remote = remote.into_iter();
    let merged = queued_local.into_iter().map(|local| local.or_else(|| remote.next()).unwrap_or(Reply::NullBulk));
    Reply::Array(merged.collect())
}

pub const EXECABORT: &str = "EXECABORT Transaction discarded because of previous errors.";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_replies_keep_their_place() {
        let merged = merge(
            vec![None, Some(Reply::Simple("PONG".into())), None],
            Reply::Array(vec![Reply::Integer(1), Reply::Integer(2)]),
        );
        assert_eq!(merged, Reply::Array(vec![Reply::Integer(1), Reply::Simple("PONG".into()), Reply::Integer(2)]));
        assert_eq!(merge(vec![None], Reply::NullArray), Reply::NullArray, "an aborted EXEC stays nil");
    }
}
