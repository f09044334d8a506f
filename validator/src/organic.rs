//! Organic verdicts on their way into the ledger.
//!
//! The API re-checks a sample of served answers on the CPU (`api::verify`) whenever they finish; the
//! round loop scores in rounds. [`OrganicInbox`] sits between them: the API's verification sink pushes
//! each [`OrganicOutcome`], and the next round takes them all ([`OrganicInbox::drain`]) into its
//! [`crate::ledger::RoundInputs`], so organic verdicts are committed to the state database and the
//! hash-chained round log with the round's challenge verdicts and are scored by the same step (class
//! `organic`, see `scoring::policy::Organic`).
//!
//! The inbox is bounded: past [`OrganicInbox::capacity`] verdicts the oldest are dropped (and counted),
//! so a validator whose rounds stall cannot grow without limit. Verdicts waiting here are in memory only;
//! a restart loses them, while the usage rows in `api.sqlite` keep each answer's verification state.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use crate::state::OrganicOutcome;

/// Verdicts one inbox holds by default (about a minute of a busy API's checks per round, many times
/// over).
pub const DEFAULT_CAPACITY: usize = 10_000;

#[derive(Debug, Default)]
struct Inner {
    waiting: VecDeque<OrganicOutcome>,
    dropped: u64,
}

/// A bounded queue of organic verdicts, shared by the API (which pushes) and the round loop (which
/// drains). Cheap to clone.
#[derive(Debug, Clone)]
pub struct OrganicInbox {
    inner: Arc<Mutex<Inner>>,
    capacity: usize,
}

impl Default for OrganicInbox {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

impl OrganicInbox {
    /// An empty inbox holding at most `capacity` verdicts (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Arc::default(),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The most verdicts it holds.
    pub const fn capacity(&self) -> usize {
        self.capacity
    }

    /// Adds a verdict; when full, the oldest waiting verdict is dropped to make room.
    pub fn push(&self, outcome: OrganicOutcome) {
        let mut inner = self.lock();
        if inner.waiting.len() >= self.capacity {
            inner.waiting.pop_front();
            inner.dropped += 1;
        }
        inner.waiting.push_back(outcome);
    }

    /// Takes every waiting verdict, oldest first.
    pub fn drain(&self) -> Vec<OrganicOutcome> {
        self.lock().waiting.drain(..).collect()
    }

    /// Verdicts waiting now.
    pub fn len(&self) -> usize {
        self.lock().waiting.len()
    }

    /// Whether none is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Verdicts dropped because the inbox was full, since it was made.
    pub fn dropped(&self) -> u64 {
        self.lock().dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(usage_id: i64) -> OrganicOutcome {
        OrganicOutcome {
            usage_id,
            uid: 1,
            hotkey: "hk".into(),
            model_sha256: "ab".into(),
            verdict: bench_tasks::Verdict::pass(3.0),
            ttft_ms: None,
            total_ms: 10.0,
            seed: "1".into(),
            answer_hash: "cd".into(),
            checked_ms: 0,
        }
    }

    #[test]
    fn a_full_inbox_drops_the_oldest_and_drain_empties_it() {
        let inbox = OrganicInbox::new(2);
        let other = inbox.clone();
        for id in 1..=3 {
            other.push(outcome(id));
        }
        assert_eq!((inbox.len(), inbox.dropped()), (2, 1));
        let ids: Vec<i64> = inbox.drain().iter().map(|o| o.usage_id).collect();
        assert_eq!(ids, vec![2, 3]);
        assert!(other.is_empty());
    }
}
