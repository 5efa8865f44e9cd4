//! Generic key commands: DEL, EXISTS, expiry, TYPE, KEYS, SCAN, RENAME, COPY.

use bytes::Bytes;
use ferrocache_common::glob::glob_match;
use ferrocache_common::reply::errors;
use ferrocache_common::slot::SLOT_COUNT;
use ferrocache_common::Reply;

use super::args::{database_arg, eq_ignore_case, int_arg, int_bytes, parse_i64, syntax_error};
use super::{CmdResult, Ctx};
use crate::keyspace::Entry;
use crate::value::Value;

const DEL: Bytes = Bytes::from_static(b"DEL");

pub(super) fn del(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    remove(ctx, args, false)
}

/// UNLINK: DEL, with big values freed in the background (Redis's lazyfree).
pub(super) fn unlink(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    remove(ctx, args, true)
}

fn remove(ctx: &mut Ctx<'_>, args: &[Bytes], lazily: bool) -> CmdResult {
    let mut deleted = vec![DEL];
    for key in &args[1..] {
        let gone = if lazily { ctx.unlink(key) } else { ctx.delete(key) };
        if gone {
            deleted.push(key.clone());
        }
    }
    let n = deleted.len() as i64 - 1;
    if n > 0 {
        let keys: Vec<&[u8]> = deleted[1..].iter().map(|k| &k[..]).collect();
        ctx.propagate(deleted.clone(), &keys);
    }
    Ok(Reply::Integer(n))
}

/// EXISTS (which, as in Redis, does not count as an access) and TOUCH (which does).
pub(super) fn exists(ctx: &mut Ctx<'_>, args: &[Bytes], touch: bool) -> CmdResult {
    // TOUCH touches even for a CLIENT NO-TOUCH client, as in Redis.
    let no_touch = ctx.no_touch;
    ctx.no_touch = no_touch && !touch;
    let n = args[1..].iter().filter(|k| if touch { ctx.exists(k) } else { ctx.peek(k).is_some() }).count();
    ctx.no_touch = no_touch;
    Ok(Reply::Integer(n as i64))
}

pub(super) fn type_of(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    Ok(Reply::Simple(ctx.peek(&args[1]).map_or("none", |e| e.value.type_name()).into()))
}

/// EXPIRE / PEXPIRE (relative) and EXPIREAT / PEXPIREAT (absolute) with NX XX GT LT.
pub(super) fn expire(ctx: &mut Ctx<'_>, args: &[Bytes], unit: i64, absolute: bool) -> CmdResult {
    let key = &args[1];
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for a in &args[3..] {
        match a.to_ascii_uppercase().as_slice() {
            b"NX" => nx = true,
            b"XX" => xx = true,
            b"GT" => gt = true,
            b"LT" => lt = true,
            _ => return Err(Reply::error(format!("ERR Unsupported option {}", String::from_utf8_lossy(a)))),
        }
    }
    if nx && (xx || gt || lt) {
        return Err(Reply::error("ERR NX and XX, GT or LT options at the same time are not compatible"));
    }
    if gt && lt {
        return Err(Reply::error("ERR GT and LT options at the same time are not compatible"));
    }
    // The options are checked before the time, as Redis does.
    let n = int_arg(&args[2])?;
    let name = match (unit, absolute) {
        (1000, false) => "expire",
        (1000, true) => "expireat",
        (_, false) => "pexpire",
        (_, true) => "pexpireat",
    };
    let invalid = || Reply::error(errors::invalid_expire(name));
    let mut at = n.checked_mul(unit).ok_or_else(invalid)?;
    if !absolute {
        at = at.checked_add(ctx.now).ok_or_else(invalid)?;
    }
    let Some(current) = ctx.lookup(key).map(|e| e.expires_at) else {
        return Ok(Reply::Integer(0));
    };
    let refused = (nx && current != 0)
        || (xx && current == 0)
        || (gt && (current == 0 || at <= current))
        || (lt && current != 0 && at >= current);
    if refused {
        return Ok(Reply::Integer(0));
    }
    if at <= ctx.now {
        ctx.ks.remove(key);
        ctx.propagate(vec![DEL, key.clone()], &[key]);
    } else {
        ctx.ks.set_expiry(key, at);
        ctx.propagate(vec![Bytes::from_static(b"PEXPIREAT"), key.clone(), int_bytes(at)], &[key]);
    }
    Ok(Reply::Integer(1))
}

