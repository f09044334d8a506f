//! Challenge and answer types, prompts derived from the challenge seed, and the miner's greedy decoding.

use burn::tensor::{Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::InferenceError;
use super::config::{ModelConfig, Preset};
use super::model::{KvCache, Transformer};
use super::sampling::Sampling;
use super::seeded::SeededStream;

/// Domain string of the prompt generator.
pub const PROMPTS_DOMAIN: &str = "tensorproof/inference/prompts/v1";

/// Which model a challenge runs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum ModelId {
    /// Weights derived from a public seed ([`HostWeights::seeded`](super::HostWeights::seeded)).
    Seeded {
        /// The model shape.
        preset: Preset,
        /// The public model seed.
        seed: u64,
    },
    /// Weights read from a safetensors file with this sha256
    /// ([`HostWeights::load_safetensors`](super::HostWeights::load_safetensors)).
    Safetensors {
        /// The model shape the file must fill.
        preset: Preset,
        /// Lowercase hex sha256 of the file.
        sha256: String,
    },
    /// A Llama-architecture GGUF file with this sha256 (a real, quantized model such as SmolLM2-135M-Instruct;
    /// see [`super::real`]).
    Gguf {
        /// A short name for people (`smollm2`); not checked.
        name: String,
        /// Lowercase hex sha256 of the file.
        sha256: String,
        /// The model shape the file declares (checked against the file when it is loaded).
        config: ModelConfig,
    },
}

impl ModelId {
    /// The model shape.
    pub const fn config(&self) -> ModelConfig {
        match self {
            Self::Seeded { preset, .. } | Self::Safetensors { preset, .. } => preset.config(),
            Self::Gguf { config, .. } => *config,
        }
    }
}

impl std::fmt::Display for ModelId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Seeded { preset, seed } => write!(f, "{preset} seeded with {seed}"),
            Self::Safetensors { preset, sha256 } => write!(f, "{preset} from safetensors {sha256}"),
            Self::Gguf { name, sha256, .. } => write!(f, "{name} from GGUF {sha256}"),
        }
    }
}

/// Caps a miner or validator puts on challenges before doing any work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Most prompts per challenge.
    pub max_batch: usize,
    /// Longest prompt.
    pub max_prompt_len: usize,
    /// Most generated tokens per prompt.
    pub max_new_tokens: usize,
}

impl Default for Limits {
    /// 256 prompts, 512 prompt tokens and 512 new tokens (and never beyond the model's `max_seq_len`).
    fn default() -> Self {
        Self {
            max_batch: 256,
            max_prompt_len: 512,
            max_new_tokens: 512,
        }
    }
}

/// One inference challenge: `batch` prompts of `prompt_len` token ids drawn from `seed`, each to be continued
/// greedily by `new_tokens` tokens.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct InferenceChallenge {
    /// The model to run.
    pub model: ModelId,
    /// Seed of the prompts (bound by the validator to one miner and one block).
    pub seed: u64,
    /// Number of prompts, `B`.
    pub batch: usize,
    /// Tokens per prompt, `L`.
    pub prompt_len: usize,
    /// Tokens to generate per prompt, `T`.
    pub new_tokens: usize,
}

impl InferenceChallenge {
    /// Checks every field against `limits` and the model's shape, before any allocation that depends on them.
    ///
    /// # Errors
    /// [`InferenceError::BadChallenge`] naming the field.
    pub fn validate(&self, limits: &Limits) -> Result<ModelConfig, InferenceError> {
        let bad = |field: &'static str, why: String| Err(InferenceError::BadChallenge { field, why });
        let config = self.model.config();
        config.validate()?;
        if let ModelId::Safetensors { sha256, .. } | ModelId::Gguf { sha256, .. } = &self.model
            && (sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return bad("model.sha256", "is not 64 hex digits".into());
        }
        if self.batch == 0 || self.batch > limits.max_batch {
            return bad(
                "batch",
                format!("{} is not in 1..={}", self.batch, limits.max_batch),
            );
        }
        if self.prompt_len == 0 || self.prompt_len > limits.max_prompt_len {
            return bad(
                "prompt_len",
                format!("{} is not in 1..={}", self.prompt_len, limits.max_prompt_len),
            );
        }
        if self.new_tokens == 0 || self.new_tokens > limits.max_new_tokens {
            return bad(
                "new_tokens",
                format!("{} is not in 1..={}", self.new_tokens, limits.max_new_tokens),
            );
        }
        if self.prompt_len + self.new_tokens > config.max_seq_len {
            return bad(
                "new_tokens",
                format!(
                    "{} plus prompt_len {} exceeds the model's max_seq_len {}",
                    self.new_tokens, self.prompt_len, config.max_seq_len
                ),
            );
        }
        Ok(config)
    }

