//! The inference benchmark behind `bench inference`: miner throughput on one device, verification cost on
//! the CPU, and how often each adversary is caught.

use std::collections::BTreeMap;
use std::time::Instant;

use burn::tensor::Device;
use serde::Serialize;

use super::InferenceError;
use super::adversary::{Adversaries, Adversary};
use super::challenge::{InferenceChallenge, Limits, ModelId, generate};
use super::config::Preset;
use super::model::Transformer;
use super::verifier::{DEFAULT_LOGIT_MARGIN, Verifier, pick_sequences};
use super::weights::HostWeights;

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BenchOptions {
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

impl Default for BenchOptions {
    /// `tiny`, `B = 16`, `L = 16`, `T = 32`, `s = 2`, 50 trials, 3 repetitions, the default margin.
    fn default() -> Self {
        Self {
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
pub struct BenchReport {
    /// Always `"inference"`.
    pub task: &'static str,
    /// The miner's backend, as named on the command line.
    pub backend: String,
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
    /// The verifier's logit margin.
    pub margin: f32,
    /// Challenges per adversary.
    pub trials: usize,
    /// Fraction of challenges in which each adversary's answer failed verification.
    pub detection: BTreeMap<&'static str, f64>,
}

/// Runs the benchmark with the miner on `device` (labelled `backend` in the report) and the verifier on
/// flex.
///
/// # Errors
/// Any [`InferenceError`] from building the models or running a challenge.
pub fn run(options: &BenchOptions, device: &Device, backend: &str) -> Result<BenchReport, InferenceError> {
    let config = options.preset.config();
    let model_id = ModelId::Seeded {
        preset: options.preset,
        seed: options.model_seed,
    };
    let limits = Limits::default();

    let started = Instant::now();
    let weights = HostWeights::seeded(config, options.model_seed);
    let miner_model = Transformer::from_weights(&weights, device)?;
    let model_build_seconds = started.elapsed().as_secs_f64();
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
    let bad_picks = |e: String| InferenceError::BadChallenge {
        field: "sample",
        why: e,
    };

    // Timing: one warm-up, then the median of `reps` runs.
    let timed = challenge(1_000_000);
    let answer = generate(&miner_model, &timed, &limits)?;
    let picks = pick_sequences(options.batch, options.sample, 7);
    let warm = verifier.verify(&timed, &answer, &picks);
    if !warm.passed {
        return Err(bad_picks(format!(
            "the honest answer failed verification: {}",
            warm.detail
        )));
    }
    let reps = options.reps.max(1);
    let mut miner_times = Vec::with_capacity(reps);
    let mut verify_times = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t0 = Instant::now();
        let a = generate(&miner_model, &timed, &limits)?;
        miner_times.push(t0.elapsed().as_secs_f64());
        let t0 = Instant::now();
        let v = verifier.verify(&timed, &a, &picks);
        verify_times.push(t0.elapsed().as_secs_f64());
        if !v.passed {
            return Err(bad_picks(format!(
                "the honest answer failed verification: {}",
                v.detail
            )));
        }
    }
    let miner_seconds = median(&mut miner_times);
    let verify_seconds = median(&mut verify_times);

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
    Ok(BenchReport {
        task: "inference",
        backend: backend.to_owned(),
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
        margin: options.margin,
        trials: options.trials,
        detection,
    })
}

fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}
