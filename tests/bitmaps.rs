//! Bitmaps and HyperLogLog through the gateway with a real Redis client. The expected values
//! were checked against a real redis-server (Debian's 7.0) with the same commands.

mod support;

use redis::cmd;
use support::{err, int, q, redis_conn, Cluster, Options};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bitmaps_and_hyperloglogs_follow_redis() {
    let cluster = Cluster::start(Options { coordinators: 1, datanodes: 2, gateway: true, ..Default::default() });
    let (port, reader) = cluster.create_group("bits", 1, "everysec").await;
    let mut c = redis_conn(port).await;

    // SETBIT / GETBIT: bit 0 is the top bit of byte 0; the string grows with zeros.
    assert_eq!(int(&mut c, &["SETBIT", "b", "7", "1"]).await, 0);
    assert_eq!(int(&mut c, &["SETBIT", "b", "7", "1"]).await, 1);
    assert_eq!(int(&mut c, &["SETBIT", "b", "100", "1"]).await, 0);
    assert_eq!(q::<Vec<u8>>(&mut c, &["GET", "b"]).await.unwrap(), [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8]);
    assert_eq!(int(&mut c, &["GETBIT", "b", "100"]).await, 1);
    assert_eq!(int(&mut c, &["GETBIT", "b", "99999"]).await, 0);
    assert!(err(&mut c, &["SETBIT", "b", "-1", "1"]).await.contains("bit offset is not an integer or out of range"));
    assert!(err(&mut c, &["SETBIT", "b", "4294967296", "1"]).await.contains("bit offset is not an integer"));
    assert!(err(&mut c, &["SETBIT", "b", "1", "2"]).await.contains("bit is not an integer or out of range"));

    // BITCOUNT and BITPOS, in BYTE and BIT units.
    let _: () = q(&mut c, &["SET", "s", "foobar"]).await.unwrap();
    assert_eq!(int(&mut c, &["BITCOUNT", "s"]).await, 26);
    assert_eq!(int(&mut c, &["BITCOUNT", "s", "1", "1"]).await, 6);
    assert_eq!(int(&mut c, &["BITCOUNT", "s", "-2", "-1"]).await, 7);
    assert_eq!(int(&mut c, &["BITCOUNT", "s", "5", "30", "BIT"]).await, 17);
    assert_eq!(int(&mut c, &["BITCOUNT", "nokey"]).await, 0);
    assert!(err(&mut c, &["BITCOUNT", "s", "1"]).await.contains("syntax error"));
    let _: () = q(&mut c, &["SET", "ff", "\u{7f}"]).await.unwrap();
    assert_eq!(int(&mut c, &["BITPOS", "ff", "0"]).await, 0);
    assert_eq!(int(&mut c, &["BITPOS", "ff", "1"]).await, 1);
    assert_eq!(int(&mut c, &["BITPOS", "b", "1", "2"]).await, 100);
    assert_eq!(int(&mut c, &["BITPOS", "b", "1", "2", "-1", "BIT"]).await, 7);
    assert_eq!(int(&mut c, &["BITPOS", "nokey", "0"]).await, 0);
    assert_eq!(int(&mut c, &["BITPOS", "nokey", "1"]).await, -1);
    assert!(err(&mut c, &["BITPOS", "b", "2"]).await.contains("The bit argument must be 1 or 0."));

    // BITOP.
    let _: () = q(&mut c, &["SET", "s2", "abcdef"]).await.unwrap();
    assert_eq!(int(&mut c, &["BITOP", "AND", "dest", "s", "s2"]).await, 6);
    assert_eq!(q::<String>(&mut c, &["GET", "dest"]).await.unwrap(), "`bc`ab");
    assert_eq!(int(&mut c, &["BITOP", "OR", "dest", "s", "s2", "nokey"]).await, 6);
    assert_eq!(q::<String>(&mut c, &["GET", "dest"]).await.unwrap(), "goofev");
    assert_eq!(int(&mut c, &["BITOP", "AND", "dest", "nokey"]).await, 0);
    assert_eq!(int(&mut c, &["EXISTS", "dest"]).await, 0);
    assert!(err(&mut c, &["BITOP", "NOT", "dest", "s", "s2"]).await.contains("BITOP NOT must be called with a single"));
    assert!(err(&mut c, &["BITOP", "NAND", "dest", "s"]).await.contains("syntax error"));

    // BITFIELD with every overflow mode.
    let got: Vec<Option<i64>> = q(
        &mut c,
        &[
            "BITFIELD", "bf", "SET", "i8", "0", "100", "GET", "i8", "0", "INCRBY", "i8", "0", "100", "OVERFLOW", "SAT",
            "INCRBY", "i8", "0", "100", "OVERFLOW", "FAIL", "INCRBY", "i8", "0", "100",
        ],
    )
    .await
    .unwrap();
    assert_eq!(got, [Some(0), Some(100), Some(-56), Some(44), None]);
    let got: Vec<Option<i64>> =
        q(&mut c, &["BITFIELD", "w", "OVERFLOW", "FAIL", "INCRBY", "u2", "100", "3", "INCRBY", "u2", "100", "1"])
            .await
            .unwrap();
    assert_eq!(got, [Some(3), None]);
    let got: Vec<i64> = q(&mut c, &["BITFIELD", "w", "SET", "u4", "#1", "99", "GET", "u4", "#1"]).await.unwrap();
    assert_eq!(got, [0, 3]);
    assert_eq!(q::<Vec<i64>>(&mut c, &["BITFIELD_RO", "bf", "GET", "i8", "0"]).await.unwrap(), [44]);
    assert!(err(&mut c, &["BITFIELD_RO", "bf", "SET", "i8", "0", "1"]).await.contains("only supports the GET"));
    assert!(err(&mut c, &["BITFIELD", "bf", "GET", "u64", "0"]).await.contains("Invalid bitfield type"));
    assert!(err(&mut c, &["BITFIELD", "bf", "OVERFLOW", "NOPE"]).await.contains("Invalid OVERFLOW type"));
    let _: i64 = q(&mut c, &["LPUSH", "list", "a"]).await.unwrap();
    assert!(err(&mut c, &["SETBIT", "list", "0", "1"]).await.starts_with("WRONGTYPE"));

    // HyperLogLog: Redis's exact estimates for the same elements.
    assert_eq!(int(&mut c, &["PFADD", "h", "a", "b", "c", "d", "e", "f", "g"]).await, 1);
    assert_eq!(int(&mut c, &["PFADD", "h", "a"]).await, 0);
    assert_eq!(int(&mut c, &["PFCOUNT", "h"]).await, 7);
    assert_eq!(int(&mut c, &["PFADD", "empty"]).await, 1);
    assert_eq!(int(&mut c, &["PFCOUNT", "empty", "nokey"]).await, 0);
    let mut pipe = redis::pipe();
    for chunk in 0..20 {
        let mut pfadd = cmd("PFADD");
        pfadd.arg("many");
        for i in 0..1000 {
            pfadd.arg(format!("k{}", chunk * 1000 + i));
        }
        pipe.add_command(pfadd).ignore();
    }
    let _: () = pipe.query_async(&mut c).await.unwrap();
    // redis-server 7.0 answers 20107 for k0..k19999.
    let many = int(&mut c, &["PFCOUNT", "many"]).await;
    assert_eq!(many, 20107);
    assert_eq!(q::<String>(&mut c, &["PFMERGE", "merged", "h", "many"]).await.unwrap(), "OK");
    assert_eq!(int(&mut c, &["PFCOUNT", "merged"]).await, int(&mut c, &["PFCOUNT", "h", "many"]).await);
    assert!(err(&mut c, &["PFADD", "s", "x"]).await.contains("Key is not a valid HyperLogLog string value."));
    assert!(err(&mut c, &["PFCOUNT", "list"]).await.starts_with("WRONGTYPE"));

    // Replicated as commands, the replica holds the same bits and registers.
    let _: i64 = q(&mut c, &["WAIT", "1", "5000"]).await.unwrap();
    let mut r = redis_conn(reader).await;
    assert_eq!(
        q::<Vec<u8>>(&mut r, &["GET", "bf"]).await.unwrap(),
        q::<Vec<u8>>(&mut c, &["GET", "bf"]).await.unwrap()
    );
    assert_eq!(int(&mut r, &["PFCOUNT", "many"]).await, many);
    // Byte for byte: "h" stayed sparse (replicated as PFADDs), "many" turned dense (replicated
    // as its value), both with the estimate cached by PFCOUNT.
    for key in ["h", "many", "merged", "empty"] {
        let primary: Vec<u8> = q(&mut c, &["GET", key]).await.unwrap();
        assert_eq!(q::<Vec<u8>>(&mut r, &["GET", key]).await.unwrap(), primary, "{key}");
    }
    assert_eq!(q::<String>(&mut c, &["PFDEBUG", "ENCODING", "h"]).await.unwrap(), "sparse");
    assert_eq!(q::<String>(&mut c, &["PFDEBUG", "ENCODING", "many"]).await.unwrap(), "dense");
}
