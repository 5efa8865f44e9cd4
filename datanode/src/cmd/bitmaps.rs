//! Bit commands over string values: SETBIT GETBIT BITCOUNT BITPOS BITOP BITFIELD BITFIELD_RO.
//! Bit 0 is the most significant bit of byte 0, as in Redis. Writes replicate as sent (they
//! are deterministic), so a large bitmap never travels whole for a one-bit change.

use bytes::Bytes;
use ferrocache_common::Reply;

use super::args::{eq_ignore_case, int_arg, parse_i64, syntax_error};
use super::strings::write_in_place;
use super::{CmdResult, Ctx};

const BAD_OFFSET: &str = "ERR bit offset is not an integer or out of range";

fn get_bit(data: &[u8], bit: u64) -> u8 {
    data.get((bit >> 3) as usize).map_or(0, |b| (b >> (7 - (bit & 7))) & 1)
}

fn set_bit(data: &mut [u8], bit: u64, on: bool) {
    let (byte, mask) = ((bit >> 3) as usize, 1u8 << (7 - (bit & 7)));
    if on {
        data[byte] |= mask;
    } else {
        data[byte] &= !mask;
    }
}

/// A bit offset (with BITFIELD's `#n` form = n × width), limited as Redis limits it: the byte
/// it falls in must lie below proto-max-bulk-len.
fn offset_arg(ctx: &Ctx<'_>, arg: &[u8], width: Option<u64>) -> Result<u64, Reply> {
    let bad = || Reply::error(BAD_OFFSET);
    let (hash, digits) = match (width, arg.split_first()) {
        (Some(_), Some((b'#', rest))) => (true, rest),
        _ => (false, arg),
    };
    let n = parse_i64(digits).ok_or_else(bad)?;
    let n = if hash { n.checked_mul(width.unwrap_or(1) as i64).ok_or_else(bad)? } else { n };
    if n < 0 || (n as u64 >> 3) >= ctx.max_string as u64 {
        return Err(bad());
    }
    Ok(n as u64)
}

/// A copy of `data` (empty if None) zero-padded to hold `bits` bits.
fn grow(data: Option<Bytes>, bits: u64) -> Vec<u8> {
    let mut data = data.map(|b| b.to_vec()).unwrap_or_default();
    let need = bits.div_ceil(8) as usize;
    if data.len() < need {
        data.resize(need, 0);
    }
    data
}

pub(super) fn setbit(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let bit = offset_arg(ctx, &args[2], None)?;
    let on = match &args[3][..] {
        b"1" => true,
        b"0" => false,
        _ => return Err(Reply::error("ERR bit is not an integer or out of range")),
    };
    let current = ctx.get_string(&args[1])?;
    // As Redis: a write (event, WATCH, replication) only when the string is created, grows
    // or the bit changes; otherwise nothing is copied either.
    if let Some(d) = current.as_ref().filter(|d| d.len() as u64 > bit / 8) {
        let old = get_bit(d, bit);
        if (old != 0) == on {
            return Ok(Reply::Integer(old as i64));
        }
    }
    let mut data = grow(current, bit + 1);
    let old = get_bit(&data, bit);
    set_bit(&mut data, bit, on);
    write_in_place(ctx, &args[1], Bytes::from(data), Some(args));
    Ok(Reply::Integer(old as i64))
}

pub(super) fn getbit(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let bit = offset_arg(ctx, &args[2], None)?;
    Ok(Reply::Integer(ctx.get_string(&args[1])?.map_or(0, |d| get_bit(&d, bit)) as i64))
}

/// A `start end [BYTE|BIT]` range resolved against a string of `len` bytes: the inclusive
/// span of bit positions, or None when empty.
fn bit_span(start: i64, end: i64, bit_mode: bool, len: usize) -> Option<(u64, u64)> {
    let total = if bit_mode { len as i64 * 8 } else { len as i64 };
    let norm = |i: i64| if i < 0 { (total + i).max(0) } else { i };
    let (start, end) = (norm(start), norm(end).min(total - 1));
    if total == 0 || start > end {
        return None;
    }
    Some(if bit_mode { (start as u64, end as u64) } else { (start as u64 * 8, end as u64 * 8 + 7) })
}

