//! Any command with any arguments (the input split at NUL bytes) on databases holding a key
//! of every type, as primary (in database 0); its effects applied on a replica's databases,
//! each in the database it names. Never a panic, and the replica ends up with the same value
//! under every touched key.
#![no_main]

use bytes::Bytes;
use ferrocache_datanode::cmd::{effect_db, execute, Ctx, WriteSet};
use ferrocache_datanode::databases::{Databases, DATABASES};
use libfuzzer_sys::fuzz_target;

/// Runs `args` as a primary does (in database 0), or applies an effect as a replica does.
fn run(dbs: &mut Databases, primary: bool, args: &[Bytes]) -> WriteSet {
    let mut out = WriteSet::default();
    let (db, args) = if primary { (0, args) } else { effect_db(args).unwrap_or((0, &[][..])) };
    if args.is_empty() {
        return out;
    }
    let (ks, others) = dbs.split(db);
    let mut ctx = Ctx {
        ks,
        db,
        others,
        now: 1_700_000_000_000,
        primary,
        out: &mut out,
        max_string: 1 << 16,
        block: None,
        lfu: None,
        no_touch: false,
        woken: false,
        encodings: Default::default(),
        // A small limit, so sparse HyperLogLogs turn dense on the primary; a replica has none
        // (as in the datanode).
        hll_sparse_max: if primary { 200 } else { usize::MAX },
        in_script: false,
        script: None,
    };
    execute(&mut ctx, args);
    drop(ctx);
    out
}

fuzz_target!(|data: &[u8]| {
    let (mut primary, mut replica) = (Databases::default(), Databases::default());
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
    for key in out.dirty.iter().map(|(_, k)| k).chain(args.iter()) {
        for db in 0..DATABASES {
            assert_eq!(primary.db(db).get(key), replica.db(db).get(key), "diverged under {key:?} in database {db}");
        }
    }
});
