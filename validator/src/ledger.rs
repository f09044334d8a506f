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
    InferenceRecord, KIND_ROUND, KIND_START, KIND_WEIGHTS, MatmulRecord, RoundRecord, StartRecord,
    WeightsRecord, observations, policy_hash, score_step,
};
use crate::roundlog::{LogError, RoundLog};
use crate::state::{MinerOutcome, RoundCommit, ScoreRow, StateError, Store, WeightSubmission};

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
    /// Matmul parameters.
    pub matmul: MatmulRecord,
    /// Per-miner outcomes.
    pub outcomes: Vec<MinerOutcome>,
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
}

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
        })
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
        let obs = observations(&inputs.outcomes);
        let mut book = self.book.clone();
        let out = score_step(&mut book, &forgotten, &obs, &self.policy, &inputs.limits);
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
            inference,
            forgotten,
            miners: inputs.outcomes.clone(),
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
            scores,
            scoring_state: serde_json::to_string(&book)?,
        };
        let entry = self.log.next_entry(KIND_ROUND, &record)?;
        self.store.commit_round(&commit, &entry)?;
        // Committed: the round counts. Now make memory and the log file agree with the database.
        self.book = book;
        self.hotkeys = hotkeys;
        self.log.append(&entry)?;
        Ok(record)
    }

    /// Records a weight submission (of `sub.round`'s weights) and logs it.
    pub fn record_submission(&mut self, sub: &WeightSubmission) -> Result<(), LedgerError> {
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
        self.store.record_submission(sub, &entry)?;
        self.log.append(&entry)?;
        Ok(())
    }
}
