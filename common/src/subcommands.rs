//! Container commands' subcommands as COMMAND INFO lists them (`config|get`, ...): Redis
//! 7.2's arity, flags and key positions, taken from redis-server's own COMMAND output. The
//! ACL categories come from acl/categories.rs, which also says which subcommands are served.

/// One subcommand, as the tenth element of its container's COMMAND INFO entry shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubcommandSpec {
    /// `container|subcommand`, lowercase.
    pub name: &'static str,
    pub arity: i32,
    pub flags: &'static [&'static str],
    pub first_key: i32,
    pub last_key: i32,
    pub step: i32,
}

macro_rules! sub {
    ($name:literal, $arity:expr, [$($flag:literal),*], $fk:expr, $lk:expr, $st:expr) => {
        SubcommandSpec { name: $name, arity: $arity, flags: &[$($flag),*], first_key: $fk, last_key: $lk, step: $st }
    };
}

/// Every subcommand, sorted by name.
#[rustfmt::skip]
pub static SUBCOMMANDS: &[SubcommandSpec] = &[
    sub!("acl|cat", -2, ["noscript", "loading", "stale"], 0, 0, 0),
    sub!("acl|deluser", -3, ["admin", "noscript", "loading", "stale"], 0, 0, 0),
    sub!("acl|dryrun", -4, ["admin", "noscript", "loading", "stale"], 0, 0, 0),
    sub!("acl|genpass", -2, ["noscript", "loading", "stale"], 0, 0, 0),
    sub!("acl|getuser", 3, ["admin", "noscript", "loading", "stale"], 0, 0, 0),
    sub!("acl|help", 2, ["loading", "stale"], 0, 0, 0),
    sub!("acl|list", 2, ["admin", "noscript", "loading", "stale"], 0, 0, 0),
    sub!("acl|load", 2, ["admin", "noscript", "loading", "stale"], 0, 0, 0),
    sub!("acl|log", -2, ["admin", "noscript", "loading", "stale"], 0, 0, 0),
    sub!("acl|save", 2, ["admin", "noscript", "loading", "stale"], 0, 0, 0),
    sub!("acl|setuser", -3, ["admin", "noscript", "loading", "stale"], 0, 0, 0),
    sub!("acl|users", 2, ["admin", "noscript", "loading", "stale"], 0, 0, 0),
    sub!("acl|whoami", 2, ["noscript", "loading", "stale"], 0, 0, 0),
    sub!("client|caching", 3, ["noscript", "loading", "stale"], 0, 0, 0),
    sub!("client|getname", 2, ["noscript", "loading", "stale"], 0, 0, 0),
    sub!("client|getredir", 2, ["noscript", "loading", "stale"], 0, 0, 0),
    sub!("client|help", 2, ["loading", "stale"], 0, 0, 0),
    sub!("client|id", 2, ["noscript", "loading", "stale"], 0, 0, 0),
    sub!("client|info", 2, ["noscript", "loading", "stale"], 0, 0, 0),
    sub!("client|kill", -3, ["admin", "noscript", "loading", "stale"], 0, 0, 0),
    sub!("client|list", -2, ["admin", "noscript", "loading", "stale"], 0, 0, 0),
    sub!("client|no-evict", 3, ["admin", "noscript", "loading", "stale"], 0, 0, 0),
    sub!("client|no-touch", 3, ["noscript", "loading", "stale"], 0, 0, 0),
    sub!("client|pause", -3, ["admin", "noscript", "loading", "stale"], 0, 0, 0),
    sub!("client|reply", 3, ["noscript", "loading", "stale"], 0, 0, 0),
    sub!("client|setinfo", -4, ["noscript", "loading", "stale"], 0, 0, 0),
    sub!("client|setname", 3, ["noscript", "loading", "stale"], 0, 0, 0),
    sub!("client|tracking", -3, ["noscript", "loading", "stale"], 0, 0, 0),
    sub!("client|trackinginfo", 2, ["noscript", "loading", "stale"], 0, 0, 0),
    sub!("client|unblock", -3, ["admin", "noscript", "loading", "stale"], 0, 0, 0),
    sub!("client|unpause", 2, ["admin", "noscript", "loading", "stale"], 0, 0, 0),
    sub!("cluster|addslots", -3, ["admin", "stale", "no_async_loading"], 0, 0, 0),
    sub!("cluster|addslotsrange", -4, ["admin", "stale", "no_async_loading"], 0, 0, 0),
    sub!("cluster|bumpepoch", 2, ["admin", "stale", "no_async_loading"], 0, 0, 0),
    sub!("cluster|count-failure-reports", 3, ["admin", "stale"], 0, 0, 0),
    sub!("cluster|countkeysinslot", 3, ["stale"], 0, 0, 0),
    sub!("cluster|delslots", -3, ["admin", "stale", "no_async_loading"], 0, 0, 0),
    sub!("cluster|delslotsrange", -4, ["admin", "stale", "no_async_loading"], 0, 0, 0),
    sub!("cluster|failover", -2, ["admin", "stale", "no_async_loading"], 0, 0, 0),
    sub!("cluster|flushslots", 2, ["admin", "stale", "no_async_loading"], 0, 0, 0),
    sub!("cluster|forget", 3, ["admin", "stale", "no_async_loading"], 0, 0, 0),
    sub!("cluster|getkeysinslot", 4, ["stale"], 0, 0, 0),
    sub!("cluster|help", 2, ["loading", "stale"], 0, 0, 0),
    sub!("cluster|info", 2, ["stale"], 0, 0, 0),
    sub!("cluster|keyslot", 3, ["stale"], 0, 0, 0),
    sub!("cluster|links", 2, ["stale"], 0, 0, 0),
    sub!("cluster|meet", -4, ["admin", "stale", "no_async_loading"], 0, 0, 0),
    sub!("cluster|myid", 2, ["stale"], 0, 0, 0),
    sub!("cluster|myshardid", 2, ["stale"], 0, 0, 0),
    sub!("cluster|nodes", 2, ["stale"], 0, 0, 0),
    sub!("cluster|replicas", 3, ["admin", "stale"], 0, 0, 0),
    sub!("cluster|replicate", 3, ["admin", "stale", "no_async_loading"], 0, 0, 0),
    sub!("cluster|reset", -2, ["admin", "noscript", "stale"], 0, 0, 0),
    sub!("cluster|saveconfig", 2, ["admin", "stale", "no_async_loading"], 0, 0, 0),
    sub!("cluster|set-config-epoch", 3, ["admin", "stale", "no_async_loading"], 0, 0, 0),
    sub!("cluster|setslot", -4, ["admin", "stale", "no_async_loading"], 0, 0, 0),
    sub!("cluster|shards", 2, ["stale"], 0, 0, 0),
    sub!("cluster|slaves", 3, ["admin", "stale"], 0, 0, 0),
    sub!("cluster|slots", 2, ["stale"], 0, 0, 0),
    sub!("command|count", 2, ["loading", "stale"], 0, 0, 0),
    sub!("command|docs", -2, ["loading", "stale"], 0, 0, 0),
    sub!("command|getkeys", -4, ["loading", "stale"], 0, 0, 0),
    sub!("command|getkeysandflags", -4, ["loading", "stale"], 0, 0, 0),
    sub!("command|help", 2, ["loading", "stale"], 0, 0, 0),
    sub!("command|info", -2, ["loading", "stale"], 0, 0, 0),
    sub!("command|list", -2, ["loading", "stale"], 0, 0, 0),
    sub!("config|get", -3, ["admin", "noscript", "loading", "stale"], 0, 0, 0),
    sub!("config|help", 2, ["loading", "stale"], 0, 0, 0),
    sub!("config|resetstat", 2, ["admin", "noscript", "loading", "stale"], 0, 0, 0),
    sub!("config|rewrite", 2, ["admin", "noscript", "loading", "stale"], 0, 0, 0),
    sub!("config|set", -4, ["admin", "noscript", "loading", "stale"], 0, 0, 0),
    sub!("function|delete", 3, ["write", "noscript"], 0, 0, 0),
    sub!("function|dump", 2, ["noscript"], 0, 0, 0),
    sub!("function|flush", -2, ["write", "noscript"], 0, 0, 0),
    sub!("function|help", 2, ["loading", "stale"], 0, 0, 0),
    sub!("function|kill", 2, ["noscript", "allow_busy"], 0, 0, 0),
    sub!("function|list", -2, ["noscript"], 0, 0, 0),
    sub!("function|load", -3, ["write", "denyoom", "noscript"], 0, 0, 0),
    sub!("function|restore", -3, ["write", "denyoom", "noscript"], 0, 0, 0),
    sub!("function|stats", 2, ["noscript", "allow_busy"], 0, 0, 0),
    sub!("latency|doctor", 2, ["admin", "noscript", "loading", "stale"], 0, 0, 0),
    sub!("latency|graph", 3, ["admin", "noscript", "loading", "stale"], 0, 0, 0),
    sub!("latency|help", 2, ["loading", "stale"], 0, 0, 0),
    sub!("latency|histogram", -2, ["admin", "noscript", "loading", "stale"], 0, 0, 0),
    sub!("latency|history", 3, ["admin", "noscript", "loading", "stale"], 0, 0, 0),
    sub!("latency|latest", 2, ["admin", "noscript", "loading", "stale"], 0, 0, 0),
    sub!("latency|reset", -2, ["admin", "noscript", "loading", "stale"], 0, 0, 0),
    sub!("memory|doctor", 2, [], 0, 0, 0),
    sub!("memory|help", 2, ["loading", "stale"], 0, 0, 0),
    sub!("memory|malloc-stats", 2, [], 0, 0, 0),
    sub!("memory|purge", 2, [], 0, 0, 0),
    sub!("memory|stats", 2, [], 0, 0, 0),
    sub!("memory|usage", -3, ["readonly"], 2, 2, 1),
    sub!("module|help", 2, ["loading", "stale"], 0, 0, 0),
    sub!("module|list", 2, ["admin", "noscript"], 0, 0, 0),
    sub!("module|load", -3, ["admin", "noscript", "no_async_loading"], 0, 0, 0),
    sub!("module|loadex", -3, ["admin", "noscript", "no_async_loading"], 0, 0, 0),
    sub!("module|unload", 3, ["admin", "noscript", "no_async_loading"], 0, 0, 0),
    sub!("object|encoding", 3, ["readonly"], 2, 2, 1),
    sub!("object|freq", 3, ["readonly"], 2, 2, 1),
    sub!("object|help", 2, ["loading", "stale"], 0, 0, 0),
    sub!("object|idletime", 3, ["readonly"], 2, 2, 1),
    sub!("object|refcount", 3, ["readonly"], 2, 2, 1),
    sub!("pubsub|channels", -2, ["pubsub", "loading", "stale"], 0, 0, 0),
    sub!("pubsub|help", 2, ["loading", "stale"], 0, 0, 0),
    sub!("pubsub|numpat", 2, ["pubsub", "loading", "stale"], 0, 0, 0),
    sub!("pubsub|numsub", -2, ["pubsub", "loading", "stale"], 0, 0, 0),
    sub!("pubsub|shardchannels", -2, ["pubsub", "loading", "stale"], 0, 0, 0),
    sub!("pubsub|shardnumsub", -2, ["pubsub", "loading", "stale"], 0, 0, 0),
    sub!("script|debug", 3, ["noscript"], 0, 0, 0),
    sub!("script|exists", -3, ["noscript"], 0, 0, 0),
    sub!("script|flush", -2, ["noscript"], 0, 0, 0),
    sub!("script|help", 2, ["loading", "stale"], 0, 0, 0),
    sub!("script|kill", 2, ["noscript", "allow_busy"], 0, 0, 0),
    sub!("script|load", 3, ["noscript", "stale"], 0, 0, 0),
    sub!("slowlog|get", -2, ["admin", "loading", "stale"], 0, 0, 0),
    sub!("slowlog|help", 2, ["loading", "stale"], 0, 0, 0),
    sub!("slowlog|len", 2, ["admin", "loading", "stale"], 0, 0, 0),
    sub!("slowlog|reset", 2, ["admin", "loading", "stale"], 0, 0, 0),
    sub!("xgroup|create", -5, ["write", "denyoom"], 2, 2, 1),
    sub!("xgroup|createconsumer", 5, ["write", "denyoom"], 2, 2, 1),
    sub!("xgroup|delconsumer", 5, ["write"], 2, 2, 1),
    sub!("xgroup|destroy", 4, ["write"], 2, 2, 1),
    sub!("xgroup|help", 2, ["loading", "stale"], 0, 0, 0),
    sub!("xgroup|setid", -5, ["write"], 2, 2, 1),
    sub!("xinfo|consumers", 4, ["readonly"], 2, 2, 1),
    sub!("xinfo|groups", 3, ["readonly"], 2, 2, 1),
    sub!("xinfo|help", 2, ["loading", "stale"], 0, 0, 0),
    sub!("xinfo|stream", -3, ["readonly"], 2, 2, 1),
];

