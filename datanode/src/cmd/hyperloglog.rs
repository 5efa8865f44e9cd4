//! PFADD PFCOUNT PFMERGE over HyperLogLog strings ([`crate::hll`]). Writes replicate as sent:
//! hashing is deterministic, so replicas reach the same registers.

use bytes::Bytes;
use ferrocache_common::Reply;

use super::strings::write_keeping_ttl;
use super::{CmdResult, Ctx};
use crate::hll::Hll;

const NOT_HLL: &str = "WRONGTYPE Key is not a valid HyperLogLog string value.";

/// The HyperLogLog under `key`: Ok(None) when absent; WRONGTYPE for other types and for
/// strings that are not HyperLogLogs.
fn read_hll(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<Option<Hll>, Reply> {
    match ctx.get_string(key)? {
        None => Ok(None),
        Some(data) => Hll::decode(&data).map(Some).map_err(|_| Reply::error(NOT_HLL)),
    }
}

pub(super) fn pfadd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let existing = read_hll(ctx, &args[1])?;
    let created = existing.is_none();
    let mut hll = existing.unwrap_or_default();
    let mut changed = created;
    for element in &args[2..] {
        changed |= hll.add(element);
    }
    if changed {
        write_keeping_ttl(ctx, &args[1], Bytes::from(hll.encode()), Some(args));
    }
    Ok(Reply::Integer(changed as i64))
}

pub(super) fn pfcount(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let mut union: Option<Hll> = None;
    for key in &args[1..] {
        if let Some(h) = read_hll(ctx, key)? {
            match union.as_mut() {
                Some(u) => u.merge(&h),
                None => union = Some(h),
            }
        }
    }
    Ok(Reply::Integer(union.map_or(0, |h| h.count()) as i64))
}

/// PFDEBUG GETREG|DECODE|ENCODING|TODENSE key (GETREG and TODENSE make a sparse value dense,
/// as in Redis).
pub(super) fn pfdebug(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let Some(data) = ctx.get_string(&args[2])? else {
        return Err(Reply::error("ERR The specified key does not exist"));
    };
    let Some(sparse) = crate::hll::is_sparse(&data) else { return Err(Reply::error(NOT_HLL)) };
    let hll = Hll::decode(&data).map_err(|_| Reply::error(NOT_HLL))?;
    let sub = args[1].to_ascii_lowercase();
    let densify = matches!(sub.as_slice(), b"getreg" | b"todense") && sparse;
    if densify {
        write_keeping_ttl(ctx, &args[2], Bytes::from(hll.encode()), Some(args));
    }
    match sub.as_slice() {
        b"getreg" => Ok(Reply::Array(hll.registers().iter().map(|&r| Reply::Integer(r as i64)).collect())),
        b"decode" => crate::hll::describe_sparse(&data)
            .map(Reply::Simple)
            .ok_or_else(|| Reply::error("ERR HLL encoding is not sparse")),
        b"encoding" => Ok(Reply::Simple(if sparse { "sparse" } else { "dense" }.into())),
        b"todense" => Ok(Reply::Integer(densify as i64)),
        _ => Err(Reply::error(format!("ERR Unknown PFDEBUG subcommand '{}'", String::from_utf8_lossy(&args[1])))),
    }
}

/// PFSELFTEST.
pub(super) fn pfselftest(_: &mut Ctx<'_>, _: &[Bytes]) -> CmdResult {
    crate::hll::self_test().map(|()| Reply::ok()).map_err(Reply::error)
}

pub(super) fn pfmerge(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let mut union = read_hll(ctx, &args[1])?.unwrap_or_default();
    for key in &args[2..] {
        if let Some(h) = read_hll(ctx, key)? {
            union.merge(&h);
        }
    }
    write_keeping_ttl(ctx, &args[1], Bytes::from(union.encode()), Some(args));
    Ok(Reply::ok())
}
