//! Redis 7 functions: libraries of Lua functions loaded with FUNCTION LOAD (`#!lua
//! name=lib` first line), registered with `redis.register_function`, called with FCALL.
//!
//! A library's code runs once, when it loads, in its own environment where only `redis`
//! exists, holding what loading may use (register_function, log and the constants); once
//! it loaded, that environment shows the VM's globals and `redis` becomes the full API, so
//! its functions can call commands. Libraries live in their own VM: SCRIPT FLUSH does not touch them.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use ferrocache_common::Reply;
use mlua::{Function, MultiValue, Table, Value};
use parking_lot::Mutex;

use super::vm::{error_reply, list, lua_message, Limits, Origin, Vm};
use crate::cmd::{CmdResult, Ctx};

/// The flags a function may declare (Redis 7's script flags).
const FLAGS: &[&str] = &["no-writes", "allow-oom", "allow-stale", "no-cluster", "allow-cross-slot-keys"];

#[derive(Clone)]
struct Func {
    callback: Function,
    flags: Vec<String>,
    description: Option<String>,
}

impl Func {
    fn has(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }
}

struct Library {
    code: Bytes,
    functions: BTreeMap<String, Func>,
}

/// The node's function libraries, by name.
#[derive(Default)]
pub struct Functions {
    vm: Option<Vm>,
    libraries: BTreeMap<String, Library>,
}

/// Whether `code` is a function library (its first line names one), not a script.
pub fn is_library(code: &[u8]) -> bool {
    library_meta(code).is_ok()
}

