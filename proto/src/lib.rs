//! Ferrocache's gRPC contracts, generated from `proto/` at build time.
//!
//! - [`admin::v1`]: the public admin API (ElastiCache's operations and field names).
//! - [`internal::v1`]: coordinator, datanode and gateway services (heartbeats, topology
//!   watch, Raft, the batched data stream, replication).

pub mod codec;
pub mod command_batch;

pub mod admin {
    pub mod v1 {
        tonic::include_proto!("ferrocache.admin.v1");
    }
}

pub mod internal {
    pub mod v1 {
        #![allow(clippy::large_enum_variant)]
        tonic::include_proto!("ferrocache.internal.v1");
    }
}

/// Every service's file descriptors, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/ferrocache_descriptor.bin"));
