//! `POST /v1/generate`: organic generation on the miner's real models, streamed or in one body, with a
//! signed receipt ([`GenerationReceipt`]).
//!
//! The request passes the signed-route layers like every POST ([`crate::auth`]), then, before anything is
//! queued: the body is parsed (`deny_unknown_fields`), the model is found by name or sha256, the input is
//! tokenized (chat messages with the model's template), and [`SequenceRequest::validate`] checks the
//! context, `max_tokens`, the sampler and the stop strings; any failure is a 4xx with a reason code.
//! Capacity is then reserved on the least busy device ([`SlotGate::reserve`]; 503 `batch_full` or
//! `kv_cache_full` when none has room), and a join job is queued at the caller's stake
//! ([`crate::serving`] for the scheduling policy).
//!
//! The stream is `application/x-ndjson`: `{"tokens":…}` lines as tokens are made, then one `{"done":…}`
//! line with the counts, timings and receipt, or one `{"error":…}` line. The engine writes into a channel
//! sized for the whole sequence, so it never waits for a reader; a client that goes away drops the
//! channel, and the engine drops the sequence (freeing its slot) before its next step.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use bench_tasks::inference::InferenceError;
use bench_tasks::inference::engine::{Busy, EventSink, Finished, SequenceEvent, SequenceRequest};
use bench_tasks::wire::{
    GenerateDone, GenerateEvent, GenerateInput, GenerateRequest, GenerateResponse, NDJSON_CONTENT_TYPE,
};
use chain::auth::generation::{Generation, GenerationReceipt};
use chain::keys::Keypair;
use tokio::sync::mpsc;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::server::AppState;
use crate::serving::ServedModel;

/// A streamed line as the miner sends it.
type Event = GenerateEvent<GenerationReceipt>;

/// The engine's side of a sequence's channel.
struct ChannelSink(mpsc::Sender<SequenceEvent>);

impl EventSink for ChannelSink {
    fn deliver(&mut self, event: SequenceEvent) -> bool {
        self.0.try_send(event).is_ok()
    }

    fn is_closed(&self) -> bool {
        self.0.is_closed()
    }
}

/// The handler.
pub(crate) async fn generate(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
) -> Response {
    let started = Instant::now();
    match admit(&state, &caller, started) {
        Ok(admitted) if admitted.stream => {
            state.metrics.count_generate("admitted");
            let body = Body::from_stream(futures_util::stream::unfold(
                Some(StreamState {
                    admitted,
                    state: Arc::clone(&state),
                    caller,
                }),
                next_line,
            ));
            (
                StatusCode::OK,
                [
                    (header::CONTENT_TYPE, NDJSON_CONTENT_TYPE),
                    (header::CACHE_CONTROL, "no-store"),
                ],
                body,
            )
                .into_response()
        }
        Ok(mut admitted) => {
            state.metrics.count_generate("admitted");
            let mut text = String::new();
            loop {
                match receive(&mut admitted, &state, &caller).await {
                    Received::Token(_, t) => text.push_str(&t),
                    Received::Done(done) => {
                        let ids = std::mem::take(&mut admitted.ids);
                        return Json(GenerateResponse { ids, text, done }).into_response();
                    }
                    Received::Failed(e) => return e.into_response(),
                }
            }
        }
        Err(e) => {
            state.metrics.count_generate(e.reason);
            e.into_response()
        }
    }
}

/// A request that passed admission, its sequence queued.
struct Admitted {
    stream: bool,
    served: Arc<ServedModel>,
    prompt_tokens: usize,
    events: mpsc::Receiver<SequenceEvent>,
    /// The join job's result; kept so the queue does not skip the job as abandoned.
    joined: Option<tokio::sync::oneshot::Receiver<Result<(), InferenceError>>>,
    first_token_timeout: Duration,
    idle_timeout: Duration,
    seen_first: bool,
    /// Every id generated so far (the receipt hashes them all).
    ids: Vec<u32>,
}

