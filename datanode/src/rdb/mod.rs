//! DUMP / RESTORE payloads in Redis's serialization, so migration tools move keys between
//! Redis and Ferrocache either way: `<type><value><rdb version: u16 LE><crc64 jones: u64 LE>`.
//!
//! Ferrocache writes the plain RDB types every Redis since 2.x loads (string, list, set,
//! hash, zset with binary scores) with RDB version 10, which Redis 7.0 and later accept. It
//! reads those and the compact types Redis 7.x writes for small values (listpack, intset,
//! quicklist 2), LZF-compressed strings and integer-encoded strings. Streams: stream.rs.

mod stream;

use std::collections::VecDeque;

use bytes::Bytes;

use crate::set::Set;
use crate::value::Value;
use crate::zset::SortedSet;

const RDB_VERSION: u16 = 10;
/// The newest RDB version Ferrocache reads (Redis 7.2 writes 11).
const RDB_VERSION_MAX: u16 = 11;

const TYPE_STRING: u8 = 0;
const TYPE_LIST: u8 = 1;
const TYPE_SET: u8 = 2;
const TYPE_ZSET: u8 = 3;
const TYPE_HASH: u8 = 4;
const TYPE_ZSET_2: u8 = 5;
const TYPE_SET_INTSET: u8 = 11;
const TYPE_LIST_QUICKLIST: u8 = 14;
const TYPE_HASH_LISTPACK: u8 = 16;
const TYPE_ZSET_LISTPACK: u8 = 17;
const TYPE_LIST_QUICKLIST_2: u8 = 18;
const TYPE_SET_LISTPACK: u8 = 20;
/// Not a Redis type: a stream in Ferrocache's own encoding (value.rs), which keeps what
/// Redis 7.0's form has no room for (consumers' active time). Resharding's RESTORE effects
/// carry streams in this form; clients' DUMP gets Redis's (stream.rs).
const TYPE_FERROCACHE_STREAM: u8 = 200;

/// Why a payload was refused; the Display texts are Redis's.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum RdbError {
    #[error("ERR DUMP payload version or checksum are wrong")]
    Checksum,
    #[error("ERR Bad data format")]
    Format,
}

/// Redis's CRC-64 (Jones polynomial, reflected, no final xor).
pub fn crc64(data: &[u8]) -> u64 {
    const POLY: u64 = 0x95ac_9329_ac4b_c9b5; // 0xad93d23594c935a9 reflected
    let mut crc = 0u64;
    for &b in data {
        crc ^= b as u64;
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ POLY } else { crc >> 1 };
        }
    }
    crc
}

fn put_len(out: &mut Vec<u8>, n: usize) {
    if n < 1 << 6 {
        out.push(n as u8);
    } else if n < 1 << 14 {
        out.extend_from_slice(&[0x40 | (n >> 8) as u8, n as u8]);
    } else if n <= u32::MAX as usize {
        out.push(0x80);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&(n as u64).to_be_bytes());
    }
}

fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    put_len(out, s.len());
    out.extend_from_slice(s);
}

/// DUMP: the value's payload, as Redis 7.0 writes it.
pub fn dump(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    match value {
        Value::Stream(s) => {
            let kind = stream::dump_type(s);
            out.push(kind);
            stream::write(s, kind, &mut out);
        }
        Value::Str(s) => {
            out.push(TYPE_STRING);
            put_str(&mut out, s);
        }
        Value::List(l) => {
            out.push(TYPE_LIST);
            put_len(&mut out, l.len());
            l.iter().for_each(|e| put_str(&mut out, e));
        }
        Value::Set(set) => {
            out.push(TYPE_SET);
            put_len(&mut out, set.len());
            set.iter().for_each(|m| put_str(&mut out, &m));
        }
        Value::Hash(h) => {
            out.push(TYPE_HASH);
            put_len(&mut out, h.len());
            for (k, v) in h.iter() {
                put_str(&mut out, k);
                put_str(&mut out, v);
            }
        }
        Value::ZSet(z) => {
            out.push(TYPE_ZSET_2);
            put_len(&mut out, z.len());
            // Redis writes members highest score first; either order loads.
            for (m, s) in z.iter_from(z.len().saturating_sub(1), true) {
                put_str(&mut out, m);
                out.extend_from_slice(&s.to_le_bytes());
            }
        }
    }
    seal(out)
}

