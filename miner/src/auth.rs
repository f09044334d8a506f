//! The request-authentication layer in front of every signed route.
//!
//! In order, for each `POST`: bound the body (413) and read it with a timeout; authenticate it with
//! [`chain::auth::Verifier`] (`btauth/1` or Epistula V2; 401, or 403 for a request signed for another
//! miner); authorize the hotkey against the [`ValidatorSet`](crate::validators::ValidatorSet) (403),
//! before the verifier writes the replay cache, so refused senders never fill it; apply the
//! per-validator rate and concurrency limits (429 with `Retry-After`); run the handler with a
//! [`Caller`] extension; sign a receipt over the request and the response body
//! ([`chain::auth::Receipt`]) and put it in the response headers. Every outcome is counted in
//! `miner_requests_total{route, outcome}`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chain::auth::{AuthError, Receipt, Refused, Verified, btauth, epistula};
use chain::keys::AccountId;
use http_body_util::{BodyExt, LengthLimitError, Limited};

use crate::error::{ApiError, Outcome};
use crate::server::AppState;

/// Longest a client may take to send a request body.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

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

/// The middleware (use with `axum::middleware::from_fn_with_state`).
pub async fn authenticate(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let route = request.uri().path().to_owned();
    let response = match admit(&state, request).await {
        Ok((request, verified, _permit)) => {
            let response = next.run(request).await;
            // The permit (concurrency slot) is held until the handler has finished.
            sign_response(&state, &verified, response).await
        }
        Err((error, verified)) => {
            let response = error.into_response();
            match verified {
                Some(verified) => sign_response(&state, &verified, response).await,
                None => response,
            }
        }
    };
    let outcome = response.extensions().get::<Outcome>().map_or("ok", |o| o.0);
    state.metrics.count_request(&route, outcome);
    response
}

type Admitted = (Request, Verified, crate::limits::Permit);

async fn admit(state: &AppState, request: Request) -> Result<Admitted, (ApiError, Option<Verified>)> {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let limit = if request.uri().path() == bench_tasks::wire::PING_PATH {
        state.limits.max_ping_bytes
    } else {
        state.limits.max_body_bytes
    };
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err((ApiError::body_too_large(limit), None));
    }
    let (mut parts, body) = request.into_parts();
    let body = match tokio::time::timeout(BODY_READ_TIMEOUT, Limited::new(body, limit).collect()).await {
        Err(_) => {
            return Err((
                ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "body_timeout",
                    "the request body did not arrive in time; send it in one go",
                ),
                None,
            ));
        }
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return Err((ApiError::body_too_large(limit), None));
        }
        Ok(Err(_)) => {
            return Err((
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "body_read_failed",
                    "the request body could not be read",
                ),
                None,
            ));
        }
        Ok(Ok(collected)) => collected.to_bytes(),
    };

    if !parts.headers.contains_key(btauth::H_VERSION) && !parts.headers.contains_key(epistula::H_VERSION) {
        return Err((
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unsigned",
                "the request is not signed; sign it with the validator hotkey (btauth/1 or Epistula V2)",
            ),
            None,
        ));
    }
    let target = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path(), |pq| pq.as_str());
    // Authorization runs before the replay cache is written: a sender this miner refuses (unknown key,
    // no permit, low stake) never takes a place in it.
    let (verified, stake_rao) = state
        .verifier
        .verify_authorized(parts.method.as_str(), target, &parts.headers, &body, |v| {
            state.validators.authorize(&v.hotkey, peer)
        })
        .map_err(|refused| match refused {
            Refused::Auth(e) => (auth_error(&e), None),
            Refused::Unauthorized { verified, error } => (
                ApiError::new(StatusCode::FORBIDDEN, error.code(), error.to_string()),
                Some(verified),
            ),
        })?;
    let permit = match state.limiter.admit(&verified.hotkey.to_ss58()) {
        Ok(permit) => permit,
        Err(e) => {
            let error = ApiError::too_many(e.code(), e.to_string(), e.retry_after());
            return Err((error, Some(verified)));
        }
    };
    parts.extensions.insert(Caller {
        hotkey: verified.hotkey,
        stake_rao,
        body,
        request_id: verified.request_id.clone(),
    });
    Ok((Request::from_parts(parts, Body::empty()), verified, permit))
}

async fn sign_response(state: &AppState, verified: &Verified, response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    // The body is this server's own answer (bounded by the task's limits), so reading it whole is safe.
    let bytes = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return ApiError::internal("the answer could not be assembled; retry").into_response();
        }
    };
    let receipt = Receipt::sign(&state.keypair, verified, parts.status.as_u16(), &bytes);
    receipt.write_headers(&mut parts.headers);
    Response::from_parts(parts, Body::from(bytes))
}
