//! Set commands. A set lives whole under its key; an emptied set disappears. Random picks
//! (SPOP) replicate as the SREM of what was picked, so replicas stay identical.

use bytes::Bytes;
use ferrocache_common::glob::glob_match;
use ferrocache_common::reply::errors;
use ferrocache_common::Reply;

use super::args::{intercard_args, parse_i64, syntax_error};
use super::{CmdResult, Ctx};
use crate::keyspace::Entry;
use crate::set::Set;
use crate::value::Value;

impl Ctx<'_> {
    fn read_set(&mut self, key: &[u8]) -> Result<Option<&Set>, Reply> {
        self.read_as(key, Value::as_set)
    }

    /// The set under `key`; a missing one is created in the encoding Redis would pick for
    /// `first` with `hint` members coming.
    fn write_set(&mut self, key: &[u8], first: &[u8], hint: usize) -> Result<&mut Set, Reply> {
        self.expire_if_needed(key);
        if self.ks.get(key).is_none() {
            self.ks.insert(key, Entry::new(Value::Set(Box::new(Set::for_members(first, hint)))));
        }
        self.ks.get_value_mut(key).and_then(Value::as_set_mut).ok_or_else(|| Reply::error(errors::WRONGTYPE))
    }

    fn set_written(&mut self, key: &[u8], effect: Vec<Bytes>) {
        self.collection_written(key, effect)
    }
}

fn members(items: impl IntoIterator<Item = Bytes>) -> Vec<Reply> {
    items.into_iter().map(Reply::Bulk).collect()
}

pub(super) fn sadd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let s = ctx.write_set(&args[1], &args[2], args.len() - 2)?;
    s.prepare_for(args.len() - 2);
    let added = args[2..].iter().filter(|m| s.insert((*m).clone())).count();
    // At least one member is given, so a set created just now is never left empty.
    if added > 0 {
        ctx.set_written(&args[1], args.to_vec());
    }
    Ok(Reply::Integer(added as i64))
}

pub(super) fn srem(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    if ctx.read_set(&args[1])?.is_none() {
        return Ok(Reply::Integer(0));
    }
    let s = ctx.write_set(&args[1], &args[2], 0)?;
    let removed = args[2..].iter().filter(|m| s.remove(m)).count();
    if removed > 0 {
        ctx.set_written(&args[1], args.to_vec());
    }
    Ok(Reply::Integer(removed as i64))
}

pub(super) fn scard(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    Ok(Reply::Integer(ctx.read_set(&args[1])?.map_or(0, |s| s.len() as i64)))
}

pub(super) fn sismember(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    Ok(Reply::Integer(ctx.read_set(&args[1])?.is_some_and(|s| s.contains(&args[2])) as i64))
}

pub(super) fn smismember(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let s = ctx.read_set(&args[1])?;
    Ok(Reply::Array(args[2..].iter().map(|m| Reply::Integer(s.is_some_and(|s| s.contains(m)) as i64)).collect()))
}

pub(super) fn smembers(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    Ok(Reply::Set(ctx.read_set(&args[1])?.map(|s| members(s.iter())).unwrap_or_default()))
}

pub(super) fn smove(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (src, dst, member) = (&args[1], &args[2], &args[3]);
    let present = ctx.read_set(src)?.map(|s| s.contains(member));
    // A missing source moves nothing, whatever the destination holds (Redis checks the
    // destination's type only when the source exists).
    if present.is_none() {
        return Ok(Reply::Integer(0));
    }
    let in_dst = ctx.read_set(dst)?.is_some_and(|s| s.contains(member));
    match present {
        None | Some(false) => Ok(Reply::Integer(0)),
        Some(true) if src == dst => Ok(Reply::Integer(1)),
        Some(true) => {
            ctx.write_set(src, member, 0)?.remove(member);
            // A destination that already holds the member is left untouched: no event, and
            // a WATCH on it still holds (Redis signals only the keys that changed).
            if !in_dst {
                ctx.write_set(dst, member, 1)?.insert(member.clone());
            }
            if matches!(ctx.ks.get(src), Some(Entry { value: Value::Set(s), .. }) if s.is_empty()) {
                ctx.ks.remove(src);
            }
            let changed: &[&[u8]] = if in_dst { &[src] } else { &[src, dst] };
            ctx.propagate(args.to_vec(), changed);
            Ok(Reply::Integer(1))
        }
    }
}

/// `count` distinct random members (all, in the set's order, when count >= len).
fn sample(s: &Set, count: usize) -> Vec<Bytes> {
    if count >= s.len() {
        return s.iter().collect();
    }
    if count == 1 {
        return s.nth(rand::random_range(0..s.len())).into_iter().collect();
    }
    let all: Vec<Bytes> = s.iter().collect();
    rand::seq::index::sample(&mut rand::rng(), all.len(), count).into_iter().map(|i| all[i].clone()).collect()
}

