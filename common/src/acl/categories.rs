//! ACL categories (`+@read`, `-@dangerous`, ...) and the entries rules grant: every command
//! of the command table, and for container commands (CLIENT, CONFIG, ...) each subcommand,
//! which Redis 7 categorizes on its own (CLIENT SETNAME is `@connection`, CLIENT KILL is
//! `@admin @dangerous`).

use std::sync::OnceLock;

use crate::command::{CommandSpec, COMMANDS};

/// Redis 7.2's categories, in ACL CAT's order.
pub const CATEGORIES: &[&str] = &[
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

/// One thing a command rule can allow: a command, or a container's subcommand.
#[derive(Debug, Clone)]
pub struct Entry {
    /// `get`, or `client|setname`.
    pub name: String,
    /// The container's index for a subcommand.
    pub parent: Option<usize>,
    pub categories: Vec<&'static str>,
}

const ADMIN: &[&str] = &["admin", "slow", "dangerous"];

/// Subcommands of container commands, with their categories (Redis 7.2's).
fn subcommands(container: &str) -> Vec<(&'static str, &'static [&'static str])> {
    const CONN: &[&str] = &["slow", "connection"];
    const CONN_ADMIN: &[&str] = &["admin", "slow", "dangerous", "connection"];
    const SLOW: &[&str] = &["slow"];
    const KEY_READ: &[&str] = &["keyspace", "read", "slow"];
    const PUBSUB: &[&str] = &["pubsub", "slow"];
    const SCRIPTING: &[&str] = &["slow", "scripting"];
    match container {
        "client" => vec![
            ("caching", CONN),
            ("getname", CONN),
            ("getredir", CONN),
            ("help", CONN),
            ("id", CONN),
            ("info", CONN),
            ("kill", CONN_ADMIN),
            ("list", CONN_ADMIN),
            ("no-evict", CONN_ADMIN),
            ("no-touch", CONN),
            ("pause", CONN_ADMIN),
            ("reply", CONN),
            ("setinfo", CONN),
            ("setname", CONN),
            ("tracking", CONN),
            ("trackinginfo", CONN),
            ("unblock", CONN_ADMIN),
            ("unpause", CONN_ADMIN),
        ],
        "config" => vec![("get", ADMIN), ("help", SLOW), ("resetstat", ADMIN), ("rewrite", ADMIN), ("set", ADMIN)],
        "cluster" => vec![
            ("addslots", ADMIN),
            ("addslotsrange", ADMIN),
            ("countkeysinslot", SLOW),
            ("delslots", ADMIN),
            ("delslotsrange", ADMIN),
            ("failover", ADMIN),
            ("forget", ADMIN),
            ("getkeysinslot", SLOW),
            ("help", SLOW),
            ("info", SLOW),
            ("keyslot", SLOW),
            ("links", SLOW),
            ("meet", ADMIN),
            ("myid", SLOW),
            ("myshardid", SLOW),
            ("nodes", SLOW),
            ("replicas", ADMIN),
            ("replicate", ADMIN),
            ("reset", ADMIN),
            ("setslot", ADMIN),
            ("shards", SLOW),
            ("slots", SLOW),
        ],
        "command" => ["count", "docs", "getkeys", "getkeysandflags", "help", "info", "list"]
            .into_iter()
            .map(|s| (s, CONN))
            .collect(),
        "object" => vec![
            ("encoding", KEY_READ),
            ("freq", KEY_READ),
            ("help", &["keyspace", "slow"]),
            ("idletime", KEY_READ),
            ("refcount", KEY_READ),
        ],
        "memory" => vec![
            ("doctor", SLOW),
            ("help", SLOW),
            ("malloc-stats", SLOW),
            ("purge", SLOW),
            ("stats", SLOW),
            ("usage", &["read", "slow"]),
        ],
        "pubsub" => ["channels", "help", "numpat", "numsub", "shardchannels", "shardnumsub"]
            .into_iter()
            .map(|s| (s, if s == "help" { SLOW } else { PUBSUB }))
            .collect(),
        "script" => ["exists", "flush", "help", "kill", "load"].into_iter().map(|s| (s, SCRIPTING)).collect(),
        "function" => vec![
            ("delete", &["write", "slow", "scripting"]),
            ("dump", &["slow", "scripting"]),
            ("flush", &["write", "slow", "dangerous", "scripting"]),
            ("help", SCRIPTING),
            ("kill", &["slow", "scripting"]),
            ("list", &["slow", "scripting"]),
            ("load", &["write", "slow", "scripting"]),
            ("restore", &["write", "slow", "dangerous", "scripting"]),
            ("stats", &["slow", "scripting"]),
        ],
        "xgroup" => vec![
            ("create", &["write", "stream", "slow"]),
            ("createconsumer", &["write", "stream", "slow"]),
            ("delconsumer", &["write", "stream", "slow"]),
            ("destroy", &["write", "stream", "slow"]),
            ("help", &["stream", "slow"]),
            ("setid", &["write", "stream", "slow"]),
        ],
        "xinfo" => vec![
            ("consumers", &["read", "stream", "slow"]),
            ("groups", &["read", "stream", "slow"]),
            ("help", &["stream", "slow"]),
            ("stream", &["read", "stream", "slow"]),
        ],
        "slowlog" => vec![("get", ADMIN), ("help", SLOW), ("len", ADMIN), ("reset", ADMIN)],
        "latency" => vec![
            ("doctor", ADMIN),
            ("graph", ADMIN),
            ("help", SLOW),
            ("histogram", ADMIN),
            ("history", ADMIN),
            ("latest", ADMIN),
            ("reset", ADMIN),
        ],
        "module" => vec![("help", SLOW), ("list", ADMIN), ("load", ADMIN), ("loadex", ADMIN), ("unload", ADMIN)],
        "acl" => vec![
            ("cat", SLOW),
            ("deluser", ADMIN),
            ("dryrun", ADMIN),
            ("genpass", SLOW),
            ("getuser", ADMIN),
            ("help", SLOW),
            ("list", ADMIN),
            ("load", ADMIN),
            ("log", ADMIN),
            ("save", ADMIN),
            ("setuser", ADMIN),
            ("users", ADMIN),
            ("whoami", SLOW),
        ],
        _ => vec![],
    }
}

/// A top-level command's categories: implied by its flags (as Redis 7 does) plus those its
/// group and name carry.
fn command_categories(c: &CommandSpec) -> Vec<&'static str> {
    let mut cats = Vec::new();
    let has = |f: &str| c.flags.contains(&f);
    let by_group = match c.group {
        "string" => Some("string"),
        "list" => Some("list"),
        "set" => Some("set"),
        "sorted-set" => Some("sortedset"),
        "hash" => Some("hash"),
        "bitmap" => Some("bitmap"),
        "hyperloglog" => Some("hyperloglog"),
        "geo" => Some("geo"),
        "stream" => Some("stream"),
        "generic" if !matches!(c.name, "wait" | "waitaof" | "sort" | "sort_ro") => Some("keyspace"),
        "transactions" => Some("transaction"),
        "connection" => Some("connection"),
        "pubsub" => Some("pubsub"),
        "scripting" => Some("scripting"),
        _ => None,
    };
    cats.extend(by_group);
    if matches!(c.name, "sort" | "sort_ro") {
        cats.extend(["set", "sortedset", "list"]);
    }
    if matches!(c.name, "dbsize" | "flushall" | "flushdb" | "restore-asking" | "swapdb") {
        cats.push("keyspace");
    }
    if matches!(c.name, "command" | "asking" | "readonly" | "readwrite" | "wait" | "waitaof") {
        cats.push("connection");
    }
    if has("write") {
        cats.push("write");
    }
    if has("readonly") && c.group != "scripting" {
        cats.push("read");
    }
    if has("admin") || c.name == "lastsave" {
        cats.extend(["admin", "dangerous"]);
    }
    if matches!(
        c.name,
        "flushall"
            | "flushdb"
            | "keys"
            | "info"
            | "restore"
            | "restore-asking"
            | "migrate"
            | "sort"
            | "sort_ro"
            | "swapdb"
    ) {
        cats.push("dangerous");
    }
    if has("pubsub") {
        cats.push("pubsub");
    }
    cats.push(if has("fast") { "fast" } else { "slow" });
    if has("blocking") {
        cats.push("blocking");
    }
    let mut unique = Vec::with_capacity(cats.len());
    for c in cats {
        if !unique.contains(&c) {
            unique.push(c);
        }
    }
    unique
}

/// Every entry: the command table's commands in order, then the subcommands.
pub fn entries() -> &'static [Entry] {
    static ENTRIES: OnceLock<Vec<Entry>> = OnceLock::new();
    ENTRIES.get_or_init(|| {
        let mut out: Vec<Entry> = COMMANDS
            .iter()
            .map(|c| Entry { name: c.name.to_string(), parent: None, categories: command_categories(c) })
            .collect();
        for (i, c) in COMMANDS.iter().enumerate() {
            for (sub, cats) in subcommands(c.name) {
                out.push(Entry { name: format!("{}|{sub}", c.name), parent: Some(i), categories: cats.to_vec() });
            }
        }
        out
    })
}

