//! The storage writer: appends the node's commits to its log, owns fsync, and starts
//! compactions when the log outgrows its base. A thread per node does the waiting parts.
//!
//! ```text
//!  node commit (under its lock): queue the commit's effects, bump seq, then either
//!    append inline: the appender is idle and no fsync is wanted (everysec, no): take the
//!      queue and write(2) it on the committing thread, as Redis writes its AOF buffer
//!      from its event loop; the thread fsyncs later, on its tick
//!    or kick: writer thread: lock the node, take the queue, unlock; one write(2); fsync
//!      when asked (`always`: before those commits answer, one fsync for every commit
//!      queued at that moment — group commit) or every interval; then durable = seq
//! ```
//! Inline appends spare each commit a thread wake-up and a second take of the node's lock;
//! while the thread fsyncs (it holds the appender) commits queue and kick as before, so a
//! slow disk never stalls the committing thread for longer than one write(2).
//! The log holds effects, not values: a command on a big collection costs what it changed,
//! not the collection's size.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::watch;

use super::files::{io, NodeFiles};
use super::log;
use super::{Position, StoreError};
use bytes::Bytes;

enum Job {
    /// Something is pending: write it.
    Kick,
    /// Write what is pending, fsync, then answer.
    Sync(std::sync::mpsc::Sender<Result<(), String>>),
}

/// One thing to append, in commit order.
#[derive(Debug)]
pub enum LogItem {
    /// A commit's effects, encoded once (log.rs `effects_record`) and shared with the backlog.
    Record(Bytes),
    Position(Position),
    /// What follows goes to segment N: a compaction or a full sync writes base N.
    Rotate(u64),
}

/// What the writer takes from its node in one run.
pub struct Pulled {
    /// The node's commit sequence number the items end at.
    pub seq: u64,
    pub items: Vec<LogItem>,
    /// Some commit in it wants an fsync before it answers (`appendfsync always`).
    pub fsync: bool,
}

/// Takes the node's queued items, or None when nothing is queued.
pub type Source = Box<dyn FnMut() -> Option<Pulled> + Send>;

/// Starts a compaction (on its own thread); the writer calls it when the log has grown.
pub type Compactor = Box<dyn Fn() + Send>;

/// What the writer, compactions and the metrics page share about a node's files.
#[derive(Debug, Default)]
pub struct BaseState {
    /// A compaction is under way.
    pub running: AtomicBool,
    /// The newest base's number: segments below it are folded in.
    pub segment: AtomicU64,
    pub bytes: AtomicU64,
    /// Bytes of log since the newest base.
    pub log_bytes: AtomicU64,
    pub compactions: AtomicU64,
    pub fsyncs: AtomicU64,
    /// Time spent in fsync, in microseconds.
    pub fsync_micros: AtomicU64,
    /// When the newest base was written (or the node opened), Unix seconds: LASTSAVE.
    pub saved_at: std::sync::atomic::AtomicI64,
    /// The replication offset the newest base holds (or the node opened at): the changes
    /// since are INFO's rdb_changes_since_last_save.
    pub saved_offset: AtomicU64,
}

impl BaseState {
    /// A base holding everything up to `offset` was written (or the node opened there).
    pub fn mark_saved(&self, offset: u64) {
        let now = ferrocache_common::time::now_ms() / 1000;
        self.saved_at.store(now, std::sync::atomic::Ordering::Relaxed);
        self.saved_offset.store(offset, std::sync::atomic::Ordering::Relaxed);
    }
}

/// When the log is worth folding into a new base: once it is larger than the base and than
/// `min_bytes` (Redis's auto-aof-rewrite-percentage 100 and auto-aof-rewrite-min-size).
#[derive(Clone, Copy, Debug)]
pub struct CompactionPolicy {
    pub min_bytes: u64,
    /// Bytes of records a compaction copies per turn under the node's lock.
    pub step_bytes: usize,
}

impl CompactionPolicy {
    pub fn new(min_bytes: u64) -> CompactionPolicy {
        CompactionPolicy { min_bytes, step_bytes: 256 * 1024 }
    }
}

