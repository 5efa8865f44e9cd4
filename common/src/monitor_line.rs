//! MONITOR's line format, `<secs>.<micros> [<db> <client>] "cmd" "arg" ...`, shared by the
//! gateway (the commands its clients send) and the datanode (the commands a script runs,
//! shown as `[<db> lua]` and published on [`crate::MONITOR_FEED`]).

/// The line without the leading `+` and trailing CRLF (the status reply adds them).
/// `redacted(i)`: argument `i` is shown as `"(redacted)"` (AUTH's password, ...).
pub fn line(db: usize, client: &str, args: &[bytes::Bytes], redacted: impl Fn(usize) -> bool) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let mut s = format!("{}.{:06} [{db} {client}]", now.as_secs(), now.subsec_micros());
    for (i, a) in args.iter().enumerate() {
        s.push(' ');
        if redacted(i) {
            s.push_str("\"(redacted)\"");
        } else {
            quote(&mut s, a);
        }
    }
    s
}

/// Redis's `sdscatrepr`: a double-quoted string with C escapes.
fn quote(out: &mut String, bytes: &[u8]) {
    out.push('"');
    for &b in bytes {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x07 => out.push_str("\\a"),
            0x08 => out.push_str("\\b"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn lines_quote_as_redis_does() {
        let args = [Bytes::from("set"), Bytes::from("k\"1"), Bytes::from(&b"a\n\x01"[..])];
        let l = line(0, "127.0.0.1:5000", &args, |_| false);
        assert!(l.ends_with(" [0 127.0.0.1:5000] \"set\" \"k\\\"1\" \"a\\n\\x01\""), "{l}");
        let auth = [Bytes::from("AUTH"), Bytes::from("secret")];
        assert!(line(3, "lua", &auth, |i| i == 1).ends_with("[3 lua] \"AUTH\" \"(redacted)\""));
    }
}
