//! Database-wide server commands that run on a node: FLUSHALL, FLUSHDB, SWAPDB.

use bytes::Bytes;
use ferrocache_common::reply::errors;
use ferrocache_common::Reply;

use super::args::{eq_ignore_case, parse_i64, syntax_error};
use super::{CmdResult, Ctx};

/// FLUSHALL (`all`) or FLUSHDB [ASYNC|SYNC]. ASYNC hands the emptied databases to the
/// lazyfree thread (the node answers at once, its memory goes down a little later); SYNC,
/// and no option (Redis's `lazyfree-lazy-user-flush no`), free them before the reply.
pub(super) fn flush(ctx: &mut Ctx<'_>, args: &[Bytes], all: bool) -> CmdResult {
    let lazy = match &args[1..] {
        [] => false,
        [mode] if eq_ignore_case(mode, "ASYNC") => true,
        [mode] if eq_ignore_case(mode, "SYNC") => false,
        _ => return Err(syntax_error()),
    };
    let empty = |ks: &mut crate::keyspace::Keyspace| {
        if lazy && !ks.is_empty() {
            let keys = ks.len() as u64;
            crate::lazyfree::free_later(Box::new(std::mem::take(ks)), keys);
        } else {
            ks.clear();
        }
    };
    empty(ctx.ks);
    ctx.out.emptied.push(ctx.db);
    if all {
        for (db, ks) in ctx.others.iter_mut() {
            empty(ks);
            ctx.out.emptied.push(db);
        }
    }
    ctx.out.flushed = true;
    let name: &'static [u8] = if all { b"FLUSHALL" } else { b"FLUSHDB" };
    ctx.out.effects.push(vec![Bytes::from_static(name)]);
    Ok(Reply::ok())
}

/// SWAPDB index1 index2: clients stay on their database numbers and see the other one's
/// keys. Every WATCH token is void afterwards and blocked clients look again (Redis
/// touches the watched keys of both databases and rescans their blocked keys).
pub(super) fn swapdb(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let index = |arg: &[u8], which: &str| {
        parse_i64(arg)
            .filter(|n| i32::try_from(*n).is_ok())
            .ok_or_else(|| Reply::error(format!("ERR invalid {which} DB index")))
    };
    let (a, b) = (index(&args[1], "first")?, index(&args[2], "second")?);
    let valid = |n: i64| usize::try_from(n).ok().filter(|&n| crate::databases::Databases::valid(n));
    let (Some(a), Some(b)) = (valid(a), valid(b)) else {
        return Err(Reply::error(errors::DB_INDEX));
    };
    if a != b {
        let current = ctx.db;
        if a == current || b == current {
            let other = if a == current { b } else { a };
            if let Some(ks) = ctx.others.get(other) {
                std::mem::swap(&mut *ctx.ks, ks);
            }
        } else {
            ctx.others.swap(a, b);
        }
    }
    ctx.out.flushed = true;
    ctx.out.swapped = true;
    ctx.out.effects.push(args.to_vec());
    Ok(Reply::ok())
}
