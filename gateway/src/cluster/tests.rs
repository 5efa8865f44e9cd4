//! Cluster-mode decisions on a three-node-group table, without any I/O.

use ferrocache_common::command::lookup;
use ferrocache_proto::internal::v1 as pb;

use super::*;
use crate::router::Table;

/// Node groups 0001-0003 over the even slot split; member ports 7002.. (primary, replica).
fn table() -> Table {
    let ranges = ferrocache_common::slot::even_ranges(3);
    let shard = |i: usize| pb::ShardRoute {
        node_group_id: format!("{:04}", i + 1),
        config_epoch: 1 + i as u64,
        slots: vec![pb::SlotRange { start: ranges[i].0 as u32, end: ranges[i].1 as u32 }],
        members: (0..2)
            .map(|m| pb::MemberRoute {
                node_id: format!("c1-{:04}-{:03}", i + 1, m + 1),
                datanode_address: format!("127.0.0.1:{}", 9000 + i * 2 + m),
                role: if m == 0 { pb::Role::Primary as i32 } else { pb::Role::Replica as i32 },
                zone: "a".into(),
                in_sync: true,
                port: (7002 + i * 2 + m) as u32,
            })
            .collect(),
    };
    Table::from_proto(pb::Topology {
        version: 1,
        groups: vec![pb::GroupRoute {
            replication_group_id: "c1".into(),
            status: "available".into(),
            primary_port: 7000,
            reader_port: 7001,
            node_groups: (0..3).map(shard).collect(),
            parameters: Default::default(),
            cluster_enabled: true,
            configuration_port: 7002,
            acl_users: vec![],
            transit_encryption: String::new(),
        }],
        gateways: vec![],
    })
}

fn args(words: &[&str]) -> Vec<Bytes> {
    words.iter().map(|w| Bytes::copy_from_slice(w.as_bytes())).collect()
}

fn decide(port: u16, words: &[&str], readonly: bool) -> NodeRoute {
    let t = table();
    let a = args(words);
    node_route(
        &t.groups["c1"],
        port,
        crate::cluster::Hosts { all: &[], me: "127.0.0.1" },
        lookup(a[0].as_ref()).unwrap(),
        &a,
        readonly,
    )
}

#[test]
fn node_ids_are_stable_and_distinct() {
    let a = node_name("c1-0001-001");
    assert_eq!(a.len(), 40);
    assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(a, node_name("c1-0001-001"));
    assert_ne!(a, node_name("c1-0001-002"));
}

#[test]
fn keys_of_another_node_group_are_moved_to_its_primary() {
    // "foo" is slot 12182 (node group 0003, primary port 7006); "bar" is 5061 (0001).
    assert_eq!(decide(7002, &["GET", "foo"], false), NodeRoute::Reply(Reply::error("MOVED 12182 127.0.0.1:7006")));
    assert_eq!(
        decide(7002, &["GET", "bar"], false),
        NodeRoute::Slot { slot: 5061, kind: EndpointKind::Primary, member: None }
    );
    assert_eq!(decide(7002, &["MGET", "bar", "foo"], false), NodeRoute::Reply(Reply::error(CROSSSLOT)));
    assert_eq!(
        decide(7002, &["MGET", "{bar}1", "{bar}2"], false),
        NodeRoute::Slot { slot: 5061, kind: EndpointKind::Primary, member: None }
    );
}

#[test]
fn replicas_serve_reads_only_after_readonly() {
    // 7003 is node group 0001's replica.
    assert_eq!(decide(7003, &["GET", "bar"], false), NodeRoute::Reply(Reply::error("MOVED 5061 127.0.0.1:7002")));
    assert_eq!(
        decide(7003, &["GET", "bar"], true),
        NodeRoute::Slot { slot: 5061, kind: EndpointKind::Reader, member: Some("c1-0001-002".into()) }
    );
    assert_eq!(decide(7003, &["SET", "bar", "x"], true), NodeRoute::Reply(Reply::error("MOVED 5061 127.0.0.1:7002")));
    assert_eq!(
        decide(7004, &["DBSIZE"], false),
        NodeRoute::Shard { index: 1, kind: EndpointKind::Primary, member: None }
    );
}

