//! A set, kept the way Redis 7.2 keeps it, because its encoding decides the order members
//! are listed in (SMEMBERS, SSCAN, SUNION ...): all-integer sets as a sorted array (intset:
//! ascending order), small sets as an array in insertion order (listpack), others as a hash
//! table (no order). A set moves up these encodings as Redis's does and never back down, so
//! a client sees the order redis-server would show. The arrays are also compact: eight bytes
//! a member for an intset.

use std::collections::HashSet;

use bytes::Bytes;

/// Redis's defaults: set-max-intset-entries, set-max-listpack-entries and
/// set-max-listpack-value.
pub const MAX_INTSET_ENTRIES: usize = 512;
pub const MAX_LISTPACK_ENTRIES: usize = 128;
pub const MAX_LISTPACK_VALUE: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Set {
    /// Ascending, distinct; at most [`MAX_INTSET_ENTRIES`].
    Ints(Vec<i64>),
    /// Insertion order; at most [`MAX_LISTPACK_ENTRIES`] members of at most
    /// [`MAX_LISTPACK_VALUE`] bytes.
    Small(Vec<Bytes>),
    Hashed(HashSet<Bytes>),
}

impl Default for Set {
    /// What Redis starts a computed set as (SUNIONSTORE's destination): an empty intset.
    fn default() -> Set {
        Set::Ints(Vec::new())
    }
}

/// The integer a member stands for, when Redis would store it in an intset: the exact
/// decimal text of an i64 (Redis's string2ll).
pub fn as_int(member: &[u8]) -> Option<i64> {
    ferrocache_common::int::parse_i64(member)
}

fn int_bytes(n: i64) -> Bytes {
    Bytes::from(n.to_string())
}

impl Set {
    /// The set SADD or SMOVE creates for `first` when `hint` members are about to be added
    /// (Redis's setTypeCreate).
    pub fn for_members(first: &[u8], hint: usize) -> Set {
        if as_int(first).is_some() && hint <= MAX_INTSET_ENTRIES {
            Set::Ints(Vec::new())
        } else if hint <= MAX_LISTPACK_ENTRIES {
            Set::Small(Vec::new())
        } else {
            Set::Hashed(HashSet::with_capacity(hint.min(1 << 16)))
        }
    }

    /// Before `hint` members are added to an existing set: one that could not hold that
    /// many in its encoding becomes a hash table at once, as Redis's SADD does (even when
    /// some are already members).
    pub fn prepare_for(&mut self, hint: usize) {
        let too_many = match self {
            Set::Ints(_) => hint > MAX_INTSET_ENTRIES,
            Set::Small(_) => hint > MAX_LISTPACK_ENTRIES,
            Set::Hashed(_) => false,
        };
        if too_many {
            self.make_hashed();
        }
    }

    /// A set of `members` added in this order, as Redis loads a set from a plain list
    /// (an intset while it can be, then a listpack, then a hash table).
    pub fn from_ordered(members: impl IntoIterator<Item = Bytes>, len: usize) -> Set {
        let mut set = if len > MAX_INTSET_ENTRIES {
            Set::Hashed(HashSet::with_capacity(len.min(1 << 16)))
        } else {
            Set::default()
        };
        for m in members {
            set.insert(m);
        }
        set
    }

    /// A set that was a listpack, in its order (a DUMP payload, a snapshot): kept as one
    /// while it fits, duplicates dropped.
    pub fn from_listpack(mut members: Vec<Bytes>) -> Set {
        let len = members.len();
        if len > MAX_LISTPACK_ENTRIES || members.iter().any(|m| m.len() > MAX_LISTPACK_VALUE) {
            return Set::from_ordered(members, len);
        }
        let mut seen = HashSet::with_capacity(len);
        members.retain(|m| seen.insert(m.clone()));
        Set::Small(members)
    }

    pub fn len(&self) -> usize {
        match self {
            Set::Ints(v) => v.len(),
            Set::Small(v) => v.len(),
            Set::Hashed(h) => h.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn contains(&self, member: &[u8]) -> bool {
        match self {
            Set::Ints(v) => as_int(member).is_some_and(|n| v.binary_search(&n).is_ok()),
            Set::Small(v) => v.iter().any(|m| m.as_ref() == member),
            Set::Hashed(h) => h.contains(member),
        }
    }

    /// Adds `member`; false when it was there already.
    pub fn insert(&mut self, member: Bytes) -> bool {
        match self {
            Set::Ints(v) => {
                if let Some(n) = as_int(&member) {
                    let Err(at) = v.binary_search(&n) else { return false };
                    v.insert(at, n);
                    if v.len() > MAX_INTSET_ENTRIES {
                        self.make_hashed();
                    }
                    return true;
                }
                // Integers are at most 20 digits, always within the listpack's value limit.
                if v.len() < MAX_LISTPACK_ENTRIES && member.len() <= MAX_LISTPACK_VALUE {
                    let mut small: Vec<Bytes> = v.iter().map(|&n| int_bytes(n)).collect();
                    small.push(member);
                    *self = Set::Small(small);
                } else {
                    self.make_hashed();
                    self.insert(member);
                }
                true
            }
            Set::Small(v) => {
                if v.contains(&member) {
                    return false;
                }
                if v.len() < MAX_LISTPACK_ENTRIES && member.len() <= MAX_LISTPACK_VALUE {
                    v.push(member);
                } else {
                    self.make_hashed();
                    self.insert(member);
                }
                true
            }
            Set::Hashed(h) => h.insert(member),
        }
    }

    /// Removes `member`; false when it was not there. The others keep their order.
    pub fn remove(&mut self, member: &[u8]) -> bool {
        match self {
            Set::Ints(v) => match as_int(member).map(|n| v.binary_search(&n)) {
                Some(Ok(at)) => {
                    v.remove(at);
                    true
                }
                _ => false,
            },
            Set::Small(v) => match v.iter().position(|m| m.as_ref() == member) {
                Some(at) => {
                    v.remove(at);
                    true
                }
                None => false,
            },
            Set::Hashed(h) => h.remove(member),
        }
    }

    fn make_hashed(&mut self) {
        let members: HashSet<Bytes> = self.iter().collect();
        *self = Set::Hashed(members);
    }

    /// The members in the encoding's order.
    pub fn iter(&self) -> Box<dyn Iterator<Item = Bytes> + '_> {
        match self {
            Set::Ints(v) => Box::new(v.iter().map(|&n| int_bytes(n))),
            Set::Small(v) => Box::new(v.iter().cloned()),
            Set::Hashed(h) => Box::new(h.iter().cloned()),
        }
    }

    /// The member at `index` of [`Set::iter`]'s order (random picks).
    pub fn nth(&self, index: usize) -> Option<Bytes> {
        match self {
            Set::Ints(v) => v.get(index).map(|&n| int_bytes(n)),
            Set::Small(v) => v.get(index).cloned(),
            Set::Hashed(h) => h.iter().nth(index).cloned(),
        }
    }

    /// OBJECT ENCODING's name for it.
    pub fn encoding(&self) -> &'static str {
        match self {
            Set::Ints(_) => "intset",
            Set::Small(_) => "listpack",
            Set::Hashed(_) => "hashtable",
        }
    }

