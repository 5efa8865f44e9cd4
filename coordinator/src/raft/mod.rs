//! The coordinators' Raft group (openraft): types, the sled log store, the state machine
//! holding the topology, and the gRPC network between members.

pub mod log_store;
pub mod network;
pub mod state_machine;
pub mod types;

#[cfg(test)]
mod tests;
