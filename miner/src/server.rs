//! The miner's HTTP server: routes, shared state, start and shutdown.
//!
//! HTTP/1.1 and HTTP/2 over cleartext (h2c, prior knowledge) on one port, each connection admitted and
//! bounded in time by [`connections`](crate::connections) (connection and per-IP caps, header-read
//! and idle timeouts, a reserve for the health route). Signed routes
//! ([`CHALLENGE_PATH`], [`OPEN_PATH`], [`PING_PATH`]) sit behind the [`auth`](crate::auth) layer; the
//! public routes ([`HEALTH_PATH`], [`INFO_PATH`], [`METRICS_PATH`]) never touch the device, so they stay
//! fast while it is busy.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router, middleware};
use bench_tasks::backend::{BackendKind, probe};
use bench_tasks::inference::engine::SlotGate;
use bench_tasks::wire::{
    CHALLENGE_PATH, ChallengeRequest, ChallengeResponse, DeviceInfo, GENERATE_PATH, HEALTH_PATH, INFO_PATH,
    InferenceServed, MAX_CHALLENGE_ID_LEN, METRICS_PATH, MinerInfo, OPEN_PATH, OpenRequest, OpenResponse,
    PING_PATH, ServerLimits, TaskClass, TaskLimits,
};
use chain::auth::{Verifier, VerifierConfig};
use chain::keys::{AccountId, Keypair};
use serde::de::DeserializeOwned;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::auth::{self, Caller, Gate};
use crate::behavior::Behavior;
use crate::config::Limits;
use crate::error::ApiError;
use crate::limits::Limiter;
use crate::metrics::Metrics;
use crate::models::HeldModels;
use crate::queue::{QueueError, WorkQueue};
use crate::serving::{ServedModel, Serving};
use crate::store::{StateStore, StoreError};
use crate::tasks::{self, DeviceContext, TaskState};
use crate::validators::ValidatorSet;

/// Queue priority of opening requests: above every stake, since they finish work already paid for.
pub const OPEN_PRIORITY: u64 = u64::MAX;

/// Everything needed to start a miner server.
#[derive(Debug, Clone)]
pub struct MinerConfig {
    /// The miner's hotkey: the receiver validators sign for, and the signer of receipts.
    pub keypair: Keypair,
    /// The compute backend.
    pub backend: BackendKind,
    /// The device index within the backend.
    pub device_index: usize,
    /// Every device index to serve, one worker thread each (`miner run --devices`); empty means just
    /// `device_index`. Challenges go to the least-loaded device; an opening goes to the device that holds
    /// its round-1 state.
    pub devices: Vec<usize>,
    /// Bounds on untrusted input.
    pub limits: Limits,
    /// Who may send work.
    pub validators: ValidatorSet,
    /// Request-signature settings (freshness window, receiver binding, Epistula).
    pub verifier: VerifierConfig,
    /// Honest, or an adversary (feature `adversary`).
    pub behavior: Behavior,
    /// The real models held on the host (`miner run --model`), shared by every device worker; listed in
    /// `/info` and served in inference challenges that name them.
    pub models: Arc<HeldModels>,
}

