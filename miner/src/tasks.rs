//! Task dispatch: the one place that knows which task classes exist.
//!
//! Each task class is one arm in [`admit`], [`compute`] and [`open`] (and one variant of
//! [`TaskState`]); the work itself is the task module's own code in `bench-tasks`. [`admit`] runs on the
//! async side and must not allocate from the request's sizes; [`compute`] and [`open`] run on the
//! device's worker thread.
//!
//! Inference is one round: [`compute`] decodes on the device with a model derived once per [`ModelId`] and
//! kept in the worker's [`InferenceModels`] cache (bounded in bytes, [`Limits::model_cache_bytes`]), and
//! no state is kept for an opening. Seeded models are derived from their seed; a [`ModelId::Gguf`] model is
//! built from the host copy the miner holds ([`HeldModels`], `miner run --model`), and a challenge naming a
//! file the miner does not hold is refused (422 `model_not_held`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use bench_tasks::backend::BackendKind;
use bench_tasks::inference::adversary::Adversaries;
use bench_tasks::inference::tokenizer::Tokenizer;
use bench_tasks::inference::{
    HostWeights, InferenceChallenge, InferenceError, ModelConfig, ModelId, Preset, Transformer, generate,
};
use bench_tasks::matmul::{ChallengeError, MatmulChallenge, MinerError, OpenState};
use bench_tasks::wire::{TaskAnswer, TaskChallenge, TaskClass, TaskOpenRequest, TaskOpenings};
use burn::tensor::Device;

use crate::behavior::Behavior;
use crate::config::Limits;
use crate::error::ApiError;
use crate::models::{HeldModels, Unheld};

/// What a device's worker thread owns.
#[derive(Debug)]
pub struct DeviceContext {
    /// The burn device the work runs on.
    pub device: Device,
    /// Its backend.
    pub backend: BackendKind,
    /// How this miner answers (honest unless built with the `adversary` feature and asked otherwise).
    pub behavior: Behavior,
    /// Inference models built on this device.
    pub models: InferenceModels,
    /// The served real models' continuous batches (`POST /v1/generate`).
    pub serving: crate::serving::Serving,
}

impl DeviceContext {
    /// A context for `device` with an empty model cache of `model_budget_bytes`
    /// ([`Limits::model_cache_bytes`]) that builds seeded models and the real models in `held`.
    pub fn new(
        device: Device,
        backend: BackendKind,
        behavior: Behavior,
        model_budget_bytes: u64,
        held: Arc<HeldModels>,
    ) -> Self {
        Self {
            device,
            backend,
            behavior,
            models: InferenceModels::with_held(model_budget_bytes, held),
            serving: crate::serving::Serving::none(),
        }
    }

    /// The held real model named `key` (its short name or sha256) built on this device, with its tokenizer
    /// and id, building it first within the model budget when needed (worker thread only). This is what a
    /// generation request runs on.
    ///
    /// # Errors
    /// [`ModelError::NotHeld`] when the miner holds no such model, [`ModelError::Busy`] when it does not fit
    /// beside the models in use, [`ModelError::Inference`] when the device fails.
    pub fn real_model(&mut self, key: &str) -> Result<RealOnDevice<'_>, ModelError> {
        let adversarial = self.behavior.inference_adversary().is_some();
        self.models.real_model(key, &self.device, adversarial)
    }
}

/// A held real model built on a device: what [`DeviceContext::real_model`] returns.
#[derive(Debug, Clone, Copy)]
pub struct RealOnDevice<'a> {
    /// The model on the device.
    pub model: &'a Transformer,
    /// Its tokenizer and chat template.
    pub tokenizer: &'a Tokenizer,
    /// Its id ([`ModelId::Gguf`]: name, sha256, shape).
    pub id: &'a ModelId,
}

/// How long a built model must go unused before a request for another model may evict it. Below this,
/// a request that would need its memory is refused (503 `models_busy`) instead: a validator cycling
/// through seeds cannot make the device rebuild models back to back or push out the ones in use.
pub const MODEL_MIN_IDLE: Duration = Duration::from_secs(30);

