//! Hash commands: HSET and friends. A hash lives whole under its key; an emptied hash
//! disappears, as in Redis.

use bytes::Bytes;
use ferrocache_common::glob::glob_match;
use ferrocache_common::reply::errors;
use ferrocache_common::Reply;

use super::args::{eq_ignore_case, int_arg, int_bytes, parse_f64, parse_i64, syntax_error};
use super::{CmdResult, Ctx};
use crate::value::{hash_remove, Hash, Value};

impl Ctx<'_> {
    fn read_hash(&mut self, key: &[u8]) -> Result<Option<&Hash>, Reply> {
        self.read_as(key, Value::as_hash)
    }

    fn write_hash(&mut self, key: &[u8]) -> Result<&mut Hash, Reply> {
        self.write_as(key, || Value::Hash(Box::default()), Value::as_hash_mut)
    }

    fn hash_written(&mut self, key: &Bytes, effect: Vec<Bytes>) {
        self.collection_written(key, effect)
    }
}

fn field_pairs_ok(args: &[Bytes]) -> bool {
    args.len() >= 4 && (args.len() - 2).is_multiple_of(2)
}

/// HSET (count of new fields) and HMSET (OK).
pub(super) fn hset(ctx: &mut Ctx<'_>, args: &[Bytes], hmset: bool) -> CmdResult {
    if !field_pairs_ok(args) {
        return Err(Reply::error(errors::wrong_arity(if hmset { "hmset" } else { "hset" })));
    }
    let h = ctx.write_hash(&args[1])?;
    let mut added = 0;
    for pair in args[2..].chunks(2) {
        if h.insert(Bytes::copy_from_slice(&pair[0]), Bytes::copy_from_slice(&pair[1])).is_none() {
            added += 1;
        }
    }
    ctx.hash_written(&args[1], args.to_vec());
    Ok(if hmset { Reply::ok() } else { Reply::Integer(added) })
}

pub(super) fn hsetnx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    if ctx.read_hash(&args[1])?.is_some_and(|h| h.contains_key(&args[2])) {
        return Ok(Reply::Integer(0));
    }
    ctx.write_hash(&args[1])?.insert(Bytes::copy_from_slice(&args[2]), Bytes::copy_from_slice(&args[3]));
    ctx.hash_written(&args[1], args.to_vec());
    Ok(Reply::Integer(1))
}

pub(super) fn hget(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    Ok(ctx.read_hash(&args[1])?.and_then(|h| h.get(&args[2])).map_or(Reply::NullBulk, |v| Reply::Bulk(v.clone())))
}

pub(super) fn hmget(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let h = ctx.read_hash(&args[1])?;
    Ok(Reply::Array(
        args[2..]
            .iter()
            .map(|f| h.and_then(|h| h.get(f)).map_or(Reply::NullBulk, |v| Reply::Bulk(v.clone())))
            .collect(),
    ))
}

pub(super) fn hdel(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    if ctx.read_hash(&args[1])?.is_none() {
        return Ok(Reply::Integer(0));
    }
    let h = ctx.write_hash(&args[1])?;
    let removed = args[2..].iter().filter(|f| hash_remove(h, f).is_some()).count();
    if removed > 0 {
        ctx.hash_written(&args[1], args.to_vec());
    }
    Ok(Reply::Integer(removed as i64))
}

pub(super) fn hexists(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    Ok(Reply::Integer(ctx.read_hash(&args[1])?.is_some_and(|h| h.contains_key(&args[2])) as i64))
}

pub(super) fn hlen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    Ok(Reply::Integer(ctx.read_hash(&args[1])?.map_or(0, |h| h.len() as i64)))
}

pub(super) fn hstrlen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    Ok(Reply::Integer(ctx.read_hash(&args[1])?.and_then(|h| h.get(&args[2])).map_or(0, |v| v.len() as i64)))
}

/// HKEYS, HVALS and HGETALL.
pub(super) fn hgetall(ctx: &mut Ctx<'_>, args: &[Bytes], keys: bool, values: bool) -> CmdResult {
    let Some(h) = ctx.read_hash(&args[1])? else {
        return Ok(if keys && values { Reply::Map(vec![]) } else { Reply::Array(vec![]) });
    };
    let mut out = Vec::with_capacity(h.len() * 2);
    for (k, v) in h {
        if keys {
            out.push(Reply::Bulk(k.clone()));
        }
        if values {
            out.push(Reply::Bulk(v.clone()));
        }
    }
    Ok(if keys && values { Reply::Map(out) } else { Reply::Array(out) })
}