/// The name a library's code gives itself.
pub fn library_name(code: &[u8]) -> Option<String> {
    library_meta(code).ok().map(|(name, _)| name)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The library name of `#!<engine> name=<name>`, with Redis's errors; the code with that
/// line blanked (Lua's line numbers stay the library's).
fn library_meta(code: &[u8]) -> Result<(String, Vec<u8>), Reply> {
    if !code.starts_with(b"#!") {
        return Err(Reply::error("ERR Missing library metadata"));
    }
    let Some(end) = code.iter().position(|&b| b == b'\n') else {
        return Err(Reply::error("ERR Invalid library metadata"));
    };
    // Cut as Redis cuts it (sdssplitargs): `#! name=x` has the empty engine, `name="x"` is x.
    let words = ferrocache_common::split_args::split_args(&code[..end]).unwrap_or_default();
    let words: Vec<String> = words.iter().map(|w| String::from_utf8_lossy(w).into_owned()).collect();
    let Some((first, parts)) = words.split_first() else {
        return Err(Reply::error("ERR Invalid library metadata"));
    };
    let engine = first.get(2..).unwrap_or_default();
    let mut name = None;
    for part in parts {
        // Bytes, not a str slice: a multi-byte character must not split at byte 5.
        if part.len() >= 5 && part.as_bytes()[..5].eq_ignore_ascii_case(b"name=") {
            if name.is_some() {
                return Err(Reply::error("ERR Invalid metadata value, name argument was given multiple times"));
            }
            name = Some(part[5..].to_string());
            continue;
        }
        return Err(Reply::error(format!("ERR Invalid metadata value given: {part}")));
    }
    let Some(name) = name else { return Err(Reply::error("ERR Library name was not given")) };
    if !engine.eq_ignore_ascii_case("lua") {
        return Err(Reply::error(format!("ERR Engine '{engine}' not found")));
    }
    if !valid_name(&name) {
        return Err(Reply::error(
            "ERR Library names can only contain letters, numbers, or underscores(_) and must be at least one character long",
        ));
    }
    Ok((name, code[end..].to_vec()))
}

/// What `redis.register_function` was given, checked as Redis checks it.
fn registration(args: MultiValue) -> mlua::Result<(String, Func)> {
    let fail = |m: &str| Err(mlua::Error::runtime(m));
    let (name, callback, flags, description) = match args.len() {
        1 => {
            let Some(Value::Table(t)) = args.front() else {
                return fail("calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).");
            };
            let (mut name, mut callback, mut flags, mut description) = (None, None, Vec::new(), None);
            for pair in t.pairs::<Value, Value>() {
                let (k, v) = pair?;
                let key = match &k {
                    Value::String(s) => s.to_string_lossy(),
                    _ => return fail("named argument key given to redis.register_function is not a string"),
                };
                match key.as_str() {
                    "function_name" => match v {
                        Value::String(s) => name = Some(s.to_string_lossy()),
                        _ => return fail("function_name argument given to redis.register_function must be a string"),
                    },
                    "description" => match v {
                        Value::String(s) => description = Some(s.to_string_lossy()),
                        _ => return fail("description argument given to redis.register_function must be a string"),
                    },
                    "callback" => match v {
                        Value::Function(f) => callback = Some(f),
                        _ => return fail("callback argument given to redis.register_function must be a function"),
                    },
                    "flags" => {
                        match v {
                            Value::Table(list) => {
                                for flag in list.sequence_values::<Value>() {
                                    match flag? {
                                        Value::String(s) if FLAGS.contains(&s.to_string_lossy().as_str()) => {
                                            flags.push(s.to_string_lossy())
                                        }
                                        _ => return fail("unknown flag given"),
                                    }
                                }
                            }
                            _ => return fail(
                                "flags argument to redis.register_function must be a table representing function flags",
                            ),
                        }
                    }
                    _ => return fail("unknown argument given to redis.register_function"),
                }
            }
            let Some(name) = name else { return fail("redis.register_function must get a function name argument") };
            let Some(callback) = callback else { return fail("redis.register_function must get a callback argument") };
            (name, callback, flags, description)
        }
        2 => {
            let mut it = args.into_iter();
            // lua_tostring: a number is a name too.
            let name = match it.next() {
                Some(Value::String(s)) => s.to_string_lossy(),
                Some(Value::Integer(i)) => i.to_string(),
                Some(Value::Number(n)) => super::convert::lua_number_text(n),
                _ => return fail("first argument to redis.register_function must be a string"),
            };
            let callback = match it.next() {
                Some(Value::Function(f)) => f,
                _ => return fail("second argument to redis.register_function must be a function"),
            };
            (name, callback, Vec::new(), None)
        }
        _ => return fail("wrong number of arguments to redis.register_function"),
    };
    if !valid_name(&name) {
        // Redis 7's wording for function names too.
        return fail("Library names can only contain letters, numbers, or underscores(_) and must be at least one character long");
    }
    Ok((name, Func { callback, flags, description }))
}

impl Functions {
    fn vm(&mut self) -> Result<&mut Vm, Reply> {
        if self.vm.is_none() {
            self.vm = Some(Vm::new().map_err(|e| error_reply(format!("cannot start the Lua VM: {e}")))?);
        }
        self.vm.as_mut().ok_or_else(|| Reply::error("ERR no Lua VM"))
    }

    /// FUNCTION LOAD [REPLACE]: the library's name.
    pub fn load(&mut self, code: &Bytes, replace: bool) -> Result<String, Reply> {
        let (name, lua_code) = library_meta(code)?;
        if self.libraries.contains_key(&name) && !replace {
            return Err(Reply::error(format!("ERR Library '{name}' already exists")));
        }
        let vm = self.vm()?;
        let lua = &vm.lua;
        let registered: Arc<Mutex<Vec<(String, Func)>>> = Arc::default();
        let sink = registered.clone();
        // A function that kept a reference to the load-time API may not register later.
        let loading = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let still_loading = loading.clone();
        let setup = || -> mlua::Result<(Table, Function)> {
            let globals = lua.globals();
            let api: Table = globals.raw_get("redis")?;
            let at_load = lua.create_table()?;
            at_load.set(
                "register_function",
                lua.create_function(move |_, args: MultiValue| {
                    if !still_loading.load(std::sync::atomic::Ordering::Relaxed) {
                        return Err(mlua::Error::runtime(
                            "redis.register_function can only be called on FUNCTION LOAD command",
                        ));
                    }
                    let (name, func) = registration(args)?;
                    let mut sink = sink.lock();
                    if sink.iter().any(|(n, _)| n.eq_ignore_ascii_case(&name)) {
                        return Err(mlua::Error::runtime("Function already exists in the library"));
                    }
                    sink.push((name, func));
                    Ok(())
                })?,
            )?;
            for key in
                ["log", "LOG_DEBUG", "LOG_VERBOSE", "LOG_NOTICE", "LOG_WARNING", "REDIS_VERSION", "REDIS_VERSION_NUM"]
            {
                at_load.raw_set(key, api.get::<Value>(key)?)?;
            }
            // Raised from Lua, so the message names the library's line, as Redis's does.
            let (missing, readonly): (Function, Function) = lua
                .load(
                    r#"return function(_, name)
                         error("Script attempted to access nonexistent global variable '" .. tostring(name) .. "'", 2)
                       end,
                       function() error('Attempt to modify a readonly table', 2) end"#,
                )
                .set_name("@sandbox")
                .call(())?;
            let strict = lua.create_table()?;
            strict.raw_set("__index", missing)?;
            strict.raw_set("__newindex", readonly.clone())?;
            at_load.set_metatable(Some(strict.clone()))?;
            // While it loads, the library sees `redis` (the load API) and nothing else, as in
            // Redis: no math, string or getmetatable; once loaded, its functions see the
            // VM's globals (the switch is this metatable's __index, as Redis's is its
            // globals').
            let load_globals = lua.create_table()?;
            load_globals.raw_set("redis", at_load)?;
            load_globals.set_metatable(Some(strict))?;
            let env = lua.create_table()?;
            let meta = lua.create_table()?;
            meta.raw_set("__index", load_globals)?;
            meta.raw_set("__newindex", readonly)?;
            meta.raw_set("__metatable", false)?;
            env.set_metatable(Some(meta.clone()))?;
            let chunk = lua
                .load(lua_code.as_slice())
                .set_name("@user_function")
                .set_environment(env.clone())
                .into_function()?;
            Ok((meta, chunk))
        };
        let (meta, chunk) = match setup() {
            Ok(v) => v,
            Err(e @ mlua::Error::SyntaxError { .. }) => {
                return Err(Reply::error(format!("ERR Error compiling function: {}", lua_message(&e))))
            }
            Err(e) => return Err(error_reply(lua_message(&e))),
        };
        vm.limit_load_time()?;
        let ran = chunk.call::<()>(());
        vm.lua.remove_hook();
        loading.store(false, std::sync::atomic::Ordering::Relaxed);
        if let Err(e) = ran {
            // Redis puts "ERR " before whatever the library raised.
            return Err(Reply::error(format!("ERR Error registering functions: ERR {}", lua_message(&e))));
        }
        let functions: BTreeMap<String, Func> = std::mem::take(&mut *registered.lock()).into_iter().collect();
        if functions.is_empty() {
            return Err(Reply::error("ERR No functions registered"));
        }
        for fname in functions.keys() {
            let clash = self
                .libraries
                .iter()
                .any(|(lib, l)| *lib != name && l.functions.keys().any(|f| f.eq_ignore_ascii_case(fname)));
            if clash {
                return Err(Reply::error(format!("ERR Function {fname} already exists")));
            }
        }
        // From now on the library's functions see the VM's globals and the whole API.
        if let Some(vm) = self.vm.as_ref() {
            meta.raw_set("__index", vm.env.clone()).map_err(error_reply)?;
        }
        self.libraries.insert(name.clone(), Library { code: code.clone(), functions });
        Ok(name)
    }

    pub fn delete(&mut self, name: &[u8]) -> bool {
        self.libraries.remove(String::from_utf8_lossy(name).as_ref()).is_some()
    }

    pub fn flush(&mut self) {
        self.libraries.clear();
        self.vm = None;
    }

    /// (functions, libraries) loaded: INFO's number_of_functions and number_of_libraries.
    pub fn counts(&self) -> (usize, usize) {
        (self.libraries.values().map(|l| l.functions.len()).sum(), self.libraries.len())
    }

    pub fn codes(&self) -> Vec<Bytes> {
        self.libraries.values().map(|l| l.code.clone()).collect()
    }

    /// Whether a function of this name is loaded.
    pub fn exists(&self, name: &[u8]) -> bool {
        self.find(name).is_some()
    }

    /// Function names are case-insensitive, as in Redis (an exact match is looked up first).
    fn find(&self, name: &[u8]) -> Option<&Func> {
        let name = String::from_utf8_lossy(name);
        self.libraries.values().find_map(|l| l.functions.get(name.as_ref())).or_else(|| {
            self.libraries
                .values()
                .find_map(|l| l.functions.iter().find(|(f, _)| f.eq_ignore_ascii_case(&name)).map(|(_, func)| func))
        })
    }

    /// FCALL / FCALL_RO: runs `name(keys, args)`.
    pub fn call(
        &mut self,
        ctx: &mut Ctx<'_>,
        name: &Bytes,
        read_only: bool,
        limits: Limits<'_>,
        keys: &[Bytes],
        argv: &[Bytes],
    ) -> CmdResult {
        let Some(func) = self.find(name).cloned() else { return Err(Reply::error("ERR Function not found")) };
        if read_only && !func.has("no-writes") {
            return Err(Reply::error("ERR Can not execute a script with write flag using *_ro command."));
        }
        let limits = limits.flagged(func.has("no-writes"), func.has("allow-oom"));
        limits.start_declared()?;
        let vm = self.vm()?;
        let mut args = MultiValue::new();
        args.push_back(Value::Table(list(&vm.lua, keys).map_err(error_reply)?));
        args.push_back(Value::Table(list(&vm.lua, argv).map_err(error_reply)?));
        let fname = String::from_utf8_lossy(name).into_owned();
        vm.invoke(ctx, &func.callback, None, args, &limits, Origin::Function(&fname))
    }

    /// FUNCTION LIST [WITHCODE] [LIBRARYNAME pattern].
    pub fn list(&self, pattern: Option<&[u8]>, with_code: bool) -> Reply {
        let s = |t: &str| Reply::Bulk(Bytes::copy_from_slice(t.as_bytes()));
        Reply::Array(
            self.libraries
                .iter()
                .filter(|(name, _)| pattern.is_none_or(|p| ferrocache_common::glob::glob_match(p, name.as_bytes())))
                .map(|(name, lib)| {
                    let functions = lib
                        .functions
                        .iter()
                        .map(|(fname, f)| {
                            Reply::Map(vec![
                                s("name"),
                                s(fname),
                                s("description"),
                                f.description.as_deref().map_or(Reply::NullBulk, s),
                                s("flags"),
                                Reply::Set(f.flags.iter().map(|flag| s(flag)).collect()),
                            ])
                        })
                        .collect();
                    let mut m = vec![
                        s("library_name"),
                        s(name),
                        s("engine"),
                        s("LUA"),
                        s("functions"),
                        Reply::Array(functions),
                    ];
                    if with_code {
                        m.push(s("library_code"));
                        m.push(Reply::Bulk(lib.code.clone()));
                    }
                    Reply::Map(m)
                })
                .collect(),
        )
    }

    /// FUNCTION STATS.
    pub fn stats(&self) -> Reply {
        let s = |t: &str| Reply::Bulk(Bytes::copy_from_slice(t.as_bytes()));
        let functions: usize = self.libraries.values().map(|l| l.functions.len()).sum();
        Reply::Map(vec![
            s("running_script"),
            Reply::NullBulk,
            s("engines"),
            Reply::Map(vec![
                s("LUA"),
                Reply::Map(vec![
                    s("libraries_count"),
                    Reply::Integer(self.libraries.len() as i64),
                    s("functions_count"),
                    Reply::Integer(functions as i64),
                ]),
            ]),
        ])
    }

    pub fn has_library(&self, name: &str) -> bool {
        self.libraries.contains_key(name)
    }
}

#[cfg(test)]
mod tests {
    use super::{library_meta, Functions};
    use bytes::Bytes;

    /// While a library loads it sees only the load API, as in Redis; afterwards its
    /// functions cannot register more.
    #[test]
    fn a_library_loads_with_only_the_load_api_in_sight() {
        let mut f = Functions::default();
        let load = |f: &mut Functions, code: &str| match f.load(&Bytes::copy_from_slice(code.as_bytes()), true) {
            Ok(name) => name,
            Err(ferrocache_common::Reply::Error(e)) => e,
            Err(other) => panic!("{other:?}"),
        };
        let e = load(&mut f, "#!lua name=a\nreturn math.random()");
        assert!(e.contains("nonexistent global variable 'math'"), "{e}");
        let e = load(&mut f, "#!lua name=a\nredis.setresp(3)");
        assert!(e.contains("nonexistent global variable 'setresp'"), "{e}");
        let e = load(&mut f, "#!lua name=a\nlocal mt = getmetatable(_G)");
        assert!(e.contains("nonexistent global variable 'getmetatable'"), "{e}");
        let code = "#!lua name=ok\nredis.register_function('f', function() return math.floor(1.5) end)";
        assert_eq!(load(&mut f, code), "ok");
    }

    #[test]
    fn library_metadata_is_checked_as_redis_does() {
        assert_eq!(library_meta(b"#!lua name=lib\ncode").unwrap().0, "lib");
        assert_eq!(library_meta(b"#!LUA NAME=lib\n").unwrap().0, "lib");
        let err = |code: &[u8]| match library_meta(code) {
            Err(ferrocache_common::Reply::Error(e)) => e,
            other => panic!("{:?}", other.map(|(n, _)| n)),
        };
        assert_eq!(err(b"code"), "ERR Missing library metadata");
        assert_eq!(err(b"#!lua name=x"), "ERR Invalid library metadata");
        assert_eq!(err(b"#!lua\n"), "ERR Library name was not given");
        assert_eq!(err(b"#!lua name=a name=b\n"), "ERR Invalid metadata value, name argument was given multiple times");
        assert_eq!(err("#!lua name\u{e9}x\n".as_bytes()), "ERR Invalid metadata value given: name\u{e9}x");
        assert_eq!(err(b"#!js name=x\n"), "ERR Engine 'js' not found");
        assert!(err(b"#!lua name=a-b\n").starts_with("ERR Library names can only contain"));
        // Cut as sdssplitargs cuts: an empty engine, a quoted name, unbalanced quotes.
        assert_eq!(err(b"#! name=test\n"), "ERR Engine '' not found");
        assert_eq!(library_meta(b"#!lua name=\"foo\"\n").unwrap().0, "foo");
        assert_eq!(err(b"#!lua name=\"foo\n"), "ERR Invalid library metadata");
    }
}
