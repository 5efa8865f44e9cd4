//! A node's data across restarts, with compactions running while it writes; and what it
//! counts of the reads it runs.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::*;
use crate::keyspace::Entry;
use crate::value::Value;

fn spec(min_bytes: u64) -> NodeSpec {
    NodeSpec {
        id: "n1".into(),
        group_id: "g".into(),
        node_group_id: "0001".into(),
        role: Role::Primary,
        config_epoch: 1,
        fsync: AppendFsync::EverySec,
        backlog_bytes: 1 << 20,
        max_string: 1 << 20,
        // Small steps: captures interleave with the writes.
        compaction: CompactionPolicy { min_bytes, step_bytes: 64 },
    }
}

fn open(root: &std::path::Path, min_bytes: u64) -> Node {
    let files = Arc::new(NodeFiles::open(root, "n1").unwrap());
    let node = Node::open(spec(min_bytes), files).unwrap();
    node.renew_lease(std::time::Instant::now() + Duration::from_secs(3600), Duration::from_secs(1));
    node
}

fn run(node: &Node, commands: &[&[&str]]) {
    run_in(node, 0, commands)
}

fn run_in(node: &Node, db: usize, commands: &[&[&str]]) {
    let args = |c: &&[&str]| c.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect();
    let batch: Vec<(Request, bool)> =
        commands.iter().map(|c| (Request::data_in(db, args(c), false, 0), false)).collect();
    let applied = node.execute_batch(&batch).unwrap();
    for r in &applied.replies {
        assert!(!matches!(r, Reply::Error(_)), "{r:?}");
    }
}

/// Every key, named by its database and itself.
fn contents(node: &Node) -> BTreeMap<(usize, Bytes), Entry> {
    node.with_state(|st| st.dbs.live_entries(0).into_iter().map(|(db, k, e)| ((db, k), e)).collect())
}

