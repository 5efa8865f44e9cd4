//! Stream commands (XADD ... XINFO) with Redis 7.2's replies and errors.
//!
//! Every change replicates in a deterministic form, as Redis propagates it: XADD with the ID
//! it generated, trimming as an exact `XTRIM key MAXLEN = n`, deliveries to a consumer group
//! as `XCLAIM ... TIME t RETRYCOUNT n FORCE JUSTID LASTID id` plus `XGROUP SETID ...
//! ENTRIESREAD n`, so a replica's groups and pending lists match its primary's.

use bytes::Bytes;
use ferrocache_common::reply::errors;
use ferrocache_common::Reply;

use super::args::{check_subcommand, eq_ignore_case, int_arg, syntax_error};
use super::{CmdResult, Ctx};
use crate::stream::{Fields, Group, Stream, StreamId};
use crate::value::Value;

const INVALID_ID: &str = "ERR Invalid stream ID specified as stream command argument";
const XADD_SMALLER: &str = "ERR The ID specified in XADD is equal or smaller than the target stream top item";

fn b(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

fn id_reply(id: StreamId) -> Reply {
    Reply::Bulk(id.to_bytes())
}

fn entry_reply(id: StreamId, fields: &Fields) -> Reply {
    Reply::Array(vec![
        id_reply(id),
        Reply::Array(fields.iter().map(|f| Reply::Bulk(Bytes::copy_from_slice(f))).collect()),
    ])
}

fn strict_id(arg: &[u8]) -> Result<StreamId, Reply> {
    StreamId::parse(arg, 0, true, false).map(|(id, _)| id).ok_or_else(|| Reply::error(INVALID_ID))
}

fn nogroup(key: &[u8], group: &[u8]) -> Reply {
    Reply::error(format!(
        "NOGROUP No such key '{}' or consumer group '{}'",
        String::from_utf8_lossy(key),
        String::from_utf8_lossy(group)
    ))
}

fn subcommand_error(sub: &[u8], container: &str) -> Reply {
    let sub: String = String::from_utf8_lossy(sub).chars().take(128).collect();
    Reply::error(format!("ERR unknown subcommand or wrong number of arguments for '{sub}'. Try {container} HELP."))
}

/// An interval bound of XRANGE / XPENDING / XAUTOCLAIM: `(id` excludes it (as Redis 6.2+).
fn interval_id(arg: &[u8], missing_seq: u64, start: bool) -> Result<StreamId, Reply> {
    if arg.len() > 1 && arg[0] == b'(' {
        let id = strict_id(&arg[1..])?;
        let moved = if start { id.incr() } else { id.decr() };
        return moved.ok_or_else(|| {
            Reply::error(if start {
                "ERR invalid start ID for the interval"
            } else {
                "ERR invalid end ID for the interval"
            })
        });
    }
    StreamId::parse(arg, missing_seq, false, false).map(|(id, _)| id).ok_or_else(|| Reply::error(INVALID_ID))
}

impl Ctx<'_> {
    fn read_stream(&mut self, key: &[u8]) -> Result<Option<&Stream>, Reply> {
        self.read_as(key, Value::as_stream)
    }

    /// The existing stream under `key` for writing (None when absent).
    fn stream_mut(&mut self, key: &[u8]) -> Result<Option<&mut Stream>, Reply> {
        if self.lookup(key).is_none() {
            return Ok(None);
        }
        match self.ks.get_value_mut(key) {
            Some(v) => v.as_stream_mut().map(Some).ok_or_else(|| Reply::error(errors::WRONGTYPE)),
            None => Ok(None),
        }
    }

    /// Records a stream change (`effects` in order) under `key`.
    fn stream_written(&mut self, key: &[u8], effects: Vec<Vec<Bytes>>) {
        use ferrocache_common::parameters::notify::STREAM;
        let db = self.db;
        let event = |name| crate::notify::Event { class: STREAM, name, db, key: Bytes::copy_from_slice(key) };
        for (i, effect) in effects.into_iter().enumerate() {
            // What a command does on the side fires its own event, as in Redis: a consumer
            // created by XREADGROUP/XCLAIM/XAUTOCLAIM, XADD's trim.
            if effect.get(1).is_some_and(|c| c.eq_ignore_ascii_case(b"CREATECONSUMER")) {
                self.out.events.push(event("xgroup-createconsumer"));
            } else if i > 0 && effect.first().is_some_and(|c| c.eq_ignore_ascii_case(b"XTRIM")) {
                self.out.late_events.push(event("xtrim"));
            }
            if i == 0 {
                self.propagate(effect, &[key]);
            } else {
                self.out.effects.push(effect);
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Threshold {
    MaxLen(usize),
    MinId(StreamId),
}

struct Trim {
    threshold: Threshold,
    /// `~`: whole nodes only, at most `limit` entries (0 = no limit).
    approx: bool,
    limit: usize,
}

impl Trim {
    fn apply(&self, s: &mut Stream) -> usize {
        match self.threshold {
            Threshold::MaxLen(n) => s.trim_maxlen(n, self.approx, self.limit),
            Threshold::MinId(id) => s.trim_minid(id, self.approx, self.limit),
        }
    }
}

/// XADD's and XTRIM's options (Redis's streamParseAddOrTrimArgsOrReply): the trimming, and
/// for XADD NOMKSTREAM and the position of the ID argument.
struct AddTrim {
    trim: Option<Trim>,
    nomkstream: bool,
    /// XADD: the ID (None = `*`) and whether its sequence was given.
    id: Option<(StreamId, bool)>,
    id_pos: usize,
}

/// `~` trimming's LIMIT when none is given: 100 nodes' worth, within Redis's bounds.
fn approx_limit(node_entries: u64) -> usize {
    match node_entries.saturating_mul(100) {
        0 => 10_000,
        n => n.min(1_000_000) as usize,
    }
}

fn parse_add_trim(args: &[Bytes], xadd: bool, node_entries: u64) -> Result<AddTrim, Reply> {
    let mut threshold = None;
    let mut approx = false;
    let mut limit: Option<i64> = None;
    let mut nomkstream = false;
    let mut id = None;
    let mut i = 2;
    while i < args.len() {
        let more = args.len() - 1 - i;
        let opt = &args[i];
        if xadd && opt.as_ref() == b"*" {
            break;
        } else if (eq_ignore_case(opt, "MAXLEN") || eq_ignore_case(opt, "MINID")) && more > 0 {
            if threshold.is_some() {
                return Err(Reply::error(
                    "ERR syntax error, MAXLEN and MINID options at the same time are not compatible",
                ));
            }
            approx = false;
            let next = &args[i + 1];
            if more >= 2 && next.as_ref() == b"~" {
                approx = true;
                i += 1;
            } else if more >= 2 && next.as_ref() == b"=" {
                i += 1;
            }
            let value = &args[i + 1];
            threshold = Some(if eq_ignore_case(opt, "MAXLEN") {
                let n = int_arg(value)?;
                if n < 0 {
                    return Err(Reply::error("ERR The MAXLEN argument must be >= 0."));
                }
                Threshold::MaxLen(usize::try_from(n).unwrap_or(usize::MAX))
            } else {
                Threshold::MinId(strict_id(value)?)
            });
            i += 2;
            continue;
        } else if eq_ignore_case(opt, "LIMIT") && more > 0 {
            let n = int_arg(&args[i + 1])?;
            if n < 0 {
                return Err(Reply::error("ERR The LIMIT argument must be >= 0."));
            }
            limit = Some(n);
            i += 2;
            continue;
        } else if xadd && eq_ignore_case(opt, "NOMKSTREAM") {
            nomkstream = true;
        } else if xadd {
            let parsed = StreamId::parse(opt, 0, true, true).ok_or_else(|| Reply::error(INVALID_ID))?;
            id = Some(parsed);
            break;
        } else {
            return Err(syntax_error());
        }
        i += 1;
    }
    if limit.is_some_and(|l| l > 0) && threshold.is_none() {
        return Err(Reply::error("ERR syntax error, LIMIT cannot be used without specifying a trimming strategy"));
    }
    if !xadd && threshold.is_none() {
        return Err(Reply::error("ERR syntax error, XTRIM must be called with a trimming strategy"));
    }
    let limit = match limit {
        Some(_) if !approx => {
            return Err(Reply::error("ERR syntax error, LIMIT cannot be used without the special ~ option"))
        }
        Some(l) => usize::try_from(l).unwrap_or(usize::MAX),
        None if approx => approx_limit(node_entries),
        None => 0,
    };
    Ok(AddTrim { trim: threshold.map(|threshold| Trim { threshold, approx, limit }), nomkstream, id, id_pos: i })
}

/// The effect that makes a replica's stream as long as this one after trimming.
fn trim_effect(key: &Bytes, len: usize) -> Vec<Bytes> {
    vec![b("XTRIM"), key.clone(), b("MAXLEN"), b("="), Bytes::from(len.to_string())]
}

/// XADD key [NOMKSTREAM] [MAXLEN|MINID [=|~] threshold [LIMIT count]] *|id field value ...
pub(super) fn xadd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let nodes = ctx.encodings.stream_nodes;
    let parsed = parse_add_trim(args, true, nodes.entries)?;
    let fields_at = parsed.id_pos + 1;
    let n = args.len().saturating_sub(fields_at);
    if fields_at > args.len() || n < 2 || n % 2 == 1 {
        return Err(Reply::error("ERR wrong number of arguments for 'xadd' command"));
    }
    if matches!(parsed.id, Some((id, true)) if id.is_zero()) {
        return Err(Reply::error("ERR The ID specified in XADD must be greater than 0-0"));
    }
    let existed = ctx.read_stream(key)?.is_some();
    if !existed && parsed.nomkstream {
        return Ok(Reply::NullBulk);
    }
    let now = ctx.now.max(0) as u64;
    let s = ctx.write_as(key, || Value::Stream(Box::default()), Value::as_stream_mut)?;
    if s.last_id == StreamId::MAX {
        return Err(Reply::error("ERR The stream has exhausted the last possible ID, unable to add more items"));
    }
    let id = match parsed.id {
        None => s.auto_id(now).ok_or_else(|| Reply::error(XADD_SMALLER))?,
        Some((id, true)) => id,
        // `ms-*` on the top item's ms takes the next sequence of that ms, never the next ms.
        Some((id, false)) if id.ms == s.last_id.ms => {
            let seq = s.last_id.seq.checked_add(1).ok_or_else(|| Reply::error(XADD_SMALLER))?;
            StreamId::new(id.ms, seq)
        }
        Some((id, false)) => id,
    };
    if id <= s.last_id {
        // The empty stream write_as made must not stay.
        if !existed {
            ctx.ks.remove(key);
        }
        return Err(Reply::error(XADD_SMALLER));
    }
    s.append(id, &args[fields_at..], nodes);
    let trimmed = parsed.trim.as_ref().map_or(0, |t| t.apply(s));
    let len = s.len();
    let mut effect = vec![b("XADD"), key.clone(), id.to_bytes()];
    effect.extend_from_slice(&args[fields_at..]);
    let mut effects = vec![effect];
    if trimmed > 0 {
        effects.push(trim_effect(key, len));
    }
    ctx.stream_written(key, effects);
    Ok(id_reply(id))
}

/// XTRIM key MAXLEN|MINID [=|~] threshold [LIMIT count]
pub(super) fn xtrim(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let parsed = parse_add_trim(args, false, ctx.encodings.stream_nodes.entries)?;
    let Some(trim) = parsed.trim else { return Err(syntax_error()) };
    let Some(s) = ctx.stream_mut(key)? else { return Ok(Reply::Integer(0)) };
    let trimmed = trim.apply(s);
    let len = s.len();
    if trimmed > 0 {
        ctx.stream_written(key, vec![trim_effect(key, len)]);
    }
    Ok(Reply::Integer(trimmed as i64))
}

pub(super) fn xlen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    Ok(Reply::Integer(ctx.read_stream(&args[1])?.map_or(0, |s| s.len() as i64)))
}

pub(super) fn xrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    range(ctx, args, false)
}

pub(super) fn xrevrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    range(ctx, args, true)
}

