//! One client connection: parse requests, dispatch each at once (so a pipeline fans out to
//! the node links without waiting), and write replies strictly in request order.
//!
//! Replies that are already known are written in one go; the buffer is flushed whenever
//! the next reply in order is not ready yet, so a slow command (WAIT) never holds back
//! replies already computed before it.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use ferrocache_common::command::{self, Flag, Route};
use ferrocache_common::reply::errors;
use ferrocache_common::slot::key_slot;
use ferrocache_common::{Reply, DATABASES};
use ferrocache_proto::internal::v1 as pb;
use parking_lot::Mutex;
use smallvec::SmallVec;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::busy;
use crate::clients::{ClientInfo, Clients};
use crate::endpoints::Endpoint;
use crate::local::{self, Local};
use crate::pubsub::{self, ClientSubs};
use crate::request::Request;
use crate::resp::{self, Limits};
use crate::retry;
use crate::router::{EndpointKind, RouteCache};
use crate::transaction::{self, Multi, Queued, TxState};
use crate::{info, Shared};

mod auth;
mod cluster_mode;
mod idle;
mod output;

use cluster_mode::{cluster_command, cluster_data};
use idle::{sleep_until_some, IdleTimeout};

/// Flush the output buffer once it holds this much, even mid-pipeline.
const OUT_HIGH_WATER: usize = 256 * 1024;
/// A connection's query and output buffers start at this size.
const BUFFER: usize = 16 * 1024;
/// An empty buffer grown past this (a big value in or out) goes back to [`BUFFER`]: one
/// 500 MB SET must not leave its connection holding 500 MB for as long as it stays open.
const BUFFER_KEEP: usize = 64 * 1024;

type Mapper = Box<dyn FnOnce(Reply) -> Reply + Send>;

/// A reply slot, in request order; `u8` is the protocol in force when it was requested.
enum Slot {
    Ready(Reply, u8),
    Waiting(Box<Waiting>),
}

/// A command sent to a node whose reply has not been written yet.
struct Waiting {
    rx: oneshot::Receiver<Reply>,
    /// Turns the node's reply into the client's (INFO merges the gateway's sections).
    mapper: Option<Mapper>,
    proto: u8,
    deadline: Option<tokio::time::Instant>,
    /// A blocking command or WAIT: it may wait as long as its own timeout says.
    blocking: bool,
    /// What it takes to send the command again if routes change under it (inline: the
    /// waiting slot is boxed already, a second allocation per command bought nothing).
    retry: Option<Retry>,
}

struct Retry {
    request: Resend,
    slot: Option<u16>,
    kind: EndpointKind,
    is_write: bool,
    readonly: bool,
    /// The routing table's version the last attempt used.
    version: u64,
    until: tokio::time::Instant,
}

/// What a retry sends again.
enum Resend {
    /// A copy of the request.
    Copy(Request),
    /// The data command whose arguments its [`Track`] keeps (for the slowlog): rebuilt from
    /// them, so a command's arguments are copied once, not twice.
    Data { db: u32, no_touch: bool, writer: u64 },
}

impl Resend {
    fn of(request: &Request, args_tracked: bool) -> Resend {
        match request {
            Request::Data(d) if args_tracked => Resend::Data { db: d.db, no_touch: d.no_touch, writer: d.writer },
            r => Resend::Copy(r.clone()),
        }
    }

    /// The request to send again; None when the arguments it needs are not at hand.
    fn request(&self, tracked: Option<&[Bytes]>) -> Option<Request> {
        match self {
            Resend::Copy(r) => Some(r.clone()),
            Resend::Data { db, no_touch, writer } => Some(Request::Data(pb::DataRequest {
                args: tracked?.to_vec(),
                db: *db,
                no_touch: *no_touch,
                writer: *writer,
            })),
        }
    }
}

/// Longest pause between attempts when the routes do not change.
const RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(50);

pub struct Session {
    info: Arc<Mutex<ClientInfo>>,
    id: u64,
    proto: u8,
    shared: Arc<Shared>,
    tx: TxState,
    /// Pub/sub subscriptions, once the client has subscribed to anything.
    subs: Option<ClientSubs>,
    /// READONLY was sent (cluster mode: a replica's node port serves this client's reads).
    readonly: bool,
    /// The ACL user logged in as; None until AUTH when the group needs a password.
    user: Option<Arc<ferrocache_common::acl::User>>,
    /// The user may run anything: the per-command check is skipped.
    unrestricted: bool,
    /// The group's users, as of routing table `acl_version`.
    acl: Arc<crate::acl::Acl>,
    acl_version: u64,
    /// CLIENT REPLY: what the client asked for replies.
    replies: ReplyMode,
    /// The command just dispatched was CLIENT REPLY with this mode.
    reply_command: Option<ReplyMode>,
    /// The group's command statistics on this gateway.
    pub stats: Arc<crate::stats::GroupStats>,
    /// The group's ACL LOG on this gateway.
    pub acl_log: Arc<parking_lot::Mutex<crate::acl::AclLog>>,
    /// MONITOR: the feed this connection streams.
    monitor: Option<crate::monitor::Watcher>,
    /// The group's CLIENT PAUSE on this gateway.
    pub pause: Arc<crate::pause::Pause>,
    /// CLIENT NO-EVICT / NO-TOUCH.
    pub no_evict: bool,
    /// Its share of the group's client memory (maxmemory-clients).
    memory: crate::client_eviction::ClientMemory,
    pub no_touch: bool,
    /// It has sent a blocking command: when it goes, one may still wait on a datanode.
    sent_blocking: bool,
    /// SELECT: the database this connection's commands run in (cluster mode: 0).
    pub db: usize,
    /// CLIENT TRACKING ON's settings, while on.
    tracking: Option<crate::tracking::Settings>,
    /// CLIENT CACHING's word for the next command.
    caching: crate::tracking::Caching,
    /// When the commands being dispatched were read: their statistics, deadlines and retry
    /// windows count from it (one clock read per read, not several per command).
    now: Instant,
    /// Where the previous command went (reused while the routes stay the same).
    routes: RouteCache,
}

/// CLIENT REPLY's modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReplyMode {
    #[default]
    On,
    Off,
    /// The next command's reply is not sent.
    Skip,
}

/// The protocol of a reply the client asked not to get (CLIENT REPLY OFF / SKIP): it is
/// waited for in order like any other, then dropped instead of written.
const SILENT: u8 = 0;

impl Session {
    /// CLIENT REPLY ON | OFF | SKIP.
    pub fn set_reply_mode(&mut self, mode: ReplyMode) {
        self.reply_command = Some(mode);
        match mode {
            ReplyMode::On | ReplyMode::Off => self.replies = mode,
            ReplyMode::Skip if self.replies == ReplyMode::On => self.replies = ReplyMode::Skip,
            ReplyMode::Skip => {}
        }
    }

    /// Whether the command just dispatched goes unanswered: CLIENT REPLY OFF and SKIP
    /// themselves, everything while OFF, the one command after SKIP.
    fn silenced(&mut self) -> bool {
        match self.reply_command.take() {
            Some(ReplyMode::On) => false,
            Some(_) => true,
            None => match self.replies {
                ReplyMode::On => false,
                ReplyMode::Off => true,
                ReplyMode::Skip => {
                    self.replies = ReplyMode::On;
                    true
                }
            },
        }
    }
    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn proto(&self) -> u8 {
        self.proto
    }

    pub fn set_proto(&mut self, p: u8) {
        self.proto = p;
        self.update(|c| c.proto = p);
        if p == 3 && self.subs.is_none() {
            // Invalidations other clients REDIRECT here come as pushes: a mailbox to hold them.
            let group = self.info.lock().scope.group.clone();
            self.mailbox(&group);
        }
        if let Some(subs) = self.subs.as_ref() {
            subs.set_resp3(p == 3);
        }
        // Invalidations take the form of the protocol spoken now.
        if let (Some(s), Some(subs)) = (&self.tracking, self.subs.as_mut()) {
            drop(subs.track(Some(crate::tracking::Tracker { settings: s.clone(), resp3: p == 3 })));
        }
    }

    pub fn info(&self) -> ClientInfo {
        self.info.lock().clone()
    }

    pub fn clients(&self) -> &Clients {
        &self.shared.clients
    }

    /// Which other clients this one sees (its group's; on a node port, that port's).
    pub fn scope(&self) -> crate::clients::Scope {
        self.info.lock().scope.clone()
    }

    pub fn update(&self, f: impl FnOnce(&mut ClientInfo)) {
        f(&mut self.info.lock());
    }

    pub fn set_name(&self, name: &[u8]) -> Result<(), Reply> {
        if name.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
            return Err(Reply::error("ERR Client names cannot contain spaces, newlines or special characters."));
        }
        let name = String::from_utf8_lossy(name).into_owned();
        self.update(|c| c.name = name);
        Ok(())
    }

    pub fn in_multi(&self) -> bool {
        self.tx.in_multi()
    }

    /// MONITOR: from now on this connection also streams the group's commands: those of
    /// this gateway's clients from here, those scripts run from the group's primary (the OK
    /// waits until the primary sends them, so a script right after is seen).
    fn start_monitor(&mut self, endpoint: &Endpoint) -> Slot {
        let proto = self.proto;
        if self.monitor.is_some() {
            return Slot::Ready(Reply::ok(), proto);
        }
        self.monitor = Some(self.stats.monitor.watch());
        let ack = self.mailbox(&endpoint.group_id).monitor(true);
        let (tx, rx) = oneshot::channel();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(pubsub::ACK_TIMEOUT, ack).await;
            let _ = tx.send(Reply::ok());
        });
        Slot::Waiting(Box::new(Waiting { rx, mapper: None, proto, deadline: None, blocking: false, retry: None }))
    }

    pub fn reset(&mut self) {
        if self.monitor.take().is_some() {
            if let Some(subs) = self.subs.as_mut() {
                drop(subs.monitor(false));
            }
        }
        self.logout();
        self.tx = TxState::default();
        if let Some(subs) = self.subs.as_mut() {
            subs.unsubscribe_all();
        }
        self.stop_tracking();
        self.set_proto(2);
        self.db = 0;
        self.update(|c| c.name.clear());
    }
}

