//! The HTTP wire protocol between validators and miners: routes and JSON bodies, in one place.
//!
//! Miner and validator both speak exactly these types; neither keeps a copy. Task payloads are the
//! task modules' own types (for matmul, [`crate::matmul`]; for inference, [`crate::inference`]), wrapped in envelopes tagged by task class,
//! so adding a task class is one variant in each envelope. The envelopes are deliberately exhaustive:
//! a new variant makes the compiler point at every `match` in the miner and validator that must learn it.
//!
//! | route | method | request body | response body |
//! |---|---|---|---|
//! | [`CHALLENGE_PATH`] | POST | [`ChallengeRequest`] | [`ChallengeResponse`] |
//! | [`OPEN_PATH`] | POST | [`OpenRequest`] | [`OpenResponse`] |
//! | [`PING_PATH`] | POST | any bytes (≤ the miner's ping limit) | the same bytes |
//! | [`INFO_PATH`] | GET | — | [`MinerInfo`] |
//! | [`HEALTH_PATH`] | GET | — | `ok` |
//! | [`METRICS_PATH`] | GET | — | Prometheus text |
//!
//! Matmul takes two rounds (challenge, then openings). Inference takes one: the answer carries the generated
//! tokens and the validator checks them itself, so [`OPEN_PATH`] serves matmul only and a miner answers an
//! opening request for an inference challenge with `unknown_challenge`.
//!
//! Every `POST` is signed by the validator's hotkey (`btauth/1`, or Epistula V2) and every answer to a
//! signed request carries the miner's signed receipt. Errors are [`ErrorBody`] with a 4xx/5xx status.
//!
//! ```
//! use bench_tasks::wire::{ErrorBody, TaskClass};
//!
//! let body: ErrorBody = serde_json::from_str(r#"{"error":"the work queue is full","reason":"queue_full"}"#).unwrap();
//! assert_eq!(body.reason, "queue_full");
//! assert_eq!(serde_json::to_string(&TaskClass::Matmul).unwrap(), r#""matmul""#);
//! ```

use serde::{Deserialize, Serialize};

use crate::{inference, matmul};

/// `POST`: round 1 of a challenge.
pub const CHALLENGE_PATH: &str = "/v1/challenge";
/// `POST`: round 2, the openings the validator chose after round 1.
pub const OPEN_PATH: &str = "/v1/open";
/// `POST`: signed echo, for round-trip time on the same connection.
pub const PING_PATH: &str = "/v1/ping";
/// `GET`: what the miner serves ([`MinerInfo`]).
pub const INFO_PATH: &str = "/info";
/// `GET`: liveness, answered without touching the device.
pub const HEALTH_PATH: &str = "/health";
/// `GET`: Prometheus metrics.
pub const METRICS_PATH: &str = "/metrics";

/// Longest challenge id accepted, in bytes.
pub const MAX_CHALLENGE_ID_LEN: usize = 64;

/// A task class: what kind of work a challenge asks for. Defined in `scoring`
/// ([`scoring::task::TaskClass`]), which weighs classes in the owner's task mix, and re-exported here
/// with the rest of the wire format.
pub use scoring::task::TaskClass;

/// A task's round-1 challenge, tagged by class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "task", content = "params", rename_all = "snake_case")]
pub enum TaskChallenge {
    /// A matmul challenge.
    Matmul(matmul::MatmulChallenge),
    /// An inference challenge (one round: no openings follow).
    Inference(inference::InferenceChallenge),
}

impl TaskChallenge {
    /// The class of this challenge.
    pub const fn class(&self) -> TaskClass {
        match self {
            Self::Matmul(_) => TaskClass::Matmul,
            Self::Inference(_) => TaskClass::Inference,
        }
    }
}

/// Body of `POST /v1/challenge`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChallengeRequest {
    /// The validator's id for this challenge (at most [`MAX_CHALLENGE_ID_LEN`] bytes), echoed in the
    /// answer and named again in the opening request. Unique per validator while the miner holds it.
    pub id: String,
    /// The work.
    pub challenge: TaskChallenge,
}

/// A task's round-1 answer, tagged by class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "task", content = "answer", rename_all = "snake_case")]
pub enum TaskAnswer {
    /// The matmul round-1 answer (the sketch).
    Matmul(matmul::Round1Answer),
    /// The generated tokens, `B` rows of `T` ids: the whole inference answer.
    Inference(inference::InferenceAnswer),
}

