//! Benchmarks of the client's hot paths, without a chain:
//! * `metagraph_decode/{256,1024}`: decoding `get_neurons_lite` output (SCALE, type-directed against
//!   finney's metadata) for a full subnet;
//! * `btauth/sign` and `btauth/verify`: one request through the signing and verification stack
//!   (sr25519 + sha256 of a 1 KiB body + replay cache).

use std::hint::black_box;

use chain::auth::{RequestSigner, Verifier, VerifierConfig};
use chain::keys::Keypair;
use chain::metagraph::decode_neurons_lite;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use parity_scale_codec::{Compact, Encode};
use subxt::Metadata;

/// The finney metadata, next to the workspace or inside it, or at `TENSORPROOF_FINNEY_METADATA`.
fn finney_bytes() -> Vec<u8> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let path = std::env::var_os("TENSORPROOF_FINNEY_METADATA")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            let outside = root.join("../shared/reference/subtensor-finney-metadata.scale");
            if outside.exists() {
                outside
            } else {
                root.join("shared/reference/subtensor-finney-metadata.scale")
            }
        });
    std::fs::read(&path).unwrap_or_else(|e| panic!("finney metadata at {}: {e}", path.display()))
}

#[derive(Encode)]
struct RefNeuronInfoLite {
    hotkey: [u8; 32],
    coldkey: [u8; 32],
    uid: Compact<u16>,
    netuid: Compact<u16>,
    active: bool,
    axon: (u64, u32, u128, u16, u8, u8, u8, u8),
    prometheus: (u64, u32, u128, u16, u8),
    stake: Vec<([u8; 32], Compact<u64>)>,
    rank: Compact<u16>,
    emission: Compact<u64>,
    incentive: Compact<u16>,
    consensus: Compact<u16>,
    trust: Compact<u16>,
    validator_trust: Compact<u16>,
    dividends: Compact<u16>,
    last_update: Compact<u64>,
    validator_permit: bool,
    pruning_score: Compact<u16>,
}

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
    let metadata = Metadata::decode_from(&finney_bytes()).unwrap();
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

criterion_group!(benches, metagraph_decode, btauth);
criterion_main!(benches);
