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

/// The databases besides the one a command runs in. A script's SELECT trades the current
/// keyspace with another one in place ([`Others::show`]); numbers given here are always the
/// databases' own, wherever their keyspace sits meanwhile.
pub struct Others<'a> {
    /// The keyspaces before and after the command's own database (its number is
    /// `before.len()`).
    before: &'a mut [Keyspace],
    after: &'a mut [Keyspace],
    /// The database the current keyspace holds: the command's own, or the one a script
    /// selected (whose keyspace then sits in the command's own place, and vice versa).
    shown: usize,
}

impl Others<'_> {
    /// No other database (tests, and contexts that only ever touch one).
    pub fn none() -> Others<'static> {
        Others { before: &mut [], after: &mut [], shown: 0 }
    }

    /// The command's own database.
    pub fn home(&self) -> usize {
        self.before.len()
    }

    /// Where database `db`'s keyspace sits among these (None: it is the current one, or
    /// there is no such database).
    fn place(&self, db: usize) -> Option<usize> {
        if db == self.shown || !Databases::valid(db) {
            return None;
        }
        // The home database's keyspace sits where the shown one's belongs.
        Some(if db == self.home() { self.shown } else { db })
    }

    fn slot(&mut self, place: usize) -> Option<&mut Keyspace> {
        let home = self.home();
        match place.cmp(&home) {
            std::cmp::Ordering::Less => self.before.get_mut(place),
            std::cmp::Ordering::Equal => None,
            std::cmp::Ordering::Greater => self.after.get_mut(place - home - 1),
        }
    }

    /// Database `db`, unless it is the current one (or does not exist).
    pub fn get(&mut self, db: usize) -> Option<&mut Keyspace> {
        let place = self.place(db)?;
        self.slot(place)
    }

    /// Database `db` to read, unless it is the current one.
    pub fn peek(&self, db: usize) -> Option<&Keyspace> {
        let place = self.place(db)?;
        let home = self.home();
        match place.cmp(&home) {
            std::cmp::Ordering::Less => self.before.get(place),
            std::cmp::Ordering::Equal => None,
            std::cmp::Ordering::Greater => self.after.get(place - home - 1),
        }
    }

    /// Swaps two other databases (SWAPDB when neither is the current one).
    pub fn swap(&mut self, a: usize, b: usize) {
        let (Some(a), Some(b)) = (self.place(a), self.place(b)) else { return };
        let home = self.home();
        if a == b || a == home || b == home {
            return;
        }
        let (lo, hi) = (a.min(b), a.max(b));
        match (lo < home, hi < home) {
            (true, true) => self.before.swap(lo, hi),
            (false, false) => self.after.swap(lo - home - 1, hi - home - 1),
            _ => {
                if let (Some(x), Some(y)) = (self.before.get_mut(lo), self.after.get_mut(hi - home - 1)) {
                    std::mem::swap(x, y);
                }
            }
        }
    }

    /// Makes `current` (the keyspace shown now) show database `db` instead: a script's
    /// SELECT. Back to the home database first, then to `db`; false for no such database.
    pub fn show(&mut self, current: &mut Keyspace, db: usize) -> bool {
        if db == self.shown {
            return true;
        }
        let home = self.home();
        if !Databases::valid(db) || (db != home && self.slot(db).is_none()) {
            return false;
        }
        if self.shown != home {
            let place = self.shown;
            if let Some(ks) = self.slot(place) {
                std::mem::swap(current, ks);
            }
            self.shown = home;
        }
        if db != home {
            if let Some(ks) = self.slot(db) {
                std::mem::swap(current, ks);
            }
            self.shown = db;
        }
        true
    }

    /// Every other database with its number.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (usize, &mut Keyspace)> {
        let (home, shown) = (self.home(), self.shown);
        let number = move |place: usize| if place == shown && shown != home { home } else { place };
        let before = self.before.iter_mut().enumerate().map(move |(i, ks)| (number(i), ks));
        before.chain(self.after.iter_mut().enumerate().map(move |(i, ks)| (number(i + home + 1), ks)))
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
        let shown = before.len();
        (&mut current[0], Others { before, after, shown })
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

    /// INFO's used_memory, which maxmemory is compared with: the data and the indexes
    /// holding it.
    pub fn used_memory(&self) -> usize {
        self.dbs.iter().map(|ks| ks.approx_bytes() + ks.index_bytes()).sum()
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
        // A script's SELECT: the current keyspace shows another database, the others keep
        // their numbers, and going back restores every place.
        let (current, mut others) = dbs.split(5);
        assert!(others.show(current, 9));
        assert!(current.get(b"k9").is_some());
        assert!(others.get(5).is_some_and(|ks| ks.get(b"k5").is_some()), "home is reachable by its number");
        assert!(others.get(9).is_none(), "the shown database is the current one");
        assert!(others.peek(3).is_some_and(|ks| ks.get(b"k3").is_some()));
        let mut numbers: Vec<usize> = others.iter_mut().map(|(n, _)| n).collect();
        numbers.sort_unstable();
        assert_eq!(numbers, (0..DATABASES).filter(|&d| d != 9).collect::<Vec<_>>());
        assert!(others.show(current, 2) && current.get(b"k2").is_some());
        assert!(!others.show(current, DATABASES));
        assert!(others.show(current, 5) && current.get(b"k5").is_some());
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
