//! The Llama-style decoder in burn: token embedding, pre-norm blocks of grouped-query attention with
//! rotary position embedding and a key/value cache, SwiGLU MLPs, a final RMSNorm and an untied head.
//!
//! The code never names a backend: a [`Transformer`] lives on whichever [`Device`] it was built on (flex on
//! a CPU, wgpu/Vulkan, CUDA), and the same code serves the miner's decoding and the validator's check.

use burn::module::{Module, Param};
use burn::tensor::activation::{silu, softmax};
use burn::tensor::module::linear;
use burn::tensor::{Device, Int, Tensor, TensorData};

use super::InferenceError;
use super::config::ModelConfig;
use super::weights::{HostWeights, tensor_specs};

/// Attention projections, stored `[in, out]` for `x · W`.
#[derive(Module, Debug)]
pub struct Attention {
    q_proj: Param<Tensor<2>>,
    k_proj: Param<Tensor<2>>,
    v_proj: Param<Tensor<2>>,
    o_proj: Param<Tensor<2>>,
}

/// SwiGLU MLP weights, stored `[in, out]`.
#[derive(Module, Debug)]
pub struct Mlp {
    gate_proj: Param<Tensor<2>>,
    up_proj: Param<Tensor<2>>,
    down_proj: Param<Tensor<2>>,
}

/// One pre-norm transformer block.
#[derive(Module, Debug)]
pub struct Block {
    input_norm: Param<Tensor<1>>,
    attn: Attention,
    post_attention_norm: Param<Tensor<1>>,
    mlp: Mlp,
}

/// A Llama-style decoder-only transformer on one device.
#[derive(Module, Debug)]
pub struct Transformer {
    embed_tokens: Param<Tensor<2>>,
    layers: Vec<Block>,
    norm: Param<Tensor<1>>,
    /// Output head, stored `[d_model, vocab]`.
    lm_head: Param<Tensor<2>>,
    #[module(skip)]
    config: ModelConfig,
}

/// Keys and values of every layer for the tokens seen so far, `[batch, kv_heads, len, head_dim]` each.
#[derive(Debug, Default)]
pub struct KvCache {
    layers: Vec<(Tensor<4>, Tensor<4>)>,
    len: usize,
}

impl KvCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of positions cached.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is cached yet.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Transformer {
    /// Uploads host weights to `device`.
    ///
    /// # Errors
    /// [`InferenceError::BadConfig`] if the weights' config is inconsistent.
    pub fn from_weights(weights: &HostWeights, device: &Device) -> Result<Self, InferenceError> {
        let config = *weights.config();
        config.validate()?;
        let shapes: std::collections::HashMap<String, Vec<usize>> = tensor_specs(&config)
            .into_iter()
            .map(|s| (s.name, s.shape))
            .collect();
        let get = |name: &str| -> Result<&[f32], InferenceError> {
            let missing = || InferenceError::MissingTensor {
                name: name.to_owned(),
            };
            let data = weights.get(name).ok_or_else(missing)?;
            let expected = shapes.get(name).ok_or_else(missing)?;
            if data.len() != expected.iter().product::<usize>() {
                return Err(InferenceError::TensorShape {
                    name: name.to_owned(),
                    expected: expected.clone(),
                    found: vec![data.len()],
                });
            }
            Ok(data)
        };
        // A Llama linear weight is [out, in]; transpose on the host so the device holds contiguous [in, out].
        let linear_w = |name: &str| -> Result<Param<Tensor<2>>, InferenceError> {
            let w = get(name)?;
            let (d_out, d_in) = (shapes[name][0], shapes[name][1]);
            let data = TensorData::new(transpose(w, d_out, d_in), [d_in, d_out]);
            Ok(Param::from_tensor(Tensor::from_data(data, device)))
        };
        let vector = |name: &str| -> Result<Param<Tensor<1>>, InferenceError> {
            let w = get(name)?;
            Ok(Param::from_tensor(Tensor::from_data(
                TensorData::new(w.to_vec(), [w.len()]),
                device,
            )))
        };
        let mut layers = Vec::with_capacity(config.n_layers);
        for i in 0..config.n_layers {
            let p = format!("model.layers.{i}");
            layers.push(Block {
                input_norm: vector(&format!("{p}.input_layernorm.weight"))?,
                attn: Attention {
                    q_proj: linear_w(&format!("{p}.self_attn.q_proj.weight"))?,
                    k_proj: linear_w(&format!("{p}.self_attn.k_proj.weight"))?,
                    v_proj: linear_w(&format!("{p}.self_attn.v_proj.weight"))?,
                    o_proj: linear_w(&format!("{p}.self_attn.o_proj.weight"))?,
                },
                post_attention_norm: vector(&format!("{p}.post_attention_layernorm.weight"))?,
                mlp: Mlp {
                    gate_proj: linear_w(&format!("{p}.mlp.gate_proj.weight"))?,
                    up_proj: linear_w(&format!("{p}.mlp.up_proj.weight"))?,
                    down_proj: linear_w(&format!("{p}.mlp.down_proj.weight"))?,
                },
            });
        }
        let embed = get("model.embed_tokens.weight")?;
        Ok(Self {
            embed_tokens: Param::from_tensor(Tensor::from_data(
                TensorData::new(embed.to_vec(), [config.vocab_size, config.d_model]),
                device,
            )),
            layers,
            norm: vector("model.norm.weight")?,
            lm_head: linear_w("lm_head.weight")?,
            config,
        })
    }

