//! The messages a primary publishes on [`crate::TRACKING_FEED`] for CLIENT TRACKING: one per
//! commit naming every key it changed (so a BCAST client is told of them in one message per
//! prefix, as Redis tells it once per event-loop turn), or `f` after a flush.
//!
//! A changes message is `m` then, per key, `k` (or `K` and the 8-byte NOLOOP token of the
//! one tracking client that alone wrote it), the key's length (4 bytes, big-endian) and the
//! key. The older one-key forms, `k` + key and `K` + token + key, are still read.

use bytes::{BufMut, Bytes, BytesMut};

/// One changed key and the NOLOOP token of the client that alone changed it, if any.
pub type Change = (Bytes, Option<u64>);

/// What a feed message says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Feed {
    Changed(Vec<Change>),
    /// Everything changed (a flush).
    Flushed,
}

pub const FLUSHED: &[u8] = b"f";

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

/// Reads a feed message; None for one it does not know or a malformed one.
pub fn decode(payload: &Bytes) -> Option<Feed> {
    let token_at = |at: usize| payload.get(at..at + 8).map(|b| u64::from_be_bytes(b.try_into().unwrap_or([0; 8])));
    match payload.first()? {
        b'f' => Some(Feed::Flushed),
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
        assert_eq!(decode(&Bytes::from_static(FLUSHED)), Some(Feed::Flushed));
        for bad in [&b""[..], b"z", b"K123", b"mk\x00\x00\x00\x09abc", b"mq"] {
            assert_eq!(decode(&Bytes::copy_from_slice(bad)), None, "{bad:?}");
        }
        for cut in 0..m.len() {
            // A truncated message is refused, never read past its end.
            let _ = decode(&m.slice(..cut));
        }
    }
}
