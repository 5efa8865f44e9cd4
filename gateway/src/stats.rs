//! What this gateway measures of the commands it serves, per replication group: INFO
//! commandstats / errorstats / latencystats, SLOWLOG and LATENCY.
//!
//! A command's time runs from its arrival at the gateway to its reply being ready: the
//! latency a client sees, less the socket. Redis measures execution alone; here execution
//! happens on a datanode, so the gateway's figure also holds the hop to it. Blocking
//! commands (BLPOP, WAIT, ...) are counted but not timed: their wait is not latency.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use ferrocache_common::acl::categories;
use ferrocache_common::command::Flag;
use ferrocache_common::Reply;
use parking_lot::Mutex;

/// Histogram buckets: 8 per power of two of nanoseconds (about 12% wide).
const SUB_BITS: u32 = 3;
const BUCKETS: usize = 64 << SUB_BITS;
/// Most distinct error codes errorstats keeps (Redis's limit).
const MAX_ERROR_CODES: usize = 128;
/// Redis's slowlog entry limits.
const SLOWLOG_MAX_ARGS: usize = 32;
const SLOWLOG_MAX_ARG_BYTES: usize = 128;
/// Samples the latency monitor keeps per event (Redis's 160).
const LATENCY_SAMPLES: usize = 160;

#[derive(Default)]
struct CommandStats {
    calls: AtomicU64,
    usec: AtomicU64,
    rejected: AtomicU64,
    failed: AtomicU64,
    /// Nanosecond histogram, made on the command's first timed call.
    histogram: OnceLock<Box<[AtomicU64]>>,
}

/// The parameters that steer recording, as of the last refresh (group parameters).
struct Params {
    slower_than_us: AtomicI64,
    slowlog_max_len: AtomicU64,
    latency_threshold_ms: AtomicU64,
    /// The routing table version they were read from.
    version: AtomicU64,
}

pub struct SlowEntry {
    id: u64,
    at: i64,
    micros: u64,
    args: Vec<Bytes>,
    addr: String,
    name: String,
}

#[derive(Default)]
struct Event {
    /// (Unix seconds, worst latency in ms that second), oldest first.
    samples: VecDeque<(i64, u64)>,
    max: u64,
}

pub struct GroupStats {
    commands: Box<[CommandStats]>,
    errors: Mutex<BTreeMap<String, u64>>,
    pub total_error_replies: AtomicU64,
    slowlog: Mutex<(VecDeque<SlowEntry>, u64)>,
    events: Mutex<BTreeMap<&'static str, Event>>,
    params: Params,
    /// MONITOR's feed of this group's commands on this gateway.
    pub monitor: Arc<crate::monitor::Monitor>,
    /// The scripts this gateway sent to the group that have not answered yet.
    pub scripts: Arc<crate::busy::ScriptsInFlight>,
    /// Connections, commands and bytes (INFO stats).
    pub traffic: crate::traffic::Traffic,
    /// The memory the group's clients hold on this gateway (maxmemory-clients).
    pub clients_memory: Arc<crate::client_eviction::GroupClientMemory>,
}

/// How a command ended.
pub enum Outcome<'a> {
    Ok,
    /// Refused before it ran (arity, ACL, READONLY, OOM, MOVED, ...).
    Rejected(&'a str),
    /// Ran and answered an error.
    Failed(&'a str),
}

impl Outcome<'_> {
    pub fn of(reply: &Reply) -> Outcome<'_> {
        let Reply::Error(msg) = reply else { return Outcome::Ok };
        let code = msg.split(' ').next().unwrap_or("ERR");
        let rejected = matches!(
            code,
            "NOAUTH"
                | "NOPERM"
                | "READONLY"
                | "OOM"
                | "BUSY"
                | "MOVED"
                | "ASK"
                | "CROSSSLOT"
                | "CLUSTERDOWN"
                | "LOADING"
                | "MASTERDOWN"
                | "NOREPLICAS"
                | "MISCONF"
                | "EXECABORT"
                | "TRYAGAIN"
        ) || msg.starts_with("ERR wrong number of arguments")
            || msg.starts_with("ERR unknown command")
            || msg.starts_with("ERR Can't execute");
        // A script that ran and ended in an error (one of its commands refused, say OOM)
        // failed: its error names the script's line.
        let rejected = rejected && !msg.contains(", on @user_script:") && !msg.contains(", on @user_function:");
        if rejected {
            Outcome::Rejected(code)
        } else {
            Outcome::Failed(code)
        }
    }
}

