//! The real models a miner holds (`miner run --model`): loaded on the host once at start, shared by every
//! device worker, and built on a device only when a challenge (or, later, a generation request) needs them.
//!
//! Each model is a [`RealModel`] (a Llama-architecture GGUF file, checked by sha256, with its tokenizer).
//! Challenges name it by [`ModelId::Gguf`] (its sha256 and shape); `/info` lists every held model as a
//! [`ModelInfo`]. The device copy lives in the worker's [`InferenceModels`](crate::tasks::InferenceModels)
//! cache, within the same memory budget as the seeded models.

use std::sync::Arc;

use bench_tasks::inference::real::RealModel;
use bench_tasks::inference::{InferenceError, ModelConfig, ModelId};
use bench_tasks::wire::ModelInfo;

use crate::config::Limits;

/// The real models a miner holds, on the host (f32 weights and tokenizer), shared by the device workers.
#[derive(Debug, Default)]
pub struct HeldModels {
    models: Vec<Arc<RealModel>>,
}

impl HeldModels {
    /// No real models: the miner serves seeded models only.
    pub const fn none() -> Self {
        Self { models: Vec::new() }
    }

    /// Loads every `spec` (`smollm2`, or a path to a GGUF file) with [`RealModel::load`], in order; a model
    /// named twice (by the same sha256) is kept once.
    ///
    /// # Errors
    /// The first model that fails to load, with its spec; a missing or corrupt default model names
    /// `scripts/fetch-model.sh`.
    pub fn load(specs: &[String]) -> Result<Self, LoadError> {
        let mut held = Self::none();
        for spec in specs {
            let model = RealModel::load(spec).map_err(|source| LoadError {
                spec: spec.clone(),
                source,
            })?;
            held.push(Arc::new(model));
        }
        Ok(held)
    }

    /// These already loaded models (shared with the caller, as `validator localnet` does for its miners).
    pub fn from_models(models: impl IntoIterator<Item = Arc<RealModel>>) -> Self {
        let mut held = Self::none();
        for model in models {
            held.push(model);
        }
        held
    }

    fn push(&mut self, model: Arc<RealModel>) {
        if self.by_sha256(sha256_of(&model.id)).is_none() {
            self.models.push(model);
        }
    }

    /// Every held model, in the order given.
    pub fn models(&self) -> &[Arc<RealModel>] {
        &self.models
    }

    /// Whether no real model is held.
    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }

    /// The held model whose file has this sha256 (hex, any case).
    pub fn by_sha256(&self, sha256: &str) -> Option<&Arc<RealModel>> {
        self.models
            .iter()
            .find(|m| sha256_of(&m.id).eq_ignore_ascii_case(sha256))
    }

    /// The held model named `key`: its short name (`smollm2`, as `/info` lists it) or its sha256.
    pub fn find(&self, key: &str) -> Option<&Arc<RealModel>> {
        self.position(key).map(|i| &self.models[i])
    }

    /// The position in [`models`](Self::models) of the model [`find`](Self::find) returns.
    pub fn position(&self, key: &str) -> Option<usize> {
        self.models
            .iter()
            .position(|m| name_of(&m.id) == key)
            .or_else(|| {
                self.models
                    .iter()
                    .position(|m| sha256_of(&m.id).eq_ignore_ascii_case(key))
            })
    }

    /// The held model a [`ModelId::Gguf`] challenge names: same sha256 and same shape.
    ///
    /// # Errors
    /// [`Unheld::NotHeld`] when no held file has that sha256 (or `id` is not a GGUF id),
    /// [`Unheld::WrongConfig`] when the file is held but the challenge states another shape.
    pub fn for_challenge(&self, id: &ModelId) -> Result<&Arc<RealModel>, Unheld> {
        let ModelId::Gguf { sha256, config, .. } = id else {
            return Err(Unheld::NotHeld);
        };
        let model = self.by_sha256(sha256).ok_or(Unheld::NotHeld)?;
        if model.config() != config {
            return Err(Unheld::WrongConfig(*model.config()));
        }
        Ok(model)
    }

    /// What `/info` lists: every held model with this miner's generation limits.
    pub fn infos(&self, limits: &Limits) -> Vec<ModelInfo> {
        self.models
            .iter()
            .map(|m| ModelInfo {
                name: name_of(&m.id).to_owned(),
                sha256: sha256_of(&m.id).to_owned(),
                precision: "f32".to_owned(),
                context_length: m.config().max_seq_len,
                max_sequences: limits.generate.max_sequences,
                max_tokens: limits.generate.max_tokens,
            })
            .collect()
    }
}

/// Why a challenge's GGUF model cannot be served.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Unheld {
    /// No held model has the challenge's sha256.
    NotHeld,
    /// The file is held, but the challenge states another shape than the file's (this one).
    WrongConfig(ModelConfig),
}

/// A `--model` that could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("--model {spec}: {source}")]
pub struct LoadError {
    /// The spec as given.
    pub spec: String,
    /// Why.
    #[source]
    pub source: InferenceError,
}

fn sha256_of(id: &ModelId) -> &str {
    match id {
        ModelId::Gguf { sha256, .. } | ModelId::Safetensors { sha256, .. } => sha256,
        ModelId::Seeded { .. } => "",
    }
}

fn name_of(id: &ModelId) -> &str {
    match id {
        ModelId::Gguf { name, .. } => name,
        ModelId::Safetensors { .. } | ModelId::Seeded { .. } => "",
    }
}
