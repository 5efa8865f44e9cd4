//! Sorted set commands over [`SortedSet`]: every range (by rank, score or lex) becomes a span
//! of ranks found in O(log n), then a walk over just that span. An emptied sorted set
//! disappears. Deterministic commands replicate as sent; blocking pops replicate as the
//! plain pop they performed.

use std::collections::HashMap;

use bytes::Bytes;
use ferrocache_common::double::format_double;
use ferrocache_common::glob::glob_match;
use ferrocache_common::reply::errors;
use ferrocache_common::Reply;

use super::args::{eq_ignore_case, int_arg, mpop_args, parse_f64, parse_i64, syntax_error, timeout_arg};
use super::{CmdResult, Ctx};
use crate::keyspace::Entry;
use crate::value::Value;
use crate::zset::SortedSet;

const NOT_FLOAT_RANGE: &str = "ERR min or max is not a float";
const NOT_LEX_RANGE: &str = "ERR min or max not valid string range item";
const NAN_SCORE: &str = "ERR resulting score is not a number (NaN)";

impl Ctx<'_> {
    fn read_zset(&mut self, key: &[u8]) -> Result<Option<&SortedSet>, Reply> {
        self.read_as(key, Value::as_zset)
    }

    fn write_zset(&mut self, key: &[u8]) -> Result<&mut SortedSet, Reply> {
        self.write_as(key, || Value::ZSet(Box::default()), Value::as_zset_mut)
    }

    /// Replaces whatever `dest` held with `z` (deleted when empty); records `effect`.
    fn store_zset(&mut self, dest: &Bytes, z: SortedSet, effect: Vec<Bytes>) -> usize {
        let n = z.len();
        self.store(dest, (n > 0).then(|| Value::ZSet(Box::new(z))), effect);
        n
    }

    /// Pops up to `count` lowest (or highest) entries; records a ZPOPMIN/ZPOPMAX effect.
    fn zpop(&mut self, key: &Bytes, max: bool, count: usize) -> Result<Vec<(Bytes, f64)>, Reply> {
        let Some(z) = self.read_zset(key)? else { return Ok(Vec::new()) };
        let start = if max { z.len().saturating_sub(1) } else { 0 };
        let picked: Vec<(Bytes, f64)> = z.iter_from(start, max).take(count).map(|(m, s)| (m.clone(), s)).collect();
        if picked.is_empty() {
            return Ok(picked);
        }
        let z = self.write_zset(key)?;
        for (m, _) in &picked {
            z.remove(m);
        }
        let name: &'static [u8] = if max { b"ZPOPMAX" } else { b"ZPOPMIN" };
        let effect = vec![Bytes::from_static(name), key.clone(), Bytes::from(picked.len().to_string())];
        self.collection_written(key, effect);
        Ok(picked)
    }
}

/// One end of a score range: `1.5`, `(1.5` (exclusive), `-inf`, `+inf`.
#[derive(Debug, Clone, Copy)]
struct ScoreBound {
    value: f64,
    exclusive: bool,
}

impl ScoreBound {
    fn parse(arg: &[u8]) -> Result<ScoreBound, Reply> {
        let (exclusive, text) = match arg.split_first() {
            Some((b'(', rest)) => (true, rest),
            _ => (false, arg),
        };
        let value = super::args::parse_range_f64(text).ok_or_else(|| Reply::error(NOT_FLOAT_RANGE))?;
        Ok(ScoreBound { value, exclusive })
    }
}

/// One end of a lex range: `-`, `+`, `[a` (inclusive), `(a` (exclusive).
#[derive(Debug, Clone)]
enum LexBound {
    Min,
    Max,
    Inclusive(Bytes),
    Exclusive(Bytes),
}

impl LexBound {
    fn parse(arg: &Bytes) -> Result<LexBound, Reply> {
        match arg.first() {
            Some(b'-') if arg.len() == 1 => Ok(LexBound::Min),
            Some(b'+') if arg.len() == 1 => Ok(LexBound::Max),
            Some(b'[') => Ok(LexBound::Inclusive(arg.slice(1..))),
            Some(b'(') => Ok(LexBound::Exclusive(arg.slice(1..))),
            _ => Err(Reply::error(NOT_LEX_RANGE)),
        }
    }

