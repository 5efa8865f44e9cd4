//! One node's keyspace in memory: a hash map per hash slot (so SCAN can walk slot by slot
//! with a stable cursor, and whole slots can move between node groups), plus an index of
//! expiry times for active expiry.
//!
//! This is storage only: expiry *policy* (when an expired key counts as gone, who deletes
//! it) lives in `cmd`, because primaries and replicas treat expired keys differently.

use std::cell::Cell;
use std::collections::BTreeSet;
use std::hash::RandomState;

use bytes::Bytes;
use ferrocache_common::slot::{key_slot, SLOT_COUNT};

use crate::slot_table::{hash, SlotTable};
use crate::value::Value;

#[derive(Debug, Clone)]
pub struct Entry {
    pub value: Value,
    /// Absolute expiry in Unix ms; 0 = never.
    pub expires_at: i64,
    /// Last access, as [`clock_ms`] (LRU eviction, OBJECT IDLETIME).
    pub access: u32,
    /// Redis's logarithmic access counter (LFU eviction, OBJECT FREQ).
    pub freq: u8,
    /// Bytes this entry was last counted as (kept by the keyspace).
    size: u32,
}

/// Entries are equal when they hold the same value and expiry (access data is bookkeeping).
impl PartialEq for Entry {
    fn eq(&self, other: &Entry) -> bool {
        self.value == other.value && self.expires_at == other.expires_at
    }
}

/// Redis's LFU_INIT_VAL: new keys start above 0 so they are not evicted at once.
pub const LFU_INIT: u8 = 5;

/// Bytes counted per key on top of its value: the map slot, the entry with a short key
/// inside it, and the allocation's header (calibrated against the process's RSS, see
/// bench/RESULTS.md). A longer key adds its own allocation.
pub const KEY_OVERHEAD: usize = 110;

/// The access clock: Unix time in ms, truncated to 32 bits. It wraps every ~49 days, so ages
/// are taken with `wrapping_sub` (Redis's 24-bit LRU clock wraps likewise).
pub fn clock_ms() -> u32 {
    let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
    ms as u32
}

/// Milliseconds since `e` was last accessed, at clock `now`.
pub fn idle_ms(e: &Entry, now: u32) -> u32 {
    now.wrapping_sub(e.access)
}

impl Entry {
    pub fn new(value: Value) -> Entry {
        Entry::with_expiry(value, 0)
    }

    pub fn with_expiry(value: Value, expires_at: i64) -> Entry {
        Entry { value, expires_at, access: clock_ms(), freq: LFU_INIT, size: 0 }
    }

    /// Bytes this entry is counted as (MEMORY USAGE, maxmemory).
    pub fn size(&self) -> usize {
        self.size as usize
    }

    pub fn is_expired(&self, now: i64) -> bool {
        self.expires_at != 0 && self.expires_at <= now
    }
}

pub struct Keyspace {
    slots: Vec<SlotTable>,
    hasher: RandomState,
    expires: BTreeSet<(i64, Bytes)>,
    /// Sum of the expiry times in `expires` (avg_ttl).
    expiry_sum: i128,
    len: usize,
    used: usize,
    capture: Option<Box<Capture>>,
    /// The last key located: a command probes its key two or three times (the expiry
    /// check, then its read or write), and each probe would hash it again (CRC16 for the
    /// slot, SipHash for the table).
    located: Cell<Located>,
}

/// Keys up to this long are remembered by [`Keyspace::locate`] (most keys are).
const LOCATED_KEY: usize = 30;

/// A key with its slot and table hash.
#[derive(Clone, Copy)]
struct Located {
    /// u8::MAX (longer than any key remembered): nothing remembered.
    len: u8,
    key: [u8; LOCATED_KEY],
    slot: u16,
    h: u64,
}

/// Keys [`Keyspace::warm`] takes per round (enough to keep the processor's miss buffers busy),
/// and how far ahead of a batch's execution it is called: far enough to overlap the misses,
/// near enough that what it brought in is still cached when the command runs.
pub(crate) const WARM_AT_ONCE: usize = 32;

impl Located {
    const NONE: Located = Located { len: u8::MAX, key: [0; LOCATED_KEY], slot: 0, h: 0 };
}

