//! LCS: the longest common subsequence of two strings, by Redis's dynamic programming and
//! its walk back through the table (so IDX reports the same ranges, in the same order).

use bytes::Bytes;
use ferrocache_common::Reply;

use super::args::{eq_ignore_case, int_arg, syntax_error};
use super::{CmdResult, Ctx};
use crate::value::Value;

/// Most table cells one LCS may use (4 bytes each): the table is transient but built under
/// the node's lock, so it is bounded in memory and time (64 MB, tens of milliseconds).
const MAX_CELLS: u64 = 1 << 24;

/// LCS key1 key2 [LEN] [IDX] [MINMATCHLEN n] [WITHMATCHLEN]
pub(super) fn lcs(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let a = string_or_empty(ctx, &args[1])?;
    let b = string_or_empty(ctx, &args[2])?;
    let (mut len_only, mut idx, mut with_len, mut min_len) = (false, false, false, 0u64);
    let mut i = 3;
    while i < args.len() {
        let opt = &args[i];
        if eq_ignore_case(opt, "IDX") {
            idx = true;
        } else if eq_ignore_case(opt, "LEN") {
            len_only = true;
        } else if eq_ignore_case(opt, "WITHMATCHLEN") {
            with_len = true;
        } else if eq_ignore_case(opt, "MINMATCHLEN") && i + 1 < args.len() {
            min_len = int_arg(&args[i + 1])?.max(0) as u64;
            i += 1;
        } else {
            return Err(syntax_error());
        }
        i += 1;
    }
    if idx && len_only {
        return Err(Reply::error("ERR If you want both the length and indexes, please just use IDX."));
    }
    let (alen, blen) = (a.len(), b.len());
    if (alen as u64 + 1) * (blen as u64 + 1) > MAX_CELLS {
        return Err(Reply::error("ERR Insufficient memory, failed allocating transient memory for LCS"));
    }
    let width = blen + 1;
    let mut dp = vec![0u32; (alen + 1) * width];
    for i in 1..=alen {
        for j in 1..=blen {
            dp[i * width + j] = if a[i - 1] == b[j - 1] {
                dp[(i - 1) * width + j - 1] + 1
            } else {
                dp[(i - 1) * width + j].max(dp[i * width + j - 1])
            };
        }
    }
    let total = dp[alen * width + blen];
    if len_only {
        return Ok(Reply::Integer(total as i64));
    }
    // Walk back from the end, collecting the subsequence and the matching ranges.
    let mut result = vec![0u8; total as usize];
    let mut matches = Vec::new();
    let mut left = total as usize;
    let (mut i, mut j) = (alen, blen);
    // (a start, a end, b start, b end) of the range being extended; None between ranges.
    let mut range: Option<(usize, usize, usize, usize)> = None;
    while i > 0 && j > 0 {
        let mut emit = false;
        if a[i - 1] == b[j - 1] {
            result[left - 1] = a[i - 1];
            range = match range {
                None => Some((i - 1, i - 1, j - 1, j - 1)),
                // Contiguous with the range: extend it backwards.
                Some((ast, aend, bst, bend)) if ast == i && bst == j => Some((ast - 1, aend, bst - 1, bend)),
                Some(r) => {
                    emit = true;
                    Some(r)
                }
            };
            if range.is_some_and(|(ast, _, bst, _)| ast == 0 || bst == 0) {
                emit = true;
            }
            left -= 1;
            i -= 1;
            j -= 1;
        } else {
            if dp[(i - 1) * width + j] > dp[i * width + j - 1] {
                i -= 1;
            } else {
                j -= 1;
            }
            emit = range.is_some();
        }
        if emit {
            if let Some((ast, aend, bst, bend)) = range.take() {
                let n = (aend - ast + 1) as u64;
                if idx && (min_len == 0 || n >= min_len) {
                    let pair =
                        |x: usize, y: usize| Reply::Array(vec![Reply::Integer(x as i64), Reply::Integer(y as i64)]);
                    let mut m = vec![pair(ast, aend), pair(bst, bend)];
                    if with_len {
                        m.push(Reply::Integer(n as i64));
                    }
                    matches.push(Reply::Array(m));
                }
            }
        }
    }
    if idx {
        return Ok(Reply::Map(vec![
            Reply::Bulk(Bytes::from_static(b"matches")),
            Reply::Array(matches),
            Reply::Bulk(Bytes::from_static(b"len")),
            Reply::Integer(total as i64),
        ]));
    }
    Ok(Reply::Bulk(Bytes::from(result)))
}

/// A key's string, empty when it does not exist; Redis's LCS error for another type.
fn string_or_empty(ctx: &mut Ctx<'_>, key: &[u8]) -> Result<Bytes, Reply> {
    match ctx.lookup(key) {
        None => Ok(Bytes::new()),
        Some(e) => match &e.value {
            Value::Str(s) => Ok(s.to_bytes()),
            _ => Err(Reply::error("ERR The specified keys must contain string values")),
        },
    }
}
