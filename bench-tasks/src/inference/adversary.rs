//! Cheating miners, implemented for real so that tests and the benchmark can measure how often
//! verification catches them.
//!
//! | adversary | what it does | saves |
//! |---|---|---|
//! | `fewer_layers` | decodes with only the first half of the blocks | half the compute |
//! | `smaller_model` | decodes with a seeded model of half the width, depth and heads | ~80% |
//! | `random_tokens` | returns random ids | everything |
//! | `cached_other_seed` | returns an honest answer to another challenge seed (a replayed answer) | everything, if cached |
//! | `half_then_garbage` | decodes the first `⌈T/2⌉` tokens honestly, then random ids | half the steps |
//! | `requantized` | decodes with the block matrices re-quantized to 3 bits (real models only; [`requantize_3bit`]) | a quarter of the weight memory |
//!
//! On a real model ([`Adversaries::for_real_model`]) `smaller_model` is a different model: a seeded one of
//! half the size with the same vocabulary. `requantized` is in [`Adversary::REAL_MODEL`] only: a cheaper
//! quantization of the same model can agree with it on many tokens, so `bench inference --model smollm2`
//! reports the per-token failure rate and the tokens checked until it is caught at 0.99. Measured on
//! SmolLM2-135M-Instruct (B = 2, L = 16, T = 16, s = 2, margin 0.3, 50 challenges each): every adversary,
//! `requantized` included, was caught in 50 of 50 challenges; 58% of the re-quantized model's checked tokens
//! fail, about 5 tokens to catch it at 0.99. `tests/real_model.rs` requires 4 of 4 for every adversary but
//! `requantized`.
//!
//! With `s = 2` sampled sequences of `T ≥ 8` tokens each, every one of them fails verification in at least
//! 99% of challenges on the `tiny` preset: `tests/inference_challenge.rs` requires 50 detections out of 50
//! for each (B = 4, L = 8, T = 8), and `bench inference` reports the measured rates (1.0 for each over 50
//! challenges with B = 16, L = 16, T = 32). A wrong token passes only if it lands within
//! [`DEFAULT_LOGIT_MARGIN`] of the true top logit, and every adversary emits wrong tokens at most positions
//! it fakes (the half-depth model alone picks a different next token for 86% of random prompts; see
//! `tests/inference_model.rs`).
//!
//! [`DEFAULT_LOGIT_MARGIN`]: super::DEFAULT_LOGIT_MARGIN

use serde::{Deserialize, Serialize};

use super::InferenceError;
use super::challenge::{InferenceAnswer, InferenceChallenge, decode_greedy};
use super::config::ModelConfig;
use super::model::Transformer;
use super::seeded::SeededStream;
use super::weights::HostWeights;

/// Domain string of the adversaries' random choices.
pub const ADVERSARY_DOMAIN: &str = "tensorproof/inference/adversary/v1";

/// A way of cheating (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Adversary {
    /// Runs only the first half of the blocks.
    FewerLayers,
    /// Runs a seeded model of half the size in every dimension but the vocabulary.
    SmallerModel,
    /// Returns random token ids.
    RandomTokens,
    /// Replays the honest answer to a different challenge seed.
    CachedOtherSeed,
    /// Decodes the first half honestly, then returns random ids.
    HalfThenGarbage,
    /// Decodes with the block matrices re-quantized to 3 bits (built by [`Adversaries::for_real_model`]).
    Requantized,
}

impl Adversary {
    /// Every adversary.
    pub const ALL: [Self; 5] = [
        Self::FewerLayers,
        Self::SmallerModel,
        Self::RandomTokens,
        Self::CachedOtherSeed,
        Self::HalfThenGarbage,
    ];

    /// The adversaries run against a real model: all of [`ALL`](Self::ALL) and [`Requantized`](Self::Requantized).
    pub const REAL_MODEL: [Self; 6] = [
        Self::FewerLayers,
        Self::SmallerModel,
        Self::RandomTokens,
        Self::CachedOtherSeed,
        Self::HalfThenGarbage,
        Self::Requantized,
    ];

    /// The `snake_case` name used in reports.
    pub const fn name(self) -> &'static str {
        match self {
            Self::FewerLayers => "fewer_layers",
            Self::SmallerModel => "smaller_model",
            Self::RandomTokens => "random_tokens",
            Self::CachedOtherSeed => "cached_other_seed",
            Self::HalfThenGarbage => "half_then_garbage",
            Self::Requantized => "requantized",
        }
    }
}

/// The cheap models the adversaries run, built once next to the honest one.
#[derive(Debug)]
pub struct Adversaries {
    fewer_layers: Transformer,
    smaller: Transformer,
    requantized: Option<Transformer>,
}