/// One cached inference model and, for an adversarial miner, the cheap models it runs instead.
#[derive(Debug)]
struct CachedModel {
    id: ModelId,
    model: Transformer,
    adversaries: Option<Adversaries>,
    bytes: u64,
    last_used: Instant,
}

/// Why a model could not be had.
#[derive(Debug)]
pub enum ModelError {
    /// The challenge or the device failed ([`InferenceError`]).
    Inference(InferenceError),
    /// Building it would exceed the budget, and the models that hold it were used within
    /// [`MODEL_MIN_IDLE`].
    Busy {
        /// Bytes the model needs.
        needed: u64,
        /// The cache's budget.
        budget: u64,
    },
    /// A real model the miner does not hold (`/info` lists those it does).
    NotHeld {
        /// The model asked for, as given.
        asked: String,
    },
}

/// The inference models a device worker has built, derived once per [`ModelId`] and reused, within a
/// memory budget: the bytes of every model held (weights, and an adversarial miner's cheaper models)
/// never exceed it. A model not yet built evicts the least recently used models idle for at least
/// [`MODEL_MIN_IDLE`]; when that does not free enough, the request is refused and nothing is built.
///
/// Real models ([`ModelId::Gguf`]) are built from the host copies in [`HeldModels`]; their bytes count
/// against the same budget, `f32` weights like the seeded ones.
#[derive(Debug)]
pub struct InferenceModels {
    cached: Vec<CachedModel>,
    budget: u64,
    held: Arc<HeldModels>,
}

impl InferenceModels {
    /// An empty cache that holds at most `budget_bytes` of seeded models.
    pub fn new(budget_bytes: u64) -> Self {
        Self::with_held(budget_bytes, Arc::new(HeldModels::none()))
    }

    /// An empty cache that holds at most `budget_bytes` of seeded models and of the real models in `held`.
    pub const fn with_held(budget_bytes: u64, held: Arc<HeldModels>) -> Self {
        Self {
            cached: Vec::new(),
            budget: budget_bytes,
            held,
        }
    }

    /// The real models this cache can build.
    pub fn held(&self) -> &HeldModels {
        &self.held
    }