    /// The `batch` prompts: token `i` of prompt `b` is `SeededStream::new(PROMPTS_DOMAIN, seed, b).below(i,
    /// vocab_size)` (with `b` written in decimal). Call [`validate`](Self::validate) first.
    pub fn prompts(&self) -> Vec<Vec<u32>> {
        let vocab = self.model.config().vocab_size as u32;
        (0..self.batch)
            .map(|b| {
                let stream = SeededStream::new(PROMPTS_DOMAIN, self.seed, &b.to_string());
                (0..self.prompt_len as u64)
                    .map(|i| stream.below(i, vocab))
                    .collect()
            })
            .collect()
    }

    /// Generated tokens the challenge asks for (`batch · new_tokens`), the work unit of a verdict.
    pub const fn work_units(&self) -> usize {
        self.batch * self.new_tokens
    }
}

/// A miner's answer: `tokens[b]` is the greedy continuation of prompt `b`, `new_tokens` ids long.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InferenceAnswer {
    /// One row of generated ids per prompt.
    pub tokens: Vec<Vec<u32>>,
}

impl InferenceAnswer {
    /// Checks the answer's shape against the challenge and every id against the vocabulary.
    ///
    /// # Errors
    /// [`InferenceError::BadChallenge`] (field `tokens`) for a wrong shape, [`InferenceError::OutOfVocab`]
    /// naming the sequence and position of the first bad id.
    pub fn check_shape(&self, challenge: &InferenceChallenge) -> Result<(), InferenceError> {
        let vocab_size = challenge.model.config().vocab_size;
        if self.tokens.len() != challenge.batch {
            return Err(InferenceError::BadChallenge {
                field: "tokens",
                why: format!(
                    "has {} sequences, the challenge asks for {}",
                    self.tokens.len(),
                    challenge.batch
                ),
            });
        }
        for (b, row) in self.tokens.iter().enumerate() {
            if row.len() != challenge.new_tokens {
                return Err(InferenceError::BadChallenge {
                    field: "tokens",
                    why: format!(
                        "sequence {b} has {} tokens, the challenge asks for {}",
                        row.len(),
                        challenge.new_tokens
                    ),
                });
            }
            if let Some((t, &token)) = row
                .iter()
                .enumerate()
                .find(|(_, tok)| **tok as usize >= vocab_size)
            {
                return Err(InferenceError::OutOfVocab {
                    field: format!("tokens[{b}][{t}]"),
                    token,
                    vocab_size,
                });
            }
        }
        Ok(())
    }
}

/// Checks `challenge` against `limits` and that it names the shape of the loaded `model`.
fn check_model(
    model: &Transformer,
    challenge: &InferenceChallenge,
    limits: &Limits,
) -> Result<(), InferenceError> {
    let config = challenge.validate(limits)?;
    if config == *model.config() {
        Ok(())
    } else {
        Err(InferenceError::BadChallenge {
            field: "model",
            why: format!(
                "names {}, but the loaded model has another shape",
                challenge.model
            ),
        })
    }
}

/// The prompts as one `[batch, len]` id tensor on the model's device, after checking that they are
/// non-empty, of one length, inside the vocabulary, and leave room for `new_tokens` in the context.
fn prompt_tensor(
    model: &Transformer,
    prompts: &[Vec<u32>],
    new_tokens: usize,
) -> Result<(Tensor<2, Int>, usize), InferenceError> {
    let config = model.config();
    let batch = prompts.len();
    let len = prompts.first().map_or(0, Vec::len);
    if batch == 0 || len == 0 || new_tokens == 0 || prompts.iter().any(|p| p.len() != len) {
        return Err(InferenceError::BadChallenge {
            field: "prompts",
            why: "must be non-empty and of one length".into(),
        });
    }
    if len + new_tokens > config.max_seq_len {
        return Err(InferenceError::BadChallenge {
            field: "new_tokens",
            why: format!("{len} + {new_tokens} exceeds max_seq_len {}", config.max_seq_len),
        });
    }
    let ids = flatten_ids(prompts, config.vocab_size, "prompts")?;
    let input = Tensor::<2, Int>::from_data(TensorData::new(ids, [batch, len]), &model.device());
    Ok((input, batch))
}