impl MinerConfig {
    /// A config with default limits and verifier settings, the flex backend, and `validators`.
    pub fn new(keypair: Keypair, validators: ValidatorSet) -> Self {
        Self {
            keypair,
            backend: BackendKind::Flex,
            device_index: 0,
            devices: Vec::new(),
            limits: Limits::default(),
            validators,
            verifier: VerifierConfig::default(),
            behavior: Behavior::Honest,
            models: Arc::new(HeldModels::none()),
        }
    }
}

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The backend or device is unusable.
    #[error(transparent)]
    Backend(#[from] bench_tasks::BackendError),
    /// An OS resource (socket, thread) failed.
    #[error("could not start the server: {0}")]
    Io(#[from] std::io::Error),
    /// A held model cannot be served within the limits.
    #[error("{0}")]
    Model(String),
}

/// State shared by every request.
#[derive(Debug)]
pub struct AppState {
    /// What the signed routes' layers use ([`crate::auth`]).
    pub(crate) gate: Arc<Gate>,
    /// One work queue per served device, in `info.devices` order.
    pub(crate) queues: Vec<WorkQueue<DeviceContext>>,
    /// Round-1 state, with the position in `queues` of the device that holds it.
    pub(crate) store: StateStore<(usize, TaskState)>,
    pub(crate) metrics: Metrics,
    pub(crate) limits: Arc<Limits>,
    pub(crate) info: MinerInfo,
    pub(crate) garbage: bool,
    /// The real models held (also listed in `info.models`, in the same order).
    pub(crate) models: Arc<HeldModels>,
    /// The real models served by `POST /v1/generate`, in `info.models` order.
    pub(crate) served: Vec<Arc<ServedModel>>,
    /// `gates[device][model]`: each served model's batch capacity on each device.
    pub(crate) gates: Vec<Vec<Arc<SlotGate>>>,
}

/// A running miner server.
#[derive(Debug)]
pub struct MinerServer {
    state: Arc<AppState>,
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<std::io::Result<()>>,
    sweeper: JoinHandle<()>,
}

impl MinerServer {
    /// Probes the device, starts its worker thread and serves on `listener` until
    /// [`shutdown`](Self::shutdown).
    pub async fn start(config: MinerConfig, listener: TcpListener) -> Result<Self, StartError> {
        let metrics = Metrics::new();
        let backend = config.backend;
        let indices = if config.devices.is_empty() {
            vec![config.device_index]
        } else {
            config.devices.clone()
        };
        let behavior = config.behavior;
        let model_budget = config.limits.model_cache_bytes;
        let held = Arc::clone(&config.models);
        check_held_models(&held, &config.limits, behavior)?;
        let generate_limits = config.limits.generate;
        let served = ServedModel::all(&held, &config.limits);
        let mut gates = Vec::with_capacity(indices.len());
        let mut queues = Vec::with_capacity(indices.len());
        let mut devices = Vec::with_capacity(indices.len());
        for index in indices {
            let (device, memory_bytes) = tokio::task::spawn_blocking(move || {
                probe(backend, index).map(|device| {
                    let memory = crate::device_memory::device_memory_bytes(backend, &device);
                    (device, memory)
                })
            })
            .await
            .map_err(|e| std::io::Error::other(format!("device probe thread failed: {e}")))??;
            devices.push(DeviceInfo {
                index,
                backend: backend.to_string(),
                name: format!("{device:?}"),
                memory_bytes,
            });
            let device_gates: Vec<Arc<SlotGate>> = served
                .iter()
                .map(|s| SlotGate::new(s.real.config(), ServedModel::engine_limits(&generate_limits)))
                .collect();
            let (worker_served, worker_gates) = (served.clone(), device_gates.clone());
            queues.push(WorkQueue::start_with_background(
                &format!("miner-{backend}-{index}"),
                config.limits.queue_capacity,
                metrics.clone(),
                {
                    let held = Arc::clone(&held);
                    move || {
                        let mut context =
                            DeviceContext::new(device.clone(), backend, behavior, model_budget, held);
                        match Serving::new(&worker_served, &worker_gates, &device) {
                            Ok(serving) => context.serving = serving,
                            Err(e) => {
                                tracing::error!(error = %e, "the served models could not be built on the device")
                            }
                        }
                        context
                    }
                },
                |context| context.serving.step(),
            )?);
            gates.push(device_gates);
        }
        let limits = config.limits;
        let info = MinerInfo {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            hotkey: config.keypair.ss58(),
            backend: backend.to_string(),
            device: devices[0].name.clone(),
            device_memory_bytes: devices[0].memory_bytes,
            devices,
            tasks: vec![
                TaskLimits {
                    task: TaskClass::Matmul,
                    inference: None,
                    max_size: u64::from(limits.matmul.max_n),
                },
                TaskLimits {
                    task: TaskClass::Inference,
                    inference: Some(InferenceServed {
                        limits: limits.inference,
                        presets: tasks::served_presets(&limits),
                    }),
                    max_size: (limits.inference.max_batch as u64)
                        .saturating_mul(limits.inference.max_new_tokens as u64),
                },
            ],
            limits: ServerLimits {
                max_body_bytes: limits.max_body_bytes as u64,
                max_ping_bytes: limits.max_ping_bytes as u64,
                queue_capacity: limits.queue_capacity as u64,
                state_memory_cap_bytes: limits.state_memory_cap_bytes,
                state_ttl_secs: limits.state_ttl_secs,
                rate_per_validator: limits.rate_per_validator,
                concurrency_per_validator: u64::from(limits.concurrency_per_validator),
            },
            models: served.iter().map(|s| s.info.clone()).collect(),
        };
        let gate = Arc::new(Gate::new(
            config.keypair.clone(),
            Verifier::new(config.keypair.account(), config.verifier),
            config.validators,
            Limiter::new(
                limits.rate_per_validator,
                limits.burst_per_validator,
                limits.concurrency_per_validator,
            ),
            metrics.clone(),
            limits.max_body_bytes,
            limits.max_ping_bytes,
            limits.request_timeout(),
        ));
        let state = Arc::new(AppState {
            gate,
            queues,
            store: StateStore::new(limits.state_memory_cap_bytes, limits.state_ttl(), metrics.clone()),
            metrics: metrics.clone(),
            limits: Arc::new(limits),
            info,
            garbage: behavior.garbage(),
            models: held,
            served,
            gates,
        });

        let addr = listener.local_addr()?;
        let serve_config = crate::connections::ServeConfig::new(&state.limits, metrics.clone());
        let app = router(Arc::clone(&state));
        let (tx, rx) = watch::channel(false);
        let server = tokio::spawn(crate::connections::serve(listener, app, serve_config, rx));
        let store = state.store.clone();
        let sweeper = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tick.tick().await;
                store.sweep();
            }
        });
        tracing::info!(%addr, hotkey = %state.info.hotkey, backend = %state.info.backend, "miner serving");
        Ok(Self {
            state,
            addr,
            shutdown: tx,
            server,
            sweeper,
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The miner's hotkey.
    pub fn hotkey(&self) -> AccountId {
        self.state.gate.hotkey()
    }

    /// The validator set (replace it on each metagraph refresh).
    pub fn validators(&self) -> &ValidatorSet {
        self.state.gate.validators()
    }

    /// The server's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.state.metrics
    }

    /// The first device's work queue.
    pub fn queue(&self) -> &WorkQueue<DeviceContext> {
        &self.state.queues[0]
    }

    /// Every device's work queue, in `/info`'s `devices` order.
    pub fn queues(&self) -> &[WorkQueue<DeviceContext>] {
        &self.state.queues
    }

    /// What `GET /info` answers.
    pub fn info(&self) -> &MinerInfo {
        &self.state.info
    }

    /// Waits until the server stops (it stops only on [`shutdown`](Self::shutdown) or an I/O error).
    pub async fn wait(&mut self) -> std::io::Result<()> {
        match (&mut self.server).await {
            Ok(result) => result,
            Err(e) => Err(std::io::Error::other(e)),
        }
    }

    /// Stops accepting, lets open requests finish (up to 5 s), and stops the device worker.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        self.sweeper.abort();
        if tokio::time::timeout(Duration::from_secs(5), &mut self.server)
            .await
            .is_err()
        {
            self.server.abort();
        }
        let state = Arc::clone(&self.state);
        let _ = tokio::task::spawn_blocking(move || {
            for queue in &state.queues {
                queue.shutdown();
            }
        })
        .await;
    }
}

