//! HyperLogLog as Redis lays it out, so estimates match Redis's for the same elements and the
//! string value is byte for byte the one Redis would hold (migration by DUMP/GET works both
//! ways, GETRANGE of the header answers the same).
//!
//! 16384 six-bit registers indexed by the low 14 bits of MurmurHash64A (seed 0xadc83b19); a
//! register holds the position of the first set bit of the remaining 50 bits. The string is a
//! 16-byte header ("HYLL", encoding, 3 unused bytes, an 8-byte cached cardinality whose top
//! bit marks it stale) and the registers, in one of two encodings:
//! - sparse: run lengths (ZERO `00xxxxxx`, XZERO `01xxxxxx yyyyyyyy`, VAL `1vvvvvxx`), a few
//!   bytes for a small HLL. New HLLs start sparse and are updated in place the way Redis
//!   updates them (split the run, merge equal neighbours), so the bytes match Redis's;
//! - dense: 12 KiB of packed registers, once a register exceeds 32 or the sparse string
//!   would outgrow hll-sparse-max-bytes.
//!
//! The estimator is Redis's (Ertl's improved raw estimator, arXiv:1702.01284).

pub const REGISTERS: usize = 1 << 14;
const P: u32 = 14;
const Q: u32 = 64 - P;
const REGISTER_MAX: u8 = 63;
const HEADER: usize = 16;
const DENSE_BYTES: usize = REGISTERS * 6 / 8;
const ENCODING_DENSE: u8 = 0;
const ENCODING_SPARSE: u8 = 1;
/// The largest value and run a sparse VAL opcode holds; the longest ZERO and XZERO runs.
const VAL_MAX_VALUE: u8 = 32;
const VAL_MAX_LEN: usize = 4;
const ZERO_MAX_LEN: usize = 64;
const XZERO_MAX_LEN: usize = 16384;
/// Redis's hll-sparse-max-bytes default.
pub const DEFAULT_SPARSE_MAX_BYTES: usize = 3000;

/// Why a string cannot be used as a HyperLogLog; Display is Redis's error line.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum HllError {
    /// Not a HyperLogLog by its header (magic, encoding, dense length).
    #[error("WRONGTYPE Key is not a valid HyperLogLog string value.")]
    NotHll,
    /// A sparse HyperLogLog whose runs do not cover the registers exactly.
    #[error("INVALIDOBJ Corrupted HLL object detected")]
    Corrupt,
}

/// A HyperLogLog string's encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Dense,
    Sparse,
}

/// The encoding a string's header declares, checked as Redis checks a value before any
/// HyperLogLog command uses it (the sparse runs are checked where they are read).
pub fn encoding(data: &[u8]) -> Result<Encoding, HllError> {
    if data.len() < HEADER || &data[..4] != b"HYLL" {
        return Err(HllError::NotHll);
    }
    match data[4] {
        ENCODING_DENSE if data.len() == HEADER + DENSE_BYTES => Ok(Encoding::Dense),
        ENCODING_SPARSE => Ok(Encoding::Sparse),
        _ => Err(HllError::NotHll),
    }
}

/// A new HyperLogLog as Redis creates it: sparse, every register zero, no cached cardinality.
pub fn new_sparse() -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + 2 * REGISTERS.div_ceil(XZERO_MAX_LEN));
    out.extend_from_slice(b"HYLL");
    out.push(ENCODING_SPARSE);
    out.resize(HEADER, 0);
    let mut left = REGISTERS;
    while left > 0 {
        let run = left.min(XZERO_MAX_LEN);
        out.extend_from_slice(&xzero(run));
        left -= run;
    }
    out
}

/// Marks the cached cardinality stale (after a change).
pub fn invalidate_cache(data: &mut [u8]) {
    data[15] |= 0x80;
}

/// The cached cardinality, when it is not stale.
pub fn cached_count(data: &[u8]) -> Option<u64> {
    let card = u64::from_le_bytes(data[8..HEADER].try_into().ok()?);
    (data[15] & 0x80 == 0).then_some(card)
}

/// The header bytes that cache `count` (little-endian, at offset 8).
pub fn cache_bytes(count: u64) -> [u8; 8] {
    count.to_le_bytes()
}

