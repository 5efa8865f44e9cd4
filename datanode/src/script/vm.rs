//! The node's Lua VM and its script cache.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;

use bytes::Bytes;
use ferrocache_common::command::Flag;
use ferrocache_common::Reply;
use mlua::{Function, HookTriggers, Lua, LuaOptions, MultiValue, StdLib, Table, Value};

use super::convert::{from_lua, to_lua};
use crate::cmd::{CmdResult, Command, Ctx};

/// Most memory one node's scripts may hold (a hostile `string.rep` fails instead of
/// growing the datanode).
const MEMORY_LIMIT: usize = 256 << 20;
/// Kill requests (and the load time limit) are checked every this many VM instructions.
const HOOK_EVERY: u32 = 1000;
/// How long a library's top-level code may run in FUNCTION LOAD (Redis's 500 ms).
const LOAD_TIME_LIMIT: std::time::Duration = std::time::Duration::from_millis(500);
/// Most KEYS and ARGV passed to a script on the Lua stack (more are set from tables).
const INLINE_ARGS: usize = 64;
const KILLED_BY_USER: &str = "Script killed by user with SCRIPT KILL...";

/// Set up once per VM: the `redis` library (its calls go to `internal.exec`, which each run
/// binds to the node), Redis's sandbox (no writing globals, no reading undefined ones), and
/// the runner that catches a script's error value whatever its type.
const PRELUDE: &str = r#"
local internal = ...
redis = {}
-- redis.call and redis.pcall are set from Rust (C functions, see Vm::new and Vm::invoke).
-- As Redis's luaPushErrorBuff: "CODE msg" keeps its code, a message without one gets ERR,
-- and the message loses surrounding CR/LF.
redis.error_reply = function(msg)
  if type(msg) ~= 'string' then error('wrong number or type of arguments', 2) end
  if string.sub(msg, 1, 1) == '-' then msg = string.sub(msg, 2) end
  local code, text = 'ERR', msg
  local space = string.find(msg, ' ', 1, true)
  if space then code, text = string.sub(msg, 1, space - 1), string.sub(msg, space + 1) end
  text = (string.gsub(text, '^[\r\n]+', ''))
  text = (string.gsub(text, '[\r\n]+$', ''))
  return {err = code .. ' ' .. text}
end
redis.status_reply = function(msg)
  if type(msg) ~= 'string' then error('wrong number or type of arguments', 2) end
  return {ok = msg}
end
redis.sha1hex = function(...)
  if select('#', ...) ~= 1 then error('wrong number of arguments', 0) end
  return internal.sha1hex((...))
end
redis.log = function(level, ...) return internal.log(level, ...) end
redis.setresp = function(v)
  if v ~= 2 and v ~= 3 then error('RESP version must be 2 or 3.', 2) end
  internal.setresp(v)
end
redis.set_repl = function(v) end
redis.replicate_commands = function() return true end
redis.breakpoint = function() return false end
redis.debug = function() end
redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING = 0, 1, 2, 3
redis.REPL_NONE, redis.REPL_AOF, redis.REPL_SLAVE, redis.REPL_REPLICA, redis.REPL_ALL = 0, 1, 2, 2, 3
redis.REDIS_VERSION, redis.REDIS_VERSION_NUM = '7.2.0', 0x070200
loadfile, dofile, print = nil, nil, nil
internal.redis = redis
-- A script being killed must not catch the error that stops it.
local raw_pcall, raw_xpcall = pcall, xpcall
local function rethrow_kill(...)
  local killed = internal.killed()
  if killed then error(killed, 0) end
  return ...
end
-- A library function's error caught by pcall is its message, as a C library's would be.
local function caught(ok, err, ...)
  if not ok and type(err) == 'userdata' then err = internal.error_text(err) end
  return ok, err, ...
end
pcall = function(...) return rethrow_kill(caught(raw_pcall(...))) end
xpcall = function(...) return rethrow_kill(raw_xpcall(...)) end
if coroutine then
  local raw_resume = coroutine.resume
  coroutine.resume = function(...) return rethrow_kill(raw_resume(...)) end
end
-- One run: redis.call / redis.pcall bound to it (internal.call / pcall for the forwarders a
-- script may have kept), KEYS and ARGV made from the arguments when nkeys is a number (the
-- first nkeys are KEYS, the rest ARGV; f gets none), f's own arguments otherwise. The
-- forwarders go back in place once f ends, however it ends. All in one call from Rust:
-- each call into the VM through mlua costs allocations of its own.
local real_redis, raw_select, set_raw, real_G = redis, select, rawset, _G
local function run(call, pcall_, nkeys, f, ...)
  internal.call, internal.pcall = call, pcall_
  set_raw(real_redis, 'call', call)
  set_raw(real_redis, 'pcall', pcall_)
  local ok, v
  if nkeys then
    local all, keys, argv = {...}, {}, {}
    for i = 1, nkeys do keys[i] = all[i] end
    for i = nkeys + 1, raw_select('#', ...) do argv[i - nkeys] = all[i] end
    set_raw(real_G, 'KEYS', keys)
    set_raw(real_G, 'ARGV', argv)
    ok, v = raw_pcall(f)
  else
    ok, v = raw_pcall(f, ...)
  end
  internal.call, internal.pcall = nil, nil
  set_raw(real_redis, 'call', internal.unbound_call)
  set_raw(real_redis, 'pcall', internal.unbound_pcall)
  return ok, v
