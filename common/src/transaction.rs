//! The wire form of a MULTI/EXEC transaction between gateway and datanode: the gateway
//! queues the commands and sends them, with the client's WATCH tokens, as one `EXEC` command
//! that the node runs atomically.

use bytes::Bytes;

use crate::Reply;

fn parse_count(arg: Option<&Bytes>) -> Option<usize> {
    std::str::from_utf8(arg?).ok()?.parse().ok()
}

/// A transaction as the gateway sends it:
/// `EXEC <n watches> [<key> <token>]... <n commands> [<argc> <arg>...]...`
#[derive(Debug, Default, PartialEq)]
pub struct Transaction {
    pub watches: Vec<(Bytes, Bytes)>,
    pub commands: Vec<Vec<Bytes>>,
}

impl Transaction {
    pub fn parse(args: &[Bytes]) -> Result<Transaction, Reply> {
        let bad = || Reply::error("ERR malformed transaction");
        let mut it = args.iter().skip(1);
        let count = |it: &mut std::iter::Skip<std::slice::Iter<'_, Bytes>>| parse_count(it.next()).ok_or_else(bad);
        let mut t = Transaction::default();
        for _ in 0..count(&mut it)? {
            let key = it.next().ok_or_else(bad)?.clone();
            let token = it.next().ok_or_else(bad)?.clone();
            t.watches.push((key, token));
        }
        for _ in 0..count(&mut it)? {
            let argc = count(&mut it)?;
            let command: Vec<Bytes> = it.by_ref().take(argc).cloned().collect();
            if command.len() != argc || argc == 0 {
                return Err(bad());
            }
            t.commands.push(command);
        }
        if it.next().is_some() {
            return Err(bad());
        }
        Ok(t)
    }

    /// The wire form (what the gateway sends).
    pub fn encode(&self) -> Vec<Bytes> {
        let mut out = vec![Bytes::from_static(b"EXEC"), Bytes::from(self.watches.len().to_string())];
        for (k, t) in &self.watches {
            out.push(k.clone());
            out.push(t.clone());
        }
        out.push(Bytes::from(self.commands.len().to_string()));
        for c in &self.commands {
            out.push(Bytes::from(c.len().to_string()));
            out.extend(c.iter().cloned());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transactions_round_trip_and_reject_garbage() {
        let t = Transaction {
            watches: vec![(Bytes::from("k"), Bytes::from("tok"))],
            commands: vec![
                vec![Bytes::from("SET"), Bytes::from("a"), Bytes::from("1")],
                vec![Bytes::from("INCR"), Bytes::from("a")],
            ],
        };
        assert_eq!(Transaction::parse(&t.encode()).unwrap(), t);
        let mut bad = t.encode();
        bad.pop();
        assert!(Transaction::parse(&bad).is_err());
        bad.push(Bytes::from("a"));
        bad.push(Bytes::from("extra"));
        assert!(Transaction::parse(&bad).is_err());
    }
}
