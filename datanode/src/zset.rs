//! The sorted set value: members ordered by (score, member bytes), with O(log n) insert,
//! remove, rank and select, so ZRANK, ZRANGE by index/score/lex and ZREM stay logarithmic
//! however large the set grows.
//!
//! Order lives in a treap (a binary search tree kept balanced by random priorities) stored in
//! one arena of nodes addressed by `u32`; every node knows its subtree's size, which is what
//! makes rank and select logarithmic. A member → score map answers ZSCORE in O(1).

use std::cmp::Ordering;
use std::collections::HashMap;

use bytes::Bytes;

const NIL: u32 = u32::MAX;

#[derive(Debug, Clone)]
struct Node {
    member: Bytes,
    score: f64,
    left: u32,
    right: u32,
    size: u32,
    priority: u32,
}

/// Orders entries as Redis does: by score, then by member bytes. Scores are never NaN.
fn order(a_score: f64, a_member: &[u8], b_score: f64, b_member: &[u8]) -> Ordering {
    a_score.partial_cmp(&b_score).unwrap_or(Ordering::Equal).then_with(|| a_member.cmp(b_member))
}

#[derive(Debug, Clone)]
pub struct SortedSet {
    scores: HashMap<Bytes, f64>,
    nodes: Vec<Node>,
    free: Vec<u32>,
    root: u32,
    seed: u32,
}

impl Default for SortedSet {
    fn default() -> SortedSet {
        SortedSet::new()
    }
}

impl PartialEq for SortedSet {
    fn eq(&self, other: &Self) -> bool {
        self.scores == other.scores
    }
}

impl SortedSet {
    pub fn new() -> SortedSet {
        // Priorities must be unpredictable to clients: from a fixed seed, members inserted in
        // a crafted order would make the tree a chain (O(n) depth: deep recursion, O(n) ops).
        let seed = rand::random::<u32>() | 1;
        SortedSet { scores: HashMap::new(), nodes: Vec::new(), free: Vec::new(), root: NIL, seed }
    }

    pub fn len(&self) -> usize {
        self.scores.len()
    }

