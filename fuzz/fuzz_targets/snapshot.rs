//! Snapshot files (a snapshot is fetched from another datanode before a group serves it):
//! a damaged or forged file is refused, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ferrocache_datanode::snapshot::file::parse(data);
});
