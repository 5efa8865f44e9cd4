//! A Redis reply, typed as RESP3 types it (maps, sets, doubles), so one value can be written
//! as RESP2 or RESP3 per client. Datanodes produce it, the gateway encodes it, and the data
//! stream carries it as `internal.v1.Value`.

use bytes::Bytes;
use ferrocache_proto::internal::v1 as pb;

#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Simple(String),
    /// The whole error line without '-', e.g. `ERR syntax error`.
    Error(String),
    Integer(i64),
    Bulk(Bytes),
    NullBulk,
    NullArray,
    Array(Vec<Reply>),
    Double(f64),
    /// Keys and values alternate; RESP2 sends it as a flat array.
    Map(Vec<Reply>),
    Set(Vec<Reply>),
    Bool(bool),
    /// Text that RESP2 sends as a bulk string and RESP3 as a verbatim string.
    Verbatim(Bytes),
    /// Members and values alternate; RESP2 sends a flat array, RESP3 an array of pairs.
    Pairs(Vec<Reply>),
    /// Keys and values alternate; RESP3 sends a map, RESP2 an array of pairs (XREAD).
    PairMap(Vec<Reply>),
    /// A double already in Redis's text for it: RESP2 sends a bulk string, RESP3 a double.
    DoubleText(Bytes),
    /// Out-of-band data (pub/sub messages, SUBSCRIBE confirmations): RESP3's `>` push
    /// frame, a plain array in RESP2. Gateway-made: never crosses the data stream.
    Push(Vec<Reply>),
    /// Several replies written back to back for one command (SUBSCRIBE a b confirms each
    /// channel). Gateway-made: never crosses the data stream.
    Sequence(Vec<Reply>),
}

impl Reply {
    pub fn ok() -> Reply {
        Reply::Simple("OK".into())
    }

    pub fn error(msg: impl Into<String>) -> Reply {
        Reply::Error(msg.into())
    }

    pub fn bulk(data: impl Into<Bytes>) -> Reply {
        Reply::Bulk(data.into())
    }

    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }
}

/// Redis's error lines, byte for byte; every process uses these.
pub mod errors {
    pub const SYNTAX: &str = "ERR syntax error";
    pub const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
    pub const NOT_FLOAT: &str = "ERR value is not a valid float";
    pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
    pub const NO_SUCH_KEY: &str = "ERR no such key";
    pub const OVERFLOW: &str = "ERR increment or decrement would overflow";
    pub const READONLY: &str = "READONLY You can't write against a read only replica.";
    pub const MAX_STRING: &str = "ERR string exceeds maximum allowed size (proto-max-bulk-len)";
    pub const INVALID_EXPIRE: &str = "ERR invalid expire time in '{}' command";
    pub const DB_INDEX: &str = "ERR DB index is out of range";
    /// A write that may grow memory while the node is over maxmemory and can evict nothing.
    pub const OOM: &str = "OOM command not allowed when used memory > 'maxmemory'.";

    pub fn wrong_arity(cmd: &str) -> String {
        format!("ERR wrong number of arguments for '{}' command", cmd.to_ascii_lowercase())
    }

    pub fn invalid_expire(cmd: &str) -> String {
        INVALID_EXPIRE.replace("{}", &cmd.to_ascii_lowercase())
    }
}

impl From<Reply> for pb::Value {
    fn from(r: Reply) -> pb::Value {
        use pb::value::Kind;
        let list = |items: Vec<Reply>| pb::Values { items: items.into_iter().map(pb::Value::from).collect() };
        let kind = match r {
            Reply::Simple(s) => Kind::Simple(s),
            Reply::Error(s) => Kind::Error(s),
            Reply::Integer(i) => Kind::Integer(i),
            Reply::Bulk(b) => Kind::Bulk(b),
            Reply::NullBulk => Kind::NullBulk(true),
            Reply::NullArray => Kind::NullArray(true),
            Reply::Array(items) => Kind::Array(list(items)),
            Reply::Double(d) => Kind::Double(d),
            Reply::Map(items) => Kind::Map(list(items)),
            Reply::Set(items) => Kind::Set(list(items)),
            Reply::Bool(b) => Kind::Boolean(b),
            Reply::Verbatim(b) => Kind::Verbatim(b),
            Reply::Pairs(items) => Kind::Pairs(list(items)),
            Reply::PairMap(items) => Kind::PairMap(list(items)),
            Reply::DoubleText(b) => Kind::DoubleText(b),
            // Gateway-only shapes; should one ever be converted, it travels as an array.
            Reply::Push(items) | Reply::Sequence(items) => Kind::Array(list(items)),
        };
        pb::Value { kind: Some(kind) }
    }
}

impl From<pb::Value> for Reply {
    fn from(v: pb::Value) -> Reply {
        use pb::value::Kind;
        let list = |items: pb::Values| items.items.into_iter().map(Reply::from).collect();
        match v.kind {
            Some(Kind::Simple(s)) => Reply::Simple(s),
            Some(Kind::Error(s)) => Reply::Error(s),
            Some(Kind::Integer(i)) => Reply::Integer(i),
            Some(Kind::Bulk(b)) => Reply::Bulk(b),
            Some(Kind::NullBulk(_)) | None => Reply::NullBulk,
            Some(Kind::NullArray(_)) => Reply::NullArray,
            Some(Kind::Array(items)) => Reply::Array(list(items)),
            Some(Kind::Double(d)) => Reply::Double(d),
            Some(Kind::Map(items)) => Reply::Map(list(items)),
            Some(Kind::Set(items)) => Reply::Set(list(items)),
            Some(Kind::Boolean(b)) => Reply::Bool(b),
            Some(Kind::Verbatim(b)) => Reply::Verbatim(b),
            Some(Kind::Pairs(items)) => Reply::Pairs(list(items)),
            Some(Kind::PairMap(items)) => Reply::PairMap(list(items)),
            Some(Kind::DoubleText(b)) => Reply::DoubleText(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proto_round_trip() {
        let r = Reply::Array(vec![
            Reply::ok(),
            Reply::error("ERR x"),
            Reply::Integer(-3),
            Reply::bulk(&b"v"[..]),
            Reply::NullBulk,
            Reply::NullArray,
            Reply::Double(1.5),
            Reply::Map(vec![Reply::bulk(&b"k"[..]), Reply::Integer(1)]),
            Reply::Set(vec![]),
            Reply::Bool(true),
            Reply::Verbatim(Bytes::from_static(b"txt")),
            Reply::Pairs(vec![Reply::bulk(&b"m"[..]), Reply::Double(2.0)]),
            Reply::PairMap(vec![Reply::bulk(&b"s"[..]), Reply::Array(vec![])]),
            Reply::DoubleText(Bytes::from_static(b"13.36138933897018433")),
        ]);
        assert_eq!(Reply::from(pb::Value::from(r.clone())), r);
    }
}
