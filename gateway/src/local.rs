//! Commands the gateway answers itself: connection state (PING, ECHO, HELLO, SELECT, QUIT,
//! RESET, CLIENT), COMMAND, TIME. INFO is prepared here and completed with the node's part.

use bytes::Bytes;
use ferrocache_common::command::{lookup, CommandSpec, COMMANDS};
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
        "select" => match ferrocache_common::int::parse_i64(&args[1]) {
            Some(0) => Reply::ok(),
            Some(_) => Reply::error(errors::DB_INDEX),
            None => Reply::error(errors::NOT_INTEGER),
        },
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
        "monitor" if session.in_multi() => Reply::error("ERR MONITOR isn't allowed for DENY BLOCKING client"),
        "monitor" => {
            session.start_monitor();
            Reply::ok()
        }
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
        "info" if args.len() == 2 => Reply::Verbatim(Bytes::from(format!("{}\n", session.info().line()))),
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
        // Gateways never evict clients to free memory: nothing to exempt.
        "no-evict" if args.len() == 3 => match lower(&args[2]).as_str() {
            "on" | "off" => Reply::ok(),
            _ => Reply::error(errors::SYNTAX),
        },
        "list" => {
            let mut out = String::new();
            for c in session.clients().list() {
                out.push_str(&c.line());
                out.push('\n');
            }
            Reply::Verbatim(Bytes::from(out))
        }
        "id" | "getname" | "setname" | "setinfo" | "info" | "reply" | "no-evict" => arity_err(),
        _ => Reply::error(format!("ERR unknown subcommand '{}'. Try CLIENT HELP.", String::from_utf8_lossy(&args[1]))),
    }
}

fn command_info(c: &CommandSpec) -> Reply {
    Reply::Array(vec![
        text(c.name),
        Reply::Integer(c.arity as i64),
        Reply::Set(c.flags.iter().map(|f| Reply::Simple(f.to_string())).collect()),
        Reply::Integer(c.first_key as i64),
        Reply::Integer(c.last_key as i64),
        Reply::Integer(c.step as i64),
        Reply::Set(vec![Reply::Simple(format!("@{}", c.group))]),
        Reply::Array(vec![]),
        Reply::Array(vec![]),
        Reply::Array(vec![]),
    ])
}

fn command_docs(c: &CommandSpec) -> Reply {
    Reply::Map(vec![text("summary"), text(c.summary), text("since"), text("1.0.0"), text("group"), text(c.group)])
}

fn command(args: &[Bytes]) -> Reply {
    if args.len() == 1 {
        return Reply::Array(COMMANDS.iter().map(command_info).collect());
    }
    let sub = lower(&args[1]);
    match sub.as_str() {
        "count" if args.len() == 2 => Reply::Integer(COMMANDS.len() as i64),
        "list" if args.len() == 2 => Reply::Array(COMMANDS.iter().map(|c| text(c.name)).collect()),
        "info" => {
            if args.len() == 2 {
                return Reply::Array(COMMANDS.iter().map(command_info).collect());
            }
            Reply::Array(args[2..].iter().map(|n| lookup(n).map_or(Reply::NullArray, command_info)).collect())
        }
        "docs" => {
            let specs: Vec<&CommandSpec> = if args.len() == 2 {
                COMMANDS.iter().collect()
            } else {
                args[2..].iter().filter_map(|n| lookup(n)).collect()
            };
            Reply::Map(specs.into_iter().flat_map(|c| [text(c.name), command_docs(c)]).collect())
        }
        "getkeys" if args.len() >= 3 => {
            let Some(spec) = lookup(&args[2]) else {
                return Reply::error("ERR Invalid command specified");
            };
            let cmd = &args[2..];
            if !spec.arity_ok(cmd.len()) {
                return Reply::error("ERR Invalid number of arguments specified for command");
            }
            // Movable keys too (EVAL's numkeys, XREAD's STREAMS, SORT's STORE, ...).
            let keys: Vec<Reply> = ferrocache_common::command::key_positions(spec, cmd)
                .into_iter()
                .map(|i| Reply::Bulk(cmd[i].clone()))
                .collect();
            if keys.is_empty() {
                return Reply::error("ERR The command has no key arguments");
            }
            Reply::Array(keys)
        }
        "count" | "list" | "getkeys" => {
            Reply::error(format!("ERR wrong number of arguments for 'command|{sub}' command"))
        }
        _ => Reply::error(format!("ERR unknown subcommand '{}'. Try COMMAND HELP.", String::from_utf8_lossy(&args[1]))),
    }
}