#[test]
fn cluster_commands_describe_the_node_groups() {
    let t = table();
    let g = t.groups.get("c1");
    let now = |words: &[&str], port| match command(
        g,
        port,
        crate::cluster::Hosts { all: &[], me: "127.0.0.1" },
        &args(words),
    ) {
        ClusterReply::Now(r) => r,
        ClusterReply::Forward { .. } => panic!("forwarded"),
    };
    let Reply::Array(slots) = now(&["CLUSTER", "SLOTS"], 7002) else { panic!("array") };
    assert_eq!(slots.len(), 3);
    let Reply::Array(first) = &slots[0] else { panic!("array") };
    assert_eq!(first[..2], [Reply::Integer(0), Reply::Integer(5461)]);
    assert_eq!(first.len(), 4, "range, primary, replica");
    let Reply::Verbatim(nodes) = now(&["CLUSTER", "NODES"], 7004) else { panic!("text") };
    let nodes = String::from_utf8_lossy(&nodes).to_string();
    assert_eq!(nodes.lines().count(), 6);
    let mine = nodes.lines().find(|l| l.contains("myself")).unwrap();
    assert!(mine.contains("127.0.0.1:7004@17004 myself,master - 0 0 2 connected 5462-10922"), "{mine}");
    let Reply::Verbatim(info) = now(&["CLUSTER", "INFO"], 7002) else { panic!("text") };
    let info = String::from_utf8_lossy(&info).to_string();
    assert!(info.contains("cluster_state:ok\r\n") && info.contains("cluster_size:3\r\n"), "{info}");
    assert_eq!(now(&["CLUSTER", "KEYSLOT", "foo"], 7002), Reply::Integer(12182));
    assert_eq!(now(&["CLUSTER", "MYID"], 7003), Reply::Bulk(Bytes::from(node_name("c1-0001-002"))));
    assert!(matches!(
        command(g, 7002, crate::cluster::Hosts { all: &[], me: "h" }, &args(&["CLUSTER", "COUNTKEYSINSLOT", "12"])),
        ClusterReply::Forward { slot: 12, .. }
    ));
    assert_eq!(now(&["CLUSTER", "COUNTKEYSINSLOT", "16384"], 7002), Reply::error("ERR Invalid or out of range slot"));
    assert!(matches!(now(&["CLUSTER", "MEET", "h", "1"], 7002), Reply::Error(_)));
    assert_eq!(now(&["CLUSTER", "SLOTS"], 1), now(&["CLUSTER", "SLOTS"], 7002), "any endpoint describes the cluster");
    assert_eq!(
        match command(None, 1, crate::cluster::Hosts { all: &[], me: "h" }, &args(&["CLUSTER", "SLOTS"])) {
            ClusterReply::Now(r) => r,
            _ => panic!(),
        },
        Reply::error(DISABLED)
    );
}