/// An image of the keyspace taken while writes go on (storage compaction, see
/// storage/compaction.rs). A walk copies slots in order, a few at a time, and a slot about to
/// change is copied first, so the image is the keyspace exactly as it was when the capture
/// started, without ever copying more than one slot per write.
struct Capture {
    /// One bit per slot: already in the image.
    copied: Vec<u64>,
    /// The next slot the walk copies.
    next: usize,
    /// Encoded records (snapshot file format) not yet taken by the compaction, after the
    /// record of the database they belong to.
    records: Vec<u8>,
    /// Length of `records` holding no entry yet (the database record).
    fresh: usize,
    keys: u64,
    db: usize,
}

/// What [`Keyspace::capture_step`] hands the compaction.
pub struct CaptureChunk {
    pub records: Vec<u8>,
    pub keys: u64,
    /// Every slot is in the image: this was the last chunk.
    pub done: bool,
}

impl Default for Keyspace {
    fn default() -> Self {
        Keyspace::new()
    }
}

impl Keyspace {
    pub fn new() -> Keyspace {
        Keyspace {
            // Allocated by the first insert: the 15 databases besides db 0 usually stay empty.
            slots: Vec::new(),
            hasher: RandomState::new(),
            expires: BTreeSet::new(),
            expiry_sum: 0,
            len: 0,
            used: 0,
            capture: None,
            located: Cell::new(Located::NONE),
        }
    }

    /// The key's slot and table hash, computed once for repeated probes of the same key.
    fn locate(&self, key: &[u8]) -> (usize, u64) {
        let last = self.located.get();
        if key.len() == last.len as usize && key.len() <= LOCATED_KEY && key == &last.key[..key.len()] {
            return (last.slot as usize, last.h);
        }
        let (slot, h) = (key_slot(key), hash(&self.hasher, key));
        if key.len() <= LOCATED_KEY {
            let mut memo = Located { len: key.len() as u8, slot, h, ..Located::NONE };
            memo.key[..key.len()].copy_from_slice(key);
            self.located.set(memo);
        }
        (slot as usize, h)
    }

    /// The slot's table; None before the first insert.
    fn table(&self, slot: usize) -> Option<&SlotTable> {
        self.slots.get(slot)
    }

    fn table_mut(&mut self, slot: usize) -> Option<&mut SlotTable> {
        self.slots.get_mut(slot)
    }

    /// Starts an image of the keyspace as it is now (replacing any capture under way), to be
    /// restored as database `db`: every chunk it hands over starts with that database's
    /// record, so the image stays right even if SWAPDB moves this keyspace meanwhile.
    pub fn start_capture(&mut self, db: usize) {
        let words = (SLOT_COUNT as usize).div_ceil(64);
        let mut records = Vec::new();
        crate::snapshot::file::encode_db(&mut records, db);
        let fresh = records.len();
        self.capture = Some(Box::new(Capture { copied: vec![0; words], next: 0, records, fresh, keys: 0, db }));
    }

    pub fn abort_capture(&mut self) {
        self.capture = None;
    }

    pub fn capturing(&self) -> bool {
        self.capture.is_some()
    }

    /// Copies slots into the image until about `max_bytes` are waiting, and hands them over;
    /// None when no capture is under way (it was aborted).
    pub fn capture_step(&mut self, max_bytes: usize) -> Option<CaptureChunk> {
        loop {
            let c = self.capture.as_mut()?;
            if c.next >= SLOT_COUNT as usize || c.records.len() - c.fresh >= max_bytes {
                break;
            }
            let slot = c.next;
            c.next += 1;
            self.preserve(slot);
        }
        let c = self.capture.as_mut()?;
        let done = c.next >= SLOT_COUNT as usize;
        let mut next = Vec::new();
        crate::snapshot::file::encode_db(&mut next, c.db);
        let records = if c.records.len() > c.fresh { std::mem::replace(&mut c.records, next) } else { Vec::new() };
        let chunk = CaptureChunk { records, keys: std::mem::take(&mut c.keys), done };
        if done {
            self.capture = None;
        }
        Some(chunk)
    }

