//! Client-side caching (CLIENT TRACKING) on the gateway, as Redis 7.2 offers it: in the
//! default mode the gateway remembers which keys each tracking client read and tells it
//! once one of them changes; in BCAST mode it tells it of every change under its prefixes.
//! RESP3 clients get `invalidate` pushes; a REDIRECT sends them to another connection
//! (RESP2: as messages of `__redis__:invalidate`, which it must subscribe to).
//!
//! ```text
//!  GET k (tracking client) ─▶ Table::record(k)
//!  SET k ─▶ primary ─ broker: FEED "k"+key ─Listen─▶ GroupHub ─▶ Table::invalidate ─▶ pushes
//! ```
//! The primary publishes every key it changes (writes, expiry, eviction) on the internal
//! FEED channel while some gateway listens to it; a flush (FLUSHALL, FLUSHDB, SWAPDB)
//! invalidates everything. Keys are names, whatever their database (as in Redis).
//!
//! The feed and the replies travel on different streams, so a change can reach the table
//! after a read that already saw it. Feed messages are numbered and every reply batch says
//! how far the feed was when it left the node ([`FeedMark`]); a read remembers the mark its
//! link had heard when it was sent, and changes that mark covers do not concern it.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use ferrocache_common::reply::errors;
use ferrocache_common::tracking_feed::{self, FeedMark};
use ferrocache_common::Reply;

pub use ferrocache_common::TRACKING_FEED as FEED;
/// The channel RESP2 redirect targets subscribe to.
pub const REDIS_CHANNEL: &[u8] = b"__redis__:invalidate";
/// Redis's `tracking-table-max-keys` default: past it, keys are forgotten (and invalidated)
/// so the table never grows without bound (the group's parameter sets another; 0: none).
pub const MAX_KEYS: usize = 1_000_000;
/// A BCAST client without prefixes hears of every key: the empty prefix.
static EVERYTHING: [Bytes; 1] = [Bytes::from_static(b"")];
/// BCAST prefixes one client may register: every changed key is compared with them, so
/// their number is bounded (Redis has no bound; its prefixes sit in a radix tree).
const MAX_PREFIXES: usize = 4096;

/// A connection's CLIENT TRACKING ON settings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Settings {
    pub bcast: bool,
    pub optin: bool,
    pub optout: bool,
    pub noloop: bool,
    /// The client the invalidations go to (0: this one).
    pub redirect: u64,
    pub prefixes: Vec<Bytes>,
}

/// CLIENT CACHING's word for the next command (OPTIN / OPTOUT modes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Caching {
    #[default]
    Unset,
    Yes,
    No,
}

impl Settings {
    /// Whether a read now makes the client track its keys.
    pub fn tracks_reads(&self, caching: Caching) -> bool {
        if self.bcast {
            return false;
        }
        if self.optin {
            return caching == Caching::Yes;
        }
        if self.optout {
            return caching != Caching::No;
        }
        true
    }
}

/// CLIENT TRACKING ON's options (`args` after ON), checked as Redis checks them against the
/// settings in force (`current`); `exists` tells whether a client id is connected.
pub fn parse_on(args: &[Bytes], current: Option<&Settings>, exists: impl Fn(u64) -> bool) -> Result<Settings, Reply> {
    let s = parse_options(args, exists)?;
    check_on(s, current)
}

/// CLIENT TRACKING's options, read as Redis reads them for ON and OFF alike (unknown words
/// and a missing redirect target are errors either way).
pub fn parse_options(args: &[Bytes], exists: impl Fn(u64) -> bool) -> Result<Settings, Reply> {
    let mut s = Settings::default();
    let mut i = 0;
    while i < args.len() {
        let word = args[i].to_ascii_lowercase();
        let value = args.get(i + 1);
        match (word.as_slice(), value) {
            (b"redirect", Some(id)) => {
                if s.redirect != 0 {
                    return Err(Reply::error("ERR A client can only redirect to a single other client"));
                }
                let id = ferrocache_common::int::parse_i64(id).ok_or_else(|| Reply::error(errors::NOT_INTEGER))?;
                let id = u64::try_from(id).ok().filter(|&id| exists(id));
                s.redirect = id.ok_or_else(|| Reply::error("ERR The client ID you want redirect to does not exist"))?;
                i += 1;
            }
            (b"prefix", Some(p)) => {
                s.prefixes.push(p.clone());
                i += 1;
            }
            (b"bcast", _) => s.bcast = true,
            (b"optin", _) => s.optin = true,
            (b"optout", _) => s.optout = true,
            (b"noloop", _) => s.noloop = true,
            _ => return Err(Reply::error(errors::SYNTAX)),
        }
        i += 1;
    }
    Ok(s)
}