/// Answers a connection over the client limit, then closes it.
pub async fn refuse<S: AsyncWrite + Unpin>(mut socket: S, msg: &str) {
    let mut out = BytesMut::new();
    resp::encode(&Reply::error(msg), 2, &mut out);
    let _ = socket.write_all(&out).await;
}

pub async fn serve(
    socket: TcpStream,
    peer: SocketAddr,
    endpoint: Arc<Endpoint>,
    shared: Arc<Shared>,
    cancel: CancellationToken,
) {
    let laddr = socket.local_addr().map(|a| a.to_string()).unwrap_or_default();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&socket);
    let (rd, wr) = socket.into_split();
    serve_split(rd, wr, (peer, laddr, fd), endpoint, shared, cancel).await
}

/// A client that connected with TLS.
pub async fn serve_tls(
    socket: tokio_rustls::server::TlsStream<TcpStream>,
    peer: SocketAddr,
    endpoint: Arc<Endpoint>,
    shared: Arc<Shared>,
    cancel: CancellationToken,
) {
    let laddr = socket.get_ref().0.local_addr().map(|a| a.to_string()).unwrap_or_default();
    let fd = std::os::fd::AsRawFd::as_raw_fd(socket.get_ref().0);
    let (rd, wr) = tokio::io::split(socket);
    serve_split(rd, wr, (peer, laddr, fd), endpoint, shared, cancel).await
}

async fn serve_split<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    rd: R,
    wr: W,
    (peer, laddr, fd): (SocketAddr, String, i32),
    endpoint: Arc<Endpoint>,
    shared: Arc<Shared>,
    cancel: CancellationToken,
) {
    let scope = crate::clients::Scope {
        group: Arc::from(endpoint.group_id.as_str()),
        node_port: (endpoint.kind == crate::router::EndpointKind::Node).then_some(endpoint.port),
    };
    let info = shared.clients.register(peer, laddr, fd, scope, &cancel);
    shared.stats.group(&endpoint.group_id).traffic.connections.fetch_add(1, Ordering::Relaxed);
    let id = info.lock().id;
    let acl = shared.router.table().groups.get(&endpoint.group_id).map(|g| g.acl.clone()).unwrap_or_default();
    let mut session = Session {
        info,
        id,
        proto: 2,
        shared: shared.clone(),
        tx: TxState::default(),
        subs: None,
        readonly: false,
        user: None,
        unrestricted: false,
        acl_version: shared.router.version(),
        acl,
        replies: ReplyMode::On,
        reply_command: None,
        stats: shared.stats.group(&endpoint.group_id),
        acl_log: shared.acl_log.group(&endpoint.group_id),
        monitor: None,
        pause: shared.pauses.group(&endpoint.group_id),
        no_evict: false,
        memory: crate::client_eviction::ClientMemory::new(
            shared.stats.group(&endpoint.group_id).clients_memory.clone(),
        ),
        no_touch: false,
        sent_blocking: false,
        db: 0,
        tracking: None,
        caching: Default::default(),
        now: Instant::now(),
        routes: RouteCache::default(),
    };
    session.logout();
    if let Err(e) = run(rd, wr, &mut session, &endpoint, &shared).await {
        tracing::debug!(client = id, "connection ended: {e}");
    }
    if session.sent_blocking {
        // Its replies' receivers are gone now: the datanodes stop waiting for it at once
        // (Redis unblocks a client as it disconnects), not at the links' next sweep.
        crate::link::sweep_abandoned();
    }
    shared.clients.unregister(id);
    shared.pubsub.client_gone(id);
}

async fn run<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    mut rd: R,
    mut wr: W,
    session: &mut Session,
    endpoint: &Endpoint,
    shared: &Arc<Shared>,
) -> std::io::Result<()> {
    let limits = Limits { max_bulk_len: shared.config.proto_max_bulk_len, max_args: shared.config.max_args };
    let mut inbuf = BytesMut::with_capacity(BUFFER);
    let mut out = BytesMut::with_capacity(BUFFER);
    let mut queue: VecDeque<Slot> = VecDeque::new();
    // What each queued reply answers, for the statistics (same order as `queue`).
    let mut tracks: VecDeque<Option<Track>> = VecDeque::new();
    let control = session.info.lock().control.clone();
    let mut closing = false;
    let mut idle = IdleTimeout::default();
    let mut guard = output::OutputGuard::default();
    // Invalidations of the client's own writes, waiting for the reply in flight; behind a
    // blocking command (whose own write's reply follows at once), only until `held_until`.
    let mut held: Vec<Reply> = Vec::new();
    let mut held_until: Option<tokio::time::Instant> = None;
    // Made once, not per pass: each registers a waiter under a lock when created.
    let killed = control.kill.cancelled();
    let attention = control.attention.notified();
    // Fires at most once per RELEASE_BUFFERS_AFTER while the connection is busy (it is
    // moved on, not made anew per pass): no timer cost per command.
    let release = tokio::time::sleep(idle::RELEASE_BUFFERS_AFTER);
    // The front command's deadline, on one timer kept across passes (a timer per command
    // registered and cleared in tokio's wheel each pass was ~1 % of the gateway under GET):
    // it is moved to the front's deadline only when it fires early, about once per
    // command timeout while the connection is busy.
    let front_timer = tokio::time::sleep(std::time::Duration::ZERO);
    let mut last_push = tokio::time::Instant::now();
    let mut released = false;
    tokio::pin!(killed, attention, release, front_timer);
    loop {
        // When the replies of this pass were ready: one clock read for all of them and the
        // output limits' check (a read per command was ~1.5 % of the gateway under
        // pipelining); taken again after an await.
        let pass_started = Instant::now();
        guard.refresh(
            shared,
            &endpoint.group_id,
            session.subs.as_ref().is_some_and(|s| s.is_subscribed()),
            pass_started,
        );
        let mut ready_at: Option<Instant> = Some(pass_started);
        // Write every reply that is ready, in order.
        while let Some(front) = queue.front_mut() {
            let (reply, proto) = match front {
                Slot::Ready(..) => match queue.pop_front() {
                    Some(Slot::Ready(r, p)) => (r, p),
                    _ => unreachable_slot(),
                },
                Slot::Waiting(w) => {
                    let r = match w.rx.try_recv() {
                        Ok(r) => r,
                        Err(oneshot::error::TryRecvError::Empty) => break,
                        Err(oneshot::error::TryRecvError::Closed) => {
                            Reply::error("ERR internal error: the reply was lost")
                        }
                    };
                    let tracked = tracks.front().and_then(|t| t.as_ref()).map(|t| &t.args[..]);
                    match settle(w, r, shared, &endpoint.group_id, tracked).await {
                        Some(r) => finish(queue.pop_front(), r),
                        None => {
                            ready_at = None;
                            continue;
                        }
                    }
                }
            };
            if let Some(Some(track)) = tracks.pop_front() {
                let now = *ready_at.get_or_insert_with(Instant::now);
                track.record(session, shared, &endpoint.group_id, &reply, now);
            }
            // Pushes already here came before this reply (its link waited for the
            // invalidations its node announced first): they go out first, as Redis sends
            // them, except those that follow the client's own write's reply.
            if let Some(subs) = session.subs.as_mut() {
                while let Some((message, after_reply)) = subs.try_next() {
                    if after_reply {
                        held.push(message);
                    } else {
                        resp::encode(&message, session.proto, &mut out);
                    }
                }
            }
            if proto != SILENT {
                resp::encode(&reply, proto, &mut out);
            } else if is_push(&reply) {
                // (UN)SUBSCRIBE confirmations are pushes: CLIENT REPLY OFF / SKIP do not
                // silence them, as in Redis.
                resp::encode(&reply, session.proto, &mut out);
            }
            release_held(&mut held, &mut held_until, session.proto, &mut out);
            // With output limits, replies pile up until written so the limits see them.
            if out.len() >= OUT_HIGH_WATER && !guard.limited() {
                guard.flush(&mut wr, &mut out, &session.stats.traffic.net_output).await?;
                ready_at = None;
            }
        }
        shrink(&mut inbuf);
        if !out.is_empty() {
            // Before the replies go out too: a client that has read them and asks CLIENT
            // LIST on another connection sees the state they left (MULTI, subscriptions).
            publish_state(session, &endpoint.group_id, &queue, &tracks, &inbuf, &out);
            guard.flush(&mut wr, &mut out, &session.stats.traffic.net_output).await?;
        }
        shrink(&mut out);
        publish_state(session, &endpoint.group_id, &queue, &tracks, &inbuf, &out);
        if closing && queue.is_empty() {
            return Ok(());
        }
        let can_read = !closing && queue.len() < shared.config.max_pipeline;
        // Redis's `timeout`: an idle client goes, unless it subscribes or waits on a
        // command (a blocked client is not idle).
        let subscribed = session.subs.as_ref().is_some_and(|s| s.is_subscribed());
        let idle_at =
            idle.deadline(shared, &endpoint.group_id, session.now).filter(|_| queue.is_empty() && !subscribed);
        let front_deadline = match queue.front() {
            Some(Slot::Waiting(w)) => w.deadline,
            _ => None,
        };
        // A subscriber may send nothing for hours: it follows changes to its user (a channel
        // it may no longer read closes the connection) without waiting for a command.
        let acl_seen = session.acl_version;
        // Biased: no random draw per pass, and the branches that fire on almost every pass
        // come first (those behind them are not polled when one does). The kill comes
        // before them all, so a client that keeps sending is still closed at once.
        tokio::select! {
            biased;
            _ = &mut killed => return Ok(()),
            r = wait_front(&mut queue) => answer_front(&mut queue, &tracks, r, shared, &endpoint.group_id).await,
            n = rd.read_buf(&mut inbuf), if can_read => {
                let n = n?;
                if n == 0 {
                    return Ok(());
                }
                // After a release the first read got a few bytes: a whole buffer again.
                if released {
                    released = false;
                    let mut fresh = BytesMut::with_capacity(BUFFER.max(inbuf.len()));
                    fresh.extend_from_slice(&inbuf);
                    inbuf = fresh;
                    if out.capacity() == 0 {
                        out = BytesMut::with_capacity(BUFFER);
                    }
                }
                session.stats.traffic.net_input.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                session.now = Instant::now();
                idle.active(session.now);
                loop {
                    match resp::parse_request(&mut inbuf, &limits) {
                        Ok(Some(args)) if args.is_empty() => continue,
                        Ok(Some(mut args)) => {
                            let index = command::index(&args[0]);
                            if let Some(name) = index.and_then(|i| command::static_name(i, &args[0])) {
                                args[0] = name;
                            }
                            let spec = index.map(|i| &command::COMMANDS[i]);
                            let track = Track::start(session, index, &args);
                            session.sent_blocking |= track.as_ref().is_some_and(|t| t.blocking);
                            feed_monitors(session, &args);
                            let running = spec.filter(|s| busy::is_script(s.name)).map(|_| session.stats.scripts.start());
                            let (mut slot, close) = dispatch(session, endpoint, shared, spec, args).await;
                            if let (Some(running), Slot::Waiting(w)) = (running, &mut slot) {
                                // Counted until the answer arrives (or the client goes).
                                if w.mapper.is_none() {
                                    w.mapper = Some(Box::new(move |reply| {
                                        drop(running);
                                        reply
                                    }));
                                }
                            }
                            tracks.push_back(track);
                            if session.silenced() {
                                match &mut slot {
                                    Slot::Ready(_, proto) => *proto = SILENT,
                                    Slot::Waiting(w) => w.proto = SILENT,
                                }
                            }
                            queue.push_back(slot);
                            if close {
                                closing = true;
                                break;
                            }
                        }
                        Ok(None) => break,
                        Err(e) => {
                            tracks.push_back(None);
                            queue.push_back(Slot::Ready(Reply::error(format!("ERR {e}")), session.proto));
                            closing = true;
                            break;
                        }
                    }
                }
                if !closing && inbuf.len() > shared.config.query_buffer_limit {
                    tracing::warn!(client = session.id, "query buffer over the limit; closing");
                    return Ok(());
                }
            }
            _ = &mut attention => {
                attention.set(control.attention.notified());
                idle.recheck();
                let error = control.unblock.lock().take();
                if let Some(error) = error {
                    unblock_front(&mut queue, &tracks, error);
                }
            }
            _ = shared.router.changed_since(acl_seen, std::time::Duration::from_secs(3600)), if subscribed => {
                if let auth::Login::Gone = session.refresh_acl(&endpoint.group_id) {
                    tracing::debug!(client = session.id, "subscriber lost its user or a channel; closing");
                    return Ok(());
                }
            }
            _ = sleep_until_some(held_until) => release_held(&mut held, &mut held_until, session.proto, &mut out),
            _ = &mut release, if inbuf.capacity() > 0 || out.capacity() > 0 => {
                let now = tokio::time::Instant::now();
                let due = idle.last_active().max(last_push) + idle::RELEASE_BUFFERS_AFTER;
                // A blocked client is idle too (Redis frees its query buffer as well): its
                // reply, when it comes, is written into a buffer grown to fit. Once released
                // this branch is off, so a thousand waiters cost no wake-ups.
                if now >= due && inbuf.is_empty() && out.is_empty() {
                    inbuf = BytesMut::new();
                    out = BytesMut::new();
                    released = true;
                } else {
                    // Busy, or half a command read: look again later, not at once.
                    release.as_mut().reset(due.max(now + idle::RELEASE_BUFFERS_AFTER / 4));
                }
            }
            _ = sleep_until_some(idle_at) => {
                tracing::debug!(client = session.id, "idle past the group's timeout; closing");
                return Ok(());
            }
            line = next_monitor_line(&mut session.monitor) => {
                last_push = tokio::time::Instant::now();
                match line {
                    Some(line) => resp::encode(&Reply::Simple(String::from_utf8_lossy(&line).into_owned()), session.proto, &mut out),
                    None => session.monitor = None,
                }
            }
            push = next_push(&mut session.subs) => {
                last_push = tokio::time::Instant::now();
                match push {
                // An invalidation of the client's own write follows the reply of the command
                // that wrote (as Redis sends it), unless that command may wait long.
                Some((message, true)) if holds_pushes(&queue) => held.push(message),
                // A blocking command that wrote once unblocked: its reply is on its way
                // (its link let the invalidation through first), but a blocking command
                // still waiting must not hold the client's pushes for long.
                Some((message, true)) if !queue.is_empty() => {
                    held.push(message);
                    held_until.get_or_insert_with(|| tokio::time::Instant::now() + HELD_BEHIND_BLOCKING);
                }
                Some((message, _)) => resp::encode(&message, session.proto, &mut out),
                None => {
                    tracing::warn!(client = session.id, "pub/sub messages over the output buffer limit; closing");
                    return Ok(());
                }
            }},
            () = &mut front_timer, if front_deadline.is_some() => {
                let due = front_deadline.unwrap_or_else(tokio::time::Instant::now);
                if tokio::time::Instant::now() >= due {
                    let r = Reply::error(NODE_TIMED_OUT);
                    answer_front(&mut queue, &tracks, r, shared, &endpoint.group_id).await;
                } else {
                    front_timer.as_mut().reset(due);
                }
            }
        }
    }
}

