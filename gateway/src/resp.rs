//! RESP, the Redis protocol: parsing client requests (multibulk and inline) and encoding
//! replies as RESP2 or RESP3.
//!
//! The parser first checks that a whole request is in the buffer and only then cuts it out,
//! so arguments are zero-copy slices of the read buffer. Limits are checked before anything
//! is allocated: a bulk length over the limit is an error even if its bytes never arrive.
//! Error texts are Redis's own (`Protocol error: invalid bulk length`, ...).

use bytes::{Buf, BufMut, Bytes, BytesMut};
use ferrocache_common::double::format_double;
use ferrocache_common::Reply;

/// Longest line (inline request or length line) before the request is rejected, as Redis's
/// PROTO_INLINE_MAX_SIZE.
pub const INLINE_MAX: usize = 64 * 1024;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest bulk string (proto-max-bulk-len).
    pub max_bulk_len: usize,
    /// Most arguments in one request.
    pub max_args: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_bulk_len: 512 << 20, max_args: 1 << 20 }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Protocol error: {0}")]
pub struct ProtocolError(pub String);

fn perr(msg: &str) -> ProtocolError {
    ProtocolError(msg.to_string())
}

/// Takes one request off the front of `buf`: `Ok(None)` when it is not complete yet,
/// `Ok(Some(args))` when parsed (empty args for an empty request, which is skipped).
pub fn parse_request(buf: &mut BytesMut, limits: &Limits) -> Result<Option<Vec<Bytes>>, ProtocolError> {
    if buf.is_empty() {
        return Ok(None);
    }
    if buf[0] == b'*' {
        parse_multibulk(buf, limits)
    } else {
        parse_inline(buf)
    }
}

fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    buf.get(from..)?.windows(2).position(|w| w == b"\r\n").map(|p| p + from)
}

/// Parses the decimal after a type byte on the line `buf[start..end]`, as strictly as Redis's
/// `string2ll`: no sign but a leading `-`, no leading zeros, no `-0`.
fn parse_len(line: &[u8]) -> Option<i64> {
    if line.is_empty() || line.len() > 20 {
        return None;
    }
    let (neg, digits) = if line[0] == b'-' { (true, &line[1..]) } else { (false, line) };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if digits[0] == b'0' && (digits.len() > 1 || neg) {
        return None;
    }
    let mut v: i64 = 0;
    for &d in digits {
        v = v.checked_mul(10)?.checked_add((d - b'0') as i64)?;
    }
    Some(if neg { -v } else { v })
}

fn parse_multibulk(buf: &mut BytesMut, limits: &Limits) -> Result<Option<Vec<Bytes>>, ProtocolError> {
    let Some(eol) = find_crlf(buf, 0) else {
        if buf.len() > INLINE_MAX {
            return Err(perr("too big mbulk count string"));
        }
        return Ok(None);
    };
    let count = parse_len(&buf[1..eol]).ok_or_else(|| perr("invalid multibulk length"))?;
    if count > limits.max_args as i64 {
        return Err(perr("invalid multibulk length"));
    }
    if count <= 0 {
        let _ = buf.split_to(eol + 2);
        return Ok(Some(Vec::new()));
    }
    // First pass: check the whole request is here and well formed, without allocating.
    let first = eol + 2;
    let mut pos = first;
    for _ in 0..count {
        if pos >= buf.len() {
            return Ok(None);
        }
        if buf[pos] != b'$' {
            return Err(ProtocolError(expected_dollar(buf[pos])));
        }
        let Some(eol) = find_crlf(buf, pos) else {
            if buf.len() - pos > INLINE_MAX {
                return Err(perr("too big bulk count string"));
            }
            return Ok(None);
        };
        let len = parse_len(&buf[pos + 1..eol]).ok_or_else(|| perr("invalid bulk length"))?;
        if len < 0 || len as u64 > limits.max_bulk_len as u64 {
            return Err(perr("invalid bulk length"));
        }
        let start = eol + 2;
        let end = start + len as usize;
        if buf.len() < end + 2 {
            // Incomplete: grow toward a big argument geometrically (amortized O(n) copies),
            // never by the declared length at once: a client declaring 512 MB and sending
            // nothing must not make the gateway hold 512 MB.
            let missing = end + 2 - buf.len();
            if missing > 16 * 1024 {
                buf.reserve(missing.min(buf.len().max(64 * 1024)));
            }
            return Ok(None);
        }
        if &buf[end..end + 2] != b"\r\n" {
            return Err(perr("invalid bulk length"));
        }
        pos = end + 2;
    }
    // Second pass: the length lines are known good now, so each argument is cut straight
    // out of the buffer with one allocation in all (the vector). Cut, not sliced out of the
    // request cut out whole: the buffer's reference count is an atomic, and the whole
    // request's reference would cost two more atomic operations per command.
    buf.advance(first);
    let mut args = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let digits = buf[1..].iter().position(|&b| b == b'\r').unwrap_or(0);
        let len = buf[1..1 + digits].iter().fold(0usize, |n, d| n * 10 + (d - b'0') as usize);
        buf.advance(1 + digits + 2);
        args.push(buf.split_to(len).freeze());
        buf.advance(2);
    }
    Ok(Some(args))
}

