//! Server limits: every bound the miner enforces on untrusted input, in one place.

use std::time::Duration;

use bench_tasks::inference::Limits as InferenceLimits;
use bench_tasks::matmul::MatmulLimits;
use serde::{Deserialize, Serialize};

/// The bounds a miner server enforces. Defaults suit one GPU serving a handful of validators.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest request body accepted on any route, in bytes (413 above it).
    pub max_body_bytes: usize,
    /// Largest `POST /v1/ping` body, in bytes (413 above it).
    pub max_ping_bytes: usize,
    /// Jobs waiting for the device beyond the one running (429 when full).
    pub queue_capacity: usize,
    /// Memory kept for round-1 state (the products kept for openings), in bytes. A challenge whose
    /// state alone exceeds it is refused before anything is allocated.
    pub state_memory_cap_bytes: u64,
    /// How long round-1 state waits for its opening request before it is dropped, in seconds.
    pub state_ttl_secs: u64,
    /// Sustained requests per second allowed per validator hotkey.
    pub rate_per_validator: f64,
    /// Burst size of the per-validator rate limit.
    pub burst_per_validator: u32,
    /// Requests one validator may have in flight at once.
    pub concurrency_per_validator: u32,
    /// Matmul sizes served (`[limits.matmul]` in the config file); further bounded by the state cap.
    pub matmul: MatmulLimits,
    /// Inference challenge caps (`[limits.inference]`: `max_batch`, `max_prompt_len`, `max_new_tokens`).
    pub inference: InferenceLimits,
    /// Device memory one inference challenge may use (weights, KV cache, activations), in bytes; a
    /// challenge whose estimate exceeds it is refused before anything is allocated, and presets whose
    /// weights alone exceed it are not served.
    pub inference_memory_cap_bytes: u64,
    /// Memory the device worker may hold in built inference models, in bytes: a model for a new
    /// [`ModelId`](bench_tasks::inference::ModelId) evicts models unused for 30 s or is refused (503
    /// `models_busy`), so validators asking for many seeds cannot pin the miner's memory. Presets whose
    /// weights alone exceed it are not served.
    pub model_cache_bytes: u64,
    /// Sequences the miner decodes together for `POST /v1/generate` on a held real model (listed per
    /// model in `/info` as `max_sequences`).
    pub generate_max_sequences: usize,
    /// Most tokens one `POST /v1/generate` may ask for (listed per model in `/info` as `max_tokens`).
    pub generate_max_tokens: usize,
    /// How long a request may take end to end before the server answers 503, in seconds.
    pub request_timeout_secs: u64,
    /// Connections that may use every route at once; a new one beyond it and the health reserve is
    /// closed at once. Keep `max_connections + health_connections` below the open-file limit.
    pub max_connections: usize,
    /// Connections admitted beyond `max_connections` for the public routes only (`/health`, `/info`,
    /// `/metrics`), so health checks get through a flood.
    pub health_connections: usize,
    /// Connections one IP address may hold open.
    pub max_connections_per_ip: usize,
    /// Time an HTTP/1 client has to send a request's headers, in seconds.
    pub header_read_timeout_secs: u64,
    /// A connection with no request in flight and no bytes moving for this long is closed, in seconds.
    pub idle_timeout_secs: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 1 << 20,
            max_ping_bytes: 64 << 10,
            queue_capacity: 32,
            state_memory_cap_bytes: 4 << 30,
            state_ttl_secs: 60,
            rate_per_validator: 50.0,
            burst_per_validator: 100,
            concurrency_per_validator: 8,
            matmul: MatmulLimits::default(),
            inference: InferenceLimits {
                max_batch: 64,
                max_prompt_len: 256,
                max_new_tokens: 256,
            },
            inference_memory_cap_bytes: 8 << 30,
            model_cache_bytes: 3 << 29,
            generate_max_sequences: 16,
            generate_max_tokens: 512,
            request_timeout_secs: 120,
            max_connections: 512,
            health_connections: 32,
            max_connections_per_ip: 64,
            header_read_timeout_secs: 10,
            idle_timeout_secs: 60,
        }
    }
}

impl Limits {
    /// [`Self::state_ttl_secs`] as a duration.
    pub fn state_ttl(&self) -> Duration {
        Duration::from_secs(self.state_ttl_secs)
    }

    /// [`Self::request_timeout_secs`] as a duration.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }
}