/// Whether a reply is a push (or several), which CLIENT REPLY does not silence.
fn is_push(reply: &Reply) -> bool {
    match reply {
        Reply::Push(_) => true,
        Reply::Sequence(items) => !items.is_empty() && items.iter().all(is_push),
        _ => false,
    }
}

/// Writes the held invalidations of the client's own writes (after the reply they follow).
fn release_held(held: &mut Vec<Reply>, until: &mut Option<tokio::time::Instant>, proto: u8, out: &mut BytesMut) {
    for message in held.drain(..) {
        resp::encode(&message, proto, out);
    }
    *until = None;
}

/// Longest an invalidation of the client's own write waits behind a blocking command.
const HELD_BEHIND_BLOCKING: std::time::Duration = std::time::Duration::from_millis(50);

/// Whether a push for the client must wait for the reply at the queue's front: one is in
/// flight and not blocking (a client blocked in BLPOP or WAIT still hears of changes at
/// once).
fn holds_pushes(queue: &VecDeque<Slot>) -> bool {
    match queue.front() {
        Some(Slot::Waiting(w)) => !w.blocking,
        Some(Slot::Ready(..)) => true,
        None => false,
    }
}

/// Gives an empty buffer that grew past [`BUFFER_KEEP`] back (the bytes parsed out of a
/// query buffer live on in their commands until those are answered).
fn shrink(buf: &mut BytesMut) {
    if buf.is_empty() && buf.capacity() > BUFFER_KEEP {
        *buf = BytesMut::with_capacity(BUFFER);
    }
}

/// What CLIENT LIST shows of this connection, as of now.
fn publish_state(
    session: &mut Session,
    group: &str,
    queue: &VecDeque<Slot>,
    tracks: &VecDeque<Option<Track>>,
    inbuf: &BytesMut,
    out: &BytesMut,
) {
    let subs = session.subs.as_ref();
    let count = |kind| subs.map_or(0, |s| s.count(kind));
    let blocked =
        matches!(queue.front(), Some(Slot::Waiting(_))) && matches!(tracks.front(), Some(Some(t)) if t.blocking);
    let state = crate::clients::ClientState {
        sub: count(pubsub::Kind::Channel),
        psub: count(pubsub::Kind::Pattern),
        ssub: count(pubsub::Kind::Shard),
        multi: session.tx.multi.as_ref().map(|m| m.queued.len()),
        multi_mem: session.tx.multi.as_ref().map_or(0, |m| m.bytes),
        blocked,
        monitor: session.monitor.is_some(),
        qbuf: inbuf.len(),
        qbuf_free: inbuf.capacity() - inbuf.len(),
        oll: queue.len(),
        omem: out.len(),
        rbs: out.capacity(),
        no_evict: session.no_evict,
        no_touch: session.no_touch,
        db: session.db,
        tracking: session.tracking.as_ref().map(|s| s.bcast),
    };
    let mut info = session.info.lock();
    info.state = state;
    // Redis frees a command's arguments once it is answered.
    if queue.is_empty() {
        info.argv_mem = 0;
    }
    let mem = (state.qbuf + state.qbuf_free + info.argv_mem + state.multi_mem + state.rbs) as u64;
    info.mem = mem;
    drop(info);
    if let Some(limit) = session.memory.report(mem, session.now, &session.shared.router, group) {
        if crate::client_eviction::evict(&session.shared, group, limit) == 0 {
            session.memory.nothing_to_evict();
        }
    }
}

/// CLIENT UNBLOCK: the blocked command at the front is answered now, as if it had timed out
/// (its timeout reply) or with UNBLOCKED; dropping its wait cancels it on the node.
fn unblock_front(queue: &mut VecDeque<Slot>, tracks: &VecDeque<Option<Track>>, error: bool) {
    let Some(Some(track)) = tracks.front() else { return };
    if !track.blocking || !matches!(queue.front(), Some(Slot::Waiting(_))) {
        return;
    }
    let Some(Slot::Waiting(w)) = queue.pop_front() else { return };
    let reply =
        if error { Reply::error("UNBLOCKED client unblocked via CLIENT UNBLOCK") } else { track.timeout_reply() };
    queue.push_front(Slot::Ready(reply, w.proto));
    drop(w);
    // The command still waits on its datanode: cancelled there now, it takes nothing that a
    // push meant for the next waiter (the client's UNBLOCK reply is on its way meanwhile).
    crate::link::sweep_abandoned();
}

