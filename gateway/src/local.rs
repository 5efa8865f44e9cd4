//! Commands the gateway answers itself: connection state (PING, ECHO, HELLO, SELECT, QUIT,
//! RESET, CLIENT), COMMAND, TIME. INFO is prepared here and completed with the node's part.

use bytes::Bytes;
use ferrocache_common::command::{lookup, CommandSpec, Flag, COMMANDS};
use ferrocache_common::reply::errors;
use ferrocache_common::Reply;

use crate::connection::Session;

pub enum Local {
    Reply(Reply),
    /// Reply, then close the connection (QUIT).
    Close(Reply),
    /// INFO: these sections (lowercase; empty = default).
    Info(Vec<String>),
    /// ROLE: made from the node's replication section.
    Role,
    /// LASTSAVE: the node's `rdb_last_save_time`.
    LastSave,
}

fn text(s: &str) -> Reply {
    Reply::Bulk(Bytes::copy_from_slice(s.as_bytes()))
}

fn lower(arg: &[u8]) -> String {
    String::from_utf8_lossy(arg).to_ascii_lowercase()
}

pub fn handle(session: &mut Session, spec: &CommandSpec, args: &[Bytes]) -> Local {
    let r = match spec.name {
        "ping" => match args.len() {
            1 => Reply::Simple("PONG".into()),
            2 => Reply::Bulk(args[1].clone()),
            _ => Reply::error(errors::wrong_arity("ping")),
        },
        "echo" => Reply::Bulk(args[1].clone()),
        "quit" => return Local::Close(Reply::ok()),
        "reset" => {
            session.reset();
            Reply::Simple("RESET".into())
        }
        "hello" => hello(session, args),
        "client" => client(session, args),
        "command" => command(args),
        "time" => {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            Reply::Array(vec![text(&now.as_secs().to_string()), text(&now.subsec_micros().to_string())])
        }
        "info" => return Local::Info(args[1..].iter().map(|a| lower(a)).collect()),
        "role" => return Local::Role,
        "lastsave" => return Local::LastSave,
        "lolwut" => lolwut(args),
        "module" => module(args),
        // Redis's answer while `enable-debug-command` is `no`, its default (ElastiCache
        // offers no DEBUG either).
        "debug" => Reply::error(
            "ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.",
        ),
        "failover" => Reply::error("ERR FAILOVER is not allowed inside a transaction"),
        // Outside MULTI the connection starts MONITOR itself (it needs the group's feed).
        "monitor" => Reply::error("ERR MONITOR isn't allowed for DENY BLOCKING client"),
        "slowlog" => crate::stats::slowlog(&session.stats, args),
        "latency" => crate::stats::latency(&session.stats, args, session.proto()),
        other => Reply::error(format!("ERR '{other}' is not answered by the gateway")),
    };
    Local::Reply(r)
}

/// LOLWUT [VERSION v]: the version line (Redis draws art for versions 5 and 6 only, and
/// answers every other version with this line alone).
fn lolwut(args: &[Bytes]) -> Reply {
    let mut i = 1;
    while i < args.len() {
        if args[i].eq_ignore_ascii_case(b"version") && i + 1 < args.len() {
            if ferrocache_common::int::parse_i64(&args[i + 1]).is_none() {
                return Reply::error(errors::NOT_INTEGER);
            }
            i += 1;
        }
        i += 1;
    }
    text(&format!("Redis ver. {}\n", crate::REDIS_VERSION))
}