pub(super) fn persist(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    if ctx.lookup(key).is_none_or(|e| e.expires_at == 0) {
        return Ok(Reply::Integer(0));
    }
    ctx.ks.set_expiry(key, 0);
    ctx.propagate(args.to_vec(), &[key]);
    Ok(Reply::Integer(1))
}

/// TTL (unit 1000, rounded as Redis rounds) and PTTL (unit 1).
pub(super) fn ttl(ctx: &mut Ctx<'_>, args: &[Bytes], unit: i64) -> CmdResult {
    let now = ctx.now;
    Ok(Reply::Integer(match ctx.peek(&args[1]) {
        None => -2,
        Some(e) if e.expires_at == 0 => -1,
        Some(e) => {
            let left = (e.expires_at - now).max(0);
            if unit == 1 {
                left
            } else {
                (left + 500) / 1000
            }
        }
    }))
}

pub(super) fn expiretime(ctx: &mut Ctx<'_>, args: &[Bytes], unit: i64) -> CmdResult {
    Ok(Reply::Integer(match ctx.peek(&args[1]) {
        None => -2,
        Some(e) if e.expires_at == 0 => -1,
        // Seconds are rounded to the nearest, as Redis rounds TTL and EXPIRETIME alike.
        Some(e) if unit == 1000 => (e.expires_at + 500) / 1000,
        Some(e) => e.expires_at / unit,
    }))
}

pub(super) fn keys(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let pattern = &args[1];
    let now = ctx.now;
    let all = pattern.as_ref() == b"*";
    let found = ctx
        .ks
        .iter()
        .filter(|(k, e)| !e.is_expired(now) && (all || glob_match(pattern, k)))
        .map(|(k, _)| Reply::Bulk(Bytes::copy_from_slice(k)))
        .collect();
    Ok(Reply::Array(found))
}

/// SCAN walks one hash slot at a time; the cursor is the next slot to visit. A key present
/// for the whole iteration is returned at least once, as Redis promises.
pub(super) fn scan(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let cursor: u64 = std::str::from_utf8(&args[1])
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Reply::error("ERR invalid cursor"))?;
    let (mut pattern, mut count, mut type_filter) = (None, 10usize, None);
    let mut i = 2;
    while i < args.len() {
        let Some(value) = args.get(i + 1) else {
            return Err(syntax_error());
        };
        if eq_ignore_case(&args[i], "MATCH") {
            pattern = Some(value.clone());
        } else if eq_ignore_case(&args[i], "COUNT") {
            let n = int_arg(value)?;
            if n < 1 {
                return Err(syntax_error());
            }
            count = n as usize;
        } else if eq_ignore_case(&args[i], "TYPE") {
            type_filter = Some(String::from_utf8_lossy(value).to_ascii_lowercase());
        } else {
            return Err(syntax_error());
        }
        i += 2;
    }
    let now = ctx.now;
    let mut slot = cursor.min(SLOT_COUNT as u64) as u16;
    let (mut keys, mut visited) = (Vec::new(), 0usize);
    while slot < SLOT_COUNT && visited < count {
        for (k, e) in ctx.ks.slot_entries(slot) {
            visited += 1;
            let matches = !e.is_expired(now)
                && pattern.as_ref().is_none_or(|p| glob_match(p, k))
                && type_filter.as_deref().is_none_or(|t| t == e.value.type_name());
            if matches {
                keys.push(Reply::Bulk(Bytes::copy_from_slice(k)));
            }
        }
        slot += 1;
    }
    let next = if slot >= SLOT_COUNT { 0 } else { slot as i64 };
    Ok(Reply::Array(vec![Reply::Bulk(int_bytes(next)), Reply::Array(keys)]))
}

/// CLUSTER COUNTKEYSINSLOT / GETKEYSINSLOT (the gateway answers the other subcommands).
pub(super) fn cluster(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let slot = args.get(2).and_then(|a| parse_i64(a)).filter(|s| (0..SLOT_COUNT as i64).contains(s));
    let now = ctx.now;
    let live = |e: &Entry| !e.is_expired(now);
    match (args[1].to_ascii_lowercase().as_slice(), slot, args.len()) {
        (b"countkeysinslot", Some(slot), 3) => {
            Ok(Reply::Integer(ctx.ks.slot_entries(slot as u16).filter(|(_, e)| live(e)).count() as i64))
        }
        (b"getkeysinslot", Some(slot), 4) => {
            let count =
                parse_i64(&args[3]).filter(|n| *n >= 0).ok_or_else(|| Reply::error("ERR Invalid number of keys"))?;
            let keys = ctx.ks.slot_entries(slot as u16).filter(|(_, e)| live(e)).take(count as usize);
            Ok(Reply::Array(keys.map(|(k, _)| Reply::Bulk(Bytes::copy_from_slice(k))).collect()))
        }
        (b"countkeysinslot" | b"getkeysinslot", None, _) => Err(Reply::error("ERR Invalid or out of range slot")),
        _ => Err(Reply::error("ERR this CLUSTER subcommand is answered by the gateway")),
    }
}

