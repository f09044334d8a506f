//! Task dispatch: the one place that knows which task classes exist.
//!
//! Each task class is one arm in [`admit`], [`compute`] and [`open`] (and one variant of
//! [`TaskState`]); the work itself is the task module's own code in `bench-tasks`. [`admit`] runs on the
//! async side and must not allocate from the request's sizes; [`compute`] and [`open`] run on the
//! device's worker thread.

use std::time::Instant;

use axum::http::StatusCode;
use bench_tasks::backend::BackendKind;
use bench_tasks::matmul::{ChallengeError, MatmulChallenge, MinerError, OpenState};
use bench_tasks::wire::{TaskAnswer, TaskChallenge, TaskClass, TaskOpenRequest, TaskOpenings};
use burn::tensor::Device;

use crate::behavior::Behavior;
use crate::config::Limits;
use crate::error::ApiError;

/// What a device's worker thread owns.
#[derive(Debug)]
pub struct DeviceContext {
    /// The burn device the work runs on.
    pub device: Device,
    /// Its backend.
    pub backend: BackendKind,
    /// How this miner answers (honest unless built with the `adversary` feature and asked otherwise).
    pub behavior: Behavior,
}

/// Round-1 state kept for a task's opening round.
#[derive(Debug)]
#[non_exhaustive]
pub enum TaskState {
    /// The matmul product (or what stands in for it).
    Matmul(OpenState),
}

/// A challenge that passed admission.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Admission {
    /// Its class.
    pub class: TaskClass,
    /// Bytes of round-1 state it will keep until opened.
    pub state_bytes: u64,
}

/// A finished round 1.
#[derive(Debug)]
pub struct Computed {
    /// The answer to send.
    pub answer: TaskAnswer,
    /// The state to keep.
    pub state: TaskState,
    /// Seconds of device work.
    pub seconds: f64,
}

/// Checks a challenge against the limits and returns what it will hold, before anything is allocated.
pub fn admit(challenge: &TaskChallenge, limits: &Limits) -> Result<Admission, ApiError> {
    match challenge {
        TaskChallenge::Matmul(c) => {
            c.validate(&limits.matmul).map_err(challenge_error)?;
            Ok(Admission { class: TaskClass::Matmul, state_bytes: matmul_state_bytes(c) })
        }
    }
}

/// Bytes a matmul challenge keeps for its openings: the `n × n` f32 product.
pub fn matmul_state_bytes(challenge: &MatmulChallenge) -> u64 {
    let n = u64::from(challenge.n);
    n * n * 4
}

/// Runs round 1 on the device (worker thread only).
pub fn compute(context: &mut DeviceContext, challenge: &TaskChallenge, limits: &Limits) -> Result<Computed, ApiError> {
    let started = Instant::now();
    let (answer, state) = match challenge {
        TaskChallenge::Matmul(c) => {
            let (answer, state) = context.behavior.matmul(c, &context.device, &limits.matmul).map_err(miner_error)?;
            (TaskAnswer::Matmul(answer), TaskState::Matmul(state))
        }
    };
    let delay = context.behavior.extra_delay();
    if !delay.is_zero() {
        std::thread::sleep(delay);
    }
    Ok(Computed { answer, state, seconds: started.elapsed().as_secs_f64() })
}

/// Answers an opening request from kept state (worker thread only).
pub fn open(state: &TaskState, request: &TaskOpenRequest) -> Result<TaskOpenings, ApiError> {
    match (state, request) {
        (TaskState::Matmul(s), TaskOpenRequest::Matmul(r)) => {
            s.open(r).map(TaskOpenings::Matmul).map_err(miner_error)
        }
    }
}

fn challenge_error(e: ChallengeError) -> ApiError {
    let reason = match e {
        ChallengeError::TooLarge { .. } => "challenge_too_large",
        _ => "bad_challenge",
    };
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, reason, e.to_string())
}

fn miner_error(e: MinerError) -> ApiError {
    match e {
        MinerError::Refused(e) => challenge_error(e),
        other => {
            tracing::error!(error = %other, "device work failed");
            ApiError::internal("the miner's device failed on this request; the operator should run `miner doctor`")
        }
    }
}
