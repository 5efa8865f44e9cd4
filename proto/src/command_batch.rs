//! The datanode's decoding of a CommandBatch, written by hand for its data commands.
//!
//! Through prost's generic decoding, each field of each command cost a nested merge with its
//! own length checks and a split of the receive buffer; under pipelined GETs that was a sixth
//! of a primary datanode's CPU. Here the message is taken out of the receive buffer once and
//! walked with an index; a data command's arguments are slices of it (no copy).
//!
//! Only the common shape is decoded here: data commands, scalar fields, unknown fields. At
//! anything else (another kind of request, a group, a malformed field) the whole message
//! goes to prost, whose answer (the message or its error) is then the answer. So this
//! decoder must only agree with prost where it answers at all; the tests here and the
//! `command_batch` fuzz target check that it does.

use bytes::Bytes;
use prost::Message;

use crate::internal::v1::{command, Command, CommandBatch, DataRequest};

/// Decodes a whole CommandBatch message.
pub fn decode(message: Bytes) -> Result<CommandBatch, prost::DecodeError> {
    match decode_common(&message) {
        Some(batch) => Ok(batch),
        None => CommandBatch::decode(message),
    }
}

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const DELIMITED: u8 = 2;
const FIXED32: u8 = 5;

/// The batch, when it has only the common shape (else None: prost decides).
pub fn decode_common(message: &Bytes) -> Option<CommandBatch> {
    let mut batch = CommandBatch::default();
    let mut r = Reader { message, pos: 0, end: message.len() };
    while r.pos < r.end {
        match r.key()? {
            (1, DELIMITED) => {
                let (from, to) = r.delimited()?;
                batch.node_id = String::from_utf8(message[from..to].to_vec()).ok()?;
            }
            (2, DELIMITED) => {
                let (from, to) = r.delimited()?;
                let mut c = Command::default();
                merge_command(&mut c, r.within(from, to))?;
                batch.commands.push(c);
            }
            // Repeated scalars come packed (proto3) or one per field; both are accepted.
            (3, DELIMITED) => {
                let (from, to) = r.delimited()?;
                let mut ids = r.within(from, to);
                while ids.pos < ids.end {
                    batch.cancel.push(ids.varint()?);
                }
            }
            (3, VARINT) => batch.cancel.push(r.varint()?),
            (1..=3, _) => return None,
            (_, wire) => r.skip(wire)?,
        }
    }
    Some(batch)
}

fn merge_command(c: &mut Command, mut r: Reader<'_>) -> Option<()> {
    while r.pos < r.end {
        match r.key()? {
            (1, VARINT) => c.id = r.varint()?,
            (2, VARINT) => c.slot = r.varint()? as u32,
            (3, VARINT) => c.config_epoch = r.varint()?,
            (5, VARINT) => c.readonly = r.varint()? != 0,
            (6, VARINT) => c.keyed = r.varint()? != 0,
            (7, DELIMITED) => {
                let (from, to) = r.delimited()?;
                // A second data field merges into the first, as prost merges a message field.
                if !matches!(c.request, Some(command::Request::Data(_))) {
                    c.request = Some(command::Request::Data(DataRequest::default()));
                }
                if let Some(command::Request::Data(d)) = &mut c.request {
                    merge_data(d, r.within(from, to))?;
                }
            }
            // Fields 8-16 are the other requests: prost's.
            (1..=16, _) => return None,
            (_, wire) => r.skip(wire)?,
        }
    }
    Some(())
}

fn merge_data(d: &mut DataRequest, mut r: Reader<'_>) -> Option<()> {
    while r.pos < r.end {
        match r.key()? {
            (1, DELIMITED) => {
                let (from, to) = r.delimited()?;
                d.args.push(r.message.slice(from..to));
            }
            (2, VARINT) => d.db = r.varint()? as u32,
            (3, VARINT) => d.no_touch = r.varint()? != 0,
            (4, VARINT) => d.writer = r.varint()?,
            (1..=4, _) => return None,
            (_, wire) => r.skip(wire)?,
        }
    }
    Some(())
}

/// A cursor over `message[pos..end]`: one message or a field's contents. Every method
/// answers None where prost would refuse the input (or where prost is left to decide).
struct Reader<'m> {
    message: &'m Bytes,
    pos: usize,
    end: usize,
}

