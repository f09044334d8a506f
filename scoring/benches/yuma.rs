//! Criterion benchmark: one Yuma epoch (classic and Yuma3 with liquid alpha) at n = 256, 1024, 4096.
//!
//! The network is the shape a real subnet has: the top 64 uids (at most n/4) are validators with
//! permits and stake, the rest are miners; every validator weighs every miner with a per-validator
//! perturbation of a shared score, and bonds come from two warm-up epochs.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use scoring::yuma::{EpochInput, YumaHyperparameters, run_epoch};

fn network(n: usize, yuma3: bool) -> EpochInput {
    let validators = (n / 4).min(64);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let stake: Vec<u64> = (0..n)
        .map(|i| {
            if i < validators {
                1_000_000_000 + next() % 1_000_000_000_000
            } else {
                0
            }
        })
        .collect();
    let weights: Vec<Vec<(u16, u16)>> = (0..n)
        .map(|i| {
            if i < validators {
                (validators..n)
                    .map(|j| {
                        (
                            j as u16,
                            (1 + (j * 7919 + (next() % 500) as usize) % 65535) as u16,
                        )
                    })
                    .collect()
            } else {
                Vec::new()
            }
        })
        .collect();
    let hyperparameters = YumaHyperparameters {
        max_allowed_validators: validators as u16,
        yuma3,
        liquid_alpha: yuma3,
        ..YumaHyperparameters::default()
    };
    let mut input = EpochInput {
        current_block: 1000,
        tempo: 360,
        last_mechanism_step_block: 640,
        owner_uid: None,
        stake,
        weights,
        bonds: vec![Vec::new(); n],
        last_update: vec![999; n],
        block_at_registration: vec![0; n],
        validator_permit: (0..n).map(|i| i < validators).collect(),
        rao_emission: 1_000_000_000,
        hyperparameters,
        commit_blocks: None,
    };
    for _ in 0..2 {
        let out = run_epoch(&input).expect("consistent bench input");
        input.bonds = out.bonds;
        input.validator_permit = out.validator_permit;
    }
    input
}

fn bench_epoch(c: &mut Criterion) {
    let mut group = c.benchmark_group("yuma_epoch");
    group.sample_size(10);
    for n in [256usize, 1024, 4096] {
        for (name, yuma3) in [("classic", false), ("yuma3_liquid_alpha", true)] {
            let input = network(n, yuma3);
            group.bench_with_input(BenchmarkId::new(name, n), &input, |b, input| {
                b.iter(|| run_epoch(std::hint::black_box(input)).expect("consistent bench input"))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench_epoch);
criterion_main!(benches);