    /// Does `m` lie below this bound taken as the range's minimum?
    fn below_min(&self, m: &[u8]) -> bool {
        match self {
            LexBound::Min => false,
            LexBound::Max => true,
            LexBound::Inclusive(b) => m < &b[..],
            LexBound::Exclusive(b) => m <= &b[..],
        }
    }

    /// Does `m` lie within this bound taken as the range's maximum?
    fn within_max(&self, m: &[u8]) -> bool {
        match self {
            LexBound::Min => false,
            LexBound::Max => true,
            LexBound::Inclusive(b) => m <= &b[..],
            LexBound::Exclusive(b) => m < &b[..],
        }
    }
}

/// What a range command selects.
#[derive(Debug, Clone)]
enum Selection {
    /// Inclusive indexes as given (negative counts from the end).
    Rank(i64, i64),
    Score(ScoreBound, ScoreBound),
    Lex(LexBound, LexBound),
}

impl Selection {
    /// The span of ascending ranks `[lo, hi)` selected in `z`.
    fn span(&self, z: &SortedSet, rev: bool) -> (usize, usize) {
        let len = z.len() as i64;
        match self {
            Selection::Rank(start, stop) => {
                let norm = |i: i64| if i < 0 { i + len } else { i };
                let (start, stop) = (norm(*start).max(0), norm(*stop).min(len - 1));
                if start > stop || start >= len {
                    return (0, 0);
                }
                if rev {
                    ((len - 1 - stop) as usize, (len - start) as usize)
                } else {
                    (start as usize, stop as usize + 1)
                }
            }
            Selection::Score(min, max) => {
                let lo = z.count_while(|s, _| if min.exclusive { s <= min.value } else { s < min.value });
                let hi = z.count_while(|s, _| if max.exclusive { s < max.value } else { s <= max.value });
                (lo, hi.max(lo))
            }
            Selection::Lex(min, max) => {
                let lo = z.count_while(|_, m| min.below_min(m));
                let hi = z.count_while(|_, m| max.within_max(m));
                (lo, hi.max(lo))
            }
        }
    }

    /// The selected entries in reply order, after LIMIT (`offset`, `count` < 0 = all).
    fn collect(&self, z: &SortedSet, rev: bool, limit: Option<(i64, i64)>) -> Vec<(Bytes, f64)> {
        let (lo, hi) = self.span(z, rev);
        if lo >= hi {
            return Vec::new();
        }
        let (offset, count) = limit.unwrap_or((0, -1));
        if offset < 0 {
            return Vec::new();
        }
        let count = if count < 0 { usize::MAX } else { count as usize };
        let start = if rev { hi - 1 } else { lo };
        z.iter_from(start, rev).take(hi - lo).skip(offset as usize).take(count).map(|(m, s)| (m.clone(), s)).collect()
    }
}

fn entries_reply(entries: Vec<(Bytes, f64)>, with_scores: bool) -> Reply {
    if with_scores {
        Reply::Pairs(entries.into_iter().flat_map(|(m, s)| [Reply::Bulk(m), Reply::Double(s)]).collect())
    } else {
        Reply::Array(entries.into_iter().map(|(m, _)| Reply::Bulk(m)).collect())
    }
}

fn float_arg(arg: &[u8]) -> Result<f64, Reply> {
    parse_f64(arg).ok_or_else(|| Reply::error(errors::NOT_FLOAT))
}

/// ZADD's flags.
#[derive(Default)]
struct AddFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
    ch: bool,
    incr: bool,
}

enum Added {
    New,
    Updated(f64),
    Unchanged(f64),
    Skipped,
}

/// Adds or updates one member under ZADD's rules.
fn add_one(z: &mut SortedSet, flags: &AddFlags, member: &Bytes, score: f64) -> Result<Added, Reply> {
    match z.score(member) {
        Some(current) => {
            if flags.nx {
                return Ok(Added::Skipped);
            }
            let new = if flags.incr { current + score } else { score };
            if new.is_nan() {
                return Err(Reply::error(NAN_SCORE));
            }
            if (flags.gt && new <= current) || (flags.lt && new >= current) {
                return Ok(Added::Skipped);
            }
            if new == current {
                return Ok(Added::Unchanged(new));
            }
            z.insert(member.clone(), new);
            Ok(Added::Updated(new))
        }
        None if flags.xx => Ok(Added::Skipped),
        None => {
            z.insert(member.clone(), score);
            Ok(Added::New)
        }
    }
}

