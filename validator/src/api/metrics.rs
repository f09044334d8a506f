//! The API's metrics, registered with the validator's (`GET /metrics`): organic requests by outcome,
//! time to first token, tokens and tokens per second per miner, verification results, and cost per
//! million tokens from the configured GPU price.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of `validator_organic_requests_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    /// `complete`, `partial`, `failed`, `unserved`, or an error code (`unauthorized`, `rate_limited`, …).
    pub outcome: String,
}

/// Labels of per-miner series.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MinerLabel {
    /// The miner's uid.
    pub uid: String,
}

/// Labels of `validator_organic_verifications_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VerifyLabel {
    /// `passed`, a failure reason code, or `skipped`.
    pub result: String,
}

/// The API's metrics. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ApiMetrics {
    /// Requests by outcome.
    pub requests: Family<OutcomeLabel, Counter>,
    /// Time to first token (from the request's arrival), seconds.
    pub ttft: Histogram,
    /// Completion tokens delivered, per miner.
    pub tokens: Family<MinerLabel, Counter>,
    /// Single-stream decode rate of the last answer, per miner (tokens/s, an EMA).
    pub tokens_per_second: Family<MinerLabel, Gauge<f64, AtomicU64>>,
    /// Dollars per million tokens at that rate and the configured GPU price, per miner.
    pub cost_per_million: Family<MinerLabel, Gauge<f64, AtomicU64>>,
    /// Subnet-wide: dollars per million tokens over every answer so far.
    pub subnet_cost_per_million: Gauge<f64, AtomicU64>,
    /// Verification results.
    pub verifications: Family<VerifyLabel, Counter>,
    /// Share of complete answers verified and passed so far.
    pub verified_share: Gauge<f64, AtomicU64>,
    /// Failovers to another miner before the first token.
    pub failovers: Counter,
}

impl ApiMetrics {
    /// Creates the metrics and registers them in `registry` (prefix `organic_`).
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            requests: Family::default(),
            ttft: Histogram::new(exponential_buckets(0.005, 2.0, 14)),
            tokens: Family::default(),
            tokens_per_second: Family::default(),
            cost_per_million: Family::default(),
            subnet_cost_per_million: Gauge::default(),
            verifications: Family::default(),
            verified_share: Gauge::default(),
            failovers: Counter::default(),
        };
        let r = registry.sub_registry_with_prefix("organic");
        r.register("requests", "Organic API requests by outcome", m.requests.clone());
        r.register(
            "ttft_seconds",
            "Time to first token of organic requests",
            m.ttft.clone(),
        );
        r.register(
            "completion_tokens",
            "Completion tokens delivered, per miner",
            m.tokens.clone(),
        );
        r.register(
            "tokens_per_second",
            "Single-stream decode rate per miner (EMA over answers)",
            m.tokens_per_second.clone(),
        );
        r.register(
            "cost_per_million_tokens_dollars",
            "GPU dollars per million tokens per miner at its single-stream rate (an upper bound: batching shares the GPU)",
            m.cost_per_million.clone(),
        );
        r.register(
            "subnet_cost_per_million_tokens_dollars",
            "GPU dollars per million tokens over all answers (generation seconds × price ÷ tokens)",
            m.subnet_cost_per_million.clone(),
        );
        r.register(
            "verifications",
            "Organic verifications by result",
            m.verifications.clone(),
        );
        r.register(
            "verified_share",
            "Share of complete answers re-checked and passed",
            m.verified_share.clone(),
        );
        r.register(
            "failovers",
            "Failovers before the first token",
            m.failovers.clone(),
        );
        m
    }

    /// Counts a request's outcome.
    pub fn outcome(&self, outcome: &str) {
        self.requests
            .get_or_create(&OutcomeLabel {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Counts a verification result.
    pub fn verification(&self, result: &str) {
        self.verifications
            .get_or_create(&VerifyLabel {
                result: result.to_owned(),
            })
            .inc();
    }
}
