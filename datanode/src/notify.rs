//! Keyspace notifications (`notify-keyspace-events`): after a command changes keys, the
//! primary publishes Redis's events through its pub/sub broker, on `__keyspace@0__:<key>`
//! (message: the event) and `__keyevent@0__:<event>` (message: the key), for the classes the
//! group enabled.

use bytes::Bytes;
use ferrocache_common::parameters::notify;

/// One event: its class (a `notify` flag), its name and the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub class: u32,
    pub name: &'static str,
    pub key: Bytes,
}

/// Redis's event for a command that changed `key`; `position` is the key's place among the
/// command's changed keys (RENAME, LMOVE, SMOVE, COPY name their keys differently).
fn event_for(command: &str, args: &[Bytes], position: usize) -> Option<(u32, &'static str)> {
    use notify::*;
    let second = position > 0;
    Some(match command {
        "set" | "setex" | "psetex" | "setnx" | "getset" | "mset" | "msetnx" | "bitop" => (STRING, "set"),
        "setrange" => (STRING, "setrange"),
        "append" => (STRING, "append"),
        "incr" | "incrby" | "decr" | "decrby" => (STRING, "incrby"),
        "incrbyfloat" => (STRING, "incrbyfloat"),
        "setbit" | "bitfield" => (STRING, "setbit"),
        "pfadd" | "pfmerge" => (STRING, "pfadd"),
        "getdel" | "del" | "unlink" => (GENERIC, "del"),
        "getex" if args.iter().any(|a| a.eq_ignore_ascii_case(b"PERSIST")) => (GENERIC, "persist"),
        "getex" | "expire" | "pexpire" | "expireat" | "pexpireat" => (GENERIC, "expire"),
        "persist" => (GENERIC, "persist"),
        "rename" | "renamenx" if second => (GENERIC, "rename_to"),
        "rename" | "renamenx" => (GENERIC, "rename_from"),
        "copy" => (GENERIC, "copy_to"),
        "lpush" | "lpushx" => (LIST, "lpush"),
        "rpush" | "rpushx" => (LIST, "rpush"),
        "lpop" | "blpop" => (LIST, "lpop"),
        "rpop" | "brpop" => (LIST, "rpop"),
        "linsert" => (LIST, "linsert"),
        "lset" => (LIST, "lset"),
        "lrem" => (LIST, "lrem"),
        "ltrim" => (LIST, "ltrim"),
        "rpoplpush" | "brpoplpush" if second => (LIST, "lpush"),
        "rpoplpush" | "brpoplpush" => (LIST, "rpop"),
        "lmove" | "blmove" => {
            let word = if second { args.get(4) } else { args.get(3) };
            let left = word.is_some_and(|w| w.eq_ignore_ascii_case(b"LEFT"));
            match (second, left) {
                (false, true) => (LIST, "lpop"),
                (false, false) => (LIST, "rpop"),
                (true, true) => (LIST, "lpush"),
                (true, false) => (LIST, "rpush"),
            }
        }
        "lmpop" | "blmpop" => {
            let left = args.iter().any(|a| a.eq_ignore_ascii_case(b"LEFT"));
            (LIST, if left { "lpop" } else { "rpop" })
        }
        "hset" | "hmset" | "hsetnx" => (HASH, "hset"),
        "hdel" => (HASH, "hdel"),
        "hincrby" => (HASH, "hincrby"),
        "hincrbyfloat" => (HASH, "hincrbyfloat"),
        "sadd" => (SET, "sadd"),
        "srem" => (SET, "srem"),
        "spop" => (SET, "spop"),
        "smove" if second => (SET, "sadd"),
        "smove" => (SET, "srem"),
        "sinterstore" => (SET, "sinterstore"),
        "sunionstore" => (SET, "sunionstore"),
        "sdiffstore" => (SET, "sdiffstore"),
        "zadd" => (ZSET, "zadd"),
        "zincrby" => (ZSET, "zincr"),
        "zrem" => (ZSET, "zrem"),
        "zpopmin" | "bzpopmin" => (ZSET, "zpopmin"),
        "zpopmax" | "bzpopmax" => (ZSET, "zpopmax"),
        "zmpop" | "bzmpop" => {
            let max = args.iter().any(|a| a.eq_ignore_ascii_case(b"MAX"));
            (ZSET, if max { "zpopmax" } else { "zpopmin" })
        }
        "zremrangebyscore" => (ZSET, "zremrangebyscore"),
        "zremrangebyrank" => (ZSET, "zremrangebyrank"),
        "zremrangebylex" => (ZSET, "zremrangebylex"),
        "zunionstore" => (ZSET, "zunionstore"),
        "zinterstore" => (ZSET, "zinterstore"),
        "zdiffstore" => (ZSET, "zdiffstore"),
        "zrangestore" => (ZSET, "zrangestore"),
        _ => return None,
    })
}

