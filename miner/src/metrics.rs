//! Prometheus metrics served on `GET /metrics`.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::{EncodeLabelSet, text::encode};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of `miner_requests_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The route (`/v1/challenge`, …).
    pub route: String,
    /// `ok` or the error reason code (`stale`, `queue_full`, …).
    pub outcome: String,
}

/// Labels of the task latency histograms.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TaskLabels {
    /// The task class (`matmul`, …).
    pub task: String,
    /// The step: `queue_wait`, `compute` or `open`.
    pub step: String,
}

/// Labels of `miner_generate_requests_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GenerateLabels {
    /// `admitted`, a finish reason (`stop`, `length`), or a refusal or failure reason code.
    pub outcome: String,
}

fn latency_histogram() -> Histogram {
    // 0.5 ms … about 33 s.
    Histogram::new(exponential_buckets(0.0005, 2.0, 17))
}

/// Every metric the miner exports. Cheap to clone (shared handles).
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    /// Requests by route and outcome.
    pub requests: Family<RequestLabels, Counter>,
    /// Jobs waiting for the device.
    pub queue_depth: Gauge,
    /// Waiting jobs evicted by a higher-stake job.
    pub queue_evicted: Counter,
    /// Jobs skipped because their requester left before they started.
    pub jobs_cancelled: Counter,
    /// Seconds the device worker spent running jobs.
    pub device_busy_seconds: Counter<f64, AtomicU64>,
    /// Task latency by class and step, in seconds.
    pub task_seconds: Family<TaskLabels, Histogram, fn() -> Histogram>,
    /// Bytes of round-1 state held for openings.
    pub state_bytes: Gauge,
    /// TCP connections accepted.
    pub connections: Counter,
    /// TCP connections closed at once: over the connection cap or the per-IP cap.
    pub connections_refused: Counter,
    /// Connections closed after the idle timeout.
    pub connections_idle_closed: Counter,
    /// `POST /v1/generate` requests by outcome (each request counts `admitted` and then how it ended).
    pub generate_requests: Family<GenerateLabels, Counter>,
    /// Tokens generated for `POST /v1/generate`.
    pub generated_tokens: Counter,
    /// Seconds from a generate request's arrival to its first token.
    pub generate_ttft_seconds: Histogram,
}

impl Metrics {
    /// Creates the metrics and registers them.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("miner");
        let requests = Family::<RequestLabels, Counter>::default();
        let queue_depth = Gauge::default();
        let queue_evicted = Counter::default();
        let jobs_cancelled = Counter::default();
        let device_busy_seconds = Counter::<f64, AtomicU64>::default();
        let task_seconds = Family::<TaskLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let state_bytes = Gauge::default();
        let connections = Counter::default();
        let connections_refused = Counter::default();
        let connections_idle_closed = Counter::default();
        let generate_requests = Family::<GenerateLabels, Counter>::default();
        let generated_tokens = Counter::default();
        let generate_ttft_seconds = latency_histogram();
        registry.register("requests", "Requests by route and outcome", requests.clone());
        registry.register("queue_depth", "Jobs waiting for the device", queue_depth.clone());
        registry.register(
            "queue_evicted",
            "Waiting jobs evicted by a higher-stake job",
            queue_evicted.clone(),
        );
        registry.register(
            "jobs_cancelled",
            "Jobs skipped because the requester left",
            jobs_cancelled.clone(),
        );
        registry.register(
            "device_busy_seconds",
            "Seconds the device worker spent running jobs",
            device_busy_seconds.clone(),
        );
        registry.register(
            "task_seconds",
            "Task latency by class and step",
            task_seconds.clone(),
        );
        registry.register(
            "state_bytes",
            "Bytes of round-1 state held for openings",
            state_bytes.clone(),
        );
        registry.register("connections", "TCP connections accepted", connections.clone());
        registry.register(
            "connections_refused",
            "TCP connections closed at once (connection or per-IP cap)",
            connections_refused.clone(),
        );
        registry.register(
            "connections_idle_closed",
            "Connections closed after the idle timeout",
            connections_idle_closed.clone(),
        );
        registry.register(
            "generate_requests",
            "POST /v1/generate requests by outcome",
            generate_requests.clone(),
        );
        registry.register(
            "generated_tokens",
            "Tokens generated for POST /v1/generate",
            generated_tokens.clone(),
        );
        registry.register(
            "generate_ttft_seconds",
            "Seconds from a generate request's arrival to its first token",
            generate_ttft_seconds.clone(),
        );
        Self {
            registry: Arc::new(registry),
            requests,
            queue_depth,
            queue_evicted,
            jobs_cancelled,
            device_busy_seconds,
            task_seconds,
            state_bytes,
            connections,
            connections_refused,
            connections_idle_closed,
            generate_requests,
            generated_tokens,
            generate_ttft_seconds,
        }
    }

    /// Counts one generate request outcome.
    pub fn count_generate(&self, outcome: &str) {
        self.generate_requests
            .get_or_create(&GenerateLabels {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Records one generation's time to first token.
    pub fn observe_ttft(&self, seconds: f64) {
        self.generate_ttft_seconds.observe(seconds);
    }

    /// Counts one request on `route` with `outcome`.
    pub fn count_request(&self, route: &str, outcome: &str) {
        self.requests
            .get_or_create(&RequestLabels {
                route: route.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Records `seconds` for `task` at `step`.
    pub fn observe_task(&self, task: &str, step: &str, seconds: f64) {
        self.task_seconds
            .get_or_create(&TaskLabels {
                task: task.to_owned(),
                step: step.to_owned(),
            })
            .observe(seconds);
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