/// Adds one element to a HyperLogLog string in place: true when a register grew. A sparse
/// string turns dense when the register needs more than 32 or the string would grow past
/// `sparse_max` bytes. Corrupt: sparse runs that end before the element's register.
pub fn add(data: &mut Vec<u8>, element: &[u8], sparse_max: usize) -> Result<bool, HllError> {
    let (index, count) = register_of(element);
    set(data, index, count, sparse_max)
}

/// Raises register `index` to `count` (never lowers it), as [`add`] does.
pub fn set(data: &mut Vec<u8>, index: usize, count: u8, sparse_max: usize) -> Result<bool, HllError> {
    match encoding(data)? {
        Encoding::Dense => Ok(dense_raise(&mut data[HEADER..], index, count)),
        Encoding::Sparse => sparse_set(data, index, count, sparse_max),
    }
}

/// Rewrites a sparse string dense (PFDEBUG TODENSE, a merge with a dense input); the header,
/// cached cardinality included, is kept. False when it already was dense.
pub fn make_dense(data: &mut Vec<u8>) -> Result<bool, HllError> {
    if encoding(data)? == Encoding::Dense {
        return Ok(false);
    }
    let registers = decode_sparse(&data[HEADER..])?;
    let mut dense = vec![0u8; HEADER + DENSE_BYTES];
    dense[..HEADER].copy_from_slice(&data[..HEADER]);
    dense[4] = ENCODING_DENSE;
    for (i, &v) in registers.iter().enumerate() {
        if v != 0 {
            dense_set(&mut dense[HEADER..], i, v);
        }
    }
    *data = dense;
    Ok(true)
}

fn xzero(run: usize) -> [u8; 2] {
    let n = run - 1;
    [0x40 | (n >> 8) as u8, (n & 0xFF) as u8]
}

fn zero(run: usize) -> u8 {
    (run - 1) as u8
}

fn val(value: u8, run: usize) -> u8 {
    0x80 | ((value - 1) << 2) | (run - 1) as u8
}

/// One sparse opcode at `p`: (value, run, bytes). An XZERO cut short reads its second byte
/// as 0, as Redis does (its strings end in a NUL).
fn opcode(body: &[u8], p: usize) -> (u8, usize, usize) {
    let op = body[p];
    if op & 0xC0 == 0 {
        (0, (op & 0x3F) as usize + 1, 1)
    } else if op & 0xC0 == 0x40 {
        let low = body.get(p + 1).copied().unwrap_or(0) as usize;
        (0, ((((op & 0x3F) as usize) << 8) | low) + 1, 2)
    } else {
        (((op >> 2) & 0x1F) + 1, (op & 0x03) as usize + 1, 1)
    }
}

fn is_val(op: u8) -> bool {
    op & 0x80 != 0
}

/// Redis's in-place sparse update: find the run holding `index`; a VAL or ZERO run of one
/// register is rewritten, a longer run is split into up to three (before, the register,
/// after); then equal VAL neighbours near the change are merged. Redis's exact steps, so
/// the bytes come out as Redis's do.
fn sparse_set(data: &mut Vec<u8>, index: usize, count: u8, sparse_max: usize) -> Result<bool, HllError> {
    if count > VAL_MAX_VALUE {
        make_dense(data)?;
        return Ok(dense_raise(&mut data[HEADER..], index, count));
    }
    let end = data.len();
    let (mut p, mut first, mut prev) = (HEADER, 0usize, None);
    let (value, run, oplen) = loop {
        if p >= end {
            return Err(HllError::Corrupt);
        }
        let (value, run, oplen) = opcode(data, p);
        if index < first + run {
            break (value, run, oplen);
        }
        prev = Some(p);
        p += oplen;
        first += run;
    };
    if p + oplen > end {
        // An XZERO cut short: it reads, but there is no room to rewrite it.
        return Err(HllError::Corrupt);
    }
    let is_value = is_val(data[p]);
    if is_value && value >= count {
        return Ok(false);
    }
    if run == 1 && oplen == 1 {
        // A VAL or ZERO of one register: the new value takes its place.
        data[p] = val(count, 1);
    } else {
        let last = first + run - 1;
        let mut seq = [0u8; 5];
        let mut n = 0;
        let put_run = |seq: &mut [u8; 5], n: &mut usize, len: usize| {
            if is_value {
                seq[*n] = val(value, len);
                *n += 1;
            } else if len > ZERO_MAX_LEN {
                seq[*n..*n + 2].copy_from_slice(&xzero(len));
                *n += 2;
            } else {
                seq[*n] = zero(len);
                *n += 1;
            }
        };
        if index != first {
            put_run(&mut seq, &mut n, index - first);
        }
        seq[n] = val(count, 1);
        n += 1;
        if index != last {
            put_run(&mut seq, &mut n, last - index);
        }
        if n > oplen && data.len() + n - oplen > sparse_max {
            make_dense(data)?;
            return Ok(dense_raise(&mut data[HEADER..], index, count));
        }
        data.splice(p..p + oplen, seq[..n].iter().copied());
    }
    merge_neighbours(data, prev.unwrap_or(HEADER));
    Ok(true)
}

