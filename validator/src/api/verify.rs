//! Organic verification: a sample of served answers replayed teacher-forced on the validator's CPU, after
//! the client has its answer.
//!
//! The validator chose (or recorded) the sampler seed, so it knows the rule every token had to follow:
//! [`Sampling::choose`] on sequence `b = 0`, positions `t = 0, 1, …` (as the miner's engine decodes an
//! organic request). [`Verifier::verify_generation`] runs one causal pass over the prompt and the
//! generated ids and checks each token's deficit under the rule against [`REAL_MODEL_MARGIN`]. Jobs wait in a bounded queue and run one at a time on a blocking thread: a full
//! queue drops the job (recorded as `skipped`), never the answer.

use std::sync::Arc;

use bench_tasks::inference::real::{REAL_MODEL_MARGIN, RealModel};
use bench_tasks::inference::tokenizer::Tokenizer;
use bench_tasks::inference::{Limits, Sampling, Transformer, Verifier};
use bench_tasks::wire::ChatMessage;
use serde::{Deserialize, Serialize};

/// A model the validator holds for verification: its sha256, its verifier on the CPU and its tokenizer.
#[derive(Debug)]
pub struct HeldModel {
    /// Lowercase hex sha256 of the model file.
    pub sha256: String,
    /// Its short name.
    pub name: String,
    /// The teacher-forced verifier (flex, [`REAL_MODEL_MARGIN`]).
    pub verifier: Verifier,
    /// Its tokenizer and chat template.
    pub tokenizer: Tokenizer,
}

impl HeldModel {
    /// Loads a model (`smollm2` or a GGUF path, as [`RealModel::load`] reads it) onto the CPU. Slow (seconds):
    /// call it on a blocking thread.
    ///
    /// # Errors
    /// A sentence saying what failed (missing file, wrong sha256, backend).
    pub fn load(spec: &str) -> Result<Self, String> {
        let real = RealModel::load(spec).map_err(|e| e.to_string())?;
        let bench_tasks::inference::ModelId::Gguf { name, sha256, .. } = &real.id else {
            return Err(format!("{spec} is not a GGUF model"));
        };
        let (name, sha256) = (name.clone(), sha256.clone());
        let device = bench_tasks::BackendKind::Flex
            .device(0)
            .map_err(|e| e.to_string())?;
        let model = Transformer::from_weights(&real.weights, &device).map_err(|e| e.to_string())?;
        Ok(Self {
            sha256,
            name,
            verifier: Verifier::new(real.id, model, Limits::default()).with_margin(REAL_MODEL_MARGIN),
            tokenizer: real.tokenizer,
        })
    }

    /// The prompt ids the miner decodes for `messages`: the chat template with the generation prompt,
    /// encoded.
    ///
    /// # Errors
    /// The tokenizer's, in a sentence.
    pub fn chat_prompt(&self, messages: &[ChatMessage]) -> Result<Vec<u32>, String> {
        let text = self
            .tokenizer
            .render_chat(messages, true)
            .map_err(|e| e.to_string())?;
        self.tokenizer.encode(&text).map_err(|e| e.to_string())
    }
}

/// What an organic check concluded, with a stable reason code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrganicVerdict {
    /// Every token followed the rule within the margin.
    pub passed: bool,
    /// `passed`, `wrong_token`, `bad_value`, `prompt_mismatch`, `out_of_vocab`, `too_long`, `error`.
    pub reason: String,
    /// Which token, by how much.
    pub detail: String,
    /// Tokens checked.
    pub tokens: usize,
}

impl OrganicVerdict {
    fn fail(reason: &str, detail: String, tokens: usize) -> Self {
        Self {
            passed: false,
            reason: reason.to_owned(),
            detail,
            tokens,
        }
    }

    /// Whether the miner is at fault (a wrong token or a non-finite logit), as opposed to a check that
    /// could not run.
    pub fn is_cheat(&self) -> bool {
        !self.passed && matches!(self.reason.as_str(), "wrong_token" | "out_of_vocab")
    }
}

/// One answer to check.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// The usage row to update.
    pub usage_id: i64,
    /// The miner that served it.
    pub miner_uid: u16,
    /// Its hotkey.
    pub miner_hotkey: String,
    /// The prompt ids, as the miner decoded them.
    pub prompt: Vec<u32>,
    /// The prompt length the miner's receipt states.
    pub receipt_prompt_tokens: usize,
    /// The generated ids.
    pub generated: Vec<u32>,
    /// The rule.
    pub sampling: Sampling,
}

/// Checks `job` against `model` with [`Verifier::verify_generation`]: every generated token must be
/// within [`REAL_MODEL_MARGIN`] of the rule's choice (sequence 0, positions from 0). A prompt whose length
/// differs from the receipt's is `prompt_mismatch` (the validator did not rebuild what the miner decoded:
/// not the miner's fault as far as this check can tell).
pub fn check(model: &HeldModel, job: &Job) -> OrganicVerdict {
    let n = job.generated.len();
    if n == 0 {
        return OrganicVerdict {
            passed: true,
            reason: "passed".into(),
            detail: "no tokens to check".into(),
            tokens: 0,
        };
    }
    if job.prompt.len() != job.receipt_prompt_tokens {
        return OrganicVerdict::fail(
            "prompt_mismatch",
            format!(
                "the validator's prompt has {} tokens, the receipt {}",
                job.prompt.len(),
                job.receipt_prompt_tokens
            ),
            0,
        );
    }
    let verdict = model
        .verifier
        .verify_generation(&job.prompt, &job.generated, &job.sampling);
    OrganicVerdict {
        passed: verdict.passed,
        reason: verdict.reason.code().to_owned(),
        detail: verdict.detail,
        tokens: n,
    }
}

/// Where verdicts go once reached (the usage row, metrics, routing).
pub type Sink = Arc<dyn Fn(&Job, &OrganicVerdict) + Send + Sync>;

/// The bounded queue of checks and its worker.
#[derive(Debug, Clone)]
pub struct VerifyQueue {
    tx: tokio::sync::mpsc::Sender<Job>,
}

impl VerifyQueue {
    /// Starts the worker: jobs for models other than `model`'s are not accepted ([`Self::offer`] says so).
    /// At most `capacity` jobs wait.
    pub fn start(model: Arc<HeldModel>, capacity: usize, sink: Sink) -> Self {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Job>(capacity.max(1));
        tokio::spawn(async move {
            while let Some(job) = rx.recv().await {
                let model = model.clone();
                let sink = sink.clone();
                let done = tokio::task::spawn_blocking(move || {
                    let verdict = check(&model, &job);
                    sink(&job, &verdict);
                })
                .await;
                if let Err(e) = done {
                    tracing::error!("an organic verification panicked: {e}");
                }
            }
        });
        Self { tx }
    }

    /// Queues `job`; false when the queue is full (the job is dropped).
    pub fn offer(&self, job: Job) -> bool {
        self.tx.try_send(job).is_ok()
    }
}
