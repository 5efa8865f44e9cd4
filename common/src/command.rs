//! The command table: every command Ferrocache knows, with Redis's arity, flags and key
//! positions. The gateway uses it to check arity, route by key and answer COMMAND; the
//! datanode to tell writes from reads.

/// What a command is, as `COMMAND INFO` describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandSpec {
    /// Lowercase name.
    pub name: &'static str,
    /// Redis's arity: positive = exactly that many arguments (name included); negative =
    /// at least that many.
    pub arity: i32,
    pub flags: &'static [&'static str],
    /// `flags` as bits ([`Flag`]): asked on every command, by the gateway and the node.
    pub bits: u32,
    /// Position of the first key (0 = no keys), the last (-1 = the last argument) and the step.
    pub first_key: i32,
    pub last_key: i32,
    pub step: i32,
    pub group: &'static str,
    pub summary: &'static str,
    /// Where the gateway sends it.
    pub route: Route,
}

/// Where a command runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Answered by the gateway itself (PING, HELLO, CLIENT, COMMAND, ...).
    Gateway,
    /// Runs on the node owning the keys' slot.
    Keyed,
    /// Runs on one node of each node group and the gateway combines the replies
    /// (DBSIZE, KEYS, FLUSHALL, ...). Cluster mode disabled: the one node group.
    AllShards,
}

/// The flags commands are asked about on their way, one bit each in [`CommandSpec::bits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    Write,
    Readonly,
    Denyoom,
    Admin,
    Pubsub,
    Noscript,
    Blocking,
    Loading,
    Stale,
    SkipMonitor,
    SkipSlowlog,
    Fast,
    NoAuth,
    MayReplicate,
    NoMandatoryKeys,
    AllowBusy,
    Movablekeys,
}

impl Flag {
    const ALL: [Flag; 17] = [
        Flag::Write,
        Flag::Readonly,
        Flag::Denyoom,
        Flag::Admin,
        Flag::Pubsub,
        Flag::Noscript,
        Flag::Blocking,
        Flag::Loading,
        Flag::Stale,
        Flag::SkipMonitor,
        Flag::SkipSlowlog,
        Flag::Fast,
        Flag::NoAuth,
        Flag::MayReplicate,
        Flag::NoMandatoryKeys,
        Flag::AllowBusy,
        Flag::Movablekeys,
    ];

    /// Redis's name for it, as the command table spells it.
    pub const fn name(self) -> &'static str {
        match self {
            Flag::Write => "write",
            Flag::Readonly => "readonly",
            Flag::Denyoom => "denyoom",
            Flag::Admin => "admin",
            Flag::Pubsub => "pubsub",
            Flag::Noscript => "noscript",
            Flag::Blocking => "blocking",
            Flag::Loading => "loading",
            Flag::Stale => "stale",
            Flag::SkipMonitor => "skip_monitor",
            Flag::SkipSlowlog => "skip_slowlog",
            Flag::Fast => "fast",
            Flag::NoAuth => "no_auth",
            Flag::MayReplicate => "may_replicate",
            Flag::NoMandatoryKeys => "no_mandatory_keys",
            Flag::AllowBusy => "allow_busy",
            Flag::Movablekeys => "movablekeys",
        }
    }

    const fn bit(self) -> u32 {
        1 << self as u32
    }
}

const fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// The bits of the flags named (names that are no [`Flag`] have none).
const fn flag_bits(flags: &[&str]) -> u32 {
    let mut bits = 0;
    let mut i = 0;
    while i < flags.len() {
        let mut j = 0;
        while j < Flag::ALL.len() {
            if same(flags[i], Flag::ALL[j].name()) {
                bits |= Flag::ALL[j].bit();
            }
            j += 1;
        }
        i += 1;
    }
    bits
}

impl CommandSpec {
    pub fn has(&self, flag: Flag) -> bool {
        self.bits & flag.bit() != 0
    }

    pub fn is_write(&self) -> bool {
        self.has(Flag::Write)
    }

    /// Whether this call writes: a container's subcommand decides (FUNCTION LOAD writes,
    /// FUNCTION LIST does not, and FUNCTION itself is flagged neither way).
    pub fn call_writes(&self, args: &[impl AsRef<[u8]>]) -> bool {
        // Runs for every command: a table flag, not a name search, tells a container (a
        // spec not from COMMANDS lands out of range: no container).
        let index = (self as *const CommandSpec as usize).wrapping_sub(COMMANDS.as_ptr() as usize)
            / std::mem::size_of::<CommandSpec>();
        self.is_write()
            || (crate::acl::categories::is_container_at(index)
                && crate::subcommands::flags_of(self.name, args).is_some_and(|f| f.contains(&"write")))
    }

    /// A write, or a command that may write or publish (EVAL, PUBLISH: Redis's
    /// `may_replicate`, but not a read such as PFCOUNT that may only cache what it read):
    /// one whose fate is unknown is never sent again.
    pub fn may_write(&self) -> bool {
        self.is_write() || (self.has(Flag::MayReplicate) && !self.has(Flag::Readonly))
    }

    /// WAIT or WAITAOF: counts the acknowledgements of the primary's replicas (never re-sent,
    /// bounded by its own timeout).
    pub fn is_wait(&self) -> bool {
        matches!(self.name, "wait" | "waitaof")
    }

    /// Does `argc` (name included) satisfy the arity?
    pub fn arity_ok(&self, argc: usize) -> bool {
        let argc = argc as i64;
        let arity = self.arity as i64;
        if arity >= 0 {
            argc == arity
        } else {
            argc >= -arity
        }
    }

    /// Indexes of the key arguments in `args` (name at index 0).
    pub fn key_indexes(&self, argc: usize) -> impl Iterator<Item = usize> {
        let (first, step) = (self.first_key.max(0) as usize, self.step.max(1) as usize);
        let last = if self.first_key == 0 {
            0
        } else if self.last_key < 0 {
            (argc as i64 + self.last_key as i64).max(0) as usize
        } else {
            (self.last_key as usize).min(argc.saturating_sub(1))
        };
        (first..=last).step_by(step).filter(move |&i| first > 0 && i < argc)
    }
}

/// Every key argument's index in `args` (name at index 0), including the keys of commands
/// whose keys move with a `numkeys` argument (ZUNION, LMPOP, SINTERCARD, ...), which the
/// first/last/step triple cannot describe. A bad `numkeys` yields the keys that exist; the
/// command itself answers the error.
pub fn key_positions(spec: &CommandSpec, args: &[impl AsRef<[u8]>]) -> Vec<usize> {
    let counted = |numkeys_at: usize| -> Vec<usize> {
        let n = args
            .get(numkeys_at)
            .and_then(|a| std::str::from_utf8(a.as_ref()).ok())
            .and_then(|t| t.parse::<usize>().ok())
            .unwrap_or(0);
        (numkeys_at + 1..args.len()).take(n).collect()
    };
    match spec.name {
        "zunion" | "zinter" | "zdiff" | "sintercard" | "zintercard" | "lmpop" | "zmpop" => counted(1),
        "blmpop" | "bzmpop" | "eval" | "eval_ro" | "evalsha" | "evalsha_ro" | "fcall" | "fcall_ro" => counted(2),
        // The key, and the last STORE / STOREDIST destination.
        "georadius" | "georadiusbymember" => {
            let mut keys = vec![1];
            let mut i = 5;
            while i < args.len() {
                let a = args[i].as_ref();
                if (a.eq_ignore_ascii_case(b"STORE") || a.eq_ignore_ascii_case(b"STOREDIST")) && i + 1 < args.len() {
                    keys.truncate(1);
                    keys.push(i + 1);
                    i += 1;
                }
                i += 1;
            }
            keys
        }
        // The key, and the last STORE's destination (LIMIT, GET and BY take arguments).
        "sort" => {
            let mut keys = vec![1];
            let mut i = 2;
            while i < args.len() {
                let a = args[i].as_ref();
                if a.eq_ignore_ascii_case(b"LIMIT") {
                    i += 2;
                } else if a.eq_ignore_ascii_case(b"GET") || a.eq_ignore_ascii_case(b"BY") {
                    i += 1;
                } else if a.eq_ignore_ascii_case(b"STORE") && i + 1 < args.len() {
                    keys.truncate(1);
                    keys.push(i + 1);
                }
                i += 1;
            }
            keys.retain(|&k| k < args.len());
            keys
        }
        // The keys are the first half of what follows STREAMS (the IDs are the second).
        "xread" | "xreadgroup" => {
            let from = if spec.name == "xread" { 1 } else { 4 };
            let Some(at) = (from..args.len()).find(|&i| args[i].as_ref().eq_ignore_ascii_case(b"STREAMS")) else {
                return Vec::new();
            };
            let n = (args.len() - at - 1) / 2;
            (at + 1..at + 1 + n).collect()
        }
        "zunionstore" | "zinterstore" | "zdiffstore" => {
            let mut keys = vec![1];
            keys.extend(counted(2));
            keys
        }
        _ => spec.key_indexes(args.len()).collect(),
    }
}