/// MODULE: none are loaded, and none can be (Redis's answer while `enable-module-command`
/// is `no`, its default; ElastiCache offers no modules either).
fn module(args: &[Bytes]) -> Reply {
    const HELP: &[&str] = &[
        "MODULE <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "LIST",
        "    Return a list of loaded modules.",
        "LOAD <path> [<arg> ...]",
        "    Load a module library from <path>, passing to it any optional arguments.",
        "LOADEX <path> [[CONFIG NAME VALUE] [CONFIG NAME VALUE]] [ARGS ...]",
        "    Load a module library from <path>, while passing it module configurations and optional arguments.",
        "UNLOAD <name>",
        "    Unload a module.",
        "HELP",
        "    Print this help.",
    ];
    let sub = lower(&args[1]);
    match (sub.as_str(), args.len()) {
        ("list", 2) => Reply::Array(Vec::new()),
        ("help", 2) => Reply::Array(HELP.iter().map(|l| Reply::Simple((*l).into())).collect()),
        ("load", 3..) | ("loadex", 3..) | ("unload", 3) => Reply::error(
            "ERR MODULE command not allowed. If the enable-module-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.",
        ),
        ("list" | "help" | "load" | "loadex" | "unload", _) => {
            Reply::error(format!("ERR wrong number of arguments for 'module|{sub}' command"))
        }
        _ => Reply::error(format!("ERR unknown subcommand '{}'. Try MODULE HELP.", String::from_utf8_lossy(&args[1]))),
    }
}

fn hello(session: &mut Session, args: &[Bytes]) -> Reply {
    let mut i = 1;
    let mut proto = None;
    if let Some(v) = args.get(1) {
        match ferrocache_common::int::parse_i64(v) {
            Some(p @ 2..=3) => proto = Some(p as u8),
            Some(_) => return Reply::error("NOPROTO unsupported protocol version"),
            None => return Reply::error("ERR Protocol version is not an integer or out of range"),
        }
        i = 2;
    }
    // Options are checked before anything changes: a failed AUTH leaves the protocol as it was.
    let mut auth = None;
    let mut j = i;
    while j < args.len() {
        match lower(&args[j]).as_str() {
            "auth" if j + 2 < args.len() => {
                auth = Some((args[j + 1].clone(), args[j + 2].clone()));
                j += 3;
            }
            "setname" if j + 1 < args.len() => j += 2,
            _ => {
                return Reply::error(format!(
                    "ERR Syntax error in HELLO option '{}'",
                    String::from_utf8_lossy(&args[j])
                ))
            }
        }
    }
    match auth {
        Some((user, pass)) => {
            if let Err(e) = session.login(&user, &pass) {
                return e;
            }
        }
        None if session.user().is_none() => return Reply::error(crate::acl::errors::HELLO_NOAUTH),
        None => {}
    }
    if let Some(p) = proto {
        session.set_proto(p);
    }
    while i < args.len() {
        let opt = lower(&args[i]);
        match opt.as_str() {
            "auth" if i + 2 < args.len() => i += 3,
            "setname" if i + 1 < args.len() => {
                if let Err(e) = session.set_name(&args[i + 1]) {
                    return e;
                }
                i += 2;
            }
            _ => {
                return Reply::error(format!(
                    "ERR Syntax error in HELLO option '{}'",
                    String::from_utf8_lossy(&args[i])
                ))
            }
        }
    }
    Reply::Map(vec![
        text("server"),
        text("redis"),
        text("version"),
        text(crate::REDIS_VERSION),
        text("proto"),
        Reply::Integer(session.proto() as i64),
        text("id"),
        Reply::Integer(session.id() as i64),
        text("mode"),
        text("standalone"),
        text("role"),
        text("master"),
        text("modules"),
        Reply::Array(vec![]),
    ])
}

