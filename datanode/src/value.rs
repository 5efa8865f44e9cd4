//! Values a key can hold, and their byte encoding (used by storage and full syncs):
//! one type tag byte, then the payload.

use std::collections::VecDeque;

use bytes::Bytes;

use crate::set::Set;
use crate::stream::Stream;
use crate::strval::Str;
use crate::zset::SortedSet;

/// A hash's fields in insertion order (Redis's small hashes are listpacks, which list their
/// fields in that order; a field's removal keeps the others' order while the hash is small).
pub type Hash = indexmap::IndexMap<Bytes, Bytes>;

/// Up to this many fields, removing one keeps the order of the rest (Redis's
/// hash-max-listpack-entries default); beyond, Redis's order is its hash table's anyway and
/// a removal costs O(1).
pub const SMALL_HASH: usize = 128;

/// Removes `field` from `h`, keeping the order of the others while the hash is small.
pub fn hash_remove(h: &mut Hash, field: &[u8]) -> Option<Bytes> {
    if h.len() <= SMALL_HASH {
        h.shift_remove(field)
    } else {
        h.swap_remove(field)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(Str),
    /// Boxed, like Set and ZSet: keeps `Value` (and every string key's entry) small.
    Hash(Box<Hash>),
    List(VecDeque<Bytes>),
    Set(Box<Set>),
    /// Boxed: most keys are strings, and the enum is as large as its largest variant.
    ZSet(Box<SortedSet>),
    Stream(Box<Stream>),
}

const TAG_STRING: u8 = 0;
const TAG_HASH: u8 = 1;
const TAG_LIST: u8 = 2;
const TAG_SET: u8 = 3;
const TAG_ZSET: u8 = 4;
const TAG_STREAM: u8 = 5;
/// A set in insertion order (Redis's listpack encoding), rebuilt exactly.
const TAG_SET_LISTPACK: u8 = 6;
/// A set that is a hash table however small it has become (Redis never converts back).
const TAG_SET_HASHED: u8 = 7;

/// Appends a count and length-prefixed byte strings.
fn encode_items<'a>(out: &mut Vec<u8>, count: usize, items: impl Iterator<Item = &'a Bytes>) {
    out.extend_from_slice(&(count as u32).to_be_bytes());
    for item in items {
        out.extend_from_slice(&(item.len() as u32).to_be_bytes());
        out.extend_from_slice(item);
    }
}

/// Reads what [`encode_items`] wrote.
fn decode_items(mut cur: &[u8]) -> Result<Vec<Bytes>, DecodeError> {
    let mut take = |n: usize| -> Result<&[u8], DecodeError> {
        if cur.len() < n {
            return Err(DecodeError("truncated collection"));
        }
        let (a, b) = cur.split_at(n);
        cur = b;
        Ok(a)
    };
    let len = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
    let count = len(take(4)?);
    let mut items = Vec::with_capacity(count.min(1 << 16));
    for _ in 0..count {
        let n = len(take(4)?);
        items.push(Bytes::copy_from_slice(take(n)?));
    }
    Ok(items)
}