macro_rules! spec {
    ($name:literal, $arity:expr, [$($flag:literal),*], $fk:expr, $lk:expr, $st:expr, $group:literal, $route:ident, $summary:literal) => {
        CommandSpec {
            name: $name,
            arity: $arity,
            flags: &[$($flag),*],
            bits: flag_bits(&[$($flag),*]),
            first_key: $fk,
            last_key: $lk,
            step: $st,
            group: $group,
            summary: $summary,
            route: Route::$route,
        }
    };
}

/// Every command, sorted by name.
pub static COMMANDS: &[CommandSpec] = &[
    spec!("acl", -2, [], 0, 0, 0, "server", Gateway, "A container for Access List Control commands."),
    spec!("append", 3, ["write", "denyoom", "fast"], 1, 1, 1, "string", Keyed, "Appends a string to the value of a key. Creates the key if it doesn't exist."),
    spec!("asking", 1, ["fast"], 0, 0, 0, "cluster", Gateway, "Signals that a cluster client is following an -ASK redirect."),
    spec!("auth", -2, ["noscript", "loading", "stale", "fast", "no_auth", "allow_busy"], 0, 0, 0, "connection", Gateway, "Authenticates the connection."),
    spec!("bitcount", -2, ["readonly"], 1, 1, 1, "bitmap", Keyed, "Counts the number of set bits (population counting) in a string."),
    spec!("bitfield", -2, ["write", "denyoom"], 1, 1, 1, "bitmap", Keyed, "Performs arbitrary bitfield integer operations on strings."),
    spec!("bitfield_ro", -2, ["readonly", "fast"], 1, 1, 1, "bitmap", Keyed, "Performs arbitrary read-only bitfield integer operations on strings."),
    spec!("bitop", -4, ["write", "denyoom"], 2, -1, 1, "bitmap", Keyed, "Performs bitwise operations on multiple strings, and stores the result."),
    spec!("bitpos", -3, ["readonly"], 1, 1, 1, "bitmap", Keyed, "Finds the first set (1) or clear (0) bit in a string."),
    spec!("blmove", 6, ["write", "denyoom", "blocking"], 1, 2, 1, "list", Keyed, "Pops an element from a list, pushes it to another list and returns it. Blocks until an element is available otherwise. Deletes the list if the last element was moved."),
    spec!("blmpop", -5, ["write", "blocking", "movablekeys"], 0, 0, 0, "list", Keyed, "Pops the first element from one of multiple lists. Blocks until an element is available otherwise. Deletes the list if the last element was popped."),
    spec!("blpop", -3, ["write", "blocking"], 1, -2, 1, "list", Keyed, "Removes and returns the first element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped."),
    spec!("brpop", -3, ["write", "blocking"], 1, -2, 1, "list", Keyed, "Removes and returns the last element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped."),
    spec!("brpoplpush", 4, ["write", "denyoom", "blocking"], 1, 2, 1, "list", Keyed, "Pops an element from a list, pushes it to another list and returns it. Block until an element is available otherwise. Deletes the list if the last element was popped."),
    spec!("bzmpop", -5, ["write", "blocking", "movablekeys"], 0, 0, 0, "sorted-set", Keyed, "Removes and returns a member by score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped."),
    spec!("bzpopmax", -3, ["write", "blocking", "fast"], 1, -2, 1, "sorted-set", Keyed, "Removes and returns the member with the highest score from one or more sorted sets. Blocks until a member available otherwise. Deletes the sorted set if the last element was popped."),
    spec!("bzpopmin", -3, ["write", "blocking", "fast"], 1, -2, 1, "sorted-set", Keyed, "Removes and returns the member with the lowest score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped."),
    spec!("client", -2, ["admin", "noscript", "loading", "stale"], 0, 0, 0, "connection", Gateway, "A container for client connection commands."),
    spec!("cluster", -2, [], 0, 0, 0, "cluster", Gateway, "A container for Redis Cluster commands."),
    spec!("command", -1, ["random", "loading", "stale"], 0, 0, 0, "server", Gateway, "Returns detailed information about all commands."),
    spec!("config", -2, ["admin", "noscript", "loading", "stale"], 0, 0, 0, "server", Gateway, "A container for server configuration commands."),
    spec!("copy", -3, ["write", "denyoom"], 1, 2, 1, "generic", Keyed, "Copies the value of a key to a new key."),
    spec!("dbsize", 1, ["readonly", "fast"], 0, 0, 0, "server", AllShards, "Returns the number of keys in the database."),
    spec!("debug", -2, ["admin", "noscript", "loading", "stale"], 0, 0, 0, "server", Gateway, "A container for debugging commands."),
    spec!("decr", 2, ["write", "denyoom", "fast"], 1, 1, 1, "string", Keyed, "Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist."),
    spec!("decrby", 3, ["write", "denyoom", "fast"], 1, 1, 1, "string", Keyed, "Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist."),
    spec!("del", -2, ["write"], 1, -1, 1, "generic", Keyed, "Deletes one or more keys."),
    spec!("discard", 1, ["noscript", "loading", "stale", "fast", "allow_busy"], 0, 0, 0, "transactions", Gateway, "Discards a transaction."),
    spec!("dump", 2, ["readonly"], 1, 1, 1, "generic", Keyed, "Returns a serialized representation of the value stored at a key."),
    spec!("echo", 2, ["fast"], 0, 0, 0, "connection", Gateway, "Returns the given string."),
    spec!("eval", -3, ["noscript", "stale", "skip_monitor", "may_replicate", "no_mandatory_keys", "movablekeys"], 0, 0, 0, "scripting", Keyed, "Executes a server-side Lua script."),
    spec!("eval_ro", -3, ["readonly", "noscript", "stale", "skip_monitor", "no_mandatory_keys", "movablekeys"], 0, 0, 0, "scripting", Keyed, "Executes a read-only server-side Lua script."),
    spec!("evalsha", -3, ["noscript", "stale", "skip_monitor", "may_replicate", "no_mandatory_keys", "movablekeys"], 0, 0, 0, "scripting", Keyed, "Executes a server-side Lua script by SHA1 digest."),
    spec!("evalsha_ro", -3, ["readonly", "noscript", "stale", "skip_monitor", "no_mandatory_keys", "movablekeys"], 0, 0, 0, "scripting", Keyed, "Executes a read-only server-side Lua script by SHA1 digest."),
    spec!("exec", 1, ["noscript", "loading", "stale", "skip_slowlog"], 0, 0, 0, "transactions", Gateway, "Executes all commands in a transaction."),
    spec!("exists", -2, ["readonly", "fast"], 1, -1, 1, "generic", Keyed, "Determines whether one or more keys exist."),
    spec!("expire", -3, ["write", "fast"], 1, 1, 1, "generic", Keyed, "Sets the expiration time of a key in seconds."),
    spec!("expireat", -3, ["write", "fast"], 1, 1, 1, "generic", Keyed, "Sets the expiration time of a key to a Unix timestamp."),
    spec!("expiretime", 2, ["readonly", "fast"], 1, 1, 1, "generic", Keyed, "Returns the expiration time of a key as a Unix timestamp."),
    spec!("failover", -1, ["admin", "noscript", "stale"], 0, 0, 0, "server", Gateway, "Starts a coordinated failover from a server to one of its replicas."),
    spec!("fcall", -3, ["noscript", "stale", "skip_monitor", "may_replicate", "no_mandatory_keys", "movablekeys"], 0, 0, 0, "scripting", Keyed, "Invokes a function."),
    spec!("fcall_ro", -3, ["readonly", "noscript", "stale", "skip_monitor", "no_mandatory_keys", "movablekeys"], 0, 0, 0, "scripting", Keyed, "Invokes a read-only function."),
    spec!("flushall", -1, ["write"], 0, 0, 0, "server", AllShards, "Removes all keys from all databases."),
    spec!("flushdb", -1, ["write"], 0, 0, 0, "server", AllShards, "Remove all keys from the current database."),
    spec!("function", -2, ["noscript"], 0, 0, 0, "scripting", AllShards, "A container for function commands."),
    spec!("geoadd", -5, ["write", "denyoom"], 1, 1, 1, "geo", Keyed, "Adds one or more members to a geospatial index. The key is created if it doesn't exist."),
    spec!("geodist", -4, ["readonly"], 1, 1, 1, "geo", Keyed, "Returns the distance between two members of a geospatial index."),
    spec!("geohash", -2, ["readonly"], 1, 1, 1, "geo", Keyed, "Returns members from a geospatial index as geohash strings."),
    spec!("geopos", -2, ["readonly"], 1, 1, 1, "geo", Keyed, "Returns the longitude and latitude of members from a geospatial index."),
    spec!("georadius", -6, ["write", "denyoom", "movablekeys"], 1, 1, 1, "geo", Keyed, "Queries a geospatial index for members within a distance from a coordinate, optionally stores the result."),
    spec!("georadius_ro", -6, ["readonly"], 1, 1, 1, "geo", Keyed, "Returns members from a geospatial index that are within a distance from a coordinate."),
    spec!("georadiusbymember", -5, ["write", "denyoom", "movablekeys"], 1, 1, 1, "geo", Keyed, "Queries a geospatial index for members within a distance from a member, optionally stores the result."),
    spec!("georadiusbymember_ro", -5, ["readonly"], 1, 1, 1, "geo", Keyed, "Returns members from a geospatial index that are within a distance from a member."),
    spec!("geosearch", -7, ["readonly"], 1, 1, 1, "geo", Keyed, "Queries a geospatial index for members inside an area of a box or a circle."),
    spec!("geosearchstore", -8, ["write", "denyoom"], 1, 2, 1, "geo", Keyed, "Queries a geospatial index for members inside an area of a box or a circle, optionally stores the result."),
    spec!("get", 2, ["readonly", "fast"], 1, 1, 1, "string", Keyed, "Returns the string value of a key."),
    spec!("getbit", 3, ["readonly", "fast"], 1, 1, 1, "bitmap", Keyed, "Returns a bit value by offset."),
    spec!("getdel", 2, ["write", "fast"], 1, 1, 1, "string", Keyed, "Returns the string value of a key after deleting the key."),
    spec!("getex", -2, ["write", "fast"], 1, 1, 1, "string", Keyed, "Returns the string value of a key after setting its expiration time."),
    spec!("getrange", 4, ["readonly"], 1, 1, 1, "string", Keyed, "Returns a substring of the string stored at a key."),
    spec!("getset", 3, ["write", "denyoom", "fast"], 1, 1, 1, "string", Keyed, "Returns the previous string value of a key after setting it to a new value."),
    spec!("hdel", -3, ["write", "fast"], 1, 1, 1, "hash", Keyed, "Deletes one or more fields and their values from a hash. Deletes the hash if no fields remain."),
    spec!("hello", -1, ["noscript", "loading", "stale", "fast", "no_auth", "allow_busy"], 0, 0, 0, "connection", Gateway, "Handshakes with the Redis server."),
    spec!("hexists", 3, ["readonly", "fast"], 1, 1, 1, "hash", Keyed, "Determines whether a field exists in a hash."),
    spec!("hget", 3, ["readonly", "fast"], 1, 1, 1, "hash", Keyed, "Returns the value of a field in a hash."),
    spec!("hgetall", 2, ["readonly"], 1, 1, 1, "hash", Keyed, "Returns all fields and values in a hash."),
    spec!("hincrby", 4, ["write", "denyoom", "fast"], 1, 1, 1, "hash", Keyed, "Increments the integer value of a field in a hash by a number. Uses 0 as initial value if the field doesn't exist."),
    spec!("hincrbyfloat", 4, ["write", "denyoom", "fast"], 1, 1, 1, "hash", Keyed, "Increments the floating point value of a field by a number. Uses 0 as initial value if the field doesn't exist."),
    spec!("hkeys", 2, ["readonly"], 1, 1, 1, "hash", Keyed, "Returns all fields in a hash."),
    spec!("hlen", 2, ["readonly", "fast"], 1, 1, 1, "hash", Keyed, "Returns the number of fields in a hash."),
    spec!("hmget", -3, ["readonly", "fast"], 1, 1, 1, "hash", Keyed, "Returns the values of all fields in a hash."),
    spec!("hmset", -4, ["write", "denyoom", "fast"], 1, 1, 1, "hash", Keyed, "Sets the values of multiple fields."),
    spec!("hrandfield", -2, ["readonly"], 1, 1, 1, "hash", Keyed, "Returns one or more random fields from a hash."),
    spec!("hscan", -3, ["readonly"], 1, 1, 1, "hash", Keyed, "Iterates over fields and values of a hash."),
    spec!("hset", -4, ["write", "denyoom", "fast"], 1, 1, 1, "hash", Keyed, "Creates or modifies the value of a field in a hash."),
    spec!("hsetnx", 4, ["write", "denyoom", "fast"], 1, 1, 1, "hash", Keyed, "Sets the value of a field in a hash only when the field doesn't exist."),
    spec!("hstrlen", 3, ["readonly", "fast"], 1, 1, 1, "hash", Keyed, "Returns the length of the value of a field."),
    spec!("hvals", 2, ["readonly"], 1, 1, 1, "hash", Keyed, "Returns all values in a hash."),
    spec!("incr", 2, ["write", "denyoom", "fast"], 1, 1, 1, "string", Keyed, "Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist."),
    spec!("incrby", 3, ["write", "denyoom", "fast"], 1, 1, 1, "string", Keyed, "Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist."),
    spec!("incrbyfloat", 3, ["write", "denyoom", "fast"], 1, 1, 1, "string", Keyed, "Increment the floating point value of a key by a number. Uses 0 as initial value if the key doesn't exist."),
    spec!("info", -1, ["loading", "stale"], 0, 0, 0, "server", Gateway, "Returns information and statistics about the server."),
    spec!("keys", 2, ["readonly"], 0, 0, 0, "generic", AllShards, "Returns all key names that match a pattern."),
    spec!("lastsave", 1, ["loading", "stale", "fast"], 0, 0, 0, "server", Gateway, "Returns the Unix timestamp of the last successful save to disk."),
    spec!("latency", -2, [], 0, 0, 0, "server", Gateway, "A container for latency diagnostics commands."),
    spec!("lcs", -3, ["readonly"], 1, 2, 1, "string", Keyed, "Finds the longest common substring."),
    spec!("lindex", 3, ["readonly"], 1, 1, 1, "list", Keyed, "Returns an element from a list by its index."),
    spec!("linsert", 5, ["write", "denyoom"], 1, 1, 1, "list", Keyed, "Inserts an element before or after another element in a list."),
    spec!("llen", 2, ["readonly", "fast"], 1, 1, 1, "list", Keyed, "Returns the length of a list."),
    spec!("lmove", 5, ["write", "denyoom"], 1, 2, 1, "list", Keyed, "Returns an element after popping it from one list and pushing it to another. Deletes the list if the last element was moved."),
    spec!("lmpop", -4, ["write", "movablekeys"], 0, 0, 0, "list", Keyed, "Returns multiple elements from a list after removing them. Deletes the list if the last element was popped."),
    spec!("lolwut", -1, ["readonly", "fast"], 0, 0, 0, "server", Gateway, "Displays computer art and the Redis version"),
    spec!("lpop", -2, ["write", "fast"], 1, 1, 1, "list", Keyed, "Returns the first elements in a list after removing it. Deletes the list if the last element was popped."),
    spec!("lpos", -3, ["readonly"], 1, 1, 1, "list", Keyed, "Returns the index of matching elements in a list."),
    spec!("lpush", -3, ["write", "denyoom", "fast"], 1, 1, 1, "list", Keyed, "Prepends one or more elements to a list. Creates the key if it doesn't exist."),
    spec!("lpushx", -3, ["write", "denyoom", "fast"], 1, 1, 1, "list", Keyed, "Prepends one or more elements to a list only when the list exists."),
    spec!("lrange", 4, ["readonly"], 1, 1, 1, "list", Keyed, "Returns a range of elements from a list."),
    spec!("lrem", 4, ["write"], 1, 1, 1, "list", Keyed, "Removes elements from a list. Deletes the list if the last element was removed."),
    spec!("lset", 4, ["write", "denyoom"], 1, 1, 1, "list", Keyed, "Sets the value of an element in a list by its index."),
    spec!("ltrim", 4, ["write"], 1, 1, 1, "list", Keyed, "Removes elements from both ends a list. Deletes the list if all elements were trimmed."),
    spec!("memory", -2, ["readonly"], 2, 2, 1, "server", Keyed, "A container for memory diagnostics commands."),
    spec!("mget", -2, ["readonly", "fast"], 1, -1, 1, "string", Keyed, "Atomically returns the string values of one or more keys."),
    spec!("module", -2, [], 0, 0, 0, "server", Gateway, "A container for module commands."),
    spec!("monitor", 1, ["admin", "noscript", "loading", "stale"], 0, 0, 0, "server", Gateway, "Listens for all requests received by the server in real-time."),
    spec!("move", 3, ["write", "fast"], 1, 1, 1, "generic", Keyed, "Moves a key to another database."),
    spec!("mset", -3, ["write", "denyoom"], 1, -1, 2, "string", Keyed, "Atomically creates or modifies the string values of one or more keys."),
    spec!("msetnx", -3, ["write", "denyoom"], 1, -1, 2, "string", Keyed, "Atomically modifies the string values of one or more keys only when all keys don't exist."),
    spec!("multi", 1, ["noscript", "loading", "stale", "fast", "allow_busy"], 0, 0, 0, "transactions", Gateway, "Starts a transaction."),
    spec!("object", -2, ["readonly"], 2, 2, 1, "generic", Keyed, "A container for object introspection commands."),
    spec!("persist", 2, ["write", "fast"], 1, 1, 1, "generic", Keyed, "Removes the expiration time of a key."),
    spec!("pexpire", -3, ["write", "fast"], 1, 1, 1, "generic", Keyed, "Sets the expiration time of a key in milliseconds."),
    spec!("pexpireat", -3, ["write", "fast"], 1, 1, 1, "generic", Keyed, "Sets the expiration time of a key to a Unix milliseconds timestamp."),
    spec!("pexpiretime", 2, ["readonly", "fast"], 1, 1, 1, "generic", Keyed, "Returns the expiration time of a key as a Unix milliseconds timestamp."),
    spec!("pfadd", -2, ["write", "denyoom", "fast"], 1, 1, 1, "hyperloglog", Keyed, "Adds elements to a HyperLogLog key. Creates the key if it doesn't exist."),
    spec!("pfcount", -2, ["readonly", "may_replicate"], 1, -1, 1, "hyperloglog", Keyed, "Returns the approximated cardinality of the set(s) observed by the HyperLogLog key(s)."),
    spec!("pfdebug", 3, ["write", "denyoom", "admin"], 2, 2, 1, "hyperloglog", Keyed, "Internal commands for debugging HyperLogLog values."),
    spec!("pfmerge", -2, ["write", "denyoom"], 1, -1, 1, "hyperloglog", Keyed, "Merges one or more HyperLogLog values into a single key."),
    spec!("pfselftest", 1, ["admin"], 0, 0, 0, "hyperloglog", Keyed, "An internal command for testing HyperLogLog values."),
    spec!("ping", -1, ["fast"], 0, 0, 0, "connection", Gateway, "Returns the server's liveliness response."),
    spec!("psetex", 4, ["write", "denyoom"], 1, 1, 1, "string", Keyed, "Sets both string value and expiration time in milliseconds of a key. The key is created if it doesn't exist."),
    spec!("psubscribe", -2, ["pubsub", "noscript", "loading", "stale"], 0, 0, 0, "pubsub", Gateway, "Listens for messages published to channels that match one or more patterns."),
    spec!("pttl", 2, ["readonly", "fast"], 1, 1, 1, "generic", Keyed, "Returns the expiration time in milliseconds of a key."),
    spec!("publish", 3, ["pubsub", "loading", "stale", "fast", "may_replicate"], 0, 0, 0, "pubsub", Keyed, "Posts a message to a channel."),
    spec!("pubsub", -2, ["pubsub", "loading", "stale"], 0, 0, 0, "pubsub", Keyed, "A container for Pub/Sub commands."),
    spec!("punsubscribe", -1, ["pubsub", "noscript", "loading", "stale"], 0, 0, 0, "pubsub", Gateway, "Stops listening to messages published to channels that match one or more patterns."),
    spec!("quit", -1, ["noscript", "loading", "stale", "fast", "no_auth", "allow_busy"], 0, 0, 0, "connection", Gateway, "Closes the connection."),
    spec!("randomkey", 1, ["readonly"], 0, 0, 0, "generic", AllShards, "Returns a random key name from the database."),
    spec!("readonly", 1, ["loading", "stale", "fast"], 0, 0, 0, "cluster", Gateway, "Enables read-only queries for a connection to a Redis Cluster replica node."),
    spec!("readwrite", 1, ["loading", "stale", "fast"], 0, 0, 0, "cluster", Gateway, "Enables read-write queries for a connection to a Redis Cluster replica node."),
    spec!("rename", 3, ["write"], 1, 2, 1, "generic", Keyed, "Renames a key and overwrites the destination."),
    spec!("renamenx", 3, ["write", "fast"], 1, 2, 1, "generic", Keyed, "Renames a key only when the target key name doesn't exist."),
    spec!("reset", 1, ["noscript", "loading", "stale", "fast"], 0, 0, 0, "connection", Gateway, "Resets the connection."),
    spec!("restore", -4, ["write", "denyoom"], 1, 1, 1, "generic", Keyed, "Creates a key from the serialized representation of a value."),
    spec!("restore-asking", -4, ["write", "denyoom", "asking"], 1, 1, 1, "server", Keyed, "An internal command for migrating keys in a cluster."),
    spec!("role", 1, ["noscript", "loading", "stale", "fast"], 0, 0, 0, "server", Gateway, "Returns the replication role."),
    spec!("rpop", -2, ["write", "fast"], 1, 1, 1, "list", Keyed, "Returns and removes the last elements of a list. Deletes the list if the last element was popped."),
    spec!("rpoplpush", 3, ["write", "denyoom"], 1, 2, 1, "list", Keyed, "Returns the last element of a list after removing and pushing it to another list. Deletes the list if the last element was popped."),
    spec!("rpush", -3, ["write", "denyoom", "fast"], 1, 1, 1, "list", Keyed, "Appends one or more elements to a list. Creates the key if it doesn't exist."),
    spec!("rpushx", -3, ["write", "denyoom", "fast"], 1, 1, 1, "list", Keyed, "Appends an element to a list only when the list exists."),
    spec!("sadd", -3, ["write", "denyoom", "fast"], 1, 1, 1, "set", Keyed, "Adds one or more members to a set. Creates the key if it doesn't exist."),
    spec!("scan", -2, ["readonly"], 0, 0, 0, "generic", AllShards, "Iterates over the key names in the database."),
    spec!("scard", 2, ["readonly", "fast"], 1, 1, 1, "set", Keyed, "Returns the number of members in a set."),
    spec!("script", -2, ["noscript"], 0, 0, 0, "scripting", AllShards, "A container for Lua scripts management commands."),
    spec!("sdiff", -2, ["readonly"], 1, -1, 1, "set", Keyed, "Returns the difference of multiple sets."),
    spec!("sdiffstore", -3, ["write", "denyoom"], 1, -1, 1, "set", Keyed, "Stores the difference of multiple sets in a key."),
    spec!("select", 2, ["loading", "stale", "fast"], 0, 0, 0, "connection", Gateway, "Changes the selected database."),
    spec!("set", -3, ["write", "denyoom"], 1, 1, 1, "string", Keyed, "Sets the string value of a key, ignoring its type. The key is created if it doesn't exist."),
    spec!("setbit", 4, ["write", "denyoom"], 1, 1, 1, "bitmap", Keyed, "Sets or clears the bit at offset of the string value. Creates the key if it doesn't exist."),
    spec!("setex", 4, ["write", "denyoom"], 1, 1, 1, "string", Keyed, "Sets the string value and expiration time of a key. Creates the key if it doesn't exist."),
    spec!("setnx", 3, ["write", "denyoom", "fast"], 1, 1, 1, "string", Keyed, "Set the string value of a key only when the key doesn't exist."),
    spec!("setrange", 4, ["write", "denyoom"], 1, 1, 1, "string", Keyed, "Overwrites a part of a string value with another by an offset. Creates the key if it doesn't exist."),
    spec!("sinter", -2, ["readonly"], 1, -1, 1, "set", Keyed, "Returns the intersect of multiple sets."),
    spec!("sintercard", -3, ["readonly", "movablekeys"], 0, 0, 0, "set", Keyed, "Returns the number of members of the intersect of multiple sets."),
    spec!("sinterstore", -3, ["write", "denyoom"], 1, -1, 1, "set", Keyed, "Stores the intersect of multiple sets in a key."),
    spec!("sismember", 3, ["readonly", "fast"], 1, 1, 1, "set", Keyed, "Determines whether a member belongs to a set."),
    spec!("slowlog", -2, [], 0, 0, 0, "server", Gateway, "A container for slow log commands."),
    spec!("smembers", 2, ["readonly"], 1, 1, 1, "set", Keyed, "Returns all members of a set."),
    spec!("smismember", -3, ["readonly", "fast"], 1, 1, 1, "set", Keyed, "Determines whether multiple members belong to a set."),
    spec!("smove", 4, ["write", "fast"], 1, 2, 1, "set", Keyed, "Moves a member from one set to another."),
    spec!("sort", -2, ["write", "denyoom", "movablekeys"], 1, 1, 1, "generic", Keyed, "Sorts the elements in a list, a set, or a sorted set, optionally storing the result."),
    spec!("sort_ro", -2, ["readonly", "movablekeys"], 1, 1, 1, "generic", Keyed, "Returns the sorted elements of a list, a set, or a sorted set."),
    spec!("spop", -2, ["write", "fast"], 1, 1, 1, "set", Keyed, "Returns one or more random members from a set after removing them. Deletes the set if the last member was popped."),
    spec!("spublish", 3, ["pubsub", "loading", "stale", "fast", "may_replicate"], 1, 1, 1, "pubsub", Keyed, "Post a message to a shard channel"),
    spec!("srandmember", -2, ["readonly"], 1, 1, 1, "set", Keyed, "Get one or multiple random members from a set"),
    spec!("srem", -3, ["write", "fast"], 1, 1, 1, "set", Keyed, "Removes one or more members from a set. Deletes the set if the last member was removed."),
    spec!("sscan", -3, ["readonly"], 1, 1, 1, "set", Keyed, "Iterates over members of a set."),
    spec!("ssubscribe", -2, ["pubsub", "noscript", "loading", "stale"], 1, -1, 1, "pubsub", Gateway, "Listens for messages published to shard channels."),
    spec!("strlen", 2, ["readonly", "fast"], 1, 1, 1, "string", Keyed, "Returns the length of a string value."),
    spec!("subscribe", -2, ["pubsub", "noscript", "loading", "stale"], 0, 0, 0, "pubsub", Gateway, "Listens for messages published to channels."),
    spec!("substr", 4, ["readonly"], 1, 1, 1, "string", Keyed, "Returns a substring from string value."),
    spec!("sunion", -2, ["readonly"], 1, -1, 1, "set", Keyed, "Returns the union of multiple sets."),
    spec!("sunionstore", -3, ["write", "denyoom"], 1, -1, 1, "set", Keyed, "Stores the union of multiple sets in a key."),
    spec!("sunsubscribe", -1, ["pubsub", "noscript", "loading", "stale"], 1, -1, 1, "pubsub", Gateway, "Stops listening to messages posted to shard channels."),
    spec!("swapdb", 3, ["write", "fast"], 0, 0, 0, "server", AllShards, "Swaps two Redis databases."),
    spec!("time", 1, ["loading", "stale", "fast"], 0, 0, 0, "server", Gateway, "Returns the server time."),
    spec!("touch", -2, ["readonly", "fast"], 1, -1, 1, "generic", Keyed, "Returns the number of existing keys out of those specified after updating the time they were last accessed."),
    spec!("ttl", 2, ["readonly", "fast"], 1, 1, 1, "generic", Keyed, "Returns the expiration time in seconds of a key."),
    spec!("type", 2, ["readonly", "fast"], 1, 1, 1, "generic", Keyed, "Determines the type of value stored at a key."),
    spec!("unlink", -2, ["write", "fast"], 1, -1, 1, "generic", Keyed, "Asynchronously deletes one or more keys."),
    spec!("unsubscribe", -1, ["pubsub", "noscript", "loading", "stale"], 0, 0, 0, "pubsub", Gateway, "Stops listening to messages posted to channels."),
    spec!("unwatch", 1, ["noscript", "loading", "stale", "fast", "allow_busy"], 0, 0, 0, "transactions", Gateway, "Forgets about watched keys of a transaction."),
    spec!("wait", 3, [], 0, 0, 0, "generic", Keyed, "Blocks until the asynchronous replication of all preceding write commands sent by the connection is completed."),
    spec!("waitaof", 4, ["noscript"], 0, 0, 0, "generic", Keyed, "Blocks until all of the preceding write commands sent by the connection are written to the append-only file of the master and/or replicas."),
    spec!("watch", -2, ["noscript", "loading", "stale", "fast", "allow_busy"], 1, -1, 1, "transactions", Keyed, "Monitors changes to keys to determine the execution of a transaction."),
    spec!("xack", -4, ["write", "fast"], 1, 1, 1, "stream", Keyed, "Returns the number of messages that were successfully acknowledged by the consumer group member of a stream."),
    spec!("xadd", -5, ["write", "denyoom", "fast"], 1, 1, 1, "stream", Keyed, "Appends a new message to a stream. Creates the key if it doesn't exist."),
    spec!("xautoclaim", -6, ["write", "fast"], 1, 1, 1, "stream", Keyed, "Changes, or acquires, ownership of messages in a consumer group, as if the messages were delivered to as consumer group member."),
    spec!("xclaim", -6, ["write", "fast"], 1, 1, 1, "stream", Keyed, "Changes, or acquires, ownership of a message in a consumer group, as if the message was delivered a consumer group member."),
    spec!("xdel", -3, ["write", "fast"], 1, 1, 1, "stream", Keyed, "Returns the number of messages after removing them from a stream."),
    spec!("xgroup", -2, ["write"], 2, 2, 1, "stream", Keyed, "A container for consumer groups commands."),
    spec!("xinfo", -2, ["readonly"], 2, 2, 1, "stream", Keyed, "A container for stream introspection commands."),
    spec!("xlen", 2, ["readonly", "fast"], 1, 1, 1, "stream", Keyed, "Return the number of messages in a stream."),
    spec!("xpending", -3, ["readonly"], 1, 1, 1, "stream", Keyed, "Returns the information and entries from a stream consumer group's pending entries list."),
    spec!("xrange", -4, ["readonly"], 1, 1, 1, "stream", Keyed, "Returns the messages from a stream within a range of IDs."),
    spec!("xread", -4, ["readonly", "blocking", "movablekeys"], 0, 0, 0, "stream", Keyed, "Returns messages from multiple streams with IDs greater than the ones requested. Blocks until a message is available otherwise."),
    spec!("xreadgroup", -7, ["write", "blocking", "movablekeys"], 0, 0, 0, "stream", Keyed, "Returns new or historical messages from a stream for a consumer in a group. Blocks until a message is available otherwise."),
    spec!("xrevrange", -4, ["readonly"], 1, 1, 1, "stream", Keyed, "Returns the messages from a stream within a range of IDs in reverse order."),
    spec!("xsetid", -3, ["write", "denyoom", "fast"], 1, 1, 1, "stream", Keyed, "An internal command for replicating stream values."),
    spec!("xtrim", -4, ["write"], 1, 1, 1, "stream", Keyed, "Deletes messages from the beginning of a stream."),
    spec!("zadd", -4, ["write", "denyoom", "fast"], 1, 1, 1, "sorted-set", Keyed, "Adds one or more members to a sorted set, or updates their scores. Creates the key if it doesn't exist."),
    spec!("zcard", 2, ["readonly", "fast"], 1, 1, 1, "sorted-set", Keyed, "Returns the number of members in a sorted set."),
    spec!("zcount", 4, ["readonly", "fast"], 1, 1, 1, "sorted-set", Keyed, "Returns the count of members in a sorted set that have scores within a range."),
    spec!("zdiff", -3, ["readonly", "movablekeys"], 0, 0, 0, "sorted-set", Keyed, "Returns the difference between multiple sorted sets."),
    spec!("zdiffstore", -4, ["write", "denyoom", "movablekeys"], 1, 1, 1, "sorted-set", Keyed, "Stores the difference of multiple sorted sets in a key."),
    spec!("zincrby", 4, ["write", "denyoom", "fast"], 1, 1, 1, "sorted-set", Keyed, "Increments the score of a member in a sorted set."),
    spec!("zinter", -3, ["readonly", "movablekeys"], 0, 0, 0, "sorted-set", Keyed, "Returns the intersect of multiple sorted sets."),
    spec!("zintercard", -3, ["readonly", "movablekeys"], 0, 0, 0, "sorted-set", Keyed, "Returns the number of members of the intersect of multiple sorted sets."),
    spec!("zinterstore", -4, ["write", "denyoom", "movablekeys"], 1, 1, 1, "sorted-set", Keyed, "Stores the intersect of multiple sorted sets in a key."),
    spec!("zlexcount", 4, ["readonly", "fast"], 1, 1, 1, "sorted-set", Keyed, "Returns the number of members in a sorted set within a lexicographical range."),
    spec!("zmpop", -4, ["write", "movablekeys"], 0, 0, 0, "sorted-set", Keyed, "Returns the highest- or lowest-scoring members from one or more sorted sets after removing them. Deletes the sorted set if the last member was popped."),
    spec!("zmscore", -3, ["readonly", "fast"], 1, 1, 1, "sorted-set", Keyed, "Returns the score of one or more members in a sorted set."),
    spec!("zpopmax", -2, ["write", "fast"], 1, 1, 1, "sorted-set", Keyed, "Returns the highest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped."),
    spec!("zpopmin", -2, ["write", "fast"], 1, 1, 1, "sorted-set", Keyed, "Returns the lowest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped."),
    spec!("zrandmember", -2, ["readonly"], 1, 1, 1, "sorted-set", Keyed, "Returns one or more random members from a sorted set."),
    spec!("zrange", -4, ["readonly"], 1, 1, 1, "sorted-set", Keyed, "Returns members in a sorted set within a range of indexes."),
    spec!("zrangebylex", -4, ["readonly"], 1, 1, 1, "sorted-set", Keyed, "Returns members in a sorted set within a lexicographical range."),
    spec!("zrangebyscore", -4, ["readonly"], 1, 1, 1, "sorted-set", Keyed, "Returns members in a sorted set within a range of scores."),
    spec!("zrangestore", -5, ["write", "denyoom"], 1, 2, 1, "sorted-set", Keyed, "Stores a range of members from sorted set in a key."),
    spec!("zrank", -3, ["readonly", "fast"], 1, 1, 1, "sorted-set", Keyed, "Returns the index of a member in a sorted set ordered by ascending scores."),
    spec!("zrem", -3, ["write", "fast"], 1, 1, 1, "sorted-set", Keyed, "Removes one or more members from a sorted set. Deletes the sorted set if all members were removed."),
    spec!("zremrangebylex", 4, ["write"], 1, 1, 1, "sorted-set", Keyed, "Removes members in a sorted set within a lexicographical range. Deletes the sorted set if all members were removed."),
    spec!("zremrangebyrank", 4, ["write"], 1, 1, 1, "sorted-set", Keyed, "Removes members in a sorted set within a range of indexes. Deletes the sorted set if all members were removed."),
    spec!("zremrangebyscore", 4, ["write"], 1, 1, 1, "sorted-set", Keyed, "Removes members in a sorted set within a range of scores. Deletes the sorted set if all members were removed."),
    spec!("zrevrange", -4, ["readonly"], 1, 1, 1, "sorted-set", Keyed, "Returns members in a sorted set within a range of indexes in reverse order."),
    spec!("zrevrangebylex", -4, ["readonly"], 1, 1, 1, "sorted-set", Keyed, "Returns members in a sorted set within a lexicographical range in reverse order."),
    spec!("zrevrangebyscore", -4, ["readonly"], 1, 1, 1, "sorted-set", Keyed, "Returns members in a sorted set within a range of scores in reverse order."),
    spec!("zrevrank", -3, ["readonly", "fast"], 1, 1, 1, "sorted-set", Keyed, "Returns the index of a member in a sorted set ordered by descending scores."),
    spec!("zscan", -3, ["readonly"], 1, 1, 1, "sorted-set", Keyed, "Iterates over members and scores of a sorted set."),
    spec!("zscore", 3, ["readonly", "fast"], 1, 1, 1, "sorted-set", Keyed, "Returns the score of a member in a sorted set."),
    spec!("zunion", -3, ["readonly", "movablekeys"], 0, 0, 0, "sorted-set", Keyed, "Returns the union of multiple sorted sets."),
    spec!("zunionstore", -4, ["write", "denyoom", "movablekeys"], 1, 1, 1, "sorted-set", Keyed, "Stores the union of multiple sorted sets in a key."),
];