fn client(session: &mut Session, args: &[Bytes]) -> Reply {
    let sub = lower(&args[1]);
    let arity_err = || Reply::error(format!("ERR wrong number of arguments for 'client|{sub}' command"));
    match sub.as_str() {
        "id" if args.len() == 2 => Reply::Integer(session.id() as i64),
        "getname" if args.len() == 2 => {
            let name = session.info().name;
            if name.is_empty() {
                Reply::NullBulk
            } else {
                text(&name)
            }
        }
        "setname" if args.len() == 3 => match session.set_name(&args[2]) {
            Ok(()) => Reply::ok(),
            Err(e) => e,
        },
        "setinfo" if args.len() == 4 => {
            let value = String::from_utf8_lossy(&args[3]).into_owned();
            if value.chars().any(|c| c == ' ' || c == '\n' || !(' '..='~').contains(&c)) {
                return Reply::error(format!(
                    "ERR {} cannot contain spaces, newlines or special characters.",
                    lower(&args[2])
                ));
            }
            match lower(&args[2]).as_str() {
                "lib-name" => session.update(|c| c.lib_name = value),
                "lib-ver" => session.update(|c| c.lib_ver = value),
                _ => return Reply::error(format!("ERR Unrecognized option '{}'", String::from_utf8_lossy(&args[2]))),
            }
            Reply::ok()
        }
        "info" if args.len() == 2 => Reply::Verbatim(Bytes::from(format!("{}\n", session.info().line(Some(args))))),
        "reply" if args.len() == 3 => {
            let mode = match lower(&args[2]).as_str() {
                "on" => crate::connection::ReplyMode::On,
                "off" => crate::connection::ReplyMode::Off,
                "skip" => crate::connection::ReplyMode::Skip,
                _ => return Reply::error(errors::SYNTAX),
            };
            session.set_reply_mode(mode);
            Reply::ok()
        }
        // Gateways never evict clients to free memory: the flag is shown, nothing to exempt.
        "no-evict" | "no-touch" if args.len() == 3 => {
            let on = match lower(&args[2]).as_str() {
                "on" => true,
                "off" => false,
                _ => return Reply::error(errors::SYNTAX),
            };
            if sub == "no-evict" {
                session.no_evict = on;
            } else {
                session.no_touch = on;
            }
            Reply::ok()
        }
        "list" => client_list(session, args),
        "kill" if args.len() >= 3 => client_kill(session, args),
        "pause" if args.len() == 3 || args.len() == 4 => {
            let Some(ms) = ferrocache_common::int::parse_i64(&args[2]) else {
                return Reply::error("ERR timeout is not an integer or out of range");
            };
            if ms < 0 {
                return Reply::error("ERR timeout is negative");
            }
            let writes_only = match args.get(3).map(|a| lower(a)).as_deref() {
                None | Some("all") => false,
                Some("write") => true,
                Some(_) => return Reply::error("ERR CLIENT PAUSE mode must be WRITE or ALL"),
            };
            // A timeout past what the clock can hold pauses for a year (until UNPAUSE).
            let now = tokio::time::Instant::now();
            let year = std::time::Duration::from_secs(365 * 86_400);
            let until = now.checked_add(std::time::Duration::from_millis(ms as u64)).unwrap_or(now + year);
            session.pause.pause(until, writes_only);
            Reply::ok()
        }
        "unpause" if args.len() == 2 => {
            session.pause.unpause();
            Reply::ok()
        }
        "unblock" if args.len() == 3 || args.len() == 4 => {
            let Some(id) = ferrocache_common::int::parse_i64(&args[2]) else {
                return Reply::error(errors::NOT_INTEGER);
            };
            let error = match args.get(3).map(|a| lower(a)).as_deref() {
                None | Some("timeout") => false,
                Some("error") => true,
                Some(_) => return Reply::error("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR"),
            };
            let target = u64::try_from(id).ok().and_then(|id| session.clients().get(id, &session.scope()));
            let Some(target) = target else { return Reply::Integer(0) };
            let info = target.lock();
            if !info.state.blocked {
                return Reply::Integer(0);
            }
            *info.control.unblock.lock() = Some(error);
            info.control.attention.notify_one();
            Reply::Integer(1)
        }
        // Outside MULTI these are the connection's (connection/mod.rs, tracking.rs); queued in
        // a transaction they answer as a client that does not track.
        "getredir" if args.len() == 2 => Reply::Integer(-1),
        "trackinginfo" if args.len() == 2 => Reply::Map(vec![
            text("flags"),
            Reply::Set(vec![text("off")]),
            text("redirect"),
            Reply::Integer(-1),
            text("prefixes"),
            Reply::Array(Vec::new()),
        ]),
        "caching" if args.len() == 3 => Reply::error(
            "ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled",
        ),
        "tracking" if args.len() >= 3 => Reply::error("ERR CLIENT TRACKING is not served inside MULTI"),
        "help" if args.len() == 2 => Reply::Array(CLIENT_HELP.iter().map(|l| Reply::Simple((*l).into())).collect()),
        "id" | "getname" | "setname" | "setinfo" | "info" | "reply" | "no-evict" | "no-touch" | "kill" | "pause"
        | "unpause" | "unblock" | "getredir" | "trackinginfo" | "caching" | "tracking" | "help" => arity_err(),
        _ => Reply::error(format!("ERR unknown subcommand '{}'. Try CLIENT HELP.", String::from_utf8_lossy(&args[1]))),
    }
}

