//! Redis streams: entries in ID order, each packed into one allocation, and consumer groups
//! with their pending entries lists (PEL), as Redis keeps them (t_stream.c's model).
//!
//! A B-tree keyed by ID holds the entries, so ranges, trimming from the front and lookups
//! cost O(log n); an entry's fields and values share one buffer instead of one allocation
//! per string.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use bytes::Bytes;

/// An entry ID: milliseconds and a sequence number, ordered as a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    pub const MAX: StreamId = StreamId { ms: u64::MAX, seq: u64::MAX };

    pub fn new(ms: u64, seq: u64) -> StreamId {
        StreamId { ms, seq }
    }

    /// The next ID, None past the last possible one.
    pub fn incr(self) -> Option<StreamId> {
        match (self.ms, self.seq) {
            (u64::MAX, u64::MAX) => None,
            (ms, u64::MAX) => Some(StreamId::new(ms + 1, 0)),
            (ms, seq) => Some(StreamId::new(ms, seq + 1)),
        }
    }

    /// The previous ID, None before 0-0.
    pub fn decr(self) -> Option<StreamId> {
        match (self.ms, self.seq) {
            (0, 0) => None,
            (ms, 0) => Some(StreamId::new(ms - 1, u64::MAX)),
            (ms, seq) => Some(StreamId::new(ms, seq - 1)),
        }
    }

    pub fn is_zero(self) -> bool {
        self == StreamId::MIN
    }

    pub fn to_bytes(self) -> Bytes {
        Bytes::from(self.to_string())
    }

    /// Redis's ID syntax: `ms-seq`, `ms` (the sequence is `missing_seq`), and unless
    /// `strict` `-` and `+` for the smallest and largest IDs. With `auto_seq`, `ms-*` is
    /// accepted too; the flag returned says whether a sequence was given.
    pub fn parse(arg: &[u8], missing_seq: u64, strict: bool, auto_seq: bool) -> Option<(StreamId, bool)> {
        if arg.len() > 127 {
            return None;
        }
        match arg {
            b"-" if !strict => return Some((StreamId::MIN, true)),
            b"+" if !strict => return Some((StreamId::MAX, true)),
            _ => {}
        }
        let (ms, seq) = match arg.iter().position(|&b| b == b'-') {
            Some(i) => (&arg[..i], Some(&arg[i + 1..])),
            None => (arg, None),
        };
        let ms = parse_u64(ms)?;
        match seq {
            Some(b"*") if auto_seq => Some((StreamId::new(ms, 0), false)),
            Some(seq) => Some((StreamId::new(ms, parse_u64(seq)?), true)),
            None => Some((StreamId::new(ms, missing_seq), true)),
        }
    }

    fn write(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.ms.to_be_bytes());
        out.extend_from_slice(&self.seq.to_be_bytes());
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// Redis's string2ull: a plain decimal that fits 64 bits unsigned.
fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) || (s.len() > 1 && s[0] == b'0') {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// One entry: the node of Redis's layout it sits in (for `~` trimming), then its fields and
/// values back to back with their lengths, in one allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fields(Box<[u8]>);

impl Fields {
    pub fn pack<T: AsRef<[u8]>>(node: u64, items: &[T]) -> Fields {
        let mut out = Vec::with_capacity(8 + items.iter().map(|i| i.as_ref().len() + 4).sum::<usize>());
        out.extend_from_slice(&node.to_be_bytes());
        for item in items {
            let item = item.as_ref();
            out.extend_from_slice(&(item.len() as u32).to_be_bytes());
            out.extend_from_slice(item);
        }
        Fields(out.into_boxed_slice())
    }

    /// The node of Redis's layout this entry sits in.
    pub(crate) fn node(&self) -> u64 {
        self.0.get(..8).map_or(0, |b| u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
    }

    /// Fields and values alternating.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let mut rest: &[u8] = self.0.get(8..).unwrap_or_default();
        std::iter::from_fn(move || {
            if rest.len() < 4 {
                return None;
            }
            let n = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
            let item = rest.get(4..4 + n)?;
            rest = &rest[4 + n..];
            Some(item)
        })
    }

    pub fn bytes(&self) -> usize {
        self.0.len()
    }
}

/// A delivered, not yet acknowledged entry of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nack {
    pub consumer: Bytes,
    /// Unix ms of the last delivery.
    pub delivery_time: i64,
    pub delivery_count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumer {
    /// Last attempted interaction (read or claim), unix ms.
    pub seen_time: i64,
    /// Last successful interaction, -1 = never.
    pub active_time: i64,
    pub pel: BTreeSet<StreamId>,
}

impl Consumer {
    fn new(now: i64) -> Consumer {
        Consumer { seen_time: now, active_time: -1, pel: BTreeSet::new() }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub last_id: StreamId,
    /// Entries the group has read (Redis's logical counter); -1 = unknown.
    pub entries_read: i64,
    pub pel: BTreeMap<StreamId, Nack>,
    pub consumers: BTreeMap<Bytes, Consumer>,
}

impl Group {
    pub fn new(last_id: StreamId, entries_read: i64) -> Group {
        Group { last_id, entries_read, pel: BTreeMap::new(), consumers: BTreeMap::new() }
    }

    /// The consumer named `name`, created if missing (true when it was).
    pub fn consumer(&mut self, name: &Bytes, now: i64) -> (&mut Consumer, bool) {
        let created = !self.consumers.contains_key(name);
        (self.consumers.entry(name.clone()).or_insert_with(|| Consumer::new(now)), created)
    }

    /// Drops an entry from the PEL (and its consumer's); true when it was pending.
    pub fn ack(&mut self, id: StreamId) -> bool {
        match self.pel.remove(&id) {
            Some(nack) => {
                if let Some(c) = self.consumers.get_mut(&nack.consumer) {
                    c.pel.remove(&id);
                }
                true
            }
            None => false,
        }
    }

    /// Gives a pending (or new, with `force`) entry to `consumer`.
    pub fn assign(&mut self, id: StreamId, consumer: &Bytes, delivery_time: i64, count: u64) {
        if let Some(old) = self.pel.get(&id).map(|n| n.consumer.clone()) {
            if old != *consumer {
                if let Some(c) = self.consumers.get_mut(&old) {
                    c.pel.remove(&id);
                }
            }
        }
        self.pel.insert(id, Nack { consumer: consumer.clone(), delivery_time, delivery_count: count });
        if let Some(c) = self.consumers.get_mut(consumer) {
            c.pel.insert(id);
        }
    }

    /// Deletes a consumer and its pending entries; returns how many it had.
    pub fn delete_consumer(&mut self, name: &[u8]) -> usize {
        let Some(c) = self.consumers.remove(name) else { return 0 };
        for id in &c.pel {
            self.pel.remove(id);
        }
        c.pel.len()
    }
}

/// Entries per node of Redis's stream radix tree (stream-node-max-entries' default).
pub const NODE_ENTRIES: usize = 100;

/// How full a node of Redis's stream layout may grow (stream-node-max-entries and
/// stream-node-max-bytes): where `~` trimming may cut depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeLimits {
    /// 0 = no limit.
    pub entries: u64,
    /// 0 = Redis's ceiling (1 GB).
    pub bytes: usize,
}

impl Default for NodeLimits {
    fn default() -> Self {
        NodeLimits { entries: NODE_ENTRIES as u64, bytes: 4096 }
    }
}

/// Redis's ceiling on a stream node's listpack.
const NODE_MAX_BYTES: usize = 1 << 30;

/// The last node of the layout, which the next entry joins unless it is full. Bookkeeping
/// and partly an estimate (deleted entries are not known after a restart): two streams with
/// the same entries are equal whatever their tails say.
#[derive(Debug, Clone, Copy, Default)]
struct TailNode {
    /// Numbered from 1 (0: none yet).
    node: u64,
    /// Entries ever put in it (deleted ones count, as in Redis).
    entries: u64,
    /// Its listpack's size, as Redis would encode it.
    bytes: usize,
    /// The node's first entry: IDs are stored as differences from it, and entries with the
    /// same field names store only their values.
    master: StreamId,
    master_fields: u64,
}

impl TailNode {
    /// Node `node`, empty, whose master entry is `id` with `items`' field names.
    fn new<T: AsRef<[u8]>>(node: u64, id: StreamId, items: &[T]) -> TailNode {
        // Header, end byte, the master entry's count, deleted, field count and terminator.
        let fields: usize = items.iter().step_by(2).map(|f| lp_element(f.as_ref())).sum();
        let bytes = 7 + 3 * 2 + lp_int(items.len() as i64 / 2) + fields;
        TailNode { node, entries: 0, bytes, master: id, master_fields: fields_hash(items) }
    }

    /// Counts one more entry in the node, at the size Redis would encode it.
    fn add<T: AsRef<[u8]>>(&mut self, id: StreamId, items: &[T]) {
        let ms = id.ms.wrapping_sub(self.master.ms) as i64;
        let seq = id.seq.wrapping_sub(self.master.seq) as i64;
        let stored: usize = if fields_hash(items) == self.master_fields {
            items.iter().skip(1).step_by(2).map(|v| lp_element(v.as_ref())).sum()
        } else {
            lp_int(items.len() as i64 / 2) + items.iter().map(|i| lp_element(i.as_ref())).sum::<usize>()
        };
        // Flags, the ID's differences, the fields and values, the element count.
        self.bytes += 2 + lp_int(ms) + lp_int(seq) + stored + 2;
        self.entries += 1;
    }
}

impl PartialEq for TailNode {
    fn eq(&self, _: &TailNode) -> bool {
        true
    }
}

impl Eq for TailNode {}

/// `item` as an integer, when written as Redis writes one (no sign but `-`, no leading
/// zeros): the strings a listpack stores as integers.
fn canonical_int(item: &[u8]) -> Option<i64> {
    let digits = item.strip_prefix(b"-").unwrap_or(item);
    let canonical = !digits.is_empty()
        && digits.len() <= 19
        && digits.iter().all(u8::is_ascii_digit)
        && (digits[0] != b'0' || item == b"0");
    if !canonical {
        return None;
    }
    std::str::from_utf8(item).ok()?.parse().ok()
}

/// What one listpack element costs: its encoding (integers are compact) and back-length.
fn lp_element(item: &[u8]) -> usize {
    match canonical_int(item) {
        Some(v) => lp_int(v),
        None => {
            let n = item.len();
            let header = if n < 64 {
                1
            } else if n < 4096 {
                2
            } else {
                5
            };
            let body = header + n;
            body + if body < 128 {
                1
            } else if body < 16384 {
                2
            } else {
                3
            }
        }
    }
}

fn lp_int(v: i64) -> usize {
    match v {
        0..=127 => 2,
        -4096..=4095 => 3,
        -32768..=32767 => 4,
        -8_388_608..=8_388_607 => 5,
        -2_147_483_648..=2_147_483_647 => 6,
        _ => 10,
    }
}

/// A hash of an entry's field names (to tell entries that share the master's).
fn fields_hash<T: AsRef<[u8]>>(items: &[T]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ items.len() as u64;
    for field in items.iter().step_by(2) {
        for &b in field.as_ref().iter().chain(&[0xff]) {
            h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Stream {
    entries: BTreeMap<StreamId, Fields>,
    tail: TailNode,
    /// The largest ID ever added (or set with XSETID).
    pub last_id: StreamId,
    /// The largest ID ever deleted by XDEL.
    pub max_deleted: StreamId,
    /// Every entry ever added, deleted ones included.
    pub entries_added: u64,
    /// By name, in byte order (as Redis's rax lists them).
    pub groups: BTreeMap<Bytes, Group>,
}

impl Stream {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn first_id(&self) -> StreamId {
        self.entries.keys().next().copied().unwrap_or_default()
    }

    pub fn first(&self) -> Option<(StreamId, &Fields)> {
        self.entries.iter().next().map(|(id, f)| (*id, f))
    }

    pub fn last(&self) -> Option<(StreamId, &Fields)> {
        self.entries.iter().next_back().map(|(id, f)| (*id, f))
    }

    pub fn get(&self, id: StreamId) -> Option<&Fields> {
        self.entries.get(&id)
    }

    /// The ID `*` gives: the current time, or past the last ID when the clock is behind it.
    pub fn auto_id(&self, now_ms: u64) -> Option<StreamId> {
        if now_ms > self.last_id.ms {
            Some(StreamId::new(now_ms, 0))
        } else {
            self.last_id.incr()
        }
    }

    /// Appends an entry (fields and values alternating); the caller checked `id` is past
    /// `last_id`. It joins the last node unless `limits` say that node is full (Redis's
    /// streamAppendItem).
    pub fn append<T: AsRef<[u8]>>(&mut self, id: StreamId, items: &[T], limits: NodeLimits) {
        let max_bytes = if limits.bytes == 0 { NODE_MAX_BYTES } else { limits.bytes.min(NODE_MAX_BYTES) };
        let raw: usize = items.iter().map(|i| i.as_ref().len()).sum();
        let t = &self.tail;
        // The last node is gone when every entry in it was deleted or trimmed.
        let open = self.entries.values().next_back().is_some_and(|f| f.node() == t.node);
        let full = t.bytes + raw >= max_bytes || (limits.entries > 0 && t.entries >= limits.entries);
        if !open || full {
            self.start_node(id, items);
        }
        self.add_to_tail(id, items);
    }

    /// Closes the last node: the next entry starts one with `id` and `items`' field names
    /// as its master entry.
    fn start_node<T: AsRef<[u8]>>(&mut self, id: StreamId, items: &[T]) {
        self.tail = TailNode::new(self.tail.node + 1, id, items);
    }

    fn add_to_tail<T: AsRef<[u8]>>(&mut self, id: StreamId, items: &[T]) {
        self.tail.add(id, items);
        self.entries.insert(id, Fields::pack(self.tail.node, items));
        self.last_id = id;
        self.entries_added += 1;
    }

    /// Appends an entry of a node read from an RDB payload: `first` starts a new node, as
    /// the payload's layout did.
    pub fn append_as_loaded<T: AsRef<[u8]>>(&mut self, id: StreamId, items: &[T], first: bool) {
        if first || self.entries.is_empty() {
            self.start_node(id, items);
        }
        self.add_to_tail(id, items);
    }

    /// Rebuilds the last node's fill from its entries (after a snapshot is read; deleted
    /// entries are no longer known, so it may count fewer than Redis would).
    fn recount_tail(&mut self) {
        let Some(last) = self.entries.values().next_back().map(Fields::node) else { return };
        let first = self.entries.iter().rev().take_while(|(_, f)| f.node() == last).last();
        let Some((&first_id, _)) = first else { return };
        let mut tail: Option<TailNode> = None;
        for (id, f) in self.entries.range(first_id..) {
            let items: Vec<&[u8]> = f.iter().collect();
            tail.get_or_insert_with(|| TailNode::new(last, *id, &items)).add(*id, &items);
        }
        self.tail = tail.unwrap_or_default();
    }

    /// Entries from `start` to `end` inclusive, at most `count` (0 = all), descending with `rev`.
    pub fn range(&self, start: StreamId, end: StreamId, count: usize, rev: bool) -> Vec<(StreamId, &Fields)> {
        if start > end {
            return Vec::new();
        }
        let range = self.entries.range(start..=end).map(|(id, f)| (*id, f));
        let limit = if count == 0 { usize::MAX } else { count };
        if rev {
            range.rev().take(limit).collect()
        } else {
            range.take(limit).collect()
        }
    }

    pub fn delete(&mut self, id: StreamId) -> bool {
        let deleted = self.entries.remove(&id).is_some();
        if deleted && id > self.max_deleted {
            self.max_deleted = id;
        }
        deleted
    }

    /// Removes the oldest entries past `maxlen`; returns how many went. With `approx`
    /// (`~`), only whole blocks of [`NODE_ENTRIES`] go, at most `limit` entries (0 = no
    /// limit): Redis drops whole radix-tree nodes, so it may keep more than asked.
    pub fn trim_maxlen(&mut self, maxlen: usize, approx: bool, limit: usize) -> usize {
        let excess = self.entries.len().saturating_sub(maxlen);
        self.trim_front(excess, approx, limit)
    }

    /// Removes the entries below `minid` (the same `approx` rules).
    pub fn trim_minid(&mut self, minid: StreamId, approx: bool, limit: usize) -> usize {
        let below = self.entries.range(..minid).count();
        self.trim_front(below, approx, limit)
    }

    fn trim_front(&mut self, n: usize, approx: bool, limit: usize) -> usize {
        if !approx {
            for _ in 0..n {
                self.entries.pop_first();
            }
            return n;
        }
        let mut removed = 0;
        while let Some(node) = self.entries.values().next().map(Fields::node) {
            let in_node = self.entries.values().take_while(|f| f.node() == node).count();
            if removed + in_node > n || (limit > 0 && removed + in_node > limit) {
                break;
            }
            for _ in 0..in_node {
                self.entries.pop_first();
            }
            removed += in_node;
        }
        removed
    }

    /// Whether an XDEL tombstone may lie between `start` and the end.
    fn has_tombstones_from(&self, start: StreamId) -> bool {
        if self.entries.is_empty() || self.max_deleted.is_zero() || self.first_id() > self.max_deleted {
            return false;
        }
        start <= self.max_deleted
    }

    /// How many entries were ever added up to `id` (Redis's
    /// streamEstimateDistanceFromFirstEverEntry); None when it cannot be told.
    pub fn entries_up_to(&self, id: StreamId) -> Option<u64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if self.entries.is_empty() && id <= self.last_id {
            return Some(self.entries_added);
        }
        match id.cmp(&self.last_id) {
            std::cmp::Ordering::Equal => return Some(self.entries_added),
            std::cmp::Ordering::Greater => return None,
            std::cmp::Ordering::Less => {}
        }
        let first = self.first_id();
        if self.max_deleted.is_zero() || self.max_deleted < first {
            let before = self.entries_added - self.entries.len() as u64;
            match id.cmp(&first) {
                std::cmp::Ordering::Less => return Some(before),
                std::cmp::Ordering::Equal => return Some(before + 1),
                std::cmp::Ordering::Greater => {}
            }
        }
        None
    }

    /// A group's read counter after it reads `id` (Redis keeps counting while no tombstone
    /// lies ahead, else estimates).
    pub fn read_counter_after(&self, group_entries_read: i64, id: StreamId) -> i64 {
        if group_entries_read >= 0 && !self.has_tombstones_from(id) {
            group_entries_read + 1
        } else if self.entries_added > 0 {
            self.entries_up_to(id).map_or(-1, |n| n as i64)
        } else {
            group_entries_read
        }
    }

    /// Entries not yet delivered to a group (XINFO's `lag`); None when it cannot be told.
    pub fn lag(&self, group: &Group) -> Option<i64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if group.entries_read >= 0 && !self.has_tombstones_from(group.last_id) {
            return Some(self.entries_added as i64 - group.entries_read);
        }
        self.entries_up_to(group.last_id).map(|read| self.entries_added as i64 - read as i64)
    }

    /// Approximate bytes held, for memory accounting (sampled like other collections).
    pub fn approx_size(&self) -> usize {
        const SAMPLES: usize = 8;
        let (n, total) =
            self.entries.values().take(SAMPLES).fold((0usize, 0usize), |(n, t), f| (n + 1, t + f.bytes() + 48));
        let entries = (total * self.entries.len()).checked_div(n).unwrap_or(0);
        let groups: usize = self.groups.iter().map(|(name, g)| name.len() + 64 + g.pel.len() * 96).sum();
        64 + entries + groups
    }

    /// Appends the stream's encoding (see [`Stream::decode`]).
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        self.last_id.write(out);
        self.max_deleted.write(out);
        out.extend_from_slice(&self.entries_added.to_be_bytes());
        out.extend_from_slice(&(self.entries.len() as u32).to_be_bytes());
        for (id, fields) in &self.entries {
            id.write(out);
            put_bytes(out, &fields.0);
        }
        out.extend_from_slice(&(self.groups.len() as u32).to_be_bytes());
        for (name, g) in &self.groups {
            put_bytes(out, name);
            g.last_id.write(out);
            out.extend_from_slice(&g.entries_read.to_be_bytes());
            out.extend_from_slice(&(g.consumers.len() as u32).to_be_bytes());
            for (cname, c) in &g.consumers {
                put_bytes(out, cname);
                out.extend_from_slice(&c.seen_time.to_be_bytes());
                out.extend_from_slice(&c.active_time.to_be_bytes());
            }
            out.extend_from_slice(&(g.pel.len() as u32).to_be_bytes());
            for (id, n) in &g.pel {
                id.write(out);
                put_bytes(out, &n.consumer);
                out.extend_from_slice(&n.delivery_time.to_be_bytes());
                out.extend_from_slice(&n.delivery_count.to_be_bytes());
            }
        }
    }

    pub fn encoded_len(&self) -> usize {
        let entries: usize = self.entries.values().map(|f| 20 + f.bytes()).sum();
        let groups: usize = self
            .groups
            .iter()
            .map(|(name, g)| {
                36 + name.len()
                    + g.consumers.keys().map(|c| 20 + c.len()).sum::<usize>()
                    + g.pel.values().map(|n| 36 + n.consumer.len()).sum::<usize>()
            })
            .sum();
        48 + entries + groups
    }

    /// Reads what [`Stream::encode_into`] wrote.
    pub fn decode(data: &[u8]) -> Option<Stream> {
        let mut r = Reader(data);
        let mut s = Stream { last_id: r.id()?, max_deleted: r.id()?, entries_added: r.u64()?, ..Stream::default() };
        for _ in 0..r.u32()? {
            let id = r.id()?;
            let packed = r.bytes()?;
            s.entries.insert(id, Fields(packed.to_vec().into_boxed_slice()));
        }
        s.recount_tail();
        for _ in 0..r.u32()? {
            let name = Bytes::copy_from_slice(r.bytes()?);
            let mut g = Group::new(r.id()?, r.u64()? as i64);
            for _ in 0..r.u32()? {
                let cname = Bytes::copy_from_slice(r.bytes()?);
                let c = Consumer { seen_time: r.u64()? as i64, active_time: r.u64()? as i64, pel: BTreeSet::new() };
                g.consumers.insert(cname, c);
            }
            for _ in 0..r.u32()? {
                let id = r.id()?;
                let consumer = Bytes::copy_from_slice(r.bytes()?);
                let nack =
                    Nack { consumer: consumer.clone(), delivery_time: r.u64()? as i64, delivery_count: r.u64()? };
                g.consumers.get_mut(&consumer)?.pel.insert(id);
                g.pel.insert(id, nack);
            }
            s.groups.insert(name, g);
        }
        r.0.is_empty().then_some(s)
    }
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_be_bytes());
    out.extend_from_slice(b);
}