/// Looks a command up by name, case-insensitively.
/// The Redis version each command first appeared in (COMMAND DOCS `since`), as redis-server
/// reports it; sorted by name, one per command of [`COMMANDS`].
static SINCE: &[(&str, &str)] = &[
    ("acl", "6.0.0"),
    ("append", "2.0.0"),
    ("asking", "3.0.0"),
    ("auth", "1.0.0"),
    ("bitcount", "2.6.0"),
    ("bitfield", "3.2.0"),
    ("bitfield_ro", "6.0.0"),
    ("bitop", "2.6.0"),
    ("bitpos", "2.8.7"),
    ("blmove", "6.2.0"),
    ("blmpop", "7.0.0"),
    ("blpop", "2.0.0"),
    ("brpop", "2.0.0"),
    ("brpoplpush", "2.2.0"),
    ("bzmpop", "7.0.0"),
    ("bzpopmax", "5.0.0"),
    ("bzpopmin", "5.0.0"),
    ("client", "2.4.0"),
    ("cluster", "3.0.0"),
    ("command", "2.8.13"),
    ("config", "2.0.0"),
    ("copy", "6.2.0"),
    ("dbsize", "1.0.0"),
    ("debug", "1.0.0"),
    ("decr", "1.0.0"),
    ("decrby", "1.0.0"),
    ("del", "1.0.0"),
    ("discard", "2.0.0"),
    ("dump", "2.6.0"),
    ("echo", "1.0.0"),
    ("eval", "2.6.0"),
    ("eval_ro", "7.0.0"),
    ("evalsha", "2.6.0"),
    ("evalsha_ro", "7.0.0"),
    ("exec", "1.2.0"),
    ("exists", "1.0.0"),
    ("expire", "1.0.0"),
    ("expireat", "1.2.0"),
    ("expiretime", "7.0.0"),
    ("failover", "6.2.0"),
    ("fcall", "7.0.0"),
    ("fcall_ro", "7.0.0"),
    ("flushall", "1.0.0"),
    ("flushdb", "1.0.0"),
    ("function", "7.0.0"),
    ("geoadd", "3.2.0"),
    ("geodist", "3.2.0"),
    ("geohash", "3.2.0"),
    ("geopos", "3.2.0"),
    ("georadius", "3.2.0"),
    ("georadius_ro", "3.2.10"),
    ("georadiusbymember", "3.2.0"),
    ("georadiusbymember_ro", "3.2.10"),
    ("geosearch", "6.2.0"),
    ("geosearchstore", "6.2.0"),
    ("get", "1.0.0"),
    ("getbit", "2.2.0"),
    ("getdel", "6.2.0"),
    ("getex", "6.2.0"),
    ("getrange", "2.4.0"),
    ("getset", "1.0.0"),
    ("hdel", "2.0.0"),
    ("hello", "6.0.0"),
    ("hexists", "2.0.0"),
    ("hget", "2.0.0"),
    ("hgetall", "2.0.0"),
    ("hincrby", "2.0.0"),
    ("hincrbyfloat", "2.6.0"),
    ("hkeys", "2.0.0"),
    ("hlen", "2.0.0"),
    ("hmget", "2.0.0"),
    ("hmset", "2.0.0"),
    ("hrandfield", "6.2.0"),
    ("hscan", "2.8.0"),
    ("hset", "2.0.0"),
    ("hsetnx", "2.0.0"),
    ("hstrlen", "3.2.0"),
    ("hvals", "2.0.0"),
    ("incr", "1.0.0"),
    ("incrby", "1.0.0"),
    ("incrbyfloat", "2.6.0"),
    ("info", "1.0.0"),
    ("keys", "1.0.0"),
    ("lastsave", "1.0.0"),
    ("latency", "2.8.13"),
    ("lcs", "7.0.0"),
    ("lindex", "1.0.0"),
    ("linsert", "2.2.0"),
    ("llen", "1.0.0"),
    ("lmove", "6.2.0"),
    ("lmpop", "7.0.0"),
    ("lolwut", "5.0.0"),
    ("lpop", "1.0.0"),
    ("lpos", "6.0.6"),
    ("lpush", "1.0.0"),
    ("lpushx", "2.2.0"),
    ("lrange", "1.0.0"),
    ("lrem", "1.0.0"),
    ("lset", "1.0.0"),
    ("ltrim", "1.0.0"),
    ("memory", "4.0.0"),
    ("mget", "1.0.0"),
    ("module", "4.0.0"),
    ("monitor", "1.0.0"),
    ("move", "1.0.0"),
    ("mset", "1.0.1"),
    ("msetnx", "1.0.1"),
    ("multi", "1.2.0"),
    ("object", "2.2.3"),
    ("persist", "2.2.0"),
    ("pexpire", "2.6.0"),
    ("pexpireat", "2.6.0"),
    ("pexpiretime", "7.0.0"),
    ("pfadd", "2.8.9"),
    ("pfcount", "2.8.9"),
    ("pfdebug", "2.8.9"),
    ("pfmerge", "2.8.9"),
    ("pfselftest", "2.8.9"),
    ("ping", "1.0.0"),
    ("psetex", "2.6.0"),
    ("psubscribe", "2.0.0"),
    ("pttl", "2.6.0"),
    ("publish", "2.0.0"),
    ("pubsub", "2.8.0"),
    ("punsubscribe", "2.0.0"),
    ("quit", "1.0.0"),
    ("randomkey", "1.0.0"),
    ("readonly", "3.0.0"),
    ("readwrite", "3.0.0"),
    ("rename", "1.0.0"),
    ("renamenx", "1.0.0"),
    ("reset", "6.2.0"),
    ("restore", "2.6.0"),
    ("restore-asking", "3.0.0"),
    ("role", "2.8.12"),
    ("rpop", "1.0.0"),
    ("rpoplpush", "1.2.0"),
    ("rpush", "1.0.0"),
    ("rpushx", "2.2.0"),
    ("sadd", "1.0.0"),
    ("scan", "2.8.0"),
    ("scard", "1.0.0"),
    ("script", "2.6.0"),
    ("sdiff", "1.0.0"),
    ("sdiffstore", "1.0.0"),
    ("select", "1.0.0"),
    ("set", "1.0.0"),
    ("setbit", "2.2.0"),
    ("setex", "2.0.0"),
    ("setnx", "1.0.0"),
    ("setrange", "2.2.0"),
    ("sinter", "1.0.0"),
    ("sintercard", "7.0.0"),
    ("sinterstore", "1.0.0"),
    ("sismember", "1.0.0"),
    ("slowlog", "2.2.12"),
    ("smembers", "1.0.0"),
    ("smismember", "6.2.0"),
    ("smove", "1.0.0"),
    ("sort", "1.0.0"),
    ("sort_ro", "7.0.0"),
    ("spop", "1.0.0"),
    ("spublish", "7.0.0"),
    ("srandmember", "1.0.0"),
    ("srem", "1.0.0"),
    ("sscan", "2.8.0"),
    ("ssubscribe", "7.0.0"),
    ("strlen", "2.2.0"),
    ("subscribe", "2.0.0"),
    ("substr", "1.0.0"),
    ("sunion", "1.0.0"),
    ("sunionstore", "1.0.0"),
    ("sunsubscribe", "7.0.0"),
    ("swapdb", "4.0.0"),
    ("time", "2.6.0"),
    ("touch", "3.2.1"),
    ("ttl", "1.0.0"),
    ("type", "1.0.0"),
    ("unlink", "4.0.0"),
    ("unsubscribe", "2.0.0"),
    ("unwatch", "2.2.0"),
    ("wait", "3.0.0"),
    ("waitaof", "7.2.0"),
    ("watch", "2.2.0"),
    ("xack", "5.0.0"),
    ("xadd", "5.0.0"),
    ("xautoclaim", "6.2.0"),
    ("xclaim", "5.0.0"),
    ("xdel", "5.0.0"),
    ("xgroup", "5.0.0"),
    ("xinfo", "5.0.0"),
    ("xlen", "5.0.0"),
    ("xpending", "5.0.0"),
    ("xrange", "5.0.0"),
    ("xread", "5.0.0"),
    ("xreadgroup", "5.0.0"),
    ("xrevrange", "5.0.0"),
    ("xsetid", "5.0.0"),
    ("xtrim", "5.0.0"),
    ("zadd", "1.2.0"),
    ("zcard", "1.2.0"),
    ("zcount", "2.0.0"),
    ("zdiff", "6.2.0"),
    ("zdiffstore", "6.2.0"),
    ("zincrby", "1.2.0"),
    ("zinter", "6.2.0"),
    ("zintercard", "7.0.0"),
    ("zinterstore", "2.0.0"),
    ("zlexcount", "2.8.9"),
    ("zmpop", "7.0.0"),
    ("zmscore", "6.2.0"),
    ("zpopmax", "5.0.0"),
    ("zpopmin", "5.0.0"),
    ("zrandmember", "6.2.0"),
    ("zrange", "1.2.0"),
    ("zrangebylex", "2.8.9"),
    ("zrangebyscore", "1.0.5"),
    ("zrangestore", "6.2.0"),
    ("zrank", "2.0.0"),
    ("zrem", "1.2.0"),
    ("zremrangebylex", "2.8.9"),
    ("zremrangebyrank", "2.0.0"),
    ("zremrangebyscore", "1.2.0"),
    ("zrevrange", "1.2.0"),
    ("zrevrangebylex", "2.8.9"),
    ("zrevrangebyscore", "2.2.0"),
    ("zrevrank", "2.0.0"),
    ("zscan", "2.8.0"),
    ("zscore", "1.2.0"),
    ("zunion", "6.2.0"),
    ("zunionstore", "2.0.0"),
];

