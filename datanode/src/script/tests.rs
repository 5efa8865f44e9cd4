//! Scripts on a bare keyspace; the whole path (replicas, failover) is tested in `tests/`.

use bytes::Bytes;
use ferrocache_common::Reply;

use super::{Env, Scripts};
use crate::cmd::{execute, Ctx, WriteSet};

struct Node {
    ks: crate::databases::Databases,
    scripts: Scripts,
    primary: bool,
    /// Over maxmemory.
    oom: bool,
    effects: Vec<Vec<Bytes>>,
}

impl Node {
    fn new(primary: bool) -> Node {
        Node { ks: Default::default(), scripts: Scripts::default(), primary, oom: false, effects: Vec::new() }
    }

    fn run(&mut self, args: &[&str]) -> Reply {
        let args: Vec<Bytes> = args.iter().map(|a| Bytes::copy_from_slice(a.as_bytes())).collect();
        self.exec(&args)
    }

    fn exec(&mut self, args: &[Bytes]) -> Reply {
        let mut out = WriteSet::default();
        let (ks, others) = self.ks.split(0);
        let mut ctx = Ctx {
            ks,
            db: 0,
            others,
            now: 1_000_000,
            primary: self.primary,
            out: &mut out,
            max_string: 1 << 20,
            block: None,
            lfu: None,
            no_touch: false,
            woken: false,
            encodings: Default::default(),
            hll_sparse_max: crate::hll::DEFAULT_SPARSE_MAX_BYTES,
            in_script: false,
            script: Some(Env { scripts: &mut self.scripts, oom: self.oom, slots: None, monitor: false }),
        };
        let reply = execute(&mut ctx, args);
        drop(ctx);
        self.effects.extend(out.effects);
        reply
    }
}

fn bulk(s: &str) -> Reply {
    Reply::Bulk(Bytes::copy_from_slice(s.as_bytes()))
}