pub(super) fn hincrby(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let by = int_arg(&args[3])?;
    let current = match ctx.read_hash(&args[1])?.and_then(|h| h.get(&args[2])) {
        Some(v) => parse_i64(v).ok_or_else(|| Reply::error("ERR hash value is not an integer"))?,
        None => 0,
    };
    let next = current.checked_add(by).ok_or_else(|| Reply::error(errors::OVERFLOW))?;
    ctx.write_hash(&args[1])?.insert(Bytes::copy_from_slice(&args[2]), int_bytes(next));
    ctx.hash_written(&args[1], args.to_vec());
    Ok(Reply::Integer(next))
}

pub(super) fn hincrbyfloat(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    // The increment is checked before the key's type, as Redis does (a long double: 1e4000
    // is a number, an explicit inf is refused).
    let by = &args[3];
    if !super::strings::is_long_double(by) {
        return Err(Reply::error(errors::NOT_FLOAT));
    }
    if parse_f64(by).is_some_and(f64::is_infinite) {
        return Err(Reply::error("ERR value is NaN or Infinity"));
    }
    let current = ctx.read_hash(&args[1])?.and_then(|h| h.get(&args[2])).cloned();
    let text =
        super::strings::incremented(current.as_deref().unwrap_or(b"0"), &args[3], "ERR hash value is not a float")?;
    ctx.write_hash(&args[1])?.insert(Bytes::copy_from_slice(&args[2]), text.clone());
    // Replicated as HSET so float formatting can never differ on a replica.
    ctx.hash_written(&args[1], vec![Bytes::from_static(b"HSET"), args[1].clone(), args[2].clone(), text.clone()]);
    Ok(Reply::Bulk(text))
}

pub(super) fn hrandfield(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let with_values = match args.get(3) {
        Some(a) if eq_ignore_case(a, "WITHVALUES") && args.len() == 4 => true,
        Some(_) => return Err(syntax_error()),
        None => false,
    };
    let count = match args.get(2) {
        Some(c) => Some(super::args::random_count_arg(c, with_values)?),
        None => None,
    };
    let h = ctx.read_hash(&args[1])?;
    let fields: Vec<(&Bytes, &Bytes)> = h.map(|h| h.iter().collect()).unwrap_or_default();
    let Some(count) = count else {
        if fields.is_empty() {
            return Ok(Reply::NullBulk);
        }
        let (k, _) = fields[rand::random_range(0..fields.len())];
        return Ok(Reply::Bulk(k.clone()));
    };
    if fields.is_empty() || count == 0 {
        return Ok(Reply::Array(vec![]));
    }
    let picks: Vec<usize> = if count > 0 {
        // Distinct fields in the hash's order, as Redis picks from a listpack: all of them
        // when asked for as many, else a uniform sample (a partial shuffle of the indexes).
        let n = fields.len();
        let mut all: Vec<usize> = (0..n).collect();
        let take = n.min(count as usize);
        for i in 0..take {
            let j = rand::random_range(i..n);
            all.swap(i, j);
        }
        all.truncate(take);
        all.sort_unstable();
        all
    } else {
        let n = count.unsigned_abs().min(super::args::MAX_RANDOM_PICKS as u64) as usize;
        (0..n).map(|_| rand::random_range(0..fields.len())).collect()
    };
    let mut out = Vec::with_capacity(picks.len() * if with_values { 2 } else { 1 });
    for i in picks {
        let (k, v) = fields[i];
        out.push(Reply::Bulk(k.clone()));
        if with_values {
            out.push(Reply::Bulk(v.clone()));
        }
    }
    Ok(if with_values { Reply::Pairs(out) } else { Reply::Array(out) })
}

/// HSCAN returns the whole hash in one call (cursor 0), as Redis does for small hashes.
pub(super) fn hscan(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (pattern, novalues) = super::args::collection_scan_args(args, true)?;
    let mut items = Vec::new();
    if let Some(h) = ctx.read_hash(&args[1])? {
        for (k, v) in h {
            if pattern.as_ref().is_none_or(|p| glob_match(p, k)) {
                items.push(Reply::Bulk(k.clone()));
                if !novalues {
                    items.push(Reply::Bulk(v.clone()));
                }
            }
        }
    }
    Ok(Reply::Array(vec![Reply::Bulk(Bytes::from_static(b"0")), Reply::Array(items)]))
}
