//! Prometheus metrics served on `GET /metrics`.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::{EncodeLabelSet, text::encode};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of `validator_verdicts_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VerdictLabels {
    /// Task class.
    pub task: String,
    /// The verdict reason code (`passed`, `wrong_row`, `timeout`, …).
    pub reason: String,
}

/// Labels of `validator_latency_seconds`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StepLabels {
    /// `rtt`, `challenge`, `open` or `verify`.
    pub step: String,
}

/// Labels of `validator_matmul_tflops`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DtypeLabels {
    /// The matmul dtype class (`f32`, `f16`, `bf16`).
    pub dtype: String,
}

/// Labels of `validator_miner_matmul_tflops`: the uid and the dtype class only, so the series are bounded
/// by the subnet's uids times three classes.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MinerDtypeLabels {
    /// The miner's uid.
    pub uid: u16,
    /// The matmul dtype class (`f32`, `f16`, `bf16`).
    pub dtype: String,
}

/// Labels of `validator_weight_submissions_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// `included`, `failed` or `skipped`.
    pub outcome: String,
}

fn latency_histogram() -> Histogram {
    // 0.25 ms … about 65 s.
    Histogram::new(exponential_buckets(0.00025, 2.0, 19))
}

fn tflops_histogram() -> Histogram {
    // 0.001 … about 1000 TFLOP/s: a 2-core CPU to an H200's tensor cores.
    Histogram::new(exponential_buckets(0.001, 2.0, 21))
}

/// Every metric the validator exports. Cheap to clone (shared handles).
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    /// Rounds committed.
    pub rounds: Counter,
    /// Rounds that failed before committing (chain unreadable, state error).
    pub round_errors: Counter,
    /// Verdicts by task and reason.
    pub verdicts: Family<VerdictLabels, Counter>,
    /// Per-step latency, in seconds.
    pub latency: Family<StepLabels, Histogram, fn() -> Histogram>,
    /// Round wall time, in seconds.
    pub round_seconds: Histogram,
    /// Throughput of passed matmul answers (`2·batch·n³` over the compute time), in TFLOP/s, by dtype
    /// class.
    pub matmul_tflops: Family<DtypeLabels, Histogram, fn() -> Histogram>,
    /// Each miner's achieved matmul throughput by dtype class, in TFLOP/s: the median of its last
    /// [`crate::throughput::WINDOW`] passed answers of the class, as `/scores` shows it.
    pub miner_matmul_tflops: Family<MinerDtypeLabels, Gauge<f64, AtomicU64>>,
    /// Weight submissions by outcome.
    pub weight_submissions: Family<OutcomeLabels, Counter>,
    /// Errors reading the chain.
    pub chain_errors: Counter,
    /// Miners in the last round.
    pub miners: Gauge,
    /// Block of the last round.
    pub block: Gauge,
    /// The OpenAI-compatible API's metrics (`validator_organic_*`).
    pub api: crate::api::metrics::ApiMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates the metrics and registers them under the `validator_` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("validator");
        let rounds = Counter::default();
        let round_errors = Counter::default();
        let verdicts = Family::<VerdictLabels, Counter>::default();
        let latency = Family::<StepLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let round_seconds = Histogram::new(exponential_buckets(0.01, 2.0, 16));
        let matmul_tflops = Family::<DtypeLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            tflops_histogram as fn() -> Histogram,
        );
        let miner_matmul_tflops = Family::<MinerDtypeLabels, Gauge<f64, AtomicU64>>::default();
        let weight_submissions = Family::<OutcomeLabels, Counter>::default();
        let chain_errors = Counter::default();
        let miners = Gauge::default();
        let block = Gauge::default();
        registry.register("rounds", "Rounds committed", rounds.clone());
        registry.register(
            "round_errors",
            "Rounds abandoned before committing",
            round_errors.clone(),
        );
        registry.register(
            "verdicts",
            "Verdicts by task class and reason code",
            verdicts.clone(),
        );
        registry.register(
            "latency_seconds",
            "Per-step latency of miner exchanges",
            latency.clone(),
        );
        registry.register("round_seconds", "Round wall time", round_seconds.clone());
        registry.register(
            "matmul_tflops",
            "Throughput of passed matmul answers (2·batch·n³ FLOPs over compute time, RTT removed) by dtype class, in TFLOP/s",
            matmul_tflops.clone(),
        );
        registry.register(
            "miner_matmul_tflops",
            format!(
                "Each miner's achieved matmul throughput by dtype class: median TFLOP/s of its last {} passed answers of the class",
                crate::throughput::WINDOW
            ),
            miner_matmul_tflops.clone(),
        );
        registry.register(
            "weight_submissions",
            "Weight submissions by outcome",
            weight_submissions.clone(),
        );
        registry.register("chain_errors", "Errors reading the chain", chain_errors.clone());
        registry.register("miners", "Miners challenged in the last round", miners.clone());
        registry.register("block", "Block of the last round", block.clone());
        let api = crate::api::metrics::ApiMetrics::register(&mut registry);
        Self {
            registry: Arc::new(registry),
            rounds,
            round_errors,
            verdicts,
            latency,
            round_seconds,
            matmul_tflops,
            miner_matmul_tflops,
            weight_submissions,
            chain_errors,
            miners,
            block,
            api,
        }
    }

    /// Records a latency sample for `step`.
    pub fn observe(&self, step: &str, seconds: f64) {
        self.latency
            .get_or_create(&StepLabels {
                step: step.to_owned(),
            })
            .observe(seconds);
    }

    /// Records the throughput of a passed matmul answer: `flops` over `compute_seconds`, in class
    /// `dtype` (nothing for a non-positive time).
    pub fn observe_tflops(&self, dtype: &str, flops: f64, compute_seconds: f64) {
        if compute_seconds > 0.0 && flops.is_finite() {
            self.matmul_tflops
                .get_or_create(&DtypeLabels {
                    dtype: dtype.to_owned(),
                })
                .observe(flops / compute_seconds / 1e12);
        }
    }

    /// Replaces every `validator_miner_matmul_tflops` series with `figures` (uid, dtype class, TFLOP/s):
    /// a uid that left the figures (a new hotkey at the uid) loses its series.
    pub fn set_miner_tflops(&self, figures: &[(u16, &str, f64)]) {
        self.miner_matmul_tflops.clear();
        for &(uid, dtype, tflops) in figures {
            self.miner_matmul_tflops
                .get_or_create(&MinerDtypeLabels {
                    uid,
                    dtype: dtype.to_owned(),
                })
                .set(tflops);
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