    /// The held real model named `key` (short name or sha256) on `device`, with its tokenizer and id,
    /// built first within the budget when needed (with its adversaries when `adversarial`).
    ///
    /// # Errors
    /// As [`DeviceContext::real_model`].
    pub fn real_model(
        &mut self,
        key: &str,
        device: &Device,
        adversarial: bool,
    ) -> Result<RealOnDevice<'_>, ModelError> {
        let j = self.held.position(key).ok_or_else(|| ModelError::NotHeld {
            asked: key.to_owned(),
        })?;
        let id = self.held.models()[j].id.clone();
        let i = self.index_of(&id, device, adversarial, Instant::now())?;
        let cached = &self.cached[i];
        Ok(RealOnDevice {
            model: &cached.model,
            tokenizer: &self.held.models()[j].tokenizer,
            id: &cached.id,
        })
    }

    /// Models currently built.
    pub fn len(&self) -> usize {
        self.cached.len()
    }

    /// Whether no model is built.
    pub fn is_empty(&self) -> bool {
        self.cached.is_empty()
    }

    /// Bytes of the models held.
    pub fn held_bytes(&self) -> u64 {
        self.cached.iter().map(|c| c.bytes).sum()
    }

    /// Builds (or finds) the model for `id` now; see [`Self::get`].
    pub fn ensure(&mut self, id: &ModelId, device: &Device, adversarial: bool) -> Result<(), ModelError> {
        self.get(id, device, adversarial, Instant::now()).map(drop)
    }

    /// The cached model for `id`, building it (and its adversaries when `adversarial`) on `device` first,
    /// within the budget, at instant `now`.
    fn get(
        &mut self,
        id: &ModelId,
        device: &Device,
        adversarial: bool,
        now: Instant,
    ) -> Result<&CachedModel, ModelError> {
        let i = self.index_of(id, device, adversarial, now)?;
        Ok(&self.cached[i])
    }

    /// The position in the cache of the model for `id`, built first if needed (see [`Self::get`]).
    fn index_of(
        &mut self,
        id: &ModelId,
        device: &Device,
        adversarial: bool,
        now: Instant,
    ) -> Result<usize, ModelError> {
        if let Some(i) = self.cached.iter().position(|c| c.id == *id) {
            self.cached[i].last_used = now;
            return Ok(i);
        }
        // The host weights to build from, and the seed of an adversary's smaller model.
        let held = Arc::clone(&self.held);
        let (weights, adversary_seed) = match id {
            ModelId::Seeded { preset, seed } => (Source::Seeded(preset.config(), *seed), *seed),
            ModelId::Gguf { .. } => {
                let real = held.for_challenge(id).map_err(|e| match e {
                    Unheld::NotHeld => ModelError::NotHeld {
                        asked: id.to_string(),
                    },
                    Unheld::WrongConfig(_) => ModelError::Inference(InferenceError::BadChallenge {
                        field: "model.config",
                        why: "differs from the shape of the held file with this sha256".into(),
                    }),
                })?;
                (Source::Held(&real.weights), 1)
            }
            ModelId::Safetensors { .. } => {
                return Err(ModelError::Inference(InferenceError::BadChallenge {
                    field: "model",
                    why: "names a safetensors model; this miner serves seeded and GGUF models only".into(),
                }));
            }
        };
        let needed = model_bytes(&id.config(), adversarial);
        // Evict idle models, least recently used first, until the new one fits; refuse if it cannot.
        self.cached.sort_by_key(|c| c.last_used);
        let evictable: u64 = self
            .cached
            .iter()
            .filter(|c| now.saturating_duration_since(c.last_used) >= MODEL_MIN_IDLE)
            .map(|c| c.bytes)
            .sum();
        let held = self.held_bytes();
        if needed > self.budget || held.saturating_sub(evictable) + needed > self.budget {
            return Err(ModelError::Busy {
                needed,
                budget: self.budget,
            });
        }
        while self.held_bytes() + needed > self.budget {
            // Sorted by last use and only idle ones count as evictable, so the front one is idle.
            self.cached.remove(0);
        }
        let model = match weights {
            Source::Seeded(config, seed) => {
                Transformer::from_weights(&HostWeights::seeded(config, seed), device)
            }
            Source::Held(weights) => Transformer::from_weights(weights, device),
        }
        .map_err(ModelError::Inference)?;
        // A cheating miner's cheaper models: the truncated copy and a smaller seeded model (same
        // vocabulary), built the same way for seeded and real models.
        let adversaries = if adversarial {
            Some(Adversaries::new(&model, adversary_seed).map_err(ModelError::Inference)?)
        } else {
            None
        };
        self.cached.push(CachedModel {
            id: id.clone(),
            model,
            adversaries,
            bytes: needed,
            last_used: now,
        });
        Ok(self.cached.len() - 1)
    }
}

/// Where a model's host weights come from.
enum Source<'a> {
    /// Derived from a public seed.
    Seeded(ModelConfig, u64),
    /// A held real model's.
    Held(&'a HostWeights),
}

/// Bytes a cached model of shape `config` holds: its f32 weights, and for an adversarial miner a second
/// model of at most the same size.
pub const fn model_bytes(config: &ModelConfig, adversarial: bool) -> u64 {
    config_weight_bytes(config) * if adversarial { 2 } else { 1 }
}

/// Round-1 state kept for a task's opening round.
#[derive(Debug)]
#[non_exhaustive]
pub enum TaskState {
    /// The matmul product (or what stands in for it).
    Matmul(OpenState),
}

/// A challenge that passed admission.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Admission {
    /// Its class.
    pub class: TaskClass,
    /// Bytes of round-1 state it will keep until opened.
    pub state_bytes: u64,
}

/// A finished round 1.
#[derive(Debug)]
pub struct Computed {
    /// The answer to send.
    pub answer: TaskAnswer,
    /// The state to keep for the opening round (none for one-round tasks such as inference).
    pub state: Option<TaskState>,
    /// Seconds of device work.
    pub seconds: f64,
}

