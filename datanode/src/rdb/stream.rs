//! Streams in Redis's RDB form, for DUMP and RESTORE: entries packed into listpack nodes
//! keyed by their master ID, then the stream's counters and its consumer groups. DUMP
//! writes Redis 7.0's form (type 19, RDB 10: what 7.0 and 7.2 both restore), or 7.2's (21,
//! RDB 11) when a consumer's active time differs from its seen time; RESTORE reads
//! 5.0's (15), 7.0's (19) and 7.2's (21, with consumers' active time).
//!
//! A node's listpack: the master entry (count, deleted, field names, 0), then per entry
//! its flags, ID as a difference from the master ID, its fields (or, with SAMEFIELDS, only
//! values in the master's field order) and its element count, for walking back.

use bytes::Bytes;

use super::{put_len, put_str, RdbError, Reader};
use crate::stream::{Consumer, Group, Nack, Stream, StreamId};

pub(super) const TYPE_STREAM_LISTPACKS: u8 = 15;
pub(super) const TYPE_STREAM_LISTPACKS_2: u8 = 19;
pub(super) const TYPE_STREAM_LISTPACKS_3: u8 = 21;

const FLAG_DELETED: i64 = 1;
const FLAG_SAMEFIELDS: i64 = 2;

/// One listpack element.
enum Lp<'a> {
    Int(i64),
    Str(&'a [u8]),
}

