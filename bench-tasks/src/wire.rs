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
//! | [`GENERATE_PATH`] | POST | [`GenerateRequest`] | [`GenerateEvent`] lines (NDJSON), or [`GenerateResponse`] |
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
/// `POST`: organic generation with a real model ([`GenerateRequest`]), streamed or not.
pub const GENERATE_PATH: &str = "/v1/generate";
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
    /// The index ([`DeviceInfo::index`]) of the device that computed the answer, on a miner serving
    /// several (`miner run --devices`). Self-reported and informational: validators show throughput per
    /// device with it and never score it. Absent from older miners (unknown), and older validators ignore
    /// it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<u32>,
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
    /// Real models the miner holds: served in inference challenges and by `POST /v1/generate`. Absent from
    /// older miners and from miners that serve seeded models only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<ModelInfo>,
}

/// One real model a miner holds (`/info`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// Its short name (`smollm2`); requests may name it by this or by `sha256`.
    pub name: String,
    /// Lowercase hex sha256 of the model file: what challenges and receipts name.
    pub sha256: String,
    /// Arithmetic precision of the forward pass (`f32`, `f16`, `bf16`).
    pub precision: String,
    /// Context length in tokens (prompt and generated together).
    pub context_length: usize,
    /// How many sequences the miner decodes together (`POST /v1/generate` beyond this gets 503).
    pub max_sequences: usize,
    /// Most tokens one `POST /v1/generate` may ask for.
    pub max_tokens: usize,
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

// ---------------------------------------------------------------------------------------------------------
// Organic generation (`POST /v1/generate`)
// ---------------------------------------------------------------------------------------------------------

/// Content type of a streamed generation: one JSON [`GenerateEvent`] per line.
pub const NDJSON_CONTENT_TYPE: &str = "application/x-ndjson";

/// One chat message (`system`, `user` or `assistant`), rendered with the model's chat template.
pub use crate::inference::tokenizer::ChatMessage;

/// What to continue, as [`GenerateRequest::input`] reads it from the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GenerateInput<'a> {
    /// Chat messages, rendered with the model's template and its generation prompt.
    Messages(&'a [ChatMessage]),
    /// Prompt token ids, taken as they are.
    PromptTokens(&'a [u32]),
}

/// Body of `POST /v1/generate`. The decoding rule is [`crate::inference::sampling`]'s, the same code the
/// inference challenge uses, so whoever chose `seed` can replay every token.
///
/// (The workspace builds `serde_json` with `arbitrary_precision`, under which numbers inside flattened or
/// internally tagged types fail to parse; the generation types use neither.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerateRequest {
    /// The model: its name as listed in [`MinerInfo::models`] or its sha256.
    pub model: String,
    /// Chat messages; exactly one of `messages` and `prompt_tokens` is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<Vec<ChatMessage>>,
    /// Prompt token ids; exactly one of `messages` and `prompt_tokens` is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<Vec<u32>>,
    /// Most tokens to generate (at least 1; the miner caps it).
    pub max_tokens: usize,
    /// 0 for greedy (the default); otherwise the softmax temperature, in `(0, 10]`.
    #[serde(default)]
    pub temperature: f32,
    /// Nucleus mass in `(0, 1]` (default 1).
    #[serde(default = "one")]
    pub top_p: f32,
    /// Seed of the sampler's noise (default 0; ignored when greedy).
    #[serde(default)]
    pub seed: u64,
    /// Strings that end generation when they appear in the decoded text (not included in it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop: Vec<String>,
    /// Stream [`GenerateEvent`] lines (`true`) or answer one [`GenerateResponse`] (`false`, the default).
    #[serde(default)]
    pub stream: bool,
}

const fn one() -> f32 {
    1.0
}

impl GenerateRequest {
    /// The decoding rule this request asks for.
    pub const fn sampling(&self) -> crate::inference::Sampling {
        crate::inference::Sampling {
            temperature: self.temperature,
            top_p: self.top_p,
            seed: self.seed,
        }
    }

    /// The input, when exactly one of `messages` and `prompt_tokens` is given.
    ///
    /// # Errors
    /// A sentence saying which is wrong (both or neither given).
    pub fn input(&self) -> Result<GenerateInput<'_>, &'static str> {
        match (&self.messages, &self.prompt_tokens) {
            (Some(m), None) => Ok(GenerateInput::Messages(m)),
            (None, Some(p)) => Ok(GenerateInput::PromptTokens(p)),
            (Some(_), Some(_)) => Err("give either messages or prompt_tokens, not both"),
            (None, None) => Err("give messages or prompt_tokens"),
        }
    }
}

/// Why a generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// The model emitted an end-of-sequence token or the text reached a stop string.
    Stop,
    /// `max_tokens` were generated.
    Length,
}

impl FinishReason {
    /// The `snake_case` name, as on the wire and in receipts.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Stop => "stop",
            Self::Length => "length",
        }
    }
}