    /// The model's shape.
    pub const fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The device the weights live on.
    pub fn device(&self) -> Device {
        self.embed_tokens.val().device()
    }

    /// The same model with only its first `n_layers` blocks (at least one): what a cheating miner would run.
    pub fn truncated(&self, n_layers: usize) -> Self {
        let n = n_layers.clamp(1, self.layers.len());
        let mut config = self.config;
        config.n_layers = n;
        Self {
            embed_tokens: self.embed_tokens.clone(),
            layers: self.layers[..n].to_vec(),
            norm: self.norm.clone(),
            lm_head: self.lm_head.clone(),
            config,
        }
    }

    /// Runs `tokens` (`[batch, len]`, ids already checked against the vocabulary) through the blocks and
    /// the final norm, appending to `cache` when given (positions continue after what it holds), and
    /// returns the hidden states `[batch, len, d_model]`.
    pub fn hidden(&self, tokens: Tensor<2, Int>, mut cache: Option<&mut KvCache>) -> Tensor<3> {
        let [_, len] = tokens.dims();
        let device = tokens.device();
        let start = cache.as_ref().map_or(0, |c| c.len);
        let (cos, sin) = rope_tables(&self.config, &[start], len, &device);
        let mask = (len > 1).then(|| causal_mask(start, len, &device));
        let mut past = cache.as_deref_mut().map_or(Past::None, Past::Shared);
        let x = self.blocks(tokens, &cos, &sin, mask.as_ref(), &mut past);
        if let Some(c) = cache {
            c.len += len;
        }
        x
    }

    /// One decoding step of a continuous batch: feeds `tokens[r]` to row `r` of `cache` (each row at its
    /// own position), appends the new keys and values, and returns the logits `[rows, vocab]`. Each row
    /// sees exactly its own past (the padding between is masked out), so the result equals a step on that
    /// sequence alone up to float reassociation ([`super::engine`]).
    ///
    /// # Errors
    /// [`InferenceError::BadChallenge`] when `tokens` does not have one id per row or a row is full, and
    /// [`InferenceError::OutOfVocab`].
    pub fn step_batch(&self, tokens: &[u32], cache: &mut BatchCache) -> Result<Tensor<2>, InferenceError> {
        let bad = |why: String| InferenceError::BadChallenge { field: "tokens", why };
        if tokens.is_empty() || tokens.len() != cache.rows() {
            return Err(bad(format!("{} tokens for {} rows", tokens.len(), cache.rows())));
        }
        if cache.positions.iter().any(|&p| p >= self.config.max_seq_len) {
            return Err(bad(format!(
                "a row already holds {} positions",
                self.config.max_seq_len
            )));
        }
        let ids = super::challenge::flatten_ids(&[tokens.to_vec()], self.config.vocab_size, "tokens")?;
        let n = tokens.len();
        let device = self.device();
        let (cos, sin) = rope_tables(&self.config, &cache.positions, 1, &device);
        let mask = batch_mask(&cache.valid, &device);
        let input = Tensor::<2, Int>::from_data(TensorData::new(ids, [n, 1]), &device);
        let h = self.blocks(input, &cos, &sin, Some(&mask), &mut Past::Batch(cache));
        for (valid, position) in cache.valid.iter_mut().zip(&mut cache.positions) {
            valid.push(true);
            *position += 1;
        }
        Ok(self.logits(h.reshape([n, self.config.d_model])))
    }

