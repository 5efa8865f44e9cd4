//! String commands: GET, SET and its family, counters, ranges.

use bytes::{Bytes, BytesMut};
use ferrocache_common::reply::errors;
use ferrocache_common::Reply;

use super::args::{bulk, eq_ignore_case, float_bytes, int_arg, int_bytes, parse_f64, parse_i64, syntax_error};
use super::{CmdResult, Ctx};
use crate::keyspace::Entry;
use crate::strval::Str;
use crate::value::Value;

const SET: Bytes = Bytes::from_static(b"SET");
const DEL: Bytes = Bytes::from_static(b"DEL");
const PXAT: Bytes = Bytes::from_static(b"PXAT");
const KEEPTTL: Bytes = Bytes::from_static(b"KEEPTTL");

/// An expiry option (EX, PX, EXAT, PXAT) turned into absolute Unix ms, with Redis's checks:
/// the number must be a positive integer and the result must not overflow.
pub(super) fn absolute_expiry(ctx: &Ctx<'_>, option: &[u8], value: &[u8], cmd: &str) -> Result<i64, Reply> {
    let n = int_arg(value)?;
    let invalid = || Reply::error(errors::invalid_expire(cmd));
    if n <= 0 {
        return Err(invalid());
    }
    let (unit, relative) = match option.to_ascii_uppercase().as_slice() {
        b"EX" => (1000, true),
        b"PX" => (1, true),
        b"EXAT" => (1000, false),
        _ => (1, false),
    };
    let ms = n.checked_mul(unit).ok_or_else(invalid)?;
    if relative {
        ms.checked_add(ctx.now).ok_or_else(invalid)
    } else {
        Ok(ms)
    }
}

fn is_expiry_option(arg: &[u8]) -> bool {
    ["EX", "PX", "EXAT", "PXAT"].iter().any(|o| eq_ignore_case(arg, o))
}

/// Stores a string, keeping the old expiry when `keep_ttl`, and records the effect.
fn store(ctx: &mut Ctx<'_>, key: &Bytes, value: Bytes, expires_at: i64, keep_ttl: bool) {
    let expires_at = if keep_ttl { ctx.lookup(key).map_or(0, |e| e.expires_at) } else { expires_at };
    // The keyspace keeps its own exact copy; the effect may use the request's bytes (it is
    // encoded into the log record at commit and dropped).
    ctx.ks.insert(key, Entry::with_expiry(Value::Str(Str::copy_from(&value)), expires_at));
    let mut effect = vec![SET, key.clone(), value];
    if expires_at != 0 {
        effect.extend([PXAT, int_bytes(expires_at)]);
    }
    ctx.propagate(effect, &[key]);
}

pub(super) fn get(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    Ok(ctx.get_string(&args[1])?.map_or(Reply::NullBulk, Reply::Bulk))
}

pub(super) fn set(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (key, value) = (&args[1], &args[2]);
    let (mut nx, mut xx, mut get, mut keep_ttl) = (false, false, false, false);
    let mut expiry: Option<(&Bytes, &Bytes)> = None;
    let mut i = 3;
    while i < args.len() {
        let a = &args[i];
        if eq_ignore_case(a, "NX") && !xx {
            nx = true;
        } else if eq_ignore_case(a, "XX") && !nx {
            xx = true;
        } else if eq_ignore_case(a, "GET") {
            get = true;
        } else if eq_ignore_case(a, "KEEPTTL") && expiry.is_none() {
            keep_ttl = true;
        } else if is_expiry_option(a) && expiry.is_none() && !keep_ttl && i + 1 < args.len() {
            expiry = Some((a, &args[i + 1]));
            i += 1;
        } else {
            return Err(syntax_error());
        }
        i += 1;
    }
    let expires_at = match expiry {
        Some((opt, n)) => absolute_expiry(ctx, opt, n, "set")?,
        None => 0,
    };
    let old = if get { ctx.get_string(key)? } else { None };
    let exists = ctx.exists(key);
    let answer = |done: bool, old: Option<Bytes>| match (get, done) {
        (true, _) => old.map_or(Reply::NullBulk, Reply::Bulk),
        (false, true) => Reply::ok(),
        (false, false) => Reply::NullBulk,
    };
    if (nx && exists) || (xx && !exists) {
        return Ok(answer(false, old));
    }
    if expires_at != 0 && expires_at <= ctx.now {
        // An absolute time already past: the key is set and expires at once, so it ends up
        // deleted; it counts as changed (WATCH) and announces set, expire, expired, as in
        // Redis.
        ctx.delete(key);
        ctx.propagate(vec![DEL, key.clone()], &[key]);
        return Ok(answer(true, old));
    }
    store(ctx, key, value.clone(), expires_at, keep_ttl);
    Ok(answer(true, old))
}

