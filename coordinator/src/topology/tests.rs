use super::*;

fn group(id: &str) -> ReplicationGroup {
    ReplicationGroup {
        id: id.into(),
        description: String::new(),
        status: GroupStatus::Creating,
        append_fsync: "everysec".into(),
        primary_port: 0,
        reader_port: 0,
        created_ms: 1,
        node_groups: vec![NodeGroup {
            id: "0001".into(),
            config_epoch: 1,
            slots: vec![(0, 16383)],
            members: vec![Member {
                node_id: format!("{id}-001"),
                datanode_id: "dn1".into(),
                role: Role::Primary,
                preferred_az: "a".into(),
                status: MemberStatus::Creating,
                port: 0,
            }],
            handoff: None,
        }],
        durability: Durability::default(),
        automatic_failover: true,
        multi_az: false,
        snapshot_retention_limit: 0,
        snapshot_window: "05:00-06:00".into(),
        restored_from: None,
        parameters: Default::default(),
        cluster_enabled: false,
        configuration_port: 0,
        resharding: None,
        auth_tokens: Vec::new(),
        auth_token_modified_ms: 0,
        user_group_ids: Vec::new(),
        transit_encryption: None,
    }
}

fn replica(group: &str, n: usize, datanode: &str) -> Member {
    Member {
        node_id: format!("{group}-{n:03}"),
        datanode_id: datanode.into(),
        role: Role::Replica,
        preferred_az: "b".into(),
        status: MemberStatus::Online,
        port: 0,
    }
}

#[test]
fn ports_are_allocated_in_pairs_and_checked() {
    let mut t = Topology::default();
    let Outcome::Group(g) =
        t.apply(Change::CreateReplicationGroup { group: group("a").into(), requested_port: None, port_base: 6379 })
    else {
        panic!()
    };
    assert_eq!((g.primary_port, g.reader_port), (6379, 6380));
    let Outcome::Group(g) =
        t.apply(Change::CreateReplicationGroup { group: group("b").into(), requested_port: None, port_base: 6379 })
    else {
        panic!()
    };
    assert_eq!(g.primary_port, 6381);
    assert_eq!(
        t.apply(Change::CreateReplicationGroup {
            group: group("c").into(),
            requested_port: Some(6380),
            port_base: 6379
        }),
        Outcome::Rejected(Rejection::PortInUse(6380))
    );
    assert_eq!(
        t.apply(Change::CreateReplicationGroup { group: group("a").into(), requested_port: None, port_base: 6379 }),
        Outcome::Rejected(Rejection::AlreadyExists("a".into()))
    );
}

#[test]
fn cluster_mode_groups_get_a_port_per_member() {
    let mut t = Topology::default();
    t.apply(Change::CreateReplicationGroup { group: group("a").into(), requested_port: None, port_base: 6379 });
    let mut c = group("c");
    c.cluster_enabled = true;
    c.node_groups[0].members.push(replica("c", 2, "dn2"));
    let mut second = c.node_groups[0].clone();
    second.id = "0002".into();
    c.node_groups.push(second);
    let Outcome::Group(g) =
        t.apply(Change::CreateReplicationGroup { group: c.into(), requested_port: None, port_base: 6379 })
    else {
        panic!("created")
    };
    assert_eq!((g.primary_port, g.reader_port, g.configuration_port), (6381, 6382, 6383));
    let ports: Vec<u16> = g.members().map(|(_, m)| m.port).collect();
    assert_eq!(ports, vec![6383, 6384, 6385, 6386]);
    // The next group skips the whole block; a new member takes the next free port.
    let Outcome::Group(b) =
        t.apply(Change::CreateReplicationGroup { group: group("b").into(), requested_port: None, port_base: 6379 })
    else {
        panic!("created")
    };
    assert_eq!(b.primary_port, 6387);
    assert!(matches!(
        t.apply(Change::CreateReplicationGroup {
            group: group("d").into(),
            requested_port: Some(6385),
            port_base: 6379
        }),
        Outcome::Rejected(Rejection::PortInUse(6385))
    ));
    let Outcome::Group(g) = t.apply(Change::AddReplicas {
        group_id: "c".into(),
        members: vec![("0002".into(), replica("c", 9, "dn3"))],
        at_ms: 2,
    }) else {
        panic!("added")
    };
    assert_eq!(g.node_groups[1].members.last().map(|m| m.port), Some(6389));
}

