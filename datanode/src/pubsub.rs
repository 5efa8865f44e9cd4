//! The pub/sub broker of one node (a group's primary): which gateways have subscribers to
//! what, and the fan-out of PUBLISH / SPUBLISH to them.
//!
//! Gateways keep their own clients; the broker only knows per-gateway subscriber counts, so
//! a message crosses the network once per interested gateway, and PUBLISH's reply (receivers)
//! counts every client on every gateway, as one Redis server would. Delivery is at most
//! once, as in Redis: a gateway whose stream falls behind by more than [`LISTENER_QUEUE`]
//! messages is cut off (it reconnects and re-registers; messages meanwhile are lost).

use std::collections::{BTreeSet, HashMap};

use bytes::Bytes;
use ferrocache_common::glob::glob_match;
use ferrocache_common::tracking_feed::FeedMark;
use ferrocache_common::Reply;
use ferrocache_proto::internal::v1 as pb;
use parking_lot::Mutex;
use tokio::sync::mpsc;

/// Messages a gateway's stream may have queued before the broker cuts it off.
pub const LISTENER_QUEUE: usize = 65_536;

pub type EventSender = mpsc::Sender<Result<pb::ListenEvent, tonic::Status>>;

struct Listener {
    tx: EventSender,
    counts: [HashMap<Bytes, u32>; 3],
}

pub struct Broker {
    listeners: Mutex<HashMap<u64, Listener>>,
    next_id: std::sync::atomic::AtomicU64,
    /// Some gateway listens on the CLIENT TRACKING feed: asked by every primary commit, so
    /// kept apart from the lock.
    tracking: std::sync::atomic::AtomicBool,
    /// Some gateway has MONITOR clients: asked when a script starts.
    monitor: std::sync::atomic::AtomicBool,
    /// The CLIENT TRACKING feed's identity (random: another process's feed, even this
    /// node's after a restart, never compares with it) and its messages published so far.
    feed_epoch: u64,
    feed_seq: std::sync::atomic::AtomicU64,
}

impl Default for Broker {
    fn default() -> Broker {
        use std::hash::{BuildHasher, Hasher};
        // RandomState is seeded from the OS; never 0, which means "no feed".
        let feed_epoch = std::collections::hash_map::RandomState::new().build_hasher().finish().max(1);
        Broker {
            listeners: Default::default(),
            next_id: Default::default(),
            tracking: Default::default(),
            monitor: Default::default(),
            feed_epoch,
            feed_seq: Default::default(),
        }
    }
}

fn kind_index(kind: i32) -> usize {
    match pb::SubscriptionKind::try_from(kind) {
        Ok(pb::SubscriptionKind::Pattern) => 1,
        Ok(pb::SubscriptionKind::ShardChannel) => 2,
        _ => 0,
    }
}

const CHANNEL: usize = 0;
const PATTERN: usize = 1;
const SHARD: usize = 2;

impl Broker {
    /// Registers a gateway's stream; returns its id for [`Broker::update`] and
    /// [`Broker::remove`].
    pub fn add(&self, tx: EventSender) -> u64 {
        let id = self.next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        self.listeners.lock().insert(id, Listener { tx, counts: Default::default() });
        id
    }

    pub fn remove(&self, id: u64) {
        let mut listeners = self.listeners.lock();
        listeners.remove(&id);
        self.note_feeds(&listeners);
    }

    /// Notes whether anyone listens on the internal feeds, so writers need not ask the lock.
    fn note_feeds(&self, listeners: &HashMap<u64, Listener>) {
        let wanted = |feed: &[u8]| listeners.values().any(|l| l.counts[CHANNEL].contains_key(feed));
        let release = std::sync::atomic::Ordering::Release;
        self.tracking.store(wanted(ferrocache_common::TRACKING_FEED), release);
        self.monitor.store(wanted(ferrocache_common::MONITOR_FEED), release);
    }

    /// Applies a gateway's changed subscriber counts.
    pub fn update(&self, id: u64, subs: &[pb::Subscription]) {
        let mut listeners = self.listeners.lock();
        let Some(l) = listeners.get_mut(&id) else { return };
        for s in subs {
            let map = &mut l.counts[kind_index(s.kind)];
            if s.subscribers == 0 {
                map.remove(&s.name);
            } else {
                map.insert(s.name.clone(), s.subscribers);
            }
        }
        self.note_feeds(&listeners);
    }

    /// Whether some gateway listens on the CLIENT TRACKING feed.
    pub fn tracking_wanted(&self) -> bool {
        self.tracking.load(std::sync::atomic::Ordering::Acquire)
    }

    /// What a reply batch sent now tells of the tracking feed: every feed message published
    /// so far (under the node's lock, with its commit) is counted.
    pub fn feed_mark(&self) -> FeedMark {
        if !self.tracking_wanted() {
            return FeedMark::default();
        }
        FeedMark { epoch: self.feed_epoch, seq: self.feed_seq.load(std::sync::atomic::Ordering::Acquire) }
    }

    /// Whether some gateway has MONITOR clients (scripts then report their commands).
    pub fn monitor_wanted(&self) -> bool {
        self.monitor.load(std::sync::atomic::Ordering::Acquire)
    }

