//! Redis's `timeout` for one connection: an idle client is closed (the caller exempts
//! subscribed clients and those waiting on a command, as Redis does).

use crate::Shared;

/// The group's `timeout` parameter as it applies to one connection: when it was last active,
/// and the timeout (looked up again at most once a second, off the per-command path).
pub(super) struct IdleTimeout {
    last_active: tokio::time::Instant,
    timeout: Option<std::time::Duration>,
    checked: Option<tokio::time::Instant>,
}

impl Default for IdleTimeout {
    fn default() -> IdleTimeout {
        IdleTimeout { last_active: tokio::time::Instant::now(), timeout: None, checked: None }
    }
}

impl IdleTimeout {
    /// The client sent something at `now`.
    pub(super) fn active(&mut self, now: std::time::Instant) {
        self.last_active = tokio::time::Instant::from_std(now);
    }

    /// The group's timeout is looked up again at the next [`IdleTimeout::deadline`].
    pub(super) fn recheck(&mut self) {
        self.checked = None;
    }

    /// When the client last sent something.
    pub(super) fn last_active(&self) -> tokio::time::Instant {
        self.last_active
    }

    /// When the client is idle past the group's timeout. `now`: a recent time (the last
    /// read's), for looking the timeout up again at most once a second.
    pub(super) fn deadline(
        &mut self,
        shared: &Shared,
        group: &str,
        now: std::time::Instant,
    ) -> Option<tokio::time::Instant> {
        let now = tokio::time::Instant::from_std(now);
        if self.checked.is_none_or(|c| now.duration_since(c) >= std::time::Duration::from_secs(1)) {
            self.checked = Some(now);
            let table = shared.router.table();
            let secs = table
                .groups
                .get(group)
                .map(|g| ferrocache_common::parameters::value(&g.parameters, "timeout"))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
            self.timeout = (secs > 0).then(|| std::time::Duration::from_secs(secs));
        }
        self.timeout.map(|t| self.last_active + t)
    }
}

/// After this long with nothing read or pushed, a connection gives its buffers back (Redis
/// frees an idle client's query buffer after 2 s): an idle connection holds neither its
/// 16 KB query buffer nor its 16 KB output buffer (10,000 idle clients: 320 MB).
pub(super) const RELEASE_BUFFERS_AFTER: std::time::Duration = std::time::Duration::from_secs(2);

/// Sleeps until `at`, or forever without one.
pub(super) async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