    /// Puts `slot` in the image under way, unless it is there already: called before any
    /// change to the slot's entries.
    fn preserve(&mut self, slot: usize) {
        let Some(c) = self.capture.as_mut() else { return };
        let (word, bit) = (slot / 64, 1u64 << (slot % 64));
        if c.copied[word] & bit != 0 {
            return;
        }
        c.copied[word] |= bit;
        let Some(table) = self.slots.get(slot) else { return };
        for (key, entry) in table.iter() {
            crate::snapshot::file::encode_entry(&mut c.records, key, entry);
            c.keys += 1;
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn keys_with_expiry(&self) -> usize {
        self.expires.len()
    }

    /// INFO keyspace's avg_ttl: the mean time to live, in ms, of the keys with an expiry (0
    /// without any). Exact, where Redis estimates it from its expiry sampling.
    pub fn avg_ttl(&self, now: i64) -> i64 {
        match self.expires.len() {
            0 => 0,
            n => (self.expiry_sum / n as i128 - now as i128).max(0) as i64,
        }
    }

    /// Approximate memory held by keys and values (INFO memory used_memory, maxmemory).
    pub fn approx_bytes(&self) -> usize {
        self.used
    }

    /// Bytes of the per-slot index itself (a table head per hash slot once the database
    /// has held a key): counted in used_memory as Redis counts its dicts' own overhead.
    pub fn index_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<SlotTable>()
    }

    fn size_of(key: &[u8], value: &Value) -> u32 {
        let key_bytes = if key.len() > crate::slot_table::INLINE_KEY { key.len() + 16 } else { 0 };
        (key_bytes + value.approx_size() + KEY_OVERHEAD).min(u32::MAX as usize) as u32
    }

    /// Counts a value changed in place (through [`Keyspace::get_value_mut`]) again.
    pub fn recount(&mut self, key: &[u8]) {
        let (slot, h) = self.locate(key);
        if let Some(e) = self.slots.get_mut(slot).and_then(|t| t.get_mut(h, key)) {
            let size = Keyspace::size_of(key, &e.value);
            self.used = self.used.saturating_sub(e.size as usize) + size as usize;
            e.size = size;
        }
    }

    /// Looks a key up and records the access: the LRU clock always, the LFU counter when
    /// `lfu` is given (log factor, decay minutes).
    pub fn touch(&mut self, key: &[u8], now: u32, lfu: Option<(u32, u32)>) -> Option<&Entry> {
        let (slot, h) = self.locate(key);
        let e = self.table_mut(slot)?.get_mut(h, key)?;
        if let Some((log_factor, decay)) = lfu {
            let counter = lfu_decayed(e, now, decay);
            e.freq = lfu_incr(counter, log_factor);
        }
        e.access = now;
        Some(e)
    }

    /// Brings the table entries of `keys` into the processor's cache ahead of a batch that
    /// looks them up one at a time. A lookup is a chain of dependent loads (the slot's table,
    /// its control bytes and bucket, the item, a string's bytes) that miss the cache on a big
    /// keyspace; each command of a batch would wait for its own chain in turn. Here each
    /// link is taken for a round of keys before the next link of any, so the misses of a
    /// round are in flight together. Changes nothing.
    pub fn warm<'k>(&self, keys: impl Iterator<Item = &'k [u8]>) {
        if self.slots.is_empty() {
            return;
        }
        let mut located = [(0usize, 0u64); WARM_AT_ONCE];
        let mut found: [Option<crate::slot_table::Candidate<'_>>; WARM_AT_ONCE] = std::array::from_fn(|_| None);
        let mut keys = keys.peekable();
        while keys.peek().is_some() {
            let mut n = 0;
            let mut touched = 0usize;
            // The hashes first (no loads from the keyspace), so that each round of loads
            // below is a short loop: the processor has many of them in flight at once only
            // when few instructions separate them.
            for key in keys.by_ref().take(WARM_AT_ONCE) {
                located[n] = self.locate(key);
                n += 1;
            }
            // The slots' table headers.
            for &(slot, _) in &located[..n] {
                touched = touched.wrapping_add(self.slots[slot].len());
            }
            // Then the control bytes and bucket of each.
            for (candidate, &(slot, h)) in found.iter_mut().zip(&located[..n]) {
                *candidate = self.slots[slot].candidate(h);
            }
            // Then the items (key and entry).
            for candidate in found[..n].iter().flatten() {
                let (key, entry) = candidate.entry();
                let tag = match &entry.value {
                    Value::Str(s) => s.len(),
                    _ => 1,
                };
                touched = touched.wrapping_add(tag + key.len());
            }
            // Then a string's bytes (a read copies them, a write frees them): its first and
            // last cache lines (a short value spans two).
            for candidate in found[..n].iter_mut() {
                if let Some(c) = candidate.take() {
                    if let Value::Str(s) = &c.entry().1.value {
                        let bytes = s.as_slice();
                        let ends = bytes.first().zip(bytes.last()).map_or(1, |(&a, &b)| usize::from(a ^ b));
                        touched = touched.wrapping_add(ends);
                    }
                }
            }
            std::hint::black_box(touched);
        }
    }

    pub fn get(&self, key: &[u8]) -> Option<&Entry> {
        let (slot, h) = self.locate(key);
        self.table(slot)?.get(h, key)
    }

    /// Mutable access to the value; change expiry only through [`Keyspace::set_expiry`].
    pub fn get_value_mut(&mut self, key: &[u8]) -> Option<&mut Value> {
        let (slot, h) = self.locate(key);
        // Only a capture under way needs the slot copied first (and not for a missing key).
        if self.capture.is_some() && self.table(slot).is_some_and(|t| t.contains(h, key)) {
            self.preserve(slot);
        }
        self.table_mut(slot)?.get_mut(h, key).map(|e| &mut e.value)
    }

    /// Inserts or replaces; returns the old entry. The key is copied so that it never pins
    /// the request buffer it was sliced from.
    pub fn insert(&mut self, key: &[u8], entry: Entry) -> Option<Entry> {
        let (slot, h) = self.locate(key);
        self.preserve(slot);
        let new_at = entry.expires_at;
        let mut entry = entry;
        entry.size = Keyspace::size_of(key, &entry.value);
        self.used += entry.size as usize;
        if self.slots.is_empty() {
            self.slots = (0..SLOT_COUNT).map(|_| SlotTable::default()).collect();
        }
        let old = self.slots[slot].insert(&self.hasher, h, key, entry);
        // Forget the old entry's expiry before indexing the new one: both may be equal.
        match &old {
            Some(old) => self.forget(key, old),
            None => self.len += 1,
        }
        if new_at != 0 {
            self.expires.insert((new_at, Bytes::copy_from_slice(key)));
            self.expiry_sum += new_at as i128;
        }
        old
    }

    pub fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        let (slot, h) = self.locate(key);
        if self.capture.is_some() && self.table(slot).is_some_and(|t| t.contains(h, key)) {
            self.preserve(slot);
        }
        let old = self.table_mut(slot)?.remove(h, key)?;
        self.len -= 1;
        self.forget(key, &old);
        Some(old)
    }