pub(super) fn randomkey(ctx: &mut Ctx<'_>) -> CmdResult {
    for _ in 0..100 {
        let Some(key) = ctx.ks.random_key(rand::random()) else {
            break;
        };
        if ctx.exists(&key) {
            return Ok(Reply::Bulk(key));
        }
    }
    Ok(Reply::NullBulk)
}

pub(super) fn rename(ctx: &mut Ctx<'_>, args: &[Bytes], nx: bool) -> CmdResult {
    let (src, dst) = (&args[1], &args[2]);
    if !ctx.exists(src) {
        return Err(Reply::error(errors::NO_SUCH_KEY));
    }
    let answer = |done: bool| {
        if nx {
            Reply::Integer(done as i64)
        } else {
            Reply::ok()
        }
    };
    if src == dst {
        return Ok(answer(false));
    }
    if nx && ctx.exists(dst) {
        return Ok(answer(false));
    }
    if let Some(entry) = ctx.ks.remove(src) {
        ctx.ks.insert(dst, entry);
    }
    ctx.propagate(args.to_vec(), &[src, dst]);
    Ok(answer(true))
}

pub(super) fn copy(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (src, dst) = (&args[1], &args[2]);
    let mut replace = false;
    let mut db = ctx.db;
    let mut i = 3;
    while i < args.len() {
        if eq_ignore_case(&args[i], "REPLACE") {
            replace = true;
        } else if eq_ignore_case(&args[i], "DB") && i + 1 < args.len() {
            db = database_arg(&args[i + 1])?;
            i += 1;
        } else {
            return Err(syntax_error());
        }
        i += 1;
    }
    if src == dst && db == ctx.db {
        return Err(Reply::error("ERR source and destination objects are the same"));
    }
    let Some(entry) = ctx.lookup(src).cloned() else {
        return Ok(Reply::Integer(0));
    };
    if db == ctx.db {
        if ctx.exists(dst) && !replace {
            return Ok(Reply::Integer(0));
        }
        ctx.ks.insert(dst, entry);
        ctx.propagate(args.to_vec(), &[dst]);
        return Ok(Reply::Integer(1));
    }
    let now = ctx.now;
    let Some(target) = ctx.others.get(db) else {
        return Err(Reply::error(errors::DB_INDEX));
    };
    if target.get(dst).is_some_and(|e| !e.is_expired(now)) && !replace {
        return Ok(Reply::Integer(0));
    }
    target.insert(dst, entry);
    ctx.out.dirty.push((db, dst.clone()));
    ctx.out.effects.push(args.to_vec());
    Ok(Reply::Integer(1))
}

/// MOVE key db: the key (with its expiry) goes to another database unless one of that name
/// lives there already. A replica applies the primary's MOVE as it happened: it moves
/// whatever it holds under the key.
pub(super) fn move_key(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let db = database_arg(&args[2])?;
    if db == ctx.db {
        return Err(Reply::error("ERR source and destination objects are the same"));
    }
    let primary = ctx.primary;
    if primary && !ctx.exists(key) {
        return Ok(Reply::Integer(0));
    }
    let now = ctx.now;
    let Some(target) = ctx.others.get(db) else {
        return Err(Reply::error(errors::DB_INDEX));
    };
    if primary && target.get(key).is_some_and(|e| !e.is_expired(now)) {
        return Ok(Reply::Integer(0));
    }
    let Some(entry) = ctx.ks.remove(key) else {
        return Ok(Reply::Integer(0));
    };
    target.insert(key, entry);
    ctx.out.dirty.push((ctx.db, key.clone()));
    ctx.out.dirty.push((db, key.clone()));
    ctx.out.effects.push(args.to_vec());
    Ok(Reply::Integer(1))
}