end
-- Scripts must not change what the next script sees (Redis 7 makes its globals and
-- libraries read-only tables). Stock Lua 5.1 has no such tables, so scripts see views:
-- empty tables that read through to the real ones and refuse writes; the functions that
-- could reach past a view (setmetatable, rawset, getfenv, setfenv, loadstring, load) are
-- wrapped to refuse or to hand out the view.
local G = _G
local raw_setmetatable, raw_rawset = setmetatable, rawset
local raw_getfenv, raw_setfenv, raw_loadstring = getfenv, setfenv, loadstring
local readonly = raw_setmetatable({}, {__mode = 'k'})
local function deny() error('Attempt to modify a readonly table', 2) end
-- The same refusal from a wrapper, naming the script's line.
local function refuse() error('Attempt to modify a readonly table', 3) end
-- What getmetatable shows of a view: nothing of the real table, and itself read-only.
local sealed = {}
raw_setmetatable(sealed, {__newindex = deny, __metatable = sealed})
readonly[sealed] = true
local function view(t)
  local v = raw_setmetatable({}, {__index = t, __newindex = deny, __metatable = sealed})
  readonly[v] = true
  return v
end
for _, name in ipairs({'redis', 'string', 'table', 'math', 'cjson', 'cmsgpack', 'bit', 'struct', 'coroutine'}) do
  if G[name] then G[name] = view(G[name]) end
end
-- A string's methods come from the string view too.
local string_meta = getmetatable('')
string_meta.__index = G.string
string_meta.__metatable = sealed
local env = view(G)
G._G = env
internal.env = env
local function shared(t) return t == G end
setmetatable = function(t, m)
  if readonly[t] then refuse() end
  return raw_setmetatable(t, m)
end
rawset = function(t, k, v)
  if readonly[t] or shared(t) then refuse() end
  return raw_rawset(t, k, v)
end
-- A level counts from the caller of the wrapper.
local function level(f)
  if f == nil then return 2 end
  if type(f) == 'number' and f > 0 then return f + 1 end
  return f
end
getfenv = function(f)
  local e = raw_getfenv(level(f))
  if shared(e) then return env end
  return e
end
setfenv = function(f, t)
  f = level(f)
  if f == 0 or shared(raw_getfenv(f)) then refuse() end
  return raw_setfenv(f, t)
end
-- Compiled code must come as source (Redis refuses Lua bytecode) and sees the view.
loadstring = function(code, name)
  if type(code) == 'string' and string.byte(code, 1) == 27 then
    return nil, 'binary code is not allowed'
  end
  local chunk, err = raw_loadstring(code, name)
  if chunk then raw_setfenv(chunk, env) end
  return chunk, err