    pub fn is_empty(&self) -> bool {
        self.scores.is_empty()
    }

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        self.scores.get(member).copied()
    }

    /// Sets `member`'s score; returns its previous score.
    pub fn insert(&mut self, member: Bytes, score: f64) -> Option<f64> {
        let old = self.remove(&member);
        let node = self.alloc(member.clone(), score);
        let (l, r) = self.split(self.root, &|n: &Node| order(n.score, &n.member, score, &member) == Ordering::Less);
        let l = self.merge(l, node);
        self.root = self.merge(l, r);
        self.scores.insert(member, score);
        old
    }

    /// Removes `member`; returns its score.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let score = self.scores.remove(member)?;
        let (l, rest) = self.split(self.root, &|n: &Node| order(n.score, &n.member, score, member) == Ordering::Less);
        let (mid, r) = self.split(rest, &|n: &Node| order(n.score, &n.member, score, member) != Ordering::Greater);
        if mid != NIL {
            // `mid` is the one node holding `member`.
            self.nodes[mid as usize].member = Bytes::new();
            self.free.push(mid);
        }
        self.root = self.merge(l, r);
        Some(score)
    }

    /// 0-based position of `member` in ascending order.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        let score = self.score(member)?;
        Some(self.count_while(|s, m| order(s, m, score, member) == Ordering::Less))
    }

    /// How many entries come before the first one for which `before` is false; `before` must
    /// hold for a prefix of the order (e.g. "score < min").
    pub fn count_while(&self, before: impl Fn(f64, &[u8]) -> bool) -> usize {
        let (mut t, mut count) = (self.root, 0usize);
        while t != NIL {
            let n = &self.nodes[t as usize];
            if before(n.score, &n.member) {
                count += self.size(n.left) + 1;
                t = n.right;
            } else {
                t = n.left;
            }
        }
        count
    }

    /// Entries from ascending rank `start` on, ascending (or descending when `rev`, moving
    /// towards rank 0).
    pub fn iter_from(&self, start: usize, rev: bool) -> Iter<'_> {
        let mut it = Iter { set: self, stack: Vec::new(), rev };
        if start >= self.len() {
            return it;
        }
        // Walk down to `start`, keeping the nodes still to visit after it.
        let mut k = if rev { self.len() - 1 - start } else { start };
        let mut t = self.root;
        while t != NIL {
            let (near, far) = self.children(t, rev);
            let near_size = self.size(near);
            match k.cmp(&near_size) {
                Ordering::Less => {
                    it.stack.push(t);
                    t = near;
                }
                Ordering::Equal => {
                    it.stack.push(t);
                    break;
                }
                Ordering::Greater => {
                    k -= near_size + 1;
                    t = far;
                }
            }
        }
        it
    }

    /// All entries in ascending order.
    pub fn iter(&self) -> Iter<'_> {
        self.iter_from(0, false)
    }

    fn size(&self, t: u32) -> usize {
        if t == NIL {
            0
        } else {
            self.nodes[t as usize].size as usize
        }
    }

    /// (left, right), or (right, left) when walking in reverse.
    fn children(&self, t: u32, rev: bool) -> (u32, u32) {
        let n = &self.nodes[t as usize];
        if rev {
            (n.right, n.left)
        } else {
            (n.left, n.right)
        }
    }

    fn update(&mut self, t: u32) {
        let (l, r) = (self.nodes[t as usize].left, self.nodes[t as usize].right);
        self.nodes[t as usize].size = (self.size(l) + self.size(r) + 1) as u32;
    }

    fn alloc(&mut self, member: Bytes, score: f64) -> u32 {
        // xorshift32: priorities only need to be unpredictable enough to keep the tree shallow.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 17;
        self.seed ^= self.seed << 5;
        let node = Node { member, score, left: NIL, right: NIL, size: 1, priority: self.seed };
        match self.free.pop() {
            Some(slot) => {
                self.nodes[slot as usize] = node;
                slot
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        }
    }

    /// Splits subtree `t` into (nodes where `goes_left` holds, the rest); `goes_left` must hold
    /// for a prefix of the order.
    fn split(&mut self, t: u32, goes_left: &dyn Fn(&Node) -> bool) -> (u32, u32) {
        if t == NIL {
            return (NIL, NIL);
        }
        if goes_left(&self.nodes[t as usize]) {
            let (l, r) = self.split(self.nodes[t as usize].right, goes_left);
            self.nodes[t as usize].right = l;
            self.update(t);
            (t, r)
        } else {
            let (l, r) = self.split(self.nodes[t as usize].left, goes_left);
            self.nodes[t as usize].left = r;
            self.update(t);
            (l, t)
        }
    }

    /// Joins two subtrees where every entry of `a` orders before every entry of `b`.
    fn merge(&mut self, a: u32, b: u32) -> u32 {
        if a == NIL {
            return b;
        }
        if b == NIL {
            return a;
        }
        if self.nodes[a as usize].priority > self.nodes[b as usize].priority {
            let r = self.merge(self.nodes[a as usize].right, b);
            self.nodes[a as usize].right = r;
            self.update(a);
            a
        } else {
            let l = self.merge(a, self.nodes[b as usize].left);
            self.nodes[b as usize].left = l;
            self.update(b);
            b
        }
    }
}

