//! HyperLogLog strings as clients may set them (PFCOUNT/PFADD/PFMERGE read any string that
//! starts like one): decoding, counting and re-encoding never panic.
#![no_main]

use ferrocache_datanode::hll::Hll;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut input = b"HYLL".to_vec();
    input.extend_from_slice(data);
    for candidate in [data, &input[..]] {
        if let Ok(mut h) = Hll::decode(candidate) {
            let _ = h.count();
            h.add(b"x");
            let encoded = h.encode();
            assert_eq!(Hll::decode(&encoded).map(|d| d.count()), Ok(h.count()));
        }
    }
});
