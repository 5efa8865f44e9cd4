//! Authentication and users from outside: an AUTH token with rotation, ElastiCache RBAC
//! users enforced by the gateway (commands, keys, channels), and bad admin input refused.

mod support;

use std::time::Duration;

use ferrocache_proto::admin::v1 as api;
use support::{err, q, raw_exchange, Cluster, Conn, Options};

const PING: &[u8] = b"*1\r\n$4\r\nPING\r\n";

/// A connection that logs in as `user` (None: the 1-argument AUTH) before anything else.
async fn login(port: u16, user: Option<&str>, password: &str) -> redis::RedisResult<Conn> {
    let url = match user {
        Some(u) => format!("redis://{u}:{password}@127.0.0.1:{port}/"),
        None => format!("redis://:{password}@127.0.0.1:{port}/"),
    };
    let client = redis::Client::open(url)?;
    tokio::time::timeout(Duration::from_secs(5), client.get_multiplexed_async_connection())
        .await
        .unwrap_or_else(|_| panic!("login to {port} timed out"))
}

/// Whether a fresh connection with the 1-argument AUTH `token` can run PING.
async fn token_works(port: u16, token: &str) -> bool {
    match login(port, None, token).await {
        Ok(mut c) => q::<String>(&mut c, &["PING"]).await.is_ok_and(|p| p == "PONG"),
        Err(_) => false,
    }
}

async fn modify(cluster: &Cluster, req: api::ModifyReplicationGroupRequest) -> Result<(), tonic::Status> {
    cluster.admin(0).await.modify_replication_group(req).await.map(|_| ())
}

