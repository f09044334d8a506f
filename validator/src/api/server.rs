//! The API server: `POST /v1/chat/completions`, `POST /v1/completions`, `GET /v1/models`, `GET /chat`,
//! `GET /health`.
//!
//! One request: the bearer key is checked (401), its rate limit and quota (429, that key only), the body
//! parsed (400), the model resolved among the directory's miners (404 `model_not_found`), the sampler
//! seed chosen when the client gave none; then miners are tried, chosen at random by score and free slots,
//! until one sends its first event, each within what is left of the first-token deadline (503 when none
//! can). From the first token on, a task of its own drives the miner's stream to the client (SSE or one
//! JSON answer), so the usage row is written however the answer ends: complete (receipt checked),
//! partial (the client left: the miner's stream is dropped, which cancels its work), or failed (the miner
//! died or stalled: the client gets an error event, never a hang). A sample of complete answers goes to
//! the verification queue after the client has its answer.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use bench_tasks::inference::Sampling;
use bench_tasks::wire::{FinishReason, GenerateRequest, ModelInfo};
use chain::auth::signed_http::HttpError;
use exchange::Client;
use exchange::generate::{GenerateError, GenerationStream, StreamBounds, StreamEvent};
use tokio::sync::{mpsc, oneshot};

use super::ApiConfig;
use super::metrics::ApiMetrics;
use super::openai::{
    self, AnswerMessage, ApiError, Asked, ChatChoice, ChatCompletion, ChatCompletionChunk,
    ChatCompletionRequest, ChunkChoice, Completion, CompletionChoice, CompletionRequest, Delta, Input, Model,
    ModelList, SSE_DONE, Served, Usage,
};
use super::route::{Candidate, Directory, NoMiner};
use super::stats::OrganicStats;
use super::store::{ApiKey, ApiStore, Outcome, UsageRow, now_ms};
use super::verify::{HeldModel, Job, VerifyQueue, is_cheat};
use crate::organic::OrganicInbox;

/// How long a looked-up key is trusted before the database is asked again (so a revocation by
/// `validator api-key revoke`, another process, takes effect within this).
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(2);

/// The chat page.
const CHAT_HTML: &str = include_str!("chat.html");

/// Everything a request needs. Cheap to clone.
#[derive(Clone)]
pub struct Api {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api").finish_non_exhaustive()
    }
}

struct Shared {
    config: ApiConfig,
    client: Client,
    directory: Directory,
    store: Arc<Mutex<ApiStore>>,
    keys: Mutex<HashMap<String, (Option<ApiKey>, Instant)>>,
    buckets: Mutex<HashMap<i64, Bucket>>,
    held: Option<Arc<HeldModel>>,
    verify: Option<VerifyQueue>,
    metrics: ApiMetrics,
    stats: OrganicStats,
    /// Per key with a quota: completion tokens reserved by its requests in flight.
    reserved: Mutex<HashMap<i64, u64>>,
}

/// Completion tokens a request holds against its key's quota; released when the request ends (after its
/// usage is counted).
struct QuotaHold {
    shared: Arc<Shared>,
    key_id: i64,
    tokens: u64,
}

impl Drop for QuotaHold {
    fn drop(&mut self) {
        let mut reserved = lock(&self.shared.reserved);
        if let Some(n) = reserved.get_mut(&self.key_id) {
            *n = n.saturating_sub(self.tokens);
            if *n == 0 {
                reserved.remove(&self.key_id);
            }
        }
    }
}

/// A token bucket: `rate_per_min` requests a minute, bursts of up to a tenth of that (at least 1).
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

