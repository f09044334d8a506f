//! Achieved matmul throughput per miner, as `/scores`, the status page and `/metrics` show it: TFLOP/s per
//! dtype class, and per (device, dtype class) for miners that name the device of each answer.
//!
//! Per class, one sample is one passed matmul outcome: its FLOPs (`2·B·n³` per challenge of its device
//! group, twice the verdict's `work_units`) over its compute time as the validator saw it (`compute_ms`:
//! the group's wall time less the ping RTT, the same time the `validator_matmul_tflops` histogram uses),
//! so the whole box's throughput. Per device, one sample is one passed challenge of a group whose answer
//! named its device ([`crate::state::DeviceRun`]): its own FLOPs over its own compute time. A figure is the **median of the last
//! [`WINDOW`] samples** of its class (or device and class): a median, not an EMA, so one answer slowed by
//! the network or a busy queue moves it little, and a restart rebuilds it exactly from the state
//! database's verdicts. Failed answers, inference answers and answers without a compute time give no
//! sample. Throughput is shown, never scored: scores come from `scoring` alone.

use std::collections::{BTreeMap, VecDeque};

use bench_tasks::matmul::MatmulDtype;
use bench_tasks::wire::TaskClass;
use serde::Serialize;

use crate::state::MinerOutcome;

/// Samples a figure is the median of.
pub const WINDOW: usize = 16;

/// Devices tracked per miner; a miner naming more loses the device it answered on least recently (device
/// indices are the miner's own word, so they must not grow the validator's memory).
pub const MAX_DEVICES: usize = 16;

/// One figure: median TFLOP/s of the last `samples` (at most [`WINDOW`]) passed answers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Tflops {
    /// Median TFLOP/s.
    pub tflops: f64,
    /// Answers it is the median of.
    pub samples: usize,
}

/// One device's figure in one dtype class.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceTflops {
    /// The device index the miner named ([`bench_tasks::wire::ChallengeResponse::device`], the `index`
    /// of its `/info` `devices` entry).
    pub device: u32,
    /// The dtype class (`f32`, `f16`, `bf16`).
    pub dtype: &'static str,
    /// Median TFLOP/s.
    pub tflops: f64,
    /// Answers it is the median of.
    pub samples: usize,
}

/// TFLOP/s of one outcome when it is a passed matmul answer with a dtype class and a positive compute
/// time: `2·work_units / compute seconds / 10¹²`.
pub fn sample(o: &MinerOutcome) -> Option<(MatmulDtype, f64)> {
    let dtype = o.dtype?;
    let ms = o.compute_ms?;
    let flops = 2.0 * o.verdict.work_units;
    (o.task == TaskClass::Matmul && o.verdict.passed && ms > 0.0 && flops.is_finite())
        .then(|| (dtype, flops / (ms / 1e3) / 1e12))
}

#[derive(Debug, Clone, Default)]
struct Window {
    values: VecDeque<f64>,
    /// The round of the newest sample.
    last_round: u64,
}

impl Window {
    fn push(&mut self, round: u64, value: f64) {
        if self.values.len() == WINDOW {
            self.values.pop_front();
        }
        self.values.push_back(value);
        self.last_round = self.last_round.max(round);
    }

    fn figure(&self) -> Tflops {
        let mut v: Vec<f64> = self.values.iter().copied().collect();
        v.sort_by(f64::total_cmp);
        let mid = v.len() / 2;
        let tflops = match v.len() {
            0 => 0.0,
            n if n % 2 == 1 => v[mid],
            _ => (v[mid - 1] + v[mid]) / 2.0,
        };
        Tflops {
            tflops,
            samples: v.len(),
        }
    }
}

/// One miner's throughput windows.
#[derive(Debug, Clone, Default)]
pub struct Throughput {
    by_dtype: BTreeMap<&'static str, Window>,
    by_device: BTreeMap<(u32, &'static str), Window>,
}

impl Throughput {
    /// Folds in one outcome of round `round` (anything but a passed matmul answer is ignored).
    pub fn record(&mut self, round: u64, o: &MinerOutcome) {
        let Some((dtype, tflops)) = sample(o) else {
            return;
        };
        self.by_dtype.entry(dtype.name()).or_default().push(round, tflops);
        // Each challenge of a device group has the same work.
        let flops = 2.0 * o.verdict.work_units / f64::from(o.devices.max(1));
        for run in o.device_runs.iter().filter(|r| r.compute_ms > 0.0) {
            if !self.by_device.keys().any(|k| k.0 == run.device) && self.devices() >= MAX_DEVICES {
                self.evict_stalest_device();
            }
            self.by_device
                .entry((run.device, dtype.name()))
                .or_default()
                .push(round, flops / (run.compute_ms / 1e3) / 1e12);
        }
    }

    /// Distinct devices tracked.
    fn devices(&self) -> usize {
        let mut devices: Vec<u32> = self.by_device.keys().map(|k| k.0).collect();
        devices.dedup();
        devices.len()
    }

    /// Drops every window of the device whose newest sample is oldest.
    fn evict_stalest_device(&mut self) {
        let mut last: BTreeMap<u32, u64> = BTreeMap::new();
        for (&(device, _), w) in &self.by_device {
            let e = last.entry(device).or_default();
            *e = (*e).max(w.last_round);
        }
        if let Some((&stalest, _)) = last.iter().min_by_key(|(d, round)| (**round, **d)) {
            self.by_device.retain(|k, _| k.0 != stalest);
        }
    }

