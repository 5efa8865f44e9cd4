//! Keyspace-wide server commands that run on a node: FLUSHALL / FLUSHDB.

use bytes::Bytes;
use ferrocache_common::Reply;

use super::args::{eq_ignore_case, syntax_error};
use super::{CmdResult, Ctx};

pub(super) fn flush(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    match &args[1..] {
        [] => {}
        [mode] if eq_ignore_case(mode, "ASYNC") || eq_ignore_case(mode, "SYNC") => {}
        _ => return Err(syntax_error()),
    }
    ctx.ks.clear();
    ctx.out.dirty.clear();
    ctx.out.flushed = true;
    ctx.out.effects.push(vec![Bytes::from_static(b"FLUSHALL")]);
    Ok(Reply::ok())
}
