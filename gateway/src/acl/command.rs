//! The ACL command: WHOAMI, USERS, LIST, GETUSER, CAT, DRYRUN, LOG, GENPASS, HELP. Users are
//! managed through the admin API (CreateUser, ModifyUser, CreateUserGroup), which every
//! gateway follows; SETUSER, DELUSER, LOAD and SAVE say so, as ElastiCache refuses them.

use bytes::Bytes;
use ferrocache_common::acl::categories::{entries, CATEGORIES};
use ferrocache_common::acl::User;
use ferrocache_common::command;
use ferrocache_common::reply::errors;
use ferrocache_common::Reply;
use parking_lot::Mutex;

use super::{Acl, AclLog};

fn text(s: &str) -> Reply {
    Reply::Bulk(Bytes::copy_from_slice(s.as_bytes()))
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const HELP: &[&str] = &[
    "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CAT [<category>]",
    "    List all commands that belong to <category>, or all command categories",
    "    when no category is specified.",
    "DELUSER <username> [<username> ...]",
    "    Not served: users are managed with the admin API (DeleteUser).",
    "DRYRUN <username> <command> [<arg> ...]",
    "    Returns whether the user can execute the given command without executing the command.",
    "GETUSER <username>",
    "    Get the user's details.",
    "GENPASS [<bits>]",
    "    Generate a secure 256-bit user password. The optional `bits` argument can",
    "    be used to specify a different size.",
    "LIST",
    "    Show users details in config file format.",
    "LOG [<count> | RESET]",
    "    Show the ACL log entries.",
    "SETUSER <username> <attribute> [<attribute> ...]",
    "    Not served: users are managed with the admin API (CreateUser, ModifyUser).",
    "USERS",
    "    List all the registered usernames.",
    "WHOAMI",
    "    Return the current connection username.",
    "HELP",
    "    Print this help.",
];

/// Answers `ACL ...` for a connection logged in as `me`.
pub fn handle(me: &User, acl: &Acl, log: &Mutex<AclLog>, args: &[Bytes]) -> Reply {
    let sub = lossy(&args[1]).to_ascii_lowercase();
    let arity =
        |ok: bool| (!ok).then(|| Reply::error(format!("ERR wrong number of arguments for 'acl|{sub}' command")));
    // Subcommands whose table arity admits more arguments than they take: Redis's own
    // parser answers its generic subcommand error for the extra ones.
    let extra = |ok: bool| {
        (!ok).then(|| {
            Reply::error(format!(
                "ERR unknown subcommand or wrong number of arguments for '{}'. Try ACL HELP.",
                lossy(&args[1])
            ))
        })
    };
    match sub.as_str() {
        "whoami" => arity(args.len() == 2).unwrap_or_else(|| text(&me.name)),
        "users" => arity(args.len() == 2).unwrap_or_else(|| Reply::Array(acl.users().map(|u| text(&u.name)).collect())),
        "list" => arity(args.len() == 2).unwrap_or_else(|| Reply::Array(acl.users().map(|u| text(&u.describe())).collect())),
        "getuser" => arity(args.len() == 3).unwrap_or_else(|| match acl.user(&lossy(&args[2])) {
            Some(u) => getuser(u),
            None => Reply::NullBulk,
        }),
        "cat" => extra(args.len() <= 3).unwrap_or_else(|| cat(args.get(2))),
        "dryrun" => arity(args.len() >= 4).unwrap_or_else(|| dryrun(acl, &args[2..])),
        "log" => extra(args.len() <= 3).unwrap_or_else(|| match args.get(2) {
            None => log.lock().reply(10),
            Some(a) if a.eq_ignore_ascii_case(b"reset") => {
                log.lock().reset();
                Reply::ok()
            }
            Some(a) => match std::str::from_utf8(a).ok().and_then(|s| s.parse::<i64>().ok()) {
                Some(n) if n >= 0 => log.lock().reply(n as usize),
                _ => Reply::error("ERR value is out of range, must be positive"),
            },
        }),
        "genpass" => extra(args.len() <= 3).unwrap_or_else(|| genpass(args.get(2))),
        "setuser" | "deluser" | "load" | "save" => Reply::error(format!(
            "ERR ACL {} is not served by Ferrocache: users are managed with the admin API (CreateUser, ModifyUser, DeleteUser, CreateUserGroup) so that every gateway enforces the same users",
            sub.to_uppercase()
        )),
        "help" => Reply::Array(HELP.iter().map(|l| Reply::Simple(l.to_string())).collect()),
        _ => Reply::error(format!("ERR unknown subcommand '{}'. Try ACL HELP.", lossy(&args[1]))),
    }
}

fn getuser(u: &User) -> Reply {
    Reply::Map(vec![
        text("flags"),
        // A set in RESP3, as Redis sends it.
        Reply::Set(u.flags().into_iter().map(text).collect()),
        text("passwords"),
        Reply::Array(u.passwords.iter().map(|p| text(p)).collect()),
        text("commands"),
        text(&u.commands_description()),
        text("keys"),
        text(&u.keys_description()),
        text("channels"),
        text(&u.channels_description()),
        text("selectors"),
        Reply::Array(vec![]),
    ])
}

fn cat(category: Option<&Bytes>) -> Reply {
    let Some(c) = category else { return Reply::Array(CATEGORIES.iter().map(|c| text(c)).collect()) };
    let c = lossy(c).to_ascii_lowercase();
    if !CATEGORIES.contains(&c.as_str()) {
        return Reply::error(format!("ERR Unknown category '{c}'"));
    }
    Reply::Array(entries().iter().filter(|e| e.categories.contains(&c.as_str())).map(|e| text(&e.name)).collect())
}

fn dryrun(acl: &Acl, args: &[Bytes]) -> Reply {
    let name = lossy(&args[0]);
    let Some(user) = acl.user(&name) else { return Reply::error(format!("ERR User '{name}' not found")) };
    let cmd = &args[1..];
    let Some(spec) = command::lookup(&cmd[0]) else {
        return Reply::error(format!("ERR Command '{}' not found", lossy(&cmd[0])));
    };
    if !spec.arity_ok(cmd.len()) {
        return Reply::error(errors::wrong_arity(spec.name));
    }
    match user.check(spec, cmd) {
        Ok(()) => Reply::ok(),
        Err(denied) => text(&denied.message(&user.name)),
    }
}

fn genpass(bits: Option<&Bytes>) -> Reply {
    let bits = match bits {
        None => 256,
        Some(b) => match std::str::from_utf8(b).ok().and_then(|s| s.parse::<i64>().ok()) {
            Some(n @ 1..=4096) => n as usize,
            _ => {
                return Reply::error(
                    "ERR ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096",
                )
            }
        },
    };
    let chars = bits.div_ceil(4);
    let mut out = String::with_capacity(chars + 16);
    while out.len() < chars {
        out.push_str(&format!("{:016x}", rand::random::<u64>()));
    }
    out.truncate(chars);
    text(&out)
}