/// A finished command, as the connection saw it.
pub struct Done<'a> {
    /// Its command-table entry (a container's subcommand has its own); None when unknown.
    pub entry: Option<usize>,
    /// None: not timed (the commands an EXEC ran, timed as the EXEC).
    pub elapsed: Option<Duration>,
    pub reply: &'a Reply,
    pub args: &'a [Bytes],
    pub client: &'a dyn Fn() -> (SocketAddr, String),
}

fn bucket(nanos: u64) -> usize {
    if nanos < (1 << SUB_BITS) {
        return nanos as usize;
    }
    let major = 63 - nanos.leading_zeros();
    let sub = (nanos >> (major - SUB_BITS)) & ((1 << SUB_BITS) - 1);
    ((major as usize) << SUB_BITS) | sub as usize
}

/// The largest value a bucket holds, in nanoseconds.
fn bucket_top(i: usize) -> u64 {
    if i < (1 << SUB_BITS) {
        return i as u64;
    }
    let (major, sub) = ((i >> SUB_BITS) as u32, (i & ((1 << SUB_BITS) - 1)) as u128);
    if major < SUB_BITS {
        // Unused: values below 8 have buckets of their own.
        return (1 << SUB_BITS) - 1;
    }
    let top = (((1 << SUB_BITS) + sub + 1) << (major - SUB_BITS)) - 1;
    u64::try_from(top).unwrap_or(u64::MAX)
}

fn now_secs() -> i64 {
    ferrocache_common::time::now_ms() / 1000
}

impl Default for GroupStats {
    fn default() -> GroupStats {
        GroupStats {
            commands: (0..categories::entries().len()).map(|_| CommandStats::default()).collect(),
            errors: Mutex::default(),
            total_error_replies: AtomicU64::new(0),
            slowlog: Mutex::new((VecDeque::new(), 0)),
            events: Mutex::default(),
            monitor: Arc::default(),
            scripts: Arc::default(),
            traffic: Default::default(),
            clients_memory: Arc::default(),
            params: Params {
                slower_than_us: AtomicI64::new(10_000),
                slowlog_max_len: AtomicU64::new(128),
                latency_threshold_ms: AtomicU64::new(0),
                version: AtomicU64::new(u64::MAX),
            },
        }
    }
}

impl GroupStats {
    /// Whether the parameters must be read again: the routing table (which carries the
    /// group's parameters) changed since.
    pub fn params_stale(&self, version: u64) -> bool {
        self.params.version.swap(version, Ordering::Relaxed) != version
    }

    pub fn set_params(&self, set: &BTreeMap<String, String>) {
        use ferrocache_common::parameters::value;
        let p = &self.params;
        p.slower_than_us.store(value(set, "slowlog-log-slower-than").parse().unwrap_or(10_000), Ordering::Relaxed);
        p.slowlog_max_len.store(value(set, "slowlog-max-len").parse().unwrap_or(128), Ordering::Relaxed);
        p.latency_threshold_ms.store(value(set, "latency-monitor-threshold").parse().unwrap_or(0), Ordering::Relaxed);
    }