/// Bounds-checked reads over an encoded stream.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }

    fn u32(&mut self) -> Option<u32> {
        self.take(4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Option<u64> {
        let b = self.take(8)?;
        Some(u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
    }

    fn id(&mut self) -> Option<StreamId> {
        Some(StreamId::new(self.u64()?, self.u64()?))
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(ms: u64, seq: u64) -> StreamId {
        StreamId::new(ms, seq)
    }

    #[test]
    fn ids_parse_as_redis_does() {
        assert_eq!(StreamId::parse(b"5-3", 0, true, false), Some((id(5, 3), true)));
        assert_eq!(StreamId::parse(b"5", u64::MAX, false, false), Some((id(5, u64::MAX), true)));
        assert_eq!(StreamId::parse(b"-", 0, false, false), Some((StreamId::MIN, true)));
        assert_eq!(StreamId::parse(b"+", 0, false, false), Some((StreamId::MAX, true)));
        assert_eq!(StreamId::parse(b"-", 0, true, false), None);
        assert_eq!(StreamId::parse(b"7-*", 0, true, true), Some((id(7, 0), false)));
        assert_eq!(StreamId::parse(b"7-*", 0, true, false), None);
        for bad in [&b""[..], b"x", b"1-", b"-1", b"1-2-3", b"18446744073709551616", b" 1", b"1.5"] {
            assert_eq!(StreamId::parse(bad, 0, true, false), None, "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(
            StreamId::parse(b"18446744073709551615-18446744073709551615", 0, true, false),
            Some((StreamId::MAX, true))
        );
        assert_eq!(id(1, u64::MAX).incr(), Some(id(2, 0)));
        assert_eq!(StreamId::MAX.incr(), None);
        assert_eq!(id(2, 0).decr(), Some(id(1, u64::MAX)));
        assert_eq!(StreamId::MIN.decr(), None);
    }

    #[test]
    fn packed_fields_come_back_in_order() {
        let f = Fields::pack(7, &[&b"a"[..], b"", b"\xff\x00"]);
        assert_eq!(f.iter().collect::<Vec<_>>(), vec![&b"a"[..], b"", b"\xff\x00"]);
    }

    #[test]
    fn integers_in_listpacks() {
        for (text, v) in [(&b"0"[..], Some(0)), (b"-12", Some(-12)), (b"9223372036854775807", Some(i64::MAX))] {
            assert_eq!(canonical_int(text), v);
        }
        for text in [&b"-0"[..], b"007", b"+1", b"", b"-", b"1.5", b"99999999999999999999"] {
            assert_eq!(canonical_int(text), None, "{}", String::from_utf8_lossy(text));
        }
    }

    #[test]
    fn nodes_fill_as_redis_fills_them() {
        let big = vec![b'x'; 500];
        let mut s = Stream::default();
        for i in 1..=50 {
            s.append(id(i, 0), &[&b"f"[..], &big], NodeLimits::default());
        }
        // 18 bytes of listpack and master entry, then 512 per entry: the 8th would pass 4096.
        assert_eq!(s.trim_maxlen(10, true, 0), 35, "nodes of 7 entries");
        let mut s = Stream::default();
        for i in 1..=30 {
            s.append(id(i, 0), &[b"f", b"v"], NodeLimits { entries: 10, bytes: 4096 });
        }
        assert_eq!(s.trim_maxlen(15, true, 0), 10);
        assert_eq!(s.trim_maxlen(0, true, 15), 10, "LIMIT stops before a node it cannot take whole");
        let back = Stream::decode(&{
            let mut out = Vec::new();
            s.encode_into(&mut out);
            out
        })
        .expect("decodes");
        let mut back = back;
        back.append(id(31, 0), &[b"f", b"v"], NodeLimits { entries: 10, bytes: 4096 });
        assert_eq!(back.trim_maxlen(1, true, 0), 10, "the entry after a restart opened a node");
    }

    #[test]
    fn trimming_and_counters() {
        let mut s = Stream::default();
        for i in 1..=10 {
            s.append(id(i, 0), &[b"f", b"v"], NodeLimits::default());
        }
        assert_eq!(s.trim_maxlen(7, true, 0), 0, "~ drops whole nodes only");
        assert_eq!(s.trim_maxlen(7, false, 0), 3);
        assert_eq!(s.first_id(), id(4, 0));
        assert_eq!(s.trim_minid(id(6, 0), false, 0), 2);
        assert_eq!(s.len(), 5);
        assert_eq!(s.entries_up_to(id(6, 0)), Some(6));
        assert!(s.delete(id(8, 0)));
        assert_eq!(s.max_deleted, id(8, 0));
        assert_eq!(s.entries_up_to(id(7, 0)), None, "a tombstone lies ahead");
        let g = Group::new(id(10, 0), -1);
        assert_eq!(s.lag(&g), Some(0));
    }

    #[test]
    fn encoding_round_trips_groups_and_pending_entries() {
        let mut s = Stream::default();
        s.append(id(1, 1), &[b"a", b"1"], NodeLimits::default());
        s.append(id(2, 0), &[&b"b"[..], b"2", b"c", b"3"], NodeLimits::default());
        s.delete(id(1, 1));
        let mut g = Group::new(id(2, 0), 2);
        let alice = Bytes::from_static(b"alice");
        g.consumer(&alice, 100);
        g.consumer(&Bytes::from_static(b"bob"), 50);
        g.assign(id(2, 0), &alice, 120, 3);
        s.groups.insert(Bytes::from_static(b"g"), g);
        let mut buf = Vec::new();
        s.encode_into(&mut buf);
        assert_eq!(buf.len(), s.encoded_len());
        assert_eq!(Stream::decode(&buf), Some(s));
        assert_eq!(Stream::decode(&buf[..buf.len() - 1]), None);
    }
}