/// The entry index of a command (`get`) or subcommand (`client|kill`), lowercase.
pub fn entry_index(name: &str) -> Option<usize> {
    if let Some(i) = COMMANDS.iter().position(|c| c.name == name) {
        return Some(i);
    }
    let base = COMMANDS.len();
    entries()[base..].iter().position(|e| e.name == name).map(|i| base + i)
}

/// The subcommand entry a container command's call resolves to (`client setname x` →
/// `client|setname`); the command's own entry otherwise.
/// Runs for every command (statistics, ACL checks): no allocation, no name scan.
pub fn resolve(command_index: usize, args: &[impl AsRef<[u8]>]) -> usize {
    if !is_container_at(command_index) {
        return command_index;
    }
    let Some(sub) = args.get(1).map(|a| a.as_ref()) else { return command_index };
    let prefix = COMMANDS[command_index].name.len() + 1;
    let base = COMMANDS.len();
    entries()[base..]
        .iter()
        .position(|e| e.parent == Some(command_index) && e.name.as_bytes()[prefix..].eq_ignore_ascii_case(sub))
        .map_or(command_index, |i| base + i)
}

/// Whether the command at `command_index` in [`COMMANDS`] is a container command.
pub fn is_container_at(command_index: usize) -> bool {
    static CONTAINERS: OnceLock<Vec<bool>> = OnceLock::new();
    let containers = CONTAINERS.get_or_init(|| COMMANDS.iter().map(|c| is_container(c.name)).collect());
    containers.get(command_index).copied().unwrap_or(false)
}

