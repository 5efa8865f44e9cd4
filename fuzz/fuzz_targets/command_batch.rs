//! The datanode's hand decoding of a gateway's CommandBatch (proto/src/command_batch.rs)
//! against prost's: wherever it answers, prost decodes the same batch.
#![no_main]

use bytes::Bytes;
use ferrocache_proto::command_batch;
use ferrocache_proto::internal::v1::CommandBatch;
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    if let Some(ours) = command_batch::decode_common(&Bytes::copy_from_slice(data)) {
        assert_eq!(CommandBatch::decode(data).ok(), Some(ours), "input {data:?}");
    }
});