pub(super) fn zadd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let mut flags = AddFlags::default();
    let mut i = 2;
    while i < args.len() {
        let a = &args[i];
        let flag = match () {
            _ if eq_ignore_case(a, "NX") => &mut flags.nx,
            _ if eq_ignore_case(a, "XX") => &mut flags.xx,
            _ if eq_ignore_case(a, "GT") => &mut flags.gt,
            _ if eq_ignore_case(a, "LT") => &mut flags.lt,
            _ if eq_ignore_case(a, "CH") => &mut flags.ch,
            _ if eq_ignore_case(a, "INCR") => &mut flags.incr,
            _ => break,
        };
        *flag = true;
        i += 1;
    }
    let pairs = &args[i..];
    if pairs.is_empty() || !pairs.len().is_multiple_of(2) {
        return Err(syntax_error());
    }
    if flags.nx && flags.xx {
        return Err(Reply::error("ERR XX and NX options at the same time are not compatible"));
    }
    if (flags.nx && (flags.gt || flags.lt)) || (flags.gt && flags.lt) {
        return Err(Reply::error("ERR GT, LT, and/or NX options at the same time are not compatible"));
    }
    if flags.incr && pairs.len() > 2 {
        return Err(Reply::error("ERR INCR option supports a single increment-element pair"));
    }
    let scores = pairs.chunks(2).map(|p| float_arg(&p[0])).collect::<Result<Vec<f64>, Reply>>()?;
    let exists = ctx.read_zset(&args[1])?.is_some();
    let nothing = || if flags.incr { Reply::NullBulk } else { Reply::Integer(0) };
    if !exists && flags.xx {
        return Ok(nothing());
    }
    let z = ctx.write_zset(&args[1])?;
    let (mut added, mut updated, mut last) = (0, 0, None);
    let mut failure = None;
    for (pair, &score) in pairs.chunks(2).zip(&scores) {
        match add_one(z, &flags, &pair[1], score) {
            Ok(Added::New) => {
                added += 1;
                last = Some(if flags.incr { score } else { 0.0 });
            }
            Ok(Added::Updated(s)) => {
                updated += 1;
                last = Some(s);
            }
            Ok(Added::Unchanged(s)) => last = Some(s),
            Ok(Added::Skipped) => {}
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    if added + updated > 0 {
        ctx.collection_written(&args[1], args.to_vec());
    } else if ctx.ks.get(&args[1]).is_some_and(|e| e.value.is_empty_collection()) {
        // Nothing was added to a set created just now: it must not linger.
        ctx.ks.remove(&args[1]);
    }
    if let Some(e) = failure {
        return Err(e);
    }
    Ok(match (flags.incr, last) {
        (true, Some(s)) => Reply::Double(s),
        (true, None) => Reply::NullBulk,
        (false, _) if flags.ch => Reply::Integer(added + updated),
        (false, _) => Reply::Integer(added),
    })
}

pub(super) fn zincrby(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let by = float_arg(&args[2])?;
    let flags = AddFlags { incr: true, ..Default::default() };
    let z = ctx.write_zset(&args[1])?;
    let outcome = add_one(z, &flags, &args[3], by);
    let (score, changed) = match outcome {
        Ok(Added::New) => (by, true),
        Ok(Added::Updated(s)) => (s, true),
        Ok(Added::Unchanged(s)) => (s, false),
        Ok(Added::Skipped) => (by, false),
        Err(e) => return Err(e),
    };
    if changed {
        ctx.collection_written(&args[1], args.to_vec());
    }
    Ok(Reply::Double(score))
}

pub(super) fn zrem(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    if ctx.read_zset(&args[1])?.is_none() {
        return Ok(Reply::Integer(0));
    }
    let z = ctx.write_zset(&args[1])?;
    let removed = args[2..].iter().filter(|m| z.remove(m).is_some()).count();
    if removed > 0 {
        ctx.collection_written(&args[1], args.to_vec());
    }
    Ok(Reply::Integer(removed as i64))
}

pub(super) fn zcard(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    Ok(Reply::Integer(ctx.read_zset(&args[1])?.map_or(0, |z| z.len() as i64)))
}

pub(super) fn zscore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    Ok(ctx.read_zset(&args[1])?.and_then(|z| z.score(&args[2])).map_or(Reply::NullBulk, Reply::Double))
}

