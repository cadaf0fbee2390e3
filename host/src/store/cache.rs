//! Identities and issuers, so that an exchange does not ask the database for them every time
//! (two round trips through sqlx's SQLite worker were a large share of an exchange's cost, and
//! a cold identity is most of the latency a server with 100,000 of them adds: BENCHMARKS.md).
//!
//! At most [`MAX_ENTRIES`] per table. Reads keep what they found. An identity write through
//! this [`Store`](super::Store) keeps what it committed (its config is text, so an entry is a
//! few hundred bytes), unless another write raced it, in which case the entry is dropped and
//! the next read fetches the winner; issuer writes and deletes drop the entry. Either way a
//! server sees its own changes at once. Another replica's changes (PostgreSQL) are seen when an
//! entry expires: `ttl` bounds how long a deleted identity can still be exchanged there. With
//! SQLite the server is the only writer, entries do not expire, and a starting server fills
//! the cache from the database ([`Store::warm_cache`](super::Store::warm_cache)). Only records
//! that exist are kept: names that match nothing cannot grow the cache.

use super::{IdentityRecord, IssuerRecord};
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::RwLock;
use std::time::{Duration, Instant};

type Key = (String, String);

/// Entries per table: 100,000 identities of the scale bench's shape take about 50 MiB. A full
/// table drops an arbitrary entry for each new one; a dropped identity costs its next
/// exchange one database read.
pub(super) const MAX_ENTRIES: usize = 200_000;

/// A snapshot of a table's write count, taken before reading or writing the database: a
/// record read while a write was committing is not cached, since it may be the old one, and
/// of two writes that raced, neither is (either may have committed last).
#[derive(Debug, Clone, Copy)]
pub(super) struct Seen(u64);

/// The read cache one [`Store`](super::Store) and its clones share.
#[derive(Debug)]
pub(super) struct ReadCache {
    ttl: Option<Duration>,
    identities: Table<Key, IdentityRecord>,
    /// uid -> (tenant, id); the identity itself is looked up in `identities`.
    uids: Table<String, Key>,
    issuers: Table<Key, IssuerRecord>,
}

#[derive(Debug)]
struct Table<K, V>(RwLock<Inner<K, V>>);

#[derive(Debug)]
struct Inner<K, V> {
    entries: HashMap<K, (V, Instant)>,
    writes: u64,
}

impl<K: Eq + Hash + Clone, V: Clone> Table<K, V> {
    fn new() -> Self {
        Table(RwLock::new(Inner {
            entries: HashMap::new(),
            writes: 0,
        }))
    }

    fn get(&self, key: &K, ttl: Option<Duration>) -> Option<V> {
        let inner = self.0.read().expect("store cache poisoned");
        let (value, at) = inner.entries.get(key)?;
        ttl.is_none_or(|ttl| at.elapsed() < ttl)
            .then(|| value.clone())
    }

    fn seen(&self) -> Seen {
        Seen(self.0.read().expect("store cache poisoned").writes)
    }

    /// Keeps what a read found, unless a write happened since `seen`; whether it was kept.
    fn fill(&self, key: K, value: V, seen: Seen) -> bool {
        let mut inner = self.0.write().expect("store cache poisoned");
        let kept = inner.writes == seen.0;
        if kept {
            inner.insert(key, value);
        }
        kept
    }

    /// After a write committed `value` for `key`: keeps it if no other write happened since
    /// `seen` (taken before the write), else drops the entry. Reads in flight are not kept.
    fn stored(&self, key: K, value: V, seen: Seen) {
        let mut inner = self.0.write().expect("store cache poisoned");
        let raced = inner.writes != seen.0;
        inner.writes += 1;
        if raced {
            inner.entries.remove(&key);
        } else {
            inner.insert(key, value);
        }
    }

    /// After a write to `key`: its entry is dropped, and reads already in flight not kept.
    fn written(&self, key: &K) {
        let mut inner = self.0.write().expect("store cache poisoned");
        inner.writes += 1;
        inner.entries.remove(key);
    }

