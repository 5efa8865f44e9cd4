//! A group's durability mode as its primary applies it (see docs/failover.md):
//! `none` answers writes once applied, `async` refuses them while the most up-to-date
//! replica lags past a bound, `sync` answers them only once enough replicas have them.

use std::collections::VecDeque;

use ferrocache_proto::internal::v1 as pb;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    #[default]
    None,
    Async,
    Sync,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Durability {
    pub mode: Mode,
    pub min_replicas_to_ack: usize,
    pub max_replica_lag_ms: u64,
}

impl Default for Durability {
    fn default() -> Durability {
        Durability { mode: Mode::None, min_replicas_to_ack: 1, max_replica_lag_ms: 1000 }
    }
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::None => "none",
            Mode::Async => "async",
            Mode::Sync => "sync",
        }
    }
}

impl Durability {
    pub fn from_assignment(a: &pb::NodeAssignment) -> Durability {
        let mode = match a.durability.as_str() {
            "sync" => Mode::Sync,
            "async" => Mode::Async,
            _ => Mode::None,
        };
        Durability {
            mode,
            min_replicas_to_ack: (a.min_replicas_to_ack as usize).max(1),
            max_replica_lag_ms: a.max_replica_lag_ms.max(1),
        }
    }
}

/// Redis's answer when too few replicas are connected (the write did not run).
pub const NOREPLICAS: &str = "NOREPLICAS Not enough good replicas to write.";

/// The answer to writes while a planned switch waits for a replica to catch up (the write
/// did not run; gateways retry it on the new primary).
pub const PAUSED: &str = "TRYAGAIN writes are paused for a planned primary switch; retry shortly";

/// Most entries a [`WriteClock`] keeps; beyond it the newest entry absorbs new writes,
/// which can only make the measured lag larger, never smaller.
const CLOCK_ENTRIES: usize = 4096;
/// Writes closer together than this share an entry.
const CLOCK_GRAIN_MS: i64 = 10;

/// When a primary's offsets were written, so a replica's lag can be told in time: the lag
/// is the age of the oldest write the replica has not acknowledged.
#[derive(Debug, Default)]
pub struct WriteClock {
    /// (last offset of the writes in the entry, when the first of them was made)
    entries: VecDeque<(u64, i64)>,
}

impl WriteClock {
    pub fn record(&mut self, end_offset: u64, now_ms: i64) {
        let full = self.entries.len() >= CLOCK_ENTRIES;
        match self.entries.back_mut() {
            Some(last) if full || now_ms - last.1 < CLOCK_GRAIN_MS => last.0 = end_offset,
            _ => self.entries.push_back((end_offset, now_ms)),
        }
    }

    /// Lag in ms of a replica that acknowledged `acked`; forgets what every replica has.
    pub fn lag_ms(&mut self, acked: u64, now_ms: i64) -> u64 {
        while self.entries.front().is_some_and(|(end, _)| *end <= acked) {
            self.entries.pop_front();
        }
        self.entries.front().map_or(0, |(_, at)| (now_ms - at).max(0) as u64)
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_is_the_age_of_the_oldest_unacknowledged_write() {
        let mut c = WriteClock::default();
        assert_eq!(c.lag_ms(0, 1000), 0);
        c.record(5, 1000);
        c.record(9, 1005); // same grain: merged
        c.record(12, 1100);
        assert_eq!(c.lag_ms(0, 1500), 500);
        assert_eq!(c.lag_ms(9, 1500), 400);
        assert_eq!(c.lag_ms(12, 1500), 0);
    }

    #[test]
    fn a_full_clock_overstates_rather_than_understates() {
        let mut c = WriteClock::default();
        for i in 0..(CLOCK_ENTRIES as u64 + 100) {
            c.record(i + 1, i as i64 * 100);
        }
        assert_eq!(c.entries.len(), CLOCK_ENTRIES);
        // Everything after the last full entry counts from that entry's (older) time.
        let last_time = (CLOCK_ENTRIES as i64 - 1) * 100;
        assert_eq!(c.lag_ms(CLOCK_ENTRIES as u64 - 1, 1_000_000), (1_000_000 - last_time) as u64);
    }
}