/// A command on its way, for the statistics: its entry, when it came, its arguments.
struct Track {
    entry: Option<usize>,
    started: Instant,
    /// Blocking commands wait by design: logged and counted with no run time.
    timed: bool,
    /// A blocking command (BLPOP, XREAD BLOCK, ...), which CLIENT UNBLOCK may end.
    blocking: bool,
    /// Kept for the slowlog and for a retry. Most commands have up to three arguments:
    /// those are kept without an allocation (a copy per command was 2-3 % of the gateway's
    /// CPU under pipelined GETs).
    args: SmallVec<[Bytes; 3]>,
}

impl Track {
    fn start(session: &Session, index: Option<usize>, args: &[Bytes]) -> Option<Track> {
        let spec = index.map(|i| &command::COMMANDS[i]);
        // Commands queued in MULTI run (and count) with EXEC, as in Redis.
        let queued = session.tx.in_multi() && !spec.is_some_and(|s| matches!(s.name, "exec" | "discard" | "multi"));
        let entry = index.filter(|_| !queued).map(|i| ferrocache_common::acl::categories::resolve(i, args));
        let blocking = spec.is_some_and(|s| s.has(Flag::Blocking)) && !session.tx.in_multi();
        let timed = !blocking && !spec.is_some_and(|s| s.is_wait());
        Some(Track { entry, started: session.now, timed, blocking, args: args.iter().cloned().collect() })
    }

    /// What the blocking command answers when its timeout passes.
    fn timeout_reply(&self) -> Reply {
        match command::lookup(&self.args[0]).map(|s| s.name) {
            Some("blmove" | "brpoplpush") => Reply::NullBulk,
            _ => Reply::NullArray,
        }
    }

    /// `now`: when the reply was ready.
    fn record(self, session: &Session, shared: &Shared, group: &str, reply: &Reply, now: Instant) {
        let stats = &session.stats;
        if stats.params_stale(shared.router.version()) {
            if let Some(g) = shared.router.table().groups.get(group) {
                stats.set_params(&g.parameters);
            }
        }
        let client = || {
            let info = session.info.lock();
            (info.addr, info.name.clone())
        };
        stats.record(crate::stats::Done {
            entry: self.entry,
            // A blocking command's wait is not its run time: it is logged and counted with
            // none (Redis counts only the moments it ran, which the node does not report).
            elapsed: Some(if self.timed {
                now.saturating_duration_since(self.started)
            } else {
                std::time::Duration::ZERO
            }),
            reply,
            args: &self.args,
            client: &client,
        });
    }
}

fn unreachable_slot() -> (Reply, u8) {
    (Reply::error("ERR internal error"), 2)
}

fn finish(slot: Option<Slot>, r: Reply) -> (Reply, u8) {
    match slot {
        Some(Slot::Waiting(w)) => match w.mapper {
            Some(m) => (m(r), w.proto),
            None => (r, w.proto),
        },
        Some(Slot::Ready(r, p)) => (r, p),
        None => unreachable_slot(),
    }
}

/// Decides what a node's reply means for its waiting command: `Some` = the client's answer;
/// `None` = the command was refused while routes changed and has been sent again.
/// `tracked`: the command's arguments as its [`Track`] keeps them.
async fn settle(
    w: &mut Waiting,
    reply: Reply,
    shared: &Shared,
    group: &str,
    tracked: Option<&[Bytes]>,
) -> Option<Reply> {
    let Some(retry) = w.retry.as_mut() else { return Some(reply) };
    if !retry::retryable(retry::classify(&reply, retry.readonly), retry.is_write) {
        return Some(reply);
    }
    let now = tokio::time::Instant::now();
    if now >= retry.until {
        return Some(reply);
    }
    let Some(request) = retry.request.request(tracked) else { return Some(reply) };
    shared.router.changed_since(retry.version, RETRY_PAUSE.min(retry.until - now)).await;
    w.rx = match shared.router.target(group, retry.kind, retry.slot) {
        Ok(target) => {
            retry.version = target.version;
            retry.readonly = target.readonly;
            shared.router.send(target, retry.slot, request).await
        }
        Err(e) => {
            retry.version = shared.router.table().version;
            let transient = e.is_transient();
            let rx = answered(e.into());
            if !transient {
                w.retry = None;
            }
            rx
        }
    };
    None
}

/// A receiver that already holds its reply.
fn answered(r: Reply) -> oneshot::Receiver<Reply> {
    let (tx, rx) = oneshot::channel();
    let _ = tx.send(r);
    rx
}

/// The next pub/sub message for the client; None when it overran its output limit (the
/// connection then closes, as Redis's client-output-buffer-limit does). Pends while the
/// client subscribes to nothing.
async fn next_monitor_line(monitor: &mut Option<crate::monitor::Watcher>) -> Option<Bytes> {
    match monitor {
        Some(m) => m.next().await,
        None => std::future::pending().await,
    }
}

/// MONITOR shows every command but admin ones (the commands a script runs come from the
/// datanode that runs them, as `[<db> lua]` lines).
fn feed_monitors(session: &Session, args: &[Bytes]) {
    let monitor = &session.stats.monitor;
    if !monitor.active() {
        return;
    }
    // As Redis, which shows what it runs: not an unknown command, nor one of the wrong
    // arity (refused before it runs), nor an admin one.
    let shown = command::lookup(&args[0]).is_some_and(|s| !s.has(Flag::Admin) && s.arity_ok(args.len()));
    if shown {
        let addr = session.info.lock().addr;
        monitor.feed(session.db, addr, args);
    }
}

async fn next_push(subs: &mut Option<ClientSubs>) -> Option<(Reply, bool)> {
    let Some(subs) = subs else { return std::future::pending().await };
    let overflow = subs.overflowed();
    tokio::select! {
        _ = overflow.cancelled() => None,
        m = subs.next() => m,
    }
}

impl Session {
    /// CLIENT TRACKING: the token its writes carry, so its own writes are known (a NOLOOP
    /// client is not told of them, others are told after the reply; 0 when not tracking).
    fn writer_token(&self) -> u64 {
        match (&self.tracking, &self.subs) {
            (Some(_), Some(subs)) => subs.writer_token(),
            _ => 0,
        }
    }

    fn stop_tracking(&mut self) {
        if self.tracking.take().is_some() {
            if let Some(subs) = self.subs.as_mut() {
                drop(subs.track(None));
            }
        }
        self.caching = Default::default();
    }

    /// A read about to be sent: a tracking client is told when its keys change. `caching`:
    /// CLIENT CACHING's word in force for it.
    fn track_read(
        &self,
        shared: &Shared,
        group: &str,
        spec: &command::CommandSpec,
        args: &[Bytes],
        caching: crate::tracking::Caching,
    ) {
        let Some(s) = &self.tracking else { return };
        // A script's keys are tracked once it ran a read, which its node tells (the feed).
        if spec.is_write() || !s.tracks_reads(caching) || crate::busy::is_script(spec.name) {
            return;
        }
        let keys: Vec<Bytes> = command::key_positions(spec, args).into_iter().map(|i| args[i].clone()).collect();
        if let (false, Some(subs)) = (keys.is_empty(), self.subs.as_ref()) {
            // Taken before the read is sent: it runs after every change the mark covers.
            // (A read's keys share one slot, so one node, in cluster mode.)
            let mark = shared
                .router
                .target(group, EndpointKind::Primary, Some(key_slot(&keys[0])))
                .map(|t| shared.router.feed_mark(&t))
                .unwrap_or_default();
            subs.tracked_read(&keys, mark);
        }
    }

    /// The connection's pub/sub mailbox, made on first use.
    fn mailbox(&mut self, group: &str) -> &mut ClientSubs {
        let (id, proto, shared) = (self.id, self.proto, &self.shared);
        self.subs.get_or_insert_with(|| {
            let table = shared.router.table();
            let value = table
                .groups
                .get(group)
                .map(|g| ferrocache_common::parameters::value(&g.parameters, "client-output-buffer-limit"));
            let limit = ferrocache_common::parameters::output_limit(value.unwrap_or(""), "pubsub");
            let subs = ClientSubs::new(&shared.pubsub, group, id, limit);
            subs.set_resp3(proto == 3);
            subs
        })
    }
}

