//! Resharding in the topology model: which slots move where, and what each committed step
//! does to the node groups.
//!
//! A resharding is a list of *moves* (a contiguous slot range, from one node group to
//! another), made one at a time: `BeginSlotMove` makes the next move *active* (its slots
//! are frozen for writes on the source), the leader has the source copy the keys to the
//! target, and `CompleteSlotMove` hands the slots over in the same commit that raises both
//! node groups' config epochs. A move that fails is put back (`AbortSlotMove`) and tried
//! again; a copy always starts by clearing the slots on the target, so repeats are safe.
//! Ownership therefore only ever changes in one Raft commit: no slot is ever half moved.

use serde::{Deserialize, Serialize};

use super::{GroupStatus, NodeGroup, Outcome, Rejection, Topology};

/// Most slots one move carries by default: small moves keep each freeze short (writes to
/// the moving slots wait, retried by the gateways, while their keys are copied).
pub const SLOTS_PER_MOVE: u16 = 256;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotMove {
    /// Inclusive slot range.
    pub first: u16,
    pub last: u16,
    pub from: String,
    pub to: String,
}

impl SlotMove {
    pub fn slot_count(&self) -> u32 {
        (self.last - self.first) as u32 + 1
    }
}

/// A resharding under way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resharding {
    pub pending: Vec<SlotMove>,
    /// The move being copied now.
    pub active: Option<SlotMove>,
    /// Node groups that leave once their slots are gone.
    pub remove: Vec<String>,
    pub slots_to_move: u32,
    pub slots_moved: u32,
    pub keys_moved: u64,
    pub started_ms: i64,
    /// Failed copies so far (each is retried).
    #[serde(default)]
    pub retries: u32,
}

/// Slot count of each node group.
fn owned(ng: &NodeGroup) -> u32 {
    ng.slots.iter().map(|&(a, b)| (b - a) as u32 + 1).sum()
}

/// The moves that balance the slots over `keep` (node group ids, in order): node groups not
/// in `keep` give all their slots away; the others end with an even share (the first
/// `16384 % n` one slot more). Slots leave from the end of a node group's ranges and moves
/// are at most `per_move` slots long.
pub fn plan(node_groups: &[NodeGroup], keep: &[String], per_move: u16) -> Vec<SlotMove> {
    let per_move = per_move.max(1) as u32;
    let n = keep.len().max(1) as u32;
    let (base, extra) = (16384 / n, 16384 % n);
    let target = |id: &str| -> u32 {
        match keep.iter().position(|k| k == id) {
            Some(i) => base + u32::from((i as u32) < extra),
            None => 0,
        }
    };
    // Surplus ranges, taken from the end of each over-full node group's ranges.
    let mut surplus: Vec<(String, u16, u16)> = Vec::new();
    for ng in node_groups {
        let mut give = owned(ng).saturating_sub(target(&ng.id));
        let mut ranges = ng.slots.clone();
        ranges.sort();
        while give > 0 {
            let Some((a, b)) = ranges.pop() else { break };
            let len = (b - a) as u32 + 1;
            let take = len.min(give);
            let first = (b as u32 + 1 - take) as u16;
            surplus.push((ng.id.clone(), first, b));
            give -= take;
        }
    }
    // Deficits, filled in `keep` order.
    let mut deficits: Vec<(String, u32)> = keep
        .iter()
        .map(|id| {
            let have = node_groups.iter().find(|ng| &ng.id == id).map_or(0, owned);
            (id.clone(), target(id).saturating_sub(have))
        })
        .filter(|(_, d)| *d > 0)
        .collect();
    let mut moves = Vec::new();
    let mut di = 0;
    for (from, mut first, last) in surplus {
        while first <= last && di < deficits.len() {
            let (to, need) = &mut deficits[di];
            let span = ((last - first) as u32 + 1).min(*need).min(per_move);
            let end = first + (span - 1) as u16;
            moves.push(SlotMove { first, last: end, from: from.clone(), to: to.clone() });
            *need -= span;
            if *need == 0 {
                di += 1;
            }
            if end == u16::MAX || end >= last {
                break;
            }
            first = end + 1;
        }
    }
    moves
}

/// Takes `[first, last]` out of `ranges` (which must hold it).
pub fn remove_range(ranges: &mut Vec<(u16, u16)>, first: u16, last: u16) {
    let mut out = Vec::with_capacity(ranges.len() + 1);
    for &(a, b) in ranges.iter() {
        if b < first || a > last {
            out.push((a, b));
            continue;
        }
        if a < first {
            out.push((a, first - 1));
        }
        if b > last {
            out.push((last + 1, b));
        }
    }
    *ranges = out;
}

