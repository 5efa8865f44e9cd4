//! The libraries Redis bundles for scripts beyond Lua's own: `cjson` (lua-cjson's encode and
//! decode) and `bit` (LuaBitOp), written here against the same rules.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use mlua::{LightUserData, Lua, LuaString, Table, Value};

use super::convert::lua_number_text;

/// Deepest nesting cjson encodes (lua-cjson allows 1000; each level here is a Rust stack
/// frame on a worker thread, so fewer: a table holding itself must fail, not overflow the
/// stack). Decoding stops at serde_json's 128.
const MAX_DEPTH: usize = 128;

/// lua-cjson's settings, changed by `cjson.encode_max_depth(n)` and the like. Like
/// redis-server's, they belong to the scripting engine: a script that changes one changes
/// it for the scripts after it.
struct Settings {
    encode_max_depth: AtomicUsize,
    decode_max_depth: AtomicUsize,
    /// 0: NaN and infinities are an error; 1: written as `nan` / `inf`; 2: as `null`.
    encode_invalid_numbers: AtomicU8,
    decode_invalid_numbers: AtomicBool,
    encode_number_precision: AtomicUsize,
    encode_keep_buffer: AtomicBool,
    /// encode_sparse_array's convert, ratio and safe.
    sparse_convert: AtomicBool,
    sparse_ratio: AtomicUsize,
    sparse_safe: AtomicUsize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            encode_max_depth: AtomicUsize::new(1000),
            decode_max_depth: AtomicUsize::new(1000),
            encode_invalid_numbers: AtomicU8::new(0),
            decode_invalid_numbers: AtomicBool::new(true),
            encode_number_precision: AtomicUsize::new(14),
            encode_keep_buffer: AtomicBool::new(true),
            sparse_convert: AtomicBool::new(false),
            sparse_ratio: AtomicUsize::new(2),
            sparse_safe: AtomicUsize::new(10),
        }
    }
}

/// A setting's argument as lua-cjson reads it: a boolean, or "on" / "off".
fn switch(v: &Value) -> mlua::Result<Option<bool>> {
    match v {
        Value::Nil => Ok(None),
        Value::Boolean(b) => Ok(Some(*b)),
        Value::String(s) if &*s.as_bytes() == b"on" => Ok(Some(true)),
        Value::String(s) if &*s.as_bytes() == b"off" => Ok(Some(false)),
        _ => Err(mlua::Error::runtime("bad argument #1 to '?' (invalid option)")),
    }
}

/// An integer setting's argument within `min..=max` (None: just asked).
fn bounded(v: Option<i64>, min: i64, max: i64) -> mlua::Result<Option<usize>> {
    match v {
        None => Ok(None),
        Some(n) if (min..=max).contains(&n) => Ok(Some(n as usize)),
        Some(_) => {
            Err(mlua::Error::runtime(format!("bad argument #1 to '?' (expected integer between {min} and {max})")))
        }
    }
}

/// `cjson.<name>([n])` for a number setting within `min..=max`: sets it, answers it.
fn number_setting(
    lua: &Lua,
    settings: &Arc<Settings>,
    field: fn(&Settings) -> &AtomicUsize,
    min: i64,
    max: i64,
) -> mlua::Result<mlua::Function> {
    let s = settings.clone();
    lua.create_function(move |_, n: Option<i64>| {
        if let Some(n) = bounded(n, min, max)? {
            field(&s).store(n, Relaxed);
        }
        Ok(field(&s).load(Relaxed))
    })
}

/// `cjson.<name>([on])` for an on/off setting: sets it, answers it.
fn switch_setting(
    lua: &Lua,
    settings: &Arc<Settings>,
    field: fn(&Settings) -> &AtomicBool,
) -> mlua::Result<mlua::Function> {
    let s = settings.clone();
    lua.create_function(move |_, v: Value| {
        if let Some(on) = switch(&v)? {
            field(&s).store(on, Relaxed);
        }
        Ok(field(&s).load(Relaxed))
    })
}

