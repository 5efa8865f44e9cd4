//! A fault-test workload: writers that SET unique keys through the gateway and record every
//! acknowledged write with its time, and a check that reads each one back afterwards.
//! Errors are sorted by what they mean: refused (the write did not happen) or unknown.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use redis::cmd;

use super::redis_conn;

#[derive(Debug, Default)]
pub struct Record {
    /// (key, value, when sent, when acknowledged)
    pub acked: Vec<(String, u64, Instant, Instant)>,
    /// Errors by message, with when they happened.
    pub errors: Vec<(String, Instant)>,
}

pub struct Writers {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    pub record: Arc<Mutex<Record>>,
}

impl Writers {
    /// `n` writers on `port`, each on its own connection, keys `{prefix}{writer}-{i}`.
    pub fn start(port: u16, n: usize, prefix: &str) -> Writers {
        let stop = Arc::new(AtomicBool::new(false));
        let record = Arc::new(Mutex::new(Record::default()));
        let tasks = (0..n)
            .map(|w| {
                let (stop, record, prefix) = (stop.clone(), record.clone(), prefix.to_string());
                tokio::spawn(async move {
                    let mut conn = redis_conn(port).await;
                    let mut i = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        i += 1;
                        let key = format!("{prefix}{w}-{i}");
                        let mut set = cmd("SET");
                        set.arg(&key).arg(i);
                        let sent_at = Instant::now();
                        let sent = set.query_async::<()>(&mut conn);
                        match tokio::time::timeout(Duration::from_secs(15), sent).await {
                            Ok(Ok(())) => record.lock().acked.push((key, i, sent_at, Instant::now())),
                            Ok(Err(e)) => {
                                record.lock().errors.push((e.to_string(), Instant::now()));
                                if e.is_io_error() || e.is_connection_dropped() {
                                    conn = redis_conn(port).await;
                                }
                                tokio::time::sleep(Duration::from_millis(5)).await;
                            }
                            Err(_) => {
                                record.lock().errors.push(("client timeout".into(), Instant::now()));
                                conn = redis_conn(port).await;
                            }
                        }
                    }
                })
            })
            .collect();
        Writers { stop, tasks, record }
    }

    pub fn acked(&self) -> usize {
        self.record.lock().acked.len()
    }

    /// Waits until `more` further writes have been acknowledged (the workload is flowing).
    pub async fn progress(&self, more: usize, within: Duration) {
        let target = self.acked() + more;
        let deadline = Instant::now() + within;
        while self.acked() < target {
            assert!(Instant::now() < deadline, "writes stalled: {} acknowledged, wanted {target}", self.acked());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// How long after `t` the first write *sent* after `t` was acknowledged: how long
    /// writes were unavailable after a fault at `t`.
    pub fn first_ack_after(&self, t: Instant) -> Option<Duration> {
        self.record.lock().acked.iter().filter(|(_, _, sent, _)| *sent > t).map(|(_, _, _, at)| *at - t).min()
    }

    /// The longest stretch in `[from, to]` without an acknowledged write: how long writes
    /// were unavailable around a fault.
    pub fn longest_gap(&self, from: Instant, to: Instant) -> Duration {
        let mut times: Vec<Instant> =
            self.record.lock().acked.iter().map(|(.., at)| *at).filter(|at| *at >= from && *at <= to).collect();
        times.sort_unstable();
        let mut last = from;
        let mut gap = Duration::ZERO;
        for t in times.into_iter().chain(std::iter::once(to)) {
            gap = gap.max(t - last);
            last = t;
        }
        gap
    }

    /// Waits until `more` writes sent after `t` have been acknowledged.
    pub async fn progress_after(&self, t: Instant, more: usize, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let n = self.record.lock().acked.iter().filter(|(_, _, sent, _)| *sent > t).count();
            if n >= more {
                return;
            }
            assert!(Instant::now() < deadline, "writes did not resume: {n} of {more} acknowledged after the fault");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn stop(self) -> Record {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            let _ = t.await;
        }
        Arc::try_unwrap(self.record).map(|m| m.into_inner()).unwrap_or_default()
    }
}

/// Reads every acknowledged key back; returns the ones missing or wrong.
pub async fn lost_writes(port: u16, record: &Record) -> Vec<String> {
    let mut conn = redis_conn(port).await;
    let mut lost = Vec::new();
    for chunk in record.acked.chunks(500) {
        let mut pipe = redis::pipe();
        for (key, ..) in chunk {
            pipe.cmd("GET").arg(key);
        }
        let values: Vec<Option<u64>> = pipe.query_async(&mut conn).await.expect("reading back");
        for ((key, v, ..), got) in chunk.iter().zip(values) {
            if got != Some(*v) {
                lost.push(key.clone());
            }
        }
    }
    lost
}
