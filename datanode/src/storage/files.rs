//! One node's files: compacted images (`base-N.fcsnap`, the snapshot file format with the
//! position it stands at) and append-only log segments (`log-N.aof`, see log.rs). A segment
//! may continue in further parts (`log-N.P.aof`, P = 1, 2, ...): under `appendfsync always`
//! the writer moves on to a preallocated file when the current one is full (spare.rs); the
//! parts of a segment are one stream of records, in part order.
//!
//! Base N is the node's keyspace as it was when segment N began, so the node's state is the
//! newest base followed by every segment from its number on. A compaction or a full sync
//! starts a new segment, writes the base of that number beside it, and only then deletes
//! what is older; a crash at any step leaves a base and the segments that follow it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use super::log::{self, Record};
use super::{Position, StoreError};
use crate::keyspace::Entry;
use crate::snapshot::file as image;

pub struct NodeFiles {
    dir: PathBuf,
    next_segment: AtomicU64,
}

/// What recovery found, besides the keys and records it handed out.
#[derive(Debug, Default)]
pub struct Recovered {
    pub position: Position,
    /// The newest base's number (0: none).
    pub base: u64,
    pub base_bytes: u64,
    /// Bytes of the segments replayed (what the next compaction would fold in).
    pub log_bytes: u64,
    /// Segments replayed, with their sizes.
    pub segments: Vec<(u64, u64)>,
}

/// How a node's files are named: node ids come from the coordinators, but a name that could
/// leave the folder is never used as is.
fn folder_name(node_id: &str) -> String {
    let plain = !node_id.is_empty()
        && node_id.len() <= 200
        && !node_id.starts_with('.')
        && node_id.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if plain {
        node_id.to_string()
    } else {
        format!("x{}", node_id.bytes().map(|b| format!("{b:02x}")).collect::<String>())
    }
}

/// A log file: its segment's number and its part in it.
type Part = (u64, u32);

fn numbered(name: &str, prefix: &str, suffix: &str) -> Option<u64> {
    name.strip_prefix(prefix)?.strip_suffix(suffix)?.parse().ok()
}

/// `log-N.P.aof` -> (N, P), P >= 1.
fn part_name(name: &str) -> Option<Part> {
    let (n, p) = name.strip_prefix("log-")?.strip_suffix(".aof")?.split_once('.')?;
    let p: u32 = p.parse().ok().filter(|&p| p > 0)?;
    Some((n.parse().ok()?, p))
}

impl NodeFiles {
    /// The files of node `node_id` under `root` (created if missing).
    pub fn open(root: &Path, node_id: &str) -> Result<NodeFiles, StoreError> {
        let dir = root.join(folder_name(node_id));
        std::fs::create_dir_all(&dir).map_err(io)?;
        let files = NodeFiles { dir, next_segment: AtomicU64::new(1) };
        let (bases, segments) = files.list()?;
        let top = bases.iter().chain(segments.iter().map(|(n, _)| n)).max().copied().unwrap_or(0);
        files.next_segment.store(top + 1, Ordering::Relaxed);
        Ok(files)
    }

    /// Is there anything stored (a node seen before)?
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        let (bases, segments) = self.list()?;
        Ok(bases.is_empty() && segments.is_empty())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A segment number no file has used yet.
    pub fn allocate(&self) -> u64 {
        self.next_segment.fetch_add(1, Ordering::Relaxed)
    }

    pub fn base_path(&self, n: u64) -> PathBuf {
        self.dir.join(format!("base-{n}.fcsnap"))
    }

    pub fn segment_path(&self, n: u64) -> PathBuf {
        self.part_path(n, 0)
    }

    /// Part `part` of segment `n` (part 0 is the segment's own file).
    pub fn part_path(&self, n: u64, part: u32) -> PathBuf {
        match part {
            0 => self.dir.join(format!("log-{n}.aof")),
            p => self.dir.join(format!("log-{n}.{p}.aof")),
        }
    }

    /// Base numbers and segment parts (number, part) present, each ascending.
    fn list(&self) -> Result<(Vec<u64>, Vec<Part>), StoreError> {
        let (mut bases, mut segments) = (Vec::new(), Vec::new());
        for e in std::fs::read_dir(&self.dir).map_err(io)? {
            let name = e.map_err(io)?.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(n) = numbered(name, "base-", ".fcsnap") {
                bases.push(n);
            } else if let Some(n) = numbered(name, "log-", ".aof") {
                segments.push((n, 0));
            } else if let Some(part) = part_name(name) {
                segments.push(part);
            }
        }
        bases.sort_unstable();
        segments.sort_unstable();
        Ok((bases, segments))
    }