/// XRANGE key start end [COUNT n] / XREVRANGE key end start [COUNT n]
fn range(ctx: &mut Ctx<'_>, args: &[Bytes], rev: bool) -> CmdResult {
    let (start_arg, end_arg) = if rev { (&args[3], &args[2]) } else { (&args[2], &args[3]) };
    let start = interval_id(start_arg, 0, true)?;
    let end = interval_id(end_arg, u64::MAX, false)?;
    let mut count: Option<usize> = None;
    let mut i = 4;
    while i < args.len() {
        if eq_ignore_case(&args[i], "COUNT") && i + 1 < args.len() {
            count = Some(int_arg(&args[i + 1])?.max(0) as usize);
            i += 2;
        } else {
            return Err(syntax_error());
        }
    }
    let Some(s) = ctx.read_stream(&args[1])? else { return Ok(Reply::Array(vec![])) };
    if count == Some(0) {
        return Ok(Reply::NullArray);
    }
    Ok(Reply::Array(
        s.range(start, end, count.unwrap_or(0), rev).into_iter().map(|(id, f)| entry_reply(id, f)).collect(),
    ))
}

/// XDEL key id [id ...]
pub(super) fn xdel(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    if ctx.stream_mut(key)?.is_none() {
        return Ok(Reply::Integer(0));
    }
    let ids = args[2..].iter().map(|a| strict_id(a)).collect::<Result<Vec<_>, _>>()?;
    let Some(s) = ctx.stream_mut(key)? else { return Ok(Reply::Integer(0)) };
    let deleted = ids.into_iter().filter(|id| s.delete(*id)).count();
    if deleted > 0 {
        ctx.stream_written(key, vec![args.to_vec()]);
    }
    Ok(Reply::Integer(deleted as i64))
}

