//! Property tests of the decoders that take untrusted bytes from the network: the `btauth/1` and
//! Epistula headers a miner verifies, and the SCALE a validator reads from a chain's RPC
//! (`get_neurons_lite`). Each runs a fixed, seeded number of mutated inputs (printed, with what was
//! accepted); the properties: no input panics, and only an input equivalent to a genuine one verifies.

use chain::auth::{AuthError, RequestSigner, Verifier, VerifierConfig, btauth, epistula};
use chain::keys::Keypair;
use chain::metagraph::decode_neurons_lite;
use http::{HeaderMap, HeaderValue};
use parity_scale_codec::{Compact, Encode};

#[path = "support/neuron_ref.rs"]
mod neuron_ref;
#[path = "support/finney.rs"]
mod support;

/// splitmix64: a small deterministic generator, so every run tries the same inputs.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// `bytes` with one random edit: a flipped bit, a replaced, inserted or deleted byte, a truncation,
    /// a duplicated run, or a leading zero.
    fn mutate(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut out = bytes.to_vec();
        let at = self.below(out.len() + 1);
        let last = at.min(out.len().saturating_sub(1));
        match self.below(7) {
            0 if !out.is_empty() => out[last] ^= 1 << self.below(8),
            1 if !out.is_empty() => out[last] = self.next() as u8,
            2 => out.insert(at, self.next() as u8),
            3 if !out.is_empty() => {
                out.remove(last);
            }
            4 => out.truncate(at),
            5 => {
                let end = (at + 1 + self.below(16)).min(out.len());
                let run = out[at.min(end)..end].to_vec();
                out.splice(at..at, run);
            }
            _ => out.insert(0, b'0'),
        }
        out
    }
}

const HEADERS: [&str; 6] = [
    btauth::H_VERSION,
    btauth::H_HOTKEY,
    btauth::H_RECEIVER,
    btauth::H_NONCE,
    btauth::H_CRYPTO,
    btauth::H_SIGNATURE,
];

#[test]
fn mutated_btauth_headers_never_panic_and_never_verify() {
    const RUNS: usize = 20_000;
    let sender = Keypair::from_uri("//Alice").unwrap();
    let miner = Keypair::from_uri("//Bob").unwrap();
    let signer = RequestSigner::new(sender.clone());
    let mut g = Gen(19);
    let (mut malformed, mut refused, mut accepted) = (0, 0, 0);
    for run in 0..RUNS {
        let body = format!("{{\"run\":{run}}}").into_bytes();
        let signed = signer.btauth("POST", "/v1/challenge", &body, Some(&miner.account()));
        let mut headers = signed.headers.clone();
        let name = HEADERS[g.below(HEADERS.len())];
        let original = headers
            .get(name)
            .map(|v| v.as_bytes().to_vec())
            .unwrap_or_default();
        let mutated = g.mutate(&original);
        match HeaderValue::from_bytes(&mutated) {
            Ok(v) => {
                headers.insert(name, v);
            }
            Err(_) => {
                headers.remove(name);
            }
        }
        let verifier = Verifier::new(miner.account(), VerifierConfig::default());
        match verifier.verify("POST", "/v1/challenge", &headers, &body) {
            Err(AuthError::Malformed(_)) => malformed += 1,
            Err(_) => refused += 1,
            Ok(v) => {
                accepted += 1;
                // Only a spelling the verifier treats as the same request may pass: the same sender,
                // receiver and canonical nonce as signed (surrounding whitespace, the default crypto).
                assert_eq!(v.hotkey, sender.account(), "{name}: {mutated:?}");
                assert_eq!(v.request_id, signed.request_id, "{name}: {mutated:?}");
                assert_eq!(v.receiver, Some(miner.account()));
            }
        }
    }
    println!(
        "btauth headers: {RUNS} executions, {malformed} malformed, {refused} refused, {accepted} equivalent accepted"
    );
    assert_eq!(malformed + refused + accepted, RUNS);
}

#[test]
fn mutated_epistula_headers_never_panic_and_never_verify() {
    const RUNS: usize = 10_000;
    let sender = Keypair::from_uri("//Alice").unwrap();
    let miner = Keypair::from_uri("//Bob").unwrap();
    let signer = RequestSigner::new(sender.clone());
    let names = [
        epistula::H_VERSION,
        epistula::H_TIMESTAMP,
        epistula::H_UUID,
        epistula::H_SIGNED_BY,
        epistula::H_SIGNED_FOR,
        epistula::H_SIGNATURE,
    ];
    let mut g = Gen(23);
    let mut accepted = 0;
    for run in 0..RUNS {
        let body = format!("{{\"run\":{run}}}").into_bytes();
        let signed = signer.epistula(&body, Some(&miner.account()));
        let mut headers: HeaderMap = signed.headers.clone();
        let name = names[g.below(names.len())];
        let original = headers
            .get(name)
            .map(|v| v.as_bytes().to_vec())
            .unwrap_or_default();
        match HeaderValue::from_bytes(&g.mutate(&original)) {
            Ok(v) => {
                headers.insert(name, v);
            }
            Err(_) => {
                headers.remove(name);
            }
        }
        let verifier = Verifier::new(miner.account(), VerifierConfig::default());
        if let Ok(v) = verifier.verify("POST", "/v1/challenge", &headers, &body) {
            accepted += 1;
            assert_eq!(
                (v.hotkey, v.request_id.as_str()),
                (sender.account(), signed.request_id.as_str())
            );
        }
    }
    println!("epistula headers: {RUNS} executions, {accepted} equivalent accepted");
}

#[test]
fn mutated_neurons_lite_scale_never_panics() {
    const RUNS: usize = 20_000;
    let metadata = support::finney();
    let alice = Keypair::from_uri("//Alice").unwrap().account();
    let neuron = |uid: u16| neuron_ref::RefNeuronInfoLite {
        hotkey: alice.0,
        coldkey: alice.0,
        uid: Compact(uid),
        netuid: Compact(3),
        active: true,
        axon: (10, 100, 0x0102_0304, 8091, 4, 4, 0, 0),
        prometheus: (0, 0, 0, 0, 0),
        stake: vec![(alice.0, Compact(5_000_000_000))],
        rank: Compact(0),
        emission: Compact(123_456),
        incentive: Compact(1000),
        consensus: Compact(2000),
        trust: Compact(0),
        validator_trust: Compact(3000),
        dividends: Compact(4000),
        last_update: Compact(99_999),
        validator_permit: uid == 0,
        pruning_score: Compact(u16::MAX),
    };
    let genuine = (0..4).map(neuron).collect::<Vec<_>>().encode();
    assert_eq!(decode_neurons_lite(&genuine, &metadata).unwrap().len(), 4);
    let mut g = Gen(29);
    let (mut ok, mut err) = (0, 0);
    let mut input = genuine.clone();
    for run in 0..RUNS {
        // Mostly one edit of the genuine bytes; every eighth run stacks edits on the previous input.
        input = if run % 8 == 7 {
            g.mutate(&input)
        } else {
            g.mutate(&genuine)
        };
        match decode_neurons_lite(&input, &metadata) {
            Ok(neurons) => {
                ok += 1;
                // A decode that succeeds has consumed every byte and yields at most what fits in them.
                assert!(neurons.len() <= input.len());
            }
            Err(_) => err += 1,
        }
    }
    println!("neurons_lite SCALE: {RUNS} executions, {ok} decoded, {err} refused");
}