end
load = function(reader, name)
  local parts = {}
  while true do
    local part = reader()
    if part == nil or part == '' then break end
    parts[#parts + 1] = part
  end
  return loadstring(table.concat(parts), name)
end
raw_setmetatable(G, {
  __index = function(_, name)
    error("Script attempted to access nonexistent global variable '" .. tostring(name) .. "'", 2)
  end,
  __newindex = deny,
  __metatable = sealed,
})
return run
"#;

pub(super) struct Vm {
    pub(super) lua: Lua,
    internal: Table,
    /// The `redis` library table (scripts see a read-only view of it).
    redis: Table,
    /// The read-only view of the globals that scripts and library functions run in.
    pub(super) env: Table,
    /// redis.call and redis.pcall between runs: they forward to the running script's.
    unbound: (Function, Function),
    /// Set once the running script is being stopped.
    killed: Arc<Mutex<Option<Stop>>>,
    /// The running script asked for RESP3 replies (`redis.setresp(3)`).
    resp3: Arc<std::sync::atomic::AtomicBool>,
    run: Function,
    /// SHA1 (lowercase hex) -> the script.
    cache: HashMap<String, Cached>,
    /// Scripts cached only because EVAL ran them, oldest first: at most [`MAX_EVAL_SCRIPTS`]
    /// stay, so clients sending ever-new bodies cannot grow the node without bound (as
    /// Redis 7.4 does). SCRIPT LOAD's scripts stay until SCRIPT FLUSH.
    evals: VecDeque<String>,
}

/// Why a running script is being stopped, and the line it had reached.
type Stop = (String, Option<usize>);

struct Cached {
    body: Bytes,
    chunk: Function,
    flags: Shebang,
    /// Loaded with SCRIPT LOAD (kept, replicated and stored), not just run by EVAL.
    loaded: bool,
}

/// Most scripts EVAL alone keeps compiled.
pub(super) const MAX_EVAL_SCRIPTS: usize = 500;

/// The node's scripts and function libraries; each has its own VM, made on first use
/// (SCRIPT FLUSH leaves functions alone, as in Redis).
#[derive(Default)]
pub struct Scripts {
    vm: Option<Vm>,
    pub functions: super::functions::Functions,
    /// Which script runs, for the node's async side (shared with [`crate::node::Node`]).
    pub busy: Arc<super::busy::Busy>,
}

/// Why a script could not run or load.
pub(super) fn error_reply(e: impl std::fmt::Display) -> Reply {
    Reply::error(format!("ERR {e}"))
}

pub fn sha1hex(body: &[u8]) -> String {
    sha1_smol::Sha1::from(body).digest().to_string()
}

impl Vm {
    pub(super) fn new() -> mlua::Result<Vm> {
        let lua = Lua::new_with(StdLib::TABLE | StdLib::STRING | StdLib::MATH, LuaOptions::default())?;
        lua.set_memory_limit(MEMORY_LIMIT)?;
        let internal = lua.create_table()?;
        internal.set("sha1hex", lua.create_function(|_, s: mlua::LuaString| Ok(sha1hex(&s.as_bytes())))?)?;
        internal.set(
            "log",
            lua.create_function(|_, (level, parts): (i64, MultiValue)| {
                let text: Vec<String> = parts.iter().map(|v| v.to_string().unwrap_or_default()).collect();
                tracing::info!(level, "script: {}", text.join(" "));
                Ok(())
            })?,
        )?;
        let killed: Arc<Mutex<Option<Stop>>> = Arc::default();
        let flag = killed.clone();
        internal.set("killed", lua.create_function(move |_, ()| Ok(flag.lock().as_ref().map(|k| k.0.clone())))?)?;
        let resp3: Arc<std::sync::atomic::AtomicBool> = Arc::default();
        let flag = resp3.clone();
        internal.set(
            "setresp",
            lua.create_function(move |_, v: i64| {
                flag.store(v == 3, std::sync::atomic::Ordering::Relaxed);
                Ok(())
            })?,
        )?;
        internal.set(
            "error_text",
            lua.create_function(|_, e: Value| {
                // A failed redis.call is caught as its error's text, as Redis raises it.
                Ok(match (&e, call_error_of(&e)) {
                    (_, Some(c)) => c.err.clone(),
                    (Value::Error(e), None) => lua_message(e),
                    (other, None) => other.to_string().unwrap_or_default(),
                })
            })?,
        )?;
        super::libs::install(&lua)?;
        let run: Function = lua.load(PRELUDE).set_name("@prelude").call(internal.clone())?;
        // Outside a run (and for a reference to them a script kept from an earlier run)
        // redis.call and redis.pcall forward to the run's own (see Vm::invoke).
        let redis: Table = internal.raw_get("redis")?;
        let env: Table = internal.raw_get("env")?;
        let forward = |name: &'static str| {
            let bound = internal.clone();
            lua.create_function(move |_, args: MultiValue| {
                let run: Function = bound.raw_get(name).map_err(|_| mlua::Error::runtime("no script is running"))?;
                run.call::<Value>(args)
            })
        };
        let unbound = (forward("call")?, forward("pcall")?);
        internal.raw_set("unbound_call", unbound.0.clone())?;
        internal.raw_set("unbound_pcall", unbound.1.clone())?;
        redis.raw_set("call", unbound.0.clone())?;
        redis.raw_set("pcall", unbound.1.clone())?;
        Ok(Vm { lua, internal, redis, env, unbound, killed, resp3, run, cache: HashMap::new(), evals: VecDeque::new() })
    }

    /// Compiles `body` unless it is cached; its SHA1 and whether SCRIPT LOAD (`load`) made
    /// it a loaded script just now.
    fn load(&mut self, body: &Bytes, load: bool) -> Result<(String, bool), Reply> {
        let sha = sha1hex(body);
        if let Some(cached) = self.cache.get_mut(&sha) {
            let promoted = load && !cached.loaded;
            cached.loaded |= load;
            return Ok((sha, promoted));
        }
        let (flags, code) = shebang(body)?;
        let chunk = self
            .lua
            .load(code)
            .set_name("@user_script")
            .set_environment(self.env.clone())
            .into_function()
            .map_err(|e| Reply::error(format!("ERR Error compiling script (new function): {}", lua_message(&e))))?;
        self.cache.insert(sha.clone(), Cached { body: body.clone(), chunk, flags, loaded: load });
        if !load {
            self.evals.push_back(sha.clone());
            while self.evals.len() > MAX_EVAL_SCRIPTS {
                if let Some(old) = self.evals.pop_front() {
                    if self.cache.get(&old).is_some_and(|c| !c.loaded) {
                        self.cache.remove(&old);
                    }
                }
            }
        }
        Ok((sha, load))
    }
}

impl Scripts {
    fn vm(&mut self) -> Result<&mut Vm, Reply> {
        if self.vm.is_none() {
            self.vm = Some(Vm::new().map_err(|e| error_reply(format!("cannot start the Lua VM: {e}")))?);
        }
        self.vm.as_mut().ok_or_else(|| Reply::error("ERR no Lua VM"))
    }