/// Adds `[first, last]` to `ranges`, merging neighbours.
pub fn add_range(ranges: &mut Vec<(u16, u16)>, first: u16, last: u16) {
    ranges.push((first, last));
    ranges.sort();
    let mut merged: Vec<(u16, u16)> = Vec::with_capacity(ranges.len());
    for &(a, b) in ranges.iter() {
        match merged.last_mut() {
            Some(m) if a as u32 <= m.1 as u32 + 1 => m.1 = m.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    *ranges = merged;
}

impl Topology {
    pub(super) fn start_resharding(
        &mut self,
        group_id: String,
        add: Vec<NodeGroup>,
        moves: Vec<SlotMove>,
        remove: Vec<String>,
        at_ms: i64,
    ) -> Outcome {
        let mut used = self.ports_in_use();
        let Some(g) = self.groups.get_mut(&group_id) else {
            return Outcome::Rejected(Rejection::NotFound(group_id));
        };
        if g.resharding.is_some() {
            return Outcome::Rejected(Rejection::ReshardingInProgress(group_id));
        }
        let mut add = add;
        for ng in &mut add {
            if g.node_groups.iter().any(|n| n.id == ng.id) {
                return Outcome::Rejected(Rejection::MemberExists(ng.id.clone()));
            }
            for m in &mut ng.members {
                let Some(p) = Self::free_port_from(&used, g.primary_port) else {
                    return Outcome::Rejected(Rejection::NoFreePort);
                };
                m.port = p;
                used.insert(p);
            }
        }
        let added: Vec<String> = add.iter().map(|ng| ng.id.clone()).collect();
        g.node_groups.extend(add);
        if moves.is_empty() {
            // Nothing to move: slot-less node groups to remove simply go.
            g.node_groups.retain(|ng| !(remove.contains(&ng.id) && ng.slots.is_empty()));
            let group = g.clone();
            self.event(at_ms, "replication-group", &group_id, format!("{group_id}: no slots need to move"));
            return Outcome::Group(Box::new(group));
        }
        let slots_to_move = moves.iter().map(SlotMove::slot_count).sum();
        g.resharding = Some(Resharding {
            pending: moves,
            active: None,
            remove: remove.clone(),
            slots_to_move,
            slots_moved: 0,
            keys_moved: 0,
            started_ms: at_ms,
            retries: 0,
        });
        g.status = GroupStatus::Modifying;
        let mut msg = format!("Resharding of {group_id} started: {slots_to_move} slots to move");
        if !added.is_empty() {
            msg.push_str(&format!(", node groups {} added", added.join(", ")));
        }
        if !remove.is_empty() {
            msg.push_str(&format!(", node groups {} to remove", remove.join(", ")));
        }
        let group = g.clone();
        self.event(at_ms, "replication-group", &group_id, msg);
        Outcome::Group(Box::new(group))
    }

    pub(super) fn begin_slot_move(&mut self, group_id: String) -> Outcome {
        let Some(r) = self.groups.get_mut(&group_id).and_then(|g| g.resharding.as_mut()) else {
            return Outcome::Rejected(Rejection::NoSlotMove(group_id));
        };
        if r.active.is_some() || r.pending.is_empty() {
            return Outcome::Rejected(Rejection::NoSlotMove(group_id));
        }
        // One event per batch would flood DescribeEvents (hundreds per resharding); the start,
        // failures and the end are recorded instead.
        r.active = Some(r.pending.remove(0));
        Outcome::Ok
    }

    pub(super) fn complete_slot_move(&mut self, group_id: String, keys: u64, at_ms: i64) -> Outcome {
        let Some(g) = self.groups.get_mut(&group_id) else {
            return Outcome::Rejected(Rejection::NotFound(group_id));
        };
        let Some(m) = g.resharding.as_mut().and_then(|r| r.active.take()) else {
            return Outcome::Rejected(Rejection::NoSlotMove(group_id));
        };
        for ng in &mut g.node_groups {
            if ng.id == m.from {
                remove_range(&mut ng.slots, m.first, m.last);
                ng.config_epoch += 1;
            } else if ng.id == m.to {
                add_range(&mut ng.slots, m.first, m.last);
                ng.config_epoch += 1;
            }
        }
        let Some(mut done) = g.resharding.take() else { return Outcome::Ok };
        done.slots_moved += m.slot_count();
        done.keys_moved += keys;
        if !done.pending.is_empty() {
            g.resharding = Some(done);
            return Outcome::Ok;
        }
        // The last move: emptied node groups leave (their members' data is deleted by
        // their datanodes), and the group is available again.
        let leaving: Vec<String> = g
            .node_groups
            .iter()
            .filter(|ng| done.remove.contains(&ng.id) && ng.slots.is_empty())
            .map(|ng| ng.id.clone())
            .collect();
        g.node_groups.retain(|ng| !leaving.contains(&ng.id));
        g.status = GroupStatus::Available;
        let mut msg = format!(
            "Resharding of {group_id} completed: {} slots and {} keys moved; {} node groups",
            done.slots_moved,
            done.keys_moved,
            g.node_groups.len()
        );
        if !leaving.is_empty() {
            msg.push_str(&format!(" (removed {})", leaving.join(", ")));
        }
        self.event(at_ms, "replication-group", &group_id, msg);
        Outcome::Ok
    }

    pub(super) fn abort_slot_move(&mut self, group_id: String, reason: String, at_ms: i64) -> Outcome {
        let Some(r) = self.groups.get_mut(&group_id).and_then(|g| g.resharding.as_mut()) else {
            return Outcome::Rejected(Rejection::NoSlotMove(group_id));
        };
        let Some(m) = r.active.take() else {
            return Outcome::Rejected(Rejection::NoSlotMove(group_id));
        };
        r.retries += 1;
        let msg = format!("Moving slots {}-{} to node group {} failed, will retry: {reason}", m.first, m.last, m.to);
        r.pending.insert(0, m);
        self.event(at_ms, "replication-group", &group_id, msg);
        Outcome::Ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ng(id: &str, slots: Vec<(u16, u16)>) -> NodeGroup {
        NodeGroup { id: id.into(), config_epoch: 1, slots, members: vec![], handoff: None }
    }

    fn apply(groups: &mut [NodeGroup], moves: &[SlotMove]) {
        for m in moves {
            let from = groups.iter_mut().find(|g| g.id == m.from).unwrap();
            remove_range(&mut from.slots, m.first, m.last);
            let to = groups.iter_mut().find(|g| g.id == m.to).unwrap();
            add_range(&mut to.slots, m.first, m.last);
        }
    }

    fn check_cover(groups: &[NodeGroup]) {
        let mut seen = vec![0u8; 16384];
        for g in groups {
            for &(a, b) in &g.slots {
                for s in a..=b {
                    seen[s as usize] += 1;
                }
            }
        }
        assert!(seen.iter().all(|&n| n == 1), "every slot owned once");
    }

    #[test]
    fn scale_out_and_in_balance_every_slot() {
        let even = ferrocache_common::slot::even_ranges(3);
        let mut groups: Vec<NodeGroup> = (0..3).map(|i| ng(&format!("000{}", i + 1), vec![even[i]])).collect();
        groups.push(ng("0004", vec![]));
        groups.push(ng("0005", vec![]));
        let keep: Vec<String> = (1..=5).map(|i| format!("000{i}")).collect();
        let moves = plan(&groups, &keep, SLOTS_PER_MOVE);
        assert!(moves.iter().all(|m| m.slot_count() <= SLOTS_PER_MOVE as u32));
        apply(&mut groups, &moves);
        check_cover(&groups);
        let counts: Vec<u32> = groups.iter().map(owned).collect();
        assert_eq!(counts, vec![3277, 3277, 3277, 3277, 3276]);
        // Back to three: 0004 and 0005 give everything away.
        let keep: Vec<String> = (1..=3).map(|i| format!("000{i}")).collect();
        let moves = plan(&groups, &keep, SLOTS_PER_MOVE);
        apply(&mut groups, &moves);
        check_cover(&groups);
        let counts: Vec<u32> = groups.iter().map(owned).collect();
        assert_eq!(counts, vec![5462, 5461, 5461, 0, 0]);
        assert!(plan(&groups, &keep, SLOTS_PER_MOVE).is_empty(), "a balanced group has nothing to move");
    }

    #[test]
    fn ranges_split_and_merge() {
        let mut r = vec![(0, 100)];
        remove_range(&mut r, 10, 20);
        assert_eq!(r, vec![(0, 9), (21, 100)]);
        add_range(&mut r, 10, 20);
        assert_eq!(r, vec![(0, 100)]);
        remove_range(&mut r, 0, 100);
        assert!(r.is_empty());
    }
}
