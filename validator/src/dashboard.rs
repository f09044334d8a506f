//! What `GET /scores` and `GET /` show: per miner its recent verdicts with reason codes, RTT, compute
//! time, EMA score and current weight, and, when the API is on, its organic serving (tokens/s, time to
//! first token, checks, cost per million tokens; [`OrganicView`]). Kept in memory (loaded from the state
//! database at start, updated after every commit), so serving it never touches SQLite or blocks a round.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, RwLock};

use scoring::weights::WeightVector;
use serde::Serialize;

use crate::api::stats::{OrganicStats, OrganicView};
use crate::ledger::Ledger;
use crate::record::RoundRecord;

/// Verdicts kept per miner.
pub const RECENT: usize = 16;

/// One verdict as shown.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecentVerdict {
    /// Round number.
    pub round: u64,
    /// Task class.
    pub task: bench_tasks::wire::TaskClass,
    /// Passed or not.
    pub passed: bool,
    /// Reason code.
    pub reason: bench_tasks::Reason,
    /// Explanation.
    pub detail: String,
    /// RTT in ms.
    pub rtt_ms: Option<f64>,
    /// Compute time (total − RTT) in ms.
    pub compute_ms: Option<f64>,
}

/// One miner as shown.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MinerRow {
    /// uid.
    pub uid: u16,
    /// Hotkey ss58.
    pub hotkey: String,
    /// EMA score.
    pub score: f64,
    /// Last weight set on chain for this uid (u16, 0 when none).
    pub weight: u16,
    /// Last weight computed (u16), whether or not it was sent.
    pub computed_weight: u16,
    /// Verdicts passed, all time.
    pub passed: u64,
    /// Verdicts failed, all time.
    pub failed: u64,
    /// Most recent verdicts, newest first.
    pub recent: Vec<RecentVerdict>,
}

/// The `/scores` body.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ScoresView {
    /// Last committed round.
    pub round: u64,
    /// Block of the last committed round.
    pub block: u64,
    /// Per miner, by uid.
    pub miners: Vec<MinerRow>,
    /// Organic serving through the API, when it is on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organic: Option<OrganicView>,
}

#[derive(Debug, Default)]
struct Inner {
    round: u64,
    block: u64,
    rows: BTreeMap<u16, (MinerRow, VecDeque<RecentVerdict>)>,
    organic: Option<OrganicStats>,
}

/// Shared, cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Dashboard {
    inner: Arc<RwLock<Inner>>,
}

impl Dashboard {
    /// An empty dashboard.
    pub fn new() -> Self {
        Self::default()
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Loads scores, counts, recent verdicts and the last submission from the ledger's database.
    pub fn load(&self, ledger: &Ledger) {
        let store = ledger.store();
        let mut inner = self.write();
        inner.round = store.last_round().unwrap_or(0);
        let counts: BTreeMap<u16, (u64, u64)> = store
            .verdict_counts()
            .unwrap_or_default()
            .into_iter()
            .map(|(u, p, f)| (u, (p, f)))
            .collect();
        for s in store.scores().unwrap_or_default() {
            let (passed, failed) = counts.get(&s.uid).copied().unwrap_or((0, 0));
            let recent: VecDeque<RecentVerdict> = store
                .recent_outcomes(s.uid, RECENT)
                .unwrap_or_default()
                .into_iter()
                .map(|(round, o)| RecentVerdict {
                    round,
                    task: o.task,
                    passed: o.verdict.passed,
                    reason: o.verdict.reason,
                    detail: o.verdict.detail,
                    rtt_ms: o.rtt_ms,
                    compute_ms: o.compute_ms,
                })
                .collect();
            let row = MinerRow {
                uid: s.uid,
                hotkey: s.hotkey,
                score: s.ema,
                weight: 0,
                computed_weight: 0,
                passed,
                failed,
                recent: Vec::new(),
            };
            inner.rows.insert(s.uid, (row, recent));
        }
        if let Ok(Some(sub)) = store.last_submission()
            && sub.status == "included"
        {
            for (uid, w) in sub.uids.iter().zip(&sub.weights) {
                if let Some((row, _)) = inner.rows.get_mut(uid) {
                    row.weight = *w;
                }
            }
        }
    }

    /// Folds a committed round in.
    pub fn round_committed(&self, r: &RoundRecord) {
        let mut inner = self.write();
        inner.round = r.round;
        inner.block = r.block_number;
        for o in &r.miners {
            let entry = inner.rows.entry(o.uid).or_insert_with(|| {
                (
                    MinerRow {
                        uid: o.uid,
                        hotkey: o.hotkey.clone(),
                        score: 0.0,
                        weight: 0,
                        computed_weight: 0,
                        passed: 0,
                        failed: 0,
                        recent: Vec::new(),
                    },
                    VecDeque::new(),
                )
            });
            if entry.0.hotkey != o.hotkey {
                entry.0 = MinerRow {
                    hotkey: o.hotkey.clone(),
                    passed: 0,
                    failed: 0,
                    weight: 0,
                    ..entry.0.clone()
                };
                entry.1.clear();
            }
            if o.verdict.passed {
                entry.0.passed += 1;
            } else {
                entry.0.failed += 1;
            }
            entry.1.push_front(RecentVerdict {
                round: r.round,
                task: o.task,
                passed: o.verdict.passed,
                reason: o.verdict.reason,
                detail: o.verdict.detail.clone(),
                rtt_ms: o.rtt_ms,
                compute_ms: o.compute_ms,
            });
            entry.1.truncate(RECENT);
        }
        for (uid, (row, _)) in inner.rows.iter_mut() {
            row.score = r.book.scores.get(uid).copied().unwrap_or(0.0);
            row.computed_weight = 0;
        }
        if let Some(w) = &r.weights {
            for (uid, weight) in w.uids.iter().zip(&w.weights) {
                if let Some((row, _)) = inner.rows.get_mut(uid) {
                    row.computed_weight = *weight;
                }
            }
        }
    }

    /// Shows the API's organic figures from now on.
    pub fn show_organic(&self, stats: OrganicStats) {
        self.write().organic = Some(stats);
    }

    /// Records the weights that landed on chain.
    pub fn weights_set(&self, w: &WeightVector) {
        let mut inner = self.write();
        for (row, _) in inner.rows.values_mut() {
            row.weight = 0;
        }
        for (uid, weight) in w.uids.iter().zip(&w.weights) {
            if let Some((row, _)) = inner.rows.get_mut(uid) {
                row.weight = *weight;
            }
        }
    }

    /// A snapshot for `/scores`.
    pub fn view(&self) -> ScoresView {
        let inner = self
            .inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        ScoresView {
            round: inner.round,
            block: inner.block,
            miners: inner
                .rows
                .values()
                .map(|(row, recent)| MinerRow {
                    recent: recent.iter().cloned().collect(),
                    ..row.clone()
                })
                .collect(),
            organic: inner.organic.as_ref().map(OrganicStats::view),
        }
    }
}
