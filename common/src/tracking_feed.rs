//! The messages a primary publishes on [`crate::TRACKING_FEED`] for CLIENT TRACKING: one per
//! commit naming every key it changed (so a BCAST client is told of them in one message per
//! prefix, as Redis tells it once per event-loop turn), or `f` after a flush (`F` and a
//! token: the tracking client whose request flushed).
//!
//! A changes message is `m` then, per key, `k` (or `K` and the 8-byte NOLOOP token of the
//! one tracking client that alone wrote it), the key's length (4 bytes, big-endian) and the
//! key. The older one-key forms, `k` + key and `K` + token + key, are still read.
//!
//! A script's read is `r`, the 8-byte token of the tracking client that ran it, then its
//! declared keys (each a 4-byte length and the key): Redis tracks a script's keys only once
//! the script ran a read-only command, which only the node that ran it knows.

use bytes::{BufMut, Bytes, BytesMut};

/// One changed key and the NOLOOP token of the client that alone changed it, if any.
pub type Change = (Bytes, Option<u64>);

/// What a feed message says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Feed {
    Changed(Vec<Change>),
    /// Everything changed (a flush), by the tracking client with this token if one flushed.
    Flushed(Option<u64>),
    /// The tracking client with this token ran a script that read: it tracks these keys.
    Read(u64, Vec<Bytes>),
}

pub const FLUSHED: &[u8] = b"f";

/// The message for a flush; `token`: the tracking client whose request flushed (0: none),
/// which hears of it after its reply (`F` and the 8-byte token).
pub fn encode_flushed(token: u64) -> Bytes {
    if token == 0 {
        return Bytes::from_static(FLUSHED);
    }
    let mut out = BytesMut::with_capacity(9);
    out.put_u8(b'F');
    out.put_u64(token);
    out.freeze()
}

/// The message for the keys one commit changed.
pub fn encode(changes: &[(&[u8], Option<u64>)]) -> Bytes {
    let size: usize = changes.iter().map(|(k, _)| k.len() + 13).sum();
    let mut out = BytesMut::with_capacity(1 + size);
    out.put_u8(b'm');
    for (key, token) in changes {
        match token {
            Some(t) => {
                out.put_u8(b'K');
                out.put_u64(*t);
            }
            None => out.put_u8(b'k'),
        }
        out.put_u32(key.len() as u32);
        out.put_slice(key);
    }
    out.freeze()
}

/// The message for a script that read, run by the tracking client `token`.
pub fn encode_read(token: u64, keys: &[Bytes]) -> Bytes {
    let mut out = BytesMut::with_capacity(9 + keys.iter().map(|k| k.len() + 4).sum::<usize>());
    out.put_u8(b'r');
    out.put_u64(token);
    for key in keys {
        out.put_u32(key.len() as u32);
        out.put_slice(key);
    }
    out.freeze()
}

/// Where a primary's feed stands: its epoch (random per process; 0: no feed) and how many
/// messages it had published. A gateway reads it off the node's reply batches; a read sent
/// after a batch with mark M runs after the writes of every feed message M counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FeedMark {
    pub epoch: u64,
    pub seq: u64,
}

impl FeedMark {
    /// Whether feed message `seq` of feed `epoch` came before this mark (so a read made
    /// at the mark saw its writes).
    pub fn covers(&self, epoch: u64, seq: u64) -> bool {
        self.epoch != 0 && self.epoch == epoch && seq <= self.seq
    }
}

/// Length-prefixed keys from `at` to the end of `payload`.
fn keys_from(payload: &Bytes, mut at: usize) -> Option<Vec<Bytes>> {
    let mut keys = Vec::new();
    while at < payload.len() {
        let len = u32::from_be_bytes(payload.get(at..at + 4)?.try_into().ok()?) as usize;
        at += 4;
        let end = at.checked_add(len).filter(|&e| e <= payload.len())?;
        keys.push(payload.slice(at..end));
        at = end;
    }
    Some(keys)
}

/// Reads a feed message; None for one it does not know or a malformed one.
pub fn decode(payload: &Bytes) -> Option<Feed> {
    let token_at = |at: usize| payload.get(at..at + 8).map(|b| u64::from_be_bytes(b.try_into().unwrap_or([0; 8])));
    match payload.first()? {
        b'f' => Some(Feed::Flushed(None)),
        b'F' => Some(Feed::Flushed(Some(token_at(1)?))),
        b'r' => Some(Feed::Read(token_at(1)?, keys_from(payload, 9)?)),
        b'k' => Some(Feed::Changed(vec![(payload.slice(1..), None)])),
        b'K' => Some(Feed::Changed(vec![(payload.get(9..).map(|_| payload.slice(9..))?, Some(token_at(1)?))])),
        b'm' => {
            let mut changes = Vec::new();
            let mut at = 1;
            while at < payload.len() {
                let token = match payload[at] {
                    b'k' => None,
                    b'K' => Some(token_at(at + 1)?),
                    _ => return None,
                };
                at += if token.is_some() { 9 } else { 1 };
                let len = u32::from_be_bytes(payload.get(at..at + 4)?.try_into().ok()?) as usize;
                at += 4;
                let end = at.checked_add(len).filter(|&e| e <= payload.len())?;
                changes.push((payload.slice(at..end), token));
                at = end;
            }
            Some(Feed::Changed(changes))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_round_trip_and_malformed_ones_are_refused() {
        let m = encode(&[(b"a", None), (b"", Some(7)), (b"key:3", Some(u64::MAX))]);
        let expected = vec![
            (Bytes::from_static(b"a"), None),
            (Bytes::new(), Some(7)),
            (Bytes::from_static(b"key:3"), Some(u64::MAX)),
        ];
        assert_eq!(decode(&m), Some(Feed::Changed(expected)));
        assert_eq!(decode(&Bytes::from_static(b"kx")), Some(Feed::Changed(vec![(Bytes::from_static(b"x"), None)])));
        assert_eq!(decode(&Bytes::from_static(FLUSHED)), Some(Feed::Flushed(None)));
        assert_eq!(decode(&encode_flushed(0)), Some(Feed::Flushed(None)));
        assert_eq!(decode(&encode_flushed(42)), Some(Feed::Flushed(Some(42))));
        assert_eq!(decode(&Bytes::from_static(b"F123")), None, "a short token");
        let r = encode_read(9, &[Bytes::from_static(b"k1"), Bytes::from_static(b"")]);
        assert_eq!(decode(&r), Some(Feed::Read(9, vec![Bytes::from_static(b"k1"), Bytes::new()])));
        for cut in 0..r.len() {
            assert_ne!(decode(&r.slice(..cut)), decode(&r), "a cut read message is not the whole");
        }
        for bad in [&b""[..], b"z", b"K123", b"mk\x00\x00\x00\x09abc", b"mq", b"r1234", b"r12345678\x00\x00\x00\x05ab"]
        {
            assert_eq!(decode(&Bytes::copy_from_slice(bad)), None, "{bad:?}");
        }
        for cut in 0..m.len() {
            // A truncated message is refused, never read past its end.
            let _ = decode(&m.slice(..cut));
        }
    }
}