    /// SCRIPT LOAD: the script's SHA1, and whether it was not loaded before.
    pub fn load(&mut self, body: &Bytes) -> Result<(String, bool), Reply> {
        self.vm()?.load(body, true)
    }

    /// Loads one of [`Scripts::bodies`] again (restart, full sync): a function library's
    /// code as a library (replacing one of the same name), anything else as a script.
    pub fn restore(&mut self, body: &Bytes) -> Result<(), Reply> {
        if super::functions::is_library(body) {
            return self.functions.load(body, true).map(|_| ());
        }
        self.vm()?.load(body, true).map(|_| ())
    }

    /// Forgets every script and function (a full sync brings the primary's).
    pub fn reset(&mut self) {
        self.vm = None;
        self.functions.flush();
    }

    /// Scripts in the cache (INFO's number_of_cached_scripts).
    pub fn cached(&self) -> usize {
        self.vm.as_ref().map_or(0, |vm| vm.cache.len())
    }

    /// Bytes the scripts' Lua VM uses (INFO's used_memory_lua); none until a script runs.
    pub fn lua_memory(&self) -> usize {
        self.vm.as_ref().map_or(0, |vm| vm.lua.used_memory())
    }

    pub fn exists(&self, sha: &[u8]) -> bool {
        let sha = String::from_utf8_lossy(sha).to_ascii_lowercase();
        self.vm.as_ref().is_some_and(|vm| vm.cache.contains_key(&sha))
    }

    pub fn flush(&mut self) {
        // A fresh VM also drops whatever the old scripts left behind.
        self.vm = None;
    }

    /// The bodies of the loaded scripts and the function libraries' code (for the log and
    /// full syncs; EVAL carries its own).
    pub fn bodies(&self) -> Vec<Bytes> {
        let loaded = |vm: &Vm| vm.cache.values().filter(|c| c.loaded).map(|c| c.body.clone()).collect();
        let mut bodies: Vec<Bytes> = self.vm.as_ref().map(loaded).unwrap_or_default();
        bodies.extend(self.functions.codes());
        bodies
    }

    /// Runs a script (by body, or by SHA1 when `by_sha`) on `ctx`.
    pub fn run(
        &mut self,
        ctx: &mut Ctx<'_>,
        script: &Bytes,
        by_sha: bool,
        limits: Limits<'_>,
        keys: &[Bytes],
        argv: &[Bytes],
    ) -> CmdResult {
        let vm = self.vm()?;
        let sha = if by_sha {
            let sha = String::from_utf8_lossy(script).to_ascii_lowercase();
            if !vm.cache.contains_key(&sha) {
                return Err(Reply::error("NOSCRIPT No matching script. Please use EVAL."));
            }
            sha
        } else {
            vm.load(script, false)?.0
        };
        let Some(Cached { chunk: f, flags, .. }) = vm.cache.get(&sha) else {
            return Err(Reply::error("NOSCRIPT No matching script. Please use EVAL."));
        };
        let declared = flags.declared;
        let limits = limits.flagged(flags.no_writes, flags.allow_oom);
        if declared {
            limits.start_declared()?;
        }
        let f = f.clone();
        let lua = &vm.lua;
        if keys.len() + argv.len() <= INLINE_ARGS {
            // The prelude's run makes KEYS and ARGV from these.
            let args = keys.iter().chain(argv).map(|a| lua.create_string(a).map(Value::String));
            let args = args.collect::<mlua::Result<MultiValue>>().map_err(error_reply)?;
            return vm.invoke(ctx, &f, Some(keys.len()), args, &limits, Origin::Script(&sha));
        }
        // Too many to pass on the Lua stack.
        let globals = lua.globals();
        let bound = list(lua, keys)
            .and_then(|k| globals.raw_set("KEYS", k))
            .and_then(|_| list(lua, argv))
            .and_then(|a| globals.raw_set("ARGV", a));
        bound.map_err(error_reply)?;
        vm.invoke(ctx, &f, None, MultiValue::new(), &limits, Origin::Script(&sha))
    }
}

/// A Lua array of strings.
pub(super) fn list(lua: &Lua, items: &[Bytes]) -> mlua::Result<Table> {
    let t = lua.create_table_with_capacity(items.len(), 0)?;
    for (i, item) in items.iter().enumerate() {
        t.raw_set(i + 1, lua.create_string(item)?)?;
    }
    Ok(t)
}

