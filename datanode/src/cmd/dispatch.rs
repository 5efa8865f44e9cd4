//! The dispatch table: the one place a datanode tells commands apart by name.
//!
//! A command is looked up once ([`Command::resolve`]: Redis's spec plus this node's entry
//! for it) and everything else (write or read, may it grow memory, which keyspace event it
//! fires, which function runs it) is read off that. Nothing else in the datanode looks at a
//! command's name.

use std::sync::OnceLock;

use bytes::Bytes;
use ferrocache_common::command::{self, CommandSpec, Flag, COMMANDS};
use ferrocache_common::parameters::notify::{GENERIC, HASH, LIST, SET, STREAM, STRING, ZSET};
use ferrocache_common::reply::errors;
use ferrocache_common::Reply;

use super::{
    bitmaps, geo, hashes, hyperloglog, keys, lcs, lists, server, sets, sort, streams, strings, zsets, CmdResult, Ctx,
};
use crate::notify::Rule::{self, *};
use crate::script;

type Run = for<'a, 'b, 'c> fn(&'a mut Ctx<'b>, &'c [Bytes]) -> CmdResult;

#[derive(Clone, Copy)]
enum Action {
    Run(Run),
    /// `MULTI` / `EXEC` in the replication log: they frame a transaction's effects (true =
    /// opens), so a replica applies it whole. Never run as commands here.
    Frame(bool),
    /// SELECT: inside a transaction it switches the database of the commands after it; in
    /// the replication log `SELECT <db> <effect...>` is an effect of that database.
    Select,
    /// Answered by the gateway (PING, CLIENT, ...); a datanode refuses it.
    Elsewhere,
}

/// This node's entry for one command of the table.
struct Entry {
    action: Action,
    /// Which keyspace events it fires for the keys it changed.
    rule: Rule,
    /// Changes data, or may (EVAL): refused on replicas, counted for sync durability.
    write: bool,
    /// Redis's `denyoom`: refused while over maxmemory when nothing can be evicted.
    denyoom: bool,
    /// Its effects replicate as one unit (a script's commands).
    atomic: bool,
    /// See [`may_run_long`].
    long: bool,
    /// Refused in a read-only script although it is no write: Redis's `may_replicate`
    /// reads (PFCOUNT may store its estimate in the value's header).
    may_replicate_read: bool,
    /// A container (FUNCTION, XGROUP, ...): its subcommand's flags decide for the call.
    container: bool,
}

fn run(f: Run, rule: Rule) -> (Action, Rule) {
    (Action::Run(f), rule)
}