pub struct WriterSetup {
    pub name: String,
    pub files: Arc<NodeFiles>,
    /// The segment appends start in (a fresh number: segments already there are not reopened).
    pub segment: u64,
    /// Segments already there since the newest base, with their sizes.
    pub segments: Vec<(u64, u64)>,
    pub base: Arc<BaseState>,
    pub policy: CompactionPolicy,
    /// How often unflushed writes are fsynced (None = only when a pull asks for it).
    pub fsync_every: Option<Duration>,
    /// Bytes of zeros to prepare each next part of the log in (spare.rs); None: the log
    /// grows as it is written. For `appendfsync always`, whose fsyncs it makes cheaper.
    pub preallocate: Option<u64>,
    pub source: Source,
    pub compactor: Compactor,
}

pub struct StoreWriter {
    tx: SyncSender<Job>,
    appender: Arc<Mutex<Appender>>,
    durable: watch::Receiver<u64>,
    failed: watch::Receiver<Option<String>>,
}

impl StoreWriter {
    pub fn start(setup: WriterSetup) -> StoreWriter {
        // One queued kick is enough: a run takes everything pending at that moment.
        let (tx, rx) = sync_channel(1);
        let (durable_tx, durable) = watch::channel(0);
        let (failed_tx, failed) = watch::channel(None);
        let name = format!("store-{}", setup.name);
        let appender = Arc::new(Mutex::new(Appender::new(setup, durable_tx, failed_tx)));
        let shared = appender.clone();
        let spawned = std::thread::Builder::new().name(name).spawn(move || run(&shared, rx));
        if let Err(e) = spawned {
            tracing::error!("cannot start the storage writer: {e}");
        }
        StoreWriter { tx, appender, durable, failed }
    }

    /// Tells the writer something is pending (never blocks).
    pub fn kick(&self) -> Result<(), StoreError> {
        match self.tx.try_send(Job::Kick) {
            Ok(()) | Err(TrySendError::Full(_)) => Ok(()),
            Err(TrySendError::Disconnected(_)) => Err(StoreError::WriterGone),
        }
    }

    /// Commit `seq` queued `items`: appends them on the caller's thread when nothing in
    /// them needs an fsync (`fsync`: `appendfsync always`; a rotation fsyncs the segment
    /// it ends) and the appender is idle; otherwise leaves them queued and kicks the thread.
    /// The caller holds the node's lock, so `items` is everything queued since the last
    /// append, in commit order; never blocks on the appender.
    ///
    /// Under `always` it appends inline too when the current part of the log takes direct
    /// synchronous writes and has room for `items`: the write is then the fsync, and it is
    /// durable (`durable` = `seq`) when this returns, as Redis writes and fsyncs its AOF
    /// from its event loop: no thread wake-up there and back per group commit.
    pub fn append_or_kick(&self, seq: u64, items: &mut Vec<LogItem>, fsync: bool) -> Result<(), StoreError> {
        if items.iter().any(|i| matches!(i, LogItem::Rotate(_))) {
            return self.kick();
        }
        let Some(mut appender) = self.appender.try_lock() else {
            return self.kick();
        };
        if fsync && !appender.fits_direct(items) {
            drop(appender);
            return self.kick();
        }
        match appender.append(Pulled { seq, items: std::mem::take(items), fsync: false }) {
            Err(e) => appender.report(&Err(e.to_string())),
            Ok(()) if fsync => appender.report(&Ok(())),
            Ok(()) => {}
        }
        if appender.fsync_due() {
            drop(appender);
            return self.kick();
        }
        Ok(())
    }

    /// The last storage batch fsynced.
    pub fn durable(&self) -> u64 {
        *self.durable.borrow()
    }

    /// Waits until commit `seq` is on disk.
    pub async fn wait_durable(&self, seq: u64) -> Result<(), StoreError> {
        let mut durable = self.durable.clone();
        let mut failed = self.failed.clone();
        loop {
            if let Some(e) = failed.borrow_and_update().clone() {
                return Err(StoreError::Io(e));
            }
            if *durable.borrow_and_update() >= seq {
                return Ok(());
            }
            tokio::select! {
                r = durable.changed() => if r.is_err() { return Err(StoreError::WriterGone) },
                r = failed.changed() => if r.is_err() { return Err(StoreError::WriterGone) },
            }
        }
    }