    /// Loads the newest base and replays the segments after it: `entry` gets each stored key
    /// (with its database),
    /// `record` each logged record, in order. A torn record at the end of the last segment (a
    /// crash mid-write) is cut off, as is the zero tail of a preallocated part; damage anywhere
    /// else is an error.
    pub fn recover(
        &self,
        mut entry: impl FnMut(usize, Bytes, Entry),
        mut record: impl FnMut(Record),
    ) -> Result<Recovered, StoreError> {
        let (bases, segments) = self.list()?;
        let mut found = Recovered::default();
        let base = bases.last().copied().unwrap_or(0);
        found.base = base;
        if base > 0 {
            let path = self.base_path(base);
            let data = std::fs::read(&path).map_err(io)?;
            found.base_bytes = data.len() as u64;
            let position = image::parse_each(&data, &mut entry)
                .map_err(|e| StoreError::Corrupt { file: path.display().to_string(), reason: e.to_string() })?;
            found.position = position.unwrap_or_default();
        }
        let replay: Vec<Part> = segments.into_iter().filter(|&(n, _)| n >= base).collect();
        for (i, &(n, part)) in replay.iter().enumerate() {
            let path = self.part_path(n, part);
            let data = Bytes::from(std::fs::read(&path).map_err(io)?);
            let read = log::read(&data, |r| {
                match &r {
                    Record::Effects { offset_before, effects } => {
                        found.position.offset = offset_before + effects.len() as u64;
                    }
                    Record::Position(p) => found.position = p.clone(),
                    Record::Scripts(_) => {}
                }
                record(r);
            });
            // A preallocated part ends in zeros where appends stopped: its end, not damage.
            let zero_tail = read.torn && data[read.valid..].iter().all(|&b| b == 0);
            if read.torn && !zero_tail && i + 1 != replay.len() {
                let reason = format!("damaged record at byte {} (not the end of the log)", read.valid);
                return Err(StoreError::Corrupt { file: path.display().to_string(), reason });
            }
            if read.torn {
                if !zero_tail {
                    tracing::warn!(file = %path.display(), kept = read.valid, dropped = data.len() - read.valid, "log ends in a torn record (a crash mid-write); cutting it off");
                }
                let f = std::fs::OpenOptions::new().write(true).open(&path).map_err(io)?;
                f.set_len(read.valid as u64).map_err(io)?;
                f.sync_all().map_err(io)?;
            }
            found.log_bytes += read.valid as u64;
            match found.segments.last_mut() {
                Some((last, bytes)) if *last == n => *bytes += read.valid as u64,
                _ => found.segments.push((n, read.valid as u64)),
            }
        }
        Ok(found)
    }

    /// Deletes bases and segments numbered below `n` (base `n` now stands for them).
    pub fn remove_before(&self, n: u64) -> Result<(), StoreError> {
        let (bases, segments) = self.list()?;
        for b in bases.into_iter().filter(|&b| b < n) {
            remove(&self.base_path(b))?;
        }
        for (s, part) in segments.into_iter().filter(|&(s, _)| s < n) {
            remove(&self.part_path(s, part))?;
        }
        image::sync_dir(&self.dir);
        Ok(())
    }

    /// Deletes the node's files for good (the node left this datanode).
    pub fn destroy(&self) -> Result<(), StoreError> {
        match std::fs::remove_dir_all(&self.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(e)),
            _ => Ok(()),
        }
    }
}

fn remove(path: &Path) -> Result<(), StoreError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(e)),
        _ => Ok(()),
    }
}