/// The Redis version `spec` first appeared in.
pub fn since(spec: &CommandSpec) -> &'static str {
    SINCE.binary_search_by(|(n, _)| n.cmp(&spec.name)).map_or("1.0.0", |i| SINCE[i].1)
}

pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    index(name).map(|i| &COMMANDS[i])
}

/// A command's position in [`COMMANDS`] (case-insensitive name): tables that keep one
/// entry per command (a datanode's handlers) are indexed by it.
pub fn index(name: &[u8]) -> Option<usize> {
    // Every command passes through here, on the gateway and again on a datanode: names are
    // bucketed by length and first letter, so a lookup compares with one or two names
    // instead of binary-searching all of them.
    let bucket = name_buckets().get(name_bucket(name)?)?;
    bucket.iter().map(|&i| i as usize).find(|&i| COMMANDS[i].name.as_bytes().eq_ignore_ascii_case(name))
}

/// Command `i`'s name as a `Bytes` that points into a table of this process, when `name`
/// spells it exactly as that table does (all lowercase or all uppercase, as clients send
/// it). Cloning and dropping such a `Bytes` touches no reference count, where a name cut
/// out of a connection's buffer costs an atomic operation at each (the gateway keeps a
/// command's arguments in several places).
pub fn static_name(i: usize, name: &[u8]) -> Option<bytes::Bytes> {
    static UPPER: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let lower = COMMANDS.get(i)?.name;
    if lower.as_bytes() == name {
        return Some(bytes::Bytes::from_static(lower.as_bytes()));
    }
    let upper = UPPER.get_or_init(|| COMMANDS.iter().map(|c| c.name.to_ascii_uppercase()).collect());
    let upper: &'static str = upper.get(i)?;
    (upper.as_bytes() == name).then(|| bytes::Bytes::from_static(upper.as_bytes()))
}

