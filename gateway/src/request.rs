//! What the gateway sends a node: each client command is classified once, here, into the
//! typed request the node dispatches on (`Command.request` in the internal proto), so a
//! datanode never works out again from a command's name what it is.

use bytes::Bytes;
use ferrocache_common::command::CommandSpec;
use ferrocache_common::int::parse_i64;
use ferrocache_common::reply::errors;
use ferrocache_common::Reply;
use ferrocache_proto::internal::v1 as pb;

pub type Request = pb::command::Request;

/// A data command (name first) as the client sent it, for database 0 (cluster mode has
/// no other).
pub fn data(args: Vec<Bytes>) -> Request {
    data_in(0, args)
}

/// A data command for database `db` (the connection's SELECT).
pub fn data_in(db: usize, args: Vec<Bytes>) -> Request {
    Request::Data(pb::DataRequest { args, db: db as u32, ..Default::default() })
}

/// The request for a command the gateway routes to a node (its name and arity already
/// checked against `spec`), or the answer when the gateway gives it itself: PUBSUB HELP,
/// and Redis's errors for a malformed WAIT or PUBSUB.
/// `db`: the connection's database.
pub fn classify(spec: &CommandSpec, args: Vec<Bytes>, db: usize) -> Result<Request, Reply> {
    match spec.name {
        "wait" => wait(&args),
        "waitaof" => waitaof(&args),
        "publish" | "spublish" if args.len() == 3 => Ok(Request::Publish(pb::PublishRequest {
            channel: args[1].clone(),
            message: args[2].clone(),
            shard: spec.name == "spublish",
        })),
        "publish" | "spublish" => Err(Reply::error(errors::wrong_arity(spec.name))),
        "pubsub" => pubsub(&args),
        _ => Ok(data_in(db, args)),
    }
}

/// Bytes a request carries (the link bounds its batches by them).
pub fn size(request: &Request) -> usize {
    let args = |a: &[Bytes]| a.iter().map(|a| a.len() + 8).sum::<usize>();
    match request {
        Request::Data(d) => args(&d.args),
        Request::Transaction(t) => {
            t.commands.iter().map(|c| args(&c.args)).sum::<usize>()
                + t.watches.iter().map(|w| w.key.len() + w.token.len() + 16).sum::<usize>()
        }
        Request::Watch(w) => args(&w.keys),
        Request::Publish(p) => p.channel.len() + p.message.len() + 16,
        Request::Pubsub(p) => args(&p.channels) + p.pattern.as_ref().map_or(0, |p| p.len()),
        Request::ParametersApplied(p) => p.parameters.iter().map(|(k, v)| k.len() + v.len() + 8).sum(),
        Request::Wait(_) | Request::Info(_) | Request::ResetStat(_) | Request::Admission(_) => 16,
    }
}

/// `WAIT numreplicas timeout`, with Redis's errors.
fn wait(args: &[Bytes]) -> Result<Request, Reply> {
    if args.len() != 3 {
        return Err(Reply::error(errors::wrong_arity("wait")));
    }
    let replicas = parse_i64(&args[1]).ok_or_else(|| Reply::error(errors::NOT_INTEGER))?;
    let timeout = parse_i64(&args[2]).ok_or_else(|| Reply::error("ERR timeout is not an integer or out of range"))?;
    if timeout < 0 {
        return Err(Reply::error("ERR timeout is negative"));
    }
    Ok(Request::Wait(pb::WaitRequest {
        replicas: replicas.max(0) as u64,
        timeout_ms: timeout as u64,
        ..Default::default()
    }))
}

/// `WAITAOF numlocal numreplicas timeout` (Redis 7.2), with Redis's errors.
fn waitaof(args: &[Bytes]) -> Result<Request, Reply> {
    let count = |a: &Bytes| match parse_i64(a) {
        Some(n) if n >= 0 => Ok(n as u64),
        Some(_) => Err(Reply::error("ERR value is out of range, must be positive")),
        None => Err(Reply::error(errors::NOT_INTEGER)),
    };
    let (local, replicas) = (count(&args[1])?, count(&args[2])?);
    let timeout = parse_i64(&args[3]).ok_or_else(|| Reply::error("ERR timeout is not an integer or out of range"))?;
    if timeout < 0 {
        return Err(Reply::error("ERR timeout is negative"));
    }
    Ok(Request::Wait(pb::WaitRequest { replicas, timeout_ms: timeout as u64, local, aof: true }))
}