/// What is running, for its error messages: a script (its SHA1) or a function (its name).
#[derive(Clone, Copy)]
pub(super) enum Origin<'a> {
    Script(&'a str),
    Function(&'a str),
}

impl Vm {
    /// Stops a library's load once [`LOAD_TIME_LIMIT`] passes (Redis's FUNCTION LOAD
    /// timeout), checked every [`HOOK_EVERY`] instructions.
    pub(super) fn limit_load_time(&self) -> Result<(), Reply> {
        let deadline = Instant::now() + LOAD_TIME_LIMIT;
        self.set_stop_hook(move || (Instant::now() >= deadline).then(|| "FUNCTION LOAD timeout".to_string()))
    }

    /// Stops a running script once SCRIPT KILL / FUNCTION KILL asks `busy` to.
    fn watch_kill(&self, busy: &Arc<super::busy::Busy>) -> Result<(), Reply> {
        let busy = busy.clone();
        self.set_stop_hook(move || busy.kill_requested().then(|| KILLED_BY_USER.to_string()))
    }

    /// Every [`HOOK_EVERY`] instructions asks `stop` whether to stop; when it says why, the
    /// script is stopped with that error (and cannot catch it: see the prelude).
    fn set_stop_hook(&self, stop: impl Fn() -> Option<String> + Send + 'static) -> Result<(), Reply> {
        *self.killed.lock() = None;
        let killed = self.killed.clone();
        self.lua
            .set_hook(HookTriggers::new().every_nth_instruction(HOOK_EVERY), move |_, debug| {
                if let Some(why) = stop() {
                    *killed.lock() = Some((why.clone(), debug.current_line()));
                    return Err(mlua::Error::runtime(why));
                }
                Ok(mlua::VmState::Continue)
            })
            .map_err(error_reply)
    }

    /// Calls `f(args...)` with `redis.call` bound to `ctx`, or, given `nkeys`, `f()` with
    /// KEYS and ARGV made from `args`; SCRIPT KILL / FUNCTION KILL can stop it.
    pub(super) fn invoke(
        &self,
        ctx: &mut Ctx<'_>,
        f: &Function,
        nkeys: Option<usize>,
        args: MultiValue,
        limits: &Limits<'_>,
        origin: Origin<'_>,
    ) -> CmdResult {
        self.watch_kill(limits.busy)?;
        // Every run starts in RESP2, as in Redis.
        let resp3 = &self.resp3;
        resp3.store(false, std::sync::atomic::Ordering::Relaxed);
        let lua = &self.lua;
        // A run binds redis.call and redis.pcall to `ctx` as C functions, as Redis's are:
        // `return redis.call(...)` keeps the script's frame (Lua 5.1 replaces a frame only
        // for a tail call into Lua), so a failed call names the script line it came from;
        // and the command's arguments are read off the Lua stack where they lie (a call
        // with 8000 arguments fills the C stack: nothing more can be pushed beside them).
        let ctx = std::cell::RefCell::new(ctx);
        let run_command = |args: MultiValue| -> mlua::Result<Reply> {
            let mut ctx = ctx.try_borrow_mut().map_err(|_| mlua::Error::runtime("redis.call is already running"))?;
            Ok(match command_args(args) {
                Ok(args) => call(&mut ctx, &args, limits),
                Err(e) => e,
            })
        };
        let run_command = &run_command;
        let outcome = lua.scope(|scope| {
            let raising = scope.create_function(move |lua, args: MultiValue| {
                let reply = run_command(args)?;
                if let Reply::Error(err) = &reply {
                    // redis.call raises it; where the script called from goes with it.
                    let line = caller_line(lua).and_then(|l| i64::try_from(l).ok());
                    return Err(mlua::Error::external(CallError { err: err.to_string(), line }));
                }
                to_lua(lua, reply, resp3.load(std::sync::atomic::Ordering::Relaxed))
            })?;
            let catching = scope.create_function(move |lua, args: MultiValue| {
                to_lua(lua, run_command(args)?, resp3.load(std::sync::atomic::Ordering::Relaxed))
            })?;
            let mut call_args = MultiValue::with_capacity(args.len() + 4);
            call_args.push_back(Value::Function(raising));
            call_args.push_back(Value::Function(catching));
            call_args.push_back(nkeys.map_or(Value::Nil, |n| Value::Integer(n as i64)));
            call_args.push_back(Value::Function(f.clone()));
            call_args.extend(args);
            let ran = self.run.call::<(bool, Value)>(call_args);
            if ran.is_err() {
                // The prelude's run did not get to put the forwarders back.
                self.unbind()?;
            }
            let (ok, value) = ran?;
            let resp3 = resp3.load(std::sync::atomic::Ordering::Relaxed);
            Ok(if ok { Ok(from_lua(&value, resp3)) } else { Err(script_error(&value, origin)) })
        });
        lua.remove_hook();
        if let Some((why, line)) = self.killed.lock().take() {
            // Killed by a user: Redis names the script and the line it had reached.
            return Err(script_stopped(&why, line, origin));
        }
        match outcome {
            Ok(Ok(Reply::Error(e))) => Err(Reply::Error(e)),
            Ok(r) => r,
            Err(e) => Err(error_reply(lua_message(&e))),
        }
    }
}

impl Vm {
    /// Puts back the forwarding redis.call and redis.pcall (no run is bound).
    fn unbind(&self) -> mlua::Result<()> {
        self.internal.raw_set("call", Value::Nil)?;
        self.internal.raw_set("pcall", Value::Nil)?;
        self.redis.raw_set("call", self.unbound.0.clone())?;
        self.redis.raw_set("pcall", self.unbound.1.clone())
    }
}

/// The line of the script that is calling (a `return redis.call(...)` is a tail call whose
/// frame is gone: then none).
fn caller_line(lua: &Lua) -> Option<usize> {
    (1..8).find_map(|level| {
        lua.inspect_stack(level, |d| {
            let source = d.source().source;
            let user = matches!(source.as_deref(), Some("@user_script" | "@user_function"));
            user.then(|| d.current_line()).flatten()
        })
        .flatten()
    })
}

/// What a script's `#!lua flags=...` line declares (Redis 7). Without one, a script runs
/// as in Redis 6 (writes allowed, OOM checked per command).
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(super) struct Shebang {
    /// `no-writes`: the script only reads (it may then run on replicas).
    pub(super) no_writes: bool,
    /// `allow-oom`: its writes run even over maxmemory.
    pub(super) allow_oom: bool,
    /// It has a shebang line at all (then its flags, not its commands, decide).
    pub(super) declared: bool,
}

/// Splits a script into its shebang flags and the Lua code, with Redis's errors for an
/// engine or flag it does not know. The shebang line becomes an empty line, so Lua's line
/// numbers still match the script's.
fn shebang(body: &Bytes) -> Result<(Shebang, Vec<u8>), Reply> {
    if !body.starts_with(b"#!") {
        return Ok((Shebang::default(), body.to_vec()));
    }
    let end = body.iter().position(|&b| b == b'\n').unwrap_or(body.len());
    let line = String::from_utf8_lossy(&body[2..end]).into_owned();
    let mut words = line.split(' ').filter(|w| !w.is_empty());
    let engine = words.next().unwrap_or("");
    if engine != "lua" {
        return Err(Reply::error(format!("ERR Unexpected engine in script shebang: {engine}")));
    }
    let mut flags = Shebang { declared: true, ..Shebang::default() };
    for word in words {
        let Some(list) = word.strip_prefix("flags=") else {
            return Err(Reply::error(format!("ERR Unknown lua shebang option: {word}")));
        };
        for flag in list.split(',').filter(|f| !f.is_empty()) {
            match flag {
                "no-writes" => flags.no_writes = true,
                "allow-oom" => flags.allow_oom = true,
                // Accepted: nothing here depends on them (no stale replicas serve scripts,
                // cross-slot keys are refused by the gateway).
                "allow-stale" | "no-cluster" | "allow-cross-slot-keys" => {}
                other => return Err(Reply::error(format!("ERR Unexpected flag in script shebang: {other}"))),
            }
        }
    }
    Ok((flags, body[end..].to_vec()))
}

/// What a running script may do.
pub struct Limits<'a> {
    /// The node's busy state: kill requests come in here, writes are noted here.
    pub busy: &'a Arc<super::busy::Busy>,
    /// EVAL_RO / EVALSHA_RO: no writes.
    pub read_only: bool,
    /// Over maxmemory at the start: `denyoom` commands fail.
    pub oom: bool,
    /// Only keys of these slots (None: all).
    pub slots: Option<&'a ferrocache_common::slot::SlotSet>,
    /// Write each command down for MONITOR (`WriteSet::monitor`).
    pub monitor: bool,
}

