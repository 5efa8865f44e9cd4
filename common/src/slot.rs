//! Hash slots: CRC16-XMODEM of the key (or of its hash tag) mod 16384, as the Redis Cluster
//! spec defines them. Gateway and datanode both route by this one function.

/// Number of hash slots in every replication group.
pub const SLOT_COUNT: u16 = 16384;

/// CRC16-XMODEM (polynomial 0x1021, initial value 0), the checksum Redis Cluster uses.
/// Eight bytes per step (slicing-by-8): every command's key goes through it in the gateway,
/// where a byte at a time, each step waiting on the last, was ~3 % of a pipelined GET.
pub fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let t = &CRC16_SLICES;
        crc = t[7][(c[0] ^ (crc >> 8) as u8) as usize]
            ^ t[6][(c[1] ^ crc as u8) as usize]
            ^ t[5][c[2] as usize]
            ^ t[4][c[3] as usize]
            ^ t[3][c[4] as usize]
            ^ t[2][c[5] as usize]
            ^ t[1][c[6] as usize]
            ^ t[0][c[7] as usize];
    }
    for &byte in chunks.remainder() {
        crc = (crc << 8) ^ CRC16_SLICES[0][(((crc >> 8) as u8) ^ byte) as usize];
    }
    crc
}

/// The part of a key that is hashed: the text between the first `{` and the next `}` when
/// it is non-empty, otherwise the whole key.
pub fn hash_tag(key: &[u8]) -> &[u8] {
    if let Some(open) = key.iter().position(|&b| b == b'{') {
        if let Some(len) = key[open + 1..].iter().position(|&b| b == b'}') {
            if len > 0 {
                return &key[open + 1..open + 1 + len];
            }
        }
    }
    key
}

/// The hash slot of a key.
pub fn key_slot(key: &[u8]) -> u16 {
    crc16(hash_tag(key)) & (SLOT_COUNT - 1)
}

/// A set of hash slots (a 2 KB bitmap): which slots a node group owns.
#[derive(Clone, PartialEq, Eq)]
pub struct SlotSet {
    bits: Box<[u64; SLOT_COUNT as usize / 64]>,
}

impl std::fmt::Debug for SlotSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SlotSet({} slots)", self.len())
    }
}

impl SlotSet {
    pub fn all() -> SlotSet {
        SlotSet { bits: Box::new([u64::MAX; SLOT_COUNT as usize / 64]) }
    }

    /// The slots of inclusive `ranges` (out-of-range ends are clipped).
    pub fn from_ranges(ranges: impl IntoIterator<Item = (u16, u16)>) -> SlotSet {
        let mut set = SlotSet { bits: Box::new([0; SLOT_COUNT as usize / 64]) };
        for (a, b) in ranges {
            for slot in a..=b.min(SLOT_COUNT - 1) {
                set.bits[slot as usize / 64] |= 1 << (slot % 64);
            }
        }
        set
    }

    pub fn contains(&self, slot: u16) -> bool {
        slot < SLOT_COUNT && self.bits[slot as usize / 64] & (1 << (slot % 64)) != 0
    }

