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

    /// The `snake_case` name used in reports.
    pub const fn name(self) -> &'static str {
        match self {
            Self::FewerLayers => "fewer_layers",
            Self::SmallerModel => "smaller_model",
            Self::RandomTokens => "random_tokens",
            Self::CachedOtherSeed => "cached_other_seed",
            Self::HalfThenGarbage => "half_then_garbage",
        }
    }
}

/// The cheap models the adversaries run, built once next to the honest one.
#[derive(Debug)]
pub struct Adversaries {
    fewer_layers: Transformer,
    smaller: Transformer,
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
        })
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