/// The miner's work with another decoding rule (see [`super::sampling`]): checks the challenge and the
/// rule, then decodes every prompt; greedy decoding takes [`decode_greedy`]'s on-device path.
///
/// # Errors
/// Those of [`generate`] and [`Sampling::validate`].
pub fn generate_sampled(
    model: &Transformer,
    challenge: &InferenceChallenge,
    sampling: &Sampling,
    limits: &Limits,
) -> Result<InferenceAnswer, InferenceError> {
    sampling.validate()?;
    if sampling.is_greedy() {
        return generate(model, challenge, limits);
    }
    check_model(model, challenge, limits)?;
    let tokens = decode_sampled(model, &challenge.prompts(), challenge.new_tokens, sampling)?;
    Ok(InferenceAnswer { tokens })
}

/// Decoding with a KV cache under `sampling`: like [`decode_greedy`], but each step's logits come back to
/// the host, where [`Sampling::choose`] picks every sequence's next token.
///
/// # Errors
/// Those of [`decode_greedy`].
pub fn decode_sampled(
    model: &Transformer,
    prompts: &[Vec<u32>],
    new_tokens: usize,
    sampling: &Sampling,
) -> Result<Vec<Vec<u32>>, InferenceError> {
    let (mut input, batch) = prompt_tensor(model, prompts, new_tokens)?;
    let device = model.device();
    let vocab = model.config().vocab_size;
    let mut cache = KvCache::new();
    let mut rows = vec![Vec::with_capacity(new_tokens); batch];
    for t in 0..new_tokens {
        let logits = model.step(input, &mut cache);
        let data = logits.try_into_data().map_err(|e| InferenceError::Backend {
            backend: format!("{device:?}"),
            why: format!("{e:?}"),
        })?;
        let flat: Vec<f32> = data.iter::<f32>().collect();
        let next: Vec<i64> = (0..batch)
            .map(|b| {
                let c = sampling.choose(&flat[b * vocab..(b + 1) * vocab], b, t);
                rows[b].push(c);
                i64::from(c)
            })
            .collect();
        input = Tensor::from_data(TensorData::new(next, [batch, 1]), &device);
    }
    Ok(rows)
}

/// The miner's work: checks the challenge, then decodes every prompt greedily on the model's device.
///
/// # Errors
/// [`InferenceError::BadChallenge`] for a challenge beyond `limits` or naming another model shape,
/// [`InferenceError::Backend`] if the device fails.
pub fn generate(
    model: &Transformer,
    challenge: &InferenceChallenge,
    limits: &Limits,
) -> Result<InferenceAnswer, InferenceError> {
    check_model(model, challenge, limits)?;
    let tokens = decode_greedy(model, &challenge.prompts(), challenge.new_tokens)?;
    Ok(InferenceAnswer { tokens })
}

/// Greedy decoding with a KV cache: one prefill pass over the prompts (all of one length, ids below the
/// vocabulary size), then `new_tokens − 1` single-token steps. The argmax stays on the device between steps;
/// the tokens are read back once at the end.
///
/// # Errors
/// [`InferenceError::BadChallenge`] for ragged or empty prompts or a sequence longer than the model allows,
/// [`InferenceError::OutOfVocab`] for an id outside the vocabulary, [`InferenceError::Backend`] if the device
/// fails.
pub fn decode_greedy(
    model: &Transformer,
    prompts: &[Vec<u32>],
    new_tokens: usize,
) -> Result<Vec<Vec<u32>>, InferenceError> {
    let (input, _) = prompt_tensor(model, prompts, new_tokens)?;
    let device = model.device();
    let mut cache = KvCache::new();
    let mut next = model.step(input, &mut cache).argmax(1);
    let mut steps = Vec::with_capacity(new_tokens);
    steps.push(next.clone());
    for _ in 1..new_tokens {
        next = model.step(next, &mut cache).argmax(1);
        steps.push(next.clone());
    }
    let all = Tensor::cat(steps, 1);
    let data = all.try_into_data().map_err(|e| InferenceError::Backend {
        backend: format!("{device:?}"),
        why: format!("{e:?}"),
    })?;
    let flat: Vec<i64> = data.iter::<i64>().collect();
    Ok(flat
        .chunks(new_tokens)
        .map(|row| row.iter().map(|&t| t as u32).collect())
        .collect())
}

/// Row-major i64 ids of equal-length sequences, each checked against the vocabulary.
pub(crate) fn flatten_ids(
    rows: &[Vec<u32>],
    vocab_size: usize,
    field: &str,
) -> Result<Vec<i64>, InferenceError> {
    let mut out = Vec::with_capacity(rows.iter().map(Vec::len).sum());
    for (b, row) in rows.iter().enumerate() {
        for (i, &token) in row.iter().enumerate() {
            if token as usize >= vocab_size {
                return Err(InferenceError::OutOfVocab {
                    field: format!("{field}[{b}][{i}]"),
                    token,
                    vocab_size,
                });
            }
            out.push(i64::from(token));
        }
    }
    Ok(out)
}