fn admit(state: &AppState, caller: &Caller, arrived: Instant) -> Result<Admitted, ApiError> {
    let request: GenerateRequest = serde_json::from_slice(&caller.body).map_err(|e| {
        ApiError::malformed(format!(
            "the body is not a generate request ({e}); see bench_tasks::wire"
        ))
    })?;
    let index = state
        .served
        .iter()
        .position(|s| s.answers_to(&request.model))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown_model",
                format!(
                    "this miner does not serve model {:?}; /info lists the models it holds",
                    request.model
                ),
            )
        })?;
    let served = Arc::clone(&state.served[index]);
    let tokenizer = &served.real.tokenizer;
    let prompt = match request.input().map_err(|e| bad("bad_input", e.to_owned()))? {
        GenerateInput::Messages(messages) => {
            if messages.is_empty() {
                return Err(bad("bad_input", "messages is empty".into()));
            }
            tokenizer
                .encode_chat(messages, true)
                .map_err(|e| bad("bad_messages", e.to_string()))?
        }
        GenerateInput::PromptTokens(ids) => ids.to_vec(),
    };
    let sequence = SequenceRequest {
        prompt,
        max_tokens: request.max_tokens,
        sampling: request.sampling(),
        stop: request.stop.clone(),
    };
    let limits = &state.limits.generate;
    sequence
        .validate(served.real.config(), &ServedModel::engine_limits(limits))
        .map_err(refused)?;
    // The least busy device with room; its reservation travels with the job.
    let mut order: Vec<usize> = (0..state.queues.len()).collect();
    order.sort_by_key(|&d| (state.gates[d][index].in_use(), d));
    let mut last_busy = None;
    let (device, reservation) = order
        .into_iter()
        .find_map(|d| match state.gates[d][index].reserve(sequence.positions()) {
            Ok(r) => Some((d, r)),
            Err(e) => {
                last_busy = Some(e);
                None
            }
        })
        .ok_or_else(|| busy(last_busy))?;
    let (tx, events) = mpsc::channel(sequence.max_tokens + 2);
    let prompt_tokens = sequence.prompt.len();
    let joined = state.queues[device]
        .submit(caller.stake_rao, move |context| {
            context
                .serving
                .join(index, sequence, reservation, Box::new(ChannelSink(tx)), arrived)
        })
        .map_err(crate::server::queue_error)?;
    Ok(Admitted {
        stream: request.stream,
        served,
        prompt_tokens,
        events,
        joined: Some(joined),
        first_token_timeout: Duration::from_secs(limits.first_token_timeout_secs),
        idle_timeout: state.limits.request_timeout(),
        seen_first: false,
        ids: Vec::new(),
    })
}

fn bad(reason: &'static str, message: String) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, reason, message)
}

fn refused(e: InferenceError) -> ApiError {
    let reason = match &e {
        InferenceError::BadChallenge {
            field: "max_tokens",
            why,
        } if why.contains("context") => "context_exceeded",
        InferenceError::BadChallenge {
            field: "max_tokens", ..
        } => "max_tokens",
        InferenceError::BadChallenge {
            field: "temperature" | "top_p",
            ..
        } => "bad_sampling",
        InferenceError::BadChallenge { field: "stop", .. } => "bad_stop",
        InferenceError::OutOfVocab { .. } => "out_of_vocab",
        _ => "bad_input",
    };
    bad(reason, e.to_string())
}

fn busy(e: Option<Busy>) -> ApiError {
    let reason = match e {
        Some(Busy::Memory { .. }) => "kv_cache_full",
        _ => "batch_full",
    };
    let message = e.map_or_else(|| "no device serves this model".to_owned(), |e| e.to_string());
    ApiError {
        retry_after: Some(Duration::from_secs(1)),
        ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, reason, message)
    }
}

/// What the next event of a sequence means for the answer.
enum Received {
    Token(u32, String),
    Done(GenerateDone<GenerationReceipt>),
    Failed(ApiError),
}