/// The handler and notification rule per command name.
fn action(name: &str) -> (Action, Rule) {
    match name {
        "append" => run(strings::append, Each(STRING, "append")),
        "decr" => run(|c, a| strings::incr_by(c, a, -1), Each(STRING, "incrby")),
        "decrby" => run(|c, a| strings::incr_by_arg(c, a, true), Each(STRING, "incrby")),
        "get" => run(strings::get, Quiet),
        "getdel" => run(strings::getdel, Each(GENERIC, "del")),
        "getex" => run(strings::getex, GetEx),
        "getrange" => run(strings::getrange, Quiet),
        "substr" => run(strings::getrange, Quiet),
        "getset" => run(strings::getset, Each(STRING, "set")),
        "incr" => run(|c, a| strings::incr_by(c, a, 1), Each(STRING, "incrby")),
        "incrby" => run(|c, a| strings::incr_by_arg(c, a, false), Each(STRING, "incrby")),
        "incrbyfloat" => run(strings::incrbyfloat, Each(STRING, "incrbyfloat")),
        "mget" => run(strings::mget, Quiet),
        "mset" => run(strings::mset, Each(STRING, "set")),
        "msetnx" => run(strings::msetnx, Each(STRING, "set")),
        "psetex" => run(|c, a| strings::setex(c, a, 1), Set { expires: true }),
        "set" => run(strings::set, Set { expires: false }),
        "setex" => run(|c, a| strings::setex(c, a, 1000), Set { expires: true }),
        "setnx" => run(strings::setnx, Each(STRING, "set")),
        "setrange" => run(strings::setrange, Each(STRING, "setrange")),
        "strlen" => run(strings::strlen, Quiet),
        "lcs" => run(lcs::lcs, Quiet),

        "bitcount" => run(bitmaps::bitcount, Quiet),
        "bitfield" => run(|c, a| bitmaps::bitfield(c, a, false), Each(STRING, "setbit")),
        "bitfield_ro" => run(|c, a| bitmaps::bitfield(c, a, true), Quiet),
        "bitop" => run(bitmaps::bitop, OrDel(STRING, "set")),
        "bitpos" => run(bitmaps::bitpos, Quiet),
        "getbit" => run(bitmaps::getbit, Quiet),
        "setbit" => run(bitmaps::setbit, Each(STRING, "setbit")),

        "pfadd" => run(hyperloglog::pfadd, Each(STRING, "pfadd")),
        "pfcount" => run(hyperloglog::pfcount, Quiet),
        "pfmerge" => run(hyperloglog::pfmerge, Each(STRING, "pfadd")),
        "pfdebug" => run(hyperloglog::pfdebug, Quiet),
        "pfselftest" => run(hyperloglog::pfselftest, Quiet),

        "hdel" => run(hashes::hdel, Each(HASH, "hdel")),
        "hexists" => run(hashes::hexists, Quiet),
        "hget" => run(hashes::hget, Quiet),
        "hgetall" => run(|c, a| hashes::hgetall(c, a, true, true), Quiet),
        "hincrby" => run(hashes::hincrby, Each(HASH, "hincrby")),
        "hincrbyfloat" => run(hashes::hincrbyfloat, Each(HASH, "hincrbyfloat")),
        "hkeys" => run(|c, a| hashes::hgetall(c, a, true, false), Quiet),
        "hlen" => run(hashes::hlen, Quiet),
        "hmget" => run(hashes::hmget, Quiet),
        "hmset" => run(|c, a| hashes::hset(c, a, true), Each(HASH, "hset")),
        "hrandfield" => run(hashes::hrandfield, Quiet),
        "hscan" => run(hashes::hscan, Quiet),
        "hset" => run(|c, a| hashes::hset(c, a, false), Each(HASH, "hset")),
        "hsetnx" => run(hashes::hsetnx, Each(HASH, "hset")),
        "hstrlen" => run(hashes::hstrlen, Quiet),
        "hvals" => run(|c, a| hashes::hgetall(c, a, false, true), Quiet),

        "blmove" => run(|c, a| lists::blmove(c, a, false), ListMove),
        "blmpop" => run(lists::blmpop, ListMultiPop),
        "blpop" => run(|c, a| lists::blpop(c, a, true), Each(LIST, "lpop")),
        "brpop" => run(|c, a| lists::blpop(c, a, false), Each(LIST, "rpop")),
        "brpoplpush" => run(|c, a| lists::blmove(c, a, true), PopPush),
        "lindex" => run(lists::lindex, Quiet),
        "linsert" => run(lists::linsert, Each(LIST, "linsert")),
        "llen" => run(lists::llen, Quiet),
        "lmove" => run(|c, a| lists::lmove(c, a, false), ListMove),
        "lmpop" => run(lists::lmpop, ListMultiPop),
        "lpop" => run(|c, a| lists::pop(c, a, true), Each(LIST, "lpop")),
        "lpos" => run(lists::lpos, Quiet),
        "lpush" => run(|c, a| lists::push(c, a, true, false), Each(LIST, "lpush")),
        "lpushx" => run(|c, a| lists::push(c, a, true, true), Each(LIST, "lpush")),
        "lrange" => run(lists::lrange, Quiet),
        "lrem" => run(lists::lrem, Each(LIST, "lrem")),
        "lset" => run(lists::lset, Each(LIST, "lset")),
        "ltrim" => run(lists::ltrim, Each(LIST, "ltrim")),
        "rpop" => run(|c, a| lists::pop(c, a, false), Each(LIST, "rpop")),
        "rpoplpush" => run(|c, a| lists::lmove(c, a, true), PopPush),
        "rpush" => run(|c, a| lists::push(c, a, false, false), Each(LIST, "rpush")),
        "rpushx" => run(|c, a| lists::push(c, a, false, true), Each(LIST, "rpush")),

        "sadd" => run(sets::sadd, Each(SET, "sadd")),
        "scard" => run(sets::scard, Quiet),
        "sdiff" => run(|c, a| sets::combine(c, a, sets::Op::Diff, false), Quiet),
        "sdiffstore" => run(|c, a| sets::combine(c, a, sets::Op::Diff, true), OrDel(SET, "sdiffstore")),
        "sinter" => run(|c, a| sets::combine(c, a, sets::Op::Inter, false), Quiet),
        "sintercard" => run(sets::sintercard, Quiet),
        "sinterstore" => run(|c, a| sets::combine(c, a, sets::Op::Inter, true), OrDel(SET, "sinterstore")),
        "sismember" => run(sets::sismember, Quiet),
        "smembers" => run(sets::smembers, Quiet),
        "smismember" => run(sets::smismember, Quiet),
        "smove" => run(sets::smove, FromTo(SET, "srem", "sadd")),
        "spop" => run(sets::spop, Each(SET, "spop")),
        "srandmember" => run(sets::srandmember, Quiet),
        "srem" => run(sets::srem, Each(SET, "srem")),
        "sscan" => run(sets::sscan, Quiet),
        "sunion" => run(|c, a| sets::combine(c, a, sets::Op::Union, false), Quiet),
        "sunionstore" => run(|c, a| sets::combine(c, a, sets::Op::Union, true), OrDel(SET, "sunionstore")),

        "bzmpop" => run(zsets::bzmpop, ZsetMultiPop),
        "bzpopmax" => run(|c, a| zsets::bzpop(c, a, true), Each(ZSET, "zpopmax")),
        "bzpopmin" => run(|c, a| zsets::bzpop(c, a, false), Each(ZSET, "zpopmin")),
        "zadd" => run(zsets::zadd, ZAdd),
        "zcard" => run(zsets::zcard, Quiet),
        "zcount" => run(|c, a| zsets::zcount(c, a, false), Quiet),
        "zdiff" => run(|c, a| zsets::combine(c, a, zsets::SetOp::Diff, false), Quiet),
        "zdiffstore" => run(|c, a| zsets::combine(c, a, zsets::SetOp::Diff, true), OrDel(ZSET, "zdiffstore")),
        "zincrby" => run(zsets::zincrby, Each(ZSET, "zincr")),
        "zinter" => run(|c, a| zsets::combine(c, a, zsets::SetOp::Inter, false), Quiet),
        "zintercard" => run(zsets::zintercard, Quiet),
        "zinterstore" => run(|c, a| zsets::combine(c, a, zsets::SetOp::Inter, true), OrDel(ZSET, "zinterstore")),
        "zlexcount" => run(|c, a| zsets::zcount(c, a, true), Quiet),
        "zmpop" => run(zsets::zmpop, ZsetMultiPop),
        "zmscore" => run(zsets::zmscore, Quiet),
        "zpopmax" => run(|c, a| zsets::zpop(c, a, true), Each(ZSET, "zpopmax")),
        "zpopmin" => run(|c, a| zsets::zpop(c, a, false), Each(ZSET, "zpopmin")),
        "zrandmember" => run(zsets::zrandmember, Quiet),
        "zrange" => run(|c, a| zsets::zrange(c, a, zsets::RangeKind::Auto, false), Quiet),
        "zrangebylex" => run(|c, a| zsets::zrange(c, a, zsets::RangeKind::Lex, false), Quiet),
        "zrangebyscore" => run(|c, a| zsets::zrange(c, a, zsets::RangeKind::Score, false), Quiet),
        "zrangestore" => run(zsets::zrangestore, OrDel(ZSET, "zrangestore")),
        "zrank" => run(|c, a| zsets::zrank(c, a, false), Quiet),
        "zrem" => run(zsets::zrem, Each(ZSET, "zrem")),
        "zremrangebylex" => run(|c, a| zsets::zremrange(c, a, zsets::RangeKind::Lex), Each(ZSET, "zremrangebylex")),
        "zremrangebyrank" => run(|c, a| zsets::zremrange(c, a, zsets::RangeKind::Rank), Each(ZSET, "zremrangebyrank")),
        "zremrangebyscore" => {
            run(|c, a| zsets::zremrange(c, a, zsets::RangeKind::Score), Each(ZSET, "zremrangebyscore"))
        }
        "zrevrange" => run(|c, a| zsets::zrange(c, a, zsets::RangeKind::Rank, true), Quiet),
        "zrevrangebylex" => run(|c, a| zsets::zrange(c, a, zsets::RangeKind::Lex, true), Quiet),
        "zrevrangebyscore" => run(|c, a| zsets::zrange(c, a, zsets::RangeKind::Score, true), Quiet),
        "zrevrank" => run(|c, a| zsets::zrank(c, a, true), Quiet),
        "zscan" => run(zsets::zscan, Quiet),
        "zscore" => run(zsets::zscore, Quiet),
        "zunion" => run(|c, a| zsets::combine(c, a, zsets::SetOp::Union, false), Quiet),
        "zunionstore" => run(|c, a| zsets::combine(c, a, zsets::SetOp::Union, true), OrDel(ZSET, "zunionstore")),

        "copy" => run(keys::copy, Each(GENERIC, "copy_to")),
        "geoadd" => run(geo::geoadd, Each(ZSET, "zadd")),
        "geodist" => run(geo::geodist, Quiet),
        "geohash" => run(geo::geohash_cmd, Quiet),
        "geopos" => run(geo::geopos, Quiet),
        "georadius" => run(|c, a| geo::search(c, a, geo::Query::Radius { store: true }), OrDel(ZSET, "georadiusstore")),
        "georadius_ro" => run(|c, a| geo::search(c, a, geo::Query::Radius { store: false }), Quiet),
        "georadiusbymember" => {
            run(|c, a| geo::search(c, a, geo::Query::ByMember { store: true }), OrDel(ZSET, "georadiusstore"))
        }
        "georadiusbymember_ro" => run(|c, a| geo::search(c, a, geo::Query::ByMember { store: false }), Quiet),
        "geosearch" => run(|c, a| geo::search(c, a, geo::Query::Geosearch), Quiet),
        "geosearchstore" => run(|c, a| geo::search(c, a, geo::Query::GeosearchStore), OrDel(ZSET, "geosearchstore")),
        "sort" => run(sort::sort, OrDel(LIST, "sortstore")),
        "sort_ro" => run(sort::sort_ro, Quiet),
        "xack" => run(streams::xack, Quiet),
        "xadd" => run(streams::xadd, Each(STREAM, "xadd")),
        "xautoclaim" => run(streams::xautoclaim, Quiet),
        "xclaim" => run(streams::xclaim, Quiet),
        "xdel" => run(streams::xdel, Each(STREAM, "xdel")),
        "xgroup" => run(streams::xgroup, XGroup),
        "xinfo" => run(streams::xinfo, Quiet),
        "xlen" => run(streams::xlen, Quiet),
        "xpending" => run(streams::xpending, Quiet),
        "xrange" => run(streams::xrange, Quiet),
        "xread" => run(streams::xread, Quiet),
        "xreadgroup" => run(streams::xreadgroup, Quiet),
        "xrevrange" => run(streams::xrevrange, Quiet),
        "xsetid" => run(streams::xsetid, Each(STREAM, "xsetid")),
        "xtrim" => run(streams::xtrim, Each(STREAM, "xtrim")),
        "object" => run(keys::object, Quiet),
        "memory" => run(keys::memory, Quiet),
        "dump" => run(keys::dump, Quiet),
        "restore" => run(keys::restore, OrDel(GENERIC, "restore")),
        "restore-asking" => run(keys::restore, OrDel(GENERIC, "restore")),
        "del" => run(keys::del, Each(GENERIC, "del")),
        "unlink" => run(keys::unlink, Each(GENERIC, "del")),
        "exists" => run(|c, a| keys::exists(c, a, false), Quiet),
        "touch" => run(|c, a| keys::exists(c, a, true), Quiet),
        "expire" => run(|c, a| keys::expire(c, a, 1000, false), OrDel(GENERIC, "expire")),
        "expireat" => run(|c, a| keys::expire(c, a, 1000, true), OrDel(GENERIC, "expire")),
        "pexpire" => run(|c, a| keys::expire(c, a, 1, false), OrDel(GENERIC, "expire")),
        "pexpireat" => run(|c, a| keys::expire(c, a, 1, true), OrDel(GENERIC, "expire")),
        "expiretime" => run(|c, a| keys::expiretime(c, a, 1000), Quiet),
        "pexpiretime" => run(|c, a| keys::expiretime(c, a, 1), Quiet),
        "persist" => run(keys::persist, Each(GENERIC, "persist")),
        "ttl" => run(|c, a| keys::ttl(c, a, 1000), Quiet),
        "pttl" => run(|c, a| keys::ttl(c, a, 1), Quiet),
        "type" => run(keys::type_of, Quiet),
        "keys" => run(keys::keys, Quiet),
        "scan" => run(keys::scan, Quiet),
        "randomkey" => run(|c, _| keys::randomkey(c), Quiet),
        "rename" => run(|c, a| keys::rename(c, a, false), FromTo(GENERIC, "rename_from", "rename_to")),
        "renamenx" => run(|c, a| keys::rename(c, a, true), FromTo(GENERIC, "rename_from", "rename_to")),

        "cluster" => run(keys::cluster, Quiet),
        "dbsize" => run(|c, _| Ok(Reply::Integer(c.ks.len() as i64)), Quiet),
        "flushall" => run(|c, a| server::flush(c, a, true), Quiet),
        "flushdb" => run(|c, a| server::flush(c, a, false), Quiet),
        "swapdb" => run(server::swapdb, Quiet),
        "move" => run(keys::move_key, FromTo(GENERIC, "move_from", "move_to")),
        "select" => (Action::Select, Quiet),
        "eval" => run(|c, a| script::eval(c, a, false, false), Quiet),
        "evalsha" => run(|c, a| script::eval(c, a, true, false), Quiet),
        "eval_ro" => run(|c, a| script::eval(c, a, false, true), Quiet),
        "evalsha_ro" => run(|c, a| script::eval(c, a, true, true), Quiet),
        "script" => run(script::script, Quiet),
        "fcall" => run(|c, a| script::fcall(c, a, false), Quiet),
        "fcall_ro" => run(|c, a| script::fcall(c, a, true), Quiet),
        "function" => run(script::function, Quiet),
        // Answered by the gateway for clients; served here for scripts.
        "ping" => {
            run(|_, a| Ok(a.get(1).map_or_else(|| Reply::Simple("PONG".into()), |m| Reply::Bulk(m.clone()))), Quiet)
        }
        "echo" => run(|_, a| Ok(Reply::Bulk(a[1].clone())), Quiet),
        "time" => run(|_, _| Ok(time()), Quiet),
        "multi" => (Action::Frame(true), Quiet),
        "exec" => (Action::Frame(false), Quiet),
        _ => (Action::Elsewhere, Quiet),
    }
}