pub(super) fn zmscore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let z = ctx.read_zset(&args[1])?;
    Ok(Reply::Array(
        args[2..].iter().map(|m| z.and_then(|z| z.score(m)).map_or(Reply::NullBulk, Reply::Double)).collect(),
    ))
}

/// ZCOUNT and ZLEXCOUNT.
pub(super) fn zcount(ctx: &mut Ctx<'_>, args: &[Bytes], lex: bool) -> CmdResult {
    let sel = if lex {
        Selection::Lex(LexBound::parse(&args[2])?, LexBound::parse(&args[3])?)
    } else {
        Selection::Score(ScoreBound::parse(&args[2])?, ScoreBound::parse(&args[3])?)
    };
    let Some(z) = ctx.read_zset(&args[1])? else { return Ok(Reply::Integer(0)) };
    let (lo, hi) = sel.span(z, false);
    Ok(Reply::Integer((hi - lo) as i64))
}

/// ZRANK and ZREVRANK (with 7.2's WITHSCORE).
pub(super) fn zrank(ctx: &mut Ctx<'_>, args: &[Bytes], rev: bool) -> CmdResult {
    let with_score = match args.get(3) {
        None => false,
        Some(a) if args.len() == 4 && eq_ignore_case(a, "WITHSCORE") => true,
        Some(_) => return Err(syntax_error()),
    };
    let missing = if with_score { Reply::NullArray } else { Reply::NullBulk };
    let Some(z) = ctx.read_zset(&args[1])? else { return Ok(missing) };
    let (Some(rank), Some(score)) = (z.rank(&args[2]), z.score(&args[2])) else { return Ok(missing) };
    let rank = if rev { z.len() - 1 - rank } else { rank } as i64;
    Ok(if with_score { Reply::Array(vec![Reply::Integer(rank), Reply::Double(score)]) } else { Reply::Integer(rank) })
}

/// How a range command was called: its fixed range type and direction, if any.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum RangeKind {
    /// ZRANGE / ZRANGESTORE: BYSCORE, BYLEX and REV come from the arguments.
    Auto,
    Rank,
    Score,
    Lex,
}

/// A parsed range request.
struct RangeRequest {
    selection: Selection,
    rev: bool,
    limit: Option<(i64, i64)>,
    with_scores: bool,
}

