//! List commands. A list lives whole under its key (a deque: O(1) at both ends); an emptied
//! list disappears, as in Redis. Blocking pops that find nothing set [`Ctx::block`]; the
//! service parks them until a write touches one of their keys or their timeout passes.

use std::collections::VecDeque;

use bytes::Bytes;
use ferrocache_common::reply::errors;
use ferrocache_common::Reply;

use super::args::{eq_ignore_case, int_arg, mpop_args, syntax_error, timeout_arg};
use super::{CmdResult, Ctx};
use crate::keyspace::Entry;
use crate::value::Value;

const OUT_OF_RANGE_POSITIVE: &str = "ERR value is out of range, must be positive";

#[derive(Clone, Copy, PartialEq, Eq)]
enum End {
    Left,
    Right,
}

impl End {
    fn parse(arg: &[u8]) -> Result<End, Reply> {
        if eq_ignore_case(arg, "LEFT") {
            Ok(End::Left)
        } else if eq_ignore_case(arg, "RIGHT") {
            Ok(End::Right)
        } else {
            Err(syntax_error())
        }
    }

    fn pop_name(self) -> &'static [u8] {
        match self {
            End::Left => b"LPOP",
            End::Right => b"RPOP",
        }
    }

    fn word(self) -> &'static [u8] {
        match self {
            End::Left => b"LEFT",
            End::Right => b"RIGHT",
        }
    }
}

impl Ctx<'_> {
    fn read_list(&mut self, key: &[u8]) -> Result<Option<&VecDeque<Bytes>>, Reply> {
        self.read_as(key, Value::as_list)
    }

    fn write_list(&mut self, key: &[u8]) -> Result<&mut VecDeque<Bytes>, Reply> {
        self.write_as(key, || Value::List(VecDeque::new()), Value::as_list_mut)
    }

    fn list_written(&mut self, key: &[u8], effect: Vec<Bytes>) {
        self.collection_written(key, effect)
    }

    /// Pops up to `count` elements from one end; records the pop as its own effect.
    fn pop(&mut self, key: &Bytes, end: End, count: usize) -> Result<Vec<Bytes>, Reply> {
        let l = self.write_list(key)?;
        let n = count.min(l.len());
        let popped: Vec<Bytes> = match end {
            End::Left => l.drain(..n).collect(),
            End::Right => (0..n).filter_map(|_| l.pop_back()).collect(),
        };
        if popped.is_empty() {
            // Nothing to pop (callers check first): undo the empty list write_list made.
            if matches!(self.ks.get(key), Some(Entry { value: Value::List(l), .. }) if l.is_empty()) {
                self.ks.remove(key);
            }
            return Ok(popped);
        }
        let effect = vec![Bytes::from_static(end.pop_name()), key.clone(), Bytes::from(popped.len().to_string())];
        self.list_written(key, effect);
        Ok(popped)
    }

    /// LMOVE's core: pops from `src` at `from`, pushes to `dst` at `to`; None when `src` is empty.
    fn move_element(&mut self, src: &Bytes, dst: &Bytes, from: End, to: End) -> Result<Option<Bytes>, Reply> {
        if self.read_list(src)?.is_none_or(|l| l.is_empty()) {
            return Ok(None);
        }
        // The destination's type is checked before anything moves.
        self.read_list(dst)?;
        let l = self.write_list(src)?;
        let Some(v) = (match from {
            End::Left => l.pop_front(),
            End::Right => l.pop_back(),
        }) else {
            return Ok(None);
        };
        let d = self.write_list(dst)?;
        match to {
            End::Left => d.push_front(v.clone()),
            End::Right => d.push_back(v.clone()),
        }
        let effect = vec![
            Bytes::from_static(b"LMOVE"),
            src.clone(),
            dst.clone(),
            Bytes::from_static(from.word()),
            Bytes::from_static(to.word()),
        ];
        if matches!(self.ks.get(src), Some(Entry { value: Value::List(l), .. }) if l.is_empty()) {
            self.ks.remove(src);
        }
        self.propagate(effect, &[src, dst]);
        Ok(Some(v))
    }
}