/// TIME: seconds and microseconds.
fn time() -> Reply {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let text = |n: u64| Reply::Bulk(Bytes::from(n.to_string()));
    Reply::Array(vec![text(now.as_secs()), text(now.subsec_micros() as u64)])
}

/// Commands that may hold the node for long on a big keyspace or big collections (Redis's
/// classic slow commands: whole-keyspace walks, sorts, set algebra): their batches run off
/// the runtime worker, which must keep answering the data streams' keep-alives meanwhile.
fn may_run_long(name: &str) -> bool {
    matches!(
        name,
        "keys"
            | "flushall"
            | "flushdb"
            | "sort"
            | "sort_ro"
            | "pfselftest"
            | "sunion"
            | "sunionstore"
            | "sinter"
            | "sinterstore"
            | "sintercard"
            | "sdiff"
            | "sdiffstore"
            | "zunion"
            | "zunionstore"
            | "zinter"
            | "zinterstore"
            | "zintercard"
            | "zdiff"
            | "zdiffstore"
    )
}

/// One entry per command of [`COMMANDS`], in its order.
fn table() -> &'static [Entry] {
    static TABLE: OnceLock<Vec<Entry>> = OnceLock::new();
    TABLE.get_or_init(|| {
        COMMANDS
            .iter()
            .map(|spec| {
                let (action, rule) = action(spec.name);
                // A read that may replicate (PFCOUNT caching its estimate) stays a read.
                let may_replicate_read = spec.has(Flag::MayReplicate) && spec.has(Flag::Readonly);
                let may_replicate = spec.has(Flag::MayReplicate) && !may_replicate_read;
                Entry {
                    action,
                    rule,
                    write: spec.is_write() || may_replicate,
                    denyoom: spec.has(Flag::Denyoom),
                    atomic: may_replicate,
                    long: may_run_long(spec.name),
                    may_replicate_read,
                    container: ferrocache_common::subcommands::is_container(spec.name),
                }
            })
            .collect()
    })
}

