//! The matmul exchange: the timed challenge, the openings chosen only after its answer, and the
//! verification (left to the caller to run on a blocking pool: it is CPU work).

use std::sync::Arc;

use bench_tasks::matmul::RoundSetup;
use bench_tasks::matmul::params::LEAF_ROWS;
use bench_tasks::wire::{
    ChallengeRequest, OpenRequest, TaskAnswer, TaskChallenge, TaskOpenRequest, TaskOpenings,
};
use bench_tasks::{Reason, Verdict};

use crate::client::Budget;
use crate::{Call, Exchanged};

/// JSON of an integer-valued f32 is at most ~13 bytes; 24 per value plus the envelope.
const BYTES_PER_VALUE: usize = 24;
/// Room for the JSON envelope of an answer.
const ENVELOPE_BYTES: usize = 64 * 1024;
/// JSON of one Merkle path hash: 64 hex digits, quotes and a comma.
const BYTES_PER_HASH: usize = 70;
/// Most hashes in a Merkle path (leaves < 2^32).
const MAX_PATH: usize = 32;

/// Challenges the miner with `setup`'s challenge for `seed`, then asks for the openings chosen for
/// `seed`. Latencies go to the call's observer as `challenge` and `open`.
pub async fn exchange(call: Call<'_>, setup: &Arc<RoundSetup>, seed: u64) -> Exchanged {
    let challenge = setup.challenge(seed);
    let work = challenge.work_units();
    let mut out = Exchanged::not_run(work);
    let (n, m, k) = (
        challenge.n as usize,
        challenge.m as usize,
        setup.params().k as usize,
    );

    // Round 1: the timed challenge.
    let request = ChallengeRequest {
        id: call.id.to_owned(),
        challenge: TaskChallenge::Matmul(challenge),
    };
    let budget = Budget {
        timeout: call.bounds.challenge_timeout,
        // A batched answer is a 64-digit root; a one-product answer the n·m sketch.
        cap: (if challenge.committed() {
            0
        } else {
            n * m * BYTES_PER_VALUE
        } + ENVELOPE_BYTES)
            .min(call.bounds.max_answer_bytes),
    };
    let reply = match call.client.challenge(call.to, &request, budget).await {
        Ok(r) => r,
        Err(e) => return out.failed_call(&e),
    };
    (call.observe)("challenge", reply.elapsed);
    out.answered(reply.elapsed, &reply.body);
    let mut hasher = blake3::Hasher::new();
    hasher.update(&reply.bytes);
    out.answer_hash = Some(hasher.finalize().to_hex().to_string());
    let answer = match reply.body.answer {
        TaskAnswer::Matmul(a) => a,
        other => {
            let detail = format!("a matmul challenge got a {} answer", other.class());
            return out.failed(Reason::Malformed, detail);
        }
    };

    // Round 2: openings chosen only now.
    let rows = setup.choose_openings(seed);
    let open = OpenRequest {
        id: call.id.to_owned(),
        open: TaskOpenRequest::Matmul(rows.clone()),
    };
    let budget = Budget {
        timeout: call.bounds.open_timeout,
        // k rows of n values, and for a batch each row's sketch leaf and Merkle path.
        cap: (k * n * BYTES_PER_VALUE
            + if challenge.committed() {
                k * (LEAF_ROWS as usize * m * BYTES_PER_VALUE + MAX_PATH * BYTES_PER_HASH)
            } else {
                0
            }
            + ENVELOPE_BYTES)
            .min(call.bounds.max_answer_bytes),
    };
    let reply = match call.client.open(call.to, &open, budget).await {
        Ok(r) => r,
        Err(e) => return out.failed_call(&e),
    };
    (call.observe)("open", reply.elapsed);
    hasher.update(&reply.bytes);
    out.answer_hash = Some(hasher.finalize().to_hex().to_string());
    let TaskOpenings::Matmul(openings) = reply.body.openings;
    let setup = setup.clone();
    out.pending(move || -> Verdict { setup.verify(&challenge, &answer, &rows, &openings) })
}