fn settle(node: &Node) {
    node.sync_store().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while node.base.running.load(Ordering::Acquire) {
        assert!(Instant::now() < deadline, "compaction did not end");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn restarts_where_it_stopped_with_compactions_between() {
    let root = tempfile::tempdir().unwrap();
    // A tiny threshold: the log is compacted over and over while the writes go on.
    let node = open(root.path(), 1);
    run(&node, &[&["SCRIPT", "LOAD", "return 'kept'"]]);
    run(&node, &[&["FUNCTION", "LOAD", "#!lua name=kept\nredis.register_function('f', function() return 1 end)"]]);
    run(&node, &[&["XGROUP", "CREATE", "stream", "g", "$", "MKSTREAM"]]);
    for i in 0..3000 {
        let (k, v) = (format!("k{}", i % 700), format!("v{i}"));
        run(&node, &[&["SET", &k, &v], &["INCR", "counter"], &["RPUSH", "list", &v], &["HINCRBY", "h", &k, "1"]]);
        if i % 7 == 0 {
            run(&node, &[&["DEL", &format!("k{}", i % 13)], &["PEXPIREAT", &k, "4102444800000"]]);
            run(
                &node,
                &[
                    &["XADD", "stream", "MAXLEN", "300", "*", "i", &v],
                    &["XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "STREAMS", "stream", ">"],
                ],
            );
        }
        // Other databases' keys go through compactions too, also while SWAPDB moves them
        // and MOVE carries keys between them.
        if i % 5 == 0 {
            let db = 1 + (i / 5) % 15;
            run_in(&node, db, &[&["SET", &k, &v], &["HSET", "h", &k, &v], &["PEXPIREAT", &k, "4102444800000"]]);
        }
        if i % 97 == 0 {
            run_in(&node, 2, &[&["SWAPDB", "3", "2"], &["MOVE", "h", "9"]]);
        }
    }
    run_in(&node, 15, &[&["FLUSHDB"]]);
    settle(&node);
    let before = contents(&node);
    let position = node.with_state(|st| st.position.clone());
    let files = node.files().clone();
    drop(node);
    let bases = std::fs::read_dir(files.dir())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_str().unwrap().starts_with("base-"));
    assert_eq!(bases.count(), 1, "older bases are deleted");

    let node = open(root.path(), 1 << 30);
    assert_eq!(node.with_state(|st| st.position.clone()), position);
    let after = contents(&node);
    assert_eq!(after.len(), before.len());
    // A consumer's seen/active times are the clock of whoever applied the delivery (as
    // after Redis's AOF replay); everything else must be the same.
    let clockless = |mut m: BTreeMap<(usize, Bytes), Entry>| {
        for e in m.values_mut() {
            if let Value::Stream(s) = &mut e.value {
                for c in s.groups.values_mut().flat_map(|g| g.consumers.values_mut()) {
                    (c.seen_time, c.active_time) = (0, 0);
                }
            }
        }
        m
    };
    assert!(clockless(after.clone()) == clockless(before), "the reopened keyspace differs");
    let Some(Value::List(l)) = after.get(&(0, Bytes::from_static(b"list"))).map(|e| e.value.clone()) else { panic!() };
    assert!((1..15).all(|db| after.keys().any(|(d, _)| *d == db)), "keys in every database but the flushed one");
    assert!(!after.keys().any(|(d, _)| *d == 15));
    assert_eq!(l.len(), 3000);
    // The script was loaded before every compaction: the segments after each image say so.
    let sha = crate::script::sha1hex(b"return 'kept'");
    assert!(node.with_state(|st| st.scripts.exists(sha.as_bytes())), "a loaded script outlives compactions");
    assert_eq!(node.with_state(|st| st.scripts.functions.codes().len()), 1, "so does a function library");

    // Writes after a restart continue the same history.
    run(&node, &[&["INCR", "counter"]]);
    settle(&node);
    drop(node);
    let node = open(root.path(), 1 << 30);
    assert_eq!(node.with_state(|st| st.position.offset), position.offset + 1);
    let counter = node.with_state(|st| st.dbs.db(0).get(b"counter").map(|e| e.value.clone()));
    assert_eq!(counter, Some(Value::Str(crate::strval::Str::from(Bytes::from_static(b"3001")))));
}

#[test]
fn a_full_sync_replaces_the_files_too() {
    let root = tempfile::tempdir().unwrap();
    let node = open(root.path(), 1 << 30);
    run(&node, &[&["SET", "old", "1"]]);
    let value = |v: &'static [u8]| Entry::new(Value::Str(crate::strval::Str::from(Bytes::from_static(v))));
    let entries = vec![(0, Bytes::from_static(b"new"), value(b"2")), (12, Bytes::from_static(b"new"), value(b"12"))];
    let position = Position { replid: "primary".into(), offset: 40 };
    run(&node, &[&["SCRIPT", "LOAD", "return 'mine'"]]);
    let theirs = Bytes::from_static(b"return 'theirs'");
    node.install_full_sync(entries, position.clone(), Some(vec![theirs.clone()])).unwrap();
    settle(&node);
    drop(node);
    let node = open(root.path(), 1 << 30);
    let keys: Vec<(usize, Bytes)> = contents(&node).into_keys().collect();
    assert_eq!(keys, vec![(0, Bytes::from_static(b"new")), (12, Bytes::from_static(b"new"))]);
    // The primary's scripts replace the node's own, across a restart too.
    let known = |body: &[u8]| node.with_state(|st| st.scripts.exists(crate::script::sha1hex(body).as_bytes()));
    assert!(known(&theirs) && !known(b"return 'mine'"));
    assert_eq!(node.with_state(|st| st.position.clone()), position);
}

#[test]
fn read_commands_count_a_hit_or_a_miss_per_key() {
    let root = tempfile::tempdir().unwrap();
    let node = open(root.path(), 1 << 30);
    run(&node, &[&["SET", "a", "1"], &["SET", "gone", "1", "PX", "1"]]);
    std::thread::sleep(Duration::from_millis(5));
    let counts = |node: &Node| node.with_state(|st| (st.stats.keyspace_hits, st.stats.keyspace_misses));
    let before = counts(&node);
    // An expired key is a miss (and goes, on a primary); writes count nothing.
    run(
        &node,
        &[&["GET", "a"], &["GET", "missing"], &["MGET", "a", "missing", "a"], &["GET", "gone"], &["SET", "b", "2"]],
    );
    let after = counts(&node);
    assert_eq!((after.0 - before.0, after.1 - before.1), (3, 3));
    assert!(!contents(&node).contains_key(&(0, Bytes::from_static(b"gone"))));
}
