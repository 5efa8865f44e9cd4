//! Hostile input for every command in the command table, run on a bare keyspace.
//!
//! Each command gets a few hundred argument lists drawn from an adversarial vocabulary
//! (overflowing integers, odd floats, option words in wrong places, empty and corrupted
//! payloads, keys of every type). For each run the test checks what a client must never be
//! able to break:
//! - no panic (a panic on a primary may leave half a command applied);
//! - no hang: every command answers within a bound, and a blocking one's timeout converts
//!   to a deadline;
//! - no divergence: the effects a primary emits, applied on a replica keyspace, leave both
//!   holding the same keys, values and expiries;
//! - every value still encodes and decodes (storage and full syncs use that encoding), and
//!   no collection is left empty.
//!
//! The seed is printed and can be pinned with `FERROCACHE_ADVERSARIAL_SEED`; the number of
//! runs per command with `FERROCACHE_ADVERSARIAL_ROUNDS`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferrocache_common::command::COMMANDS;
use ferrocache_common::hostile;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::value::Value;

const KEYS: &[&str] = &["s", "n", "f", "h", "l", "st", "is", "z", "hll", "badhll", "bm", "gone", "{s}x", "dst"];

struct Side {
    dbs: crate::databases::Databases,
    primary: bool,
    scripts: crate::script::Scripts,
}

