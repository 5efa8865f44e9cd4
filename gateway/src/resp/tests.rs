use super::*;
use proptest::prelude::*;

fn parse_all(input: &[u8]) -> (Vec<Vec<Bytes>>, Result<(), ProtocolError>, usize) {
    let mut buf = BytesMut::from(input);
    let mut out = Vec::new();
    loop {
        match parse_request(&mut buf, &Limits::default()) {
            Ok(Some(args)) => out.push(args),
            Ok(None) => return (out, Ok(()), buf.len()),
            Err(e) => return (out, Err(e), buf.len()),
        }
    }
}

fn args(items: &[&str]) -> Vec<Bytes> {
    items.iter().map(|s| Bytes::copy_from_slice(s.as_bytes())).collect()
}

fn multibulk(items: &[Vec<u8>]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", items.len()).into_bytes();
    for it in items {
        out.extend_from_slice(format!("${}\r\n", it.len()).as_bytes());
        out.extend_from_slice(it);
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[test]
fn multibulk_and_pipelines() {
    let (cmds, res, rest) = parse_all(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n$4\r\nPING\r\n");
    assert_eq!(res, Ok(()));
    assert_eq!(rest, 0);
    assert_eq!(cmds, vec![args(&["GET", "k"]), args(&["PING"])]);
}

#[test]
fn incomplete_input_waits() {
    for cut in 1..20 {
        let full = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
        let (cmds, res, rest) = parse_all(&full[..cut.min(full.len() - 1)]);
        assert!(cmds.is_empty() && res.is_ok() && rest > 0);
    }
}

#[test]
fn inline_commands() {
    let (cmds, res, _) = parse_all(b"PING\r\nset k \"a b\\n\"\r\nget 'it''\r\n");
    assert_eq!(cmds[0], args(&["PING"]));
    assert_eq!(cmds[1], args(&["set", "k", "a b\n"]));
    assert_eq!(res, Err(perr("unbalanced quotes in request")));
    let (cmds, _, _) = parse_all(b"\r\n  \n");
    assert!(cmds.iter().all(|c| c.is_empty()));
    let (cmds, _, _) = parse_all(b"echo \"\\x41\\x42\" 'x\\'y'\n");
    assert_eq!(cmds[0], args(&["echo", "AB", "x'y"]));
}

#[test]
fn malformed_requests_are_protocol_errors() {
    let err = |input: &[u8]| parse_all(input).1.unwrap_err().0;
    assert_eq!(err(b"*x\r\n"), "invalid multibulk length");
    assert_eq!(err(b"*1\r\n$x\r\n"), "invalid bulk length");
    assert_eq!(err(b"*1\r\n$-1\r\n"), "invalid bulk length");
    assert_eq!(err(b"*1\r\n:1\r\n"), "expected '$', got ':'");
    assert_eq!(err(b"*1\r\n$1\r\nab\r\n"), "invalid bulk length");
    assert_eq!(err(b"*99999999999\r\n"), "invalid multibulk length");
    // Lengths are read as Redis's string2ll reads them: no leading zeros, no "-0".
    assert_eq!(err(b"*1\r\n$01\r\na\r\n"), "invalid bulk length");
    assert_eq!(err(b"*1\r\n$-0\r\n\r\n"), "invalid bulk length");
    assert_eq!(err(b"*01\r\n$1\r\na\r\n"), "invalid multibulk length");
    assert_eq!(err(b"*-0\r\n"), "invalid multibulk length");
    assert_eq!(err(&vec![b'a'; INLINE_MAX + 1]), "too big inline request");
}

#[test]
fn oversized_bulk_is_rejected_before_its_bytes_arrive() {
    let limits = Limits { max_bulk_len: 10, max_args: 100 };
    let mut buf = BytesMut::from(&b"*1\r\n$11\r\n"[..]);
    assert_eq!(parse_request(&mut buf, &limits), Err(perr("invalid bulk length")));
    let mut buf = BytesMut::from(&b"*1\r\n$536870913\r\n"[..]);
    assert_eq!(parse_request(&mut buf, &Limits::default()), Err(perr("invalid bulk length")));
    assert!(buf.capacity() < 1 << 20, "nothing was allocated for the announced length");
}

#[test]
fn a_declared_bulk_is_not_reserved_before_its_bytes_arrive() {
    let mut buf = BytesMut::from(&b"*1\r\n$536870000\r\nabc"[..]);
    assert_eq!(parse_request(&mut buf, &Limits::default()), Ok(None));
    assert!(buf.capacity() < 1 << 20, "reserved {} for 3 bytes received", buf.capacity());
    // The buffer grows with what arrives (about doubling), so a real big argument still
    // costs amortized linear copying.
    buf.extend_from_slice(&vec![b'x'; 200_000]);
    assert_eq!(parse_request(&mut buf, &Limits::default()), Ok(None));
    assert!(buf.capacity() < 1 << 20);
}

#[test]
fn encodes_resp2_and_resp3() {
    let enc = |r: &Reply, p| {
        let mut out = BytesMut::new();
        encode(r, p, &mut out);
        String::from_utf8(out.to_vec()).unwrap()
    };
    assert_eq!(enc(&Reply::ok(), 2), "+OK\r\n");
    assert_eq!(enc(&Reply::error("ERR a\r\nb"), 2), "-ERR a  b\r\n");
    assert_eq!(enc(&Reply::NullBulk, 2), "$-1\r\n");
    assert_eq!(enc(&Reply::NullArray, 2), "*-1\r\n");
    assert_eq!(enc(&Reply::NullBulk, 3), "_\r\n");
    let map = Reply::Map(vec![Reply::bulk("a"), Reply::Integer(1)]);
    assert_eq!(enc(&map, 2), "*2\r\n$1\r\na\r\n:1\r\n");
    assert_eq!(enc(&map, 3), "%1\r\n$1\r\na\r\n:1\r\n");
    assert_eq!(enc(&Reply::Double(1.5), 2), "$3\r\n1.5\r\n");
    assert_eq!(enc(&Reply::Double(f64::INFINITY), 3), ",inf\r\n");
    assert_eq!(enc(&Reply::Bool(true), 2), ":1\r\n");
    assert_eq!(enc(&Reply::Verbatim(Bytes::from_static(b"hi")), 3), "=6\r\ntxt:hi\r\n");
    assert_eq!(enc(&Reply::Set(vec![]), 3), "~0\r\n");
    let pairs = Reply::Pairs(vec![Reply::bulk("m"), Reply::Double(2.5)]);
    assert_eq!(enc(&pairs, 2), "*2\r\n$1\r\nm\r\n$3\r\n2.5\r\n");
    assert_eq!(enc(&pairs, 3), "*1\r\n*2\r\n$1\r\nm\r\n,2.5\r\n");
    let push = Reply::Push(vec![Reply::bulk("message"), Reply::bulk("c"), Reply::bulk("hi")]);
    assert_eq!(enc(&push, 2), "*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$2\r\nhi\r\n");
    assert_eq!(enc(&push, 3), ">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$2\r\nhi\r\n");
    let two = Reply::Sequence(vec![Reply::Integer(1), Reply::Integer(2)]);
    assert_eq!(enc(&two, 2), ":1\r\n:2\r\n");
}

proptest! {
    #[test]
    fn multibulk_round_trips(items in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 1..16)) {
        let wire = multibulk(&items);
        let (cmds, res, rest) = parse_all(&wire);
        prop_assert!(res.is_ok());
        prop_assert_eq!(rest, 0);
        prop_assert_eq!(cmds.len(), 1);
        let got: Vec<Vec<u8>> = cmds[0].iter().map(|b| b.to_vec()).collect();
        prop_assert_eq!(got, items);
    }

    #[test]
    fn split_anywhere_parses_the_same(items in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..32), 1..8), cut in 0usize..400) {
        let wire = multibulk(&items);
        let cut = cut.min(wire.len());
        let mut buf = BytesMut::from(&wire[..cut]);
        let first = parse_request(&mut buf, &Limits::default()).unwrap();
        let parsed = match first {
            Some(args) => args,
            None => {
                buf.extend_from_slice(&wire[cut..]);
                parse_request(&mut buf, &Limits::default()).unwrap().unwrap()
            }
        };
        prop_assert_eq!(parsed.iter().map(|b| b.to_vec()).collect::<Vec<_>>(), items);
    }

    #[test]
    fn garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = parse_all(&data);
    }

    #[test]
    fn inline_round_trips_plain_words(words in proptest::collection::vec("[a-zA-Z0-9:_-]{1,12}", 1..8)) {
        let line = format!("{}\r\n", words.join(" "));
        let (cmds, res, _) = parse_all(line.as_bytes());
        prop_assert!(res.is_ok());
        prop_assert_eq!(cmds[0].iter().map(|b| String::from_utf8(b.to_vec()).unwrap()).collect::<Vec<_>>(), words);
    }
}
