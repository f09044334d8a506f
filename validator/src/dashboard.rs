//! What `GET /scores` and `GET /` show: per miner its recent verdicts with reason codes, RTT, compute
//! time, EMA score and current weight, its achieved matmul TFLOP/s per dtype class and per device
//! ([`crate::throughput`]), and, when the API is on, its organic serving (tokens/s, time to first token,
//! checks, cost per million tokens; [`OrganicView`]). Kept in memory (loaded from the state database at
//! start, updated after every commit), so serving it never touches SQLite or blocks a round.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, RwLock};

use scoring::weights::WeightVector;
use serde::Serialize;

use crate::api::stats::{OrganicStats, OrganicView};
use crate::ledger::Ledger;
use crate::record::RoundRecord;
use crate::throughput::{DeviceTflops, Tflops, Throughput, WINDOW};

/// Verdicts kept per miner.
pub const RECENT: usize = 16;

/// Passed matmul answers read per miner at start to rebuild its throughput figures (every class's and
/// device's window of [`WINDOW`] fills from the newest of them).
const THROUGHPUT_LOAD: usize = 16 * WINDOW;

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
    /// Achieved matmul throughput by dtype class (`f32`, `f16`, `bf16`): the median TFLOP/s of the last
    /// [`WINDOW`] passed answers of the class and how many that is. Classes without one are left out.
    pub matmul_tflops: BTreeMap<&'static str, Tflops>,
    /// The same figure per device the miner named in its answers and per class, by device index; answers
    /// that named none (older miners) count only in `matmul_tflops`.
    pub matmul_devices: Vec<DeviceTflops>,
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

/// One miner's row, its recent verdicts and its throughput windows.
#[derive(Debug)]
struct Entry {
    row: MinerRow,
    recent: VecDeque<RecentVerdict>,
    throughput: Throughput,
}

impl Entry {
    fn new(uid: u16, hotkey: String) -> Self {
        Self {
            row: MinerRow {
                uid,
                hotkey,
                score: 0.0,
                weight: 0,
                computed_weight: 0,
                passed: 0,
                failed: 0,
                recent: Vec::new(),
                matmul_tflops: BTreeMap::new(),
                matmul_devices: Vec::new(),
            },
            recent: VecDeque::new(),
            throughput: Throughput::default(),
        }
    }