/// OBJECT ENCODING / REFCOUNT / IDLETIME / FREQ / HELP, with the encodings Redis 7.2 would
/// report for the same value under its default thresholds.
pub(super) fn object(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let sub = args[1].to_ascii_uppercase();
    if sub == b"HELP" && args.len() == 2 {
        let lines = [
            "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "ENCODING <key>",
            "    Return the kind of internal representation used in order to store the value",
            "    associated with a <key>.",
            "FREQ <key>",
            "    Return the access frequency index of the <key>. The returned integer is",
            "    proportional to the logarithm of the recent access frequency of the key.",
            "IDLETIME <key>",
            "    Return the idle time of the <key>, that is the approximated number of",
            "    seconds elapsed since the last access to the key.",
            "REFCOUNT <key>",
            "    Return the number of references of the value associated with the specified",
            "    <key>.",
            "HELP",
            "    Print this help.",
        ];
        return Ok(Reply::Array(lines.iter().map(|l| Reply::Simple(l.to_string())).collect()));
    }
    let known = [&b"ENCODING"[..], b"REFCOUNT", b"IDLETIME", b"FREQ"];
    if args.len() != 3 || !known.contains(&sub.as_slice()) {
        return Err(Reply::error(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try OBJECT HELP.",
            String::from_utf8_lossy(&args[1])
        )));
    }
    let (lfu, clock, limits) = (ctx.lfu, ctx.now as u32, ctx.encodings);
    let Some(entry) = ctx.peek(&args[2]) else { return Ok(Reply::NullBulk) };
    Ok(match (sub.as_slice(), lfu) {
        (b"ENCODING", _) => Reply::Bulk(Bytes::from_static(encoding(&entry.value, &limits).as_bytes())),
        (b"REFCOUNT", _) => Reply::Integer(refcount(&entry.value, lfu.is_none())),
        (b"IDLETIME", None) => Reply::Integer((crate::keyspace::idle_ms(entry, clock) / 1000) as i64),
        (b"IDLETIME", Some(_)) => return Err(Reply::error("ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.")),
        (_, Some((_, decay))) => Reply::Integer(crate::keyspace::lfu_decayed(entry, clock, decay) as i64),
        (_, None) => return Err(Reply::error("ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.")),
    })
}

/// OBJECT REFCOUNT: Redis shares one object per integer 0..9999 between keys (its refcount
/// is INT_MAX) unless an eviction policy needs per-key access data (taken here as an LFU
/// policy in force); every other value has one reference.
fn refcount(value: &Value, shared_integers: bool) -> i64 {
    match value {
        Value::Str(s)
            if shared_integers
                && s.encoding() == "int"
                && super::args::parse_i64(s).is_some_and(|n| (0..10_000).contains(&n)) =>
        {
            i32::MAX as i64
        }
        _ => 1,
    }
}

/// DUMP: the value in Redis's serialization.
pub(super) fn dump(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    Ok(ctx.lookup(&args[1]).map_or(Reply::NullBulk, |e| Reply::Bulk(Bytes::from(crate::rdb::dump(&e.value)))))
}