const LONGEST_NAME: usize = 32;

fn name_bucket(name: &[u8]) -> Option<usize> {
    let first = *name.first()?;
    (name.len() <= LONGEST_NAME).then(|| name.len() * 32 + (first.to_ascii_lowercase() & 31) as usize)
}

fn name_buckets() -> &'static [Vec<u16>] {
    static BUCKETS: std::sync::OnceLock<Vec<Vec<u16>>> = std::sync::OnceLock::new();
    BUCKETS.get_or_init(|| {
        let mut buckets = vec![Vec::new(); (LONGEST_NAME + 1) * 32];
        for (i, c) in COMMANDS.iter().enumerate() {
            if let Some(b) = name_bucket(c.name.as_bytes()) {
                buckets[b].push(i as u16);
            }
        }
        buckets
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_containers_subcommand_decides_whether_a_call_writes() {
        let function = lookup(b"function").unwrap();
        assert!(function.call_writes(&["function", "load", "code"]));
        assert!(function.call_writes(&["FUNCTION", "FLUSH"]));
        assert!(!function.call_writes(&["function", "list"]));
        assert!(lookup(b"set").unwrap().call_writes(&["set", "k", "v"]));
        assert!(!lookup(b"get").unwrap().call_writes(&["get", "k"]));
        let copy = *function;
        assert!(!copy.call_writes(&["function", "load", "code"]), "a spec not from the table is no container");
    }

    #[test]
    fn every_command_knows_its_version() {
        assert!(SINCE.windows(2).all(|w| w[0].0 < w[1].0));
        for spec in COMMANDS {
            assert!(SINCE.iter().any(|(n, _)| *n == spec.name), "{} has no `since`", spec.name);
        }
        assert_eq!(since(lookup(b"waitaof").unwrap()), "7.2.0");
        assert_eq!(since(lookup(b"get").unwrap()), "1.0.0");
    }

    #[test]
    fn every_name_is_found_in_any_case() {
        for (i, spec) in COMMANDS.iter().enumerate() {
            assert_eq!(index(spec.name.as_bytes()), Some(i), "{}", spec.name);
            assert_eq!(index(spec.name.to_uppercase().as_bytes()), Some(i), "{}", spec.name);
            let upper = spec.name.to_uppercase();
            assert_eq!(static_name(i, upper.as_bytes()).as_deref(), Some(upper.as_bytes()));
            assert_eq!(static_name(i, spec.name.as_bytes()).as_deref(), Some(spec.name.as_bytes()));
            assert_eq!(static_name(i, b"Mixed"), None);
        }
        for name in [&b""[..], b"ge", b"gett", b"g\xe5t", &[b'a'; 40], b"\x07et", b"GET\0"] {
            assert_eq!(index(name), None, "{name:?}");
        }
    }

    #[test]
    fn flag_bits_match_the_flag_names() {
        for spec in COMMANDS {
            for flag in Flag::ALL {
                assert_eq!(spec.has(flag), spec.flags.contains(&flag.name()), "{} {flag:?}", spec.name);
            }
        }
        assert!(lookup(b"set").unwrap().has(Flag::Write) && lookup(b"blpop").unwrap().has(Flag::Blocking));
        assert!(!lookup(b"get").unwrap().has(Flag::Write) && lookup(b"get").unwrap().has(Flag::Readonly));
    }

    #[test]
    fn table_is_sorted_and_unique() {
        for pair in COMMANDS.windows(2) {
            assert!(pair[0].name < pair[1].name, "{} before {}", pair[0].name, pair[1].name);
        }
    }

    #[test]
    fn lookup_is_case_insensitive() {
        assert_eq!(lookup(b"GET").map(|c| c.name), Some("get"));
        assert_eq!(lookup(b"gEt").map(|c| c.name), Some("get"));
        assert!(lookup(b"nosuch").is_none());
        assert!(lookup(&[b'x'; 100]).is_none());
    }

    #[test]
    fn arity_rules() {
        let get = lookup(b"get").unwrap();
        assert!(get.arity_ok(2) && !get.arity_ok(1) && !get.arity_ok(3));
        let set = lookup(b"set").unwrap();
        assert!(set.arity_ok(3) && set.arity_ok(7) && !set.arity_ok(2));
    }

    #[test]
    fn key_positions() {
        let keys = |name: &[u8], argc| lookup(name).unwrap().key_indexes(argc).collect::<Vec<_>>();
        assert_eq!(keys(b"get", 2), vec![1]);
        assert_eq!(keys(b"mset", 5), vec![1, 3]);
        assert_eq!(keys(b"del", 4), vec![1, 2, 3]);
        assert_eq!(keys(b"rename", 3), vec![1, 2]);
        assert_eq!(keys(b"copy", 5), vec![1, 2]);
        assert_eq!(keys(b"ping", 1), Vec::<usize>::new());
        let moving = |words: &[&str]| super::key_positions(lookup(words[0].as_bytes()).unwrap(), words);
        assert_eq!(moving(&["zunionstore", "d", "2", "a", "b", "WEIGHTS", "1", "2"]), vec![1, 3, 4]);
        assert_eq!(moving(&["lmpop", "2", "a", "b", "LEFT"]), vec![2, 3]);
        assert_eq!(moving(&["blmpop", "0", "1", "a", "LEFT"]), vec![3]);
        assert_eq!(moving(&["sintercard", "99", "a"]), vec![2]);
        assert_eq!(moving(&["eval", "return 1", "2", "a", "b", "arg"]), vec![3, 4]);
        assert_eq!(moving(&["zinter", "x", "a"]), Vec::<usize>::new());
        assert_eq!(moving(&["mget", "a", "b"]), vec![1, 2]);
    }
}