fn take(bucket: &mut Bucket, rate_per_min: f64, now: Instant) -> bool {
    let burst = (rate_per_min / 10.0).max(1.0);
    let refill = now.duration_since(bucket.at).as_secs_f64() * rate_per_min / 60.0;
    bucket.tokens = (bucket.tokens + refill).min(burst);
    bucket.at = now;
    if bucket.tokens >= 1.0 {
        bucket.tokens -= 1.0;
        true
    } else {
        false
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Api {
    /// The API over `store`, routing among `directory`'s miners with `client`; `held` is the model the
    /// validator holds (verification, text prompts), if any. Every organic verdict goes to `organic`,
    /// which the round loop drains and scores ([`crate::round::Validator::with_organic_inbox`]).
    pub fn new(
        config: ApiConfig,
        client: Client,
        directory: Directory,
        store: ApiStore,
        held: Option<Arc<HeldModel>>,
        metrics: ApiMetrics,
        organic: OrganicInbox,
    ) -> Self {
        let store = Arc::new(Mutex::new(store));
        let stats = OrganicStats::new(metrics.clone(), config.gpu_dollars_per_hour);
        let verify = held.as_ref().map(|model| {
            let store = store.clone();
            let directory = directory.clone();
            let stats = stats.clone();
            VerifyQueue::start(
                model.clone(),
                config.verify_queue,
                Arc::new(move |job: &Job, v: &bench_tasks::Verdict| {
                    let state = if v.passed { "passed" } else { "failed" };
                    let detail = format!("{}: {}", v.reason, v.detail);
                    if let Err(e) = lock(&store).set_verification(job.usage_id, state, &detail) {
                        tracing::error!("recording an organic verdict failed: {e}");
                    }
                    stats.checked(job.miner_uid, v.reason.code(), v.passed);
                    organic.push(job.outcome(v, crate::round::unix_ms()));
                    if v.passed {
                        directory.passed_check(job.miner_uid);
                    }
                    if is_cheat(v) {
                        tracing::warn!(uid = job.miner_uid, reason = %v.reason, "organic verification failed: {}", v.detail);
                        directory.bench(job.miner_uid, &job.miner_hotkey);
                    }
                }),
            )
        });
        Self {
            shared: Arc::new(Shared {
                config,
                client,
                directory,
                store,
                keys: Mutex::new(HashMap::new()),
                buckets: Mutex::new(HashMap::new()),
                held,
                verify,
                metrics,
                stats,
                reserved: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Reserves up to `want` completion tokens against `key`'s quota: what its counted use and its
    /// requests in flight leave. A request is capped to that (its answer then ends with `length`), so
    /// concurrent requests cannot overrun a quota by more than their prompts.
    ///
    /// # Errors
    /// 429 `insufficient_quota` when nothing is left.
    fn reserve_quota(&self, key: &ApiKey, want: usize) -> Result<(usize, Option<QuotaHold>), ApiError> {
        let Some(quota) = key.token_quota else {
            return Ok((want, None));
        };
        let mut reserved = lock(&self.shared.reserved);
        let held = reserved.get(&key.id).copied().unwrap_or(0);
        let left = quota.saturating_sub(key.tokens_used).saturating_sub(held);
        if left == 0 {
            return Err(ApiError::rate_limited(
                "insufficient_quota",
                format!(
                    "this key used its quota of {quota} tokens (counting {held} reserved by requests in flight)"
                ),
            ));
        }
        let grant = (want as u64).min(left);
        *reserved.entry(key.id).or_insert(0) += grant;
        let hold = QuotaHold {
            shared: self.shared.clone(),
            key_id: key.id,
            tokens: grant,
        };
        Ok((grant as usize, Some(hold)))
    }

    /// Adds `tokens` to the cached use of key `key_id`, as `record_usage` just did in the store, so the
    /// next request's quota check sees it without waiting for the cache to expire.
    fn count_cached(&self, key_id: i64, tokens: u64) {
        for (key, _) in lock(&self.shared.keys).values_mut() {
            if let Some(k) = key.as_mut().filter(|k| k.id == key_id) {
                k.tokens_used += tokens;
            }
        }
    }

    /// The running figures (status page, metrics).
    pub fn stats(&self) -> &OrganicStats {
        &self.shared.stats
    }

    /// The miner directory.
    pub fn directory(&self) -> &Directory {
        &self.shared.directory
    }

    /// The router.
    pub fn router(&self) -> Router {
        Router::new()
            .route(openai::CHAT_COMPLETIONS_PATH, post(chat_handler))
            .route(openai::COMPLETIONS_PATH, post(completions_handler))
            .route(openai::MODELS_PATH, get(models_handler))
            .route("/chat", get(|| async { Html(CHAT_HTML) }))
            .route("/health", get(|| async { "ok" }))
            .fallback(|uri: axum::http::Uri| async move { error_response(&ApiError::not_found(uri.path())) })
            .layer(DefaultBodyLimit::max(self.shared.config.max_body_bytes))
            .with_state(self.clone())
    }

    /// Binds `addr` and serves until the task is dropped; returns the bound address.
    pub async fn serve(
        &self,
        addr: SocketAddr,
    ) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let app = self.router();
        let handle = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!("API server stopped: {e}");
            }
        });
        Ok((local, handle))
    }

    /// Checks the bearer key, its rate limit and its quota.
    async fn authorize(&self, headers: &HeaderMap) -> Result<ApiKey, ApiError> {
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                ApiError::unauthorized(
                    "no API key: send `Authorization: Bearer <key>` (validator api-key create)",
                )
            })?;
        if bearer.len() > 256 {
            return Err(ApiError::unauthorized("invalid API key"));
        }
        let hash = super::store::key_hash(bearer);
        let cached = lock(&self.shared.keys)
            .get(&hash)
            .filter(|(_, at)| at.elapsed() < KEY_CACHE_TTL)
            .map(|(k, _)| k.clone());
        let key = match cached {
            Some(k) => k,
            None => {
                let store = self.shared.store.clone();
                let secret = bearer.to_owned();
                let found = tokio::task::spawn_blocking(move || lock(&store).key_by_secret(&secret))
                    .await
                    .map_err(|e| ApiError::internal(e.to_string()))?
                    .map_err(|e| ApiError::internal(e.to_string()))?;
                let mut keys = lock(&self.shared.keys);
                if keys.len() > 10_000 {
                    keys.clear();
                }
                keys.insert(hash, (found.clone(), Instant::now()));
                found
            }
        };
        let key = key.ok_or_else(|| ApiError::unauthorized("invalid API key"))?;
        if key.revoked_ms.is_some() {
            return Err(ApiError::unauthorized("this API key was revoked"));
        }
        if let Some(rate) = key.rate_per_min {
            let now = Instant::now();
            let mut buckets = lock(&self.shared.buckets);
            let bucket = buckets.entry(key.id).or_insert_with(|| Bucket {
                tokens: (rate / 10.0).max(1.0),
                at: now,
            });
            if !take(bucket, rate, now) {
                return Err(ApiError::rate_limited(
                    "rate_limit_exceeded",
                    format!("this key is limited to {rate} requests a minute; retry shortly"),
                ));
            }
        }
        if let Some(quota) = key.token_quota
            && key.tokens_used >= quota
        {
            return Err(ApiError::rate_limited(
                "insufficient_quota",
                format!("this key used its quota of {quota} tokens"),
            ));
        }
        Ok(key)
    }

    fn fail(&self, e: &ApiError) -> Response {
        self.shared.stats.refused(e.code());
        error_response(e)
    }
}

