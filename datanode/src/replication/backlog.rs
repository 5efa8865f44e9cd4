//! The replication backlog: the most recent write effects with their offsets, bounded in
//! bytes. A replica whose offset is still inside resumes from it (partial resync); one
//! further behind needs a full sync.
//!
//! It holds each commit's effects as the one log record the storage writer appends (the
//! same `Bytes`), so a backlog byte is a real byte: no per-effect allocations, and no
//! slices pinning the request buffers the arguments came from.

use std::collections::VecDeque;

use bytes::Bytes;

use crate::storage::log;

pub type Effect = Vec<Bytes>;

pub struct Backlog {
    /// (offset of the record's first effect, effect count, record); offsets are consecutive.
    items: VecDeque<(u64, u64, Bytes)>,
    bytes: usize,
    limit: usize,
}

/// Bookkeeping counted per record on top of its bytes.
const RECORD_OVERHEAD: usize = 64;

impl Backlog {
    pub fn new(limit_bytes: usize) -> Backlog {
        Backlog { items: VecDeque::new(), bytes: 0, limit: limit_bytes }
    }

    /// Adds a record (from [`log::effects_record`]) whose first effect has offset `first`.
    pub fn push(&mut self, first: u64, count: u64, record: Bytes) {
        if count == 0 {
            return;
        }
        self.bytes += record.len() + RECORD_OVERHEAD;
        self.items.push_back((first, count, record));
        self.trim();
    }

    /// Drops the oldest records until the rest fits the limit (the newest always stays).
    fn trim(&mut self) {
        while self.bytes > self.limit && self.items.len() > 1 {
            if let Some((_, _, old)) = self.items.pop_front() {
                self.bytes -= old.len() + RECORD_OVERHEAD;
            }
        }
    }

    /// repl-backlog-size changed: the oldest records go until the rest fits (the newest
    /// always stays).
    pub fn set_limit(&mut self, limit_bytes: usize) {
        self.limit = limit_bytes;
        self.trim();
    }

    pub fn clear(&mut self) {
        self.items.clear();
        self.bytes = 0;
    }

    /// Bytes held (INFO's repl_backlog_histlen).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The configured bound (INFO's repl_backlog_size).
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Can a replica that has applied everything up to `offset` resume here, given the
    /// primary is at `current`?
    pub fn covers(&self, offset: u64, current: u64) -> bool {
        if offset == current {
            return true;
        }
        match self.items.front() {
            Some(&(first, _, _)) => offset + 1 >= first && offset < current,
            None => false,
        }
    }

    /// The records holding the effects after `offset`, as stored (no decoding), up to about
    /// `max_bytes`: how many effects of the first one to skip (the replica has them), the
    /// records, and the offset after their last effect. None when the first record alone is
    /// over `max_bytes` (the caller splits it with [`Backlog::after`]); no records when
    /// nothing follows `offset`.
    pub fn records_after(&self, offset: u64, max_bytes: usize) -> Option<(u64, Vec<Bytes>, u64)> {
        let want = offset + 1;
        // From the newest back: a replica that keeps up wants the last record or two (a
        // binary search over the whole backlog was 1 % of a primary's CPU under SET).
        let start = self.items.iter().rposition(|(first, count, _)| first + count <= want).map_or(0, |i| i + 1);
        let mut records = Vec::new();
        let (mut bytes, mut skip, mut last) = (0usize, 0, offset);
        for (first, count, record) in self.items.iter().skip(start) {
            if records.is_empty() {
                if record.len() > max_bytes {
                    return None;
                }
                skip = want.saturating_sub(*first);
            } else if bytes + record.len() > max_bytes {
                break;
            }
            bytes += record.len();
            records.push(record.clone());
            last = first + count - 1;
        }
        Some((skip, records, last))
    }

