//! Snapshot files: a group's keys at one point in time, written by the datanode that took
//! them, read back to restore a group (docs/snapshots.md documents the format).
//!
//! ```text
//! "FCSNAP1\n"                                   magic, 8 bytes
//! u32 version (1)
//! per key: 0x01, u32 key length, key, u32 value length, value (the storage encoding:
//!          type tag + payload), i64 absolute expiry in Unix ms (0 = none)
//! 0xFF, u64 key count, u32 CRC-32 (IEEE) of every byte before the CRC
//! ```
//! Integers are big-endian. Files are written to a temporary name, fsynced and renamed, so
//! a snapshot file either is complete or does not exist.

use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::keyspace::Entry;
use crate::value::Value;

const MAGIC: &[u8; 8] = b"FCSNAP1\n";
const VERSION: u32 = 1;
const TAG_ENTRY: u8 = 0x01;
const TAG_END: u8 = 0xFF;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot file i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("not a snapshot file (bad magic or version)")]
    NotASnapshot,
    #[error("snapshot file is corrupt: {0}")]
    Corrupt(&'static str),
    #[error("invalid snapshot name {0:?}")]
    BadName(String),
}

/// Where a snapshot's file lives; names are checked so they cannot leave the folder.
pub fn path(dir: &Path, name: &str) -> Result<PathBuf, SnapshotError> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if !ok {
        return Err(SnapshotError::BadName(name.to_string()));
    }
    Ok(dir.join(format!("{name}.fcsnap")))
}

/// The snapshot names of the files in `dir`.
pub fn list(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries.filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".fcsnap").map(str::to_string)).collect()
}

/// Writes `entries` as snapshot `name` in `dir`; returns (keys, bytes).
pub fn write(dir: &Path, name: &str, entries: &[(Bytes, Entry)]) -> Result<(u64, u64), SnapshotError> {
    let target = path(dir, name)?;
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut buf = Vec::with_capacity(64 * 1024);
    buf.extend_from_slice(MAGIC);
    buf.extend_from_slice(&VERSION.to_be_bytes());
    let mut hasher = crc32fast::Hasher::new();
    let mut file = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
    let mut total = 0u64;
    for (key, entry) in entries {
        let value = entry.value.encode();
        buf.push(TAG_ENTRY);
        buf.extend_from_slice(&(key.len() as u32).to_be_bytes());
        buf.extend_from_slice(key);
        buf.extend_from_slice(&(value.len() as u32).to_be_bytes());
        buf.extend_from_slice(&value);
        buf.extend_from_slice(&entry.expires_at.to_be_bytes());
        if buf.len() >= 64 * 1024 {
            hasher.update(&buf);
            file.write_all(&buf)?;
            total += buf.len() as u64;
            buf.clear();
        }
    }
    buf.push(TAG_END);
    buf.extend_from_slice(&(entries.len() as u64).to_be_bytes());
    hasher.update(&buf);
    buf.extend_from_slice(&hasher.finalize().to_be_bytes());
    file.write_all(&buf)?;
    total += buf.len() as u64;
    let file = file.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, &target)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok((entries.len() as u64, total))
}

/// Parses a whole snapshot file.
pub fn parse(data: &[u8]) -> Result<Vec<(Bytes, Entry)>, SnapshotError> {
    if data.len() < 12 + 13 || &data[..8] != MAGIC || data[8..12] != VERSION.to_be_bytes() {
        return Err(SnapshotError::NotASnapshot);
    }
    let (body, crc) = data.split_at(data.len() - 4);
    if crc32fast::hash(body).to_be_bytes() != crc {
        return Err(SnapshotError::Corrupt("checksum mismatch"));
    }
    let mut cur = &body[12..];
    let mut take = |n: usize| -> Result<&[u8], SnapshotError> {
        if cur.len() < n {
            return Err(SnapshotError::Corrupt("truncated"));
        }
        let (head, rest) = cur.split_at(n);
        cur = rest;
        Ok(head)
    };
    let u32_at = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
    let mut entries = Vec::new();
    loop {
        match take(1)?[0] {
            TAG_ENTRY => {
                let klen = u32_at(take(4)?);
                let key = Bytes::copy_from_slice(take(klen)?);
                let vlen = u32_at(take(4)?);
                let value = Value::decode(take(vlen)?).map_err(|_| SnapshotError::Corrupt("bad value"))?;
                let mut exp = [0u8; 8];
                exp.copy_from_slice(take(8)?);
                entries.push((key, Entry::with_expiry(value, i64::from_be_bytes(exp))));
            }
            TAG_END => {
                let mut n = [0u8; 8];
                n.copy_from_slice(take(8)?);
                if u64::from_be_bytes(n) != entries.len() as u64 {
                    return Err(SnapshotError::Corrupt("key count mismatch"));
                }
                return Ok(entries);
            }
            _ => return Err(SnapshotError::Corrupt("unknown record")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn entries() -> Vec<(Bytes, Entry)> {
        let hash: HashMap<Bytes, Bytes> = [(Bytes::from("f"), Bytes::from("v"))].into();
        vec![
            (Bytes::from("s"), Entry::with_expiry(Value::Str(Bytes::from("hello")), 0)),
            (Bytes::from("h"), Entry::with_expiry(Value::Hash(Box::new(hash)), 1_900_000_000_000)),
        ]
    }

    #[test]
    fn round_trips_and_detects_damage() {
        let dir = tempfile::tempdir().unwrap();
        let (keys, bytes) = write(dir.path(), "nightly-1", &entries()).unwrap();
        assert_eq!(keys, 2);
        let data = std::fs::read(path(dir.path(), "nightly-1").unwrap()).unwrap();
        assert_eq!(data.len() as u64, bytes);
        assert_eq!(parse(&data).unwrap(), entries());
        assert_eq!(list(dir.path()), vec!["nightly-1".to_string()]);
        let mut bad = data.clone();
        bad[20] ^= 1;
        assert!(matches!(parse(&bad), Err(SnapshotError::Corrupt(_))));
        assert!(parse(&data[..data.len() - 1]).is_err());
        assert!(matches!(parse(b"not a snapshot at all, no"), Err(SnapshotError::NotASnapshot)));
    }

    #[test]
    fn names_cannot_escape_the_folder() {
        let dir = Path::new("/x");
        assert!(path(dir, "automatic.g-2026-11-22-05-00").is_ok());
        for bad in ["", "../etc/passwd", "a/b", ".hidden"] {
            assert!(path(dir, bad).is_err(), "{bad}");
        }
    }
}
