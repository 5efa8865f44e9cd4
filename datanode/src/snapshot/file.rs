//! Snapshot files: a node's keys at one point in time. User snapshots (written by the datanode
//! that took them, read back to restore a group) and each node's own compacted storage image
//! (storage/files.rs) share this format; docs/snapshots.md documents it.
//!
//! ```text
//! "FCSNAP1\n"                                   magic, 8 bytes
//! u32 version (1)
//! optional: 0x02, u16 replid length, replid, u64 offset   where the image stands in its
//!          node's replication stream (storage images carry it, user snapshots need not)
//! per key: 0x01, u32 key length, key, u32 value length, value (the value encoding:
//!          type tag + payload), i64 absolute expiry in Unix ms (0 = none)
//! between keys: 0x03, u8 database   the keys after it belong to that database (SELECT
//!          0–15); keys before any such record belong to database 0
//! 0xFF, u64 key count, u32 CRC-32 (IEEE) of every byte before the CRC
//! ```
//! Integers are big-endian. Files are written to a temporary name, fsynced and renamed, so
//! a snapshot file either is complete or does not exist.

use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::databases::DbEntry;
use crate::keyspace::Entry;
use crate::storage::Position;
use crate::value::Value;

const MAGIC: &[u8; 8] = b"FCSNAP1\n";
const VERSION: u32 = 1;
const TAG_ENTRY: u8 = 0x01;
const TAG_POSITION: u8 = 0x02;
const TAG_DB: u8 = 0x03;
const TAG_END: u8 = 0xFF;
const BUFFER: usize = 256 * 1024;

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

/// Appends one key's record (the bytes [`Writer::raw`] takes).
/// The record saying that the keys after it belong to database `db`.
pub fn encode_db(out: &mut Vec<u8>, db: usize) {
    out.push(TAG_DB);
    out.push(db.min(u8::MAX as usize) as u8);
}

pub fn encode_entry(out: &mut Vec<u8>, key: &[u8], entry: &Entry) {
    out.push(TAG_ENTRY);
    out.extend_from_slice(&(key.len() as u32).to_be_bytes());
    out.extend_from_slice(key);
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    entry.value.encode_into(out);
    let len = (out.len() - at - 4) as u32;
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&entry.expires_at.to_be_bytes());
}

/// Writes a snapshot file record by record: to a temporary name first, renamed into place
/// by [`Writer::finish`] once complete and fsynced. Dropped unfinished, it leaves no file.
pub struct Writer {
    file: Option<std::fs::File>,
    tmp: PathBuf,
    target: PathBuf,
    buf: Vec<u8>,
    hasher: crc32fast::Hasher,
    keys: u64,
    bytes: u64,
    /// The database the entries written now belong to.
    db: usize,
}

impl Writer {
    pub fn create(target: PathBuf) -> Result<Writer, SnapshotError> {
        let dir = target.parent().unwrap_or(Path::new(".")).to_path_buf();
        std::fs::create_dir_all(&dir)?;
        let name = target.file_name().and_then(|n| n.to_str()).unwrap_or("snapshot");
        let tmp = dir.join(format!(".{name}.tmp"));
        let file = std::fs::File::create(&tmp)?;
        let mut buf = Vec::with_capacity(BUFFER + 64 * 1024);
        buf.extend_from_slice(MAGIC);
        buf.extend_from_slice(&VERSION.to_be_bytes());
        Ok(Writer { file: Some(file), tmp, target, buf, hasher: crc32fast::Hasher::new(), keys: 0, bytes: 0, db: 0 })
    }

    /// Records where the image stands; call before the first entry.
    pub fn position(&mut self, p: &Position) -> Result<(), SnapshotError> {
        let replid = &p.replid.as_bytes()[..p.replid.len().min(u16::MAX as usize)];
        self.buf.push(TAG_POSITION);
        self.buf.extend_from_slice(&(replid.len() as u16).to_be_bytes());
        self.buf.extend_from_slice(replid);
        self.buf.extend_from_slice(&p.offset.to_be_bytes());
        self.spill(false)
    }

    /// Writes one key of database `db`.
    pub fn entry(&mut self, db: usize, key: &[u8], entry: &Entry) -> Result<(), SnapshotError> {
        if db != self.db {
            encode_db(&mut self.buf, db);
            self.db = db;
        }
        encode_entry(&mut self.buf, key, entry);
        self.keys += 1;
        self.spill(false)
    }

    /// Appends `keys` records already encoded by [`encode_entry`].
    /// Appends encoded records; they may change the database ([`encode_db`]): later
    /// [`Writer::entry`] calls must not rely on the database before them.
    pub fn raw(&mut self, records: &[u8], keys: u64) -> Result<(), SnapshotError> {
        self.db = usize::MAX;
        self.buf.extend_from_slice(records);
        self.keys += keys;
        self.spill(false)
    }

    fn spill(&mut self, always: bool) -> Result<(), SnapshotError> {
        if always || self.buf.len() >= BUFFER {
            self.hasher.update(&self.buf);
            if let Some(f) = self.file.as_mut() {
                f.write_all(&self.buf)?;
            }
            self.bytes += self.buf.len() as u64;
            self.buf.clear();
        }
        Ok(())
    }

