//! Model shapes: the [`ModelConfig`] of a Llama-style decoder and the named [`Preset`]s.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::InferenceError;

/// The shape of a Llama-style decoder-only transformer.
///
/// The architecture is fixed (token embedding, `n_layers` pre-norm blocks of grouped-query attention with
/// rotary position embedding and a SwiGLU MLP, a final RMSNorm and an untied output head); this struct
/// holds only its sizes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// Number of token ids; valid ids are `0..vocab_size`.
    pub vocab_size: usize,
    /// Width of the residual stream.
    pub d_model: usize,
    /// Number of transformer blocks.
    pub n_layers: usize,
    /// Number of query heads.
    pub n_heads: usize,
    /// Number of key/value heads (grouped-query attention); divides `n_heads`.
    pub n_kv_heads: usize,
    /// Hidden width of the SwiGLU MLP.
    pub d_ff: usize,
    /// Longest sequence (prompt plus generated tokens) the model accepts.
    pub max_seq_len: usize,
    /// Base of the rotary position embedding frequencies.
    #[serde(deserialize_with = "number_f32")]
    pub rope_theta: f32,
    /// Epsilon added inside every RMSNorm.
    #[serde(deserialize_with = "number_f32")]
    pub norm_eps: f32,
}

/// Reads an `f32` through [`serde_json::Number`]. A config inside an internally tagged [`ModelId`]
/// (`ModelId::Gguf`) is buffered by serde before it is read, and when serde_json's `arbitrary_precision`
/// feature is on in the build (the devnet's dependencies turn it on in `validator localnet` and in the
/// tests), a buffered float arrives as serde_json's private number map, which plain `f32` refuses;
/// `Number` reads both forms, and any other format's floats and integers.
///
/// [`ModelId`]: super::ModelId
fn number_f32<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<f32, D::Error> {
    let n = serde_json::Number::deserialize(deserializer)?;
    n.as_f64()
        .map(|v| v as f32)
        .ok_or_else(|| serde::de::Error::custom(format!("{n} is not a number an f32 can hold")))
}

/// Equality is field by field; a validated config holds no NaN, so it is an equivalence.
impl Eq for ModelConfig {}

impl std::hash::Hash for ModelConfig {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (
            self.vocab_size,
            self.d_model,
            self.n_layers,
            self.n_heads,
            self.n_kv_heads,
            self.d_ff,
            self.max_seq_len,
        )
            .hash(state);
        self.rope_theta.to_bits().hash(state);
        self.norm_eps.to_bits().hash(state);
    }
}

impl ModelConfig {
    /// Width of one attention head (`d_model / n_heads`).
    pub const fn head_dim(&self) -> usize {
        self.d_model / self.n_heads
    }

    /// Total number of parameters (embedding, blocks, final norm and head).
    pub const fn param_count(&self) -> usize {
        let d = self.d_model;
        let kv = self.n_kv_heads * self.head_dim();
        let attn = d * d + 2 * d * kv + d * d;
        let mlp = 3 * d * self.d_ff;
        let block = attn + mlp + 2 * d;
        2 * self.vocab_size * d + self.n_layers * block + d
    }

    /// Multiply-adds per token for one forward step, ignoring attention over the context (which adds
    /// `2 · n_layers · d_model` per token of context).
    pub const fn macs_per_token(&self) -> usize {
        self.param_count() - self.vocab_size * self.d_model
    }

    /// Checks that the sizes describe a model that can be built.
    ///
    /// # Errors
    /// [`InferenceError::BadConfig`] naming the first inconsistent field.
    pub fn validate(&self) -> Result<(), InferenceError> {
        let bad = |field: &'static str, why: String| Err(InferenceError::BadConfig { field, why });
        if self.vocab_size < 2 || self.vocab_size > (1 << 24) {
            return bad(
                "vocab_size",
                format!("{} is not in 2..=16777216", self.vocab_size),
            );
        }
        if self.n_layers == 0 || self.n_layers > 256 {
            return bad("n_layers", format!("{} is not in 1..=256", self.n_layers));
        }
        if self.n_heads == 0 || self.d_model == 0 || !self.d_model.is_multiple_of(self.n_heads) {
            return bad(
                "n_heads",
                format!("{} heads do not divide d_model {}", self.n_heads, self.d_model),
            );
        }
        if !self.head_dim().is_multiple_of(2) {
            return bad(
                "d_model",
                format!("head width {} must be even for rotary embedding", self.head_dim()),
            );
        }
        if self.n_kv_heads == 0 || !self.n_heads.is_multiple_of(self.n_kv_heads) {
            return bad(
                "n_kv_heads",
                format!("{} does not divide n_heads {}", self.n_kv_heads, self.n_heads),
            );
        }
        if self.d_ff == 0 {
            return bad("d_ff", "must be positive".into());
        }
        if self.max_seq_len < 2 {
            return bad("max_seq_len", format!("{} is below 2", self.max_seq_len));
        }
        if !(self.rope_theta.is_finite() && self.rope_theta > 1.0) {
            return bad(
                "rope_theta",
                format!("{} is not a finite number above 1", self.rope_theta),
            );
        }
        if !(self.norm_eps.is_finite() && self.norm_eps > 0.0) {
            return bad(
                "norm_eps",
                format!("{} is not a finite positive number", self.norm_eps),
            );
        }
        Ok(())
    }
}

