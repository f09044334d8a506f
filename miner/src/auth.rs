//! The signed routes' request path, as layers around plain handlers. Outermost first:
//!
//! 1. [`count`]: every outcome is counted in `miner_requests_total{route, outcome}`.
//! 2. [`read_body`]: the body is bounded (413, on `Content-Length` and while reading) and must arrive
//!    within [`BODY_READ_TIMEOUT`] (408); it is buffered, as received, for the signature check.
//! 3. [`authenticate`]: [`chain::auth::Verifier`] checks `btauth/1` or Epistula V2 (401, or 403 for a
//!    request signed for another miner) and asks the [`ValidatorSet`] about the sender (403) *before*
//!    the replay cache is written, so refused senders never fill it; the handler gets a [`Caller`]; the
//!    answer (the inner layers' refusals included) carries a receipt signed over the request and the
//!    response body ([`chain::auth::Receipt`]).
//! 4. [`limit`]: the per-validator rate and concurrency limits (429 with `Retry-After`); the
//!    concurrency slot is held until the handler has finished.
//! 5. [`deadline`]: a request still running after the request timeout is answered 503 `timeout`.
//!
//! The layers share a [`Gate`] and depend on nothing in [`crate::server`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chain::auth::{AuthError, Receipt, Refused, Verified, Verifier, btauth, epistula};
use chain::keys::{AccountId, Keypair};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use crate::error::{ApiError, Outcome};
use crate::limits::Limiter;
use crate::metrics::Metrics;
use crate::validators::ValidatorSet;

/// Longest a client may take to send a request body.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// What the signed routes' layers share: who this miner is, who may call it, and the limits.
#[derive(Debug)]
pub struct Gate {
    /// The miner's hotkey: the receiver requests are bound to, and the signer of receipts.
    pub(crate) keypair: Keypair,
    pub(crate) verifier: Verifier,
    pub(crate) validators: ValidatorSet,
    pub(crate) limiter: Limiter,
    pub(crate) metrics: Metrics,
    pub(crate) max_body_bytes: usize,
    pub(crate) max_ping_bytes: usize,
    pub(crate) request_timeout: Duration,
}

impl Gate {
    /// A gate for `keypair`'s miner.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        keypair: Keypair,
        verifier: Verifier,
        validators: ValidatorSet,
        limiter: Limiter,
        metrics: Metrics,
        max_body_bytes: usize,
        max_ping_bytes: usize,
        request_timeout: Duration,
    ) -> Self {
        Self {
            keypair,
            verifier,
            validators,
            limiter,
            metrics,
            max_body_bytes,
            max_ping_bytes,
            request_timeout,
        }
    }

    /// The validator set (replace it on each metagraph refresh).
    pub const fn validators(&self) -> &ValidatorSet {
        &self.validators
    }

    /// The miner's hotkey.
    pub fn hotkey(&self) -> AccountId {
        self.keypair.account()
    }
}

/// The authenticated, authorized sender of a request, with the body it signed.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The validator's hotkey.
    pub hotkey: AccountId,
    /// Its stake in rao (orders the work queue).
    pub stake_rao: u64,
    /// The request body, exactly as received and signed.
    pub body: Bytes,
    /// The request id the receipt binds to.
    pub request_id: String,
}

/// The body as received, put in the request by [`read_body`].
#[derive(Debug, Clone)]
struct Received(Bytes);

/// The stable reason code of an authentication failure.
pub fn auth_reason(error: &AuthError) -> &'static str {
    match error {
        AuthError::Malformed(_) => "malformed_auth",
        AuthError::MissingReceiver(_) => "missing_receiver",
        AuthError::WrongReceiver { .. } => "wrong_receiver",
        AuthError::Stale { age_ms, .. } if *age_ms < 0 => "future",
        AuthError::Stale { .. } => "stale",
        AuthError::BadSignature(_) => "bad_signature",
        AuthError::Replayed(_) => "replayed",
        AuthError::Busy => "auth_busy",
        AuthError::SchemeDisabled => "scheme_disabled",
    }
}

fn auth_error(error: &AuthError) -> ApiError {
    let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::UNAUTHORIZED);
    let mut api = ApiError::new(status, auth_reason(error), error.to_string());
    if matches!(error, AuthError::Busy) {
        api.retry_after = Some(Duration::from_secs(1));
    }
    api
}