const CLIENT_HELP: &[&str] = &[
    "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CACHING (YES|NO)",
    "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
    "GETREDIR",
    "    Return the client ID we are redirecting to when tracking is enabled.",
    "GETNAME",
    "    Return the name of the current connection.",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "KILL <ip:port>",
    "    Kill connection made from <ip:port>.",
    "KILL <option> <value> [<option> <value> [...]]",
    "    Kill connections. Options are:",
    "    * ADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made from the specified address",
    "    * LADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made to specified local address",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Kill connections by type.",
    "    * USER <username>",
    "      Kill connections authenticated by <username>.",
    "    * SKIPME (YES|NO)",
    "      Skip killing current connection (default: yes).",
    "LIST [options ...]",
    "    Return information about client connections. Options:",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Return clients of specified type.",
    "UNPAUSE",
    "    Stop the current client pause, resuming traffic.",
    "PAUSE <timeout> [WRITE|ALL]",
    "    Suspend all, or just write, clients for <timeout> milliseconds.",
    "REPLY (ON|OFF|SKIP)",
    "    Control the replies sent to the current connection.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "SETINFO <option> <value>",
    "    Set client meta attr. Options are:",
    "    * LIB-NAME: the client lib name.",
    "    * LIB-VER: the client lib version.",
    "UNBLOCK <clientid> [TIMEOUT|ERROR]",
    "    Unblock the specified blocked client.",
    "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
    "         [OPTIN] [OPTOUT] [NOLOOP]",
    "    Control server assisted client side caching.",
    "TRACKINGINFO",
    "    Report tracking status for the current connection.",
    "NO-EVICT (ON|OFF)",
    "    Protect current client connection from eviction.",
    "NO-TOUCH (ON|OFF)",
    "    Will not touch LRU/LFU stats when this mode is on.",
    "HELP",
    "    Print this help.",
];

/// A connection's type for CLIENT LIST / KILL TYPE (gateways have normal and pub/sub ones).
fn client_type(c: &crate::clients::ClientInfo) -> &'static str {
    if c.state.sub + c.state.psub + c.state.ssub > 0 {
        "pubsub"
    } else {
        "normal"
    }
}

/// Redis's type names (`slave` for replica); None for an unknown one.
fn type_filter(arg: &[u8]) -> Option<&'static str> {
    match lower(arg).as_str() {
        "normal" => Some("normal"),
        "pubsub" => Some("pubsub"),
        "master" => Some("master"),
        "replica" | "slave" => Some("replica"),
        _ => None,
    }
}

/// CLIENT LIST [TYPE type] [ID id ...].
fn client_list(session: &Session, args: &[Bytes]) -> Reply {
    let mut wanted_type = None;
    let mut ids: Option<Vec<u64>> = None;
    let mut i = 2;
    while i < args.len() {
        match lower(&args[i]).as_str() {
            "type" if i + 1 < args.len() => {
                let Some(t) = type_filter(&args[i + 1]) else {
                    return Reply::error(format!(
                        "ERR Unknown client type '{}'",
                        String::from_utf8_lossy(&args[i + 1])
                    ));
                };
                wanted_type = Some(t);
                i += 2;
            }
            "id" if i + 1 < args.len() => {
                let mut list = Vec::new();
                for a in &args[i + 1..] {
                    match ferrocache_common::int::parse_i64(a) {
                        Some(id) if id > 0 => list.push(id as u64),
                        _ => return Reply::error("ERR Invalid client ID"),
                    }
                }
                ids = Some(list);
                i = args.len();
            }
            _ => return Reply::error(errors::SYNTAX),
        }
    }
    let mut out = String::new();
    for c in session.clients().list(&session.scope()) {
        if wanted_type.is_some_and(|t| t != client_type(&c)) || ids.as_ref().is_some_and(|ids| !ids.contains(&c.id)) {
            continue;
        }
        out.push_str(&c.line((c.id == session.id()).then_some(args)));
        out.push('\n');
    }
    Reply::Verbatim(Bytes::from(out))
}