    /// Bytes of members' data plus per-member overhead, for memory accounting.
    pub fn member_sizes(&self) -> Box<dyn Iterator<Item = usize> + '_> {
        match self {
            Set::Ints(v) => Box::new(v.iter().map(|_| 8)),
            Set::Small(v) => Box::new(v.iter().map(|m| m.len() + 16)),
            Set::Hashed(h) => Box::new(h.iter().map(|m| m.len() + 32)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn listed(s: &Set) -> Vec<String> {
        s.iter().map(|m| String::from_utf8_lossy(&m).into_owned()).collect()
    }

    #[test]
    fn integers_are_canonical_decimal_only() {
        assert_eq!(as_int(b"12"), Some(12));
        assert_eq!(as_int(b"-7"), Some(-7));
        assert_eq!(as_int(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(as_int(b"-9223372036854775808"), Some(i64::MIN));
        for not in ["", "01", "+1", "-0", " 1", "1.0", "9223372036854775808", "abc"] {
            assert_eq!(as_int(not.as_bytes()), None, "{not}");
        }
    }

    #[test]
    fn encodings_move_up_as_redis_sets_do() {
        let mut s = Set::for_members(b"3", 3);
        for m in ["3", "1", "2"] {
            assert!(s.insert(b(m)));
        }
        assert!(!s.insert(b("2")));
        assert_eq!((s.encoding(), listed(&s)), ("intset", vec!["1".into(), "2".into(), "3".into()]));
        // A string turns the sorted integers into a listpack, the string last.
        s.insert(b("b"));
        s.insert(b("0"));
        assert_eq!(listed(&s), ["1", "2", "3", "b", "0"]);
        assert_eq!(s.encoding(), "listpack");
        // Removing the string does not bring the intset back.
        assert!(s.remove(b"b"));
        assert!(!s.remove(b"b"));
        assert_eq!((s.encoding(), listed(&s)), ("listpack", vec!["1".into(), "2".into(), "3".into(), "0".into()]));
        // A long member, or the 129th, makes a hash table.
        s.insert(Bytes::from(vec![b'x'; 65]));
        assert_eq!(s.encoding(), "hashtable");
        assert_eq!(s.len(), 5);
        let mut ints = Set::default();
        for n in 0..=MAX_INTSET_ENTRIES as i64 {
            ints.insert(int_bytes(n));
        }
        assert_eq!(ints.encoding(), "hashtable");
        let mut small = Set::for_members(b"a", 1);
        for n in 0..=MAX_LISTPACK_ENTRIES {
            small.insert(Bytes::from(format!("m{n}")));
        }
        assert_eq!((small.encoding(), small.len()), ("hashtable", MAX_LISTPACK_ENTRIES + 1));
        let mut grown = Set::for_members(b"a", 1);
        grown.insert(b("a"));
        grown.prepare_for(MAX_LISTPACK_ENTRIES + 1);
        assert_eq!((grown.encoding(), grown.len()), ("hashtable", 1));
        // SADD of many members at once starts as a hash table (Redis's size hint).
        assert_eq!(Set::for_members(b"a", 200).encoding(), "hashtable");
        assert_eq!(Set::for_members(b"1", 200).encoding(), "intset");
    }

    #[test]
    fn an_ordered_load_rebuilds_the_same_encoding() {
        let s = Set::from_ordered(["5", "-1", "x", "2"].map(b), 4);
        assert_eq!((s.encoding(), listed(&s)), ("listpack", vec!["-1".into(), "5".into(), "x".into(), "2".into()]));
        assert!(s.contains(b"2") && s.contains(b"x") && !s.contains(b"02"));
        assert_eq!(s.nth(2), Some(b("x")));
        let kept = Set::from_listpack(["2", "1", "x", "1"].map(b).to_vec());
        assert_eq!((kept.encoding(), listed(&kept)), ("listpack", vec!["2".into(), "1".into(), "x".into()]));
    }
}