/// Parses BITCOUNT / BITPOS's optional `start [end [BYTE|BIT]]` from `rest`:
/// (start, end, end given, bit mode).
fn range_args(rest: &[Bytes], end_optional: bool) -> Result<Option<(i64, Option<i64>, bool)>, Reply> {
    let mode = |a: &[u8]| {
        if eq_ignore_case(a, "BYTE") {
            Ok(false)
        } else if eq_ignore_case(a, "BIT") {
            Ok(true)
        } else {
            Err(syntax_error())
        }
    };
    match rest {
        [] => Ok(None),
        [start] if end_optional => Ok(Some((int_arg(start)?, None, false))),
        [start, end] => Ok(Some((int_arg(start)?, Some(int_arg(end)?), false))),
        [start, end, m] => Ok(Some((int_arg(start)?, Some(int_arg(end)?), mode(m)?))),
        _ => Err(syntax_error()),
    }
}

fn count_ones(data: &[u8], first: u64, last: u64) -> u64 {
    let (fb, lb) = ((first >> 3) as usize, (last >> 3) as usize);
    let mut n: u64 = data[fb..=lb].iter().map(|b| b.count_ones() as u64).sum();
    // Take off the bits of the end bytes that lie outside the span.
    let (head, tail) = ((first & 7) as u32, (last & 7) as u32);
    n -= (data[fb] as u32 >> (8 - head)).count_ones() as u64 * (head != 0) as u64;
    n -= (data[lb] as u32 & (0xFF >> (tail + 1))).count_ones() as u64;
    n
}

pub(super) fn bitcount(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let range = range_args(&args[2..], false)?;
    let Some(data) = ctx.get_string(&args[1])? else { return Ok(Reply::Integer(0)) };
    // Both from the end and crossed: empty, before clamping could make them one byte.
    if matches!(range, Some((start, Some(end), _)) if start < 0 && end < 0 && start > end) {
        return Ok(Reply::Integer(0));
    }
    let span = match range {
        None => bit_span(0, -1, false, data.len()),
        Some((start, end, bit_mode)) => bit_span(start, end.unwrap_or(-1), bit_mode, data.len()),
    };
    Ok(Reply::Integer(span.map_or(0, |(first, last)| count_ones(&data, first, last)) as i64))
}

pub(super) fn bitpos(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let want = match int_arg(&args[2])? {
        0 => 0u8,
        1 => 1u8,
        _ => return Err(Reply::error("ERR The bit argument must be 1 or 0.")),
    };
    let range = range_args(&args[3..], true)?;
    let Some(data) = ctx.get_string(&args[1])? else {
        return Ok(Reply::Integer(if want == 1 { -1 } else { 0 }));
    };
    let (start, end, bit_mode) = range.unwrap_or((0, None, false));
    let end_given = end.is_some();
    let Some((first, last)) = bit_span(start, end.unwrap_or(-1), bit_mode, data.len()) else {
        return Ok(Reply::Integer(-1));
    };
    let skip = if want == 1 { 0x00 } else { 0xFF };
    let mut bit = first;
    while bit <= last {
        if bit & 7 == 0 && bit + 7 <= last && data[(bit >> 3) as usize] == skip {
            bit += 8;
            continue;
        }
        if get_bit(&data, bit) == want {
            return Ok(Reply::Integer(bit as i64));
        }
        bit += 1;
    }
    // Looking for a clear bit past the end of the string: without an explicit end the string
    // counts as padded with zeros, as in Redis.
    Ok(Reply::Integer(if want == 0 && !end_given { last as i64 + 1 } else { -1 }))
}

pub(super) fn bitop(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    #[derive(PartialEq)]
    enum Op {
        And,
        Or,
        Xor,
        Not,
    }
    let op = match () {
        _ if eq_ignore_case(&args[1], "AND") => Op::And,
        _ if eq_ignore_case(&args[1], "OR") => Op::Or,
        _ if eq_ignore_case(&args[1], "XOR") => Op::Xor,
        _ if eq_ignore_case(&args[1], "NOT") => Op::Not,
        _ => return Err(syntax_error()),
    };
    let sources = &args[3..];
    if op == Op::Not && sources.len() != 1 {
        return Err(Reply::error("ERR BITOP NOT must be called with a single source key."));
    }
    let inputs =
        sources.iter().map(|k| Ok(ctx.get_string(k)?.unwrap_or_default())).collect::<Result<Vec<Bytes>, Reply>>()?;
    let len = inputs.iter().map(|b| b.len()).max().unwrap_or(0);
    let byte = |b: &Bytes, i: usize| b.get(i).copied().unwrap_or(0);
    let out: Vec<u8> = (0..len)
        .map(|i| {
            let mut all = inputs.iter().map(|b| byte(b, i));
            let first = all.next().unwrap_or(0);
            match op {
                Op::And => all.fold(first, |a, b| a & b),
                Op::Or => all.fold(first, |a, b| a | b),
                Op::Xor => all.fold(first, |a, b| a ^ b),
                Op::Not => !first,
            }
        })
        .collect();
    let dest = &args[2];
    if out.is_empty() {
        if ctx.delete(dest) {
            ctx.propagate(vec![Bytes::from_static(b"DEL"), dest.clone()], &[dest]);
        }
    } else {
        ctx.expire_if_needed(dest);
        ctx.ks.remove(dest);
        write_in_place(ctx, dest, Bytes::from(out), Some(args));
    }
    Ok(Reply::Integer(len as i64))
}