/// XSETID key last-id [ENTRIESADDED n] [MAXDELETEDID id]
pub(super) fn xsetid(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let id = strict_id(&args[2])?;
    let (mut entries_added, mut max_deleted) = (None, StreamId::MIN);
    let mut i = 3;
    while i < args.len() {
        let more = i + 1 < args.len();
        if eq_ignore_case(&args[i], "ENTRIESADDED") && more {
            let n = int_arg(&args[i + 1])?;
            if n < 0 {
                return Err(Reply::error("ERR entries_added must be positive"));
            }
            entries_added = Some(n as u64);
        } else if eq_ignore_case(&args[i], "MAXDELETEDID") && more {
            max_deleted = strict_id(&args[i + 1])?;
            if id < max_deleted {
                return Err(Reply::error(
                    "ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id",
                ));
            }
        } else {
            return Err(syntax_error());
        }
        i += 2;
    }
    let Some(s) = ctx.stream_mut(key)? else { return Err(Reply::error(errors::NO_SUCH_KEY)) };
    if id < s.max_deleted {
        return Err(Reply::error("ERR The ID specified in XSETID is smaller than current max_deleted_entry_id"));
    }
    if let Some((top, _)) = s.last() {
        if id < top {
            return Err(Reply::error("ERR The ID specified in XSETID is smaller than the target stream top item"));
        }
        if entries_added.is_some_and(|n| (s.len() as u64) > n) {
            return Err(Reply::error(
                "ERR The entries_added specified in XSETID is smaller than the target stream length",
            ));
        }
    }
    s.last_id = id;
    if let Some(n) = entries_added {
        s.entries_added = n;
    }
    if !max_deleted.is_zero() {
        s.max_deleted = max_deleted;
    }
    ctx.stream_written(key, vec![args.to_vec()]);
    Ok(Reply::ok())
}

/// Where a read starts on one stream.
#[derive(Clone, Copy)]
enum ReadFrom {
    /// Entries after this ID (XREAD's IDs and `$`; XREADGROUP's history read).
    After(StreamId),
    /// XREADGROUP's `>`: entries never delivered to the group.
    New,
}

pub(super) fn xread(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let served = read(ctx, args, false);
    let wrong_type = matches!(&served, Err(Reply::Error(e)) if e.starts_with("WRONGTYPE"));
    if !ctx.woken || !wrong_type {
        return served;
    }
    // Woken, and a key it waits on is no stream now: it waits on unless one still is. (The
    // options before STREAMS take numbers, so the word cannot be an option's value.)
    let Some(at) = args.iter().position(|a| eq_ignore_case(a, "STREAMS")) else { return served };
    let keys = &args[at + 1..at + 1 + (args.len() - at - 1) / 2];
    // The wait keeps the deadline it had: the timeout here is not read.
    let r = ctx.serve_or_block(keys, 0.0, |v| matches!(v, Value::Stream(_)), served.map(Some));
    if let Some(block) = ctx.block.as_mut() {
        block.consumes = false;
    }
    r
}

pub(super) fn xreadgroup(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    read(ctx, args, true)
}

