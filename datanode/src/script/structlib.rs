//! `struct` as Redis bundles it (Roberto Ierusalimschy's lua_struct 0.2): pack, unpack and
//! size over binary layouts, with its options, alignment rules and error messages, on the
//! sizes of Redis's usual 64-bit Linux build (short 2, int 4, long and size_t 8).

use mlua::{Lua, LuaString, MultiValue, Value, Variadic};

use super::vm::raised;

/// Widest `i`/`I` integer (lua_struct's MAXINTSIZE).
const MAX_INT_SIZE: usize = 32;
/// The alignment `!` sets without a number (a double's or a pointer's).
const MAX_ALIGN: usize = 8;

#[derive(Clone, Copy)]
struct Header {
    big: bool,
    align: usize,
}

impl Default for Header {
    fn default() -> Self {
        Header { big: false, align: 1 }
    }
}

pub fn install(lua: &Lua) -> mlua::Result<()> {
    let t = lua.create_table()?;
    t.set(
        "pack",
        lua.create_function(|lua, (fmt, args): (LuaString, Variadic<Value>)| pack(lua, &fmt.as_bytes(), &args))?,
    )?;
    t.set(
        "unpack",
        lua.create_function(|lua, (fmt, data, at): (LuaString, LuaString, Option<i64>)| {
            unpack(lua, &fmt.as_bytes(), &data.as_bytes(), at.unwrap_or(1))
        })?,
    )?;
    t.set("size", lua.create_function(|lua, fmt: LuaString| size(lua, &fmt.as_bytes()))?)?;
    lua.globals().set("struct", t)
}

fn arg_error(lua: &Lua, n: usize, func: &str, msg: &str) -> mlua::Error {
    raised(lua, &format!("bad argument #{n} to '{func}' ({msg})"))
}

/// A number after an option (its size), or `default`.
fn number(lua: &Lua, fmt: &[u8], at: &mut usize, default: usize) -> mlua::Result<usize> {
    if !fmt.get(*at).is_some_and(u8::is_ascii_digit) {
        return Ok(default);
    }
    let mut n: usize = 0;
    while let Some(d) = fmt.get(*at).filter(|c| c.is_ascii_digit()) {
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add((d - b'0') as usize))
            .filter(|&n| n <= i32::MAX as usize)
            .ok_or_else(|| raised(lua, "integral size overflow"))?;
        *at += 1;
    }
    Ok(n)
}

/// The size an option takes (0 for those that take none, or whose size is the data's).
fn option_size(lua: &Lua, opt: u8, fmt: &[u8], at: &mut usize) -> mlua::Result<usize> {
    Ok(match opt {
        b'B' | b'b' | b'x' => 1,
        b'H' | b'h' => 2,
        b'L' | b'l' | b'T' | b'd' => 8,
        b'f' => 4,
        b'c' => number(lua, fmt, at, 1)?,
        b'i' | b'I' => {
            let n = number(lua, fmt, at, 4)?;
            if n > MAX_INT_SIZE {
                return Err(raised(lua, &format!("integral size {n} is larger than limit of {MAX_INT_SIZE}")));
            }
            n
        }
        _ => 0,
    })
}

/// Padding before an item of `size` at offset `len`.
fn padding(len: usize, h: &Header, opt: u8, size: usize) -> usize {
    if size == 0 || opt == b'c' {
        return 0;
    }
    let align = size.min(h.align);
    (align - (len & (align - 1))) & (align - 1)
}

/// Options that change the header (or are spaces); an error for anything else.
fn control(lua: &Lua, opt: u8, fmt: &[u8], at: &mut usize, h: &mut Header, func: &str) -> mlua::Result<()> {
    match opt {
        b' ' => {}
        b'>' => h.big = true,
        b'<' | b'=' => h.big = false,
        b'!' => {
            let a = number(lua, fmt, at, MAX_ALIGN)?;
            if !a.is_power_of_two() {
                return Err(raised(lua, &format!("alignment {a} is not a power of 2")));
            }
            h.align = a;
        }
        other => {
            return Err(arg_error(lua, 1, func, &format!("invalid format option '{}'", other as char)));
        }
    }
    Ok(())
}

