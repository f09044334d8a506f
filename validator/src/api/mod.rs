//! The validator's OpenAI-compatible API (`validator run --api-listen ADDR`): paying requests routed to
//! miners, every receipt checked, every token counted, a sample re-checked on the CPU.
//!
//! - [`openai`]: the OpenAI wire types (requests, answers, SSE chunks, errors).
//! - [`store`]: API keys (hashed) and usage rows, in `api.sqlite`.
//! - [`route`]: the directory of serving miners and the weighted random choice among them.
//! - [`verify`]: the bounded background queue of teacher-forced replays.
//! - [`server`]: the axum server that ties them together.
//! - `bench` (feature `localnet`): `validator bench-api`, the API's figures against an in-process real miner.
//! - [`metrics`]: tokens/s per miner, time to first token, organic outcomes, verified share, cost.
//! - [`stats`]: the one bookkeeper of those figures, for `/metrics` and the status page alike.

#[cfg(feature = "localnet")]
pub mod bench;
pub mod metrics;
pub mod openai;
pub mod route;
pub mod server;
pub mod stats;
pub mod store;
pub mod verify;

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The `[api]` table of `validator.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Where to serve (absent: the API is off).
    pub listen: Option<SocketAddr>,
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// `max_tokens` when a chat request gives none (capped by the model's own limit).
    pub default_max_tokens: u64,
    /// Seconds from a request's arrival to its first token, failovers included.
    pub first_token_deadline_secs: f64,
    /// Seconds one miner gets to send its first event before the next is tried (within the deadline).
    pub attempt_first_token_secs: f64,
    /// Seconds a miner's stream may pause between events.
    pub stall_secs: f64,
    /// Miners tried for one request before it fails.
    pub max_attempts: usize,
    /// Share of answers re-checked on the CPU, in `[0, 1]`.
    pub verify_fraction: f64,
    /// Checks that may wait; beyond this a check is skipped.
    pub verify_queue: usize,
    /// The model the validator holds for verification and for tokenizing text prompts (`smollm2` or a GGUF
    /// path); absent: no verification and no `/v1/completions`.
    pub model: Option<String>,
    /// Seconds between refreshes of the miner directory (`/info` of every miner).
    pub refresh_secs: f64,
    /// GPU price in dollars per hour, for the cost-per-million-tokens figures.
    pub gpu_dollars_per_hour: f64,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: None,
            max_body_bytes: 1 << 20,
            default_max_tokens: 256,
            first_token_deadline_secs: 60.0,
            attempt_first_token_secs: 20.0,
            stall_secs: 20.0,
            max_attempts: 3,
            verify_fraction: 0.1,
            verify_queue: 64,
            model: None,
            refresh_secs: 15.0,
            gpu_dollars_per_hour: 2.0,
        }
    }
}

impl ApiConfig {
    /// The first-token deadline.
    pub fn first_token_deadline(&self) -> Duration {
        Duration::from_secs_f64(self.first_token_deadline_secs.clamp(0.1, 3600.0))
    }

    /// One miner's share of the first-token deadline.
    pub fn attempt_first_token(&self) -> Duration {
        Duration::from_secs_f64(self.attempt_first_token_secs.clamp(0.1, 3600.0))
    }

    /// The stall limit.
    pub fn stall(&self) -> Duration {
        Duration::from_secs_f64(self.stall_secs.clamp(0.1, 3600.0))
    }

    /// The refresh interval.
    pub fn refresh(&self) -> Duration {
        Duration::from_secs_f64(self.refresh_secs.clamp(0.5, 3600.0))
    }
}
