//! The verifiable inference challenge: a Llama-style transformer that miners decode greedily and
//! validators check with one teacher-forced pass on a CPU.
//!
//! # How it works
//! 1. Miner and validator hold the same model: [`HostWeights::seeded`] derives every weight from a public
//!    model seed with a counter-based generator (no download), or [`HostWeights::load_safetensors`] reads a
//!    Llama-style safetensors file named by its sha256.
//! 2. An [`InferenceChallenge`] names the model, a seed, a batch of `B` prompts of `L` random token ids and
//!    `T` new tokens. The miner runs [`generate`] (greedy decoding with a KV cache, `T` sequential steps)
//!    on its GPU and returns the `B × T` tokens as an [`InferenceAnswer`].
//! 3. After the answer arrives the validator picks `s` of the `B` sequences ([`pick_sequences`]) and runs
//!    [`Verifier::verify`]: one causal forward pass over prompt + generated tokens on the CPU, checking that
//!    each generated token is the model's argmax within a small logit margin ([`DEFAULT_LOGIT_MARGIN`]).
//!    Generation is `T` sequential steps over `B` sequences; the check is one parallel pass over `s`.
//!
//! Cheap imitations are implemented in [`adversary`] and fail verification (see its docs for rates).
//!
//! # Real models
//! [`real::RealModel`] loads a Llama-architecture GGUF file ([`gguf`]: a checked reader and
//! dequantization) with its tokenizer and chat template ([`tokenizer`]); the default is
//! SmolLM2-135M-Instruct (Q4_1), fetched once by `scripts/fetch-model.sh`. Its [`ModelId::Gguf`] names the
//! file by sha256, [`chat`] generates text from it, and [`sampling`] defines greedy and seeded
//! temperature/top-p decoding that [`Verifier::verify_sampled`] replays teacher-forced with a margin
//! ([`real::REAL_MODEL_MARGIN`]).
//!
//! # Example
//! ```
//! use bench_tasks::inference::{
//!     generate, pick_sequences, HostWeights, InferenceChallenge, Limits, ModelId, Preset, Transformer,
//!     Verifier,
//! };
//! use burn::tensor::Device;
//!
//! # fn main() -> Result<(), bench_tasks::inference::InferenceError> {
//! let device = Device::flex();
//! let model_id = ModelId::Seeded { preset: Preset::Tiny, seed: 7 };
//! let weights = HostWeights::seeded(Preset::Tiny.config(), 7);
//! let model = Transformer::from_weights(&weights, &device)?;
//!
//! let challenge =
//!     InferenceChallenge { model: model_id.clone(), seed: 42, batch: 2, prompt_len: 4, new_tokens: 3 };
//! let answer = generate(&model, &challenge, &Limits::default())?; // miner side, any device
//!
//! let verifier = Verifier::new(model_id, model, Limits::default()); // validator side, on CPU
//! let verdict = verifier.verify(&challenge, &answer, &pick_sequences(2, 1, 99));
//! assert!(verdict.passed, "{verdict:?}");
//! # Ok(()) }
//! ```

pub mod adversary;
pub mod challenge;
pub mod chat;
pub mod config;
pub mod engine;
pub mod gguf;
pub mod model;
pub mod real;
pub mod sampling;
pub mod seeded;
pub mod tokenizer;
pub mod verifier;
pub mod weights;

pub use challenge::{InferenceAnswer, InferenceChallenge, Limits, ModelId, generate, generate_sampled};
pub use config::{ModelConfig, Preset};
pub use model::Transformer;
pub use sampling::Sampling;
pub use verifier::{DEFAULT_LOGIT_MARGIN, Verifier, pick_sequences};
pub use weights::HostWeights;

/// Everything that can go wrong building a model, loading weights or running a challenge.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InferenceError {
    /// The preset name is not one of `tiny`, `small`, `medium`.
    #[error("unknown model preset {0:?}: use tiny, small or medium")]
    UnknownPreset(String),
    /// A model size is inconsistent.
    #[error("invalid model config: {field} {why}")]
    BadConfig {
        /// The offending field of [`ModelConfig`].
        field: &'static str,
        /// What is wrong with it.
        why: String,
    },
    /// A challenge or answer field is out of range (beyond a cap, zero, too long for the model).
    #[error("invalid challenge: {field} {why}")]
    BadChallenge {
        /// The offending field.
        field: &'static str,
        /// What is wrong with it.
        why: String,
    },
    /// A token id is not below the vocabulary size.
    #[error("token id {token} in {field} is outside the vocabulary of {vocab_size} tokens")]
    OutOfVocab {
        /// Where the token was found.
        field: String,
        /// The token id.
        token: u32,
        /// The model's vocabulary size.
        vocab_size: usize,
    },
    /// The safetensors file lacks a tensor the model needs.
    #[error("tensor {name} is missing from the safetensors file: export every Llama tensor for this config")]
    MissingTensor {
        /// The Llama-style tensor name.
        name: String,
    },
    /// A tensor has a shape other than the config implies.
    #[error("tensor {name} has shape {found:?}, but the config needs {expected:?}")]
    TensorShape {
        /// The Llama-style tensor name.
        name: String,
        /// The shape the config implies.
        expected: Vec<usize>,
        /// The shape in the file.
        found: Vec<usize>,
    },
    /// A tensor is stored in a dtype the loader does not read.
    #[error("tensor {name} is stored as {dtype}; store it as F32, F16 or BF16")]
    TensorDtype {
        /// The Llama-style tensor name.
        name: String,
        /// The dtype in the file.
        dtype: String,
    },
    /// A tensor holds NaN or infinite values.
    #[error("tensor {name} holds a non-finite value at element {index}")]
    NonFinite {
        /// The Llama-style tensor name.
        name: String,
        /// The first bad element.
        index: usize,
    },
    /// The weights file is not the one the model id names.
    #[error("weights file has sha256 {found}, but {expected} was asked for: fetch the right file")]
    WrongHash {
        /// The sha256 asked for (hex).
        expected: String,
        /// The sha256 of the file read (hex).
        found: String,
    },
    /// The file is not valid safetensors.
    #[error("cannot parse safetensors: {0}")]
    Safetensors(String),
    /// A GGUF file is malformed or lacks what the model needs.
    #[error(transparent)]
    Gguf(#[from] gguf::GgufError),
    /// The tokenizer or chat template of a model file is unusable, or text cannot be tokenized.
    #[error("tokenizer: {field} {why}")]
    Tokenizer {
        /// The metadata key or input.
        field: String,
        /// What is wrong.
        why: String,
    },
    /// A model file in the cache is missing or corrupt (the message names the command that fetches it).
    #[error("model file {path} {why}")]
    ModelFile {
        /// The file.
        path: String,
        /// What is wrong, and the command to run.
        why: String,
    },
    /// Reading or writing a weights file failed.
    #[error("cannot access {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The backend failed while running the model.
    #[error("the {backend} backend failed: {why}")]
    Backend {
        /// The device, as burn prints it.
        backend: String,
        /// The backend's message.
        why: String,
    },
}