/// Checks a challenge against the limits and the real models held, and returns what it will hold, before
/// anything is allocated.
pub fn admit(challenge: &TaskChallenge, limits: &Limits, held: &HeldModels) -> Result<Admission, ApiError> {
    match challenge {
        TaskChallenge::Matmul(c) => {
            c.validate(&limits.matmul).map_err(challenge_error)?;
            Ok(Admission {
                class: TaskClass::Matmul,
                state_bytes: matmul_state_bytes(c),
            })
        }
        TaskChallenge::Inference(c) => {
            c.validate(&limits.inference).map_err(inference_refused)?;
            match &c.model {
                ModelId::Gguf { .. } => admit_held(&c.model, limits, held)?,
                ModelId::Seeded { preset, .. } | ModelId::Safetensors { preset, .. } => {
                    if !served_presets(limits).contains(preset) {
                        return Err(ApiError::new(
                            StatusCode::UNPROCESSABLE_ENTITY,
                            "challenge_too_large",
                            format!(
                                "this miner does not serve the {preset} preset within its inference memory cap; see /info"
                            ),
                        ));
                    }
                }
            }
            let needed = inference_work_bytes(c);
            if needed > limits.inference_memory_cap_bytes {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "challenge_too_large",
                    format!(
                        "the challenge needs about {needed} bytes of device memory, above this miner's cap of {}; \
                         ask for a smaller batch or fewer tokens",
                        limits.inference_memory_cap_bytes
                    ),
                ));
            }
            Ok(Admission {
                class: TaskClass::Inference,
                state_bytes: 0,
            })
        }
    }
}

/// Admits a challenge on a real model: the miner holds the file (by sha256), the challenge states its
/// shape, and its weights fit the memory cap and the model budget.
fn admit_held(id: &ModelId, limits: &Limits, held: &HeldModels) -> Result<(), ApiError> {
    match held.for_challenge(id) {
        Ok(_) => {}
        Err(Unheld::NotHeld) => return Err(not_held(&id.to_string())),
        Err(Unheld::WrongConfig(_)) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "bad_challenge",
                format!(
                    "the challenge's model.config differs from the shape of the held file ({id}); GET /info lists the models held"
                ),
            ));
        }
    }
    let bytes = config_weight_bytes(&id.config());
    if bytes > limits.inference_memory_cap_bytes.min(limits.model_cache_bytes) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "challenge_too_large",
            format!(
                "the weights of {id} ({bytes} bytes) exceed this miner's inference memory cap or model budget"
            ),
        ));
    }
    Ok(())
}

/// 422 `model_not_held`: the miner does not hold the real model asked for.
fn not_held(asked: &str) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "model_not_held",
        format!("this miner does not hold the model {asked}; GET /info lists the models it holds"),
    )
}

/// Bytes of a preset's f32 weights.
pub const fn weight_bytes(preset: Preset) -> u64 {
    config_weight_bytes(&preset.config())
}

/// Bytes of the f32 weights of a model of shape `config`.
pub const fn config_weight_bytes(config: &ModelConfig) -> u64 {
    config.param_count() as u64 * 4
}

/// The presets whose weights fit in the inference memory cap and the model cache budget, smallest
/// first.
pub fn served_presets(limits: &Limits) -> Vec<Preset> {
    Preset::ALL
        .into_iter()
        .filter(|p| weight_bytes(*p) <= limits.inference_memory_cap_bytes.min(limits.model_cache_bytes))
        .collect()
}

/// Estimated device memory of one inference challenge: weights, the KV cache over `prompt_len +
/// new_tokens` positions, and the prefill's largest activations (MLP or vocabulary logits, and the
/// attention scores), all f32. Computed from sizes already validated, so it cannot overflow.
pub fn inference_work_bytes(challenge: &InferenceChallenge) -> u64 {
    let c = challenge.model.config();
    let (b, l, t) = (
        challenge.batch as u64,
        challenge.prompt_len as u64,
        challenge.new_tokens as u64,
    );
    let kv = b * (l + t) * c.n_layers as u64 * 2 * (c.n_kv_heads * c.head_dim()) as u64;
    let wide = b * l * (c.d_ff.max(c.vocab_size) as u64) * 3;
    let scores = b * c.n_heads as u64 * l * (l + t);
    c.param_count() as u64 * 4 + 4 * (kv + wide + scores)
}

