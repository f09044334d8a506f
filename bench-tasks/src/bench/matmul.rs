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
//!   fresh `r` and rows) whose verdict failed; `predicted_detection` is `1 − C(R−b, k)/C(R, k)` with
//!   `R = batch·n` stacked rows and `b` the rows the cheat gets wrong ([`Adversary::bad_rows`]).
//!
//! With `batch > 1` every figure is of the whole challenge (`batch` products of `n³`), except
//! `kernel_seconds`, which times one product.
//!
//! [`validator_cost`] measures the validator's side alone at sizes this machine's miner cannot compute
//! (a GPU-sized batch): see [`ValidatorCostReport`].

use std::collections::BTreeMap;

use serde::Serialize;

use super::{cpu_seconds, median, timed};
use crate::backend::{BackendError, BackendKind};
use burn::tensor::{Tensor, TensorData};

use crate::matmul::generator::{MatrixGen, MatrixId};
use crate::matmul::miner::{OpenState, commit, exact_in, factors, sketch_of};
use crate::matmul::params::{ENTRY_BOUND, pack_row};
use crate::matmul::{
    Adversary, ChallengeError, MatmulChallenge, MatmulDtype, MatmulJob, MatmulLimits, MinerError, Openings,
    RoundParams, RoundSetup,
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
    /// Products per challenge.
    pub batch: u32,
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
    /// Products per challenge.
    pub batch: u32,
    /// FLOPs of the challenge, `2·batch·n³`.
    pub flops: f64,
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
    /// `flops / miner_seconds`, in TFLOP/s.
    pub tflops: f64,
    /// Whether the device's kernel in the class's format qualified as exact ([`exact_in`]); otherwise
    /// the miner multiplies in f32 and rounds, and `kernel_seconds` is the f32 product's.
    pub native_dtype: bool,
    /// Median time of one product alone (`n³`), operands ready on the device.
    pub kernel_seconds: f64,
    /// `2n³ / kernel_seconds`, in TFLOP/s.
    pub kernel_tflops: f64,
    /// `flops ÷` an H200's peak for the class.
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
    /// The openings' JSON did not round-trip.
    #[error("openings JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Runs the benchmark.
pub fn run(opts: &MatmulBenchOptions) -> Result<MatmulBenchReport, BenchError> {
    let params = opts.params;
    let limits = bench_limits(&params, opts.batch);
    params.validate_batched(opts.batch, &limits)?;
    let device = crate::backend::probe(opts.backend, opts.device_index)?;
    let challenge = MatmulChallenge {
        batch: opts.batch,
        ..params.challenge(BENCH_MINER_SEED)
    };

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

    let secret = |t: u32| bench_secret(&params, t);
    let (mut setup_times, mut verify_times, mut open_times) = (Vec::new(), Vec::new(), Vec::new());
    let mut honest_passed = true;
    let trials = opts.trials.max(1);
    for t in 0..trials {
        let (setup, secs) = timed(|| RoundSetup::batched(params, opts.batch, secret(t), &limits));
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
        let mut pass_probability = 1.0;
        for t in 0..trials {
            let setup = RoundSetup::batched(params, opts.batch, secret(trials + t), &limits)?;
            let request = setup.choose_openings(challenge.miner_seed);
            let openings = state.open(&request)?;
            caught += u32::from(!setup.verify(&challenge, &answer, &request, &openings).passed);
            pass_probability = setup.pass_probability(adversary.bad_rows(&challenge));
        }
        detection.insert(name.to_owned(), f64::from(caught) / f64::from(trials));
        predicted.insert(name.to_owned(), 1.0 - pass_probability);
    }

    let round_setup_seconds = median(&setup_times);
    let verify_seconds_per_miner = median(&verify_times);
    let h200_seconds = challenge.flops() / params.dtype.h200_peak_flops();
    Ok(MatmulBenchReport {
        task: "matmul",
        backend: opts.backend,
        dtype: params.dtype,
        n: params.n,
        batch: opts.batch,
        flops: challenge.flops(),
        k: params.k,
        m: params.m,
        p: params.p,
        miner_seconds,
        miner_cold_seconds: cold,
        tflops: challenge.flops() / miner_seconds / 1e12,
        native_dtype: exact_in(&device, params.dtype),
        kernel_seconds,
        kernel_tflops: 2.0 * f64::from(params.n).powi(3) / kernel_seconds / 1e12,
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

/// Seed of the benchmark's miner.
const BENCH_MINER_SEED: u64 = 0x6d69_6e65_7200_0001;

/// Limits wide enough for the benchmark's parameters.
fn bench_limits(params: &RoundParams, batch: u32) -> MatmulLimits {
    MatmulLimits {
        max_n: params.n.max(MatmulLimits::default().max_n),
        max_batch: batch.max(MatmulLimits::default().max_batch),
        ..MatmulLimits::default()
    }
}

/// The validator secret of trial `t`.
fn bench_secret(params: &RoundParams, t: u32) -> [u8; 32] {
    let mut s = [0u8; 32];
    s[..4].copy_from_slice(&t.to_le_bytes());
    s[4..12].copy_from_slice(&params.round_seed.to_le_bytes());
    s[12] = 0xb7;
    s
}

/// What [`validator_cost`] measures.
#[derive(Debug, Clone)]
pub struct ValidatorCostOptions {
    /// Backend that computes the opened rows (not timed).
    pub backend: BackendKind,
    /// Device index.
    pub device_index: usize,
    /// Round parameters (`n`, `m`, `p`, `k`, dtype class).
    pub params: RoundParams,
    /// Products per challenge.
    pub batch: u32,
    /// Validator rounds (fresh secret, hence fresh rows, each).
    pub trials: u32,
}

/// The validator's CPU cost of one challenge against the time an H200 needs for it, serialized as the
/// benchmark's JSON line (`task: "matmul_validator"`).
///
/// The miner's side is not run (a GPU-sized batch takes this machine's CPU minutes to hours): for each
/// trial the benchmark draws the openings first, computes exactly those rows of the stacked product on
/// the device, and commits to a stacked sketch that is the true sketch on the opened rows and zero
/// elsewhere. The validator cannot tell that answer from an honest one (it reads only the opened rows,
/// their leaves and paths), so it does exactly the work it does for an honest miner, and must pass it.
#[derive(Debug, Clone, Serialize)]
pub struct ValidatorCostReport {
    /// Always `"matmul_validator"`.
    pub task: &'static str,
    /// Dtype class of the products.
    pub dtype: MatmulDtype,
    /// Matrix side.
    pub n: u32,
    /// Products per challenge.
    pub batch: u32,
    /// Rows opened.
    pub k: u32,
    /// Sketch width.
    pub m: u32,
    /// Sketch modulus.
    pub p: u32,
    /// FLOPs of the challenge, `2·batch·n³`.
    pub flops: f64,
    /// `flops ÷` an H200's peak for the class ([`MatmulDtype::h200_peak_flops`]).
    pub h200_seconds: f64,
    /// Median validator setup per round, wall time (`B·r`, `R`: O(n²), whatever the batch; `B·r` is
    /// split across the cores).
    pub round_setup_seconds: f64,
    /// Mean CPU seconds of the setup, all cores together (what the amortized figure uses).
    pub round_setup_cpu_seconds: f64,
    /// Median [`RoundSetup::verify`] per miner (the `k` openings, their leaves and paths).
    pub verify_seconds_per_miner: f64,
    /// Median time to parse the openings' JSON body (the validator's exchange does it before verifying).
    pub decode_seconds_per_miner: f64,
    /// Bytes of the openings' JSON body.
    pub openings_bytes: usize,
    /// Miners sharing one round setup.
    pub miners_per_round: u32,
    /// `verify_seconds_per_miner + round_setup_cpu_seconds / miners_per_round` (verification runs on
    /// one core: its wall time is its CPU time).
    pub validator_seconds_per_challenge: f64,
    /// `validator_seconds_per_challenge / h200_seconds`: the GPU-sized target is ≤ 0.1.
    pub validator_over_h200: f64,
    /// The same with the JSON decoding counted.
    pub validator_with_decode_over_h200: f64,
    /// Whether every trial's answer passed.
    pub honest_passed: bool,
    /// Trials.
    pub trials: u32,
}

/// Runs the validator-side benchmark ([`ValidatorCostReport`]).
pub fn validator_cost(opts: &ValidatorCostOptions) -> Result<ValidatorCostReport, BenchError> {
    let params = opts.params;
    let limits = bench_limits(&params, opts.batch);
    params.validate_batched(opts.batch, &limits)?;
    let device = crate::backend::probe(opts.backend, opts.device_index)?;
    let challenge = MatmulChallenge {
        batch: opts.batch,
        ..params.challenge(BENCH_MINER_SEED)
    };
    let (n, m) = (params.n as usize, params.m as usize);
    let b =
        MatrixGen::new(params.round_seed, MatrixId::B, params.n, params.n, ENTRY_BOUND).to_device(&device);
    let rows = OpenState::exact_rows(&challenge, b, limits);
    let (mut setup_times, mut verify_times, mut decode_times) = (Vec::new(), Vec::new(), Vec::new());
    let (mut honest_passed, mut openings_bytes, mut setup_cpu) = (true, 0, 0.0);
    for t in 0..opts.trials.max(1) {
        let cpu = cpu_seconds();
        let (setup, secs) =
            timed(|| RoundSetup::batched(params, opts.batch, bench_secret(&params, t), &limits));
        setup_cpu += cpu_seconds() - cpu;
        let setup = setup?;
        setup_times.push(secs);
        let request = setup.choose_openings(challenge.miner_seed);
        // Exactly the opened rows, and their sketch rows, on the device.
        let mut openings = rows.open(&request)?;
        let flat: Vec<f32> = openings
            .rows
            .iter()
            .flat_map(|r| r.values.iter().copied())
            .collect();
        let c_rows = Tensor::<2>::from_data(TensorData::new(flat, [request.rows.len(), n]), &device);
        let sketch_rows = sketch_of(&challenge, &c_rows, &device)?;
        let mut sketch = vec![0f32; challenge.rows() as usize * m];
        for (&row, s) in request.rows.iter().zip(sketch_rows.chunks_exact(m)) {
            sketch[row as usize * m..(row as usize + 1) * m].copy_from_slice(s);
        }
        let (answer, tree) = commit(&challenge, sketch);
        if let Some(tree) = &tree {
            for row in &mut openings.rows {
                row.proof = Some(tree.proof(row.index));
                row.packed = Some(pack_row(&std::mem::take(&mut row.values)));
            }
        }
        let body = serde_json::to_vec(&openings)?;
        openings_bytes = body.len();
        let (decoded, secs) = timed(|| serde_json::from_slice::<Openings>(&body));
        decode_times.push(secs);
        let decoded = decoded?;
        let (verdict, secs) = timed(|| setup.verify(&challenge, &answer, &request, &decoded));
        verify_times.push(secs);
        honest_passed &= verdict.passed;
    }
    let round_setup_seconds = median(&setup_times);
    let round_setup_cpu_seconds = setup_cpu / f64::from(opts.trials.max(1));
    let verify_seconds_per_miner = median(&verify_times);
    let decode_seconds_per_miner = median(&decode_times);
    let h200_seconds = challenge.flops() / params.dtype.h200_peak_flops();
    let validator_seconds_per_challenge =
        verify_seconds_per_miner + round_setup_cpu_seconds / f64::from(MINERS_PER_ROUND);
    Ok(ValidatorCostReport {
        task: "matmul_validator",
        dtype: params.dtype,
        n: params.n,
        batch: opts.batch,
        k: params.k,
        m: params.m,
        p: params.p,
        flops: challenge.flops(),
        h200_seconds,
        round_setup_seconds,
        round_setup_cpu_seconds,
        verify_seconds_per_miner,
        decode_seconds_per_miner,
        openings_bytes,
        miners_per_round: MINERS_PER_ROUND,
        validator_seconds_per_challenge,
        validator_over_h200: validator_seconds_per_challenge / h200_seconds,
        validator_with_decode_over_h200: (validator_seconds_per_challenge + decode_seconds_per_miner)
            / h200_seconds,
        honest_passed,
        trials: opts.trials.max(1),
    })
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use super::*;

    #[test]
    fn the_validator_cost_answers_pass_for_one_product_and_for_a_batch() {
        let opts = |batch| ValidatorCostOptions {
            backend: BackendKind::Flex,
            device_index: 0,
            params: RoundParams {
                k: 6,
                ..RoundParams::new(40, 3)
            }
            .with_dtype(MatmulDtype::Bf16),
            batch,
            trials: 2,
        };
        let one = validator_cost(&opts(1)).unwrap();
        let many = validator_cost(&opts(200)).unwrap();
        assert!(one.honest_passed && many.honest_passed, "{one:?} {many:?}");
        assert_eq!(many.flops, 200.0 * one.flops);
        assert!((many.h200_seconds / one.h200_seconds - 200.0).abs() < 1e-9);
        // The openings of the batch carry leaves and paths; those of one product do not.
        assert!(many.openings_bytes > one.openings_bytes);
    }
}
