//! What Redis says of its commands beyond the command table: COMMAND DOCS's complexity,
//! history and arguments, and COMMAND INFO's tips and key specifications. The data is
//! redis-server's own replies, kept in RESP3 so that their types (simple or bulk strings,
//! sets, maps) come out as Redis sends them (`data/commands.resp`, written by
//! `data/generate-commands.py`). Key specifications also answer COMMAND GETKEYSANDFLAGS.

use std::collections::HashMap;
use std::sync::OnceLock;

use bytes::Bytes;

use crate::Reply;

static DATA: &[u8] = include_bytes!("../data/commands.resp");

/// Nesting deeper than this is not in the data (arguments nest four levels at most).
const MAX_DEPTH: usize = 16;

/// One command or subcommand (`config|get`), as Redis describes it.
#[derive(Debug)]
pub struct Description {
    /// COMMAND DOCS's map, keys and values alternating, without `subcommands`.
    pub docs: Vec<Reply>,
    /// COMMAND INFO's eighth field.
    pub tips: Reply,
    /// COMMAND INFO's ninth field.
    pub key_specs: Reply,
    specs: Vec<KeySpec>,
}

/// Where a key specification starts looking for keys.
#[derive(Debug, Clone, PartialEq)]
enum Begin {
    Index(i64),
    /// After this keyword, searched from `startfrom` (negative: backwards from the end).
    Keyword {
        keyword: Vec<u8>,
        startfrom: i64,
    },
    Unknown,
}

/// How a key specification finds the keys after its start.
#[derive(Debug, Clone, PartialEq)]
enum Find {
    /// `lastkey` relative to the first key (negative: from the end, or with `limit`, of
    /// the arguments' share).
    Range {
        lastkey: i64,
        keystep: i64,
        limit: i64,
    },
    /// The number of keys is an argument (EVAL's numkeys).
    Keynum {
        keynumidx: i64,
        firstkey: i64,
        keystep: i64,
    },
    Unknown,
}

#[derive(Debug, Clone, PartialEq)]
struct KeySpec {
    flags: Vec<&'static str>,
    begin: Begin,
    find: Find,
}

/// Redis's description of a command (lowercase name, `container|sub` for a subcommand).
pub fn describe(name: &str) -> Option<&'static Description> {
    table().get(name)
}

fn table() -> &'static HashMap<String, Description> {
    static TABLE: OnceLock<HashMap<String, Description>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut at = 0;
        // The data is compiled in and checked by a test: a broken file leaves the table empty
        // (plainer COMMAND replies) rather than stopping the gateway.
        let Ok(Reply::Map(items)) = parse(DATA, &mut at, 0) else { return HashMap::new() };
        let mut table = HashMap::new();
        let mut items = items.into_iter();
        while let (Some(Reply::Bulk(name)), Some(Reply::Array(entry))) = (items.next(), items.next()) {
            let mut parts = entry.into_iter();
            let (Some(Reply::Map(docs)), Some(tips), Some(key_specs)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let specs = match &key_specs {
                Reply::Set(specs) | Reply::Array(specs) => specs.iter().map(key_spec).collect(),
                _ => Vec::new(),
            };
            table.insert(String::from_utf8_lossy(&name).into_owned(), Description { docs, tips, key_specs, specs });
        }
        table
    })
}

#[derive(Debug, PartialEq)]
struct Malformed;

