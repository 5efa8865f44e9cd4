//! A group's client traffic on this gateway: INFO stats' counters (connections, commands,
//! bytes) and their instantaneous_* rates, computed as Redis does: every 100 ms a sample of
//! how fast a counter grew since the last one; the rate shown is the mean of the last 16.
//! Kept per group, so one group's INFO and CONFIG RESETSTAT are its own.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

#[derive(Default)]
pub struct Traffic {
    pub connections: AtomicU64,
    /// Connections refused at maxclients.
    pub rejected: AtomicU64,
    /// Clients closed by maxmemory-clients.
    pub evicted_clients: AtomicU64,
    pub commands: AtomicU64,
    /// Bytes read from and written to clients.
    pub net_input: AtomicU64,
    pub net_output: AtomicU64,
    pub rates: Rates,
}

impl Traffic {
    fn counters(&self) -> [&AtomicU64; 6] {
        [&self.connections, &self.rejected, &self.evicted_clients, &self.commands, &self.net_input, &self.net_output]
    }

    /// CONFIG RESETSTAT.
    pub fn reset(&self) {
        for c in self.counters() {
            c.store(0, Ordering::Relaxed);
        }
    }

    /// Takes a sample for the rates (every [`PERIOD`]).
    pub fn sample(&self, now: Instant) {
        let totals = [&self.commands, &self.net_input, &self.net_output].map(|c| c.load(Ordering::Relaxed));
        self.rates.sample(now, totals);
    }
}

/// How often a sample is taken.
pub const PERIOD: Duration = Duration::from_millis(100);
const SAMPLES: usize = 16;

/// The sampled counters: commands, bytes read from clients, bytes written.
#[derive(Default)]
pub struct Rates {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    last: Option<(Instant, [u64; 3])>,
    samples: [[u64; SAMPLES]; 3],
    next: usize,
}

impl Rates {
    /// Records the counters' values now (commands, input bytes, output bytes).
    pub fn sample(&self, now: Instant, totals: [u64; 3]) {
        let mut inner = self.inner.lock();
        if let Some((at, before)) = inner.last {
            let ms = now.saturating_duration_since(at).as_millis().max(1) as u64;
            let slot = inner.next;
            for (metric, (total, before)) in totals.iter().zip(before).enumerate() {
                // A RESETSTAT in between makes a counter go back: that sample is 0.
                inner.samples[metric][slot] = total.saturating_sub(before).saturating_mul(1000) / ms;
            }
            inner.next = (slot + 1) % SAMPLES;
        }
        inner.last = Some((now, totals));
    }

    /// Per second, over the last 1.6 s: (commands, input bytes, output bytes).
    pub fn per_second(&self) -> [u64; 3] {
        let inner = self.inner.lock();
        inner.samples.map(|s| s.iter().sum::<u64>() / SAMPLES as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_is_the_mean_of_the_last_samples() {
        let rates = Rates::default();
        let t0 = Instant::now();
        rates.sample(t0, [0, 0, 0]);
        assert_eq!(rates.per_second(), [0, 0, 0]);
        // 16 samples of 100 commands per 100 ms: 1000/s.
        for i in 1..=16 {
            rates.sample(t0 + PERIOD * i, [100 * i as u64, 1000 * i as u64, 0]);
        }
        assert_eq!(rates.per_second(), [1000, 10_000, 0]);
        // Idle for 8 samples: half the window is 0.
        for i in 17..=24 {
            rates.sample(t0 + PERIOD * i, [1600, 16_000, 0]);
        }
        assert_eq!(rates.per_second(), [500, 5000, 0]);
    }

    #[test]
    fn a_counter_reset_counts_as_nothing() {
        let rates = Rates::default();
        let t0 = Instant::now();
        rates.sample(t0, [500, 500, 500]);
        rates.sample(t0 + PERIOD, [0, 0, 0]);
        assert_eq!(rates.per_second(), [0, 0, 0]);
    }
}