/// Whether `entry` belongs to `category`.
pub fn in_category(entry: &Entry, category: &str) -> bool {
    entry.categories.contains(&category)
}

/// Whether `name` is a container command (its subcommands are entries of their own).
pub fn is_container(name: &str) -> bool {
    !subcommands(name).is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cats(name: &str) -> Vec<&'static str> {
        entries()[entry_index(name).unwrap()].categories.clone()
    }

    #[test]
    fn a_call_resolves_to_its_subcommand() {
        let client = crate::command::index(b"client").unwrap();
        let get = crate::command::index(b"get").unwrap();
        assert_eq!(resolve(client, &["CLIENT", "SetName", "x"]), entry_index("client|setname").unwrap());
        assert_eq!(resolve(client, &["client", "nosuch"]), client);
        assert_eq!(resolve(client, &["client"]), client);
        assert_eq!(resolve(get, &["get", "k"]), get);
        assert!(is_container_at(client) && !is_container_at(get));
    }

    #[test]
    fn categories_follow_redis() {
        assert_eq!(cats("get"), vec!["string", "read", "fast"]);
        assert_eq!(cats("set"), vec!["string", "write", "slow"]);
        assert_eq!(cats("flushall"), vec!["keyspace", "write", "dangerous", "slow"]);
        assert!(cats("blpop").contains(&"blocking"));
        assert!(cats("client|kill").contains(&"dangerous"));
        assert!(!cats("client|setname").contains(&"dangerous"));
        assert_eq!(cats("del"), vec!["keyspace", "write", "slow"]);
        for e in entries() {
            for c in &e.categories {
                assert!(CATEGORIES.contains(c), "{} has unknown category {c}", e.name);
            }
        }
    }

    #[test]
    fn containers_resolve_to_subcommands() {
        let client = entry_index("client").unwrap();
        let kill = entry_index("client|kill").unwrap();
        assert_eq!(resolve(client, &["client", "KILL", "x"]), kill);
        assert_eq!(resolve(client, &["client", "nosuch"]), client);
        let get = entry_index("get").unwrap();
        assert_eq!(resolve(get, &["get", "k"]), get);
    }
}