/// The checks ON makes of its options against each other and the settings in force.
fn check_on(mut s: Settings, current: Option<&Settings>) -> Result<Settings, Reply> {
    // Redis's checks, in its order.
    if !s.bcast && !s.prefixes.is_empty() {
        return Err(Reply::error("ERR PREFIX option requires BCAST mode to be enabled"));
    }
    if current.is_some_and(|c| c.bcast != s.bcast) {
        return Err(Reply::error("ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode."));
    }
    if s.bcast && (s.optin || s.optout) {
        return Err(Reply::error("ERR OPTIN and OPTOUT are not compatible with BCAST"));
    }
    if s.optin && s.optout {
        return Err(Reply::error("ERR You can't specify both OPTIN mode and OPTOUT mode"));
    }
    if current.is_some_and(|c| (s.optin && c.optout) || (s.optout && c.optin)) {
        return Err(Reply::error("ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode."));
    }
    let existing: &[Bytes] = current.map_or(&[], |c| &c.prefixes);
    if existing.len() + s.prefixes.len() > MAX_PREFIXES {
        return Err(Reply::error(format!("ERR at most {MAX_PREFIXES} tracking prefixes per client")));
    }
    let overlap = |a: &Bytes, b: &Bytes| a.starts_with(b) || b.starts_with(a);
    // Sorted, a prefix sits right before a string it starts: an overlap anywhere shows up
    // between neighbours, so the common case (none) costs n log n, not n².
    let mut sorted: Vec<&Bytes> = existing.iter().chain(&s.prefixes).collect();
    sorted.sort_unstable();
    if !sorted.windows(2).any(|w| overlap(w[0], w[1])) {
        let mut all = existing.to_vec();
        all.append(&mut s.prefixes);
        s.prefixes = all;
        return Ok(s);
    }
    for (i, p) in s.prefixes.iter().enumerate() {
        if let Some(o) = existing.iter().find(|o| overlap(p, o)) {
            return Err(Reply::error(format!(
                "ERR Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single client must not overlap.",
                String::from_utf8_lossy(p),
                String::from_utf8_lossy(o)
            )));
        }
        if let Some(o) = s.prefixes[i + 1..].iter().find(|o| overlap(p, o)) {
            return Err(Reply::error(format!(
                "ERR Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a single client must not overlap.",
                String::from_utf8_lossy(p),
                String::from_utf8_lossy(o)
            )));
        }
    }
    let mut all = existing.to_vec();
    all.append(&mut s.prefixes);
    s.prefixes = all;
    Ok(s)
}

/// CLIENT TRACKINGINFO.
pub fn info(settings: Option<&Settings>, caching: Caching, redirect_broken: bool) -> Reply {
    let text = |s: &str| Reply::Bulk(Bytes::copy_from_slice(s.as_bytes()));
    // Bulk strings in a set, as Redis writes them (addReplyBulkCString).
    let flag = text;
    let (flags, redirect, prefixes) = match settings {
        None => (vec![flag("off")], -1, Vec::new()),
        Some(s) => {
            let mut flags = vec![flag("on")];
            for (on, name) in [(s.bcast, "bcast"), (s.optin, "optin"), (s.optout, "optout")] {
                if on {
                    flags.push(flag(name));
                }
            }
            match caching {
                Caching::Yes => flags.push(flag("caching-yes")),
                Caching::No => flags.push(flag("caching-no")),
                Caching::Unset => {}
            }
            if s.noloop {
                flags.push(flag("noloop"));
            }
            if redirect_broken {
                flags.push(flag("broken_redirect"));
            }
            // BCAST without a prefix follows every key: Redis shows the empty prefix.
            let prefixes = if s.bcast && s.prefixes.is_empty() { &EVERYTHING[..] } else { &s.prefixes[..] };
            (flags, s.redirect as i64, prefixes.iter().cloned().map(Reply::Bulk).collect())
        }
    };
    Reply::Map(vec![
        text("flags"),
        Reply::Set(flags),
        text("redirect"),
        Reply::Integer(redirect),
        text("prefixes"),
        Reply::Array(prefixes),
    ])
}

