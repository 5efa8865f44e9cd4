//! The Redis configuration parameters a replication group carries (ElastiCache's cache
//! parameters): their defaults, how values are checked and normalized, and Redis's error
//! lines for bad ones. The gateway checks CONFIG SET with these before the coordinator
//! stores the change; datanodes read the normalized values.

use std::collections::BTreeMap;

/// What kind of value a parameter takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Bytes, written as Redis writes memory (`100mb`, `1gb`, `4096`); stored as bytes.
    Memory,
    /// Bytes, or a percentage of maxmemory (`10%`, at most 100); stored as bytes or `N%`.
    MemoryOrPercent,
    /// An integer within bounds.
    Int(i64, i64),
    /// One of a fixed set of words.
    Enum(&'static [&'static str]),
    /// Keyspace notification classes (`KEA`, `Ex`, ...).
    NotifyFlags,
    /// Shown by CONFIG GET, not settable.
    Immutable,
    /// `client-output-buffer-limit`: `<class> <hard> <soft> <soft-seconds>` for some of the
    /// classes normal, replica (slave) and pubsub; stored whole.
    OutputLimits,
    /// `save`: pairs of `<seconds> <changes>`, or empty. Kept and shown for clients and
    /// tools that set it (test suites turn snapshots off with `save ""`); durability comes
    /// from the group's log and AppendFsync, so it schedules nothing.
    SavePoints,
}

#[derive(Debug, Clone, Copy)]
pub struct Parameter {
    pub name: &'static str,
    pub default: &'static str,
    pub kind: Kind,
}

pub const EVICTION_POLICIES: &[&str] = &[
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "noeviction",
];

const fn p(name: &'static str, default: &'static str, kind: Kind) -> Parameter {
    Parameter { name, default, kind }
}

/// Redis's defaults: no limit for normal clients, 256 MB / 64 MB for 60 s for replicas,
/// 32 MB / 8 MB for 60 s for pub/sub clients.
pub const DEFAULT_OUTPUT_LIMITS: &str = "normal 0 0 0 replica 268435456 67108864 60 pubsub 33554432 8388608 60";

/// One class's output buffer limits (0 = none).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutputLimit {
    pub hard: u64,
    pub soft: u64,
    pub soft_seconds: u64,
}

impl OutputLimit {
    pub fn is_limited(&self) -> bool {
        self.hard > 0 || self.soft > 0
    }
}

const OUTPUT_CLASSES: [&str; 3] = ["normal", "replica", "pubsub"];

/// Parses `<class> <hard> <soft> <seconds>`... (some classes); Redis's errors.
fn parse_output_limits(value: &str) -> Result<Vec<(&'static str, OutputLimit)>, String> {
    let words: Vec<&str> = value.split_whitespace().collect();
    if words.is_empty() || !words.len().is_multiple_of(4) {
        return Err("Wrong number of arguments in buffer limit configuration.".into());
    }
    let mut out = Vec::new();
    for w in words.chunks(4) {
        let class = match w[0].to_ascii_lowercase().as_str() {
            "normal" => "normal",
            "replica" | "slave" => "replica",
            "pubsub" => "pubsub",
            _ => return Err("Invalid client class specified in buffer limit configuration.".into()),
        };
        let (hard, soft) = (parse_memory(w[1]), parse_memory(w[2]));
        let seconds = w[3].parse::<u64>().ok();
        let (Some(hard), Some(soft), Some(soft_seconds)) = (hard, soft, seconds) else {
            return Err("Error in hard, soft or soft_seconds setting in buffer limit configuration.".into());
        };
        out.push((class, OutputLimit { hard, soft, soft_seconds }));
    }
    Ok(out)
}

/// `class`'s limits in a stored `client-output-buffer-limit` value.
pub fn output_limit(value: &str, class: &str) -> OutputLimit {
    let find = |v: &str| parse_output_limits(v).ok()?.into_iter().rev().find(|(c, _)| *c == class).map(|(_, l)| l);
    find(value).or_else(|| find(DEFAULT_OUTPUT_LIMITS)).unwrap_or_default()
}

