//! The codec of every generated service: prost's, except that a message is encoded into a
//! buffer of the call's own and handed to gRPC in one piece, and that a CommandBatch is
//! decoded by command_batch.rs.
//!
//! Written straight into the call's buffer, every field costs a capacity check and a
//! possible reserve on a `BytesMut` behind two wrappers; a batch of replies is thousands of
//! such small writes. Under pipelined GETs, writing the datanode's ReplyBatch this way took
//! half the CPU it took before (the gateway's CommandBatch measured the same, see
//! gateway/src/batch_codec.rs).

use std::any::{Any, TypeId};
use std::marker::PhantomData;

use bytes::{Buf, BufMut};
use prost::Message;
use tonic::codec::{BufferSettings, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::Status;

use crate::internal::v1::CommandBatch;

/// Messages up to this size go through the scratch buffer (which never grows past it);
/// the gateway's batch encoder keeps the same bound.
pub const SCRATCH_KEPT: usize = 256 << 10;

pub struct Codec<T, U> {
    _types: PhantomData<(T, U)>,
}

impl<T, U> Default for Codec<T, U> {
    fn default() -> Self {
        Codec { _types: PhantomData }
    }
}

impl<T, U> tonic::codec::Codec for Codec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ScratchEncoder<T>;
    type Decoder = MessageDecoder<U>;

    fn encoder(&mut self) -> ScratchEncoder<T> {
        ScratchEncoder { scratch: Vec::new(), _type: PhantomData }
    }

    fn decoder(&mut self) -> MessageDecoder<U> {
        MessageDecoder { _type: PhantomData }
    }
}

/// prost's decoding, except for a CommandBatch (the one message decoded by hand).
pub struct MessageDecoder<U> {
    _type: PhantomData<U>,
}

impl<U: Message + Default + 'static> Decoder for MessageDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        // Generated code names one codec for every service, so the type is told apart here.
        if TypeId::of::<U>() == TypeId::of::<CommandBatch>() {
            let batch = crate::command_batch::decode(buf.copy_to_bytes(buf.remaining())).map_err(decode_error)?;
            let mut decoded = Some(batch);
            return Ok((&mut decoded as &mut dyn Any).downcast_mut::<Option<U>>().and_then(Option::take));
        }
        U::decode(buf).map(Some).map_err(decode_error)
    }

    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::default()
    }
}

/// As tonic-prost maps it (gRPC's status codes guide: a message that does not parse is
/// INTERNAL).
fn decode_error(e: prost::DecodeError) -> Status {
    Status::internal(e.to_string())
}

/// Encodes each message into `scratch`, kept for the call's next message.
pub struct ScratchEncoder<T> {
    scratch: Vec<u8>,
    _type: PhantomData<T>,
}

impl<T: Message> Encoder for ScratchEncoder<T> {
    type Item = T;
    type Error = Status;

    fn encode(&mut self, item: T, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        let len = item.encoded_len();
        if len > SCRATCH_KEPT {
            // A large message (a big value, a snapshot chunk) is not held twice; its few
            // fields cost nothing next to its bytes.
            dst.reserve(len);
            return item.encode(dst).map_err(|e| Status::internal(format!("encoding a message: {e}")));
        }
        self.scratch.clear();
        self.scratch.reserve(len);
        item.encode(&mut self.scratch).map_err(|e| Status::internal(format!("encoding a message: {e}")))?;
        dst.put_slice(&self.scratch);
        Ok(())
    }
}