/// Adds `cjson` and `bit` to the globals (before the sandbox locks them).
pub fn install(lua: &Lua) -> mlua::Result<()> {
    let cjson = lua.create_table()?;
    let settings = Arc::new(Settings::default());
    cjson.set("null", null())?;
    let s = settings.clone();
    cjson.set("encode", lua.create_function(move |_, v: Value| encode_with(&v, &s).map_err(mlua::Error::runtime))?)?;
    let s = settings.clone();
    cjson.set("decode", lua.create_function(move |lua, t: LuaString| decode(lua, &t.as_bytes(), &s))?)?;
    let limit = i32::MAX as i64;
    cjson.set("encode_max_depth", number_setting(lua, &settings, |s| &s.encode_max_depth, 1, limit)?)?;
    cjson.set("decode_max_depth", number_setting(lua, &settings, |s| &s.decode_max_depth, 1, limit)?)?;
    cjson.set("encode_number_precision", number_setting(lua, &settings, |s| &s.encode_number_precision, 1, 14)?)?;
    cjson.set("encode_keep_buffer", switch_setting(lua, &settings, |s| &s.encode_keep_buffer)?)?;
    cjson.set("decode_invalid_numbers", switch_setting(lua, &settings, |s| &s.decode_invalid_numbers)?)?;
    let s = settings.clone();
    cjson.set(
        "encode_invalid_numbers",
        lua.create_function(move |lua, v: Value| {
            let mode = match &v {
                Value::String(t) if &*t.as_bytes() == b"null" => Some(2),
                other => switch(other)?.map(u8::from),
            };
            if let Some(mode) = mode {
                s.encode_invalid_numbers.store(mode, Relaxed);
            }
            Ok(match s.encode_invalid_numbers.load(Relaxed) {
                2 => Value::String(lua.create_string("null")?),
                mode => Value::Boolean(mode == 1),
            })
        })?,
    )?;
    let s = settings;
    cjson.set(
        "encode_sparse_array",
        lua.create_function(move |_, (convert, ratio, safe): (Value, Option<i64>, Option<i64>)| {
            if let Some(on) = switch(&convert)? {
                s.sparse_convert.store(on, Relaxed);
            }
            if let Some(r) = bounded(ratio, 0, i32::MAX as i64)? {
                s.sparse_ratio.store(r, Relaxed);
            }
            if let Some(n) = bounded(safe, 0, i32::MAX as i64)? {
                s.sparse_safe.store(n, Relaxed);
            }
            Ok((s.sparse_convert.load(Relaxed), s.sparse_ratio.load(Relaxed), s.sparse_safe.load(Relaxed)))
        })?,
    )?;
    lua.globals().set("cjson", cjson)?;
    lua.globals().set("bit", bit(lua)?)?;
    super::msgpack::install(lua)?;
    super::structlib::install(lua)?;
    Ok(())
}

/// `cjson.null`: a light userdata holding NULL, as lua-cjson's.
fn null() -> Value {
    Value::LightUserData(LightUserData(std::ptr::null_mut()))
}

/// `cjson.encode`.
fn encode_with(v: &Value, settings: &Settings) -> Result<String, String> {
    let mut out = String::new();
    encode_into(&mut out, v, 0, settings)?;
    Ok(out)
}