impl Adversaries {
    /// Builds the truncated copy of `honest` and a smaller seeded model (same vocabulary, `model_seed`) on
    /// the honest model's device.
    ///
    /// # Errors
    /// [`InferenceError::BadConfig`] if no smaller shape can be derived from the honest one.
    pub fn new(honest: &Transformer, model_seed: u64) -> Result<Self, InferenceError> {
        let config = smaller_config(honest.config())?;
        let smaller = Transformer::from_weights(&HostWeights::seeded(config, model_seed), &honest.device())?;
        Ok(Self {
            fewer_layers: honest.truncated(honest.config().n_layers / 2),
            smaller,
            requantized: None,
        })
    }

    /// The adversaries of a real model: those of [`new`](Self::new) (the smaller model seeded with 1) and
    /// the same weights re-quantized to 3 bits ([`requantize_3bit`]), on the honest model's device.
    ///
    /// # Errors
    /// Those of [`new`](Self::new) and [`Transformer::from_weights`].
    pub fn for_real_model(honest: &Transformer, weights: &HostWeights) -> Result<Self, InferenceError> {
        let mut out = Self::new(honest, 1)?;
        let cheap = weights.map_block_matrices(|_, w| requantize_3bit(w));
        out.requantized = Some(Transformer::from_weights(&cheap, &honest.device())?);
        Ok(out)
    }

    /// The answer `adversary` gives to `challenge`; `honest` is the real model (used where the adversary
    /// does part of the work honestly) and `entropy` drives its random choices.
    ///
    /// # Errors
    /// Those of [`decode_greedy`].
    pub fn answer(
        &self,
        adversary: Adversary,
        honest: &Transformer,
        challenge: &InferenceChallenge,
        entropy: u64,
    ) -> Result<InferenceAnswer, InferenceError> {
        let vocab = challenge.model.config().vocab_size as u32;
        let random = |name: &str, b: usize, len: usize| -> Vec<u32> {
            let s = SeededStream::new(ADVERSARY_DOMAIN, entropy, &format!("{name}/{b}"));
            (0..len as u64).map(|i| s.below(i, vocab)).collect()
        };
        let prompts = challenge.prompts();
        let t = challenge.new_tokens;
        let tokens = match adversary {
            Adversary::FewerLayers => decode_greedy(&self.fewer_layers, &prompts, t)?,
            Adversary::SmallerModel => decode_greedy(&self.smaller, &prompts, t)?,
            Adversary::Requantized => {
                let model = self
                    .requantized
                    .as_ref()
                    .ok_or_else(|| InferenceError::BadChallenge {
                        field: "adversary",
                        why: "requantized is built only for real models (Adversaries::for_real_model)".into(),
                    })?;
                decode_greedy(model, &prompts, t)?
            }
            Adversary::RandomTokens => (0..challenge.batch).map(|b| random("random", b, t)).collect(),
            Adversary::CachedOtherSeed => {
                let mut other = challenge.clone();
                other.seed = challenge.seed ^ (entropy | 1);
                decode_greedy(honest, &other.prompts(), t)?
            }
            Adversary::HalfThenGarbage => {
                let honest_part = t.div_ceil(2);
                let mut rows = decode_greedy(honest, &prompts, honest_part)?;
                for (b, row) in rows.iter_mut().enumerate() {
                    row.extend(random("garbage", b, t - honest_part));
                }
                rows
            }
        };
        Ok(InferenceAnswer { tokens })
    }
}

/// Re-quantizes `w` (row-major, length a multiple of 32 or not) to 3 bits per weight in blocks of 32: each
/// block keeps its minimum and a step `(max − min) / 7`, and every weight becomes the nearest of the 8
/// levels. What a miner saving memory and bandwidth would run instead of the 4-bit original.
pub fn requantize_3bit(w: &[f32]) -> Vec<f32> {
    let mut out = Vec::with_capacity(w.len());
    for block in w.chunks(32) {
        let min = block.iter().copied().fold(f32::INFINITY, f32::min);
        let max = block.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let step = (max - min) / 7.0;
        if step <= 0.0 || !step.is_finite() {
            out.extend_from_slice(block);
            continue;
        }
        out.extend(
            block
                .iter()
                .map(|&x| min + ((x - min) / step).round().clamp(0.0, 7.0) * step),
        );
    }
    out
}

/// Half the width, depth, heads and MLP of `config` (at least one of each), same vocabulary.
fn smaller_config(config: &ModelConfig) -> Result<ModelConfig, InferenceError> {
    let mut c = *config;
    c.d_model = (config.d_model / 2).max(2);
    c.n_layers = (config.n_layers / 2).max(1);
    c.n_heads = (config.n_heads / 2).max(1);
    c.n_kv_heads = (config.n_kv_heads / 2).max(1);
    c.d_ff = (config.d_ff / 2).max(1);
    if c.validate().is_err() {
        c.n_heads = 1;
        c.n_kv_heads = 1;
    }
    c.validate()?;
    Ok(c)
}