/// Layer 1: counts the outcome of every signed request (the [`Outcome`] extension, else `ok`).
pub async fn count(State(gate): State<Arc<Gate>>, request: Request, next: Next) -> Response {
    let route = request.uri().path().to_owned();
    let response = next.run(request).await;
    let outcome = response.extensions().get::<Outcome>().map_or("ok", |o| o.0);
    gate.metrics.count_request(&route, outcome);
    response
}

/// Layer 2: bounds and buffers the body.
pub async fn read_body(State(gate): State<Arc<Gate>>, request: Request, next: Next) -> Response {
    let limit = if request.uri().path() == bench_tasks::wire::PING_PATH {
        gate.max_ping_bytes
    } else {
        gate.max_body_bytes
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return ApiError::body_too_large(limit).into_response();
    }
    let (mut parts, body) = request.into_parts();
    let bytes = match tokio::time::timeout(BODY_READ_TIMEOUT, Limited::new(body, limit).collect()).await {
        Err(_) => {
            return ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                "the request body did not arrive in time; send it in one go",
            )
            .into_response();
        }
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return ApiError::body_too_large(limit).into_response();
        }
        Ok(Err(_)) => {
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                "body_read_failed",
                "the request body could not be read",
            )
            .into_response();
        }
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    parts.extensions.insert(Received(bytes));
    next.run(Request::from_parts(parts, Body::empty())).await
}

/// Layer 3: authenticates and authorizes the sender, then signs the answer's receipt.
pub async fn authenticate(State(gate): State<Arc<Gate>>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let Some(Received(bytes)) = parts.extensions.remove::<Received>() else {
        tracing::error!("authenticate runs without read_body outside it");
        return ApiError::internal("the request path is misconfigured").into_response();
    };
    if !parts.headers.contains_key(btauth::H_VERSION) && !parts.headers.contains_key(epistula::H_VERSION) {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unsigned",
            "the request is not signed; sign it with the validator hotkey (btauth/1 or Epistula V2)",
        )
        .into_response();
    }
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let target = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path(), |pq| pq.as_str());
    // Authorization runs before the replay cache is written: a sender this miner refuses (unknown key,
    // no permit, low stake) never takes a place in it.
    let verified =
        gate.verifier
            .verify_authorized(parts.method.as_str(), target, &parts.headers, &bytes, |v| {
                gate.validators.authorize(&v.hotkey, peer)
            });
    let (verified, stake_rao) = match verified {
        Ok(ok) => ok,
        Err(Refused::Auth(e)) => return auth_error(&e).into_response(),
        Err(Refused::Unauthorized { verified, error }) => {
            let refusal = ApiError::new(StatusCode::FORBIDDEN, error.code(), error.to_string());
            return sign_response(&gate, &verified, refusal.into_response()).await;
        }
    };
    parts.extensions.insert(Caller {
        hotkey: verified.hotkey,
        stake_rao,
        body: bytes,
        request_id: verified.request_id.clone(),
    });
    let response = next.run(Request::from_parts(parts, body)).await;
    sign_response(&gate, &verified, response).await
}

/// Layer 4: the per-validator rate and concurrency limits.
pub async fn limit(State(gate): State<Arc<Gate>>, request: Request, next: Next) -> Response {
    let Some(caller) = request.extensions().get::<Caller>() else {
        tracing::error!("limit runs without authenticate outside it");
        return ApiError::internal("the request path is misconfigured").into_response();
    };
    match gate.limiter.admit(&caller.hotkey.to_ss58()) {
        // The permit (concurrency slot) is held until the handler has finished.
        Ok(_permit) => next.run(request).await,
        Err(e) => ApiError::too_many(e.code(), e.to_string(), e.retry_after()).into_response(),
    }
}

/// Layer 5: the end-to-end request timeout.
pub async fn deadline(State(gate): State<Arc<Gate>>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(gate.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            "the job did not finish within this miner's request timeout; retry later or ask for less work",
        )
        .into_response(),
    }
}

async fn sign_response(gate: &Gate, verified: &Verified, response: Response) -> Response {
    // A streamed generation is signed by the receipt in its last line
    // (`chain::auth::generation`); its body is never buffered here.
    if response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == bench_tasks::wire::NDJSON_CONTENT_TYPE.as_bytes())
    {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    // The body is this server's own answer (bounded by the task's limits), so reading it whole is safe.
    let bytes = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return ApiError::internal("the answer could not be assembled; retry").into_response();
        }
    };
    let receipt = Receipt::sign(&gate.keypair, verified, parts.status.as_u16(), &bytes);
    receipt.write_headers(&mut parts.headers);
    Response::from_parts(parts, Body::from(bytes))
}