impl ModelConfig {
    /// The shape of a Llama-architecture GGUF file, from its `llama.*` metadata: `embedding_length`,
    /// `block_count`, `attention.head_count`, `attention.head_count_kv` (default: `head_count`),
    /// `feed_forward_length`, `context_length`, `rope.freq_base` (default 10,000) and
    /// `attention.layer_norm_rms_epsilon`; the vocabulary size is the row count of `token_embd.weight`, and
    /// `tokenizer.ggml.tokens` (when present) must list exactly that many tokens. Rotary scaling other than
    /// none and a rotary dimension other than the head width are refused.
    ///
    /// # Errors
    /// [`InferenceError::Gguf`] naming a missing or mistyped key, [`InferenceError::BadConfig`] for sizes
    /// that disagree.
    pub fn from_gguf(file: &super::gguf::GgufFile<'_>) -> Result<Self, InferenceError> {
        let arch = file.string("general.architecture")?;
        if arch != "llama" {
            return Err(InferenceError::BadConfig {
                field: "general.architecture",
                why: format!("is {arch:?}; only \"llama\" is supported"),
            });
        }
        let size = |key: &str| -> Result<usize, InferenceError> {
            let v = file.uint(key)?;
            usize::try_from(v)
                .ok()
                .filter(|&v| v <= 1 << 24)
                .ok_or_else(|| InferenceError::BadConfig {
                    field: "gguf metadata",
                    why: format!("{key} = {v} is implausibly large"),
                })
        };
        let n_heads = size("llama.attention.head_count")?;
        let n_kv_heads = if file.metadata.contains_key("llama.attention.head_count_kv") {
            size("llama.attention.head_count_kv")?
        } else {
            n_heads
        };
        let rope_theta = if file.metadata.contains_key("llama.rope.freq_base") {
            file.float("llama.rope.freq_base")? as f32
        } else {
            10_000.0
        };
        let embd = file
            .tensors
            .get("token_embd.weight")
            .ok_or_else(|| super::gguf::GgufError::Metadata {
                key: "tensor token_embd.weight".into(),
                why: "missing".into(),
            })?;
        let config = Self {
            vocab_size: embd.shape()[0],
            d_model: size("llama.embedding_length")?,
            n_layers: size("llama.block_count")?,
            n_heads,
            n_kv_heads,
            d_ff: size("llama.feed_forward_length")?,
            max_seq_len: size("llama.context_length")?,
            rope_theta,
            norm_eps: file.float("llama.attention.layer_norm_rms_epsilon")? as f32,
        };
        config.validate()?;
        if embd.shape() != [config.vocab_size, config.d_model] {
            return Err(InferenceError::TensorShape {
                name: "token_embd.weight".into(),
                expected: vec![config.vocab_size, config.d_model],
                found: embd.shape(),
            });
        }
        if file.metadata.contains_key("tokenizer.ggml.tokens") {
            let n = file.array("tokenizer.ggml.tokens")?.len();
            if n != config.vocab_size {
                return Err(InferenceError::BadConfig {
                    field: "vocab_size",
                    why: format!(
                        "tokenizer.ggml.tokens lists {n} tokens, token_embd.weight has {} rows",
                        config.vocab_size
                    ),
                });
            }
        }
        if file.metadata.contains_key("llama.rope.dimension_count") {
            let d = size("llama.rope.dimension_count")?;
            if d != config.head_dim() {
                return Err(InferenceError::BadConfig {
                    field: "head_dim",
                    why: format!(
                        "llama.rope.dimension_count {d} is not the head width {}",
                        config.head_dim()
                    ),
                });
            }
        }
        if let Ok(kind) = file.string("llama.rope.scaling.type")
            && kind != "none"
        {
            return Err(InferenceError::BadConfig {
                field: "rope_theta",
                why: format!("rotary scaling {kind:?} is not supported"),
            });
        }
        Ok(config)
    }
}