/// Waits for the next event (bounded by the first-token and idle timeouts) and turns the end into a
/// signed [`GenerateDone`].
async fn receive(admitted: &mut Admitted, state: &AppState, caller: &Caller) -> Received {
    let wait = if admitted.seen_first {
        admitted.idle_timeout
    } else {
        admitted.first_token_timeout
    };
    let event = match tokio::time::timeout(wait, admitted.events.recv()).await {
        Err(_) => {
            state.metrics.count_generate("timeout");
            return Received::Failed(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                "the device did not produce the next token in time (challenges run first); retry",
            ));
        }
        Ok(None) => {
            // The engine dropped the sequence without an end: the join job failed or was evicted.
            let why = match admitted.joined.take() {
                Some(rx) => match rx.await {
                    Ok(Err(e)) => e.to_string(),
                    Ok(Ok(())) => "the device dropped the sequence".into(),
                    Err(_) => "the join was evicted from the queue by higher-stake work".into(),
                },
                None => "the device dropped the sequence".into(),
            };
            state.metrics.count_generate("failed");
            return Received::Failed(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "device_failed",
                why,
            ));
        }
        Ok(Some(e)) => e,
    };
    match event {
        SequenceEvent::Token { id, text } => {
            if !admitted.seen_first {
                admitted.seen_first = true;
                // The join ran; its result is in the events from here on.
                admitted.joined = None;
            }
            admitted.ids.push(id);
            state.metrics.generated_tokens.inc();
            Received::Token(id, text)
        }
        SequenceEvent::Finished(f) => match done(&state.gate.keypair, caller, admitted, f) {
            Ok(d) => {
                state.metrics.count_generate(d.finish_reason.as_str());
                state.metrics.observe_ttft(d.ttft_seconds);
                Received::Done(d)
            }
            Err(e) => Received::Failed(e),
        },
        SequenceEvent::Failed(why) => {
            state.metrics.count_generate("failed");
            tracing::error!(%why, "generation failed on the device");
            Received::Failed(ApiError::internal(
                "the miner's device failed on this request; the operator should run `miner doctor`",
            ))
        }
    }
}

fn done(
    keypair: &Keypair,
    caller: &Caller,
    admitted: &Admitted,
    f: Finished,
) -> Result<GenerateDone<GenerationReceipt>, ApiError> {
    let receipt = GenerationReceipt::sign(
        keypair,
        &Generation {
            requester: &caller.hotkey,
            request_id: &caller.request_id,
            request_body: &caller.body,
            model_sha256: &admitted.served.info.sha256,
            prompt_tokens: admitted.prompt_tokens,
            tokens: &admitted.ids,
            finish_reason: f.reason.as_str(),
        },
    )
    .map_err(|e| ApiError::internal(format!("the receipt could not be signed: {e}")))?;
    Ok(GenerateDone {
        finish_reason: f.reason,
        prompt_tokens: f.prompt_tokens,
        completion_tokens: f.completion_tokens,
        ttft_seconds: f.ttft.as_secs_f64(),
        total_seconds: f.total.as_secs_f64(),
        receipt,
    })
}

/// The streamed body's state: `None` once the last line is out.
struct StreamState {
    admitted: Admitted,
    state: Arc<AppState>,
    caller: Caller,
}

/// The next NDJSON line of a streamed answer.
async fn next_line(
    s: Option<StreamState>,
) -> Option<(Result<Bytes, std::convert::Infallible>, Option<StreamState>)> {
    let mut s = s?;
    let (event, go_on) = match receive(&mut s.admitted, &s.state, &s.caller).await {
        Received::Token(id, text) => (Event::Tokens { ids: vec![id], text }, true),
        Received::Done(d) => (Event::Done(d), false),
        Received::Failed(e) => (Event::Error(e.body()), false),
    };
    let mut line = serde_json::to_vec(&event).unwrap_or_else(|_| {
        br#"{"error":{"error":"the event could not be encoded","reason":"internal"}}"#.to_vec()
    });
    line.push(b'\n');
    Some((Ok(Bytes::from(line)), go_on.then_some(s)))
}