    /// Forgets everything (and no read in flight is kept).
    fn clear(&self) {
        let mut inner = self.0.write().expect("store cache poisoned");
        inner.writes += 1;
        inner.entries.clear();
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.read().expect("store cache poisoned").entries.len()
    }
}

impl<K: Eq + Hash + Clone, V> Inner<K, V> {
    fn insert(&mut self, key: K, value: V) {
        if self.entries.len() >= MAX_ENTRIES && !self.entries.contains_key(&key) {
            let victim = self.entries.keys().next().cloned();
            if let Some(victim) = victim {
                self.entries.remove(&victim);
            }
        }
        self.entries.insert(key, (value, Instant::now()));
    }
}

fn key(tenant: &str, name: &str) -> Key {
    (tenant.to_owned(), name.to_owned())
}

impl ReadCache {
    pub(super) fn new(ttl: Option<Duration>) -> ReadCache {
        ReadCache {
            ttl,
            identities: Table::new(),
            uids: Table::new(),
            issuers: Table::new(),
        }
    }

    pub(super) fn identity(&self, tenant: &str, id: &str) -> Option<IdentityRecord> {
        self.identities.get(&key(tenant, id), self.ttl)
    }

    /// The identity with `uid`, if cached and still the one that has it (an identity deleted
    /// and created again under the same name gets a new uid).
    pub(super) fn identity_by_uid(&self, uid: &str) -> Option<IdentityRecord> {
        let (tenant, id) = self.uids.get(&uid.to_owned(), self.ttl)?;
        self.identity(&tenant, &id).filter(|found| found.uid == uid)
    }

    pub(super) fn identities_seen(&self) -> Seen {
        self.identities.seen()
    }

    /// Keeps an identity read from the database, unless a write happened since `seen`;
    /// whether it was kept.
    pub(super) fn fill_identity(&self, identity: &IdentityRecord, seen: Seen) -> bool {
        let name = self.remember_uid(identity);
        self.identities.fill(name, identity.clone(), seen)
    }

    /// After identity `identity` was stored (`seen` taken before the write).
    pub(super) fn identity_stored(&self, identity: &IdentityRecord, seen: Seen) {
        let name = self.remember_uid(identity);
        self.identities.stored(name, identity.clone(), seen);
    }

    /// Maps the identity's uid to its name (checked against the identity on every lookup, so
    /// no race guard is needed); returns the name.
    fn remember_uid(&self, identity: &IdentityRecord) -> Key {
        let name = key(&identity.tenant, &identity.id);
        self.uids
            .fill(identity.uid.clone(), name.clone(), self.uids.seen());
        name
    }

    /// After identity `(tenant, id)` was deleted.
    pub(super) fn identity_deleted(&self, tenant: &str, id: &str) {
        self.identities.written(&key(tenant, id));
    }

    pub(super) fn issuer(&self, tenant: &str, name: &str) -> Option<IssuerRecord> {
        self.issuers.get(&key(tenant, name), self.ttl)
    }

    pub(super) fn issuers_seen(&self) -> Seen {
        self.issuers.seen()
    }

    /// Keeps an issuer read from the database, unless a write happened since `seen`;
    /// whether it was kept.
    pub(super) fn fill_issuer(&self, issuer: &IssuerRecord, seen: Seen) -> bool {
        self.issuers
            .fill(key(&issuer.tenant, &issuer.name), issuer.clone(), seen)
    }

    /// After issuer `(tenant, name)` was stored or deleted.
    pub(super) fn issuer_written(&self, tenant: &str, name: &str) {
        self.issuers.written(&key(tenant, name));
    }

