//! `validator replay --log PATH`: recompute every round's scores and weights from the round log alone and
//! say whether they match what the validator recorded and submitted.
//!
//! The chain is verified first (any edit, insertion, deletion or reordering is reported with its line).
//! Then, from each `start` entry's policy and EMA book, every `round` entry's observations are re-derived
//! from its per-miner verdicts and timings and run through [`crate::record::score_step`]; the round
//! scores, the EMA book and the weight vector must equal the recorded ones bit for bit, and every
//! `weights` entry must have submitted exactly the vector its round produced.

use std::path::Path;

use scoring::policy::Policy;
use scoring::score::ScoreBook;
use serde::Serialize;

use crate::record::{
    KIND_ROUND, KIND_START, KIND_WEIGHTS, RoundRecord, StartRecord, WeightsRecord, observations, policy_hash,
    score_step,
};
use crate::roundlog::{LogError, read_verified};

/// The outcome of a replay.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReplayReport {
    /// Entries read.
    pub entries: u64,
    /// Rounds recomputed.
    pub rounds: u64,
    /// Weight submission outcomes checked (the attempt logged before each is checked too, not counted).
    pub submissions: u64,
    /// Every disagreement found, one sentence each.
    pub mismatches: Vec<String>,
    /// The weight vector of the last round (uid, weight), as recomputed.
    pub last_weights: Vec<(u16, u16)>,
    /// Whether the log ended with a torn (partly written) line, which is ignored.
    pub torn_tail: bool,
}

impl ReplayReport {
    /// Whether everything matched.
    pub fn matches(&self) -> bool {
        self.mismatches.is_empty()
    }
}

/// Replays the log at `path`. A broken chain or a malformed line is an error; a recomputation that
/// disagrees with the log is a mismatch in the report.
pub fn replay(path: &Path) -> Result<ReplayReport, LogError> {
    let (entries, torn) = read_verified(path)?;
    let mut report = ReplayReport {
        entries: entries.len() as u64,
        torn_tail: torn.is_some(),
        ..Default::default()
    };
    let mut policy: Option<(Policy, String)> = None;
    let mut book = ScoreBook::new();
    let mut produced: std::collections::BTreeMap<u64, scoring::weights::WeightVector> = Default::default();
    for e in &entries {
        let bad_body = |err: serde_json::Error| LogError::Malformed {
            line: e.seq as usize,
            detail: format!("{} body: {err}", e.kind),
        };
        match e.kind.as_str() {
            KIND_START => {
                let s: StartRecord = e.body_as().map_err(bad_body)?;
                if policy_hash(&s.policy) != s.policy_hash {
                    report.mismatches.push(format!(
                        "entry {}: the policy does not hash to its policy_hash",
                        e.seq
                    ));
                }
                if policy.is_some() && s.book != book {
                    report.mismatches.push(format!(
                        "entry {}: the run restarted from an EMA book that differs from the replayed one",
                        e.seq
                    ));
                }
                book = s.book;
                policy = Some((s.policy, s.policy_hash));
            }
            KIND_ROUND => {
                let r: RoundRecord = e.body_as().map_err(bad_body)?;
                report.rounds += 1;
                let Some((pol, hash)) = &policy else {
                    report
                        .mismatches
                        .push(format!("round {}: no policy was logged before it", r.round));
                    continue;
                };
                if *hash != r.policy_hash {
                    report.mismatches.push(format!(
                        "round {}: policy hash differs from the logged policy",
                        r.round
                    ));
                }
                let obs = observations(&r.miners, &r.organic);
                if obs != r.observations {
                    report.mismatches.push(format!(
                        "round {}: the observations scored differ from the per-miner verdicts and timings",
                        r.round
                    ));
                }
                let out = score_step(&mut book, &r.forgotten, &obs, r.matmul.dtype, pol, &r.limits);
                if !same_scores(&out.round_scores, &r.round_scores) {
                    report
                        .mismatches
                        .push(format!("round {}: recomputed round scores differ", r.round));
                }
                if !same_scores(&book.scores, &r.book.scores) || book.rounds != r.book.rounds {
                    report
                        .mismatches
                        .push(format!("round {}: recomputed EMA scores differ", r.round));
                    // Continue from the recorded book so one mismatch is not reported for every later round.
                    book = r.book.clone();
                }
                match (&out.weights, &r.weights) {
                    (Ok(w), Some(rw)) if w == rw => {}
                    (Err(_), None) => {}
                    _ => report
                        .mismatches
                        .push(format!("round {}: recomputed weights differ", r.round)),
                }
                if let Ok(w) = out.weights {
                    report.last_weights = w.uids.iter().copied().zip(w.weights.iter().copied()).collect();
                    produced.insert(r.round, w);
                }
            }
            KIND_WEIGHTS => {
                let w: WeightsRecord = e.body_as().map_err(bad_body)?;
                // An attempt is logged before sending and again with its outcome: count outcomes.
                if w.status != crate::ledger::PENDING {
                    report.submissions += 1;
                }
                match produced.get(&w.round) {
                    Some(p) if *p == w.weights => {}
                    Some(_) => report.mismatches.push(format!(
                        "submission at block {}: the weights sent differ from those round {} produced",
                        w.block, w.round
                    )),
                    None => report.mismatches.push(format!(
                        "submission at block {}: round {} produced no weights in this log",
                        w.block, w.round
                    )),
                }
            }
            other => report
                .mismatches
                .push(format!("entry {}: unknown kind {other:?}", e.seq)),
        }
    }
    Ok(report)
}

/// Bit-exact comparison of score maps.
fn same_scores(a: &std::collections::BTreeMap<u16, f64>, b: &std::collections::BTreeMap<u16, f64>) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|((ka, va), (kb, vb))| ka == kb && va.to_bits() == vb.to_bits())
}