fn error_text(r: &Reply) -> String {
    match r {
        Reply::Error(e) => e.clone(),
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn scripts_see_keys_and_argv_and_call_commands() {
    let mut n = Node::new(true);
    let r = n.run(&["EVAL", "redis.call('SET', KEYS[1], ARGV[1]) return redis.call('GET', KEYS[1])", "1", "k", "v"]);
    assert_eq!(r, bulk("v"));
    assert_eq!(n.effects, vec![vec![Bytes::from("SET"), Bytes::from("k"), Bytes::from("v")]]);
    let r = n.run(&["EVAL", "return {1, 2.7, 'x', false, {ok='FINE'}, {err='NOPE x'}}", "0"]);
    assert_eq!(
        r,
        Reply::Array(vec![
            Reply::Integer(1),
            Reply::Integer(2),
            bulk("x"),
            Reply::NullBulk,
            Reply::Simple("FINE".into()),
            Reply::error("NOPE x"),
        ])
    );
    assert_eq!(n.run(&["EVAL", "return redis.call('GET', 'missing')", "0"]), Reply::NullBulk);
    assert_eq!(n.run(&["EVAL", "return redis.status_reply('PONG')", "0"]), Reply::Simple("PONG".into()));
    assert_eq!(n.run(&["EVAL", "return redis.error_reply('-MY error')", "0"]), Reply::error("MY error"));
    assert_eq!(n.run(&["EVAL", "return redis.error_reply('oops')", "0"]), Reply::error("ERR oops"));
    assert_eq!(n.run(&["EVAL", "return redis.error_reply('-x y\\r\\n').err", "0"]), Reply::Bulk("x y".into()));
    assert_eq!(n.run(&["FCALL", "nothing", "-1"]), Reply::error("ERR Function not found"));
    assert_eq!(n.run(&["EVAL", "return redis.sha1hex('')", "0"]), bulk("da39a3ee5e6b4b0d3255bfef95601890afd80709"));
    // The bundled libraries are there, inside the sandbox.
    assert_eq!(n.run(&["EVAL", "return cjson.encode({ARGV[1], {k = 1}})", "0", "v"]), bulk(r#"["v",{"k":1}]"#));
    assert_eq!(n.run(&["EVAL", "return cjson.decode(ARGV[1]).a[2]", "0", r#"{"a":[5,6]}"#]), Reply::Integer(6));
    assert_eq!(n.run(&["EVAL", "return bit.band(ARGV[1], 6)", "0", "12"]), Reply::Integer(4));
    // 1000 INCRs in one script: one effect per INCR, all applied at once.
    let r = n.run(&[
        "EVAL",
        "for i = 1, 1000 do redis.call('INCR', KEYS[1]) end return redis.call('GET', KEYS[1])",
        "1",
        "c",
    ]);
    assert_eq!(r, bulk("1000"));
}

#[test]
fn errors_follow_redis() {
    let mut n = Node::new(true);
    n.run(&["SET", "s", "text"]);
    let e = error_text(&n.run(&["EVAL", "local n = 1\nlocal r = redis.call('INCR', 's')\nreturn r", "0"]));
    assert!(e.starts_with("ERR value is not an integer or out of range script: "), "{e}");
    assert!(e.ends_with(", on @user_script:2."), "{e}");
    // `return redis.call(...)` keeps its line too (redis.call is a C function, as in Redis).
    let e = error_text(&n.run(&["EVAL", "local n = 1\n\nreturn redis.call('INCR', 's')", "0"]));
    assert!(e.ends_with(", on @user_script:3."), "{e}");
    // pcall catches a failed redis.call as its error text, as Redis raises it.
    let r = n.run(&["EVAL", "local ok, e = pcall(redis.call, 'INCR', 's') return {tostring(ok), type(e), e}", "0"]);
    assert_eq!(
        r,
        Reply::Array(vec![bulk("false"), bulk("string"), bulk("ERR value is not an integer or out of range")])
    );
    let r = n.run(&["EVAL", "local r = redis.pcall('INCR', 's') return r['err']", "0"]);
    assert_eq!(r, bulk("ERR value is not an integer or out of range"));
    let e = error_text(&n.run(&["EVAL", "return undefined_thing", "0"]));
    assert!(e.contains("Script attempted to access nonexistent global variable 'undefined_thing'"), "{e}");
    let e = error_text(&n.run(&["EVAL", "x = 1", "0"]));
    assert!(e.contains("Attempt to modify a readonly table"), "{e}");
    let e = error_text(&n.run(&["EVAL", "return (", "0"]));
    assert!(e.starts_with("ERR Error compiling script (new function): user_script:1:"), "{e}");
    assert_eq!(
        n.run(&["EVAL", "return 1", "2", "a"]),
        Reply::error("ERR Number of keys can't be greater than number of args")
    );
    assert_eq!(n.run(&["EVAL", "return 1", "-1"]), Reply::error("ERR Number of keys can't be negative"));
    let e = error_text(&n.run(&["EVAL", "return redis.call('nosuch')", "0"]));
    assert!(e.starts_with("ERR Unknown Redis command called from script"), "{e}");
    let e = error_text(&n.run(&["EVAL", "return redis.call('EVAL', 'return 1', '0')", "0"]));
    assert!(e.starts_with("ERR This Redis command is not allowed from script"), "{e}");
    // A container's subcommand is looked up first, as Redis does: its own `noscript` flag,
    // an unknown one, its arity.
    let e = error_text(&n.run(&["EVAL", "return redis.call('CLUSTER', 'RESET', 'HARD')", "0"]));
    assert!(e.starts_with("ERR This Redis command is not allowed from script"), "{e}");
    let e = error_text(&n.run(&["EVAL", "return redis.call('OBJECT', 'NOPE', 'k')", "0"]));
    assert!(e.starts_with("ERR Unknown Redis command called from script"), "{e}");
    let e = error_text(&n.run(&["EVAL", "return redis.call('OBJECT', 'ENCODING')", "0"]));
    assert!(e.starts_with("ERR Wrong number of args calling Redis command from script"), "{e}");
    let e = error_text(&n.run(&["EVAL", "return redis.call('GET', {})", "0"]));
    assert!(e.starts_with("ERR Lua redis lib command arguments must be strings or integers"), "{e}");
    let e = error_text(&n.run(&["EVAL_RO", "return redis.call('SET', 'a', 'b')", "0"]));
    assert!(e.starts_with("ERR Write commands are not allowed from read-only scripts."), "{e}");
    // PFCOUNT may store its estimate (Redis's `may_replicate`): refused there too.
    let e = error_text(&n.run(&["EVAL_RO", "return redis.call('PFCOUNT', 'h')", "0"]));
    assert!(e.starts_with("ERR Write commands are not allowed from read-only scripts."), "{e}");
    assert_eq!(n.run(&["EVAL", "return redis.call('PFCOUNT', 'h')", "0"]), Reply::Integer(0));
    for escape in ["return os.time()", "return io.open('/etc/passwd')", "return loadfile('/etc/passwd')"] {
        assert!(n.run(&["EVAL", escape, "0"]).is_error(), "{escape}");
    }
}

#[test]
fn script_cache_and_its_effects() {
    let mut n = Node::new(true);
    let body = "return ARGV[1]";
    let sha = super::vm::sha1hex(body.as_bytes());
    assert_eq!(n.run(&["EVALSHA", &sha, "0", "x"]), Reply::error("NOSCRIPT No matching script. Please use EVAL."));
    assert_eq!(n.run(&["SCRIPT", "LOAD", body]), bulk(&sha));
    assert_eq!(n.run(&["EVALSHA", &sha.to_uppercase(), "0", "x"]), bulk("x"));
    assert_eq!(n.run(&["SCRIPT", "EXISTS", &sha, "nope"]), Reply::Array(vec![Reply::Integer(1), Reply::Integer(0)]));
    // The load reaches a replica as an effect; a replica passes nothing on.
    let mut replica = Node::new(false);
    for effect in n.effects.clone() {
        replica.exec(&effect);
    }
    assert!(replica.effects.is_empty());
    assert_eq!(replica.run(&["EVALSHA_RO", &sha, "0", "y"]), bulk("y"));
    let e = error_text(&replica.run(&["EVAL", "return redis.call('SET', 'a', 'b')", "0"]));
    assert!(e.starts_with("READONLY"), "{e}");
    assert_eq!(n.run(&["SCRIPT", "FLUSH"]), Reply::ok());
    assert_eq!(n.run(&["SCRIPT", "EXISTS", &sha]), Reply::Array(vec![Reply::Integer(0)]));
    assert_eq!(n.run(&["SCRIPT", "KILL"]), Reply::error("NOTBUSY No scripts in execution right now."));
}

#[test]
fn script_kill_stops_a_runaway_script_and_the_vm_stays_usable() {
    let mut n = Node::new(true);
    let busy = n.scripts.busy.clone();
    let killer = std::thread::spawn(move || {
        while !busy.running() {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        busy.kill(true)
    });
    // pcall cannot catch the kill.
    let body = "while true do pcall(function() while true do end end) end";
    let e = error_text(&n.run(&["EVAL", body, "0"]));
    assert_eq!(killer.join().unwrap(), Reply::ok());
    let sha = super::sha1hex(body.as_bytes());
    assert_eq!(e, format!("ERR Script killed by user with SCRIPT KILL... script: {sha}, on @user_script:1."));
    assert!(!n.scripts.busy.running());
    let e = error_text(&n.run(&["EVAL", "return string.rep('x', 1024 * 1024 * 1024)", "0"]));
    assert!(e.contains("memory"), "{e}");
    assert_eq!(n.run(&["EVAL", "return 7", "0"]), Reply::Integer(7));
}

#[test]
fn eval_keeps_a_bounded_cache_and_loaded_scripts_stay() {
    let mut n = Node::new(true);
    let loaded = "return 'loaded'";
    n.run(&["SCRIPT", "LOAD", loaded]);
    let first = "return 0";
    n.run(&["EVAL", first, "0"]);
    for i in 1..=super::vm::MAX_EVAL_SCRIPTS {
        assert_eq!(n.run(&["EVAL", &format!("return {i}"), "0"]), Reply::Integer(i as i64));
    }
    let known = |n: &Node, body: &str| n.scripts.exists(super::sha1hex(body.as_bytes()).as_bytes());
    assert!(!known(&n, first), "the oldest EVAL-only script is dropped");
    assert!(known(&n, "return 1") && known(&n, loaded));
    // Only loaded scripts travel to replicas and the log.
    assert_eq!(n.scripts.bodies(), vec![Bytes::from(loaded)]);
    // Loading a script EVAL already ran makes it a loaded one (and an effect).
    let before = n.effects.len();
    n.run(&["SCRIPT", "LOAD", "return 1"]);
    assert_eq!(n.effects.len(), before + 1);
}

#[test]
fn shebang_flags_are_honoured() {
    let mut n = Node::new(true);
    assert_eq!(n.run(&["EVAL", "#!lua\nreturn 1", "0"]), Reply::Integer(1));
    let e = error_text(&n.run(&["EVAL", "#!lua flags=no-writes\nreturn redis.call('SET', 'a', 'b')", "0"]));
    assert!(e.starts_with("ERR Write commands are not allowed from read-only scripts."), "{e}");
    let e = error_text(&n.run(&["EVAL", "#!lua flags=no-writes\n\nreturn x", "0"]));
    assert!(e.contains("user_script:3:"), "line numbers count the shebang line: {e}");
    let e = error_text(&n.run(&["EVAL", "#!python\nreturn 1", "0"]));
    assert_eq!(e, "ERR Unexpected engine in script shebang: python");
    let e = error_text(&n.run(&["EVAL", "#!lua flags=bogus\nreturn 1", "0"]));
    assert_eq!(e, "ERR Unexpected flag in script shebang: bogus");
    // Over maxmemory a script that declared flags may not start unless it cannot write or
    // allows OOM; one without a shebang runs and its writes fail one by one.
    n.oom = true;
    assert_eq!(error_text(&n.run(&["EVAL", "#!lua\nreturn 1", "0"])), crate::memory::OOM);
    assert_eq!(n.run(&["EVAL", "#!lua flags=no-writes\nreturn 1", "0"]), Reply::Integer(1));
    assert_eq!(n.run(&["EVAL", "#!lua flags=allow-oom\nreturn redis.call('SET', 'a', 'b')", "0"]), Reply::ok());
    assert_eq!(n.run(&["EVAL", "return 1", "0"]), Reply::Integer(1));
    assert!(error_text(&n.run(&["EVAL", "return redis.call('SET', 'a', 'b')", "0"])).starts_with("OOM "));
}

#[test]
fn scripts_cannot_change_what_the_next_script_sees() {
    let mut n = Node::new(true);
    // Each of these tries to replace or reach past a read-only table (Redis 7's tests).
    for attack in [
        "setmetatable(_G, {})",
        "local g = getmetatable(_G) g.__index = {}",
        "redis = function() return 1 end",
        "_G = {}",
        "redis.call = function() return 1 end",
        "cjson.encode = function() return 1 end",
        "cmsgpack.pack = function() return 1 end",
        "bit.lshift = function() return 1 end",
        "string.upper = function() return 'x' end",
        "rawset(_G, 'redis', 1)",
        "getfenv(0).redis = 1",
        "getfenv(redis.error_reply).redis = 1",
        "setfenv(0, {})",
        "loadstring('redis = 1')()",
        "getmetatable('').__index = {}",
    ] {
        let e = error_text(&n.run(&["EVAL", attack, "0"]));
        assert!(e.contains("Attempt to modify a readonly table"), "{attack}: {e}");
        assert!(e.contains("user_script:1") || attack.starts_with("loadstring"), "the error names the line: {e}");
    }
    assert_eq!(n.run(&["EVAL", "return redis.call('PING')", "0"]), Reply::Simple("PONG".into()));
    assert_eq!(n.run(&["EVAL", "return ('abc'):upper() .. string.lower('D')", "0"]), bulk("ABCd"));
    assert_eq!(n.run(&["EVAL", "return loadstring('return 1 + 1')()", "0"]), Reply::Integer(2));
    // Lua bytecode does not load (Redis's Lua refuses it); print is gone as in Redis 7.
    let e = error_text(&n.run(&["EVAL", "return loadstring(string.dump(function() return 1 end))()", "0"]));
    assert!(e.contains("attempt to call a nil value"), "{e}");
    let e = error_text(&n.run(&["EVAL", "print('x')", "0"]));
    assert!(e.contains("nonexistent global variable 'print'"), "{e}");
    // A script's own tables stay its own.
    assert_eq!(
        n.run(&["EVAL", "local t = setmetatable({}, {__index = function() return 7 end}) return t.x", "0"]),
        Reply::Integer(7)
    );
    // A library function is held to the same rules.
    let lib = "#!lua name=trick\nredis.register_function('f', function() redis = 1 end)";
    assert_eq!(n.run(&["FUNCTION", "LOAD", lib]), bulk("trick"));
    let e = error_text(&n.run(&["FCALL", "f", "0"]));
    assert!(e.contains("Attempt to modify a readonly table"), "{e}");
    assert_eq!(n.run(&["EVAL", "return type(redis)", "0"]), bulk("table"));
}

#[test]
fn a_call_may_take_as_many_arguments_as_unpack_gives() {
    let mut n = Node::new(true);
    // 8001 arguments fill Lua's C stack (LUAI_MAXCSTACK): the call reads them where they lie.
    let script = "local a = {} for i = 1, 7999 do a[i] = 1 end return redis.call('LPUSH', KEYS[1], unpack(a))";
    assert_eq!(n.run(&["EVAL", script, "1", "l"]), Reply::Integer(7999));
    let script = "local a = {} for i = 1, 7900 do a[i] = 'k' .. i end return #redis.call('MGET', unpack(a))";
    assert_eq!(n.run(&["EVAL", script, "0"]), Reply::Integer(7900));
}

#[test]
fn sort_of_a_set_without_order_is_sorted_for_a_script() {
    let mut n = Node::new(true);
    n.run(&["SADD", "s", "b", "aa", "a", "c"]);
    let r = n.run(&["EVAL", "return redis.call('SORT', KEYS[1], 'BY', 'nosort')", "1", "s"]);
    assert_eq!(r, Reply::Array(["a", "aa", "b", "c"].iter().map(|s| bulk(s)).collect()));
}

#[test]
fn select_in_a_script_moves_its_later_commands_and_not_its_caller() {
    let mut n = Node::new(true);
    let script = "redis.call('SET', 'k', 'home') redis.call('SELECT', 3) redis.call('SET', 'k', 'three') \
                  local size = redis.call('DBSIZE') redis.call('SELECT', 0) return {size, redis.call('GET', 'k')}";
    let reply = n.run(&["EVAL", script, "0"]);
    assert_eq!(reply, Reply::Array(vec![Reply::Integer(1), bulk("home")]));
    assert_eq!(n.run(&["GET", "k"]), bulk("home"), "the caller is still in its database");
    let in_three = n.ks.db(3).get(b"k").map(|e| e.value.clone());
    assert_eq!(in_three, Some(crate::value::Value::Str(crate::strval::Str::from(Bytes::from_static(b"three")))));
    // The effect of the write in database 3 names its database; the others are the caller's.
    let selected: Vec<&Vec<Bytes>> = n.effects.iter().filter(|e| e.first().is_some_and(|a| a == "SELECT")).collect();
    assert_eq!(selected.len(), 1, "{:?}", n.effects);
    assert_eq!(selected[0][..3], [Bytes::from_static(b"SELECT"), Bytes::from_static(b"3"), Bytes::from_static(b"SET")]);
    assert!(error_text(&n.run(&["EVAL", "return redis.call('SELECT', 16)", "0"])).contains("DB index is out of range"));
    // A script that fails after its SELECT leaves every database where it was.
    let failing = "redis.call('SELECT', 5) redis.call('SET', 'x', '1') error('boom')";
    assert!(error_text(&n.run(&["EVAL", failing, "0"])).contains("boom"));
    assert_eq!(n.run(&["GET", "x"]), Reply::NullBulk);
    assert!(n.ks.db(5).get(b"x").is_some() && n.ks.db(0).get(b"k").is_some());
}

#[test]
fn keys_and_argv_are_the_same_however_many_there_are() {
    let mut n = Node::new(true);
    let script = "return {#KEYS, #ARGV, KEYS[1] or '-', KEYS[#KEYS] or '-', ARGV[1] or '-', ARGV[#ARGV] or '-'}";
    // Few are passed on the Lua stack, many as tables: a script sees no difference.
    for (nkeys, nargs) in [(0, 0), (1, 0), (0, 2), (2, 3), (30, 34), (40, 40), (5000, 3000)] {
        let keys: Vec<String> = (1..=nkeys).map(|i| format!("k{i}")).collect();
        let argv: Vec<String> = (1..=nargs).map(|i| format!("a{i}")).collect();
        let count = nkeys.to_string();
        let mut args = vec!["EVAL", script, &count];
        args.extend(keys.iter().map(String::as_str));
        args.extend(argv.iter().map(String::as_str));
        let edge = |v: &[String], last: bool| {
            bulk(if v.is_empty() {
                "-"
            } else if last {
                v.last().unwrap()
            } else {
                &v[0]
            })
        };
        let want = Reply::Array(vec![
            Reply::Integer(nkeys as i64),
            Reply::Integer(nargs as i64),
            edge(&keys, false),
            edge(&keys, true),
            edge(&argv, false),
            edge(&argv, true),
        ]);
        assert_eq!(n.run(&args), want, "{nkeys} keys, {nargs} args");
    }
    // A run's KEYS do not outlive it.
    n.run(&["EVAL", "return 1", "2", "x", "y"]);
    assert_eq!(n.run(&["EVAL", "return #KEYS", "0"]), Reply::Integer(0));
}
