//! `cmsgpack` as Redis bundles it (lua-cmsgpack 0.4): pack, unpack, unpack_one and
//! unpack_limit, with its encoding choices (smallest integer form, float32 when exact,
//! tables as arrays when their keys are 1..n, nil past 16 levels of nesting), so packed
//! bytes match Redis's.

use mlua::{Lua, LuaString, MultiValue, Table, Value};

/// Tables nested deeper than this pack as nil (lua-cmsgpack's LUACMSGPACK_MAX_NESTING).
const MAX_NESTING: usize = 16;
/// Deepest nesting unpack follows: each level is a Rust stack frame, and hostile input must
/// fail, not overflow the stack.
const MAX_DECODE_DEPTH: usize = 64;

pub fn install(lua: &Lua) -> mlua::Result<()> {
    let t = lua.create_table()?;
    t.set(
        "pack",
        lua.create_function(|lua, args: MultiValue| {
            if args.is_empty() {
                return Err(super::vm::raised(lua, "bad argument #0 to 'pack' (MessagePack pack needs input.)"));
            }
            let mut out = Vec::new();
            for v in args.iter() {
                encode(&mut out, v, 0)?;
            }
            lua.create_string(&out)
        })?,
    )?;
    t.set(
        "unpack",
        lua.create_function(|lua, s: LuaString| {
            let bytes = s.as_bytes();
            let mut cur = Cursor { data: &bytes, at: 0 };
            let mut out = MultiValue::new();
            while cur.at < cur.data.len() {
                out.push_back(
                    decode(lua, &mut cur, 0).map_err(|e| super::vm::raised(lua, &super::vm::lua_message(&e)))?,
                );
            }
            Ok(out)
        })?,
    )?;
    t.set(
        "unpack_one",
        lua.create_function(|lua, (s, offset): (LuaString, Option<i64>)| {
            unpack_limited(lua, &s.as_bytes(), 1, offset)
        })?,
    )?;
    t.set(
        "unpack_limit",
        lua.create_function(|lua, (s, limit, offset): (LuaString, i64, Option<i64>)| {
            unpack_limited(lua, &s.as_bytes(), limit, offset)
        })?,
    )?;
    lua.globals().set("cmsgpack", t)
}

/// unpack_one / unpack_limit: the offset after what was read (-1 at the end), then up to
/// `limit` objects.
fn unpack_limited(lua: &Lua, data: &[u8], limit: i64, offset: Option<i64>) -> mlua::Result<MultiValue> {
    let offset = offset.unwrap_or(0);
    if offset < 0 || limit < 0 {
        // (lua-cmsgpack reports the input's length as the limit.)
        let msg = format!("Invalid request to unpack with offset of {offset} and limit of {}.", data.len());
        return Err(super::vm::raised(lua, &msg));
    }
    if offset as usize > data.len() {
        let msg = format!("Start offset {offset} greater than input length {}.", data.len());
        return Err(super::vm::raised(lua, &msg));
    }
    let mut cur = Cursor { data, at: offset as usize };
    let mut objects = Vec::new();
    while cur.at < data.len() && (objects.len() as i64) < limit {
        objects.push(decode(lua, &mut cur, 0).map_err(|e| super::vm::raised(lua, &super::vm::lua_message(&e)))?);
    }
    let next = if cur.at >= data.len() { -1 } else { cur.at as i64 };
    let mut out = MultiValue::new();
    out.push_back(Value::Integer(next));
    out.extend(objects);
    Ok(out)
}

fn encode(out: &mut Vec<u8>, v: &Value, level: usize) -> mlua::Result<()> {
    match v {
        Value::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Integer(i) => encode_int(out, *i),
        Value::Number(n) => {
            // A whole number within int64 (C's cast, without Rust's saturation at 2^63).
            let whole = *n >= -9_223_372_036_854_775_808.0 && *n < 9_223_372_036_854_775_808.0 && n.fract() == 0.0;
            if whole {
                encode_int(out, *n as i64);
            } else if (*n as f32) as f64 == *n {
                out.push(0xca);
                out.extend_from_slice(&(*n as f32).to_be_bytes());
            } else {
                out.push(0xcb);
                out.extend_from_slice(&n.to_be_bytes());
            }
        }
        Value::String(s) => {
            let b = s.as_bytes();
            let len = b.len();
            if len < 32 {
                out.push(0xa0 | len as u8);
            } else if len <= 0xff {
                out.extend_from_slice(&[0xd9, len as u8]);
            } else if len <= 0xffff {
                out.push(0xda);
                out.extend_from_slice(&(len as u16).to_be_bytes());
            } else {
                out.push(0xdb);
                out.extend_from_slice(&(len as u32).to_be_bytes());
            }
            out.extend_from_slice(&b);
        }
        Value::Table(t) if level < MAX_NESTING => encode_table(out, t, level)?,
        // Nil, functions, userdata, and tables nested too deep.
        _ => out.push(0xc0),
    }
    Ok(())
}