    fn forget(&mut self, key: &[u8], old: &Entry) {
        if old.expires_at != 0 {
            self.expires.remove(&(old.expires_at, Bytes::copy_from_slice(key)));
            self.expiry_sum -= old.expires_at as i128;
        }
        self.used = self.used.saturating_sub(old.size as usize);
    }

    /// Sets (or with 0 clears) the expiry of an existing key; false when it does not exist.
    pub fn set_expiry(&mut self, key: &[u8], at: i64) -> bool {
        let (slot, h) = self.locate(key);
        let Some(old_at) = self.table(slot).and_then(|t| t.get(h, key)).map(|e| e.expires_at) else {
            return false;
        };
        self.preserve(slot);
        if old_at != at {
            let stored = Bytes::copy_from_slice(key);
            if old_at != 0 {
                self.expires.remove(&(old_at, stored.clone()));
                self.expiry_sum -= old_at as i128;
            }
            if at != 0 {
                self.expires.insert((at, stored));
                self.expiry_sum += at as i128;
            }
        }
        if let Some(e) = self.table_mut(slot).and_then(|t| t.get_mut(h, key)) {
            e.expires_at = at;
        }
        true
    }

    pub fn clear(&mut self) {
        // An image under way would have to copy every slot now: it is dropped instead, and
        // the compaction that wanted it starts again later.
        self.capture = None;
        for s in &mut self.slots {
            *s = SlotTable::default();
        }
        self.expires.clear();
        self.expiry_sum = 0;
        self.len = 0;
        self.used = 0;
    }

    /// Up to `limit` keys with an expiry, soonest first (volatile-ttl eviction).
    pub fn soonest_expiring(&self, limit: usize) -> Vec<Bytes> {
        self.expires.iter().take(limit).map(|(_, k)| k.clone()).collect()
    }

    /// A key with an expiry, picked at random (volatile-* eviction sampling): the first at or
    /// after a random point between the soonest and the latest expiry.
    pub fn random_expiring_key(&self, seed: u64) -> Option<Bytes> {
        let (first, last) = (self.expires.first()?.0, self.expires.last()?.0);
        let span = (last - first).max(0) as u64 + 1;
        let at = first + (seed % span) as i64;
        self.expires.range((at, Bytes::new())..).next().or(self.expires.first()).map(|(_, k)| k.clone())
    }

