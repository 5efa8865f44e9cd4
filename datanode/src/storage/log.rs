//! The append-only log's record format: what a node's commits did, in the replication
//! stream's own terms (the effects replicas apply), so a restart replays them exactly as a
//! replica would.
//!
//! ```text
//! record:  u32 payload length, u32 CRC-32 of the payload, payload
//! payload: 'E', u64 offset before, u32 effect count,
//!               per effect: u32 argument count, per argument: u32 length, bytes
//!          'P', u64 offset, u16 replid length, replid     (the node's position was set:
//!               promotion, full sync, start)
//!          'S', u32 count, per script: u32 length, body    (the Lua scripts loaded when a
//!               segment starts after a new image: images hold keys only)
//! ```
//! Integers are big-endian. A record is written whole or, after a crash, found torn at the
//! end of the last segment, where recovery cuts it off.

use bytes::Bytes;

use super::Position;
use crate::replication::backlog::Effect;

const KIND_EFFECTS: u8 = b'E';
const KIND_POSITION: u8 = b'P';
const KIND_SCRIPTS: u8 = b'S';
const HEADER: usize = 8;
/// Largest payload a reader accepts (a bigger length is damage, not data): the largest
/// command a client may send, 2 GiB, fits.
const MAX_PAYLOAD: usize = u32::MAX as usize;

#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Effects {
        offset_before: u64,
        effects: Vec<Effect>,
    },
    Position(Position),
    /// The scripts loaded at this point (SCRIPT LOAD); later effects may add or flush some.
    Scripts(Vec<Bytes>),
}

/// Appends `effects` (which follow offset `offset_before`) as one record.
pub fn encode_effects(out: &mut Vec<u8>, offset_before: u64, effects: &[Effect]) {
    let start = begin(out);
    out.push(KIND_EFFECTS);
    out.extend_from_slice(&offset_before.to_be_bytes());
    out.extend_from_slice(&(effects.len() as u32).to_be_bytes());
    for effect in effects {
        out.extend_from_slice(&(effect.len() as u32).to_be_bytes());
        for arg in effect {
            out.extend_from_slice(&(arg.len() as u32).to_be_bytes());
            out.extend_from_slice(arg);
        }
    }
    end(out, start);
}

/// One commit's effects as a record of their own (what the backlog and the writer share).
pub fn effects_record(offset_before: u64, effects: &[Effect]) -> Bytes {
    let size: usize = effects.iter().map(|e| 4 + e.iter().map(|a| 4 + a.len()).sum::<usize>()).sum();
    let mut out = Vec::with_capacity(HEADER + 13 + size);
    encode_effects(&mut out, offset_before, effects);
    out.into()
}

/// The effects of a record made by [`effects_record`], as slices of it (no copies).
pub fn decode_effects(record: &Bytes) -> Option<(u64, Vec<Effect>)> {
    match decode_at(record)? {
        (Record::Effects { offset_before, effects }, _) => Some((offset_before, effects)),
        _ => None,
    }
}

pub fn encode_position(out: &mut Vec<u8>, p: &Position) {
    let start = begin(out);
    out.push(KIND_POSITION);
    out.extend_from_slice(&p.offset.to_be_bytes());
    let replid = &p.replid.as_bytes()[..p.replid.len().min(u16::MAX as usize)];
    out.extend_from_slice(&(replid.len() as u16).to_be_bytes());
    out.extend_from_slice(replid);
    end(out, start);
}

/// The scripts loaded at this point, as one record of their own.
pub fn scripts_record(bodies: &[Bytes]) -> Bytes {
    let mut out = Vec::with_capacity(HEADER + 5 + bodies.iter().map(|b| 4 + b.len()).sum::<usize>());
    let start = begin(&mut out);
    out.push(KIND_SCRIPTS);
    out.extend_from_slice(&(bodies.len() as u32).to_be_bytes());
    for body in bodies {
        out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        out.extend_from_slice(body);
    }
    end(&mut out, start);
    out.into()
}

fn begin(out: &mut Vec<u8>) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER]);
    start
}

fn end(out: &mut [u8], start: usize) {
    let payload = &out[start + HEADER..];
    let len = payload.len() as u32;
    let crc = crc32fast::hash(payload);
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_be_bytes());
}

/// What reading a segment found.
#[derive(Debug)]
pub struct Read {
    /// Bytes of whole, valid records from the start.
    pub valid: usize,
    /// Something follows them that is not a whole valid record.
    pub torn: bool,
}