/// Reads one RESP3 value of the kinds the data holds.
fn parse(data: &[u8], at: &mut usize, depth: usize) -> Result<Reply, Malformed> {
    if depth > MAX_DEPTH {
        return Err(Malformed);
    }
    let line = read_line(data, at)?;
    let (&kind, rest) = line.split_first().ok_or(Malformed)?;
    let number = || std::str::from_utf8(rest).ok().and_then(|t| t.parse::<i64>().ok()).ok_or(Malformed);
    let count = |n: i64| usize::try_from(n).map_err(|_| Malformed);
    Ok(match kind {
        b'+' => Reply::Simple(String::from_utf8_lossy(rest).into_owned()),
        b':' => Reply::Integer(number()?),
        b'$' => {
            let n = count(number()?)?;
            let end = at.checked_add(n).filter(|&e| e + 2 <= data.len()).ok_or(Malformed)?;
            let value = Bytes::copy_from_slice(&data[*at..end]);
            *at = end + 2;
            Reply::Bulk(value)
        }
        b'*' => Reply::Array(items(data, at, depth, count(number()?)?)?),
        b'~' => Reply::Set(items(data, at, depth, count(number()?)?)?),
        b'%' => Reply::Map(items(data, at, depth, count(number()?)?.checked_mul(2).ok_or(Malformed)?)?),
        _ => return Err(Malformed),
    })
}

fn items(data: &[u8], at: &mut usize, depth: usize, n: usize) -> Result<Vec<Reply>, Malformed> {
    // Each item takes at least three bytes: a count beyond that is a lie.
    if n > data.len() / 3 {
        return Err(Malformed);
    }
    (0..n).map(|_| parse(data, at, depth + 1)).collect()
}

fn read_line<'a>(data: &'a [u8], at: &mut usize) -> Result<&'a [u8], Malformed> {
    let rest = data.get(*at..).ok_or(Malformed)?;
    let end = rest.windows(2).position(|w| w == b"\r\n").ok_or(Malformed)?;
    *at += end + 2;
    Ok(&rest[..end])
}

/// The value under `key` in a RESP3 map.
fn field<'a>(map: &'a Reply, key: &str) -> Option<&'a Reply> {
    let Reply::Map(items) = map else { return None };
    items.chunks(2).find(|kv| matches!(&kv[0], Reply::Bulk(k) if k.as_ref() == key.as_bytes())).map(|kv| &kv[1])
}

fn int_field(map: &Reply, key: &str) -> i64 {
    match field(map, key) {
        Some(Reply::Integer(n)) => *n,
        _ => 0,
    }
}

fn text_field<'a>(map: &'a Reply, key: &str) -> &'a [u8] {
    match field(map, key) {
        Some(Reply::Bulk(b)) => b.as_ref(),
        _ => b"",
    }
}

/// Key-specification flags are few and known: interned so that GETKEYSANDFLAGS borrows them.
fn intern(flag: &str) -> &'static str {
    const FLAGS: &[&str] =
        &["RO", "RW", "OW", "RM", "access", "update", "insert", "delete", "not_key", "incomplete", "variable_flags"];
    FLAGS.iter().find(|f| **f == flag).copied().unwrap_or("unknown")
}