/// Parses `min max [options]` starting at `args[at]` for every range command.
fn parse_range(args: &[Bytes], at: usize, kind: RangeKind, rev: bool, store: bool) -> Result<RangeRequest, Reply> {
    // The legacy commands fix the direction: REV is a syntax error there.
    let (mut kind, mut rev_set, mut rev) = (kind, kind != RangeKind::Auto, rev);
    let (mut limit, mut with_scores) = (None, false);
    let mut j = at + 2;
    while j < args.len() {
        let a = &args[j];
        let left = args.len() - j - 1;
        if !store && eq_ignore_case(a, "WITHSCORES") {
            with_scores = true;
        } else if eq_ignore_case(a, "LIMIT") && left >= 2 {
            limit = Some((int_arg(&args[j + 1])?, int_arg(&args[j + 2])?));
            j += 2;
        } else if !rev_set && eq_ignore_case(a, "REV") {
            (rev, rev_set) = (true, true);
        } else if kind == RangeKind::Auto && eq_ignore_case(a, "BYLEX") {
            kind = RangeKind::Lex;
        } else if kind == RangeKind::Auto && eq_ignore_case(a, "BYSCORE") {
            kind = RangeKind::Score;
        } else {
            return Err(syntax_error());
        }
        j += 1;
    }
    if kind == RangeKind::Auto {
        kind = RangeKind::Rank;
    }
    if limit.is_some() && kind == RangeKind::Rank {
        return Err(Reply::error(
            "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        ));
    }
    if with_scores && kind == RangeKind::Lex {
        return Err(Reply::error("ERR syntax error, WITHSCORES not supported in combination with BYLEX"));
    }
    // Reversed score and lex ranges are written max first.
    let (min, max) =
        if rev && kind != RangeKind::Rank { (&args[at + 1], &args[at]) } else { (&args[at], &args[at + 1]) };
    let selection = match kind {
        RangeKind::Score => Selection::Score(ScoreBound::parse(min)?, ScoreBound::parse(max)?),
        RangeKind::Lex => Selection::Lex(LexBound::parse(min)?, LexBound::parse(max)?),
        _ => Selection::Rank(int_arg(min)?, int_arg(max)?),
    };
    Ok(RangeRequest { selection, rev, limit, with_scores })
}

/// ZRANGE, ZREVRANGE, ZRANGEBYSCORE, ZREVRANGEBYSCORE, ZRANGEBYLEX, ZREVRANGEBYLEX.
pub(super) fn zrange(ctx: &mut Ctx<'_>, args: &[Bytes], kind: RangeKind, rev: bool) -> CmdResult {
    let req = parse_range(args, 2, kind, rev, false)?;
    let Some(z) = ctx.read_zset(&args[1])? else { return Ok(entries_reply(Vec::new(), req.with_scores)) };
    Ok(entries_reply(req.selection.collect(z, req.rev, req.limit), req.with_scores))
}

pub(super) fn zrangestore(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let req = parse_range(args, 3, RangeKind::Auto, false, true)?;
    let entries = match ctx.read_zset(&args[2])? {
        Some(z) => req.selection.collect(z, req.rev, req.limit),
        None => Vec::new(),
    };
    let mut out = SortedSet::new();
    for (m, s) in entries {
        out.insert(m, s);
    }
    Ok(Reply::Integer(ctx.store_zset(&args[1], out, args.to_vec()) as i64))
}

/// ZREMRANGEBYRANK, ZREMRANGEBYSCORE, ZREMRANGEBYLEX.
pub(super) fn zremrange(ctx: &mut Ctx<'_>, args: &[Bytes], kind: RangeKind) -> CmdResult {
    let selection = match kind {
        RangeKind::Score => Selection::Score(ScoreBound::parse(&args[2])?, ScoreBound::parse(&args[3])?),
        RangeKind::Lex => Selection::Lex(LexBound::parse(&args[2])?, LexBound::parse(&args[3])?),
        _ => Selection::Rank(int_arg(&args[2])?, int_arg(&args[3])?),
    };
    let Some(z) = ctx.read_zset(&args[1])? else { return Ok(Reply::Integer(0)) };
    let doomed = selection.collect(z, false, None);
    if doomed.is_empty() {
        return Ok(Reply::Integer(0));
    }
    let z = ctx.write_zset(&args[1])?;
    for (m, _) in &doomed {
        z.remove(m);
    }
    ctx.collection_written(&args[1], args.to_vec());
    Ok(Reply::Integer(doomed.len() as i64))
}

/// ZPOPMIN and ZPOPMAX: flat `[member, score]` without a count; with one, pairs (nested in
/// RESP3).
pub(super) fn zpop(ctx: &mut Ctx<'_>, args: &[Bytes], max: bool) -> CmdResult {
    let count = match args.len() {
        2 => None,
        3 => {
            let c = parse_i64(&args[2]).filter(|c| *c >= 0);
            Some(c.ok_or_else(|| Reply::error("ERR value is out of range, must be positive"))? as usize)
        }
        _ => return Err(syntax_error()),
    };
    let popped = ctx.zpop(&args[1], max, count.unwrap_or(1))?;
    Ok(match count {
        Some(_) => entries_reply(popped, true),
        None => Reply::Array(popped.into_iter().flat_map(|(m, s)| [Reply::Bulk(m), Reply::Double(s)]).collect()),
    })
}

/// BZPOPMIN and BZPOPMAX: `[key, member, score]` from the first non-empty key, else block.
pub(super) fn bzpop(ctx: &mut Ctx<'_>, args: &[Bytes], max: bool) -> CmdResult {
    let timeout = timeout_arg(&args[args.len() - 1])?;
    let keys = &args[1..args.len() - 1];
    let served = (|| {
        for key in keys {
            if ctx.read_zset(key)?.is_some() {
                if let Some((m, s)) = ctx.zpop(key, max, 1)?.pop() {
                    return Ok(Some(Reply::Array(vec![Reply::Bulk(key.clone()), Reply::Bulk(m), Reply::Double(s)])));
                }
            }
        }
        Ok(None)
    })();
    ctx.serve_or_block(keys, timeout, |v| matches!(v, Value::ZSet(_)), served)
}

fn min_or_max(arg: &[u8]) -> Result<bool, Reply> {
    if eq_ignore_case(arg, "MIN") {
        Ok(false)
    } else if eq_ignore_case(arg, "MAX") {
        Ok(true)
    } else {
        Err(syntax_error())
    }
}

/// Pops from the first non-empty key: `[key, [[member, score], ...]]`, or None.
fn mpop_first(ctx: &mut Ctx<'_>, keys: &[Bytes], max: bool, count: usize) -> Result<Option<Reply>, Reply> {
    for key in keys {
        if ctx.read_zset(key)?.is_some() {
            let popped = ctx.zpop(key, max, count)?;
            let pairs = popped.into_iter().map(|(m, s)| Reply::Array(vec![Reply::Bulk(m), Reply::Double(s)])).collect();
            return Ok(Some(Reply::Array(vec![Reply::Bulk(key.clone()), Reply::Array(pairs)])));
        }
    }
    Ok(None)
}

pub(super) fn zmpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (keys, max, count) = mpop_args(args, 1, min_or_max)?;
    Ok(mpop_first(ctx, &keys, max, count)?.unwrap_or(Reply::NullArray))
}

pub(super) fn bzmpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let timeout = timeout_arg(&args[1])?;
    let (keys, max, count) = mpop_args(args, 2, min_or_max)?;
    let served = mpop_first(ctx, &keys, max, count);
    ctx.serve_or_block(&keys, timeout, |v| matches!(v, Value::ZSet(_)), served)
}

