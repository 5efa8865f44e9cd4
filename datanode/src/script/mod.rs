//! Lua scripting: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT, with Lua 5.1 as Redis
//! embeds it (one VM per node, made on first use).
//!
//! A script runs on the node inside the batch's critical section, so nothing interleaves
//! with it (Redis's atomicity). Its `redis.call`s go through the dispatch table like any
//! command, and what they change is recorded as their own effects, which the node frames
//! like a transaction's (Redis 7's effects replication): replicas and the log never run Lua.
//! SCRIPT LOAD and FLUSH are effects too, so replicas and restarts know the same scripts.
//!
//! A script cannot stall the node: past [`TIME_LIMIT`] it is stopped with an error. Redis
//! lets a script run on and answers other clients BUSY until SCRIPT KILL; here a script
//! holds its node's lock, and everything else on the node (other gateways' batches,
//! replication, heartbeats) waits for it, so it is stopped well before links time out.
//! What it wrote before that stays written, as after any script error in Redis.

mod convert;
mod libs;
mod vm;

use std::time::Duration;

use bytes::Bytes;
use ferrocache_common::reply::errors;
use ferrocache_common::Reply;

use crate::cmd::{CmdResult, Ctx};
pub use vm::{sha1hex, Scripts};

/// How long a script may run.
#[cfg(not(test))]
pub const TIME_LIMIT: Duration = Duration::from_millis(1000);
#[cfg(test)]
pub const TIME_LIMIT: Duration = Duration::from_millis(300);

/// What a script may use besides the keyspace.
pub struct Env<'a> {
    pub scripts: &'a mut Scripts,
    /// Over maxmemory when the script started: its `denyoom` commands fail (as in Redis).
    pub oom: bool,
    /// The slots this node group serves, when it does not serve them all: a script may
    /// touch keys of these only (Redis Cluster's rule for undeclared keys).
    pub slots: Option<&'a ferrocache_common::slot::SlotSet>,
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
    let limits = vm::Limits { read_only, oom: env.oom, slots: env.slots };
    let result = env.scripts.run(ctx, &args[1], by_sha, limits, keys, argv);
    ctx.script = Some(env);
    result
}

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
        (b"FLUSH", 2 | 3) => {
            let mode_ok =
                args.get(2).is_none_or(|m| m.eq_ignore_ascii_case(b"ASYNC") || m.eq_ignore_ascii_case(b"SYNC"));
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
        // A script never runs while another command could ask: they share the node's lock.
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