/// CLIENT TRACKING / CACHING / GETREDIR / TRACKINGINFO (client-side caching, tracking.rs).
fn client_tracking(session: &mut Session, endpoint: &Endpoint, shared: &Shared, args: &[Bytes]) -> Slot {
    use crate::tracking::{self, Caching};
    let proto = session.proto;
    let sub = args[1].to_ascii_lowercase();
    let reply = match (sub.as_slice(), args.len()) {
        (b"getredir", 2) => Reply::Integer(session.tracking.as_ref().map_or(-1, |s| s.redirect as i64)),
        (b"trackinginfo", 2) => {
            let broken = session.subs.as_ref().is_some_and(|s| s.redirect_broken());
            tracking::info(session.tracking.as_ref(), session.caching, broken)
        }
        (b"caching", 3) => {
            let yes = args[2].eq_ignore_ascii_case(b"yes");
            let (optin, optout) = session.tracking.as_ref().map_or((false, false), |s| (s.optin, s.optout));
            if !optin && !optout {
                Reply::error("ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled")
            } else if yes && !optin {
                Reply::error("ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.")
            } else if !yes && !args[2].eq_ignore_ascii_case(b"no") {
                Reply::error(errors::SYNTAX)
            } else if !yes && !optout {
                Reply::error("ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.")
            } else {
                session.caching = if yes { Caching::Yes } else { Caching::No };
                return Slot::Ready(Reply::ok(), proto);
            }
        }
        (b"tracking", _) if args[2].eq_ignore_ascii_case(b"off") => {
            let scope = session.scope();
            let exists = |id: u64| id == session.id || shared.clients.get(id, &scope).is_some();
            match tracking::parse_options(&args[3..], exists) {
                Ok(_) => {
                    session.stop_tracking();
                    Reply::ok()
                }
                Err(e) => e,
            }
        }
        (b"tracking", _) if args[2].eq_ignore_ascii_case(b"on") => {
            // Invalidations come from the primary: a replica's read could land after one and
            // cache a value the replica had not updated yet.
            if endpoint.kind == EndpointKind::Reader {
                return Slot::Ready(
                    Reply::error("ERR CLIENT TRACKING is served on the primary endpoint (a replica's reads could outrun the invalidations)"),
                    proto,
                );
            }
            let scope = session.scope();
            let exists = |id: u64| id == session.id || shared.clients.get(id, &scope).is_some();
            match tracking::parse_on(&args[3..], session.tracking.as_ref(), exists) {
                Err(e) => e,
                Ok(settings) => {
                    let tracker = tracking::Tracker { settings: settings.clone(), resp3: proto == 3 };
                    let ack = session.mailbox(&endpoint.group_id).track(Some(tracker));
                    session.tracking = Some(settings);
                    // Answered once the primary sends this gateway the keys it changes.
                    let (tx, rx) = oneshot::channel();
                    tokio::spawn(async move {
                        let _ = tokio::time::timeout(pubsub::ACK_TIMEOUT, ack).await;
                        let _ = tx.send(Reply::ok());
                    });
                    return Slot::Waiting(Box::new(Waiting {
                        rx,
                        mapper: None,
                        proto,
                        deadline: None,
                        blocking: false,
                        retry: None,
                    }));
                }
            }
        }
        (b"tracking", _) => Reply::error(errors::SYNTAX),
        _ => Reply::error(format!(
            "ERR wrong number of arguments for 'client|{}' command",
            String::from_utf8_lossy(&sub)
        )),
    };
    Slot::Ready(reply, proto)
}

/// SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE: one confirmation per name, sent once the group's
/// primary knows of the new subscriptions (or after [`pubsub::ACK_TIMEOUT`]).
fn subscribe(session: &mut Session, endpoint: &Endpoint, kind: pubsub::Kind, args: &[Bytes]) -> Slot {
    let proto = session.proto;
    let subs = session.mailbox(&endpoint.group_id);
    let word: &'static [u8] = match kind {
        pubsub::Kind::Channel => b"subscribe",
        pubsub::Kind::Pattern => b"psubscribe",
        pubsub::Kind::Shard => b"ssubscribe",
    };
    let mut acks = Vec::new();
    let mut confirmations = Vec::with_capacity(args.len() - 1);
    for name in &args[1..] {
        acks.extend(subs.subscribe(kind, name));
        confirmations.push(Reply::Push(vec![
            Reply::Bulk(Bytes::from_static(word)),
            Reply::Bulk(name.clone()),
            Reply::Integer(subs.count(kind) as i64),
        ]));
    }
    after_acks(acks, Reply::Sequence(confirmations), proto)
}

/// `reply` once the primary acknowledged every change in `acks` (or after
/// [`pubsub::ACK_TIMEOUT`]).
fn after_acks(acks: Vec<oneshot::Receiver<()>>, reply: Reply, proto: u8) -> Slot {
    if acks.is_empty() {
        return Slot::Ready(reply, proto);
    }
    let (tx, rx) = oneshot::channel();
    tokio::spawn(async move {
        let until = tokio::time::Instant::now() + pubsub::ACK_TIMEOUT;
        for ack in acks {
            let _ = tokio::time::timeout_at(until, ack).await;
        }
        let _ = tx.send(reply);
    });
    Slot::Waiting(Box::new(Waiting { rx, mapper: None, proto, deadline: None, blocking: false, retry: None }))
}

/// UNSUBSCRIBE, PUNSUBSCRIBE, SUNSUBSCRIBE: the names given, or every one of that kind;
/// answered once the primary knows, as SUBSCRIBE is.
fn unsubscribe(session: &mut Session, kind: pubsub::Kind, args: &[Bytes]) -> Slot {
    let proto = session.proto;
    let (reply, acks) = unsubscribe_names(session, kind, args);
    after_acks(acks, reply, proto)
}

fn unsubscribe_names(session: &mut Session, kind: pubsub::Kind, args: &[Bytes]) -> (Reply, Vec<oneshot::Receiver<()>>) {
    let word: &'static [u8] = match kind {
        pubsub::Kind::Channel => b"unsubscribe",
        pubsub::Kind::Pattern => b"punsubscribe",
        pubsub::Kind::Shard => b"sunsubscribe",
    };
    let confirm = |name: Reply, count: usize| {
        Reply::Push(vec![Reply::Bulk(Bytes::from_static(word)), name, Reply::Integer(count as i64)])
    };
    let Some(subs) = session.subs.as_mut() else {
        // Never subscribed: each named channel is confirmed all the same, as in Redis.
        if args.len() > 1 {
            let each = args[1..].iter().map(|n| confirm(Reply::Bulk(n.clone()), 0)).collect();
            return (Reply::Sequence(each), Vec::new());
        }
        return (Reply::Sequence(vec![confirm(Reply::NullBulk, 0)]), Vec::new());
    };
    let names = if args.len() > 1 { args[1..].to_vec() } else { subs.names(kind) };
    if names.is_empty() {
        return (Reply::Sequence(vec![confirm(Reply::NullBulk, subs.count(kind))]), Vec::new());
    }
    let mut out = Vec::with_capacity(names.len());
    let mut acks = Vec::new();
    for name in names {
        acks.extend(subs.unsubscribe(kind, &name));
        out.push(confirm(Reply::Bulk(name), subs.count(kind)));
    }
    (Reply::Sequence(out), acks)
}

/// CONFIG: GET answers from the routes; SET goes through the coordinators (on its own task,
/// so the connection's other replies keep flowing); RESETSTAT clears this gateway's and the
/// primary's counters.
async fn config(session: &mut Session, endpoint: &Endpoint, shared: &Arc<Shared>, args: &[Bytes]) -> Slot {
    use crate::config_command::{self as cfg, ConfigCommand};
    let proto = session.proto;
    match cfg::parse(args) {
        ConfigCommand::Get(patterns) => {
            Slot::Ready(cfg::get(shared, &endpoint.group_id, endpoint.port, patterns), proto)
        }
        ConfigCommand::Set(pairs) => {
            let (tx, rx) = oneshot::channel();
            let (shared, group, pairs) = (shared.clone(), endpoint.group_id.clone(), pairs.to_vec());
            let port = endpoint.port;
            tokio::spawn(async move {
                let _ = tx.send(cfg::set(&shared, &group, port, &pairs).await);
            });
            Slot::Waiting(Box::new(Waiting { rx, mapper: None, proto, deadline: None, blocking: false, retry: None }))
        }
        ConfigCommand::ResetStat => {
            session.stats.reset();
            let request = Request::ResetStat(pb::ResetStatRequest {});
            let (rx, retry) = route(
                shared,
                &mut session.routes,
                &endpoint.group_id,
                EndpointKind::Primary,
                None,
                request,
                false,
                Some(session.now),
                false,
            )
            .await;
            Slot::Waiting(Box::new(Waiting {
                rx,
                mapper: None,
                proto,
                deadline: Some(deadline(shared, session.now)),
                blocking: false,
                retry,
            }))
        }
        ConfigCommand::Answer(r) => Slot::Ready(r, proto),
    }
}

/// FAILOVER: the coordinators start a planned switch (on a node port, of that node's group).
fn failover(session: &Session, endpoint: &Endpoint, shared: &Arc<Shared>, args: &[Bytes]) -> Slot {
    let node_group = (endpoint.kind == EndpointKind::Node)
        .then(|| {
            let table = shared.router.table();
            let (index, _, _) = table.groups.get(&endpoint.group_id)?.member_at(endpoint.port)?;
            table.groups.get(&endpoint.group_id)?.shards.get(index).map(|s| s.id.clone())
        })
        .flatten();
    // A replica's node port is a replica to its clients.
    let kind = match (endpoint.kind, &node_group) {
        (EndpointKind::Node, Some(_)) => {
            let table = shared.router.table();
            let replica = table
                .groups
                .get(&endpoint.group_id)
                .and_then(|g| g.member_at(endpoint.port))
                .is_some_and(|(_, shard, m)| shard.primary.as_ref().is_none_or(|p| p.node_id != m.node_id));
            if replica {
                EndpointKind::Reader
            } else {
                EndpointKind::Primary
            }
        }
        (kind, _) => kind,
    };
    let (tx, rx) = oneshot::channel();
    let (shared, group, args) = (shared.clone(), endpoint.group_id.clone(), args.to_vec());
    tokio::spawn(async move {
        let r = crate::failover_command::failover(&shared, &group, kind, node_group, &args).await;
        let _ = tx.send(r);
    });
    Slot::Waiting(Box::new(Waiting {
        rx,
        mapper: None,
        proto: session.proto,
        deadline: None,
        blocking: false,
        retry: None,
    }))
}

/// Resolves when the front slot's reply arrives; pends forever when there is nothing to
/// wait for (the select's other branches then decide). Its deadline is the connection's
/// front timer's job.
async fn wait_front(queue: &mut VecDeque<Slot>) -> Reply {
    match queue.front_mut() {
        Some(Slot::Waiting(w)) => {
            (&mut w.rx).await.unwrap_or_else(|_| Reply::error("ERR internal error: the reply was lost"))
        }
        _ => std::future::pending().await,
    }
}