/// Writes a listpack of `items` as Redis lays one out.
fn listpack(items: &[Lp<'_>]) -> Vec<u8> {
    let mut out = vec![0u8; 6];
    for item in items {
        let start = out.len();
        match *item {
            Lp::Int(v) => encode_int(&mut out, v),
            Lp::Str(s) => {
                let n = s.len();
                if n < 64 {
                    out.push(0x80 | n as u8);
                } else if n < 4096 {
                    out.extend_from_slice(&[0xE0 | (n >> 8) as u8, n as u8]);
                } else {
                    out.push(0xF0);
                    out.extend_from_slice(&(n as u32).to_le_bytes());
                }
                out.extend_from_slice(s);
            }
        }
        let len = out.len() - start;
        encode_backlen(&mut out, len);
    }
    out.push(0xFF);
    let total = out.len() as u32;
    out[..4].copy_from_slice(&total.to_le_bytes());
    let count = u16::try_from(items.len()).unwrap_or(u16::MAX);
    out[4..6].copy_from_slice(&count.to_le_bytes());
    out
}

fn encode_int(out: &mut Vec<u8>, v: i64) {
    if (0..=127).contains(&v) {
        out.push(v as u8);
    } else if (-4096..=4095).contains(&v) {
        let u = if v < 0 { (1 << 13) + v } else { v } as u16;
        out.extend_from_slice(&[0xC0 | (u >> 8) as u8, u as u8]);
    } else if (-32768..=32767).contains(&v) {
        out.push(0xF1);
        out.extend_from_slice(&(v as i16).to_le_bytes());
    } else if (-8_388_608..=8_388_607).contains(&v) {
        out.push(0xF2);
        out.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
    } else if (i32::MIN as i64..=i32::MAX as i64).contains(&v) {
        out.push(0xF3);
        out.extend_from_slice(&(v as i32).to_le_bytes());
    } else {
        out.push(0xF4);
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// An element's length written after it, seven bits a byte, so a reader can walk back.
fn encode_backlen(out: &mut Vec<u8>, len: usize) {
    let l = len as u64;
    let groups: &[u32] = match l {
        0..=127 => &[0],
        128..=16382 => &[7, 0],
        16383..=2_097_150 => &[14, 7, 0],
        2_097_151..=268_435_454 => &[21, 14, 7, 0],
        _ => &[28, 21, 14, 7, 0],
    };
    for (i, shift) in groups.iter().enumerate() {
        let part = ((l >> shift) & 127) as u8;
        out.push(if i == 0 { part } else { part | 128 });
    }
}

fn id_bytes(id: StreamId) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&id.ms.to_be_bytes());
    b[8..].copy_from_slice(&id.seq.to_be_bytes());
    b
}

/// DUMP's body for a stream (after the type byte).
/// The type DUMP writes `s` as: Redis 7.0's (which 7.0 and 7.2 restore) unless a consumer's
/// active time differs from its seen time, which only 7.2's form (21, RDB 11) can carry.
pub(super) fn dump_type(s: &Stream) -> u8 {
    let active = s.groups.values().flat_map(|g| g.consumers.values()).any(|c| c.active_time != c.seen_time);
    if active {
        TYPE_STREAM_LISTPACKS_3
    } else {
        TYPE_STREAM_LISTPACKS_2
    }
}

/// Writes `s` in the form of `kind` (from [`dump_type`]).
pub(super) fn write(s: &Stream, kind: u8, out: &mut Vec<u8>) {
    let entries = s.range(StreamId::new(0, 0), StreamId::new(u64::MAX, u64::MAX), 0, false);
    // The stream's own nodes (as Redis filled them under the group's stream-node-max-*).
    let nodes: Vec<&[(StreamId, &crate::stream::Fields)]> = entries.chunk_by(|a, b| a.1.node() == b.1.node()).collect();
    put_len(out, nodes.len());
    for node in nodes {
        let master = node[0].0;
        let master_fields: Vec<&[u8]> = node[0].1.iter().step_by(2).collect();
        let mut items = vec![Lp::Int(node.len() as i64), Lp::Int(0), Lp::Int(master_fields.len() as i64)];
        items.extend(master_fields.iter().map(|f| Lp::Str(f)));
        items.push(Lp::Int(0));
        for (id, fields) in node {
            let pairs: Vec<&[u8]> = fields.iter().collect();
            let names: Vec<&[u8]> = pairs.iter().step_by(2).copied().collect();
            let same = names == master_fields;
            // IDs within a node never go below the master's: the entries are in ID order.
            items.push(Lp::Int(if same { FLAG_SAMEFIELDS } else { 0 }));
            items.push(Lp::Int(id.ms.wrapping_sub(master.ms) as i64));
            items.push(Lp::Int(id.seq.wrapping_sub(master.seq) as i64));
            let n = names.len() as i64;
            if same {
                items.extend(pairs.iter().skip(1).step_by(2).map(|v| Lp::Str(v)));
                items.push(Lp::Int(n + 3));
            } else {
                items.push(Lp::Int(n));
                items.extend(pairs.iter().map(|p| Lp::Str(p)));
                items.push(Lp::Int(n + 3 + n + 1));
            }
        }
        put_str(out, &id_bytes(master));
        put_str(out, &listpack(&items));
    }
    put_len(out, s.len());
    put_len(out, s.last_id.ms as usize);
    put_len(out, s.last_id.seq as usize);
    let first = s.first_id();
    put_len(out, first.ms as usize);
    put_len(out, first.seq as usize);
    put_len(out, s.max_deleted.ms as usize);
    put_len(out, s.max_deleted.seq as usize);
    put_len(out, s.entries_added as usize);
    put_len(out, s.groups.len());
    for (name, g) in &s.groups {
        put_str(out, name);
        put_len(out, g.last_id.ms as usize);
        put_len(out, g.last_id.seq as usize);
        // Redis writes its "unknown" (-1) as the unsigned length it is.
        put_len(out, g.entries_read as u64 as usize);
        put_len(out, g.pel.len());
        for (id, nack) in &g.pel {
            out.extend_from_slice(&id_bytes(*id));
            out.extend_from_slice(&nack.delivery_time.to_le_bytes());
            put_len(out, nack.delivery_count as usize);
        }
        put_len(out, g.consumers.len());
        for (cname, c) in &g.consumers {
            put_str(out, cname);
            out.extend_from_slice(&c.seen_time.to_le_bytes());
            if kind >= TYPE_STREAM_LISTPACKS_3 {
                out.extend_from_slice(&c.active_time.to_le_bytes());
            }
            put_len(out, c.pel.len());
            for id in &c.pel {
                out.extend_from_slice(&id_bytes(*id));
            }
        }
    }
}

fn int(item: &Bytes) -> Result<i64, RdbError> {
    ferrocache_common::int::parse_i64(item).ok_or(RdbError::Format)
}

fn read_id(r: &mut Reader<'_>) -> Result<StreamId, RdbError> {
    let b = r.take(16)?;
    let half = |s: &[u8]| s.try_into().map(u64::from_be_bytes).map_err(|_| RdbError::Format);
    Ok(StreamId::new(half(&b[..8])?, half(&b[8..])?))
}

fn read_ms(r: &mut Reader<'_>) -> Result<i64, RdbError> {
    r.take(8)?.try_into().map(i64::from_le_bytes).map_err(|_| RdbError::Format)
}

fn read_len_id(r: &mut Reader<'_>) -> Result<StreamId, RdbError> {
    Ok(StreamId::new(r.len()? as u64, r.len()? as u64))
}

/// RESTORE of a stream of type `kind`, after its type byte.
pub(super) fn read(r: &mut Reader<'_>, kind: u8) -> Result<Stream, RdbError> {
    let mut s = Stream::default();
    let mut last_seen: Option<StreamId> = None;
    for _ in 0..r.len()? {
        let key = r.string()?;
        if key.len() != 16 {
            return Err(RdbError::Format);
        }
        let master = StreamId::new(
            u64::from_be_bytes(key[..8].try_into().map_err(|_| RdbError::Format)?),
            u64::from_be_bytes(key[8..].try_into().map_err(|_| RdbError::Format)?),
        );
        let items = super::listpack(&r.string()?)?;
        let mut it = items.iter();
        let mut next = || it.next().ok_or(RdbError::Format);
        let (count, deleted) = (int(next()?)?, int(next()?)?);
        let nfields = usize::try_from(int(next()?)?).map_err(|_| RdbError::Format)?;
        let master_fields: Vec<Bytes> = (0..nfields).map(|_| next().cloned()).collect::<Result<_, _>>()?;
        if int(next()?)? != 0 {
            return Err(RdbError::Format);
        }
        let total = count.checked_add(deleted).filter(|t| *t >= 0).ok_or(RdbError::Format)?;
        let mut first = true;
        for _ in 0..total {
            let flags = int(next()?)?;
            let ms = master.ms.wrapping_add(int(next()?)? as u64);
            let seq = master.seq.wrapping_add(int(next()?)? as u64);
            let id = StreamId::new(ms, seq);
            let pairs: Vec<Bytes> = if flags & FLAG_SAMEFIELDS != 0 {
                let mut pairs = Vec::with_capacity(nfields * 2);
                for f in &master_fields {
                    pairs.push(f.clone());
                    pairs.push(next()?.clone());
                }
                pairs
            } else {
                let n = usize::try_from(int(next()?)?).ok().and_then(|n| n.checked_mul(2)).ok_or(RdbError::Format)?;
                (0..n).map(|_| next().cloned()).collect::<Result<_, _>>()?
            };
            next()?; // the element count, for walking back
            if flags & FLAG_DELETED != 0 {
                continue;
            }
            // Entries must come in ID order, each once.
            if last_seen.is_some_and(|l| id <= l) {
                return Err(RdbError::Format);
            }
            last_seen = Some(id);
            s.append_as_loaded(id, &pairs, std::mem::take(&mut first));
        }
        if next().is_ok() {
            return Err(RdbError::Format);
        }
    }
    let length = r.len()?;
    if length != s.len() {
        return Err(RdbError::Format);
    }
    s.last_id = read_len_id(r)?;
    if kind >= TYPE_STREAM_LISTPACKS_2 {
        let _first = read_len_id(r)?;
        s.max_deleted = read_len_id(r)?;
        s.entries_added = r.len()? as u64;
    } else {
        // Redis 5 kept no count of entries ever added: the ones there are the best guess.
        s.entries_added = s.len() as u64;
    }
    if last_seen.is_some_and(|l| l > s.last_id) {
        return Err(RdbError::Format);
    }
    for _ in 0..r.len()? {
        let name = r.string()?;
        let last_id = read_len_id(r)?;
        // Before Redis 7 groups kept no read counter: estimated as Redis's load does.
        let entries_read = if kind >= TYPE_STREAM_LISTPACKS_2 {
            r.len()? as u64 as i64
        } else {
            s.entries_up_to(last_id).map_or(-1, |n| n as i64)
        };
        let mut g = Group::new(last_id, entries_read);
        for _ in 0..r.len()? {
            let id = read_id(r)?;
            let delivery_time = read_ms(r)?;
            let delivery_count = r.len()? as u64;
            g.pel.insert(id, Nack { consumer: Bytes::new(), delivery_time, delivery_count });
        }
        // Redis's checks of a consumer group (its "deep sanitization"): consumer names are
        // unique, every consumer's pending entry is one of the group's and no other
        // consumer's, and every one of the group's has a consumer. A payload that breaks one
        // would restore to a group that dumps into a payload that does not restore.
        let mut claimed = std::collections::BTreeSet::new();
        for _ in 0..r.len()? {
            let cname = r.string()?;
            let seen_time = read_ms(r)?;
            let active_time = if kind >= TYPE_STREAM_LISTPACKS_3 { read_ms(r)? } else { seen_time };
            let mut c = Consumer { seen_time, active_time, pel: Default::default() };
            for _ in 0..r.len()? {
                let id = read_id(r)?;
                let nack = g.pel.get_mut(&id).ok_or(RdbError::Format)?;
                if !claimed.insert(id) {
                    return Err(RdbError::Format);
                }
                nack.consumer = cname.clone();
                c.pel.insert(id);
            }
            if g.consumers.insert(cname, c).is_some() {
                return Err(RdbError::Format);
            }
        }
        if claimed.len() != g.pel.len() {
            return Err(RdbError::Format);
        }
        if s.groups.insert(name, g).is_some() {
            return Err(RdbError::Format);
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::super::{dump, dump_exact, restore};
    use super::*;
    use crate::stream::NodeLimits;
    use crate::value::Value;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
    }

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    /// redis-server 7.0.15's DUMP of: XADD s 1-1 a 1 b 2; XADD s 1-2 a 3 b 4; XADD s 2-0 c 5;
    /// XADD s 3-0 a 6 b 7; XDEL s 1-2; XGROUP CREATE s g 0; XREADGROUP GROUP g alice COUNT 2
    /// STREAMS s >; XGROUP CREATECONSUMER s g bob (its listpack LZF-compressed).
    const REDIS_DUMP: &str = "13011000000000000000010000000000000001c34044404a124a0000001f0003010101020181610281620200200900002001401102050103600902030104200b40130adfff02010181630205010620270002400f02060107201c00ff0303000101010204010167020081ffffffffffffffff020000000000000001000000000000000134d60f3ba2010000010000000000000002000000000000000034d60f3ba2010000010205616c69636534d60f3ba201000002000000000000000100000000000000010000000000000002000000000000000003626f6250d60f3ba2010000000a00d394a8d0b9bf1eb7";

    /// Found by fuzzing: two consumers of one name, the first owning a pending entry. Taken
    /// as it was, the second replaced the first and the group dumped into a payload that did
    /// not restore (a pending entry without its consumer). Redis refuses it; so do we.
    #[test]
    fn a_group_with_a_consumer_named_twice_is_refused() {
        let mut payload = hex("1500000002022d020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202820202020202020202020225020200000a020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020100000000000000000000000000f1020202000202020200");
        let n = payload.len();
        payload[n - 10..n - 8].copy_from_slice(&10u16.to_le_bytes());
        let crc = super::super::crc64(&payload[..n - 8]);
        payload[n - 8..].copy_from_slice(&crc.to_le_bytes());
        assert!(restore(&payload, 1 << 20).is_err());
    }

    /// Redis 5 kept no read counters: they are estimated on load, as Redis 7's load does
    /// (the payload of Redis's own test: six entries, one deleted, trimmed to two; group g1
    /// read up to 5-0, g2 nothing).
    #[test]
    fn a_redis_5_stream_estimates_its_groups_read_counters() {
        let Ok(Value::Stream(s)) = restore(&hex("0f011000000000000000010000000000000000c3404a405716570000002300020104010101846461746105000103010020010381610204200a0001400a0062600a0002400a0063600a4022018164200a4039200a0065600a0005400a0066200a00ff02060002026731050004000000000000000100000000000000003ef783437a01000001000000000000000200000000000000003ef783437a01000001000000000000000400000000000000003ef783437a01000001000000000000000500000000000000003ef783437a0100000101036331313ef783437a01000004000000000000000100000000000000000000000000000002000000000000000000000000000000040000000000000000000000000000000500000000000000000267320000000009003d52ef6867521dfa"), 1 << 20) else { panic!("restores") };
        assert_eq!((s.entries_added, s.max_deleted), (2, StreamId::MIN));
        assert_eq!(s.groups[&b("g1")].entries_read, 1);
        assert_eq!(s.groups[&b("g2")].entries_read, 0);
    }

    #[test]
    fn a_redis_stream_restores_whole() {
        let Ok(Value::Stream(s)) = restore(&hex(REDIS_DUMP), 1 << 20) else { panic!("restores") };
        let all = s.range(StreamId::new(0, 0), StreamId::new(u64::MAX, u64::MAX), 0, false);
        let listed: Vec<(StreamId, Vec<&[u8]>)> = all.iter().map(|(id, f)| (*id, f.iter().collect())).collect();
        let want: Vec<(StreamId, Vec<&[u8]>)> = vec![
            (StreamId::new(1, 1), vec![b"a", b"1", b"b", b"2"]),
            (StreamId::new(2, 0), vec![b"c", b"5"]),
            (StreamId::new(3, 0), vec![b"a", b"6", b"b", b"7"]),
        ];
        assert_eq!(listed, want);
        assert_eq!((s.last_id, s.max_deleted, s.entries_added), (StreamId::new(3, 0), StreamId::new(1, 2), 4));
        let g = &s.groups[&b("g")];
        assert_eq!((g.last_id, g.entries_read), (StreamId::new(2, 0), -1));
        assert_eq!(g.pel.len(), 2);
        assert!(g.pel.values().all(|n| n.consumer == b("alice") && n.delivery_count == 1));
        assert_eq!(g.consumers[&b("alice")].pel.len(), 2);
        assert!(g.consumers[&b("bob")].pel.is_empty());
        // What DUMP writes restores to the same stream (7.0's form keeps no active time:
        // it comes back as the seen time, as Redis 7.2 loads a 7.0 payload).
        let again = restore(&dump(&Value::Stream(s.clone())), 1 << 20);
        assert_eq!(again, Ok(Value::Stream(s)));
    }

    #[test]
    fn an_active_time_apart_from_the_seen_time_dumps_in_redis_7_2_form() {
        let Ok(Value::Stream(mut s)) = restore(&hex(REDIS_DUMP), 1 << 20) else { panic!("restores") };
        let dumped = dump(&Value::Stream(s.clone()));
        assert_eq!(dumped[0], TYPE_STREAM_LISTPACKS_2);
        let alice = s.groups.get_mut(&b("g")).and_then(|g| g.consumers.get_mut(&b("alice"))).expect("alice");
        alice.active_time = -1;
        let dumped = dump(&Value::Stream(s.clone()));
        assert_eq!(dumped[0], TYPE_STREAM_LISTPACKS_3);
        assert_eq!(restore(&dumped, 1 << 20), Ok(Value::Stream(s)));
    }

    #[test]
    fn big_streams_span_nodes_and_round_trip() {
        let mut s = Stream::default();
        for i in 1..=450u64 {
            let value = if i == 7 { vec![b'v'; 5000] } else { i.to_string().into_bytes() };
            let field: &[u8] = if i % 50 == 0 { b"other" } else { b"f" };
            s.append(StreamId::new(1000 + i / 3, i % 3), &[field, &value[..], b"n", b"-70000"], NodeLimits::default());
        }
        s.delete(StreamId::new(1001, 0));
        let mut g = Group::new(StreamId::new(1100, 0), 290);
        g.consumer(&b("c1"), 5);
        g.assign(StreamId::new(1001, 1), &b("c1"), 77, 3);
        if let Some(c) = g.consumers.get_mut(&b("c1")) {
            c.active_time = c.seen_time;
        }
        s.groups.insert(b("grp"), g);
        let v = Value::Stream(Box::new(s.clone()));
        let Ok(Value::Stream(back)) = restore(&dump(&v), 1 << 20) else { panic!("restores") };
        // Entries, counters and groups come back (not the in-memory node numbering).
        let all = |s: &Stream| -> Vec<(StreamId, Vec<Vec<u8>>)> {
            s.range(StreamId::new(0, 0), StreamId::new(u64::MAX, u64::MAX), 0, false)
                .into_iter()
                .map(|(id, f)| (id, f.iter().map(|x| x.to_vec()).collect()))
                .collect()
        };
        assert_eq!(all(&back).len(), 449);
        assert_eq!(all(&back), all(&s));
        assert_eq!((back.last_id, back.max_deleted, back.entries_added), (s.last_id, s.max_deleted, s.entries_added));
        assert_eq!(back.groups, s.groups);
        assert_eq!(restore(&dump_exact(&v), 1 << 20), Ok(v));
    }

    #[test]
    fn listpacks_encode_as_redis_does() {
        // Integers of every width, and strings of each length class.
        let long = vec![b'x'; 5000];
        let mid = vec![b'y'; 100];
        let items = [
            Lp::Int(5),
            Lp::Int(-1),
            Lp::Int(4095),
            Lp::Int(-32768),
            Lp::Int(8_000_000),
            Lp::Int(-2_000_000_000),
            Lp::Int(i64::MIN),
            Lp::Str(b"abc"),
            Lp::Str(&mid),
            Lp::Str(&long),
        ];
        let blob = listpack(&items);
        let read = super::super::listpack(&blob).expect("reads back");
        let want = ["5", "-1", "4095", "-32768", "8000000", "-2000000000", &i64::MIN.to_string(), "abc"];
        for (got, want) in read.iter().zip(want) {
            assert_eq!(got.as_ref(), want.as_bytes());
        }
        assert_eq!((read[8].len(), read[9].len()), (100, 5000));
        assert_eq!(u32::from_le_bytes(blob[..4].try_into().expect("4")) as usize, blob.len());
        // Back-lengths: 1 byte up to 127, then seven bits a byte with the high bit set after
        // the first.
        let mut out = Vec::new();
        encode_backlen(&mut out, 5003);
        assert_eq!(out, [(5003u32 >> 7) as u8, ((5003u32 & 127) | 128) as u8]);
    }

    #[test]
    fn broken_streams_are_refused() {
        let mut payload = hex(REDIS_DUMP);
        // A consumer's pending entry the group does not have.
        let at = payload.windows(5).position(|w| w == b"alice").expect("alice") + 5 + 8 + 1;
        payload[at + 15] ^= 0x40;
        let body = payload.len() - 8;
        let crc = super::super::crc64(&payload[..body]);
        payload[body..].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(restore(&payload, 1 << 20), Err(RdbError::Format));
    }
}