    /// PUBLISH (or SPUBLISH when `shard`): forwards to every gateway with a matching
    /// subscriber; returns how many clients receive it.
    pub fn publish(&self, channel: &Bytes, payload: &Bytes, shard: bool) -> i64 {
        let mut receivers = 0i64;
        let mut cut_off = Vec::new();
        let mut listeners = self.listeners.lock();
        // Numbered under the lock: the gateways get the feed's messages in this order.
        let feed = (!shard && channel[..] == *ferrocache_common::TRACKING_FEED)
            .then(|| (self.feed_epoch, self.feed_seq.fetch_add(1, std::sync::atomic::Ordering::AcqRel) + 1));
        for (&id, l) in listeners.iter() {
            let n = if shard {
                l.counts[SHARD].get(channel).copied().unwrap_or(0) as i64
            } else {
                l.counts[CHANNEL].get(channel).copied().unwrap_or(0) as i64
                    + l.counts[PATTERN]
                        .iter()
                        .filter(|(p, _)| glob_match(p, channel))
                        .map(|(_, &c)| c as i64)
                        .sum::<i64>()
            };
            if n == 0 {
                continue;
            }
            let event = pb::ListenEvent {
                event: Some(pb::listen_event::Event::Message(pb::PubSubMessage {
                    channel: channel.clone(),
                    payload: payload.clone(),
                    shard,
                    feed_epoch: feed.map_or(0, |f| f.0),
                    feed_seq: feed.map_or(0, |f| f.1),
                })),
            };
            match l.tx.try_send(Ok(event)) {
                Ok(()) => receivers += n,
                Err(_) => cut_off.push(id),
            }
        }
        let cut = !cut_off.is_empty();
        for id in cut_off {
            tracing::warn!(listener = id, "a gateway's pub/sub stream fell behind; cutting it off");
            listeners.remove(&id);
        }
        if cut {
            self.note_feeds(&listeners);
        }
        receivers
    }

    /// INFO's pubsub_channels, pubsub_patterns and pubsubshard_channels: the distinct names
    /// some client of some gateway subscribes to.
    pub fn totals(&self) -> [usize; 3] {
        let listeners = self.listeners.lock();
        let distinct =
            |kind: usize| listeners.values().flat_map(|l| l.counts[kind].keys()).collect::<BTreeSet<_>>().len();
        [distinct(CHANNEL), distinct(PATTERN), distinct(SHARD)]
    }

    /// PUBSUB CHANNELS / NUMSUB / NUMPAT / SHARDCHANNELS / SHARDNUMSUB over every gateway's
    /// subscribers (the gateway parsed the subcommand and answers HELP and errors itself).
    pub fn query(&self, request: &pb::PubSubRequest) -> Reply {
        let listeners = self.listeners.lock();
        let names = |kind: usize| -> Reply {
            let all: BTreeSet<&Bytes> = listeners
                .values()
                .flat_map(|l| l.counts[kind].keys())
                .filter(|c| !ferrocache_common::is_internal_channel(c))
                .filter(|c| request.pattern.as_ref().is_none_or(|p| glob_match(p, c)))
                .collect();
            Reply::Array(all.into_iter().map(|c| Reply::Bulk(c.clone())).collect())
        };
        let numsub = |kind: usize| -> Reply {
            let mut out = Vec::with_capacity(request.channels.len() * 2);
            for c in &request.channels {
                let n: u32 = listeners.values().filter_map(|l| l.counts[kind].get(c)).sum();
                out.extend([Reply::Bulk(c.clone()), Reply::Integer(n as i64)]);
            }
            // A flat array under RESP3 too, as Redis answers (not a map).
            Reply::Array(out)
        };
        match request.query() {
            pb::PubSubQuery::PubsubChannels => names(CHANNEL),
            pb::PubSubQuery::PubsubShardchannels => names(SHARD),
            pb::PubSubQuery::PubsubNumsub => numsub(CHANNEL),
            pb::PubSubQuery::PubsubShardnumsub => numsub(SHARD),
            pb::PubSubQuery::PubsubNumpat => {
                let all: BTreeSet<&Bytes> = listeners.values().flat_map(|l| l.counts[PATTERN].keys()).collect();
                Reply::Integer(all.len() as i64)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(kind: pb::SubscriptionKind, name: &str, n: u32) -> pb::Subscription {
        pb::Subscription { kind: kind as i32, name: Bytes::copy_from_slice(name.as_bytes()), subscribers: n }
    }

    #[tokio::test]
    async fn counts_receivers_over_gateways_and_forwards_once_each() {
        let broker = Broker::default();
        let (tx1, mut rx1) = mpsc::channel(8);
        let (tx2, mut rx2) = mpsc::channel(8);
        let (a, b) = (broker.add(tx1), broker.add(tx2));
        broker.update(a, &[sub(pb::SubscriptionKind::Channel, "news", 2), sub(pb::SubscriptionKind::Pattern, "n*", 1)]);
        broker.update(b, &[sub(pb::SubscriptionKind::Channel, "news", 3)]);
        let ch = Bytes::from_static(b"news");
        assert_eq!(broker.publish(&ch, &Bytes::from_static(b"hi"), false), 6);
        assert!(rx1.try_recv().is_ok() && rx1.try_recv().is_err(), "one message per gateway");
        assert!(rx2.try_recv().is_ok());
        assert_eq!(broker.publish(&ch, &Bytes::new(), true), 0, "no shard subscribers");
        broker.update(b, &[sub(pb::SubscriptionKind::Channel, "news", 0)]);
        assert_eq!(broker.publish(&ch, &Bytes::new(), false), 3);
        let query = |q: pb::PubSubQuery, channels: Vec<Bytes>| {
            broker.query(&pb::PubSubRequest { query: q as i32, pattern: None, channels })
        };
        let numsub = query(pb::PubSubQuery::PubsubNumsub, vec![ch.clone()]);
        assert_eq!(numsub, Reply::Array(vec![Reply::Bulk(ch), Reply::Integer(2)]));
        broker.remove(a);
        assert_eq!(query(pb::PubSubQuery::PubsubNumpat, vec![]), Reply::Integer(0));
    }
}