/// A BITFIELD integer type: `i1`..`i64` or `u1`..`u63`.
#[derive(Clone, Copy)]
struct Field {
    signed: bool,
    bits: u32,
}

impl Field {
    fn parse(arg: &[u8]) -> Result<Field, Reply> {
        let bad = || {
            Reply::error(
                "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.",
            )
        };
        let (signed, digits) = match arg.split_first() {
            Some((b'i' | b'I', rest)) => (true, rest),
            Some((b'u' | b'U', rest)) => (false, rest),
            _ => return Err(bad()),
        };
        let bits = parse_i64(digits).ok_or_else(bad)?;
        let max = if signed { 64 } else { 63 };
        if !(1..=max).contains(&bits) {
            return Err(bad());
        }
        Ok(Field { signed, bits: bits as u32 })
    }

    fn min(self) -> i128 {
        if self.signed {
            -(1i128 << (self.bits - 1))
        } else {
            0
        }
    }

    fn max(self) -> i128 {
        if self.signed {
            (1i128 << (self.bits - 1)) - 1
        } else {
            (1i128 << self.bits) - 1
        }
    }

    fn read(self, data: &[u8], offset: u64) -> i64 {
        let mut v: u64 = 0;
        for i in 0..self.bits as u64 {
            v = (v << 1) | get_bit(data, offset + i) as u64;
        }
        if self.signed && self.bits < 64 && v >> (self.bits - 1) & 1 == 1 {
            v |= u64::MAX << self.bits;
        }
        v as i64
    }

    fn write(self, data: &mut [u8], offset: u64, value: i64) {
        let v = value as u64;
        for i in 0..self.bits as u64 {
            set_bit(data, offset + i, (v >> (self.bits as u64 - 1 - i)) & 1 == 1);
        }
    }

