//! `bench-tasks bench matmul`: miner time, validator time, their ratio, and how often each adversary is
//! caught, all from one run on one machine.
//!
//! * `miner_seconds`: median over `reps` warm runs of [`MatmulJob::run`] (generation of `A` and `B` on
//!   the device, `C = A·B`, the sketch, and reading the sketch back); `miner_cold_seconds` is the first
//!   run (kernel compilation on GPU backends).
//! * `round_setup_seconds`: median of [`RoundSetup::new`] (`B·r`, once per round).
//! * `verify_seconds_per_miner`: median of [`RoundSetup::verify`] over the honest trials.
//! * `kernel_seconds`: median over `reps` of the product alone (`A`, `B` already generated and cast to the
//!   dtype class on the device, one `A·B` per rep, then a device sync): the figure to compare with another
//!   library's matmul (`kernel_tflops`), while `tflops` is the whole round 1 a validator times.
//! * `h200_seconds`: `2n³ ÷` an H200's peak for the class ([`MatmulDtype::h200_peak_flops`]), and
//!   `validator_over_h200`: the validator's CPU seconds per challenge (verification plus the round setup
//!   shared by `miners_per_round` miners) over it: the figure the GPU-sized challenge policy keeps ≤ 0.1.
//! * `detection`: for each adversary, the fraction of `trials` validator rounds (fresh secret, hence
//!   fresh `r` and rows) whose verdict failed; `predicted_detection` is `1 − C(n−fn, k)/C(n, k)`.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{median, timed};
use crate::backend::{BackendError, BackendKind};
use crate::matmul::miner::{exact_in, factors};
use crate::matmul::{
    Adversary, ChallengeError, MatmulDtype, MatmulJob, MatmulLimits, MinerError, RoundParams, RoundSetup,
};

/// Miners sharing one round setup in the `validator_over_h200` figure (a validator's round).
pub const MINERS_PER_ROUND: u32 = 64;

/// What to measure.
#[derive(Debug, Clone)]
pub struct MatmulBenchOptions {
    /// Backend to run the miner on.
    pub backend: BackendKind,
    /// Device index.
    pub device_index: usize,
    /// Round parameters (`n`, `m`, `p`, `k`, dtype class).
    pub params: RoundParams,
    /// Validator rounds per adversary.
    pub trials: u32,
    /// Warm miner runs to time.
    pub reps: u32,
}

/// The figures, serialized as the benchmark's JSON line.
#[derive(Debug, Clone, Serialize)]
pub struct MatmulBenchReport {
    /// Always `"matmul"`.
    pub task: &'static str,
    /// Backend of the miner.
    pub backend: BackendKind,
    /// Dtype class of the product.
    pub dtype: MatmulDtype,
    /// Matrix side.
    pub n: u32,
    /// Rows opened.
    pub k: u32,
    /// Sketch width.
    pub m: u32,
    /// Sketch modulus.
    pub p: u32,
    /// Median warm round-1 time of the honest miner.
    pub miner_seconds: f64,
    /// First (cold) round-1 time.
    pub miner_cold_seconds: f64,
    /// `2n³ / miner_seconds`, in TFLOP/s.
    pub tflops: f64,
    /// Whether the device's kernel in the class's format qualified as exact ([`exact_in`]); otherwise
    /// the miner multiplies in f32 and rounds, and `kernel_seconds` is the f32 product's.
    pub native_dtype: bool,
    /// Median time of the product alone, operands ready on the device.
    pub kernel_seconds: f64,
    /// `2n³ / kernel_seconds`, in TFLOP/s.
    pub kernel_tflops: f64,
    /// `2n³ ÷` an H200's peak for the class.
    pub h200_seconds: f64,
    /// `(verify_seconds_per_miner + round_setup_seconds / miners_per_round) / h200_seconds`.
    pub validator_over_h200: f64,
    /// Miners sharing one round setup in `validator_over_h200`.
    pub miners_per_round: u32,
    /// Median time for the miner to answer the opening request.
    pub open_seconds: f64,
    /// Median validator setup per round.
    pub round_setup_seconds: f64,
    /// Median validator verification per miner.
    pub verify_seconds_per_miner: f64,
    /// `verify_seconds_per_miner / miner_seconds`.
    pub verify_ratio: f64,
    /// `round_setup_seconds / miner_seconds`.
    pub setup_ratio: f64,
    /// Whether every honest trial passed.
    pub honest_passed: bool,
    /// Validator rounds per adversary.
    pub trials: u32,
    /// Fraction of trials in which each adversary was caught.
    pub detection: BTreeMap<String, f64>,
    /// What the sampling argument predicts for the same adversaries.
    pub predicted_detection: BTreeMap<String, f64>,
}

