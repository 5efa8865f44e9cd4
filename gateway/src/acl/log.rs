//! ACL LOG: the gateway's recent denials and failed logins, grouped as Redis groups them
//! (same reason, context, object and user within 60 s count as one entry).

use std::collections::VecDeque;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use ferrocache_common::Reply;

/// Redis's `acllog-max-len` default.
pub const MAX_ENTRIES: usize = 128;
const GROUP_WITHIN_MS: u64 = 60_000;

#[derive(Debug, Clone)]
struct Entry {
    id: u64,
    count: u64,
    reason: &'static str,
    context: &'static str,
    object: String,
    username: String,
    client_info: String,
    created: Instant,
    created_ms: u64,
    updated_ms: u64,
}

#[derive(Debug, Default)]
pub struct AclLog {
    entries: VecDeque<Entry>,
    next_id: u64,
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl AclLog {
    /// Records a denial: `reason` is command | key | channel | auth; `context` toplevel | multi.
    pub fn record(
        &mut self,
        reason: &'static str,
        context: &'static str,
        object: String,
        username: String,
        client_info: String,
    ) {
        let now = now_ms();
        if let Some(e) = self.entries.iter_mut().find(|e| {
            e.reason == reason
                && e.context == context
                && e.object == object
                && e.username == username
                && now.saturating_sub(e.updated_ms) < GROUP_WITHIN_MS
        }) {
            e.count += 1;
            e.updated_ms = now;
            e.client_info = client_info;
            return;
        }
        self.entries.push_front(Entry {
            id: self.next_id,
            count: 1,
            reason,
            context,
            object,
            username,
            client_info,
            created: Instant::now(),
            created_ms: now,
            updated_ms: now,
        });
        self.next_id += 1;
        self.entries.truncate(MAX_ENTRIES);
    }

    pub fn reset(&mut self) {
        self.entries.clear();
    }

    /// ACL LOG [count]: newest first.
    pub fn reply(&self, count: usize) -> Reply {
        let text = |s: &str| Reply::Bulk(Bytes::copy_from_slice(s.as_bytes()));
        Reply::Array(
            self.entries
                .iter()
                .take(count)
                .map(|e| {
                    Reply::Map(vec![
                        text("count"),
                        Reply::Integer(e.count as i64),
                        text("reason"),
                        text(e.reason),
                        text("context"),
                        text(e.context),
                        text("object"),
                        text(&e.object),
                        text("username"),
                        text(&e.username),
                        text("age-seconds"),
                        Reply::Double(e.created.elapsed().as_secs_f64()),
                        text("client-info"),
                        text(&e.client_info),
                        text("entry-id"),
                        Reply::Integer(e.id as i64),
                        text("timestamp-created"),
                        Reply::Integer(e.created_ms as i64),
                        text("timestamp-last-updated"),
                        Reply::Integer(e.updated_ms as i64),
                    ])
                })
                .collect(),
        )
    }
}