impl<'a> Limits<'a> {
    /// As narrowed by a script's or function's flags: `no-writes` makes it read-only,
    /// `allow-oom` lets its writes run over maxmemory.
    pub(super) fn flagged(self, no_writes: bool, allow_oom: bool) -> Limits<'a> {
        Limits { read_only: self.read_only || no_writes, oom: self.oom && !allow_oom, ..self }
    }

    /// A script that declared its flags (every function does) and may write does not start
    /// over maxmemory unless it allows OOM: Redis makes such a call `denyoom` as a whole.
    pub(super) fn start_declared(&self) -> Result<(), Reply> {
        if self.oom && !self.read_only {
            return Err(Reply::error(crate::memory::OOM));
        }
        Ok(())
    }
}

/// A command's arguments from Lua: strings and numbers only, as Redis requires.
pub(super) fn command_args(args: MultiValue) -> Result<Vec<Bytes>, Reply> {
    if args.is_empty() {
        return Err(Reply::error("ERR Please specify at least one argument for this redis lib call"));
    }
    args.into_iter()
        .map(|v| match v {
            Value::String(s) => Ok(Bytes::copy_from_slice(&s.as_bytes())),
            Value::Integer(i) => Ok(Bytes::from(i.to_string())),
            Value::Number(n) => Ok(Bytes::from(super::convert::lua_number_text(n))),
            _ => Err(Reply::error("ERR Lua redis lib command arguments must be strings or integers")),
        })
        .collect()
}

/// Most MONITOR lines one batch's scripts write down.
const MAX_MONITOR_LINES: usize = 100_000;