/// One tracking client as a group's table knows it.
pub struct Tracker {
    pub settings: Settings,
    pub resp3: bool,
}

/// A group's tracking state on this gateway: who tracks, and which keys each default-mode
/// client read since it was last told about them.
pub struct Table {
    clients: HashMap<u64, Tracker>,
    /// Key -> the default-mode clients that read it, each with the node's feed mark when
    /// the read was sent (feed messages it covers came before the read).
    keys: HashMap<Bytes, HashMap<u64, FeedMark>>,
    /// Clients whose redirect target disconnected (Redis's CLIENT_TRACKING_BROKEN_REDIR).
    broken: HashSet<u64>,
    /// `tracking-table-max-keys` (0: no bound).
    max_keys: usize,
}

impl Default for Table {
    fn default() -> Table {
        Table { clients: HashMap::new(), keys: HashMap::new(), broken: HashSet::new(), max_keys: MAX_KEYS }
    }
}

/// Where an invalidation goes and what it says: a client id, the keys (None: all), and
/// whether the client itself wrote one of them (Redis then sends it after the reply of the
/// command that wrote, not before).
pub type Notice = (u64, Option<Vec<Bytes>>, bool);

impl Table {
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    pub fn set(&mut self, client: u64, tracker: Option<Tracker>) {
        // Tracking turned on again (with a new redirect, or none) or off: not broken.
        self.broken.remove(&client);
        match tracker {
            Some(t) => {
                self.clients.insert(client, t);
            }
            None => {
                self.clients.remove(&client);
                // Nobody left to tell: what the table remembers would only linger (the feed
                // that would clear it on a flush stops coming with the last tracker).
                if self.clients.is_empty() {
                    self.keys.clear();
                }
            }
        }
    }

    pub fn get(&self, client: u64) -> Option<&Tracker> {
        self.clients.get(&client)
    }

    /// Client `gone` disconnected: the clients redirecting to it lose their redirect.
    pub fn redirect_gone(&mut self, gone: u64) {
        self.broken.extend(self.clients.iter().filter(|(_, t)| t.settings.redirect == gone).map(|(id, _)| *id));
    }

    /// Whether `client`'s redirect target disconnected (CLIENT TRACKINGINFO's broken_redirect).
    pub fn is_broken(&self, client: u64) -> bool {
        self.broken.contains(&client)
    }

    /// A default-mode client read `keys`; returns invalidations for keys the table had to
    /// forget to stay within its bound.
    pub fn record(&mut self, client: u64, keys: &[Bytes], mark: FeedMark) -> Vec<Notice> {
        let mut evicted = Vec::new();
        for k in keys {
            if !self.keys.contains_key(k) && self.max_keys > 0 && self.keys.len() >= self.max_keys {
                evicted.extend(self.forget_one());
            }
            self.keys.entry(k.clone()).or_default().insert(client, mark);
        }
        evicted
    }

    /// INFO's tracking_clients, tracking_total_keys, tracking_total_items (key-reader
    /// pairs) and tracking_total_prefixes (distinct BCAST prefixes).
    pub fn counts(&self) -> [usize; 4] {
        let items = self.keys.values().map(HashMap::len).sum();
        let prefixes: HashSet<&Bytes> = self
            .clients
            .values()
            .filter(|t| t.settings.bcast)
            .flat_map(|t| if t.settings.prefixes.is_empty() { &EVERYTHING[..] } else { &t.settings.prefixes[..] })
            .collect();
        [self.clients.len(), self.keys.len(), items, prefixes.len()]
    }