/// LPUSH, RPUSH, LPUSHX, RPUSHX.
pub(super) fn push(ctx: &mut Ctx<'_>, args: &[Bytes], left: bool, only_existing: bool) -> CmdResult {
    if only_existing && ctx.read_list(&args[1])?.is_none() {
        // Still a type check: WRONGTYPE was answered above when the key holds another type.
        return Ok(Reply::Integer(0));
    }
    let l = ctx.write_list(&args[1])?;
    for v in &args[2..] {
        if left {
            l.push_front(v.clone());
        } else {
            l.push_back(v.clone());
        }
    }
    let len = l.len() as i64;
    ctx.list_written(&args[1], args.to_vec());
    Ok(Reply::Integer(len))
}

/// LPOP and RPOP, with or without a count.
pub(super) fn pop(ctx: &mut Ctx<'_>, args: &[Bytes], left: bool) -> CmdResult {
    let count = match args.len() {
        2 => None,
        3 => {
            let c = super::args::parse_i64(&args[2]).ok_or_else(|| Reply::error(OUT_OF_RANGE_POSITIVE))?;
            if c < 0 {
                return Err(Reply::error(OUT_OF_RANGE_POSITIVE));
            }
            Some(c as usize)
        }
        _ => {
            let name = if left { "lpop" } else { "rpop" };
            return Err(Reply::error(format!("ERR wrong number of arguments for '{name}' command")));
        }
    };
    let end = if left { End::Left } else { End::Right };
    if ctx.read_list(&args[1])?.is_none() {
        return Ok(if count.is_some() { Reply::NullArray } else { Reply::NullBulk });
    }
    match count {
        None => Ok(ctx.pop(&args[1], end, 1)?.pop().map_or(Reply::NullBulk, Reply::Bulk)),
        Some(n) => Ok(Reply::Array(ctx.pop(&args[1], end, n)?.into_iter().map(Reply::Bulk).collect())),
    }
}

pub(super) fn llen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    Ok(Reply::Integer(ctx.read_list(&args[1])?.map_or(0, |l| l.len() as i64)))
}

/// Redis's index normalisation for LRANGE/LTRIM: (start, end) inclusive, clamped, or None
/// when the range is empty.
fn clamp_range(start: i64, stop: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let start = if start < 0 { (len + start).max(0) } else { start };
    let stop = if stop < 0 { len + stop } else { stop.min(len - 1) };
    (start <= stop && start < len && stop >= 0).then_some((start as usize, stop as usize))
}

pub(super) fn lrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (start, stop) = (int_arg(&args[2])?, int_arg(&args[3])?);
    let Some(l) = ctx.read_list(&args[1])? else { return Ok(Reply::Array(vec![])) };
    Ok(Reply::Array(match clamp_range(start, stop, l.len()) {
        Some((a, b)) => l.range(a..=b).cloned().map(Reply::Bulk).collect(),
        None => vec![],
    }))
}

fn index(i: i64, len: usize) -> Option<usize> {
    let i = if i < 0 { len as i64 + i } else { i };
    (0..len as i64).contains(&i).then_some(i as usize)
}

pub(super) fn lindex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    // Redis looks the key up before it reads the index: a missing key is nil whatever it is.
    let Some(l) = ctx.read_list(&args[1])? else { return Ok(Reply::NullBulk) };
    let i = int_arg(&args[2])?;
    Ok(index(i, l.len()).and_then(|i| l.get(i)).map_or(Reply::NullBulk, |v| Reply::Bulk(v.clone())))
}