fn encode_int(out: &mut Vec<u8>, n: i64) {
    if n >= 0 {
        let u = n as u64;
        if u <= 127 {
            out.push(u as u8);
        } else if u <= 0xff {
            out.extend_from_slice(&[0xcc, u as u8]);
        } else if u <= 0xffff {
            out.push(0xcd);
            out.extend_from_slice(&(u as u16).to_be_bytes());
        } else if u <= 0xffff_ffff {
            out.push(0xce);
            out.extend_from_slice(&(u as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&u.to_be_bytes());
        }
    } else if n >= -32 {
        out.push(n as i8 as u8);
    } else if n >= -128 {
        out.extend_from_slice(&[0xd0, n as i8 as u8]);
    } else if n >= -32768 {
        out.push(0xd1);
        out.extend_from_slice(&(n as i16).to_be_bytes());
    } else if n >= -2_147_483_648 {
        out.push(0xd2);
        out.extend_from_slice(&(n as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn header(out: &mut Vec<u8>, n: usize, fix: u8, wide16: u8, wide32: u8) {
    if n <= 15 {
        out.push(fix | n as u8);
    } else if n <= 0xffff {
        out.push(wide16);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(wide32);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

/// An array when every key is a positive whole number and the largest equals the count
/// (so an empty table is an empty array), as lua-cmsgpack decides; a map otherwise.
fn encode_table(out: &mut Vec<u8>, t: &Table, level: usize) -> mlua::Result<()> {
    let index = |k: &Value| match k {
        Value::Integer(i) if *i >= 1 => Some(*i as u64),
        Value::Number(n) if *n >= 1.0 && n.fract() == 0.0 && *n < 9.0e18 => Some(*n as u64),
        _ => None,
    };
    // Two walks instead of collecting the pairs: every Lua value held on the Rust side
    // takes a slot of Lua's stack, and a table of 100k string keys would run out of them.
    let (mut count, mut max) = (0usize, Some(0u64));
    for pair in t.clone().pairs::<Value, Value>() {
        let (k, _) = pair?;
        count += 1;
        max = max.and_then(|m| index(&k).map(|i| m.max(i)));
    }
    if max == Some(count as u64) {
        header(out, count, 0x90, 0xdc, 0xdd);
        for i in 1..=count {
            encode(out, &t.raw_get::<Value>(i)?, level + 1)?;
        }
    } else {
        header(out, count, 0x80, 0xde, 0xdf);
        let mut written = 0;
        for pair in t.clone().pairs::<Value, Value>() {
            let (k, v) = pair?;
            encode(out, &k, level + 1)?;
            encode(out, &v, level + 1)?;
            written += 1;
        }
        if written != count {
            return Err(mlua::Error::runtime("table changed while being packed"));
        }
    }
    Ok(())
}

struct Cursor<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> mlua::Result<&'a [u8]> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.data.len());
        let Some(end) = end else { return Err(mlua::Error::runtime("Missing bytes in input.")) };
        let s = &self.data[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn be(&mut self, n: usize) -> mlua::Result<u64> {
        Ok(self.take(n)?.iter().fold(0u64, |acc, &b| (acc << 8) | b as u64))
    }
}

fn decode(lua: &Lua, cur: &mut Cursor<'_>, depth: usize) -> mlua::Result<Value> {
    if depth > MAX_DECODE_DEPTH {
        return Err(mlua::Error::runtime("Bad data format in input."));
    }
    let tag = cur.take(1)?[0];
    let string =
        |cur: &mut Cursor<'_>, n: usize| -> mlua::Result<Value> { Ok(Value::String(lua.create_string(cur.take(n)?)?)) };
    Ok(match tag {
        0x00..=0x7f => Value::Integer(tag as i64),
        0xe0..=0xff => Value::Integer(tag as i8 as i64),
        0xa0..=0xbf => string(cur, (tag & 0x1f) as usize)?,
        0x90..=0x9f => array(lua, cur, (tag & 0x0f) as usize, depth)?,
        0x80..=0x8f => map(lua, cur, (tag & 0x0f) as usize, depth)?,
        0xc0 => Value::Nil,
        0xc2 => Value::Boolean(false),
        0xc3 => Value::Boolean(true),
        0xcc => Value::Integer(cur.be(1)? as i64),
        0xcd => Value::Integer(cur.be(2)? as i64),
        0xce => Value::Integer(cur.be(4)? as i64),
        0xcf => Value::Number(cur.be(8)? as f64),
        0xd0 => Value::Integer(cur.be(1)? as u8 as i8 as i64),
        0xd1 => Value::Integer(cur.be(2)? as u16 as i16 as i64),
        0xd2 => Value::Integer(cur.be(4)? as u32 as i32 as i64),
        0xd3 => Value::Number(cur.be(8)? as i64 as f64),
        0xca => Value::Number(f32::from_bits(cur.be(4)? as u32) as f64),
        0xcb => Value::Number(f64::from_bits(cur.be(8)?)),
        // str8/16/32 (and bin, read as strings), array16/32, map16/32: a big-endian length.
        0xd9 | 0xc4 | 0xda | 0xc5 | 0xdb | 0xc6 => {
            let n = cur.be(width(tag))? as usize;
            string(cur, n)?
        }
        0xdc | 0xdd => {
            let n = cur.be(width(tag))? as usize;
            array(lua, cur, n, depth)?
        }
        0xde | 0xdf => {
            let n = cur.be(width(tag))? as usize;
            map(lua, cur, n, depth)?
        }
        _ => return Err(mlua::Error::runtime("Bad data format in input.")),
    })
}

/// Bytes of the length after a str/bin/array/map tag.
fn width(tag: u8) -> usize {
    match tag {
        0xd9 | 0xc4 => 1,
        0xda | 0xc5 | 0xdc | 0xde => 2,
        _ => 4,
    }
}

/// `n` comes from the input: nothing is reserved for it, so a lying count fails on the
/// missing bytes instead of allocating.
fn array(lua: &Lua, cur: &mut Cursor<'_>, n: usize, depth: usize) -> mlua::Result<Value> {
    let t = lua.create_table()?;
    for i in 1..=n {
        t.raw_set(i, decode(lua, cur, depth + 1)?)?;
    }
    Ok(Value::Table(t))
}

fn map(lua: &Lua, cur: &mut Cursor<'_>, n: usize, depth: usize) -> mlua::Result<Value> {
    let t = lua.create_table()?;
    for _ in 0..n {
        let k = decode(lua, cur, depth + 1)?;
        let v = decode(lua, cur, depth + 1)?;
        if k != Value::Nil {
            t.raw_set(k, v)?;
        }
    }
    Ok(Value::Table(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lua() -> Lua {
        let lua = Lua::new();
        install(&lua).unwrap();
        lua
    }

    fn hex(lua: &Lua, code: &str) -> String {
        let s: LuaString = lua.load(code).eval().unwrap();
        s.as_bytes().iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn packs_as_lua_cmsgpack() {
        let lua = lua();
        assert_eq!(
            hex(&lua, "return cmsgpack.pack(1, -1, 200, -200, 70000, 1.5, 0.1)"),
            "01ffccc8d1ff38ce00011170ca3fc00000cb3fb999999999999a"
        );
        assert_eq!(hex(&lua, "return cmsgpack.pack({1, 2}, {}, {a = true})"), "9201029081a161c3");
        assert_eq!(hex(&lua, "return cmsgpack.pack(nil, false, 'hi')"), "c0c2a26869");
        assert_eq!(hex(&lua, "return cmsgpack.pack(string.rep('x', 40))")[..4], *"d928");
    }

    #[test]
    fn round_trips_and_reports_bad_input() {
        let lua = lua();
        let ok: bool = lua
            .load("local a, b = cmsgpack.unpack(cmsgpack.pack({x = {1, 2, 3}}, 'y')) return a.x[3] == 3 and b == 'y'")
            .eval()
            .unwrap();
        assert!(ok);
        let e = lua.load("return cmsgpack.unpack('\\220\\255\\255')").exec().unwrap_err().to_string();
        assert!(e.contains("Missing bytes in input."), "{e}");
        let e = lua.load("return cmsgpack.unpack('\\193')").exec().unwrap_err().to_string();
        assert!(e.contains("Bad data format in input."), "{e}");
        let (next, one): (i64, i64) = lua.load("return cmsgpack.unpack_one(cmsgpack.pack(7, 8))").eval().unwrap();
        assert_eq!((next, one), (1, 7));
        let deep = "return cmsgpack.unpack(string.rep('\\145', 100000) .. '\\192')";
        assert!(lua.load(deep).exec().unwrap_err().to_string().contains("Bad data format"));
    }
}