/// Settles the front command with `r` (its node's reply, or its timeout): it becomes ready
/// to write, unless it was sent again while routes changed.
async fn answer_front(
    queue: &mut VecDeque<Slot>,
    tracks: &VecDeque<Option<Track>>,
    r: Reply,
    shared: &Shared,
    group: &str,
) {
    let settled = match queue.front_mut() {
        Some(Slot::Waiting(w)) => {
            let tracked = tracks.front().and_then(|t| t.as_ref()).map(|t| &t.args[..]);
            settle(w, r, shared, group, tracked).await
        }
        _ => None,
    };
    if let Some(r) = settled {
        let (r, proto) = finish(queue.pop_front(), r);
        queue.push_front(Slot::Ready(r, proto));
    }
}

/// What a command that waited past the command timeout answers.
pub(crate) const NODE_TIMED_OUT: &str =
    "ERR timed out waiting for the node that serves this key; the command may or may not have run";

/// When a command sent at `from` times out.
fn deadline(shared: &Shared, from: Instant) -> tokio::time::Instant {
    tokio::time::Instant::from_std(from) + std::time::Duration::from_millis(shared.config.command_timeout_ms)
}

/// Redis's unknown-command error: the name, then up to 128 characters of arguments.
fn unknown_command(args: &[Bytes]) -> Reply {
    let mut tail = String::new();
    for a in &args[1..] {
        if tail.len() >= 128 {
            break;
        }
        let room = 128 - tail.len();
        let s = String::from_utf8_lossy(a);
        let s: String = s.chars().take(room).collect();
        tail.push_str(&format!("'{s}' "));
    }
    let name: String = String::from_utf8_lossy(&args[0]).chars().take(128).collect();
    Reply::error(format!("ERR unknown command '{name}', with args beginning with: {tail}"))
}

/// Sends a command to the node that serves `slot`, with what it takes to re-send it during a
/// failover (`retry_from`: when its retry window starts; None: never re-sent); a routing
/// error is answered at once (and retried only when a failover may cure it).
#[allow(clippy::too_many_arguments)]
async fn route(
    shared: &Shared,
    routes: &mut RouteCache,
    group: &str,
    kind: EndpointKind,
    slot: Option<u16>,
    request: Request,
    is_write: bool,
    retry_from: Option<Instant>,
    args_tracked: bool,
) -> (oneshot::Receiver<Reply>, Option<Retry>) {
    let window = std::time::Duration::from_millis(shared.config.retry_window_ms);
    let mut retry = retry_from.map(|from| Retry {
        request: Resend::of(&request, args_tracked),
        slot,
        kind,
        is_write,
        readonly: false,
        version: 0,
        until: tokio::time::Instant::from_std(from) + window,
    });
    let rx = match shared.router.route(routes, group, kind, slot) {
        Ok(routed) => {
            if let Some(r) = retry.as_mut() {
                r.version = routed.version;
                r.readonly = routed.readonly;
            }
            routed.send(slot, request).await
        }
        Err(e) => {
            if !e.is_transient() {
                retry = None;
            }
            if let Some(r) = retry.as_mut() {
                r.version = shared.router.table().version;
            }
            answered(e.into())
        }
    };
    (rx, retry)
}

/// Queues a command inside MULTI; answers QUEUED, or an error that dooms the transaction.
fn queue(
    session: &mut Session,
    endpoint: &Endpoint,
    shared: &Arc<Shared>,
    spec: &command::CommandSpec,
    args: Vec<Bytes>,
) -> Reply {
    if endpoint.kind == EndpointKind::Reader && spec.call_writes(&args) {
        session.tx.flag();
        return Reply::error(errors::READONLY);
    }
    if spec.route == Route::Keyed {
        if let Some(redirect) = cluster_mode::node_port_redirect(session, endpoint, shared, spec, &args) {
            session.tx.flag();
            return redirect;
        }
    }
    // Cluster mode refuses other databases when EXEC runs, as Redis Cluster does.
    let refused = if endpoint.cluster_enabled { crate::cluster::refused_in_cluster_mode(spec, &args) } else { None };
    let item = match spec.route {
        _ if refused.is_some() => Queued::Local(refused.unwrap_or(Reply::NullBulk)),
        // The node runs it in its place: the commands after it use the database it selects.
        Route::Gateway if spec.name == "select" && !endpoint.cluster_enabled => Queued::Remote(args),
        Route::Gateway if spec.name == "select" => Queued::Local(select(session, endpoint, &args)),
        Route::Gateway if spec.name == "config" => {
            Queued::Local(crate::config_command::queued(shared, &endpoint.group_id, endpoint.port, &args))
        }
        Route::Gateway => match local::handle(session, spec, &args) {
            Local::Reply(r) | Local::Close(r) => Queued::Local(r),
            Local::Info(sections) => {
                let gateway_part = info::gateway_sections(shared, endpoint, session);
                Queued::Local(info::compose(&sections, gateway_part, Reply::NullBulk))
            }
            // The node's role cannot be asked from inside the queue.
            Local::Role => Queued::Local(Reply::error("ERR ROLE is not served inside MULTI")),
            Local::LastSave => Queued::Local(Reply::error("ERR LASTSAVE is not served inside MULTI")),
        },
        Route::Keyed | Route::AllShards => Queued::Remote(args),
    };
    if let Some(m) = &mut session.tx.multi {
        if let Queued::Remote(args) = &item {
            m.bytes += args.iter().map(Bytes::len).sum::<usize>();
        }
        m.queued.push(item);
    }
    Reply::Simple("QUEUED".into())
}

/// EXEC: sends the queued commands as one transaction; the reply slots in local answers.
async fn exec(session: &mut Session, endpoint: &Endpoint, shared: &Arc<Shared>) -> Slot {
    let proto = session.proto;
    let Some(multi) = session.tx.multi.take() else {
        return Slot::Ready(Reply::error("ERR EXEC without MULTI"), proto);
    };
    let watches = std::mem::take(&mut session.tx.watches);
    if multi.dirty {
        // An EXEC that comes while a script keeps the node busy is refused first, as Redis
        // refuses it before it looks at the queue.
        if !endpoint.cluster_enabled {
            if let Some(Reply::Error(busy)) = busy_probe(session, endpoint, shared).await {
                return Slot::Ready(Reply::error(format!("EXECABORT Transaction discarded because of: {busy}")), proto);
            }
        }
        return Slot::Ready(Reply::error(transaction::EXECABORT), proto);
    }
    let mut locals = Vec::with_capacity(multi.queued.len());
    let mut commands = Vec::new();
    // The queued commands count in INFO commandstats as they run, as in Redis: (position
    // in EXEC's reply, command-table entry).
    let mut counted = Vec::new();
    for (at, q) in multi.queued.into_iter().enumerate() {
        match q {
            Queued::Local(r) => locals.push(Some(r)),
            Queued::Remote(args) => {
                if let Some(i) = command::index(&args[0]) {
                    counted.push((at, ferrocache_common::acl::categories::resolve(i, &args)));
                }
                locals.push(None);
                commands.push(args);
            }
        }
    }
    if commands.is_empty() && watches.is_empty() {
        return Slot::Ready(transaction::merge(locals, Reply::Array(vec![])), proto);
    }
    let stats = session.stats.clone();
    let addr = session.info.lock().addr;
    let merge = move |node: Reply| {
        let merged = transaction::merge(locals, node);
        if let Reply::Array(replies) = &merged {
            for (at, entry) in &counted {
                if let Some(reply) = replies.get(*at) {
                    let client = || (addr, String::new());
                    stats.record(crate::stats::Done {
                        entry: Some(*entry),
                        elapsed: None,
                        reply,
                        args: &[],
                        client: &client,
                    });
                }
            }
        }
        merged
    };
    let is_write = commands.iter().any(|c| command::lookup(&c[0]).is_some_and(|s| s.may_write()));
    let caching = std::mem::take(&mut session.caching);
    for c in &commands {
        if let Some(spec) = command::lookup(&c[0]) {
            session.track_read(shared, &endpoint.group_id, spec, c, caching);
        }
    }
    // One transaction runs on one node group, in one slot (as in Redis Cluster).
    let mut slots: Vec<u16> = commands
        .iter()
        .flat_map(|c| {
            command::lookup(&c[0])
                .map(|s| command::key_positions(s, c))
                .unwrap_or_default()
                .into_iter()
                .map(|i| key_slot(&c[i]))
        })
        .chain(watches.iter().map(|(_, k, _)| key_slot(k)))
        .collect();
    slots.sort_unstable();
    slots.dedup();
    let slot = slots.first().copied();
    if endpoint.cluster_enabled && slots.len() > 1 {
        return Slot::Ready(Reply::error(crate::cluster::CROSSSLOT), proto);
    }
    // On a cluster node port, a transaction of another node group's slot is redirected.
    if let (EndpointKind::Node, Some(slot)) = (endpoint.kind, slot) {
        let table = shared.router.table();
        if let Some(g) = table.groups.get(&endpoint.group_id) {
            let moved = match (g.shard_of(slot), g.member_at(endpoint.port)) {
                (Some((owner, s)), Some((mine, _, me)))
                    if owner != mine || s.primary.as_ref().map(|p| &p.node_id) != Some(&me.node_id) =>
                {
                    s.primary.as_ref().map(|p| (owner, p.port))
                }
                _ => None,
            };
            if let Some((owner, port)) = moved {
                let me = shared.config.announce_host();
                let host = cluster_mode::hosts(&table, &me).of_shard(owner).to_string();
                return Slot::Ready(Reply::error(format!("MOVED {slot} {host}:{port}")), proto);
            }
        }
    }
    let kind = if endpoint.kind == EndpointKind::Node { EndpointKind::Primary } else { endpoint.kind };
    // SELECTs in it: (index among the node's commands, database) — the connection's database
    // after EXEC is the last that succeeded.
    let selects: Vec<(usize, Option<usize>)> = commands
        .iter()
        .enumerate()
        .filter(|(_, c)| command::lookup(&c[0]).is_some_and(|s| s.name == "select"))
        .map(|(i, c)| {
            (i, c.get(1).and_then(|n| ferrocache_common::int::parse_i64(n)).and_then(|n| usize::try_from(n).ok()))
        })
        .collect();
    let request = Request::Transaction(pb::TransactionRequest {
        db: session.db as u32,
        watches: watches.into_iter().map(|(db, key, token)| pb::WatchedKey { key, token, db: db as u32 }).collect(),
        commands: commands.into_iter().map(|args| pb::DataRequest { args, ..Default::default() }).collect(),
        no_touch: session.no_touch,
        writer: session.writer_token(),
    });
    let (rx, retry) =
        route(shared, &mut session.routes, &endpoint.group_id, kind, slot, request, is_write, Some(session.now), false)
            .await;
    let until = Some(deadline(shared, session.now));
    let mut waiting = Waiting { rx, mapper: None, proto, deadline: until, blocking: false, retry };
    if selects.is_empty() {
        waiting.mapper = Some(Box::new(merge));
        return Slot::Waiting(Box::new(waiting));
    }
    // The commands after this EXEC run in the database it leaves selected: it is waited for
    // here, before the connection reads on.
    let node = loop {
        let reply = match tokio::time::timeout_at(deadline(shared, Instant::now()), &mut waiting.rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Reply::error("ERR connection to the node lost; the transaction may or may not have run"),
            Err(_) => Reply::error("ERR the node did not answer in time; the transaction may or may not have run"),
        };
        if let Some(r) = settle(&mut waiting, reply, shared, &endpoint.group_id, None).await {
            break r;
        }
    };
    if let Reply::Array(replies) = &node {
        for (i, db) in &selects {
            if let (Some(Reply::Simple(_)), Some(db)) = (replies.get(*i), db) {
                session.db = *db;
            }
        }
    }
    Slot::Ready(merge(node), proto)
}