    /// Stops preparing preallocated parts and removes the spare (the node's files are about
    /// to be deleted: nothing may be created among them meanwhile).
    pub fn stop_preallocating(&self) {
        let spare = self.appender.lock().spare.take();
        drop(spare);
    }

    /// Writes and fsyncs everything pending (shutdown, tests). Blocking.
    pub fn sync(&self) -> Result<(), StoreError> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.tx.send(Job::Sync(tx)).map_err(|_| StoreError::WriterGone)?;
        rx.recv_timeout(Duration::from_secs(30)).map_err(|_| StoreError::WriterGone)?.map_err(StoreError::Io)
    }
}

/// The writer thread: runs on kicks, on `sync` and on its tick (fsync every interval,
/// compactions), each run holding the appender.
fn run(appender: &Mutex<Appender>, rx: Receiver<Job>) {
    let tick = appender.lock().setup.fsync_every.unwrap_or(Duration::from_secs(3600)).min(Duration::from_millis(200));
    loop {
        let sync = match rx.recv_timeout(tick) {
            Ok(Job::Sync(reply)) => Some(reply),
            Ok(Job::Kick) | Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let mut a = appender.lock();
        let result = a.step(sync.is_some()).map_err(|e| e.to_string());
        a.report(&result);
        if let Some(reply) = sync {
            let _ = reply.send(result);
        }
        a.maybe_compact();
    }
    // The node is gone: make what was written durable.
    let mut a = appender.lock();
    if a.dirty {
        if let Err(e) = a.fsync() {
            tracing::error!("final fsync failed: {e}");
        }
    }
}

/// The log's open file and what is known about it; the thread and inline appends take
/// turns holding it.
struct Appender {
    setup: WriterSetup,
    file: Option<std::fs::File>,
    segment: u64,
    /// The current file's part of the segment (files.rs).
    part: u32,
    /// Bytes written to the current file, and the bytes it was preallocated with.
    at: u64,
    capacity: u64,
    spare: Option<super::spare::Spare>,
    /// The current file, when preallocated, open for direct synchronous writes (direct.rs):
    /// each write is then durable as it returns, with no fsync after it.
    direct: Option<super::direct::DirectFile>,
    /// Segment -> bytes, for the segments since the newest base.
    sizes: BTreeMap<u64, u64>,
    buf: Vec<u8>,
    written: u64,
    dirty: bool,
    last_fsync: Instant,
    last_compaction: Option<Instant>,
    durable_tx: watch::Sender<u64>,
    failed_tx: watch::Sender<Option<String>>,
}

/// A compaction that did not finish is tried again after this long at the earliest.
const COMPACTION_RETRY: Duration = Duration::from_secs(1);
/// The encode buffer is written out once it holds this much.
const WRITE_CHUNK: usize = 4 << 20;

impl Appender {
    fn new(setup: WriterSetup, durable_tx: watch::Sender<u64>, failed_tx: watch::Sender<Option<String>>) -> Appender {
        let sizes = setup.segments.iter().copied().collect();
        let spare = setup.preallocate.map(|size| super::spare::Spare::start(setup.files.dir(), &setup.name, size));
        Appender {
            segment: setup.segment,
            part: 0,
            at: 0,
            capacity: 0,
            spare,
            direct: None,
            setup,
            file: None,
            sizes,
            buf: Vec::new(),
            written: 0,
            dirty: false,
            last_fsync: Instant::now(),
            last_compaction: None,
            durable_tx,
            failed_tx,
        }
    }

    /// Publishes how a run went: durable advances once nothing written is left unsynced.
    fn report(&self, result: &Result<(), String>) {
        match result {
            Ok(()) if !self.dirty => {
                self.durable_tx.send_replace(self.written);
            }
            Ok(()) => {}
            Err(e) => {
                tracing::error!("storage write failed: {e}");
                self.failed_tx.send_replace(Some(e.clone()));
            }
        }
    }

    /// Whether `items` can be written durably at once: the current part is open for direct
    /// synchronous writes, has nothing unsynced, and has room for them (so no move to the
    /// next part, which may mean waiting for it).
    fn fits_direct(&self, items: &[LogItem]) -> bool {
        let bytes: usize = items
            .iter()
            .map(|i| match i {
                LogItem::Record(r) => r.len(),
                // A position record is small; room for it is what matters.
                LogItem::Position(p) => 64 + p.replid.len(),
                LogItem::Rotate(_) => usize::MAX / 2,
            })
            .sum();
        self.direct.is_some()
            && !self.dirty
            && self.buf.is_empty()
            && self.at.saturating_add(bytes as u64) <= self.capacity
    }

    fn fsync_due(&self) -> bool {
        self.dirty && self.setup.fsync_every.is_some_and(|every| self.last_fsync.elapsed() >= every)
    }

    fn step(&mut self, force_fsync: bool) -> Result<(), StoreError> {
        let mut want_fsync = force_fsync;
        if let Some(pulled) = (self.setup.source)() {
            want_fsync |= pulled.fsync;
            self.append(pulled)?;
        }
        if (self.dirty && want_fsync) || self.fsync_due() {
            self.fsync()?;
        }
        Ok(())
    }

    /// Writes `pulled`'s items (no fsync).
    fn append(&mut self, pulled: Pulled) -> Result<(), StoreError> {
        for item in pulled.items {
            match item {
                LogItem::Record(record) if record.len() >= WRITE_CHUNK => {
                    self.flush_buf()?;
                    self.write_direct(&record)?;
                }
                LogItem::Record(record) => self.buf.extend_from_slice(&record),
                LogItem::Position(p) => log::encode_position(&mut self.buf, &p),
                LogItem::Rotate(n) => self.rotate(n)?,
            }
            if self.buf.len() >= WRITE_CHUNK {
                self.flush_buf()?;
            }
        }
        self.flush_buf()?;
        self.written = pulled.seq;
        Ok(())
    }

    fn open_segment(&mut self) -> Result<(), StoreError> {
        if self.file.is_none() {
            let path = self.setup.files.part_path(self.segment, self.part);
            let spare = self.spare.as_ref().and_then(|s| Some((s.take(&path)?, s.size())));
            let (f, capacity) = match spare {
                Some(taken) => taken,
                None => (std::fs::OpenOptions::new().create(true).append(true).open(&path).map_err(io)?, 0),
            };
            self.direct = if capacity > 0 { super::direct::DirectFile::open(&path) } else { None };
            crate::snapshot::file::sync_dir(self.setup.files.dir());
            self.sizes.entry(self.segment).or_insert(0);
            self.file = Some(f);
            self.at = 0;
            self.capacity = capacity;
        }
        Ok(())
    }

    /// Before `n` more bytes: moves on to the segment's next part when they would not fit in
    /// the current file's preallocated bytes and a spare is ready (never waits for one).
    /// Records never straddle files.
    fn make_room(&mut self, n: usize) -> Result<(), StoreError> {
        let full = self.file.is_some() && self.at + n as u64 > self.capacity;
        if !full || !self.spare.as_ref().is_some_and(|s| s.is_ready()) {
            return Ok(());
        }
        // The next part is replayed after this one: what this one holds is synced first.
        if self.dirty {
            self.fsync()?;
        }
        self.file = None;
        self.direct = None;
        self.part += 1;
        self.open_segment()
    }

    fn flush_buf(&mut self) -> Result<(), StoreError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.make_room(self.buf.len())?;
        self.open_segment()?;
        let buf = std::mem::take(&mut self.buf);
        let written = self.write_out(&buf);
        self.buf = buf;
        self.buf.clear();
        written
    }

    /// Writes at the end of the current file: durably at once when it takes direct writes,
    /// else through the page cache (an fsync later makes it durable).
    fn write_out(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        if let Some(d) = self.direct.as_mut() {
            let started = Instant::now();
            d.write_at(bytes, self.at).map_err(io)?;
            // Counted as the fsync it replaces (INFO persistence).
            let base = &self.setup.base;
            base.fsyncs.fetch_add(1, Ordering::Relaxed);
            base.fsync_micros.fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
            self.last_fsync = Instant::now();
        } else {
            if let Some(f) = self.file.as_mut() {
                f.write_all(bytes).map_err(io)?;
            }
            self.dirty = true;
        }
        self.at += bytes.len() as u64;
        *self.sizes.entry(self.segment).or_insert(0) += bytes.len() as u64;
        Ok(())
    }

    /// Writes a big record as it is, without copying it into the buffer.
    fn write_direct(&mut self, record: &[u8]) -> Result<(), StoreError> {
        self.make_room(record.len())?;
        self.open_segment()?;
        self.write_out(record)
    }

    fn fsync(&mut self) -> Result<(), StoreError> {
        if let Some(f) = &self.file {
            let started = Instant::now();
            f.sync_data().map_err(io)?;
            let base = &self.setup.base;
            base.fsyncs.fetch_add(1, Ordering::Relaxed);
            base.fsync_micros.fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        }
        self.last_fsync = Instant::now();
        self.dirty = false;
        Ok(())
    }

    /// Ends the current segment (durably: commits in it may wait for it) and starts `n`.
    fn rotate(&mut self, n: u64) -> Result<(), StoreError> {
        self.flush_buf()?;
        if self.dirty {
            self.fsync()?;
        }
        self.file = None;
        self.direct = None;
        self.segment = n;
        self.part = 0;
        self.open_segment()?;
        Ok(())
    }

    fn maybe_compact(&mut self) {
        let base = &self.setup.base;
        let folded = base.segment.load(Ordering::Acquire);
        self.sizes.retain(|&n, _| n >= folded);
        base.log_bytes.store(self.sizes.values().sum(), Ordering::Relaxed);
        if base.running.load(Ordering::Acquire) {
            return;
        }
        if self.last_compaction.is_some_and(|at| at.elapsed() < COMPACTION_RETRY) {
            return;
        }
        let log_bytes: u64 = self.sizes.values().sum();
        base.log_bytes.store(log_bytes, Ordering::Relaxed);
        let threshold = self.setup.policy.min_bytes.max(base.bytes.load(Ordering::Acquire));
        if log_bytes > threshold {
            base.running.store(true, Ordering::Release);
            self.last_compaction = Some(Instant::now());
            (self.setup.compactor)();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replication::backlog::Effect;
    use crate::storage::log::Record;

    fn effect(args: &[&str]) -> Effect {
        args.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect()
    }

    /// A writer's setup that never compacts.
    fn quiet_setup(
        files: &Arc<NodeFiles>,
        fsync_every: Option<Duration>,
        preallocate: Option<u64>,
        source: Source,
    ) -> WriterSetup {
        WriterSetup {
            name: "t".into(),
            files: files.clone(),
            segment: files.allocate(),
            segments: vec![],
            base: Arc::new(BaseState::default()),
            policy: CompactionPolicy::new(1 << 30),
            fsync_every,
            preallocate,
            source,
            compactor: Box::new(|| {}),
        }
    }

    /// Like a node's queue: commits push to it (with the storage batch number they end);
    /// an inline append or the thread's pull drains it.
    fn node_queue(fsync: bool) -> (Arc<Mutex<Vec<LogItem>>>, Arc<AtomicU64>, Source) {
        let queue: Arc<Mutex<Vec<LogItem>>> = Arc::default();
        let seq = Arc::new(AtomicU64::new(0));
        let (q, s) = (queue.clone(), seq.clone());
        let source: Source = Box::new(move || {
            let items = std::mem::take(&mut *q.lock());
            (!items.is_empty()).then(|| Pulled { seq: s.load(Ordering::SeqCst), items, fsync })
        });
        (queue, seq, source)
    }

    /// Commits `SET k <n>` as storage batch `n` through [`node_queue`]'s queue; whether it
    /// was appended inline.
    fn commit_set(writer: &StoreWriter, queue: &Mutex<Vec<LogItem>>, seq: &AtomicU64, n: u64, fsync: bool) -> bool {
        let mut pending = queue.lock();
        let set = effect(&["SET", "k", &n.to_string()]);
        pending.push(LogItem::Record(log::effects_record(n - 1, &[set])));
        seq.store(n, Ordering::SeqCst);
        writer.append_or_kick(n, &mut pending, fsync).unwrap();
        pending.is_empty()
    }

    /// The values of the logged `SET k v` effects, in log order, and what recovery found.
    fn recovered_values(files: &NodeFiles) -> (Vec<String>, crate::storage::files::Recovered) {
        let mut values = Vec::new();
        let found = files
            .recover(
                |_, _, _| {},
                |r| {
                    if let Record::Effects { effects, .. } = r {
                        values.push(String::from_utf8_lossy(&effects[0][2]).into_owned());
                    }
                },
            )
            .unwrap();
        (values, found)
    }

    #[tokio::test]
    async fn appends_in_order_rotates_and_reports_durability() {
        let root = tempfile::tempdir().unwrap();
        let files = Arc::new(NodeFiles::open(root.path(), "n").unwrap());
        let queue: Arc<Mutex<Vec<Pulled>>> = Arc::default();
        let compactions = Arc::new(AtomicU64::new(0));
        let (q, c) = (queue.clone(), compactions.clone());
        let base = Arc::new(BaseState::default());
        let writer = StoreWriter::start(WriterSetup {
            name: "t".into(),
            files: files.clone(),
            segment: files.allocate(),
            segments: vec![],
            base: base.clone(),
            policy: CompactionPolicy::new(100),
            fsync_every: None,
            preallocate: None,
            source: Box::new(move || {
                let mut q = q.lock();
                (!q.is_empty()).then(|| q.remove(0))
            }),
            compactor: Box::new(move || {
                c.fetch_add(1, Ordering::SeqCst);
            }),
        });
        let p = Position { replid: "r".into(), offset: 0 };
        queue.lock().push(Pulled {
            seq: 4,
            items: vec![
                LogItem::Position(p.clone()),
                LogItem::Record(log::effects_record(0, &[effect(&["SET", "a", "1"])])),
            ],
            fsync: true,
        });
        writer.kick().unwrap();
        writer.wait_durable(4).await.unwrap();
        let rotated = files.allocate();
        queue.lock().push(Pulled {
            seq: 5,
            items: vec![
                LogItem::Rotate(rotated),
                LogItem::Record(log::effects_record(1, &[effect(&["SET", "b", &"x".repeat(200)])])),
            ],
            fsync: false,
        });
        writer.sync().unwrap();
        assert!(files.segment_path(rotated).exists());
        let mut records = Vec::new();
        let found = files.recover(|_, _, _| {}, |r| records.push(r)).unwrap();
        assert_eq!(records.len(), 3);
        assert_eq!(records[0], Record::Position(p));
        assert_eq!(found.position, Position { replid: "r".into(), offset: 2 });
        // The log outgrew the (empty) base and the minimum: a compaction is asked for (right
        // after the run that wrote it).
        for _ in 0..200 {
            if compactions.load(Ordering::SeqCst) > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(compactions.load(Ordering::SeqCst), 1);
        assert!(base.running.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn appends_inline_when_idle_in_commit_order() {
        let root = tempfile::tempdir().unwrap();
        let files = Arc::new(NodeFiles::open(root.path(), "n").unwrap());
        let (queue, seq, source) = node_queue(false);
        let writer = StoreWriter::start(quiet_setup(&files, Some(Duration::from_millis(50)), None, source));
        let mut inline = 0;
        for n in 1..=20u64 {
            inline += usize::from(commit_set(&writer, &queue, &seq, n, false));
        }
        // Most went in inline (the thread holds the appender only while it writes or fsyncs);
        // whichever way each went, the log holds all of them in commit order.
        assert!(inline > 0);
        writer.sync().unwrap();
        let (values, _) = recovered_values(&files);
        assert_eq!(values, (1..=20).map(|n| n.to_string()).collect::<Vec<_>>());
        tokio::time::timeout(Duration::from_secs(5), writer.wait_durable(20)).await.unwrap().unwrap();

        // A rotation (it fsyncs the segment it ends) and an fsync wanted are left queued for
        // the thread, never written on the committing thread.
        let mut rotation = vec![LogItem::Rotate(files.allocate())];
        writer.append_or_kick(21, &mut rotation, false).unwrap();
        assert_eq!(rotation.len(), 1);
        let mut always = vec![LogItem::Record(log::effects_record(20, &[effect(&["SET", "k", "21"])]))];
        writer.append_or_kick(21, &mut always, true).unwrap();
        assert_eq!(always.len(), 1);
    }

    #[tokio::test]
    async fn always_commits_inline_into_a_direct_part_are_durable_on_return() {
        let root = tempfile::tempdir().unwrap();
        let files = Arc::new(NodeFiles::open(root.path(), "n").unwrap());
        let (queue, seq, source) = node_queue(true);
        let writer = StoreWriter::start(quiet_setup(&files, None, Some(64 << 10), source));
        // Let the first preallocated part be prepared.
        tokio::time::sleep(Duration::from_millis(200)).await;
        for n in 1..=40u64 {
            // Where the file system takes O_DIRECT (tmpfs does not) and the thread has opened
            // a preallocated part, a commit goes in inline (the records here are far smaller
            // than the part).
            let direct = writer.appender.lock().direct.is_some();
            let inline = commit_set(&writer, &queue, &seq, n, true);
            assert_eq!(inline, direct, "commit {n}: inline exactly when the part takes direct writes");
            if inline {
                assert!(writer.durable() >= n, "commit {n} written inline but not durable");
            }
            tokio::time::timeout(Duration::from_secs(10), writer.wait_durable(n)).await.unwrap().unwrap();
        }
        let (values, _) = recovered_values(&files);
        assert_eq!(values, (1..=40).map(|n| n.to_string()).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn preallocated_parts_replay_in_order_and_lose_their_zero_tails() {
        let root = tempfile::tempdir().unwrap();
        let files = Arc::new(NodeFiles::open(root.path(), "n").unwrap());
        let queue: Arc<Mutex<Vec<Pulled>>> = Arc::default();
        let q = queue.clone();
        let source: Source = Box::new(move || {
            let mut q = q.lock();
            (!q.is_empty()).then(|| q.remove(0))
        });
        // A few records per part, so the writer moves on many times.
        let writer = StoreWriter::start(quiet_setup(&files, None, Some(300), source));
        for n in 1..=60u64 {
            let set = effect(&["SET", "k", &n.to_string()]);
            queue.lock().push(Pulled {
                seq: n,
                items: vec![LogItem::Record(log::effects_record(n - 1, &[set]))],
                fsync: true,
            });
            writer.kick().unwrap();
            tokio::time::timeout(Duration::from_secs(10), writer.wait_durable(n)).await.unwrap().unwrap();
            if n % 20 == 0 {
                // Let a spare be prepared, as a busy node's would be most of the time.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        let parts = std::fs::read_dir(files.dir()).unwrap().filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            (name.starts_with("log-") && name.ends_with(".aof")).then_some(name)
        });
        assert!(parts.count() > 2, "the writer moved on to preallocated parts");
        let (values, found) = recovered_values(&files);
        assert_eq!(values, (1..=60).map(|n| n.to_string()).collect::<Vec<_>>());
        assert_eq!(found.position.offset, 60);
        assert_eq!(found.segments.len(), 1, "parts count as their segment");
        // Recovery cut the zero tails: the files hold records only.
        let on_disk: u64 = std::fs::read_dir(files.dir())
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".aof"))
            .map(|e| e.metadata().unwrap().len())
            .sum();
        assert_eq!(on_disk, found.log_bytes);
        writer.stop_preallocating();
        assert!(!files.dir().join("log-next.prealloc").exists());
    }
}