    /// `tracking-table-max-keys` changed: keys past the new bound are forgotten now, their
    /// readers told (Redis does it from its cron).
    pub fn set_max_keys(&mut self, max_keys: usize) -> Vec<Notice> {
        self.max_keys = max_keys;
        let over = if max_keys == 0 { 0 } else { self.keys.len().saturating_sub(max_keys) };
        // Picked in one pass: a fresh scan per key would go over the emptied buckets again.
        let victims: Vec<Bytes> = self.keys.keys().take(over).cloned().collect();
        victims.iter().flat_map(|k| self.invalidate(k, None)).collect()
    }

    /// Forgets a key (any will do; Redis picks at random): its readers must drop it.
    fn forget_one(&mut self) -> Vec<Notice> {
        match self.keys.keys().next().cloned() {
            Some(victim) => self.invalidate(&victim, None),
            None => Vec::new(),
        }
    }

    /// `key` changed (`writer`: the client of this gateway that alone changed it).
    pub fn invalidate(&mut self, key: &Bytes, writer: Option<u64>) -> Vec<Notice> {
        self.invalidate_changes(&[(key.clone(), writer)], FeedMark::default())
    }

    /// Keys one commit changed, each with the client of this gateway that alone changed
    /// it (a NOLOOP client is not told of its own writes; its entry for the key still
    /// goes). As in Redis, a default-mode reader is told once per key, in the order of
    /// client ids, and a BCAST client once per prefix, with every key under it.
    /// `at`: the feed message's place in its feed. A reader whose read was sent after the
    /// gateway heard of that place read the changed value: it is not told, and still tracks
    /// the key (Redis tells no client of a write that came before its read).
    pub fn invalidate_changes(&mut self, changes: &[tracking_feed::Change], at: FeedMark) -> Vec<Notice> {
        let mut notices = Vec::new();
        for (key, writer) in changes {
            let Some(mut readers) = self.keys.remove(key) else { continue };
            let mut told: Vec<u64> = Vec::with_capacity(readers.len());
            readers.retain(|id, mark| {
                let later = mark.covers(at.epoch, at.seq);
                if !later {
                    told.push(*id);
                }
                later
            });
            if !readers.is_empty() {
                self.keys.insert(key.clone(), readers);
            }
            told.sort_unstable();
            // A reader that switched to BCAST since hears of its keys the BCAST way only.
            told.retain(|id| {
                let own_write = |t: &Tracker| t.settings.noloop && *writer == Some(*id);
                self.clients.get(id).is_some_and(|t| !t.settings.bcast && !own_write(t))
            });
            notices.extend(told.into_iter().map(|id| (id, Some(vec![key.clone()]), *writer == Some(id))));
        }
        let mut bcast: Vec<(&u64, &Tracker)> = self.clients.iter().filter(|(_, t)| t.settings.bcast).collect();
        bcast.sort_unstable_by_key(|(id, _)| **id);
        for (id, t) in bcast {
            let s = &t.settings;
            let everything = [Bytes::new()];
            let prefixes = if s.prefixes.is_empty() { &everything[..] } else { &s.prefixes[..] };
            for prefix in prefixes {
                let keys: Vec<Bytes> = changes
                    .iter()
                    .filter(|(k, w)| k.starts_with(prefix) && !(s.noloop && *w == Some(*id)))
                    .map(|(k, _)| k.clone())
                    .collect();
                if !keys.is_empty() {
                    let own = !s.noloop && changes.iter().any(|(k, w)| k.starts_with(prefix) && *w == Some(*id));
                    notices.push((*id, Some(keys), own));
                }
            }
        }
        notices
    }

    /// Everything changed (FLUSHALL, a new primary): every tracking client is told to drop
    /// its whole cache.
    /// `flusher`: the client of this gateway whose request flushed, told after its reply.
    pub fn invalidate_all(&mut self, flusher: Option<u64>) -> Vec<Notice> {
        self.keys.clear();
        let mut ids: Vec<u64> = self.clients.keys().copied().collect();
        ids.sort_unstable();
        ids.into_iter().map(|id| (id, None, flusher == Some(id))).collect()
    }
}