/// Refuses to start with a held model whose weights (twice over for an adversarial miner) exceed the
/// model budget or the inference memory cap: every challenge on it would be refused.
fn check_held_models(held: &HeldModels, limits: &Limits, behavior: Behavior) -> Result<(), StartError> {
    let adversarial = behavior.inference_adversary().is_some();
    let room = limits.model_cache_bytes.min(limits.inference_memory_cap_bytes);
    for m in held.models() {
        let needed = tasks::model_bytes(m.config(), adversarial);
        if needed > room {
            return Err(StartError::Model(format!(
                "the model {} needs {needed} bytes of f32 weights, above limits.model-cache-bytes ({}) or \
                 limits.inference-memory-cap-bytes ({}); raise them in the [limits] table",
                m.id, limits.model_cache_bytes, limits.inference_memory_cap_bytes
            )));
        }
    }
    Ok(())
}

/// The router: signed routes behind the layers of [`crate::auth`] (counting, body limit, signature and
/// authorization, per-validator limits, request timeout; outermost first), public routes beside them.
pub fn router(state: Arc<AppState>) -> Router {
    let gate = &state.gate;
    let signed = Router::new()
        .route(CHALLENGE_PATH, post(challenge))
        .route(OPEN_PATH, post(open))
        .route(PING_PATH, post(ping))
        .route(GENERATE_PATH, post(crate::generate::generate))
        .route_layer(
            tower::ServiceBuilder::new()
                .layer(middleware::from_fn_with_state(Arc::clone(gate), auth::count))
                .layer(middleware::from_fn_with_state(Arc::clone(gate), auth::read_body))
                .layer(middleware::from_fn_with_state(
                    Arc::clone(gate),
                    auth::authenticate,
                ))
                .layer(middleware::from_fn_with_state(Arc::clone(gate), auth::limit))
                .layer(middleware::from_fn_with_state(Arc::clone(gate), auth::deadline)),
        );
    Router::new()
        .merge(signed)
        .route(HEALTH_PATH, get(health))
        .route(INFO_PATH, get(info))
        .route(METRICS_PATH, get(metrics))
        .fallback(not_found)
        .with_state(state)
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::malformed(format!(
            "the body is not valid JSON for this route ({e}); see bench_tasks::wire"
        ))
    })
}

fn check_id(id: &str) -> Result<(), ApiError> {
    if id.is_empty() || id.len() > MAX_CHALLENGE_ID_LEN {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_id",
            format!("challenge id must be 1 to {MAX_CHALLENGE_ID_LEN} bytes"),
        ));
    }
    Ok(())
}