    /// Embedding, every block and the final norm.
    fn blocks(
        &self,
        tokens: Tensor<2, Int>,
        cos: &Tensor<4>,
        sin: &Tensor<4>,
        mask: Option<&Tensor<4>>,
        past: &mut Past<'_>,
    ) -> Tensor<3> {
        let [batch, len] = tokens.dims();
        let flat = tokens.reshape([batch * len]);
        let mut x: Tensor<3> =
            self.embed_tokens
                .val()
                .select(0, flat)
                .reshape([batch, len, self.config.d_model]);
        for (i, block) in self.layers.iter().enumerate() {
            x = block.forward(x, &self.config, cos, sin, mask, past, i);
        }
        rms_norm(x, self.norm.val(), self.config.norm_eps)
    }

    /// Applies the output head: `[.., d_model]` hidden states to `[.., vocab]` logits.
    pub fn logits<const D: usize>(&self, hidden: Tensor<D>) -> Tensor<D> {
        linear(hidden, self.lm_head.val(), None)
    }

    /// Feeds `tokens` (`[batch, len]`) through the model with `cache` and returns the logits of the last
    /// position only, `[batch, vocab]`: one prefill or decoding step.
    pub fn step(&self, tokens: Tensor<2, Int>, cache: &mut KvCache) -> Tensor<2> {
        let [batch, len] = tokens.dims();
        let h = self.hidden(tokens, Some(cache));
        let last = h.narrow(1, len - 1, 1).reshape([batch, self.config.d_model]);
        self.logits(last)
    }
}

/// The keys and values a forward pass attends to besides its own.
enum Past<'c> {
    /// None: a full causal pass.
    None,
    /// One cache shared by every row of the batch (all rows at the same position).
    Shared(&'c mut KvCache),
    /// A continuous batch: one row per sequence, each at its own position.
    Batch(&'c mut BatchCache),
}

impl Past<'_> {
    /// Stores the new keys and values `[batch, kv_heads, len, head_dim]` of `layer` and returns everything
    /// to attend to.
    fn extend(&mut self, layer: usize, k: Tensor<4>, v: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let (cache_layers, k, v) = match self {
            Self::None => return (k, v),
            Self::Shared(cache) => (&mut cache.layers, k, v),
            Self::Batch(cache) => (&mut cache.layers, k, v),
        };
        let (k, v) = match cache_layers.get(layer) {
            Some((pk, pv)) => (
                Tensor::cat(vec![pk.clone(), k], 2),
                Tensor::cat(vec![pv.clone(), v], 2),
            ),
            None => (k, v),
        };
        if layer < cache_layers.len() {
            cache_layers[layer] = (k.clone(), v.clone());
        } else {
            cache_layers.push((k.clone(), v.clone()));
        }
        (k, v)
    }
}

/// The keys and values of a continuous batch: row `r` is one sequence, `[rows, kv_heads, width,
/// head_dim]` per layer, where column `c` of row `r` holds a real position only where `valid[r][c]`
/// (a sequence that joined a wider batch is padded; the padding is masked out and costs no accuracy).
/// Rows join with [`push`](Self::push) (a prefilled [`KvCache`]) and leave with
/// [`retain`](Self::retain); a decoding step ([`Transformer::step_batch`]) appends one column to all.
#[derive(Debug, Default)]
pub struct BatchCache {
    layers: Vec<(Tensor<4>, Tensor<4>)>,
    valid: Vec<Vec<bool>>,
    positions: Vec<usize>,
}

impl BatchCache {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sequences in the batch.
    pub fn rows(&self) -> usize {
        self.positions.len()
    }

    /// Columns per row (real positions and padding).
    pub fn width(&self) -> usize {
        self.valid.first().map_or(0, Vec::len)
    }

