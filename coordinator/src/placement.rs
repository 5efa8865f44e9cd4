//! Placement: which datanodes host a new node group's members. Every member goes to a
//! different datanode; members spread over zones (a zone is reused only when there are
//! more members than zones); preferred zones are honoured when a datanode there is free.
//! Among equals, the least loaded datanode wins.

use std::collections::{BTreeMap, HashSet};

use crate::topology::{Datanode, Topology};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    #[error("{needed} nodes need {needed} datanodes, but only {available} are live")]
    NotEnoughDatanodes { needed: usize, available: usize },
    #[error("no free datanode in preferred availability zone '{0}'")]
    ZoneUnavailable(String),
}

/// Chooses `count` datanodes; `preferred_azs`, when given, has one zone per member.
pub fn place(
    topology: &Topology,
    live: &HashSet<String>,
    count: usize,
    preferred_azs: &[String],
) -> Result<Vec<Datanode>, PlacementError> {
    place_beside(topology, live, &[], count, preferred_azs)
}

/// Chooses `count` more datanodes for a node group whose members already sit on `existing`
/// (never reused; their zones count as used).
pub fn place_beside(
    topology: &Topology,
    live: &HashSet<String>,
    existing: &[Datanode],
    count: usize,
    preferred_azs: &[String],
) -> Result<Vec<Datanode>, PlacementError> {
    let candidates: Vec<&Datanode> = topology
        .datanodes
        .values()
        .filter(|d| live.contains(&d.id) && !existing.iter().any(|e| e.id == d.id))
        .collect();
    if candidates.len() < count {
        return Err(PlacementError::NotEnoughDatanodes { needed: count, available: candidates.len() });
    }
    let mut load: BTreeMap<&str, usize> = BTreeMap::new();
    for g in topology.groups.values() {
        for (_, m) in g.members() {
            *load.entry(m.datanode_id.as_str()).or_default() += 1;
        }
    }
    let mut chosen: Vec<Datanode> = existing.to_vec();
    for i in 0..count {
        let used_zones: Vec<&str> = chosen.iter().map(|d| d.zone.as_str()).collect();
        let zone_uses = |z: &str| used_zones.iter().filter(|u| **u == z).count();
        let free = candidates.iter().filter(|d| !chosen.iter().any(|c| c.id == d.id));
        let pick = match preferred_azs.get(i).filter(|z| !z.is_empty()) {
            Some(zone) => free
                .filter(|d| &d.zone == zone)
                .min_by_key(|d| (load.get(d.id.as_str()).copied().unwrap_or(0), d.id.clone()))
                .ok_or_else(|| PlacementError::ZoneUnavailable(zone.clone()))?,
            None => free
                .min_by_key(|d| (zone_uses(&d.zone), load.get(d.id.as_str()).copied().unwrap_or(0), d.id.clone()))
                .ok_or(PlacementError::NotEnoughDatanodes { needed: count, available: candidates.len() })?,
        };
        *load.entry(pick.id.as_str()).or_default() += 1;
        chosen.push((*pick).clone());
    }
    Ok(chosen.split_off(existing.len()))
}