pub(super) fn lset(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    // The key before the index, as Redis: no such key / WRONGTYPE win over a bad index.
    let Some(l) = ctx.read_list(&args[1])? else { return Err(Reply::error(errors::NO_SUCH_KEY)) };
    let i = int_arg(&args[2])?;
    let Some(i) = index(i, l.len()) else { return Err(Reply::error("ERR index out of range")) };
    ctx.write_list(&args[1])?[i] = args[3].clone();
    ctx.list_written(&args[1], args.to_vec());
    Ok(Reply::ok())
}

pub(super) fn linsert(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let after = if eq_ignore_case(&args[2], "AFTER") {
        true
    } else if eq_ignore_case(&args[2], "BEFORE") {
        false
    } else {
        return Err(syntax_error());
    };
    let Some(l) = ctx.read_list(&args[1])? else { return Ok(Reply::Integer(0)) };
    let Some(at) = l.iter().position(|v| v == &args[3]) else { return Ok(Reply::Integer(-1)) };
    let l = ctx.write_list(&args[1])?;
    l.insert(if after { at + 1 } else { at }, args[4].clone());
    let len = l.len() as i64;
    ctx.list_written(&args[1], args.to_vec());
    Ok(Reply::Integer(len))
}

pub(super) fn lrem(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let count = int_arg(&args[2])?;
    if ctx.read_list(&args[1])?.is_none() {
        return Ok(Reply::Integer(0));
    }
    let l = ctx.write_list(&args[1])?;
    let limit = if count == 0 { usize::MAX } else { count.unsigned_abs() as usize };
    let mut removed = 0;
    if count >= 0 {
        let mut i = 0;
        while i < l.len() && removed < limit {
            if l[i] == args[3] {
                l.remove(i);
                removed += 1;
            } else {
                i += 1;
            }
        }
    } else {
        let mut i = l.len();
        while i > 0 && removed < limit {
            i -= 1;
            if l[i] == args[3] {
                l.remove(i);
                removed += 1;
            }
        }
    }
    if removed > 0 {
        ctx.list_written(&args[1], args.to_vec());
    }
    Ok(Reply::Integer(removed as i64))
}

pub(super) fn ltrim(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (start, stop) = (int_arg(&args[2])?, int_arg(&args[3])?);
    if ctx.read_list(&args[1])?.is_none() {
        return Ok(Reply::ok());
    }
    let l = ctx.write_list(&args[1])?;
    match clamp_range(start, stop, l.len()) {
        Some((a, b)) => {
            l.truncate(b + 1);
            l.drain(..a);
        }
        None => l.clear(),
    }
    ctx.list_written(&args[1], args.to_vec());
    Ok(Reply::ok())
}

pub(super) fn lpos(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (mut rank, mut count, mut maxlen) = (1i64, None, 0usize);
    let mut i = 3;
    while i < args.len() {
        let Some(v) = args.get(i + 1) else { return Err(syntax_error()) };
        if eq_ignore_case(&args[i], "RANK") {
            rank = int_arg(v)?;
            if rank == 0 {
                return Err(Reply::error("ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list"));
            }
            if rank == i64::MIN {
                return Err(Reply::error(super::args::LONG_RANGE));
            }
        } else if eq_ignore_case(&args[i], "COUNT") {
            // Redis answers this for a count that is not a number too.
            let c = int_arg(v).unwrap_or(-1);
            if c < 0 {
                return Err(Reply::error("ERR COUNT can't be negative"));
            }
            count = Some(c as usize);
        } else if eq_ignore_case(&args[i], "MAXLEN") {
            let m = int_arg(v).unwrap_or(-1);
            if m < 0 {
                return Err(Reply::error("ERR MAXLEN can't be negative"));
            }
            maxlen = m as usize;
        } else {
            return Err(syntax_error());
        }
        i += 2;
    }
    let Some(l) = ctx.read_list(&args[1])? else {
        return Ok(if count.is_some() { Reply::Array(vec![]) } else { Reply::NullBulk });
    };
    let want = match count {
        Some(0) => usize::MAX,
        Some(c) => c,
        None => 1,
    };
    let scan = if maxlen == 0 { l.len() } else { maxlen.min(l.len()) };
    let mut skip = rank.unsigned_abs() as usize - 1;
    let mut found = Vec::new();
    let positions: Box<dyn Iterator<Item = usize>> =
        if rank > 0 { Box::new(0..scan) } else { Box::new((l.len() - scan..l.len()).rev()) };
    for p in positions {
        if l[p] == args[2] {
            if skip > 0 {
                skip -= 1;
                continue;
            }
            found.push(p as i64);
            if found.len() >= want {
                break;
            }
        }
    }
    Ok(match count {
        Some(_) => Reply::Array(found.into_iter().map(Reply::Integer).collect()),
        None => found.first().map_or(Reply::NullBulk, |&p| Reply::Integer(p)),
    })
}