pub(super) fn spop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let count = match args.len() {
        2 => None,
        3 => {
            let c = parse_i64(&args[2]).ok_or_else(|| Reply::error("ERR value is out of range, must be positive"))?;
            if c < 0 {
                return Err(Reply::error("ERR value is out of range, must be positive"));
            }
            Some(c as usize)
        }
        _ => return Err(syntax_error()),
    };
    let Some(s) = ctx.read_set(&args[1])? else {
        return Ok(if count.is_some() { Reply::Set(vec![]) } else { Reply::NullBulk });
    };
    let picked = sample(s, count.unwrap_or(1));
    if picked.is_empty() {
        return Ok(if count.is_some() { Reply::Set(vec![]) } else { Reply::NullBulk });
    }
    let set = ctx.write_set(&args[1], &args[1], 0)?;
    for m in &picked {
        set.remove(m);
    }
    let mut effect = vec![Bytes::from_static(b"SREM"), args[1].clone()];
    effect.extend(picked.iter().cloned());
    ctx.set_written(&args[1], effect);
    Ok(match count {
        None => Reply::Bulk(picked[0].clone()),
        Some(_) => Reply::Set(members(picked)),
    })
}

pub(super) fn srandmember(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let count = match args.len() {
        2 => None,
        3 => Some(super::args::random_count_arg(&args[2], false)?),
        _ => return Err(syntax_error()),
    };
    let Some(s) = ctx.read_set(&args[1])? else {
        return Ok(if count.is_some() { Reply::Array(vec![]) } else { Reply::NullBulk });
    };
    Ok(match count {
        None => sample(s, 1).pop().map_or(Reply::NullBulk, Reply::Bulk),
        Some(c) if c >= 0 => Reply::Array(members(sample(s, c as usize))),
        Some(c) => {
            // Negative: that many picks, repeats allowed.
            let all: Vec<Bytes> = s.iter().collect();
            let n = (c.unsigned_abs() as usize).min(super::args::MAX_RANDOM_PICKS);
            Reply::Array((0..n).map(|_| Reply::Bulk(all[rand::random_range(0..all.len())].clone())).collect())
        }
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Inter,
    Union,
    Diff,
}

/// Reads the sets under `keys` (None for a missing key), checking every type.
fn load_sets(ctx: &mut Ctx<'_>, keys: &[Bytes]) -> Result<Vec<Option<Set>>, Reply> {
    keys.iter().map(|k| Ok(ctx.read_set(k)?.cloned())).collect()
}

/// The result as Redis builds it: a new set (an intset at first) that members are added to
/// in the order Redis visits them, so its encoding and order are Redis's.
fn compute(op: Op, sets: Vec<Option<Set>>) -> Set {
    let mut out = Set::default();
    match op {
        Op::Union => {
            for s in sets.iter().flatten() {
                s.iter().for_each(|m| {
                    out.insert(m);
                });
            }
        }
        Op::Diff => {
            let mut iter = sets.iter();
            let Some(Some(first)) = iter.next() else { return out };
            let rest: Vec<&Set> = iter.flatten().collect();
            first.iter().filter(|m| !rest.iter().any(|s| s.contains(m))).for_each(|m| {
                out.insert(m);
            });
        }
        Op::Inter => {
            if sets.iter().any(Option::is_none) {
                return out;
            }
            // Redis walks the smallest set (the first of equal sizes) and probes the others.
            let mut sets: Vec<&Set> = sets.iter().flatten().collect();
            sets.sort_by_key(|s| s.len());
            let Some((smallest, rest)) = sets.split_first() else { return out };
            smallest.iter().filter(|m| rest.iter().all(|s| s.contains(m))).for_each(|m| {
                out.insert(m);
            });
        }
    }
    out
}

/// SINTER, SUNION, SDIFF and their STORE forms.
pub(super) fn combine(ctx: &mut Ctx<'_>, args: &[Bytes], op: Op, store: bool) -> CmdResult {
    let keys = if store { &args[2..] } else { &args[1..] };
    let sets = load_sets(ctx, keys)?;
    let result = compute(op, sets);
    if !store {
        return Ok(Reply::Set(members(result.iter())));
    }
    let dest = &args[1];
    let n = result.len() as i64;
    // The destination is replaced whatever it held.
    let value = (!result.is_empty()).then(|| Value::Set(Box::new(result)));
    ctx.store(dest, value, args.to_vec());
    Ok(Reply::Integer(n))
}

pub(super) fn sintercard(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (keys, limit) = intercard_args(args)?;
    let sets = load_sets(ctx, keys)?;
    let n = compute(Op::Inter, sets).len();
    Ok(Reply::Integer(if limit > 0 { n.min(limit) } else { n } as i64))
}

/// SSCAN returns the whole set in one call (cursor 0), as Redis does for small sets.
pub(super) fn sscan(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (pattern, _) = super::args::collection_scan_args(args, false)?;
    let items = ctx
        .read_set(&args[1])?
        .map(|s| s.iter().filter(|m| pattern.as_ref().is_none_or(|p| glob_match(p, m))).map(Reply::Bulk).collect())
        .unwrap_or_default();
    Ok(Reply::Array(vec![Reply::Bulk(Bytes::from_static(b"0")), Reply::Array(items)]))
}
