//! Pub/sub on the gateway: which of this gateway's clients subscribe to what, per group, and
//! one `Data.Listen` stream per group to its primary, which carries the counts there and
//! brings back every message any of them wants.
//!
//! ```text
//!  client SUBSCRIBE ─▶ GroupHub (local subscribers, changed counts) ─Listen─▶ primary's broker
//!  client ◀─ bounded queue ◀─ GroupHub::deliver ◀─ PubSubMessage ◀──────────────┘
//! ```
//! A SUBSCRIBE is answered once the primary has acknowledged the new counts, so a PUBLISH
//! sent after the answer, through any gateway, reaches the client. A client whose queued
//! messages pass the group's `client-output-buffer-limit pubsub` limits (hard, or soft for
//! its seconds; 32 MB / 8 MB for 60 s by default) is disconnected, never buffered without
//! bound.
//!
//! In cluster mode the stream goes to the first node group's primary; the internal feeds of
//! the others (CLIENT TRACKING, MONITOR) come over streams of their own (feeds.rs).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ferrocache_common::glob::glob_match;
use ferrocache_common::parameters::OutputLimit;
use ferrocache_common::tracking_feed::FeedMark;
use ferrocache_common::Reply;
use ferrocache_proto::internal::v1 as pb;
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot, Notify};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use crate::router::{EndpointKind, Router};

mod feeds;

/// Messages a client may have queued (a second bound, for tiny messages).
const CLIENT_QUEUE: usize = 1 << 20;
/// How long a SUBSCRIBE waits for the primary's acknowledgement before answering anyway.
pub const ACK_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Channel = 0,
    Pattern = 1,
    Shard = 2,
}

impl Kind {
    fn proto(self) -> pb::SubscriptionKind {
        match self {
            Kind::Channel => pb::SubscriptionKind::Channel,
            Kind::Pattern => pb::SubscriptionKind::Pattern,
            Kind::Shard => pb::SubscriptionKind::ShardChannel,
        }
    }
}

/// One client's mailbox.
pub struct Mailbox {
    tx: mpsc::Sender<(Reply, usize, bool)>,
    queued_bytes: AtomicUsize,
    limit: OutputLimit,
    /// When the queue went over the soft limit (ms since the hub started; 0 = it is not).
    over_soft_since_ms: AtomicU64,
    started: std::time::Instant,
    /// Fired when the client overran its limits: its connection closes.
    pub overflow: CancellationToken,
    /// The client speaks RESP3: invalidations redirected to it are `invalidate` pushes even
    /// while it subscribes to `__redis__:invalidate` (as Redis sends them).
    resp3: std::sync::atomic::AtomicBool,
}

impl Mailbox {
    /// Queues `reply` for the client; `after_reply`: it follows the reply of the command the
    /// client has running (an invalidation of its own write).
    fn offer(&self, reply: Reply, size: usize) {
        self.offer_ordered(reply, size, false)
    }

    fn offer_ordered(&self, reply: Reply, size: usize, after_reply: bool) {
        let queued = (self.queued_bytes.fetch_add(size, Ordering::Relaxed) + size) as u64;
        let l = self.limit;
        let over_hard = l.hard > 0 && queued > l.hard;
        let over_soft = if l.soft > 0 && queued > l.soft {
            let now = self.started.elapsed().as_millis() as u64 + 1;
            let since = match self.over_soft_since_ms.compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => now,
                Err(since) => since,
            };
            now.saturating_sub(since) >= l.soft_seconds * 1000
        } else {
            self.over_soft_since_ms.store(0, Ordering::Relaxed);
            false
        };
        if over_hard || over_soft || self.tx.try_send((reply, size, after_reply)).is_err() {
            self.overflow.cancel();
        }
    }
}

#[derive(Default)]
struct State {
    subscribers: [HashMap<Bytes, HashMap<u64, Arc<Mailbox>>>; 3],
    dirty: HashSet<(Kind, Bytes)>,
    next_seq: u64,
    waiters: Vec<(u64, oneshot::Sender<()>)>,
    /// CLIENT TRACKING: who tracks what (its clients also subscribe to the node's FEED).
    tracking: crate::tracking::Table,
    /// MONITOR clients (they also subscribe to the node's MONITOR_FEED; a client that merely
    /// SUBSCRIBEs to that channel is not told what scripts run).
    monitors: HashSet<u64>,
    /// The tracking feeds (epochs) this hub delivers, for [`crate::tracking::FEED_PROGRESS`].
    feed_epochs: HashSet<u64>,
    /// The mailboxes of the clients speaking RESP3: a REDIRECT to one of them is an
    /// `invalidate` push, subscribed or not (as Redis sends it).
    resp3_clients: HashMap<u64, Arc<Mailbox>>,
}