pub(super) fn setnx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    if ctx.exists(&args[1]) {
        return Ok(Reply::Integer(0));
    }
    store(ctx, &args[1], args[2].clone(), 0, false);
    Ok(Reply::Integer(1))
}

/// SETEX (unit 1000) and PSETEX (unit 1): key, time, value.
pub(super) fn setex(ctx: &mut Ctx<'_>, args: &[Bytes], unit: i64) -> CmdResult {
    let (option, cmd) = if unit == 1000 { ("EX", "setex") } else { ("PX", "psetex") };
    let at = absolute_expiry(ctx, option.as_bytes(), &args[2], cmd)?;
    store(ctx, &args[1], args[3].clone(), at, false);
    Ok(Reply::ok())
}

pub(super) fn getset(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let old = ctx.get_string(&args[1])?;
    store(ctx, &args[1], args[2].clone(), 0, false);
    Ok(old.map_or(Reply::NullBulk, Reply::Bulk))
}

pub(super) fn getdel(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let old = ctx.get_string(&args[1])?;
    if old.is_some() {
        ctx.ks.remove(&args[1]);
        ctx.propagate(vec![DEL, args[1].clone()], &[&args[1]]);
    }
    Ok(old.map_or(Reply::NullBulk, Reply::Bulk))
}

pub(super) fn getex(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let mut expiry: Option<(&Bytes, &Bytes)> = None;
    let mut persist = false;
    let mut i = 2;
    while i < args.len() {
        let a = &args[i];
        if eq_ignore_case(a, "PERSIST") && expiry.is_none() && !persist {
            persist = true;
        } else if is_expiry_option(a) && expiry.is_none() && !persist && i + 1 < args.len() {
            expiry = Some((a, &args[i + 1]));
            i += 1;
        } else {
            return Err(syntax_error());
        }
        i += 1;
    }
    // As Redis: the key first (missing: nil; another type: WRONGTYPE), then the time.
    let Some(value) = ctx.get_string(key)? else {
        return Ok(Reply::NullBulk);
    };
    let at = match expiry {
        Some((opt, n)) => Some(absolute_expiry(ctx, opt, n, "getex")?),
        None => None,
    };
    match at {
        Some(at) if at <= ctx.now => {
            ctx.ks.remove(key);
            ctx.propagate(vec![DEL, key.clone()], &[key]);
        }
        Some(at) => {
            ctx.ks.set_expiry(key, at);
            ctx.propagate(vec![Bytes::from_static(b"PEXPIREAT"), key.clone(), int_bytes(at)], &[key]);
        }
        None if persist && ctx.lookup(key).is_some_and(|e| e.expires_at != 0) => {
            ctx.ks.set_expiry(key, 0);
            ctx.propagate(vec![Bytes::from_static(b"PERSIST"), key.clone()], &[key]);
        }
        None => {}
    }
    Ok(Reply::Bulk(value))
}

