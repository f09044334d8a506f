//! The validator's check: one teacher-forced forward pass over a few sampled sequences, on the CPU.

use burn::tensor::{Int, Tensor, TensorData};

use super::InferenceError;
use super::challenge::{InferenceAnswer, InferenceChallenge, Limits, ModelId, flatten_ids};
use super::model::Transformer;
use super::sampling::{Sampling, deficit};
use super::seeded::SeededStream;
use crate::verdict::{Reason, Verdict};

/// How far (in logit units) a generated token's logit may sit below the row's maximum and still count as
/// the argmax. It absorbs float differences between devices and summation orders. Seeded logits have a
/// standard deviation of about 1, so the gap between the top two of 2,048 logits is about 0.25 on average
/// and a wrong token lands within 0.01 of the top rarely. The `wgpu` test in `tests/inference_challenge.rs`
/// asserts that wgpu and flex logits on the same tokens differ by less than a tenth of this margin (measured
/// on Mesa's software Vulkan, 2026-11: at most 1.2e-5 over 3 challenges of 8 × 32 tokens), and
/// `bench inference --backend …` reports the largest difference measured on any backend
/// (`max_logit_difference`).
pub const DEFAULT_LOGIT_MARGIN: f32 = 0.01;

/// Domain string of [`pick_sequences`].
pub const PICKS_DOMAIN: &str = "tensorproof/inference/picks/v1";

/// Checks inference answers against one model held on a CPU device.
#[derive(Debug)]
pub struct Verifier {
    model_id: ModelId,
    model: Transformer,
    limits: Limits,
    margin: f32,
}

/// The teacher-forced check of one answer, position by position.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenCheck {
    /// The sequences checked (indices into the batch).
    pub picks: Vec<usize>,
    /// `deficits[i][t]`: how far the logit of generated token `t` of sequence `picks[i]` sits below the row's
    /// maximum (0 when it is the argmax; NaN when the row holds a non-finite value).
    pub deficits: Vec<Vec<f32>>,
}

impl Verifier {
    /// A verifier for the model `model_id` names, already built (normally on `Device::flex()`), with
    /// [`DEFAULT_LOGIT_MARGIN`].
    pub const fn new(model_id: ModelId, model: Transformer, limits: Limits) -> Self {
        Self {
            model_id,
            model,
            limits,
            margin: DEFAULT_LOGIT_MARGIN,
        }
    }

    /// The same verifier with another logit margin.
    pub const fn with_margin(mut self, margin: f32) -> Self {
        self.margin = margin;
        self
    }

    /// The model the verifier holds.
    pub const fn model(&self) -> &Transformer {
        &self.model
    }

    /// The logit margin in use.
    pub const fn margin(&self) -> f32 {
        self.margin
    }

    /// Verifies `answer` to `challenge` on the sequences `picks` (chosen by the validator after the answer
    /// arrived, e.g. with [`pick_sequences`]). Never panics on a bad answer: every problem becomes a failed
    /// verdict with its reason.
    pub fn verify(
        &self,
        challenge: &InferenceChallenge,
        answer: &InferenceAnswer,
        picks: &[usize],
    ) -> Verdict {
        self.verify_sampled(challenge, &Sampling::GREEDY, answer, picks)
    }