#[test]
fn statuses_and_deletion_leave_events() {
    let mut t = Topology::default();
    t.apply(Change::CreateReplicationGroup { group: group("a").into(), requested_port: Some(7000), port_base: 6379 });
    t.apply(Change::SetStatuses {
        at_ms: 5,
        members: vec![("a".into(), "a-001".into(), MemberStatus::Online)],
        groups: vec![("a".into(), GroupStatus::Available)],
    });
    assert_eq!(t.groups["a"].status, GroupStatus::Available);
    assert_eq!(t.groups["a"].node_groups[0].members[0].status, MemberStatus::Online);
    assert!(matches!(t.apply(Change::DeleteReplicationGroup { id: "a".into(), at_ms: 9 }), Outcome::Group(_)));
    assert!(t.groups.is_empty());
    assert_eq!(
        t.apply(Change::DeleteReplicationGroup { id: "a".into(), at_ms: 9 }),
        Outcome::Rejected(Rejection::NotFound("a".into()))
    );
    assert!(t.events.iter().any(|e| e.message.contains("deleted")));
}

#[test]
fn failover_swaps_roles_and_raises_the_epoch() {
    let mut t = Topology::default();
    let mut g = group("a");
    g.node_groups[0].members.push(Member {
        node_id: "a-002".into(),
        datanode_id: "dn2".into(),
        role: Role::Replica,
        preferred_az: "b".into(),
        status: MemberStatus::Online,
        port: 0,
    });
    t.apply(Change::CreateReplicationGroup { group: g.into(), requested_port: Some(7000), port_base: 6379 });
    let failover = |new: &str| Change::Failover {
        group_id: "a".into(),
        node_group_id: "0001".into(),
        new_primary: new.into(),
        reason: "test".into(),
        at_ms: 3,
    };
    assert_eq!(t.apply(failover("a-001")), Outcome::Rejected(Rejection::NotAReplica("a-001".into())));
    assert_eq!(t.apply(failover("a-002")), Outcome::Ok);
    let ng = &t.groups["a"].node_groups[0];
    assert_eq!(ng.config_epoch, 2);
    let roles: Vec<(&str, Role)> = ng.members.iter().map(|m| (m.node_id.as_str(), m.role)).collect();
    assert_eq!(roles, vec![("a-001", Role::Replica), ("a-002", Role::Primary)]);
    assert!(t.events.iter().any(|e| e.message.starts_with("Failover from a-001 to a-002")));
}

#[test]
fn planned_switch_begins_once_and_failover_ends_it() {
    let mut t = Topology::default();
    let mut g = group("a");
    g.node_groups[0].members.push(replica("a", 2, "dn2"));
    t.apply(Change::CreateReplicationGroup { group: g.into(), requested_port: Some(7000), port_base: 6379 });
    let begin = |target: &str| Change::BeginHandoff {
        group_id: "a".into(),
        node_group_id: "0001".into(),
        target: target.into(),
        reason: "TestFailover".into(),
        at_ms: 5,
    };
    assert_eq!(t.apply(begin("a-001")), Outcome::Rejected(Rejection::NotAReplica("a-001".into())));
    assert_eq!(t.apply(begin("a-002")), Outcome::Ok);
    assert_eq!(t.apply(begin("a-002")), Outcome::Rejected(Rejection::HandoffInProgress("0001".into())));
    t.apply(Change::Failover {
        group_id: "a".into(),
        node_group_id: "0001".into(),
        new_primary: "a-002".into(),
        reason: "planned".into(),
        at_ms: 6,
    });
    assert_eq!(t.groups["a"].node_groups[0].handoff, None);
    let abort =
        Change::AbortHandoff { group_id: "a".into(), node_group_id: "0001".into(), reason: "x".into(), at_ms: 7 };
    assert_eq!(t.apply(abort), Outcome::Rejected(Rejection::NoHandoff("0001".into())));
}