fn decode_zset(mut cur: &[u8]) -> Result<Value, DecodeError> {
    let mut take = |n: usize| -> Result<&[u8], DecodeError> {
        if cur.len() < n {
            return Err(DecodeError("truncated sorted set"));
        }
        let (a, b) = cur.split_at(n);
        cur = b;
        Ok(a)
    };
    let word = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
    let count = word(take(4)?);
    let mut z = SortedSet::new();
    for _ in 0..count {
        let s = take(8)?;
        let score = f64::from_be_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]]);
        if score.is_nan() {
            return Err(DecodeError("NaN score"));
        }
        let n = word(take(4)?);
        z.insert(Bytes::copy_from_slice(take(n)?), score);
    }
    Ok(Value::ZSet(Box::new(z)))
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("corrupt value encoding: {0}")]
pub struct DecodeError(pub &'static str);

impl Value {
    /// The name TYPE and SCAN TYPE use.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::Hash(_) => "hash",
            Value::List(_) => "list",
            Value::Set(_) => "set",
            Value::ZSet(_) => "zset",
            Value::Stream(_) => "stream",
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode_into(&mut out);
        out
    }

    fn encoded_len(&self) -> usize {
        match self {
            Value::Str(b) => 1 + b.len(),
            Value::Hash(h) => 5 + h.iter().map(|(k, v)| 8 + k.len() + v.len()).sum::<usize>(),
            Value::List(l) => 5 + l.iter().map(|v| 4 + v.len()).sum::<usize>(),
            Value::Set(set) => 5 + set.iter().map(|v| 4 + v.len()).sum::<usize>(),
            Value::ZSet(z) => 5 + z.iter().map(|(m, _)| 12 + m.len()).sum::<usize>(),
            Value::Stream(st) => 1 + st.encoded_len(),
        }
    }

    /// Appends the encoding to `out` (no intermediate buffer: storage images write many).
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.reserve(self.encoded_len());
        match self {
            Value::Str(b) => {
                out.push(TAG_STRING);
                out.extend_from_slice(b);
            }
            Value::Hash(h) => {
                out.push(TAG_HASH);
                out.extend_from_slice(&(h.len() as u32).to_be_bytes());
                for (k, v) in h.iter() {
                    for part in [k, v] {
                        out.extend_from_slice(&(part.len() as u32).to_be_bytes());
                        out.extend_from_slice(part);
                    }
                }
            }
            Value::List(l) => {
                out.push(TAG_LIST);
                encode_items(out, l.len(), l.iter());
            }
            Value::Set(set) => {
                // An intset is rebuilt from its ascending members by the plain tag, which
                // older nodes also read.
                out.push(match **set {
                    Set::Ints(_) => TAG_SET,
                    Set::Small(_) => TAG_SET_LISTPACK,
                    Set::Hashed(_) => TAG_SET_HASHED,
                });
                let members: Vec<Bytes> = set.iter().collect();
                encode_items(out, members.len(), members.iter());
            }
            Value::ZSet(z) => {
                // Ascending order, so a decoder could rebuild the tree without comparisons.
                out.push(TAG_ZSET);
                out.extend_from_slice(&(z.len() as u32).to_be_bytes());
                for (member, score) in z.iter() {
                    out.extend_from_slice(&score.to_be_bytes());
                    out.extend_from_slice(&(member.len() as u32).to_be_bytes());
                    out.extend_from_slice(member);
                }
            }
            Value::Stream(st) => {
                out.push(TAG_STREAM);
                st.encode_into(out);
            }
        }
    }

    pub fn decode(data: &[u8]) -> Result<Value, DecodeError> {
        match data.split_first() {
            Some((&TAG_STRING, rest)) => Ok(Value::Str(Str::copy_from(rest))),
            Some((&TAG_HASH, rest)) => {
                let mut cur = rest;
                let mut take = |n: usize| -> Result<&[u8], DecodeError> {
                    if cur.len() < n {
                        return Err(DecodeError("truncated hash"));
                    }
                    let (a, b) = cur.split_at(n);
                    cur = b;
                    Ok(a)
                };
                let len = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
                let count = len(take(4)?);
                let mut h = Hash::with_capacity(count.min(1 << 16));
                for _ in 0..count {
                    let klen = len(take(4)?);
                    let k = Bytes::copy_from_slice(take(klen)?);
                    let vlen = len(take(4)?);
                    let v = Bytes::copy_from_slice(take(vlen)?);
                    h.insert(k, v);
                }
                Ok(Value::Hash(Box::new(h)))
            }
            Some((&TAG_LIST, rest)) => Ok(Value::List(decode_items(rest)?.into())),
            Some((&TAG_SET, rest)) => {
                let members = decode_items(rest)?;
                let len = members.len();
                Ok(Value::Set(Box::new(Set::from_ordered(members, len))))
            }
            Some((&TAG_SET_LISTPACK, rest)) => Ok(Value::Set(Box::new(Set::from_listpack(decode_items(rest)?)))),
            Some((&TAG_SET_HASHED, rest)) => {
                Ok(Value::Set(Box::new(Set::Hashed(decode_items(rest)?.into_iter().collect()))))
            }
            Some((&TAG_ZSET, rest)) => decode_zset(rest),
            Some((&TAG_STREAM, rest)) => {
                Stream::decode(rest).map(|st| Value::Stream(Box::new(st))).ok_or(DecodeError("corrupt stream"))
            }
            Some(_) => Err(DecodeError("unknown type tag")),
            None => Err(DecodeError("empty value")),
        }
    }

    /// A hash, list or set with nothing left in it (such a key is deleted). An empty
    /// stream stays, as in Redis: it keeps its last ID and groups.
    pub fn is_empty_collection(&self) -> bool {
        match self {
            Value::Str(_) | Value::Stream(_) => false,
            Value::Hash(h) => h.is_empty(),
            Value::List(l) => l.is_empty(),
            Value::Set(s) => s.is_empty(),
            Value::ZSet(z) => z.is_empty(),
        }
    }

    pub fn as_hash(&self) -> Option<&Hash> {
        if let Value::Hash(h) = self {
            Some(h)
        } else {
            None
        }
    }

    pub fn as_hash_mut(&mut self) -> Option<&mut Hash> {
        if let Value::Hash(h) = self {
            Some(h)
        } else {
            None
        }
    }

    pub fn as_list(&self) -> Option<&VecDeque<Bytes>> {
        if let Value::List(l) = self {
            Some(l)
        } else {
            None
        }
    }

    pub fn as_list_mut(&mut self) -> Option<&mut VecDeque<Bytes>> {
        if let Value::List(l) = self {
            Some(l)
        } else {
            None
        }
    }

    pub fn as_set(&self) -> Option<&Set> {
        if let Value::Set(s) = self {
            Some(s)
        } else {
            None
        }
    }

    pub fn as_set_mut(&mut self) -> Option<&mut Set> {
        if let Value::Set(s) = self {
            Some(s)
        } else {
            None
        }
    }

    pub fn as_zset(&self) -> Option<&SortedSet> {
        if let Value::ZSet(z) = self {
            Some(z)
        } else {
            None
        }
    }

    pub fn as_zset_mut(&mut self) -> Option<&mut SortedSet> {
        if let Value::ZSet(z) = self {
            Some(z)
        } else {
            None
        }
    }

    pub fn as_stream(&self) -> Option<&Stream> {
        if let Value::Stream(st) = self {
            Some(st)
        } else {
            None
        }
    }

    pub fn as_stream_mut(&mut self) -> Option<&mut Stream> {
        if let Value::Stream(st) = self {
            Some(st)
        } else {
            None
        }
    }

    /// Approximate bytes held, for INFO memory.
    ///
    /// Collections are sampled, as Redis's MEMORY USAGE samples them: the average of the
    /// first few elements times the count, so counting costs O(1) however big they grow
    /// (every write to a key recounts it).
    pub fn approx_size(&self) -> usize {
        const SAMPLES: usize = 8;
        fn sampled(len: usize, sizes: impl Iterator<Item = usize>) -> usize {
            let (n, total) = sizes.take(SAMPLES).fold((0, 0), |(n, t), s| (n + 1, t + s));
            (total * len).checked_div(n).unwrap_or(0)
        }
        match self {
            Value::Str(b) => b.len(),
            Value::Hash(h) => sampled(h.len(), h.iter().map(|(k, v)| k.len() + v.len() + 48)),
            Value::List(l) => sampled(l.len(), l.iter().map(|v| v.len() + 24)),
            Value::Set(set) => sampled(set.len(), set.member_sizes()),
            Value::ZSet(z) => sampled(z.len(), z.iter().map(|(m, _)| m.len() + 96)),
            Value::Stream(st) => st.approx_size(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_stay_small() {
        // Entries embed a Value: an inline string must not make every entry bigger.
        assert!(std::mem::size_of::<Value>() <= 40, "{}", std::mem::size_of::<Value>());
    }

    #[test]
    fn round_trip() {
        let mut h = Hash::new();
        h.insert(Bytes::from_static(b"f"), Bytes::from_static(b"v"));
        h.insert(Bytes::new(), Bytes::from_static(b"\0"));
        for v in [
            Value::Str(Str::copy_from(b"")),
            Value::Str(Str::copy_from(b"hello\0\xff")),
            Value::Str(Str::copy_from(&[9; 100])),
            Value::Hash(Box::new(h)),
            Value::Hash(Box::default()),
            Value::List(VecDeque::from([Bytes::from_static(b"a"), Bytes::new()])),
            Value::Set(Box::new(Set::from_ordered([Bytes::from_static(b"x"), Bytes::from_static(b"y")], 2))),
            Value::Set(Box::new(Set::from_ordered([Bytes::from_static(b"3"), Bytes::from_static(b"-1")], 2))),
            // Integers after a string: only the listpack tag keeps this order.
            Value::Set(Box::new(Set::Small(["2", "x", "1"].map(|m| Bytes::copy_from_slice(m.as_bytes())).to_vec()))),
            Value::Set(Box::new(Set::Hashed([Bytes::from_static(b"1")].into()))),
            Value::ZSet(Box::new({
                let mut z = SortedSet::new();
                z.insert(Bytes::from_static(b"a"), f64::NEG_INFINITY);
                z.insert(Bytes::from_static(b"b"), -0.5);
                z
            })),
        ] {
            assert_eq!(Value::decode(&v.encode()), Ok(v));
        }
        assert!(Value::decode(&[]).is_err());
        assert!(Value::decode(&[99, 1]).is_err());
        assert!(Value::decode(&[TAG_HASH, 0, 0, 0, 5, 0]).is_err(), "truncated hash");
    }
}