/// One `redis.call` / `redis.pcall`: the command through the dispatch table, with what a
/// script may not do refused first; counted in INFO commandstats as Redis counts the
/// commands scripts run (a refused one as rejected, one answering an error as failed).
fn call(ctx: &mut Ctx<'_>, args: &[Bytes], limits: &Limits<'_>) -> Reply {
    let command = match Command::resolve_for_script(args) {
        Ok(c) => c,
        Err(e) => {
            // A known command with the wrong number of arguments counts as rejected.
            if let Some(entry) = Command::known_entry(args) {
                ctx.out.note_script_call(entry, crate::cmd::CallStats { rejected: 1, ..Default::default() });
            }
            return e;
        }
    };
    let started = std::time::Instant::now();
    let (reply, ran) = checked_call(ctx, args, limits, &command);
    let call = match (ran, reply.is_error()) {
        (true, failed) => crate::cmd::CallStats {
            calls: 1,
            usec: started.elapsed().as_micros() as u64,
            failed: failed.into(),
            ..Default::default()
        },
        (false, true) => crate::cmd::CallStats { rejected: 1, ..Default::default() },
        (false, false) => return reply,
    };
    ctx.out.note_script_call(command.stats_entry(args), call);
    reply
}

/// [`call`] once the command is known; true with the reply when it ran (was not refused).
fn checked_call(ctx: &mut Ctx<'_>, args: &[Bytes], limits: &Limits<'_>, command: &Command) -> (Reply, bool) {
    match refused(ctx, args, limits, command) {
        Some(refusal) => (refusal, false),
        None => (run_call(ctx, args, limits, command), true),
    }
}

/// What a script may not run, refused before it runs.
fn refused(ctx: &Ctx<'_>, args: &[Bytes], limits: &Limits<'_>, command: &Command) -> Option<Reply> {
    if let Err(refused) = script_subcommand(command.spec.name, args) {
        return Some(refused);
    }
    if command.spec.has(Flag::Noscript) {
        return Some(Reply::error("ERR This Redis command is not allowed from script"));
    }
    if limits.read_only && command.may_replicate_read() {
        return Some(Reply::error("ERR Write commands are not allowed from read-only scripts."));
    }
    if command.is_write() {
        if limits.read_only {
            return Some(Reply::error("ERR Write commands are not allowed from read-only scripts."));
        }
        if !ctx.primary {
            return Some(Reply::error(ferrocache_common::reply::errors::READONLY));
        }
        if limits.oom && command.may_grow() {
            return Some(Reply::error(crate::memory::OOM));
        }
    }
    if let Some(slots) = limits.slots {
        let foreign = ferrocache_common::command::key_positions(command.spec, args)
            .into_iter()
            .any(|i| !slots.contains(ferrocache_common::slot::key_slot(&args[i])));
        if foreign {
            return Some(Reply::error("ERR Script attempted to access a non local key in a cluster node"));
        }
    }
    None
}

/// A call the script may make: run as the command runs outside scripts.
fn run_call(ctx: &mut Ctx<'_>, args: &[Bytes], limits: &Limits<'_>, command: &Command) -> Reply {
    // Lines wait in memory until the batch ends: a script looping for long shows its
    // first MAX_MONITOR_LINES commands (a monitor that far behind would be cut off anyway).
    if limits.monitor && !command.spec.has(Flag::Admin) && ctx.out.monitor.len() < MAX_MONITOR_LINES {
        let line = ferrocache_common::monitor_line::line(ctx.db, "lua", args, |_| false);
        ctx.out.monitor.push(Bytes::from(line));
    }
    if command.selects() {
        // The script's commands after it run in that database; its caller's stays as it was.
        if limits.slots.is_some() {
            return Reply::error("ERR SELECT is not allowed in cluster mode");
        }
        return match crate::cmd::database_arg(&args[1]) {
            Ok(db) if ctx.select(db) => Reply::ok(),
            Ok(_) => Reply::error(ferrocache_common::reply::errors::DB_INDEX),
            Err(e) => e,
        };
    }
    if command.is_write() {
        // From its first write on, killing the script would leave half its effects.
        limits.busy.note_write();
    }
    let (dirty_from, expired_from) = (ctx.out.dirty.len(), ctx.out.expired_keys.len());
    let effects_from = ctx.out.effects.len();
    ctx.in_script = true;
    ctx.out.script_read |= command.spec.has(Flag::Readonly);
    let reply = command.run(ctx, args);
    ctx.in_script = false;
    if ctx.db != ctx.others.home() {
        crate::cmd::place_selected(&mut ctx.out.effects[effects_from..], ctx.db);
    }
    // A blocking command inside a script does not block: it answers at once, as in Redis.
    ctx.block = None;
    let (current, ks, others) = (ctx.db, &*ctx.ks, &ctx.others);
    let gone = |db: usize, k: &[u8]| {
        let holder = if db == current { Some(ks) } else { others.peek(db) };
        holder.is_none_or(|ks| ks.get(k).is_none())
    };
    let events = crate::notify::events_since(gone, command.rule(), args, ctx.out, dirty_from, expired_from);
    ctx.out.events.extend(events);
    let late = std::mem::take(&mut ctx.out.late_events);
    ctx.out.events.extend(late);
    reply
}