fn key_spec(spec: &Reply) -> KeySpec {
    let flags = match field(spec, "flags") {
        Some(Reply::Set(fs)) | Some(Reply::Array(fs)) => fs
            .iter()
            .filter_map(|f| match f {
                Reply::Simple(s) => Some(intern(s)),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let begin = field(spec, "begin_search").map_or(Begin::Unknown, |b| {
        let inner = field(b, "spec").unwrap_or(b);
        match text_field(b, "type") {
            b"index" => Begin::Index(int_field(inner, "index")),
            b"keyword" => Begin::Keyword {
                keyword: text_field(inner, "keyword").to_vec(),
                startfrom: int_field(inner, "startfrom"),
            },
            _ => Begin::Unknown,
        }
    });
    let find = field(spec, "find_keys").map_or(Find::Unknown, |f| {
        let inner = field(f, "spec").unwrap_or(f);
        match text_field(f, "type") {
            b"range" => Find::Range {
                lastkey: int_field(inner, "lastkey"),
                keystep: int_field(inner, "keystep"),
                limit: int_field(inner, "limit"),
            },
            b"keynum" => Find::Keynum {
                keynumidx: int_field(inner, "keynumidx"),
                firstkey: int_field(inner, "firstkey"),
                keystep: int_field(inner, "keystep"),
            },
            _ => Find::Unknown,
        }
    });
    KeySpec { flags, begin, find }
}

/// Why a key specification could not be followed.
#[derive(Debug, PartialEq)]
enum Unfollowed {
    /// Its kinds are unknown or it says it is incomplete: the command knows its keys.
    Unknown,
    /// The arguments do not hold the keys it describes (a key count beyond them): a
    /// syntax error the command reports, with no keys.
    OutOfBounds,
}

/// The keys one specification finds in `args` (the command name first), as Redis's
/// getKeysUsingKeySpecs does.
fn spec_keys(spec: &KeySpec, args: &[Bytes]) -> Result<Vec<usize>, Unfollowed> {
    if spec.flags.contains(&"incomplete") {
        return Err(Unfollowed::Unknown);
    }
    let argc = args.len() as i64;
    let first = match &spec.begin {
        Begin::Index(i) => *i,
        Begin::Keyword { keyword, startfrom } => {
            let found = if *startfrom >= 0 {
                (*startfrom..argc).find(|&i| args[i as usize].eq_ignore_ascii_case(keyword))
            } else {
                (1..=(argc + startfrom)).rev().find(|&i| args[i as usize].eq_ignore_ascii_case(keyword))
            };
            // A keyword that is absent means this specification has no keys here.
            match found {
                Some(i) => i + 1,
                None => return Ok(Vec::new()),
            }
        }
        Begin::Unknown => return Err(Unfollowed::Unknown),
    };
    let (first, last, step) = match spec.find {
        Find::Range { lastkey, keystep, limit } => {
            let last = if lastkey >= 0 {
                first + lastkey
            } else if limit <= 1 {
                argc + lastkey
            } else {
                first + ((argc - first) / limit + lastkey)
            };
            (first, last, keystep)
        }
        Find::Keynum { keynumidx, firstkey, keystep } => {
            let at = usize::try_from(first + keynumidx).map_err(|_| Unfollowed::OutOfBounds)?;
            let numkeys = args
                .get(at)
                .and_then(|a| crate::int::parse_i64(a))
                .filter(|n| *n >= 0)
                .ok_or(Unfollowed::OutOfBounds)?;
            let first = first + firstkey;
            (first, first.saturating_add(numkeys.saturating_sub(1).saturating_mul(keystep)), keystep)
        }
        Find::Unknown => return Err(Unfollowed::Unknown),
    };
    if last >= argc || last < first || first >= argc || first <= 0 || step <= 0 {
        return Err(Unfollowed::OutOfBounds);
    }
    Ok((first..=last).step_by(step as usize).map(|i| i as usize).collect())
}

/// Whether Redis counts the command as having keys: a key specification that is not
/// `not_key` (SPUBLISH's channel is not a key).
pub fn has_keys(name: &str) -> bool {
    describe(name).is_some_and(|d| d.specs.iter().any(|s| !s.flags.contains(&"not_key")))
}

/// COMMAND GETKEYSANDFLAGS: each key's position in `args` (the command name first) with the
/// flags Redis gives it. `name` is the command or subcommand (`object|encoding`);
/// `positions` are the keys as the command table finds them, used where Redis's
/// specifications cannot say (SORT's STORE) or where flags depend on the arguments (SET
/// with GET, BITFIELD's writes).
pub fn keys_and_flags(name: &str, args: &[Bytes], positions: &[usize]) -> Vec<(usize, Vec<&'static str>)> {
    let Some(description) = describe(name) else {
        return positions.iter().map(|&p| (p, Vec::new())).collect();
    };
    let specs = &description.specs;
    let has = |word: &[u8]| args.iter().skip(2).any(|a| a.eq_ignore_ascii_case(word));
    let variable: Option<&[&'static str]> = match name {
        "set" if !has(b"GET") => Some(&["OW", "update"]),
        "set" => Some(&["RW", "access", "update"]),
        "bitfield" if !(has(b"SET") || has(b"INCRBY")) => Some(&["RO", "access"]),
        "bitfield" => Some(&["RW", "access", "update"]),
        _ => None,
    };
    if let Some(flags) = variable {
        return positions.iter().map(|&p| (p, flags.to_vec())).collect();
    }
    let mut keys = Vec::new();
    for s in specs {
        match spec_keys(s, args) {
            Ok(found) => keys.extend(found.into_iter().map(|k| (k, s.flags.clone()))),
            // Redis's own key finders answer no keys for a bad count.
            Err(Unfollowed::OutOfBounds) => return Vec::new(),
            Err(Unfollowed::Unknown) => return by_position(specs, positions),
        }
    }
    keys
}

/// The first key takes the first specification's flags, the others the last one's (SORT:
/// the key read, then its STORE destination).
fn by_position(specs: &[KeySpec], positions: &[usize]) -> Vec<(usize, Vec<&'static str>)> {
    positions
        .iter()
        .enumerate()
        .map(|(i, &p)| {
            let s = if i == 0 { specs.first() } else { specs.last() };
            (p, s.map(|s| s.flags.clone()).unwrap_or_default())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<Bytes> {
        line.split(' ').map(|a| Bytes::copy_from_slice(a.as_bytes())).collect()
    }

    #[test]
    fn the_data_parses_completely() {
        let mut at = 0;
        let parsed = parse(DATA, &mut at, 0).expect("commands.resp parses");
        assert_eq!(at, DATA.len(), "nothing after the map");
        let Reply::Map(items) = parsed else { panic!("a map") };
        assert_eq!(table().len(), items.len() / 2);
        // Every served command and subcommand has a description.
        for c in crate::command::COMMANDS {
            assert!(describe(c.name).is_some(), "{} described", c.name);
        }
        for s in crate::subcommands::SUBCOMMANDS {
            assert!(describe(s.name).is_some(), "{} described", s.name);
        }
    }

    #[test]
    fn malformed_data_is_refused_not_panicked_on() {
        for bad in [&b"$5\r\nab\r\n"[..], b"*2\r\n:1\r\n", b"%-1\r\n", b"?\r\n", b"", b":x\r\n", b"$-3\r\n"] {
            assert_eq!(parse(bad, &mut 0, 0), Err(Malformed), "{bad:?}");
        }
        let deep = "*1\r\n".repeat(40);
        assert_eq!(parse(deep.as_bytes(), &mut 0, 0), Err(Malformed));
    }

    #[test]
    fn key_specs_find_keys_as_redis_does() {
        type Keys = &'static [(usize, &'static [&'static str])];
        let cases: &[(&str, Keys)] = &[
            ("set k v", &[(1, &["OW", "update"])]),
            ("set k v get", &[(1, &["RW", "access", "update"])]),
            ("mset a 1 b 2", &[(1, &["OW", "update"]), (3, &["OW", "update"])]),
            ("lmove a b left right", &[(1, &["RW", "access", "delete"]), (2, &["RW", "insert"])]),
            ("xread count 2 streams s1 s2 0 0", &[(4, &["RO", "access"]), (5, &["RO", "access"])]),
            ("zunionstore d 2 a b", &[(1, &["OW", "update"]), (3, &["RO", "access"]), (4, &["RO", "access"])]),
            ("eval s 2 a b c", &[(3, &["RW", "access", "update"]), (4, &["RW", "access", "update"])]),
            ("sort k store d", &[(1, &["RO", "access"]), (3, &["OW", "update"])]),
            ("eval s 5 a", &[]),
            ("xread streams s1", &[]),
            (
                "georadius k 0 0 1 km store d storedist e",
                &[(1, &["RO", "access"]), (7, &["OW", "update"]), (9, &["OW", "update"])],
            ),
        ];
        for (line, want) in cases {
            let args = args(line);
            let spec = crate::command::lookup(&args[0]).expect("known");
            let positions = crate::command::key_positions(spec, &args);
            let got = keys_and_flags(spec.name, &args, &positions);
            let want: Vec<(usize, Vec<&str>)> = want.iter().map(|(p, f)| (*p, f.to_vec())).collect();
            assert_eq!(got, want, "{line}");
        }
    }
}