/// XREAD [COUNT n] [BLOCK ms] STREAMS key ... id ... and
/// XREADGROUP GROUP g consumer [COUNT n] [BLOCK ms] [NOACK] STREAMS key ... id ...
fn read(ctx: &mut Ctx<'_>, args: &[Bytes], grouped: bool) -> CmdResult {
    let name = if grouped { "XREADGROUP" } else { "XREAD" };
    let (mut count, mut block_ms, mut noack) = (0usize, None::<i64>, false);
    let mut group: Option<(&Bytes, &Bytes)> = None;
    let mut streams_at = None;
    let mut i = 1;
    while i < args.len() {
        let more = args.len() - 1 - i;
        let opt = &args[i];
        if eq_ignore_case(opt, "BLOCK") && more > 0 {
            let ms = super::args::parse_i64(&args[i + 1])
                .ok_or_else(|| Reply::error("ERR timeout is not an integer or out of range"))?;
            if ms < 0 {
                return Err(Reply::error("ERR timeout is negative"));
            }
            block_ms = Some(ms);
            i += 2;
        } else if eq_ignore_case(opt, "COUNT") && more > 0 {
            count = int_arg(&args[i + 1])?.max(0) as usize;
            i += 2;
        } else if eq_ignore_case(opt, "STREAMS") && more > 0 {
            streams_at = Some(i + 1);
            if !(args.len() - i - 1).is_multiple_of(2) {
                let symbol = if grouped { '>' } else { '$' };
                return Err(Reply::error(format!(
                    "ERR Unbalanced {name} list of streams: for each stream key an ID or '{symbol}' must be specified."
                )));
            }
            break;
        } else if eq_ignore_case(opt, "GROUP") && more >= 2 {
            if !grouped {
                return Err(Reply::error(
                    "ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            group = Some((&args[i + 1], &args[i + 2]));
            i += 3;
        } else if eq_ignore_case(opt, "NOACK") {
            if !grouped {
                return Err(Reply::error(
                    "ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            noack = true;
            i += 1;
        } else {
            return Err(syntax_error());
        }
    }
    let Some(streams_at) = streams_at else { return Err(syntax_error()) };
    if grouped && group.is_none() {
        return Err(Reply::error("ERR Missing GROUP option for XREADGROUP"));
    }
    let n = (args.len() - streams_at) / 2;
    let (keys, id_args) = args[streams_at..].split_at(n);
    let mut starts = Vec::with_capacity(n);
    for (key, arg) in keys.iter().zip(id_args) {
        let s = ctx.read_stream(key)?;
        if let Some((g, _)) = group {
            if !s.is_some_and(|s| s.groups.contains_key(g)) {
                return Err(Reply::error(format!(
                    "NOGROUP No such key '{}' or consumer group '{}' in XREADGROUP with GROUP option",
                    String::from_utf8_lossy(key),
                    String::from_utf8_lossy(g)
                )));
            }
        }
        let start = match arg.as_ref() {
            b"$" if grouped => {
                return Err(Reply::error(
                    "ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set.",
                ))
            }
            b"$" => ReadFrom::After(s.map_or(StreamId::MIN, |s| s.last_id)),
            b">" if !grouped => {
                return Err(Reply::error(
                    "ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.",
                ))
            }
            b">" => ReadFrom::New,
            _ => ReadFrom::After(strict_id(arg)?),
        };
        starts.push(start);
    }
    let mut served = Vec::new();
    for (key, start) in keys.iter().zip(&starts) {
        let entries = match group {
            Some((g, consumer)) => deliver(ctx, key, g, consumer, *start, count, noack)?,
            None => {
                let ReadFrom::After(after) = *start else { continue };
                let Some(s) = ctx.read_stream(key)? else { continue };
                match after.incr() {
                    Some(from) if s.last().is_some_and(|(top, _)| top > after) => Some(
                        s.range(from, StreamId::MAX, count, false)
                            .into_iter()
                            .map(|(id, f)| entry_reply(id, f))
                            .collect(),
                    ),
                    _ => None,
                }
            }
        };
        if let Some(entries) = entries {
            served.push(Reply::Bulk(key.clone()));
            served.push(Reply::Array(entries));
        }
    }
    if !served.is_empty() {
        return Ok(Reply::PairMap(served));
    }
    let Some(ms) = block_ms else { return Ok(Reply::NullArray) };
    // Woken, the command runs again: `$` must mean the last ID as of now, not then.
    let mut again = args.to_vec();
    for (j, start) in starts.iter().enumerate() {
        if let (b"$", ReadFrom::After(id)) = (id_args[j].as_ref(), start) {
            again[streams_at + n + j] = id.to_bytes();
        }
    }
    let r = ctx.block_on(keys.to_vec(), ms as f64 / 1000.0);
    if let Some(block) = ctx.block.as_mut() {
        block.args = Some(again);
        block.consumes = grouped;
    }
    r
}

/// XREADGROUP on one stream: new entries (recorded as pending unless `noack`) or the
/// consumer's history. None when there is nothing new to serve.
fn deliver(
    ctx: &mut Ctx<'_>,
    key: &Bytes,
    group_name: &Bytes,
    consumer: &Bytes,
    start: ReadFrom,
    count: usize,
    noack: bool,
) -> Result<Option<Vec<Reply>>, Reply> {
    let now = ctx.now;
    let Some(s) = ctx.stream_mut(key)? else { return Ok(None) };
    let Some(mut g) = s.groups.remove(group_name.as_ref()) else { return Ok(None) };
    let (c, created) = g.consumer(consumer, now);
    c.seen_time = now;
    let mut effects = Vec::new();
    if created {
        effects.push(createconsumer_effect(key, group_name, consumer));
    }
    let claim =
        |id: StreamId, count: u64, last: StreamId| claim_effect(key, group_name, consumer, id, now, count, last);
    let replies = match start {
        ReadFrom::New => {
            let entries: Vec<(StreamId, Fields)> = match g.last_id.incr() {
                Some(from) => {
                    s.range(from, StreamId::MAX, count, false).into_iter().map(|(id, f)| (id, f.clone())).collect()
                }
                None => Vec::new(),
            };
            if entries.is_empty() {
                s.groups.insert(group_name.clone(), g);
                if !effects.is_empty() {
                    ctx.stream_written(key, effects);
                }
                return Ok(None);
            }
            let mut replies = Vec::with_capacity(entries.len());
            for (id, fields) in &entries {
                if *id > g.last_id {
                    g.entries_read = s.read_counter_after(g.entries_read, *id);
                    g.last_id = *id;
                }
                if !noack {
                    g.assign(*id, consumer, now, 1);
                    effects.push(claim(*id, 1, g.last_id));
                }
                replies.push(entry_reply(*id, fields));
            }
            if let Some(c) = g.consumers.get_mut(consumer) {
                c.active_time = now;
            }
            effects.push(setid_effect(key, group_name, g.last_id, g.entries_read));
            replies
        }
        ReadFrom::After(after) => {
            let pending: Vec<StreamId> = match after.incr() {
                Some(from) => {
                    let c = &g.consumers[consumer.as_ref()];
                    let limit = if count == 0 { usize::MAX } else { count };
                    c.pel.range(from..).take(limit).copied().collect()
                }
                None => Vec::new(),
            };
            let mut replies = Vec::with_capacity(pending.len());
            for id in pending {
                match s.get(id) {
                    Some(fields) => {
                        replies.push(entry_reply(id, fields));
                        if let Some(nack) = g.pel.get_mut(&id) {
                            nack.delivery_time = now;
                            nack.delivery_count += 1;
                            effects.push(claim(id, nack.delivery_count, g.last_id));
                        }
                    }
                    None => replies.push(Reply::Array(vec![id_reply(id), Reply::NullArray])),
                }
            }
            replies
        }
    };
    s.groups.insert(group_name.clone(), g);
    if !effects.is_empty() {
        ctx.stream_written(key, effects);
    }
    Ok(Some(replies))
}

const XGROUP_HELP: &[&str] = &[
    "XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CREATE <key> <groupname> <id|$> [option]",
    "    Create a new consumer group. Options are:",
    "    * MKSTREAM",
    "      Create the empty stream if it does not exist.",
    "    * ENTRIESREAD entries_read",
    "      Set the group's entries_read counter (internal use).",
    "CREATECONSUMER <key> <groupname> <consumer>",
    "    Create a new consumer in the specified group.",
    "DELCONSUMER <key> <groupname> <consumer>",
    "    Remove the specified consumer.",
    "DESTROY <key> <groupname>",
    "    Remove the specified group.",
    "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
    "    Set the current group ID and entries_read counter.",
    "HELP",
    "    Prints this help.",
];

fn help(lines: &[&str]) -> Reply {
    Reply::Array(lines.iter().map(|l| Reply::Simple(l.to_string())).collect())
}

/// XGROUP CREATE | SETID | DESTROY | CREATECONSUMER | DELCONSUMER | HELP
pub(super) fn xgroup(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    check_subcommand(
        args,
        "XGROUP",
        &[("create", -5), ("createconsumer", 5), ("delconsumer", 5), ("destroy", 4), ("help", 2), ("setid", -5)],
    )?;
    let sub = args[1].to_ascii_uppercase();
    let sub = sub.as_slice();
    if sub == b"HELP" && args.len() == 2 {
        return Ok(help(XGROUP_HELP));
    }
    let (mut mkstream, mut entries_read) = (false, -1i64);
    if args.len() >= 4 {
        if sub == b"CREATE" || sub == b"SETID" {
            let mut i = 5;
            while i < args.len() {
                if sub == b"CREATE" && eq_ignore_case(&args[i], "MKSTREAM") {
                    mkstream = true;
                    i += 1;
                } else if eq_ignore_case(&args[i], "ENTRIESREAD") && i + 1 < args.len() {
                    entries_read = int_arg(&args[i + 1])?;
                    if entries_read < -1 {
                        return Err(Reply::error("ERR value for ENTRIESREAD must be positive or -1"));
                    }
                    i += 2;
                } else {
                    return Err(subcommand_error(&args[1], "XGROUP"));
                }
            }
        }
    } else {
        return Err(subcommand_error(&args[1], "XGROUP"));
    }
    let (key, group) = (&args[2], &args[3]);
    let exists = ctx.read_stream(key)?.is_some();
    if !exists && !mkstream {
        return Err(Reply::error("ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically."));
    }
    let has_group = ctx.read_stream(key)?.is_some_and(|s| s.groups.contains_key(group));
    if !has_group && matches!(sub, b"SETID" | b"CREATECONSUMER" | b"DELCONSUMER") {
        return Err(Reply::error(format!(
            "NOGROUP No such consumer group '{}' for key name '{}'",
            String::from_utf8_lossy(group),
            String::from_utf8_lossy(key)
        )));
    }
    let now = ctx.now;
    match (sub, args.len()) {
        (b"CREATE", 5..=8) => {
            let last = ctx.read_stream(key)?.map_or(StreamId::MIN, |s| s.last_id);
            let id = if args[4].as_ref() == b"$" { last } else { strict_id(&args[4])? };
            if has_group {
                return Err(Reply::error("BUSYGROUP Consumer Group name already exists"));
            }
            let s = ctx.write_as(key, || Value::Stream(Box::default()), Value::as_stream_mut)?;
            s.groups.insert(group.clone(), Group::new(id, entries_read));
            let effect = vec![
                b("XGROUP"),
                b("CREATE"),
                key.clone(),
                group.clone(),
                id.to_bytes(),
                b("MKSTREAM"),
                b("ENTRIESREAD"),
                Bytes::from(entries_read.to_string()),
            ];
            ctx.stream_written(key, vec![effect]);
            Ok(Reply::ok())
        }
        (b"SETID", 5 | 7) => {
            let Some(s) = ctx.stream_mut(key)? else { return Err(Reply::error(errors::NO_SUCH_KEY)) };
            let id = if args[4].as_ref() == b"$" {
                s.last_id
            } else {
                StreamId::parse(&args[4], 0, false, false).map(|(id, _)| id).ok_or_else(|| Reply::error(INVALID_ID))?
            };
            if let Some(g) = s.groups.get_mut(group.as_ref()) {
                g.last_id = id;
                g.entries_read = entries_read;
            }
            ctx.stream_written(key, vec![setid_effect(key, group, id, entries_read)]);
            Ok(Reply::ok())
        }
        (b"DESTROY", 4) => {
            let Some(s) = ctx.stream_mut(key)? else { return Ok(Reply::Integer(0)) };
            if s.groups.remove(group.as_ref()).is_none() {
                return Ok(Reply::Integer(0));
            }
            ctx.stream_written(key, vec![args.to_vec()]);
            Ok(Reply::Integer(1))
        }
        (b"CREATECONSUMER", 5) => {
            let Some(s) = ctx.stream_mut(key)? else { return Ok(Reply::Integer(0)) };
            let Some(g) = s.groups.get_mut(group.as_ref()) else { return Ok(Reply::Integer(0)) };
            let (_, created) = g.consumer(&args[4], now);
            if created {
                // Its event is the command's own (the XGROUP rule).
                ctx.propagate(args.to_vec(), &[key]);
            }
            Ok(Reply::Integer(created as i64))
        }
        (b"DELCONSUMER", 5) => {
            // No such consumer: nothing is written (no event, no replication), as Redis 7.2.
            let exists = ctx
                .read_stream(key)?
                .and_then(|s| s.groups.get(group.as_ref()))
                .is_some_and(|g| g.consumers.contains_key(args[4].as_ref()));
            if !exists {
                return Ok(Reply::Integer(0));
            }
            let Some(s) = ctx.stream_mut(key)? else { return Ok(Reply::Integer(0)) };
            let Some(g) = s.groups.get_mut(group.as_ref()) else { return Ok(Reply::Integer(0)) };
            let pending = g.delete_consumer(&args[4]);
            ctx.stream_written(key, vec![args.to_vec()]);
            Ok(Reply::Integer(pending as i64))
        }
        _ => Err(subcommand_error(&args[1], "XGROUP")),
    }
}

/// XACK key group id [id ...]
pub(super) fn xack(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (key, group) = (&args[1], &args[2]);
    let has_group = ctx.read_stream(key)?.is_some_and(|s| s.groups.contains_key(group));
    if !has_group {
        return Ok(Reply::Integer(0));
    }
    let ids = args[3..].iter().map(|a| strict_id(a)).collect::<Result<Vec<_>, _>>()?;
    let Some(s) = ctx.stream_mut(key)? else { return Ok(Reply::Integer(0)) };
    let Some(g) = s.groups.get_mut(group.as_ref()) else { return Ok(Reply::Integer(0)) };
    let acked = ids.into_iter().filter(|id| g.ack(*id)).count();
    if acked > 0 {
        ctx.stream_written(key, vec![args.to_vec()]);
    }
    Ok(Reply::Integer(acked as i64))
}

/// XPENDING key group [[IDLE min-idle] start end count [consumer]]
pub(super) fn xpending(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (key, group) = (&args[1], &args[2]);
    let summary = args.len() == 3;
    if !summary && !(6..=9).contains(&args.len()) {
        return Err(syntax_error());
    }
    let (mut min_idle, mut start, mut end, mut count, mut consumer) =
        (0i64, StreamId::MIN, StreamId::MAX, 0usize, None);
    if args.len() >= 6 {
        let mut at = 3;
        if eq_ignore_case(&args[3], "IDLE") {
            min_idle = int_arg(&args[4])?;
            if args.len() < 8 {
                return Err(syntax_error());
            }
            at += 2;
        }
        count = int_arg(&args[at + 2])?.max(0) as usize;
        start = interval_id(&args[at], 0, true)?;
        end = interval_id(&args[at + 1], u64::MAX, false)?;
        consumer = args.get(at + 3);
        if args.len() > at + 4 {
            return Err(syntax_error());
        }
    }
    let now = ctx.now;
    let s = ctx.read_stream(key)?;
    let Some(g) = s.and_then(|s| s.groups.get(group.as_ref())) else {
        return Err(nogroup(key, group));
    };
    if summary {
        let (Some(first), Some(last)) = (g.pel.keys().next(), g.pel.keys().next_back()) else {
            return Ok(Reply::Array(vec![Reply::Integer(0), Reply::NullBulk, Reply::NullBulk, Reply::NullArray]));
        };
        let consumers = g
            .consumers
            .iter()
            .filter(|(_, c)| !c.pel.is_empty())
            .map(|(name, c)| {
                Reply::Array(vec![Reply::Bulk(name.clone()), Reply::Bulk(Bytes::from(c.pel.len().to_string()))])
            })
            .collect();
        return Ok(Reply::Array(vec![
            Reply::Integer(g.pel.len() as i64),
            id_reply(*first),
            id_reply(*last),
            Reply::Array(consumers),
        ]));
    }
    let ids: Box<dyn Iterator<Item = StreamId>> = match consumer {
        Some(name) => match g.consumers.get(name.as_ref()) {
            Some(c) if start <= end => Box::new(c.pel.range(start..=end).copied()),
            _ => return Ok(Reply::Array(vec![])),
        },
        None if start <= end => Box::new(g.pel.range(start..=end).map(|(id, _)| *id)),
        None => return Ok(Reply::Array(vec![])),
    };
    let mut out = Vec::new();
    for id in ids {
        if out.len() >= count {
            break;
        }
        let Some(nack) = g.pel.get(&id) else { continue };
        let idle = (now - nack.delivery_time).max(0);
        if min_idle > 0 && idle < min_idle {
            continue;
        }
        out.push(Reply::Array(vec![
            id_reply(id),
            Reply::Bulk(nack.consumer.clone()),
            Reply::Integer(idle),
            Reply::Integer(nack.delivery_count as i64),
        ]));
    }
    Ok(Reply::Array(out))
}

/// The effect that sets a group's last ID and read counter on a replica.
fn setid_effect(key: &Bytes, group: &Bytes, last: StreamId, entries_read: i64) -> Vec<Bytes> {
    vec![
        b("XGROUP"),
        b("SETID"),
        key.clone(),
        group.clone(),
        last.to_bytes(),
        b("ENTRIESREAD"),
        Bytes::from(entries_read.to_string()),
    ]
}

fn createconsumer_effect(key: &Bytes, group: &Bytes, consumer: &Bytes) -> Vec<Bytes> {
    vec![b("XGROUP"), b("CREATECONSUMER"), key.clone(), group.clone(), consumer.clone()]
}

/// Claims a pending entry for `consumer` (XCLAIM's and XAUTOCLAIM's common part) and the
/// effect that does the same on a replica.
fn claim_effect(
    key: &Bytes,
    group: &Bytes,
    consumer: &Bytes,
    id: StreamId,
    time: i64,
    count: u64,
    last: StreamId,
) -> Vec<Bytes> {
    vec![
        b("XCLAIM"),
        key.clone(),
        group.clone(),
        consumer.clone(),
        b("0"),
        id.to_bytes(),
        b("TIME"),
        Bytes::from(time.to_string()),
        b("RETRYCOUNT"),
        Bytes::from(count.to_string()),
        b("FORCE"),
        b("JUSTID"),
        b("LASTID"),
        last.to_bytes(),
    ]
}

/// XCLAIM key group consumer min-idle-time id [id ...] [IDLE ms] [TIME ms] [RETRYCOUNT n]
/// [FORCE] [JUSTID] [LASTID id]
/// The claiming consumer seen now (created, with its effect, if it was not there).
fn meet_consumer(
    g: &mut crate::stream::Group,
    effects: &mut Vec<Vec<Bytes>>,
    names: (&Bytes, &Bytes, &Bytes),
    now: i64,
) {
    let (key, group, consumer) = names;
    let (c, created) = g.consumer(consumer, now);
    c.seen_time = now;
    if created {
        effects.push(createconsumer_effect(key, group, consumer));
    }
}

pub(super) fn xclaim(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (key, group, consumer) = (&args[1], &args[2], &args[3]);
    if !ctx.read_stream(key)?.is_some_and(|s| s.groups.contains_key(group)) {
        return Err(nogroup(key, group));
    }
    let min_idle = super::args::parse_i64(&args[4])
        .ok_or_else(|| Reply::error("ERR Invalid min-idle-time argument for XCLAIM"))?
        .max(0);
    let mut ids = Vec::new();
    let mut j = 5;
    while j < args.len() {
        match StreamId::parse(&args[j], 0, true, false) {
            Some((id, _)) => ids.push(id),
            None => break,
        }
        j += 1;
    }
    let now = ctx.now;
    let (mut force, mut justid, mut retry, mut time, mut last_id) = (false, false, None, None, StreamId::MIN);
    while j < args.len() {
        let more = j + 1 < args.len();
        let opt = &args[j];
        let number = |what: &str| {
            super::args::parse_i64(&args[j + 1])
                .ok_or_else(|| Reply::error(format!("ERR Invalid {what} option argument for XCLAIM")))
        };
        if eq_ignore_case(opt, "FORCE") {
            force = true;
        } else if eq_ignore_case(opt, "JUSTID") {
            justid = true;
        } else if eq_ignore_case(opt, "IDLE") && more {
            time = Some(now.saturating_sub(number("IDLE")?));
            j += 1;
        } else if eq_ignore_case(opt, "TIME") && more {
            time = Some(number("TIME")?);
            j += 1;
        } else if eq_ignore_case(opt, "RETRYCOUNT") && more {
            retry = Some(number("RETRYCOUNT")?);
            j += 1;
        } else if eq_ignore_case(opt, "LASTID") && more {
            last_id = strict_id(&args[j + 1])?;
            j += 1;
        } else {
            return Err(Reply::error(format!("ERR Unrecognized XCLAIM option '{}'", String::from_utf8_lossy(opt))));
        }
        j += 1;
    }
    let delivery_time = match time {
        Some(t) if t < 0 || t > now => now,
        Some(t) => t,
        None => now,
    };
    let Some(s) = ctx.stream_mut(key)? else { return Err(nogroup(key, group)) };
    let Some(mut g) = s.groups.remove(group.as_ref()) else { return Err(nogroup(key, group)) };
    let mut effects = Vec::new();
    let mut propagate_last = false;
    if last_id > g.last_id {
        g.last_id = last_id;
        propagate_last = true;
    }
    // The consumer is looked up (and made) at its first claim only, as Redis 7.2 does: a
    // claim that takes nothing creates no consumer.
    let mut met = false;
    let mut replies = Vec::new();
    for id in ids {
        let pending = g.pel.get(&id).cloned();
        if s.get(id).is_none() {
            if let Some(nack) = pending {
                effects.push(claim_effect(
                    key,
                    group,
                    consumer,
                    id,
                    nack.delivery_time,
                    nack.delivery_count,
                    g.last_id,
                ));
                propagate_last = false;
                g.ack(id);
            }
            continue;
        }
        let previous_count = match &pending {
            Some(nack) => {
                if min_idle > 0 && now - nack.delivery_time < min_idle {
                    continue;
                }
                nack.delivery_count
            }
            // A new pending entry starts at one delivery, as Redis's streamCreateNACK.
            None if force => 1,
            None => continue,
        };
        let count = match retry {
            Some(r) if r >= 0 => r as u64,
            _ if justid => previous_count,
            _ => previous_count + 1,
        };
        if !std::mem::replace(&mut met, true) {
            meet_consumer(&mut g, &mut effects, (key, group, consumer), now);
        }
        g.assign(id, consumer, delivery_time, count);
        if let Some(c) = g.consumers.get_mut(consumer) {
            c.active_time = now;
        }
        replies.push(if justid { id_reply(id) } else { s.get(id).map_or(Reply::NullArray, |f| entry_reply(id, f)) });
        effects.push(claim_effect(key, group, consumer, id, delivery_time, count, g.last_id));
        propagate_last = false;
    }
    if propagate_last {
        effects.push(setid_effect(key, group, g.last_id, g.entries_read));
    }
    s.groups.insert(group.clone(), g);
    if !effects.is_empty() {
        ctx.stream_written(key, effects);
    }
    Ok(Reply::Array(replies))
}

/// XAUTOCLAIM key group consumer min-idle-time start [COUNT n] [JUSTID]
pub(super) fn xautoclaim(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (key, group, consumer) = (&args[1], &args[2], &args[3]);
    let min_idle = super::args::parse_i64(&args[4])
        .ok_or_else(|| Reply::error("ERR Invalid min-idle-time argument for XAUTOCLAIM"))?
        .max(0);
    let start = interval_id(&args[5], 0, true)?;
    let (mut count, mut justid) = (100usize, false);
    let mut j = 6;
    while j < args.len() {
        if eq_ignore_case(&args[j], "COUNT") && j + 1 < args.len() {
            let max = (i64::MAX / 16) as i128;
            let n = super::args::parse_i64(&args[j + 1]).ok_or_else(|| Reply::error(errors::NOT_INTEGER))?;
            if n < 1 || n as i128 > max {
                return Err(Reply::error("ERR COUNT must be > 0"));
            }
            count = n as usize;
            j += 2;
        } else if eq_ignore_case(&args[j], "JUSTID") {
            justid = true;
            j += 1;
        } else {
            return Err(syntax_error());
        }
    }
    if !ctx.read_stream(key)?.is_some_and(|s| s.groups.contains_key(group)) {
        return Err(nogroup(key, group));
    }
    let now = ctx.now;
    let Some(s) = ctx.stream_mut(key)? else { return Err(nogroup(key, group)) };
    let Some(mut g) = s.groups.remove(group.as_ref()) else { return Err(nogroup(key, group)) };
    let mut effects = Vec::new();
    // The consumer is looked up (and made) at its first claim only, as Redis 7.2 does: a
    // claim that takes nothing creates no consumer.
    let mut met = false;
    let mut attempts = count.saturating_mul(10);
    let mut left = count;
    let (mut claimed, mut deleted) = (Vec::new(), Vec::new());
    let mut cursor = start;
    let mut next = StreamId::MIN;
    loop {
        if attempts == 0 || left == 0 {
            // The cursor is the next pending ID after the last one looked at.
            next = g.pel.range(cursor..).next().map_or(StreamId::MIN, |(id, _)| *id);
            break;
        }
        attempts -= 1;
        let Some((id, nack)) = g.pel.range(cursor..).next().map(|(id, n)| (*id, n.clone())) else { break };
        cursor = match id.incr() {
            Some(c) => c,
            None => StreamId::MAX,
        };
        if s.get(id).is_none() {
            effects.push(claim_effect(key, group, consumer, id, nack.delivery_time, nack.delivery_count, g.last_id));
            g.ack(id);
            deleted.push(id_reply(id));
            left -= 1;
        } else if min_idle == 0 || now - nack.delivery_time >= min_idle {
            let count = if justid { nack.delivery_count } else { nack.delivery_count + 1 };
            if !std::mem::replace(&mut met, true) {
                meet_consumer(&mut g, &mut effects, (key, group, consumer), now);
            }
            g.assign(id, consumer, now, count);
            if let Some(c) = g.consumers.get_mut(consumer) {
                c.active_time = now;
            }
            claimed.push(if justid {
                id_reply(id)
            } else {
                s.get(id).map_or(Reply::NullArray, |f| entry_reply(id, f))
            });
            effects.push(claim_effect(key, group, consumer, id, now, count, g.last_id));
            left -= 1;
        }
        if id == StreamId::MAX {
            break;
        }
    }
    s.groups.insert(group.clone(), g);
    if !effects.is_empty() {
        ctx.stream_written(key, effects);
    }
    Ok(Reply::Array(vec![id_reply(next), Reply::Array(claimed), Reply::Array(deleted)]))
}

const XINFO_HELP: &[&str] = &[
    "XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CONSUMERS <key> <groupname>",
    "    Show consumers of <groupname>.",
    "GROUPS <key>",
    "    Show the stream consumer groups.",
    "STREAM <key> [FULL [COUNT <count>]",
    "    Show information about the stream.",
    "HELP",
    "    Prints this help.",
];

fn bulk_str(s: &'static str) -> Reply {
    Reply::Bulk(b(s))
}

fn optional_int(v: Option<i64>) -> Reply {
    v.map_or(Reply::NullBulk, Reply::Integer)
}

/// Redis's radix tree keeps up to 100 entries per node: the sizes XINFO reports are those
/// of that layout for this many entries (Ferrocache keeps a B-tree of entries).
fn radix_sizes(len: usize) -> (i64, i64) {
    let keys = len.div_ceil(100) as i64;
    (keys, keys + 1)
}

/// XINFO STREAM key [FULL [COUNT n]] | GROUPS key | CONSUMERS key group | HELP
pub(super) fn xinfo(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    check_subcommand(args, "XINFO", &[("consumers", 4), ("groups", 3), ("help", 2), ("stream", -3)])?;
    let sub = args[1].to_ascii_uppercase();
    if sub == b"HELP" {
        if args.len() != 2 {
            return Err(subcommand_error(&args[1], "XINFO"));
        }
        return Ok(help(XINFO_HELP));
    }
    if args.len() < 3 {
        return Err(subcommand_error(&args[1], "XINFO"));
    }
    let key = &args[2];
    let now = ctx.now;
    let Some(s) = ctx.read_stream(key)? else { return Err(Reply::error(errors::NO_SUCH_KEY)) };
    match (sub.as_slice(), args.len()) {
        (b"CONSUMERS", 4) => {
            let Some(g) = s.groups.get(args[3].as_ref()) else {
                return Err(Reply::error(format!(
                    "NOGROUP No such consumer group '{}' for key name '{}'",
                    String::from_utf8_lossy(&args[3]),
                    String::from_utf8_lossy(key)
                )));
            };
            Ok(Reply::Array(
                g.consumers
                    .iter()
                    .map(|(name, c)| {
                        Reply::Map(vec![
                            bulk_str("name"),
                            Reply::Bulk(name.clone()),
                            bulk_str("pending"),
                            Reply::Integer(c.pel.len() as i64),
                            bulk_str("idle"),
                            Reply::Integer((now - c.seen_time).max(0)),
                            bulk_str("inactive"),
                            Reply::Integer(if c.active_time < 0 { -1 } else { (now - c.active_time).max(0) }),
                        ])
                    })
                    .collect(),
            ))
        }
        (b"GROUPS", 3) => Ok(Reply::Array(
            s.groups
                .iter()
                .map(|(name, g)| {
                    Reply::Map(vec![
                        bulk_str("name"),
                        Reply::Bulk(name.clone()),
                        bulk_str("consumers"),
                        Reply::Integer(g.consumers.len() as i64),
                        bulk_str("pending"),
                        Reply::Integer(g.pel.len() as i64),
                        bulk_str("last-delivered-id"),
                        id_reply(g.last_id),
                        bulk_str("entries-read"),
                        optional_int((g.entries_read >= 0).then_some(g.entries_read)),
                        bulk_str("lag"),
                        optional_int(s.lag(g)),
                    ])
                })
                .collect(),
        )),
        (b"STREAM", _) => {
            let full = match args.len() {
                3 => None,
                4 if eq_ignore_case(&args[3], "FULL") => Some(10),
                6 if eq_ignore_case(&args[3], "FULL") && eq_ignore_case(&args[4], "COUNT") => {
                    let n = int_arg(&args[5])?;
                    Some(if n < 0 { 10 } else { n as usize })
                }
                _ => return Err(subcommand_error(&args[1], "XINFO")),
            };
            Ok(stream_info(s, full))
        }
        _ => Err(subcommand_error(&args[1], "XINFO")),
    }
}

fn stream_info(s: &Stream, full: Option<usize>) -> Reply {
    let (keys, nodes) = radix_sizes(s.len());
    let mut m = vec![
        bulk_str("length"),
        Reply::Integer(s.len() as i64),
        bulk_str("radix-tree-keys"),
        Reply::Integer(keys),
        bulk_str("radix-tree-nodes"),
        Reply::Integer(nodes),
        bulk_str("last-generated-id"),
        id_reply(s.last_id),
        bulk_str("max-deleted-entry-id"),
        id_reply(s.max_deleted),
        bulk_str("entries-added"),
        Reply::Integer(s.entries_added as i64),
        bulk_str("recorded-first-entry-id"),
        id_reply(s.first_id()),
    ];
    let Some(count) = full else {
        m.extend([
            bulk_str("groups"),
            Reply::Integer(s.groups.len() as i64),
            bulk_str("first-entry"),
            s.first().map_or(Reply::NullBulk, |(id, f)| entry_reply(id, f)),
            bulk_str("last-entry"),
            s.last().map_or(Reply::NullBulk, |(id, f)| entry_reply(id, f)),
        ]);
        return Reply::Map(m);
    };
    let limit = if count == 0 { usize::MAX } else { count };
    m.push(bulk_str("entries"));
    m.push(Reply::Array(
        s.range(StreamId::MIN, StreamId::MAX, count, false).into_iter().map(|(id, f)| entry_reply(id, f)).collect(),
    ));
    m.push(bulk_str("groups"));
    m.push(Reply::Array(
        s.groups
            .iter()
            .map(|(name, g)| {
                let pending = g
                    .pel
                    .iter()
                    .take(limit)
                    .map(|(id, n)| {
                        Reply::Array(vec![
                            id_reply(*id),
                            Reply::Bulk(n.consumer.clone()),
                            Reply::Integer(n.delivery_time),
                            Reply::Integer(n.delivery_count as i64),
                        ])
                    })
                    .collect();
                let consumers = g
                    .consumers
                    .iter()
                    .map(|(cname, c)| {
                        let pending = c
                            .pel
                            .iter()
                            .take(limit)
                            .filter_map(|id| g.pel.get(id).map(|n| (id, n)))
                            .map(|(id, n)| {
                                Reply::Array(vec![
                                    id_reply(*id),
                                    Reply::Integer(n.delivery_time),
                                    Reply::Integer(n.delivery_count as i64),
                                ])
                            })
                            .collect();
                        Reply::Map(vec![
                            bulk_str("name"),
                            Reply::Bulk(cname.clone()),
                            bulk_str("seen-time"),
                            Reply::Integer(c.seen_time),
                            bulk_str("active-time"),
                            Reply::Integer(c.active_time),
                            bulk_str("pel-count"),
                            Reply::Integer(c.pel.len() as i64),
                            bulk_str("pending"),
                            Reply::Array(pending),
                        ])
                    })
                    .collect();
                Reply::Map(vec![
                    bulk_str("name"),
                    Reply::Bulk(name.clone()),
                    bulk_str("last-delivered-id"),
                    id_reply(g.last_id),
                    bulk_str("entries-read"),
                    optional_int((g.entries_read >= 0).then_some(g.entries_read)),
                    bulk_str("lag"),
                    optional_int(s.lag(g)),
                    bulk_str("pel-count"),
                    Reply::Integer(g.pel.len() as i64),
                    bulk_str("pending"),
                    Reply::Array(pending),
                    bulk_str("consumers"),
                    Reply::Array(consumers),
                ])
            })
            .collect(),
    ));
    Reply::Map(m)
}
