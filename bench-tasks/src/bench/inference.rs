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
//!
//! With `model` set (`--model smollm2` or a GGUF path) the same run uses that real model instead of a
//! seeded preset: the margin defaults to [`REAL_MODEL_MARGIN`], the adversaries are
//! [`Adversary::REAL_MODEL`] (with `requantized`, whose per-token failure rate gives
//! `requantized_tokens_to_detect_99`, the tokens checked until it is caught with probability 0.99), and the
//! report adds prefill and decode rates at batch 1 and batch `B`:
//! * `prefill_tokens_per_second`: `B · L` over the seconds of the first pass (the logits read back);
//! * `decode_tokens_per_second_batch1` / `decode_tokens_per_second`: tokens per second of the `T − 1`
//!   cached steps at batch 1 and at `B` (median of `reps`);
//! * `verify_tokens_per_second`: `s · T` over `verify_seconds`;
//! * `peak_rss_bytes`: the process's peak resident memory (`VmHWM`) at the end of the run.

use std::collections::BTreeMap;

use burn::tensor::Device;
use serde::Serialize;

use super::{median, timed};
use crate::backend::{BackendError, BackendKind};
use crate::inference::adversary::{Adversaries, Adversary};
use crate::inference::model::KvCache;
use crate::inference::real::{REAL_MODEL_MARGIN, RealModel};
use crate::inference::verifier::teacher_forced_logits;
use crate::inference::{
    DEFAULT_LOGIT_MARGIN, HostWeights, InferenceChallenge, InferenceError, Limits, ModelId, Preset,
    Transformer, Verifier, generate, pick_sequences,
};

/// What to measure.
#[derive(Debug, Clone, PartialEq)]
pub struct InferenceBenchOptions {
    /// A real model (`smollm2` or a GGUF path) instead of the seeded preset.
    pub model: Option<String>,
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
    /// Logit margin of the verifier (default: [`DEFAULT_LOGIT_MARGIN`] for presets, [`REAL_MODEL_MARGIN`]
    /// for real models).
    pub margin: Option<f32>,
}

