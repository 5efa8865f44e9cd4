//! Argument parsing with Redis's exact rules and error strings.

use bytes::Bytes;
use ferrocache_common::reply::errors;
use ferrocache_common::Reply;

pub use ferrocache_common::int::parse_i64;

/// Redis's `string2d`/`string2ld`: the whole text is one C `strtod` number — decimal,
/// hexadecimal (`0x10`, `0x1.8p3`) or `inf`/`infinity` — with no leading space, not NaN,
/// and not out of range (`1e400` and `1e-400` are refused, an explicit `inf` is not).
pub fn parse_f64(s: &[u8]) -> Option<f64> {
    let (v, out_of_range) = strtod_number(s)?;
    if out_of_range && (v.is_infinite() || v == 0.0) {
        return None;
    }
    Some(v)
}

/// `string2d`'s text rules (one whole number, no leading space, not NaN): the value and
/// whether it is beyond an f64's range (C's ERANGE), for the caller to judge.
fn strtod_number(s: &[u8]) -> Option<(f64, bool)> {
    if s.first().is_none_or(|&c| c_isspace(c)) {
        return None;
    }
    strtod_whole(std::str::from_utf8(s).ok()?).filter(|(v, _)| !v.is_nan())
}

/// A score range's bound as Redis's `zslParseRange` reads it: `strtod` over the whole text
/// with no other check, so leading spaces are skipped, an empty text is 0 and out-of-range
/// values saturate; only NaN and trailing garbage are refused.
pub fn parse_range_f64(s: &[u8]) -> Option<f64> {
    strtod_lenient(s).map(|(v, _)| v)
}

/// A SORT weight as Redis reads it: `strtod` over the whole text, leading spaces skipped,
/// "" is 0; NaN and out-of-range values (C's ERANGE) are refused.
pub fn parse_sort_f64(s: &[u8]) -> Option<f64> {
    strtod_lenient(s).filter(|(_, out_of_range)| !out_of_range).map(|(v, _)| v)
}

/// `strtod` that must consume the whole text, leading spaces allowed; an empty text is 0
/// (nothing converted, nothing left over), a text of spaces alone is not. NaN is refused.
fn strtod_lenient(s: &[u8]) -> Option<(f64, bool)> {
    if s.is_empty() {
        return Some((0.0, false));
    }
    let start = s.iter().position(|&c| !c_isspace(c))?;
    let (v, out_of_range) = strtod_whole(std::str::from_utf8(&s[start..]).ok()?)?;
    (!v.is_nan()).then_some((v, out_of_range))
}

/// C's `isspace` in the "C" locale.
fn c_isspace(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

/// `strtod` when it must consume all of `text` (no leading space): the value, and whether
/// it over- or underflowed (C's ERANGE).
fn strtod_whole(text: &str) -> Option<(f64, bool)> {
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    if unsigned.starts_with(['+', '-']) {
        return None;
    }
    let negative = text.starts_with('-');
    let lower = unsigned.to_ascii_lowercase();
    let magnitude = match lower.as_str() {
        "inf" | "infinity" => return Some((if negative { f64::NEG_INFINITY } else { f64::INFINITY }, false)),
        "nan" => return Some((f64::NAN, false)),
        _ if lower.starts_with("0x") => hex_float(&lower[2..])?,
        // Rust's grammar for the rest is C's: digits, one point, an optional exponent.
        _ if unsigned.bytes().all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-')) => {
            let v: f64 = unsigned.parse().ok()?;
            let digits = unsigned.split(['e', 'E']).next().unwrap_or("");
            let nonzero = digits.bytes().any(|c| matches!(c, b'1'..=b'9'));
            (v, v.is_infinite() || (v == 0.0 && nonzero))
        }
        _ => return None,
    };
    let (v, out_of_range) = magnitude;
    Some((if negative { -v } else { v }, out_of_range))
}