    pub fn record(&self, done: Done<'_>) {
        let outcome = Outcome::of(done.reply);
        if let Outcome::Rejected(code) | Outcome::Failed(code) = outcome {
            self.total_error_replies.fetch_add(1, Ordering::Relaxed);
            let mut errors = self.errors.lock();
            if let Some(n) = errors.get_mut(code) {
                *n += 1;
            } else if errors.len() < MAX_ERROR_CODES {
                errors.insert(code.to_string(), 1);
            }
        }
        let Some(entry) = done.entry else { return };
        let e = &categories::entries()[entry];
        if e.parent.is_none() && categories::is_container_at(entry) {
            // An unknown subcommand: Redis counts it against no command.
            return;
        }
        let Some(c) = self.commands.get(entry) else { return };
        match outcome {
            Outcome::Rejected(_) => {
                // A refused command did not run: Redis counts it apart from its calls.
                c.rejected.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Outcome::Failed(_) => {
                c.failed.fetch_add(1, Ordering::Relaxed);
            }
            Outcome::Ok => {}
        }
        c.calls.fetch_add(1, Ordering::Relaxed);
        let Some(elapsed) = done.elapsed else { return };
        let micros = elapsed.as_micros() as u64;
        c.usec.fetch_add(micros, Ordering::Relaxed);
        let histogram = c.histogram.get_or_init(|| (0..BUCKETS).map(|_| AtomicU64::new(0)).collect());
        histogram[bucket(elapsed.as_nanos() as u64)].fetch_add(1, Ordering::Relaxed);
        let slower_than = self.params.slower_than_us.load(Ordering::Relaxed);
        if slower_than >= 0 && micros >= slower_than as u64 && !skips_slowlog(entry) {
            self.log_slow(micros, &done);
        }
        let threshold = self.params.latency_threshold_ms.load(Ordering::Relaxed);
        let millis = micros / 1000;
        if threshold > 0 && millis >= threshold {
            let fast = entry < ferrocache_common::command::COMMANDS.len()
                && ferrocache_common::command::COMMANDS[entry].has(Flag::Fast);
            self.sample(if fast { "fast-command" } else { "command" }, millis);
        }
    }

    fn log_slow(&self, micros: u64, done: &Done<'_>) {
        let max_len = self.params.slowlog_max_len.load(Ordering::Relaxed) as usize;
        let (addr, name) = (done.client)();
        let mut log = self.slowlog.lock();
        let id = log.1;
        log.1 += 1;
        log.0.push_front(SlowEntry {
            id,
            at: now_secs(),
            micros,
            args: slowlog_args(done.args),
            addr: addr.to_string(),
            name,
        });
        log.0.truncate(max_len);
    }

    fn sample(&self, event: &'static str, millis: u64) {
        let now = now_secs();
        let mut events = self.events.lock();
        let e = events.entry(event).or_default();
        e.max = e.max.max(millis);
        match e.samples.back_mut() {
            Some((at, worst)) if *at == now => *worst = (*worst).max(millis),
            _ => e.samples.push_back((now, millis)),
        }
        while e.samples.len() > LATENCY_SAMPLES {
            e.samples.pop_front();
        }
    }

    /// CONFIG RESETSTAT: counters, errors and histograms (not the slowlog, as in Redis).
    pub fn reset(&self) {
        self.traffic.reset();
        for c in self.commands.iter() {
            for n in [&c.calls, &c.usec, &c.rejected, &c.failed] {
                n.store(0, Ordering::Relaxed);
            }
            if let Some(h) = c.histogram.get() {
                h.iter().for_each(|b| b.store(0, Ordering::Relaxed));
            }
        }
        self.errors.lock().clear();
        self.total_error_replies.store(0, Ordering::Relaxed);
    }

    /// Entries that have run, with their index, in name order.
    fn used(&self) -> Vec<(usize, &CommandStats)> {
        let entries = categories::entries();
        let mut used: Vec<(usize, &CommandStats)> = self
            .commands
            .iter()
            .enumerate()
            .filter(|(_, c)| c.calls.load(Ordering::Relaxed) + c.rejected.load(Ordering::Relaxed) > 0)
            .collect();
        used.sort_by(|a, b| entries[a.0].name.cmp(&entries[b.0].name));
        used
    }

    /// INFO commandstats.
    pub fn commandstats(&self) -> String {
        let entries = categories::entries();
        let mut s = String::new();
        for (i, c) in self.used() {
            let calls = c.calls.load(Ordering::Relaxed);
            let usec = c.usec.load(Ordering::Relaxed);
            let per_call = if calls > 0 { usec as f64 / calls as f64 } else { 0.0 };
            s.push_str(&format!(
                "cmdstat_{}:calls={calls},usec={usec},usec_per_call={per_call:.2},rejected_calls={},failed_calls={}\r\n",
                entries[i].name,
                c.rejected.load(Ordering::Relaxed),
                c.failed.load(Ordering::Relaxed)
            ));
        }
        s
    }

    /// INFO errorstats.
    pub fn errorstats(&self) -> String {
        self.errors.lock().iter().map(|(code, n)| format!("errorstat_{code}:count={n}\r\n")).collect()
    }

    /// INFO latencystats: p50, p99 and p99.9 of each timed command, in microseconds.
    pub fn latencystats(&self) -> String {
        let entries = categories::entries();
        let mut s = String::new();
        for (i, c) in self.used() {
            let Some(h) = c.histogram.get() else { continue };
            let counts: Vec<u64> = h.iter().map(|b| b.load(Ordering::Relaxed)).collect();
            if counts.iter().all(|&n| n == 0) {
                continue;
            }
            let p = |q: f64| percentile(&counts, q) as f64 / 1000.0;
            s.push_str(&format!(
                "latency_percentiles_usec_{}:p50={:.3},p99={:.3},p99.9={:.3}\r\n",
                entries[i].name,
                p(50.0),
                p(99.0),
                p(99.9)
            ));
        }
        s
    }
}

/// The value (ns) at percentile `q` of a histogram: its bucket's top.
fn percentile(counts: &[u64], q: f64) -> u64 {
    let total: u64 = counts.iter().sum();
    let target = ((q / 100.0 * total as f64).ceil() as u64).max(1);
    let mut seen = 0;
    for (i, &n) in counts.iter().enumerate() {
        seen += n;
        if seen >= target {
            return bucket_top(i);
        }
    }
    0
}

/// Commands flagged `skip_slowlog` (EXEC: Redis logs the commands inside instead).
fn skips_slowlog(entry: usize) -> bool {
    let commands = ferrocache_common::command::COMMANDS;
    let top = categories::entries()[entry].parent.unwrap_or(entry);
    commands.get(top).is_some_and(|c| c.has(Flag::SkipSlowlog))
}

/// A command's arguments as the slowlog keeps them: at most 32, each at most 128 bytes,
/// with credentials redacted (AUTH, HELLO ... AUTH, ACL SETUSER).
/// Whether argument `i` is a credential, which the slowlog and MONITOR never show (AUTH,
/// HELLO ... AUTH, ACL SETUSER's rules).
pub(crate) fn redacted(args: &[Bytes], i: usize) -> bool {
    // Compared in place: the slowlog and MONITOR ask this for every argument they show.
    let is = |j: usize, word: &[u8]| args.get(j).is_some_and(|a| a.eq_ignore_ascii_case(word));
    if is(0, b"auth") {
        i >= 1
    } else if is(0, b"hello") {
        (2..i).any(|j| is(j, b"auth") && i <= j + 2)
    } else if is(0, b"acl") {
        is(1, b"setuser") && i >= 3
    } else {
        false
    }
}

fn slowlog_args(args: &[Bytes]) -> Vec<Bytes> {
    let redacted = |i: usize| redacted(args, i);
    let shown = args.len().min(SLOWLOG_MAX_ARGS);
    let mut out = Vec::with_capacity(shown);
    for (i, a) in args.iter().take(shown).enumerate() {
        if i == SLOWLOG_MAX_ARGS - 1 && args.len() > SLOWLOG_MAX_ARGS {
            out.push(Bytes::from(format!("... ({} more arguments)", args.len() - SLOWLOG_MAX_ARGS + 1)));
            break;
        }
        if redacted(i) {
            out.push(Bytes::from_static(b"(redacted)"));
        } else if a.len() > SLOWLOG_MAX_ARG_BYTES {
            let mut s = a.slice(..SLOWLOG_MAX_ARG_BYTES).to_vec();
            s.extend_from_slice(format!("... ({} more bytes)", a.len() - SLOWLOG_MAX_ARG_BYTES).as_bytes());
            out.push(Bytes::from(s));
        } else {
            out.push(a.clone());
        }
    }
    out
}

fn bulk(s: &str) -> Reply {
    Reply::Bulk(Bytes::copy_from_slice(s.as_bytes()))
}

fn help(lines: &[&str]) -> Reply {
    Reply::Array(lines.iter().map(|l| Reply::Simple((*l).into())).collect())
}

/// What Redis's own parser answers for a subcommand it does not take in this form: the
/// unknown ones and those with the wrong number of arguments for their table entry were
/// refused before (`subcommands::check`), so these are the arity's loose ends (SLOWLOG GET 1 2).
fn wrong_subcommand(command: &str, sub: &Bytes) -> Reply {
    Reply::error(format!(
        "ERR unknown subcommand or wrong number of arguments for '{}'. Try {} HELP.",
        String::from_utf8_lossy(sub),
        command.to_uppercase()
    ))
}

/// SLOWLOG GET [count] | LEN | RESET | HELP.
pub fn slowlog(stats: &GroupStats, args: &[Bytes]) -> Reply {
    const HELP: &[&str] = &[
        "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "GET [<count>]",
        "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
        "    Entries are made of:",
        "    id, timestamp, time in microseconds, arguments array, client IP and port,",
        "    client name",
        "LEN",
        "    Return the length of the slowlog.",
        "RESET",
        "    Reset the slowlog.",
        "HELP",
        "    Print this help.",
    ];
    let sub = args[1].to_ascii_lowercase();
    match (sub.as_slice(), args.len()) {
        (b"help", 2) => help(HELP),
        (b"len", 2) => Reply::Integer(stats.slowlog.lock().0.len() as i64),
        (b"reset", 2) => {
            stats.slowlog.lock().0.clear();
            Reply::ok()
        }
        (b"get", 2 | 3) => {
            let count = match args.get(2) {
                None => 10,
                Some(a) => match ferrocache_common::int::parse_i64(a) {
                    Some(-1) => usize::MAX,
                    Some(n) if n >= 0 => n as usize,
                    _ => return Reply::error("ERR count should be greater than or equal to -1"),
                },
            };
            let log = stats.slowlog.lock();
            Reply::Array(
                log.0
                    .iter()
                    .take(count)
                    .map(|e| {
                        Reply::Array(vec![
                            Reply::Integer(e.id as i64),
                            Reply::Integer(e.at),
                            Reply::Integer(e.micros as i64),
                            Reply::Array(e.args.iter().cloned().map(Reply::Bulk).collect()),
                            bulk(&e.addr),
                            bulk(&e.name),
                        ])
                    })
                    .collect(),
            )
        }
        _ => wrong_subcommand("slowlog", &args[1]),
    }
}

const LATENCY_DISABLED: &str = "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis instance. You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in order to enable it. If we weren't in a deep space mission I'd suggest to take a look at https://redis.io/topics/latency-monitor.\n";

/// LATENCY LATEST | HISTORY event | RESET [event ...] | DOCTOR | GRAPH event |
/// HISTOGRAM [command ...] | HELP.
pub fn latency(stats: &GroupStats, args: &[Bytes], proto: u8) -> Reply {
    const HELP: &[&str] = &[
        "LATENCY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "DOCTOR",
        "    Return a human readable latency analysis report.",
        "GRAPH <event>",
        "    Return an ASCII latency graph for the <event> class.",
        "HISTORY <event>",
        "    Return time-latency samples for the <event> class.",
        "LATEST",
        "    Return the latest latency samples for all events.",
        "RESET [<event> ...]",
        "    Reset latency data of one or more <event> classes.",
        "    (default: reset all data for all event classes)",
        "HISTOGRAM [COMMAND ...]",
        "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
        "    If no commands are specified then all histograms are replied.",
        "HELP",
        "    Prints this help.",
    ];
    let sub = args[1].to_ascii_lowercase();
    let event_name = |a: &Bytes| String::from_utf8_lossy(a).into_owned();
    match (sub.as_slice(), args.len()) {
        (b"help", 2) => help(HELP),
        (b"latest", 2) => {
            let events = stats.events.lock();
            Reply::Array(
                events
                    .iter()
                    .filter_map(|(name, e)| {
                        let &(at, last) = e.samples.back()?;
                        Some(Reply::Array(vec![
                            bulk(name),
                            Reply::Integer(at),
                            Reply::Integer(last as i64),
                            Reply::Integer(e.max as i64),
                        ]))
                    })
                    .collect(),
            )
        }
        (b"history", 3) => {
            let events = stats.events.lock();
            let samples = events.get(event_name(&args[2]).as_str()).map(|e| &e.samples);
            Reply::Array(
                samples
                    .into_iter()
                    .flatten()
                    .map(|&(at, ms)| Reply::Array(vec![Reply::Integer(at), Reply::Integer(ms as i64)]))
                    .collect(),
            )
        }
        (b"reset", _) => {
            let mut events = stats.events.lock();
            if args.len() == 2 {
                let n = events.len();
                events.clear();
                return Reply::Integer(n as i64);
            }
            let names: Vec<String> = args[2..].iter().map(event_name).collect();
            let before = events.len();
            events.retain(|name, _| !names.iter().any(|n| n == name));
            Reply::Integer((before - events.len()) as i64)
        }
        (b"doctor", 2) => Reply::Verbatim(Bytes::from(doctor(stats))),
        (b"graph", 3) => {
            let events = stats.events.lock();
            let name = event_name(&args[2]);
            match events.get(name.as_str()).filter(|e| !e.samples.is_empty()) {
                Some(e) => Reply::Verbatim(Bytes::from(graph(&name, e))),
                None => Reply::error(format!("ERR No samples available for event '{name}'")),
            }
        }
        (b"histogram", _) => histogram(stats, &args[2..], proto),
        _ => wrong_subcommand("latency", &args[1]),
    }
}

/// LATENCY DOCTOR: Redis's opening lines, then each event's spikes.
fn doctor(stats: &GroupStats) -> String {
    if stats.params.latency_threshold_ms.load(Ordering::Relaxed) == 0 {
        return LATENCY_DISABLED.to_string();
    }
    let events = stats.events.lock();
    if events.values().all(|e| e.samples.is_empty()) {
        return "Dave, no latency spike was observed during the lifetime of this Redis instance, not in the slightest bit. I honestly think you ought to sleep tonight.\n".to_string();
    }
    let mut s = String::from(
        "Dave, I have observed latency spikes in this Redis instance. You don't mind talking about it, do you Dave?\n\n",
    );
    for (i, (name, e)) in events.iter().filter(|(_, e)| !e.samples.is_empty()).enumerate() {
        let n = e.samples.len() as f64;
        let avg = e.samples.iter().map(|s| s.1 as f64).sum::<f64>() / n;
        let dev = e.samples.iter().map(|s| (s.1 as f64 - avg).abs()).sum::<f64>() / n;
        let first = e.samples.front().map_or(0, |s| s.0);
        let last = e.samples.back().map_or(0, |s| s.0);
        let period = if e.samples.len() > 1 { (last - first) as f64 / (n - 1.0) } else { 1.0 };
        s.push_str(&format!(
            "{}. {name}: {} latency spikes (average {}ms, mean deviation {}ms, period {period:.2} sec). Worst all time event {}ms.\n",
            i + 1,
            e.samples.len(),
            avg as u64,
            dev as u64,
            e.max
        ));
    }
    s.push_str("\nThe commands behind the spikes are in SLOWLOG GET when slowlog-log-slower-than is at most the latency monitor threshold.\n");
    s
}

/// LATENCY GRAPH: one column per sample, scaled between the lowest and highest, newest
/// on the right (Redis's layout, plain characters).
fn graph(name: &str, e: &Event) -> String {
    let (low, high) = e.samples.iter().fold((u64::MAX, 0), |(lo, hi), s| (lo.min(s.1), hi.max(s.1)));
    let mut s = format!("{name} - high {high} ms, low {low} ms (all time high {} ms)\n", e.max);
    s.push_str(&"-".repeat(80));
    s.push('\n');
    const ROWS: u64 = 4;
    for row in (0..ROWS).rev() {
        let line: String = e
            .samples
            .iter()
            .map(|&(_, ms)| {
                let level = if high == low { ROWS } else { (ms - low) * ROWS / (high - low) };
                if level > row {
                    '#'
                } else if row == 0 {
                    '_'
                } else {
                    ' '
                }
            })
            .collect();
        s.push_str(line.trim_end());
        s.push('\n');
    }
    let now = now_secs();
    let ages: Vec<String> = e.samples.iter().map(|&(at, _)| format!("{}s", now - at)).collect();
    s.push_str(&ages.join(" "));
    s.push('\n');
    s
}

/// LATENCY HISTOGRAM: per command, its calls and the cumulative count at each power of two
/// microseconds (Redis's buckets: 1024 ns and doubling).
fn histogram(stats: &GroupStats, names: &[Bytes], proto: u8) -> Reply {
    let entries = categories::entries();
    let wanted: Vec<usize> = if names.is_empty() {
        stats.used().into_iter().map(|(i, _)| i).collect()
    } else {
        let mut found: Vec<usize> = names
            .iter()
            .filter_map(|n| categories::entry_index(&String::from_utf8_lossy(n).to_ascii_lowercase()))
            .collect();
        found.sort_by(|a, b| entries[*a].name.cmp(&entries[*b].name));
        found.dedup();
        found
    };
    let mut out = Vec::new();
    for i in wanted {
        let c = &stats.commands[i];
        let Some(h) = c.histogram.get() else { continue };
        let counts: Vec<u64> = h.iter().map(|b| b.load(Ordering::Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            continue;
        }
        let mut points = Vec::new();
        let mut previous = 0;
        for k in 0..54u32 {
            let bound = 1024u64 << k;
            // Every bucket wholly below the bound: those of lower powers of two.
            let cumulative: u64 =
                counts.iter().enumerate().filter(|(b, _)| bucket_top(*b) < bound).map(|(_, n)| n).sum();
            if cumulative > previous {
                points.push(Reply::Integer((bound / 1000) as i64));
                points.push(Reply::Integer(cumulative as i64));
            }
            previous = cumulative;
            if cumulative == total {
                break;
            }
        }
        let body = vec![
            bulk("calls"),
            Reply::Integer(c.calls.load(Ordering::Relaxed) as i64),
            bulk("histogram_usec"),
            Reply::Map(points),
        ];
        out.push(bulk(&entries[i].name));
        out.push(if proto >= 3 { Reply::Map(body) } else { Reply::Array(body) });
    }
    Reply::Map(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_values_in_order() {
        assert_eq!(bucket_top(BUCKETS - 1), u64::MAX);
        let tops: Vec<u64> = (0..BUCKETS).map(bucket_top).collect();
        assert!(tops.windows(2).all(|w| w[0] <= w[1]));
        for v in [0u64, 1, 7, 8, 15, 16, 1000, 1023, 1024, 999_999, u64::MAX / 2, u64::MAX] {
            let b = bucket(v);
            assert!(bucket_top(b) >= v, "{v} in {b} tops at {}", bucket_top(b));
            assert!(b == 0 || bucket_top(b - 1) < v || bucket_top(b - 1) == bucket_top(b), "{v}");
        }
        let mut counts = vec![0u64; BUCKETS];
        for us in 1..=100u64 {
            counts[bucket(us * 1000)] += 1;
        }
        let p50 = percentile(&counts, 50.0) as f64 / 1000.0;
        assert!((50.0..57.0).contains(&p50), "{p50}");
    }

    #[test]
    fn slowlog_args_are_trimmed_and_redacted() {
        let many: Vec<Bytes> = (0..40).map(|i| Bytes::from(format!("a{i}"))).collect();
        let shown = slowlog_args(&many);
        assert_eq!(shown.len(), 32);
        assert_eq!(shown[31], Bytes::from("... (9 more arguments)"));
        let long = vec![Bytes::from("SET"), Bytes::from("k"), Bytes::from(vec![b'x'; 130])];
        assert!(slowlog_args(&long)[2].ends_with(b"... (2 more bytes)"));
        let auth = vec![Bytes::from("AUTH"), Bytes::from("user"), Bytes::from("secret")];
        assert_eq!(slowlog_args(&auth)[1..], [Bytes::from("(redacted)"), Bytes::from("(redacted)")]);
    }

    #[test]
    fn errors_are_sorted_into_rejected_and_failed() {
        assert!(matches!(Outcome::of(&Reply::error("NOPERM no")), Outcome::Rejected("NOPERM")));
        let arity = Reply::error("ERR wrong number of arguments for 'get' command");
        assert!(matches!(Outcome::of(&arity), Outcome::Rejected("ERR")));
        assert!(matches!(Outcome::of(&Reply::error("WRONGTYPE x")), Outcome::Failed("WRONGTYPE")));
        assert!(matches!(Outcome::of(&Reply::ok()), Outcome::Ok));
        let in_script =
            Reply::error("OOM command not allowed when used memory > 'maxmemory'. script: 1f, on @user_script:1.");
        assert!(matches!(Outcome::of(&in_script), Outcome::Failed("OOM")), "the script ran");
    }
}
