//! Round-1 state kept for the opening round, with a time to live and a memory cap.
//!
//! Memory is reserved *before* a challenge is computed, from the size the challenge declares, so a
//! challenge that would not fit is refused before anything is allocated. A reservation that is never
//! filled (the job failed, the requester left) gives its bytes back when dropped. Entries are keyed by
//! the validator's hotkey and the challenge id, so one validator can never open another's challenge,
//! and are taken out (freed) by their opening.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::metrics::Metrics;

/// Why state could not be reserved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The challenge alone needs more than the whole cap.
    #[error(
        "the challenge needs {needed} bytes of state but this miner keeps at most {cap}; ask for a smaller size"
    )]
    TooLarge {
        /// Bytes the challenge needs.
        needed: u64,
        /// The configured cap.
        cap: u64,
    },
    /// The cap is taken by other challenges' state for now.
    #[error("state memory is full ({used} of {cap} bytes held); retry after pending openings")]
    Full {
        /// Bytes held or reserved.
        used: u64,
        /// The configured cap.
        cap: u64,
    },
    /// This validator already has state under this challenge id.
    #[error("challenge id is already in use by this validator; use a fresh id")]
    Duplicate,
}

/// The key of one round-1 state: validator hotkey and challenge id.
pub type StateKey = (String, String);

struct Entry<S> {
    state: S,
    bytes: u64,
    expires: Instant,
}

struct Inner<S> {
    entries: HashMap<StateKey, Entry<S>>,
    /// Keys reserved but not yet filled.
    pending: HashMap<StateKey, u64>,
    used: u64,
}

struct Shared<S> {
    inner: Mutex<Inner<S>>,
    cap: u64,
    ttl: Duration,
    metrics: Metrics,
}

impl<S> Shared<S> {
    fn lock(&self) -> MutexGuard<'_, Inner<S>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Round-1 state store. Cheap to clone (shared).
pub struct StateStore<S> {
    shared: Arc<Shared<S>>,
}

impl<S> Clone for StateStore<S> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S> fmt::Debug for StateStore<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateStore")
            .field("cap", &self.shared.cap)
            .field("used", &self.used())
            .field("ttl", &self.shared.ttl)
            .finish_non_exhaustive()
    }
}

/// Bytes set aside for one challenge's state. Dropping it unfilled releases them.
pub struct Reservation<S> {
    store: StateStore<S>,
    key: Option<StateKey>,
    bytes: u64,
}

impl<S> fmt::Debug for Reservation<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reservation")
            .field("key", &self.key)
            .field("bytes", &self.bytes)
            .finish()
    }
}

impl<S> StateStore<S> {
    /// A store holding at most `cap` bytes, each entry for at most `ttl`.
    pub fn new(cap: u64, ttl: Duration, metrics: Metrics) -> Self {
        Self {
            shared: Arc::new(Shared {
                inner: Mutex::new(Inner {
                    entries: HashMap::new(),
                    pending: HashMap::new(),
                    used: 0,
                }),
                cap,
                ttl,
                metrics,
            }),
        }
    }

    /// Bytes held or reserved.
    pub fn used(&self) -> u64 {
        self.shared.lock().used
    }

    /// The configured cap, in bytes.
    pub fn cap(&self) -> u64 {
        self.shared.cap
    }

    /// Reserves `bytes` for `key`, after dropping expired entries. Nothing is allocated here.
    pub fn reserve(&self, key: StateKey, bytes: u64) -> Result<Reservation<S>, StoreError> {
        let cap = self.shared.cap;
        if bytes > cap {
            return Err(StoreError::TooLarge { needed: bytes, cap });
        }
        let mut inner = self.shared.lock();
        self.expire(&mut inner, Instant::now());
        if inner.entries.contains_key(&key) || inner.pending.contains_key(&key) {
            return Err(StoreError::Duplicate);
        }
        if inner.used + bytes > cap {
            return Err(StoreError::Full {
                used: inner.used,
                cap,
            });
        }
        inner.used += bytes;
        inner.pending.insert(key.clone(), bytes);
        self.shared.metrics.state_bytes.set(inner.used as i64);
        Ok(Reservation {
            store: self.clone(),
            key: Some(key),
            bytes,
        })
    }