    fn view(&self) -> MinerRow {
        MinerRow {
            recent: self.recent.iter().cloned().collect(),
            matmul_tflops: self.throughput.by_dtype(),
            matmul_devices: self.throughput.by_device(),
            ..self.row.clone()
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    round: u64,
    block: u64,
    rows: BTreeMap<u16, Entry>,
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

    /// Loads scores, counts, recent verdicts, throughput and the last submission from the ledger's
    /// database.
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
            let mut entry = Entry::new(s.uid, s.hotkey);
            entry.row.score = s.ema;
            entry.row.passed = passed;
            entry.row.failed = failed;
            entry.recent = recent;
            let matmul = store
                .passed_matmul_outcomes(s.uid, THROUGHPUT_LOAD)
                .unwrap_or_default();
            for (round, o) in matmul.iter().rev().filter(|(_, o)| o.hotkey == entry.row.hotkey) {
                entry.throughput.record(*round, o);
            }
            inner.rows.insert(s.uid, entry);
        }
        if let Ok(Some(sub)) = store.last_submission()
            && sub.status == "included"
        {
            for (uid, w) in sub.uids.iter().zip(&sub.weights) {
                if let Some(e) = inner.rows.get_mut(uid) {
                    e.row.weight = *w;
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
            let entry = inner
                .rows
                .entry(o.uid)
                .or_insert_with(|| Entry::new(o.uid, o.hotkey.clone()));
            if entry.row.hotkey != o.hotkey {
                // A new miner at the uid: nothing of the old one's is shown as its own.
                let score = entry.row.score;
                *entry = Entry::new(o.uid, o.hotkey.clone());
                entry.row.score = score;
            }
            if o.verdict.passed {
                entry.row.passed += 1;
            } else {
                entry.row.failed += 1;
            }
            entry.throughput.record(r.round, o);
            entry.recent.push_front(RecentVerdict {
                round: r.round,
                task: o.task,
                passed: o.verdict.passed,
                reason: o.verdict.reason,
                detail: o.verdict.detail.clone(),
                rtt_ms: o.rtt_ms,
                compute_ms: o.compute_ms,
            });
            entry.recent.truncate(RECENT);
        }
        for (uid, e) in inner.rows.iter_mut() {
            e.row.score = r.book.scores.get(uid).copied().unwrap_or(0.0);
            e.row.computed_weight = 0;
        }
        if let Some(w) = &r.weights {
            for (uid, weight) in w.uids.iter().zip(&w.weights) {
                if let Some(e) = inner.rows.get_mut(uid) {
                    e.row.computed_weight = *weight;
                }
            }
        }
    }

    /// Every miner's median matmul TFLOP/s per dtype class, by uid (what `validator_miner_matmul_tflops`
    /// exports).
    pub fn matmul_tflops(&self) -> Vec<(u16, &'static str, f64)> {
        let inner = self
            .inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        inner
            .rows
            .iter()
            .flat_map(|(&uid, e)| {
                e.throughput
                    .by_dtype()
                    .into_iter()
                    .map(move |(dtype, f)| (uid, dtype, f.tflops))
            })
            .collect()
    }

    /// Shows the API's organic figures from now on.
    pub fn show_organic(&self, stats: OrganicStats) {
        self.write().organic = Some(stats);
    }

    /// Records the weights that landed on chain.
    pub fn weights_set(&self, w: &WeightVector) {
        let mut inner = self.write();
        for e in inner.rows.values_mut() {
            e.row.weight = 0;
        }
        for (uid, weight) in w.uids.iter().zip(&w.weights) {
            if let Some(e) = inner.rows.get_mut(uid) {
                e.row.weight = *weight;
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
            miners: inner.rows.values().map(Entry::view).collect(),
            organic: inner.organic.as_ref().map(OrganicStats::view),
        }
    }
}

#[cfg(test)]
mod tests {
    use bench_tasks::matmul::{MatmulDtype, RoundParams};
    use scoring::policy::Policy;
    use scoring::weights::ChainLimits;

    use super::*;
    use crate::ledger::RoundInputs;
    use crate::state::MinerOutcome;

    /// A passed matmul answer that ran at `tflops` TFLOP/s (its FLOPs over 1 s of compute).
    fn answer(uid: u16, hotkey: &str, dtype: MatmulDtype, device: Option<u32>, tflops: f64) -> MinerOutcome {
        MinerOutcome {
            uid,
            hotkey: hotkey.into(),
            task: bench_tasks::wire::TaskClass::Matmul,
            verdict: bench_tasks::Verdict::pass(0.5e12 * tflops),
            rtt_ms: Some(1.0),
            total_ms: Some(1001.0),
            compute_ms: Some(1000.0),
            seed: "00".into(),
            answer_hash: None,
            devices: 1,
            dtype: Some(dtype),
            device_runs: device
                .map(|device| {
                    vec![crate::state::DeviceRun {
                        device,
                        compute_ms: 1000.0,
                    }]
                })
                .unwrap_or_default(),
        }
    }

    fn commit(ledger: &mut Ledger, dash: &Dashboard, round: u64, outcomes: Vec<MinerOutcome>) {
        let record = ledger
            .commit_round(RoundInputs {
                attempt: round,
                block_number: round,
                block_hash: "ab".into(),
                started_ms: 0,
                finished_ms: 1,
                matmul: RoundParams::new(64, round),
                matmul_batch: 1,
                outcomes,
                organic: vec![],
                limits: ChainLimits {
                    n: 4,
                    min_allowed_weights: 1,
                    max_weight_limit: u16::MAX,
                },
            })
            .unwrap();
        dash.round_committed(&record);
    }

    #[test]
    fn throughput_is_shown_per_class_and_device_rebuilt_on_load_and_reset_for_a_new_hotkey() {
        let dir = tempfile::tempdir().unwrap();
        let mut ledger = Ledger::open(dir.path(), Policy::default(), "v", 1).unwrap();
        let live = Dashboard::new();
        for round in 1..=4u64 {
            let t = round as f64;
            commit(
                &mut ledger,
                &live,
                round,
                vec![
                    answer(0, "a", MatmulDtype::Bf16, Some((round % 2) as u32), 100.0 * t),
                    answer(1, "b", MatmulDtype::F32, None, t),
                ],
            );
        }
        let view = live.view();
        let a = &view.miners[0];
        // bf16 at 100, 200, 300, 400 TFLOP/s: median 250; device 1 ran rounds 1 and 3, device 0 rounds 2 and 4.
        assert_eq!(
            a.matmul_tflops["bf16"],
            Tflops {
                tflops: 250.0,
                samples: 4
            }
        );
        assert_eq!(
            a.matmul_devices,
            vec![
                DeviceTflops {
                    device: 0,
                    dtype: "bf16",
                    tflops: 300.0,
                    samples: 2
                },
                DeviceTflops {
                    device: 1,
                    dtype: "bf16",
                    tflops: 200.0,
                    samples: 2
                },
            ]
        );
        let b = &view.miners[1];
        assert_eq!(
            b.matmul_tflops["f32"],
            Tflops {
                tflops: 2.5,
                samples: 4
            }
        );
        assert!(b.matmul_devices.is_empty());
        assert_eq!(live.matmul_tflops(), vec![(0, "bf16", 250.0), (1, "f32", 2.5)]);
        let json = serde_json::to_value(&view).unwrap();
        assert_eq!(json["miners"][0]["matmul_tflops"]["bf16"]["tflops"], 250.0);
        assert_eq!(json["miners"][0]["matmul_devices"][1]["device"], 1);

        // A restart rebuilds the same figures from the state database.
        let loaded = Dashboard::new();
        loaded.load(&ledger);
        let again = loaded.view();
        for (x, y) in view.miners.iter().zip(&again.miners) {
            assert_eq!(
                (&x.matmul_tflops, &x.matmul_devices),
                (&y.matmul_tflops, &y.matmul_devices)
            );
        }

        // A new hotkey at uid 0 starts from nothing.
        commit(
            &mut ledger,
            &live,
            5,
            vec![
                answer(0, "c", MatmulDtype::F16, Some(3), 7.0),
                answer(1, "b", MatmulDtype::F32, None, 3.0),
            ],
        );
        let a = &live.view().miners[0];
        assert_eq!(a.matmul_tflops.keys().copied().collect::<Vec<_>>(), vec!["f16"]);
        assert_eq!(a.matmul_devices.len(), 1);
        let metrics = crate::metrics::Metrics::new();
        metrics.set_miner_tflops(&live.matmul_tflops());
        let text = metrics.render();
        assert!(
            text.contains("validator_miner_matmul_tflops{uid=\"0\",dtype=\"f16\"} 7.0"),
            "{text}"
        );
        assert!(
            text.contains("validator_miner_matmul_tflops{uid=\"1\",dtype=\"f32\"} 3.0"),
            "{text}"
        );
        assert!(
            !text.contains("dtype=\"bf16\"} "),
            "uid 0's old hotkey's series is gone: {text}"
        );
    }
}
