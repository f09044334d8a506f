//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use bench_tasks::matmul::{MatmulLimits, RoundParams, RoundSetup};

/// The backends compiled into this test binary, as devices.
pub fn devices() -> Vec<(bench_tasks::BackendKind, burn::tensor::Device)> {
    bench_tasks::BackendKind::compiled()
        .into_iter()
        .filter(|k| matches!(k, bench_tasks::BackendKind::Flex | bench_tasks::BackendKind::Wgpu))
        .map(|k| (k, k.device(0).expect("compiled backend")))
        .collect()
}

/// A distinct 32-byte validator secret per trial.
pub fn secret(t: u32) -> [u8; 32] {
    let mut s = [0x5a; 32];
    s[..4].copy_from_slice(&t.to_le_bytes());
    s
}

/// A round setup with the given size and openings.
pub fn setup(n: u32, k: u32, round_seed: u64, t: u32) -> RoundSetup {
    batched(n, 1, k, round_seed, t)
}

/// A round setup of `batch` products per challenge with the given size and openings.
pub fn batched(n: u32, batch: u32, k: u32, round_seed: u64, t: u32) -> RoundSetup {
    RoundSetup::batched(
        RoundParams {
            k,
            ..RoundParams::new(n, round_seed)
        },
        batch,
        secret(t),
        &MatmulLimits::default(),
    )
    .expect("valid round")
}