/// Bytes a matmul challenge keeps for its openings: the `n × n` f32 `B` factor (or product), and for a
/// batched challenge its stacked sketch and Merkle tree.
pub fn matmul_state_bytes(challenge: &MatmulChallenge) -> u64 {
    let n = u64::from(challenge.n);
    let tree = if challenge.committed() {
        bench_tasks::matmul::commit::tree_bytes(challenge.rows(), challenge.m)
    } else {
        0
    };
    n * n * 4 + tree
}

/// Runs round 1 on the device (worker thread only).
pub fn compute(
    context: &mut DeviceContext,
    challenge: &TaskChallenge,
    limits: &Limits,
) -> Result<Computed, ApiError> {
    let started = Instant::now();
    let (answer, state) = match challenge {
        TaskChallenge::Matmul(c) => {
            let (answer, state) = context
                .behavior
                .matmul(c, &context.device, &limits.matmul)
                .map_err(miner_error)?;
            (TaskAnswer::Matmul(answer), Some(TaskState::Matmul(state)))
        }
        TaskChallenge::Inference(c) => {
            let adversary = context.behavior.inference_adversary();
            // An honest challenge on a served real model runs on the model `POST /v1/generate` uses,
            // resident on the device, rather than on a second copy in the cache.
            if let (None, ModelId::Gguf { sha256, .. }) = (adversary, &c.model)
                && let Some(model) = context.serving.model(sha256)
            {
                let answer = generate(model, c, &limits.inference).map_err(inference_error)?;
                return Ok(finish(context, TaskAnswer::Inference(answer), None, started));
            }
            let cached = context
                .models
                .get(&c.model, &context.device, adversary.is_some(), Instant::now())
                .map_err(model_error)?;
            let answer = match (adversary, &cached.adversaries) {
                (Some(a), Some(adversaries)) => adversaries.answer(a, &cached.model, c, c.seed),
                _ => generate(&cached.model, c, &limits.inference),
            }
            .map_err(inference_error)?;
            (TaskAnswer::Inference(answer), None)
        }
    };
    Ok(finish(context, answer, state, started))
}

/// The behavior's extra delay (an adversary's), then the finished round 1.
fn finish(
    context: &DeviceContext,
    answer: TaskAnswer,
    state: Option<TaskState>,
    started: Instant,
) -> Computed {
    let delay = context.behavior.extra_delay();
    if !delay.is_zero() {
        std::thread::sleep(delay);
    }
    Computed {
        answer,
        state,
        seconds: started.elapsed().as_secs_f64(),
    }
}

/// Answers an opening request from kept state (worker thread only).
pub fn open(state: &TaskState, request: &TaskOpenRequest) -> Result<TaskOpenings, ApiError> {
    match (state, request) {
        (TaskState::Matmul(s), TaskOpenRequest::Matmul(r)) => {
            s.open(r).map(TaskOpenings::Matmul).map_err(miner_error)
        }
    }
}

fn inference_refused(e: InferenceError) -> ApiError {
    let reason = match &e {
        InferenceError::BadChallenge { why, .. } if why.contains("is not in 1..=") => "challenge_too_large",
        _ => "bad_challenge",
    };
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, reason, e.to_string())
}

fn model_error(e: ModelError) -> ApiError {
    match e {
        ModelError::Inference(e) => inference_error(e),
        ModelError::NotHeld { asked } => not_held(&asked),
        ModelError::Busy { needed, budget } => ApiError {
            retry_after: Some(MODEL_MIN_IDLE),
            ..ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "models_busy",
                format!(
                    "this model ({needed} bytes) does not fit in the miner's model budget ({budget} bytes) beside \
                     the models in use; ask for the model other validators use, or retry later"
                ),
            )
        },
    }
}