/// CLIENT KILL addr (old form: OK or no such client) or CLIENT KILL <filter value> ...
/// (the number killed); only the connections of this group on this gateway are seen (on a
/// cluster node port, that port's).
fn client_kill(session: &Session, args: &[Bytes]) -> Reply {
    let clients = session.clients().list(&session.scope());
    if args.len() == 3 {
        let addr = String::from_utf8_lossy(&args[2]);
        return match clients.iter().find(|c| c.addr.to_string() == addr) {
            Some(c) => {
                c.control.kill.cancel();
                Reply::ok()
            }
            None => Reply::error("ERR No such client"),
        };
    }
    if !args.len().is_multiple_of(2) {
        return Reply::error(errors::SYNTAX);
    }
    let (mut id, mut kind, mut user, mut addr, mut laddr, mut skipme) = (None, None, None, None, None, true);
    for pair in args[2..].chunks(2) {
        let value = &pair[1];
        match lower(&pair[0]).as_str() {
            "id" => match ferrocache_common::int::parse_i64(value) {
                Some(n) if n > 0 => id = Some(n as u64),
                _ => return Reply::error("ERR client-id should be greater than 0"),
            },
            "type" => match type_filter(value) {
                Some(t) => kind = Some(t),
                None => return Reply::error(format!("ERR Unknown client type '{}'", String::from_utf8_lossy(value))),
            },
            "user" => {
                let name = String::from_utf8_lossy(value).into_owned();
                if !session.user_exists(&name) {
                    return Reply::error(format!("ERR No such user '{name}'"));
                }
                user = Some(name);
            }
            "addr" => addr = Some(String::from_utf8_lossy(value).into_owned()),
            "laddr" => laddr = Some(String::from_utf8_lossy(value).into_owned()),
            "skipme" => match lower(value).as_str() {
                "yes" => skipme = true,
                "no" => skipme = false,
                _ => return Reply::error(errors::SYNTAX),
            },
            _ => return Reply::error(errors::SYNTAX),
        }
    }
    let mut killed = 0;
    for c in &clients {
        let user_of = if c.user.is_empty() { "default" } else { c.user.as_str() };
        let skip = (skipme && c.id == session.id())
            || id.is_some_and(|id| id != c.id)
            || kind.is_some_and(|k| k != client_type(c))
            || user.as_deref().is_some_and(|u| u != user_of)
            || addr.as_deref().is_some_and(|a| a != c.addr.to_string())
            || laddr.as_deref().is_some_and(|a| a != c.laddr);
        if !skip {
            c.control.kill.cancel();
            killed += 1;
        }
    }
    Reply::Integer(killed)
}

/// A command's ACL categories (COMMAND INFO's seventh field).
fn categories(name: &str) -> &'static [&'static str] {
    use ferrocache_common::acl::categories::{entries, entry_index};
    entry_index(name).map_or(&[], |i| entries()[i].categories.as_slice())
}

/// A command's categories in Redis's order (ACL CAT's), as COMMAND INFO lists them.
fn ordered_categories(name: &str) -> Vec<&'static str> {
    use ferrocache_common::acl::categories::CATEGORIES;
    let mut cats = categories(name).to_vec();
    cats.sort_by_key(|c| CATEGORIES.iter().position(|k| k == c));
    cats
}

/// COMMAND LIST [FILTERBY MODULE name | ACLCAT category | PATTERN pattern]: every command
/// and container subcommand (`config|get`), as Redis lists them.
fn command_list(args: &[Bytes]) -> Reply {
    use ferrocache_common::acl::categories::{entries, in_category};
    let keep: Box<dyn Fn(&ferrocache_common::acl::categories::Entry) -> bool> = match args {
        [_, _] => Box::new(|_| true),
        [_, _, by, kind, value] if lower(by) == "filterby" => match lower(kind).as_str() {
            // No modules are loaded.
            "module" => Box::new(|_| false),
            "aclcat" => {
                let category = lower(value);
                Box::new(move |e| in_category(e, &category))
            }
            "pattern" => {
                // Redis matches without case; names are lowercase.
                let pattern = value.to_ascii_lowercase();
                Box::new(move |e| ferrocache_common::glob::glob_match(&pattern, e.name.as_bytes()))
            }
            _ => return Reply::error(errors::SYNTAX),
        },
        _ => return Reply::error(errors::SYNTAX),
    };
    let all = entries();
    let mut out = Vec::new();
    for (i, c) in all.iter().enumerate().filter(|(_, e)| e.parent.is_none()) {
        out.extend(
            std::iter::once(c)
                .chain(all.iter().filter(|e| e.parent == Some(i)))
                .filter(|e| keep(e))
                .map(|e| text(&e.name)),
        );
    }
    Reply::Array(out)
}

