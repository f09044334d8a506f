//! Every adversary is caught at the rate the sampling argument predicts.
//!
//! Detection is measured over many validator rounds (fresh secret, hence fresh `r` and fresh rows) and
//! several adversary seeds. For a cheater wrong on `b` of `n` rows, `k` distinct openings miss every bad
//! row with probability `P = C(n−b, k)/C(n, k) ≤ (1 − b/n)^k`. The observed detection rate over `T`
//! trials must lie within 4.5 binomial standard deviations (plus 0.01) of `1 − P`: a correct
//! implementation fails this with probability below 10^-5, and the seeds are fixed, so the test is
//! deterministic.

mod common;

use bench_tasks::Reason;
use bench_tasks::matmul::{Adversary, MatmulLimits};

const SEEDS: u64 = 4;
const TRIALS_PER_SEED: u32 = 100;

/// Runs `adversary` with several seeds against `T` validator rounds each; returns (detected fraction,
/// reasons seen).
fn detection(device: &burn::tensor::Device, adversary: Adversary, n: u32, k: u32) -> (f64, Vec<Reason>) {
    batch_detection(device, adversary, n, 1, k)
}

/// [`detection`] for challenges of `batch` products.
fn batch_detection(
    device: &burn::tensor::Device,
    adversary: Adversary,
    n: u32,
    batch: u32,
    k: u32,
) -> (f64, Vec<Reason>) {
    let mut caught = 0u32;
    let mut reasons = Vec::new();
    for seed in 0..SEEDS {
        let challenge = common::batched(n, batch, k, 40 + seed, 0).challenge(9000 + seed);
        let (answer, state) = adversary
            .run(&challenge, device, &MatmulLimits::default(), seed)
            .unwrap();
        for t in 0..TRIALS_PER_SEED {
            let setup = common::batched(n, batch, k, 40 + seed, 1 + t + seed as u32 * TRIALS_PER_SEED);
            let request = setup.choose_openings(challenge.miner_seed);
            let verdict = setup.verify(&challenge, &answer, &request, &state.open(&request).unwrap());
            if !verdict.passed {
                caught += 1;
                if !reasons.contains(&verdict.reason) {
                    reasons.push(verdict.reason);
                }
            }
        }
    }
    (
        f64::from(caught) / f64::from(SEEDS as u32 * TRIALS_PER_SEED),
        reasons,
    )
}

fn assert_rate(name: &str, observed: f64, predicted: f64) {
    let trials = f64::from(SEEDS as u32 * TRIALS_PER_SEED);
    let sigma = (predicted * (1.0 - predicted) / trials).sqrt();
    let tolerance = 4.5 * sigma + 0.01;
    assert!(
        (observed - predicted).abs() <= tolerance,
        "{name}: detected {observed:.3}, predicted {predicted:.3} ± {tolerance:.3}"
    );
}

#[test]
fn partial_cheaters_are_caught_at_the_predicted_rate() {
    let device = &common::devices()[0].1;
    let (n, k) = (80u32, 8u32);
    for (fraction, adversary) in [
        (0.1, Adversary::Lazy { fraction: 0.1 }),
        (0.25, Adversary::Lazy { fraction: 0.25 }),
        (0.1, Adversary::Noisy { fraction: 0.1 }),
    ] {
        let bad = (fraction * f64::from(n)).round() as u32;
        let params = common::setup(n, k, 0, 0).params().to_owned();
        let predicted = 1.0 - params.pass_probability(bad);
        // The exact (hypergeometric) prediction is at least the (1−f)^k model's.
        assert!(predicted >= 1.0 - (1.0 - fraction).powi(k as i32) - 1e-12);
        let (observed, reasons) = detection(device, adversary, n, k);
        assert_rate(&adversary.to_string(), observed, predicted);
        assert_eq!(
            reasons,
            vec![Reason::WrongRow],
            "{adversary}: a consistent sketch is caught by Freivalds"
        );
    }
}

/// A batched challenge (10 products of 24², 240 stacked rows, 8 openings): a miner skipping whole
/// products, or corrupting rows across them, is caught at the rate the sampling over all `B·n` rows
/// predicts, `1 − C(240 − b, 8)/C(240, 8)`.
#[test]
fn cheaters_skipping_products_are_caught_at_the_predicted_rate() {
    let device = &common::devices()[0].1;
    let (n, batch, k) = (24u32, 10u32, 8u32);
    let setup = common::batched(n, batch, k, 0, 0);
    for (adversary, bad) in [
        (Adversary::Lazy { fraction: 0.1 }, 24),
        (Adversary::Lazy { fraction: 0.3 }, 72),
        (Adversary::Lazy { fraction: 0.25 }, 60),
        (Adversary::Noisy { fraction: 0.1 }, 24),
    ] {
        assert_eq!(adversary.bad_rows(&setup.challenge(0)), bad, "{adversary}");
        let predicted = 1.0 - setup.pass_probability(bad);
        // Skipping a fraction s of the products passes with at most (1 − s)^k.
        assert!(predicted >= 1.0 - (1.0 - f64::from(bad) / 240.0).powi(k as i32) - 1e-12);
        let (observed, reasons) = batch_detection(device, adversary, n, batch, k);
        assert_rate(&format!("batched {adversary}"), observed, predicted);
        assert_eq!(reasons, vec![Reason::WrongRow], "{adversary}");
    }
}

#[test]
fn batched_honest_miners_pass_and_full_cheaters_fail() {
    for (kind, device) in common::devices() {
        let (observed, reasons) = batch_detection(&device, Adversary::Honest, 20, 6, 12);
        assert_eq!(observed, 0.0, "{kind}: {reasons:?}");
        for (adversary, allowed) in [
            (
                Adversary::ForgedSketch,
                &[Reason::WrongSketch, Reason::BadValue][..],
            ),
            (Adversary::OnDemand, &[Reason::WrongSketch][..]),
            (Adversary::Replay, &[Reason::WrongRow][..]),
            (Adversary::Lazy { fraction: 1.0 }, &[Reason::WrongRow][..]),
        ] {
            let (observed, reasons) = batch_detection(&device, adversary, 20, 6, 3);
            assert!(observed >= 0.99, "{kind} {adversary}: detected only {observed}");
            assert!(
                reasons.iter().all(|r| allowed.contains(r)),
                "{kind} {adversary}: {reasons:?}"
            );
        }
    }
}

#[test]
fn honest_miner_is_never_rejected() {
    let device = &common::devices()[0].1;
    let (observed, reasons) = detection(device, Adversary::Honest, 50, 10);
    assert_eq!(observed, 0.0, "{reasons:?}");
}

#[test]
fn full_cheaters_are_always_caught() {
    for (kind, device) in common::devices() {
        for (adversary, allowed) in [
            (
                Adversary::ForgedSketch,
                &[Reason::WrongSketch, Reason::BadValue][..],
            ),
            (Adversary::OnDemand, &[Reason::WrongSketch][..]),
            (Adversary::Replay, &[Reason::WrongRow][..]),
            (Adversary::Lazy { fraction: 1.0 }, &[Reason::WrongRow][..]),
        ] {
            let (observed, reasons) = detection(&device, adversary, 33, 3);
            assert!(observed >= 0.99, "{kind} {adversary}: detected only {observed}");
            assert!(
                reasons.iter().all(|r| allowed.contains(r)),
                "{kind} {adversary}: {reasons:?}"
            );
        }
    }
}