    /// Verifies an answer decoded under `sampling` (see [`super::sampling`] for the rule and how the margin
    /// applies). [`verify`](Self::verify) is this with [`Sampling::GREEDY`].
    pub fn verify_sampled(
        &self,
        challenge: &InferenceChallenge,
        sampling: &Sampling,
        answer: &InferenceAnswer,
        picks: &[usize],
    ) -> Verdict {
        let work = challenge.work_units() as f64;
        if challenge.model != self.model_id {
            let detail = format!(
                "challenge names model {}, the verifier holds {}",
                challenge.model, self.model_id
            );
            return Verdict::fail(Reason::BadChallenge, detail, 0.0);
        }
        let check = match self.check_tokens(challenge, sampling, answer, picks) {
            Ok(c) => c,
            Err(e) => {
                let reason = match &e {
                    InferenceError::OutOfVocab { .. } => Reason::OutOfVocab,
                    InferenceError::BadChallenge { field: "tokens", .. } => Reason::BadShape,
                    _ => Reason::BadChallenge,
                };
                return Verdict::fail(reason, e.to_string(), work);
            }
        };
        for (i, row) in check.deficits.iter().enumerate() {
            for (t, &deficit) in row.iter().enumerate() {
                let b = check.picks[i];
                if deficit.is_nan() {
                    let detail = format!("the model's logits for sequence {b} position {t} are not finite");
                    return Verdict::fail(Reason::BadValue, detail, work);
                }
                if deficit > self.margin {
                    let detail = format!(
                        "sequence {b} position {t}: token {} is {deficit:.4} below the rule's choice (margin {})",
                        answer.tokens[b][t], self.margin
                    );
                    return Verdict::fail(Reason::WrongToken, detail, work);
                }
            }
        }
        Verdict::pass(work)
    }

    /// Verifies one organic generation ([`super::engine`]): `generated` (a final stop token included)
    /// continued `prompt` under `sampling`, as sequence 0 at positions `0..`. One teacher-forced pass; every
    /// token must be within the margin of the rule's choice. Never panics: every problem is a failed
    /// verdict with its reason.
    pub fn verify_generation(&self, prompt: &[u32], generated: &[u32], sampling: &Sampling) -> Verdict {
        let work = generated.len() as f64;
        if let Err(e) = sampling.validate() {
            return Verdict::fail(Reason::BadChallenge, e.to_string(), 0.0);
        }
        let logits = match teacher_forced_logits(&self.model, &[prompt.to_vec()], &[generated.to_vec()]) {
            Ok(l) => l,
            Err(e) => {
                let reason = match &e {
                    InferenceError::OutOfVocab { .. } => Reason::OutOfVocab,
                    _ => Reason::BadShape,
                };
                return Verdict::fail(reason, e.to_string(), work);
            }
        };
        let vocab = self.model.config().vocab_size;
        for (t, (&token, row)) in generated.iter().zip(logits.chunks_exact(vocab)).enumerate() {
            let d = deficit(sampling, row, token, self.margin, 0, t);
            if d.is_nan() {
                let detail = format!("the model's logits at position {t} are not finite");
                return Verdict::fail(Reason::BadValue, detail, work);
            }
            if d > self.margin {
                let detail = format!(
                    "position {t}: token {token} is {d:.4} below the rule's choice (margin {})",
                    self.margin
                );
                return Verdict::fail(Reason::WrongToken, detail, work);
            }
        }
        Verdict::pass(work)
    }

    /// Runs the teacher-forced pass over `picks` and returns every generated token's logit deficit under
    /// `sampling` ([`super::sampling::deficit`]).
    ///
    /// # Errors
    /// Those of [`InferenceChallenge::validate`], [`Sampling::validate`] and [`InferenceAnswer::check_shape`],
    /// [`InferenceError::BadChallenge`] (field `picks`) for an empty pick or one outside the batch, then those
    /// of [`teacher_forced_logits`].
    pub fn check_tokens(
        &self,
        challenge: &InferenceChallenge,
        sampling: &Sampling,
        answer: &InferenceAnswer,
        picks: &[usize],
    ) -> Result<TokenCheck, InferenceError> {
        challenge.validate(&self.limits)?;
        sampling.validate()?;
        answer.check_shape(challenge)?;
        if picks.is_empty() || picks.iter().any(|&b| b >= challenge.batch) {
            let why = format!("{picks:?} are not in 0..{}", challenge.batch);
            return Err(InferenceError::BadChallenge { field: "picks", why });
        }
        let mut picks = picks.to_vec();
        picks.sort_unstable();
        picks.dedup();
        let prompts = challenge.prompts();
        let prompts: Vec<Vec<u32>> = picks.iter().map(|&b| prompts[b].clone()).collect();
        let generated: Vec<Vec<u32>> = picks.iter().map(|&b| answer.tokens[b].clone()).collect();
        let logits = teacher_forced_logits(&self.model, &prompts, &generated)?;
        let vocab = self.model.config().vocab_size;
        let t_len = challenge.new_tokens;
        let deficits = generated
            .iter()
            .enumerate()
            .map(|(i, row)| {
                row.iter()
                    .enumerate()
                    .map(|(t, &token)| {
                        let logit_row = &logits[(i * t_len + t) * vocab..(i * t_len + t + 1) * vocab];
                        deficit(sampling, logit_row, token, self.margin, picks[i], t)
                    })
                    .collect()
            })
            .collect();
        Ok(TokenCheck { picks, deficits })
    }
}