fn inference_error(e: InferenceError) -> ApiError {
    match e {
        e @ (InferenceError::BadChallenge { .. } | InferenceError::OutOfVocab { .. }) => inference_refused(e),
        other => {
            tracing::error!(error = %other, "inference on the device failed");
            ApiError::internal(
                "the miner's device failed on this request; the operator should run `miner doctor`",
            )
        }
    }
}

fn challenge_error(e: ChallengeError) -> ApiError {
    let reason = match e {
        ChallengeError::TooLarge { .. } => "challenge_too_large",
        ChallengeError::BadBatch { batch, .. } if batch > 0 => "challenge_too_large",
        _ => "bad_challenge",
    };
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, reason, e.to_string())
}

fn miner_error(e: MinerError) -> ApiError {
    match e {
        MinerError::Refused(e) => challenge_error(e),
        other => {
            tracing::error!(error = %other, "device work failed");
            ApiError::internal(
                "the miner's device failed on this request; the operator should run `miner doctor`",
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use bench_tasks::backend::probe;

    use super::*;

    /// Requests for ever new seeds cannot grow the cache past its budget or push out a model in use:
    /// they are refused until it has been idle for [`MODEL_MIN_IDLE`].
    #[test]
    fn the_model_cache_stays_within_its_budget() {
        let device = probe(BackendKind::Flex, 0).unwrap();
        let one = model_bytes(&Preset::Tiny.config(), false);
        let mut models = InferenceModels::new(one + one / 2);
        let seeded = |seed| ModelId::Seeded {
            preset: Preset::Tiny,
            seed,
        };
        let t0 = Instant::now();
        assert!(models.get(&seeded(1), &device, false, t0).is_ok());
        for seed in 2..6 {
            let refused = models.get(&seeded(seed), &device, false, t0 + Duration::from_secs(seed));
            assert!(
                matches!(refused, Err(ModelError::Busy { .. })),
                "seed {seed} was built"
            );
            assert_eq!(models.len(), 1);
            assert!(models.held_bytes() <= one + one / 2);
        }
        // The model in use is found again at no cost, and keeps its place.
        assert!(
            models
                .get(&seeded(1), &device, false, t0 + Duration::from_secs(10))
                .is_ok()
        );
        // Once it has been idle long enough, another model replaces it.
        let later = t0 + Duration::from_secs(10) + MODEL_MIN_IDLE;
        assert!(models.get(&seeded(7), &device, false, later).is_ok());
        assert_eq!(models.len(), 1);
        // A preset larger than the whole budget is never built.
        assert!(matches!(
            models.get(
                &ModelId::Seeded {
                    preset: Preset::Medium,
                    seed: 0
                },
                &device,
                false,
                later + MODEL_MIN_IDLE
            ),
            Err(ModelError::Busy { .. })
        ));
        assert_eq!(models.len(), 1);
    }

    /// A GGUF model the miner does not hold is refused at admission (422 `model_not_held`, naming
    /// /info) and by the cache, which builds nothing.
    #[test]
    fn a_gguf_model_not_held_is_refused_and_nothing_is_built() {
        let id = ModelId::Gguf {
            name: "other".into(),
            sha256: "ab".repeat(32),
            config: Preset::Tiny.config(),
        };
        let challenge = TaskChallenge::Inference(InferenceChallenge {
            model: id.clone(),
            seed: 1,
            batch: 1,
            prompt_len: 4,
            new_tokens: 4,
        });
        let refused = admit(&challenge, &Limits::default(), &HeldModels::none()).unwrap_err();
        assert_eq!(
            (refused.status, refused.reason),
            (StatusCode::UNPROCESSABLE_ENTITY, "model_not_held")
        );
        assert!(refused.message.contains("/info"), "{}", refused.message);

        let device = probe(BackendKind::Flex, 0).unwrap();
        let mut models = InferenceModels::new(u64::MAX);
        assert!(matches!(
            models.get(&id, &device, false, Instant::now()),
            Err(ModelError::NotHeld { .. })
        ));
        assert!(matches!(
            models.real_model("smollm2", &device, false),
            Err(ModelError::NotHeld { .. })
        ));
        assert!(models.is_empty());
    }
}