    /// Ends the file, fsyncs it and renames it into place; returns (keys, bytes).
    pub fn finish(mut self) -> Result<(u64, u64), SnapshotError> {
        self.buf.push(TAG_END);
        self.buf.extend_from_slice(&self.keys.to_be_bytes());
        self.hasher.update(&self.buf);
        let crc = std::mem::take(&mut self.hasher).finalize();
        self.buf.extend_from_slice(&crc.to_be_bytes());
        let file = self.file.take();
        if let Some(mut f) = file {
            f.write_all(&self.buf)?;
            f.sync_all()?;
        }
        self.bytes += self.buf.len() as u64;
        std::fs::rename(&self.tmp, &self.target)?;
        if let Some(dir) = self.target.parent() {
            sync_dir(dir);
        }
        Ok((self.keys, self.bytes))
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Makes a rename or a deletion in `dir` durable (best effort: not every filesystem can).
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Writes `entries` as snapshot `name` in `dir`; returns (keys, bytes).
pub fn write(dir: &Path, name: &str, entries: &[DbEntry]) -> Result<(u64, u64), SnapshotError> {
    let mut w = Writer::create(path(dir, name)?)?;
    for (db, key, entry) in entries {
        w.entry(*db, key, entry)?;
    }
    w.finish()
}

/// Parses a whole snapshot file.
pub fn parse(data: &[u8]) -> Result<Vec<DbEntry>, SnapshotError> {
    let mut entries = Vec::new();
    parse_each(data, |db, key, entry| entries.push((db, key, entry)))?;
    Ok(entries)
}

/// Parses a snapshot file, handing each key (with its database) to `each` as it is read;
/// returns the position the file records, if any. The checksum is checked before the first
/// key is handed out.
pub fn parse_each(data: &[u8], mut each: impl FnMut(usize, Bytes, Entry)) -> Result<Option<Position>, SnapshotError> {
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
    let u64_at = |b: &[u8]| u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
    let mut count = 0u64;
    let mut position = None;
    let mut db = 0usize;
    loop {
        match take(1)?[0] {
            TAG_DB => {
                db = take(1)?[0] as usize;
                if db >= crate::databases::DATABASES {
                    return Err(SnapshotError::Corrupt("database out of range"));
                }
            }
            TAG_ENTRY => {
                let klen = u32_at(take(4)?);
                let key = Bytes::copy_from_slice(take(klen)?);
                let vlen = u32_at(take(4)?);
                let value = Value::decode(take(vlen)?).map_err(|_| SnapshotError::Corrupt("bad value"))?;
                let at = u64_at(take(8)?) as i64;
                count += 1;
                each(db, key, Entry::with_expiry(value, at));
            }
            TAG_POSITION if count == 0 && position.is_none() => {
                let b = take(2)?;
                let n = u16::from_be_bytes([b[0], b[1]]) as usize;
                let replid = String::from_utf8_lossy(take(n)?).into_owned();
                position = Some(Position { replid, offset: u64_at(take(8)?) });
            }
            TAG_END => {
                if u64_at(take(8)?) != count {
                    return Err(SnapshotError::Corrupt("key count mismatch"));
                }
                return Ok(position);
            }
            _ => return Err(SnapshotError::Corrupt("unknown record")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries() -> Vec<DbEntry> {
        let hash: crate::value::Hash = [(Bytes::from("f"), Bytes::from("v"))].into();
        let s = |v: &'static str| Value::Str(crate::strval::Str::from(Bytes::from(v)));
        vec![
            (0, Bytes::from("s"), Entry::with_expiry(s("hello"), 0)),
            (0, Bytes::from("h"), Entry::with_expiry(Value::Hash(Box::new(hash)), 1_900_000_000_000)),
            (7, Bytes::from("s"), Entry::with_expiry(s("in db 7"), 0)),
            (0, Bytes::from("back"), Entry::with_expiry(s("in db 0"), 0)),
        ]
    }

    #[test]
    fn round_trips_and_detects_damage() {
        let dir = tempfile::tempdir().unwrap();
        let (keys, bytes) = write(dir.path(), "nightly-1", &entries()).unwrap();
        assert_eq!(keys, 4);
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
    fn carries_a_position_and_takes_raw_records() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("base-3.fcsnap");
        let mut w = Writer::create(target.clone()).unwrap();
        let p = Position { replid: "abc".into(), offset: 42 };
        w.position(&p).unwrap();
        let mut raw = Vec::new();
        for (db, k, e) in entries() {
            encode_db(&mut raw, db);
            encode_entry(&mut raw, &k, &e);
        }
        w.raw(&raw, 4).unwrap();
        w.finish().unwrap();
        let data = std::fs::read(&target).unwrap();
        let mut got = Vec::new();
        assert_eq!(parse_each(&data, |db, k, e| got.push((db, k, e))).unwrap(), Some(p));
        assert_eq!(got, entries());
        // Abandoned writers leave nothing behind.
        let w = Writer::create(dir.path().join("base-4.fcsnap")).unwrap();
        drop(w);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
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
