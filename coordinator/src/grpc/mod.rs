//! The coordinator's gRPC services: the public admin API, the cluster service for datanodes
//! and gateways, and Raft between coordinators.

pub mod admin;
pub mod cluster;
pub mod convert;
pub mod raft;
pub mod requests;
pub mod resharding;
pub mod users;
