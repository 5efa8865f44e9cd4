//! Redis's client eviction (`maxmemory-clients`): when the memory a group's clients hold on
//! this gateway (query buffers, arguments in flight, MULTI queues, output buffers) passes the
//! limit, the clients holding most are closed until the rest fit. Clients that set CLIENT
//! NO-EVICT are spared, as in Redis.
//!
//! Each connection reports what it holds after every pass of its loop (a partial command
//! included); the group's total is kept by those reports, so the check costs an atomic add
//! and no scan until the limit is passed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrocache_common::parameters;

use crate::router::Router;

/// How often a connection looks its group's limit up again (off the per-command path).
const RECHECK: Duration = Duration::from_secs(1);

/// After a scan of the group's clients found none it may close (all NO-EVICT), how long the
/// group's connections go without scanning again: a scan is O(clients), and while over the
/// limit every pass that grows a buffer would otherwise pay it.
const QUIET_AFTER_FRUITLESS_SCAN: Duration = Duration::from_millis(100);

/// What a group's clients hold on this gateway, shared by its connections.
#[derive(Default)]
pub struct GroupClientMemory {
    total: AtomicU64,
    /// No scan before this, in ms since `epoch()` (0: scan when over).
    quiet_until_ms: AtomicU64,
}

impl GroupClientMemory {
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }
}

fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn millis(at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(epoch()).as_millis()).unwrap_or(u64::MAX)
}

/// The limit in bytes a group's parameters set (None: no limit). A percentage is of the
/// group's maxmemory, and means no limit without one (as in Redis).
pub fn limit(set: &std::collections::BTreeMap<String, String>) -> Option<u64> {
    let value = parameters::value(set, "maxmemory-clients");
    let bytes = match value.strip_suffix('%') {
        Some(pct) => {
            let pct: u64 = pct.parse().ok()?;
            let maxmemory: u64 = parameters::value(set, "maxmemory").parse().ok()?;
            // u128: a percentage of a huge maxmemory must not wrap.
            u64::try_from(maxmemory as u128 * pct as u128 / 100).unwrap_or(u64::MAX)
        }
        None => value.parse().ok()?,
    };
    (bytes > 0).then_some(bytes)
}

/// One connection's share of its group's client memory.
pub struct ClientMemory {
    /// The group's clients on this gateway.
    group: Arc<GroupClientMemory>,
    /// What this connection last reported.
    counted: u64,
    limit: Option<u64>,
    checked: Option<Instant>,
}

impl ClientMemory {
    pub fn new(group: Arc<GroupClientMemory>) -> ClientMemory {
        ClientMemory { group, counted: 0, limit: None, checked: None }
    }

    /// Records that the connection now holds `bytes` (as of `now`, the connection's last
    /// read: no clock read per pass); Some(limit) when this connection grew, the group's
    /// clients are over the limit and a scan for clients to close is due.
    pub fn report(&mut self, bytes: u64, now: Instant, router: &Router, group: &str) -> Option<u64> {
        // Most passes end with the buffers as they were: nothing to add, nothing to check
        // (until the limit is due to be looked up again: it may have been lowered).
        if bytes == self.counted && self.checked.is_some_and(|c| now.duration_since(c) < RECHECK) {
            return None;
        }
        let grew = bytes > self.counted;
        let total = if grew {
            self.group.total.fetch_add(bytes - self.counted, Ordering::Relaxed) + (bytes - self.counted)
        } else {
            self.group.total.fetch_sub(self.counted - bytes, Ordering::Relaxed) - (self.counted - bytes)
        };
        self.counted = bytes;
        if self.checked.is_none_or(|c| now.duration_since(c) >= RECHECK) {
            self.checked = Some(now);
            self.limit = router.table().groups.get(group).and_then(|g| limit(&g.parameters));
        }
        // Only a connection that grew can have pushed the group over (or further over).
        let over = self.limit.filter(|l| grew && total > *l)?;
        // The clock read here, not `now`: a subscriber's last read may be hours old.
        (millis(Instant::now()) >= self.group.quiet_until_ms.load(Ordering::Relaxed)).then_some(over)
    }

    /// A scan closed nobody: the group's connections skip scanning a while.
    pub fn nothing_to_evict(&self) {
        let until = millis(Instant::now()).saturating_add(QUIET_AFTER_FRUITLESS_SCAN.as_millis() as u64);
        self.group.quiet_until_ms.store(until, Ordering::Relaxed);
    }
}

impl Drop for ClientMemory {
    fn drop(&mut self) {
        self.group.total.fetch_sub(self.counted, Ordering::Relaxed);
    }
}

/// Applies the group's limit now (after it changed): closes clients until the rest fit.
pub fn enforce(shared: &crate::Shared, group: &str) {
    if let Some(limit) = shared.router.table().groups.get(group).and_then(|g| limit(&g.parameters)) {
        evict(shared, group, limit);
    }
}

/// Closes the group's clients holding most memory until the others fit in `limit`, and
/// counts them in INFO's evicted_clients; returns how many it closed.
pub fn evict(shared: &crate::Shared, group: &str, limit: u64) -> u64 {
    let mut candidates: Vec<(u64, Arc<crate::clients::Control>)> = Vec::new();
    let mut total = 0u64;
    shared.clients.for_each(|c| {
        // A client already told to close is on its way out: its memory with it.
        if &*c.scope.group != group || c.control.kill.is_cancelled() {
            return;
        }
        total += c.mem;
        if !c.state.no_evict {
            candidates.push((c.mem, c.control.clone()));
        }
    });
    candidates.sort_by_key(|(mem, _)| std::cmp::Reverse(*mem));
    let mut evicted = 0;
    for (mem, control) in candidates {
        if total <= limit {
            break;
        }
        control.kill.cancel();
        total = total.saturating_sub(mem);
        evicted += 1;
    }
    if evicted > 0 {
        tracing::info!(group, evicted, limit, "clients over maxmemory-clients closed");
        shared.stats.group(group).traffic.evicted_clients.fetch_add(evicted, Ordering::Relaxed);
    }
    evicted
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn set(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn limits_in_bytes_or_of_maxmemory() {
        assert_eq!(limit(&set(&[])), None);
        assert_eq!(limit(&set(&[("maxmemory-clients", "1048576")])), Some(1 << 20));
        assert_eq!(limit(&set(&[("maxmemory-clients", "10%")])), None, "no maxmemory: no limit");
        assert_eq!(limit(&set(&[("maxmemory-clients", "10%"), ("maxmemory", "1000000")])), Some(100_000));
        assert_eq!(limit(&set(&[("maxmemory-clients", "0%"), ("maxmemory", "1000000")])), None);
    }
}