/// A command looked up in the table: what it is and how this node runs it.
#[derive(Clone, Copy)]
pub struct Command {
    pub spec: &'static CommandSpec,
    entry: &'static Entry,
    /// Its index in the command table.
    index: usize,
    /// A container's subcommand that writes (FUNCTION LOAD, FUNCTION DELETE, ...).
    sub_write: bool,
    /// A container's subcommand that is `denyoom` (FUNCTION LOAD, FUNCTION RESTORE).
    sub_denyoom: bool,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Command").field(&self.spec.name).finish()
    }
}

impl Command {
    /// Looks `args[0]` up; Redis's error for an unknown command or a wrong argument count.
    /// The node checks both itself: it never trusts its caller for them.
    pub fn resolve(args: &[Bytes]) -> Result<Command, Reply> {
        let Some(name) = args.first() else {
            return Err(Reply::error("ERR empty command"));
        };
        let Some(i) = command::index(name) else {
            return Err(Reply::error(format!("ERR unknown command '{}'", String::from_utf8_lossy(name))));
        };
        let spec = &COMMANDS[i];
        if !spec.arity_ok(args.len()) {
            return Err(Reply::error(errors::wrong_arity(spec.name)));
        }
        Ok(Command::at(i, args))
    }

    fn at(i: usize, args: &[Bytes]) -> Command {
        let (spec, entry) = (&COMMANDS[i], &table()[i]);
        let flags = if entry.container {
            ferrocache_common::subcommands::flags_of(spec.name, args).unwrap_or_default()
        } else {
            &[]
        };
        Command { spec, entry, index: i, sub_write: flags.contains(&"write"), sub_denyoom: flags.contains(&"denyoom") }
    }