/// The whole value after setting some classes (CONFIG SET changes only the classes given).
fn merge_output_limits(current: &str, update: &str) -> String {
    OUTPUT_CLASSES
        .iter()
        .map(|class| {
            let l = parse_output_limits(update)
                .ok()
                .and_then(|u| u.into_iter().rev().find(|(c, _)| c == class).map(|(_, l)| l))
                .unwrap_or_else(|| output_limit(current, class));
            format!("{class} {} {} {}", l.hard, l.soft, l.soft_seconds)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// [`normalize`], for a group whose parameters are `current`: the value to store (a partial
/// `client-output-buffer-limit` is completed from the current one).
pub fn normalize_against(
    current: &BTreeMap<String, String>,
    name: &str,
    value: &str,
) -> Result<(&'static str, String), ParameterError> {
    let (name, normalized) = normalize(name, value)?;
    if name == "client-output-buffer-limit" {
        return Ok((name, merge_output_limits(self::value(current, name), &normalized)));
    }
    Ok((name, normalized))
}

/// Every parameter, sorted by name.
pub static PARAMETERS: &[Parameter] = &[
    p("activedefrag", "no", Kind::Enum(&["yes", "no"])),
    // Always on (the log is how a node keeps its data): setting it to `yes` again, as tools
    // that write back what CONFIG GET showed do, changes nothing.
    p("appendonly", "yes", Kind::Enum(&["yes"])),
    p("busy-reply-threshold", "5000", Kind::Int(0, i64::MAX)),
    p("client-output-buffer-limit", DEFAULT_OUTPUT_LIMITS, Kind::OutputLimits),
    p("cluster-enabled", "no", Kind::Immutable),
    p("daemonize", "no", Kind::Immutable),
    p("databases", "16", Kind::Immutable),
    p("hash-max-listpack-entries", "128", Kind::Int(0, i64::MAX)),
    p("hash-max-listpack-value", "64", Kind::Int(0, i64::MAX)),
    p("hll-sparse-max-bytes", "3000", Kind::Memory),
    p("latency-monitor-threshold", "0", Kind::Int(0, i64::MAX)),
    p("lazyfree-lazy-eviction", "no", Kind::Enum(&["yes", "no"])),
    p("lfu-decay-time", "1", Kind::Int(0, i64::MAX)),
    p("lfu-log-factor", "10", Kind::Int(0, i64::MAX)),
    p("list-compress-depth", "0", Kind::Int(0, i32::MAX as i64)),
    p("list-max-listpack-size", "-2", Kind::Int(i64::MIN, i64::MAX)),
    p("maxmemory", "0", Kind::Memory),
    // Memory all of a group's clients may hold on one gateway before the largest are closed.
    p("maxmemory-clients", "0", Kind::MemoryOrPercent),
    p("maxmemory-eviction-tenacity", "10", Kind::Int(0, 100)),
    p("maxmemory-policy", "noeviction", Kind::Enum(EVICTION_POLICIES)),
    p("maxmemory-samples", "5", Kind::Int(1, 64)),
    p("notify-keyspace-events", "", Kind::NotifyFlags),
    p("proto-max-bulk-len", "536870912", Kind::Memory),
    // Each datanode's own `--repl-backlog-bytes` (64 MB by default) until one is set here.
    p("repl-backlog-size", "67108864", Kind::Memory),
    // A client sees the primary endpoint as a primary: it replicates from nobody.
    p("replicaof", "", Kind::Immutable),
    p("save", "", Kind::SavePoints),
    p("set-max-intset-entries", "512", Kind::Int(0, i64::MAX)),
    p("set-max-listpack-entries", "128", Kind::Int(0, i64::MAX)),
    p("set-max-listpack-value", "64", Kind::Int(0, i64::MAX)),
    p("slowlog-log-slower-than", "10000", Kind::Int(-1, i64::MAX)),
    p("slowlog-max-len", "128", Kind::Int(0, i64::MAX)),
    p("stream-node-max-bytes", "4096", Kind::Memory),
    p("stream-node-max-entries", "100", Kind::Int(0, i64::MAX)),
    p("timeout", "0", Kind::Int(0, i32::MAX as i64)),
    // Keys each gateway's CLIENT TRACKING table remembers for a group (0: no bound).
    p("tracking-table-max-keys", "1000000", Kind::Int(0, i64::MAX)),
    p("zset-max-listpack-entries", "128", Kind::Int(0, i64::MAX)),
    p("zset-max-listpack-value", "64", Kind::Int(0, i64::MAX)),
];

/// Other names Redis accepts for a parameter (alias, parameter); CONFIG GET shows both.
pub const ALIASES: &[(&str, &str)] = &[
    ("hash-max-ziplist-entries", "hash-max-listpack-entries"),
    ("hash-max-ziplist-value", "hash-max-listpack-value"),
    ("list-max-ziplist-size", "list-max-listpack-size"),
    ("lua-time-limit", "busy-reply-threshold"),
    ("slaveof", "replicaof"),
    ("zset-max-ziplist-entries", "zset-max-listpack-entries"),
    ("zset-max-ziplist-value", "zset-max-listpack-value"),
];

pub fn lookup(name: &str) -> Option<&'static Parameter> {
    let lower = name.to_ascii_lowercase();
    let name = ALIASES.iter().find(|(alias, _)| *alias == lower).map_or(lower.as_str(), |(_, p)| p);
    PARAMETERS.iter().find(|p| p.name == name)
}

/// Why a CONFIG SET value was refused; Display is Redis's error line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParameterError {
    #[error("ERR Unknown option or number of arguments for CONFIG SET - '{0}'")]
    Unknown(String),
    #[error("ERR CONFIG SET failed (possibly related to argument '{name}') - {reason}")]
    Invalid { name: String, reason: String },
}

fn invalid(name: &str, reason: impl Into<String>) -> ParameterError {
    ParameterError::Invalid { name: name.to_string(), reason: reason.into() }
}

/// Redis's memory units: `b`, `k`/`kb`, `m`/`mb`, `g`/`gb` (k = 1000, kb = 1024).
pub fn parse_memory(text: &str) -> Option<u64> {
    let lower = text.to_ascii_lowercase();
    let digits_end = lower.find(|c: char| !c.is_ascii_digit() && c != '-').unwrap_or(lower.len());
    let (num, unit) = lower.split_at(digits_end);
    let n: i64 = num.parse().ok()?;
    let mul: i64 = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    u64::try_from(n.checked_mul(mul)?).ok()
}

/// Keyspace notification classes as Redis keeps them (bits), from the CONFIG text.
pub mod notify {
    pub const KEYSPACE: u32 = 1 << 0; // K
    pub const KEYEVENT: u32 = 1 << 1; // E
    pub const GENERIC: u32 = 1 << 2; // g
    pub const STRING: u32 = 1 << 3; // $
    pub const LIST: u32 = 1 << 4; // l
    pub const SET: u32 = 1 << 5; // s
    pub const HASH: u32 = 1 << 6; // h
    pub const ZSET: u32 = 1 << 7; // z
    pub const EXPIRED: u32 = 1 << 8; // x
    pub const EVICTED: u32 = 1 << 9; // e
    pub const STREAM: u32 = 1 << 10; // t
    pub const KEY_MISS: u32 = 1 << 11; // m
    pub const LOADED: u32 = 1 << 12; // (module only)
    pub const MODULE: u32 = 1 << 13; // d
    pub const NEW: u32 = 1 << 14; // n
    /// `A`: every class but m and n.
    pub const ALL: u32 = GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;

    /// Parses Redis's flag string; None for an unknown character.
    pub fn parse(text: &str) -> Option<u32> {
        let mut flags = 0;
        for c in text.chars() {
            flags |= match c {
                'A' => ALL,
                'g' => GENERIC,
                '$' => STRING,
                'l' => LIST,
                's' => SET,
                'h' => HASH,
                'z' => ZSET,
                'x' => EXPIRED,
                'e' => EVICTED,
                'K' => KEYSPACE,
                'E' => KEYEVENT,
                't' => STREAM,
                'm' => KEY_MISS,
                'd' => MODULE,
                'n' => NEW,
                _ => return None,
            };
        }
        Some(flags)
    }

    /// Redis's canonical form (what CONFIG GET shows).
    pub fn format(flags: u32) -> String {
        let mut out = String::new();
        if flags & ALL == ALL {
            out.push('A');
        } else {
            for (bit, c) in [
                (GENERIC, 'g'),
                (STRING, '$'),
                (LIST, 'l'),
                (SET, 's'),
                (HASH, 'h'),
                (ZSET, 'z'),
                (EXPIRED, 'x'),
                (EVICTED, 'e'),
                (STREAM, 't'),
                (MODULE, 'd'),
            ] {
                if flags & bit != 0 {
                    out.push(c);
                }
            }
        }
        for (bit, c) in [(KEYSPACE, 'K'), (KEYEVENT, 'E'), (KEY_MISS, 'm'), (NEW, 'n')] {
            if flags & bit != 0 {
                out.push(c);
            }
        }
        out
    }
}

/// Checks a CONFIG SET value and returns it normalized (memory as bytes, words lowercase,
/// notification flags in Redis's canonical order).
pub fn normalize(name: &str, value: &str) -> Result<(&'static str, String), ParameterError> {
    let param = lookup(name).ok_or_else(|| ParameterError::Unknown(name.to_string()))?;
    let value = match param.kind {
        Kind::Immutable => return Err(invalid(param.name, "can't set immutable config")),
        Kind::Memory => {
            parse_memory(value).ok_or_else(|| invalid(param.name, "argument must be a memory value"))?.to_string()
        }
        Kind::MemoryOrPercent => match value.strip_suffix('%') {
            Some(pct) if !pct.is_empty() => {
                let pct: u64 =
                    pct.parse().map_err(|_| invalid(param.name, "argument must be a memory or percent value"))?;
                if pct > 100 {
                    return Err(invalid(param.name, "percentage argument must be less or equal to 100"));
                }
                format!("{pct}%")
            }
            _ => parse_memory(value)
                .ok_or_else(|| invalid(param.name, "argument must be a memory or percent value"))?
                .to_string(),
        },
        Kind::Int(min, max) => {
            let n: i64 =
                value.parse().map_err(|_| invalid(param.name, "argument couldn't be parsed into an integer"))?;
            if n < min || n > max {
                return Err(invalid(param.name, format!("argument must be between {min} and {max} inclusive")));
            }
            n.to_string()
        }
        Kind::Enum(words) => {
            let lower = value.to_ascii_lowercase();
            if !words.contains(&lower.as_str()) {
                return Err(invalid(
                    param.name,
                    "argument(s) must be one of the following: ".to_string() + &words.join(", "),
                ));
            }
            lower
        }
        Kind::OutputLimits => {
            let limits = parse_output_limits(value).map_err(|e| invalid(param.name, e))?;
            limits
                .iter()
                .map(|(c, l)| format!("{c} {} {} {}", l.hard, l.soft, l.soft_seconds))
                .collect::<Vec<_>>()
                .join(" ")
        }
        Kind::SavePoints => {
            let words: Vec<&str> = value.split_whitespace().collect();
            let valid = words.len().is_multiple_of(2) && words.iter().all(|w| w.parse::<u32>().is_ok());
            if !valid {
                return Err(invalid(param.name, "Invalid save parameters"));
            }
            words.iter().map(|w| w.parse::<u32>().unwrap_or(0).to_string()).collect::<Vec<_>>().join(" ")
        }
        Kind::NotifyFlags => notify::format(
            notify::parse(value)
                .ok_or_else(|| invalid(param.name, "Invalid event class character. Use 'Ag$shzxeKEtmdn'."))?,
        ),
    };
    Ok((param.name, value))
}

/// A group's value for `name`: its own setting, else the default.
pub fn value<'a>(set: &'a BTreeMap<String, String>, name: &str) -> &'a str {
    match set.get(name) {
        Some(v) => v,
        None => lookup(name).map_or("", |p| p.default),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted() {
        for pair in PARAMETERS.windows(2) {
            assert!(pair[0].name < pair[1].name, "{}", pair[1].name);
        }
    }

    #[test]
    fn output_limits_merge_per_class() {
        let current = BTreeMap::new();
        let (_, v) = normalize_against(&current, "client-output-buffer-limit", "pubsub 64mb 16mb 90").unwrap();
        assert_eq!(v, "normal 0 0 0 replica 268435456 67108864 60 pubsub 67108864 16777216 90");
        let current = BTreeMap::from([("client-output-buffer-limit".to_string(), v)]);
        let (_, v) = normalize_against(&current, "client-output-buffer-limit", "normal 1mb 512kb 10").unwrap();
        assert_eq!(v, "normal 1048576 524288 10 replica 268435456 67108864 60 pubsub 67108864 16777216 90");
        assert_eq!(output_limit(&v, "normal"), OutputLimit { hard: 1 << 20, soft: 512 << 10, soft_seconds: 10 });
        assert_eq!(output_limit("", "pubsub").hard, 32 << 20);
        for bad in ["normal 1 2", "bogus 1 2 3", "normal x 2 3", "pubsub 1 2 -3"] {
            assert!(normalize("client-output-buffer-limit", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn values_are_checked_and_normalized() {
        assert_eq!(normalize("MAXMEMORY", "100mb"), Ok(("maxmemory", (100u64 << 20).to_string())));
        assert_eq!(normalize("maxmemory", "1k"), Ok(("maxmemory", "1000".into())));
        assert_eq!(normalize("LUA-TIME-LIMIT", "100"), Ok(("busy-reply-threshold", "100".into())));
        assert_eq!(normalize("maxmemory-policy", "ALLKEYS-LRU"), Ok(("maxmemory-policy", "allkeys-lru".into())));
        assert_eq!(normalize("notify-keyspace-events", "KEA"), Ok(("notify-keyspace-events", "AKE".into())));
        assert_eq!(normalize("notify-keyspace-events", "Egx"), Ok(("notify-keyspace-events", "gxE".into())));
        assert_eq!(
            normalize("maxmemory", "lots").unwrap_err().to_string(),
            "ERR CONFIG SET failed (possibly related to argument 'maxmemory') - argument must be a memory value"
        );
        assert_eq!(
            normalize("nope", "1").unwrap_err().to_string(),
            "ERR Unknown option or number of arguments for CONFIG SET - 'nope'"
        );
        assert!(normalize("maxmemory-samples", "0").is_err());
        assert_eq!(normalize("maxmemory-clients", "10%").unwrap().1, "10%");
        assert_eq!(normalize("maxmemory-clients", "1mb").unwrap().1, "1048576");
        assert_eq!(
            normalize("maxmemory-clients", "200%").unwrap_err().to_string(),
            "ERR CONFIG SET failed (possibly related to argument 'maxmemory-clients') - percentage argument must be less or equal to 100"
        );
        for bad in ["%", "-5%", "x%", "lots"] {
            assert!(normalize("maxmemory-clients", bad).is_err(), "{bad}");
        }
        assert!(normalize("databases", "16").unwrap_err().to_string().contains("can't set immutable config"));
        assert_eq!(normalize("save", "").unwrap().1, "");
        assert_eq!(normalize("save", " 3600 1  300 100 ").unwrap().1, "3600 1 300 100");
        for bad in ["3600", "a 1", "-1 5"] {
            assert!(normalize("save", bad).unwrap_err().to_string().contains("Invalid save parameters"), "{bad}");
        }
    }
}
