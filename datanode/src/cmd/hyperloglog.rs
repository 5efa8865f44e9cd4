//! PFADD PFCOUNT PFMERGE PFDEBUG PFSELFTEST over HyperLogLog strings ([`crate::hll`]), kept
//! byte for byte as Redis keeps them: sparse while small, dense past hll-sparse-max-bytes.
//!
//! Writes replicate as sent (hashing is deterministic, so replicas reach the same bytes),
//! except a write that turns a sparse value dense: when that happens depends on the
//! primary's hll-sparse-max-bytes, so the resulting value replicates instead. A replica
//! applies writes with no sparse limit of its own for the same reason.

use bytes::Bytes;
use ferrocache_common::Reply;

use super::strings::write_in_place;
use super::{CmdResult, Ctx};
use crate::hll::{self, Encoding, Hll, HllError};

fn hll_error(e: HllError) -> Reply {
    Reply::error(e.to_string())
}

/// The HyperLogLog string under `key`, its header checked: Ok(None) when absent; WRONGTYPE
/// for other types and for strings that are not HyperLogLogs.
fn read(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<Option<Bytes>, Reply> {
    let data = ctx.get_string(key)?;
    if let Some(data) = &data {
        hll::encoding(data).map_err(hll_error)?;
    }
    Ok(data)
}

/// Stores a changed HyperLogLog, keeping the key's TTL; `was_sparse`: it was sparse (or new)
/// before this write.
fn store(ctx: &mut Ctx<'_>, key: &Bytes, data: Vec<u8>, args: &[Bytes], was_sparse: bool) {
    let turned_dense = was_sparse && hll::encoding(&data) == Ok(Encoding::Dense);
    write_in_place(ctx, key, Bytes::from(data), (!turned_dense).then_some(args));
}

pub(super) fn pfadd(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let existing = read(ctx, key)?;
    let created = existing.is_none();
    let mut data = existing.map_or_else(hll::new_sparse, |d| d.to_vec());
    let was_sparse = hll::encoding(&data) == Ok(Encoding::Sparse);
    let mut changed = created;
    for element in &args[2..] {
        changed |= hll::add(&mut data, element, ctx.hll_sparse_max).map_err(hll_error)?;
    }
    if changed {
        hll::invalidate_cache(&mut data);
        store(ctx, key, data, args, was_sparse);
    }
    Ok(Reply::Integer(changed as i64))
}

pub(super) fn pfcount(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    if let [_, key] = args {
        let Some(data) = read(ctx, key)? else { return Ok(Reply::Integer(0)) };
        if let Some(count) = hll::cached_count(&data) {
            return Ok(Reply::Integer(count as i64));
        }
        let count = Hll::decode(&data).map_err(hll_error)?.count();
        if ctx.primary {
            // Redis keeps the estimate in the header until the next change (GETRANGE shows
            // it); replicas get the same eight bytes.
            let cache = hll::cache_bytes(count);
            let mut data = data.to_vec();
            data[8..16].copy_from_slice(&cache);
            let effect = [
                Bytes::from_static(b"SETRANGE"),
                key.clone(),
                Bytes::from_static(b"8"),
                Bytes::copy_from_slice(&cache),
            ];
            write_in_place(ctx, key, Bytes::from(data), Some(&effect));
        }
        return Ok(Reply::Integer(count as i64));
    }
    let mut union: Option<Hll> = None;
    for key in &args[1..] {
        if let Some(data) = read(ctx, key)? {
            let h = Hll::decode(&data).map_err(hll_error)?;
            match union.as_mut() {
                Some(u) => u.merge(&h),
                None => union = Some(h),
            }
        }
    }
    Ok(Reply::Integer(union.map_or(0, |h| h.count()) as i64))
}

/// PFMERGE dest [src ...]: the registers' maxima into `dest` (itself one of the inputs). As
/// in Redis, `dest` turns dense when any input is dense, else takes the maxima one register
/// at a time in its sparse form.
pub(super) fn pfmerge(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let mut union = Hll::default();
    let mut any_dense = false;
    let mut dest = None;
    for (i, key) in args[1..].iter().enumerate() {
        let Some(data) = read(ctx, key)? else { continue };
        any_dense |= hll::encoding(&data) == Ok(Encoding::Dense);
        union.merge(&Hll::decode(&data).map_err(hll_error)?);
        if i == 0 {
            dest = Some(data);
        }
    }
    let mut data = dest.map_or_else(hll::new_sparse, |d| d.to_vec());
    let was_sparse = hll::encoding(&data) == Ok(Encoding::Sparse);
    if any_dense {
        hll::make_dense(&mut data).map_err(hll_error)?;
    }
    for (i, &r) in union.registers().iter().enumerate().filter(|(_, &r)| r != 0) {
        hll::set(&mut data, i, r, ctx.hll_sparse_max).map_err(hll_error)?;
    }
    hll::invalidate_cache(&mut data);
    store(ctx, &args[1], data, args, was_sparse);
    Ok(Reply::ok())
}

/// PFDEBUG GETREG|DECODE|ENCODING|TODENSE key (GETREG and TODENSE make a sparse value dense,
/// as in Redis).
pub(super) fn pfdebug(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let Some(data) = ctx.get_string(&args[2])? else {
        return Err(Reply::error("ERR The specified key does not exist"));
    };
    let encoding = hll::encoding(&data).map_err(hll_error)?;
    let sub = args[1].to_ascii_lowercase();
    match sub.as_slice() {
        b"getreg" | b"todense" => {
            let mut dense = data.to_vec();
            let converted = hll::make_dense(&mut dense).map_err(hll_error)?;
            let registers = (sub == b"getreg").then(|| Hll::decode(&dense)).transpose().map_err(hll_error)?;
            if converted {
                write_in_place(ctx, &args[2], Bytes::from(dense), Some(args));
            }
            Ok(match registers {
                Some(h) => Reply::Array(h.registers().iter().map(|&r| Reply::Integer(r as i64)).collect()),
                None => Reply::Integer(converted as i64),
            })
        }
        b"decode" => {
            hll::describe_sparse(&data).map(Reply::Simple).ok_or_else(|| Reply::error("ERR HLL encoding is not sparse"))
        }
        b"encoding" => Ok(Reply::Simple(if encoding == Encoding::Sparse { "sparse" } else { "dense" }.into())),
        _ => Err(Reply::error(format!("ERR Unknown PFDEBUG subcommand '{}'", String::from_utf8_lossy(&args[1])))),
    }
}

/// PFSELFTEST.
pub(super) fn pfselftest(_: &mut Ctx<'_>, _: &[Bytes]) -> CmdResult {
    hll::self_test().map(|()| Reply::ok()).map_err(Reply::error)
}