pub(super) fn zrandmember(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let with_scores = match args.get(3) {
        Some(a) if eq_ignore_case(a, "WITHSCORES") && args.len() == 4 => true,
        Some(_) => return Err(syntax_error()),
        None => false,
    };
    let count = match args.get(2) {
        Some(c) => Some(super::args::random_count_arg(c, with_scores)?),
        None => None,
    };
    let Some(z) = ctx.read_zset(&args[1])? else {
        return Ok(if count.is_some() { Reply::Array(vec![]) } else { Reply::NullBulk });
    };
    let len = z.len();
    if len == 0 {
        return Ok(if count.is_some() { Reply::Array(vec![]) } else { Reply::NullBulk });
    }
    let at = |rank: usize| z.iter_from(rank, false).next().map(|(m, s)| (m.clone(), s));
    let Some(count) = count else {
        return Ok(at(rand::random_range(0..len)).map_or(Reply::NullBulk, |(m, _)| Reply::Bulk(m)));
    };
    let picks: Vec<usize> = if count >= 0 {
        let n = (count as usize).min(len);
        let mut ranks = rand::seq::index::sample(&mut rand::rng(), len, n).into_vec();
        ranks.sort_unstable();
        ranks
    } else {
        let n = count.unsigned_abs().min(super::args::MAX_RANDOM_PICKS as u64) as usize;
        (0..n).map(|_| rand::random_range(0..len)).collect()
    };
    let entries: Vec<(Bytes, f64)> = if count >= 0 && picks.len() == len {
        z.iter().map(|(m, s)| (m.clone(), s)).collect()
    } else if picks.len() > len {
        // More picks than members (repeats): one walk of the set, then each pick indexes it,
        // instead of a walk from the top per pick.
        let all: Vec<(Bytes, f64)> = z.iter().map(|(m, s)| (m.clone(), s)).collect();
        picks.into_iter().filter_map(|i| all.get(i).cloned()).collect()
    } else {
        picks.into_iter().filter_map(at).collect()
    };
    Ok(entries_reply(entries, with_scores))
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum SetOp {
    Union,
    Inter,
    Diff,
}

#[derive(Clone, Copy)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

impl Aggregate {
    fn apply(self, a: f64, b: f64) -> f64 {
        match self {
            // inf + -inf is NaN: Redis takes it as 0.
            Aggregate::Sum => {
                let s = a + b;
                if s.is_nan() {
                    0.0
                } else {
                    s
                }
            }
            Aggregate::Min => a.min(b),
            Aggregate::Max => a.max(b),
        }
    }
}

/// Reads a ZUNION-style input: a sorted set, or a plain set whose members score 1.
fn load_input(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<Vec<(Bytes, f64)>, Reply> {
    match ctx.lookup(key) {
        None => Ok(Vec::new()),
        Some(Entry { value: Value::ZSet(z), .. }) => Ok(z.iter().map(|(m, s)| (m.clone(), s)).collect()),
        Some(Entry { value: Value::Set(s), .. }) => Ok(s.iter().map(|m| (m.clone(), 1.0)).collect()),
        Some(_) => Err(Reply::error(errors::WRONGTYPE)),
    }
}

/// What ZUNION, ZINTER, ZDIFF, their STORE forms and ZINTERCARD were asked.
struct CombineArgs<'a> {
    keys: &'a [Bytes],
    weights: Vec<f64>,
    aggregate: Aggregate,
    with_scores: bool,
    /// ZINTERCARD's LIMIT (0 = none).
    limit: usize,
}

/// Whether `key` may be an input of ZUNION and friends: missing, a sorted set or a set.
fn input_type(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<(), Reply> {
    match ctx.lookup(key) {
        None | Some(Entry { value: Value::ZSet(_) | Value::Set(_), .. }) => Ok(()),
        Some(_) => Err(Reply::error(errors::WRONGTYPE)),
    }
}

/// Parses `numkeys key... [WEIGHTS w...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]` from
/// `args[at]` on; `card` is ZINTERCARD (`[LIMIT n]` only). `keys_ok` checks the input keys
/// once they are known and before the options, so a key of another type is WRONGTYPE even
/// when an option is wrong too (Redis's order).
fn combine_args<'a>(
    args: &'a [Bytes],
    at: usize,
    op: SetOp,
    store: bool,
    card: bool,
    keys_ok: &mut dyn FnMut(&[Bytes]) -> Result<(), Reply>,
) -> Result<CombineArgs<'a>, Reply> {
    let name = match (op, store, card) {
        (_, _, true) => "zintercard",
        (SetOp::Union, false, _) => "zunion",
        (SetOp::Union, true, _) => "zunionstore",
        (SetOp::Inter, false, _) => "zinter",
        (SetOp::Inter, true, _) => "zinterstore",
        (SetOp::Diff, false, _) => "zdiff",
        (SetOp::Diff, true, _) => "zdiffstore",
    };
    let numkeys = int_arg(&args[at])?;
    if numkeys < 1 {
        return Err(Reply::error(format!("ERR at least 1 input key is needed for '{name}' command")));
    }
    let numkeys = numkeys as usize;
    if numkeys > args.len() - at - 1 {
        return Err(syntax_error());
    }
    let mut parsed = CombineArgs {
        keys: &args[at + 1..at + 1 + numkeys],
        weights: vec![1.0; numkeys],
        aggregate: Aggregate::Sum,
        with_scores: false,
        limit: 0,
    };
    keys_ok(parsed.keys)?;
    let full = op != SetOp::Diff && !card;
    let mut j = at + 1 + numkeys;
    while j < args.len() {
        let left = args.len() - j - 1;
        let a = &args[j];
        if full && eq_ignore_case(a, "WEIGHTS") && left >= numkeys {
            for (w, arg) in parsed.weights.iter_mut().zip(&args[j + 1..j + 1 + numkeys]) {
                *w = parse_f64(arg).ok_or_else(|| Reply::error("ERR weight value is not a float"))?;
            }
            j += numkeys;
        } else if full && eq_ignore_case(a, "AGGREGATE") && left >= 1 {
            let how = &args[j + 1];
            parsed.aggregate = match () {
                _ if eq_ignore_case(how, "SUM") => Aggregate::Sum,
                _ if eq_ignore_case(how, "MIN") => Aggregate::Min,
                _ if eq_ignore_case(how, "MAX") => Aggregate::Max,
                _ => return Err(syntax_error()),
            };
            j += 1;
        } else if card && eq_ignore_case(a, "LIMIT") && left >= 1 {
            let limit = parse_i64(&args[j + 1]).filter(|l| *l >= 0);
            parsed.limit = limit.ok_or_else(|| Reply::error("ERR LIMIT can't be negative"))? as usize;
            j += 1;
        } else if !store && !card && eq_ignore_case(a, "WITHSCORES") {
            parsed.with_scores = true;
        } else {
            return Err(syntax_error());
        }
        j += 1;
    }
    Ok(parsed)
}