/// The part of a C hexadecimal float after `0x`: hex digits with an optional point, then an
/// optional binary exponent (`p3`, `p-2`).
fn hex_float(text: &str) -> Option<(f64, bool)> {
    let (mantissa, exponent) = match text.split_once('p') {
        Some((m, e)) => (m, e.parse::<i32>().ok()?),
        None => (text, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut v = 0f64;
    for c in int.chars() {
        v = v * 16.0 + c.to_digit(16)? as f64;
    }
    let mut scale = 1.0 / 16.0;
    for c in frac.chars() {
        v += c.to_digit(16)? as f64 * scale;
        scale /= 16.0;
    }
    let v = v * 2f64.powi(exponent.clamp(-2200, 2200));
    Some((v, v.is_infinite() || (v == 0.0 && mantissa.bytes().any(|c| c != b'0' && c != b'.'))))
}

/// Most picks a negative count (repeats allowed) of SRANDMEMBER, HRANDFIELD or ZRANDMEMBER
/// returns: Redis builds whatever reply is asked for (a count of -2^31 is gigabytes, and
/// seconds of one node's time); a million picks is more than any sample needs.
pub const MAX_RANDOM_PICKS: usize = 1 << 20;

/// Redis's `getRangeLongFromObjectOrReply(-LONG_MAX, LONG_MAX)` answer for LONG_MIN.
pub const LONG_RANGE: &str =
    "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807";

/// The count of SRANDMEMBER, HRANDFIELD and ZRANDMEMBER as Redis checks it: within
/// ±LONG_MAX, and within ±LONG_MAX/2 when each pick replies two items (WITHVALUES,
/// WITHSCORES), where Redis would otherwise overflow the reply's length.
pub fn random_count_arg(arg: &[u8], pairs: bool) -> Result<i64, Reply> {
    let count = int_arg(arg)?;
    if count == i64::MIN {
        return Err(Reply::error(LONG_RANGE));
    }
    if pairs && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&count) {
        return Err(Reply::error("ERR value is out of range"));
    }
    Ok(count)
}

pub fn int_arg(arg: &[u8]) -> Result<i64, Reply> {
    parse_i64(arg).ok_or_else(|| Reply::error(errors::NOT_INTEGER))
}

/// A database number argument (SELECT, MOVE, COPY ... DB), with Redis's errors: not a
/// 32-bit integer, or not one of the node's databases.
pub fn database_arg(arg: &[u8]) -> Result<usize, Reply> {
    let n = parse_i64(arg).filter(|n| i32::try_from(*n).is_ok()).ok_or_else(|| Reply::error(errors::NOT_INTEGER))?;
    usize::try_from(n)
        .ok()
        .filter(|&n| crate::databases::Databases::valid(n))
        .ok_or_else(|| Reply::error(errors::DB_INDEX))
}

pub fn eq_ignore_case(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

/// Redis's checks of a container's subcommand before it runs: known, and given its arity
/// (`subs`: name and arity as in COMMAND INFO).
pub fn check_subcommand(args: &[Bytes], container: &str, subs: &[(&str, i32)]) -> Result<(), Reply> {
    let Some(&(name, arity)) = subs.iter().find(|(name, _)| eq_ignore_case(&args[1], name)) else {
        let sub: String = String::from_utf8_lossy(&args[1]).chars().take(128).collect();
        return Err(Reply::error(format!("ERR unknown subcommand '{sub}'. Try {container} HELP.")));
    };
    let argc = args.len() as i32;
    if (arity >= 0 && argc != arity) || argc < arity.abs() {
        return Err(Reply::error(format!(
            "ERR wrong number of arguments for '{}|{name}' command",
            container.to_ascii_lowercase()
        )));
    }
    Ok(())
}

pub fn syntax_error() -> Reply {
    Reply::error(errors::SYNTAX)
}

/// HSCAN / SSCAN arguments after the key: `cursor [MATCH pattern] [COUNT n]` (and
/// NOVALUES when `novalues_ok`). Returns (pattern, novalues).
pub fn collection_scan_args(args: &[Bytes], novalues_ok: bool) -> Result<(Option<Bytes>, bool), Reply> {
    std::str::from_utf8(&args[2])
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(|| Reply::error("ERR invalid cursor"))?;
    let (mut pattern, mut novalues) = (None, false);
    let mut i = 3;
    while i < args.len() {
        if novalues_ok && eq_ignore_case(&args[i], "NOVALUES") {
            novalues = true;
            i += 1;
            continue;
        }
        let Some(value) = args.get(i + 1) else { return Err(syntax_error()) };
        if eq_ignore_case(&args[i], "MATCH") {
            pattern = Some(value.clone());
        } else if eq_ignore_case(&args[i], "COUNT") {
            if int_arg(value)? < 1 {
                return Err(syntax_error());
            }
        } else {
            return Err(syntax_error());
        }
        i += 2;
    }
    Ok((pattern, novalues))
}

/// `numkeys key... WHERE [COUNT n]` from `args[at]` on (LMPOP, BLMPOP, ZMPOP, BZMPOP);
/// `place` parses WHERE (LEFT|RIGHT or MIN|MAX).
pub fn mpop_args<T>(
    args: &[Bytes],
    at: usize,
    place: fn(&[u8]) -> Result<T, Reply>,
) -> Result<(Vec<Bytes>, T, usize), Reply> {
    let numkeys = parse_i64(&args[at]).ok_or_else(|| Reply::error("ERR numkeys should be greater than 0"))?;
    if numkeys <= 0 {
        return Err(Reply::error("ERR numkeys should be greater than 0"));
    }
    let keys_end = at + 1 + numkeys as usize;
    if keys_end >= args.len() || numkeys as usize > args.len() {
        return Err(syntax_error());
    }
    let keys = args[at + 1..keys_end].to_vec();
    let end = place(&args[keys_end])?;
    let count = match &args[keys_end + 1..] {
        [] => 1,
        [word, n] if eq_ignore_case(word, "COUNT") => {
            let n = parse_i64(n).ok_or_else(|| Reply::error("ERR count should be greater than 0"))?;
            if n <= 0 {
                return Err(Reply::error("ERR count should be greater than 0"));
            }
            n as usize
        }
        _ => return Err(syntax_error()),
    };
    Ok((keys, end, count))
}

/// `numkeys key... [LIMIT n]` (SINTERCARD, ZINTERCARD): the keys and the limit (0 = none).
pub fn intercard_args(args: &[Bytes]) -> Result<(&[Bytes], usize), Reply> {
    let numkeys = parse_i64(&args[1]).ok_or_else(|| Reply::error("ERR numkeys should be greater than 0"))?;
    if numkeys <= 0 {
        return Err(Reply::error("ERR numkeys should be greater than 0"));
    }
    let numkeys = numkeys as usize;
    if numkeys > args.len() - 2 {
        return Err(Reply::error("ERR Number of keys can't be greater than number of args"));
    }
    let mut limit = 0usize;
    match &args[2 + numkeys..] {
        [] => {}
        [word, n] if eq_ignore_case(word, "LIMIT") => {
            let l = parse_i64(n).ok_or_else(|| Reply::error("ERR LIMIT can't be negative"))?;
            if l < 0 {
                return Err(Reply::error("ERR LIMIT can't be negative"));
            }
            limit = l as usize;
        }
        _ => return Err(syntax_error()),
    }
    Ok((&args[2..2 + numkeys], limit))
}

/// A blocking command's timeout in seconds (0 = forever), Redis's checks.
pub fn timeout_arg(arg: &[u8]) -> Result<f64, Reply> {
    let (t, beyond_f64) =
        strtod_number(arg).ok_or_else(|| Reply::error("ERR timeout is not a float or out of range"))?;
    // Redis reads a timeout as a long double (`string2ld`), which holds what an f64 cannot:
    // 1e400 is a number (out of range below), and 1e-400 a positive one that Redis rounds
    // up to a 1 ms wait.
    let t = if beyond_f64 && t == 0.0 && t.is_sign_positive() { f64::MIN_POSITIVE } else { t };
    // Redis counts the deadline in ms on a signed 64-bit clock.
    if t * 1000.0 >= i64::MAX as f64 {
        return Err(Reply::error("ERR timeout is out of range"));
    }
    if t < 0.0 {
        return Err(Reply::error("ERR timeout is negative"));
    }
    Ok(t)
}

pub fn bulk(b: &Bytes) -> Reply {
    Reply::Bulk(b.clone())
}

/// Formats an integer the way Redis stores it as a string.
pub fn int_bytes(v: i64) -> Bytes {
    Bytes::from(v.to_string())
}

/// Formats a float the way INCRBYFLOAT stores it: shortest exact digits, no exponent.
pub fn float_bytes(v: f64) -> Bytes {
    if v == v.trunc() && v.abs() < 1e17 {
        return int_bytes(v as i64);
    }
    Bytes::from(format!("{v}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_are_read_as_c_strtod_reads_them() {
        assert_eq!(parse_f64(b"0x10"), Some(16.0));
        assert_eq!(parse_f64(b"-0x1.8p1"), Some(-3.0));
        assert_eq!(parse_f64(b"1e3"), Some(1000.0));
        assert_eq!(parse_f64(b"+inf"), Some(f64::INFINITY));
        assert_eq!(parse_f64(b"-Infinity"), Some(f64::NEG_INFINITY));
        for bad in [&b""[..], b" 1", b"1 ", b"nan", b"1e400", b"1e-400", b"0x", b"0x1p", b"+-1", b"1e", b"abc", b"0x1g"]
        {
            assert_eq!(parse_f64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
        // A range bound skips leading spaces, reads "" as 0 and saturates.
        assert_eq!(parse_range_f64(b""), Some(0.0));
        assert_eq!(parse_range_f64(b"  1.5"), Some(1.5));
        assert_eq!(parse_range_f64(b"1e400"), Some(f64::INFINITY));
        assert_eq!(parse_range_f64(b"0x10"), Some(16.0));
        for bad in [&b"   "[..], b"1 ", b"nan", b"x"] {
            assert_eq!(parse_range_f64(bad), None);
        }
        // SORT's weights: the same, but out of range is an error.
        assert_eq!(parse_sort_f64(b""), Some(0.0));
        assert_eq!(parse_sort_f64(b"  3.5"), Some(3.5));
        assert_eq!(parse_sort_f64(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_sort_f64(b"0x10"), Some(16.0));
        for bad in [&b"1e400"[..], b"nan", b"3 ", b"abc", b"  "] {
            assert_eq!(parse_sort_f64(bad), None);
        }
    }

    #[test]
    fn integers_follow_string2ll() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-1"), Some(-1));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [&b""[..], b"+1", b"01", b"-0", b" 1", b"1 ", b"1a", b"9223372036854775808", b"-"] {
            assert_eq!(parse_i64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn floats() {
        assert_eq!(parse_f64(b"1.5"), Some(1.5));
        assert_eq!(parse_f64(b"5.0e3"), Some(5000.0));
        assert_eq!(parse_f64(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_f64(b"nan"), None);
        assert_eq!(parse_f64(b" 1"), None);
        assert_eq!(parse_f64(b"abc"), None);
        assert_eq!(&float_bytes(10.6)[..], b"10.6");
        assert_eq!(&float_bytes(3.0)[..], b"3");
        assert_eq!(&float_bytes(5.0e3)[..], b"5000");
    }
}