    pub fn name(&self) -> &'static str {
        self.spec.name
    }

    pub fn is_write(&self) -> bool {
        self.entry.write || self.sub_write
    }

    pub fn may_grow(&self) -> bool {
        self.entry.denyoom || self.sub_denyoom
    }

    /// Its effects must reach replicas as one unit (EVAL: the script's commands).
    pub fn is_atomic(&self) -> bool {
        self.entry.atomic
    }

    /// It runs Lua: a script, a function, or a library's load.
    pub fn runs_script(&self) -> bool {
        matches!(self.spec.name, "eval" | "evalsha" | "eval_ro" | "evalsha_ro" | "fcall" | "fcall_ro" | "function")
    }

    /// A read that may write all the same (PFCOUNT's cached estimate): read-only scripts
    /// may not run it, as in Redis.
    pub fn may_replicate_read(&self) -> bool {
        self.entry.may_replicate_read
    }

    /// It may hold the node for long ([`may_run_long`]).
    pub fn may_run_long(&self) -> bool {
        self.entry.long
    }

    /// Like [`Command::resolve`], with the errors Redis gives a script's `redis.call`.
    pub fn resolve_for_script(args: &[Bytes]) -> Result<Command, Reply> {
        let i = args.first().and_then(|name| command::index(name));
        let Some(i) = i else {
            return Err(Reply::error("ERR Unknown Redis command called from script"));
        };
        if !COMMANDS[i].arity_ok(args.len()) {
            return Err(Reply::error("ERR Wrong number of args calling Redis command from script"));
        }
        Ok(Command::at(i, args))
    }

    /// The statistics entry of this call (`config|get` for a container's subcommand).
    pub fn stats_entry(&self, args: &[Bytes]) -> usize {
        ferrocache_common::acl::categories::resolve(self.index, args)
    }

    /// The statistics entry of a call that named a known command but could not be resolved
    /// (the wrong number of arguments).
    pub fn known_entry(args: &[Bytes]) -> Option<usize> {
        let i = command::index(args.first()?)?;
        Some(ferrocache_common::acl::categories::resolve(i, args))
    }

    pub fn rule(&self) -> Rule {
        self.entry.rule
    }

    /// SELECT (inside a transaction: the database of the commands after it).
    pub fn selects(&self) -> bool {
        matches!(self.entry.action, Action::Select)
    }

    /// Runs it on `ctx`; `args` are the ones it was resolved from.
    pub fn run(&self, ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
        match self.entry.action {
            Action::Run(f) => f(ctx, args).unwrap_or_else(|e| e),
            Action::Frame(_) | Action::Select | Action::Elsewhere => {
                Reply::error(format!("ERR '{}' is not served by datanodes", self.spec.name))
            }
        }
    }
}