/// COMMAND INFO of a command or a subcommand (`config|get`); nil for an unknown name.
fn info_of(name: &[u8]) -> Reply {
    if let Some(c) = lookup(name) {
        return command_info(c);
    }
    let name = lower(name);
    let served = ferrocache_common::acl::categories::entry_index(&name).is_some();
    match ferrocache_common::subcommands::lookup(&name).filter(|_| served) {
        Some(s) => info_entry(s.name, s.arity, s.flags, (s.first_key, s.last_key, s.step), Vec::new()),
        None => Reply::NullArray,
    }
}

fn command_info(c: &CommandSpec) -> Reply {
    use ferrocache_common::acl::categories::{entries, entry_index};
    // A container lists the subcommands served, each as an entry of its own.
    let index = entry_index(c.name);
    let subcommands = entries()
        .iter()
        .filter(|e| e.parent.is_some() && e.parent == index)
        .filter_map(|e| ferrocache_common::subcommands::lookup(&e.name))
        .map(|s| info_entry(s.name, s.arity, s.flags, (s.first_key, s.last_key, s.step), Vec::new()))
        .collect();
    if ferrocache_common::acl::categories::is_container(c.name) {
        // As Redis describes a container: its subcommands carry the flags and keys.
        let flags: &[&str] = if c.name == "command" { &["loading", "stale"] } else { &[] };
        let mut entry = info_entry(c.name, c.arity, flags, (0, 0, 0), subcommands);
        if let Reply::Array(items) = &mut entry {
            let cats = if c.name == "command" { vec!["@slow", "@connection"] } else { vec!["@slow"] };
            items[6] = Reply::Set(cats.into_iter().map(|c| Reply::Simple(c.to_string())).collect());
        }
        return entry;
    }
    info_entry(c.name, c.arity, c.flags, (c.first_key, c.last_key, c.step), subcommands)
}

/// One COMMAND INFO entry: name, arity, flags, key positions, ACL categories, tips, key
/// specifications (both as redis-server gives them) and subcommands.
fn info_entry(name: &str, arity: i32, flags: &[&str], keys: (i32, i32, i32), subcommands: Vec<Reply>) -> Reply {
    let described = ferrocache_common::command_docs::describe(name);
    Reply::Array(vec![
        text(name),
        Reply::Integer(arity as i64),
        Reply::Set(flags.iter().map(|f| Reply::Simple(f.to_string())).collect()),
        Reply::Integer(keys.0 as i64),
        Reply::Integer(keys.1 as i64),
        Reply::Integer(keys.2 as i64),
        Reply::Set(ordered_categories(name).into_iter().map(|cat| Reply::Simple(format!("@{cat}"))).collect()),
        described.map_or(Reply::Set(vec![]), |d| d.tips.clone()),
        described.map_or(Reply::Set(vec![]), |d| d.key_specs.clone()),
        Reply::Set(subcommands),
    ])
}

/// COMMAND DOCS of a command or subcommand: Redis's documentation (complexity, history,
/// arguments ...), with the summary, version and group of the command table, and a
/// container's served subcommands.
fn docs_of(name: &str) -> Option<Reply> {
    use ferrocache_common::acl::categories::{entries, entry_index};
    let index = entry_index(name)?;
    let described = ferrocache_common::command_docs::describe(name);
    let mut map = Vec::new();
    if let Some(c) = lookup(name.as_bytes()) {
        let since = ferrocache_common::command::since(c);
        map.extend([text("summary"), text(c.summary), text("since"), text(since), text("group"), text(c.group)]);
    }
    if let Some(d) = described {
        for kv in d.docs.chunks(2) {
            let own = map.chunks(2).any(|m| m[0] == kv[0]);
            if !own {
                map.extend(kv.iter().cloned());
            }
        }
    }
    let subcommands: Vec<Reply> = entries()
        .iter()
        .filter(|e| e.parent == Some(index))
        .filter_map(|e| Some([text(&e.name), docs_of(&e.name)?]))
        .flatten()
        .collect();
    if !subcommands.is_empty() {
        map.extend([text("subcommands"), Reply::Map(subcommands)]);
    }
    Some(Reply::Map(map))
}

