//! The gateway's RESP request parser on arbitrary bytes, fed in two pieces: it must never
//! panic, and what it parses must not depend on where the input was cut.
#![no_main]

use bytes::BytesMut;
use ferrocache_gateway::resp::{parse_request, Limits};
use libfuzzer_sys::fuzz_target;

fn parse_all(chunks: &[&[u8]]) -> (Vec<Vec<bytes::Bytes>>, bool) {
    let limits = Limits { max_bulk_len: 1 << 16, max_args: 1 << 10 };
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match parse_request(&mut buf, &limits) {
                Ok(Some(args)) => out.push(args),
                Ok(None) => break,
                Err(_) => return (out, true),
            }
        }
    }
    (out, false)
}

fuzz_target!(|data: &[u8]| {
    let whole = parse_all(&[data]);
    if data.len() > 1 {
        let cut = data[0] as usize % data.len();
        let split = parse_all(&[&data[..cut], &data[cut..]]);
        assert_eq!(whole, split, "parsing depends on where the input was cut");
    }
});