/// What a command may still do while a script keeps the node busy (Redis's `allow_busy`
/// commands that reach a datanode).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WhileBusy {
    ScriptKill,
    FunctionKill,
    FunctionStats,
}

pub fn while_busy(args: &[Bytes]) -> Option<WhileBusy> {
    let c = Command::resolve(args).ok()?;
    let sub = args.get(1)?.to_ascii_lowercase();
    match (c.spec.name, sub.as_slice(), args.len()) {
        ("script", b"kill", 2) => Some(WhileBusy::ScriptKill),
        ("function", b"kill", 2) => Some(WhileBusy::FunctionKill),
        ("function", b"stats", 2) => Some(WhileBusy::FunctionStats),
        _ => None,
    }
}

/// Runs one command (`args[0]` is the name): what replicas and replays do with effects.
pub fn execute(ctx: &mut Ctx<'_>, args: &[Bytes]) -> Reply {
    match Command::resolve(args) {
        Ok(c) => c.run(ctx, args),
        Err(e) => e,
    }
}

/// Whether a replication-log effect is a transaction's frame marker: Some(true) opens one,
/// Some(false) closes it.
pub fn frame_marker(effect: &[Bytes]) -> Option<bool> {
    match Command::resolve(effect).ok()?.entry.action {
        Action::Frame(opens) => Some(opens),
        _ => None,
    }
}

