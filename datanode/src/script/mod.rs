//! Lua scripting: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT, with Lua 5.1 as Redis
//! embeds it (one VM per node, made on first use).
//!
//! A script runs on the node inside the batch's critical section, so nothing interleaves
//! with it (Redis's atomicity). Its `redis.call`s go through the dispatch table like any
//! command, and what they change is recorded as their own effects, which the node frames
//! like a transaction's (Redis 7's effects replication): replicas and the log never run Lua.
//! SCRIPT LOAD and FLUSH are effects too, so replicas and restarts know the same scripts.
//!
//! A script may run long, as in Redis: it holds the node's lock, and the node's async side
//! asks [`busy::Busy`] before taking that lock, so heartbeats, links and other clients are
//! not stuck behind it. Past `busy-reply-threshold` other clients are answered BUSY, and
//! SCRIPT KILL / FUNCTION KILL stop a script that has not written yet. What a script wrote
//! before an error stays written, as in Redis.

pub mod busy;
mod convert;
mod functions;
mod libs;
mod msgpack;
mod structlib;
mod vm;

use bytes::Bytes;
use ferrocache_common::reply::errors;
use ferrocache_common::Reply;

use crate::cmd::{CmdResult, Ctx};
pub use vm::{sha1hex, Scripts};

/// What a script may use besides the keyspace.
pub struct Env<'a> {
    pub scripts: &'a mut Scripts,
    /// Over maxmemory when the script started: its `denyoom` commands fail (as in Redis).
    pub oom: bool,
    /// The slots this node group serves, when it does not serve them all: a script may
    /// touch keys of these only (Redis Cluster's rule for undeclared keys).
    pub slots: Option<&'a ferrocache_common::slot::SlotSet>,
    /// Some client runs MONITOR: the script's commands are written down for it.
    pub monitor: bool,
}

/// EVAL / EVALSHA (`by_sha`) and their _RO forms (`read_only`: writes fail inside).
pub(crate) fn eval(ctx: &mut Ctx<'_>, args: &[Bytes], by_sha: bool, read_only: bool) -> CmdResult {
    let numkeys = crate::cmd::parse_i64(&args[2]).ok_or_else(|| Reply::error(errors::NOT_INTEGER))?;
    if numkeys < 0 {
        return Err(Reply::error("ERR Number of keys can't be negative"));
    }
    if numkeys as usize > args.len() - 3 {
        return Err(Reply::error("ERR Number of keys can't be greater than number of args"));
    }
    let (keys, argv) = args[3..].split_at(numkeys as usize);
    let Some(env) = ctx.script.take() else {
        return Err(Reply::error("ERR scripts cannot run in this context"));
    };
    let busy = env.scripts.busy.clone();
    let _running = busy.start(busy::Kind::Eval);
    let limits = vm::Limits { busy: &busy, read_only, oom: env.oom, slots: env.slots, monitor: env.monitor };
    let result = env.scripts.run(ctx, &args[1], by_sha, limits, keys, argv);
    ctx.script = Some(env);
    result
}

/// FCALL / FCALL_RO (`read_only`) function numkeys key ... arg ...
pub(crate) fn fcall(ctx: &mut Ctx<'_>, args: &[Bytes], read_only: bool) -> CmdResult {
    let Some(env) = ctx.script.take() else {
        return Err(Reply::error("ERR scripts cannot run in this context"));
    };
    let result = (|| {
        // Redis looks the function up before it reads the number of keys.
        if !env.scripts.functions.exists(&args[1]) {
            return Err(Reply::error("ERR Function not found"));
        }
        let numkeys = crate::cmd::parse_i64(&args[2]).ok_or_else(|| Reply::error("ERR Bad number of keys provided"))?;
        if numkeys > args.len() as i64 - 3 {
            return Err(Reply::error("ERR Number of keys can't be greater than number of args"));
        }
        if numkeys < 0 {
            return Err(Reply::error("ERR Number of keys can't be negative"));
        }
        let (keys, argv) = args[3..].split_at(numkeys as usize);
        let busy = env.scripts.busy.clone();
        let stats = env.scripts.functions.stats();
        let _running = busy.start(busy::Kind::Function { name: args[1].clone(), command: args.to_vec(), stats });
        let limits = vm::Limits { busy: &busy, read_only, oom: env.oom, slots: env.slots, monitor: env.monitor };
        env.scripts.functions.call(ctx, &args[1], read_only, limits, keys, argv)
    })();
    ctx.script = Some(env);
    result
}

/// Most bytes FUNCTION RESTORE takes in library code.
const MAX_RESTORE: usize = 64 << 20;