    /// Up to `limit` keys whose expiry is at or before `now`, soonest first.
    pub fn expired_keys(&self, now: i64, limit: usize) -> Vec<Bytes> {
        self.expires.iter().take_while(|(at, _)| *at <= now).take(limit).map(|(_, k)| k.clone()).collect()
    }

    pub fn slot_entries(&self, slot: u16) -> impl Iterator<Item = (&[u8], &Entry)> {
        self.table(slot as usize).into_iter().flat_map(|t| t.iter())
    }

    pub fn slot_len(&self, slot: u16) -> usize {
        self.table(slot as usize).map_or(0, |t| t.len())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &Entry)> {
        self.slots.iter().flat_map(|s| s.iter())
    }

    /// A key chosen at random (uniform over slots with keys, then within the slot).
    pub fn random_key(&self, seed: u64) -> Option<Bytes> {
        if self.len == 0 {
            return None;
        }
        let start = (seed % SLOT_COUNT as u64) as usize;
        (0..self.slots.len()).map(|i| &self.slots[(start + i) % self.slots.len()]).find(|s| !s.is_empty()).and_then(
            |s| {
                let n = (seed >> 14) as usize % s.len();
                s.iter().nth(n).map(|(k, _)| Bytes::copy_from_slice(k))
            },
        )
    }
}

/// Redis's LFUDecrAndReturn: the counter less one per `decay` minutes since the last access.
pub fn lfu_decayed(e: &Entry, now: u32, decay: u32) -> u8 {
    if decay == 0 {
        return e.freq;
    }
    let periods = idle_ms(e, now) / 60_000 / decay;
    e.freq.saturating_sub(periods.min(255) as u8)
}