/// A 500-node-group group; one slot move between the first two node groups.
#[test]
fn one_slot_move_touches_only_the_moved_slots() {
    let ranges = ferrocache_common::slot::even_ranges(500);
    let topology = |moved: bool| {
        let shard = |i: usize| {
            let mut slots = vec![pb::SlotRange { start: ranges[i].0 as u32, end: ranges[i].1 as u32 }];
            if moved && i == 0 {
                slots[0].end -= 1;
            }
            if moved && i == 1 {
                slots.insert(0, pb::SlotRange { start: ranges[0].1 as u32, end: ranges[0].1 as u32 });
            }
            pb::ShardRoute {
                node_group_id: format!("{:04}", i + 1),
                config_epoch: 1,
                slots,
                members: vec![pb::MemberRoute {
                    node_id: format!("h-{i}"),
                    datanode_address: "127.0.0.1:1".into(),
                    role: pb::Role::Primary as i32,
                    zone: "a".into(),
                    in_sync: true,
                    port: 30_000 + i as u32,
                }],
            }
        };
        let group = |id: &str| pb::GroupRoute {
            replication_group_id: id.into(),
            status: "available".into(),
            primary_port: 1,
            reader_port: 2,
            node_groups: (0..500).map(shard).collect(),
            parameters: Default::default(),
            cluster_enabled: true,
            configuration_port: 30_000,
            acl_users: vec![],
            transit_encryption: String::new(),
        };
        let mut other = group("other");
        if moved {
            // The other group is unchanged in the second topology.
            other = group("other");
            other.node_groups = (0..500)
                .map(|i| {
                    let mut s = shard(i);
                    s.slots = vec![pb::SlotRange { start: ranges[i].0 as u32, end: ranges[i].1 as u32 }];
                    s
                })
                .collect();
        }
        pb::Topology { version: 1 + moved as u64, groups: vec![group("huge"), other], gateways: vec![] }
    };
    let before = Table::from_proto(topology(false));
    let after = Table::from_proto_after(topology(true), Some(&before));
    let moved = ranges[0].1;
    assert_eq!(before.groups["huge"].shard_of(moved).map(|(i, _)| i), Some(0));
    assert_eq!(after.groups["huge"].shard_of(moved).map(|(i, _)| i), Some(1));
    for slot in 0..16384u16 {
        if slot != moved {
            assert_eq!(
                before.groups["huge"].shard_of(slot).map(|(i, _)| i),
                after.groups["huge"].shard_of(slot).map(|(i, _)| i)
            );
        }
    }
    assert!(
        before.groups["other"].shares_slot_index(&after.groups["other"]),
        "an unchanged group's slot index is shared, not rebuilt"
    );
}

#[test]
fn node_groups_are_spread_over_the_gateways() {
    let t = table();
    let g = t.groups.get("c1");
    let all = ["10.0.0.1".to_string(), "10.0.0.2".to_string()];
    let hosts = |me| crate::cluster::Hosts { all: &all, me };
    let ClusterReply::Now(Reply::Array(slots)) = command(g, 7002, hosts("10.0.0.1"), &args(&["CLUSTER", "SLOTS"]))
    else {
        panic!("array")
    };
    let host_of = |r: &Reply| match r {
        Reply::Array(e) => match &e[2] {
            Reply::Array(node) => node[0].clone(),
            _ => panic!("node"),
        },
        _ => panic!("range"),
    };
    let seen: Vec<Reply> = slots.iter().map(host_of).collect();
    assert_eq!(
        seen,
        ["10.0.0.1", "10.0.0.2", "10.0.0.1"].map(|h| Reply::Bulk(Bytes::copy_from_slice(h.as_bytes()))).to_vec()
    );
    // The same view from the other gateway; MOVED names the owner's gateway.
    let ClusterReply::Now(other) = command(g, 7002, hosts("10.0.0.2"), &args(&["CLUSTER", "SLOTS"])) else {
        panic!("now")
    };
    assert_eq!(other, Reply::Array(slots));
    let moved =
        node_route(&t.groups["c1"], 7002, hosts("10.0.0.1"), lookup(b"GET").unwrap(), &args(&["GET", "c"]), false);
    assert_eq!(moved, NodeRoute::Reply(Reply::error("MOVED 7365 10.0.0.2:7004")));
    // CLUSTER NODES marks "myself" where this gateway presents the port.
    let ClusterReply::Now(Reply::Verbatim(nodes)) = command(g, 7004, hosts("10.0.0.2"), &args(&["CLUSTER", "NODES"]))
    else {
        panic!("text")
    };
    let nodes = String::from_utf8_lossy(&nodes).to_string();
    assert!(nodes.lines().any(|l| l.contains("10.0.0.2:7004@17004 myself,master")), "{nodes}");
}
