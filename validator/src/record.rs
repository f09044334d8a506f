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

use bench_tasks::matmul::{MatmulDtype, RoundParams};
use scoring::policy::Policy;
use scoring::score::{Observation, ScoreBook};
use scoring::task::TaskClass;
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
        devices: o.devices,
    });
    let served = organic.iter().map(|o| Observation {
        uid: o.uid,
        task_class: bench_tasks::wire::TaskClass::Organic,
        passed: o.verdict.passed,
        reason: o.verdict.reason,
        elapsed_seconds: o.total_ms / 1e3,
        rtt_seconds: 0.0,
        work_units: o.verdict.work_units,
        devices: 1,
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
/// the validator's whole scoring step, used unchanged by replay. The round's matmul answers are
/// compared with the reference of their dtype class (`matmul_dtype`), so f32 and bf16 rounds each
/// keep their own ([`ScoreBook::fold_round_in`]).
pub fn score_step(
    book: &mut ScoreBook,
    forget: &[u16],
    observations: &[Observation],
    matmul_dtype: MatmulDtype,
    policy: &Policy,
    limits: &ChainLimits,
) -> ScoreOutput {
    for &uid in forget {
        book.forget(uid);
    }
    let variants = BTreeMap::from([(TaskClass::Matmul, matmul_dtype.name().to_string())]);
    let round_scores = book.fold_round_in(observations, policy, &variants);
    let weights = weights_from_scores(&book.scores, policy, limits).map_err(|e| e.to_string());
    ScoreOutput {
        round_scores,
        weights,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{Ledger, RoundInputs};
    use crate::roundlog::{GENESIS, LogEntry};
    use bench_tasks::matmul::MatmulDtype;

    /// The body of a `round` entry as validators wrote it before `matmul_batch` and the outcomes'
    /// `dtype` and `device` were recorded (a bf16 round of two miners).
    const OLD_ROUND: &str = r#"{"round":1,"attempt":1,"block_number":10,"block_hash":"ab","started_ms":0,"finished_ms":1,"policy_hash":"3e45f4bb7a5dc10f75de3f2bc5232cf189138141e671c8c270108912a084e189","matmul":{"n":64,"m":8,"p":251,"k":40,"round_seed":1,"dtype":"bf16"},"forgotten":[],"miners":[{"uid":0,"hotkey":"miner0","task":"matmul","verdict":{"passed":true,"reason":"passed","work_units":524288.0},"rtt_ms":1.0,"total_ms":20.0,"compute_ms":19.0,"seed":"00000000000000aa","answer_hash":null},{"uid":1,"hotkey":"miner1","task":"matmul","verdict":{"passed":false,"reason":"wrong_row","detail":"row 3","work_units":524288.0},"rtt_ms":1.0,"total_ms":20.0,"compute_ms":19.0,"seed":"00000000000000aa","answer_hash":null}],"observations":[{"uid":0,"task_class":"matmul","passed":true,"reason":"passed","elapsed_seconds":0.02,"rtt_seconds":0.001,"work_units":524288.0},{"uid":1,"task_class":"matmul","passed":false,"reason":"wrong_row","elapsed_seconds":0.02,"rtt_seconds":0.001,"work_units":524288.0}],"round_scores":{"0":0.5,"1":0.0},"book":{"scores":{"0":0.05,"1":0.0},"rounds":1},"limits":{"n":2,"min_allowed_weights":1,"max_weight_limit":65535},"weights":{"uids":[0],"weights":[65535]}}"#;

    #[test]
    fn an_old_round_record_reads_without_batch_dtype_or_device_and_writes_back_unchanged() {
        let r: RoundRecord = serde_json::from_str(OLD_ROUND).unwrap();
        assert_eq!(r.matmul_batch, None);
        assert_eq!(r.matmul.dtype, MatmulDtype::Bf16);
        assert!(
            r.miners
                .iter()
                .all(|m| m.dtype.is_none() && m.device_runs.is_empty())
        );
        // The observations still derive from the outcomes alone.
        assert_eq!(observations(&r.miners, &r.organic), r.observations);
        assert_eq!(serde_json::to_string(&r).unwrap(), OLD_ROUND);
    }

    fn outcome(uid: u16, passed: bool, device: Option<u32>) -> MinerOutcome {
        MinerOutcome {
            uid,
            hotkey: format!("miner{uid}"),
            task: bench_tasks::wire::TaskClass::Matmul,
            verdict: if passed {
                bench_tasks::Verdict::pass(2.0 * 64f64.powi(3))
            } else {
                bench_tasks::Verdict::fail(bench_tasks::Reason::WrongRow, "row 3", 2.0 * 64f64.powi(3))
            },
            rtt_ms: Some(1.0),
            total_ms: Some(20.0 + f64::from(uid)),
            compute_ms: Some(19.0 + f64::from(uid)),
            seed: "00000000000000aa".into(),
            answer_hash: None,
            devices: 1,
            dtype: Some(MatmulDtype::Bf16),
            device_runs: device
                .map(|device| {
                    vec![crate::state::DeviceRun {
                        device,
                        compute_ms: 19.0,
                    }]
                })
                .unwrap_or_default(),
        }
    }

    /// A log whose round entries lack `matmul_batch` and the outcomes' `dtype` and `device` (as older
    /// validators wrote them) replays to the same scores and weights: replay needs none of them.
    #[test]
    fn a_log_without_the_new_fields_replays() {
        let dir = tempfile::tempdir().unwrap();
        let mut ledger = Ledger::open(dir.path(), Policy::default(), "v", 1).unwrap();
        for round in 1..=3u64 {
            let record = ledger
                .commit_round(RoundInputs {
                    attempt: round,
                    block_number: 10 * round,
                    block_hash: "ab".into(),
                    started_ms: 0,
                    finished_ms: 1,
                    matmul: RoundParams::new(64, round).with_dtype(MatmulDtype::Bf16),
                    matmul_batch: 2,
                    outcomes: vec![
                        outcome(0, true, Some(1)),
                        outcome(1, true, None),
                        outcome(2, false, Some(0)),
                    ],
                    organic: vec![],
                    limits: ChainLimits {
                        n: 3,
                        min_allowed_weights: 1,
                        max_weight_limit: u16::MAX,
                    },
                })
                .unwrap();
            assert_eq!(record.matmul_batch, Some(2));
        }
        let text = std::fs::read_to_string(ledger.log_path()).unwrap();
        let mut prev = GENESIS.to_owned();
        let mut old = String::new();
        let mut stripped = 0;
        for line in text.lines() {
            let e = LogEntry::parse(line).unwrap();
            let mut body: serde_json::Value = serde_json::from_str(e.body.get()).unwrap();
            if e.kind == KIND_ROUND {
                let round = body.as_object_mut().unwrap();
                stripped += usize::from(round.remove("matmul_batch").is_some());
                for m in round["miners"].as_array_mut().unwrap() {
                    let m = m.as_object_mut().unwrap();
                    stripped += usize::from(m.remove("dtype").is_some());
                    stripped += usize::from(m.remove("device_runs").is_some());
                }
            }
            let entry = LogEntry::new(e.seq, &prev, &e.kind, &body).unwrap();
            prev = entry.hash.clone();
            old.push_str(&entry.line());
            old.push('\n');
        }
        // Three rounds: the batch, three classes and two devices each.
        assert_eq!(stripped, 3 * (1 + 3 + 2));
        let path = dir.path().join("old.log");
        std::fs::write(&path, old).unwrap();
        let report = crate::replay::replay(&path).unwrap();
        assert!(report.matches(), "{:?}", report.mismatches);
        assert_eq!(report.rounds, 3);
        let new = crate::replay::replay(&ledger.log_path()).unwrap();
        assert!(new.matches(), "{:?}", new.mismatches);
        assert_eq!(
            (report.entries, report.last_weights),
            (new.entries, new.last_weights),
            "the same replay with and without the new fields"
        );
    }
}