/// Redis's LFULogIncr: the higher the counter, the less likely an access raises it.
fn lfu_incr(counter: u8, log_factor: u32) -> u8 {
    if counter == 255 {
        return 255;
    }
    let base = counter.saturating_sub(LFU_INIT) as f64;
    let p = 1.0 / (base * log_factor as f64 + 1.0);
    if rand::random::<f64>() < p {
        counter + 1
    } else {
        counter
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn s(v: &str) -> Value {
        Value::Str(crate::strval::Str::from(Bytes::copy_from_slice(v.as_bytes())))
    }

    #[test]
    fn warming_changes_nothing() {
        let mut ks = Keyspace::new();
        // An empty keyspace has no tables yet.
        ks.warm([&b"nothing"[..]].into_iter());
        for i in 0..100u32 {
            ks.insert(format!("k{i}").as_bytes(), Entry::new(s("v")));
        }
        // More keys than one round takes, present and missing, one given twice.
        let names: Vec<String> = (0..150u32).map(|i| format!("k{i}")).chain(["k7".to_string()]).collect();
        ks.warm(names.iter().map(|n| n.as_bytes()));
        assert_eq!(ks.len(), 100);
        assert!((0..100u32).all(|i| ks.get(format!("k{i}").as_bytes()).is_some()));
        assert!(ks.get(b"k100").is_none());
    }

    #[test]
    fn entries_stay_small() {
        // Every key pays for one entry: collections are boxed so strings stay compact.
        assert!(std::mem::size_of::<Entry>() <= 64, "{}", std::mem::size_of::<Entry>());
    }

    #[test]
    fn keys_of_any_length_are_found_after_any_other() {
        // The located-key memo must never answer for another key, nor trip on a key as long
        // as its "nothing remembered" marker.
        let mut ks = Keyspace::new();
        let keys: Vec<Vec<u8>> = [0, 1, 29, 30, 31, 254, 255, 256, 300].iter().map(|&n| vec![b'k'; n]).collect();
        for (i, k) in keys.iter().enumerate() {
            assert!(ks.get(k).is_none());
            ks.insert(k, Entry::new(s(&i.to_string())));
        }
        for _ in 0..2 {
            for (i, k) in keys.iter().enumerate() {
                assert_eq!(ks.get(k).map(|e| e.value.clone()), Some(s(&i.to_string())), "{}", k.len());
                assert_eq!(ks.get(k).map(|e| e.value.clone()), Some(s(&i.to_string())), "{}", k.len());
            }
        }
        let mut fresh = Keyspace::new();
        assert!(fresh.get(&[b'x'; 255]).is_none() && fresh.remove(&[b'x'; 255]).is_none());
        assert_eq!(keys.iter().filter(|k| ks.remove(k).is_some()).count(), keys.len());
        assert!(ks.is_empty());
    }

    #[test]
    fn insert_remove_and_expiry_index() {
        let mut ks = Keyspace::new();
        assert!(ks.insert(b"a", Entry::with_expiry(s("1"), 100)).is_none());
        ks.insert(b"b", Entry::new(s("2")));
        assert_eq!(ks.len(), 2);
        assert_eq!(ks.expired_keys(100, 10), vec![Bytes::from_static(b"a")]);
        assert!(ks.expired_keys(99, 10).is_empty());
        ks.set_expiry(b"a", 0);
        assert!(ks.expired_keys(1000, 10).is_empty());
        ks.set_expiry(b"b", 50);
        ks.insert(b"b", Entry::new(s("3")));
        assert!(ks.expired_keys(1000, 10).is_empty(), "overwrite clears the old expiry");
        assert!(ks.remove(b"a").is_some());
        assert_eq!(ks.len(), 1);
        assert!(!ks.set_expiry(b"zz", 5));
    }

    #[test]
    fn a_capture_is_the_keyspace_as_it_was_when_it_started() {
        let mut ks = Keyspace::new();
        for i in 0..500 {
            ks.insert(format!("k{i}").as_bytes(), Entry::new(s(&i.to_string())));
        }
        let before: BTreeMap<Bytes, Entry> = ks.iter().map(|(k, e)| (Bytes::copy_from_slice(k), e.clone())).collect();
        ks.start_capture(0);
        let first = ks.capture_step(64).unwrap();
        assert!(!first.done);
        // Writes during the capture, to slots copied and not yet copied.
        for i in 0..500 {
            let k = format!("k{i}");
            match i % 4 {
                0 => drop(ks.remove(k.as_bytes())),
                1 => drop(ks.insert(k.as_bytes(), Entry::new(s("changed")))),
                2 => drop(ks.set_expiry(k.as_bytes(), 5)),
                _ => {
                    if let Some(Value::Str(v)) = ks.get_value_mut(k.as_bytes()) {
                        *v = crate::strval::Str::copy_from(b"in place");
                    }
                }
            }
            ks.insert(format!("new{i}").as_bytes(), Entry::new(s("x")));
        }
        let mut got = image_from(first, &mut ks);
        assert_eq!(got.len(), before.len());
        for (k, e) in before {
            assert_eq!(got.remove(&k), Some(e));
        }
        assert!(!ks.capturing());
        // Clearing drops a capture under way.
        ks.start_capture(0);
        ks.clear();
        assert!(ks.capture_step(64).is_none());
    }

    fn image_from(first: CaptureChunk, ks: &mut Keyspace) -> BTreeMap<Bytes, Entry> {
        let mut records = first.records;
        let mut keys = first.keys;
        if !first.done {
            loop {
                let chunk = ks.capture_step(64).expect("capture under way");
                records.extend_from_slice(&chunk.records);
                keys += chunk.keys;
                if chunk.done {
                    break;
                }
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let mut w = crate::snapshot::file::Writer::create(dir.path().join("i.fcsnap")).unwrap();
        w.raw(&records, keys).unwrap();
        w.finish().unwrap();
        let data = std::fs::read(dir.path().join("i.fcsnap")).unwrap();
        let mut out = BTreeMap::new();
        crate::snapshot::file::parse_each(&data, |_, k, e| {
            out.insert(k, e);
        })
        .unwrap();
        out
    }

    proptest! {
        #[test]
        fn behaves_like_a_map(ops in proptest::collection::vec((0u8..3, 0u8..16, 0i64..4), 1..200)) {
            let mut ks = Keyspace::new();
            let mut model: BTreeMap<Vec<u8>, i64> = BTreeMap::new();
            for (op, k, at) in ops {
                let key = vec![b'k', k];
                match op {
                    0 => { ks.insert(&key, Entry::with_expiry(s("v"), at)); model.insert(key, at); }
                    1 => { prop_assert_eq!(ks.remove(&key).is_some(), model.remove(&key).is_some()); }
                    _ => { prop_assert_eq!(ks.set_expiry(&key, at), model.contains_key(&key)); if let Some(v) = model.get_mut(&key) { *v = at; } }
                }
            }
            prop_assert_eq!(ks.len(), model.len());
            prop_assert_eq!(ks.keys_with_expiry(), model.values().filter(|&&at| at != 0).count());
            for (k, at) in &model {
                prop_assert_eq!(ks.get(k).map(|e| e.expires_at), Some(*at));
            }
        }
    }
}