    /// Adds a prefilled sequence as the last row.
    ///
    /// # Panics
    /// Never for caches made by [`Transformer::step`] on the same model (same layers, heads, head size).
    pub fn push(&mut self, cache: KvCache) {
        let len = cache.len;
        if self.rows() == 0 {
            self.layers = cache.layers;
            self.valid = vec![vec![true; len]];
            self.positions = vec![len];
            return;
        }
        let width = self.width();
        let pad = |t: Tensor<4>, to: usize| {
            let [n, h, w, d] = t.dims();
            if w >= to {
                t
            } else {
                let zeros = Tensor::zeros([n, h, to - w, d], &t.device());
                Tensor::cat(vec![t, zeros], 2)
            }
        };
        let to = width.max(len);
        for ((bk, bv), (k, v)) in self.layers.iter_mut().zip(cache.layers) {
            *bk = Tensor::cat(vec![pad(bk.clone(), to), pad(k, to)], 0);
            *bv = Tensor::cat(vec![pad(bv.clone(), to), pad(v, to)], 0);
        }
        for row in &mut self.valid {
            row.resize(to, false);
        }
        let mut row = vec![true; len];
        row.resize(to, false);
        self.valid.push(row);
        self.positions.push(len);
    }

    /// Keeps the rows whose `keep` is true (in order) and drops the columns no remaining row uses.
    pub fn retain(&mut self, keep: &[bool]) {
        if keep.iter().all(|&k| k) {
            return;
        }
        let rows: Vec<usize> = (0..self.rows())
            .filter(|&r| keep.get(r).copied().unwrap_or(false))
            .collect();
        let mut i = 0;
        self.valid.retain(|_| {
            i += 1;
            keep.get(i - 1).copied().unwrap_or(false)
        });
        let mut i = 0;
        self.positions.retain(|_| {
            i += 1;
            keep.get(i - 1).copied().unwrap_or(false)
        });
        if rows.is_empty() {
            self.layers.clear();
            return;
        }
        let columns: Vec<usize> = (0..self.width())
            .filter(|&c| self.valid.iter().any(|row| row[c]))
            .collect();
        let compact = columns.len() < self.width();
        let Some(device) = self.layers.first().map(|(k, _)| k.device()) else {
            return;
        };
        let index = |ids: &[usize]| {
            let data: Vec<i64> = ids.iter().map(|&i| i as i64).collect();
            Tensor::<1, Int>::from_data(TensorData::new(data, [ids.len()]), &device)
        };
        let (row_index, column_index) = (index(&rows), index(&columns));
        for (k, v) in &mut self.layers {
            *k = k.clone().select(0, row_index.clone());
            *v = v.clone().select(0, row_index.clone());
            if compact {
                *k = k.clone().select(2, column_index.clone());
                *v = v.clone().select(2, column_index.clone());
            }
        }
        if compact {
            for row in &mut self.valid {
                *row = columns.iter().map(|&c| row[c]).collect();
            }
        }
    }
}

impl Block {
    #[allow(clippy::too_many_arguments)]
    fn forward(
        &self,
        x: Tensor<3>,
        config: &ModelConfig,
        cos: &Tensor<4>,
        sin: &Tensor<4>,
        mask: Option<&Tensor<4>>,
        past: &mut Past<'_>,
        layer: usize,
    ) -> Tensor<3> {
        let h = rms_norm(x.clone(), self.input_norm.val(), config.norm_eps);
        let x = x + self.attn.forward(h, config, cos, sin, mask, past, layer);
        let h = rms_norm(x.clone(), self.post_attention_norm.val(), config.norm_eps);
        x + self.mlp.forward(h)
    }
}

impl Attention {
    #[allow(clippy::too_many_arguments)]
    fn forward(
        &self,
        x: Tensor<3>,
        config: &ModelConfig,
        cos: &Tensor<4>,
        sin: &Tensor<4>,
        mask: Option<&Tensor<4>>,
        past: &mut Past<'_>,
        layer: usize,
    ) -> Tensor<3> {
        let [batch, len, d_model] = x.dims();
        let (heads, kv_heads, hd) = (config.n_heads, config.n_kv_heads, config.head_dim());
        let split = |t: Tensor<3>, n: usize| t.reshape([batch, len, n, hd]).swap_dims(1, 2);
        let q = apply_rope(split(linear(x.clone(), self.q_proj.val(), None), heads), cos, sin);
        let k = apply_rope(
            split(linear(x.clone(), self.k_proj.val(), None), kv_heads),
            cos,
            sin,
        );
        let v = split(linear(x, self.v_proj.val(), None), kv_heads);
        let (k, v) = past.extend(layer, k, v);
        let total = k.dims()[2];
        let group = heads / kv_heads;
        let expand = |t: Tensor<4>| {
            if group == 1 {
                t
            } else {
                t.unsqueeze_dim::<5>(2)
                    .repeat_dim(2, group)
                    .reshape([batch, heads, total, hd])
            }
        };
        let (k, v) = (expand(k), expand(v));
        let mut scores = q.matmul(k.swap_dims(2, 3)).mul_scalar(1.0 / (hd as f32).sqrt());
        if let Some(mask) = mask {
            scores = scores + mask.clone();
        }
        let out = softmax(scores, 3).matmul(v);
        let out = out.swap_dims(1, 2).reshape([batch, len, d_model]);
        linear(out, self.o_proj.val(), None)
    }
}

