//! `bench-tasks bench inference`: miner throughput on one device, verification cost on the CPU, their ratio,
//! and how often each adversary is caught, all from one run on one machine.
//!
//! * `miner_seconds`: median over `reps` warm runs of [`generate`] (prompts from the seed, prefill, `T`
//!   greedy steps with a KV cache for `B` prompts, reading the tokens back); the first run is a warm-up.
//! * `verify_seconds`: median of [`Verifier::verify`] on flex with `s` sampled sequences (the model is built
//!   once per validator and not counted; `model_build_seconds` shows that one-time cost).
//! * `honest_passed`: every honest answer of `trials` challenges, decoded on the miner's backend, passed on
//!   flex; `max_honest_deficit` is the largest gap between an honest token's logit and the top logit.
//! * `max_logit_difference`: the largest absolute difference between the teacher-forced logits of the
//!   timed challenge's honest answer (all `B` sequences) computed on the miner's device and on flex: the
//!   figure that calibrates the verifier's logit margin (0 when the miner runs on flex).
//! * `detection`: for each adversary, the fraction of `trials` challenges whose verdict failed.

use std::collections::BTreeMap;

use burn::tensor::Device;
use serde::Serialize;

use super::{median, timed};
use crate::backend::{BackendError, BackendKind};
use crate::inference::adversary::{Adversaries, Adversary};
use crate::inference::verifier::teacher_forced_logits;
use crate::inference::{
    DEFAULT_LOGIT_MARGIN, HostWeights, InferenceChallenge, InferenceError, Limits, ModelId, Preset,
    Transformer, Verifier, generate, pick_sequences,
};

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InferenceBenchOptions {
    /// Backend to run the miner on.
    pub backend: BackendKind,
    /// Device index.
    pub device_index: usize,
    /// Model shape.
    pub preset: Preset,
    /// Public model seed.
    pub model_seed: u64,
    /// Prompts per challenge, `B`.
    pub batch: usize,
    /// Tokens per prompt, `L`.
    pub prompt_len: usize,
    /// Generated tokens per prompt, `T`.
    pub new_tokens: usize,
    /// Sequences the validator checks, `s`.
    pub sample: usize,
    /// Challenges per adversary (and honest challenges) in the detection run; 0 skips it.
    pub trials: usize,
    /// Timed repetitions of the miner and verifier runs (the median is reported).
    pub reps: usize,
    /// Logit margin of the verifier.
    pub margin: f32,
}

impl Default for InferenceBenchOptions {
    /// flex, `tiny`, `B = 16`, `L = 16`, `T = 32`, `s = 2`, 50 trials, 3 repetitions, the default margin.
    fn default() -> Self {
        Self {
            backend: BackendKind::Flex,
            device_index: 0,
            preset: Preset::Tiny,
            model_seed: 1,
            batch: 16,
            prompt_len: 16,
            new_tokens: 32,
            sample: 2,
            trials: 50,
            reps: 3,
            margin: DEFAULT_LOGIT_MARGIN,
        }
    }
}

/// One benchmark run, printed as JSON by `bench inference --json`.
#[derive(Debug, Clone, Serialize)]
pub struct InferenceBenchReport {
    /// Always `"inference"`.
    pub task: &'static str,
    /// Backend of the miner.
    pub backend: BackendKind,
    /// Model preset.
    pub preset: Preset,
    /// Parameter count.
    pub params: usize,
    /// `B`.
    pub batch: usize,
    /// `L`.
    pub prompt_len: usize,
    /// `T`.
    pub new_tokens: usize,
    /// `s`.
    pub sample: usize,
    /// Seconds to derive the seeded weights and upload them to the miner's device (once per model).
    pub model_build_seconds: f64,
    /// Median seconds for the miner to answer one challenge (prefill and `T` decoding steps for `B` prompts).
    pub miner_seconds: f64,
    /// `B · T / miner_seconds`.
    pub tokens_per_second: f64,
    /// Median seconds to verify one answer on the CPU (flex) with `s` sampled sequences.
    pub verify_seconds: f64,
    /// `verify_seconds / miner_seconds`.
    pub verify_ratio: f64,
    /// Whether every honest answer (computed on the miner's backend, checked on flex) passed.
    pub honest_passed: bool,
    /// Honest challenges checked.
    pub honest_trials: usize,
    /// Largest logit deficit of an honest token (0 when every token was the exact argmax on flex).
    pub max_honest_deficit: f32,
    /// Largest absolute logit difference between the miner's device and flex on the same tokens.
    pub max_logit_difference: f32,
    /// The verifier's logit margin.
    pub margin: f32,
    /// Challenges per adversary.
    pub trials: usize,
    /// Fraction of challenges in which each adversary's answer failed verification.
    pub detection: BTreeMap<&'static str, f64>,
}