/// The footer: RDB version and checksum.
fn seal(mut out: Vec<u8>) -> Vec<u8> {
    // Redis 7.2's stream form needs the RDB version that introduced it.
    let version = if out.first() == Some(&stream::TYPE_STREAM_LISTPACKS_3) { RDB_VERSION_MAX } else { RDB_VERSION };
    out.extend_from_slice(&version.to_le_bytes());
    let crc = crc64(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// A payload that restores to exactly `value` on another Ferrocache node (resharding's
/// RESTORE effects): streams in Ferrocache's own form, the rest as [`dump`].
pub fn dump_exact(value: &Value) -> Vec<u8> {
    match value {
        Value::Stream(_) => {
            let mut out = vec![TYPE_FERROCACHE_STREAM];
            value.encode_into(&mut out);
            seal(out)
        }
        _ => dump(value),
    }
}

/// RDB's opcode for a function library (its code follows as a string).
const OPCODE_FUNCTION2: u8 = 245;

/// FUNCTION DUMP: every library's code, as Redis writes them.
pub fn dump_functions(codes: &[Bytes]) -> Vec<u8> {
    let mut out = Vec::new();
    for code in codes {
        out.push(OPCODE_FUNCTION2);
        put_str(&mut out, code);
    }
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// FUNCTION RESTORE: the libraries' code in a payload (Redis's or ours), at most
/// `max_bytes` of it in all; the error is Redis's reply.
pub fn restore_functions(payload: &[u8], max_bytes: usize) -> Result<Vec<Bytes>, &'static str> {
    const BAD: &str = "ERR DUMP payload version or checksum are wrong";
    if payload.len() < 10 {
        return Err(BAD);
    }
    let (body, footer) = payload.split_at(payload.len() - 10);
    let version = u16::from_le_bytes([footer[0], footer[1]]);
    let mut crc = [0u8; 8];
    crc.copy_from_slice(&footer[2..]);
    if version > RDB_VERSION_MAX || crc64(&payload[..payload.len() - 8]) != u64::from_le_bytes(crc) {
        return Err(BAD);
    }
    let mut r = Reader { data: body, budget: max_bytes };
    let mut codes = Vec::new();
    while !r.data.is_empty() {
        if r.byte().map_err(|_| BAD)? != OPCODE_FUNCTION2 {
            return Err("ERR given type is not a function");
        }
        codes.push(r.string().map_err(|_| "ERR failed loading the given functions payload")?);
    }
    Ok(codes)
}

/// RESTORE: the value a payload holds, refused if its strings would decode to more than
/// `max_bytes` (LZF inflates up to ~88x, so a small payload can declare a huge value).
pub fn restore(payload: &[u8], max_bytes: usize) -> Result<Value, RdbError> {
    if payload.len() < 10 {
        return Err(RdbError::Checksum);
    }
    let (body, footer) = payload.split_at(payload.len() - 10);
    let version = u16::from_le_bytes([footer[0], footer[1]]);
    let mut crc = [0u8; 8];
    crc.copy_from_slice(&footer[2..]);
    let expected = u64::from_le_bytes(crc);
    // DUMP always writes the checksum, so it is always checked (Redis does too).
    if version > RDB_VERSION_MAX || crc64(&payload[..payload.len() - 8]) != expected {
        return Err(RdbError::Checksum);
    }
    if let Some((&TYPE_FERROCACHE_STREAM, encoded)) = body.split_first() {
        if encoded.len() > max_bytes {
            return Err(RdbError::Format);
        }
        return match Value::decode(encoded) {
            Ok(v @ Value::Stream(_)) => Ok(v),
            _ => Err(RdbError::Format),
        };
    }
    let mut r = Reader { data: body, budget: max_bytes };
    let value = r.object()?;
    // Redis refuses empty collections ("empty keys"): every command assumes there are none.
    if !r.data.is_empty() || value.is_empty_collection() {
        return Err(RdbError::Format);
    }
    Ok(value)
}

struct Reader<'a> {
    data: &'a [u8],
    /// Bytes the decoded value may still take (compressed strings inflate).
    budget: usize,
}

/// An RDB length, or a special string encoding.
enum Len {
    Plain(usize),
    Int(i64),
    Lzf,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], RdbError> {
        if self.data.len() < n {
            return Err(RdbError::Format);
        }
        let (a, b) = self.data.split_at(n);
        self.data = b;
        Ok(a)
    }

    fn byte(&mut self) -> Result<u8, RdbError> {
        Ok(self.take(1)?[0])
    }

    fn len_or_encoding(&mut self) -> Result<Len, RdbError> {
        let b = self.byte()?;
        Ok(match b >> 6 {
            0 => Len::Plain((b & 0x3F) as usize),
            1 => Len::Plain(((b & 0x3F) as usize) << 8 | self.byte()? as usize),
            2 if b == 0x80 => {
                Len::Plain(u32::from_be_bytes(self.take(4)?.try_into().map_err(|_| RdbError::Format)?) as usize)
            }
            2 if b == 0x81 => {
                Len::Plain(u64::from_be_bytes(self.take(8)?.try_into().map_err(|_| RdbError::Format)?) as usize)
            }
            3 => match b & 0x3F {
                0 => Len::Int(self.byte()? as i8 as i64),
                1 => Len::Int(i16::from_le_bytes(self.take(2)?.try_into().map_err(|_| RdbError::Format)?) as i64),
                2 => Len::Int(i32::from_le_bytes(self.take(4)?.try_into().map_err(|_| RdbError::Format)?) as i64),
                3 => Len::Lzf,
                _ => return Err(RdbError::Format),
            },
            _ => return Err(RdbError::Format),
        })
    }

    fn len(&mut self) -> Result<usize, RdbError> {
        match self.len_or_encoding()? {
            Len::Plain(n) => Ok(n),
            _ => Err(RdbError::Format),
        }
    }

    fn string(&mut self) -> Result<Bytes, RdbError> {
        let s = match self.len_or_encoding()? {
            Len::Plain(n) => Bytes::copy_from_slice(self.take(n)?),
            Len::Int(v) => Bytes::from(v.to_string()),
            Len::Lzf => {
                let (clen, len) = (self.len()?, self.len()?);
                let compressed = self.take(clen)?;
                if len > self.budget || len > lzf_max_output(clen) {
                    return Err(RdbError::Format);
                }
                Bytes::from(lzf_decompress(compressed, len)?)
            }
        };
        self.budget = self.budget.checked_sub(s.len()).ok_or(RdbError::Format)?;
        Ok(s)
    }

    fn object(&mut self) -> Result<Value, RdbError> {
        let kind = self.byte()?;
        // Counts come from the payload: cap preallocation so a forged count cannot exhaust memory.
        let cap = |n: usize| n.min(1 << 16);
        Ok(match kind {
            TYPE_STRING => Value::Str(crate::strval::Str::copy_from(&self.string()?)),
            stream::TYPE_STREAM_LISTPACKS | stream::TYPE_STREAM_LISTPACKS_2 | stream::TYPE_STREAM_LISTPACKS_3 => {
                Value::Stream(Box::new(stream::read(self, kind)?))
            }
            TYPE_LIST => {
                let n = self.len()?;
                let mut l = VecDeque::with_capacity(cap(n));
                for _ in 0..n {
                    l.push_back(self.string()?);
                }
                Value::List(l)
            }
            TYPE_SET => {
                let n = self.len()?;
                let mut members = Vec::with_capacity(cap(n));
                for _ in 0..n {
                    members.push(self.string()?);
                }
                Value::Set(Box::new(Set::from_ordered(members, n)))
            }
            TYPE_HASH => {
                let n = self.len()?;
                let mut h = crate::value::Hash::with_capacity(cap(n));
                for _ in 0..n {
                    let k = self.string()?;
                    h.insert(k, self.string()?);
                }
                Value::Hash(Box::new(h))
            }
            TYPE_ZSET | TYPE_ZSET_2 => {
                let n = self.len()?;
                let mut z = SortedSet::new();
                for _ in 0..n {
                    let m = self.string()?;
                    let score = if kind == TYPE_ZSET_2 {
                        f64::from_le_bytes(self.take(8)?.try_into().map_err(|_| RdbError::Format)?)
                    } else {
                        let len = self.byte()? as usize;
                        let text = std::str::from_utf8(self.take(len)?).map_err(|_| RdbError::Format)?;
                        text.parse().map_err(|_| RdbError::Format)?
                    };
                    if score.is_nan() {
                        return Err(RdbError::Format);
                    }
                    z.insert(m, score);
                }
                Value::ZSet(Box::new(z))
            }
            TYPE_SET_INTSET => {
                let members = intset(&self.string()?)?;
                let n = members.len();
                Value::Set(Box::new(Set::from_ordered(members, n)))
            }
            TYPE_SET_LISTPACK => Value::Set(Box::new(Set::from_listpack(listpack(&self.string()?)?))),
            TYPE_HASH_LISTPACK => {
                let items = listpack(&self.string()?)?;
                if items.len() % 2 != 0 {
                    return Err(RdbError::Format);
                }
                Value::Hash(Box::new(items.chunks(2).map(|p| (p[0].clone(), p[1].clone())).collect()))
            }
            TYPE_ZSET_LISTPACK => {
                let items = listpack(&self.string()?)?;
                if items.len() % 2 != 0 {
                    return Err(RdbError::Format);
                }
                let mut z = SortedSet::new();
                for p in items.chunks(2) {
                    let score = std::str::from_utf8(&p[1]).ok().and_then(|t| t.parse::<f64>().ok());
                    z.insert(p[0].clone(), score.filter(|s| !s.is_nan()).ok_or(RdbError::Format)?);
                }
                Value::ZSet(Box::new(z))
            }
            TYPE_LIST_QUICKLIST | TYPE_LIST_QUICKLIST_2 => {
                let nodes = self.len()?;
                let mut l = VecDeque::new();
                for _ in 0..nodes {
                    let container = if kind == TYPE_LIST_QUICKLIST_2 { self.len()? } else { 2 };
                    let blob = self.string()?;
                    match container {
                        // PLAIN: one large element as is.
                        1 => l.push_back(blob),
                        2 if kind == TYPE_LIST_QUICKLIST_2 => l.extend(listpack(&blob)?),
                        // Redis 3.2-6.2 quicklists hold ziplists: not read here.
                        _ => return Err(RdbError::Format),
                    }
                }
                Value::List(l)
            }
            _ => return Err(RdbError::Format),
        })
    }
}