impl Default for InferenceBenchOptions {
    /// flex, `tiny`, `B = 16`, `L = 16`, `T = 32`, `s = 2`, 50 trials, 3 repetitions, the default margin.
    fn default() -> Self {
        Self {
            model: None,
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
            margin: None,
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
    /// The model: the preset's name, or the real model's name and sha256.
    pub model: String,
    /// Model preset (the seeded model's shape; ignored with a real model).
    pub preset: Preset,
    /// Arithmetic precision of the miner's and the verifier's forward passes.
    pub precision: &'static str,
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
    /// `B · L` prompt tokens per second of the prefill pass at batch `B`.
    pub prefill_tokens_per_second: f64,
    /// Tokens per second of the cached decoding steps at batch 1.
    pub decode_tokens_per_second_batch1: f64,
    /// Tokens per second of the cached decoding steps at batch `B`.
    pub decode_tokens_per_second: f64,
    /// `s · T / verify_seconds`.
    pub verify_tokens_per_second: f64,
    /// Fraction of checked tokens of the `requantized` adversary that failed (real models only).
    pub requantized_token_fail_rate: Option<f64>,
    /// Tokens checked until `requantized` is caught with probability 0.99, `ln 0.01 / ln(1 − rate)`.
    pub requantized_tokens_to_detect_99: Option<f64>,
    /// Peak resident memory of the process, bytes (Linux `VmHWM`; 0 elsewhere).
    pub peak_rss_bytes: u64,
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
    let limits = Limits::default();
    let (built, model_build_seconds) = timed(|| -> Result<_, InferenceError> {
        let (id, weights) = match &options.model {
            Some(spec) => {
                let real = RealModel::load(spec)?;
                (real.id, real.weights)
            }
            None => (
                ModelId::Seeded {
                    preset: options.preset,
                    seed: options.model_seed,
                },
                HostWeights::seeded(options.preset.config(), options.model_seed),
            ),
        };
        let model = Transformer::from_weights(&weights, device)?;
        Ok((id, weights, model))
    });
    let (model_id, weights, miner_model) = built?;
    let real = options.model.is_some();
    let config = *weights.config();
    let margin = options.margin.unwrap_or(if real {
        REAL_MODEL_MARGIN
    } else {
        DEFAULT_LOGIT_MARGIN
    });
    let verifier = Verifier::new(
        model_id.clone(),
        Transformer::from_weights(&weights, &Device::flex())?,
        limits,
    )
    .with_margin(margin);
    let adversaries = if real {
        Adversaries::for_real_model(&miner_model, &weights)?
    } else {
        Adversaries::new(&miner_model, options.model_seed)?
    };
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
    let mut prefill_times = Vec::with_capacity(reps);
    let mut decode_times = Vec::with_capacity(reps);
    let mut decode1_times = Vec::with_capacity(reps);
    for _ in 0..reps {
        let (p, d) = prefill_then_decode(&miner_model, &prompts, options.new_tokens)?;
        prefill_times.push(p);
        decode_times.push(d);
        decode1_times.push(prefill_then_decode(&miner_model, &prompts[..1], options.new_tokens)?.1);
    }
    let steps = options.new_tokens.saturating_sub(1) as f64;

    // Honest answers on the miner's device must pass on flex.
    let mut honest_passed = true;
    let mut max_honest_deficit = 0f32;
    for trial in 0..options.trials {
        let c = challenge(trial as u64);
        let a = generate(&miner_model, &c, &limits)?;
        let picks = pick_sequences(options.batch, options.sample, trial as u64 ^ 0xABCD);
        honest_passed &= verifier.verify(&c, &a, &picks).passed;
        let check = verifier.check_tokens(&c, &crate::inference::Sampling::GREEDY, &a, &picks)?;
        let worst = check.deficits.iter().flatten().fold(0f32, |m, &d| m.max(d));
        max_honest_deficit = max_honest_deficit.max(worst);
    }

    let mut detection = BTreeMap::new();
    let list: &[Adversary] = if real {
        &Adversary::REAL_MODEL
    } else {
        &Adversary::ALL
    };
    let (mut requant_failed, mut requant_checked) = (0usize, 0usize);
    for &adversary in list {
        let mut caught = 0usize;
        for trial in 0..options.trials {
            let c = challenge(trial as u64);
            let a = adversaries.answer(adversary, &miner_model, &c, trial as u64 + 1)?;
            let picks = pick_sequences(options.batch, options.sample, trial as u64 ^ 0x5EED);
            if !verifier.verify(&c, &a, &picks).passed {
                caught += 1;
            }
            if adversary == Adversary::Requantized {
                let check = verifier.check_tokens(&c, &crate::inference::Sampling::GREEDY, &a, &picks)?;
                for d in check.deficits.iter().flatten() {
                    requant_checked += 1;
                    requant_failed += usize::from(d.is_nan() || *d > margin);
                }
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
    let requant_rate = (requant_checked > 0).then(|| requant_failed as f64 / requant_checked as f64);
    Ok(InferenceBenchReport {
        task: "inference",
        backend: options.backend,
        model: model_id.to_string(),
        preset: options.preset,
        precision: "f32",
        params: config.param_count()
            - if real {
                config.vocab_size * config.d_model
            } else {
                0
            },
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
        margin,
        trials: options.trials,
        detection,
        prefill_tokens_per_second: (options.batch * options.prompt_len) as f64 / median(&prefill_times),
        decode_tokens_per_second_batch1: steps / median(&decode1_times),
        decode_tokens_per_second: steps * options.batch as f64 / median(&decode_times),
        verify_tokens_per_second: (options.sample.min(options.batch) * options.new_tokens) as f64
            / verify_seconds,
        requantized_token_fail_rate: requant_rate,
        requantized_tokens_to_detect_99: requant_rate.map(|q| 0.01f64.ln() / (1.0 - q).ln()),
        peak_rss_bytes: peak_rss_bytes(),
    })
}

/// Seconds of the prefill pass over `prompts` (logits read back) and of the `new_tokens − 1` greedy
/// cached steps after it (the tokens read back at the end), as [`crate::inference::challenge::decode_greedy`]
/// runs them.
fn prefill_then_decode(
    model: &Transformer,
    prompts: &[Vec<u32>],
    new_tokens: usize,
) -> Result<(f64, f64), InferenceError> {
    use burn::tensor::{Int, Tensor, TensorData};
    let device = model.device();
    let (batch, len) = (prompts.len(), prompts[0].len());
    let ids: Vec<i64> = prompts.iter().flatten().map(|&t| i64::from(t)).collect();
    let start = std::time::Instant::now();
    let mut cache = KvCache::new();
    let input = Tensor::<2, Int>::from_data(TensorData::new(ids, [batch, len]), &device);
    let mut next = model.step(input, &mut cache).argmax(1);
    next.clone()
        .try_into_data()
        .map_err(|e| backend_error(&device, &e))?;
    let prefill = start.elapsed().as_secs_f64();
    let mut steps = Vec::with_capacity(new_tokens);
    for _ in 1..new_tokens {
        next = model.step(next, &mut cache).argmax(1);
        steps.push(next.clone());
    }
    if !steps.is_empty() {
        Tensor::cat(steps, 1)
            .try_into_data()
            .map_err(|e| backend_error(&device, &e))?;
    }
    Ok((prefill, start.elapsed().as_secs_f64() - prefill))
}

fn backend_error(device: &Device, e: &impl std::fmt::Debug) -> InferenceError {
    InferenceError::Backend {
        backend: format!("{device:?}"),
        why: format!("{e:?}"),
    }
}

/// The process's peak resident memory in bytes (`VmHWM` of `/proc/self/status`; 0 where unavailable).
fn peak_rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}