/// COMMAND GETKEYS / GETKEYSANDFLAGS `<command> [args...]`, with Redis's errors.
fn getkeys(args: &[Bytes], with_flags: bool) -> Reply {
    use ferrocache_common::command_docs;
    let Some(spec) = lookup(&args[2]) else {
        return Reply::error("ERR Invalid command specified");
    };
    let cmd = &args[2..];
    // A container's keys are its subcommand's (OBJECT ENCODING key).
    let name = if ferrocache_common::acl::categories::is_container(spec.name) {
        let Some(sub) = cmd.get(1) else {
            return Reply::error("ERR Invalid number of arguments specified for command");
        };
        let name = format!("{}|{}", spec.name, lower(sub));
        if command_docs::describe(&name).is_none() {
            return Reply::error("ERR Invalid command specified");
        }
        name
    } else {
        spec.name.to_string()
    };
    let has_keys = match command_docs::describe(&name) {
        Some(_) => command_docs::has_keys(&name),
        None => spec.first_key != 0,
    };
    if !has_keys {
        return Reply::error("ERR The command has no key arguments");
    }
    if !spec.arity_ok(cmd.len()) {
        return Reply::error("ERR Invalid number of arguments specified for command");
    }
    // Movable keys too (EVAL's numkeys, XREAD's STREAMS, SORT's STORE, ...).
    let positions = ferrocache_common::command::key_positions(spec, cmd);
    let keys: Vec<Reply> = command_docs::keys_and_flags(&name, cmd, &positions)
        .into_iter()
        .filter(|(i, _)| *i < cmd.len())
        .map(|(i, flags)| {
            let key = Reply::Bulk(cmd[i].clone());
            if !with_flags {
                return key;
            }
            let flags = flags.into_iter().map(|f| Reply::Simple(f.to_string())).collect();
            Reply::Array(vec![key, Reply::Set(flags)])
        })
        .collect();
    if keys.is_empty() && !spec.has(Flag::NoMandatoryKeys) {
        return Reply::error("ERR Invalid arguments specified for command");
    }
    Reply::Array(keys)
}

fn command(args: &[Bytes]) -> Reply {
    if args.len() == 1 {
        return Reply::Array(COMMANDS.iter().map(command_info).collect());
    }
    let sub = lower(&args[1]);
    match sub.as_str() {
        "count" if args.len() == 2 => Reply::Integer(COMMANDS.len() as i64),
        // Any other shape than `LIST` or `LIST FILTERBY <kind> <value>` is a syntax error.
        "list" => command_list(args),
        "info" => {
            if args.len() == 2 {
                return Reply::Array(COMMANDS.iter().map(command_info).collect());
            }
            Reply::Array(args[2..].iter().map(|n| info_of(n)).collect())
        }
        "docs" => {
            let names: Vec<String> = if args.len() == 2 {
                COMMANDS.iter().map(|c| c.name.to_string()).collect()
            } else {
                args[2..].iter().map(|n| lower(n)).collect()
            };
            Reply::Map(names.into_iter().filter_map(|n| Some([text(&n), docs_of(&n)?])).flatten().collect())
        }
        "getkeys" | "getkeysandflags" if args.len() >= 4 => getkeys(args, sub == "getkeysandflags"),
        "count" | "getkeys" | "getkeysandflags" => {
            Reply::error(format!("ERR wrong number of arguments for 'command|{sub}' command"))
        }
        _ => Reply::error(format!("ERR unknown subcommand '{}'. Try COMMAND HELP.", String::from_utf8_lossy(&args[1]))),
    }
}
