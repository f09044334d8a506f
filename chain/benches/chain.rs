//! Benchmarks of the client's hot paths, without a chain:
//! * `metagraph_decode/{256,1024}`: decoding `get_neurons_lite` output (SCALE, type-directed against
//!   finney's metadata) for a full subnet;
//! * `btauth/sign` and `btauth/verify`: one request through the signing and verification stack
//!   (sr25519 + sha256 of a 1 KiB body + replay cache);
//! * `timelock/{encrypt,decrypt}_256`: a CR-v4 commit of 256 weights (what a validator does per
//!   submission, and what the chain does per reveal), and `timelock/sign_round` (the devnet beacon's
//!   cost per pulse).

use std::hint::black_box;

use chain::auth::{RequestSigner, Verifier, VerifierConfig};
use chain::keys::Keypair;
use chain::metagraph::decode_neurons_lite;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use parity_scale_codec::{Compact, Encode};

#[path = "../tests/support/finney.rs"]
mod finney;
#[path = "../tests/support/neuron_ref.rs"]
mod neuron_ref;
use neuron_ref::RefNeuronInfoLite;

fn neurons(n: u16) -> Vec<u8> {
    (0..n)
        .map(|uid| {
            let mut hot = [0u8; 32];
            hot[..2].copy_from_slice(&uid.to_le_bytes());
            RefNeuronInfoLite {
                hotkey: hot,
                coldkey: [7; 32],
                uid: Compact(uid),
                netuid: Compact(1),
                active: true,
                axon: (1000, 100, 0x0a00_0000 + u128::from(uid), 8091, 4, 4, 0, 0),
                prometheus: (0, 0, 0, 0, 0),
                stake: vec![([7; 32], Compact(u64::from(uid) * 1_000_000_000))],
                rank: Compact(0),
                emission: Compact(1_000_000),
                incentive: Compact(uid),
                consensus: Compact(uid),
                trust: Compact(0),
                validator_trust: Compact(0),
                dividends: Compact(0),
                last_update: Compact(12_345),
                validator_permit: uid < 64,
                pruning_score: Compact(u16::MAX),
            }
        })
        .collect::<Vec<_>>()
        .encode()
}

fn metagraph_decode(c: &mut Criterion) {
    let metadata = finney::finney();
    let mut group = c.benchmark_group("metagraph_decode");
    for n in [256u16, 1024] {
        let bytes = neurons(n);
        assert_eq!(
            decode_neurons_lite(&bytes, &metadata).unwrap().len(),
            usize::from(n)
        );
        group.throughput(Throughput::Elements(u64::from(n)));
        group.bench_with_input(BenchmarkId::from_parameter(n), &bytes, |b, bytes| {
            b.iter(|| decode_neurons_lite(black_box(bytes), &metadata).unwrap());
        });
    }
    group.finish();
}

fn btauth(c: &mut Criterion) {
    let validator = Keypair::from_uri("//Alice").unwrap();
    let miner = Keypair::from_uri("//Bob").unwrap();
    let signer = RequestSigner::new(validator);
    let verifier = Verifier::new(
        miner.account(),
        VerifierConfig {
            replay_capacity: 10_000_000,
            ..VerifierConfig::default()
        },
    );
    let body = vec![0x5au8; 1024];
    let mut group = c.benchmark_group("btauth");
    group.bench_function("sign", |b| {
        b.iter(|| signer.btauth("POST", "/challenge", black_box(&body), Some(&miner.account())))
    });
    group.bench_function("sign_and_verify", |b| {
        b.iter(|| {
            let s = signer.btauth("POST", "/challenge", &body, Some(&miner.account()));
            verifier
                .verify("POST", "/challenge", &s.headers, black_box(&body))
                .unwrap()
        })
    });
    group.finish();
}

fn timelock(c: &mut Criterion) {
    use chain::timelock::{DevBeacon, decrypt_weights_commit, encrypt_weights_commit};
    let beacon = DevBeacon::devnet();
    let public_key = beacon.public_key();
    let uids: Vec<u16> = (0..256).collect();
    let values: Vec<u16> = (0..256u32).map(|i| (i * 255) as u16).collect();
    let round = 5_000_000;
    let signature = beacon.sign_round(round).unwrap();
    let commit = encrypt_weights_commit(&[7; 32], &uids, &values, 0, round, &public_key).unwrap();
    let mut group = c.benchmark_group("timelock");
    group.bench_function("encrypt_256", |b| {
        b.iter(|| encrypt_weights_commit(&[7; 32], black_box(&uids), &values, 0, round, &public_key).unwrap())
    });
    group.bench_function("decrypt_256", |b| {
        b.iter(|| decrypt_weights_commit(black_box(&commit), &signature).unwrap())
    });
    group.bench_function("sign_round", |b| {
        b.iter(|| beacon.sign_round(black_box(round)).unwrap())
    });
    group.finish();
}

criterion_group!(benches, metagraph_decode, btauth, timelock);
criterion_main!(benches);
