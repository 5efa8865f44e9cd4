//! HyperLogLog as Redis lays it out, so estimates match Redis's for the same elements and the
//! string value is one Redis itself can read (migration by DUMP/GET works both ways).
//!
//! 16384 six-bit registers indexed by the low 14 bits of MurmurHash64A (seed 0xadc83b19); a
//! register holds the position of the first set bit of the remaining 50 bits. The string is a
//! 16-byte header ("HYLL", encoding, 3 unused bytes, an 8-byte cached cardinality whose top
//! bit marks it stale) and the registers. Ferrocache writes the dense encoding (12 KiB) and
//! reads both dense and Redis's sparse encoding. The estimator is Redis's (Ertl's improved
//! raw estimator, arXiv:1702.01284).

pub const REGISTERS: usize = 1 << 14;
const P: u32 = 14;
const Q: u32 = 64 - P;
const REGISTER_MAX: u8 = 63;
const HEADER: usize = 16;
const DENSE_BYTES: usize = REGISTERS * 6 / 8;
const ENCODING_DENSE: u8 = 0;
const ENCODING_SPARSE: u8 = 1;

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

/// The string is not a HyperLogLog.
#[derive(Debug, PartialEq, Eq)]
pub struct NotHll;

impl Hll {
    /// Reads a dense or sparse Redis HLL string.
    pub fn decode(data: &[u8]) -> Result<Hll, NotHll> {
        if data.len() < HEADER || &data[..4] != b"HYLL" {
            return Err(NotHll);
        }
        let body = &data[HEADER..];
        match data[4] {
            ENCODING_DENSE if body.len() == DENSE_BYTES => {
                let registers = (0..REGISTERS).map(|i| dense_get(body, i)).collect();
                Ok(Hll { registers })
            }
            ENCODING_SPARSE => decode_sparse(body),
            _ => Err(NotHll),
        }
    }

    /// The dense Redis encoding, with the cached cardinality marked stale.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![0u8; HEADER + DENSE_BYTES];
        out[..4].copy_from_slice(b"HYLL");
        out[4] = ENCODING_DENSE;
        out[15] = 0x80;
        let body = &mut out[HEADER..];
        for (i, &v) in self.registers.iter().enumerate() {
            dense_set(body, i, v);
        }
        out
    }

    /// Adds one element; true when a register changed.
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

impl Hll {
    pub fn registers(&self) -> &[u8] {
        &self.registers
    }
}

/// Whether a HyperLogLog string is in the sparse encoding (None: not a HyperLogLog).
pub fn is_sparse(data: &[u8]) -> Option<bool> {
    Hll::decode(data).ok()?;
    Some(data[4] == ENCODING_SPARSE)
}

/// PFDEBUG DECODE: a sparse string's opcodes as Redis prints them (`z:` ZERO, `Z:` XZERO,
/// `v:value,run` VAL); None when it is not sparse.
pub fn describe_sparse(data: &[u8]) -> Option<String> {
    if is_sparse(data) != Some(true) {
        return None;
    }
    let body = &data[HEADER..];
    let mut out = Vec::new();
    let mut i = 0;
    while i < body.len() {
        let op = body[i];
        if op & 0xC0 == 0 {
            out.push(format!("z:{}", (op & 0x3F) as usize + 1));
            i += 1;
        } else if op & 0xC0 == 0x40 {
            let next = *body.get(i + 1)? as usize;
            out.push(format!("Z:{}", ((((op & 0x3F) as usize) << 8) | next) + 1));
            i += 2;
        } else {
            out.push(format!("v:{},{}", ((op >> 2) & 0x1F) + 1, (op & 0x03) + 1));
            i += 1;
        }
    }
    Some(out.join(" "))
}

/// PFSELFTEST: register round trips through the encoding and estimates within Redis's
/// error bound; the first failure, if any.
pub fn self_test() -> Result<(), String> {
    let mut h = Hll::default();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for r in h.registers.iter_mut() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        *r = (seed % (REGISTER_MAX as u64 + 1)) as u8;
    }
    if Hll::decode(&h.encode()).as_ref() != Ok(&h) {
        return Err("TESTFAILED Register error".into());
    }
    let mut h = Hll::default();
    let relative = 1.04 / (REGISTERS as f64).sqrt();
    for n in 1..=100_000u64 {
        h.add(&n.to_le_bytes());
        if n % 1000 == 0 || n < 1000 {
            let estimate = h.count() as f64;
            // Redis's bound: 5 standard errors past 10k elements, 6 below.
            let tolerance = if n < 10_000 { relative * 6.0 } else { relative * 5.0 };
            if (estimate - n as f64).abs() > n as f64 * tolerance + 1.0 {
                return Err(format!("TESTFAILED Too big error. card:{n} abserr:{}", (estimate - n as f64).abs()));
            }
        }
    }
    Ok(())
}

/// Redis's sparse opcodes: ZERO `00xxxxxx`, XZERO `01xxxxxx yyyyyyyy`, VAL `1vvvvvxx`.
fn decode_sparse(body: &[u8]) -> Result<Hll, NotHll> {
    let mut registers = Vec::with_capacity(REGISTERS);
    let mut i = 0;
    while i < body.len() {
        let op = body[i];
        let (value, run) = if op & 0xC0 == 0 {
            i += 1;
            (0, (op & 0x3F) as usize + 1)
        } else if op & 0xC0 == 0x40 {
            let next = *body.get(i + 1).ok_or(NotHll)?;
            i += 2;
            (0, (((op & 0x3F) as usize) << 8 | next as usize) + 1)
        } else {
            i += 1;
            (((op >> 2) & 0x1F) + 1, (op & 0x03) as usize + 1)
        };
        if registers.len() + run > REGISTERS {
            return Err(NotHll);
        }
        registers.extend(std::iter::repeat_n(value, run));
    }
    if registers.len() != REGISTERS {
        return Err(NotHll);
    }
    Ok(Hll { registers })
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
    fn estimates_are_close_and_round_trip() {
        let mut h = Hll::default();
        assert_eq!(h.count(), 0);
        for i in 0..100_000 {
            h.add(format!("element:{i}").as_bytes());
        }
        let n = h.count() as f64;
        assert!((n - 100_000.0).abs() / 100_000.0 < 0.02, "estimate {n}");
        let encoded = h.encode();
        assert_eq!(encoded.len(), 12304);
        assert_eq!(Hll::decode(&encoded), Ok(h.clone()));
        assert_eq!(Hll::decode(b"HYLLnope"), Err(NotHll));
        assert_eq!(Hll::decode(b"not an hll at all"), Err(NotHll));
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
