//! Values between Lua and Redis, by Redis's conversion rules: RESP2 to Lua and back, and
//! RESP3's types once a script asks for them with `redis.setresp(3)`.

use bytes::Bytes;
use ferrocache_common::Reply;
use mlua::{Lua, Table, Value};

/// Deepest table a script may return: a table that holds itself must not recurse for ever,
/// and the data stream's decoder refuses replies nested much deeper (protobuf's limit).
const MAX_DEPTH: usize = 32;

/// A command's reply as the script sees it: integers as numbers, bulk strings as strings,
/// nil as false, arrays as tables, status and error replies as `{ok=...}` / `{err=...}`.
/// With `resp3`, RESP3's own types: maps as `{map={...}}`, sets as `{set={m=true}}`, doubles
/// as `{double=n}`, booleans as booleans, null as nil, verbatim text as
/// `{verbatim_string={format='txt', string=...}}`.
pub fn to_lua(lua: &Lua, reply: Reply, resp3: bool) -> mlua::Result<Value> {
    if resp3 {
        if let Some(v) = to_lua3(lua, &reply)? {
            return Ok(v);
        }
    }
    let to_lua = |lua: &Lua, r: Reply| to_lua(lua, r, resp3);
    Ok(match reply {
        Reply::Simple(s) => Value::Table(field(lua, "ok", &s)?),
        Reply::Error(e) => Value::Table(field(lua, "err", &e)?),
        Reply::Integer(i) => Value::Integer(i),
        Reply::Bulk(b) | Reply::Verbatim(b) | Reply::DoubleText(b) => Value::String(lua.create_string(&b)?),
        Reply::NullBulk | Reply::NullArray => Value::Boolean(false),
        // RESP2 sends doubles as bulk strings and booleans as 1 / nil.
        Reply::Double(d) => Value::String(lua.create_string(ferrocache_common::double::format_double(d))?),
        Reply::Bool(true) => Value::Integer(1),
        Reply::Bool(false) => Value::Boolean(false),
        // RESP2's shape: an array of two-element arrays.
        Reply::PairMap(items) => {
            let t = lua.create_table_with_capacity(items.len() / 2, 0)?;
            let mut items = items.into_iter();
            let mut i = 1;
            while let (Some(k), Some(v)) = (items.next(), items.next()) {
                let pair = lua.create_table_with_capacity(2, 0)?;
                pair.raw_set(1, to_lua(lua, k)?)?;
                pair.raw_set(2, to_lua(lua, v)?)?;
                t.raw_set(i, pair)?;
                i += 1;
            }
            Value::Table(t)
        }
        Reply::Array(items)
        | Reply::Map(items)
        | Reply::Set(items)
        | Reply::Pairs(items)
        | Reply::Push(items)
        | Reply::Sequence(items) => {
            let t = lua.create_table_with_capacity(items.len(), 0)?;
            for (i, item) in items.into_iter().enumerate() {
                t.raw_set(i + 1, to_lua(lua, item)?)?;
            }
            Value::Table(t)
        }
    })
}

/// The RESP3 forms; None for replies whose form is RESP2's.
fn to_lua3(lua: &Lua, reply: &Reply) -> mlua::Result<Option<Value>> {
    let wrap = |name: &str, v: Value| -> mlua::Result<Value> {
        let t = lua.create_table()?;
        t.raw_set(name, v)?;
        Ok(Value::Table(t))
    };
    Ok(Some(match reply {
        Reply::NullBulk | Reply::NullArray => Value::Nil,
        Reply::Bool(b) => Value::Boolean(*b),
        Reply::Double(d) => wrap("double", Value::Number(*d))?,
        Reply::DoubleText(b) => {
            let d = std::str::from_utf8(b).ok().and_then(|t| t.parse::<f64>().ok()).unwrap_or(0.0);
            wrap("double", Value::Number(d))?
        }
        Reply::Verbatim(b) => {
            let v = lua.create_table()?;
            v.raw_set("format", "txt")?;
            v.raw_set("string", lua.create_string(b)?)?;
            wrap("verbatim_string", Value::Table(v))?
        }
        Reply::Map(items) | Reply::PairMap(items) => {
            let t = lua.create_table()?;
            for pair in items.chunks(2) {
                if let [k, v] = pair {
                    t.raw_set(to_lua(lua, k.clone(), true)?, to_lua(lua, v.clone(), true)?)?;
                }
            }
            wrap("map", Value::Table(t))?
        }
        Reply::Set(items) => {
            let t = lua.create_table()?;
            for m in items {
                t.raw_set(to_lua(lua, m.clone(), true)?, true)?;
            }
            wrap("set", Value::Table(t))?
        }
        Reply::Pairs(items) => {
            let t = lua.create_table()?;
            for (i, pair) in items.chunks(2).enumerate() {
                let p = lua.create_table()?;
                for (j, x) in pair.iter().enumerate() {
                    p.raw_set(j + 1, to_lua(lua, x.clone(), true)?)?;
                }
                t.raw_set(i + 1, p)?;
            }
            Value::Table(t)
        }
        _ => return Ok(None),
    }))
}

fn field(lua: &Lua, name: &str, text: &str) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set(name, text)?;
    Ok(t)
}

/// What a script returned, as the client's reply: numbers truncate to integers, strings are
/// bulk strings, `true` is 1, `false` and nil are nil, a table with `err` / `ok` is an error /
/// status reply, `double` / `map` / `set` / `big_number` / `verbatim_string` tables are those
/// RESP3 types, any other table is an array up to its first nil. With `resp3` (the script
/// called `redis.setresp(3)`), booleans are RESP3 booleans.
pub fn from_lua(value: &Value, resp3: bool) -> Reply {
    convert(value, 0, resp3).unwrap_or_else(|| Reply::error("ERR reached lua stack limit"))
}

