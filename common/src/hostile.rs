//! Hostile command arguments for the adversarial tests (datanode unit test, whole-cluster
//! test): overflowing and odd numbers, option words in the wrong places, corrupted payloads.
//! Pure and free of any random source of its own, so each test brings its seeded one.

use bytes::Bytes;

/// Numbers as clients may send them, most of them at or past some boundary.
pub const NUMBERS: &[&str] = &[
    "0",
    "1",
    "-1",
    "2",
    "3",
    "7",
    "64",
    "100",
    "-100",
    "4294967295",
    "4294967296",
    "2147483648",
    "-2147483649",
    "9223372036854775807",
    "-9223372036854775808",
    "9223372036854775808",
    "-9223372036854775809",
    "18446744073709551615",
    "99999999999999999999999",
    "1e308",
    "-1e308",
    "1.7976931348623157e308",
    "1e-320",
    "1e400",
    "inf",
    "-inf",
    "+inf",
    "nan",
    "-nan",
    "1.5",
    "-0",
    "-0.0",
    "0x10",
    " 1",
    "1 ",
    "",
    "007",
    "1e3",
    "9007199254740993",
    "(1",
    "[a",
    "(a",
    "-",
    "+",
    "(",
    "[",
    "#1",
    "#-1",
    "#99999999999",
];

/// Option words of many commands, and glob patterns.
pub const WORDS: &[&str] = &[
    "NX",
    "XX",
    "GT",
    "LT",
    "CH",
    "INCR",
    "EX",
    "PX",
    "EXAT",
    "PXAT",
    "KEEPTTL",
    "GET",
    "SET",
    "LIMIT",
    "WITHSCORES",
    "WITHSCORE",
    "WITHVALUES",
    "BYSCORE",
    "BYLEX",
    "REV",
    "COUNT",
    "MATCH",
    "TYPE",
    "LEFT",
    "RIGHT",
    "BEFORE",
    "AFTER",
    "WEIGHTS",
    "AGGREGATE",
    "SUM",
    "MIN",
    "MAX",
    "RANK",
    "MAXLEN",
    "BIT",
    "BYTE",
    "OVERFLOW",
    "WRAP",
    "SAT",
    "FAIL",
    "INCRBY",
    "i8",
    "u8",
    "i64",
    "u63",
    "u64",
    "i0",
    "i65",
    "AND",
    "OR",
    "XOR",
    "NOT",
    "REPLACE",
    "ABSTTL",
    "IDLETIME",
    "FREQ",
    "ENCODING",
    "USAGE",
    "SAMPLES",
    "REFCOUNT",
    "HELP",
    "STATS",
    "DOCTOR",
    "DB",
    "ASYNC",
    "SYNC",
    "PERSIST",
    "*",
    "?",
    "[",
    "\\",
    "a*",
    "h*[",
    "string",
    "hash",
    "zset",
];

/// One argument: a key, a number, an option word, a payload or random bytes. `pick(n)`
/// returns a number below `n`.
pub fn argument(pick: &mut dyn FnMut(usize) -> usize, keys: &[&str], payloads: &[Bytes]) -> Bytes {
    let from = |list: &[&str], i: usize| Bytes::copy_from_slice(list[i].as_bytes());
    match pick(100) {
        0..=34 if !keys.is_empty() => from(keys, pick(keys.len())),
        0..=64 => from(NUMBERS, pick(NUMBERS.len())),
        65..=84 => from(WORDS, pick(WORDS.len())),
        85..=92 if !payloads.is_empty() => payloads[pick(payloads.len())].clone(),
        _ => Bytes::from((0..pick(24)).map(|_| pick(256) as u8).collect::<Vec<u8>>()),
    }
}

/// A command `name` of Redis arity `arity` with hostile arguments: usually about as many as
/// the arity asks for, sometimes too few.
pub fn arguments(
    pick: &mut dyn FnMut(usize) -> usize,
    name: &str,
    arity: i32,
    keys: &[&str],
    payloads: &[Bytes],
) -> Vec<Bytes> {
    let base = (arity.unsigned_abs() as usize).saturating_sub(1);
    let n = if pick(10) == 0 { pick(3) } else { base + pick(7) };
    let mut args = vec![Bytes::copy_from_slice(name.as_bytes())];
    for _ in 0..n {
        args.push(argument(pick, keys, payloads));
    }
    args
}