/// Redis's intset blob: encoding (2, 4 or 8 bytes per value, u32 LE), count (u32 LE), values.
fn intset(blob: &[u8]) -> Result<Vec<Bytes>, RdbError> {
    if blob.len() < 8 {
        return Err(RdbError::Format);
    }
    let width = u32::from_le_bytes([blob[0], blob[1], blob[2], blob[3]]) as usize;
    let count = u32::from_le_bytes([blob[4], blob[5], blob[6], blob[7]]) as usize;
    if !matches!(width, 2 | 4 | 8) || blob.len() != 8 + width * count {
        return Err(RdbError::Format);
    }
    Ok(blob[8..]
        .chunks(width)
        .map(|c| {
            let v = match width {
                2 => i16::from_le_bytes([c[0], c[1]]) as i64,
                4 => i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64,
                _ => i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]),
            };
            Bytes::from(v.to_string())
        })
        .collect())
}

/// Redis's listpack blob: total bytes (u32 LE), count (u16 LE), entries, 0xFF. Each entry
/// is an encoding byte, its data, then a 1-5 byte back-length.
fn listpack(blob: &[u8]) -> Result<Vec<Bytes>, RdbError> {
    let bad = || RdbError::Format;
    if blob.len() < 7 || *blob.last().ok_or_else(bad)? != 0xFF {
        return Err(bad());
    }
    let mut p = 6;
    let mut out = Vec::new();
    let end = blob.len() - 1;
    let get = |from: usize, n: usize| blob.get(from..from + n).ok_or_else(bad);
    while p < end {
        let b = blob[p];
        let (header, len, item): (usize, usize, Bytes) = if b & 0x80 == 0 {
            (1, 0, Bytes::from((b & 0x7F).to_string()))
        } else if b & 0xC0 == 0x80 {
            let n = (b & 0x3F) as usize;
            (1, n, Bytes::copy_from_slice(get(p + 1, n)?))
        } else if b & 0xE0 == 0xC0 {
            let raw = ((b & 0x1F) as u16) << 8 | *blob.get(p + 1).ok_or_else(bad)? as u16;
            // 13-bit two's complement.
            let v = if raw >= 1 << 12 { raw as i64 - (1 << 13) } else { raw as i64 };
            (2, 0, Bytes::from(v.to_string()))
        } else if b & 0xF0 == 0xE0 {
            let n = ((b & 0x0F) as usize) << 8 | *blob.get(p + 1).ok_or_else(bad)? as usize;
            (2, n, Bytes::copy_from_slice(get(p + 2, n)?))
        } else {
            match b {
                0xF0 => {
                    let n = u32::from_le_bytes(get(p + 1, 4)?.try_into().map_err(|_| bad())?) as usize;
                    (5, n, Bytes::copy_from_slice(get(p + 5, n)?))
                }
                0xF1 => {
                    (3, 0, Bytes::from(i16::from_le_bytes(get(p + 1, 2)?.try_into().map_err(|_| bad())?).to_string()))
                }
                0xF2 => {
                    let d = get(p + 1, 3)?;
                    let v = (i32::from_le_bytes([0, d[0], d[1], d[2]]) >> 8) as i64;
                    (4, 0, Bytes::from(v.to_string()))
                }
                0xF3 => {
                    (5, 0, Bytes::from(i32::from_le_bytes(get(p + 1, 4)?.try_into().map_err(|_| bad())?).to_string()))
                }
                0xF4 => {
                    (9, 0, Bytes::from(i64::from_le_bytes(get(p + 1, 8)?.try_into().map_err(|_| bad())?).to_string()))
                }
                _ => return Err(bad()),
            }
        };
        // Integers carry their data inside `header`; strings add `len` bytes.
        let entry = header + len;
        let back = match entry {
            0..=127 => 1,
            128..=16383 => 2,
            16384..=2097151 => 3,
            2097152..=268435455 => 4,
            _ => 5,
        };
        out.push(item);
        p += entry + back;
    }
    if p != end {
        return Err(bad());
    }
    Ok(out)
}

