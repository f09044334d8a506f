//! What the round log records, and the one scoring step that both the live loop and `replay` run.
//!
//! Log entry kinds:
//! - `start` ([`StartRecord`]): the policy in force and the scoring state a run starts from. Written when
//!   a run starts with an empty log or with a policy different from the last one logged.
//! - `round` ([`RoundRecord`]): every input a round used (block, seeds, task parameters, per-miner timings,
//!   answer hashes, verdicts), the observations handed to `scoring`, and what came out (round scores, the
//!   EMA book, the weight vector for the chain limits of the round's block).
//! - `weights` ([`WeightsRecord`]): a weight submission and its outcome.
//!
//! [`score_step`] is the only place where verdicts become scores and weights, so a replay runs exactly the
//! code the validator ran.

use std::collections::BTreeMap;

use bench_tasks::matmul::RoundParams;
use scoring::policy::Policy;
use scoring::score::{Observation, ScoreBook, score_round};
use scoring::weights::{ChainLimits, WeightVector, weights_from_scores};
use serde::{Deserialize, Serialize};

use crate::state::{MinerOutcome, OrganicOutcome};

/// Log kind of [`StartRecord`].
pub const KIND_START: &str = "start";
/// Log kind of [`RoundRecord`].
pub const KIND_ROUND: &str = "round";
/// Log kind of [`WeightsRecord`].
pub const KIND_WEIGHTS: &str = "weights";

/// The policy and scoring state a run starts from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartRecord {
    /// The validator's hotkey (ss58).
    pub validator: String,
    /// The subnet.
    pub netuid: u16,
    /// The owner policy in force from here on.
    pub policy: Policy,
    /// blake3 of the policy's JSON, as rounds reference it.
    pub policy_hash: String,
    /// The EMA book at this point (restored from the state database).
    pub book: ScoreBook,
}

/// The inference parameters of a round (the per-miner prompt seed is each miner's `seed`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InferenceRecord {
    /// The model every inference challenge of the round named.
    pub model: bench_tasks::inference::ModelId,
    /// Prompts per challenge, `B`.
    pub batch: usize,
    /// Tokens per prompt, `L`.
    pub prompt_len: usize,
    /// Tokens generated per prompt, `T`.
    pub new_tokens: usize,
    /// Sequences the validator checked per answer, `s`.
    pub sequences: usize,
}

/// Everything one round used and produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoundRecord {
    /// Round number (1, 2, …), counted once.
    pub round: u64,
    /// The attempt the seeds were derived from.
    pub attempt: u64,
    /// Block the round was bound to.
    pub block_number: u64,
    /// Its hash, hex.
    pub block_hash: String,
    /// Unix milliseconds at the start and end of the round.
    pub started_ms: u64,
    /// See `started_ms`.
    pub finished_ms: u64,
    /// blake3 of the policy JSON in force (the last `start` entry's `policy_hash`).
    pub policy_hash: String,
    /// Matmul parameters: size `n`, dtype class (`dtype`, absent for f32), sketch, openings, round seed.
    pub matmul: RoundParams,
    /// Products per matmul challenge, `B`: a challenge is `B·n³` multiply-adds (`2·B·n³` FLOPs). Absent
    /// in logs written before it was recorded (every matmul verdict's `work_units`, `B·n³`, still gives
    /// it); replay does not need it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matmul_batch: Option<u32>,
    /// Inference parameters, when the round could send inference challenges.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inference: Option<InferenceRecord>,
    /// uids dropped from the book before scoring (deregistered, or a new hotkey at the uid).
    #[serde(default)]
    pub forgotten: Vec<u16>,
    /// Per-miner seeds, timings, answer hashes and verdicts.
    pub miners: Vec<MinerOutcome>,
    /// Organic answers the API checked since the previous round (usage ids, timings, verdicts).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub organic: Vec<OrganicOutcome>,
    /// The observations handed to `scoring` (derived from `miners` and `organic` by [`observations`]).
    pub observations: Vec<Observation>,
    /// This round's scores.
    pub round_scores: BTreeMap<u16, f64>,
    /// The EMA book after the round.
    pub book: ScoreBook,
    /// The chain limits the weights were fitted to.
    pub limits: ChainLimits,
    /// The weight vector the book gives (None when scoring refused, with the reason in `weights_error`).
    pub weights: Option<WeightVector>,
    /// Why no weights, if so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights_error: Option<String>,
}

/// A weight submission and what the chain said.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeightsRecord {
    /// The round whose weights were submitted.
    pub round: u64,
    /// The block at submission.
    pub block: u64,
    /// The vector submitted.
    pub weights: WeightVector,
    /// `included`, `failed` or `skipped`.
    pub status: String,
    /// The chain client's message.
    pub detail: String,
}

/// blake3 hex of a policy's JSON.
pub fn policy_hash(policy: &Policy) -> String {
    blake3::hash(serde_json::to_string(policy).unwrap_or_default().as_bytes())
        .to_hex()
        .to_string()
}

/// The scoring observations for a round: one per miner's challenge (elapsed time and RTT in seconds; a
/// miner whose ping failed has no RTT and its elapsed time is charged in full), then one per checked
/// organic answer (class `organic`, work = tokens checked, elapsed = arrival to last token, no RTT).
pub fn observations(outcomes: &[MinerOutcome], organic: &[OrganicOutcome]) -> Vec<Observation> {
    let challenges = outcomes.iter().map(|o| Observation {
        uid: o.uid,
        task_class: o.task,
        passed: o.verdict.passed,
        reason: o.verdict.reason,
        elapsed_seconds: o.total_ms.unwrap_or(0.0) / 1e3,
        rtt_seconds: o.rtt_ms.unwrap_or(0.0) / 1e3,
        work_units: o.verdict.work_units,
    });
    let served = organic.iter().map(|o| Observation {
        uid: o.uid,
        task_class: bench_tasks::wire::TaskClass::Organic,
        passed: o.verdict.passed,
        reason: o.verdict.reason,
        elapsed_seconds: o.total_ms / 1e3,
        rtt_seconds: 0.0,
        work_units: o.verdict.work_units,
    });
    challenges.chain(served).collect()
}

/// What [`score_step`] produces.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreOutput {
    /// This round's scores.
    pub round_scores: BTreeMap<u16, f64>,
    /// The weight vector for the book after the round, or why there is none.
    pub weights: Result<WeightVector, String>,
}

/// Drops `forget` from `book`, folds one round's observations into it and computes the weight vector:
/// the validator's whole scoring step, used unchanged by replay.
pub fn score_step(
    book: &mut ScoreBook,
    forget: &[u16],
    observations: &[Observation],
    policy: &Policy,
    limits: &ChainLimits,
) -> ScoreOutput {
    for &uid in forget {
        book.forget(uid);
    }
    let round_scores = score_round(observations, policy);
    book.update(&round_scores, policy.ema.alpha);
    let weights = weights_from_scores(&book.scores, policy, limits).map_err(|e| e.to_string());
    ScoreOutput {
        round_scores,
        weights,
    }
}