/// Places the members of several new node groups at once (`azs` per node group: one zone
/// per member, primary first, or empty). Within a node group every member gets its own
/// datanode and zones spread as in [`place_beside`]; across node groups primaries go to the
/// datanodes hosting the fewest primaries, then the fewest members, so a datanode hosts
/// members of many shards but write load spreads. Returns each node group's datanodes,
/// primary first.
pub fn place_shards(
    topology: &Topology,
    live: &HashSet<String>,
    shards: &[(usize, Vec<String>)],
) -> Result<Vec<Vec<Datanode>>, PlacementError> {
    let candidates: Vec<&Datanode> = topology.datanodes.values().filter(|d| live.contains(&d.id)).collect();
    let mut load: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for g in topology.groups.values() {
        for (_, m) in g.members() {
            let l = load.entry(m.datanode_id.clone()).or_default();
            l.1 += 1;
            l.0 += usize::from(m.role == crate::topology::Role::Primary);
        }
    }
    let mut placed = Vec::with_capacity(shards.len());
    for (members, azs) in shards {
        if candidates.len() < *members {
            return Err(PlacementError::NotEnoughDatanodes { needed: *members, available: candidates.len() });
        }
        let mut chosen: Vec<Datanode> = Vec::with_capacity(*members);
        for i in 0..*members {
            let zone_uses = |z: &str| chosen.iter().filter(|c| c.zone == z).count();
            let free = candidates.iter().filter(|d| !chosen.iter().any(|c| c.id == d.id));
            let key = |d: &&&Datanode| {
                let (p, t) = load.get(&d.id).copied().unwrap_or_default();
                let p = if i == 0 { p } else { 0 };
                (zone_uses(&d.zone), p, t, d.id.clone())
            };
            let pick = match azs.get(i).filter(|z| !z.is_empty()) {
                Some(zone) => free
                    .filter(|d| &d.zone == zone)
                    .min_by_key(key)
                    .ok_or_else(|| PlacementError::ZoneUnavailable(zone.clone()))?,
                None => free
                    .min_by_key(key)
                    .ok_or(PlacementError::NotEnoughDatanodes { needed: *members, available: candidates.len() })?,
            };
            let l = load.entry(pick.id.clone()).or_default();
            l.1 += 1;
            l.0 += usize::from(i == 0);
            chosen.push((*pick).clone());
        }
        placed.push(chosen);
    }
    Ok(placed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topo(nodes: &[(&str, &str)]) -> (Topology, HashSet<String>) {
        let mut t = Topology::default();
        for (id, zone) in nodes {
            t.datanodes.insert(
                id.to_string(),
                Datanode { id: id.to_string(), address: format!("{id}:1"), zone: zone.to_string(), registered_ms: 0 },
            );
        }
        let live = nodes.iter().map(|(id, _)| id.to_string()).collect();
        (t, live)
    }

    #[test]
    fn spreads_over_zones() {
        let (t, live) = topo(&[("a1", "a"), ("a2", "a"), ("b1", "b"), ("c1", "c")]);
        let zones: HashSet<String> = place(&t, &live, 3, &[]).unwrap().into_iter().map(|d| d.zone).collect();
        assert_eq!(zones.len(), 3);
    }

    #[test]
    fn distinct_datanodes_and_limits() {
        let (t, live) = topo(&[("a1", "a"), ("a2", "a")]);
        let placed = place(&t, &live, 2, &[]).unwrap();
        assert_ne!(placed[0].id, placed[1].id);
        assert_eq!(place(&t, &live, 3, &[]), Err(PlacementError::NotEnoughDatanodes { needed: 3, available: 2 }));
        let only_one: HashSet<String> = ["a1".to_string()].into();
        assert!(place(&t, &only_one, 2, &[]).is_err(), "dead datanodes are not candidates");
    }

    #[test]
    fn more_members_avoid_used_datanodes_and_zones() {
        let (t, live) = topo(&[("a1", "a"), ("a2", "a"), ("b1", "b"), ("c1", "c")]);
        let existing = vec![t.datanodes["a1"].clone(), t.datanodes["b1"].clone()];
        let placed = place_beside(&t, &live, &existing, 1, &[]).unwrap();
        assert_eq!(placed[0].id, "c1", "a new zone beats a new datanode in a used zone");
        let placed = place_beside(&t, &live, &existing, 2, &[]).unwrap();
        assert_eq!(placed.len(), 2);
        assert!(placed.iter().all(|d| d.id != "a1" && d.id != "b1"));
        assert!(place_beside(&t, &live, &existing, 3, &[]).is_err());
    }

    #[test]
    fn shards_spread_primaries_and_keep_members_apart() {
        let nodes: Vec<(String, String)> =
            (0..6).map(|i| (format!("d{i}"), ["a", "b", "c"][i % 3].to_string())).collect();
        let refs: Vec<(&str, &str)> = nodes.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let (t, live) = topo(&refs);
        let placed = place_shards(&t, &live, &vec![(2, vec![]); 6]).unwrap();
        let primaries: HashSet<&str> = placed.iter().map(|s| s[0].id.as_str()).collect();
        assert_eq!(primaries.len(), 6, "six shards, six datanodes: one primary each");
        for s in &placed {
            assert_ne!(s[0].id, s[1].id);
            assert_ne!(s[0].zone, s[1].zone, "members of a shard in different zones");
        }
        let mut per_node: BTreeMap<&str, usize> = BTreeMap::new();
        for d in placed.iter().flatten() {
            *per_node.entry(d.id.as_str()).or_default() += 1;
        }
        assert!(per_node.values().all(|&n| n == 2), "members spread evenly: {per_node:?}");
        assert!(place_shards(&t, &live, &[(7, vec![])]).is_err());
    }

    #[test]
    fn honours_preferred_zones() {
        let (t, live) = topo(&[("a1", "a"), ("b1", "b"), ("c1", "c")]);
        let placed = place(&t, &live, 2, &["c".into(), "a".into()]).unwrap();
        assert_eq!((placed[0].id.as_str(), placed[1].id.as_str()), ("c1", "a1"));
        assert_eq!(place(&t, &live, 1, &["z".into()]), Err(PlacementError::ZoneUnavailable("z".into())));
    }
}