/// LMOVE and RPOPLPUSH.
pub(super) fn lmove(ctx: &mut Ctx<'_>, args: &[Bytes], rpoplpush: bool) -> CmdResult {
    let (from, to) = if rpoplpush { (End::Right, End::Left) } else { (End::parse(&args[3])?, End::parse(&args[4])?) };
    Ok(ctx.move_element(&args[1], &args[2], from, to)?.map_or(Reply::NullBulk, Reply::Bulk))
}

/// Pops from the first non-empty list of `keys`: `[key, [elements]]`, or None.
fn mpop_first(ctx: &mut Ctx<'_>, keys: &[Bytes], end: End, count: usize) -> Result<Option<Reply>, Reply> {
    for key in keys {
        if ctx.read_list(key)?.is_some_and(|l| !l.is_empty()) {
            let popped = ctx.pop(key, end, count)?;
            return Ok(Some(Reply::Array(vec![
                Reply::Bulk(key.clone()),
                Reply::Array(popped.into_iter().map(Reply::Bulk).collect()),
            ])));
        }
    }
    Ok(None)
}

pub(super) fn lmpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (keys, end, count) = mpop_args(args, 1, End::parse)?;
    Ok(mpop_first(ctx, &keys, end, count)?.unwrap_or(Reply::NullArray))
}

/// BLPOP and BRPOP: `[key, element]` from the first non-empty list, else block.
pub(super) fn blpop(ctx: &mut Ctx<'_>, args: &[Bytes], left: bool) -> CmdResult {
    let timeout = timeout_arg(&args[args.len() - 1])?;
    let keys = &args[1..args.len() - 1];
    let end = if left { End::Left } else { End::Right };
    let served = (|| {
        for key in keys {
            if ctx.read_list(key)?.is_some_and(|l| !l.is_empty()) {
                let v = ctx.pop(key, end, 1)?.pop().unwrap_or_default();
                return Ok(Some(Reply::Array(vec![Reply::Bulk(key.clone()), Reply::Bulk(v)])));
            }
        }
        Ok(None)
    })();
    ctx.serve_or_block(keys, timeout, |v| matches!(v, Value::List(_)), served)
}

/// BLMOVE and BRPOPLPUSH.
pub(super) fn blmove(ctx: &mut Ctx<'_>, args: &[Bytes], brpoplpush: bool) -> CmdResult {
    let (from, to, timeout) = if brpoplpush {
        (End::Right, End::Left, timeout_arg(&args[3])?)
    } else {
        (End::parse(&args[3])?, End::parse(&args[4])?, timeout_arg(&args[5])?)
    };
    let served = ctx.move_element(&args[1], &args[2], from, to).map(|v| v.map(Reply::Bulk));
    ctx.serve_or_block(&args[1..2], timeout, |v| matches!(v, Value::List(_)), served)
}

pub(super) fn blmpop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let timeout = timeout_arg(&args[1])?;
    let (keys, end, count) = mpop_args(args, 2, End::parse)?;
    let served = mpop_first(ctx, &keys, end, count);
    ctx.serve_or_block(&keys, timeout, |v| matches!(v, Value::List(_)), served)
}