/// An effect of database `db` as the replication log carries it: self-contained (`SELECT
/// <db>` and the effect), so a replica resuming anywhere in the stream, or a log replayed
/// from any record, applies it where it belongs. Database 0's effects go as they are.
pub fn in_db(db: usize, effect: Vec<Bytes>) -> Vec<Bytes> {
    if db == 0 {
        return effect;
    }
    let mut out = Vec::with_capacity(effect.len() + 2);
    out.push(Bytes::from_static(b"SELECT"));
    out.push(Bytes::from(db.to_string()));
    out.extend(effect);
    out
}

/// The database an effect belongs to and the effect itself ([`in_db`]'s inverse); None for
/// a database number this node does not have.
/// The first key of a command (None for a command without keys or an unknown one): what a
/// batch warms the cache with before it runs.
pub fn first_key(args: &[Bytes]) -> Option<&[u8]> {
    let spec = &COMMANDS[command::index(args.first()?)?];
    usize::try_from(spec.first_key).ok().filter(|&at| at > 0).and_then(|at| args.get(at)).map(|k| &k[..])
}

pub fn effect_db(effect: &[Bytes]) -> Option<(usize, &[Bytes])> {
    let selects = effect.len() >= 3
        && effect.first().and_then(|n| command::index(n)).is_some_and(|i| matches!(table()[i].action, Action::Select));
    if !selects {
        return Some((0, effect));
    }
    let db = super::args::parse_i64(&effect[1]).and_then(|n| usize::try_from(n).ok())?;
    crate::databases::Databases::valid(db).then_some((db, &effect[2..]))
}

/// Marks `effects` as effects of database `db` ([`in_db`]), but for those a script already
/// marked with the database it had selected.
pub fn place_effects(effects: &mut [Vec<Bytes>], db: usize) {
    if db != 0 {
        for e in effects.iter_mut().filter(|e| !placed(e)) {
            *e = in_db(db, std::mem::take(e));
        }
    }
}

/// Marks `effects` as effects of database `db`, database 0 included: those of a script's
/// commands after its SELECT (they belong to another database than its caller's).
pub fn place_selected(effects: &mut [Vec<Bytes>], db: usize) {
    for e in effects.iter_mut().filter(|e| !placed(e)) {
        let mut marked = Vec::with_capacity(e.len() + 2);
        marked.push(Bytes::from_static(b"SELECT"));
        marked.push(Bytes::from(db.to_string()));
        marked.append(e);
        *e = marked;
    }
}

/// Whether an effect already names its database.
fn placed(effect: &[Bytes]) -> bool {
    effect.len() >= 3
        && effect.first().and_then(|n| command::index(n)).is_some_and(|i| matches!(table()[i].action, Action::Select))
}