/// Builds the API for a validator: opens `api.sqlite` in `state_dir`, loads the model `config.model`
/// names (for verification and text prompts; a failure is logged and both are off), and refreshes the
/// miner directory from `network`'s miners and `dashboard`'s verdicts every `config.refresh_secs`.
///
/// # Errors
/// The store cannot be opened.
pub async fn start<N: crate::network::Network>(
    config: &ApiConfig,
    state_dir: &std::path::Path,
    network: Arc<N>,
    client: &Client,
    metrics: &crate::metrics::Metrics,
    dashboard: &crate::dashboard::Dashboard,
    organic: OrganicInbox,
) -> Result<Api, crate::state::StateError> {
    let store = ApiStore::open_dir(state_dir)?;
    let held = match config.model.clone() {
        Some(spec) => match tokio::task::spawn_blocking(move || HeldModel::load(&spec)).await {
            Ok(Ok(m)) => {
                tracing::info!(model = %m.name, sha256 = %m.sha256, "the API verifies answers with this model");
                Some(Arc::new(m))
            }
            Ok(Err(e)) => {
                tracing::warn!(
                    "the API's model could not be loaded ({e}): no verification, no /v1/completions"
                );
                None
            }
            Err(e) => {
                tracing::warn!("loading the API's model failed: {e}");
                None
            }
        },
        None => None,
    };
    let directory = Directory::new();
    let api = Api::new(
        config.clone(),
        client.clone(),
        directory.clone(),
        store,
        held,
        metrics.api.clone(),
        organic,
    );
    dashboard.show_organic(api.stats().clone());
    let (client, dashboard, every) = (client.clone(), dashboard.clone(), config.refresh());
    tokio::spawn(async move {
        loop {
            match tokio::time::timeout(Duration::from_secs(30), network.view()).await {
                Ok(Ok(view)) => {
                    directory
                        .refresh(&client, &view.miners, &dashboard, Duration::from_secs(5))
                        .await;
                }
                Ok(Err(e)) => tracing::warn!("API directory refresh: {e}"),
                Err(_) => tracing::warn!("API directory refresh: reading the chain timed out"),
            }
            tokio::time::sleep(every).await;
        }
    });
    Ok(api)
}

/// An [`ApiError`] as an HTTP response.
pub fn error_response(e: &ApiError) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_string(&e.body).unwrap_or_default(),
    )
        .into_response()
}

fn body_error(e: &axum::extract::rejection::BytesRejection) -> ApiError {
    let mut err = ApiError::invalid(None, format!("the request body could not be read: {e}"));
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        err.status = 413;
    }
    err
}