/// The subcommand named `container|subcommand` (lowercase).
pub fn lookup(name: &str) -> Option<&'static SubcommandSpec> {
    SUBCOMMANDS.binary_search_by(|s| s.name.cmp(name)).ok().map(|i| &SUBCOMMANDS[i])
}

/// Whether `command` (lowercase) is a container: it has subcommands of its own.
pub fn is_container(command: &str) -> bool {
    let at = SUBCOMMANDS.partition_point(|s| s.name < command);
    SUBCOMMANDS.get(at).is_some_and(|s| {
        s.name.len() > command.len() && s.name.starts_with(command) && s.name.as_bytes()[command.len()] == b'|'
    })
}

/// Redis's check of a container command's subcommand before the command runs (in
/// `processCommand`): an unknown subcommand, or a known one with the wrong number of
/// arguments, is refused with Redis's error. Ok with the subcommand for a container, Ok(None)
/// for other commands.
pub fn check(command: &str, args: &[impl AsRef<[u8]>]) -> Result<Option<&'static SubcommandSpec>, String> {
    let Some(sub) = args.get(1).map(|a| a.as_ref()) else { return Ok(None) };
    if !is_container(command) {
        return Ok(None);
    }
    // A subcommand name is short: a long argument is unknown without copying it.
    let known = (sub.len() <= 32).then(|| format!("{command}|{}", String::from_utf8_lossy(sub).to_ascii_lowercase()));
    match known.as_deref().and_then(lookup) {
        None => {
            let shown: String = String::from_utf8_lossy(&sub[..sub.len().min(512)]).chars().take(128).collect();
            Err(format!("ERR unknown subcommand '{shown}'. Try {} HELP.", command.to_ascii_uppercase()))
        }
        Some(s) if !arity_ok(s.arity, args.len()) => {
            Err(format!("ERR wrong number of arguments for '{}' command", s.name))
        }
        Some(s) => Ok(Some(s)),
    }
}

