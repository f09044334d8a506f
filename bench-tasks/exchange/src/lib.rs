//! The validator↔miner exchange, written once: the validator's rounds, `miner doctor` and the
//! benchmarks all call it.
//!
//! - [`client`]: the one typed, pooled, signed client ([`Client`], and [`MinerClient`] bound to one
//!   miner) over [`chain::auth::signed_http`] and the wire types of [`bench_tasks::wire`]; every answer
//!   must carry the miner's receipt and echo the challenge id.
//! - [`generate`]: organic generation (`POST /v1/generate`), streamed or not, with the miner's generation
//!   receipt checked against the exact request bytes and every token received.
//! - [`matmul`], [`inference`]: each task's exchange (challenge, openings when the task has them) up to
//!   the verification, which the caller runs where CPU work belongs (a blocking pool).
//!
//! Its own crate (nested under `bench-tasks/`, whose wire format it speaks) because it needs both
//! `bench-tasks` and `chain`, and neither of those should depend on the other.

use std::time::Duration;

use bench_tasks::wire::ChallengeResponse;
use bench_tasks::{Reason, Verdict};

pub mod client;
pub mod generate;
pub mod inference;
pub mod matmul;

pub use client::{Budget, CallError, Client, MinerClient, MinerEndpoint, Signed, Target, verdict_reason};

/// Where a step's latency goes: `(step, elapsed)`, with steps `challenge`, `open` and
/// `inference_challenge`.
pub type Observe<'a> = &'a (dyn Fn(&'static str, Duration) + Send + Sync);

/// The bounds of one task exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Timeout of the challenge (round 1).
    pub challenge_timeout: Duration,
    /// Timeout of the openings (round 2).
    pub open_timeout: Duration,
    /// Largest answer body accepted (answers are also capped by what the challenge can need).
    pub max_answer_bytes: usize,
}

/// One task exchange with one miner: who, under which challenge id, within which bounds.
#[derive(Clone, Copy)]
pub struct Call<'a> {
    /// The client.
    pub client: &'a Client,
    /// The miner.
    pub to: &'a Target,
    /// The challenge id (unique per validator while the miner holds it).
    pub id: &'a str,
    /// Timeouts and caps.
    pub bounds: &'a Bounds,
    /// Step latencies.
    pub observe: Observe<'a>,
}

impl std::fmt::Debug for Call<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call")
            .field("to", self.to)
            .field("id", &self.id)
            .field("bounds", self.bounds)
            .finish_non_exhaustive()
    }
}

/// The verification still to run on an answer (CPU work: run it on a blocking pool).
pub type Pending = Box<dyn FnOnce() -> Verdict + Send>;

/// What a task exchange produced.
pub struct Exchanged {
    /// The work the challenge represents (the verdict's `work_units`).
    pub work: f64,
    /// Wall time of the round-1 answer, from sending the challenge to its last byte.
    pub answer_elapsed: Option<Duration>,
    /// The miner's self-reported queue and compute seconds (informational, never scored).
    pub reported: Option<(f64, f64)>,
    /// The device the miner says computed the round-1 answer ([`ChallengeResponse::device`]; informational,
    /// never scored).
    pub device: Option<u32>,
    /// blake3 of the answer bytes (round 1, then round 2 when there is one).
    pub answer_hash: Option<String>,
    /// The verification to run, or the verdict already reached (a failed call, a wrong answer type).
    pub result: Result<Pending, Verdict>,
}

impl std::fmt::Debug for Exchanged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exchanged")
            .field("work", &self.work)
            .field("answer_elapsed", &self.answer_elapsed)
            .field("reported", &self.reported)
            .field("device", &self.device)
            .field("answer_hash", &self.answer_hash)
            .field("result", &self.result.as_ref().map(|_| "pending"))
            .finish()
    }
}

impl Exchanged {
    fn not_run(work: f64) -> Self {
        Self {
            work,
            answer_elapsed: None,
            reported: None,
            device: None,
            answer_hash: None,
            result: Err(Verdict::fail(Reason::Malformed, "not run", work)),
        }
    }

    fn answered(&mut self, elapsed: Duration, answer: &ChallengeResponse) {
        self.answer_elapsed = Some(elapsed);
        self.reported = Some((answer.queue_seconds, answer.compute_seconds));
        self.device = answer.device;
    }

    fn failed_call(self, e: &CallError) -> Self {
        self.failed(verdict_reason(e), e.to_string())
    }

    fn failed(mut self, reason: Reason, detail: String) -> Self {
        self.result = Err(Verdict::fail(reason, detail, self.work));
        self
    }

    fn pending(mut self, verify: impl FnOnce() -> Verdict + Send + 'static) -> Self {
        self.result = Ok(Box::new(verify));
        self
    }

    /// The verdict, running any pending verification on this thread (fine for one-off checks; a
    /// validator runs [`Exchanged::result`]'s closure on its blocking pool instead).
    pub fn verdict_here(self) -> Verdict {
        match self.result {
            Ok(verify) => verify(),
            Err(v) => v,
        }
    }
}