/// None: nested deeper than [`MAX_DEPTH`].
fn convert(value: &Value, depth: usize, resp3: bool) -> Option<Reply> {
    let convert = |v: &Value, depth| convert(v, depth, resp3);
    Some(match value {
        Value::Boolean(b) if resp3 => Reply::Bool(*b),
        Value::Nil | Value::Boolean(false) => Reply::NullBulk,
        Value::Boolean(true) => Reply::Integer(1),
        Value::Integer(i) => Reply::Integer(*i),
        Value::Number(n) => Reply::Integer(truncate(*n)),
        Value::String(s) => Reply::Bulk(Bytes::copy_from_slice(&s.as_bytes())),
        Value::Table(t) => {
            if depth >= MAX_DEPTH {
                return None;
            }
            if let Ok(Value::String(e)) = t.raw_get::<Value>("err") {
                return Some(Reply::Error(e.to_string_lossy()));
            }
            if let Ok(Value::String(ok)) = t.raw_get::<Value>("ok") {
                return Some(Reply::Simple(ok.to_string_lossy()));
            }
            match t.raw_get::<Value>("double") {
                Ok(Value::Number(d)) => return Some(Reply::Double(d)),
                Ok(Value::Integer(i)) => return Some(Reply::Double(i as f64)),
                _ => {}
            }
            if let Ok(Value::Table(m)) = t.raw_get::<Value>("map") {
                let mut items = Vec::new();
                for (k, v) in m.pairs::<Value, Value>().flatten() {
                    items.push(convert(&k, depth + 1)?);
                    items.push(convert(&v, depth + 1)?);
                }
                return Some(Reply::Map(items));
            }
            if let Ok(Value::Table(s)) = t.raw_get::<Value>("set") {
                let mut items = Vec::new();
                for (k, _) in s.pairs::<Value, Value>().flatten() {
                    items.push(convert(&k, depth + 1)?);
                }
                return Some(Reply::Set(items));
            }
            if let Ok(Value::String(n)) = t.raw_get::<Value>("big_number") {
                return Some(Reply::Bulk(Bytes::copy_from_slice(&n.as_bytes())));
            }
            if let Ok(Value::Table(v)) = t.raw_get::<Value>("verbatim_string") {
                if let Ok(Value::String(s)) = v.raw_get::<Value>("string") {
                    return Some(Reply::Verbatim(Bytes::copy_from_slice(&s.as_bytes())));
                }
            }
            let mut items = Vec::new();
            for i in 1.. {
                match t.raw_get::<Value>(i) {
                    Ok(Value::Nil) | Err(_) => break,
                    Ok(v) => items.push(convert(&v, depth + 1)?),
                }
            }
            Reply::Array(items)
        }
        _ => Reply::NullBulk,
    })
}

/// Lua number -> integer reply, truncating toward zero (Redis casts to long long).
fn truncate(n: f64) -> i64 {
    if n.is_nan() {
        i64::MIN
    } else {
        n as i64
    }
}

/// A number passed as a command argument, as Lua prints it (`%.14g`).
pub fn lua_number_text(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        return format!("{}", n as i64);
    }
    if !n.is_finite() {
        return if n.is_nan() {
            "nan".into()
        } else if n > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        };
    }
    // %.14g: 14 significant digits, trailing zeros dropped, exponent form when large/small.
    let exp = n.abs().log10().floor() as i32;
    if !(-5..14).contains(&exp) {
        let s = format!("{:.13e}", n);
        let (mantissa, e) = s.split_once('e').unwrap_or((&s, "0"));
        let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
        let e: i32 = e.parse().unwrap_or(0);
        format!("{mantissa}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
    } else {
        let decimals = (13 - exp).max(0) as usize;
        let s = format!("{:.*}", decimals, n);
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_as_lua_does() {
        assert_eq!(lua_number_text(3.0), "3");
        assert_eq!(lua_number_text(-2.5), "-2.5");
        assert_eq!(lua_number_text(0.1), "0.1");
        assert_eq!(lua_number_text(1e20), "1e+20");
        assert_eq!(lua_number_text(1.5e-7), "1.5e-07");
        assert_eq!(lua_number_text(123.456_789_012_345_68), "123.45678901235");
    }

    #[test]
    fn script_values_become_redis_replies() {
        let lua = Lua::new();
        let v: Value = lua.load("return {1, 'two', {3}, nil, 5}").eval().unwrap();
        assert_eq!(
            from_lua(&v, false),
            Reply::Array(vec![Reply::Integer(1), Reply::Bulk("two".into()), Reply::Array(vec![Reply::Integer(3)])])
        );
        let v: Value = lua.load("return 3.99").eval().unwrap();
        assert_eq!(from_lua(&v, false), Reply::Integer(3));
        let v: Value = lua.load("return {err='MYERR bad'}").eval().unwrap();
        assert_eq!(from_lua(&v, false), Reply::error("MYERR bad"));
        let v: Value = lua.load("local t = {} t[1] = t return t").eval().unwrap();
        assert_eq!(from_lua(&v, false), Reply::error("ERR reached lua stack limit"), "a table holding itself ends");
        let back = to_lua(&lua, Reply::Array(vec![Reply::NullBulk, Reply::Simple("OK".into())]), false).unwrap();
        let Value::Table(t) = back else { panic!("a table") };
        assert!(!t.raw_get::<bool>(1).unwrap());
        let ok: Table = t.raw_get(2).unwrap();
        assert_eq!(ok.raw_get::<String>("ok").unwrap(), "OK");
    }
}