#[test]
fn replicas_come_and_go_but_never_the_primary() {
    let mut t = Topology::default();
    t.apply(Change::CreateReplicationGroup { group: group("a").into(), requested_port: Some(7000), port_base: 6379 });
    let add = Change::AddReplicas {
        group_id: "a".into(),
        members: vec![("0001".into(), replica("a", 2, "dn2")), ("0001".into(), replica("a", 3, "dn3"))],
        at_ms: 2,
    };
    assert!(matches!(t.apply(add.clone()), Outcome::Group(g) if g.replica_count() == 2));
    assert_eq!(t.apply(add), Outcome::Rejected(Rejection::MemberExists("a-002".into())));
    let remove = |ids: &[&str]| Change::RemoveReplicas {
        group_id: "a".into(),
        node_ids: ids.iter().map(|s| s.to_string()).collect(),
        at_ms: 3,
    };
    assert_eq!(t.apply(remove(&["a-001"])), Outcome::Rejected(Rejection::NotAReplica("a-001".into())));
    assert!(matches!(t.apply(remove(&["a-003"])), Outcome::Group(g) if g.replica_count() == 1));
    assert!(t.events.iter().any(|e| e.message.contains("a-003 removed")));
}

#[test]
fn modify_changes_settings_and_says_so() {
    let mut t = Topology::default();
    t.apply(Change::CreateReplicationGroup { group: group("a").into(), requested_port: Some(7000), port_base: 6379 });
    let settings = Settings {
        durability: Some(Durability { mode: DurabilityMode::Sync, min_replicas_to_ack: 1, max_replica_lag_ms: 1000 }),
        automatic_failover: Some(false),
        ..Default::default()
    };
    let Outcome::Group(g) = t.apply(Change::ModifyReplicationGroup { id: "a".into(), settings, at_ms: 4 }) else {
        panic!("modify failed")
    };
    assert_eq!(g.durability.mode, DurabilityMode::Sync);
    assert!(!g.automatic_failover);
    assert!(t
        .events
        .back()
        .is_some_and(|e| e.message.contains("durability sync") && e.message.contains("automatic failover disabled")));
}

#[test]
fn old_records_read_with_defaults() {
    let mut g = serde_json::to_value(group("a")).unwrap();
    let obj = g.as_object_mut().unwrap();
    obj.remove("durability");
    obj.remove("automatic_failover");
    obj.remove("multi_az");
    let back: ReplicationGroup = serde_json::from_value(g).unwrap();
    assert_eq!(back.durability, Durability::default());
    assert!(back.automatic_failover);
}

fn snapshot(name: &str, group: &str, automatic: bool) -> Snapshot {
    Snapshot {
        name: name.into(),
        group_id: group.into(),
        group_description: String::new(),
        node_id: format!("{group}-001"),
        datanode_id: "dn1".into(),
        automatic,
        created_ms: 1,
        status: SnapshotStatus::Creating,
        key_count: 0,
        bytes: 0,
        failure: String::new(),
        num_cache_clusters: 1,
        append_fsync: "everysec".into(),
    }
}

#[test]
fn snapshots_are_created_once_completed_and_outlive_their_group_unless_automatic() {
    let mut t = Topology::default();
    t.apply(Change::CreateReplicationGroup { group: group("a").into(), requested_port: Some(7000), port_base: 6379 });
    assert_eq!(
        t.apply(Change::CreateSnapshot { snapshot: snapshot("s1", "zz", false) }),
        Outcome::Rejected(Rejection::NotFound("zz".into()))
    );
    assert_eq!(t.apply(Change::CreateSnapshot { snapshot: snapshot("s1", "a", false) }), Outcome::Ok);
    assert_eq!(
        t.apply(Change::CreateSnapshot { snapshot: snapshot("s1", "a", false) }),
        Outcome::Rejected(Rejection::SnapshotExists("s1".into()))
    );
    t.apply(Change::CreateSnapshot { snapshot: snapshot("automatic.a-1", "a", true) });
    let done =
        Change::SnapshotDone { name: "s1".into(), ok: true, key_count: 7, bytes: 99, error: String::new(), at_ms: 2 };
    t.apply(done);
    assert_eq!((t.snapshots["s1"].status, t.snapshots["s1"].key_count), (SnapshotStatus::Available, 7));
    t.apply(Change::DeleteReplicationGroup { id: "a".into(), at_ms: 3 });
    assert!(t.snapshots.contains_key("s1") && !t.snapshots.contains_key("automatic.a-1"));
    assert_eq!(t.apply(Change::DeleteSnapshot { name: "s1".into(), at_ms: 4 }), Outcome::Ok);
    assert_eq!(
        t.apply(Change::DeleteSnapshot { name: "s1".into(), at_ms: 4 }),
        Outcome::Rejected(Rejection::SnapshotNotFound("s1".into()))
    );
}