pub(super) fn mget(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let mut out = Vec::with_capacity(args.len() - 1);
    for key in &args[1..] {
        // MGET answers nil for keys of other types rather than failing.
        out.push(ctx.get_string(key).ok().flatten().map_or(Reply::NullBulk, Reply::Bulk));
    }
    Ok(Reply::Array(out))
}

pub(super) fn mset(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    if args.len().is_multiple_of(2) {
        return Err(Reply::error(errors::wrong_arity("mset")));
    }
    for pair in args[1..].chunks(2) {
        store(ctx, &pair[0], pair[1].clone(), 0, false);
    }
    Ok(Reply::ok())
}

pub(super) fn msetnx(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    if args.len().is_multiple_of(2) {
        return Err(Reply::error(errors::wrong_arity("msetnx")));
    }
    if args[1..].chunks(2).any(|pair| ctx.exists(&pair[0])) {
        return Ok(Reply::Integer(0));
    }
    for pair in args[1..].chunks(2) {
        store(ctx, &pair[0], pair[1].clone(), 0, false);
    }
    Ok(Reply::Integer(1))
}

pub(super) fn append(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let old = ctx.get_string(key)?;
    let old_len = old.as_ref().map_or(0, |b| b.len());
    if old_len + args[2].len() > ctx.max_string {
        return Err(Reply::error(errors::MAX_STRING));
    }
    let mut joined = BytesMut::with_capacity(old_len + args[2].len());
    if let Some(old) = &old {
        joined.extend_from_slice(old);
    }
    joined.extend_from_slice(&args[2]);
    let len = joined.len();
    write_in_place(ctx, key, joined.freeze(), Some(args));
    Ok(Reply::Integer(len as i64))
}

/// Replaces a string's bytes without touching its expiry. The effect is the command itself
/// when it is deterministic (`original`), else `SET key value KEEPTTL`.
pub(super) fn write_keeping_ttl(ctx: &mut Ctx<'_>, key: &Bytes, value: Bytes, original: Option<&[Bytes]>) {
    store_keeping_ttl(ctx, key, Str::from_bytes(value.clone()), value, original);
}

/// [`write_keeping_ttl`] for a value changed in place (APPEND, SETRANGE, bit and
/// HyperLogLog writes): Redis reports it `raw` ([`Str::raw`]).
pub(super) fn write_in_place(ctx: &mut Ctx<'_>, key: &Bytes, value: Bytes, original: Option<&[Bytes]>) {
    store_keeping_ttl(ctx, key, Str::raw(value.clone()), value, original);
}

fn store_keeping_ttl(ctx: &mut Ctx<'_>, key: &Bytes, stored: Str, value: Bytes, original: Option<&[Bytes]>) {
    let expires_at = ctx.lookup(key).map_or(0, |e| e.expires_at);
    ctx.ks.insert(key, Entry::with_expiry(Value::Str(stored), expires_at));
    let effect = match original {
        Some(args) => args.to_vec(),
        None => vec![SET, key.clone(), value, KEEPTTL],
    };
    ctx.propagate(effect, &[key]);
}

pub(super) fn strlen(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    Ok(Reply::Integer(ctx.get_string(&args[1])?.map_or(0, |b| b.len() as i64)))
}

/// INCRBY / DECRBY: the increment is an argument.
pub(super) fn incr_by_arg(ctx: &mut Ctx<'_>, args: &[Bytes], negate: bool) -> CmdResult {
    let by = int_arg(&args[2])?;
    let by = if negate { by.checked_neg().ok_or_else(|| Reply::error("ERR decrement would overflow"))? } else { by };
    incr_by(ctx, args, by)
}

pub(super) fn incr_by(ctx: &mut Ctx<'_>, args: &[Bytes], by: i64) -> CmdResult {
    let key = &args[1];
    let current = match ctx.get_string(key)? {
        Some(b) => parse_i64(&b).ok_or_else(|| Reply::error(errors::NOT_INTEGER))?,
        None => 0,
    };
    let next = current.checked_add(by).ok_or_else(|| Reply::error(errors::OVERFLOW))?;
    write_keeping_ttl(ctx, key, int_bytes(next), None);
    Ok(Reply::Integer(next))
}