/// Merges adjacent VAL opcodes of one value whose runs fit one opcode, over at most five
/// opcodes from `p` (Redis looks no further: the change was local).
fn merge_neighbours(data: &mut Vec<u8>, mut p: usize) {
    let mut scan = 5;
    while p < data.len() && scan > 0 {
        scan -= 1;
        let op = data[p];
        if !is_val(op) {
            p += if op & 0xC0 == 0x40 { 2 } else { 1 };
            continue;
        }
        if data.get(p + 1).is_some_and(|&next| is_val(next)) {
            let (v1, r1, _) = opcode(data, p);
            let (v2, r2, _) = opcode(data, p + 1);
            if v1 == v2 && r1 + r2 <= VAL_MAX_LEN {
                data[p + 1] = val(v1, r1 + r2);
                data.remove(p);
                // The merged run may merge again with the one after it.
                continue;
            }
        }
        p += 1;
    }
}

/// Redis's MurmurHash64A (little-endian reads).
pub fn murmur64a(data: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h = seed ^ (data.len() as u64).wrapping_mul(M);
    let mut chunks = data.chunks_exact(8);
    for chunk in &mut chunks {
        let mut k =
            u64::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3], chunk[4], chunk[5], chunk[6], chunk[7]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        for (i, &b) in tail.iter().enumerate() {
            h ^= (b as u64) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// The register an element lands in and the value it proposes for it.
fn register_of(element: &[u8]) -> (usize, u8) {
    let hash = murmur64a(element, 0xadc8_3b19);
    let index = (hash & (REGISTERS as u64 - 1)) as usize;
    // The sentinel bit keeps the count within Q + 1.
    let rest = (hash >> P) | (1u64 << Q);
    (index, rest.trailing_zeros() as u8 + 1)
}

/// A HyperLogLog's registers, one byte each while in memory.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Hll {
    registers: Vec<u8>,
}

impl Default for Hll {
    fn default() -> Hll {
        Hll { registers: vec![0; REGISTERS] }
    }
}

impl Hll {
    /// Reads a dense or sparse Redis HLL string.
    pub fn decode(data: &[u8]) -> Result<Hll, HllError> {
        let body = &data[HEADER.min(data.len())..];
        match encoding(data)? {
            Encoding::Dense => Ok(Hll { registers: (0..REGISTERS).map(|i| dense_get(body, i)).collect() }),
            Encoding::Sparse => Ok(Hll { registers: decode_sparse(body)? }),
        }
    }

    /// Adds one element; true when a register changed (the model the in-place updates are
    /// checked against).
    pub fn add(&mut self, element: &[u8]) -> bool {
        let (index, count) = register_of(element);
        if self.registers[index] < count {
            self.registers[index] = count;
            true
        } else {
            false
        }
    }

    /// Takes the larger of each pair of registers (PFMERGE, multi-key PFCOUNT).
    pub fn merge(&mut self, other: &Hll) {
        for (mine, theirs) in self.registers.iter_mut().zip(&other.registers) {
            *mine = (*mine).max(*theirs);
        }
    }

    /// Redis's cardinality estimate.
    pub fn count(&self) -> u64 {
        let m = REGISTERS as f64;
        // Registers hold 6 bits; a valid HLL never exceeds Q + 1, but a corrupted string may
        // (Redis ignores the excess the same way).
        let mut histogram = [0u32; 64];
        for &r in &self.registers {
            histogram[(r & REGISTER_MAX) as usize] += 1;
        }
        let mut z = m * tau((m - histogram[Q as usize + 1] as f64) / m);
        for j in (1..=Q as usize).rev() {
            z += histogram[j] as f64;
            z *= 0.5;
        }
        z += m * sigma(histogram[0] as f64 / m);
        const ALPHA_INF: f64 = 0.721_347_520_444_481_7;
        (ALPHA_INF * m * m / z).round() as u64
    }
}

fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let (mut y, mut z) = (1.0, x);
    loop {
        x *= x;
        let previous = z;
        z += x * y;
        y += y;
        if previous == z {
            return z;
        }
    }
}

fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let (mut y, mut z) = (1.0, 1.0 - x);
    loop {
        x = x.sqrt();
        let previous = z;
        y *= 0.5;
        z -= (1.0 - x).powi(2) * y;
        if previous == z {
            return z / 3.0;
        }
    }
}

fn dense_get(body: &[u8], i: usize) -> u8 {
    let (byte, shift) = (i * 6 / 8, (i * 6) & 7);
    let b0 = body[byte] as u16;
    let b1 = body.get(byte + 1).copied().unwrap_or(0) as u16;
    (((b0 >> shift) | (b1 << (8 - shift))) & REGISTER_MAX as u16) as u8
}

fn dense_set(body: &mut [u8], i: usize, v: u8) {
    let (byte, shift) = (i * 6 / 8, (i * 6) & 7);
    let wide = (v as u16 & REGISTER_MAX as u16) << shift;
    body[byte] = (body[byte] & !((REGISTER_MAX as u16) << shift) as u8) | wide as u8;
    if let Some(next) = body.get_mut(byte + 1) {
        *next = (*next & !((REGISTER_MAX as u16) << shift >> 8) as u8) | (wide >> 8) as u8;
    }
}

/// Raises a dense register; true when it grew.
fn dense_raise(body: &mut [u8], i: usize, v: u8) -> bool {
    if dense_get(body, i) >= v {
        return false;
    }
    dense_set(body, i, v);
    true
}

impl Hll {
    pub fn registers(&self) -> &[u8] {
        &self.registers
    }
}

/// PFDEBUG DECODE: a sparse string's opcodes as Redis prints them (`z:` ZERO, `Z:` XZERO,
/// `v:value,run` VAL); None when it is not sparse.
pub fn describe_sparse(data: &[u8]) -> Option<String> {
    if encoding(data).ok()? != Encoding::Sparse {
        return None;
    }
    let mut out = Vec::new();
    let mut p = HEADER;
    while p < data.len() {
        let (value, run, len) = opcode(data, p);
        out.push(match (data[p] & 0xC0, len) {
            (0, _) => format!("z:{run}"),
            (_, 2) => format!("Z:{run}"),
            _ => format!("v:{value},{run}"),
        });
        p += len;
    }
    Some(out.join(" "))
}

/// PFSELFTEST: register round trips through the encoding and estimates within Redis's
/// error bound; the first failure, if any.
pub fn self_test() -> Result<(), String> {
    let mut body = vec![0u8; DENSE_BYTES];
    let mut expected = vec![0u8; REGISTERS];
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for (i, r) in expected.iter_mut().enumerate() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        *r = (seed % (REGISTER_MAX as u64 + 1)) as u8;
        dense_set(&mut body, i, *r);
    }
    if let Some(i) = (0..REGISTERS).find(|&i| dense_get(&body, i) != expected[i]) {
        return Err(format!("TESTFAILED Register {i} should be {} but is {}", expected[i], dense_get(&body, i)));
    }
    // The same elements into a HyperLogLog string (sparse, then dense) and into plain
    // registers: the same estimates, within Redis's error bound.
    let mut string = new_sparse();
    let mut model = Hll::default();
    let relative = 1.04 / (REGISTERS as f64).sqrt();
    for n in 1..=100_000u64 {
        add(&mut string, &n.to_le_bytes(), DEFAULT_SPARSE_MAX_BYTES).map_err(|e| e.to_string())?;
        model.add(&n.to_le_bytes());
        if n % 1000 == 0 || (n < 1000 && n % 10 == 0) {
            let estimate = model.count();
            let other = Hll::decode(&string).map_err(|e| e.to_string())?.count();
            if estimate != other {
                return Err(format!("TESTFAILED sparse/dense estimates disagree: {estimate} vs {other}"));
            }
            // Redis's bound: 5 standard errors past 10k elements, 6 below.
            let tolerance = if n < 10_000 { relative * 6.0 } else { relative * 5.0 };
            let error = (estimate as f64 - n as f64).abs();
            if error > n as f64 * tolerance + 1.0 {
                return Err(format!("TESTFAILED Too big error. card:{n} abserr:{error}"));
            }
        }
    }
    Ok(())
}