/// Reads records from the start of `data`, handing each to `each`, until the end or the
/// first record that is incomplete or fails its checksum.
pub fn read(data: &Bytes, mut each: impl FnMut(Record)) -> Read {
    let mut at = 0;
    while at < data.len() {
        match decode_at(&data.slice(at..)) {
            Some((record, used)) => {
                each(record);
                at += used;
            }
            None => return Read { valid: at, torn: true },
        }
    }
    Read { valid: at, torn: false }
}

/// Decodes the record at the start of `data`; arguments are slices of `data`.
fn decode_at(data: &Bytes) -> Option<(Record, usize)> {
    let head = data.get(..HEADER)?;
    let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
    let crc = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
    if len > MAX_PAYLOAD {
        return None;
    }
    let end = HEADER.checked_add(len)?;
    if data.len() < end || crc32fast::hash(&data[HEADER..end]) != crc {
        return None;
    }
    Some((decode_payload(data.slice(HEADER..end))?, end))
}

fn decode_payload(payload: Bytes) -> Option<Record> {
    let mut cur = Cursor { data: &payload, at: 0 };
    match cur.take(1)?[0] {
        KIND_EFFECTS => {
            let offset_before = cur.u64()?;
            let count = cur.u32()? as usize;
            // Counts come from the file: never reserve more than the bytes could hold.
            let mut effects = Vec::with_capacity(count.min(cur.left() / 4));
            for _ in 0..count {
                let argc = cur.u32()? as usize;
                let mut effect = Vec::with_capacity(argc.min(cur.left() / 4));
                for _ in 0..argc {
                    let n = cur.u32()? as usize;
                    let at = cur.at;
                    cur.take(n)?;
                    effect.push(payload.slice(at..at + n));
                }
                effects.push(effect);
            }
            (cur.left() == 0).then_some(Record::Effects { offset_before, effects })
        }
        KIND_POSITION => {
            let offset = cur.u64()?;
            let n = u16::from_be_bytes(cur.take(2)?.try_into().ok()?) as usize;
            let replid = String::from_utf8(cur.take(n)?.to_vec()).ok()?;
            (cur.left() == 0).then_some(Record::Position(Position { replid, offset }))
        }
        KIND_SCRIPTS => {
            let count = cur.u32()? as usize;
            let mut bodies = Vec::with_capacity(count.min(cur.left() / 4));
            for _ in 0..count {
                let n = cur.u32()? as usize;
                let at = cur.at;
                cur.take(n)?;
                bodies.push(payload.slice(at..at + n));
            }
            (cur.left() == 0).then_some(Record::Scripts(bodies))
        }
        _ => None,
    }
}

struct Cursor<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn left(&self) -> usize {
        self.data.len() - self.at
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.left() < n {
            return None;
        }
        let head = &self.data[self.at..self.at + n];
        self.at += n;
        Some(head)
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn effect(args: &[&str]) -> Effect {
        args.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect()
    }

    #[test]
    fn round_trips_and_stops_at_a_torn_tail() {
        let mut out = Vec::new();
        let p = Position { replid: "r1".into(), offset: 3 };
        encode_position(&mut out, &p);
        let effects = vec![effect(&["SET", "k", "v"]), effect(&["DEL", "k"])];
        encode_effects(&mut out, 3, &effects);
        let scripts = vec![Bytes::from("return 1"), Bytes::new()];
        out.extend_from_slice(&scripts_record(&scripts));
        let whole = out.len();
        encode_effects(&mut out, 5, &[effect(&["INCR", "n"])]);
        let out = Bytes::from(out);
        let mut got = Vec::new();
        let r = read(&out, |rec| got.push(rec));
        assert_eq!((r.valid, r.torn), (out.len(), false));
        assert_eq!(got[0], Record::Position(p));
        assert_eq!(got[1], Record::Effects { offset_before: 3, effects });
        assert_eq!(got[2], Record::Scripts(scripts));
        // Every cut inside the last record leaves the first three readable.
        for cut in whole..out.len() {
            let mut n = 0;
            let r = read(&out.slice(..cut), |_| n += 1);
            assert_eq!((n, r.valid, r.torn), (3, whole, cut > whole));
        }
        // A flipped bit is found by the checksum.
        let mut bad = out.to_vec();
        bad[whole + 12] ^= 1;
        let r = read(&Bytes::from(bad), |_| {});
        assert_eq!((r.valid, r.torn), (whole, true));
    }

    proptest! {
        #[test]
        fn garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..256)) {
            let r = read(&Bytes::from(data.clone()), |_| {});
            prop_assert!(r.valid <= data.len());
        }
    }
}
