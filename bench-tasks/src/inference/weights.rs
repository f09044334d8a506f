//! Model weights on the host: derived from a public seed, or read from a Llama-style safetensors file.
//!
//! Tensors use the Hugging Face Llama names and layouts (linear weights are `[out, in]`):
//! `model.embed_tokens.weight`, `model.layers.{i}.input_layernorm.weight`,
//! `model.layers.{i}.self_attn.{q,k,v,o}_proj.weight`, `model.layers.{i}.post_attention_layernorm.weight`,
//! `model.layers.{i}.mlp.{gate,up,down}_proj.weight`, `model.norm.weight` and `lm_head.weight`.
//!
//! # Seeded weights
//! Element `j` (row-major, in the layout above) of tensor `name` for model seed `s` is
//! `SeededStream::new("tensorproof/inference/weights/v1", s, name).symmetric_unit(j) · √3 · σ`, a uniform
//! variable with standard deviation `σ` (see [`crate::inference::seeded`]). The scales are chosen so the
//! random model is far from degenerate (its next token depends on the whole context, not just the last
//! token; see the tests in `tests/inference.rs`):
//!
//! | tensor | σ |
//! |---|---|
//! | embedding | 1 |
//! | `q_proj`, `k_proj` | [`QK_GAIN`]` / √d_model` (sharp, content-dependent attention) |
//! | `v_proj`, `gate_proj`, `up_proj`, `lm_head` | `1 / √d_model` |
//! | `o_proj` | [`O_GAIN`]` / √d_model` (attention output as large as the residual stream) |
//! | `down_proj` | `1 / √d_ff` |
//! | RMSNorm weights | all ones (not random) |

use std::collections::BTreeMap;
use std::path::Path;

use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use sha2::{Digest, Sha256};

use super::InferenceError;
use super::config::ModelConfig;
use super::gguf::{GgufFile, f16_to_f32};
use super::seeded::SeededStream;

/// Domain string of the seeded-weights generator.
pub const WEIGHTS_DOMAIN: &str = "tensorproof/inference/weights/v1";
/// Gain of the query and key projections: attention logits have a standard deviation of about `QK_GAIN²`.
pub const QK_GAIN: f32 = 1.5;
/// Gain of the attention output projection.
pub const O_GAIN: f32 = 1.5;

/// One tensor the model needs: its Llama-style name, shape and the σ of its seeded initialization
/// (`None` for norm weights, which are ones).
#[derive(Debug, Clone, PartialEq)]
pub struct TensorSpec {
    /// Llama-style name.
    pub name: String,
    /// Shape, `[out, in]` for linear weights.
    pub shape: Vec<usize>,
    /// Standard deviation of the seeded values, or `None` for a tensor of ones.
    pub sigma: Option<f32>,
}

impl TensorSpec {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Every tensor of a model with this config, in a fixed order.
pub fn tensor_specs(config: &ModelConfig) -> Vec<TensorSpec> {
    let d = config.d_model;
    let kv = config.n_kv_heads * config.head_dim();
    let inv_sqrt = |n: usize| 1.0 / (n as f32).sqrt();
    let spec = |name: String, shape: Vec<usize>, sigma: Option<f32>| TensorSpec { name, shape, sigma };
    let mut out = vec![spec(
        "model.embed_tokens.weight".into(),
        vec![config.vocab_size, d],
        Some(1.0),
    )];
    for i in 0..config.n_layers {
        let p = format!("model.layers.{i}");
        out.push(spec(format!("{p}.input_layernorm.weight"), vec![d], None));
        out.push(spec(
            format!("{p}.self_attn.q_proj.weight"),
            vec![d, d],
            Some(QK_GAIN * inv_sqrt(d)),
        ));
        out.push(spec(
            format!("{p}.self_attn.k_proj.weight"),
            vec![kv, d],
            Some(QK_GAIN * inv_sqrt(d)),
        ));
        out.push(spec(
            format!("{p}.self_attn.v_proj.weight"),
            vec![kv, d],
            Some(inv_sqrt(d)),
        ));
        out.push(spec(
            format!("{p}.self_attn.o_proj.weight"),
            vec![d, d],
            Some(O_GAIN * inv_sqrt(d)),
        ));
        out.push(spec(
            format!("{p}.post_attention_layernorm.weight"),
            vec![d],
            None,
        ));
        out.push(spec(
            format!("{p}.mlp.gate_proj.weight"),
            vec![config.d_ff, d],
            Some(inv_sqrt(d)),
        ));
        out.push(spec(
            format!("{p}.mlp.up_proj.weight"),
            vec![config.d_ff, d],
            Some(inv_sqrt(d)),
        ));
        out.push(spec(
            format!("{p}.mlp.down_proj.weight"),
            vec![d, config.d_ff],
            Some(inv_sqrt(config.d_ff)),
        ));
    }
    out.push(spec("model.norm.weight".into(), vec![d], None));
    out.push(spec(
        "lm_head.weight".into(),
        vec![config.vocab_size, d],
        Some(inv_sqrt(d)),
    ));
    out
}

/// All weights of one model, as f32 on the host, in Llama layout.
#[derive(Clone, PartialEq)]
pub struct HostWeights {
    config: ModelConfig,
    tensors: BTreeMap<String, Vec<f32>>,
}

impl std::fmt::Debug for HostWeights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostWeights")
            .field("config", &self.config)
            .field("tensors", &self.tensors.len())
            .finish()
    }
}