/// The end of a generation: counts, timings and the miner's receipt. `R` is
/// `chain::auth::generation::GenerationReceipt` (this crate does not depend on `chain`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerateDone<R> {
    /// Why generation ended.
    pub finish_reason: FinishReason,
    /// Prompt length in tokens (after the chat template).
    pub prompt_tokens: usize,
    /// Tokens generated.
    pub completion_tokens: usize,
    /// Seconds from the request's admission to its first token (self-reported).
    pub ttft_seconds: f64,
    /// Seconds from admission to the last token (self-reported).
    pub total_seconds: f64,
    /// The miner's signature over the request, the model and every generated token.
    pub receipt: R,
}

/// One line of a streamed generation, tagged by its one key: `{"tokens":{…}}`, `{"done":{…}}` or
/// `{"error":{…}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GenerateEvent<R> {
    /// Newly generated tokens and the text they complete (UTF-8 safe: a character split across tokens is
    /// sent with the token that completes it, so `text` may be empty).
    Tokens {
        /// The ids, in order.
        ids: Vec<u32>,
        /// Their decoded text.
        text: String,
    },
    /// The last event of a successful generation.
    Done(GenerateDone<R>),
    /// The generation failed after the stream began; no event follows.
    Error(ErrorBody),
}

/// Body of a non-streamed `POST /v1/generate` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerateResponse<R> {
    /// Every generated id, in order.
    pub ids: Vec<u32>,
    /// Their decoded text (stop strings excluded).
    pub text: String,
    /// Counts, timings and receipt, as in the streamed form's last event.
    pub done: GenerateDone<R>,
}

#[cfg(test)]
mod answer_tests {
    use super::*;

    /// The device index is optional both ways: an older miner's answer (no `device`) parses as unknown,
    /// and an answer without one serializes as an older miner's did.
    #[test]
    fn the_answering_device_is_optional_on_the_wire() {
        let old = r#"{"id":"7-3","answer":{"task":"matmul","answer":{"sketch":[1.0]}},"queue_seconds":0.5,"compute_seconds":1.5}"#;
        let parsed: ChallengeResponse = serde_json::from_str(old).unwrap();
        assert_eq!(parsed.device, None);
        assert_eq!(serde_json::to_string(&parsed).unwrap(), old);
        let on_one = ChallengeResponse {
            device: Some(1),
            ..parsed
        };
        let json = serde_json::to_string(&on_one).unwrap();
        assert!(json.ends_with(r#""compute_seconds":1.5,"device":1}"#), "{json}");
        let back: ChallengeResponse = serde_json::from_str(&json).unwrap();
        assert_eq!(back, on_one);
    }
}

#[cfg(test)]
mod generate_tests {
    use super::*;

    #[test]
    fn a_request_takes_messages_or_prompt_tokens_with_defaults() {
        let r: GenerateRequest = serde_json::from_str(
            r#"{"model":"smollm2","messages":[{"role":"user","content":"hi"}],"max_tokens":8}"#,
        )
        .unwrap();
        assert!(matches!(r.input(), Ok(GenerateInput::Messages(m)) if m[0].content == "hi"));
        assert!(r.sampling().is_greedy());
        assert_eq!((r.top_p, r.stream), (1.0, false));
        let r: GenerateRequest = serde_json::from_str(
            r#"{"model":"ab","prompt_tokens":[1,2],"max_tokens":1,"temperature":0.7,"top_p":0.9,"seed":3}"#,
        )
        .unwrap();
        assert_eq!(r.input(), Ok(GenerateInput::PromptTokens(&[1, 2])));
        assert_eq!((r.temperature, r.top_p, r.seed), (0.7, 0.9, 3));
        let neither: GenerateRequest = serde_json::from_str(r#"{"model":"ab","max_tokens":1}"#).unwrap();
        assert!(neither.input().is_err());
        let both: GenerateRequest =
            serde_json::from_str(r#"{"model":"ab","prompt_tokens":[1],"messages":[],"max_tokens":1}"#)
                .unwrap();
        assert!(both.input().is_err());
        assert!(
            serde_json::from_str::<GenerateRequest>(
                r#"{"model":"ab","prompt_tokens":[1],"max_tokens":1,"x":1}"#
            )
            .is_err()
        );
    }

    #[test]
    fn events_are_one_key_lines_and_round_trip() {
        let e: GenerateEvent<()> = GenerateEvent::Tokens {
            ids: vec![1],
            text: "a".into(),
        };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"tokens":{"ids":[1],"text":"a"}}"#
        );
        let done: GenerateEvent<u8> = serde_json::from_str(
            r#"{"done":{"finish_reason":"length","prompt_tokens":3,"completion_tokens":1,"ttft_seconds":0.1,"total_seconds":0.2,"receipt":7}}"#,
        )
        .unwrap();
        let GenerateEvent::Done(d) = &done else {
            panic!("not a done event: {done:?}");
        };
        assert_eq!(
            (d.finish_reason, d.ttft_seconds, d.receipt),
            (FinishReason::Length, 0.1, 7)
        );
        let response = GenerateResponse {
            ids: vec![4],
            text: "x".into(),
            done: d.clone(),
        };
        let back: GenerateResponse<u8> =
            serde_json::from_str(&serde_json::to_string(&response).unwrap()).unwrap();
        assert_eq!(back, response);
    }
}