    pub fn len(&self) -> usize {
        self.bits.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Whether every slot of `other` is in this set.
    pub fn contains_all(&self, other: &SlotSet) -> bool {
        self.bits.iter().zip(other.bits.iter()).all(|(a, b)| b & !a == 0)
    }

    /// Removes every slot of `other`.
    pub fn remove_all(&mut self, other: &SlotSet) {
        for (a, b) in self.bits.iter_mut().zip(other.bits.iter()) {
            *a &= !b;
        }
    }

    /// Adds (or, with `on` false, removes) the slots `first..=last`.
    pub fn set_range(&mut self, first: u16, last: u16, on: bool) {
        for slot in first..=last.min(SLOT_COUNT - 1) {
            let (w, bit) = (slot as usize / 64, 1u64 << (slot % 64));
            if on {
                self.bits[w] |= bit;
            } else {
                self.bits[w] &= !bit;
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.bits.iter().all(|&w| w == 0)
    }
}

/// Splits the slots evenly over `shards` node groups, as ElastiCache and `redis-cli
/// --cluster create` do: the first `16384 % shards` ranges get one slot more.
pub fn even_ranges(shards: usize) -> Vec<(u16, u16)> {
    let shards = shards.clamp(1, SLOT_COUNT as usize);
    let (base, extra) = (SLOT_COUNT as usize / shards, SLOT_COUNT as usize % shards);
    let mut start = 0usize;
    (0..shards)
        .map(|i| {
            let len = base + usize::from(i < extra);
            let range = (start as u16, (start + len - 1) as u16);
            start += len;
            range
        })
        .collect()
}

/// Parses ElastiCache's slot text ("0-5460", "0-100,200-300", "7"): inclusive ranges.
pub fn parse_ranges(text: &str) -> Result<Vec<(u16, u16)>, String> {
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let parse = |t: &str| t.trim().parse::<u16>().ok().filter(|&s| s < SLOT_COUNT);
        match (parse(a), parse(b)) {
            (Some(a), Some(b)) if a <= b => out.push((a, b)),
            _ => return Err(format!("'{part}' is not a slot range within 0-16383")),
        }
    }
    Ok(out)
}

const fn make_table() -> [u16; 256] {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
}

/// Table k: the CRC of a byte followed by k zero bytes.
const fn make_slices() -> [[u16; 256]; 8] {
    let mut t = [[0u16; 256]; 8];
    t[0] = make_table();
    let mut k = 1;
    while k < 8 {
        let mut i = 0;
        while i < 256 {
            let prev = t[k - 1][i];
            t[k][i] = (prev << 8) ^ t[0][(prev >> 8) as usize];
            i += 1;
        }
        k += 1;
    }
    t
}

static CRC16_SLICES: [[u16; 256]; 8] = make_slices();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc16_matches_the_cluster_spec_vector() {
        // The Redis Cluster specification: the output of CRC16 for "123456789" is 0x31C3.
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(crc16(b""), 0);
    }

    /// The definition, a bit at a time.
    fn crc16_bitwise(data: &[u8]) -> u16 {
        let mut crc: u16 = 0;
        for &byte in data {
            crc ^= u16::from(byte) << 8;
            for _ in 0..8 {
                crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
            }
        }
        crc
    }

    #[test]
    fn crc16_matches_its_definition_at_every_length() {
        let data: Vec<u8> = (0..300u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        for start in 0..9 {
            for end in start..data.len() {
                assert_eq!(crc16(&data[start..end]), crc16_bitwise(&data[start..end]), "{start}..{end}");
            }
        }
    }

    #[test]
    fn slots_match_redis() {
        // Values as returned by `CLUSTER KEYSLOT` on a real Redis.
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"bar"), 5061);
        assert_eq!(key_slot(b"hello"), 866);
        assert_eq!(key_slot(b"key"), 12539);
        assert_eq!(key_slot(b""), 0);
    }

    #[test]
    fn hash_tags_follow_the_spec() {
        // Examples from the spec's "Hash tags" section.
        assert_eq!(hash_tag(b"{user1000}.following"), b"user1000");
        assert_eq!(hash_tag(b"foo{}{bar}"), b"foo{}{bar}");
        assert_eq!(hash_tag(b"foo{{bar}}zap"), b"{bar");
        assert_eq!(hash_tag(b"foo{bar}{zap}"), b"bar");
        assert_eq!(hash_tag(b"{}"), b"{}");
        assert_eq!(hash_tag(b"no-tag"), b"no-tag");
        assert_eq!(hash_tag(b"open{only"), b"open{only");
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"{user1000}.followers"));
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
    }

    #[test]
    fn slots_are_in_range() {
        for i in 0..10_000u32 {
            assert!(key_slot(format!("key:{i}").as_bytes()) < SLOT_COUNT);
        }
    }

    #[test]
    fn even_ranges_cover_every_slot_once() {
        for n in [1usize, 2, 3, 5, 7, 500] {
            let r = even_ranges(n);
            assert_eq!(r.len(), n);
            assert_eq!(r[0].0, 0);
            assert_eq!(r[n - 1].1, SLOT_COUNT - 1);
            for w in r.windows(2) {
                assert_eq!(w[0].1 + 1, w[1].0);
            }
        }
        assert_eq!(even_ranges(3), vec![(0, 5461), (5462, 10922), (10923, 16383)]);
        assert_eq!(parse_ranges("0-5460, 7"), Ok(vec![(0, 5460), (7, 7)]));
        let set = SlotSet::from_ranges([(0, 10), (16383, 16383)]);
        assert!(set.contains(0) && set.contains(10) && !set.contains(11) && set.contains(16383));
        assert_eq!((set.len(), SlotSet::all().len()), (12, 16384));
        assert!(parse_ranges("5-1").is_err() && parse_ranges("0-16384").is_err() && parse_ranges("x").is_err());
    }
}
