//! Property tests of the decoders that take untrusted bytes: the wire JSON both sides parse (and the
//! validation that follows), and safetensors model files. Each runs a fixed, seeded number of mutated
//! inputs and prints the count; the properties: nothing panics, and whatever parses re-encodes to the
//! same value.

use bench_tasks::inference::{
    HostWeights, InferenceAnswer, InferenceChallenge, Limits as InferenceLimits, ModelConfig, ModelId, Preset,
};
use bench_tasks::matmul::{MatmulLimits, OpeningRequest, Round1Answer, RoundParams, RoundSetup};
use bench_tasks::wire::{
    ChallengeRequest, ChallengeResponse, OpenRequest, TaskAnswer, TaskChallenge, TaskOpenRequest,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

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

    /// `bytes` with one random edit within `bytes[..span]`: a flipped bit, a replaced, inserted or
    /// deleted byte, a truncation, a duplicated run, or a JSON-ish token spliced in.
    fn mutate(&mut self, bytes: &[u8], span: usize) -> Vec<u8> {
        const TOKENS: [&[u8]; 10] = [
            b"-1",
            b"1e309",
            b"null",
            b"[]",
            b"{}",
            b"\"\"",
            b"18446744073709551616",
            b"0.5",
            b"\"x\"",
            b",",
        ];
        let mut out = bytes.to_vec();
        let span = span.min(out.len());
        let at = self.below(span + 1);
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
                let end = (at + 1 + self.below(32)).min(out.len());
                let run = out[at.min(end)..end].to_vec();
                out.splice(at..at, run);
            }
            _ => {
                let t = TOKENS[self.below(TOKENS.len())];
                out.splice(at..at, t.iter().copied());
            }
        }
        out
    }
}

/// Mutates `genuine` `runs` times; every input either fails to parse or parses to a value that
/// re-encodes and parses back to itself; `check` runs on every parsed value (validation). Returns how
/// many parsed.
fn fuzz_json<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(
    g: &mut Gen,
    genuine: &T,
    runs: usize,
    check: impl Fn(&T),
) -> usize {
    let bytes = serde_json::to_vec(genuine).unwrap();
    let mut parsed = 0;
    for _ in 0..runs {
        let input = g.mutate(&bytes, bytes.len());
        if let Ok(value) = serde_json::from_slice::<T>(&input) {
            parsed += 1;
            check(&value);
            let again = serde_json::to_vec(&value).unwrap();
            assert_eq!(serde_json::from_slice::<T>(&again).unwrap(), value);
        }
    }
    parsed
}

#[test]
fn mutated_wire_json_never_panics_and_round_trips() {
    const RUNS: usize = 20_000;
    let mut g = Gen(31);
    let setup = RoundSetup::new(RoundParams::new(64, 7), [3; 32], &MatmulLimits::default()).unwrap();
    let matmul = ChallengeRequest {
        id: "round-7-uid-3".into(),
        challenge: TaskChallenge::Matmul(setup.challenge(11)),
    };
    let inference = ChallengeRequest {
        id: "inference-1".into(),
        challenge: TaskChallenge::Inference(InferenceChallenge {
            model: ModelId::Seeded {
                preset: Preset::Tiny,
                seed: 0,
            },
            seed: 5,
            batch: 2,
            prompt_len: 8,
            new_tokens: 4,
        }),
    };
    // Validation of whatever parses must not panic either (its result is the miner's answer).
    let validate = |r: &ChallengeRequest| match &r.challenge {
        TaskChallenge::Matmul(c) => {
            let _ = c.validate(&MatmulLimits::default());
        }
        TaskChallenge::Inference(c) => {
            let _ = c.validate(&InferenceLimits {
                max_batch: 64,
                max_prompt_len: 256,
                max_new_tokens: 256,
            });
        }
    };
    let answers = [
        ChallengeResponse {
            id: "round-7-uid-3".into(),
            answer: TaskAnswer::Matmul(Round1Answer::sketch((0..64).map(|i| i as f32 - 3.0).collect())),
            queue_seconds: 0.25,
            compute_seconds: 1.5,
            device: Some(1),
        },
        ChallengeResponse {
            id: "inference-1".into(),
            answer: TaskAnswer::Inference(InferenceAnswer {
                tokens: vec![vec![1, 2, 3, 4], vec![5, 6, 7, 8]],
            }),
            queue_seconds: 0.0,
            compute_seconds: 0.5,
            device: None,
        },
    ];
    let open = OpenRequest {
        id: "round-7-uid-3".into(),
        open: TaskOpenRequest::Matmul(OpeningRequest { rows: vec![0, 5, 63] }),
    };
    let mut parsed = 0;
    parsed += fuzz_json(&mut g, &matmul, RUNS, validate);
    parsed += fuzz_json(&mut g, &inference, RUNS, validate);
    for a in &answers {
        parsed += fuzz_json(&mut g, a, RUNS, |_| {});
    }
    parsed += fuzz_json(&mut g, &open, RUNS, |_| {});
    println!("wire JSON: {} executions, {parsed} parsed", 5 * RUNS);
}

#[test]
fn mutated_safetensors_headers_never_panic() {
    const RUNS: usize = 3_000;
    let config = ModelConfig {
        vocab_size: 50,
        d_model: 16,
        n_layers: 2,
        n_heads: 4,
        n_kv_heads: 2,
        d_ff: 24,
        max_seq_len: 32,
        rope_theta: 10_000.0,
        norm_eps: 1e-5,
    };
    let genuine = HostWeights::seeded(config, 1).to_safetensors();
    assert!(HostWeights::from_safetensors(&genuine, config).is_ok());
    let header_len = u64::from_le_bytes(genuine[..8].try_into().unwrap()) as usize;
    let mut g = Gen(37);
    let mut loaded = 0;
    for _ in 0..RUNS {
        // Edits in the length prefix and the JSON header, where the parser decides what to read.
        let input = g.mutate(&genuine, 8 + header_len);
        if HostWeights::from_safetensors(&input, config).is_ok() {
            loaded += 1;
        }
    }
    println!("safetensors: {RUNS} executions, {loaded} loaded");
}