/// `PUBSUB <subcommand> ...`: the queries a node answers; HELP and errors here.
fn pubsub(args: &[Bytes]) -> Result<Request, Reply> {
    use pb::PubSubQuery as Q;
    let sub = args.get(1).map(|a| a.to_ascii_uppercase()).unwrap_or_default();
    let (query, pattern, channels) = match (sub.as_slice(), args.len()) {
        (b"CHANNELS", 2 | 3) => (Q::PubsubChannels, args.get(2).cloned(), vec![]),
        (b"SHARDCHANNELS", 2 | 3) => (Q::PubsubShardchannels, args.get(2).cloned(), vec![]),
        (b"NUMSUB", _) => (Q::PubsubNumsub, None, args[2..].to_vec()),
        (b"SHARDNUMSUB", _) => (Q::PubsubShardnumsub, None, args[2..].to_vec()),
        (b"NUMPAT", 2) => (Q::PubsubNumpat, None, vec![]),
        (b"HELP", 2) => return Err(Reply::Array(PUBSUB_HELP.iter().map(|l| Reply::Simple((*l).into())).collect())),
        _ => {
            return Err(Reply::error(format!(
                "ERR unknown subcommand or wrong number of arguments for '{}'. Try PUBSUB HELP.",
                String::from_utf8_lossy(args.get(1).map(|a| &a[..]).unwrap_or(b""))
            )))
        }
    };
    Ok(Request::Pubsub(pb::PubSubRequest { query: query as i32, pattern, channels }))
}

const PUBSUB_HELP: &[&str] = &[
    "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "SHARDCHANNELS [<pattern>]",
    "    Return the currently active shard level channels matching a <pattern> (default: '*').",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Return the number of subscribers for the specified shard level channel(s)",
    "HELP",
    "    Print this help.",
];

#[cfg(test)]
mod tests {
    use super::*;
    use ferrocache_common::command::lookup;

    fn classify_words(words: &[&str]) -> Result<Request, Reply> {
        let args: Vec<Bytes> = words.iter().map(|w| Bytes::copy_from_slice(w.as_bytes())).collect();
        classify(lookup(&args[0]).unwrap(), args, 0)
    }

    #[test]
    fn commands_become_typed_requests_once() {
        assert!(matches!(classify_words(&["GET", "k"]), Ok(Request::Data(_))));
        assert_eq!(
            classify_words(&["WAIT", "2", "100"]),
            Ok(Request::Wait(pb::WaitRequest { replicas: 2, timeout_ms: 100, ..Default::default() }))
        );
        assert_eq!(
            classify_words(&["WAIT", "-1", "0"]),
            Ok(Request::Wait(pb::WaitRequest { replicas: 0, timeout_ms: 0, ..Default::default() }))
        );
        assert_eq!(classify_words(&["WAIT", "x", "0"]), Err(Reply::error(errors::NOT_INTEGER)));
        assert_eq!(classify_words(&["WAIT", "1", "-5"]), Err(Reply::error("ERR timeout is negative")));
        assert!(matches!(classify_words(&["SPUBLISH", "c", "m"]), Ok(Request::Publish(p)) if p.shard));
        let numsub = classify_words(&["pubsub", "numsub", "a", "b"]);
        assert!(
            matches!(numsub, Ok(Request::Pubsub(q)) if q.channels.len() == 2 && q.query() == pb::PubSubQuery::PubsubNumsub)
        );
        assert!(matches!(classify_words(&["PUBSUB", "HELP"]), Err(Reply::Array(_))));
        assert!(
            matches!(classify_words(&["PUBSUB", "NUMPAT", "x"]), Err(Reply::Error(e)) if e.contains("Try PUBSUB HELP"))
        );
    }
}
