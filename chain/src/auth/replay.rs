//! A bounded, in-memory set of request ids already accepted, so a captured request cannot be replayed.
//!
//! Entries are keyed by (scheme, sender hotkey, nonce or uuid) and kept for a fixed retention from the
//! moment they were accepted. The verifier chooses a retention of at least `max_age + allowed_skew`, after
//! which a replay would be rejected as stale anyway, so forgetting an entry never opens a replay window.
//!
//! **When full**: the cache first drops expired entries; if it is still full, [`ReplayCache::insert`]
//! refuses the request ([`InsertOutcome::Full`], HTTP 503) instead of evicting a live entry. Evicting a
//! live entry would let that request be replayed; refusing costs availability only under a flood of
//! *authorized* traffic: entries are written only after the signature verifies and, through
//! [`super::Verifier::verify_authorized`], only for senders the server accepts (registered validators),
//! so throwaway keys with valid signatures cannot fill it.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::keys::AccountId;

/// The key of one accepted request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReplayKey {
    /// Which scheme the request used (its ids live in separate namespaces).
    pub scheme: u8,
    /// The sender's hotkey.
    pub hotkey: AccountId,
    /// The btauth nonce or the Epistula uuid, as sent.
    pub id: String,
}

/// What [`ReplayCache::insert`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertOutcome {
    /// The id was new and is now remembered.
    Fresh,
    /// The id was accepted before, within the retention: a replay.
    Replayed,
    /// The cache holds `capacity` live entries; the request is refused, nothing was evicted.
    Full,
}

#[derive(Debug, Default)]
struct Inner {
    set: HashSet<ReplayKey>,
    /// Insertion order with expiry; expiries are non-decreasing because `Instant` is monotonic and
    /// inserts happen under the lock.
    order: VecDeque<(Instant, ReplayKey)>,
}

/// A thread-safe, bounded replay cache.
#[derive(Debug)]
pub struct ReplayCache {
    inner: Mutex<Inner>,
    retention: Duration,
    capacity: usize,
}

impl ReplayCache {
    /// A cache that remembers each id for `retention` and holds at most `capacity` ids.
    pub fn new(retention: Duration, capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            retention,
            capacity: capacity.max(1),
        }
    }

    /// How long each id is remembered.
    pub const fn retention(&self) -> Duration {
        self.retention
    }

    /// The most ids held at once.
    pub const fn capacity(&self) -> usize {
        self.capacity
    }

    /// Live entries (after dropping expired ones).
    pub fn len(&self) -> usize {
        self.len_at(Instant::now())
    }

    /// Whether no live entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// [`Self::len`] at a given instant.
    pub fn len_at(&self, now: Instant) -> usize {
        let mut inner = self.lock();
        Self::expire(&mut inner, now);
        inner.set.len()
    }

    /// Records `key` as accepted now, unless it was already accepted or the cache is full.
    pub fn insert(&self, key: ReplayKey) -> InsertOutcome {
        self.insert_at(key, Instant::now())
    }

    /// [`Self::insert`] at a given instant (monotonic; used by tests to simulate time).
    pub fn insert_at(&self, key: ReplayKey, now: Instant) -> InsertOutcome {
        let mut inner = self.lock();
        Self::expire(&mut inner, now);
        if inner.set.contains(&key) {
            return InsertOutcome::Replayed;
        }
        if inner.set.len() >= self.capacity {
            return InsertOutcome::Full;
        }
        let expiry = now + self.retention;
        // Keep the deque sorted even if a caller passes an earlier instant than a previous insert.
        let expiry = inner.order.back().map_or(expiry, |(last, _)| expiry.max(*last));
        inner.set.insert(key.clone());
        inner.order.push_back((expiry, key));
        InsertOutcome::Fresh
    }

    fn expire(inner: &mut Inner, now: Instant) {
        while let Some((expiry, _)) = inner.order.front() {
            if *expiry > now {
                break;
            }
            if let Some((_, key)) = inner.order.pop_front() {
                inner.set.remove(&key);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the set and deque inconsistent in a way that
        // accepts replays (both are updated after all checks), so a poisoned lock is safe to reuse.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u32) -> ReplayKey {
        ReplayKey {
            scheme: 1,
            hotkey: AccountId([7; 32]),
            id: n.to_string(),
        }
    }

    #[test]
    fn a_second_insert_is_a_replay_until_retention_passes() {
        let cache = ReplayCache::new(Duration::from_secs(12), 10);
        let t0 = Instant::now();
        assert_eq!(cache.insert_at(key(1), t0), InsertOutcome::Fresh);
        assert_eq!(
            cache.insert_at(key(1), t0 + Duration::from_secs(11)),
            InsertOutcome::Replayed
        );
        assert_eq!(
            cache.insert_at(key(1), t0 + Duration::from_secs(12)),
            InsertOutcome::Fresh
        );
    }

    #[test]
    fn full_cache_refuses_without_evicting_live_entries() {
        let cache = ReplayCache::new(Duration::from_secs(10), 3);
        let t0 = Instant::now();
        for n in 0..3 {
            assert_eq!(cache.insert_at(key(n), t0), InsertOutcome::Fresh);
        }
        assert_eq!(
            cache.insert_at(key(3), t0 + Duration::from_secs(1)),
            InsertOutcome::Full
        );
        // The live entries are still remembered.
        assert_eq!(
            cache.insert_at(key(0), t0 + Duration::from_secs(1)),
            InsertOutcome::Replayed
        );
        // Once they expire there is room again.
        assert_eq!(
            cache.insert_at(key(3), t0 + Duration::from_secs(10)),
            InsertOutcome::Fresh
        );
        assert_eq!(cache.len_at(t0 + Duration::from_secs(10)), 1);
    }

    #[test]
    fn schemes_and_senders_are_separate_namespaces() {
        let cache = ReplayCache::new(Duration::from_secs(10), 10);
        let t0 = Instant::now();
        assert_eq!(cache.insert_at(key(1), t0), InsertOutcome::Fresh);
        let mut other_scheme = key(1);
        other_scheme.scheme = 2;
        assert_eq!(cache.insert_at(other_scheme, t0), InsertOutcome::Fresh);
        let mut other_sender = key(1);
        other_sender.hotkey = AccountId([8; 32]);
        assert_eq!(cache.insert_at(other_sender, t0), InsertOutcome::Fresh);
    }
}
