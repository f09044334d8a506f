//! The dtype classes (f32, f16, bf16): burn's kernels round the exact product once, honest answers pass on
//! every compiled backend, and cheaters are caught at the predicted rate in the 16-bit classes too.

mod common;

use bench_tasks::Reason;
use bench_tasks::matmul::generator::{MatrixGen, MatrixId};
use bench_tasks::matmul::miner::{exact_in, product_in};
use bench_tasks::matmul::params::ENTRY_BOUND;
use bench_tasks::matmul::{
    Adversary, MatmulDtype, MatmulJob, MatmulLimits, OpenedRow, Openings, Round1Answer, RoundParams,
    RoundSetup,
};
use burn::tensor::FloatDType;

fn setup(n: u32, k: u32, dtype: MatmulDtype, round_seed: u64, t: u32) -> RoundSetup {
    RoundSetup::new(
        RoundParams {
            k,
            ..RoundParams::new(n, round_seed)
        }
        .with_dtype(dtype),
        common::secret(t),
        &MatmulLimits::default(),
    )
    .expect("valid round")
}

fn read(t: burn::tensor::Tensor<2>) -> Vec<f32> {
    t.cast(FloatDType::F32)
        .into_data()
        .try_into_vec_as::<f32>()
        .unwrap()
}

/// The claim the 16-bit classes rest on: with entries in [-8, 8] a kernel with an f32 accumulator holds the
/// exact integer product and rounds once at the end, so its product in the class's format equals
/// `round(exact C)` bit for bit. At n = 768 many partial sums pass 2^11 (f16) and 2^8 (bf16), so a kernel
/// that accumulates in the 16-bit format differs, and `exact_in` must say so. Measured: burn-flex's bf16
/// matmul converts to f32 and qualifies; its f16 gemm rounds partial sums (it answered 1703 for 1704) and
/// does not, so a flex miner takes the f32 fallback in f16.
#[test]
fn kernels_qualify_exactly_when_they_round_the_exact_product_once() {
    let n = 768;
    for (kind, device) in common::devices() {
        let a = MatrixGen::new(3, MatrixId::A, n, n, ENTRY_BOUND).to_device(&device);
        let b = MatrixGen::new(4, MatrixId::B, n, n, ENTRY_BOUND).to_device(&device);
        let exact = read(a.clone().matmul(b.clone()));
        for dtype in [MatmulDtype::F16, MatmulDtype::Bf16] {
            let qualified = exact_in(&device, dtype);
            if !device.supports_dtype(dtype.float_dtype()) {
                assert!(!qualified, "{kind} has no {dtype} but qualified");
                continue;
            }
            let got = read(product_in(a.clone(), b.clone(), dtype.float_dtype()));
            let wrong = got
                .iter()
                .zip(&exact)
                .filter(|(g, e)| g.to_bits() != dtype.round(**e).to_bits())
                .count();
            let rounded = exact.iter().filter(|&&e| dtype.round(e) != e).count();
            // The comparison is not vacuous: many entries needed rounding.
            assert!(
                rounded > 100,
                "{kind} {dtype}: only {rounded} entries were rounded"
            );
            eprintln!(
                "{kind} {dtype}: {wrong} of {} entries differ from round(exact); qualified: {qualified}",
                got.len()
            );
            assert_eq!(
                qualified,
                wrong == 0,
                "{kind} {dtype}: {wrong} wrong entries, qualified {qualified}"
            );
        }
    }
    let flex = burn::tensor::Device::flex();
    assert!(
        exact_in(&flex, MatmulDtype::Bf16),
        "flex's bf16 matmul accumulates in f32"
    );
    assert!(exact_in(&flex, MatmulDtype::F32));
}

#[test]
fn honest_answers_pass_in_every_class_on_every_backend() {
    for (kind, device) in common::devices() {
        for dtype in MatmulDtype::ALL {
            for n in [33u32, 257] {
                let s = setup(n, 16, dtype, 11, 0);
                let challenge = s.challenge(77);
                assert_eq!(challenge.dtype, dtype);
                let (answer, state) = MatmulJob::run(&challenge, &device).unwrap();
                for t in 0..3 {
                    let s = setup(n, 16, dtype, 11, t);
                    let request = s.choose_openings(challenge.miner_seed);
                    let verdict = s.verify(&challenge, &answer, &request, &state.open(&request).unwrap());
                    assert!(verdict.passed, "{kind} {dtype} n={n}: {verdict:?}");
                }
            }
        }
    }
}

