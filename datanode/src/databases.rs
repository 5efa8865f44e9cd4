//! A node's numbered databases: Redis's SELECT 0–15 (ElastiCache's cluster-mode-disabled
//! groups have 16). Each is a [`Keyspace`] of its own; one that never held a key costs a few
//! words. Cluster mode uses database 0 only: the gateway refuses SELECT there, as Redis
//! Cluster does.
//!
//! A command runs in one database (its connection's); MOVE, SWAPDB, COPY ... DB and
//! FLUSHALL reach the others through [`Others`], so the borrow of the current one and of the
//! rest never overlap.

use bytes::Bytes;

use crate::keyspace::{Entry, Keyspace};

pub use ferrocache_common::DATABASES;

/// One key of a snapshot or full sync, with its database.
pub type DbEntry = (usize, Bytes, Entry);

pub struct Databases {
    dbs: Vec<Keyspace>,
}

impl Default for Databases {
    fn default() -> Self {
        Databases { dbs: (0..DATABASES).map(|_| Keyspace::new()).collect() }
    }
}

/// The databases besides the one a command runs in.
pub struct Others<'a> {
    before: &'a mut [Keyspace],
    after: &'a mut [Keyspace],
}

impl Others<'_> {
    /// No other database (tests, and contexts that only ever touch one).
    pub fn none() -> Others<'static> {
        Others { before: &mut [], after: &mut [] }
    }

    /// Database `db`, unless it is the current one (or does not exist).
    pub fn get(&mut self, db: usize) -> Option<&mut Keyspace> {
        let current = self.before.len();
        match db.cmp(&current) {
            std::cmp::Ordering::Less => self.before.get_mut(db),
            std::cmp::Ordering::Equal => None,
            std::cmp::Ordering::Greater => self.after.get_mut(db - current - 1),
        }
    }

    /// Database `db` to read, unless it is the current one.
    pub fn peek(&self, db: usize) -> Option<&Keyspace> {
        let current = self.before.len();
        match db.cmp(&current) {
            std::cmp::Ordering::Less => self.before.get(db),
            std::cmp::Ordering::Equal => None,
            std::cmp::Ordering::Greater => self.after.get(db - current - 1),
        }
    }

    /// Swaps two other databases (SWAPDB when neither is the current one).
    pub fn swap(&mut self, a: usize, b: usize) {
        let current = self.before.len();
        if a == b || a == current || b == current {
            return;
        }
        let (lo, hi) = (a.min(b), a.max(b));
        match (lo < current, hi < current) {
            (true, true) => self.before.swap(lo, hi),
            (false, false) => self.after.swap(lo - current - 1, hi - current - 1),
            _ => {
                if let (Some(x), Some(y)) = (self.before.get_mut(lo), self.after.get_mut(hi - current - 1)) {
                    std::mem::swap(x, y);
                }
            }
        }
    }

    /// Every other database with its number.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (usize, &mut Keyspace)> {
        let skip = self.before.len() + 1;
        let before = self.before.iter_mut().enumerate();
        before.chain(self.after.iter_mut().enumerate().map(move |(i, ks)| (i + skip, ks)))
    }
}

impl Databases {
    /// Whether `db` names a database (clients' numbers are checked with it at the edge).
    pub fn valid(db: usize) -> bool {
        db < DATABASES
    }

    pub fn db(&self, db: usize) -> &Keyspace {
        &self.dbs[db.min(DATABASES - 1)]
    }

    pub fn db_mut(&mut self, db: usize) -> &mut Keyspace {
        &mut self.dbs[db.min(DATABASES - 1)]
    }

    /// Database `db` and the others.
    pub fn split(&mut self, db: usize) -> (&mut Keyspace, Others<'_>) {
        let (before, rest) = self.dbs.split_at_mut(db.min(DATABASES - 1));
        let (current, after) = rest.split_at_mut(1);
        (&mut current[0], Others { before, after })
    }

