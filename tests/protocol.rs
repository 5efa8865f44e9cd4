//! RESP at the wire: malformed input, limits, inline commands, pipelining, RESP3, and
//! Redis's exact error lines — over raw TCP against a real gateway.

mod support;

use std::time::Duration;

use support::{Cluster, Options};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn exchange(port: u16, input: &[u8], expect_len: usize) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
    s.write_all(input).await.expect("write");
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while out.len() < expect_len {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Ok(Ok(0)) | Err(_) => break,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Ok(Err(_)) => break,
        }
    }
    out
}

/// Sends input, reads until the server closes the connection (or 5 s).
async fn until_closed(port: u16, input: &[u8]) -> (Vec<u8>, bool) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
    s.write_all(input).await.expect("write");
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await {
            Ok(Ok(0)) => return (out, true),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Ok(Err(_)) => return (out, true),
            Err(_) => return (out, false),
        }
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wire_protocol() {
    let cluster = Cluster::start(Options { coordinators: 1, datanodes: 1, gateway: true, ..Default::default() });
    let (port, _) = cluster.create_group("proto", 0, "everysec").await;

    // Pipelined multibulk and inline commands, answered in order.
    let out = exchange(port, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\nGET k\r\nPING\r\nECHO \"a b\"\r\n", 30).await;
    assert_eq!(text(&out), "+OK\r\n$1\r\nv\r\n+PONG\r\n$3\r\na b\r\n");

    // A thousand pipelined commands in one write come back complete and in order.
    let mut input = Vec::new();
    let mut expected = String::new();
    for i in 0..1000 {
        input.extend_from_slice(format!("*2\r\n$4\r\nECHO\r\n${}\r\n{i}\r\n", i.to_string().len()).as_bytes());
        input.extend_from_slice(format!("*3\r\n$3\r\nSET\r\n$4\r\np{:03}\r\n$1\r\nx\r\n", i % 1000).as_bytes());
        expected.push_str(&format!("${}\r\n{i}\r\n+OK\r\n", i.to_string().len()));
    }
    let out = exchange(port, &input, expected.len()).await;
    assert_eq!(text(&out), expected);

    // Malformed requests: Redis's protocol error, then the connection is closed.
    let (out, closed) = until_closed(port, b"*1\r\n:5\r\n").await;
    assert_eq!(text(&out), "-ERR Protocol error: expected '$', got ':'\r\n");
    assert!(closed);
    let (out, closed) = until_closed(port, b"*x\r\n").await;
    assert_eq!(text(&out), "-ERR Protocol error: invalid multibulk length\r\n");
    assert!(closed);
    let (out, closed) = until_closed(port, b"PING\r\nset k \"unbalanced\r\n").await;
    assert_eq!(text(&out), "+PONG\r\n-ERR Protocol error: unbalanced quotes in request\r\n");
    assert!(closed);

    // A bulk length over proto-max-bulk-len (512 MB) is refused before any of it arrives.
    let (out, closed) = until_closed(port, b"*2\r\n$3\r\nGET\r\n$536870913\r\n").await;
    assert_eq!(text(&out), "-ERR Protocol error: invalid bulk length\r\n");
    assert!(closed);

    // Unknown command and wrong arity keep the connection open.
    let out = exchange(port, b"FOO a b\r\nGET\r\nSET k\r\nPING\r\n", 120).await;
    assert_eq!(
        text(&out),
        "-ERR unknown command 'FOO', with args beginning with: 'a' 'b' \r\n\
         -ERR wrong number of arguments for 'get' command\r\n\
         -ERR wrong number of arguments for 'set' command\r\n+PONG\r\n"
    );

    // RESP3 after HELLO 3: nulls are _, maps are %.
    let out = exchange(port, b"HELLO 3\r\nGET nosuchkey\r\n", 200).await;
    let t = text(&out);
    assert!(t.starts_with("%7\r\n"), "{t}");
    assert!(t.ends_with("_\r\n"), "{t}");
    let out = exchange(port, b"HELLO 4\r\n", 10).await;
    assert_eq!(text(&out), "-NOPROTO unsupported protocol version\r\n");

    // A big value in and out leaves the connection's buffers at their usual size
    // (CLIENT LIST: qbuf + qbuf-free and rbs), not at the value's.
    let mut c = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let big = vec![b'x'; 4 << 20];
    let mut set = format!("*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n${}\r\n", big.len()).into_bytes();
    set.extend_from_slice(&big);
    set.extend_from_slice(b"\r\nGET big\r\n");
    c.write_all(&set).await.unwrap();
    let mut got = Vec::new();
    while got.len() < 5 + big.len() + 12 {
        let mut buf = vec![0u8; 1 << 16];
        let n = tokio::time::timeout(Duration::from_secs(10), c.read(&mut buf)).await.unwrap().unwrap();
        assert!(n > 0, "closed");
        got.extend_from_slice(&buf[..n]);
    }
    c.write_all(b"CLIENT INFO\r\n").await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), c.read(&mut buf)).await.unwrap().unwrap();
    let info = text(&buf[..n]);
    let field = |name: &str| -> usize {
        let at = info.find(&format!(" {name}=")).unwrap_or_else(|| panic!("{name} in {info}"));
        info[at + name.len() + 2..].split(' ').next().unwrap().parse().unwrap()
    };
    assert!(field("qbuf") + field("qbuf-free") <= 64 << 10, "{info}");
    assert!(field("rbs") <= 64 << 10, "{info}");

    // QUIT answers OK and closes.
    let (out, closed) = until_closed(port, b"QUIT\r\nPING\r\n").await;
    assert_eq!(text(&out), "+OK\r\n");
    assert!(closed);
}

