//! Cluster mode: every node group's primary runs writes and scripts, so each one's internal
//! feeds (CLIENT TRACKING's changed keys, MONITOR's script commands) are listened to. The
//! group's `Listen` stream to its first node group carries them with the rest of pub/sub;
//! here one more stream per further node group carries the feeds alone.
//!
//! A client's CLIENT TRACKING ON / MONITOR answers once every live feed stream has the new
//! counts ([`Feeds::synced`]), so no write on any node group after the answer goes unseen. A
//! feed stream that (re)connects while clients track makes them drop their caches, as the
//! main stream does: what changed in between is unknown.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ferrocache_proto::internal::v1 as pb;
use parking_lot::Mutex;
use tokio::sync::{mpsc, watch, Notify};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use super::{GroupHub, Kind};
use crate::router::{EndpointKind, Router};

/// The feed streams' shared state in a group's hub.
pub(super) struct Feeds {
    /// Bumped on every change of the feeds' subscriber counts; the streams send the new
    /// counts with it and acknowledge it.
    seq: watch::Sender<u64>,
    /// The seq each live feed stream's node acknowledged (by node group index).
    acked: Mutex<HashMap<usize, u64>>,
    ack: Notify,
}

impl Default for Feeds {
    fn default() -> Self {
        Feeds { seq: watch::channel(0).0, acked: Mutex::new(HashMap::new()), ack: Notify::new() }
    }
}

impl Feeds {
    /// Notes a change of the feeds' counts; returns its seq for [`Feeds::synced`].
    pub(super) fn changed(&self) -> u64 {
        let mut seq = 0;
        self.seq.send_modify(|s| {
            *s += 1;
            seq = *s;
        });
        seq
    }

    /// Waits until every live feed stream's node acknowledged `seq` (a stream that is down
    /// sends every count when it is back, and drops the tracking caches then).
    pub(super) async fn synced(&self, seq: u64) {
        loop {
            let notified = self.ack.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.acked.lock().values().all(|&s| s >= seq) {
                return;
            }
            notified.await;
        }
    }

    /// A stream about to connect for the first time: waits include it until it is up (or
    /// gives up), so a client answered meanwhile misses nothing of that node group.
    fn expect(&self, index: usize) {
        self.acked.lock().entry(index).or_insert(0);
    }

    fn acknowledged(&self, index: usize, seq: u64) {
        self.acked.lock().insert(index, seq);
        self.ack.notify_waiters();
    }

    fn gone(&self, index: usize) {
        self.acked.lock().remove(&index);
        self.ack.notify_waiters();
    }
}

impl GroupHub {
    /// The absolute counts of the internal feeds' subscribers.
    fn feed_counts(&self) -> Vec<pb::Subscription> {
        let st = self.state.lock();
        [ferrocache_common::TRACKING_FEED, ferrocache_common::MONITOR_FEED]
            .into_iter()
            .map(|feed| pb::Subscription {
                kind: Kind::Channel.proto() as i32,
                name: Bytes::from_static(feed),
                subscribers: st.subscribers[Kind::Channel as usize].get(feed).map_or(0, |c| c.len() as u32),
            })
            .collect()
    }
}

/// Keeps one feed stream per node group after the first, starting and stopping them as
/// node groups come and go.
pub(super) async fn supervise(hub: Arc<GroupHub>, router: Arc<Router>, cancel: CancellationToken) {
    let mut streams: HashMap<usize, CancellationToken> = HashMap::new();
    loop {
        let version = router.table().version;
        let shards = router.table().groups.get(&hub.group).map_or(0, |g| g.shards.len());
        streams.retain(|&index, stop| {
            let keep = index < shards;
            if !keep {
                stop.cancel();
            }
            keep
        });
        for index in 1..shards {
            streams.entry(index).or_insert_with(|| {
                hub.feeds.expect(index);
                let stop = cancel.child_token();
                tokio::spawn(listen(hub.clone(), router.clone(), stop.clone(), index));
                stop
            });
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = router.changed_since(version, Duration::from_secs(3600)) => {}
        }
    }
}

/// One node group's feed stream, following its primary through failovers.
async fn listen(hub: Arc<GroupHub>, router: Arc<Router>, cancel: CancellationToken, index: usize) {
    // After the first attempt, keys may have changed unseen: clients drop their caches.
    let mut again = false;
    while !cancel.is_cancelled() {
        let reason = match router.target_shard(&hub.group, index, EndpointKind::Primary, None) {
            Ok(target) => match crate::link::connect(&target.address).await {
                Ok(client) => {
                    let (version, node) = (target.version, &target.node_id);
                    stream(&hub, client, node, &router, version, index, again, &cancel).await
                }
                Err(e) => e,
            },
            Err(_) => "no primary".into(),
        };
        again = true;
        hub.feeds.gone(index);
        tracing::debug!(group = %hub.group, index, "feed stream ended: {reason}");
        hub.forget_feeds();
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn stream(
    hub: &GroupHub,
    mut client: pb::data_client::DataClient<ferrocache_common::credentials::Channel>,
    node_id: &str,
    router: &Router,
    mut version: u64,
    index: usize,
    again: bool,
    cancel: &CancellationToken,
) -> String {
    let mut changes = hub.feeds.seq.subscribe();
    let seq = *changes.borrow_and_update();
    let (tx, rx) = mpsc::channel::<pb::ListenRequest>(8);
    let first = pb::ListenRequest { node_id: node_id.to_string(), subscriptions: hub.feed_counts(), seq };
    if tx.send(first).await.is_err() {
        return "closed".into();
    }
    let mut inbound = match client.listen(ReceiverStream::new(rx)).await {
        Ok(r) => r.into_inner(),
        Err(e) => return e.to_string(),
    };
    let mut fed = !again;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return "node group removed".into(),
            m = inbound.message() => match hub.on_event(m, &mut fed) {
                Ok(Some(seq)) => hub.feeds.acknowledged(index, seq),
                Ok(None) => {}
                Err(why) => return why,
            },
            changed = changes.changed() => {
                if changed.is_err() {
                    return "hub gone".into();
                }
                let seq = *changes.borrow_and_update();
                let update = pb::ListenRequest { node_id: String::new(), subscriptions: hub.feed_counts(), seq };
                if tx.send(update).await.is_err() {
                    return "closed".into();
                }
            }
            _ = router.changed_since(version, Duration::from_secs(3600)) => {
                match router.target_shard(&hub.group, index, EndpointKind::Primary, None) {
                    Ok(t) if *t.node_id == *node_id => version = t.version,
                    _ => return "the primary changed".into(),
                }
            }
        }
    }
}
