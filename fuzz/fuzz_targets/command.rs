//! Any command with any arguments (the input split at NUL bytes) on a keyspace holding a
//! key of every type, as primary; its effects applied on a replica keyspace. Never a panic,
//! and the replica ends up with the same value under every touched key.
#![no_main]

use bytes::Bytes;
use ferrocache_datanode::cmd::{execute, Ctx, WriteSet};
use ferrocache_datanode::keyspace::Keyspace;
use libfuzzer_sys::fuzz_target;

fn run(ks: &mut Keyspace, primary: bool, args: &[Bytes]) -> WriteSet {
    let mut out = WriteSet::default();
    let mut ctx = Ctx { ks, now: 1_700_000_000_000, primary, out: &mut out, max_string: 1 << 16, block: None, lfu: None, script: None };
    execute(&mut ctx, args);
    out
}

fuzz_target!(|data: &[u8]| {
    let (mut primary, mut replica) = (Keyspace::new(), Keyspace::new());
    let setup: &[&[&str]] = &[
        &["SET", "s", "hello"],
        &["HSET", "h", "a", "1"],
        &["RPUSH", "l", "a", "b"],
        &["SADD", "st", "a", "1"],
        &["ZADD", "z", "1", "a", "2", "b"],
        &["PFADD", "hll", "a"],
    ];
    for cmd in setup {
        let args: Vec<Bytes> = cmd.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect();
        for effect in run(&mut primary, true, &args).effects {
            run(&mut replica, false, &effect);
        }
    }
    let args: Vec<Bytes> = data.split(|&b| b == 0).map(Bytes::copy_from_slice).collect();
    let out = run(&mut primary, true, &args);
    for effect in &out.effects {
        run(&mut replica, false, effect);
    }
    for key in out.dirty.iter().chain(args.iter()) {
        assert_eq!(primary.get(key), replica.get(key), "diverged under {key:?}");
    }
});