    /// Forgets every entry: what changed elsewhere is not known.
    pub(super) fn clear(&self) {
        self.identities.clear();
        self.uids.clear();
        self.issuers.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(uid: &str) -> IdentityRecord {
        IdentityRecord {
            tenant: "a".into(),
            id: "ci".into(),
            uid: uid.into(),
            issuer: "dev".into(),
            accepted_audiences: vec![],
            token_audiences: vec![],
            policy: "builtin:rules".into(),
            config: crate::store::PolicyConfig::empty(),
            scopes: vec![],
            ttl_seconds: 900,
            max_ttl_seconds: 3600,
            num_uses: 0,
            trusted_cidrs: vec![],
            fuel: None,
            resolved_policy: "builtin:rules".into(),
            cases: Vec::new(),
            shadow: None,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn a_recreated_identity_is_not_found_by_its_old_uid() {
        let cache = ReadCache::new(None);
        cache.fill_identity(&identity("old"), cache.identities_seen());
        assert!(cache.identity_by_uid("old").is_some());
        cache.identity_deleted("a", "ci");
        assert!(
            cache.identity("a", "ci").is_none(),
            "a write drops the entry"
        );
        cache.fill_identity(&identity("new"), cache.identities_seen());
        assert!(cache.identity_by_uid("old").is_none());
        assert_eq!(cache.identity_by_uid("new").unwrap().uid, "new");
    }

    #[test]
    fn a_read_that_raced_a_write_is_not_kept() {
        let cache = ReadCache::new(None);
        let seen = cache.identities_seen();
        // A write commits while the read is in flight...
        cache.identity_deleted("a", "ci");
        // ... and the read, which may have seen the old row, comes back.
        cache.fill_identity(&identity("old"), seen);
        assert!(cache.identity("a", "ci").is_none());
        cache.fill_identity(&identity("new"), cache.identities_seen());
        assert_eq!(cache.identity("a", "ci").unwrap().uid, "new");
    }

    #[test]
    fn a_write_keeps_what_it_committed_and_a_read_in_flight_does_not_replace_it() {
        let cache = ReadCache::new(None);
        let read = cache.identities_seen();
        let write = cache.identities_seen();
        cache.identity_stored(&identity("new"), write);
        assert_eq!(cache.identity("a", "ci").unwrap().uid, "new");
        assert_eq!(cache.identity_by_uid("new").unwrap().uid, "new");
        // A read that started before the write may have seen the old row.
        assert!(!cache.fill_identity(&identity("old"), read));
        assert_eq!(cache.identity("a", "ci").unwrap().uid, "new");
    }

    #[test]
    fn of_two_racing_writes_neither_is_kept() {
        for first_to_finish in ["a", "b"] {
            let cache = ReadCache::new(None);
            cache.identity_stored(&identity("before"), cache.identities_seen());
            // Both writes start before either finishes: either may have committed last.
            let (seen_a, seen_b) = (cache.identities_seen(), cache.identities_seen());
            let (a, b) = (identity("a"), identity("b"));
            let order = if first_to_finish == "a" {
                [(&a, seen_a), (&b, seen_b)]
            } else {
                [(&b, seen_b), (&a, seen_a)]
            };
            for (written, seen) in order {
                cache.identity_stored(written, seen);
            }
            assert!(
                cache.identity("a", "ci").is_none(),
                "{first_to_finish} finished first, yet an entry was kept"
            );
        }
    }

    #[test]
    fn a_write_after_another_finished_is_kept() {
        let cache = ReadCache::new(None);
        cache.identity_stored(&identity("a"), cache.identities_seen());
        cache.identity_stored(&identity("b"), cache.identities_seen());
        assert_eq!(cache.identity("a", "ci").unwrap().uid, "b");
    }

    #[test]
    fn a_full_table_stays_at_its_cap() {
        let cache = ReadCache::new(None);
        for n in 0..MAX_ENTRIES + 10 {
            let mut found = identity(&format!("u{n}"));
            found.id = format!("id{n}");
            cache.fill_identity(&found, cache.identities_seen());
        }
        assert_eq!(cache.identities.len(), MAX_ENTRIES);
        let last = format!("id{}", MAX_ENTRIES + 9);
        assert!(
            cache.identity("a", &last).is_some(),
            "the newest entry is kept"
        );
    }

    #[test]
    fn entries_expire_after_the_ttl() {
        let cache = ReadCache::new(Some(Duration::ZERO));
        cache.fill_identity(&identity("u"), cache.identities_seen());
        assert!(cache.identity("a", "ci").is_none());
        let cache = ReadCache::new(None);
        cache.fill_identity(&identity("u"), cache.identities_seen());
        assert!(cache.identity("a", "ci").is_some());
    }
}