fn number_arg(lua: &Lua, args: &[Value], i: usize, func: &str) -> mlua::Result<f64> {
    match args.get(i) {
        Some(Value::Integer(n)) => Ok(*n as f64),
        Some(Value::Number(n)) => Ok(*n),
        Some(Value::String(s)) => s
            .to_str()
            .ok()
            .and_then(|t| t.trim().parse::<f64>().ok())
            .ok_or_else(|| arg_error(lua, i + 2, func, "number expected, got string")),
        other => {
            let got = other.map_or("nil", |v| v.type_name());
            Err(arg_error(lua, i + 2, func, &format!("number expected, got {got}")))
        }
    }
}

fn pack(lua: &Lua, fmt: &[u8], args: &[Value]) -> mlua::Result<LuaString> {
    let mut h = Header::default();
    let mut out: Vec<u8> = Vec::new();
    let (mut at, mut arg) = (0, 0);
    while at < fmt.len() {
        let opt = fmt[at];
        at += 1;
        let mut size = option_size(lua, opt, fmt, &mut at)?;
        let pad = padding(out.len(), &h, opt, size);
        out.resize(out.len() + pad, 0);
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let n = number_arg(lua, args, arg, "pack")?;
                arg += 1;
                // C's conversion: through long for negatives, straight to unsigned otherwise.
                let mut v: u64 = if n < 0.0 { n as i64 as u64 } else { n as u64 };
                let mut bytes = Vec::with_capacity(size);
                for _ in 0..size {
                    bytes.push(v as u8);
                    v = v.checked_shr(8).unwrap_or(0);
                }
                if h.big {
                    bytes.reverse();
                }
                out.extend_from_slice(&bytes);
            }
            b'x' => out.push(0),
            b'f' | b'd' => {
                let n = number_arg(lua, args, arg, "pack")?;
                arg += 1;
                let mut bytes = if opt == b'f' { (n as f32).to_le_bytes().to_vec() } else { n.to_le_bytes().to_vec() };
                if h.big {
                    bytes.reverse();
                }
                out.extend_from_slice(&bytes);
            }
            b'c' | b's' => {
                let s = match args.get(arg) {
                    Some(Value::String(s)) => s.as_bytes().to_vec(),
                    Some(Value::Integer(n)) => n.to_string().into_bytes(),
                    Some(Value::Number(n)) => super::convert::lua_number_text(*n).into_bytes(),
                    other => {
                        let got = other.map_or("nil", |v| v.type_name());
                        return Err(arg_error(lua, arg + 2, "pack", &format!("string expected, got {got}")));
                    }
                };
                arg += 1;
                if size == 0 {
                    size = s.len();
                }
                if s.len() < size {
                    // (lua_struct names the argument after the string.)
                    return Err(arg_error(lua, arg + 2, "pack", "string too short"));
                }
                out.extend_from_slice(&s[..size]);
                if opt == b's' {
                    out.push(0);
                }
            }
            _ => control(lua, opt, fmt, &mut at, &mut h, "pack")?,
        }
    }
    lua.create_string(&out)
}