async fn models_handler(State(api): State<Api>, headers: HeaderMap) -> Response {
    if let Err(e) = api.authorize(&headers).await {
        return api.fail(&e);
    }
    let list = ModelList {
        object: "list".into(),
        data: api
            .shared
            .directory
            .models()
            .into_iter()
            .map(|id| Model {
                id,
                object: "model".into(),
                created: 0,
                owned_by: "tensorproof".into(),
            })
            .collect(),
    };
    axum::Json(list).into_response()
}

async fn chat_handler(
    State(api): State<Api>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let arrived = Instant::now();
    let key = match api.authorize(&headers).await {
        Ok(k) => k,
        Err(e) => return api.fail(&e),
    };
    let asked = body
        .map_err(|e| body_error(&e))
        .and_then(|b| openai::parse::<ChatCompletionRequest>(&b))
        .and_then(ChatCompletionRequest::asked);
    match asked {
        Ok(asked) => api.serve_request(key, Route::Chat, asked, arrived).await,
        Err(e) => api.fail(&e),
    }
}

async fn completions_handler(
    State(api): State<Api>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let arrived = Instant::now();
    let key = match api.authorize(&headers).await {
        Ok(k) => k,
        Err(e) => return api.fail(&e),
    };
    let asked = body
        .map_err(|e| body_error(&e))
        .and_then(|b| openai::parse::<CompletionRequest>(&b))
        .and_then(CompletionRequest::asked);
    match asked {
        Ok(asked) => api.serve_request(key, Route::Completions, asked, arrived).await,
        Err(e) => api.fail(&e),
    }
}

/// Which OpenAI route a request came by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Chat,
    Completions,
}

impl Route {
    const fn name(self) -> &'static str {
        match self {
            Self::Chat => "chat",
            Self::Completions => "completions",
        }
    }
}

/// A request on its way: who asked, what, and the answer's ids.
struct Ticket {
    key_id: i64,
    route: Route,
    asked: Asked,
    seed: u64,
    max_tokens: usize,
    _quota: Option<QuotaHold>,
    arrived: Instant,
    created_ms: u64,
    id: String,
    created: u64,
}

/// A miner that sent its first event.
struct Committed {
    candidate: Candidate,
    model: ModelInfo,
    stream: GenerationStream,
    first: StreamEvent,
    _slot: super::route::Slot,
    failovers: Vec<String>,
}

fn unix_secs() -> u64 {
    now_ms() / 1000
}