/// How far this gateway's hubs have delivered each primary's feed (by the feed's epoch): a
/// link holds a reply batch back until the feed messages the node had published before it
/// went out are delivered, so the invalidations a command caused (an eviction, another
/// client's write) reach a tracking client before that command's reply, as Redis sends
/// them. Only feeds this gateway follows are here; a batch of another waits for nothing.
#[derive(Default)]
pub struct FeedProgress {
    delivered: parking_lot::Mutex<HashMap<u64, u64>>,
    moved: tokio::sync::Notify,
}

/// Feeds remembered at most (each primary process has its own; old ones are dropped whole).
const MAX_FEEDS: usize = 4096;

impl FeedProgress {
    /// Feed `epoch`'s message `seq` was delivered to this gateway's clients.
    pub fn delivered(&self, epoch: u64, seq: u64) {
        {
            let mut delivered = self.delivered.lock();
            if delivered.len() >= MAX_FEEDS && !delivered.contains_key(&epoch) {
                delivered.clear();
            }
            let at = delivered.entry(epoch).or_default();
            *at = (*at).max(seq);
        }
        self.moved.notify_waiters();
    }

    /// This gateway no longer follows these feeds (their stream ended, or no client tracks).
    pub fn forget(&self, epochs: impl IntoIterator<Item = u64>) {
        let mut delivered = self.delivered.lock();
        for e in epochs {
            delivered.remove(&e);
        }
        drop(delivered);
        self.moved.notify_waiters();
    }

    fn behind(&self, epoch: u64, seq: u64) -> bool {
        self.delivered.lock().get(&epoch).is_some_and(|&at| at < seq)
    }

    /// Waits, at most `limit`, until message `seq` of feed `epoch` is delivered (at once when
    /// this gateway does not follow that feed).
    pub async fn wait_for(&self, epoch: u64, seq: u64, limit: std::time::Duration) {
        if epoch == 0 || !self.behind(epoch, seq) {
            return;
        }
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let moved = self.moved.notified();
            tokio::pin!(moved);
            moved.as_mut().enable();
            if !self.behind(epoch, seq) {
                return;
            }
            if tokio::time::timeout_at(deadline, moved).await.is_err() {
                return;
            }
        }
    }
}

pub static FEED_PROGRESS: std::sync::LazyLock<FeedProgress> = std::sync::LazyLock::new(FeedProgress::default);

/// The push a RESP3 tracking client receives instead of an invalidation its redirect target,
/// gone, can no longer take (Redis's `tracking-redir-broken`).
pub fn redirect_broken(target: u64) -> Reply {
    Reply::Push(vec![Reply::Bulk(Bytes::from_static(b"tracking-redir-broken")), Reply::Integer(target as i64)])
}

/// The push a RESP3 connection receives: `invalidate` and the keys (null: everything).
pub fn push(keys: Option<Vec<Bytes>>) -> Reply {
    Reply::Push(vec![Reply::Bulk(Bytes::from_static(b"invalidate")), payload(keys)])
}

/// The message a RESP2 redirect target subscribed to `__redis__:invalidate` receives.
pub fn message(keys: Option<Vec<Bytes>>) -> Reply {
    Reply::Push(vec![
        Reply::Bulk(Bytes::from_static(b"message")),
        Reply::Bulk(Bytes::from_static(REDIS_CHANNEL)),
        payload(keys),
    ])
}