/// SELECT: the connection's database for the commands after it (0–15; cluster mode has
/// database 0 only, as Redis Cluster).
fn select(session: &mut Session, endpoint: &Endpoint, args: &[Bytes]) -> Reply {
    let Some(n) = ferrocache_common::int::parse_i64(&args[1]).filter(|n| i32::try_from(*n).is_ok()) else {
        return Reply::error(errors::NOT_INTEGER);
    };
    if endpoint.cluster_enabled && n != 0 {
        return Reply::error("ERR SELECT is not allowed in cluster mode");
    }
    match usize::try_from(n).ok().filter(|&n| n < DATABASES) {
        Some(db) => {
            session.db = db;
            Reply::ok()
        }
        None => Reply::error(errors::DB_INDEX),
    }
}

/// WATCH: asks the node for the keys' tokens (waiting for them, so a later EXEC carries
/// them) and keeps them on the connection.
async fn watch(session: &mut Session, endpoint: &Endpoint, shared: &Arc<Shared>, args: &[Bytes]) -> Reply {
    if let Some(spec) = command::lookup(&args[0]) {
        if let Some(redirect) = cluster_mode::node_port_redirect(session, endpoint, shared, spec, args) {
            return redirect;
        }
    }
    let slot = key_slot(&args[1]);
    if args[1..].iter().any(|k| key_slot(k) != slot) && endpoint.cluster_enabled {
        return Reply::error(crate::cluster::CROSSSLOT);
    }
    let target = match shared.router.target(&endpoint.group_id, EndpointKind::Primary, Some(slot)) {
        Ok(t) => t,
        Err(e) => return e.into(),
    };
    let request = Request::Watch(pb::WatchRequest { keys: args[1..].to_vec(), db: session.db as u32 });
    let rx = shared.router.send(target, Some(slot), request).await;
    match tokio::time::timeout_at(deadline(shared, Instant::now()), rx).await {
        Ok(Ok(Reply::Array(tokens))) if tokens.len() == args.len() - 1 => {
            for (key, token) in args[1..].iter().zip(tokens) {
                if let Reply::Bulk(t) = token {
                    session.tx.watches.push((session.db, key.clone(), t));
                }
            }
            Reply::ok()
        }
        Ok(Ok(Reply::Error(e))) => Reply::Error(e),
        _ => Reply::error("ERR WATCH could not reach the node that serves these keys; try again"),
    }
}

/// While a script this gateway sent has been running for a while, a command the gateway
/// answers itself asks the primary first, as Redis makes it wait for the script: the node
/// holds the question up to busy-reply-threshold and then answers BUSY (returned here), or
/// answers once the script is done (None: answer as usual).
async fn busy_probe(session: &Session, endpoint: &Endpoint, shared: &Shared) -> Option<Reply> {
    if !session.stats.scripts.long_running() {
        return None;
    }
    admission(session, endpoint, shared, &["BUSY"]).await
}

/// Asks the primary whether it would take a command now (the node holds the question up to
/// busy-reply-threshold while a script runs): its refusal when that begins with one of
/// `codes`, else None (answered OK, or unreachable: the command goes on as usual).
async fn admission(session: &Session, endpoint: &Endpoint, shared: &Shared, codes: &[&str]) -> Option<Reply> {
    let probe = Request::Admission(pb::AdmissionRequest {});
    let mut routes = RouteCache::default();
    let (rx, _) =
        route(shared, &mut routes, &endpoint.group_id, EndpointKind::Primary, None, probe, false, None, false).await;
    match tokio::time::timeout_at(deadline(shared, session.now), rx).await {
        Ok(Ok(Reply::Error(e))) if codes.iter().any(|c| e.starts_with(c)) => Some(Reply::Error(e)),
        _ => None,
    }
}

/// Redis refuses a command queued in MULTI while it is out of memory (OOM) or busy with a
/// script (BUSY), and the refusal dooms the transaction. The gateway queues by itself, so it
/// asks the primary, but only when either could apply: the primary's last reply batch said
/// it was out of memory (each says), or a script sent through this gateway runs long; in
/// the common case queueing costs no round trip. Cluster-mode groups are not asked (which
/// node group runs the transaction is known at EXEC, where the node refuses an EXEC that
/// would grow memory).
async fn queue_admission(session: &Session, endpoint: &Endpoint, shared: &Shared) -> Option<Reply> {
    if endpoint.cluster_enabled {
        return None;
    }
    let target = shared.router.target(&endpoint.group_id, EndpointKind::Primary, None).ok()?;
    if !shared.router.out_of_memory(&target) && !session.stats.scripts.long_running() {
        return None;
    }
    admission(session, endpoint, shared, &["OOM", "BUSY"]).await
}