    pub fn iter(&self) -> impl Iterator<Item = (usize, &Keyspace)> {
        self.dbs.iter().enumerate()
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (usize, &mut Keyspace)> {
        self.dbs.iter_mut().enumerate()
    }

    /// Keys in all databases.
    pub fn len(&self) -> usize {
        self.dbs.iter().map(Keyspace::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.dbs.iter().all(Keyspace::is_empty)
    }

    /// Memory held by keys and values of all databases (maxmemory counts them together, as
    /// Redis does).
    pub fn approx_bytes(&self) -> usize {
        self.dbs.iter().map(Keyspace::approx_bytes).sum()
    }

    pub fn keys_with_expiry(&self) -> usize {
        self.dbs.iter().map(Keyspace::keys_with_expiry).sum()
    }

    /// A copy of every live key (snapshots, full syncs), database by database.
    pub fn live_entries(&self, now: i64) -> Vec<DbEntry> {
        self.iter()
            .flat_map(|(db, ks)| {
                ks.iter()
                    .filter(move |(_, e)| !e.is_expired(now))
                    .map(move |(k, e)| (db, Bytes::copy_from_slice(k), e.clone()))
            })
            .collect()
    }

    /// Databases holding `entries` (whose database numbers were checked when they were read).
    pub fn from_entries(entries: Vec<DbEntry>) -> Databases {
        let mut dbs = Databases::default();
        for (db, key, entry) in entries {
            dbs.db_mut(db).insert(&key, entry);
        }
        dbs
    }

    /// SWAPDB: the two databases trade their keys (clients stay on their numbers).
    pub fn swap(&mut self, a: usize, b: usize) {
        if Databases::valid(a) && Databases::valid(b) {
            self.dbs.swap(a, b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Value;

    fn put(ks: &mut Keyspace, key: &str) {
        ks.insert(key.as_bytes(), Entry::new(Value::Str(crate::strval::Str::from(Bytes::from(key.to_string())))));
    }

    #[test]
    fn split_gives_the_current_database_and_every_other_by_number() {
        let mut dbs = Databases::default();
        for db in 0..DATABASES {
            put(dbs.db_mut(db), &format!("k{db}"));
        }
        let (current, mut others) = dbs.split(5);
        assert!(current.get(b"k5").is_some());
        assert!(others.get(5).is_none() && others.get(DATABASES).is_none());
        for db in (0..DATABASES).filter(|&d| d != 5) {
            assert!(others.get(db).is_some_and(|ks| ks.get(format!("k{db}").as_bytes()).is_some()), "{db}");
        }
        let numbers: Vec<usize> = others.iter_mut().map(|(n, _)| n).collect();
        assert_eq!(numbers, (0..DATABASES).filter(|&d| d != 5).collect::<Vec<_>>());
        others.swap(0, 15);
        others.swap(2, 3);
        assert!(others.get(0).is_some_and(|ks| ks.get(b"k15").is_some()));
        assert!(others.get(15).is_some_and(|ks| ks.get(b"k0").is_some()));
        assert!(others.get(3).is_some_and(|ks| ks.get(b"k2").is_some()));
        others.swap(7, 8);
        assert!(others.get(7).is_some_and(|ks| ks.get(b"k8").is_some()));
        others.swap(2, 3);
        dbs.swap(0, 15);
        dbs.swap(7, 8);
        assert!(dbs.db(0).get(b"k0").is_some() && dbs.db(15).get(b"k15").is_some());
        assert!(dbs.db(7).get(b"k7").is_some() && dbs.db(3).get(b"k3").is_some());
        dbs.swap(0, 15);
        assert!(dbs.db(0).get(b"k15").is_some() && dbs.db(15).get(b"k0").is_some());
        assert_eq!(dbs.len(), DATABASES);
        let entries = dbs.live_entries(0);
        let back = Databases::from_entries(entries);
        assert!(back.db(0).get(b"k15").is_some() && back.db(3).get(b"k3").is_some());
    }
}