/// This gateway's pub/sub state for one replication group.
pub struct GroupHub {
    group: String,
    state: Mutex<State>,
    wake: Notify,
    /// Added to a client id, the CLIENT TRACKING NOLOOP token its writes carry: random, so
    /// another gateway's token never names one of this gateway's clients.
    nonce: u64,
    /// Cluster mode: the streams that bring the other node groups' internal feeds.
    feeds: feeds::Feeds,
}

impl GroupHub {
    /// A wait for the main stream's acknowledgement (`main`) and then for every feed
    /// stream's: a client starting CLIENT TRACKING or MONITOR is answered once every node
    /// group's primary sends this gateway its feed.
    fn with_feeds(self: &Arc<Self>, main: oneshot::Receiver<()>) -> oneshot::Receiver<()> {
        let seq = self.feeds.changed();
        let (tx, rx) = oneshot::channel();
        let hub = self.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(ACK_TIMEOUT, async {
                let _ = main.await;
                hub.feeds.synced(seq).await;
            })
            .await;
            let _ = tx.send(());
        });
        rx
    }

    /// Adds or removes one client's subscription; returns a wait for the primary's
    /// acknowledgement.
    fn change(&self, kind: Kind, name: &Bytes, client: u64, mailbox: Option<&Arc<Mailbox>>) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        let mut st = self.state.lock();
        let map = &mut st.subscribers[kind as usize];
        match mailbox {
            Some(m) => {
                map.entry(name.clone()).or_default().insert(client, m.clone());
            }
            None => {
                if let Some(clients) = map.get_mut(name) {
                    clients.remove(&client);
                    if clients.is_empty() {
                        map.remove(name);
                    }
                }
            }
        }
        st.dirty.insert((kind, name.clone()));
        st.next_seq += 1;
        let seq = st.next_seq;
        st.waiters.push((seq, tx));
        drop(st);
        self.wake.notify_one();
        rx
    }

    /// Turns client tracking on (Some) or off for `client`; its invalidations go out through
    /// `mailbox` (or its redirect target's).
    /// Returns a wait for the primary's acknowledgement (from then on it sends this gateway
    /// the keys it changes).
    fn set_tracking(
        self: &Arc<Self>,
        client: u64,
        tracker: Option<crate::tracking::Tracker>,
        mailbox: &Arc<Mailbox>,
    ) -> oneshot::Receiver<()> {
        let feed = Bytes::from_static(crate::tracking::FEED);
        let on = tracker.is_some();
        let mut st = self.state.lock();
        st.tracking.set(client, tracker);
        if st.tracking.is_empty() {
            // The feeds stop coming here: replies no longer wait for them.
            crate::tracking::FEED_PROGRESS.forget(st.feed_epochs.drain());
        }
        drop(st);
        let main = self.change(Kind::Channel, &feed, client, on.then_some(mailbox));
        if on {
            self.with_feeds(main)
        } else {
            self.feeds.changed();
            main
        }
    }

    /// Starts (`Some`) or stops MONITOR's feed of script commands for `client`; returns a
    /// wait for the primary's acknowledgement.
    fn set_monitor(self: &Arc<Self>, client: u64, mailbox: Option<&Arc<Mailbox>>) -> oneshot::Receiver<()> {
        let feed = Bytes::from_static(ferrocache_common::MONITOR_FEED);
        let mut st = self.state.lock();
        match mailbox {
            Some(_) => st.monitors.insert(client),
            None => st.monitors.remove(&client),
        };
        drop(st);
        let main = self.change(Kind::Channel, &feed, client, mailbox);
        if mailbox.is_some() {
            self.with_feeds(main)
        } else {
            self.feeds.changed();
            main
        }
    }

    /// A tracking client's read of `keys` (default mode).
    fn tracked_read(&self, client: u64, keys: &[Bytes], mark: FeedMark) {
        let mut st = self.state.lock();
        let notices = st.tracking.record(client, keys, mark);
        send_notices(&st, notices);
    }

    /// The feed restarted (a new stream, perhaps a new primary): changes in between are
    /// unknown, so every tracking client drops its whole cache.
    fn tracking_restart(&self) {
        let mut st = self.state.lock();
        if !st.tracking.is_empty() {
            let notices = st.tracking.invalidate_all(None);
            send_notices(&st, notices);
        }
    }

    /// One event of a `Listen` stream: a message is delivered, an acknowledgement's seq
    /// returned. The first acknowledgement of a stream that follows an earlier one (`fed`
    /// false) makes tracking clients drop their caches. Err: why the stream ended.
    fn on_event(
        &self,
        event: Result<Option<pb::ListenEvent>, tonic::Status>,
        fed: &mut bool,
    ) -> Result<Option<u64>, String> {
        match event {
            Ok(Some(pb::ListenEvent { event: Some(pb::listen_event::Event::Message(msg)) })) => {
                self.deliver(msg);
                Ok(None)
            }
            Ok(Some(pb::ListenEvent { event: Some(pb::listen_event::Event::Ack(seq)) })) => {
                if !*fed {
                    *fed = true;
                    self.tracking_restart();
                }
                Ok(Some(seq))
            }
            Ok(Some(_)) => Ok(None),
            Ok(None) => Err("the node ended the stream".into()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Applies the group's `tracking-table-max-keys` (the keys past it are forgotten now).
    fn follow_parameters(&self, router: &Router) {
        let table = router.table();
        let Some(group) = table.groups.get(&self.group) else { return };
        let value = ferrocache_common::parameters::value(&group.parameters, "tracking-table-max-keys");
        let max_keys = value.parse().unwrap_or(crate::tracking::MAX_KEYS);
        let mut st = self.state.lock();
        let notices = st.tracking.set_max_keys(max_keys);
        send_notices(&st, notices);
    }

    /// A feed stream ended: until messages come again, replies wait for none.
    fn forget_feeds(&self) {
        let epochs: Vec<u64> = self.state.lock().feed_epochs.drain().collect();
        crate::tracking::FEED_PROGRESS.forget(epochs);
    }

    /// Hands a message from the primary to the local subscribers it matches.
    fn deliver(&self, msg: pb::PubSubMessage) {
        if !msg.shard && msg.channel == crate::tracking::FEED {
            use ferrocache_common::tracking_feed::{decode, Feed};
            let mut st = self.state.lock();
            let at = FeedMark { epoch: msg.feed_epoch, seq: msg.feed_seq };
            let notices = match decode(&msg.payload) {
                Some(Feed::Changed(mut changes)) => {
                    // Tokens are this gateway's client ids offset by its nonce.
                    for (_, token) in &mut changes {
                        *token = token.map(|t| t.wrapping_sub(self.nonce));
                    }
                    st.tracking.invalidate_changes(&changes, at)
                }
                Some(Feed::Flushed(by)) => st.tracking.invalidate_all(by.map(|t| t.wrapping_sub(self.nonce))),
                Some(Feed::Read(token, keys)) => {
                    let client = token.wrapping_sub(self.nonce);
                    let reader = st.tracking.get(client).is_some_and(|t| !t.settings.bcast);
                    if reader {
                        // The script's read came right after this message's place in the feed.
                        st.tracking.record(client, &keys, at)
                    } else {
                        Vec::new()
                    }
                }
                None => Vec::new(),
            };
            send_notices(&st, notices);
            if at.epoch != 0 {
                st.feed_epochs.insert(at.epoch);
                drop(st);
                // After the notices are in the clients' mailboxes: replies held for this
                // message go out behind them.
                crate::tracking::FEED_PROGRESS.delivered(at.epoch, at.seq);
            }
            return;
        }
        let st = self.state.lock();
        if !msg.shard && msg.channel == ferrocache_common::MONITOR_FEED {
            let line = Reply::Simple(String::from_utf8_lossy(&msg.payload).into_owned());
            let subscribed = st.subscribers[Kind::Channel as usize].get(&msg.channel);
            for (_, m) in subscribed.into_iter().flatten().filter(|(id, _)| st.monitors.contains(id)) {
                m.offer(line.clone(), msg.payload.len() + 16);
            }
            return;
        }
        let size = msg.channel.len() + msg.payload.len() + 48;
        let push = |kind: &'static [u8], parts: Vec<Bytes>| {
            let mut items = vec![Reply::Bulk(Bytes::from_static(kind))];
            items.extend(parts.into_iter().map(Reply::Bulk));
            Reply::Push(items)
        };
        if msg.shard {
            for m in st.subscribers[Kind::Shard as usize].get(&msg.channel).into_iter().flat_map(|c| c.values()) {
                m.offer(push(b"smessage", vec![msg.channel.clone(), msg.payload.clone()]), size);
            }
            return;
        }
        for m in st.subscribers[Kind::Channel as usize].get(&msg.channel).into_iter().flat_map(|c| c.values()) {
            m.offer(push(b"message", vec![msg.channel.clone(), msg.payload.clone()]), size);
        }
        for (pattern, clients) in &st.subscribers[Kind::Pattern as usize] {
            if glob_match(pattern, &msg.channel) {
                for m in clients.values() {
                    let parts = vec![pattern.clone(), msg.channel.clone(), msg.payload.clone()];
                    m.offer(push(b"pmessage", parts), size + pattern.len());
                }
            }
        }
    }

    /// The counts to send: every name when `all` (a new stream), else the changed ones.
    fn pending(&self, all: bool) -> (Vec<pb::Subscription>, u64) {
        let mut st = self.state.lock();
        let names: Vec<(Kind, Bytes)> = if all {
            st.dirty.clear();
            [Kind::Channel, Kind::Pattern, Kind::Shard]
                .into_iter()
                .flat_map(|k| st.subscribers[k as usize].keys().map(move |n| (k, n.clone())))
                .collect()
        } else {
            st.dirty.drain().collect()
        };
        let subs = names
            .into_iter()
            .map(|(kind, name)| {
                let n = st.subscribers[kind as usize].get(&name).map_or(0, |c| c.len() as u32);
                pb::Subscription { kind: kind.proto() as i32, name, subscribers: n }
            })
            .collect();
        (subs, st.next_seq)
    }

    fn acked(&self, seq: u64) {
        let mut st = self.state.lock();
        let (done, waiting): (Vec<_>, Vec<_>) = st.waiters.drain(..).partition(|(s, _)| *s <= seq);
        st.waiters = waiting;
        for (_, tx) in done {
            let _ = tx.send(());
        }
    }
}

/// Sends tracking invalidations: to the client's redirect target (as a `__redis__:invalidate`
/// message when it subscribes to that channel, else as a push if it is a RESP3 tracking
/// client itself), or to the client itself when it speaks RESP3 (RESP2 without a redirect
/// has nowhere to receive them, as in Redis).
fn send_notices(st: &State, notices: Vec<crate::tracking::Notice>) {
    use crate::tracking::{message, push, redirect_broken, FEED, REDIS_CHANNEL};
    let channel = &st.subscribers[Kind::Channel as usize];
    let trackers = channel.get(FEED);
    for (id, keys, own) in notices {
        let Some(t) = st.tracking.get(id) else { continue };
        let size = keys.as_ref().map_or(0, |k| k.iter().map(|k| k.len() + 16).sum()) + 64;
        let (target, resp3) = match t.settings.redirect {
            0 => (id, t.resp3),
            // As Redis: the invalidation is lost, and a RESP3 client is told why.
            r if st.tracking.is_broken(id) => {
                if let Some(m) = trackers.and_then(|c| c.get(&id)).filter(|_| t.resp3) {
                    m.offer(redirect_broken(r), 64);
                }
                continue;
            }
            r => {
                if let Some(m) = channel.get(REDIS_CHANNEL).and_then(|c| c.get(&r)) {
                    let notice = if m.resp3.load(Ordering::Relaxed) { push(keys) } else { message(keys) };
                    m.offer(notice, size);
                    continue;
                }
                if let Some(m) = st.resp3_clients.get(&r) {
                    m.offer(push(keys), size);
                    continue;
                }
                (r, st.tracking.get(r).is_some_and(|t| t.resp3))
            }
        };
        if resp3 {
            if let Some(m) = trackers.and_then(|c| c.get(&target)) {
                m.offer_ordered(push(keys), size, own && target == id);
            }
        }
    }
}

/// Every group's hub on this gateway.
pub struct Hub {
    router: Arc<Router>,
    cancel: CancellationToken,
    groups: Mutex<HashMap<String, Arc<GroupHub>>>,
}

impl Hub {
    pub fn new(router: Arc<Router>, cancel: CancellationToken) -> Hub {
        Hub { router, cancel, groups: Mutex::new(HashMap::new()) }
    }

    /// PUBSUB CHANNELS / NUMSUB / NUMPAT on a cluster node port: as a Redis Cluster node
    /// answers them, from the subscriptions of the clients connected to it (`clients`: those
    /// on this port). None for the shard queries, which the node group answers.
    pub fn node_port_query(&self, group: &str, clients: &HashSet<u64>, request: &pb::PubSubRequest) -> Option<Reply> {
        use pb::PubSubQuery as Q;
        let query = request.query();
        if !matches!(query, Q::PubsubChannels | Q::PubsubNumsub | Q::PubsubNumpat) {
            return None;
        }
        let hub = self.groups.lock().get(group).cloned();
        let st = hub.as_ref().map(|h| h.state.lock());
        let subscribers = |kind: Kind| st.as_ref().map(|st| &st.subscribers[kind as usize]);
        let here = |ids: &HashMap<u64, Arc<Mailbox>>| ids.keys().filter(|id| clients.contains(id)).count();
        let reply = match query {
            Q::PubsubChannels => {
                let mut names: Vec<&Bytes> = subscribers(Kind::Channel)
                    .into_iter()
                    .flatten()
                    // The CLIENT TRACKING feed is this gateway's own subscription.
                    .filter(|(name, ids)| !ferrocache_common::is_internal_channel(name) && here(ids) > 0)
                    .filter(|(name, _)| request.pattern.as_ref().is_none_or(|p| glob_match(p, name)))
                    .map(|(name, _)| name)
                    .collect();
                names.sort();
                Reply::Array(names.into_iter().map(|n| Reply::Bulk(n.clone())).collect())
            }
            Q::PubsubNumsub => {
                let channels = subscribers(Kind::Channel);
                let count = |c: &Bytes| channels.and_then(|m| m.get(c)).map_or(0, here);
                let pairs =
                    request.channels.iter().flat_map(|c| [Reply::Bulk(c.clone()), Reply::Integer(count(c) as i64)]);
                Reply::Array(pairs.collect())
            }
            _ => Reply::Integer(
                subscribers(Kind::Pattern).into_iter().flatten().filter(|(_, ids)| here(ids) > 0).count() as i64,
            ),
        };
        Some(reply)
    }

    /// A wait until the group's primary knows every subscription change made on this
    /// gateway so far; None when it already does. PUBLISH and PUBSUB wait for it, so a
    /// client that saw another connection close or unsubscribe is not counted a receiver
    /// still (Redis applies both in order; here they travel on different streams).
    pub fn settled(&self, group: &str) -> Option<oneshot::Receiver<()>> {
        let hub = self.groups.lock().get(group).cloned()?;
        let mut st = hub.state.lock();
        if st.waiters.is_empty() {
            return None;
        }
        // While the primary is unreachable nothing is acknowledged: waits that gave up
        // (their receivers gone) must not pile up, one per PUBLISH.
        st.waiters.retain(|(_, tx)| !tx.is_closed());
        let (tx, rx) = oneshot::channel();
        let seq = st.next_seq;
        st.waiters.push((seq, tx));
        Some(rx)
    }

    /// The group's CLIENT TRACKING counts on this gateway ([`crate::tracking::Table::counts`]).
    pub fn tracking_counts(&self, group: &str) -> [usize; 4] {
        let hub = self.groups.lock().get(group).cloned();
        hub.map_or([0; 4], |h| h.state.lock().tracking.counts())
    }

    /// Client `id` disconnected: the tracking clients redirecting to it lose their redirect
    /// (RESP3 ones are told so with their next invalidation, as in Redis).
    pub fn client_gone(&self, id: u64) {
        let groups: Vec<Arc<GroupHub>> = self.groups.lock().values().cloned().collect();
        for g in groups {
            g.state.lock().tracking.redirect_gone(id);
        }
    }

    /// The group's hub, starting its listener on first use.
    fn group(&self, group: &str) -> Arc<GroupHub> {
        let mut groups = self.groups.lock();
        if let Some(g) = groups.get(group) {
            return g.clone();
        }
        let hub = Arc::new(GroupHub {
            group: group.to_string(),
            state: Mutex::new(State::default()),
            wake: Notify::new(),
            nonce: rand::random(),
            feeds: Default::default(),
        });
        groups.insert(group.to_string(), hub.clone());
        tokio::spawn(listen(hub.clone(), self.router.clone(), self.cancel.clone()));
        tokio::spawn(feeds::supervise(hub.clone(), self.router.clone(), self.cancel.clone()));
        hub
    }
}

/// One connection's subscriptions.
pub struct ClientSubs {
    id: u64,
    hub: Arc<GroupHub>,
    mailbox: Arc<Mailbox>,
    rx: mpsc::Receiver<(Reply, usize, bool)>,
    names: [BTreeSet<Bytes>; 3],
    /// CLIENT TRACKING is on.
    tracking: bool,
    /// MONITOR is on (the commands scripts run come through the mailbox).
    monitoring: bool,
}

impl ClientSubs {
    /// `limit`: the group's `client-output-buffer-limit pubsub` when the client subscribed.
    pub fn new(hub: &Hub, group: &str, client: u64, limit: OutputLimit) -> ClientSubs {
        let (tx, rx) = mpsc::channel(CLIENT_QUEUE);
        let mailbox = Arc::new(Mailbox {
            tx,
            queued_bytes: AtomicUsize::new(0),
            limit,
            over_soft_since_ms: AtomicU64::new(0),
            started: std::time::Instant::now(),
            overflow: CancellationToken::new(),
            resp3: std::sync::atomic::AtomicBool::new(false),
        });
        ClientSubs {
            id: client,
            hub: hub.group(group),
            mailbox,
            rx,
            names: Default::default(),
            tracking: false,
            monitoring: false,
        }
    }

    /// The client's protocol (HELLO): how invalidations redirected to it are framed, and
    /// whether they reach it unsubscribed (RESP3).
    pub fn set_resp3(&self, resp3: bool) {
        self.mailbox.resp3.store(resp3, Ordering::Relaxed);
        let mut st = self.hub.state.lock();
        if resp3 {
            st.resp3_clients.insert(self.id, self.mailbox.clone());
        } else {
            st.resp3_clients.remove(&self.id);
        }
    }

    /// Channels plus patterns: the count SUBSCRIBE / PSUBSCRIBE replies carry.
    pub fn classic_count(&self) -> usize {
        self.names[Kind::Channel as usize].len() + self.names[Kind::Pattern as usize].len()
    }

    pub fn count(&self, kind: Kind) -> usize {
        match kind {
            Kind::Shard => self.names[Kind::Shard as usize].len(),
            _ => self.classic_count(),
        }
    }

    pub fn is_subscribed(&self) -> bool {
        self.names.iter().any(|n| !n.is_empty())
    }

    pub fn names(&self, kind: Kind) -> Vec<Bytes> {
        self.names[kind as usize].iter().cloned().collect()
    }

    /// Subscribes; the receiver resolves once the primary knows.
    pub fn subscribe(&mut self, kind: Kind, name: &Bytes) -> Option<oneshot::Receiver<()>> {
        if !self.names[kind as usize].insert(name.clone()) {
            return None;
        }
        Some(self.hub.change(kind, name, self.id, Some(&self.mailbox)))
    }

    /// Unsubscribes; the receiver resolves once the primary knows (UNSUBSCRIBE answers
    /// then, so a PUBLISH after it no longer counts this client).
    pub fn unsubscribe(&mut self, kind: Kind, name: &Bytes) -> Option<oneshot::Receiver<()>> {
        if !self.names[kind as usize].remove(name) {
            return None;
        }
        Some(self.hub.change(kind, name, self.id, None))
    }

    pub fn unsubscribe_all(&mut self) {
        for kind in [Kind::Channel, Kind::Pattern, Kind::Shard] {
            for name in self.names(kind) {
                drop(self.unsubscribe(kind, &name));
            }
        }
    }

    /// CLIENT TRACKING ON (`Some`) or OFF; the receiver resolves once the primary sends
    /// this gateway its changed keys.
    pub fn track(&mut self, tracker: Option<crate::tracking::Tracker>) -> oneshot::Receiver<()> {
        self.tracking = tracker.is_some();
        self.hub.set_tracking(self.id, tracker, &self.mailbox)
    }

    /// MONITOR (`true`) or RESET; the receiver resolves once the primary sends this gateway
    /// the commands its scripts run.
    pub fn monitor(&mut self, on: bool) -> oneshot::Receiver<()> {
        self.monitoring = on;
        self.hub.set_monitor(self.id, on.then_some(&self.mailbox))
    }

    /// The token this client's writes carry while it tracks.
    pub fn writer_token(&self) -> u64 {
        self.hub.nonce.wrapping_add(self.id)
    }

    /// Whether this tracking client's redirect target disconnected.
    pub fn redirect_broken(&self) -> bool {
        self.hub.state.lock().tracking.is_broken(self.id)
    }

    /// A read by this tracking client (default mode, or OPTIN/OPTOUT as CACHING says).
    /// `mark`: its node's feed as the gateway had heard of it when the read was sent.
    pub fn tracked_read(&self, keys: &[Bytes], mark: FeedMark) {
        self.hub.tracked_read(self.id, keys, mark);
    }

    /// The next message for this client, and whether it must follow the reply of the
    /// command the client has running.
    pub async fn next(&mut self) -> Option<(Reply, bool)> {
        let (reply, size, after_reply) = self.rx.recv().await?;
        self.mailbox.queued_bytes.fetch_sub(size, Ordering::Relaxed);
        Some((reply, after_reply))
    }

    /// A message already waiting, if any (see [`ClientSubs::next`]).
    pub fn try_next(&mut self) -> Option<(Reply, bool)> {
        let (reply, size, after_reply) = self.rx.try_recv().ok()?;
        self.mailbox.queued_bytes.fetch_sub(size, Ordering::Relaxed);
        Some((reply, after_reply))
    }

    pub fn overflowed(&self) -> CancellationToken {
        self.mailbox.overflow.clone()
    }
}

impl Drop for ClientSubs {
    fn drop(&mut self) {
        self.hub.state.lock().resp3_clients.remove(&self.id);
        self.unsubscribe_all();
        if self.tracking {
            drop(self.track(None));
        }
        if self.monitoring {
            drop(self.monitor(false));
        }
    }
}

/// Keeps a `Listen` stream open to the group's current primary for as long as the gateway
/// runs: re-sends every count on each new stream, follows failovers.
async fn listen(hub: Arc<GroupHub>, router: Arc<Router>, cancel: CancellationToken) {
    // A stream after the first: changes may have gone unseen in between.
    let mut again = false;
    while !cancel.is_cancelled() {
        let target = match router.target(&hub.group, EndpointKind::Primary, None) {
            Ok(t) => t,
            Err(_) => {
                router.changed_since(router.table().version, Duration::from_millis(500)).await;
                continue;
            }
        };
        let reason = match crate::link::connect(&target.address).await {
            Ok(client) => {
                let ended = stream(&hub, client, &target.node_id, &router, target.version, again, &cancel).await;
                again = true;
                ended
            }
            Err(e) => e,
        };
        tracing::debug!(group = %hub.group, node = %target.node_id, "pub/sub stream ended: {reason}");
        hub.forget_feeds();
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
}

async fn stream(
    hub: &GroupHub,
    mut client: pb::data_client::DataClient<ferrocache_common::credentials::Channel>,
    node_id: &str,
    router: &Router,
    mut version: u64,
    again: bool,
    cancel: &CancellationToken,
) -> String {
    hub.follow_parameters(router);
    let (tx, rx) = mpsc::channel::<pb::ListenRequest>(64);
    let (subscriptions, seq) = hub.pending(true);
    let first = pb::ListenRequest { node_id: node_id.to_string(), subscriptions, seq };
    // Once the node acknowledges the first counts, it sends the keys it changes: whatever
    // changed before is unknown, so tracking clients then drop their caches.
    let mut fed = !again;
    if tx.send(first).await.is_err() {
        return "closed".into();
    }
    let mut inbound = match client.listen(ReceiverStream::new(rx)).await {
        Ok(r) => r.into_inner(),
        Err(e) => return e.to_string(),
    };
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return "gateway stopping".into(),
            m = inbound.message() => match hub.on_event(m, &mut fed) {
                Ok(Some(seq)) => hub.acked(seq),
                Ok(None) => {}
                Err(why) => return why,
            },
            _ = hub.wake.notified() => {
                let (subscriptions, seq) = hub.pending(false);
                let update = pb::ListenRequest { node_id: String::new(), subscriptions, seq };
                if tx.send(update).await.is_err() {
                    return "closed".into();
                }
            }
            _ = router.changed_since(version, Duration::from_secs(3600)) => {
                hub.follow_parameters(router);
                match router.target(&hub.group, EndpointKind::Primary, None) {
                    Ok(t) if *t.node_id == *node_id => version = t.version,
                    _ => return "the primary changed".into(),
                }
            }
        }
    }
}
