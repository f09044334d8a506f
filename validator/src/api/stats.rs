//! The API's running figures per miner and for the subnet: requests, tokens, decode rate, time to first
//! token, organic checks and cost per million tokens at the configured GPU price.
//!
//! One bookkeeper, [`OrganicStats`], updates both the Prometheus series ([`ApiMetrics`]) and the status
//! page's organic section ([`OrganicView`], on `GET /` and `GET /scores`), so the two always agree.
//! Figures are since the validator started, in memory.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;

use super::metrics::{ApiMetrics, MinerLabel};

/// Times to first token kept per miner for the page's percentiles.
pub const TTFT_WINDOW: usize = 128;

/// Weight of the newest answer in a miner's decode-rate average.
const RATE_ALPHA: f64 = 0.2;

#[derive(Debug, Default)]
struct Miner {
    requests: u64,
    tokens: u64,
    tokens_per_second: f64,
    ttft_ms: VecDeque<f64>,
    checks_passed: u64,
    checks_failed: u64,
}

#[derive(Debug, Default)]
struct Inner {
    miners: BTreeMap<u16, Miner>,
    outcomes: BTreeMap<String, u64>,
    complete: u64,
    verified: u64,
    tokens: u64,
    seconds: f64,
}

/// One miner's organic serving, as the status page shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrganicMinerView {
    /// uid.
    pub uid: u16,
    /// Requests it answered (complete or partial).
    pub requests: u64,
    /// Completion tokens it delivered.
    pub tokens: u64,
    /// Its single-stream decode rate (tokens/s, an average over recent answers; 0 until known).
    pub tokens_per_second: f64,
    /// Median time to first token over its recent answers, ms.
    pub ttft_p50_ms: Option<f64>,
    /// 90th percentile of the same, ms.
    pub ttft_p90_ms: Option<f64>,
    /// Organic checks passed.
    pub checks_passed: u64,
    /// Organic checks failed.
    pub checks_failed: u64,
    /// Dollars per million tokens at its decode rate and the configured GPU price (an upper bound:
    /// batching shares the GPU among sequences).
    pub cost_per_million_dollars: Option<f64>,
}

/// The status page's organic section.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrganicView {
    /// The GPU price the costs assume, dollars per hour (`[api] gpu_dollars_per_hour`).
    pub gpu_dollars_per_hour: f64,
    /// Requests by outcome (`complete`, `partial`, `failed`, `unserved`, or an error code).
    pub requests: BTreeMap<String, u64>,
    /// Share of complete answers re-checked on the CPU and passed.
    pub verified_share: f64,
    /// Dollars per million tokens over every answer: generation seconds × price ÷ tokens.
    pub subnet_cost_per_million_dollars: Option<f64>,
    /// Per miner, by uid.
    pub miners: Vec<OrganicMinerView>,
}

/// The API's running figures. Cheap to clone.
#[derive(Debug, Clone)]
pub struct OrganicStats {
    inner: Arc<Mutex<Inner>>,
    metrics: ApiMetrics,
    dollars_per_hour: f64,
}

fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted.get(i).copied()
}