impl Side {
    fn run(&mut self, args: &[Bytes], now: i64) -> (Reply, WriteSet, Option<Block>) {
        let mut out = WriteSet::default();
        // The primary runs clients' commands in database 0; the replica applies effects in
        // the database each names.
        let Some((db, args)) = effect_db(args) else {
            return (Reply::error("ERR no such database"), out, None);
        };
        let (ks, others) = self.dbs.split(db);
        let mut ctx = Ctx {
            ks,
            db,
            others,
            now,
            primary: self.primary,
            out: &mut out,
            max_string: 1 << 20,
            block: None,
            lfu: Some((10, 1)),
            no_touch: false,
            woken: false,
            encodings: Default::default(),
            hll_sparse_max: crate::hll::DEFAULT_SPARSE_MAX_BYTES,
            in_script: false,
            script: Some(crate::script::Env { scripts: &mut self.scripts, oom: false, slots: None, monitor: false }),
        };
        let reply = execute(&mut ctx, args);
        let block = ctx.block.take();
        drop(ctx);
        place_effects(&mut out.effects, db);
        (reply, out, block)
    }
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn cmd(words: &[&str]) -> Vec<Bytes> {
    words.iter().map(|w| b(w)).collect()
}

/// A primary and its replica holding one key of every type (and a few odd ones).
fn seeded(now: i64) -> (Side, Side) {
    let mut primary = Side { dbs: Default::default(), primary: true, scripts: Default::default() };
    let mut replica = Side { dbs: Default::default(), primary: false, scripts: Default::default() };
    let mut dense_bad = b"HYLL\x00\0\0\0\0\0\0\0\0\0\0\0".to_vec();
    dense_bad.extend(std::iter::repeat_n(0xFFu8, 12288));
    let setup: Vec<Vec<Bytes>> = vec![
        cmd(&["SET", "s", "hello"]),
        cmd(&["SET", "n", "42"]),
        cmd(&["SET", "f", "1.5"]),
        cmd(&["HSET", "h", "a", "1", "b", "x", "c", "2.5"]),
        cmd(&["RPUSH", "l", "a", "b", "c", "a", "1"]),
        cmd(&["SADD", "st", "a", "b", "c"]),
        cmd(&["SADD", "is", "1", "2", "3"]),
        cmd(&["ZADD", "z", "1", "a", "2", "b", "-inf", "c", "inf", "d"]),
        cmd(&["PFADD", "hll", "a", "b", "c"]),
        vec![b("SET"), b("badhll"), Bytes::from(dense_bad)],
        cmd(&["SETBIT", "bm", "100", "1"]),
        cmd(&["SET", "gone", "x", "PX", "5"]),
    ];
    for args in setup {
        let (_, out, _) = primary.run(&args, now);
        for e in out.effects {
            replica.run(&e, now);
        }
    }
    (primary, replica)
}

/// DUMP payloads of the seeded keys, and corrupted variants of them: truncated, bytes
/// flipped with the checksum fixed up (so the structure itself is hostile), and forged
/// headers (empty collections, huge counts, LZF strings with absurd declared lengths).
fn payloads(primary: &Side) -> Vec<Bytes> {
    let mut out = Vec::new();
    let with_footer = |body: &[u8]| {
        let mut p = body.to_vec();
        p.extend_from_slice(&10u16.to_le_bytes());
        let crc = crate::rdb::crc64(&p);
        p.extend_from_slice(&crc.to_le_bytes());
        Bytes::from(p)
    };
    for key in ["s", "h", "l", "st", "z"] {
        if let Some(e) = primary.dbs.db(0).get(key.as_bytes()) {
            let dump = crate::rdb::dump(&e.value);
            out.push(Bytes::from(dump.clone()));
            out.push(Bytes::copy_from_slice(&dump[..dump.len() / 2]));
            let body = &dump[..dump.len() - 10];
            for i in 0..body.len().min(6) {
                let mut bad = body.to_vec();
                bad[i] ^= 0x5A;
                out.push(with_footer(&bad));
            }
        }
    }
    // Empty list, set, hash, zset; a list claiming 2^32 elements; LZF with a declared length
    // of 4 GB from 3 bytes; a zero checksum.
    for body in [
        &[1u8, 0][..],
        &[2, 0],
        &[4, 0],
        &[5, 0],
        &[1, 0x80, 0xFF, 0xFF, 0xFF, 0xFF],
        &[0, 0xC3, 0x03, 0x80, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, b'a', 0x20],
        &[18, 1, 2, 0],
        &[11, 8, 0, 0, 0, 0, 0, 0, 0, 0],
    ] {
        out.push(with_footer(body));
    }
    out.push(Bytes::from_static(b"\x00\x01a\x0a\x00\x00\x00\x00\x00\x00\x00\x00\x00"));
    out
}

fn args_for(rng: &mut StdRng, name: &str, arity: i32, payloads: &[Bytes]) -> Vec<Bytes> {
    let mut pick = |n: usize| rng.random_range(0..n);
    hostile::arguments(&mut pick, name, arity, KEYS, payloads)
}

/// What must hold between a primary and the replica that applied its effects, for the
/// keys a command may have touched (walking all 16384 slots every run would be slow).
fn divergence(primary: &Side, replica: &Side, now: i64, touched: &[Bytes]) -> Option<String> {
    if primary.dbs.len() != replica.dbs.len() {
        return Some(format!("{} keys on the primary, {} on the replica", primary.dbs.len(), replica.dbs.len()));
    }
    let mut keys: Vec<Bytes> = KEYS.iter().map(|k| b(k)).chain(touched.iter().cloned()).collect();
    keys.sort();
    keys.dedup();
    let live = |s: &Side| {
        keys.iter()
            .flat_map(|k| s.dbs.iter().map(move |(db, ks)| (db, k, ks)))
            .filter_map(|(db, k, ks)| ks.get(k).filter(|e| !e.is_expired(now)).map(|e| ((db, k.clone()), e.clone())))
            .collect::<Vec<_>>()
    };
    let (p, r) = (live(primary), live(replica));
    for (k, e) in &p {
        if e.value.is_empty_collection() {
            return Some(format!("empty collection left under {k:?}"));
        }
        let encoded = e.value.encode();
        if Value::decode(&encoded).as_ref() != Ok(&e.value) {
            return Some(format!("value under {k:?} does not survive its storage encoding"));
        }
    }
    if p != r {
        let pk: Vec<_> = p.iter().map(|(k, _)| k).collect();
        let rk: Vec<_> = r.iter().map(|(k, _)| k).collect();
        let differing: Vec<_> = p.iter().filter(|(k, e)| !r.iter().any(|(rk, re)| rk == k && re == e)).collect();
        return Some(format!("primary {pk:?} vs replica {rk:?}; differing: {differing:?}"));
    }
    None
}

fn show(args: &[Bytes]) -> String {
    args.iter()
        .map(
            |a| if a.len() > 40 { format!("<{} bytes>", a.len()) } else { format!("{:?}", String::from_utf8_lossy(a)) },
        )
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn hostile_arguments_never_panic_hang_or_diverge() {
    let seed: u64 =
        std::env::var("FERROCACHE_ADVERSARIAL_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random);
    let rounds: usize = std::env::var("FERROCACHE_ADVERSARIAL_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(300);
    println!("adversarial seed {seed} ({rounds} rounds per command)");
    let mut rng = StdRng::seed_from_u64(seed);
    let now = 1_700_000_000_000;
    let quiet = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut failures = Vec::new();
    for spec in COMMANDS.iter().filter(|s| s.route != ferrocache_common::command::Route::Gateway) {
        let (mut primary, mut replica) = seeded(now);
        let payloads = payloads(&primary);
        for _ in 0..rounds {
            let args = args_for(&mut rng, spec.name, spec.arity, &payloads);
            let started = Instant::now();
            let ran = catch_unwind(AssertUnwindSafe(|| primary.run(&args, now)));
            let took = started.elapsed();
            let (_, out, block) = match ran {
                Ok(r) => r,
                Err(_) => {
                    failures.push(format!("panic: {}", show(&args)));
                    (primary, replica) = seeded(now);
                    continue;
                }
            };
            if took > Duration::from_secs(2) {
                failures.push(format!("slow ({took:?}): {}", show(&args)));
            }
            if let Some(block) = block {
                if catch_unwind(|| block.deadline(tokio::time::Instant::now())).is_err() {
                    failures.push(format!("blocking timeout panics: {}", show(&args)));
                }
            }
            for effect in &out.effects {
                if catch_unwind(AssertUnwindSafe(|| replica.run(effect, now))).is_err() {
                    failures.push(format!("replica panics on effect {} of {}", show(effect), show(&args)));
                }
            }
            let touched: Vec<Bytes> = args[1..].iter().chain(out.dirty.iter().map(|(_, k)| k)).cloned().collect();
            if let Some(what) = divergence(&primary, &replica, now, &touched) {
                failures.push(format!("diverged after {}: {what}", show(&args)));
                (primary, replica) = seeded(now);
            }
            if primary.dbs.db(0).is_empty() {
                (primary, replica) = seeded(now);
            }
        }
    }
    std::panic::set_hook(quiet);
    assert!(failures.is_empty(), "seed {seed}: {} failures:\n{}", failures.len(), failures.join("\n"));
}