impl Mlp {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let gate = silu(linear(x.clone(), self.gate_proj.val(), None));
        let up = linear(x, self.up_proj.val(), None);
        linear(gate * up, self.down_proj.val(), None)
    }
}

fn rms_norm(x: Tensor<3>, weight: Tensor<1>, eps: f32) -> Tensor<3> {
    let d = weight.dims()[0];
    let rms = x
        .clone()
        .powi_scalar(2)
        .mean_dim(2)
        .add_scalar(eps)
        .sqrt()
        .recip();
    x * rms * weight.reshape([1, 1, d])
}

/// Cosine and sine tables `[rows, 1, len, head_dim]`: row `r` covers positions `starts[r]..starts[r] + len`,
/// in the Hugging Face Llama layout (the two halves of a head share frequencies). Computed on the host in
/// f64, so every device gets the same f32 values.
fn rope_tables(
    config: &ModelConfig,
    starts: &[usize],
    len: usize,
    device: &Device,
) -> (Tensor<4>, Tensor<4>) {
    let hd = config.head_dim();
    let half = hd / 2;
    let mut cos = Vec::with_capacity(starts.len() * len * hd);
    let mut sin = Vec::with_capacity(starts.len() * len * hd);
    let inv_freq: Vec<f64> = (0..half)
        .map(|i| f64::from(config.rope_theta).powf(-((2 * i) as f64) / hd as f64))
        .collect();
    for &start in starts {
        for pos in start..start + len {
            for _ in 0..2 {
                for f in &inv_freq {
                    let angle = pos as f64 * f;
                    cos.push(angle.cos() as f32);
                    sin.push(angle.sin() as f32);
                }
            }
        }
    }
    let t = |v: Vec<f32>| Tensor::from_data(TensorData::new(v, [starts.len(), 1, len, hd]), device);
    (t(cos), t(sin))
}

/// `x · cos + rotate_half(x) · sin`, with `rotate_half([a, b]) = [−b, a]` over the head dimension.
fn apply_rope(x: Tensor<4>, cos: &Tensor<4>, sin: &Tensor<4>) -> Tensor<4> {
    let hd = x.dims()[3];
    let half = hd / 2;
    let a = x.clone().narrow(3, 0, half);
    let b = x.clone().narrow(3, half, half);
    let rotated = Tensor::cat(vec![b.neg(), a], 3);
    x * cos.clone() + rotated * sin.clone()
}

/// Additive mask `[1, 1, len, past + len]`: query `i` (position `past + i`) sees keys `0..=past + i`.
fn causal_mask(past: usize, len: usize, device: &Device) -> Tensor<4> {
    let total = past + len;
    let data: Vec<f32> = (0..len)
        .flat_map(|i| (0..total).map(move |j| if j <= past + i { 0.0 } else { -1e9 }))
        .collect();
    Tensor::from_data(TensorData::new(data, [1, 1, len, total]), device)
}

/// Additive mask `[rows, 1, 1, width + 1]` for one batch step: row `r` sees its valid columns and the new
/// one (the last), not the padding.
fn batch_mask(valid: &[Vec<bool>], device: &Device) -> Tensor<4> {
    let width = valid.first().map_or(0, Vec::len);
    let data: Vec<f32> = valid
        .iter()
        .flat_map(|row| row.iter().map(|&v| if v { 0.0 } else { -1e9 }).chain([0.0]))
        .collect();
    Tensor::from_data(TensorData::new(data, [valid.len(), 1, 1, width + 1]), device)
}

fn transpose(w: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0f32; w.len()];
    const TILE: usize = 32;
    for r0 in (0..rows).step_by(TILE) {
        for c0 in (0..cols).step_by(TILE) {
            for r in r0..(r0 + TILE).min(rows) {
                for c in c0..(c0 + TILE).min(cols) {
                    out[c * rows + r] = w[r * cols + c];
                }
            }
        }
    }
    out
}