fn unpack(lua: &Lua, fmt: &[u8], data: &[u8], start: i64) -> mlua::Result<MultiValue> {
    let mut h = Header::default();
    let mut out: Vec<Value> = Vec::new();
    // A start past the data fails as a short string, as in lua_struct.
    let mut pos = usize::try_from(start.saturating_sub(1)).unwrap_or(usize::MAX / 2);
    let mut at = 0;
    while at < fmt.len() {
        let opt = fmt[at];
        at += 1;
        let mut size = option_size(lua, opt, fmt, &mut at)?;
        pos += padding(pos, &h, opt, size);
        if pos.checked_add(size).is_none_or(|end| end > data.len()) {
            return Err(arg_error(lua, 2, "unpack", "data string too short"));
        }
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let bytes = &data[pos..pos + size];
                let mut v: u64 = 0;
                let mut push = |b: u8| v = (v << 8) | b as u64;
                if h.big {
                    bytes.iter().copied().for_each(&mut push);
                } else {
                    bytes.iter().rev().copied().for_each(&mut push);
                }
                let n = if opt.is_ascii_lowercase() && size < 8 && size > 0 {
                    let mask = u64::MAX << (size * 8 - 1);
                    if v & mask != 0 {
                        v |= mask;
                    }
                    v as i64 as f64
                } else if opt.is_ascii_lowercase() {
                    v as i64 as f64
                } else {
                    v as f64
                };
                out.push(Value::Number(n));
            }
            b'x' => {}
            b'f' => {
                let mut b = [0u8; 4];
                b.copy_from_slice(&data[pos..pos + 4]);
                let f = if h.big { f32::from_be_bytes(b) } else { f32::from_le_bytes(b) };
                out.push(Value::Number(f as f64));
            }
            b'd' => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&data[pos..pos + 8]);
                out.push(Value::Number(if h.big { f64::from_be_bytes(b) } else { f64::from_le_bytes(b) }));
            }
            b'c' => {
                if size == 0 {
                    let previous = match out.pop() {
                        Some(Value::Number(n)) if n >= 0.0 => Some(n as usize),
                        Some(Value::Integer(n)) if n >= 0 => Some(n as usize),
                        _ => None,
                    };
                    let Some(n) = previous else { return Err(raised(lua, "format 'c0' needs a previous size")) };
                    size = n;
                    if pos.checked_add(size).is_none_or(|end| end > data.len()) {
                        return Err(arg_error(lua, 2, "unpack", "data string too short"));
                    }
                }
                out.push(Value::String(lua.create_string(&data[pos..pos + size])?));
            }
            b's' => {
                let Some(end) = data[pos..].iter().position(|&b| b == 0) else {
                    return Err(raised(lua, "unfinished string in data"));
                };
                out.push(Value::String(lua.create_string(&data[pos..pos + end])?));
                size = end + 1;
            }
            _ => control(lua, opt, fmt, &mut at, &mut h, "unpack")?,
        }
        pos += size;
    }
    out.push(Value::Integer(pos as i64 + 1));
    Ok(MultiValue::from_iter(out))
}

fn size(lua: &Lua, fmt: &[u8]) -> mlua::Result<i64> {
    let mut h = Header::default();
    let (mut pos, mut at) = (0usize, 0);
    while at < fmt.len() {
        let opt = fmt[at];
        at += 1;
        let size = option_size(lua, opt, fmt, &mut at)?;
        pos += padding(pos, &h, opt, size);
        if opt == b's' {
            return Err(arg_error(lua, 1, "size", "option 's' has no fixed size"));
        }
        if opt == b'c' && size == 0 {
            return Err(arg_error(lua, 1, "size", "option 'c0' has no fixed size"));
        }
        if !opt.is_ascii_alphanumeric() {
            control(lua, opt, fmt, &mut at, &mut h, "size")?;
        }
        pos += size;
    }
    Ok(pos as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval_hex(lua: &Lua, code: &str) -> String {
        let s: LuaString = lua.load(code).eval().unwrap();
        s.as_bytes().iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn packs_unpacks_and_sizes_as_lua_struct() {
        let lua = Lua::new();
        install(&lua).unwrap();
        assert_eq!(
            eval_hex(&lua, "return struct.pack('>i2<I4 b B h H l L', 1, 2, -1, 255, -2, 65535, -3, 4)"),
            "000102000000fffffefffffffdffffffffffffff0400000000000000"
        );
        assert_eq!(eval_hex(&lua, "return struct.pack('!4 b i', 1, 2)"), "0100000002000000");
        assert_eq!(eval_hex(&lua, "return struct.pack('s c3 c0 x', 'ab', 'xyz', 'hello')"), "61620078797a68656c6c6f00");
        let (n, s, c, next): (i64, String, String, i64) =
            lua.load("return struct.unpack('>i2 s c2', struct.pack('>i2 s c2', 7, 'ab', 'zz'))").eval().unwrap();
        assert_eq!((n, s.as_str(), c.as_str(), next), (7, "ab", "zz", 8));
        let size: i64 = lua.load("return struct.size('>i2 b !4 i')").eval().unwrap();
        assert_eq!(size, 8);
        let (s, next): (String, i64) =
            lua.load("return struct.unpack('b c0', struct.pack('b c0', 3, 'abc'))").eval().unwrap();
        assert_eq!((s.as_str(), next), ("abc", 5));
        let e = lua.load("return struct.pack('q', 1)").exec().unwrap_err().to_string();
        assert!(e.contains("bad argument #1 to 'pack' (invalid format option 'q')"), "{e}");
        let e = lua.load("return struct.unpack('i4', 'ab')").exec().unwrap_err().to_string();
        assert!(e.contains("bad argument #2 to 'unpack' (data string too short)"), "{e}");
    }
}