/// The effect that opens (`true`) or closes a transaction's frame in the replication log.
pub fn frame(opens: bool) -> Vec<Bytes> {
    vec![Bytes::from_static(if opens { b"MULTI" } else { b"EXEC" })]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_the_gateway_sends_here_has_a_handler() {
        for spec in COMMANDS.iter().filter(|s| s.route != command::Route::Gateway) {
            let served = matches!(action(spec.name).0, Action::Run(_));
            // These reach a datanode as their own requests, not as data commands.
            let typed = matches!(spec.name, "publish" | "spublish" | "pubsub" | "wait" | "waitaof" | "watch");
            assert!(served || typed, "{} routes to datanodes but has no handler", spec.name);
        }
    }

    #[test]
    fn first_keys_follow_the_specs() {
        let args = |a: &[&'static str]| a.iter().map(|s| Bytes::from_static(s.as_bytes())).collect::<Vec<_>>();
        assert_eq!(first_key(&args(&["set", "k", "v"])), Some(&b"k"[..]));
        assert_eq!(first_key(&args(&["GET", "k"])), Some(&b"k"[..]));
        assert_eq!(first_key(&args(&["ping"])), None);
        assert_eq!(first_key(&args(&["nosuchcommand", "k"])), None);
        // Arity is checked later: a short command has no key to warm.
        assert_eq!(first_key(&args(&["get"])), None);
        assert_eq!(first_key(&[]), None);
    }

    #[test]
    fn frames_are_recognised_and_nothing_else_is() {
        assert_eq!(frame_marker(&frame(true)), Some(true));
        assert_eq!(frame_marker(&frame(false)), Some(false));
        assert_eq!(frame_marker(&[Bytes::from_static(b"multi")]), Some(true));
        assert_eq!(
            frame_marker(&[Bytes::from_static(b"SET"), Bytes::from_static(b"k"), Bytes::from_static(b"v")]),
            None
        );
        assert_eq!(frame_marker(&[Bytes::from_static(b"MULTI"), Bytes::from_static(b"x")]), None);
    }

    /// What in a line of datanode code reads or compares a command's name.
    fn names_a_command(line: &str) -> Option<&'static str> {
        let code = line.split("//").next().unwrap_or("");
        const TELLS: &[&str] = &[
            "command::lookup(",
            "command::index(",
            "args[0]",
            "args.first()",
            "[0].eq_ignore_ascii_case(",
            "spec.name ==",
            "match spec.name",
            "name() ==",
            "match command.name()",
        ];
        TELLS.iter().copied().find(|t| code.contains(t))
    }

    /// Issue 11's rule, checked on the sources: outside this table no datanode code reads
    /// a command's name (the gateway sends typed requests; options are parsed by their
    /// commands, which is not telling commands apart).
    #[test]
    fn the_datanode_matches_no_command_names_outside_this_table() {
        assert!(names_a_command(r#"    let touch = args[0].eq_ignore_ascii_case(b"TOUCH");"#).is_some());
        assert!(names_a_command(r#"    if spec.name == "exec" {"#).is_some());
        assert!(names_a_command("    // args[0] is the name").is_none());
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = vec![src];
        let mut found = Vec::new();
        let mut scanned = 0;
        while let Some(path) = files.pop() {
            if path.is_dir() {
                files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
                continue;
            }
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let test_only = matches!(name, "tests.rs" | "adversarial.rs" | "node_storage_tests.rs");
            if !name.ends_with(".rs") || test_only || path.ends_with("cmd/dispatch.rs") {
                continue;
            }
            scanned += 1;
            let text = std::fs::read_to_string(&path).unwrap();
            // Test modules come last in a file; only the code before them runs in a node.
            let code = text.split("#[cfg(test)]").next().unwrap_or("");
            for (n, line) in code.lines().enumerate() {
                if let Some(tell) = names_a_command(line) {
                    found.push(format!("{}:{}: {tell}: {}", path.display(), n + 1, line.trim()));
                }
            }
        }
        assert!(scanned > 30, "the scan found only {scanned} source files");
        assert!(found.is_empty(), "command names matched outside the dispatch table:\n{}", found.join("\n"));
    }
}