    /// Up to `max` effects after `offset`, in order.
    pub fn after(&self, offset: u64, max: usize) -> Vec<(u64, Effect)> {
        let want = offset + 1;
        // The first record still holding effects at or after `want`.
        let start = self.items.partition_point(|(first, count, _)| first + count <= want);
        let mut out = Vec::new();
        for (first, _, record) in self.items.iter().skip(start) {
            let Some((_, effects)) = log::decode_effects(record) else {
                tracing::error!("a backlog record does not decode; replicas will full-sync");
                break;
            };
            for (i, effect) in effects.into_iter().enumerate() {
                let at = first + i as u64;
                if at < want {
                    continue;
                }
                if out.len() >= max {
                    return out;
                }
                out.push((at, effect));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eff(n: u8) -> Effect {
        vec![Bytes::from(vec![n; 10])]
    }

    fn push(b: &mut Backlog, first: u64, effects: &[Effect]) {
        b.push(first, effects.len() as u64, log::effects_record(first - 1, effects));
    }

    #[test]
    fn bounded_and_resumable() {
        let one = log::effects_record(0, &[eff(1)]).len() + RECORD_OVERHEAD;
        let mut b = Backlog::new(3 * one);
        for i in 1..=10u64 {
            push(&mut b, i, &[eff(i as u8)]);
        }
        // Only the last 3 records fit.
        assert!(b.covers(10, 10));
        assert!(b.covers(7, 10));
        assert!(!b.covers(6, 10));
        assert_eq!(b.after(7, 10).iter().map(|(o, _)| *o).collect::<Vec<_>>(), vec![8, 9, 10]);
        assert_eq!(b.after(8, 1), vec![(9, eff(9))]);
        assert!(b.after(10, 10).is_empty());
        let empty = Backlog::new(100);
        assert!(empty.covers(0, 0) && !empty.covers(0, 5));
        // repl-backlog-size made smaller: the oldest go at once; larger: new ones stay.
        b.set_limit(one);
        assert!(b.covers(9, 10) && !b.covers(8, 10));
        assert_eq!(b.limit(), one);
        b.set_limit(2 * one);
        push(&mut b, 11, &[eff(11)]);
        assert!(b.covers(9, 11) && !b.covers(8, 11));
    }

    #[test]
    fn records_after_resume_inside_the_first_and_stop_at_the_byte_bound() {
        let mut b = Backlog::new(1 << 20);
        push(&mut b, 1, &[eff(1), eff(2), eff(3)]);
        push(&mut b, 4, &[eff(4), eff(5)]);
        push(&mut b, 6, &[eff(6)]);
        let (skip, records, last) = b.records_after(1, usize::MAX).unwrap();
        assert_eq!((skip, records.len(), last), (1, 3, 6));
        assert_eq!(log::decode_effects(&records[0]).unwrap(), (0, vec![eff(1), eff(2), eff(3)]));
        let (skip, records, last) = b.records_after(3, usize::MAX).unwrap();
        assert_eq!((skip, records.len(), last), (0, 2, 6));
        assert!(b.records_after(6, usize::MAX).unwrap().1.is_empty());
        // The bound: the first record always goes, the next only while the total fits.
        let first = log::effects_record(0, &[eff(1), eff(2), eff(3)]).len();
        let (_, records, last) = b.records_after(0, first + 1).unwrap();
        assert_eq!((records.len(), last), (1, 3));
        assert!(b.records_after(0, first - 1).is_none(), "a record over the bound is split by the caller");
    }

    #[test]
    fn resumes_inside_a_record() {
        let mut b = Backlog::new(1 << 20);
        push(&mut b, 1, &[eff(1), eff(2), eff(3)]);
        push(&mut b, 4, &[eff(4), eff(5)]);
        assert_eq!(b.after(1, 3).iter().map(|(o, _)| *o).collect::<Vec<_>>(), vec![2, 3, 4]);
        assert_eq!(b.after(3, 10), vec![(4, eff(4)), (5, eff(5))]);
        assert_eq!(b.after(0, 1), vec![(1, eff(1))]);
    }
}