pub(crate) fn io(e: std::io::Error) -> StoreError {
    StoreError::Io(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replication::backlog::Effect;
    use crate::value::Value;

    fn effect(args: &[&str]) -> Effect {
        args.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect()
    }

    fn recover(files: &NodeFiles) -> (Recovered, Vec<Bytes>, Vec<Record>) {
        let (mut keys, mut records) = (Vec::new(), Vec::new());
        let r = files.recover(|_, k, _| keys.push(k), |rec| records.push(rec)).unwrap();
        (r, keys, records)
    }

    #[test]
    fn newest_base_then_the_segments_from_its_number() {
        let root = tempfile::tempdir().unwrap();
        let files = NodeFiles::open(root.path(), "rg-1-001").unwrap();
        assert!(files.is_empty().unwrap());
        let (r, keys, records) = recover(&files);
        assert_eq!((r.position, keys.len(), records.len()), (Position::default(), 0, 0));

        // Segment 1 holds two records; base 2 stands for it; segment 2 follows.
        let mut out = Vec::new();
        log::encode_position(&mut out, &Position { replid: "a".into(), offset: 0 });
        log::encode_effects(&mut out, 0, &[effect(&["SET", "k", "1"])]);
        std::fs::write(files.segment_path(files.allocate()), &out).unwrap();
        let two = files.allocate();
        let mut w = image::Writer::create(files.base_path(two)).unwrap();
        w.position(&Position { replid: "a".into(), offset: 1 }).unwrap();
        w.entry(0, b"k", &Entry::new(Value::Str(crate::strval::Str::from(Bytes::from_static(b"1"))))).unwrap();
        w.finish().unwrap();
        let mut out = Vec::new();
        log::encode_effects(&mut out, 1, &[effect(&["SET", "j", "2"]), effect(&["DEL", "k"])]);
        let whole = out.len();
        log::encode_effects(&mut out, 3, &[effect(&["SET", "x", "3"])]);
        std::fs::write(files.segment_path(two), &out[..out.len() - 3]).unwrap();

        let reopened = NodeFiles::open(root.path(), "rg-1-001").unwrap();
        assert_eq!(reopened.allocate(), 3);
        let (r, keys, records) = recover(&reopened);
        assert_eq!(keys, vec![Bytes::from_static(b"k")]);
        assert_eq!(records.len(), 1, "the torn record is cut off");
        assert_eq!(r.position, Position { replid: "a".into(), offset: 3 });
        assert_eq!(std::fs::metadata(reopened.segment_path(two)).unwrap().len(), whole as u64);

        reopened.remove_before(two).unwrap();
        assert!(!reopened.segment_path(1).exists());
        assert_eq!(recover(&reopened).0.position.offset, 3);
        reopened.destroy().unwrap();
        assert!(!root.path().join("rg-1-001").exists());
    }

    #[test]
    fn damage_before_the_last_segment_is_an_error() {
        let root = tempfile::tempdir().unwrap();
        let files = NodeFiles::open(root.path(), "n").unwrap();
        let mut out = Vec::new();
        log::encode_effects(&mut out, 0, &[effect(&["SET", "k", "1"])]);
        out.push(7);
        std::fs::write(files.segment_path(files.allocate()), &out).unwrap();
        std::fs::write(files.segment_path(files.allocate()), b"").unwrap();
        assert!(matches!(files.recover(|_, _, _| {}, |_| {}), Err(StoreError::Corrupt { .. })));
    }

    #[test]
    fn parts_follow_their_segment_and_only_zeros_may_end_one_early() {
        let root = tempfile::tempdir().unwrap();
        let files = NodeFiles::open(root.path(), "n").unwrap();
        let one = files.allocate();
        let record = |n: u64| {
            let mut out = Vec::new();
            log::encode_effects(&mut out, n, &[effect(&["SET", "k", &n.to_string()])]);
            out
        };
        let mut first = record(0);
        first.extend_from_slice(&[0; 100]);
        std::fs::write(files.part_path(one, 0), &first).unwrap();
        std::fs::write(files.part_path(one, 2), record(2)).unwrap();
        std::fs::write(files.part_path(one, 1), [record(1), vec![0; 50]].concat()).unwrap();
        let (r, _, records) = recover(&files);
        let offsets: Vec<u64> = records
            .iter()
            .map(|r| match r {
                Record::Effects { offset_before, .. } => *offset_before,
                _ => u64::MAX,
            })
            .collect();
        assert_eq!(offsets, vec![0, 1, 2], "parts in order, zero tails skipped");
        assert_eq!(r.segments, vec![(one, (3 * record(0).len()) as u64)]);
        assert_eq!(std::fs::metadata(files.part_path(one, 0)).unwrap().len(), record(0).len() as u64);

        // Anything but zeros after the last record of a part that is not the last is damage.
        std::fs::write(files.part_path(one, 1), [record(1), vec![0, 0, 7]].concat()).unwrap();
        assert!(matches!(files.recover(|_, _, _| {}, |_| {}), Err(StoreError::Corrupt { .. })));
        assert_eq!(NodeFiles::open(root.path(), "n").unwrap().allocate(), one + 1);
        files.remove_before(one + 1).unwrap();
        assert!(files.list().unwrap().1.is_empty(), "every part of a folded segment goes");
    }

    #[test]
    fn odd_node_ids_stay_inside_the_folder() {
        assert_eq!(folder_name("rg-0001-002"), "rg-0001-002");
        assert_eq!(folder_name("../x"), "x2e2e2f78");
        assert_eq!(folder_name(""), "x");
    }
}