/// Redis's `timeout`: an idle client is disconnected; a subscribed one is not, nor one
/// whose command is still waiting (a blocked BLPOP).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_clients_are_closed_after_the_groups_timeout() {
    let cluster = Cluster::start(Options { coordinators: 1, datanodes: 1, gateway: true, ..Default::default() });
    let (port, _) = cluster.create_group("idle", 0, "everysec").await;
    let mut c = support::redis_conn(port).await;
    // Idle for 2 s, a connection gives its query and output buffers back (as Redis frees an
    // idle client's query buffer), and serves the next command as before.
    let mut idler = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    idler.write_all(b"CLIENT SETNAME idler\r\nPING\r\n").await.unwrap();
    let mut buf = [0u8; 64];
    let mut got = Vec::new();
    while got.len() < b"+OK\r\n+PONG\r\n".len() {
        let n = tokio::time::timeout(Duration::from_secs(5), idler.read(&mut buf)).await.unwrap().unwrap();
        got.extend_from_slice(&buf[..n]);
    }
    tokio::time::sleep(Duration::from_millis(2700)).await;
    let list: String = support::q(&mut c, &["CLIENT", "LIST"]).await.unwrap();
    let line = list.lines().find(|l| l.contains("name=idler")).unwrap().to_string();
    assert!(line.contains(" qbuf=0 qbuf-free=0 ") && line.contains(" rbs=0 "), "{line}");
    idler.write_all(b"PING\r\n").await.unwrap();
    let n = tokio::time::timeout(Duration::from_secs(5), idler.read(&mut buf)).await.unwrap().unwrap();
    assert_eq!(&buf[..n], b"+PONG\r\n");
    // Idle since before the timeout was set: closed too (Redis's client cron looks at every
    // client), though it has no idle timer of its own yet.
    let mut early = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    early.write_all(b"PING\r\n").await.unwrap();
    let n = tokio::time::timeout(Duration::from_secs(5), early.read(&mut buf)).await.unwrap().unwrap();
    assert_eq!(&buf[..n], b"+PONG\r\n");
    drop(idler);
    let _: () = support::q(&mut c, &["CONFIG", "SET", "timeout", "1"]).await.unwrap();
    let set_at = std::time::Instant::now();
    let n = tokio::time::timeout(Duration::from_secs(5), early.read(&mut buf)).await.map(|r| r.unwrap_or(0));
    assert_eq!(n.ok(), Some(0), "a client idle since before CONFIG SET timeout is closed");
    assert!(set_at.elapsed() < Duration::from_secs(4), "closed after about a second: {:?}", set_at.elapsed());
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let start = std::time::Instant::now();
    let (_, closed) = until_closed(port, b"PING\r\n").await;
    assert!(closed, "an idle client is closed");
    assert!(start.elapsed() < Duration::from_secs(4), "closed after about a second: {:?}", start.elapsed());
    let mut sub = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    sub.write_all(b"SUBSCRIBE ch\r\n").await.unwrap();
    let mut blocked = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    blocked.write_all(b"BLPOP nothing 4\r\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let mut buf = [0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(1), sub.read(&mut buf)).await.unwrap().unwrap();
    assert!(n > 0, "the subscriber still has its confirmation to read");
    sub.write_all(b"PING\r\n").await.unwrap();
    let n = tokio::time::timeout(Duration::from_secs(2), sub.read(&mut buf)).await.unwrap().unwrap();
    assert!(n > 0, "a subscriber is never idle");
    let n = tokio::time::timeout(Duration::from_secs(4), blocked.read(&mut buf)).await.unwrap().unwrap();
    assert_eq!(&buf[..n], b"*-1\r\n", "the blocked client got its timeout reply");
}

/// Sends `request` and then reads nothing for `quiet`; afterwards drains what arrives.
/// Returns the bytes read and whether the gateway closed the connection.
async fn slow_reader(port: u16, request: &[u8], quiet: Duration) -> (usize, bool) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    s.write_all(request).await.unwrap();
    tokio::time::sleep(quiet).await;
    let mut total = 0;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (total, true),
            Ok(Ok(n)) => total += n,
            Err(_) => return (total, false),
        }
    }
}