/// A named model size.
///
/// | preset | vocab | d_model | layers | heads (kv) | d_ff | max seq | parameters |
/// |---|---|---|---|---|---|---|---|
/// | `tiny` | 2,048 | 256 | 4 | 4 (2) | 704 | 256 | 4.0 M |
/// | `small` | 8,192 | 512 | 8 | 8 (4) | 1,408 | 512 | 32.0 M |
/// | `medium` | 32,000 | 1,024 | 16 | 16 (8) | 2,816 | 1,024 | 254 M |
///
/// `tiny` is for CI and CPU tests, `small` for a quick GPU run, `medium` for real GPU throughput.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preset {
    /// A few million parameters.
    Tiny,
    /// Tens of millions of parameters.
    Small,
    /// Hundreds of millions of parameters.
    Medium,
}

impl Preset {
    /// Every preset, smallest first.
    pub const ALL: [Self; 3] = [Self::Tiny, Self::Small, Self::Medium];

    /// The model shape this preset names.
    pub const fn config(self) -> ModelConfig {
        let (vocab_size, d_model, n_layers, n_heads, n_kv_heads, d_ff, max_seq_len) = match self {
            Self::Tiny => (2048, 256, 4, 4, 2, 704, 256),
            Self::Small => (8192, 512, 8, 8, 4, 1408, 512),
            Self::Medium => (32000, 1024, 16, 16, 8, 2816, 1024),
        };
        ModelConfig {
            vocab_size,
            d_model,
            n_layers,
            n_heads,
            n_kv_heads,
            d_ff,
            max_seq_len,
            rope_theta: 10_000.0,
            norm_eps: 1e-5,
        }
    }

    /// The preset's name as written on the command line (`"tiny"`, …).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Tiny => "tiny",
            Self::Small => "small",
            Self::Medium => "medium",
        }
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Preset {
    type Err = InferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| InferenceError::UnknownPreset(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A config round-trips through JSON on its own and inside a GGUF model id (internally tagged, so
    /// buffered before it is read), whatever serde_json's features in this build.
    #[test]
    fn configs_round_trip_through_json_inside_a_gguf_model_id() {
        let config = ModelConfig {
            rope_theta: 100_000.0,
            norm_eps: 1e-5,
            ..Preset::Small.config()
        };
        let back: ModelConfig = serde_json::from_str(&serde_json::to_string(&config).unwrap()).unwrap();
        assert_eq!(back, config);
        let id = super::super::ModelId::Gguf {
            name: "m".into(),
            sha256: "ab".repeat(32),
            config,
        };
        let text = serde_json::to_string(&id).unwrap();
        let back: super::super::ModelId = serde_json::from_str(&text).unwrap();
        assert_eq!(back, id, "{text}");
        let json = serde_json::to_string(&config).unwrap();
        assert!(json.contains("100000.0"), "{json}");
        let err = serde_json::from_str::<ModelConfig>(&json.replace("100000.0", "\"x\"")).unwrap_err();
        assert!(err.to_string().contains("rope_theta") || err.is_data(), "{err}");
    }

    #[test]
    fn presets_are_valid_and_sized_as_documented() {
        let counts: Vec<usize> = Preset::ALL.iter().map(|p| p.config().param_count()).collect();
        for p in Preset::ALL {
            p.config().validate().unwrap();
        }
        assert!(
            (2_000_000..10_000_000).contains(&counts[0]),
            "tiny has {}",
            counts[0]
        );
        assert!(
            (10_000_000..100_000_000).contains(&counts[1]),
            "small has {}",
            counts[1]
        );
        assert!(
            (100_000_000..1_000_000_000).contains(&counts[2]),
            "medium has {}",
            counts[2]
        );
    }

    #[test]
    fn preset_names_round_trip() {
        for p in Preset::ALL {
            assert_eq!(p.to_string().parse::<Preset>().unwrap(), p);
        }
        assert!(matches!(
            "huge".parse::<Preset>(),
            Err(InferenceError::UnknownPreset(_))
        ));
    }

    #[test]
    fn validate_names_the_bad_field() {
        let mut c = Preset::Tiny.config();
        c.n_kv_heads = 3;
        match c.validate() {
            Err(InferenceError::BadConfig { field, .. }) => assert_eq!(field, "n_kv_heads"),
            other => panic!("expected BadConfig, got {other:?}"),
        }
    }
}