fn encode_into(out: &mut String, v: &Value, depth: usize, settings: &Settings) -> Result<(), String> {
    match v {
        Value::Nil => out.push_str("null"),
        Value::LightUserData(p) if p.0.is_null() => out.push_str("null"),
        Value::Boolean(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Integer(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Number(n) if !n.is_finite() => match settings.encode_invalid_numbers.load(Relaxed) {
            1 => out.push_str(&lua_number_text(*n)),
            2 => out.push_str("null"),
            _ => return Err("Cannot serialise number: must not be NaN or Inf".into()),
        },
        Value::Number(n) => out.push_str(&number_text(*n, settings.encode_number_precision.load(Relaxed))),
        Value::String(s) => quote(out, &s.as_bytes()),
        Value::Table(t) => {
            if depth >= MAX_DEPTH.min(settings.encode_max_depth.load(Relaxed)) {
                return Err(format!("Cannot serialise, excessive nesting ({})", depth + 1));
            }
            encode_table(out, t, depth + 1, settings)?;
        }
        other => return Err(format!("Cannot serialise {}: type not supported", other.type_name())),
    }
    Ok(())
}

/// A table is an array when every key is a positive integer and it is not too sparse
/// (lua-cjson: more than half holes past index 10 is an error); otherwise an object.
fn encode_table(out: &mut String, t: &Table, depth: usize, settings: &Settings) -> Result<(), String> {
    let index = |k: &Value| match k {
        Value::Integer(i) if *i > 0 => Some(*i as usize),
        Value::Number(n) if *n > 0.0 && n.fract() == 0.0 && *n < 1e15 => Some(*n as usize),
        _ => None,
    };
    // Two walks instead of collecting the pairs: every Lua value held on the Rust side
    // takes a slot of Lua's stack, and a table of 100k string keys would run out of them.
    let (mut count, mut max) = (0usize, Some(0usize));
    for pair in t.clone().pairs::<Value, Value>() {
        let (k, _) = pair.map_err(|e| e.to_string())?;
        count += 1;
        max = max.and_then(|m| index(&k).map(|i| m.max(i)));
    }
    let (ratio, safe) = (settings.sparse_ratio.load(Relaxed), settings.sparse_safe.load(Relaxed));
    let sparse = |max: usize| ratio > 0 && max > safe && max > count * ratio;
    let max = match max {
        Some(max) if sparse(max) && settings.sparse_convert.load(Relaxed) => None,
        max => max,
    };
    match max {
        Some(max) if count > 0 => {
            if sparse(max) {
                return Err("Cannot serialise table: excessively sparse array".into());
            }
            out.push('[');
            for i in 1..=max {
                if i > 1 {
                    out.push(',');
                }
                let v: Value = t.raw_get(i).map_err(|e| e.to_string())?;
                encode_into(out, &v, depth, settings)?;
            }
            out.push(']');
        }
        _ => {
            out.push('{');
            for (n, pair) in t.clone().pairs::<Value, Value>().enumerate() {
                let (k, v) = pair.map_err(|e| e.to_string())?;
                if n > 0 {
                    out.push(',');
                }
                match &k {
                    Value::String(s) => quote(out, &s.as_bytes()),
                    Value::Integer(i) => quote(out, i.to_string().as_bytes()),
                    Value::Number(x) => quote(out, lua_number_text(*x).as_bytes()),
                    _ => return Err("Cannot serialise table: table key must be a number or string".into()),
                }
                out.push(':');
                encode_into(out, &v, depth, settings)?;
            }
            out.push('}');
        }
    }
    Ok(())
}

/// A JSON string as lua-cjson writes it (it escapes '/' too); other bytes pass as they are.
fn quote(out: &mut String, s: &[u8]) {
    out.push('"');
    let mut raw = Vec::with_capacity(s.len());
    for &b in s {
        match b {
            b'"' => raw.extend_from_slice(b"\\\""),
            b'\\' => raw.extend_from_slice(b"\\\\"),
            b'/' => raw.extend_from_slice(b"\\/"),
            b'\n' => raw.extend_from_slice(b"\\n"),
            b'\r' => raw.extend_from_slice(b"\\r"),
            b'\t' => raw.extend_from_slice(b"\\t"),
            0x08 => raw.extend_from_slice(b"\\b"),
            0x0c => raw.extend_from_slice(b"\\f"),
            b if b < 0x20 || b == 0x7f => raw.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
            b => raw.push(b),
        }
    }
    // Lua strings are bytes; JSON text here may carry non-UTF-8 bytes as lua-cjson's does.
    out.push_str(&String::from_utf8_lossy(&raw));
    out.push('"');
}

/// A number as `%.<precision>g` writes it (lua-cjson's encode_number_precision).
fn number_text(n: f64, precision: usize) -> String {
    if precision >= 14 {
        return lua_number_text(n);
    }
    // Round to `precision` significant digits, then write it as Lua would.
    let rounded: f64 = format!("{:.*e}", precision.max(1) - 1, n).parse().unwrap_or(n);
    lua_number_text(rounded)
}

/// `cjson.decode`.
fn decode(lua: &Lua, text: &[u8], settings: &Settings) -> mlua::Result<Value> {
    let parsed: serde_json::Value = serde_json::from_slice(text)
        .map_err(|e| mlua::Error::runtime(format!("Expected value but found invalid token ({e})")))?;
    let max = settings.decode_max_depth.load(Relaxed);
    if nesting(&parsed) > max {
        return Err(mlua::Error::runtime(format!("Found too many nested data structures ({})", max + 1)));
    }
    to_lua(lua, &parsed)
}

/// How deep arrays and objects nest in `v` (a scalar: 0).
fn nesting(v: &serde_json::Value) -> usize {
    use serde_json::Value as J;
    match v {
        J::Array(items) => 1 + items.iter().map(nesting).max().unwrap_or(0),
        J::Object(fields) => 1 + fields.values().map(nesting).max().unwrap_or(0),
        _ => 0,
    }
}

fn to_lua(lua: &Lua, v: &serde_json::Value) -> mlua::Result<Value> {
    use serde_json::Value as J;
    Ok(match v {
        J::Null => null(),
        J::Bool(b) => Value::Boolean(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) if i.unsigned_abs() < (1 << 53) => Value::Integer(i),
            _ => Value::Number(n.as_f64().unwrap_or(0.0)),
        },
        J::String(s) => Value::String(lua.create_string(s)?),
        J::Array(items) => {
            let t = lua.create_table_with_capacity(items.len(), 0)?;
            for (i, item) in items.iter().enumerate() {
                t.raw_set(i + 1, to_lua(lua, item)?)?;
            }
            Value::Table(t)
        }
        J::Object(fields) => {
            let t = lua.create_table_with_capacity(0, fields.len())?;
            for (k, item) in fields {
                t.raw_set(k.as_str(), to_lua(lua, item)?)?;
            }
            Value::Table(t)
        }
    })
}

/// LuaBitOp: 32-bit operations on numbers.
fn bit(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    let fold = |f: fn(i32, i32) -> i32| {
        move |_: &Lua, args: mlua::Variadic<f64>| {
            let mut it = args.iter().map(|&n| tobit(n));
            let first = it.next().ok_or_else(|| mlua::Error::runtime("bad argument #1 (number expected)"))?;
            Ok(it.fold(first, f))
        }
    };
    t.set("band", lua.create_function(fold(|a, b| a & b))?)?;
    t.set("bor", lua.create_function(fold(|a, b| a | b))?)?;
    t.set("bxor", lua.create_function(fold(|a, b| a ^ b))?)?;
    t.set("tobit", lua.create_function(|_, n: f64| Ok(tobit(n)))?)?;
    t.set("bnot", lua.create_function(|_, n: f64| Ok(!tobit(n)))?)?;
    t.set("bswap", lua.create_function(|_, n: f64| Ok(tobit(n).swap_bytes()))?)?;
    let shift = |f: fn(i32, u32) -> i32| move |_: &Lua, (n, by): (f64, f64)| Ok(f(tobit(n), (tobit(by) & 31) as u32));
    t.set("lshift", lua.create_function(shift(|x, s| ((x as u32) << s) as i32))?)?;
    t.set("rshift", lua.create_function(shift(|x, s| ((x as u32) >> s) as i32))?)?;
    t.set("arshift", lua.create_function(shift(|x, s| x >> s))?)?;
    t.set("rol", lua.create_function(shift(|x, s| (x as u32).rotate_left(s) as i32))?)?;
    t.set("ror", lua.create_function(shift(|x, s| (x as u32).rotate_right(s) as i32))?)?;
    t.set(
        "tohex",
        lua.create_function(|_, (n, digits): (f64, Option<f64>)| {
            let digits = digits.map_or(8, tobit);
            let upper = digits < 0;
            let width = digits.unsigned_abs().clamp(1, 8) as usize;
            let x = tobit(n) as u32;
            let text = if upper { format!("{x:08X}") } else { format!("{x:08x}") };
            Ok(text[8 - width..].to_string())
        })?,
    )?;
    Ok(t)
}

/// A number as LuaBitOp normalises it: modulo 2^32, as a signed 32-bit integer.
fn tobit(n: f64) -> i32 {
    if !n.is_finite() {
        return 0;
    }
    n.round_ties_even().rem_euclid(4_294_967_296.0) as u32 as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(lua: &Lua, code: &str) -> Value {
        lua.load(code).eval().unwrap()
    }

    #[test]
    fn cjson_and_bit_behave_as_redis_bundles_them() {
        let lua = Lua::new();
        install(&lua).unwrap();
        let s = |v: Value| v.to_string().unwrap();
        assert_eq!(s(eval(&lua, "return cjson.encode({1, 2, 'a/b'})")), r#"[1,2,"a\/b"]"#);
        assert_eq!(s(eval(&lua, "return cjson.encode({x = true})")), r#"{"x":true}"#);
        assert_eq!(s(eval(&lua, "return cjson.encode({})")), "{}");
        assert_eq!(s(eval(&lua, "return cjson.encode({1.5, cjson.null})")), "[1.5,null]");
        assert!(lua.load("return cjson.encode({[1] = 1, [100] = 2})").eval::<Value>().is_err(), "too sparse");
        assert!(lua.load("local t = {} t[1] = t return cjson.encode(t)").eval::<Value>().is_err(), "nesting");
        // The settings a script changes hold for what it encodes and decodes next.
        assert!(lua.load("cjson.encode_max_depth(1) return cjson.encode({{1}})").eval::<Value>().is_err(), "depth");
        assert_eq!(s(eval(&lua, "return cjson.encode({{1}}, cjson.encode_max_depth(1000))")), "[[1]]");
        assert!(lua.load(r#"cjson.decode_max_depth(1) return cjson.decode('{"a":[1]}')"#).eval::<Value>().is_err());
        assert!(lua.load("return cjson.encode({0/0})").eval::<Value>().is_err(), "NaN");
        assert_eq!(s(eval(&lua, "cjson.encode_invalid_numbers(true) return cjson.encode({1/0})")), "[inf]");
        assert_eq!(s(eval(&lua, "cjson.encode_invalid_numbers('null') return cjson.encode({1/0})")), "[null]");
        let sparse = s(eval(&lua, "cjson.encode_sparse_array(true) return cjson.encode({[1] = 1, [100] = 2})"));
        assert!(sparse.starts_with('{') && sparse.contains(r#""100":2"#), "{sparse}");
        assert_eq!(s(eval(&lua, "cjson.encode_number_precision(3) return cjson.encode({3.14159})")), "[3.14]");
        assert!(lua.load("return cjson.encode_number_precision(15)").eval::<Value>().is_err());
        eval(&lua, "cjson.decode_max_depth(1000) cjson.encode_invalid_numbers(false) cjson.encode_sparse_array(false) cjson.encode_number_precision(14)");
        let v = eval(&lua, r#"local t = cjson.decode('{"a":[1,2,{"b":null}],"c":"x"}') return t.a[2] + #t.a"#);
        assert_eq!(v.as_f64().or(v.as_i64().map(|i| i as f64)), Some(5.0));
        assert!(matches!(eval(&lua, r#"return cjson.decode('[null]')[1] == cjson.null"#), Value::Boolean(true)));
        assert!(lua.load("return cjson.decode('{nope')").eval::<Value>().is_err());
        let int = |code: &str| eval(&lua, code).as_i64().or_else(|| eval(&lua, code).as_f64().map(|f| f as i64));
        assert_eq!(int("return bit.band(0xff, 0x0f, 0x3)"), Some(3));
        assert_eq!(int("return bit.bor(1, 2, 4)"), Some(7));
        assert_eq!(int("return bit.bnot(0)"), Some(-1));
        assert_eq!(int("return bit.lshift(1, 31)"), Some(i32::MIN as i64));
        assert_eq!(int("return bit.rshift(-1, 28)"), Some(15));
        assert_eq!(int("return bit.arshift(-16, 2)"), Some(-4));
        assert_eq!(int("return bit.tobit(2^32 + 5)"), Some(5));
        assert_eq!(s(eval(&lua, "return bit.tohex(255)")), "000000ff");
        assert_eq!(s(eval(&lua, "return bit.tohex(255, -4)")), "00FF");
    }
}