impl OrganicStats {
    /// Figures kept in `metrics` too, costs at `dollars_per_hour`.
    pub fn new(metrics: ApiMetrics, dollars_per_hour: f64) -> Self {
        Self {
            inner: Arc::default(),
            metrics,
            dollars_per_hour,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn cost(&self, tokens_per_second: f64) -> Option<f64> {
        (tokens_per_second > 0.0).then(|| self.dollars_per_hour / 3600.0 / tokens_per_second * 1e6)
    }

    /// Counts a request that ended with `outcome` and no miner's answer (refused, unserved).
    pub fn refused(&self, outcome: &str) {
        self.metrics.outcome(outcome);
        *self.lock().outcomes.entry(outcome.to_owned()).or_insert(0) += 1;
    }

    /// Counts an answer of miner `uid`: its outcome, `tokens` delivered, time to first token and total
    /// duration (from the request's arrival).
    pub fn served(&self, uid: u16, outcome: &str, tokens: u64, ttft: Option<Duration>, duration: Duration) {
        let m = &self.metrics;
        m.outcome(outcome);
        let label = MinerLabel { uid: uid.to_string() };
        m.tokens.get_or_create(&label).inc_by(tokens);
        if let Some(t) = ttft {
            m.ttft.observe(t.as_secs_f64());
        }
        let mut inner = self.lock();
        *inner.outcomes.entry(outcome.to_owned()).or_insert(0) += 1;
        if outcome == "complete" {
            inner.complete += 1;
        }
        inner.tokens += tokens;
        inner.seconds += duration.as_secs_f64();
        let miner = inner.miners.entry(uid).or_default();
        miner.requests += 1;
        miner.tokens += tokens;
        if let Some(t) = ttft {
            if miner.ttft_ms.len() == TTFT_WINDOW {
                miner.ttft_ms.pop_front();
            }
            miner.ttft_ms.push_back(t.as_secs_f64() * 1e3);
        }
        let decode = duration.saturating_sub(ttft.unwrap_or_default()).as_secs_f64();
        if tokens > 1 && decode > 0.0 {
            let rate = (tokens - 1) as f64 / decode;
            miner.tokens_per_second = if miner.tokens_per_second > 0.0 {
                (1.0 - RATE_ALPHA) * miner.tokens_per_second + RATE_ALPHA * rate
            } else {
                rate
            };
            m.tokens_per_second
                .get_or_create(&label)
                .set(miner.tokens_per_second);
            if let Some(c) = self.cost(miner.tokens_per_second) {
                m.cost_per_million.get_or_create(&label).set(c);
            }
        }
        if inner.tokens > 0 {
            m.subnet_cost_per_million
                .set(self.dollars_per_hour / 3600.0 * inner.seconds / inner.tokens as f64 * 1e6);
        }
        Self::set_share(m, &inner);
    }

    /// Counts an organic check of miner `uid`'s answer: its result code (`passed`, a reason code, or
    /// `skipped`) and whether it passed.
    pub fn checked(&self, uid: u16, result: &str, passed: bool) {
        self.metrics.verification(result);
        if result == "skipped" {
            return;
        }
        let mut inner = self.lock();
        let miner = inner.miners.entry(uid).or_default();
        if passed {
            miner.checks_passed += 1;
            inner.verified += 1;
        } else {
            miner.checks_failed += 1;
        }
        Self::set_share(&self.metrics, &inner);
    }

    fn set_share(m: &ApiMetrics, inner: &Inner) {
        if inner.complete > 0 {
            m.verified_share
                .set(inner.verified as f64 / inner.complete as f64);
        }
    }

    /// A snapshot for the status page.
    pub fn view(&self) -> OrganicView {
        let inner = self.lock();
        OrganicView {
            gpu_dollars_per_hour: self.dollars_per_hour,
            requests: inner.outcomes.clone(),
            verified_share: if inner.complete > 0 {
                inner.verified as f64 / inner.complete as f64
            } else {
                0.0
            },
            subnet_cost_per_million_dollars: (inner.tokens > 0)
                .then(|| self.dollars_per_hour / 3600.0 * inner.seconds / inner.tokens as f64 * 1e6),
            miners: inner
                .miners
                .iter()
                .map(|(&uid, m)| {
                    let mut ttft: Vec<f64> = m.ttft_ms.iter().copied().collect();
                    ttft.sort_by(f64::total_cmp);
                    OrganicMinerView {
                        uid,
                        requests: m.requests,
                        tokens: m.tokens,
                        tokens_per_second: m.tokens_per_second,
                        ttft_p50_ms: percentile(&ttft, 0.5),
                        ttft_p90_ms: percentile(&ttft, 0.9),
                        checks_passed: m.checks_passed,
                        checks_failed: m.checks_failed,
                        cost_per_million_dollars: self.cost(m.tokens_per_second),
                    }
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_and_checks_add_up_per_miner_and_for_the_subnet() {
        let mut registry = prometheus_client::registry::Registry::default();
        let stats = OrganicStats::new(ApiMetrics::register(&mut registry), 3.6);
        // uid 1: 11 tokens in 1.1 s with a 0.1 s first token: 10 tokens/s.
        stats.served(
            1,
            "complete",
            11,
            Some(Duration::from_millis(100)),
            Duration::from_millis(1100),
        );
        stats.served(1, "partial", 0, None, Duration::from_millis(50));
        stats.served(
            2,
            "complete",
            5,
            Some(Duration::from_millis(300)),
            Duration::from_millis(700),
        );
        stats.refused("unserved");
        stats.checked(1, "passed", true);
        stats.checked(2, "wrong_token", false);
        stats.checked(2, "skipped", false);
        let v = stats.view();
        assert_eq!(v.requests["complete"], 2);
        assert_eq!(v.requests["unserved"], 1);
        assert!((v.verified_share - 0.5).abs() < 1e-12);
        let one = &v.miners[0];
        assert_eq!((one.uid, one.requests, one.tokens), (1, 2, 11));
        assert!((one.tokens_per_second - 10.0).abs() < 1e-9, "{one:?}");
        // $3.60 an hour is $0.001 a second: 10 tokens/s costs $100 per million.
        assert!(
            (one.cost_per_million_dollars.unwrap() - 100.0).abs() < 1e-6,
            "{one:?}"
        );
        assert_eq!(one.ttft_p50_ms, Some(100.0));
        let two = &v.miners[1];
        assert_eq!((two.checks_passed, two.checks_failed), (0, 1));
        // 16 tokens over 1.85 s of generation.
        let subnet = v.subnet_cost_per_million_dollars.unwrap();
        assert!((subnet - 0.001 * 1.85 / 16.0 * 1e6).abs() < 1e-6, "{subnet}");
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains(r#"organic_completion_tokens_total{uid="1"} 11"#),
            "{text}"
        );
        assert!(text.contains("organic_verified_share 0.5"), "{text}");
    }

    #[test]
    fn percentiles_pick_from_the_sorted_window() {
        let sorted: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(percentile(&sorted, 0.5), Some(6.0));
        assert_eq!(percentile(&sorted, 0.9), Some(9.0));
        assert_eq!(percentile(&[], 0.5), None);
    }
}