/// RESTORE key ttl payload [REPLACE] [ABSTTL] [IDLETIME s] [FREQ f]. Replicates with an
/// absolute expiry so replicas restore the same key whenever they apply it.
pub(super) fn restore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let ttl = super::args::int_arg(&args[2])?;
    let (mut replace, mut absttl, mut idle, mut freq) = (false, false, None, None);
    let mut i = 4;
    while i < args.len() {
        let a = &args[i];
        if a.eq_ignore_ascii_case(b"REPLACE") {
            replace = true;
        } else if a.eq_ignore_ascii_case(b"ABSTTL") {
            absttl = true;
        } else if a.eq_ignore_ascii_case(b"IDLETIME") && i + 1 < args.len() && freq.is_none() {
            let v = super::args::int_arg(&args[i + 1])?;
            if v < 0 {
                return Err(Reply::error("ERR Invalid IDLETIME value, must be >= 0"));
            }
            idle = Some(v);
            i += 1;
        } else if a.eq_ignore_ascii_case(b"FREQ") && i + 1 < args.len() && idle.is_none() {
            let v = super::args::int_arg(&args[i + 1])?;
            if !(0..=255).contains(&v) {
                return Err(Reply::error("ERR Invalid FREQ value, must be >= 0 and <= 255"));
            }
            freq = Some(v as u8);
            i += 1;
        } else {
            return Err(Reply::error(errors::SYNTAX));
        }
        i += 1;
    }
    if ttl < 0 {
        return Err(Reply::error("ERR Invalid TTL value, must be >= 0"));
    }
    if !replace && ctx.exists(key) {
        return Err(Reply::error("BUSYKEY Target key name already exists."));
    }
    let value = crate::rdb::restore(&args[3], ctx.max_string).map_err(|e| Reply::error(e.to_string()))?;
    let expires_at = match (ttl, absttl) {
        (0, _) => 0,
        (t, true) => t,
        (t, false) => ctx.now.saturating_add(t),
    };
    ctx.expire_if_needed(key);
    let existed = ctx.ks.remove(key).is_some();
    if expires_at != 0 && expires_at <= ctx.now {
        // Already expired: nothing is created (an existing key was replaced by nothing).
        if existed {
            ctx.propagate(vec![Bytes::from_static(b"DEL"), key.clone()], &[key]);
        }
        return Ok(Reply::ok());
    }
    let mut entry = Entry::with_expiry(value, expires_at);
    if let Some(secs) = idle {
        entry.access = (ctx.now as u32).wrapping_sub((secs.min(u32::MAX as i64 / 1000) * 1000) as u32);
    }
    if let Some(f) = freq {
        entry.freq = f;
    }
    ctx.ks.insert(key, entry);
    let at = Bytes::from(expires_at.to_string());
    let effect = vec![
        Bytes::from_static(b"RESTORE"),
        key.clone(),
        at,
        args[3].clone(),
        Bytes::from_static(b"ABSTTL"),
        Bytes::from_static(b"REPLACE"),
    ];
    ctx.propagate(effect, &[key]);
    Ok(Reply::ok())
}

/// MEMORY STATS: Redis's fields in Redis's order. The sizes are the keyspace's own estimate
/// of its data (there is no allocator to ask), so the fragmentation ratios stay 1: RSS over
/// that estimate would trip fragmentation alerts on any small keyspace, as INFO's
/// mem_fragmentation_ratio would (which INFO leaves out for that reason).
fn memory_stats(ctx: &Ctx<'_>) -> Reply {
    let mut dbs = Vec::new();
    let (mut keys, mut dataset, mut overhead) = (0i64, 0i64, 0i64);
    for db in 0..crate::databases::DATABASES {
        let ks = if db == ctx.db { Some(&*ctx.ks) } else { ctx.others.peek(db) };
        let Some(ks) = ks.filter(|ks| !ks.is_empty()) else { continue };
        // A slot table entry and an expiry index entry, as Redis's dict overheads count.
        let (main, expires) = (ks.len() as i64 * 16, ks.keys_with_expiry() as i64 * 24);
        keys += ks.len() as i64;
        dataset += ks.approx_bytes() as i64;
        overhead += main + expires;
        dbs.push((db, main, expires));
    }
    let total = dataset + overhead;
    let text = |s: &str| Reply::Bulk(Bytes::copy_from_slice(s.as_bytes()));
    let mut out = Vec::new();
    let int = |out: &mut Vec<Reply>, k: &str, v: i64| out.extend([text(k), Reply::Integer(v)]);
    for (k, v) in [
        ("peak.allocated", total),
        ("total.allocated", total),
        ("startup.allocated", 0),
        ("replication.backlog", 0),
        ("clients.slaves", 0),
        ("clients.normal", 0),
        ("cluster.links", 0),
        ("aof.buffer", 0),
        ("lua.caches", 0),
        ("functions.caches", 0),
    ] {
        int(&mut out, k, v);
    }
    for (db, main, expires) in dbs {
        out.push(text(&format!("db.{db}")));
        out.push(Reply::Map(vec![
            text("overhead.hashtable.main"),
            Reply::Integer(main),
            text("overhead.hashtable.expires"),
            Reply::Integer(expires),
        ]));
    }
    int(&mut out, "overhead.total", overhead);
    int(&mut out, "keys.count", keys);
    int(&mut out, "keys.bytes-per-key", if keys == 0 { 0 } else { total / keys });
    int(&mut out, "dataset.bytes", dataset);
    let percent = if total == 0 { 100.0 } else { 100.0 * dataset as f64 / total as f64 };
    out.extend([text("dataset.percentage"), Reply::Double(percent)]);
    out.extend([text("peak.percentage"), Reply::Double(100.0)]);
    for (k, v) in [("allocator.allocated", total), ("allocator.active", total), ("allocator.resident", total)] {
        int(&mut out, k, v);
    }
    for (ratio, bytes) in [
        ("allocator-fragmentation.ratio", "allocator-fragmentation.bytes"),
        ("allocator-rss.ratio", "allocator-rss.bytes"),
        ("rss-overhead.ratio", "rss-overhead.bytes"),
        ("fragmentation", "fragmentation.bytes"),
    ] {
        out.extend([text(ratio), Reply::Double(1.0)]);
        int(&mut out, bytes, 0);
    }
    Reply::Map(out)
}