    /// Wraps `v` into this type's range, two's complement style.
    fn wrap(self, v: i128) -> i64 {
        let span = 1i128 << self.bits;
        let mut w = v.rem_euclid(span);
        if self.signed && w > self.max() {
            w -= span;
        }
        w as i64
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Overflow {
    Wrap,
    Sat,
    Fail,
}

enum FieldOp {
    Get(Field, u64),
    Set(Field, u64, i64, Overflow),
    IncrBy(Field, u64, i64, Overflow),
}

/// Applies `overflow` to a result: the value to store, or None (FAIL).
fn settle(field: Field, v: i128, overflow: Overflow) -> Option<i64> {
    if (field.min()..=field.max()).contains(&v) {
        return Some(v as i64);
    }
    match overflow {
        Overflow::Wrap => Some(field.wrap(v)),
        Overflow::Sat => Some(if v > field.max() { field.max() } else { field.min() } as i64),
        Overflow::Fail => None,
    }
}

/// BITFIELD, and BITFIELD_RO (`read_only`: GET only).
pub(super) fn bitfield(ctx: &mut Ctx<'_>, args: &[Bytes], read_only: bool) -> CmdResult {
    let mut ops = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut i = 2;
    while i < args.len() {
        let (sub, left) = (&args[i], args.len() - i - 1);
        if eq_ignore_case(sub, "GET") && left >= 2 {
            let field = Field::parse(&args[i + 1])?;
            ops.push(FieldOp::Get(field, offset_arg(ctx, &args[i + 2], Some(field.bits as u64))?));
            i += 3;
        } else if (eq_ignore_case(sub, "SET") || eq_ignore_case(sub, "INCRBY")) && left >= 3 {
            let field = Field::parse(&args[i + 1])?;
            let offset = offset_arg(ctx, &args[i + 2], Some(field.bits as u64))?;
            let n = int_arg(&args[i + 3])?;
            ops.push(if eq_ignore_case(sub, "SET") {
                FieldOp::Set(field, offset, n, overflow)
            } else {
                FieldOp::IncrBy(field, offset, n, overflow)
            });
            i += 4;
        } else if eq_ignore_case(sub, "OVERFLOW") && left >= 1 {
            let how = &args[i + 1];
            overflow = match () {
                _ if eq_ignore_case(how, "WRAP") => Overflow::Wrap,
                _ if eq_ignore_case(how, "SAT") => Overflow::Sat,
                _ if eq_ignore_case(how, "FAIL") => Overflow::Fail,
                _ => return Err(Reply::error("ERR Invalid OVERFLOW type specified")),
            };
            i += 2;
        } else {
            return Err(syntax_error());
        }
    }
    let highest = ops
        .iter()
        .filter_map(|op| match op {
            FieldOp::Set(f, o, ..) | FieldOp::IncrBy(f, o, ..) => Some(o + f.bits as u64),
            FieldOp::Get(..) => None,
        })
        .max();
    if read_only && highest.is_some() {
        return Err(Reply::error("ERR BITFIELD_RO only supports the GET subcommand"));
    }
    let current = ctx.get_string(&args[1])?;
    // As Redis: a write (event, WATCH, replication) only when the string is created or grows,
    // or some SET/INCRBY changes a value.
    let mut changed = highest.is_some_and(|bits| current.as_ref().is_none_or(|d| (d.len() as u64) < bits.div_ceil(8)));
    let mut data = match highest {
        Some(bits) => grow(current, bits),
        None => current.map(|d| d.to_vec()).unwrap_or_default(),
    };
    let mut write = |data: &mut Vec<u8>, f: Field, o: u64, new: i64| {
        let before = f.read(data, o);
        f.write(data, o, new);
        changed |= f.read(data, o) != before;
    };
    let mut replies = Vec::with_capacity(ops.len());
    for op in &ops {
        replies.push(match *op {
            FieldOp::Get(f, o) => Reply::Integer(f.read(&data, o)),
            FieldOp::Set(f, o, v, how) => {
                let old = f.read(&data, o);
                // An unsigned SET reads its value as Redis does: as an unsigned 64-bit number.
                let v = if f.signed { v as i128 } else { v as u64 as i128 };
                match settle(f, v, how) {
                    Some(new) => {
                        write(&mut data, f, o, new);
                        Reply::Integer(old)
                    }
                    None => Reply::NullBulk,
                }
            }
            FieldOp::IncrBy(f, o, by, how) => {
                let old = f.read(&data, o);
                let old = if f.signed { old as i128 } else { old as u64 as i128 };
                match settle(f, old + by as i128, how) {
                    Some(new) => {
                        write(&mut data, f, o, new);
                        Reply::Integer(new)
                    }
                    None => Reply::NullBulk,
                }
            }
        });
    }
    if changed {
        write_in_place(ctx, &args[1], Bytes::from(data), Some(args));
    }
    Ok(Reply::Array(replies))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_bits_in_spans() {
        let data = [0xFFu8, 0x0F, 0x80];
        assert_eq!(count_ones(&data, 0, 23), 13);
        assert_eq!(count_ones(&data, 4, 11), 4);
        assert_eq!(count_ones(&data, 12, 16), 5);
        assert_eq!(count_ones(&data, 17, 23), 0);
    }

    #[test]
    fn fields_read_write_and_wrap() {
        let mut data = vec![0u8; 4];
        let i8f = Field { signed: true, bits: 8 };
        i8f.write(&mut data, 4, -2);
        assert_eq!(i8f.read(&data, 4), -2);
        assert_eq!(data[..2], [0x0F, 0xE0]);
        let u4 = Field { signed: false, bits: 4 };
        assert_eq!(u4.wrap(17), 1);
        assert_eq!(i8f.wrap(128), -128);
        assert_eq!(settle(u4, 20, Overflow::Sat), Some(15));
        assert_eq!(settle(i8f, -200, Overflow::Sat), Some(-128));
        assert_eq!(settle(i8f, 200, Overflow::Fail), None);
    }
}
