//! Redis's `client-output-buffer-limit` for one connection: replies encoded but not yet taken
//! by the client may not pass the hard limit, nor stay above the soft limit for its seconds;
//! past either the connection closes, as Redis closes it. Normal clients have no limit by
//! default (as in Redis); a subscribed client is judged by the pubsub class.

use std::time::Duration;

use bytes::{Buf, BytesMut};
use ferrocache_common::parameters::{self, OutputLimit};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use crate::Shared;

#[derive(Default)]
pub(super) struct OutputGuard {
    limit: OutputLimit,
    over_soft_since: Option<Instant>,
    checked: Option<Instant>,
}

fn over_limit(what: &str) -> std::io::Error {
    std::io::Error::other(format!("client output buffer over its {what} limit (client-output-buffer-limit)"))
}

impl OutputGuard {
    /// Looks the group's limits up again (at most once a second, off the per-command path).
    pub(super) fn refresh(&mut self, shared: &Shared, group: &str, subscribed: bool, now: std::time::Instant) {
        let now = Instant::from_std(now);
        if self.checked.is_some_and(|c| now.duration_since(c) < Duration::from_secs(1)) {
            return;
        }
        self.checked = Some(now);
        let class = if subscribed { "pubsub" } else { "normal" };
        let table = shared.router.table();
        let value = table.groups.get(group).map(|g| parameters::value(&g.parameters, "client-output-buffer-limit"));
        self.limit = parameters::output_limit(value.unwrap_or(""), class);
    }

    /// Whether replies should pile up in the buffer before a write (so that the limits see
    /// them) rather than be written a slice at a time.
    pub(super) fn limited(&self) -> bool {
        self.limit.is_limited()
    }

    fn check(&mut self, pending: usize) -> std::io::Result<()> {
        let l = self.limit;
        let pending = pending as u64;
        if l.hard > 0 && pending > l.hard {
            return Err(over_limit("hard"));
        }
        if l.soft > 0 && pending > l.soft {
            let since = *self.over_soft_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= Duration::from_secs(l.soft_seconds) {
                return Err(over_limit("soft"));
            }
        } else {
            self.over_soft_since = None;
        }
        Ok(())
    }

    /// Writes `out` to the client, closing (Err) when the client leaves it above the limits;
    /// adds what it wrote to `written`.
    pub(super) async fn flush<W: AsyncWrite + Unpin>(
        &mut self,
        wr: &mut W,
        out: &mut BytesMut,
        written: &std::sync::atomic::AtomicU64,
    ) -> std::io::Result<()> {
        while !out.is_empty() {
            self.check(out.len())?;
            let soft_deadline = self.over_soft_since.map(|since| since + Duration::from_secs(self.limit.soft_seconds));
            let n = match soft_deadline {
                Some(at) => match tokio::time::timeout_at(at, wr.write(out)).await {
                    Ok(r) => r?,
                    Err(_) => continue,
                },
                None => wr.write(out).await?,
            };
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            out.advance(n);
            written.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        }
        self.check(0)
    }
}