    /// Takes the state stored under `key`, if present and not expired.
    pub fn take(&self, key: &StateKey) -> Option<S> {
        let mut inner = self.shared.lock();
        self.expire(&mut inner, Instant::now());
        let entry = inner.entries.remove(key)?;
        inner.used -= entry.bytes;
        self.shared.metrics.state_bytes.set(inner.used as i64);
        Some(entry.state)
    }

    /// Drops every expired entry.
    pub fn sweep(&self) {
        let mut inner = self.shared.lock();
        self.expire(&mut inner, Instant::now());
    }

    /// Entries held (filled reservations).
    pub fn len(&self) -> usize {
        self.shared.lock().entries.len()
    }

    /// Whether no state is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn expire(&self, inner: &mut Inner<S>, now: Instant) {
        let mut freed = 0;
        inner.entries.retain(|_, entry| {
            let keep = entry.expires > now;
            if !keep {
                freed += entry.bytes;
            }
            keep
        });
        if freed > 0 {
            inner.used -= freed;
            self.shared.metrics.state_bytes.set(inner.used as i64);
        }
    }
}

impl<S> Reservation<S> {
    /// Bytes reserved.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Stores `state` under the reserved key until it is opened or expires.
    pub fn fill(mut self, state: S) {
        let Some(key) = self.key.take() else { return };
        let shared = &self.store.shared;
        let mut inner = shared.lock();
        inner.pending.remove(&key);
        inner.entries.insert(
            key,
            Entry {
                state,
                bytes: self.bytes,
                expires: Instant::now() + shared.ttl,
            },
        );
    }
}

impl<S> Drop for Reservation<S> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            let mut inner = self.store.shared.lock();
            inner.pending.remove(&key);
            inner.used -= self.bytes;
            self.store.shared.metrics.state_bytes.set(inner.used as i64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(v: &str, id: &str) -> StateKey {
        (v.to_owned(), id.to_owned())
    }

    #[test]
    fn cap_is_checked_before_anything_is_held() {
        let store: StateStore<Vec<u8>> = StateStore::new(1000, Duration::from_secs(60), Metrics::new());
        assert_eq!(
            store.reserve(key("v", "a"), 1001).unwrap_err(),
            StoreError::TooLarge {
                needed: 1001,
                cap: 1000
            }
        );
        let a = store.reserve(key("v", "a"), 600).expect("fits");
        assert!(matches!(
            store.reserve(key("v", "b"), 600),
            Err(StoreError::Full { used: 600, cap: 1000 })
        ));
        assert_eq!(
            store.reserve(key("v", "a"), 10).unwrap_err(),
            StoreError::Duplicate
        );
        drop(a);
        assert_eq!(store.used(), 0, "an unfilled reservation gives its bytes back");
        store
            .reserve(key("v", "b"), 600)
            .expect("fits again")
            .fill(vec![1, 2, 3]);
        assert_eq!(store.used(), 600);
        assert_eq!(
            store.take(&key("w", "b")),
            None,
            "another validator cannot open it"
        );
        assert_eq!(store.take(&key("v", "b")), Some(vec![1, 2, 3]));
        assert_eq!(store.used(), 0);
        assert_eq!(store.take(&key("v", "b")), None, "state opens once");
    }

    #[test]
    fn expired_state_is_dropped_and_frees_memory() {
        let store: StateStore<u8> = StateStore::new(100, Duration::ZERO, Metrics::new());
        store.reserve(key("v", "a"), 100).expect("fits").fill(7);
        // With a zero TTL the entry is already expired: the next reservation may use its bytes.
        store
            .reserve(key("v", "b"), 100)
            .expect("expired state was freed");
        assert_eq!(store.take(&key("v", "a")), None);
    }
}
