//! One hash slot's keys: a hash table of boxed items, so a bucket costs 8 bytes and a key
//! one allocation of its entry plus one of its bytes.
//!
//! A map of `(Bytes, Entry)` would put 96 bytes in every bucket, and hash tables run between
//! 44 % and 87 % full: at a typical 50 % that is ~200 bytes per key before the key and value
//! themselves (Redis spends ~130 in all). Hashes come from the keyspace's SipHash keys (the
//! std hasher): keys are chosen by clients, who must not be able to aim for one bucket.

use std::hash::{BuildHasher, RandomState};

use hashbrown::HashTable;

use crate::keyspace::Entry;

struct Item {
    key: Box<[u8]>,
    entry: Entry,
}

#[derive(Default)]
pub struct SlotTable {
    table: HashTable<Box<Item>>,
}

pub fn hash(hasher: &RandomState, key: &[u8]) -> u64 {
    hasher.hash_one(key)
}

impl SlotTable {
    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    pub fn get(&self, h: u64, key: &[u8]) -> Option<&Entry> {
        self.table.find(h, |it| *it.key == *key).map(|it| &it.entry)
    }

    pub fn get_mut(&mut self, h: u64, key: &[u8]) -> Option<&mut Entry> {
        self.table.find_mut(h, |it| *it.key == *key).map(|it| &mut it.entry)
    }

    pub fn contains(&self, h: u64, key: &[u8]) -> bool {
        self.get(h, key).is_some()
    }

    /// Inserts or replaces (keeping the stored key and allocation); returns the old entry.
    pub fn insert(&mut self, hasher: &RandomState, h: u64, key: &[u8], entry: Entry) -> Option<Entry> {
        if let Some(it) = self.table.find_mut(h, |it| *it.key == *key) {
            return Some(std::mem::replace(&mut it.entry, entry));
        }
        let item = Box::new(Item { key: key.into(), entry });
        self.table.insert_unique(h, item, |it| hash(hasher, &it.key));
        None
    }

    pub fn remove(&mut self, h: u64, key: &[u8]) -> Option<Entry> {
        let found = self.table.find_entry(h, |it| *it.key == *key).ok()?;
        let (item, _) = found.remove();
        Some(item.entry)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &Entry)> {
        self.table.iter().map(|it| (&*it.key, &it.entry))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Value;
    use bytes::Bytes;

    #[test]
    fn a_map_with_one_pointer_per_bucket() {
        assert_eq!(std::mem::size_of::<Box<Item>>(), 8);
        // Entry and key pointer share one allocation that glibc rounds to 96 bytes.
        assert!(std::mem::size_of::<Item>() <= 80, "{}", std::mem::size_of::<Item>());
        let hasher = RandomState::new();
        let mut t = SlotTable::default();
        let e = |v: &'static str| Entry::new(Value::Str(crate::strval::Str::from(Bytes::from_static(v.as_bytes()))));
        for i in 0..1000 {
            let k = format!("k{i}");
            assert!(t.insert(&hasher, hash(&hasher, k.as_bytes()), k.as_bytes(), e("a")).is_none());
        }
        let h = hash(&hasher, b"k7");
        assert_eq!(t.insert(&hasher, h, b"k7", e("b")).map(|o| o.value), Some(e("a").value));
        assert_eq!(t.get(h, b"k7").map(|o| o.value.clone()), Some(e("b").value));
        assert!(t.remove(h, b"k7").is_some() && !t.contains(h, b"k7") && t.remove(h, b"k7").is_none());
        assert_eq!((t.len(), t.iter().count()), (999, 999));
    }
}