/// Whether `text` is a float as Redis's `string2ld` reads it: a decimal within long double's
/// range (wider than f64's: `1e4000` is one), or `inf` / hexadecimal, shorter than 5 KiB.
pub(super) fn is_long_double(text: &[u8]) -> bool {
    use crate::long_double::{is_decimal, MAX_CHARS};
    text.len() < MAX_CHARS && (is_decimal(text) || parse_f64(text).is_some())
}

/// `current + by` as INCRBYFLOAT and HINCRBYFLOAT answer it: in long double arithmetic,
/// as Redis computes (f64 when a text is `inf` or hexadecimal); `bad_current` is the error
/// for a current value that is not a float.
pub(super) fn incremented(current: &[u8], by: &[u8], bad_current: &str) -> Result<Bytes, Reply> {
    use crate::long_double::{add, Sum};
    if !is_long_double(current) {
        return Err(Reply::error(bad_current));
    }
    if !is_long_double(by) {
        return Err(Reply::error(errors::NOT_FLOAT));
    }
    let overflow = || Reply::error("ERR increment would produce NaN or Infinity");
    match add(current, by) {
        Sum::Text(text) => Ok(Bytes::from(text)),
        Sum::Overflow => Err(overflow()),
        Sum::NotDecimal => {
            // `inf` or hexadecimal (both in f64's range: a decimal outside it was Text).
            let next = parse_f64(current).unwrap_or(f64::NAN) + parse_f64(by).unwrap_or(f64::NAN);
            if next.is_finite() {
                Ok(float_bytes(next))
            } else {
                Err(overflow())
            }
        }
    }
}

pub(super) fn incrbyfloat(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    // Redis's order: the key's type, its value, then the increment.
    let stored = ctx.get_string(key)?;
    let current = stored.as_deref().unwrap_or(b"0");
    let text = incremented(current, &args[2], errors::NOT_FLOAT)?;
    // Propagated as SET ... KEEPTTL so float rounding can never differ on a replica.
    write_keeping_ttl(ctx, key, text.clone(), None);
    Ok(Reply::Bulk(text))
}

pub(super) fn getrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let (mut start, mut end) = (int_arg(&args[2])?, int_arg(&args[3])?);
    let value = ctx.get_string(&args[1])?.unwrap_or_default();
    let len = value.len() as i64;
    if start < 0 && end < 0 && start > end {
        return Ok(Reply::Bulk(Bytes::new()));
    }
    if start < 0 {
        start += len;
    }
    if end < 0 {
        end += len;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= len {
        end = len - 1;
    }
    if start > end || len == 0 {
        return Ok(Reply::Bulk(Bytes::new()));
    }
    Ok(bulk(&value.slice(start as usize..=end as usize)))
}

pub(super) fn setrange(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let offset = int_arg(&args[2])?;
    if offset < 0 {
        return Err(Reply::error("ERR offset is out of range"));
    }
    let patch = &args[3];
    let old = ctx.get_string(key)?;
    if patch.is_empty() {
        return Ok(Reply::Integer(old.map_or(0, |b| b.len() as i64)));
    }
    let offset = offset as usize;
    if offset.saturating_add(patch.len()) > ctx.max_string {
        return Err(Reply::error(errors::MAX_STRING));
    }
    let old = old.unwrap_or_default();
    let mut value = BytesMut::from(&old[..]);
    if value.len() < offset + patch.len() {
        value.resize(offset + patch.len(), 0);
    }
    value[offset..offset + patch.len()].copy_from_slice(patch);
    let len = value.len();
    write_in_place(ctx, key, value.freeze(), Some(args));
    Ok(Reply::Integer(len as i64))
}