/// The class is enforced: an f32 answer (the sketch of the unrounded product) fails a bf16 round, and a
/// miner that opens its rounded rows instead of the exact ones fails Freivalds.
#[test]
fn the_class_is_enforced_both_ways() {
    let device = &common::devices()[0].1;
    let n = 256;
    let s = setup(n, 32, MatmulDtype::Bf16, 5, 0);
    let challenge = s.challenge(9);
    let request = s.choose_openings(challenge.miner_seed);

    // The f32 challenge's answer: its sketch is of the exact C, not of round(C).
    let f32_challenge = bench_tasks::matmul::MatmulChallenge {
        dtype: MatmulDtype::F32,
        ..challenge
    };
    let (f32_answer, f32_state) = MatmulJob::run(&f32_challenge, device).unwrap();
    let verdict = s.verify(
        &challenge,
        &f32_answer,
        &request,
        &f32_state.open(&request).unwrap(),
    );
    assert!(!verdict.passed);
    assert_eq!(verdict.reason, Reason::WrongSketch, "{verdict:?}");

    // The honest bf16 answer, but opened rows rounded to bf16.
    let (answer, state) = MatmulJob::run(&challenge, device).unwrap();
    let honest = state.open(&request).unwrap();
    assert!(s.verify(&challenge, &answer, &request, &honest).passed);
    let rounded = Openings {
        rows: honest
            .rows
            .iter()
            .map(|r| OpenedRow {
                index: r.index,
                values: r.values.iter().map(|&v| MatmulDtype::Bf16.round(v)).collect(),
                packed: None,
                proof: None,
            })
            .collect(),
    };
    assert_ne!(rounded, honest, "n = 256 has entries that bf16 rounds");
    let verdict = s.verify(&challenge, &answer, &request, &rounded);
    assert!(!verdict.passed);
    assert_eq!(verdict.reason, Reason::WrongRow, "{verdict:?}");

    // And a sketch off by one in one entry fails.
    let mut forged: Round1Answer = answer;
    let row = request.rows[0] as usize;
    forged.sketch[row * 8] += 1.0;
    assert_eq!(
        s.verify(&challenge, &forged, &request, &honest).reason,
        Reason::WrongSketch
    );
}

/// Detection in the 16-bit classes matches the sampling argument, as in f32 (tests/matmul_adversary.rs).
#[test]
fn cheaters_are_caught_at_the_predicted_rate_in_16_bit_classes() {
    const SEEDS: u64 = 3;
    const TRIALS: u32 = 60;
    let device = &common::devices()[0].1;
    let (n, k) = (80u32, 8u32);
    for dtype in [MatmulDtype::F16, MatmulDtype::Bf16] {
        for (fraction, adversary) in [
            (0.25, Adversary::Lazy { fraction: 0.25 }),
            (0.1, Adversary::Noisy { fraction: 0.1 }),
            (1.0, Adversary::OnDemand),
            (1.0, Adversary::ForgedSketch),
            (1.0, Adversary::Replay),
        ] {
            let mut caught = 0u32;
            for seed in 0..SEEDS {
                let challenge = setup(n, k, dtype, 40 + seed, 0).challenge(9000 + seed);
                let (answer, state) = adversary
                    .run(&challenge, device, &MatmulLimits::default(), seed)
                    .unwrap();
                for t in 0..TRIALS {
                    let s = setup(n, k, dtype, 40 + seed, 1 + t + seed as u32 * TRIALS);
                    let request = s.choose_openings(challenge.miner_seed);
                    let openings = state.open(&request).unwrap();
                    caught += u32::from(!s.verify(&challenge, &answer, &request, &openings).passed);
                }
            }
            let trials = f64::from(SEEDS as u32 * TRIALS);
            let observed = f64::from(caught) / trials;
            let bad = (fraction * f64::from(n)).round() as u32;
            let predicted = 1.0
                - RoundParams {
                    k,
                    ..RoundParams::new(n, 0)
                }
                .pass_probability(bad);
            let tolerance = 4.5 * (predicted * (1.0 - predicted) / trials).sqrt() + 0.01;
            assert!(
                (observed - predicted).abs() <= tolerance,
                "{dtype} {adversary}: detected {observed:.3}, predicted {predicted:.3} ± {tolerance:.3}"
            );
        }
    }
}