/// Why the benchmark could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InferenceBenchError {
    /// The backend is not available.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// Building the model or running a challenge failed.
    #[error(transparent)]
    Inference(#[from] InferenceError),
    /// An honest answer failed verification: the margin is too small for this backend, or a bug.
    #[error("an honest answer failed verification: {0}")]
    HonestFailed(String),
}

/// Runs the benchmark: the miner on `options.backend`, the verifier on flex.
///
/// # Errors
/// [`InferenceBenchError`] when the backend is missing, a model cannot be built, or an honest answer fails
/// in the timed runs.
pub fn run(options: &InferenceBenchOptions) -> Result<InferenceBenchReport, InferenceBenchError> {
    let device = crate::backend::probe(options.backend, options.device_index)?;
    let device = &device;
    let config = options.preset.config();
    let model_id = ModelId::Seeded {
        preset: options.preset,
        seed: options.model_seed,
    };
    let limits = Limits::default();

    let (built, model_build_seconds) = timed(|| -> Result<_, InferenceError> {
        let weights = HostWeights::seeded(config, options.model_seed);
        let model = Transformer::from_weights(&weights, device)?;
        Ok((weights, model))
    });
    let (weights, miner_model) = built?;
    let verifier = Verifier::new(
        model_id.clone(),
        Transformer::from_weights(&weights, &Device::flex())?,
        limits,
    )
    .with_margin(options.margin);
    drop(weights);

    let challenge = |seed: u64| InferenceChallenge {
        model: model_id.clone(),
        seed,
        batch: options.batch,
        prompt_len: options.prompt_len,
        new_tokens: options.new_tokens,
    };
    // Timing: one warm-up, then the median of `reps` runs.
    let timed_challenge = challenge(1_000_000);
    let answer = generate(&miner_model, &timed_challenge, &limits)?;
    let picks = pick_sequences(options.batch, options.sample, 7);
    let warm = verifier.verify(&timed_challenge, &answer, &picks);
    if !warm.passed {
        return Err(InferenceBenchError::HonestFailed(warm.detail));
    }
    let reps = options.reps.max(1);
    let mut miner_times = Vec::with_capacity(reps);
    let mut verify_times = Vec::with_capacity(reps);
    for _ in 0..reps {
        let (a, seconds) = timed(|| generate(&miner_model, &timed_challenge, &limits));
        let a = a?;
        miner_times.push(seconds);
        let (v, seconds) = timed(|| verifier.verify(&timed_challenge, &a, &picks));
        verify_times.push(seconds);
        if !v.passed {
            return Err(InferenceBenchError::HonestFailed(v.detail));
        }
    }
    let prompts = timed_challenge.prompts();
    let on_miner = teacher_forced_logits(&miner_model, &prompts, &answer.tokens)?;
    let on_flex = teacher_forced_logits(verifier.model(), &prompts, &answer.tokens)?;
    let max_logit_difference = on_miner
        .iter()
        .zip(&on_flex)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    let miner_seconds = median(&miner_times);
    let verify_seconds = median(&verify_times);

    // Honest answers on the miner's device must pass on flex.
    let mut honest_passed = true;
    let mut max_honest_deficit = 0f32;
    for trial in 0..options.trials {
        let c = challenge(trial as u64);
        let a = generate(&miner_model, &c, &limits)?;
        let picks = pick_sequences(options.batch, options.sample, trial as u64 ^ 0xABCD);
        honest_passed &= verifier.verify(&c, &a, &picks).passed;
        let check = verifier.check_tokens(&c, &a, &picks)?;
        let worst = check.deficits.iter().flatten().fold(0f32, |m, &d| m.max(d));
        max_honest_deficit = max_honest_deficit.max(worst);
    }

    let adversaries = Adversaries::new(&miner_model, options.model_seed)?;
    let mut detection = BTreeMap::new();
    for adversary in Adversary::ALL {
        let mut caught = 0usize;
        for trial in 0..options.trials {
            let c = challenge(trial as u64);
            let a = adversaries.answer(adversary, &miner_model, &c, trial as u64 + 1)?;
            let picks = pick_sequences(options.batch, options.sample, trial as u64 ^ 0x5EED);
            if !verifier.verify(&c, &a, &picks).passed {
                caught += 1;
            }
        }
        let rate = if options.trials == 0 {
            0.0
        } else {
            caught as f64 / options.trials as f64
        };
        detection.insert(adversary.name(), rate);
    }

    let tokens = (options.batch * options.new_tokens) as f64;
    Ok(InferenceBenchReport {
        task: "inference",
        backend: options.backend,
        preset: options.preset,
        params: config.param_count(),
        batch: options.batch,
        prompt_len: options.prompt_len,
        new_tokens: options.new_tokens,
        sample: options.sample,
        model_build_seconds,
        miner_seconds,
        tokens_per_second: tokens / miner_seconds,
        verify_seconds,
        verify_ratio: verify_seconds / miner_seconds,
        honest_passed,
        honest_trials: options.trials,
        max_honest_deficit,
        max_logit_difference,
        margin: options.margin,
        trials: options.trials,
        detection,
    })
}