/// The events of one command that changed `changed` keys; `gone` tells whether a key no
/// longer exists afterwards (an emptied collection also fires `del`, as in Redis).
pub fn command_events(args: &[Bytes], changed: &[Bytes], gone: impl Fn(&[u8]) -> bool) -> Vec<Event> {
    let Some(name) = args.first().map(|n| String::from_utf8_lossy(n).to_ascii_lowercase()) else { return Vec::new() };
    let mut out = Vec::new();
    let mut seen: Vec<&Bytes> = Vec::new();
    for key in changed {
        if seen.contains(&key) {
            continue;
        }
        let position = seen.len();
        seen.push(key);
        let Some((class, event)) = event_for(&name, args, position) else { continue };
        out.push(Event { class, name: event, key: key.clone() });
        let deleting = matches!(event, "del" | "rename_from");
        if !deleting && gone(key) && class != notify::GENERIC {
            out.push(Event { class: notify::GENERIC, name: "del", key: key.clone() });
        }
    }
    out
}

/// The (channel, message) pairs to publish for `events` under the `flags` in force.
pub fn messages(flags: u32, events: &[Event]) -> Vec<(Bytes, Bytes)> {
    let mut out = Vec::new();
    for e in events.iter().filter(|e| flags & e.class != 0) {
        if flags & notify::KEYSPACE != 0 {
            let mut channel = b"__keyspace@0__:".to_vec();
            channel.extend_from_slice(&e.key);
            out.push((Bytes::from(channel), Bytes::from_static(e.name.as_bytes())));
        }
        if flags & notify::KEYEVENT != 0 {
            out.push((Bytes::from(format!("__keyevent@0__:{}", e.name)), e.key.clone()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn events_follow_redis_names() {
        let events = command_events(&[b("LPOP"), b("l")], &[b("l")], |_| true);
        assert_eq!(events.iter().map(|e| e.name).collect::<Vec<_>>(), ["lpop", "del"]);
        let events = command_events(&[b("RENAME"), b("a"), b("b")], &[b("a"), b("b")], |k| k == b"a");
        assert_eq!(events.iter().map(|e| e.name).collect::<Vec<_>>(), ["rename_from", "rename_to"]);
        let events = command_events(&[b("LMOVE"), b("s"), b("d"), b("LEFT"), b("RIGHT")], &[b("s"), b("d")], |_| false);
        assert_eq!(events.iter().map(|e| e.name).collect::<Vec<_>>(), ["lpop", "rpush"]);
        let flags = notify::parse("KEA").unwrap_or(0);
        let msgs = messages(flags, &command_events(&[b("SET"), b("k"), b("v")], &[b("k")], |_| false));
        assert_eq!(msgs, vec![(b("__keyspace@0__:k"), b("set")), (b("__keyevent@0__:set"), b("k"))]);
        assert!(messages(
            notify::parse("Kl").unwrap_or(0),
            &[Event { class: notify::STRING, name: "set", key: b("k") }]
        )
        .is_empty());
    }
}
