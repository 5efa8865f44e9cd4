//! RESTORE payloads (Redis's DUMP format): never a panic, never more memory than allowed,
//! and what loads dumps back to a payload that loads to the same value.
#![no_main]

use ferrocache_datanode::rdb;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Payloads with a correct checksum reach the parser: fix the footer up half the time.
    let mut payload = data.to_vec();
    if data.first().is_some_and(|b| b & 1 == 1) && payload.len() >= 10 {
        let n = payload.len();
        payload[n - 10..n - 8].copy_from_slice(&10u16.to_le_bytes());
        let crc = rdb::crc64(&payload[..n - 8]);
        payload[n - 8..].copy_from_slice(&crc.to_le_bytes());
    }
    if let Ok(value) = rdb::restore(&payload, 1 << 20) {
        assert!(!value.is_empty_collection());
        let again = rdb::restore(&rdb::dump(&value), usize::MAX).expect("a dump restores");
        assert_eq!(again, value);
    }
});