/// FUNCTION LOAD / DELETE / FLUSH / LIST / DUMP / RESTORE / STATS / KILL / HELP. Changes
/// reach replicas and the log as effects (LOAD always with REPLACE, so replaying is safe).
pub(crate) fn function(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    crate::cmd::check_subcommand(
        args,
        "FUNCTION",
        &[
            ("delete", 3),
            ("dump", 2),
            ("flush", -2),
            ("help", 2),
            ("kill", 2),
            ("list", -2),
            ("load", -3),
            ("restore", -3),
            ("stats", 2),
        ],
    )?;
    let sub = args[1].to_ascii_uppercase();
    let Some(env) = ctx.script.take() else {
        return Err(Reply::error("ERR scripts cannot run in this context"));
    };
    let functions = &mut env.scripts.functions;
    let load_effect = |code: &Bytes| {
        vec![Bytes::from_static(b"FUNCTION"), Bytes::from_static(b"LOAD"), Bytes::from_static(b"REPLACE"), code.clone()]
    };
    let mut effects: Vec<Vec<Bytes>> = Vec::new();
    let result = match (sub.as_slice(), args.len()) {
        (b"LOAD", _) => {
            // Options come before the code, the last argument, as Redis reads them.
            let options = &args[2..args.len() - 1];
            match options.iter().find(|o| !o.eq_ignore_ascii_case(b"REPLACE")) {
                Some(unknown) => {
                    Err(Reply::error(format!("ERR Unknown option given: {}", String::from_utf8_lossy(unknown))))
                }
                None => {
                    let code = &args[args.len() - 1];
                    functions.load(code, !options.is_empty()).map(|name| {
                        effects.push(load_effect(code));
                        Reply::Bulk(Bytes::from(name))
                    })
                }
            }
        }
        (b"DELETE", 3) => {
            if functions.delete(&args[2]) {
                effects.push(args.to_vec());
                Ok(Reply::ok())
            } else {
                Err(Reply::error("ERR Library not found"))
            }
        }
        (b"FLUSH", 2 | 3) => {
            if args.get(2).is_none_or(|m| m.eq_ignore_ascii_case(b"ASYNC") || m.eq_ignore_ascii_case(b"SYNC")) {
                functions.flush();
                effects.push(args[..2].to_vec());
                Ok(Reply::ok())
            } else {
                Err(Reply::error("ERR FUNCTION FLUSH only supports SYNC|ASYNC option"))
            }
        }
        (b"LIST", _) => {
            let (mut with_code, mut pattern) = (false, None);
            let mut i = 2;
            let mut bad = None;
            while i < args.len() {
                if !with_code && args[i].eq_ignore_ascii_case(b"WITHCODE") {
                    with_code = true;
                } else if pattern.is_none() && args[i].eq_ignore_ascii_case(b"LIBRARYNAME") {
                    if i + 1 >= args.len() {
                        bad = Some(Reply::error("ERR library name argument was not given"));
                        break;
                    }
                    pattern = Some(args[i + 1].as_ref());
                    i += 1;
                } else {
                    bad = Some(Reply::error(format!("ERR Unknown argument {}", String::from_utf8_lossy(&args[i]))));
                    break;
                }
                i += 1;
            }
            match bad {
                Some(e) => Err(e),
                None => Ok(functions.list(pattern, with_code)),
            }
        }
        (b"DUMP", 2) => Ok(Reply::Bulk(Bytes::from(crate::rdb::dump_functions(&functions.codes())))),
        (b"RESTORE", 3 | 4) => {
            let policy = args.get(3).map(|p| p.to_ascii_uppercase());
            match policy.as_deref() {
                None | Some(b"APPEND") | Some(b"REPLACE") | Some(b"FLUSH") => {
                    match crate::rdb::restore_functions(&args[2], MAX_RESTORE) {
                        Err(e) => Err(Reply::error(e)),
                        Ok(codes) => restore(functions, &codes, policy.as_deref(), &mut effects, &load_effect),
                    }
                }
                Some(_) => Err(Reply::error(
                    "ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.",
                )),
            }
        }
        (b"STATS", 2) => Ok(functions.stats()),
        // Under the node's lock no function runs: a busy one is killed from `busy`.
        (b"KILL", 2) => Err(Reply::error("NOTBUSY No scripts in execution right now.")),
        (b"HELP", 2) => Ok(Reply::Array(FUNCTION_HELP.iter().map(|l| Reply::Simple((*l).into())).collect())),
        _ => Err(Reply::error(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try FUNCTION HELP.",
            String::from_utf8_lossy(&args[1])
        ))),
    };
    // A replica applies these effects without passing them on.
    if ctx.primary {
        ctx.out.effects.extend(effects);
    }
    ctx.script = Some(env);
    result
}

