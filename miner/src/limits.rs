//! Per-validator rate and concurrency limits (429 with `Retry-After`).
//!
//! Only authenticated, authorized hotkeys reach these limits, so the table is bounded by the validator
//! set; it is further capped at [`MAX_TRACKED`] entries, evicting idle buckets.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Most hotkeys tracked at once.
pub const MAX_TRACKED: usize = 4096;

/// Why a request was held back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// The hotkey sent more than its rate allows.
    #[error("too many requests from this hotkey; retry after {retry_after:?}")]
    Rate {
        /// When a token will be available.
        retry_after: Duration,
    },
    /// The hotkey already has its maximum of requests in flight.
    #[error("too many requests in flight from this hotkey; wait for one to finish")]
    Concurrency,
}

impl LimitError {
    /// The stable reason code.
    pub const fn code(self) -> &'static str {
        match self {
            Self::Rate { .. } => "rate_limited",
            Self::Concurrency => "too_many_in_flight",
        }
    }

    /// The wait to suggest in `Retry-After`.
    pub fn retry_after(self) -> Duration {
        match self {
            Self::Rate { retry_after } => retry_after,
            Self::Concurrency => Duration::from_secs(1),
        }
    }
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    refreshed: Instant,
    in_flight: u32,
}

#[derive(Debug)]
struct Inner {
    buckets: HashMap<String, Bucket>,
}

/// The limiter. Cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct Limiter {
    inner: Arc<Mutex<Inner>>,
    rate: f64,
    burst: f64,
    concurrency: u32,
}

/// One admitted request; releases its concurrency slot when dropped.
#[derive(Debug)]
pub struct Permit {
    limiter: Limiter,
    hotkey: String,
}

impl Limiter {
    /// `rate` requests per second sustained, `burst` at once, `concurrency` in flight, per hotkey.
    pub fn new(rate: f64, burst: u32, concurrency: u32) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                buckets: HashMap::new(),
            })),
            rate: rate.max(f64::MIN_POSITIVE),
            burst: f64::from(burst.max(1)),
            concurrency: concurrency.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Admits one request from `hotkey` or says how long to wait.
    pub fn admit(&self, hotkey: &str) -> Result<Permit, LimitError> {
        let now = Instant::now();
        let mut inner = self.lock();
        if !inner.buckets.contains_key(hotkey) && inner.buckets.len() >= MAX_TRACKED {
            let burst = self.burst;
            let rate = self.rate;
            inner.buckets.retain(|_, b| {
                b.in_flight > 0 || b.tokens + now.duration_since(b.refreshed).as_secs_f64() * rate < burst
            });
        }
        let bucket = inner.buckets.entry(hotkey.to_owned()).or_insert(Bucket {
            tokens: self.burst,
            refreshed: now,
            in_flight: 0,
        });
        let elapsed = now.duration_since(bucket.refreshed).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.burst);
        bucket.refreshed = now;
        if bucket.in_flight >= self.concurrency {
            return Err(LimitError::Concurrency);
        }
        if bucket.tokens < 1.0 {
            let wait = (1.0 - bucket.tokens) / self.rate;
            return Err(LimitError::Rate {
                retry_after: Duration::from_secs_f64(wait.min(3600.0)),
            });
        }
        bucket.tokens -= 1.0;
        bucket.in_flight += 1;
        Ok(Permit {
            limiter: self.clone(),
            hotkey: hotkey.to_owned(),
        })
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut inner = self.limiter.lock();
        if let Some(bucket) = inner.buckets.get_mut(&self.hotkey) {
            bucket.in_flight = bucket.in_flight.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_rate_limited_with_retry_after() {
        let limiter = Limiter::new(0.5, 3, 100);
        let permits: Vec<_> = (0..3)
            .map(|_| limiter.admit("v").expect("within burst"))
            .collect();
        let err = limiter.admit("v").unwrap_err();
        assert_eq!(err.code(), "rate_limited");
        assert!(err.retry_after() > Duration::from_millis(500), "{err:?}");
        limiter.admit("other").expect("hotkeys are limited separately");
        drop(permits);
    }

    #[test]
    fn concurrency_slot_is_released_on_drop() {
        let limiter = Limiter::new(1000.0, 1000, 2);
        let a = limiter.admit("v").expect("first");
        let _b = limiter.admit("v").expect("second");
        assert_eq!(limiter.admit("v").unwrap_err(), LimitError::Concurrency);
        drop(a);
        limiter.admit("v").expect("slot released");
    }
}