fn expected_dollar(got: u8) -> String {
    format!("expected '$', got '{}'", got as char)
}

fn parse_inline(buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
    let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
        if buf.len() > INLINE_MAX {
            return Err(perr("too big inline request"));
        }
        return Ok(None);
    };
    let line = buf.split_to(nl + 1);
    let mut text = &line[..nl];
    if text.last() == Some(&b'\r') {
        text = &text[..text.len() - 1];
    }
    ferrocache_common::split_args::split_args(text).map(Some).ok_or_else(|| perr("unbalanced quotes in request"))
}

fn put_len(out: &mut BytesMut, prefix: u8, n: usize) {
    out.put_u8(prefix);
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    out.extend_from_slice(b"\r\n");
}

fn put_bulk(out: &mut BytesMut, data: &[u8]) {
    put_len(out, b'$', data.len());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Simple strings and errors cannot carry newlines: Redis turns them into spaces.
fn put_line(out: &mut BytesMut, prefix: u8, text: &str) {
    out.put_u8(prefix);
    out.extend(text.bytes().map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }));
    out.extend_from_slice(b"\r\n");
}

/// Encodes a reply for a client speaking RESP `proto` (2 or 3).
pub fn encode(reply: &Reply, proto: u8, out: &mut BytesMut) {
    let resp3 = proto >= 3;
    match reply {
        Reply::Simple(s) => put_line(out, b'+', s),
        Reply::Error(e) => put_line(out, b'-', e),
        Reply::Integer(i) => {
            out.put_u8(b':');
            out.extend_from_slice(itoa::Buffer::new().format(*i).as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        Reply::Bulk(b) => put_bulk(out, b),
        Reply::NullBulk if resp3 => out.extend_from_slice(b"_\r\n"),
        Reply::NullArray if resp3 => out.extend_from_slice(b"_\r\n"),
        Reply::NullBulk => out.extend_from_slice(b"$-1\r\n"),
        Reply::NullArray => out.extend_from_slice(b"*-1\r\n"),
        Reply::Array(items) => {
            put_len(out, b'*', items.len());
            for item in items {
                encode(item, proto, out);
            }
        }
        Reply::Double(d) if resp3 => put_line(out, b',', &format_double(*d)),
        Reply::Double(d) => put_bulk(out, format_double(*d).as_bytes()),
        Reply::Map(items) => {
            if resp3 {
                put_len(out, b'%', items.len() / 2);
            } else {
                put_len(out, b'*', items.len());
            }
            for item in items {
                encode(item, proto, out);
            }
        }
        Reply::Set(items) => {
            put_len(out, if resp3 { b'~' } else { b'*' }, items.len());
            for item in items {
                encode(item, proto, out);
            }
        }
        Reply::Bool(b) if resp3 => out.extend_from_slice(if *b { b"#t\r\n" } else { b"#f\r\n" }),
        Reply::Bool(b) => out.extend_from_slice(if *b { b":1\r\n" } else { b":0\r\n" }),
        Reply::Verbatim(text) if resp3 => {
            put_len(out, b'=', text.len() + 4);
            out.extend_from_slice(b"txt:");
            out.extend_from_slice(text);
            out.extend_from_slice(b"\r\n");
        }
        Reply::Verbatim(text) => put_bulk(out, text),
        Reply::DoubleText(text) if resp3 => {
            out.extend_from_slice(b",");
            out.extend_from_slice(text);
            out.extend_from_slice(b"\r\n");
        }
        Reply::DoubleText(text) => put_bulk(out, text),
        Reply::PairMap(items) if resp3 => {
            put_len(out, b'%', items.len() / 2);
            for item in items {
                encode(item, proto, out);
            }
        }
        Reply::PairMap(items) => {
            put_len(out, b'*', items.len() / 2);
            for pair in items.chunks(2) {
                put_len(out, b'*', pair.len());
                for item in pair {
                    encode(item, proto, out);
                }
            }
        }
        Reply::Pairs(items) if resp3 => {
            put_len(out, b'*', items.len() / 2);
            for pair in items.chunks(2) {
                put_len(out, b'*', pair.len());
                for item in pair {
                    encode(item, proto, out);
                }
            }
        }
        Reply::Pairs(items) | Reply::Push(items) => {
            put_len(out, if resp3 && matches!(reply, Reply::Push(_)) { b'>' } else { b'*' }, items.len());
            for item in items {
                encode(item, proto, out);
            }
        }
        Reply::Sequence(replies) => {
            for r in replies {
                encode(r, proto, out);
            }
        }
    }
}

#[cfg(test)]
mod tests;
