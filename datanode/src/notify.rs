//! Keyspace notifications (`notify-keyspace-events`): after a command changes keys, the
//! primary publishes Redis's events through its pub/sub broker, on `__keyspace@<db>__:<key>`
//! (message: the event) and `__keyevent@<db>__:<event>` (message: the key), for the classes
//! the group enabled.

use bytes::Bytes;
use ferrocache_common::parameters::notify;

use crate::cmd::DbKey;

/// One event: its class (a `notify` flag), its name and the key (with its database).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub class: u32,
    pub name: &'static str,
    pub db: usize,
    pub key: Bytes,
}

/// Which event a command fires for each key it changed: Redis's notifyKeyspaceEvent calls,
/// one rule per command, kept in the dispatch table (`cmd/dispatch.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// No event (reads, and writes Redis does not announce).
    Quiet,
    /// This event for every changed key.
    Each(u32, &'static str),
    /// This event for every changed key, but only `del` for a key the command deleted: an
    /// expiry in the past, a STORE (SORT ... STORE, BITOP) whose result is empty.
    OrDel(u32, &'static str),
    /// The first changed key fires the first event, the others the second (RENAME's
    /// rename_from / rename_to, SMOVE's srem / sadd).
    FromTo(u32, &'static str, &'static str),
    /// LMOVE / BLMOVE: lpop or rpop on the source and lpush or rpush on the destination, by
    /// the LEFT/RIGHT words at arguments 3 and 4.
    ListMove,
    /// RPOPLPUSH / BRPOPLPUSH: rpop on the source, lpush on the destination.
    PopPush,
    /// LMPOP / BLMPOP: lpop with LEFT, else rpop.
    ListMultiPop,
    /// ZMPOP / BZMPOP: zpopmax with MAX, else zpopmin.
    ZsetMultiPop,
    /// ZADD: zincr with INCR, else zadd.
    ZAdd,
    /// GETEX: persist with PERSIST, else expire (only del when EXAT/PXAT had passed).
    GetEx,
    /// XGROUP: `xgroup-<subcommand>` (create, setid, destroy, createconsumer, delconsumer).
    XGroup,
    /// SET, SETEX, PSETEX: `set`, then `expire` when it gave the key a time to live
    /// (`expires`: always, SETEX and PSETEX; else when SET has EX/PX/EXAT/PXAT).
    Set { expires: bool },
}

impl Rule {
    /// SETEX and PSETEX always, SET with EX/PX/EXAT/PXAT: the write also set an expiry.
    fn sets_expiry(self, args: &[Bytes]) -> bool {
        match self {
            Rule::Set { expires: true } => true,
            Rule::Set { expires: false } => {
                let word = |a: &Bytes| [&b"EX"[..], b"PX", b"EXAT", b"PXAT"].iter().any(|w| a.eq_ignore_ascii_case(w));
                args.iter().skip(3).any(word)
            }
            _ => false,
        }
    }

    /// The event for a changed key; `second`: not the first key the command changed.
    fn event(self, args: &[Bytes], second: bool) -> Option<(u32, &'static str)> {
        use notify::*;
        // LMPOP/ZMPOP's direction comes after the keys, last or before `COUNT n`: a key
        // named like the word must not count.
        let direction = |word: &[u8]| {
            let at = |back: usize| args.len().checked_sub(back).and_then(|i| args.get(i));
            let is_direction =
                |a: &&Bytes| [&b"LEFT"[..], b"RIGHT", b"MIN", b"MAX"].iter().any(|w| a.eq_ignore_ascii_case(w));
            at(1).filter(is_direction).or(at(3)).is_some_and(|a| a.eq_ignore_ascii_case(word))
        };
        Some(match self {
            Rule::Quiet => return None,
            Rule::Each(class, name) | Rule::OrDel(class, name) => (class, name),
            Rule::Set { .. } => (STRING, "set"),
            Rule::FromTo(class, first, _) if !second => (class, first),
            Rule::FromTo(class, _, other) => (class, other),
            Rule::ListMove => {
                let word = if second { args.get(4) } else { args.get(3) };
                let left = word.is_some_and(|w| w.eq_ignore_ascii_case(b"LEFT"));
                let name = match (second, left) {
                    (false, true) => "lpop",
                    (false, false) => "rpop",
                    (true, true) => "lpush",
                    (true, false) => "rpush",
                };
                (LIST, name)
            }
            Rule::PopPush => (LIST, if second { "lpush" } else { "rpop" }),
            Rule::ListMultiPop => (LIST, if direction(b"LEFT") { "lpop" } else { "rpop" }),
            Rule::ZsetMultiPop => (ZSET, if direction(b"MAX") { "zpopmax" } else { "zpopmin" }),
            Rule::ZAdd => {
                // The options come before the first score: INCR among them, not a member.
                let options = args.iter().skip(2).take_while(|a| {
                    [&b"NX"[..], b"XX", b"GT", b"LT", b"CH", b"INCR"].iter().any(|w| a.eq_ignore_ascii_case(w))
                });
                let incr = options.into_iter().any(|a| a.eq_ignore_ascii_case(b"INCR"));
                (ZSET, if incr { "zincr" } else { "zadd" })
            }
            Rule::GetEx => {
                let persist = args.iter().skip(2).any(|a| a.eq_ignore_ascii_case(b"PERSIST"));
                (GENERIC, if persist { "persist" } else { "expire" })
            }
            Rule::XGroup => {
                let sub = args.get(1).map(|a| a.to_ascii_lowercase()).unwrap_or_default();
                let name = match sub.as_slice() {
                    b"create" => "xgroup-create",
                    b"setid" => "xgroup-setid",
                    b"destroy" => "xgroup-destroy",
                    b"createconsumer" => "xgroup-createconsumer",
                    b"delconsumer" => "xgroup-delconsumer",
                    _ => return None,
                };
                (STREAM, name)
            }
        })
    }
}

/// The events of one command (fired under `rule`) that changed `changed` keys; `gone`
/// tells whether a key no longer exists afterwards (an emptied collection also fires `del`,
/// as in Redis).
pub fn command_events(
    rule: Rule,
    args: &[Bytes],
    changed: &[DbKey],
    gone: impl Fn(usize, &[u8]) -> bool,
) -> Vec<Event> {
    let mut out = Vec::new();
    if let Some(events) = list_move_events(rule, args, changed, &gone) {
        return events;
    }
    let mut seen: Vec<&DbKey> = Vec::new();
    for changed in changed {
        if seen.contains(&changed) {
            continue;
        }
        let second = !seen.is_empty();
        seen.push(changed);
        let (db, key) = changed;
        let Some((class, event)) = rule.event(args, second) else { continue };
        if matches!(rule, Rule::OrDel(..) | Rule::GetEx) && gone(*db, key) {
            out.push(Event { class: notify::GENERIC, name: "del", db: *db, key: key.clone() });
            continue;
        }
        out.push(Event { class, name: event, db: *db, key: key.clone() });
        if rule.sets_expiry(args) {
            out.push(Event { class: notify::GENERIC, name: "expire", db: *db, key: key.clone() });
            if gone(*db, key) {
                // A SET whose expiry time had already passed: the key expired at once.
                out.push(Event { class: notify::EXPIRED, name: "expired", db: *db, key: key.clone() });
                continue;
            }
        }
        let deleting = matches!(event, "del" | "rename_from" | "move_from");
        if !deleting && gone(*db, key) && class != notify::GENERIC {
            out.push(Event { class: notify::GENERIC, name: "del", db: *db, key: key.clone() });
        }
    }
    out
}

/// LMOVE, BLMOVE, RPOPLPUSH and BRPOPLPUSH announce as Redis does: the push on the
/// destination first, then the pop on the source (then `del` if the source emptied), both
/// even when source and destination are one list. None for other rules.
fn list_move_events(
    rule: Rule,
    args: &[Bytes],
    changed: &[DbKey],
    gone: &impl Fn(usize, &[u8]) -> bool,
) -> Option<Vec<Event>> {
    if !matches!(rule, Rule::ListMove | Rule::PopPush) {
        return None;
    }
    let (Some((db, _)), Some(source), Some(destination)) = (changed.first(), args.get(1), args.get(2)) else {
        return Some(Vec::new());
    };
    let (_, pop) = rule.event(args, false)?;
    let (_, push) = rule.event(args, true)?;
    let mut out = vec![
        Event { class: notify::LIST, name: push, db: *db, key: destination.clone() },
        Event { class: notify::LIST, name: pop, db: *db, key: source.clone() },
    ];
    if gone(*db, source) {
        out.push(Event { class: notify::GENERIC, name: "del", db: *db, key: source.clone() });
    }
    Some(out)
}

/// The events of a command that just ran: for the keys it made dirty since `dirty_from`,
/// less those that merely expired (they fire `expired` on their own).
pub fn events_since(
    gone: impl Fn(usize, &[u8]) -> bool,
    rule: Rule,
    args: &[Bytes],
    out: &crate::cmd::WriteSet,
    dirty_from: usize,
    expired_from: usize,
) -> Vec<Event> {
    if out.dirty.len() == dirty_from {
        return Vec::new();
    }
    let expired = &out.expired_keys[expired_from..];
    let changed: Vec<DbKey> = out.dirty[dirty_from..].iter().filter(|k| !expired.contains(k)).cloned().collect();
    command_events(rule, args, &changed, gone)
}

/// The (channel, message) pairs to publish for `events` under the `flags` in force.
pub fn messages(flags: u32, events: &[Event]) -> Vec<(Bytes, Bytes)> {
    let mut out = Vec::new();
    for e in events.iter().filter(|e| flags & e.class != 0) {
        if flags & notify::KEYSPACE != 0 {
            let mut channel = format!("__keyspace@{}__:", e.db).into_bytes();
            channel.extend_from_slice(&e.key);
            out.push((Bytes::from(channel), Bytes::from_static(e.name.as_bytes())));
        }
        if flags & notify::KEYEVENT != 0 {
            out.push((Bytes::from(format!("__keyevent@{}__:{}", e.db, e.name)), e.key.clone()));
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
        let rule = |args: &[Bytes]| crate::cmd::Command::resolve(args).map(|c| c.rule()).unwrap_or(Rule::Quiet);
        let events_of = |args: &[Bytes], changed: &[Bytes], gone: &dyn Fn(&[u8]) -> bool| {
            let changed: Vec<DbKey> = changed.iter().map(|k| (0, k.clone())).collect();
            command_events(rule(args), args, &changed, |_, k| gone(k))
        };
        let events = events_of(&[b("LPOP"), b("l")], &[b("l")], &|_| true);
        assert_eq!(events.iter().map(|e| e.name).collect::<Vec<_>>(), ["lpop", "del"]);
        let names = |events: Vec<Event>| events.iter().map(|e| e.name).collect::<Vec<_>>();
        let lmove = [b("LMOVE"), b("a"), b("b"), b("LEFT"), b("RIGHT")];
        assert_eq!(names(events_of(&lmove, &[b("a"), b("b")], &|k| k == b"a")), ["rpush", "lpop", "del"]);
        let same = [b("RPOPLPUSH"), b("a"), b("a")];
        assert_eq!(names(events_of(&same, &[b("a")], &|_| false)), ["lpush", "rpop"]);
        assert_eq!(names(events_of(&[b("EXPIRE"), b("k"), b("-1")], &[b("k")], &|_| true)), ["del"]);
        assert_eq!(names(events_of(&[b("SDIFFSTORE"), b("d"), b("x")], &[b("d")], &|_| true)), ["del"]);
        assert_eq!(names(events_of(&[b("BITOP"), b("AND"), b("d"), b("x")], &[b("d")], &|_| true)), ["del"]);
        assert_eq!(names(events_of(&[b("GETEX"), b("k"), b("PXAT"), b("1")], &[b("k")], &|_| true)), ["del"]);
        assert_eq!(
            names(events_of(&[b("ZADD"), b("z"), b("XX"), b("INCR"), b("1"), b("m")], &[b("z")], &|_| false)),
            ["zincr"]
        );
        assert_eq!(names(events_of(&[b("ZADD"), b("z"), b("1"), b("INCR")], &[b("z")], &|_| false)), ["zadd"]);
        assert_eq!(names(events_of(&[b("BITOP"), b("AND"), b("d"), b("x")], &[b("d")], &|_| false)), ["set"]);
        let past = [b("SET"), b("k"), b("v"), b("EXAT"), b("1")];
        assert_eq!(names(events_of(&past, &[b("k")], &|_| true)), ["set", "expire", "expired"]);
        let events = events_of(&[b("RENAME"), b("a"), b("b")], &[b("a"), b("b")], &|k| k == b"a");
        assert_eq!(events.iter().map(|e| e.name).collect::<Vec<_>>(), ["rename_from", "rename_to"]);
        let events = events_of(&[b("LMOVE"), b("s"), b("d"), b("LEFT"), b("RIGHT")], &[b("s"), b("d")], &|_| false);
        // Redis announces the push before the pop (checked against redis-server).
        assert_eq!(events.iter().map(|e| e.name).collect::<Vec<_>>(), ["rpush", "lpop"]);
        // A key named like a direction word is not the direction.
        let events = events_of(&[b("LMPOP"), b("2"), b("left"), b("b"), b("RIGHT")], &[b("left")], &|_| false);
        assert_eq!(events[0].name, "rpop");
        let events = events_of(&[b("ZMPOP"), b("1"), b("z"), b("MAX"), b("COUNT"), b("2")], &[b("z")], &|_| false);
        assert_eq!(events[0].name, "zpopmax");
        let flags = notify::parse("KEA").unwrap_or(0);
        let msgs = messages(flags, &events_of(&[b("SET"), b("k"), b("v")], &[b("k")], &|_| false));
        assert_eq!(msgs, vec![(b("__keyspace@0__:k"), b("set")), (b("__keyevent@0__:set"), b("k"))]);
        assert!(messages(
            notify::parse("Kl").unwrap_or(0),
            &[Event { class: notify::STRING, name: "set", db: 0, key: b("k") }]
        )
        .is_empty());
        // MOVE fires move_from in the source database and move_to in the target.
        let moved = command_events(
            rule(&[b("MOVE"), b("k"), b("3")]),
            &[b("MOVE"), b("k"), b("3")],
            &[(0, b("k")), (3, b("k"))],
            |db, _| db == 0,
        );
        let msgs = messages(flags, &moved);
        assert_eq!(msgs[0], (b("__keyspace@0__:k"), b("move_from")));
        assert_eq!(msgs[3], (b("__keyevent@3__:move_to"), b("k")));
        assert_eq!(msgs.len(), 4);
    }
}