/// The most `clen` bytes of LZF can expand to: a 3-byte back reference copies 264 bytes.
fn lzf_max_output(clen: usize) -> usize {
    clen.saturating_mul(88).saturating_add(2)
}

/// LZF decompression (the format Redis compresses RDB strings with). `expected` is the
/// declared length, already checked against what the input can produce.
fn lzf_decompress(input: &[u8], expected: usize) -> Result<Vec<u8>, RdbError> {
    let mut out: Vec<u8> = Vec::with_capacity(expected);
    let mut i = 0;
    while i < input.len() {
        let ctrl = input[i] as usize;
        i += 1;
        if ctrl < 32 {
            let n = ctrl + 1;
            out.extend_from_slice(input.get(i..i + n).ok_or(RdbError::Format)?);
            i += n;
        } else {
            let mut n = ctrl >> 5;
            if n == 7 {
                n += *input.get(i).ok_or(RdbError::Format)? as usize;
                i += 1;
            }
            let back = ((ctrl & 0x1F) << 8) + *input.get(i).ok_or(RdbError::Format)? as usize + 1;
            i += 1;
            if back > out.len() {
                return Err(RdbError::Format);
            }
            let start = out.len() - back;
            for k in 0..n + 2 {
                let b = out[start + k];
                out.push(b);
            }
        }
        if out.len() > expected {
            return Err(RdbError::Format);
        }
    }
    if out.len() != expected {
        return Err(RdbError::Format);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc64_matches_redis() {
        // Redis's crc64 test vector.
        assert_eq!(crc64(b"123456789"), 0xe9c6_d914_c4b8_d9ca);
    }

    #[test]
    fn round_trips_every_type() {
        let mut z = SortedSet::new();
        z.insert(Bytes::from_static(b"a"), 1.5);
        z.insert(Bytes::from_static(b"b"), f64::NEG_INFINITY);
        for v in [
            Value::Str(crate::strval::Str::from(Bytes::from(vec![7u8; 20_000]))),
            Value::List(VecDeque::from([Bytes::from_static(b"x"), Bytes::new()])),
            Value::Set(Box::new(Set::from_ordered([Bytes::from_static(b"m")], 1))),
            Value::Hash(Box::new(crate::value::Hash::from([(Bytes::from_static(b"f"), Bytes::from_static(b"v"))]))),
            Value::ZSet(Box::new(z)),
        ] {
            assert_eq!(restore(&dump(&v), 1 << 20), Ok(v));
        }
        let mut bad = dump(&Value::Str(crate::strval::Str::from(Bytes::from_static(b"x"))));
        bad[1] ^= 1;
        assert_eq!(restore(&bad, 1 << 20), Err(RdbError::Checksum));
        assert_eq!(restore(b"short", 1 << 20), Err(RdbError::Checksum));
        // Larger than allowed, empty collections, LZF declaring more than it can hold.
        assert_eq!(
            restore(&dump(&Value::Str(crate::strval::Str::from(Bytes::from(vec![1u8; 100])))), 99),
            Err(RdbError::Format)
        );
        assert_eq!(restore(&dump(&Value::List(VecDeque::new())), 1 << 20), Err(RdbError::Format));
        let mut lzf = vec![0u8, 0xC3, 0x03, 0x80, 0x10, 0, 0, 0, 0x00, b'a', 0x20];
        lzf.extend_from_slice(&10u16.to_le_bytes());
        let crc = crc64(&lzf);
        lzf.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(restore(&lzf, usize::MAX), Err(RdbError::Format));
    }

    #[test]
    fn reads_redis_payloads() {
        // `SET k 42` then DUMP k on Redis 7.0: an int8-encoded string.
        let payload = b"\x00\xc0\x2a\x0a\x00";
        let mut full = payload.to_vec();
        full.extend_from_slice(&crc64(payload).to_le_bytes());
        assert_eq!(restore(&full, 1 << 20), Ok(Value::Str(crate::strval::Str::from(Bytes::from_static(b"42")))));
        // A listpack of "a", 5, -3.
        let mut lp = vec![0, 0, 0, 0, 3, 0];
        lp.extend_from_slice(&[0x81, b'a', 2, 0x05, 1, 0xC0 | 0x1F, 0xFD, 2, 0xFF]);
        let total = lp.len() as u32;
        lp[..4].copy_from_slice(&total.to_le_bytes());
        assert_eq!(
            listpack(&lp),
            Ok(vec![Bytes::from_static(b"a"), Bytes::from_static(b"5"), Bytes::from_static(b"-3")])
        );
    }
}