impl Api {
    async fn serve_request(&self, key: ApiKey, route: Route, asked: Asked, arrived: Instant) -> Response {
        let dir = &self.shared.directory;
        let Some(cap) = dir.max_tokens(&asked.model) else {
            let e = if dir.models().is_empty() {
                ApiError::unavailable("no miner is serving now; retry later")
            } else {
                ApiError::model_not_found(&asked.model)
            };
            return self.fail(&e);
        };
        let max_tokens = match asked.max_tokens {
            Some(n) if n > cap as u64 => {
                let e = ApiError::invalid_code(
                    Some("max_tokens"),
                    "max_tokens_too_large",
                    format!(
                        "max_tokens is {n}; miners serving {} accept at most {cap}",
                        asked.model
                    ),
                );
                return self.fail(&e);
            }
            Some(n) => n as usize,
            None => (self.shared.config.default_max_tokens as usize).min(cap).max(1),
        };
        let (max_tokens, quota) = match self.reserve_quota(&key, max_tokens) {
            Ok(granted) => granted,
            Err(e) => return self.fail(&e),
        };
        let seed = asked.seed.unwrap_or_else(rand::random::<u64>);
        let prefix = match route {
            Route::Chat => "chatcmpl",
            Route::Completions => "cmpl",
        };
        let ticket = Ticket {
            key_id: key.id,
            route,
            seed,
            max_tokens,
            _quota: quota,
            arrived,
            created_ms: now_ms(),
            id: format!("{prefix}-{}", hex::encode(rand::random::<[u8; 12]>())),
            created: unix_secs(),
            asked,
        };
        let committed = match self.commit(&ticket).await {
            Ok(c) => c,
            Err(e) => {
                self.record_unserved(&ticket, &e);
                return self.fail(&e);
            }
        };
        if ticket.asked.stream {
            let (tx, rx) = mpsc::channel::<Bytes>(64);
            let api = self.clone();
            tokio::spawn(async move { api.drive(ticket, committed, Sink::Sse(tx)).await });
            Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, openai::SSE_CONTENT_TYPE)
                .header(header::CACHE_CONTROL, "no-cache")
                .body(Body::new(ChannelBody(rx)))
                .unwrap_or_else(|_| error_response(&ApiError::internal("building the stream failed")))
        } else {
            let (tx, rx) = oneshot::channel::<Result<String, ApiError>>();
            let api = self.clone();
            tokio::spawn(async move { api.drive(ticket, committed, Sink::Whole(Some(tx))).await });
            match rx.await {
                Ok(Ok(json)) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
                Ok(Err(e)) => error_response(&e),
                Err(_) => error_response(&ApiError::internal("the answer was lost")),
            }
        }
    }

    /// The body sent to miners for `ticket`, for the model `model`.
    fn generate_request(&self, ticket: &Ticket, model: &ModelInfo) -> Result<GenerateRequest, ApiError> {
        let (messages, prompt_tokens) = match &ticket.asked.input {
            Input::Chat(m) => (Some(m.clone()), None),
            Input::Text(text) => {
                let held = self
                    .shared
                    .held
                    .as_ref()
                    .filter(|h| h.sha256.eq_ignore_ascii_case(&model.sha256))
                    .ok_or_else(|| {
                        ApiError::invalid(
                            Some("model"),
                            "text completions of this model need the validator to hold its tokenizer ([api] model); use /v1/chat/completions",
                        )
                    })?;
                let ids = held
                    .tokenizer
                    .encode(text)
                    .map_err(|e| ApiError::invalid(Some("prompt"), e.to_string()))?;
                (None, Some(ids))
            }
        };
        Ok(GenerateRequest {
            model: model.sha256.clone(),
            messages,
            prompt_tokens,
            max_tokens: ticket.max_tokens.min(model.max_tokens),
            temperature: ticket.asked.temperature,
            top_p: ticket.asked.top_p,
            seed: ticket.seed,
            stop: ticket.asked.stop.clone(),
            stream: true,
        })
    }

    /// Tries miners until one sends its first event, within the first-token deadline.
    async fn commit(&self, ticket: &Ticket) -> Result<Committed, ApiError> {
        let config = &self.shared.config;
        let deadline = ticket.arrived + config.first_token_deadline();
        let mut tried = Vec::new();
        let mut failovers = Vec::new();
        for _ in 0..config.max_attempts.max(1) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let (candidate, model, slot) = match self.shared.directory.pick(&ticket.asked.model, &tried) {
                Ok(p) => p,
                Err(NoMiner::UnknownModel) => return Err(ApiError::model_not_found(&ticket.asked.model)),
                Err(NoMiner::Busy) => break,
            };
            tried.push(candidate.endpoint.uid);
            let request = self.generate_request(ticket, &model)?;
            let bounds = StreamBounds {
                first_event: left.min(config.attempt_first_token()),
                between_events: config.stall(),
                max_line_bytes: 1 << 20,
            };
            let target = candidate.endpoint.target();
            let result = async {
                let mut stream = self
                    .shared
                    .client
                    .generate_stream(&target, &request, Some(&model.sha256), bounds)
                    .await?;
                match stream.next().await {
                    Some(Ok(first)) => Ok((stream, first)),
                    Some(Err(e)) => Err(e),
                    None => Err(GenerateError::Truncated("no event".into())),
                }
            }
            .await;
            match result {
                Ok((stream, first)) => {
                    return Ok(Committed {
                        candidate,
                        model,
                        stream,
                        first,
                        _slot: slot,
                        failovers,
                    });
                }
                Err(GenerateError::Call(HttpError::Refused {
                    status: 400 | 413 | 422,
                    message,
                    reason,
                    ..
                })) => {
                    // The request itself is at fault (a prompt beyond the context): another miner would
                    // refuse it too.
                    return Err(ApiError::invalid_code(None, &reason, message));
                }
                Err(e) => {
                    tracing::debug!(uid = candidate.endpoint.uid, "failover: {e}");
                    self.shared.metrics.failovers.inc();
                    failovers.push(format!("uid {}: {}", candidate.endpoint.uid, e.code()));
                }
            }
        }
        Err(ApiError::unavailable(if failovers.is_empty() {
            format!("no miner can serve {} now; retry later", ticket.asked.model)
        } else {
            format!(
                "no miner served the request ({}); retry later",
                failovers.join(", ")
            )
        }))
    }

    fn record_unserved(&self, ticket: &Ticket, e: &ApiError) {
        if e.status != 503 {
            return;
        }
        let row = UsageRow {
            id: 0,
            key_id: ticket.key_id,
            created_ms: ticket.created_ms,
            route: ticket.route.name().into(),
            stream: ticket.asked.stream,
            model: ticket.asked.model.clone(),
            model_sha256: String::new(),
            miner_uid: None,
            miner_hotkey: None,
            seed: ticket.seed.to_string(),
            prompt_tokens: 0,
            completion_tokens: 0,
            ttft_ms: None,
            duration_ms: ticket.arrived.elapsed().as_secs_f64() * 1e3,
            finish_reason: None,
            outcome: Outcome::Unserved,
            detail: e.body.error.message.clone(),
            receipt_ok: false,
            verification: "skipped".into(),
            verification_detail: String::new(),
            request_body: None,
            token_ids: None,
            receipt: None,
        };
        let store = self.shared.store.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = lock(&store).record_usage(&row) {
                tracing::error!("recording usage failed: {e}");
            }
        });
    }

    /// Drives the committed miner's stream to the client, then records usage and queues verification.
    async fn drive(self, ticket: Ticket, committed: Committed, mut sink: Sink) {
        let Committed {
            candidate,
            model,
            mut stream,
            first,
            _slot,
            failovers,
        } = committed;
        let served = Served {
            miner_uid: candidate.endpoint.uid,
            miner_hotkey: candidate.endpoint.hotkey.to_ss58(),
            seed: ticket.seed,
            model_sha256: model.sha256.clone(),
        };
        let mut out = Writer::new(&ticket);
        let mut ttft: Option<Duration> = None;
        let mut outcome = Outcome::Failed;
        let mut detail = failovers.join("; ");
        let mut done = None;
        let mut next = Some(Ok(first));
        loop {
            let event = match next.take() {
                Some(e) => Some(e),
                None => {
                    tokio::select! {
                        () = sink.closed() => {
                            outcome = Outcome::Partial;
                            push_detail(&mut detail, "the client went away; the miner's stream was dropped");
                            break;
                        }
                        e = stream.next() => e,
                    }
                }
            };
            match event {
                Some(Ok(StreamEvent::Tokens { text, .. })) => {
                    if ttft.is_none() {
                        ttft = Some(ticket.arrived.elapsed());
                    }
                    if let Some(bytes) = out.text(&text)
                        && !sink.send(bytes).await
                    {
                        outcome = Outcome::Partial;
                        push_detail(
                            &mut detail,
                            "the client went away; the miner's stream was dropped",
                        );
                        break;
                    }
                }
                Some(Ok(StreamEvent::Done(d))) => {
                    if ttft.is_none() {
                        ttft = Some(ticket.arrived.elapsed());
                    }
                    let usage = Usage::new(d.prompt_tokens as u64, d.completion_tokens as u64);
                    let finished = out.finish(d.finish_reason, usage, &served);
                    outcome = if sink.finish(finished).await {
                        Outcome::Complete
                    } else {
                        Outcome::Partial
                    };
                    done = Some(d);
                    break;
                }
                Some(Err(e)) => {
                    push_detail(&mut detail, &format!("{}: {e}", e.code()));
                    let err =
                        ApiError::bad_gateway(format!("the miner failed mid-answer ({}); retry", e.code()));
                    sink.fail(&err).await;
                    break;
                }
                None => break,
            }
        }
        let ids = stream.ids().to_vec();
        let sent = stream.sent().clone();
        // Dropping the stream closes the connection: the miner stops generating.
        drop(stream);
        let duration = ticket.arrived.elapsed();
        self.shared.stats.served(
            candidate.endpoint.uid,
            outcome.as_str(),
            ids.len() as u64,
            ttft,
            duration,
        );
        let sampled = outcome == Outcome::Complete
            && done.is_some()
            && self.shared.verify.is_some()
            && (self.shared.directory.on_probation(candidate.endpoint.uid)
                || rand::random::<f64>() < self.shared.config.verify_fraction);
        let row = UsageRow {
            id: 0,
            key_id: ticket.key_id,
            created_ms: ticket.created_ms,
            route: ticket.route.name().into(),
            stream: ticket.asked.stream,
            model: ticket.asked.model.clone(),
            model_sha256: model.sha256.clone(),
            miner_uid: Some(candidate.endpoint.uid),
            miner_hotkey: Some(served.miner_hotkey.clone()),
            seed: ticket.seed.to_string(),
            prompt_tokens: done.as_ref().map_or(0, |d| d.prompt_tokens as u64),
            completion_tokens: ids.len() as u64,
            ttft_ms: ttft.map(|t| t.as_secs_f64() * 1e3),
            duration_ms: duration.as_secs_f64() * 1e3,
            finish_reason: done.as_ref().map(|d| d.finish_reason.as_str().to_owned()),
            outcome,
            detail,
            receipt_ok: done.is_some(),
            verification: if sampled { "pending" } else { "skipped" }.into(),
            verification_detail: String::new(),
            request_body: Some(String::from_utf8_lossy(&sent.body).into_owned()),
            token_ids: serde_json::to_string(&ids).ok(),
            receipt: done.as_ref().and_then(|d| serde_json::to_string(&d.receipt).ok()),
        };
        let store = self.shared.store.clone();
        let counted = row.prompt_tokens + row.completion_tokens;
        let usage_id = tokio::task::spawn_blocking(move || lock(&store).record_usage(&row)).await;
        let usage_id = match usage_id {
            Ok(Ok(id)) => {
                self.count_cached(ticket.key_id, counted);
                id
            }
            Ok(Err(e)) => {
                tracing::error!("recording usage failed: {e}");
                return;
            }
            Err(e) => {
                tracing::error!("recording usage failed: {e}");
                return;
            }
        };
        if sampled && let (Some(queue), Some(d)) = (&self.shared.verify, &done) {
            let prompt = match (&ticket.asked.input, &self.shared.held) {
                (Input::Chat(m), Some(h)) => h.chat_prompt(m),
                (Input::Text(_), _) => serde_json::from_slice::<GenerateRequest>(&sent.body)
                    .map_err(|e| e.to_string())
                    .map(|r| r.prompt_tokens.unwrap_or_default()),
                (_, None) => Err("no model held".into()),
            };
            let job = prompt.map(|prompt| Job {
                usage_id,
                miner_uid: candidate.endpoint.uid,
                miner_hotkey: served.miner_hotkey.clone(),
                model_sha256: model.sha256.clone(),
                prompt,
                receipt_prompt_tokens: d.prompt_tokens,
                generated: ids,
                sampling: Sampling {
                    temperature: ticket.asked.temperature,
                    top_p: ticket.asked.top_p,
                    seed: ticket.seed,
                },
                ttft_ms: ttft.map(|t| t.as_secs_f64() * 1e3),
                total_ms: duration.as_secs_f64() * 1e3,
            });
            let skipped = match job {
                Ok(job) => (!queue.offer(job)).then(|| "queue_full".to_owned()),
                Err(e) => Some(format!("error: {e}")),
            };
            if let Some(why) = skipped {
                self.shared
                    .stats
                    .checked(candidate.endpoint.uid, "skipped", false);
                let store = self.shared.store.clone();
                tokio::task::spawn_blocking(move || lock(&store).set_verification(usage_id, "skipped", &why));
            }
        }
    }
}