pub(crate) fn queue_error(e: QueueError) -> ApiError {
    match e {
        QueueError::Full => ApiError::too_many("queue_full", e.to_string(), Duration::from_secs(1)),
        QueueError::Closed => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting_down", e.to_string()),
    }
}

fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::TooLarge { .. } => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "challenge_too_large",
            e.to_string(),
        ),
        StoreError::Full { .. } => ApiError {
            retry_after: Some(Duration::from_secs(2)),
            ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "state_full", e.to_string())
        },
        StoreError::Duplicate => ApiError::new(StatusCode::CONFLICT, "duplicate_id", e.to_string()),
    }
}

fn dropped() -> ApiError {
    ApiError::too_many(
        "evicted",
        "the job was dropped before it ran (a higher-stake validator's work took its slot, or the device failed); retry",
        Duration::from_secs(1),
    )
}

fn garbage() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        "\u{1}{garbage\u{0}".repeat(64),
    )
        .into_response()
}

async fn challenge(State(state): State<Arc<AppState>>, Extension(caller): Extension<Caller>) -> Response {
    match run_challenge(&state, caller).await {
        Ok(_) if state.garbage => garbage(),
        Ok(answer) => Json(answer).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn run_challenge(state: &AppState, caller: Caller) -> Result<ChallengeResponse, ApiError> {
    let request: ChallengeRequest = parse(&caller.body)?;
    check_id(&request.id)?;
    // Validation and the memory reservation happen before anything sized by the request is allocated.
    let admission = tasks::admit(&request.challenge, &state.limits, &state.models)?;
    let reservation = state
        .store
        .reserve(
            (caller.hotkey.to_ss58(), request.id.clone()),
            admission.state_bytes,
        )
        .map_err(store_error)?;
    let limits = Arc::clone(&state.limits);
    let challenge = request.challenge;
    let queued = Instant::now();
    let slot = least_loaded(&state.queues);
    let rx = state.queues[slot]
        .submit(caller.stake_rao, move |context| {
            let waited = queued.elapsed().as_secs_f64();
            (waited, tasks::compute(context, &challenge, &limits))
        })
        .map_err(queue_error)?;
    // The request timeout is the `deadline` layer's.
    let (waited, computed) = rx.await.map_err(|_| dropped())?;
    let computed = computed?;
    let class = admission.class.name();
    state.metrics.observe_task(class, "queue_wait", waited);
    state.metrics.observe_task(class, "compute", computed.seconds);
    match computed.state {
        Some(kept) => reservation.fill((slot, kept)),
        None => drop(reservation),
    }
    Ok(ChallengeResponse {
        id: request.id,
        answer: computed.answer,
        queue_seconds: waited,
        compute_seconds: computed.seconds,
        device: state
            .info
            .devices
            .get(slot)
            .and_then(|d| u32::try_from(d.index).ok()),
    })
}

async fn open(State(state): State<Arc<AppState>>, Extension(caller): Extension<Caller>) -> Response {
    match run_open(&state, caller).await {
        Ok(_) if state.garbage => garbage(),
        Ok(answer) => Json(answer).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn run_open(state: &AppState, caller: Caller) -> Result<OpenResponse, ApiError> {
    let request: OpenRequest = parse(&caller.body)?;
    check_id(&request.id)?;
    let (slot, kept) = state.store.take(&(caller.hotkey.to_ss58(), request.id.clone())).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_challenge",
            "no round-1 state for this challenge id from this hotkey (never answered, already opened, or expired)",
        )
    })?;
    let open = request.open;
    let started = Instant::now();
    let rx = state.queues[slot]
        .submit(OPEN_PRIORITY, move |_| tasks::open(&kept, &open))
        .map_err(queue_error)?;
    let openings = rx.await.map_err(|_| dropped())??;
    state
        .metrics
        .observe_task(task_name(&openings), "open", started.elapsed().as_secs_f64());
    Ok(OpenResponse {
        id: request.id,
        openings,
    })
}

/// The queue with the least load, waiting plus running (the first on a tie): concurrent challenges spread
/// over the devices, one per idle device.
fn least_loaded(queues: &[WorkQueue<DeviceContext>]) -> usize {
    queues
        .iter()
        .enumerate()
        .min_by_key(|(i, q)| (q.load(), *i))
        .map_or(0, |(i, _)| i)
}

fn task_name(openings: &bench_tasks::wire::TaskOpenings) -> &'static str {
    match openings {
        bench_tasks::wire::TaskOpenings::Matmul(_) => TaskClass::Matmul.name(),
    }
}

async fn ping(Extension(caller): Extension<Caller>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/octet-stream")],
        caller.body,
    )
        .into_response()
}

async fn health() -> &'static str {
    "ok"
}

async fn info(State(state): State<Arc<AppState>>) -> Json<MinerInfo> {
    Json(state.info.clone())
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such route; see bench_tasks::wire for the routes",
    )
}