/// A container command's subcommand as a script's call looks it up (Redis resolves the
/// subcommand first): unknown or of the wrong arity, it is refused with the script errors;
/// a `noscript` one (CLUSTER RESET, CONFIG RESETSTAT, ...) is not allowed.
fn script_subcommand(container: &str, args: &[Bytes]) -> Result<(), Reply> {
    use ferrocache_common::subcommands;
    if args.len() < 2 || !subcommands::is_container(container) {
        return Ok(());
    }
    let sub = &args[1];
    let name = (sub.len() <= 32).then(|| format!("{container}|{}", String::from_utf8_lossy(sub).to_ascii_lowercase()));
    let Some(spec) = name.as_deref().and_then(subcommands::lookup) else {
        return Err(Reply::error("ERR Unknown Redis command called from script"));
    };
    let arity_ok = if spec.arity >= 0 {
        args.len() == spec.arity as usize
    } else {
        args.len() >= spec.arity.unsigned_abs() as usize
    };
    if !arity_ok {
        return Err(Reply::error("ERR Wrong number of args calling Redis command from script"));
    }
    if spec.flags.contains(&"noscript") {
        return Err(Reply::error("ERR This Redis command is not allowed from script"));
    }
    Ok(())
}

/// A `redis.call` that failed: the command's error and the script line that called it.
#[derive(Debug)]
struct CallError {
    err: String,
    line: Option<i64>,
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.err)
    }
}

impl std::error::Error for CallError {}

/// The failed redis.call an error value carries, if it is one.
fn call_error_of(value: &Value) -> Option<&CallError> {
    fn inner(e: &mlua::Error) -> Option<&CallError> {
        match e {
            mlua::Error::CallbackError { cause, .. } => inner(cause),
            mlua::Error::ExternalError(e) => e.downcast_ref::<CallError>(),
            _ => None,
        }
    }
    match value {
        Value::Error(e) => inner(e),
        _ => None,
    }
}

/// The error of a script or function that failed: Redis's wording, with where it failed.
fn script_error(value: &Value, origin: Origin<'_>) -> Reply {
    let (name, chunk) = match origin {
        Origin::Script(sha) => (sha, "user_script"),
        Origin::Function(name) => (name, "user_function"),
    };
    let at = |line: Option<String>| match line {
        Some(line) => format!(" script: {name}, on @{chunk}:{line}."),
        None => String::new(),
    };
    // "user_script:3: attempt to ..." names its line.
    let placed = |msg: &str| {
        let line = msg
            .strip_prefix(chunk)
            .and_then(|rest| rest.strip_prefix(':'))
            .and_then(|rest| rest.split(':').next())
            .filter(|n| n.parse::<u64>().is_ok())
            .map(str::to_string);
        Reply::error(format!("ERR {msg}{}", at(line)))
    };
    if let Some(c) = call_error_of(value) {
        return Reply::error(format!("{}{}", c.err, at(c.line.map(|l| l.to_string()))));
    }
    match value {
        Value::Table(t) => {
            let err: String = t.get("err").unwrap_or_else(|_| "ERR unknown error".to_string());
            let line: Option<i64> = t.get("line").ok();
            Reply::error(format!("{err}{}", at(line.map(|l| l.to_string()))))
        }
        Value::String(s) => placed(&s.to_string_lossy()),
        // A library function's error (cmsgpack, ...): placed as luaL_error places it.
        Value::Error(e) => placed(&lua_message(e)),
        other => Reply::error(format!("ERR {}", other.to_string().unwrap_or_else(|_| "script failed".to_string()))),
    }
}

/// The error of a script stopped by SCRIPT KILL / FUNCTION KILL (or a load timeout).
fn script_stopped(why: &str, line: Option<usize>, origin: Origin<'_>) -> Reply {
    let (name, chunk) = match origin {
        Origin::Script(sha) => (sha, "user_script"),
        Origin::Function(name) => (name, "user_function"),
    };
    match line {
        Some(line) => Reply::error(format!("ERR {why} script: {name}, on @{chunk}:{line}.")),
        None => Reply::error(format!("ERR {why}")),
    }
}

/// An error a library function raises, placed as Lua's `luaL_error` places it: prefixed with
/// the calling script's chunk and line (`user_script:3: ...`), so it gets Redis's suffix.
pub(super) fn raised(lua: &Lua, msg: &str) -> mlua::Error {
    // The direct caller only: called straight from pcall (a C function), there is no place.
    let place = lua
        .inspect_stack(1, |d| {
            let source = d.source().source?;
            let chunk = source.strip_prefix('@').filter(|c| matches!(*c, "user_script" | "user_function"))?;
            d.current_line().map(|line| format!("{chunk}:{line}: "))
        })
        .flatten();
    mlua::Error::runtime(format!("{}{msg}", place.unwrap_or_default()))
}

/// An mlua error as the Lua message it carries.
pub(super) fn lua_message(e: &mlua::Error) -> String {
    // mlua appends a traceback to a runtime error's text; Redis's messages carry none.
    let plain = |m: &str| m.split("\nstack traceback:").next().unwrap_or_default().to_string();
    match e {
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        mlua::Error::RuntimeError(m) | mlua::Error::MemoryError(m) => plain(m),
        mlua::Error::CallbackError { cause, .. } => lua_message(cause),
        other => other.to_string(),
    }
}