impl HostWeights {
    /// Derives every weight from `seed` (see the module docs for the generator and scales).
    ///
    /// The config is trusted (a preset); tensors are generated on all cores.
    pub fn seeded(config: ModelConfig, seed: u64) -> Self {
        let specs = tensor_specs(&config);
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        let mut tensors = BTreeMap::new();
        for spec in specs {
            let data = match spec.sigma {
                None => vec![1.0; spec.len()],
                Some(sigma) => seeded_tensor(&spec.name, seed, spec.len(), sigma, threads),
            };
            tensors.insert(spec.name, data);
        }
        Self { config, tensors }
    }

    /// Reads a safetensors file and checks that its sha256 is `expected_sha256` (hex, any case) before
    /// parsing it.
    ///
    /// # Errors
    /// [`InferenceError::Io`], [`InferenceError::WrongHash`], then everything
    /// [`from_safetensors`](Self::from_safetensors) returns.
    pub fn load_safetensors(
        path: &Path,
        config: ModelConfig,
        expected_sha256: &str,
    ) -> Result<Self, InferenceError> {
        let bytes = std::fs::read(path).map_err(|source| InferenceError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let found = sha256_hex(&bytes);
        if !found.eq_ignore_ascii_case(expected_sha256.trim()) {
            return Err(InferenceError::WrongHash {
                expected: expected_sha256.to_owned(),
                found,
            });
        }
        Self::from_safetensors(&bytes, config)
    }

    /// Parses safetensors bytes holding every tensor [`tensor_specs`] lists (F32, F16 or BF16; extra tensors
    /// are ignored).
    ///
    /// # Errors
    /// [`InferenceError::BadConfig`], [`InferenceError::Safetensors`], [`InferenceError::MissingTensor`],
    /// [`InferenceError::TensorShape`], [`InferenceError::TensorDtype`] or [`InferenceError::NonFinite`],
    /// each naming the tensor.
    pub fn from_safetensors(bytes: &[u8], config: ModelConfig) -> Result<Self, InferenceError> {
        config.validate()?;
        let file = SafeTensors::deserialize(bytes).map_err(|e| InferenceError::Safetensors(e.to_string()))?;
        let mut tensors = BTreeMap::new();
        for spec in tensor_specs(&config) {
            let view = file
                .tensor(&spec.name)
                .map_err(|_| InferenceError::MissingTensor {
                    name: spec.name.clone(),
                })?;
            if view.shape() != spec.shape.as_slice() {
                return Err(InferenceError::TensorShape {
                    name: spec.name,
                    expected: spec.shape,
                    found: view.shape().to_vec(),
                });
            }
            let data = decode(&spec.name, &view)?;
            if let Some(index) = data.iter().position(|x| !x.is_finite()) {
                return Err(InferenceError::NonFinite {
                    name: spec.name,
                    index,
                });
            }
            tensors.insert(spec.name, data);
        }
        Ok(Self { config, tensors })
    }

    /// Reads every tensor of a Llama-architecture GGUF file (see [`ModelConfig::from_gguf`]) and decodes it to
    /// f32 in Hugging Face layout: `token_embd` → `model.embed_tokens`, `blk.{i}.attn_{q,k,v,output}` →
    /// `self_attn.{q,k,v,o}_proj`, `blk.{i}.ffn_{gate,up,down}` → `mlp.*`, `attn_norm`/`ffn_norm` → the two
    /// block norms, `output_norm` → `model.norm` and `output` → `lm_head` (a copy of the embedding when the
    /// file has no `output.weight`: tied embeddings).
    ///
    /// llama.cpp's converter permutes the rows of every head of `attn_q`/`attn_k` so that its rotary
    /// embedding can rotate adjacent pairs; this loader undoes that (GGUF row `2i + j` of a head is Hugging
    /// Face row `j · head_dim/2 + i`), so the model's `rotate_half` rotation applies unchanged.
    ///
    /// # Errors
    /// [`InferenceError::Gguf`] for a missing or undecodable tensor, [`InferenceError::TensorShape`] for a
    /// tensor whose shape disagrees with the config, [`InferenceError::NonFinite`], each naming the tensor.
    pub fn from_gguf(file: &GgufFile<'_>) -> Result<Self, InferenceError> {
        let config = ModelConfig::from_gguf(file)?;
        let mut tensors = BTreeMap::new();
        for spec in tensor_specs(&config) {
            let gguf_name = gguf_name(&spec.name);
            let tied = spec.name == "lm_head.weight" && !file.tensors.contains_key(&gguf_name);
            let source = if tied {
                "token_embd.weight".to_owned()
            } else {
                gguf_name
            };
            let (info, mut data) = file.tensor_f32(&source)?;
            if info.shape() != spec.shape {
                return Err(InferenceError::TensorShape {
                    name: source,
                    expected: spec.shape,
                    found: info.shape(),
                });
            }
            if let Some(index) = data.iter().position(|x| !x.is_finite()) {
                return Err(InferenceError::NonFinite { name: source, index });
            }
            if spec.name.ends_with("q_proj.weight") {
                data = unpermute_rope_rows(&data, config.n_heads, spec.shape[1]);
            } else if spec.name.ends_with("k_proj.weight") {
                data = unpermute_rope_rows(&data, config.n_kv_heads, spec.shape[1]);
            }
            tensors.insert(spec.name, data);
        }
        Ok(Self { config, tensors })
    }

    /// The same weights with every block matrix passed through `f` (its Llama name and values): how the
    /// re-quantizing adversary derives a cheaper copy of a model.
    pub fn map_block_matrices(&self, mut f: impl FnMut(&str, &[f32]) -> Vec<f32>) -> Self {
        let mut out = self.clone();
        for (name, data) in &mut out.tensors {
            if name.starts_with("model.layers.") && name.ends_with("_proj.weight") {
                *data = f(name, data);
            }
        }
        out
    }

    /// Serializes every tensor as F32 safetensors, in Llama layout.
    pub fn to_safetensors(&self) -> Vec<u8> {
        let specs = tensor_specs(&self.config);
        let bytes: Vec<Vec<u8>> = specs
            .iter()
            .map(|spec| {
                self.tensors[&spec.name]
                    .iter()
                    .flat_map(|x| x.to_le_bytes())
                    .collect()
            })
            .collect();
        let views: Vec<(String, TensorView<'_>)> = specs
            .into_iter()
            .zip(&bytes)
            .map(|(spec, bytes)| {
                let view = TensorView::new(Dtype::F32, spec.shape, bytes)
                    .expect("shape matches the data by construction");
                (spec.name, view)
            })
            .collect();
        safetensors::serialize(views, None).expect("F32 tensors with consistent shapes always serialize")
    }

    /// Writes [`to_safetensors`](Self::to_safetensors) to `path` and returns the file's sha256 (hex).
    ///
    /// # Errors
    /// [`InferenceError::Io`] when the file cannot be written.
    pub fn save_safetensors(&self, path: &Path) -> Result<String, InferenceError> {
        let bytes = self.to_safetensors();
        std::fs::write(path, &bytes).map_err(|source| InferenceError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Ok(sha256_hex(&bytes))
    }

    /// The model shape these weights fill.
    pub const fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// One tensor by its Llama-style name, row-major.
    pub fn get(&self, name: &str) -> Option<&[f32]> {
        self.tensors.get(name).map(Vec::as_slice)
    }

    /// Replaces one tensor's values (same length), for tests and adversaries that perturb a model.
    ///
    /// # Errors
    /// [`InferenceError::MissingTensor`] or [`InferenceError::TensorShape`] when the name or length is wrong.
    pub fn set(&mut self, name: &str, values: Vec<f32>) -> Result<(), InferenceError> {
        let slot = self
            .tensors
            .get_mut(name)
            .ok_or_else(|| InferenceError::MissingTensor {
                name: name.to_owned(),
            })?;
        if slot.len() != values.len() {
            return Err(InferenceError::TensorShape {
                name: name.to_owned(),
                expected: vec![slot.len()],
                found: vec![values.len()],
            });
        }
        *slot = values;
        Ok(())
    }
}

/// The GGUF name of the Llama-style tensor `name` (see [`HostWeights::from_gguf`]).
pub fn gguf_name(name: &str) -> String {
    let fixed = match name {
        "model.embed_tokens.weight" => Some("token_embd.weight"),
        "model.norm.weight" => Some("output_norm.weight"),
        "lm_head.weight" => Some("output.weight"),
        _ => None,
    };
    if let Some(f) = fixed {
        return f.to_owned();
    }
    let Some(rest) = name.strip_prefix("model.layers.") else {
        return name.to_owned();
    };
    let (layer, part) = rest.split_once('.').unwrap_or((rest, ""));
    let part = match part {
        "input_layernorm.weight" => "attn_norm.weight",
        "self_attn.q_proj.weight" => "attn_q.weight",
        "self_attn.k_proj.weight" => "attn_k.weight",
        "self_attn.v_proj.weight" => "attn_v.weight",
        "self_attn.o_proj.weight" => "attn_output.weight",
        "post_attention_layernorm.weight" => "ffn_norm.weight",
        "mlp.gate_proj.weight" => "ffn_gate.weight",
        "mlp.up_proj.weight" => "ffn_up.weight",
        "mlp.down_proj.weight" => "ffn_down.weight",
        other => other,
    };
    format!("blk.{layer}.{part}")
}

/// Undoes llama.cpp's rotary row permutation of a `[heads · head_dim, cols]` projection: row `2i + j` of
/// each head moves to `j · head_dim/2 + i`.
pub fn unpermute_rope_rows(w: &[f32], heads: usize, cols: usize) -> Vec<f32> {
    let rows = w.len() / cols;
    let hd = rows / heads;
    let half = hd / 2;
    let mut out = vec![0f32; w.len()];
    for h in 0..heads {
        for i in 0..half {
            for j in 0..2 {
                let src = (h * hd + 2 * i + j) * cols;
                let dst = (h * hd + j * half + i) * cols;
                out[dst..dst + cols].copy_from_slice(&w[src..src + cols]);
            }
        }
    }
    out
}

/// The sha256 of `bytes`, lowercase hex: how a weights file is named.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn seeded_tensor(name: &str, seed: u64, len: usize, sigma: f32, threads: usize) -> Vec<f32> {
    let stream = SeededStream::new(WEIGHTS_DOMAIN, seed, name);
    let scale = 3f32.sqrt() * sigma;
    let mut data = vec![0f32; len];
    let chunk = len.div_ceil(threads.max(1)).max(1 << 16);
    std::thread::scope(|scope| {
        for (c, part) in data.chunks_mut(chunk).enumerate() {
            scope.spawn(move || {
                let start = (c * chunk) as u64;
                for (j, x) in part.iter_mut().enumerate() {
                    *x = stream.symmetric_unit(start + j as u64) * scale;
                }
            });
        }
    });
    data
}

fn decode(name: &str, view: &TensorView<'_>) -> Result<Vec<f32>, InferenceError> {
    let raw = view.data();
    let out = match view.dtype() {
        Dtype::F32 => raw
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        Dtype::BF16 => raw
            .chunks_exact(2)
            .map(|b| f32::from_bits(u32::from(u16::from_le_bytes([b[0], b[1]])) << 16))
            .collect(),
        Dtype::F16 => raw
            .chunks_exact(2)
            .map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]])))
            .collect(),
        other => {
            return Err(InferenceError::TensorDtype {
                name: name.to_owned(),
                dtype: format!("{other:?}"),
            });
        }
    };
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inference::Preset;

    fn micro() -> ModelConfig {
        ModelConfig {
            vocab_size: 64,
            d_model: 16,
            n_layers: 2,
            n_heads: 4,
            n_kv_heads: 2,
            d_ff: 24,
            max_seq_len: 32,
            rope_theta: 10_000.0,
            norm_eps: 1e-5,
        }
    }

    #[test]
    fn specs_count_every_parameter() {
        for c in [micro(), Preset::Tiny.config(), Preset::Medium.config()] {
            let total: usize = tensor_specs(&c).iter().map(TensorSpec::len).sum();
            assert_eq!(total, c.param_count());
        }
    }

    #[test]
    fn seeded_weights_are_deterministic_and_scaled() {
        let a = HostWeights::seeded(micro(), 5);
        assert_eq!(a, HostWeights::seeded(micro(), 5));
        assert_ne!(a, HostWeights::seeded(micro(), 6));
        let emb = a.get("model.embed_tokens.weight").unwrap();
        let var = emb.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>() / emb.len() as f64;
        assert!((var - 1.0).abs() < 0.15, "embedding variance {var}");
        assert!(a.get("model.norm.weight").unwrap().iter().all(|&x| x == 1.0));
    }

    #[test]
    fn rope_unpermute_inverts_the_converters_permutation() {
        // The converter's permutation, written independently: reshape(heads, 2, half) → swap → flatten.
        let (heads, hd, cols) = (3, 8, 2);
        let hf: Vec<f32> = (0..heads * hd * cols).map(|x| x as f32).collect();
        let mut gguf = vec![0f32; hf.len()];
        for h in 0..heads {
            for j in 0..2 {
                for i in 0..hd / 2 {
                    for c in 0..cols {
                        gguf[((h * hd) + i * 2 + j) * cols + c] = hf[((h * hd) + j * hd / 2 + i) * cols + c];
                    }
                }
            }
        }
        assert_ne!(gguf, hf);
        assert_eq!(unpermute_rope_rows(&gguf, heads, cols), hf);
        assert_eq!(
            gguf_name("model.layers.12.self_attn.o_proj.weight"),
            "blk.12.attn_output.weight"
        );
        assert_eq!(gguf_name("model.embed_tokens.weight"), "token_embd.weight");
    }

    #[test]
    fn safetensors_round_trip_and_errors_name_the_tensor() {
        let w = HostWeights::seeded(micro(), 1);
        let bytes = w.to_safetensors();
        assert_eq!(HostWeights::from_safetensors(&bytes, micro()).unwrap(), w);

        let mut bigger = micro();
        bigger.d_ff = 32;
        match HostWeights::from_safetensors(&bytes, bigger) {
            Err(InferenceError::TensorShape { name, .. }) => {
                assert_eq!(name, "model.layers.0.mlp.gate_proj.weight")
            }
            other => panic!("expected TensorShape, got {other:?}"),
        }
        let mut deeper = micro();
        deeper.n_layers = 3;
        match HostWeights::from_safetensors(&bytes, deeper) {
            Err(InferenceError::MissingTensor { name }) => {
                assert_eq!(name, "model.layers.2.input_layernorm.weight")
            }
            other => panic!("expected MissingTensor, got {other:?}"),
        }
        assert!(matches!(
            HostWeights::from_safetensors(&bytes[..100], micro()),
            Err(InferenceError::Safetensors(_))
        ));
    }
}