/// ZUNION / ZINTER / ZDIFF and their STORE forms.
pub(super) fn combine(ctx: &mut Ctx<'_>, args: &[Bytes], op: SetOp, store: bool) -> CmdResult {
    let mut keys_ok = |keys: &[Bytes]| keys.iter().try_for_each(|k| input_type(ctx, k));
    let parsed = combine_args(args, if store { 2 } else { 1 }, op, store, false, &mut keys_ok)?;
    let inputs = parsed.keys.iter().map(|k| load_input(ctx, k)).collect::<Result<Vec<_>, Reply>>()?;
    let result = compute(op, inputs, &parsed.weights, parsed.aggregate);
    if store {
        return Ok(Reply::Integer(ctx.store_zset(&args[1], result, args.to_vec()) as i64));
    }
    Ok(entries_reply(result.iter().map(|(m, s)| (m.clone(), s)).collect(), parsed.with_scores))
}

fn compute(op: SetOp, inputs: Vec<Vec<(Bytes, f64)>>, weights: &[f64], aggregate: Aggregate) -> SortedSet {
    let weigh = |s: f64, w: f64| {
        let v = s * w;
        if v.is_nan() {
            0.0
        } else {
            v
        }
    };
    let mut acc: HashMap<Bytes, f64> = HashMap::new();
    let mut inputs = inputs.into_iter().zip(weights.iter().copied());
    match op {
        SetOp::Union => {
            for (input, w) in inputs {
                for (m, s) in input {
                    let v = weigh(s, w);
                    acc.entry(m).and_modify(|cur| *cur = aggregate.apply(*cur, v)).or_insert(v);
                }
            }
        }
        SetOp::Inter => {
            let Some((first, w0)) = inputs.next() else { return SortedSet::new() };
            acc = first.into_iter().map(|(m, s)| (m, weigh(s, w0))).collect();
            for (input, w) in inputs {
                let mut next = HashMap::with_capacity(acc.len().min(input.len()));
                for (m, s) in input {
                    if let Some(cur) = acc.remove(&m) {
                        next.insert(m, aggregate.apply(cur, weigh(s, w)));
                    }
                }
                acc = next;
            }
        }
        SetOp::Diff => {
            let Some((first, _)) = inputs.next() else { return SortedSet::new() };
            acc = first.into_iter().collect();
            for (input, _) in inputs {
                for (m, _) in input {
                    acc.remove(&m);
                }
            }
        }
    }
    let mut out = SortedSet::new();
    for (m, s) in acc {
        out.insert(m, s);
    }
    out
}