/// FUNCTION RESTORE's policies: APPEND (default) refuses a library that exists, REPLACE
/// replaces it, FLUSH drops every library first. All or nothing.
fn restore(
    functions: &mut functions::Functions,
    codes: &[Bytes],
    policy: Option<&[u8]>,
    effects: &mut Vec<Vec<Bytes>>,
    load_effect: &dyn Fn(&Bytes) -> Vec<Bytes>,
) -> CmdResult {
    if policy.is_none() || policy == Some(b"APPEND") {
        for code in codes {
            if let Some(name) = functions::library_name(code).filter(|n| functions.has_library(n)) {
                return Err(Reply::error(format!("ERR Library {name} already exists")));
            }
        }
    }
    let previous = functions.codes();
    if policy == Some(b"FLUSH") {
        functions.flush();
        effects.push(vec![Bytes::from_static(b"FUNCTION"), Bytes::from_static(b"FLUSH")]);
    }
    for code in codes {
        if let Err(e) = functions.load(code, policy == Some(b"REPLACE")) {
            // Put back what was there, so a failed restore changes nothing.
            functions.flush();
            for old in &previous {
                let _ = functions.load(old, true);
            }
            effects.clear();
            return Err(e);
        }
        effects.push(load_effect(code));
    }
    Ok(Reply::ok())
}

const FUNCTION_HELP: &[&str] = &[
    "FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "LOAD [REPLACE] <FUNCTION CODE>",
    "    Create a new library with the given library name and code.",
    "DELETE <LIBRARY NAME>",
    "    Delete the given library.",
    "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
    "    Return general information on all the libraries:",
    "    * Library name",
    "    * The engine used to run the Library",
    "    * Library description",
    "    * Functions list",
    "    * Library code (if WITHCODE is given)",
    "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
    "FLUSH [ASYNC|SYNC]",
    "    Deletes all the libraries.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the libraries.",
    "    * SYNC: Synchronously flush the libraries.",
    "DUMP",
    "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
    "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
    "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
    "    control how to handle existing libraries (default APPEND):",
    "    * FLUSH: delete all existing libraries.",
    "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
    "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
    "      libraries with the new libraries (notice that even on this option there is a chance of failure",
    "      in case of functions name collision with another library).",
    "STATS",
    "    Return information about the current function running:",
    "    * Function name",
    "    * Command used to run the function",
    "    * Duration in MS that the function is running",
    "    If no function is running, return nil",
    "    In addition, returns a list of available engines.",
    "KILL",
    "    Kill the current running function.",
    "HELP",
    "    Prints this help.",
];

/// SCRIPT LOAD / EXISTS / FLUSH / KILL / HELP.
pub(crate) fn script(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let sub = args[1].to_ascii_uppercase();
    let Some(env) = ctx.script.take() else {
        return Err(Reply::error("ERR scripts cannot run in this context"));
    };
    let result = match (sub.as_slice(), args.len()) {
        (b"LOAD", 3) => env.scripts.load(&args[2]).map(|(sha, new)| {
            // A new script reaches replicas and the log as an effect; a replica loads it
            // the same way without passing it on.
            if new && ctx.primary {
                ctx.out.effects.push(args.to_vec());
            }
            Reply::Bulk(Bytes::from(sha))
        }),
        (b"EXISTS", n) if n >= 3 => {
            Ok(Reply::Array(args[2..].iter().map(|sha| Reply::Integer(env.scripts.exists(sha) as i64)).collect()))
        }
        (b"FLUSH", n) if n >= 2 => {
            let mode_ok = n <= 3
                && args.get(2).is_none_or(|m| m.eq_ignore_ascii_case(b"ASYNC") || m.eq_ignore_ascii_case(b"SYNC"));
            if mode_ok {
                env.scripts.flush();
                if ctx.primary {
                    ctx.out.effects.push(args[..2].to_vec());
                }
                Ok(Reply::ok())
            } else {
                Err(Reply::error("ERR SCRIPT FLUSH only support SYNC|ASYNC option"))
            }
        }
        // Under the node's lock no script runs: a busy one is killed from `busy`.
        (b"KILL", 2) => Err(Reply::error("NOTBUSY No scripts in execution right now.")),
        (b"HELP", 2) => Ok(Reply::Array(HELP.iter().map(|l| Reply::Simple((*l).into())).collect())),
        _ => Err(Reply::error(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try SCRIPT HELP.",
            String::from_utf8_lossy(&args[1])
        ))),
    };
    ctx.script = Some(env);
    result
}

const HELP: &[&str] = &[
    "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "EXISTS <sha1> [<sha1> ...]",
    "    Return information about the existence of the scripts in the script cache.",
    "FLUSH [ASYNC|SYNC]",
    "    Flush the Lua scripts cache. Very dangerous on replicas.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the scripts cache.",
    "    * SYNC: Synchronously flush the scripts cache.",
    "KILL",
    "    Kill the currently executing Lua script.",
    "LOAD <script>",
    "    Load a script into the scripts cache without executing it.",
    "HELP",
    "    Print this help.",
];

#[cfg(test)]
mod tests;
