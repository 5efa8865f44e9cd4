//! MONITOR: the commands this gateway receives for a group, streamed to the clients that
//! asked, in Redis's line format (`+<secs>.<micros> [0 <addr>] "cmd" "arg" ...`).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::broadcast;

/// Lines a slow monitor may fall behind before it misses some.
const BACKLOG: usize = 4096;

pub struct Monitor {
    tx: broadcast::Sender<Bytes>,
    watching: AtomicUsize,
}

impl Default for Monitor {
    fn default() -> Self {
        Monitor { tx: broadcast::channel(BACKLOG).0, watching: AtomicUsize::new(0) }
    }
}

/// One MONITOR client's feed; it stops counting when dropped.
pub struct Watcher {
    monitor: Arc<Monitor>,
    rx: broadcast::Receiver<Bytes>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.monitor.watching.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Watcher {
    /// The next line (lines missed while far behind are skipped, not waited for).
    pub async fn next(&mut self) -> Option<Bytes> {
        loop {
            match self.rx.recv().await {
                Ok(line) => return Some(line),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

impl Monitor {
    pub fn watch(self: &Arc<Self>) -> Watcher {
        self.watching.fetch_add(1, Ordering::Relaxed);
        Watcher { monitor: self.clone(), rx: self.tx.subscribe() }
    }

    /// Someone is watching.
    pub fn active(&self) -> bool {
        self.watching.load(Ordering::Relaxed) > 0
    }

    /// Sends a command to the watchers.
    /// Sends a command to the watchers; `db`: the database it ran in.
    pub fn feed(&self, db: usize, addr: SocketAddr, args: &[Bytes]) {
        let _ = self.tx.send(Bytes::from(line(db, addr, args)));
    }
}

/// Redis's monitor line, without the leading `+` and trailing CRLF (the status reply adds
/// them).
fn line(db: usize, addr: SocketAddr, args: &[Bytes]) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let mut s = format!("{}.{:06} [{db} {addr}]", now.as_secs(), now.subsec_micros());
    for (i, a) in args.iter().enumerate() {
        s.push(' ');
        if crate::stats::redacted(args, i) {
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

    #[test]
    fn lines_quote_as_redis_does() {
        let addr: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let args = [Bytes::from("set"), Bytes::from("k\"1"), Bytes::from(&b"a\n\x01"[..])];
        let l = line(0, addr, &args);
        assert!(l.ends_with(" [0 127.0.0.1:5000] \"set\" \"k\\\"1\" \"a\\n\\x01\""), "{l}");
        let auth = [Bytes::from("AUTH"), Bytes::from("secret")];
        assert!(line(3, addr, &auth).ends_with("\"AUTH\" \"(redacted)\""));
    }
}