/// The flags of the subcommand a container command's call names (FUNCTION LOAD is `write`
/// and `denyoom` where FUNCTION itself is neither); None for other commands or an unknown
/// subcommand. Whether a call writes is decided by these, not by the container's flags.
pub fn flags_of(command: &str, args: &[impl AsRef<[u8]>]) -> Option<&'static [&'static str]> {
    check(command, args).ok().flatten().map(|s| s.flags)
}

fn arity_ok(arity: i32, n: usize) -> bool {
    if arity >= 0 {
        n == arity as usize
    } else {
        n >= arity.unsigned_abs() as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_and_covering_every_served_subcommand() {
        assert!(SUBCOMMANDS.windows(2).all(|w| w[0].name < w[1].name), "SUBCOMMANDS must stay sorted");
        for e in crate::acl::categories::entries().iter().filter(|e| e.parent.is_some()) {
            assert!(lookup(&e.name).is_some(), "{} has no COMMAND INFO entry", e.name);
        }
        assert_eq!(lookup("object|encoding").map(|s| (s.arity, s.first_key)), Some((3, 2)));
    }

    #[test]
    fn containers_check_subcommands_as_redis_does() {
        assert!(is_container("object") && is_container("xinfo") && is_container("acl"));
        assert!(!is_container("get") && !is_container("obj") && !is_container("xinfox"));
        assert_eq!(
            check("object", &["OBJECT", "ENCODING", "k"]).map(|s| s.map(|s| s.name)),
            Ok(Some("object|encoding"))
        );
        assert!(check("get", &["GET", "k"]).is_ok_and(|s| s.is_none()));
        assert_eq!(check("object", &["OBJECT", "foo"]), Err("ERR unknown subcommand 'foo'. Try OBJECT HELP.".into()));
        assert_eq!(
            check("object", &["OBJECT", "Encoding"]),
            Err("ERR wrong number of arguments for 'object|encoding' command".into())
        );
        assert!(check("script", &["SCRIPT", "EXISTS", "a", "b"]).is_ok_and(|s| s.is_some()));
        let long = "x".repeat(300);
        assert_eq!(check("memory", &["MEMORY", long.as_str()]).unwrap_err().len(), 128 + 43);
    }
}