/// MEMORY USAGE / STATS / DOCTOR / PURGE / MALLOC-STATS / HELP.
pub(super) fn memory(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let sub = args[1].to_ascii_uppercase();
    match (sub.as_slice(), args.len()) {
        (b"USAGE", n) if n >= 3 => {
            // SAMPLES may repeat (the last wins); the size here is exact, so it is only checked.
            let mut i = 3;
            while i < n {
                if !(args[i].eq_ignore_ascii_case(b"SAMPLES") && i + 1 < n) {
                    return Err(Reply::error(errors::SYNTAX));
                }
                if super::args::int_arg(&args[i + 1])? < 0 {
                    return Err(Reply::error(errors::SYNTAX));
                }
                i += 2;
            }
        }
        (b"DOCTOR", 2) => return Ok(Reply::Verbatim(Bytes::from_static(
            b"Hi Sam, I can't find any memory issue in your instance. I can only account for what occurs on this base.",
        ))),
        (b"PURGE", 2) => {
            // As Redis asks jemalloc to: free pages go back to the OS now.
            ferrocache_allocator::release_free_memory();
            return Ok(Reply::ok());
        }
        (b"MALLOC-STATS", 2) => {
            return Ok(Reply::Verbatim(Bytes::from_static(b"Stats not supported for the current allocator")))
        }
        (b"STATS", 2) => return Ok(memory_stats(ctx)),
        (b"HELP", 2) => {
            let lines = [
                "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "DOCTOR",
                "    Return memory problems reports.",
                "MALLOC-STATS",
                "    Return internal statistics report from the memory allocator.",
                "PURGE",
                "    Attempt to purge dirty pages for reclamation by the allocator.",
                "STATS",
                "    Return information about the memory usage of the server.",
                "USAGE <key> [SAMPLES <count>]",
                "    Return memory in bytes used by <key> and its value. Nested values are",
                "    sampled up to <count> times (default: 5, 0 means sample all).",
                "HELP",
                "    Print this help.",
            ];
            return Ok(Reply::Array(lines.iter().map(|l| Reply::Simple(l.to_string())).collect()));
        }
        _ => {
            return Err(Reply::error(format!(
                "ERR unknown subcommand or wrong number of arguments for '{}'. Try MEMORY HELP.",
                String::from_utf8_lossy(&args[1])
            )))
        }
    }
    Ok(ctx.peek(&args[2]).map_or(Reply::NullBulk, |e| Reply::Integer(e.size() as i64)))
}

/// The encoding Redis would keep `v` in under the group's `*-max-listpack-*` parameters.
/// (Hashes and sorted sets are named by their size now: one that grew past the limits and
/// shrank back is named listpack here, where Redis keeps the bigger encoding.)
fn encoding(v: &Value, limits: &crate::memory::Encodings) -> &'static str {
    let small = |items: usize, longest: Option<usize>, max_items: usize, max_len: usize| {
        items <= max_items && longest.unwrap_or(0) <= max_len
    };
    match v {
        Value::Str(s) => s.encoding(),
        Value::Hash(h) => {
            let longest = h.iter().map(|(k, v)| k.len().max(v.len())).max();
            if small(h.len(), longest, limits.hash_entries, limits.hash_value) {
                "listpack"
            } else {
                "hashtable"
            }
        }
        Value::List(l) if limits.list_fits(l.iter().map(Bytes::len)) => "listpack",
        Value::List(_) => "quicklist",
        Value::Set(s) => s.encoding(),
        Value::ZSet(z) => {
            let longest = z.iter().map(|(m, _)| m.len()).max();
            if small(z.len(), longest, limits.zset_entries, limits.zset_value) {
                "listpack"
            } else {
                "skiplist"
            }
        }
        Value::Stream(_) => "stream",
    }
}