fn push_detail(detail: &mut String, s: &str) {
    if !detail.is_empty() {
        detail.push_str("; ");
    }
    detail.push_str(s);
}

/// Where the answer goes.
enum Sink {
    /// Server-sent events.
    Sse(mpsc::Sender<Bytes>),
    /// One JSON body (or an error) at the end.
    Whole(Option<oneshot::Sender<Result<String, ApiError>>>),
}

impl Sink {
    /// Resolves when the client went away.
    async fn closed(&mut self) {
        match self {
            Self::Sse(tx) => tx.closed().await,
            Self::Whole(Some(tx)) => tx.closed().await,
            Self::Whole(None) => std::future::pending().await,
        }
    }

    /// Sends a piece of a stream; false when the client went away. A whole answer only accumulates.
    async fn send(&mut self, bytes: Bytes) -> bool {
        match self {
            Self::Sse(tx) => tx.send(bytes).await.is_ok(),
            Self::Whole(tx) => tx.as_ref().is_some_and(|t| !t.is_closed()),
        }
    }

    /// Sends the end of the answer; false when the client went away.
    async fn finish(&mut self, finished: Finished) -> bool {
        match self {
            Self::Sse(tx) => {
                for b in finished.sse {
                    if tx.send(b).await.is_err() {
                        return false;
                    }
                }
                true
            }
            Self::Whole(tx) => tx.take().is_some_and(|t| t.send(Ok(finished.whole)).is_ok()),
        }
    }