/// Turns one request into a reply slot; `true` = close after it.
/// Runs or routes one client command; `spec` is its entry in the command table (None: unknown).
async fn dispatch(
    session: &mut Session,
    endpoint: &Endpoint,
    shared: &Arc<Shared>,
    spec: Option<&'static command::CommandSpec>,
    args: Vec<Bytes>,
) -> (Slot, bool) {
    shared.clients.total_commands.fetch_add(1, Ordering::Relaxed);
    session.stats.traffic.commands.fetch_add(1, Ordering::Relaxed);
    let proto = session.proto;
    let ready = |r| (Slot::Ready(r, proto), false);
    let Some(spec) = spec else {
        session.tx.flag();
        return ready(unknown_command(&args));
    };
    {
        let mut info = session.info.lock();
        info.last_active = session.now;
        info.last_cmd = spec.name;
        info.argv_mem = args.iter().map(Bytes::len).sum();
    }
    if !spec.arity_ok(args.len()) {
        session.tx.flag();
        return ready(Reply::error(errors::wrong_arity(spec.name)));
    }
    // Containers (OBJECT, XINFO, CONFIG, ...) all take a variable number of arguments.
    if spec.arity < 0 && args.len() >= 2 {
        match ferrocache_common::subcommands::check(spec.name, &args) {
            Err(e) => {
                session.tx.flag();
                return ready(Reply::error(e));
            }
            // CLIENT LIST's cmd= names the subcommand (client|info), as Redis's does.
            Ok(Some(sub)) => session.info.lock().last_cmd = sub.name,
            Ok(None) => {}
        }
    }
    // CLIENT PAUSE holds commands here, before they run (their clock starts when let go).
    // A WRITE pause holds what writes, whatever its spec says: FUNCTION LOAD (its subcommand
    // writes), an EXEC whose queue writes.
    let writes = |spec: &command::CommandSpec, args: &[Bytes]| crate::pause::replicates(spec) || spec.call_writes(args);
    let writes_beyond_spec = spec.call_writes(&args)
        || (spec.name == "exec"
            && session.tx.multi.as_ref().is_some_and(|m| {
                m.queued.iter().any(
                    |q| matches!(q, Queued::Remote(args) if command::lookup(&args[0]).is_some_and(|s| writes(s, args))),
                )
            }));
    if session.pause.wait(spec, writes_beyond_spec).await {
        session.now = Instant::now();
    }
    // CLIENT CACHING applies to the next command (a whole transaction's, in MULTI).
    let caching = if spec.name == "client" || session.tx.in_multi() || spec.name == "exec" {
        session.caching
    } else {
        std::mem::take(&mut session.caching)
    };
    if let auth::Login::Gone = session.refresh_acl(&endpoint.group_id) {
        return (Slot::Ready(Reply::error("ERR the user this connection is logged in as was deleted"), proto), true);
    }
    if let Err(e) = session.authorize(spec, &args) {
        session.tx.flag();
        return ready(e);
    }
    match spec.name {
        "auth" => return ready(session.auth(&args)),
        "acl" => {
            let r = match session.user() {
                Some(me) => crate::acl::command::handle(me, &session.acl, &session.acl_log, &args),
                None => Reply::error(crate::acl::errors::NOAUTH),
            };
            return ready(r);
        }
        _ => {}
    }
    let subscribed = session.subs.as_ref().is_some_and(|s| s.is_subscribed());
    let pubsub_kind = match spec.name {
        "subscribe" | "unsubscribe" => Some(pubsub::Kind::Channel),
        "psubscribe" | "punsubscribe" => Some(pubsub::Kind::Pattern),
        "ssubscribe" | "sunsubscribe" => Some(pubsub::Kind::Shard),
        _ => None,
    };
    if subscribed && proto == 2 && pubsub_kind.is_none() && !matches!(spec.name, "ping" | "quit" | "reset") {
        return ready(Reply::error(format!(
            "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
            spec.name
        )));
    }
    if let Some(kind) = pubsub_kind {
        if session.tx.in_multi() {
            session.tx.flag();
            return ready(Reply::error(format!("ERR {} inside MULTI is not supported", spec.name.to_uppercase())));
        }
        return match spec.name {
            "subscribe" | "psubscribe" | "ssubscribe" => (subscribe(session, endpoint, kind, &args), false),
            _ => (unsubscribe(session, kind, &args), false),
        };
    }
    if subscribed && proto == 2 && spec.name == "ping" {
        let arg = args.get(1).cloned().unwrap_or_default();
        return ready(Reply::Array(vec![Reply::Bulk(Bytes::from_static(b"pong")), Reply::Bulk(arg)]));
    }
    if matches!(spec.name, "cluster" | "readonly" | "readwrite" | "asking") && !session.tx.in_multi() {
        return (cluster_command(session, endpoint, shared, spec, &args), false);
    }
    if spec.name == "config" && !session.tx.in_multi() {
        return (config(session, endpoint, shared, &args).await, false);
    }
    if spec.name == "failover" && !session.tx.in_multi() {
        return (failover(session, endpoint, shared, &args), false);
    }
    let tracking_sub = |a: &Bytes| {
        [&b"tracking"[..], b"caching", b"getredir", b"trackinginfo"].iter().any(|w| a.eq_ignore_ascii_case(w))
    };
    if spec.name == "client" && !session.tx.in_multi() && args.get(1).is_some_and(tracking_sub) {
        if args[1].eq_ignore_ascii_case(b"tracking") && args.len() < 3 {
            return ready(Reply::error("ERR wrong number of arguments for 'client|tracking' command"));
        }
        return (client_tracking(session, endpoint, shared, &args), false);
    }
    match spec.name {
        "multi" if session.tx.in_multi() => return ready(Reply::error("ERR MULTI calls can not be nested")),
        "multi" => {
            session.tx.multi = Some(Multi::default());
            return ready(Reply::ok());
        }
        "discard" => {
            return ready(match session.tx.multi.take() {
                Some(_) => {
                    session.tx.watches.clear();
                    Reply::ok()
                }
                None => Reply::error("ERR DISCARD without MULTI"),
            })
        }
        "exec" => {
            let slot = exec(session, endpoint, shared).await;
            // An EXEC that SELECTs is waited for here: the commands after it start later.
            session.now = Instant::now();
            return (slot, false);
        }
        "watch" if session.tx.in_multi() => return ready(Reply::error("ERR WATCH inside MULTI is not allowed")),
        "watch" => {
            let reply = watch(session, endpoint, shared, &args).await;
            session.now = Instant::now();
            return ready(reply);
        }
        "unwatch" => {
            session.tx.watches.clear();
            return ready(Reply::ok());
        }
        "quit" | "reset" => {}
        _ if session.tx.in_multi() => {
            if let Some(refused) = queue_admission(session, endpoint, shared).await {
                session.tx.flag();
                return ready(refused);
            }
            return ready(queue(session, endpoint, shared, spec, args));
        }
        "select" => return ready(select(session, endpoint, &args)),
        "monitor" => return (session.start_monitor(endpoint), false),
        _ => {}
    }
    if endpoint.cluster_enabled {
        if let Some(refused) = crate::cluster::refused_in_cluster_mode(spec, &args) {
            return ready(refused);
        }
    }
    if spec.route == Route::Gateway && !spec.has(Flag::AllowBusy) && !endpoint.cluster_enabled {
        if let Some(busy) = busy_probe(session, endpoint, shared).await {
            return ready(busy);
        }
    }
    match spec.route {
        Route::Gateway => match local::handle(session, spec, &args) {
            Local::Reply(r) => (Slot::Ready(r, session.proto), false),
            Local::Close(r) => (Slot::Ready(r, proto), true),
            local @ (Local::Info(_) | Local::Role | Local::LastSave) => {
                let gateway_part = info::gateway_sections(shared, endpoint, session);
                // A node port's INFO is that member's (its role, offsets, keys).
                let member = (endpoint.kind == EndpointKind::Node)
                    .then(|| {
                        let table = shared.router.table();
                        let g = table.groups.get(&endpoint.group_id)?;
                        let (index, shard, m) = g.member_at(endpoint.port)?;
                        let replica = shard.primary.as_ref().is_none_or(|p| p.node_id != m.node_id);
                        Some((index, replica.then(|| m.node_id.clone())))
                    })
                    .flatten();
                let target = match member {
                    Some((index, Some(id))) => {
                        shared.router.target_shard(&endpoint.group_id, index, EndpointKind::Reader, Some(&id))
                    }
                    Some((index, None)) => {
                        shared.router.target_shard(&endpoint.group_id, index, EndpointKind::Primary, None)
                    }
                    None => shared.router.target(&endpoint.group_id, endpoint.kind, None),
                };
                match target {
                    Ok(target) => {
                        let rx = shared.router.send(target, None, Request::Info(pb::InfoRequest {})).await;
                        let mapper: Mapper = match local {
                            Local::Info(sections) => Box::new(move |node| info::compose(&sections, gateway_part, node)),
                            Local::LastSave => Box::new(info::last_save),
                            _ => {
                                let laddr = session.info.lock().laddr.clone();
                                let host = laddr.rsplit_once(':').map_or(laddr.as_str(), |(h, _)| h).to_string();
                                let ports = shared
                                    .router
                                    .table()
                                    .groups
                                    .get(&endpoint.group_id)
                                    .map(|g| (g.primary_port, g.reader_port));
                                Box::new(move |node| info::role(node, &host, ports.unwrap_or_default()))
                            }
                        };
                        let w = Waiting {
                            rx,
                            mapper: Some(mapper),
                            proto,
                            deadline: Some(deadline(shared, session.now)),
                            blocking: false,
                            retry: None,
                        };
                        (Slot::Waiting(Box::new(w)), false)
                    }
                    Err(_) => match local {
                        Local::Info(sections) => ready(info::compose(&sections, gateway_part, Reply::NullBulk)),
                        _ => ready(Reply::error("CLUSTERDOWN no node of this replication group is reachable")),
                    },
                }
            }
        },
        Route::Keyed | Route::AllShards => {
            if endpoint.kind == EndpointKind::Reader && spec.call_writes(&args) {
                return ready(Reply::error(errors::READONLY));
            }
            let pubsub = matches!(spec.name, "publish" | "spublish" | "pubsub");
            if endpoint.cluster_enabled && !pubsub {
                // A read a node port redirects read nothing: nothing to invalidate later.
                let redirected = session.tracking.is_some()
                    && cluster_mode::node_port_redirect(session, endpoint, shared, spec, &args).is_some();
                if !redirected {
                    session.track_read(shared, &endpoint.group_id, spec, &args, caching);
                }
                return (cluster_data(session, endpoint, shared, spec, args).await, false);
            }
            // Pub/sub's broker is the first node group's primary (where the gateways listen).
            let slot = if pubsub { None } else { spec.key_indexes(args.len()).next().map(|i| key_slot(&args[i])) };
            // WAIT counts the acknowledgements of the primary's replicas, whatever the endpoint;
            // pub/sub's broker is the primary too.
            let kind = if spec.is_wait() || matches!(spec.name, "publish" | "spublish" | "pubsub") {
                EndpointKind::Primary
            } else {
                endpoint.kind
            };
            // WAIT is bounded by its own timeout argument (0 = forever, as in Redis) and is
            // never re-sent: it counts acknowledgements of the node it reached.
            let wait = spec.is_wait();
            // Blocking commands (BLPOP, ...) wait as long as their own timeout says.
            let blocking = spec.has(Flag::Blocking);
            let deadline = if wait || blocking { None } else { Some(deadline(shared, session.now)) };
            // A PUBLISH whose fate is unknown is not sent again: a message is delivered at
            // most once. Nor is a script that may have written.
            let once = spec.may_write();
            session.track_read(shared, &endpoint.group_id, spec, &args, caching);
            let mut request = match crate::request::classify(spec, args, session.db) {
                Ok(r) => r,
                Err(answer) => return ready(answer),
            };
            if let (Request::Pubsub(query), EndpointKind::Node) = (&request, endpoint.kind) {
                let here = shared.clients.ids(&session.scope());
                if let Some(answer) = shared.pubsub.node_port_query(&endpoint.group_id, &here, query) {
                    return ready(answer);
                }
            }
            if let Request::Data(d) = &mut request {
                d.no_touch = session.no_touch;
                d.writer = session.writer_token();
            }
            if pubsub {
                if let Some(settled) = shared.pubsub.settled(&endpoint.group_id) {
                    let _ = tokio::time::timeout(pubsub::ACK_TIMEOUT, settled).await;
                }
            }
            let (rx, retry) = route(
                shared,
                &mut session.routes,
                &endpoint.group_id,
                kind,
                slot,
                request,
                once,
                (!wait).then_some(session.now),
                true,
            )
            .await;
            (
                Slot::Waiting(Box::new(Waiting {
                    rx,
                    mapper: None,
                    proto,
                    blocking: deadline.is_none(),
                    deadline,
                    retry,
                })),
                false,
            )
        }
    }
}