fn payload(keys: Option<Vec<Bytes>>) -> Reply {
    match keys {
        Some(keys) => Reply::Array(keys.into_iter().map(Reply::Bulk).collect()),
        None => Reply::NullBulk,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn on(args: &[&str], current: Option<&Settings>) -> Result<Settings, Reply> {
        let args: Vec<Bytes> = args.iter().map(|a| b(a)).collect();
        parse_on(&args, current, |id| id == 7)
    }

    #[test]
    fn options_are_checked_as_redis_checks_them() {
        let msg = |r: Result<Settings, Reply>| match r {
            Err(Reply::Error(e)) => e,
            other => panic!("{other:?}"),
        };
        assert!(msg(on(&["PREFIX", "a"], None)).contains("requires BCAST"));
        assert!(msg(on(&["BCAST", "OPTIN"], None)).contains("not compatible with BCAST"));
        assert!(msg(on(&["OPTIN", "OPTOUT"], None)).contains("both OPTIN mode and OPTOUT mode"));
        assert!(msg(on(&["REDIRECT", "8"], None)).contains("does not exist"));
        assert!(msg(on(&["BCAST", "PREFIX", "a", "PREFIX", "ab"], None))
            .contains("'a' overlaps with another provided prefix 'ab'"));
        assert!(msg(on(&["NOPE"], None)).contains("syntax error"));
        let bcast = on(&["BCAST", "PREFIX", "user:"], None).unwrap();
        assert!(msg(on(&[], Some(&bcast))).contains("switch BCAST"));
        let more = on(&["BCAST", "PREFIX", "order:"], Some(&bcast)).unwrap();
        assert_eq!(more.prefixes, vec![b("user:"), b("order:")], "prefixes add up");
        assert!(msg(on(&["BCAST", "PREFIX", "user:1"], Some(&more))).contains("with an existing prefix 'user:'"));
        let optin = on(&["OPTIN"], None).unwrap();
        assert!(msg(on(&["OPTOUT"], Some(&optin))).contains("switch OPTIN/OPTOUT"));
        assert!(on(&[], Some(&optin)).is_ok(), "Redis lets plain ON follow OPTIN");
        let many: Vec<String> = (0..MAX_PREFIXES + 1).map(|i| format!("p{i}:")).collect();
        let mut args = vec!["BCAST"];
        for p in &many {
            args.extend(["PREFIX", p.as_str()]);
        }
        assert!(msg(on(&args, None)).contains("at most"));
        assert_eq!(on(&args[..args.len() - 2], None).unwrap().prefixes.len(), MAX_PREFIXES);
        assert_eq!(on(&["REDIRECT", "7", "OPTIN"], None).unwrap().redirect, 7);
    }

    #[test]
    fn readers_are_told_once_and_bcast_by_prefix() {
        let mut t = Table::default();
        let tracker = |s: Settings| Some(Tracker { settings: s, resp3: true });
        t.set(1, tracker(Settings::default()));
        t.set(2, tracker(Settings { bcast: true, prefixes: vec![b("user:")], ..Default::default() }));
        t.set(3, tracker(Settings { bcast: true, ..Default::default() }));
        t.record(1, &[b("user:1"), b("other")], FeedMark::default());
        let told: Vec<u64> = t.invalidate(&b("user:1"), None).into_iter().map(|(id, ..)| id).collect();
        assert_eq!(told, vec![1, 2, 3]);
        let told: Vec<u64> = t.invalidate(&b("user:1"), None).into_iter().map(|(id, ..)| id).collect();
        assert_eq!(told, vec![2, 3], "a reader is told once until it reads again");
        let told: Vec<u64> = t.invalidate(&b("other"), None).into_iter().map(|(id, ..)| id).collect();
        assert_eq!(told, vec![1, 3]);
        t.set(1, None);
        t.record(1, &[b("gone")], FeedMark::default());
        assert!(t.invalidate(&b("gone"), None).iter().all(|(id, ..)| *id != 1), "a client that left is not told");
        // NOLOOP: a client's own write tells the others only.
        t.set(4, tracker(Settings { bcast: true, noloop: true, ..Default::default() }));
        let told: Vec<u64> = t.invalidate(&b("k"), Some(4)).into_iter().map(|(id, ..)| id).collect();
        assert_eq!(told, vec![3]);
        let notices = t.invalidate(&b("k"), Some(3));
        let told: Vec<(u64, bool)> = notices.into_iter().map(|(id, _, own)| (id, own)).collect();
        assert_eq!(
            told,
            vec![(3, true), (4, false)],
            "without NOLOOP a client hears of its own writes, after its reply"
        );
        assert_eq!(t.invalidate_all(None).len(), 3);
        assert!(Settings { optin: true, ..Default::default() }.tracks_reads(Caching::Yes));
        assert!(!Settings { optin: true, ..Default::default() }.tracks_reads(Caching::Unset));
        assert!(!Settings { optout: true, ..Default::default() }.tracks_reads(Caching::No));
    }

    #[test]
    fn the_key_bound_forgets_keys_and_tells_their_readers() {
        let mut t = Table::default();
        t.set(1, Some(Tracker { settings: Settings::default(), resp3: true }));
        t.record(1, &[b("a"), b("b"), b("c")], FeedMark::default());
        let told = t.set_max_keys(1);
        assert_eq!(told.len(), 2, "two of the three keys go, each told");
        assert!(told.iter().all(|(id, keys, _)| *id == 1 && keys.as_ref().is_some_and(|k| k.len() == 1)));
        assert_eq!(t.record(1, &[b("d")], FeedMark::default()).len(), 1, "a new key makes room");
        assert!(t.set_max_keys(0).is_empty(), "0: no bound");
        assert!(t.record(1, &[b("e"), b("f")], FeedMark::default()).is_empty());
        assert_eq!(t.counts(), [1, 3, 3, 0]);
        t.set(1, None);
        assert_eq!(t.counts(), [0, 0, 0, 0], "the last tracker gone, the table is empty");
    }

    #[test]
    fn a_change_before_the_read_tells_nobody() {
        let mut t = Table::default();
        t.set(1, Some(Tracker { settings: Settings::default(), resp3: true }));
        t.set(2, Some(Tracker { settings: Settings::default(), resp3: true }));
        let feed = |seq| FeedMark { epoch: 7, seq };
        // Client 1 read after hearing of feed message 5, client 2 before.
        t.record(1, &[b("k")], feed(5));
        t.record(2, &[b("k")], feed(4));
        let told = |t: &mut Table, at| {
            t.invalidate_changes(&[(b("k"), None)], at).into_iter().map(|(id, ..)| id).collect::<Vec<_>>()
        };
        assert_eq!(told(&mut t, feed(5)), vec![2], "message 5 came before client 1's read");
        assert_eq!(told(&mut t, feed(6)), vec![1], "client 1 still tracks k, and hears of message 6");
        assert_eq!(told(&mut t, feed(7)), Vec::<u64>::new(), "told once");
        // Another feed (another primary, or this one restarted) proves nothing.
        t.record(1, &[b("k")], feed(9));
        assert_eq!(told(&mut t, FeedMark { epoch: 8, seq: 1 }), vec![1]);
        t.record(1, &[b("k")], FeedMark::default());
        assert_eq!(told(&mut t, FeedMark::default()), vec![1], "no mark covers nothing");
    }

    #[test]
    fn a_commit_reaches_a_bcast_client_once_per_prefix() {
        let mut t = Table::default();
        let tracker = |s: Settings| Some(Tracker { settings: s, resp3: true });
        t.set(1, tracker(Settings::default()));
        t.set(2, tracker(Settings { bcast: true, prefixes: vec![b("a:"), b("b:")], ..Default::default() }));
        t.set(3, tracker(Settings { bcast: true, noloop: true, ..Default::default() }));
        t.record(1, &[b("a:1"), b("b:1")], FeedMark::default());
        t.record(2, &[b("a:1")], FeedMark::default());
        let changes = [(b("a:1"), None), (b("a:2"), Some(3)), (b("b:1"), None), (b("c"), None)];
        let notices = t.invalidate_changes(&changes, FeedMark::default());
        let keys = |v: &[&str]| Some(v.iter().map(|k| b(k)).collect::<Vec<_>>());
        assert_eq!(
            notices,
            vec![
                (1, keys(&["a:1"]), false),
                (1, keys(&["b:1"]), false),
                (2, keys(&["a:1", "a:2"]), false),
                (2, keys(&["b:1"]), false),
                (3, keys(&["a:1", "b:1", "c"]), false),
            ]
        );
    }
}
