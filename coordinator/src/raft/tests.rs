//! openraft's own storage conformance suite, run against the sled log store and state
//! machine.

#![allow(clippy::result_large_err)]

use openraft::testing::{StoreBuilder, Suite};

use super::log_store::LogStore;
use super::state_machine::StateMachine;
use super::types::{StorageError, TypeConfig};

struct SledBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for SledBuilder {
    async fn build(&self) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError> {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = sled::open(dir.path()).expect("sled");
        Ok((dir, LogStore::open(&db).expect("log store"), StateMachine::open(&db).expect("state machine")))
    }
}

#[test]
fn sled_storage_passes_openraft_suite() -> Result<(), StorageError> {
    Suite::test_all(SledBuilder)?;
    Ok(())
}