    /// Median TFLOP/s per dtype class (`f32`, `f16`, `bf16`), classes without a sample left out.
    pub fn by_dtype(&self) -> BTreeMap<&'static str, Tflops> {
        self.by_dtype.iter().map(|(&d, w)| (d, w.figure())).collect()
    }

    /// Median TFLOP/s per device and dtype class, by device index then class.
    pub fn by_device(&self) -> Vec<DeviceTflops> {
        self.by_device
            .iter()
            .map(|(&(device, dtype), w)| {
                let f = w.figure();
                DeviceTflops {
                    device,
                    dtype,
                    tflops: f.tflops,
                    samples: f.samples,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use bench_tasks::{Reason, Verdict};

    use super::*;

    fn answer(dtype: MatmulDtype, device: Option<u32>, work: f64, compute_ms: f64) -> MinerOutcome {
        MinerOutcome {
            uid: 1,
            hotkey: "hk".into(),
            task: TaskClass::Matmul,
            verdict: Verdict::pass(work),
            rtt_ms: Some(1.0),
            total_ms: Some(compute_ms + 1.0),
            compute_ms: Some(compute_ms),
            seed: "00".into(),
            answer_hash: None,
            devices: 1,
            dtype: Some(dtype),
            device_runs: device
                .map(|device| vec![crate::state::DeviceRun { device, compute_ms }])
                .unwrap_or_default(),
        }
    }

    #[test]
    fn a_sample_is_twice_the_work_over_the_compute_time() {
        // 2 products of 4096³ in 50 ms: 2·2·4096³ / 0.05 s ≈ 5.5 TFLOP/s.
        let o = answer(MatmulDtype::Bf16, None, 2.0 * 4096f64.powi(3), 50.0);
        let (dtype, tflops) = sample(&o).unwrap();
        assert_eq!(dtype, MatmulDtype::Bf16);
        assert!(
            (tflops - 4.0 * 4096f64.powi(3) / 0.05 / 1e12).abs() < 1e-9,
            "{tflops}"
        );
        let failed = MinerOutcome {
            verdict: Verdict::fail(Reason::WrongRow, "row 1", 1e9),
            ..o.clone()
        };
        let inference = MinerOutcome {
            task: TaskClass::Inference,
            ..o.clone()
        };
        let untimed = MinerOutcome {
            compute_ms: None,
            ..o.clone()
        };
        let old = MinerOutcome { dtype: None, ..o };
        for o in [failed, inference, untimed, old] {
            assert_eq!(sample(&o), None, "{o:?}");
        }
    }

    #[test]
    fn figures_are_medians_of_the_last_window_per_class_and_device() {
        let mut t = Throughput::default();
        // f32 on device 0: 1, 2, …, 20 TFLOP/s (1e12 FLOPs in 1 s = 1 TFLOP/s, work = flops / 2).
        for (round, tflops) in (1..=20u64).zip(1..=20) {
            t.record(
                round,
                &answer(MatmulDtype::F32, Some(0), f64::from(tflops) * 0.5e12, 1e3),
            );
        }
        // bf16 on device 1, an unknown device, then device 1 again.
        t.record(21, &answer(MatmulDtype::Bf16, Some(1), 100e12, 1e3));
        t.record(22, &answer(MatmulDtype::Bf16, None, 300e12, 1e3));
        t.record(23, &answer(MatmulDtype::Bf16, Some(1), 200e12, 1e3));
        let by_dtype = t.by_dtype();
        // The last 16 f32 samples are 5..=20: median (12 + 13) / 2.
        assert_eq!(
            by_dtype["f32"],
            Tflops {
                tflops: 12.5,
                samples: WINDOW
            }
        );
        assert_eq!(
            by_dtype["bf16"],
            Tflops {
                tflops: 400.0,
                samples: 3
            }
        );
        assert!(!by_dtype.contains_key("f16"));
        let devices = t.by_device();
        assert_eq!(
            devices,
            vec![
                DeviceTflops {
                    device: 0,
                    dtype: "f32",
                    tflops: 12.5,
                    samples: WINDOW
                },
                DeviceTflops {
                    device: 1,
                    dtype: "bf16",
                    tflops: 300.0,
                    samples: 2
                },
            ]
        );
    }

    #[test]
    fn a_miner_naming_too_many_devices_loses_the_stalest() {
        let mut t = Throughput::default();
        for device in 0..MAX_DEVICES as u32 {
            t.record(
                u64::from(device) + 1,
                &answer(MatmulDtype::F32, Some(device), 1e12, 1e3),
            );
        }
        // Device 0 answers again, so device 1 is now the stalest.
        t.record(100, &answer(MatmulDtype::Bf16, Some(0), 1e12, 1e3));
        t.record(101, &answer(MatmulDtype::F32, Some(999), 1e12, 1e3));
        let devices: std::collections::BTreeSet<u32> = t.by_device().iter().map(|d| d.device).collect();
        assert_eq!(devices.len(), MAX_DEVICES);
        assert!(
            devices.contains(&0) && devices.contains(&999) && !devices.contains(&1),
            "{devices:?}"
        );
    }
}