/// Every register of a sparse body; Corrupt unless the runs cover the registers exactly.
fn decode_sparse(body: &[u8]) -> Result<Vec<u8>, HllError> {
    let mut registers = Vec::with_capacity(REGISTERS);
    let mut p = 0;
    while p < body.len() {
        let (value, run, len) = opcode(body, p);
        if registers.len() + run > REGISTERS {
            return Err(HllError::Corrupt);
        }
        registers.extend(std::iter::repeat_n(value, run));
        p += len;
    }
    if registers.len() != REGISTERS {
        return Err(HllError::Corrupt);
    }
    Ok(registers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur_matches_reference_values() {
        // MurmurHash64A reference outputs (seed 0) for the empty input and short strings.
        assert_eq!(murmur64a(b"", 0), 0);
        assert_ne!(murmur64a(b"a", 0), murmur64a(b"b", 0));
        assert_ne!(murmur64a(b"12345678", 0xadc8_3b19), murmur64a(b"12345679", 0xadc8_3b19));
    }

    #[test]
    fn estimates_are_close_and_sparse_turns_dense() {
        let mut data = new_sparse();
        assert_eq!(Hll::decode(&data).unwrap().count(), 0);
        let mut reference = Hll::default();
        for i in 0..100_000 {
            let element = format!("element:{i}");
            add(&mut data, element.as_bytes(), DEFAULT_SPARSE_MAX_BYTES).unwrap();
            reference.add(element.as_bytes());
            if i == 100 {
                assert_eq!(encoding(&data), Ok(Encoding::Sparse));
                assert!(data.len() < 400, "{} bytes for 100 elements", data.len());
            }
        }
        assert_eq!(encoding(&data), Ok(Encoding::Dense));
        assert_eq!(data.len(), 12304);
        let decoded = Hll::decode(&data).unwrap();
        assert_eq!(decoded, reference);
        let n = decoded.count() as f64;
        assert!((n - 100_000.0).abs() / 100_000.0 < 0.02, "estimate {n}");
        assert_eq!(Hll::decode(b"HYLLnope"), Err(HllError::NotHll));
        assert_eq!(Hll::decode(b"not an hll at all"), Err(HllError::NotHll));
    }

    #[test]
    fn a_new_hll_is_redis_s_empty_sparse_string() {
        let mut expected = b"HYLL\x01\0\0\0\0\0\0\0\0\0\0\0".to_vec();
        expected.extend_from_slice(&[0x7F, 0xFF]);
        assert_eq!(new_sparse(), expected);
        assert_eq!(describe_sparse(&expected).unwrap(), "Z:16384");
    }

    #[test]
    fn the_same_elements_give_redis_s_bytes() {
        // redis-server 7: PFADD h a b c; GET h.
        let mut data = new_sparse();
        for e in [b"a", b"b", b"c"] {
            assert!(add(&mut data, e, DEFAULT_SPARSE_MAX_BYTES).unwrap());
        }
        invalidate_cache(&mut data);
        let redis = [
            &b"HYLL\x01\0\0\0\0\0\0\0\0\0\0\x80"[..],
            &[0x60, 0xF3, 0x80, 0x50, 0xB1, 0x84, 0x4B, 0xFB, 0x80, 0x42, 0x5A],
        ]
        .concat();
        assert_eq!(data, redis);
    }

    #[test]
    fn sparse_updates_split_and_merge_as_redis_does() {
        let mut data = new_sparse();
        let mut set_to_3 = |i| set(&mut data, i, 3, usize::MAX).unwrap();
        assert!(set_to_3(2));
        assert!(set_to_3(1));
        assert!(set_to_3(4));
        assert!(set_to_3(3));
        assert!(!set_to_3(3));
        assert!(set_to_3(0));
        // Redis merges only near the change, left to right: the run of five equal registers
        // ends up as 1 + 4, not 4 + 1.
        assert_eq!(describe_sparse(&data).unwrap(), "v:3,1 v:3,4 Z:16379");
        assert!(set(&mut data, 65, 2, usize::MAX).unwrap());
        assert_eq!(describe_sparse(&data).unwrap(), "v:3,1 v:3,4 z:60 v:2,1 Z:16318");
        assert!(set(&mut data, 200, 1, usize::MAX).unwrap());
        assert_eq!(describe_sparse(&data).unwrap(), "v:3,1 v:3,4 z:60 v:2,1 Z:134 v:1,1 Z:16183");
        // A value above 32 cannot be sparse.
        assert!(set(&mut data, 9, 33, usize::MAX).unwrap());
        assert_eq!(encoding(&data), Ok(Encoding::Dense));
        assert_eq!(&Hll::decode(&data).unwrap().registers()[..10], &[3, 3, 3, 3, 3, 0, 0, 0, 0, 33]);
    }

    #[test]
    fn a_sparse_string_past_the_limit_turns_dense() {
        let mut data = new_sparse();
        let mut i = 0;
        while encoding(&data) == Ok(Encoding::Sparse) {
            assert!(data.len() <= 40, "{} bytes", data.len());
            set(&mut data, i * 100, 1 + (i % 2) as u8, 40).unwrap();
            i += 1;
        }
        assert_eq!(Hll::decode(&data).unwrap().registers().iter().filter(|&&r| r != 0).count(), i);
    }

    #[test]
    fn corrupt_sparse_runs_are_told_apart_from_other_strings() {
        let mut data = new_sparse();
        data.extend_from_slice(b"hello");
        assert_eq!(Hll::decode(&data), Err(HllError::Corrupt));
        let mut short = new_sparse();
        short.pop();
        short.pop();
        assert_eq!(Hll::decode(&short), Err(HllError::Corrupt));
        assert_eq!(add(&mut short, b"x", 3000), Err(HllError::Corrupt));
        let mut wrong = new_sparse();
        wrong[4] = b'x';
        assert_eq!(encoding(&wrong), Err(HllError::NotHll));
    }

    #[test]
    fn small_counts_are_exact_enough() {
        let mut h = Hll::default();
        for e in ["a", "b", "c", "d", "a"] {
            h.add(e.as_bytes());
        }
        assert_eq!(h.count(), 4);
    }

    #[test]
    fn corrupted_registers_do_not_panic() {
        let mut dense = b"HYLL\x00\0\0\0\0\0\0\0\0\0\0\0".to_vec();
        dense.extend(std::iter::repeat_n(0xFFu8, DENSE_BYTES));
        let h = Hll::decode(&dense).expect("dense");
        assert!(h.registers.iter().all(|&r| r == 63));
        let _ = h.count();
    }

    #[test]
    fn reads_sparse_encoding() {
        // XZERO run of 16384: an empty sparse HLL, as Redis creates it.
        let mut empty = b"HYLL\x01\0\0\0\0\0\0\0\0\0\0\0".to_vec();
        empty.extend_from_slice(&[0x7F, 0xFF]);
        assert_eq!(Hll::decode(&empty), Ok(Hll::default()));
        // VAL 3 at register 0, then zeros.
        let mut one = b"HYLL\x01\0\0\0\0\0\0\0\0\0\0\0".to_vec();
        one.extend_from_slice(&[0x80 | (2 << 2), 0x7F, 0xFE]);
        let h = Hll::decode(&one).expect("valid");
        assert_eq!(h.registers[0], 3);
        assert_eq!(h.count(), 1);
    }
}
