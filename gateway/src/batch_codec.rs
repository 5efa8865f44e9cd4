//! The gateway's end of `Data.Execute`, its hottest call: a CommandBatch is written to the
//! wire by hand, the replies are read by prost as before.
//!
//! prost sizes a nested message every time it is about to write it: a batch's data command
//! is sized three times (the batch's length, the command's, its DataRequest's) before its
//! bytes go out, and that was 8 % of the gateway's CPU under pipelined GETs. Here each is
//! sized once. The bytes are protobuf's, field for field what prost writes, so the datanode
//! reads them with its generated code; requests other than data commands (WAIT, INFO,
//! transactions, ...) are rare and go through prost.

use bytes::BufMut;
// Batches of up to this many argument bytes go through the scratch buffer: the bound every
// generated service's encoder keeps.
use ferrocache_proto::codec::SCRATCH_KEPT;
use ferrocache_proto::internal::v1 as pb;
use prost::encoding::{encode_key, encode_varint, encoded_len_varint, WireType};
use tonic::codec::{BufferSettings, Codec, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::Status;
use tonic_prost::{ProstCodec, ProstDecoder};

/// The codec for the gateway's `Data.Execute` calls.
#[derive(Default)]
pub struct BatchCodec;

impl Codec for BatchCodec {
    type Encode = pb::CommandBatch;
    type Decode = pb::ReplyBatch;
    type Encoder = BatchEncoder;
    type Decoder = ProstDecoder<pb::ReplyBatch>;

    fn encoder(&mut self) -> BatchEncoder {
        BatchEncoder { scratch: Vec::new() }
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstCodec::<pb::CommandBatch, pb::ReplyBatch>::raw_decoder(BufferSettings::default())
    }
}

/// Writes each batch into a buffer of its own first, then hands it over in one piece: the
/// call's buffer checks its capacity on every write, and a command is some twenty small
/// writes (that, not the sizing, was most of the cost).
pub struct BatchEncoder {
    scratch: Vec<u8>,
}

impl Encoder for BatchEncoder {
    type Item = pb::CommandBatch;
    type Error = Status;

    fn encode(&mut self, batch: pb::CommandBatch, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        let size: usize = batch.commands.iter().filter_map(|c| c.request.as_ref()).map(crate::request::size).sum();
        if size > SCRATCH_KEPT {
            // Big values are not held twice: their few fields cost nothing next to them.
            write_batch(&batch, dst);
            return Ok(());
        }
        self.scratch.clear();
        write_batch(&batch, &mut self.scratch);
        dst.put_slice(&self.scratch);
        if self.scratch.capacity() > SCRATCH_KEPT {
            self.scratch = Vec::new();
        }
        Ok(())
    }
}

/// The method `Data.Execute`, as the generated client names it.
pub const EXECUTE: &str = "/ferrocache.internal.v1.Data/Execute";

pub fn execute_path() -> PathAndQuery {
    PathAndQuery::from_static(EXECUTE)
}

/// Writes `batch` as protobuf, as `batch.encode(buf)` would.
pub fn write_batch(batch: &pb::CommandBatch, buf: &mut impl BufMut) {
    if !batch.node_id.is_empty() {
        encode_key(1, WireType::LengthDelimited, buf);
        encode_varint(batch.node_id.len() as u64, buf);
        buf.put_slice(batch.node_id.as_bytes());
    }
    for command in &batch.commands {
        match &command.request {
            Some(pb::command::Request::Data(data)) => write_data_command(command, data, buf),
            _ => prost::encoding::message::encode(2, command, buf),
        }
    }
    if !batch.cancel.is_empty() {
        // A packed repeated uint64.
        encode_key(3, WireType::LengthDelimited, buf);
        encode_varint(batch.cancel.iter().map(|&id| encoded_len_varint(id)).sum::<usize>() as u64, buf);
        for &id in &batch.cancel {
            encode_varint(id, buf);
        }
    }
}

/// A Command (field 2 of the batch) whose request is a DataRequest.
fn write_data_command(command: &pb::Command, data: &pb::DataRequest, buf: &mut impl BufMut) {
    let data_len = data_request_len(data);
    let varint_field = |v: u64| if v == 0 { 0 } else { 1 + encoded_len_varint(v) };
    let command_len = varint_field(command.id)
        + varint_field(u64::from(command.slot))
        + varint_field(command.config_epoch)
        + if command.readonly { 2 } else { 0 }
        + if command.keyed { 2 } else { 0 }
        + 1
        + encoded_len_varint(data_len as u64)
        + data_len;
    encode_key(2, WireType::LengthDelimited, buf);
    encode_varint(command_len as u64, buf);
    put_varint_field(1, command.id, buf);
    put_varint_field(2, u64::from(command.slot), buf);
    put_varint_field(3, command.config_epoch, buf);
    put_bool_field(5, command.readonly, buf);
    put_bool_field(6, command.keyed, buf);
    encode_key(7, WireType::LengthDelimited, buf);
    encode_varint(data_len as u64, buf);
    for arg in &data.args {
        encode_key(1, WireType::LengthDelimited, buf);
        encode_varint(arg.len() as u64, buf);
        buf.put_slice(arg);
    }
    put_varint_field(2, u64::from(data.db), buf);
    put_bool_field(3, data.no_touch, buf);
    put_varint_field(4, data.writer, buf);
}

fn data_request_len(data: &pb::DataRequest) -> usize {
    let args: usize = data.args.iter().map(|a| 1 + encoded_len_varint(a.len() as u64) + a.len()).sum();
    let db = if data.db == 0 { 0 } else { 1 + encoded_len_varint(u64::from(data.db)) };
    let writer = if data.writer == 0 { 0 } else { 1 + encoded_len_varint(data.writer) };
    args + db + if data.no_touch { 2 } else { 0 } + writer
}

/// proto3 leaves a field at its default value out.
fn put_varint_field(tag: u32, value: u64, buf: &mut impl BufMut) {
    if value != 0 {
        encode_key(tag, WireType::Varint, buf);
        encode_varint(value, buf);
    }
}

fn put_bool_field(tag: u32, value: bool, buf: &mut impl BufMut) {
    if value {
        encode_key(tag, WireType::Varint, buf);
        buf.put_u8(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use proptest::prelude::*;
    use prost::Message;

    fn data_command(id: u64, args: Vec<Vec<u8>>, db: u32, writer: u64, flags: (bool, bool, bool)) -> pb::Command {
        pb::Command {
            id,
            slot: (id % 16384) as u32,
            config_epoch: id / 3,
            readonly: flags.0,
            keyed: flags.1,
            request: Some(pb::command::Request::Data(pb::DataRequest {
                args: args.into_iter().map(Bytes::from).collect(),
                db,
                no_touch: flags.2,
                writer,
            })),
        }
    }

    fn same_as_prost(batch: &pb::CommandBatch) {
        let mut ours = Vec::new();
        write_batch(batch, &mut ours);
        assert_eq!(ours, batch.encode_to_vec());
        assert_eq!(&pb::CommandBatch::decode(&ours[..]).unwrap(), batch);
    }

    #[test]
    fn batches_are_written_as_prost_writes_them() {
        // Empty, defaults everywhere, an empty argument, a long one (two-byte lengths).
        same_as_prost(&pb::CommandBatch::default());
        same_as_prost(&pb::CommandBatch {
            node_id: "datanode-a".into(),
            commands: vec![
                data_command(0, vec![], 0, 0, (false, false, false)),
                data_command(1, vec![b"GET".to_vec(), b"k".to_vec()], 0, 0, (false, true, false)),
                data_command(u64::MAX, vec![b"SET".to_vec(), vec![], vec![7; 300]], 15, u64::MAX, (true, true, true)),
                pb::Command {
                    id: 4,
                    request: Some(pb::command::Request::Wait(pb::WaitRequest { replicas: 2, ..Default::default() })),
                    ..Default::default()
                },
                pb::Command { id: 5, request: None, ..Default::default() },
            ],
            cancel: vec![1, 300, u64::MAX],
        });
    }

    proptest! {
        #[test]
        fn any_data_batch_is_written_as_prost_writes_it(
            node in "[a-z-]{0,12}",
            commands in prop::collection::vec(
                (any::<u64>(), prop::collection::vec(prop::collection::vec(any::<u8>(), 0..200), 0..5),
                 0u32..16, any::<u64>(), any::<(bool, bool, bool)>()),
                0..20),
            cancel in prop::collection::vec(any::<u64>(), 0..4),
        ) {
            let commands = commands
                .into_iter()
                .map(|(id, args, db, writer, flags)| data_command(id, args, db, writer, flags))
                .collect();
            same_as_prost(&pb::CommandBatch { node_id: node, commands, cancel });
        }
    }
}
