//! The ledger: the state database, the round log and the scoring state kept consistent together.
//!
//! Every change goes through here: [`Ledger::commit_round`] scores a round with
//! [`crate::record::score_step`], builds its [`RoundRecord`], commits it to SQLite (the commit point, see
//! [`crate::state`]) and then appends it to the round log; [`Ledger::record_submission`] does the same for a
//! weight submission. Opening a ledger restores the EMA book exactly and logs a `start` entry with the
//! policy and that book, so a replay can check that a restart lost nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use scoring::policy::Policy;
use scoring::score::ScoreBook;
use scoring::weights::{ChainLimits, WeightVector};

use crate::record::{
    InferenceRecord, KIND_ROUND, KIND_START, KIND_WEIGHTS, RoundRecord, StartRecord, WeightsRecord,
    observations, policy_hash, score_step,
};
use crate::roundlog::{LogError, RoundLog};
use crate::state::{
    MinerOutcome, OrganicOutcome, RoundCommit, ScoreRow, StateError, Store, WeightSubmission,
};

/// An error from the ledger.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The state database failed.
    #[error(transparent)]
    State(#[from] StateError),
    /// The round log failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// A record could not be serialized or the stored scoring state could not be read.
    #[error("scoring state could not be encoded or decoded: {0}; restore the state directory from a backup")]
    Encoding(#[from] serde_json::Error),
}

/// What a round hands to the ledger.
#[derive(Debug, Clone)]
pub struct RoundInputs {
    /// The attempt the seeds came from.
    pub attempt: u64,
    /// Block number.
    pub block_number: u64,
    /// Block hash, hex.
    pub block_hash: String,
    /// Unix ms at start.
    pub started_ms: u64,
    /// Unix ms at end.
    pub finished_ms: u64,
    /// Matmul parameters (size, dtype class, sketch, openings, round seed).
    pub matmul: bench_tasks::matmul::RoundParams,
    /// Products per matmul challenge, `B` (work `B·n³` multiply-adds per challenge).
    pub matmul_batch: u32,
    /// Per-miner outcomes.
    pub outcomes: Vec<MinerOutcome>,
    /// Organic answers checked since the previous round ([`crate::organic::OrganicInbox::drain`]). Those
    /// of a uid not in `outcomes`, or of another hotkey than its outcome's, are dropped at commit: that
    /// miner left, and its successor must not inherit its verdicts.
    pub organic: Vec<OrganicOutcome>,
    /// The chain limits for the weight vector.
    pub limits: ChainLimits,
}

/// State, log and scoring, together.
#[derive(Debug)]
pub struct Ledger {
    store: Store,
    log: RoundLog,
    policy: Policy,
    policy_hash: String,
    book: ScoreBook,
    hotkeys: BTreeMap<u16, String>,
    retain_rounds: Option<u64>,
}

/// Rounds between two prunings of the state database (see [`Ledger::retain_rounds`]).
pub const PRUNE_EVERY_ROUNDS: u64 = 100;

impl Ledger {
    /// The round log's file name inside the state directory.
    pub const LOG_FILE: &'static str = "rounds.log";

    /// Opens (or creates) the ledger in `dir`, restoring the EMA book and logging a `start` entry.
    pub fn open(dir: &Path, policy: Policy, validator: &str, netuid: u16) -> Result<Self, LedgerError> {
        std::fs::create_dir_all(dir).map_err(|source| LogError::Io {
            path: dir.to_owned(),
            source,
        })?;
        let mut store = Store::open_dir(dir)?;
        let committed = store.last_log_entry()?;
        let mut log = RoundLog::open(&dir.join(Self::LOG_FILE), committed.as_ref())?;
        let book: ScoreBook = match store.scoring_state()? {
            Some((_, json)) => serde_json::from_str(&json)?,
            None => ScoreBook::new(),
        };
        let hotkeys = store.scores()?.into_iter().map(|s| (s.uid, s.hotkey)).collect();
        let policy_hash = policy_hash(&policy);
        let start = StartRecord {
            validator: validator.to_owned(),
            netuid,
            policy: policy.clone(),
            policy_hash: policy_hash.clone(),
            book: book.clone(),
        };
        let entry = log.next_entry(KIND_START, &start)?;
        store.commit_log_entry(&entry)?;
        log.append(&entry)?;
        Ok(Self {
            store,
            log,
            policy,
            policy_hash,
            book,
            hotkeys,
            retain_rounds: None,
        })
    }

    /// Keeps only the latest `rounds` rounds of verdicts and weight submissions in the state
    /// database (`None` or 0: keep everything), pruning every [`PRUNE_EVERY_ROUNDS`] rounds. The
    /// round log file keeps the whole history (`validator replay` checks the chain from its start).
    pub fn retain_rounds(&mut self, rounds: Option<u64>) {
        self.retain_rounds = rounds.filter(|&r| r > 0);
    }

    /// The round log's path.
    pub fn log_path(&self) -> PathBuf {
        self.log.path().to_owned()
    }

    /// The policy in force.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The EMA book.
    pub fn book(&self) -> &ScoreBook {
        &self.book
    }

    /// The state database (read access for dashboards and tests).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Bumps and commits the attempt counter (call before a round sends anything).
    pub fn begin_attempt(&mut self) -> Result<u64, LedgerError> {
        Ok(self.store.begin_attempt()?)
    }

    /// The number the next committed round will get.
    pub fn next_round(&self) -> Result<u64, LedgerError> {
        Ok(self.store.last_round()? + 1)
    }

    /// Scores the round, commits it atomically, appends it to the log and returns its record.
    pub fn commit_round(&mut self, inputs: RoundInputs) -> Result<RoundRecord, LedgerError> {
        self.commit_round_with(inputs, None)
    }

    /// [`commit_round`](Self::commit_round) for a round that could also send inference challenges with
    /// the parameters in `inference` (recorded with the round).
    pub fn commit_round_with(
        &mut self,
        mut inputs: RoundInputs,
        inference: Option<InferenceRecord>,
    ) -> Result<RoundRecord, LedgerError> {
        inputs.outcomes.sort_by_key(|o| o.uid);
        let round = self.next_round()?;
        // A uid whose hotkey changed is a new miner: it starts from zero.
        let forgotten: Vec<u16> = inputs
            .outcomes
            .iter()
            .filter(|o| self.hotkeys.get(&o.uid).is_some_and(|h| *h != o.hotkey))
            .map(|o| o.uid)
            .collect();
        let before = inputs.organic.len();
        let outcomes = &inputs.outcomes;
        inputs
            .organic
            .retain(|g| outcomes.iter().any(|o| o.uid == g.uid && o.hotkey == g.hotkey));
        inputs.organic.sort_by_key(|g| g.usage_id);
        if inputs.organic.len() < before {
            tracing::info!(
                dropped = before - inputs.organic.len(),
                "organic verdicts of miners no longer at their uid were dropped"
            );
        }
        let obs = observations(&inputs.outcomes, &inputs.organic);
        let mut book = self.book.clone();
        let out = score_step(
            &mut book,
            &forgotten,
            &obs,
            inputs.matmul.dtype,
            &self.policy,
            &inputs.limits,
        );
        let mut hotkeys = self.hotkeys.clone();
        for o in &inputs.outcomes {
            hotkeys.insert(o.uid, o.hotkey.clone());
        }
        let record = RoundRecord {
            round,
            attempt: inputs.attempt,
            block_number: inputs.block_number,
            block_hash: inputs.block_hash.clone(),
            started_ms: inputs.started_ms,
            finished_ms: inputs.finished_ms,
            policy_hash: self.policy_hash.clone(),
            matmul: inputs.matmul,
            matmul_batch: Some(inputs.matmul_batch),
            inference,
            forgotten,
            miners: inputs.outcomes.clone(),
            organic: inputs.organic.clone(),
            observations: obs,
            round_scores: out.round_scores,
            book: book.clone(),
            limits: inputs.limits,
            weights_error: out.weights.as_ref().err().cloned(),
            weights: out.weights.ok(),
        };
        let scores = book
            .scores
            .iter()
            .map(|(&uid, &ema)| ScoreRow {
                uid,
                hotkey: hotkeys.get(&uid).cloned().unwrap_or_default(),
                ema,
            })
            .collect();
        let commit = RoundCommit {
            round,
            attempt: inputs.attempt,
            block_number: inputs.block_number,
            block_hash: inputs.block_hash,
            started_ms: inputs.started_ms,
            finished_ms: inputs.finished_ms,
            outcomes: inputs.outcomes,
            organic: inputs.organic,
            scores,
            scoring_state: serde_json::to_string(&book)?,
        };
        let entry = self.log.next_entry(KIND_ROUND, &record)?;
        self.store.commit_round(&commit, &entry)?;
        // Committed: the round counts. Now make memory and the log file agree with the database.
        self.book = book;
        self.hotkeys = hotkeys;
        self.log.append(&entry)?;
        if let Some(keep) = self.retain_rounds
            && record.round.is_multiple_of(PRUNE_EVERY_ROUNDS)
            && record.round > keep
        {
            // The round is committed either way; a failed pruning is retried at the next one.
            match self.store.prune_before(record.round + 1 - keep) {
                Ok(deleted) => tracing::debug!(round = record.round, keep, deleted, "state database pruned"),
                Err(error) => {
                    tracing::warn!(round = record.round, %error, "pruning the state database failed")
                }
            }
        }
        Ok(record)
    }

    /// Records a weight submission (of `sub.round`'s weights) and logs it.
    pub fn record_submission(&mut self, sub: &WeightSubmission) -> Result<(), LedgerError> {
        self.write_submission(None, sub).map(|_| ())
    }

    /// Records the attempt to submit `sub.round`'s weights before they are sent, with status
    /// [`PENDING`], and logs it: a process killed while the submission is in flight leaves this record
    /// (as the round counter is recorded before the round's work). [`Self::finish_submission`] records
    /// the outcome.
    pub fn begin_submission(&mut self, sub: &WeightSubmission) -> Result<SubmissionId, LedgerError> {
        let pending = WeightSubmission {
            status: PENDING.to_owned(),
            ..sub.clone()
        };
        self.write_submission(None, &pending).map(SubmissionId)
    }

    /// Records the outcome of the attempt `id` ([`Self::begin_submission`]) and logs it.
    pub fn finish_submission(&mut self, id: SubmissionId, sub: &WeightSubmission) -> Result<(), LedgerError> {
        self.write_submission(Some(id.0), sub).map(|_| ())
    }

    fn write_submission(&mut self, id: Option<i64>, sub: &WeightSubmission) -> Result<i64, LedgerError> {
        let record = WeightsRecord {
            round: sub.round,
            block: sub.block,
            weights: WeightVector {
                uids: sub.uids.clone(),
                weights: sub.weights.clone(),
            },
            status: sub.status.clone(),
            detail: sub.detail.clone(),
        };
        let entry = self.log.next_entry(KIND_WEIGHTS, &record)?;
        let id = match id {
            None => self.store.record_submission(sub, &entry)?,
            Some(id) => {
                self.store.finish_submission(id, sub, &entry)?;
                id
            }
        };
        self.log.append(&entry)?;
        Ok(id)
    }
}

/// The status of a weight submission recorded before it is sent.
pub const PENDING: &str = "pending";

/// A weight submission recorded before sending ([`Ledger::begin_submission`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubmissionId(i64);

#[cfg(test)]
mod tests {
    use super::*;
    use bench_tasks::matmul::RoundParams;

    fn inputs(round: u64) -> RoundInputs {
        RoundInputs {
            attempt: round,
            block_number: 10 * round,
            block_hash: "ab".into(),
            started_ms: round,
            finished_ms: round + 1,
            matmul: RoundParams {
                n: 8,
                m: 2,
                p: 65521,
                k: 2,
                round_seed: round,
                dtype: bench_tasks::matmul::MatmulDtype::F32,
            },
            matmul_batch: 1,
            outcomes: vec![MinerOutcome {
                uid: 1,
                hotkey: "hk".into(),
                task: bench_tasks::wire::TaskClass::Matmul,
                verdict: bench_tasks::Verdict::pass(64.0),
                rtt_ms: Some(1.0),
                total_ms: Some(2.0),
                compute_ms: Some(1.0),
                seed: format!("{round:016x}"),
                answer_hash: None,
                devices: 1,
                dtype: Some(bench_tasks::matmul::MatmulDtype::F32),
                device_runs: Vec::new(),
            }],
            organic: Vec::new(),
            limits: ChainLimits {
                n: 2,
                min_allowed_weights: 1,
                max_weight_limit: u16::MAX,
            },
        }
    }

    #[test]
    fn retention_prunes_the_database_every_hundred_rounds_and_never_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let mut ledger = Ledger::open(dir.path(), Policy::default(), "v", 1).unwrap();
        ledger.retain_rounds(Some(30));
        for round in 1..PRUNE_EVERY_ROUNDS {
            ledger.commit_round(inputs(round)).unwrap();
        }
        assert_eq!(ledger.store().round_count().unwrap(), PRUNE_EVERY_ROUNDS - 1);
        ledger.commit_round(inputs(PRUNE_EVERY_ROUNDS)).unwrap();
        assert_eq!(ledger.store().round_count().unwrap(), 30);
        assert!(ledger.store().round_outcomes(70).unwrap().is_empty());
        assert_eq!(ledger.store().round_outcomes(71).unwrap().len(), 1);
        assert_eq!(ledger.next_round().unwrap(), PRUNE_EVERY_ROUNDS + 1);
        // The log still holds (and replays) every round.
        let report = crate::replay::replay(&ledger.log_path()).unwrap();
        assert!(report.matches(), "{:?}", report.mismatches);
        assert_eq!(report.rounds, PRUNE_EVERY_ROUNDS);
    }
}
