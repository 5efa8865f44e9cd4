//! HyperLogLog strings as clients may set them (PFCOUNT/PFADD/PFMERGE read any string that
//! starts like one): decoding, counting and in-place updates never panic, and an update of a
//! valid string changes exactly the registers the plain model does.
#![no_main]

use ferrocache_datanode::hll::{self, Hll};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut input = b"HYLL".to_vec();
    input.extend_from_slice(data);
    for candidate in [data, &input[..]] {
        let _ = hll::describe_sparse(candidate);
        let mut bytes = candidate.to_vec();
        let Ok(mut model) = Hll::decode(candidate) else {
            let _ = hll::add(&mut bytes, b"x", 64);
            continue;
        };
        let _ = model.count();
        for (i, element) in [&b"x"[..], b"y", b"zz", b"0"].into_iter().enumerate() {
            let grew = hll::add(&mut bytes, element, 40 + i * 20);
            if let Ok(grew) = grew {
                assert_eq!(grew, model.add(element));
            } else {
                return;
            }
        }
        assert_eq!(Hll::decode(&bytes).as_ref(), Ok(&model));
        let _ = hll::make_dense(&mut bytes);
        assert_eq!(Hll::decode(&bytes), Ok(model));
    }
});
