//! One suite every `Store` must pass.

use bytes::Bytes;

use super::*;

fn entry(v: &str, at: i64) -> Entry {
    Entry::with_expiry(Value::Str(Bytes::copy_from_slice(v.as_bytes())), at)
}

fn sorted(store: &dyn Store) -> (Position, Vec<(Bytes, Entry)>) {
    let (p, mut e) = store.load().unwrap();
    e.sort_by(|a, b| a.0.cmp(&b.0));
    (p, e)
}

fn suite(store: &dyn Store) {
    assert_eq!(sorted(store), (Position::default(), vec![]));
    let pos = Position { replid: "abc".into(), offset: 7 };
    store
        .write(StoreBatch {
            clear: false,
            writes: vec![
                (Bytes::from_static(b"a"), Some(entry("1", 0))),
                (Bytes::from_static(b"b"), Some(entry("2", 99))),
            ],
            position: Some(pos.clone()),
        })
        .unwrap();
    store.flush().unwrap();
    assert_eq!(
        sorted(store),
        (pos.clone(), vec![(Bytes::from_static(b"a"), entry("1", 0)), (Bytes::from_static(b"b"), entry("2", 99))])
    );
    store.write(StoreBatch { clear: false, writes: vec![(Bytes::from_static(b"a"), None)], position: None }).unwrap();
    assert_eq!(sorted(store).1, vec![(Bytes::from_static(b"b"), entry("2", 99))]);
    store
        .write(StoreBatch {
            clear: true,
            writes: vec![(Bytes::from_static(b"c"), Some(entry("3", 0)))],
            position: None,
        })
        .unwrap();
    assert_eq!(sorted(store), (pos, vec![(Bytes::from_static(b"c"), entry("3", 0))]));
}

#[test]
fn memory_store_conforms() {
    suite(&MemoryStore::default());
}

/// Opens a sled directory just closed in this process: sled's flusher thread may hold the
/// directory's lock for a moment after the last handle drops.
fn reopen(path: &std::path::Path) -> sled::Db {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match sled::open(path) {
            Ok(db) => return db,
            Err(_) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => panic!("reopening {path:?}: {e}"),
        }
    }
}

#[test]
fn sled_store_conforms_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = sled::open(dir.path()).unwrap();
        suite(&SledStore::open(&db, "n1").unwrap());
        let other = SledStore::open(&db, "n2").unwrap();
        assert!(other.load().unwrap().1.is_empty(), "nodes do not see each other's keys");
    }
    let db = reopen(dir.path());
    let store = SledStore::open(&db, "n1").unwrap();
    assert_eq!(store.load().unwrap().1.len(), 1);
    store.destroy().unwrap();
    assert!(SledStore::open(&db, "n1").unwrap().load().unwrap().1.is_empty());
}