    /// Ends the answer with an error (an SSE error event, or the error status).
    async fn fail(&mut self, e: &ApiError) {
        match self {
            Self::Sse(tx) => {
                let _ = tx.send(Bytes::from(openai::sse_data(&e.body))).await;
            }
            Self::Whole(tx) => {
                if let Some(t) = tx.take() {
                    let _ = t.send(Err(e.clone()));
                }
            }
        }
    }
}

/// The end of an answer in both forms.
struct Finished {
    sse: Vec<Bytes>,
    whole: String,
}

/// Builds the answer's chunks (and its whole text) in the route's shape.
struct Writer {
    route: Route,
    id: String,
    created: u64,
    model: String,
    include_usage: bool,
    text: String,
    sent_role: bool,
}

impl Writer {
    fn new(ticket: &Ticket) -> Self {
        Self {
            route: ticket.route,
            id: ticket.id.clone(),
            created: ticket.created,
            model: ticket.asked.model.clone(),
            include_usage: ticket.asked.include_usage,
            text: String::new(),
            sent_role: false,
        }
    }

    fn chat_chunk(&self, delta: Delta, finish: Option<FinishReason>) -> ChatCompletionChunk {
        ChatCompletionChunk {
            id: self.id.clone(),
            object: "chat.completion.chunk".into(),
            created: self.created,
            model: self.model.clone(),
            choices: vec![ChunkChoice {
                index: 0,
                delta,
                finish_reason: finish,
            }],
            usage: None,
            tensorproof: None,
        }
    }

