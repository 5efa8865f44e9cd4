//! The primary's replication backlog: the most recent write effects with their offsets,
//! bounded in bytes. A replica whose offset is still inside resumes from it (partial
//! resync); one further behind needs a full sync.

use std::collections::VecDeque;

use bytes::Bytes;

pub type Effect = Vec<Bytes>;

pub struct Backlog {
    /// (offset of the effect, effect); offsets are consecutive.
    items: VecDeque<(u64, Effect)>,
    bytes: usize,
    limit: usize,
}

impl Backlog {
    pub fn new(limit_bytes: usize) -> Backlog {
        Backlog { items: VecDeque::new(), bytes: 0, limit: limit_bytes }
    }

    fn size(effect: &Effect) -> usize {
        effect.iter().map(|a| a.len() + 16).sum()
    }

    pub fn push(&mut self, offset: u64, effect: Effect) {
        self.bytes += Self::size(&effect);
        self.items.push_back((offset, effect));
        while self.bytes > self.limit && self.items.len() > 1 {
            if let Some((_, old)) = self.items.pop_front() {
                self.bytes -= Self::size(&old);
            }
        }
    }

    pub fn clear(&mut self) {
        self.items.clear();
        self.bytes = 0;
    }

    /// Can a replica that has applied everything up to `offset` resume here, given the
    /// primary is at `current`?
    pub fn covers(&self, offset: u64, current: u64) -> bool {
        if offset == current {
            return true;
        }
        match self.items.front() {
            Some(&(first, _)) => offset + 1 >= first && offset < current,
            None => false,
        }
    }

    /// Up to `max` effects after `offset`, in order.
    pub fn after(&self, offset: u64, max: usize) -> Vec<(u64, Effect)> {
        let Some(&(first, _)) = self.items.front() else {
            return Vec::new();
        };
        let skip = (offset + 1).saturating_sub(first) as usize;
        self.items.iter().skip(skip).take(max).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eff(n: u8) -> Effect {
        vec![Bytes::from(vec![n; 10])]
    }

    #[test]
    fn bounded_and_resumable() {
        let mut b = Backlog::new(100);
        for i in 1..=10u64 {
            b.push(i, eff(i as u8));
        }
        // Each effect counts 26 bytes: only the last 3 fit in 100.
        assert!(b.covers(10, 10));
        assert!(b.covers(7, 10));
        assert!(!b.covers(6, 10));
        assert_eq!(b.after(7, 10).iter().map(|(o, _)| *o).collect::<Vec<_>>(), vec![8, 9, 10]);
        assert_eq!(b.after(8, 1).iter().map(|(o, _)| *o).collect::<Vec<_>>(), vec![9]);
        assert!(b.after(10, 10).is_empty());
        let empty = Backlog::new(100);
        assert!(empty.covers(0, 0) && !empty.covers(0, 5));
    }
}