impl TaskAnswer {
    /// The class of this answer.
    pub const fn class(&self) -> TaskClass {
        match self {
            Self::Matmul(_) => TaskClass::Matmul,
            Self::Inference(_) => TaskClass::Inference,
        }
    }
}

/// Body of a successful `POST /v1/challenge` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChallengeResponse {
    /// The challenge id, echoed.
    pub id: String,
    /// The answer.
    pub answer: TaskAnswer,
    /// Seconds the job waited in the miner's queue (self-reported; informational).
    pub queue_seconds: f64,
    /// Seconds of device work (self-reported; informational, never trusted for scoring).
    pub compute_seconds: f64,
}

/// A task's round-2 opening request, tagged by class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "task", content = "request", rename_all = "snake_case")]
pub enum TaskOpenRequest {
    /// Rows of the matmul product to open.
    Matmul(matmul::OpeningRequest),
}

/// Body of `POST /v1/open`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenRequest {
    /// The id of the challenge answered in round 1 (by the same validator hotkey).
    pub id: String,
    /// What to open.
    pub open: TaskOpenRequest,
}

/// A task's round-2 openings, tagged by class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "task", content = "openings", rename_all = "snake_case")]
pub enum TaskOpenings {
    /// The requested rows of the matmul product.
    Matmul(matmul::Openings),
}

/// Body of a successful `POST /v1/open` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenResponse {
    /// The challenge id, echoed.
    pub id: String,
    /// The openings.
    pub openings: TaskOpenings,
}

/// The limits a miner enforces on one task class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskLimits {
    /// The class.
    pub task: TaskClass,
    /// For inference: the per-challenge caps and the presets served. Absent for matmul.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inference: Option<InferenceServed>,
    /// Largest size parameter accepted (for matmul: `n`; for inference: generated tokens per challenge,
    /// `batch × new_tokens`).
    pub max_size: u64,
}

/// What a miner serves of the inference task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InferenceServed {
    /// Caps on one challenge.
    pub limits: inference::Limits,
    /// Model presets served (seeded weights).
    pub presets: Vec<inference::Preset>,
}

/// The limits a miner enforces, so validators can size their requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerLimits {
    /// Largest request body, in bytes.
    pub max_body_bytes: u64,
    /// Largest ping body, in bytes.
    pub max_ping_bytes: u64,
    /// Jobs that may wait for the device.
    pub queue_capacity: u64,
    /// Memory for round-1 state, in bytes.
    pub state_memory_cap_bytes: u64,
    /// How long round-1 state waits for its opening, in seconds.
    pub state_ttl_secs: u64,
    /// Sustained requests per second per validator.
    pub rate_per_validator: f64,
    /// Requests in flight per validator.
    pub concurrency_per_validator: u64,
}

/// Body of `GET /info`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MinerInfo {
    /// The miner's software version.
    pub version: String,
    /// The miner's hotkey (ss58): the receiver validators must sign for.
    pub hotkey: String,
    /// The compute backend (`flex`, `wgpu`, `vulkan`, `cuda`).
    pub backend: String,
    /// The device, in words.
    pub device: String,
    /// Device memory in bytes, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_memory_bytes: Option<u64>,
    /// Every device the miner serves, one worker each (`backend`, `device` and `device_memory_bytes` above
    /// describe the first). Absent from older miners: then one device.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<DeviceInfo>,
    /// Task classes served, with their limits.
    pub tasks: Vec<TaskLimits>,
    /// Server-wide limits.
    pub limits: ServerLimits,
}

/// One device a miner serves (`miner run --devices`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// The device index within its backend (CUDA ordinal, wgpu adapter).
    pub index: usize,
    /// The compute backend (`flex`, `wgpu`, `vulkan`, `cuda`).
    pub backend: String,
    /// The device, in words.
    pub name: String,
    /// Device memory in bytes, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
}

/// Body of every error answer: a one-sentence message and a stable `snake_case` reason code
/// (`unsigned`, `stale`, `bad_signature`, `replayed`, `wrong_receiver`, `unknown_hotkey`, `no_permit`,
/// `low_stake`, `body_too_large`, `malformed_json`, `rate_limited`, `queue_full`, `challenge_too_large`,
/// `unknown_challenge`, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong and what to do, in one sentence.
    pub error: String,
    /// The reason code.
    pub reason: String,
}