/// In-order walk over a [`SortedSet`]; yields (member, score).
pub struct Iter<'a> {
    set: &'a SortedSet,
    stack: Vec<u32>,
    rev: bool,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a Bytes, f64);

    fn next(&mut self) -> Option<Self::Item> {
        let t = self.stack.pop()?;
        let (_, far) = self.set.children(t, self.rev);
        let mut c = far;
        while c != NIL {
            self.stack.push(c);
            c = self.set.children(c, self.rev).0;
        }
        let n = &self.set.nodes[t as usize];
        Some((&n.member, n.score))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn members(it: Iter<'_>) -> Vec<String> {
        it.map(|(m, _)| String::from_utf8_lossy(m).into_owned()).collect()
    }

    #[test]
    fn orders_by_score_then_member() {
        let mut z = SortedSet::new();
        z.insert(b("c"), 1.0);
        z.insert(b("a"), 2.0);
        z.insert(b("b"), 1.0);
        z.insert(b("z"), f64::NEG_INFINITY);
        assert_eq!(members(z.iter()), ["z", "b", "c", "a"]);
        assert_eq!(z.rank(b"a".as_slice()), Some(3));
        assert_eq!(z.insert(b("a"), 0.0), Some(2.0));
        assert_eq!(members(z.iter()), ["z", "a", "b", "c"]);
        assert_eq!(members(z.iter_from(2, true)), ["b", "a", "z"]);
        assert_eq!(members(z.iter_from(1, false)), ["a", "b", "c"]);
        assert_eq!(z.remove(b"b"), Some(1.0));
        assert_eq!(z.remove(b"b"), None);
        assert_eq!(members(z.iter()), ["z", "a", "c"]);
        assert_eq!(z.count_while(|s, _| s < 1.0), 2);
    }

    fn depth(z: &SortedSet, t: u32) -> usize {
        if t == NIL {
            return 0;
        }
        let n = &z.nodes[t as usize];
        1 + depth(z, n.left).max(depth(z, n.right))
    }

    /// The attack on a predictable priority sequence: insert member i with a score ordered
    /// like the i-th priority, which turns a treap with known priorities into a chain.
    #[test]
    fn crafted_insert_order_keeps_the_tree_shallow() {
        let n = 20_000u32;
        let mut seed = 0x9E37_79B9u32;
        let mut priorities: Vec<(u32, u32)> = (0..n)
            .map(|i| {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                (seed, i)
            })
            .collect();
        priorities.sort();
        let mut score_of = vec![0u32; n as usize];
        for (rank, (_, i)) in priorities.iter().enumerate() {
            score_of[*i as usize] = rank as u32;
        }
        let mut z = SortedSet::new();
        for i in 0..n {
            z.insert(b(&format!("m{i}")), score_of[i as usize] as f64);
        }
        let d = depth(&z, z.root);
        assert!(d < 60, "depth {d} for {n} members");
    }

    /// Compares every operation against a sorted vector over many random steps.
    #[test]
    fn matches_a_sorted_vector() {
        let mut z = SortedSet::new();
        let mut model: Vec<(f64, Bytes)> = Vec::new();
        let mut x = 12345u64;
        let mut rnd = |n: u64| {
            x ^= x << 7;
            x ^= x >> 9;
            x % n
        };
        for step in 0..20_000 {
            let member = b(&format!("m{}", rnd(500)));
            let score = rnd(50) as f64 - 25.0;
            if rnd(3) == 0 {
                let gone = z.remove(&member);
                let pos = model.iter().position(|(_, m)| *m == member);
                assert_eq!(gone, pos.map(|p| model.remove(p).0));
            } else {
                z.insert(member.clone(), score);
                model.retain(|(_, m)| *m != member);
                model.push((score, member));
                model.sort_by(|a, b| order(a.0, &a.1, b.0, &b.1));
            }
            if step % 97 == 0 {
                let all: Vec<(f64, Bytes)> = z.iter().map(|(m, s)| (s, m.clone())).collect();
                assert_eq!(all, model);
                let start = rnd(model.len() as u64 + 1) as usize;
                let down: Vec<Bytes> = z.iter_from(start, true).map(|(m, _)| m.clone()).collect();
                let expect: Vec<Bytes> = model.iter().take(start + 1).rev().map(|(_, m)| m.clone()).collect::<Vec<_>>();
                if start < model.len() {
                    assert_eq!(down, expect);
                }
                for (i, (_, m)) in model.iter().enumerate() {
                    assert_eq!(z.rank(m), Some(i));
                }
            }
        }
        assert_eq!(z.len(), model.len());
    }
}
