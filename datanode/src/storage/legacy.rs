//! Data written by earlier versions, which kept one sled entry per key in a tree per node:
//! imported once into a base, then the tree is dropped.

use super::files::NodeFiles;
use super::{Position, StoreError};
use crate::keyspace::Entry;
use crate::snapshot::file as image;
use crate::value::Value;

fn tree_name(node_id: &str) -> String {
    format!("node:{node_id}")
}

/// Moves node `node_id`'s old sled tree, if there is one, into a base of `files`.
pub fn import(db: &sled::Db, node_id: &str, files: &NodeFiles) -> Result<(), StoreError> {
    let name = tree_name(node_id);
    if !db.tree_names().iter().any(|n| n.as_ref() == name.as_bytes()) {
        return Ok(());
    }
    let tree = db.open_tree(&name)?;
    let position = tree.get(b"m:position")?.map(|v| decode_position(&v)).unwrap_or_default();
    let segment = files.allocate();
    let corrupt = |reason: &str| StoreError::Corrupt { file: format!("sled tree {name}"), reason: reason.to_string() };
    let mut w = image::Writer::create(files.base_path(segment))?;
    w.position(&position)?;
    let mut keys = 0u64;
    for item in tree.scan_prefix(b"d") {
        let (k, v) = item?;
        if v.len() < 9 {
            return Err(corrupt("record too short"));
        }
        let at = i64::from_be_bytes(v[..8].try_into().map_err(|_| corrupt("record too short"))?);
        let value = Value::decode(&v[8..]).map_err(|e| corrupt(e.0))?;
        w.entry(0, &k[1..], &Entry::with_expiry(value, at))?;
        keys += 1;
    }
    w.finish()?;
    drop(tree);
    db.drop_tree(name.as_bytes())?;
    db.flush()?;
    tracing::info!(node = %node_id, keys, offset = position.offset, "imported the node's data from the old per-key layout");
    Ok(())
}

fn decode_position(data: &[u8]) -> Position {
    let Some(offset) = data.get(..8).and_then(|b| b.try_into().ok()) else {
        return Position::default();
    };
    Position { offset: u64::from_be_bytes(offset), replid: String::from_utf8_lossy(&data[8..]).into_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn an_old_tree_becomes_a_base() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path().join("sled")).unwrap();
        let tree = db.open_tree("node:n1").unwrap();
        let mut record = 0i64.to_be_bytes().to_vec();
        record.extend_from_slice(&Value::Str(crate::strval::Str::from(Bytes::from_static(b"v"))).encode());
        tree.insert(b"dkey", record).unwrap();
        let mut pos = 9u64.to_be_bytes().to_vec();
        pos.extend_from_slice(b"replid");
        tree.insert(b"m:position", pos).unwrap();
        drop(tree);
        let files = NodeFiles::open(&dir.path().join("nodes"), "n1").unwrap();
        import(&db, "n1", &files).unwrap();
        assert!(!db.tree_names().iter().any(|n| n.as_ref() == b"node:n1"));
        let mut keys = Vec::new();
        let r = files.recover(|_, k, _| keys.push(k), |_| {}).unwrap();
        assert_eq!(keys, vec![Bytes::from_static(b"key")]);
        assert_eq!(r.position, Position { replid: "replid".into(), offset: 9 });
        // A second import finds nothing to do.
        import(&db, "n1", &files).unwrap();
    }
}