/// Why the benchmark could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// The backend is not available.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// The parameters are invalid.
    #[error(transparent)]
    Params(#[from] ChallengeError),
    /// The miner failed.
    #[error(transparent)]
    Miner(#[from] MinerError),
}

/// Runs the benchmark.
pub fn run(opts: &MatmulBenchOptions) -> Result<MatmulBenchReport, BenchError> {
    let params = opts.params;
    let limits = MatmulLimits {
        max_n: params.n.max(MatmulLimits::default().max_n),
        ..MatmulLimits::default()
    };
    params.validate(&limits)?;
    let device = crate::backend::probe(opts.backend, opts.device_index)?;
    let challenge = params.challenge(0x6d69_6e65_7200_0001);

    let (first, cold) = timed(|| MatmulJob::run_with_limits(&challenge, &device, &limits));
    first?;
    let mut miner_times = Vec::new();
    let mut honest = None;
    for _ in 0..opts.reps.max(1) {
        let (out, secs) = timed(|| MatmulJob::run_with_limits(&challenge, &device, &limits));
        honest = Some(out?);
        miner_times.push(secs);
    }
    let miner_seconds = median(&miner_times);
    let (answer, state) = honest.expect("at least one rep ran");
    let kernel_seconds = kernel_time(&challenge, &device, opts.reps.max(1))?;

    let secret = |t: u32| {
        let mut s = [0u8; 32];
        s[..4].copy_from_slice(&t.to_le_bytes());
        s[4..12].copy_from_slice(&params.round_seed.to_le_bytes());
        s[12] = 0xb7;
        s
    };
    let (mut setup_times, mut verify_times, mut open_times) = (Vec::new(), Vec::new(), Vec::new());
    let mut honest_passed = true;
    let trials = opts.trials.max(1);
    for t in 0..trials {
        let (setup, secs) = timed(|| RoundSetup::new(params, secret(t), &limits));
        let setup = setup?;
        setup_times.push(secs);
        let request = setup.choose_openings(challenge.miner_seed);
        let (openings, secs) = timed(|| state.open(&request));
        open_times.push(secs);
        let openings = openings?;
        let (verdict, secs) = timed(|| setup.verify(&challenge, &answer, &request, &openings));
        verify_times.push(secs);
        honest_passed &= verdict.passed;
    }

    let adversaries = [
        ("lazy_0.05", Adversary::Lazy { fraction: 0.05 }),
        ("lazy_0.10", Adversary::Lazy { fraction: 0.10 }),
        ("noisy_0.10", Adversary::Noisy { fraction: 0.10 }),
        ("forged_sketch", Adversary::ForgedSketch),
        ("on_demand", Adversary::OnDemand),
        ("replay", Adversary::Replay),
    ];
    let mut detection = BTreeMap::new();
    let mut predicted = BTreeMap::new();
    for (name, adversary) in adversaries {
        let (answer, state) = adversary.run(&challenge, &device, &limits, 0xad5e)?;
        let mut caught = 0u32;
        for t in 0..trials {
            let setup = RoundSetup::new(params, secret(trials + t), &limits)?;
            let request = setup.choose_openings(challenge.miner_seed);
            let openings = state.open(&request)?;
            caught += u32::from(!setup.verify(&challenge, &answer, &request, &openings).passed);
        }
        detection.insert(name.to_owned(), f64::from(caught) / f64::from(trials));
        let bad_fraction = match adversary {
            Adversary::Lazy { fraction } | Adversary::Noisy { fraction } => fraction,
            _ => 1.0,
        };
        let bad_rows = (bad_fraction * f64::from(params.n)).round() as u32;
        predicted.insert(name.to_owned(), 1.0 - params.pass_probability(bad_rows));
    }

    let round_setup_seconds = median(&setup_times);
    let verify_seconds_per_miner = median(&verify_times);
    let h200_seconds = challenge.flops() / params.dtype.h200_peak_flops();
    Ok(MatmulBenchReport {
        task: "matmul",
        backend: opts.backend,
        dtype: params.dtype,
        n: params.n,
        k: params.k,
        m: params.m,
        p: params.p,
        miner_seconds,
        miner_cold_seconds: cold,
        tflops: challenge.flops() / miner_seconds / 1e12,
        native_dtype: exact_in(&device, params.dtype),
        kernel_seconds,
        kernel_tflops: challenge.flops() / kernel_seconds / 1e12,
        h200_seconds,
        validator_over_h200: (verify_seconds_per_miner + round_setup_seconds / f64::from(MINERS_PER_ROUND))
            / h200_seconds,
        miners_per_round: MINERS_PER_ROUND,
        open_seconds: median(&open_times),
        round_setup_seconds,
        verify_seconds_per_miner,
        verify_ratio: verify_seconds_per_miner / miner_seconds,
        setup_ratio: round_setup_seconds / miner_seconds,
        honest_passed,
        trials,
        detection,
        predicted_detection: predicted,
    })
}

/// Median seconds of `A·B` alone in the challenge's dtype class: operands generated and cast first, one
/// product per rep, each followed by a device sync (so queued work is timed, not just its launch).
fn kernel_time(
    challenge: &crate::matmul::MatmulChallenge,
    device: &burn::tensor::Device,
    reps: u32,
) -> Result<f64, BenchError> {
    let dtype = challenge.dtype.float_dtype();
    let sync = || device.sync().map_err(|e| MinerError::Device(format!("{e:?}")));
    let (a, b) = factors(challenge, device);
    let (a, b) = if !exact_in(device, challenge.dtype) {
        (a, b)
    } else {
        (a.cast(dtype), b.cast(dtype))
    };
    // One untimed product: kernel selection and compilation.
    let warm = a.clone().matmul(b.clone());
    sync()?;
    drop(warm);
    let mut times = Vec::new();
    for _ in 0..reps {
        let (c, secs) = timed(|| {
            let c = a.clone().matmul(b.clone());
            sync().map(|()| c)
        });
        drop(c?);
        times.push(secs);
    }
    Ok(median(&times))
}