pub(super) fn zintercard(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let mut keys_ok = |keys: &[Bytes]| keys.iter().try_for_each(|k| input_type(ctx, k));
    let parsed = combine_args(args, 1, SetOp::Inter, false, true, &mut keys_ok)?;
    let inputs = parsed.keys.iter().map(|k| load_input(ctx, k)).collect::<Result<Vec<_>, Reply>>()?;
    let n = compute(SetOp::Inter, inputs, &parsed.weights, Aggregate::Sum).len();
    Ok(Reply::Integer(if parsed.limit > 0 { n.min(parsed.limit) } else { n } as i64))
}

/// ZSCAN returns the whole sorted set in one call (cursor 0); scores are strings, as in Redis.
pub(super) fn zscan(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (pattern, _) = super::args::collection_scan_args(args, false)?;
    let mut items = Vec::new();
    if let Some(z) = ctx.read_zset(&args[1])? {
        for (m, s) in z.iter() {
            if pattern.as_ref().is_none_or(|p| glob_match(p, m)) {
                items.push(Reply::Bulk(m.clone()));
                items.push(Reply::Bulk(Bytes::from(format_double(s))));
            }
        }
    }
    Ok(Reply::Array(vec![Reply::Bulk(Bytes::from_static(b"0")), Reply::Array(items)]))
}