fn redis_cli(port: u16, args: &[&str]) -> Option<String> {
    let out = std::process::Command::new("redis-cli").arg("-p").arg(port.to_string()).args(args).output().ok()?;
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_token_is_required_and_rotates_without_cutting_clients_off() {
    let cluster = Cluster::start(Options { datanodes: 2, ..Default::default() });
    let first = "first-token-0123456789";
    let second = "second-token-0123456789";
    let (port, reader) = cluster
        .create(api::CreateReplicationGroupRequest {
            replication_group_id: "secure".into(),
            replicas_per_node_group: Some(1),
            auth_token: first.into(),
            ..Default::default()
        })
        .await;
    assert!(cluster.describe("secure").await.auth_token_enabled);

    // Without the token: NOAUTH for everything but AUTH/HELLO/QUIT, on both endpoints.
    for p in [port, reader] {
        let got = raw_exchange(p, PING, b"\r\n").await;
        assert_eq!(got, b"-NOAUTH Authentication required.\r\n");
    }
    let got = raw_exchange(port, b"*2\r\n$4\r\nAUTH\r\n$5\r\nwrong\r\n", b"\r\n").await;
    assert_eq!(got, b"-WRONGPASS invalid username-password pair or user is disabled.\r\n");
    let got = raw_exchange(port, b"*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n", b"\r\n").await;
    assert!(got.starts_with(b"-NOAUTH HELLO must be called"), "{}", String::from_utf8_lossy(&got));

    let mut c = login(port, None, first).await.expect("login with the token");
    let _: () = q(&mut c, &["SET", "k", "v"]).await.unwrap();
    assert_eq!(q::<String>(&mut c, &["GET", "k"]).await.unwrap(), "v");
    let mut as_default = login(port, Some("default"), first).await.expect("AUTH default <token>");
    assert_eq!(q::<String>(&mut as_default, &["ACL", "WHOAMI"]).await.unwrap(), "default");

    if let Some(out) = redis_cli(port, &["PING"]) {
        assert!(out.contains("NOAUTH"), "redis-cli without a password: {out}");
        assert_eq!(redis_cli(port, &["-a", first, "--no-auth-warning", "GET", "k"]).as_deref(), Some("v"));
    }

    // ROTATE: old and new both work until the rotation ends.
    modify(
        &cluster,
        api::ModifyReplicationGroupRequest {
            replication_group_id: "secure".into(),
            auth_token: second.into(),
            auth_token_update_strategy: "ROTATE".into(),
            ..Default::default()
        },
    )
    .await
    .expect("rotate");
    support::eventually(Duration::from_secs(10), "the new token works", || token_works(port, second)).await;
    assert!(token_works(port, first).await, "the old token keeps working during a rotation");
    // A connection logged in before the rotation keeps working.
    assert_eq!(q::<String>(&mut c, &["GET", "k"]).await.unwrap(), "v");

    // SET ends the rotation: only the new token.
    modify(
        &cluster,
        api::ModifyReplicationGroupRequest {
            replication_group_id: "secure".into(),
            auth_token: second.into(),
            auth_token_update_strategy: "SET".into(),
            ..Default::default()
        },
    )
    .await
    .expect("set");
    support::eventually(Duration::from_secs(10), "the old token stops working", || async {
        !token_works(port, first).await
    })
    .await;
    assert!(token_works(port, second).await);

    // Bad token updates change nothing.
    for (token, strategy) in [("short", "ROTATE"), (second, "DELETE"), ("", "SET"), ("has space in it 0123", "SET")] {
        let r = modify(
            &cluster,
            api::ModifyReplicationGroupRequest {
                replication_group_id: "secure".into(),
                auth_token: token.into(),
                auth_token_update_strategy: strategy.into(),
                ..Default::default()
            },
        )
        .await;
        assert_eq!(r.unwrap_err().code(), tonic::Code::InvalidArgument, "{token:?} {strategy}");
    }
    assert!(token_works(port, second).await);

    // DELETE: no password needed any more.
    modify(
        &cluster,
        api::ModifyReplicationGroupRequest {
            replication_group_id: "secure".into(),
            auth_token_update_strategy: "DELETE".into(),
            ..Default::default()
        },
    )
    .await
    .expect("delete");
    support::eventually(Duration::from_secs(10), "open again", || async {
        raw_exchange(port, PING, b"\r\n").await == b"+PONG\r\n"
    })
    .await;
    assert!(!cluster.describe("secure").await.auth_token_enabled);
}

async fn create_user(cluster: &Cluster, id: &str, name: &str, password: Option<&str>, access: &str) {
    cluster
        .admin(0)
        .await
        .create_user(api::CreateUserRequest {
            user_id: id.into(),
            user_name: name.into(),
            passwords: password.into_iter().map(String::from).collect(),
            no_password_required: password.is_none(),
            access_string: access.into(),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("create user {id}: {e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbac_users_are_limited_to_their_commands_keys_and_channels() {
    let cluster = Cluster::start(Options { datanodes: 2, ..Default::default() });
    let admin_pw = "admin-password-0123456";
    let app_pw = "app-password-0123456789";
    support::eventually(Duration::from_secs(20), "a coordinator leader", || async {
        cluster.admin(0).await.describe_users(api::DescribeUsersRequest::default()).await.is_ok()
    })
    .await;
    // The group's `default` is disabled: every client must log in as a named user.
    create_user(&cluster, "no-default", "default", None, "off ~* +@all").await;
    create_user(&cluster, "ops", "ops", Some(admin_pw), "on ~* &* +@all").await;
    create_user(
        &cluster,
        "app-reader",
        "app",
        Some(app_pw),
        "on ~app:* &news.* +@read +@connection +publish +subscribe +@transaction +acl|whoami",
    )
    .await;

    // Bad input is refused and changes nothing.
    let mut admin = cluster.admin(0).await;
    let bad_users = [
        ("bad-1", "x", Some("short"), "on ~* +@all"),
        ("bad-2", "x", Some(app_pw), "on ~* +nosuchcommand"),
        ("bad-3", "x", Some(app_pw), "on >inline-password ~*"),
        ("9bad", "x", Some(app_pw), "on ~* +@all"),
        ("bad-4", "has space", Some(app_pw), "on ~* +@all"),
    ];
    for (id, name, pw, access) in bad_users {
        let r = admin
            .create_user(api::CreateUserRequest {
                user_id: id.into(),
                user_name: name.into(),
                passwords: pw.into_iter().map(String::from).collect(),
                access_string: access.into(),
                ..Default::default()
            })
            .await;
        assert_eq!(r.unwrap_err().code(), tonic::Code::InvalidArgument, "{id}");
    }
    let no_default = admin
        .create_user_group(api::CreateUserGroupRequest {
            user_group_id: "lacks-default".into(),
            user_ids: vec!["ops".into()],
            ..Default::default()
        })
        .await;
    assert_eq!(no_default.unwrap_err().code(), tonic::Code::InvalidArgument);
    let users = admin.describe_users(api::DescribeUsersRequest::default()).await.unwrap().into_inner().users;
    let ids: Vec<&str> = users.iter().map(|u| u.user_id.as_str()).collect();
    assert_eq!(ids, vec!["default", "app-reader", "no-default", "ops"]);

    admin
        .create_user_group(api::CreateUserGroupRequest {
            user_group_id: "app-users".into(),
            user_ids: vec!["no-default".into(), "ops".into(), "app-reader".into()],
            ..Default::default()
        })
        .await
        .expect("user group");
    let both = admin
        .create_replication_group(api::CreateReplicationGroupRequest {
            replication_group_id: "both".into(),
            auth_token: admin_pw.into(),
            user_group_ids: vec!["app-users".into()],
            ..Default::default()
        })
        .await;
    assert_eq!(both.unwrap_err().code(), tonic::Code::InvalidArgument);
    let (port, _) = cluster
        .create(api::CreateReplicationGroupRequest {
            replication_group_id: "rbac".into(),
            replicas_per_node_group: Some(1),
            user_group_ids: vec!["app-users".into()],
            ..Default::default()
        })
        .await;
    assert_eq!(cluster.describe("rbac").await.user_group_ids, vec!["app-users"]);
    let in_use = admin.delete_user(api::DeleteUserRequest { user_id: "app-reader".into() }).await;
    assert_eq!(in_use.unwrap_err().code(), tonic::Code::FailedPrecondition);

    assert_eq!(raw_exchange(port, PING, b"\r\n").await, b"-NOAUTH Authentication required.\r\n");
    assert!(login(port, Some("app"), admin_pw).await.is_err(), "another user's password");
    assert!(login(port, Some("default"), "anything-at-all-0123").await.is_err(), "default is off");

    let mut ops = login(port, Some("ops"), admin_pw).await.expect("ops logs in");
    let _: () = q(&mut ops, &["SET", "app:1", "v1"]).await.unwrap();
    let _: () = q(&mut ops, &["SET", "private", "secret"]).await.unwrap();

    let mut app = login(port, Some("app"), app_pw).await.expect("app logs in");
    assert_eq!(q::<String>(&mut app, &["ACL", "WHOAMI"]).await.unwrap(), "app");
    assert_eq!(q::<String>(&mut app, &["GET", "app:1"]).await.unwrap(), "v1");
    assert_eq!(
        err(&mut app, &["GET", "private"]).await,
        "NOPERM: User app has no permissions to access the 'private' key"
    );
    assert_eq!(
        err(&mut app, &["SET", "app:1", "x"]).await,
        "NOPERM: User app has no permissions to run the 'set' command"
    );
    assert!(err(&mut app, &["MGET", "app:1", "private"]).await.contains("'private' key"));
    assert!(err(&mut app, &["FLUSHALL"]).await.contains("'flushall' command"));
    assert_eq!(q::<i64>(&mut app, &["PUBLISH", "news.today", "hi"]).await.unwrap(), 0);
    assert!(err(&mut app, &["PUBLISH", "secret-channel", "hi"]).await.contains("'secret-channel' channel"));
    // A denied command inside MULTI dooms the transaction.
    let _: () = q(&mut app, &["MULTI"]).await.unwrap();
    assert!(err(&mut app, &["SET", "app:2", "x"]).await.contains("NOPERM"));
    let exec = err(&mut app, &["EXEC"]).await;
    assert!(exec.contains("EXECABORT") || exec.contains("discarded"), "{exec}");

    // ACL introspection, as Redis answers it.
    let users: Vec<String> = q(&mut ops, &["ACL", "USERS"]).await.unwrap();
    assert_eq!(users, vec!["app", "default", "ops"]);
    let dry: String = q(&mut ops, &["ACL", "DRYRUN", "app", "SET", "app:1", "x"]).await.unwrap();
    assert_eq!(dry, "User app has no permissions to run the 'set' command");
    let dry: String = q(&mut ops, &["ACL", "DRYRUN", "app", "GET", "app:1"]).await.unwrap();
    assert_eq!(dry, "OK");
    let list: Vec<String> = q(&mut ops, &["ACL", "LIST"]).await.unwrap();
    assert!(list.iter().any(|l| l.starts_with("user app on ") && l.contains("~app:*")), "{list:?}");
    let log: Vec<redis::Value> = q(&mut ops, &["ACL", "LOG"]).await.unwrap();
    assert!(!log.is_empty(), "denials are logged");
    assert!(err(&mut app, &["ACL", "LOG"]).await.contains("'acl|log' command"));
    assert!(err(&mut ops, &["ACL", "SETUSER", "x", "on"]).await.contains("admin API"));

    // A subscriber whose user loses the channel is disconnected (as Redis does), even while
    // it sends nothing.
    let mut subscriber = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let hello = format!(
        "*3\r\n$4\r\nAUTH\r\n$3\r\napp\r\n${}\r\n{app_pw}\r\n*2\r\n$9\r\nSUBSCRIBE\r\n$10\r\nnews.today\r\n",
        app_pw.len()
    );
    let got = exchange(&mut subscriber, hello.as_bytes(), b":1\r\n").await;
    assert!(got.ends_with(b":1\r\n"), "{}", String::from_utf8_lossy(&got));

    // A change through the admin API reaches connections already logged in.
    admin
        .modify_user(api::ModifyUserRequest {
            user_id: "app-reader".into(),
            append_access_string: "+set".into(),
            ..Default::default()
        })
        .await
        .expect("modify user");
    support::eventually(Duration::from_secs(10), "SET allowed after ModifyUser", || {
        let mut app = app.clone();
        async move { q::<()>(&mut app, &["SET", "app:2", "x"]).await.is_ok() }
    })
    .await;
    admin
        .modify_user(api::ModifyUserRequest {
            user_id: "app-reader".into(),
            access_string: "on ~app:* &other.* +@read +@connection +set +subscribe +@transaction +acl|whoami".into(),
            ..Default::default()
        })
        .await
        .expect("modify user channels");
    let mut buf = [0u8; 64];
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        use tokio::io::AsyncReadExt;
        loop {
            match subscriber.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the subscriber that lost news.* is disconnected");

    // Removed from the user group: the user's connections close, and it can no longer log in.
    admin
        .modify_user_group(api::ModifyUserGroupRequest {
            user_group_id: "app-users".into(),
            user_ids_to_remove: vec!["app-reader".into()],
            ..Default::default()
        })
        .await
        .expect("remove user");
    support::eventually(Duration::from_secs(10), "app can no longer log in", || async {
        login(port, Some("app"), app_pw).await.is_err()
    })
    .await;
    assert!(q::<String>(&mut app, &["GET", "app:1"]).await.is_err(), "the removed user's connection is closed");

    let python =
        std::process::Command::new("python3").args(["-c", "import redis"]).stderr(std::process::Stdio::null()).status();
    if python.is_ok_and(|s| s.success()) {
        let script = format!(
            "import redis\nr = redis.Redis(port={port}, username='ops', password='{admin_pw}')\nprint(r.get('app:1').decode())\n"
        );
        let out = std::process::Command::new("python3").args(["-c", &script]).output().expect("python3");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "v1", "{}", String::from_utf8_lossy(&out.stderr));
    }
}

/// Internal RPCs and the admin API with a cluster secret: the cluster works (heartbeats,
/// Raft, topology, data and replication all carry it), and a process without it, or with a
/// wrong one, is refused everywhere but health checks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_without_the_cluster_secret_can_call_nothing() {
    use ferrocache_proto::internal::v1 as pb;
    const SECRET: &str = "cluster-secret-for-tests-0123";
    // This test process calls the admin API as a member of the cluster; the other tests of
    // this binary talk to clusters without a secret, where the extra header is ignored.
    ferrocache_common::credentials::install(Some(SECRET)).unwrap();
    let cluster = Cluster::start(Options { coordinators: 3, datanodes: 2, secret: Some(SECRET), ..Default::default() });
    let (port, _) = cluster.create_group("guarded", 1, "everysec").await;
    let mut c = support::redis_conn(port).await;
    let _: () = q(&mut c, &["SET", "k", "v"]).await.unwrap();
    let g = cluster.describe("guarded").await;
    let datanode = format!("http://{}", g.node_groups[0].node_group_members[0].datanode_address);
    support::eventually(Duration::from_secs(10), "the replica syncs (replication carries the secret)", || async {
        cluster.describe("guarded").await.node_groups[0].node_group_members.iter().all(|m| m.member_status == "online")
    })
    .await;

    for bad in [None, Some("a-wrong-secret-0123456789")] {
        let plain = |uri: String| async move {
            let ch = tonic::transport::Endpoint::from_shared(uri).unwrap().connect().await.expect("connect");
            tonic::service::interceptor::InterceptedService::new(ch, move |mut r: tonic::Request<()>| {
                if let Some(b) = bad {
                    r.metadata_mut().insert(ferrocache_common::credentials::HEADER, b.parse().unwrap());
                }
                Ok(r)
            })
        };
        let refused = |what: &str, r: Result<(), tonic::Status>| match r {
            Err(s) if s.code() == tonic::Code::Unauthenticated => {}
            other => panic!("{what} with secret {bad:?}: {other:?}"),
        };
        for i in 0..3 {
            let ch = plain(cluster.endpoint(i)).await;
            let mut admin = api::admin_client::AdminClient::new(ch.clone());
            refused(
                "DescribeReplicationGroups",
                admin.describe_replication_groups(api::DescribeReplicationGroupsRequest::default()).await.map(|_| ()),
            );
            let create =
                api::CreateReplicationGroupRequest { replication_group_id: "intruder".into(), ..Default::default() };
            refused("CreateReplicationGroup", admin.create_replication_group(create).await.map(|_| ()));
            let mut cl = pb::cluster_client::ClusterClient::new(ch.clone());
            let hb = pb::HeartbeatRequest {
                datanode_id: "datanode-1".into(),
                address: "127.0.0.1:1".into(),
                ..Default::default()
            };
            refused("Heartbeat", cl.heartbeat(hb).await.map(|_| ()));
            refused("WatchTopology", cl.watch_topology(pb::WatchTopologyRequest {}).await.map(|_| ()));
            let mut raft = pb::raft_client::RaftClient::new(ch);
            refused("Vote", raft.vote(pb::RaftPayload { data: b"{}".to_vec().into() }).await.map(|_| ()));
            refused(
                "AppendEntries",
                raft.append_entries(pb::RaftPayload { data: b"{}".to_vec().into() }).await.map(|_| ()),
            );
        }
        let ch = plain(datanode.clone()).await;
        let mut data = pb::data_client::DataClient::new(ch.clone());
        let batch = pb::CommandBatch {
            node_id: g.node_groups[0].node_group_members[0].cache_cluster_id.clone(),
            commands: vec![pb::Command {
                id: 1,
                request: Some(pb::command::Request::Data(pb::DataRequest {
                    args: vec!["GET".into(), "k".into()],
                    ..Default::default()
                })),
                readonly: true,
                keyed: true,
                ..Default::default()
            }],
            cancel: vec![],
        };
        refused("Execute", data.execute(tokio_stream::iter(vec![batch])).await.map(|_| ()));
        let mut repl = pb::replication_client::ReplicationClient::new(ch);
        refused(
            "FetchSnapshot",
            repl.fetch_snapshot(pb::FetchSnapshotRequest { snapshot_name: "x".into() }).await.map(|_| ()),
        );
        refused("ExportSlots", repl.export_slots(pb::ExportSlotsRequest::default()).await.map(|_| ()));
    }
    // Health checks stay open for probes.
    let ch = tonic::transport::Endpoint::from_shared(cluster.endpoint(0)).unwrap().connect().await.unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(ch);
    health.check(tonic_health::pb::HealthCheckRequest { service: String::new() }).await.expect("health is open");
    // The data is untouched and the cluster keeps serving.
    assert_eq!(q::<String>(&mut c, &["GET", "k"]).await.unwrap(), "v");
}

/// A TLS connection to the gateway on `port`, trusting the cluster's CA.
async fn tls_connect(
    cluster: &Cluster,
    port: u16,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_file_iter(cluster.tls_ca()).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    tokio::time::timeout(Duration::from_secs(5), connector.connect(name, tcp)).await?
}

/// Sends `request` on `stream` and reads until the reply ends with `want` (or 5 s pass,
/// or the server closes).
async fn exchange<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    stream: &mut S,
    request: &[u8],
    want: &[u8],
) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut got = Vec::new();
    if stream.write_all(request).await.is_err() {
        return got;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !got.ends_with(want) {
        let mut buf = [0u8; 1024];
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => got.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_endpoints_serve_tls_clients_and_refuse_plain_text_when_required() {
    let cluster = Cluster::start(Options { datanodes: 2, gateway_tls: true, ..Default::default() });
    let token = "tls-token-0123456789ab";
    let (required, _) = cluster
        .create(api::CreateReplicationGroupRequest {
            replication_group_id: "tls-required".into(),
            replicas_per_node_group: Some(1),
            transit_encryption_enabled: Some(true),
            auth_token: token.into(),
            ..Default::default()
        })
        .await;
    let g = cluster.describe("tls-required").await;
    assert!(g.transit_encryption_enabled);
    assert_eq!(g.transit_encryption_mode, "required");

    let mut tls = tls_connect(&cluster, required).await.expect("TLS handshake");
    let auth = format!("*2\r\n$4\r\nAUTH\r\n${}\r\n{token}\r\n", token.len());
    assert_eq!(exchange(&mut tls, auth.as_bytes(), b"\r\n").await, b"+OK\r\n");
    assert_eq!(exchange(&mut tls, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\nv1\r\n", b"\r\n").await, b"+OK\r\n");
    assert_eq!(exchange(&mut tls, b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", b"v1\r\n").await, b"$2\r\nv1\r\n");
    // Plain text on a TLS-only endpoint: closed without a reply.
    let mut plain = tokio::net::TcpStream::connect(("127.0.0.1", required)).await.unwrap();
    assert_eq!(exchange(&mut plain, PING, b"\r\n").await, b"");

    // redis-cli with the generated CA, when this redis-cli was built with TLS.
    let help = std::process::Command::new("redis-cli").arg("--help").output();
    if help.is_ok_and(|o| {
        String::from_utf8_lossy(&o.stdout).contains("--tls") || String::from_utf8_lossy(&o.stderr).contains("--tls")
    }) {
        let ca = cluster.tls_ca().display().to_string();
        let out = redis_cli(required, &["--tls", "--cacert", &ca, "-a", token, "--no-auth-warning", "GET", "k"]);
        assert_eq!(out.as_deref(), Some("v1"));
    }
    // Turning TLS off goes through "preferred" (as ElastiCache): both are served there.
    let off = api::ModifyReplicationGroupRequest {
        replication_group_id: "tls-required".into(),
        transit_encryption_enabled: Some(false),
        ..Default::default()
    };
    assert_eq!(modify(&cluster, off.clone()).await.unwrap_err().code(), tonic::Code::InvalidArgument);
    modify(
        &cluster,
        api::ModifyReplicationGroupRequest {
            replication_group_id: "tls-required".into(),
            transit_encryption_mode: "preferred".into(),
            ..Default::default()
        },
    )
    .await
    .expect("preferred");
    support::eventually(Duration::from_secs(10), "plain text served in preferred mode", || async {
        let Ok(mut plain) = tokio::net::TcpStream::connect(("127.0.0.1", required)).await else { return false };
        exchange(&mut plain, PING, b"\r\n").await == b"-NOAUTH Authentication required.\r\n"
    })
    .await;
    let mut tls = tls_connect(&cluster, required).await.expect("TLS still served");
    assert_eq!(exchange(&mut tls, PING, b"\r\n").await, b"-NOAUTH Authentication required.\r\n");
    modify(&cluster, off).await.expect("off from preferred");
    assert!(!cluster.describe("tls-required").await.transit_encryption_enabled);

    // Bad combinations are refused.
    let bad = api::CreateReplicationGroupRequest {
        replication_group_id: "bad-tls".into(),
        transit_encryption_mode: "required".into(),
        ..Default::default()
    };
    let r = cluster.admin(0).await.create_replication_group(bad).await;
    assert_eq!(r.unwrap_err().code(), tonic::Code::InvalidArgument);
}

/// Groups sharing a gateway do not see each other's clients: CLIENT LIST, INFO clients,
/// CLIENT KILL and CLIENT UNBLOCK of one group reach its own connections only, and one
/// group's connections do not count against another's maxclients.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_sees_and_kills_only_its_own_clients() {
    let cluster = Cluster::start(Options {
        coordinators: 1,
        datanodes: 1,
        gateway: true,
        gateway_args: &["--maxclients", "3"],
        ..Default::default()
    });
    let (port_a, _) = cluster.create_group("tenant-a", 0, "everysec").await;
    let (port_b, _) = cluster.create_group("tenant-b", 0, "everysec").await;
    // Group b's clients fill its maxclients; a's first client still gets in.
    let mut b_extra = Vec::new();
    for _ in 0..2 {
        b_extra.push(support::redis_conn(port_b).await);
    }
    let mut b = support::redis_conn(port_b).await;
    let refused = support::raw_exchange(port_b, b"PING\r\n", b"reached\r\n").await;
    assert!(refused.ends_with(b"-ERR max number of clients reached\r\n"), "{}", String::from_utf8_lossy(&refused));
    let mut a = support::redis_conn(port_a).await;
    let id_a: i64 = q(&mut a, &["CLIENT", "ID"]).await.unwrap();
    let id_b: i64 = q(&mut b, &["CLIENT", "ID"]).await.unwrap();

    let list: String = q(&mut a, &["CLIENT", "LIST"]).await.unwrap();
    assert!(list.contains(&format!("id={id_a} ")) && !list.contains(&format!("id={id_b} ")), "{list}");
    let list: String = q(&mut a, &["CLIENT", "LIST", "ID", &id_b.to_string()]).await.unwrap();
    assert_eq!(list, "");
    let info: String = q(&mut a, &["INFO", "clients"]).await.unwrap();
    assert!(info.contains("connected_clients:1\r\n"), "{info}");

    // Nothing of group b is reachable from group a.
    assert_eq!(q::<i64>(&mut a, &["CLIENT", "KILL", "TYPE", "normal"]).await.unwrap(), 0);
    assert_eq!(q::<i64>(&mut a, &["CLIENT", "KILL", "ID", &id_b.to_string()]).await.unwrap(), 0);
    assert_eq!(q::<i64>(&mut a, &["CLIENT", "UNBLOCK", &id_b.to_string()]).await.unwrap(), 0);
    assert!(err(&mut a, &["CLIENT", "TRACKING", "ON", "REDIRECT", &id_b.to_string()]).await.contains("does not exist"));
    assert_eq!(q::<String>(&mut b, &["PING"]).await.unwrap(), "PONG");
    // INFO's traffic counters are each group's, and so is CONFIG RESETSTAT.
    for _ in 0..20 {
        let _: String = q(&mut b, &["PING"]).await.unwrap();
    }
    let _: String = q(&mut a, &["CONFIG", "RESETSTAT"]).await.unwrap();
    let processed = |info: &str| -> i64 {
        info.lines().find_map(|l| l.strip_prefix("total_commands_processed:")?.trim().parse().ok()).unwrap()
    };
    let stats_a: String = q(&mut a, &["INFO", "stats"]).await.unwrap();
    let stats_b: String = q(&mut b, &["INFO", "stats"]).await.unwrap();
    assert!(processed(&stats_a) <= 2 && processed(&stats_b) >= 20, "{stats_a}\n{stats_b}");
    // Nor its ACL LOG: a failed login on b is b's.
    assert!(err(&mut b, &["AUTH", "nobody", "wrong"]).await.contains("WRONGPASS"));
    assert_eq!(q::<Vec<redis::Value>>(&mut a, &["ACL", "LOG"]).await.unwrap().len(), 0);
    assert_eq!(q::<Vec<redis::Value>>(&mut b, &["ACL", "LOG"]).await.unwrap().len(), 1);
    // Its own clients it reaches as before.
    assert_eq!(q::<i64>(&mut b, &["CLIENT", "KILL", "ID", &id_b.to_string(), "SKIPME", "no"]).await.unwrap(), 1);
}
