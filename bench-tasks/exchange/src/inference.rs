//! The inference exchange: one timed challenge (the answer carries the generated tokens), then the
//! teacher-forced check of sequences drawn from a keyed hash of the answer (left to the caller to run
//! on a blocking pool: it is CPU work).

use std::sync::{Arc, Mutex};

use bench_tasks::Reason;
use bench_tasks::inference::{InferenceChallenge, Verifier, pick_sequences};
use bench_tasks::wire::{ChallengeRequest, TaskAnswer, TaskChallenge};

use crate::client::Budget;
use crate::{Call, Exchanged};

/// A token id is at most 8 digits and a comma: 12 bytes per token plus the envelope.
const BYTES_PER_TOKEN: usize = 12;
/// Room for the JSON envelope of an answer.
const ENVELOPE_BYTES: usize = 64 * 1024;

/// How the sequences to check are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Picks {
    /// Key of the hash of the answer's bytes that draws them (the miner never sees it).
    pub key: [u8; 32],
    /// How many sequences to check, `s` (at least 1).
    pub sequences: usize,
}

/// Sends `challenge` to the miner; verification uses `verifier`. The latency goes to the call's
/// observer as `inference_challenge`.
pub async fn exchange(
    call: Call<'_>,
    challenge: InferenceChallenge,
    verifier: Arc<Mutex<Verifier>>,
    picks: Picks,
) -> Exchanged {
    let work = challenge.work_units() as f64;
    let mut out = Exchanged::not_run(work);
    let budget = Budget {
        timeout: call.bounds.challenge_timeout,
        cap: (challenge.work_units() * BYTES_PER_TOKEN + ENVELOPE_BYTES).min(call.bounds.max_answer_bytes),
    };
    let request = ChallengeRequest {
        id: call.id.to_owned(),
        challenge: TaskChallenge::Inference(challenge.clone()),
    };
    let reply = match call.client.challenge(call.to, &request, budget).await {
        Ok(r) => r,
        Err(e) => return out.failed_call(&e),
    };
    (call.observe)("inference_challenge", reply.elapsed);
    out.answered(reply.elapsed, &reply.body);
    out.answer_hash = Some(blake3::hash(&reply.bytes).to_hex().to_string());
    // The sequences to check depend on the answer's bytes and a key the miner never sees.
    let keyed = blake3::keyed_hash(&picks.key, &reply.bytes);
    let entropy = u64::from_le_bytes(keyed.as_bytes()[..8].try_into().unwrap_or([0; 8]));
    let rows = pick_sequences(challenge.batch, picks.sequences.max(1), entropy);
    match reply.body.answer {
        TaskAnswer::Inference(answer) => out.pending(move || {
            verifier
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .verify(&challenge, &answer, &rows)
        }),
        other => {
            let detail = format!("an inference challenge got a {} answer", other.class());
            out.failed(Reason::Malformed, detail)
        }
    }
}
