//! Organic verification: a sample of served answers replayed teacher-forced on the validator's CPU, after
//! the client has its answer.
//!
//! The validator chose (or recorded) the sampler seed, so it knows the rule every token had to follow:
//! [`Sampling::choose`] on sequence `b = 0`, positions `t = 0, 1, …` (as the miner's engine decodes an
//! organic request). [`Verifier::verify_generation`] runs one causal pass over the prompt and the
//! generated ids and checks each token's deficit under the rule against [`REAL_MODEL_MARGIN`]. Jobs wait
//! in a bounded queue and run one at a time on a blocking thread: a full queue drops the job (recorded as
//! `skipped`), never the answer. Each verdict goes to the usage row, the routing directory and, as an
//! [`OrganicOutcome`] ([`Job::outcome`]), to the round loop's inbox, which scores it.
//!
//! [`OrganicOutcome`]: crate::state::OrganicOutcome

use std::sync::Arc;

use bench_tasks::inference::real::{REAL_MODEL_MARGIN, RealModel};
use bench_tasks::inference::tokenizer::Tokenizer;
use bench_tasks::inference::{Limits, Sampling, Transformer, Verifier};
use bench_tasks::wire::ChatMessage;
use bench_tasks::{Reason, Verdict};
use scoring::task::Treatment;

use crate::state::OrganicOutcome;

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
        self.tokenizer
            .encode_chat(messages, true)
            .map_err(|e| e.to_string())
    }
}

/// Whether a verdict puts the miner at fault (a wrong token, a token outside the vocabulary, a
/// non-finite value: what the default policy counts as failed verification), as opposed to a check that
/// could not run (`bad_challenge`: the validator's side).
pub fn is_cheat(verdict: &Verdict) -> bool {
    verdict.reason.default_treatment() == Treatment::FailedVerification
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
    /// The model's sha256.
    pub model_sha256: String,
    /// The prompt ids, as the miner decoded them.
    pub prompt: Vec<u32>,
    /// The prompt length the miner's receipt states.
    pub receipt_prompt_tokens: usize,
    /// The generated ids.
    pub generated: Vec<u32>,
    /// The rule.
    pub sampling: Sampling,
    /// Milliseconds from the request's arrival to its first token.
    pub ttft_ms: Option<f64>,
    /// Milliseconds from the request's arrival to its last token.
    pub total_ms: f64,
}

impl Job {
    /// The ledger's record of this answer under `verdict`, checked at `checked_ms`.
    pub fn outcome(&self, verdict: &Verdict, checked_ms: u64) -> OrganicOutcome {
        let mut hasher = blake3::Hasher::new();
        for id in &self.generated {
            hasher.update(&id.to_le_bytes());
        }
        OrganicOutcome {
            usage_id: self.usage_id,
            uid: self.miner_uid,
            hotkey: self.miner_hotkey.clone(),
            model_sha256: self.model_sha256.clone(),
            verdict: verdict.clone(),
            ttft_ms: self.ttft_ms,
            total_ms: self.total_ms,
            seed: self.sampling.seed.to_string(),
            answer_hash: hasher.finalize().to_hex().to_string(),
            checked_ms,
        }
    }
}

/// Checks `job` against `model` with [`Verifier::verify_generation`]: every generated token must be
/// within [`REAL_MODEL_MARGIN`] of the rule's choice (sequence 0, positions from 0); the verdict's work is
/// the tokens checked. A prompt whose length differs from the receipt's is `bad_challenge` (the validator
/// did not rebuild what the miner decoded: not the miner's fault as far as this check can tell).
pub fn check(model: &HeldModel, job: &Job) -> Verdict {
    if job.generated.is_empty() {
        return Verdict {
            detail: "no tokens to check".into(),
            ..Verdict::pass(0.0)
        };
    }
    if job.prompt.len() != job.receipt_prompt_tokens {
        return Verdict::fail(
            Reason::BadChallenge,
            format!(
                "prompt mismatch: the validator's prompt has {} tokens, the receipt {}",
                job.prompt.len(),
                job.receipt_prompt_tokens
            ),
            0.0,
        );
    }
    model
        .verifier
        .verify_generation(&job.prompt, &job.generated, &job.sampling)
}

/// Where verdicts go once reached (the usage row, metrics, routing).
pub type Sink = Arc<dyn Fn(&Job, &Verdict) + Send + Sync>;

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