/// The logits that predict each generated token, from one causal pass over `prompt ‖ generated[..T−1]` per
/// sequence: a row-major `[sequences, T, vocab]` buffer whose row `(i, t)` should have its maximum at
/// `generated[i][t]`.
///
/// # Errors
/// [`InferenceError::BadChallenge`] for ragged or empty input or a sequence longer than the model allows,
/// [`InferenceError::OutOfVocab`], or [`InferenceError::Backend`] if the device fails.
pub fn teacher_forced_logits(
    model: &Transformer,
    prompts: &[Vec<u32>],
    generated: &[Vec<u32>],
) -> Result<Vec<f32>, InferenceError> {
    let config = model.config();
    let n = prompts.len();
    let len = prompts.first().map_or(0, Vec::len);
    let t_len = generated.first().map_or(0, Vec::len);
    if n == 0 || len == 0 || t_len == 0 || generated.len() != n {
        return Err(InferenceError::BadChallenge {
            field: "tokens",
            why: "no sequences to check".into(),
        });
    }
    if prompts.iter().any(|p| p.len() != len) || generated.iter().any(|g| g.len() != t_len) {
        return Err(InferenceError::BadChallenge {
            field: "tokens",
            why: "sequences differ in length".into(),
        });
    }
    if len + t_len > config.max_seq_len {
        return Err(InferenceError::BadChallenge {
            field: "new_tokens",
            why: format!("{len} + {t_len} exceeds max_seq_len {}", config.max_seq_len),
        });
    }
    let rows: Vec<Vec<u32>> = prompts
        .iter()
        .zip(generated)
        .map(|(p, g)| p.iter().chain(&g[..t_len - 1]).copied().collect())
        .collect();
    let ids = flatten_ids(&rows, config.vocab_size, "tokens")?;
    let device = model.device();
    let total = len + t_len - 1;
    let input = Tensor::<2, Int>::from_data(TensorData::new(ids, [n, total]), &device);
    let hidden = model.hidden(input, None).narrow(1, len - 1, t_len);
    let logits = model.logits(hidden);
    let data = logits.try_into_data().map_err(|e| InferenceError::Backend {
        backend: format!("{device:?}"),
        why: format!("{e:?}"),
    })?;
    Ok(data.iter::<f32>().collect())
}

/// `min(s, batch)` distinct sequence indices in `0..batch`, sorted, drawn from `entropy` (a value the
/// validator chooses only after the answer has arrived). A partial Fisher–Yates shuffle over the
/// [`PICKS_DOMAIN`] stream.
pub fn pick_sequences(batch: usize, s: usize, entropy: u64) -> Vec<usize> {
    let stream = SeededStream::new(PICKS_DOMAIN, entropy, "");
    let mut all: Vec<usize> = (0..batch).collect();
    let k = s.min(batch);
    for i in 0..k {
        let remaining = u32::try_from(batch - i).unwrap_or(u32::MAX);
        let j = i + stream.below(i as u64, remaining) as usize;
        all.swap(i, j);
    }
    let mut picks = all[..k].to_vec();
    picks.sort_unstable();
    picks
}