impl<'m> Reader<'m> {
    /// A reader of a field's contents (bounds from [`Reader::delimited`]).
    fn within(&self, from: usize, to: usize) -> Reader<'m> {
        Reader { message: self.message, pos: from, end: to }
    }

    /// prost's `decode_varint` / `decode_key` would do (run on a slice of the rest): measured
    /// so, the primary took 7-10 % more CPU per GET -P16 than with these, whose one-byte case
    /// is inline.
    fn varint(&mut self) -> Option<u64> {
        let bytes = self.message.get(self.pos..self.end)?;
        // Most are one byte (field keys, lengths under 128, small numbers).
        let &first = bytes.first()?;
        if first < 0x80 {
            self.pos += 1;
            return Some(u64::from(first));
        }
        let mut value = 0u64;
        for (i, &b) in bytes.iter().take(10).enumerate() {
            value |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                // The tenth byte holds bit 63 only.
                if i == 9 && b > 1 {
                    return None;
                }
                self.pos += i + 1;
                return Some(value);
            }
        }
        None
    }

    /// A field's number and wire type; None for a key prost refuses (field 0, wider than
    /// 32 bits) and for groups and wire types 6 and 7.
    fn key(&mut self) -> Option<(u64, u8)> {
        let key = self.varint()?;
        let (field, wire) = (key >> 3, (key & 7) as u8);
        (key <= u64::from(u32::MAX) && field != 0 && matches!(wire, VARINT | FIXED64 | DELIMITED | FIXED32))
            .then_some((field, wire))
    }

    /// The bounds of a length-delimited field's contents; moves past them.
    fn delimited(&mut self) -> Option<(usize, usize)> {
        let len = self.varint()?;
        let from = self.pos;
        if len > (self.end - from) as u64 {
            return None;
        }
        self.pos = from + len as usize;
        Some((from, self.pos))
    }

    fn advance(&mut self, n: usize) -> Option<()> {
        if n > self.end - self.pos {
            return None;
        }
        self.pos += n;
        Some(())
    }

    /// Moves past a field this decoder does not know, as prost skips one.
    fn skip(&mut self, wire: u8) -> Option<()> {
        match wire {
            VARINT => self.varint().map(drop),
            FIXED64 => self.advance(8),
            DELIMITED => self.delimited().map(drop),
            FIXED32 => self.advance(4),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::internal::v1::{TransactionRequest, WaitRequest, WatchedKey};

    fn data(args: &[&[u8]]) -> command::Request {
        command::Request::Data(DataRequest {
            args: args.iter().map(|a| Bytes::copy_from_slice(a)).collect(),
            db: 3,
            no_touch: true,
            writer: 1 << 40,
        })
    }

    /// Data commands only: the shape decoded here.
    fn common() -> CommandBatch {
        let big = vec![b'v'; 300];
        CommandBatch {
            node_id: "shard-0001-node-2".into(),
            commands: vec![
                Command {
                    id: 1,
                    slot: 16383,
                    config_epoch: 7,
                    readonly: true,
                    keyed: true,
                    request: Some(data(&[b"GET", b"k"])),
                },
                Command { id: u64::MAX, request: Some(data(&[b"SET", b"k", &big])), ..Default::default() },
                Command { id: 3, request: Some(data(&[])), ..Default::default() },
                Command { id: 4, ..Default::default() },
            ],
            cancel: vec![1, 300, u64::MAX],
        }
    }

    fn with_other_requests() -> CommandBatch {
        let mut batch = common();
        let transaction = TransactionRequest {
            watches: vec![WatchedKey { key: Bytes::from_static(b"w"), token: Bytes::from_static(b"t"), db: 1 }],
            commands: vec![DataRequest { args: vec![Bytes::from_static(b"INCR")], ..Default::default() }],
            db: 2,
            no_touch: false,
            writer: 9,
        };
        let wait = WaitRequest { replicas: 2, timeout_ms: 100, aof: true, local: 4 };
        batch.commands.push(Command {
            id: 5,
            request: Some(command::Request::Transaction(transaction)),
            ..Default::default()
        });
        batch.commands.push(Command { id: 6, request: Some(command::Request::Wait(wait)), ..Default::default() });
        batch
    }

    /// Where the hand decoder answers, prost accepts the input and decodes the same batch;
    /// and [`decode`] answers as prost does everywhere. True when the hand decoder answered.
    fn agree(bytes: &[u8]) -> bool {
        let message = Bytes::copy_from_slice(bytes);
        let prosts = CommandBatch::decode(bytes);
        let ours = decode_common(&message);
        if let Some(ours) = &ours {
            assert_eq!(prosts.as_ref().ok(), Some(ours), "input {bytes:?}");
        }
        assert_eq!(decode(message).ok(), prosts.ok(), "input {bytes:?}");
        ours.is_some()
    }

    #[test]
    fn decodes_data_commands_by_hand_and_the_rest_through_prost() {
        let batch = common();
        assert_eq!(decode_common(&Bytes::from(batch.encode_to_vec())), Some(batch));
        assert_eq!(decode_common(&Bytes::new()), Some(CommandBatch::default()));
        let batch = with_other_requests();
        let message = Bytes::from(batch.encode_to_vec());
        assert_eq!(decode_common(&message), None);
        assert_eq!(decode(message).unwrap(), batch);
    }

    #[test]
    fn arguments_are_slices_of_the_message() {
        let message = Bytes::from(common().encode_to_vec());
        let batch = decode_common(&message).unwrap();
        let Some(command::Request::Data(d)) = &batch.commands[1].request else { panic!("not data") };
        assert!(message.as_ptr_range().contains(&d.args[2].as_ptr()));
    }

    #[test]
    fn agrees_with_prost_on_every_cut_and_every_flipped_byte() {
        for (batch, mostly_by_hand) in [(common(), true), (with_other_requests(), false)] {
            let bytes = batch.encode_to_vec();
            let mut answered = 0;
            for cut in 0..bytes.len() {
                answered += usize::from(agree(&bytes[..cut]));
            }
            for i in 0..bytes.len() {
                for flip in [0x01, 0x07, 0x08, 0x80, 0xff] {
                    let mut changed = bytes.clone();
                    changed[i] ^= flip;
                    answered += usize::from(agree(&changed));
                }
            }
            // The comparison means something only if the hand decoder answered often.
            if mostly_by_hand {
                assert!(answered > bytes.len(), "answered {answered} of {} inputs", bytes.len() * 6);
            }
        }
    }

    #[test]
    fn merges_and_skips_as_prost_does() {
        let answered: &[&[u8]] = &[
            // Unknown fields of every wire type at each level, before known ones.
            &[0x78, 0x05, 0x21, 1, 2, 3, 4, 5, 6, 7, 8, 0x2d, 1, 2, 3, 4, 0x0a, 0x01, b'n'],
            &[0x12, 0x0c, 0xa0, 0x01, 0x01, 0x3a, 0x04, 0x78, 0x02, 0x0a, 0x00, 0x88, 0x01, 0x05],
            // Two data fields in one command merge; a later scalar wins.
            &[0x12, 0x0e, 0x08, 0x01, 0x3a, 0x03, 0x0a, 0x01, b'a', 0x3a, 0x03, 0x0a, 0x01, b'b', 0x08, 0x02],
            // cancel unpacked and packed, mixed; a ten-byte varint that fits.
            &[0x18, 0x05, 0x1a, 0x03, 0x01, 0xac, 0x02],
            &[0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
        ];
        for case in answered {
            assert!(agree(case), "not answered by hand: {case:?}");
        }
        let left_to_prost: &[&[u8]] = &[
            // A group; a data field after a WAIT and a WAIT after data (the later one wins).
            &[0x7b, 0x08, 0x01, 0x7c, 0x0a, 0x01, b'n'],
            &[0x12, 0x06, 0x52, 0x02, 0x08, 0x01, 0x3a, 0x00],
            &[0x12, 0x06, 0x3a, 0x00, 0x52, 0x02, 0x08, 0x01],
            // Wrong wire types, field 0, an end group alone, a ten-byte varint overflowing.
            &[0x0d, 0, 0, 0, 0],
            &[0x12, 0x02, 0x39, 0x00],
            &[0x02, 0x00],
            &[0x0c],
            &[0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02],
            // A node id that is not UTF-8; a length past the end.
            &[0x0a, 0x01, 0xff],
            &[0x12, 0x05, 0x08],
        ];
        for case in left_to_prost {
            assert!(!agree(case), "answered by hand: {case:?}");
        }
    }
}