/// Redis's client-output-buffer-limit for normal clients: none by default; once set, a
/// client that leaves more than the hard limit unread (or more than the soft limit for its
/// seconds) is closed, and CONFIG SET of one class keeps the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_do_not_read_their_replies_are_closed_past_the_output_limits() {
    let cluster = Cluster::start(Options { coordinators: 1, datanodes: 1, gateway: true, ..Default::default() });
    let (port, _) = cluster.create_group("obuf", 0, "everysec").await;
    let mut c = support::redis_conn(port).await;
    let value = vec![b'v'; 600 * 1024];
    let _: () = redis::cmd("SET").arg("big").arg(&value[..]).query_async(&mut c).await.unwrap();
    let gets: Vec<u8> = b"GET big\r\n".repeat(40);
    let one = format!("${}\r\n", value.len()).len() + value.len() + 2;
    let whole = 40 * one;

    // No limit by default: everything arrives, however late the client reads.
    let (read, closed) = slow_reader(port, &gets, Duration::from_millis(1500)).await;
    assert_eq!((read, closed), (whole, false));

    let _: () = support::q(&mut c, &["CONFIG", "SET", "client-output-buffer-limit", "normal 4mb 2mb 1"]).await.unwrap();
    let v: Vec<String> = support::q(&mut c, &["CONFIG", "GET", "client-output-buffer-limit"]).await.unwrap();
    assert_eq!(v[1], "normal 4194304 2097152 1 replica 268435456 67108864 60 pubsub 33554432 8388608 60");
    let (read, closed) = slow_reader(port, &gets, Duration::from_millis(2500)).await;
    assert!(closed && read < whole, "closed past the limits after {read} of {whole} bytes");
    // A client that asks for less than the limits is served as before.
    let small: Vec<u8> = b"GET big\r\n".repeat(2);
    assert_eq!(slow_reader(port, &small, Duration::from_millis(100)).await, (2 * one, false));
    // Bad values are refused with Redis's errors.
    let e = support::err(&mut c, &["CONFIG", "SET", "client-output-buffer-limit", "normal 1 2"]).await;
    assert!(e.contains("Wrong number of arguments in buffer limit configuration"), "{e}");
    let e = support::err(&mut c, &["CONFIG", "SET", "client-output-buffer-limit", "master 1 2 3"]).await;
    assert!(e.contains("Invalid client class"), "{e}");

    // maxmemory-clients: past it, the client holding most (half of a 5 MB argument sent)
    // is closed; one that set CLIENT NO-EVICT is spared.
    assert!(!half_sent_argument(port, false).await, "no limit by default");
    let e = support::err(&mut c, &["CONFIG", "SET", "maxmemory-clients", "200%"]).await;
    assert!(e.contains("percentage argument must be less or equal to 100"), "{e}");
    let _: () = support::q(&mut c, &["CONFIG", "SET", "maxmemory-clients", "1mb"]).await.unwrap();
    assert!(half_sent_argument(port, false).await, "the hog is closed");
    assert!(!half_sent_argument(port, true).await, "a NO-EVICT client stays");
    let mut c = support::redis_conn(port).await;
    let info: String = support::q(&mut c, &["INFO", "stats"]).await.unwrap();
    let evicted: u64 = info.lines().find_map(|l| l.strip_prefix("evicted_clients:")).unwrap().parse().unwrap();
    assert!(evicted >= 1, "{info}");
    let _: () = support::q(&mut c, &["CONFIG", "SET", "maxmemory-clients", "0"]).await.unwrap();
    // Lowering the limit closes a client over it at once, not at its next read.
    let mut hog = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut request = b"*3\r\n$3\r\nSET\r\n$3\r\nhog\r\n$5000000\r\n".to_vec();
    request.resize(request.len() + 2_000_000, b'x');
    hog.write_all(&request).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _: () = support::q(&mut c, &["CONFIG", "SET", "maxmemory-clients", "1mb"]).await.unwrap();
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(2), hog.read(&mut buf)).await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "the idle hog stayed: {read:?}");
    let _: () = support::q(&mut c, &["CONFIG", "SET", "maxmemory-clients", "0"]).await.unwrap();
}

/// Sends 2 MB of a 5 MB argument and waits; returns whether the gateway closed the
/// connection.
async fn half_sent_argument(port: u16, no_evict: bool) -> bool {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut buf = [0u8; 64];
    if no_evict {
        s.write_all(b"CLIENT NO-EVICT on\r\n").await.unwrap();
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await.unwrap().unwrap();
        assert_eq!(&buf[..n], b"+OK\r\n");
    }
    let mut request = b"*3\r\n$3\r\nSET\r\n$3\r\nhog\r\n$5000000\r\n".to_vec();
    request.resize(request.len() + 2_000_000, b'x');
    if s.write_all(&request).await.is_err() {
        return true;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    match tokio::time::timeout(Duration::from_secs(1), s.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(_)) => panic!("a reply to half a command"),
        Err(_) => false,
    }
}