    fn completion(&self, text: String, finish: Option<FinishReason>) -> Completion {
        Completion {
            id: self.id.clone(),
            object: "text_completion".into(),
            created: self.created,
            model: self.model.clone(),
            choices: vec![CompletionChoice {
                text,
                index: 0,
                logprobs: None,
                finish_reason: finish,
            }],
            usage: None,
            tensorproof: None,
        }
    }

    /// New text: the SSE bytes to send (none for empty text after the first chunk).
    fn text(&mut self, text: &str) -> Option<Bytes> {
        self.text.push_str(text);
        let mut out = String::new();
        if self.route == Route::Chat && !self.sent_role {
            self.sent_role = true;
            out.push_str(&openai::sse_data(&self.chat_chunk(
                Delta {
                    role: Some("assistant".into()),
                    content: Some(String::new()),
                },
                None,
            )));
        }
        if !text.is_empty() {
            out.push_str(&match self.route {
                Route::Chat => openai::sse_data(&self.chat_chunk(
                    Delta {
                        role: None,
                        content: Some(text.to_owned()),
                    },
                    None,
                )),
                Route::Completions => openai::sse_data(&self.completion(text.to_owned(), None)),
            });
        }
        (!out.is_empty()).then(|| Bytes::from(out))
    }

    fn finish(&mut self, reason: FinishReason, usage: Usage, served: &Served) -> Finished {
        let mut sse = Vec::new();
        if let Some(b) = self.text("") {
            sse.push(b);
        }
        let whole = match self.route {
            Route::Chat => {
                let mut last = self.chat_chunk(Delta::default(), Some(reason));
                last.tensorproof = Some(served.clone());
                sse.push(Bytes::from(openai::sse_data(&last)));
                if self.include_usage {
                    let mut u = self.chat_chunk(Delta::default(), None);
                    u.choices.clear();
                    u.usage = Some(usage);
                    sse.push(Bytes::from(openai::sse_data(&u)));
                }
                serde_json::to_string(&ChatCompletion {
                    id: self.id.clone(),
                    object: "chat.completion".into(),
                    created: self.created,
                    model: self.model.clone(),
                    choices: vec![ChatChoice {
                        index: 0,
                        message: AnswerMessage {
                            role: "assistant".into(),
                            content: self.text.clone(),
                        },
                        finish_reason: reason,
                        logprobs: None,
                    }],
                    usage,
                    tensorproof: Some(served.clone()),
                })
            }
            Route::Completions => {
                let mut last = self.completion(String::new(), Some(reason));
                last.tensorproof = Some(served.clone());
                sse.push(Bytes::from(openai::sse_data(&last)));
                if self.include_usage {
                    let mut u = self.completion(String::new(), None);
                    u.choices.clear();
                    u.usage = Some(usage);
                    sse.push(Bytes::from(openai::sse_data(&u)));
                }
                let mut whole = self.completion(self.text.clone(), Some(reason));
                whole.usage = Some(usage);
                whole.tensorproof = Some(served.clone());
                serde_json::to_string(&whole)
            }
        }
        .unwrap_or_default();
        sse.push(Bytes::from_static(SSE_DONE.as_bytes()));
        Finished { sse, whole }
    }
}

/// A response body fed by a channel: ends when the sender is dropped; dropping it (the client went
/// away) closes the channel, which the driving task sees.
struct ChannelBody(mpsc::Receiver<Bytes>);

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|o| o.map(|b| Ok(http_body::Frame::data(b))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_refills_at_its_rate() {
        let t0 = Instant::now();
        let mut b = Bucket { tokens: 6.0, at: t0 };
        // 60 a minute: bursts of 6, one a second after that.
        for _ in 0..6 {
            assert!(take(&mut b, 60.0, t0));
        }
        assert!(!take(&mut b, 60.0, t0));
        assert!(take(&mut b, 60.0, t0 + Duration::from_millis(1100)));
        assert!(!take(&mut b, 60.0, t0 + Duration::from_millis(1200)));
    }
}
