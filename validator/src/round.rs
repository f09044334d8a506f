//! The round loop.
//!
//! One round, per `ARCHITECTURE.md` ("One validator round"):
//! 1. read the [`ChainView`] at the current block (miners, block hash, weight limits);
//! 2. bump the attempt counter (committed), pick the matmul size, dtype class and batch, derive the round seed and the round's
//!    secret from the validator secret, the block hash and the attempt, and build the verifier's
//!    [`RoundSetup`] on the blocking pool;
//! 3. every miner, in random order, at most `concurrency` at a time: seed
//!    `H(secret ‖ block hash ‖ hotkey ‖ attempt)`, signed pings for the round-trip time, the timed
//!    challenge, the openings chosen only then, and verification on the verification pool (blocking
//!    threads, never the async workers). Every step has its own timeout and body cap, so a slow, hanging,
//!    garbage or oversized miner costs only its own slot;
//!
//!    Each miner gets one task class, drawn from its seed with the policy's task mix
//!    ([`scoring::policy::TaskMix`]): matmul as above, or an inference challenge (one round: the answer
//!    carries the generated tokens; the sequences to check are drawn from a keyed hash of the answer, and
//!    the teacher-forced check runs on the verification pool on the CPU);
//! 4. the [`Ledger`] scores the round and commits it (SQLite, then the round log);
//! 5. when the chain accepts weights, the round's weight vector is submitted and the outcome recorded.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bench_tasks::BackendKind;
use bench_tasks::inference::real::{REAL_MODEL_MARGIN, RealModel};
use bench_tasks::inference::{
    HostWeights, InferenceChallenge, Limits as InferenceLimits, ModelId, Preset, Transformer, Verifier,
};
use bench_tasks::matmul::{MatmulDtype, MatmulLimits, RoundParams, RoundSetup, batch_for_h200};
use bench_tasks::wire::TaskClass;
use bench_tasks::{Reason, Verdict};
use exchange::inference::Picks;
use exchange::{Bounds, Call, Client, MinerEndpoint, verdict_reason};
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use tokio::sync::{Barrier, Semaphore};

use crate::dashboard::Dashboard;
use crate::ledger::{Ledger, LedgerError, RoundInputs};
use crate::metrics::{Metrics, OutcomeLabels, VerdictLabels};
use crate::network::{ChainView, Network, NetworkError, SubmitOutcome, SubmitStatus};
use crate::organic::OrganicInbox;
use crate::record::{InferenceRecord, RoundRecord};
use crate::state::{DeviceRun, MinerOutcome, WeightSubmission};

/// Round settings (the `[round]` table of `validator.toml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoundConfig {
    /// Miners challenged at once (default 256, a whole subnet at the default `MaxAllowedUids`). Miners are
    /// taken in waves of this many, in random order; within a wave every miner's pings and `/info` come
    /// first, then all its challenges are sent together. Keep it at least the subnet's miner count: a GPU
    /// split across several uids is then asked for all their answers at once and each uid gets its
    /// share of the GPU, which is what makes splitting not pay. Uids challenged in different waves
    /// would each get the whole GPU. The validator's CPU is used only as answers arrive (verification
    /// runs on `verify_threads`); what a wave holds is its answers' bodies: `concurrency ×
    /// max_devices` openings waiting for verification at most (about `k·n·4` bytes each, 0.7 MB at
    /// n = 4096 and k = 40).
    pub concurrency: usize,
    /// Most challenges sent to one miner at once (default 8): a miner advertising `d` devices in its
    /// `/info` gets `min(d, max_devices)` challenges together, one per device, scored as one group (its
    /// throughput is their summed work over the group's wall time), so a box earns for every GPU it
    /// has and a miner advertising devices it lacks only takes longer. 1 turns device groups off.
    pub max_devices: u32,
    /// Matmul sizes `n`; each round draws one.
    pub matmul_sizes: Vec<u32>,
    /// Matmul dtype classes; each round draws one, every entry equally likely (default `bf16, bf16,
    /// f16, f32`).
    pub matmul_dtypes: Vec<MatmulDtype>,
    /// Products per matmul challenge, `B` (default: sized by `matmul_h200_ms`).
    pub matmul_batch: Option<u32>,
    /// Without `matmul_batch`: the smallest batch whose products keep an NVIDIA H200 busy this many
    /// milliseconds at the class's peak ([`batch_for_h200`]), at most `matmul_max_batch`.
    pub matmul_h200_ms: f64,
    /// Most products a sized batch may have (miners refuse batches above their own `max_batch`, 512 by
    /// default).
    pub matmul_max_batch: u32,
    /// Rows opened per miner (default: `min(40, n)`).
    pub openings: Option<u32>,
    /// Signed pings per miner for the RTT (the smallest counts).
    pub pings: u32,
    /// Timeout of each ping, in seconds.
    pub ping_timeout_secs: f64,
    /// Timeout of the challenge (round 1), in seconds.
    pub challenge_timeout_secs: f64,
    /// Timeout of the openings (round 2), in seconds.
    pub open_timeout_secs: f64,
    /// Largest answer body accepted, in bytes (answers are also capped by what the challenge can need).
    pub max_answer_bytes: usize,
    /// Threads verifying at once (default: the number of cores).
    pub verify_threads: Option<usize>,
    /// Shortest time between round starts, in seconds.
    pub interval_secs: f64,
    /// Timeout for reading the chain view, in seconds.
    pub chain_timeout_secs: f64,
    /// Inference challenges (`[round.inference]`).
    pub inference: InferenceRoundConfig,
}

/// The `model` of `[round.inference]` that selects the seeded preset (`preset`, `model_seed`).
pub const SEEDED_MODEL: &str = "seeded";

/// Inference challenge settings (the `[round.inference]` table). Whether a miner gets one is drawn from
/// its seed with the policy's task mix; the timeouts and body cap are those of `[round]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InferenceRoundConfig {
    /// Whether to send inference challenges at all (the policy's mix still decides how often).
    pub enabled: bool,
    /// The model challenged on: `seeded` (the `preset` derived from `model_seed`, no file), `smollm2`
    /// (the default real model, fetched by `scripts/fetch-model.sh`) or the path of a Llama GGUF file.
    /// A real model is loaded on the validator's CPU once, named in challenges by its sha256
    /// ([`ModelId::Gguf`]) and checked with [`REAL_MODEL_MARGIN`]; miners must hold it (`miner run
    /// --model`).
    pub model: String,
    /// The model preset (seeded model only).
    pub preset: Preset,
    /// The public seed of the model's weights (seeded model only).
    pub model_seed: u64,
    /// Prompts per challenge, `B`.
    pub batch: usize,
    /// Tokens per prompt, `L`.
    pub prompt_len: usize,
    /// Tokens generated per prompt, `T` (the work units are `B × T`).
    pub new_tokens: usize,
    /// Sequences checked per answer, `s`.
    pub sequences: usize,
}

impl Default for InferenceRoundConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            model: SEEDED_MODEL.to_owned(),
            preset: Preset::Tiny,
            model_seed: 0,
            batch: 8,
            prompt_len: 32,
            new_tokens: 32,
            sequences: 2,
        }
    }
}

impl InferenceRoundConfig {
    /// Whether challenges run the seeded preset (`model = "seeded"`) rather than a real model file.
    pub fn is_seeded(&self) -> bool {
        self.model.trim().eq_ignore_ascii_case(SEEDED_MODEL)
    }

    /// The seeded model `preset` and `model_seed` name (what challenges run when [`is_seeded`](Self::is_seeded)).
    pub const fn seeded_model(&self) -> ModelId {
        ModelId::Seeded {
            preset: self.preset,
            seed: self.model_seed,
        }
    }

    /// The challenge on `model` (the round's, from the verifier) for a miner's seed.
    pub fn challenge(&self, model: &ModelId, seed: u64) -> InferenceChallenge {
        InferenceChallenge {
            model: model.clone(),
            seed,
            batch: self.batch,
            prompt_len: self.prompt_len,
            new_tokens: self.new_tokens,
        }
    }

    /// The caps the verifier enforces: exactly the configured sizes.
    pub const fn limits(&self) -> InferenceLimits {
        InferenceLimits {
            max_batch: self.batch,
            max_prompt_len: self.prompt_len,
            max_new_tokens: self.new_tokens,
        }
    }

    /// What the round log records of a round that challenged on `model`.
    pub fn record(&self, model: &ModelId) -> InferenceRecord {
        InferenceRecord {
            model: model.clone(),
            batch: self.batch,
            prompt_len: self.prompt_len,
            new_tokens: self.new_tokens,
            sequences: self.sequences,
        }
    }
}

/// Builds the inference verifier on the CPU (verification pool thread): the seeded preset, or the real
/// model file `config.model` names, loaded and checked with [`REAL_MODEL_MARGIN`]. Returns the model id
/// the round's challenges name.
fn build_verifier(config: &InferenceRoundConfig) -> Result<(ModelId, Verifier), String> {
    let device = BackendKind::Flex.device(0).map_err(|e| e.to_string())?;
    let (id, model, margin) = if config.is_seeded() {
        let weights = HostWeights::seeded(config.preset.config(), config.model_seed);
        let model = Transformer::from_weights(&weights, &device).map_err(|e| e.to_string())?;
        (config.seeded_model(), model, None)
    } else {
        let real = RealModel::load(config.model.trim())
            .map_err(|e| format!("[round.inference] model {:?}: {e}", config.model))?;
        let model = Transformer::from_weights(&real.weights, &device).map_err(|e| e.to_string())?;
        // The host weights and tokenizer are dropped here: the verifier needs only the device model.
        (real.id, model, Some(REAL_MODEL_MARGIN))
    };
    config
        .challenge(&id, 0)
        .validate(&config.limits())
        .map_err(|e| format!("[round.inference]: {e}"))?;
    let verifier = Verifier::new(id.clone(), model, config.limits());
    Ok((
        id,
        match margin {
            Some(m) => verifier.with_margin(m),
            None => verifier,
        },
    ))
}

/// The task class a miner gets this round: drawn from its seed, with probability proportional to the
/// policy's weights `matmul` and `inference` (matmul when both are zero).
pub fn pick_task(seed: u64, matmul: f64, inference: f64) -> TaskClass {
    let total = matmul.max(0.0) + inference.max(0.0);
    if total <= 0.0 || inference <= 0.0 {
        return TaskClass::Matmul;
    }
    let mut h = blake3::Hasher::new_derive_key("tensorproof validator task pick v1");
    h.update(&seed.to_le_bytes());
    let b = h.finalize();
    let word = u64::from_le_bytes(b.as_bytes()[..8].try_into().unwrap_or([0; 8]));
    let u = (word >> 11) as f64 / (1u64 << 53) as f64;
    if u * total < matmul.max(0.0) {
        TaskClass::Matmul
    } else {
        TaskClass::Inference
    }
}

impl Default for RoundConfig {
    fn default() -> Self {
        Self {
            concurrency: 256,
            max_devices: 8,
            // GPU-sized: one challenge keeps an H200 busy ≥ 50 ms at its class's peak (22 products of
            // 4096³ in f32, 288 in bf16/f16), while the validator checks k rows per miner: n = 4096
            // keeps that check, and the O(n²) round setup, below a tenth of the H200's time.
            matmul_sizes: vec![4096],
            // What AI buyers rent: tensor-core bf16 half the rounds, f16 and f32 (SIMT) a quarter each;
            // each dtype class keeps its own scoring reference (`record::score_step`).
            matmul_dtypes: vec![
                MatmulDtype::Bf16,
                MatmulDtype::Bf16,
                MatmulDtype::F16,
                MatmulDtype::F32,
            ],
            matmul_batch: None,
            matmul_h200_ms: bench_tasks::matmul::params::DEFAULT_H200_SECONDS * 1e3,
            matmul_max_batch: bench_tasks::matmul::params::DEFAULT_SIZED_MAX_BATCH,
            openings: None,
            pings: 2,
            ping_timeout_secs: 2.0,
            challenge_timeout_secs: 30.0,
            open_timeout_secs: 10.0,
            max_answer_bytes: 32 << 20,
            verify_threads: None,
            interval_secs: 12.0,
            chain_timeout_secs: 30.0,
            inference: InferenceRoundConfig::default(),
        }
    }
}

impl RoundConfig {
    fn secs(s: f64) -> Duration {
        Duration::try_from_secs_f64(s).unwrap_or(Duration::from_secs(1))
    }

    /// Products per challenge for size `n` in class `dtype`: `matmul_batch`, or the smallest batch that
    /// keeps an H200 busy `matmul_h200_ms` at the class's peak, within `1..=matmul_max_batch`.
    pub fn batch_for(&self, n: u32, dtype: MatmulDtype) -> u32 {
        self.matmul_batch
            .unwrap_or_else(|| batch_for_h200(n, dtype, self.matmul_h200_ms / 1e3, self.matmul_max_batch))
    }

    /// The bounds of each miner's exchange.
    pub fn bounds(&self) -> Bounds {
        Bounds {
            challenge_timeout: Self::secs(self.challenge_timeout_secs),
            open_timeout: Self::secs(self.open_timeout_secs),
            max_answer_bytes: self.max_answer_bytes,
        }
    }
}

/// An error that ends a round without committing it.
#[derive(Debug, thiserror::Error)]
pub enum RoundError {
    /// The chain could not be read.
    #[error(transparent)]
    Network(#[from] NetworkError),
    /// State or log failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The round's parameters are invalid (a configuration error).
    #[error("invalid round configuration: {0}; fix [round] in the config file")]
    Config(String),
    /// A blocking task panicked or was cancelled.
    #[error("internal task failed: {0}")]
    Join(String),
}

/// Bounded blocking pool for verification: at most `threads` verifications run at once, each on a
/// blocking thread.
#[derive(Debug, Clone)]
pub struct VerifyPool {
    permits: Arc<Semaphore>,
}

impl VerifyPool {
    /// A pool running at most `threads` jobs at once.
    pub fn new(threads: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(threads.max(1))),
        }
    }

    /// Runs `f` on a blocking thread once a permit is free.
    pub async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T, String> {
        let _permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| e.to_string())?;
        tokio::task::spawn_blocking(f).await.map_err(|e| e.to_string())
    }
}

/// 64-bit seed: `H(domain ‖ secret ‖ block hash ‖ hotkey ‖ attempt)`.
pub fn derive_seed(secret: &[u8; 32], block_hash: &[u8; 32], hotkey: &[u8], attempt: u64) -> u64 {
    let b = derive_bytes(
        "tensorproof validator miner seed v1",
        secret,
        block_hash,
        hotkey,
        attempt,
    );
    u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}

fn derive_bytes(
    domain: &str,
    secret: &[u8; 32],
    block_hash: &[u8; 32],
    extra: &[u8],
    attempt: u64,
) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key(domain);
    h.update(secret);
    h.update(block_hash);
    h.update(&(extra.len() as u64).to_le_bytes());
    h.update(extra);
    h.update(&attempt.to_le_bytes());
    *h.finalize().as_bytes()
}

/// The seed of challenge `device` in a miner's device group: the miner's seed itself for device 0 (so a
/// one-device miner gets what it always got), else `H(domain ‖ seed ‖ device)`.
pub fn device_seed(seed: u64, device: u32) -> u64 {
    if device == 0 {
        return seed;
    }
    let mut h = blake3::Hasher::new_derive_key("tensorproof validator device seed v1");
    h.update(&seed.to_le_bytes());
    h.update(&device.to_le_bytes());
    let b = h.finalize();
    u64::from_le_bytes(b.as_bytes()[..8].try_into().unwrap_or([0; 8]))
}

/// Milliseconds since the Unix epoch (0 on a clock before it).
pub(crate) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Everything a miner task needs, shared.
struct RoundShared {
    client: Client,
    setup: Arc<RoundSetup>,
    config: RoundConfig,
    bounds: Bounds,
    pool: VerifyPool,
    metrics: Metrics,
    attempt: u64,
    inference: Option<InferenceShared>,
    /// Weights of matmul and inference in the policy's task mix.
    mix: (f64, f64),
    /// Key of the hash that picks the inference sequences to check from the answer.
    picks_key: [u8; 32],
}

/// The round's inference settings and the verifier's model.
struct InferenceShared {
    config: InferenceRoundConfig,
    /// The model every challenge names (the verifier's).
    model: ModelId,
    verifier: SharedVerifier,
}

/// What selects the verifier's model in `[round.inference]`: `model`, `preset`, `model_seed`.
type VerifierKey = (String, Preset, u64);

/// The inference verifier, built once and shared by the verification pool.
type SharedVerifier = Arc<Mutex<Verifier>>;

/// A round's plan: everything derived from the validator's secret, the chain view and the attempt
/// alone, before any I/O (pure, so a replay or a test derives the same).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundPlan {
    /// The attempt this round commits under.
    pub attempt: u64,
    /// The matmul parameters (size, dtype class, sketch, openings, round seed).
    pub params: RoundParams,
    /// Products per matmul challenge.
    pub batch: u32,
    /// The verifier's secret for this round (`B·r`), never sent.
    pub setup_secret: [u8; 32],
    /// Key of the hash that picks the inference sequences to check.
    pub picks_key: [u8; 32],
    /// Every miner of the view with its seed `H(secret ‖ block hash ‖ hotkey ‖ attempt)`.
    pub miners: Vec<(MinerEndpoint, u64)>,
}

impl RoundPlan {
    /// The plan for `attempt` at `view`, with matmul size `n` and `openings` rows opened (default
    /// `min(40, n)`).
    pub fn new(secret: &[u8; 32], view: &ChainView, attempt: u64, n: u32, openings: Option<u32>) -> Self {
        let derive = |domain: &str| derive_bytes(domain, secret, &view.block_hash, b"", attempt);
        let seed = derive("tensorproof validator round seed v1");
        let round_seed = u64::from_le_bytes([
            seed[0], seed[1], seed[2], seed[3], seed[4], seed[5], seed[6], seed[7],
        ]);
        let mut params = RoundParams::new(n, round_seed);
        if let Some(k) = openings {
            params.k = k.min(n);
        }
        let miners = view
            .miners
            .iter()
            .map(|m| {
                let seed = derive_seed(secret, &view.block_hash, m.hotkey.as_bytes(), attempt);
                (m.clone(), seed)
            })
            .collect();
        Self {
            attempt,
            params,
            batch: 1,
            setup_secret: derive("tensorproof validator round secret v1"),
            picks_key: derive("tensorproof validator inference picks v1"),
            miners,
        }
    }

    /// The same plan with matmul challenges in class `dtype`, of `batch` products each.
    #[must_use]
    pub fn with_matmul(mut self, dtype: MatmulDtype, batch: u32) -> Self {
        self.params.dtype = dtype;
        self.batch = batch;
        self
    }
}

/// The validator: its secret, client, ledger and the network it reads.
#[derive(Debug)]
pub struct Validator<N> {
    network: Arc<N>,
    client: Client,
    ledger: Arc<Mutex<Ledger>>,
    secret: [u8; 32],
    config: RoundConfig,
    pool: VerifyPool,
    metrics: Metrics,
    dashboard: Dashboard,
    verifier: Mutex<Option<(VerifierKey, ModelId, SharedVerifier)>>,
    organic: OrganicInbox,
}

/// What one round did.
#[derive(Debug, Clone)]
pub struct RoundSummary {
    /// The committed record.
    pub record: RoundRecord,
    /// The weight submission, if one was made.
    pub submission: Option<SubmitOutcome>,
    /// Wall time of the round (challenges to commit).
    pub wall: Duration,
}

impl<N: Network> Validator<N> {
    /// A validator over `network`, signing with `client`'s hotkey, with `secret` for its seeds.
    pub fn new(
        network: Arc<N>,
        client: Client,
        ledger: Ledger,
        secret: [u8; 32],
        config: RoundConfig,
        metrics: Metrics,
        dashboard: Dashboard,
    ) -> Self {
        let threads = config
            .verify_threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
        dashboard.load(&ledger);
        metrics.set_miner_tflops(&dashboard.matmul_tflops());
        Self {
            network,
            client,
            ledger: Arc::new(Mutex::new(ledger)),
            secret,
            config,
            pool: VerifyPool::new(threads),
            metrics,
            dashboard,
            verifier: Mutex::new(None),
            organic: OrganicInbox::default(),
        }
    }

    /// Scores the organic verdicts `inbox` receives (from the API, [`crate::api::server::Api::new`]):
    /// each round takes every verdict waiting there into its record.
    #[must_use]
    pub fn with_organic_inbox(mut self, inbox: OrganicInbox) -> Self {
        self.organic = inbox;
        self
    }

    /// The inbox whose organic verdicts each round scores.
    pub fn organic_inbox(&self) -> &OrganicInbox {
        &self.organic
    }

    /// The inference verifier for the configured model and the model id challenges name, built on the
    /// verification pool (on the CPU) the first time: the seeded preset, or the real model file loaded and
    /// checked with [`REAL_MODEL_MARGIN`].
    async fn inference_verifier(&self) -> Result<(ModelId, SharedVerifier), RoundError> {
        let config = self.config.inference.clone();
        let key: VerifierKey = (config.model.clone(), config.preset, config.model_seed);
        if let Some((k, id, v)) = self
            .verifier
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            && *k == key
        {
            return Ok((id.clone(), v.clone()));
        }
        let (id, built) = self
            .pool
            .run(move || build_verifier(&config))
            .await
            .map_err(RoundError::Join)?
            .map_err(RoundError::Config)?;
        let shared = Arc::new(Mutex::new(built));
        *self
            .verifier
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((key, id.clone(), shared.clone()));
        Ok((id, shared))
    }

    /// The ledger (shared with blocking tasks).
    pub fn ledger(&self) -> &Arc<Mutex<Ledger>> {
        &self.ledger
    }

    async fn with_ledger<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Ledger) -> Result<T, LedgerError> + Send + 'static,
    ) -> Result<T, RoundError> {
        let ledger = self.ledger.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = ledger.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            f(&mut guard)
        })
        .await
        .map_err(|e| RoundError::Join(e.to_string()))?
        .map_err(RoundError::from)
    }

    /// Runs rounds until `stop` resolves, waiting `interval_secs` between round starts. A failed round is
    /// logged and retried next interval; only a state or log failure ends the loop.
    pub async fn run_until(&self, stop: impl Future<Output = ()>) -> Result<(), RoundError> {
        tokio::pin!(stop);
        loop {
            let started = Instant::now();
            match self.run_round().await {
                Ok(s) => tracing::info!(
                    round = s.record.round,
                    block = s.record.block_number,
                    miners = s.record.miners.len(),
                    passed = s.record.miners.iter().filter(|m| m.verdict.passed).count(),
                    wall_ms = s.wall.as_millis() as u64,
                    weights = ?s.submission.as_ref().map(|o| o.status.code()),
                    "round committed"
                ),
                Err(RoundError::Network(e)) => {
                    self.metrics.chain_errors.inc();
                    self.metrics.round_errors.inc();
                    tracing::warn!("{e}");
                }
                Err(e) => return Err(e),
            }
            let wait = RoundConfig::secs(self.config.interval_secs).saturating_sub(started.elapsed());
            tokio::select! {
                () = &mut stop => return Ok(()),
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Runs one round: read the chain, plan, challenge every miner, commit, and submit weights when
    /// due.
    pub async fn run_round(&self) -> Result<RoundSummary, RoundError> {
        let view = self.read_view().await?;
        let started = Instant::now();
        let started_ms = unix_ms();
        let attempt = self.with_ledger(|l| l.begin_attempt()).await?;
        let (n, dtype) = self.pick_matmul()?;
        let plan = RoundPlan::new(&self.secret, &view, attempt, n, self.config.openings)
            .with_matmul(dtype, self.config.batch_for(n, dtype));
        let shared = Arc::new(self.prepare(&plan).await?);
        let outcomes = challenge_all(&shared, &plan.miners).await?;
        self.count_verdicts(&outcomes);
        let inputs = RoundInputs {
            attempt,
            block_number: view.block_number,
            block_hash: hex::encode(view.block_hash),
            started_ms,
            finished_ms: unix_ms(),
            matmul: plan.params,
            matmul_batch: plan.batch,
            outcomes,
            organic: self.organic.drain(),
            limits: view.limits,
        };
        let inference_record = shared.inference.as_ref().map(|i| i.config.record(&i.model));
        let record = self
            .with_ledger(move |l| l.commit_round_with(inputs, inference_record))
            .await?;
        let wall = started.elapsed();
        self.round_committed(&record, &view, wall);
        let submission = self.submit_if_due(&view, &record).await?;
        Ok(RoundSummary {
            record,
            submission,
            wall,
        })
    }

    /// The chain view, within `chain_timeout_secs`.
    async fn read_view(&self) -> Result<ChainView, RoundError> {
        let view = tokio::time::timeout(
            RoundConfig::secs(self.config.chain_timeout_secs),
            self.network.view(),
        )
        .await
        .map_err(|_| NetworkError("timed out reading the chain view".into()))??;
        Ok(view)
    }

    /// This round's matmul size and dtype class, drawn from `matmul_sizes` and `matmul_dtypes`.
    fn pick_matmul(&self) -> Result<(u32, MatmulDtype), RoundError> {
        let (sizes, dtypes) = (&self.config.matmul_sizes, &self.config.matmul_dtypes);
        if sizes.is_empty() || dtypes.is_empty() {
            return Err(RoundError::Config(
                "matmul_sizes and matmul_dtypes must not be empty".into(),
            ));
        }
        Ok((
            sizes[rand::random_range(0..sizes.len())],
            dtypes[rand::random_range(0..dtypes.len())],
        ))
    }

    /// What every miner task shares: the verifier's setup (built on the verification pool), the
    /// policy's task mix and, when inference is on, its verifier.
    async fn prepare(&self, plan: &RoundPlan) -> Result<RoundShared, RoundError> {
        let (params, batch, secret) = (plan.params, plan.batch, plan.setup_secret);
        let limits = MatmulLimits {
            max_n: params.n.max(MatmulLimits::default().max_n),
            max_batch: batch.max(MatmulLimits::default().max_batch),
            ..MatmulLimits::default()
        };
        let setup = self
            .pool
            .run(move || RoundSetup::batched(params, batch, secret, &limits))
            .await
            .map_err(RoundError::Join)?
            .map_err(|e| RoundError::Config(e.to_string()))?;
        let mix = {
            let ledger = self
                .ledger
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let tasks = &ledger.policy().tasks;
            (
                tasks.weight_of(TaskClass::Matmul),
                tasks.weight_of(TaskClass::Inference),
            )
        };
        let inference = if self.config.inference.enabled && mix.1 > 0.0 {
            let (model, verifier) = self.inference_verifier().await?;
            Some(InferenceShared {
                config: self.config.inference.clone(),
                model,
                verifier,
            })
        } else {
            None
        };
        Ok(RoundShared {
            client: self.client.clone(),
            setup: Arc::new(setup),
            config: self.config.clone(),
            bounds: self.config.bounds(),
            pool: self.pool.clone(),
            metrics: self.metrics.clone(),
            attempt: plan.attempt,
            inference,
            mix,
            picks_key: plan.picks_key,
        })
    }

    fn count_verdicts(&self, outcomes: &[MinerOutcome]) {
        for o in outcomes {
            self.metrics
                .verdicts
                .get_or_create(&VerdictLabels {
                    task: o.task.name().to_owned(),
                    reason: o.verdict.reason.code().to_owned(),
                })
                .inc();
        }
    }

    fn round_committed(&self, record: &RoundRecord, view: &ChainView, wall: Duration) {
        self.metrics.rounds.inc();
        self.metrics.round_seconds.observe(wall.as_secs_f64());
        self.metrics.miners.set(record.miners.len() as i64);
        self.metrics.block.set(view.block_number as i64);
        self.dashboard.round_committed(record);
        self.metrics.set_miner_tflops(&self.dashboard.matmul_tflops());
    }

    /// Submits the round's weights when the chain accepts weights now, and records the outcome.
    async fn submit_if_due(
        &self,
        view: &ChainView,
        record: &RoundRecord,
    ) -> Result<Option<SubmitOutcome>, RoundError> {
        if !view.weights_due {
            return Ok(None);
        }
        let Some(w) = record.weights.clone().filter(|w| !w.uids.is_empty()) else {
            return Ok(None);
        };
        // The attempt is on record before anything is sent, as the round is before its work.
        let attempt = WeightSubmission {
            round: record.round,
            block: view.block_number,
            uids: w.uids.clone(),
            weights: w.weights.clone(),
            status: String::new(),
            detail: String::new(),
            attempts: 0,
            latency_ms: 0.0,
        };
        let pending = attempt.clone();
        let id = self.with_ledger(move |l| l.begin_submission(&pending)).await?;
        let outcome = self.network.submit_weights(&w).await;
        self.metrics
            .weight_submissions
            .get_or_create(&OutcomeLabels {
                outcome: outcome.status.code().to_owned(),
            })
            .inc();
        let sub = WeightSubmission {
            status: outcome.status.code().to_owned(),
            detail: outcome.detail.clone(),
            attempts: outcome.attempts,
            latency_ms: outcome.latency.as_secs_f64() * 1e3,
            ..attempt
        };
        self.with_ledger(move |l| l.finish_submission(id, &sub)).await?;
        if outcome.status == SubmitStatus::Included {
            self.dashboard.weights_set(&w);
        }
        if outcome.status == SubmitStatus::Failed {
            tracing::warn!(detail = %outcome.detail, "weight submission failed");
        }
        Ok(Some(outcome))
    }
}

/// Challenges every miner, in random order, in waves of `concurrency`: within a wave every miner is
/// pinged (and its `/info` read) first, then all its challenges start together.
async fn challenge_all(
    shared: &Arc<RoundShared>,
    miners: &[(MinerEndpoint, u64)],
) -> Result<Vec<MinerOutcome>, RoundError> {
    let mut order = miners.to_vec();
    order.shuffle(&mut rand::rng());
    let mut outcomes = Vec::with_capacity(order.len());
    for wave in order.chunks(shared.config.concurrency.max(1)) {
        let ready = Arc::new(Barrier::new(wave.len()));
        let mut tasks = tokio::task::JoinSet::new();
        for (miner, seed) in wave.iter().cloned() {
            let (shared, ready) = (shared.clone(), ready.clone());
            tasks.spawn(async move { probe_miner(&shared, &miner, seed, &ready).await });
        }
        while let Some(res) = tasks.join_next().await {
            outcomes.push(res.map_err(|e| RoundError::Join(e.to_string()))?);
        }
    }
    Ok(outcomes)
}

/// How long a miner task may wait at its wave's barrier: every other task gets there within its
/// `/info` read and its pings, each bounded by `ping_timeout_secs`.
fn barrier_timeout(cfg: &RoundConfig) -> Duration {
    RoundConfig::secs(cfg.ping_timeout_secs * f64::from(cfg.pings.saturating_add(1)) + 5.0)
}

/// How many devices `miner` advertises in `/info` (1 when it lists none or `/info` fails: an older
/// miner, or one that does not say), capped by `max_devices`.
async fn advertised_devices(shared: &RoundShared, to: &exchange::Target) -> u32 {
    let cap = shared.config.max_devices.max(1);
    if cap == 1 {
        return 1;
    }
    let budget = exchange::Budget {
        timeout: RoundConfig::secs(shared.config.ping_timeout_secs),
        cap: INFO_BYTES,
    };
    match shared.client.info(&to.base, budget).await {
        Ok(info) => u32::try_from(info.devices.len())
            .unwrap_or(u32::MAX)
            .clamp(1, cap),
        Err(e) => {
            tracing::debug!(miner = %to.base, "no /info, one device: {e}");
            1
        }
    }
}

/// Largest `/info` body read, in bytes.
const INFO_BYTES: usize = 64 * 1024;

/// One challenge of a device group, answered and verified.
struct DeviceResult {
    verdict: Verdict,
    /// When its answer arrived (absent without one).
    answered_at: Option<Instant>,
    answer_hash: Option<String>,
    /// The device the miner said computed the answer.
    device: Option<u32>,
}

/// Challenges one miner end to end with the task its seed draws, one challenge per advertised device
/// (up to `max_devices`), all sent together once every miner of the wave has been pinged; every failure
/// becomes a failed verdict with its reason.
async fn probe_miner(
    shared: &Arc<RoundShared>,
    miner: &MinerEndpoint,
    seed: u64,
    ready: &Barrier,
) -> MinerOutcome {
    let inference = shared
        .inference
        .as_ref()
        .filter(|_| pick_task(seed, shared.mix.0, shared.mix.1) == TaskClass::Inference);
    let (task, work) = match inference {
        Some(i) => (
            TaskClass::Inference,
            i.config.challenge(&i.model, seed).work_units() as f64,
        ),
        None => (TaskClass::Matmul, shared.setup.challenge(seed).work_units()),
    };
    let mut out = MinerOutcome {
        uid: miner.uid,
        hotkey: miner.hotkey.to_ss58(),
        task,
        verdict: Verdict::fail(Reason::Malformed, "not run", work),
        rtt_ms: None,
        total_ms: None,
        compute_ms: None,
        seed: format!("{seed:016x}"),
        answer_hash: None,
        devices: 1,
        dtype: (task == TaskClass::Matmul).then_some(shared.setup.params().dtype),
        device_runs: Vec::new(),
    };
    let to = miner.target();

    // 1. Devices from /info, then the RTT on the pooled connection; then wait for the wave.
    let cfg = &shared.config;
    let devices = advertised_devices(shared, &to).await;
    let rtt = shared
        .client
        .rtt(&to, cfg.pings, RoundConfig::secs(cfg.ping_timeout_secs))
        .await;
    if tokio::time::timeout(barrier_timeout(cfg), ready.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            uid = miner.uid,
            "the wave's barrier timed out; challenging anyway"
        );
    }
    match rtt {
        Ok(rtt) => {
            shared.metrics.observe("rtt", rtt.as_secs_f64());
            out.rtt_ms = Some(rtt.as_secs_f64() * 1e3);
        }
        Err(e) => {
            out.verdict = Verdict::fail(verdict_reason(&e), e.to_string(), work);
            return out;
        }
    }

    // 2. The device group: each challenge's exchange (openings chosen only after its answer) and
    // verification on the verification pool, all at once.
    let started = Instant::now();
    let mut group = tokio::task::JoinSet::new();
    for device in 0..devices {
        let (shared, to) = (shared.clone(), to.clone());
        let id = if device == 0 {
            format!("{}-{}", shared.attempt, miner.uid)
        } else {
            format!("{}-{}-{device}", shared.attempt, miner.uid)
        };
        let seed = device_seed(seed, device);
        group.spawn(async move { (device, challenge_device(&shared, &to, &id, task, seed).await) });
    }
    let mut results: Vec<(u32, DeviceResult)> = Vec::with_capacity(devices as usize);
    while let Some(res) = group.join_next().await {
        match res {
            Ok(r) => results.push(r),
            Err(e) => {
                out.verdict = Verdict::fail(Reason::Malformed, format!("challenge task: {e}"), work);
                return out;
            }
        }
    }
    results.sort_by_key(|(d, _)| *d);
    let results: Vec<DeviceResult> = results.into_iter().map(|(_, r)| r).collect();
    let grouped = combine(&results, started);
    out.device_runs = device_runs(task, &results, started, out.rtt_ms);
    out.verdict = grouped.verdict;
    out.devices = grouped.devices;
    out.answer_hash = grouped.answer_hash;
    if let Some(elapsed) = grouped.elapsed {
        let total_ms = elapsed.as_secs_f64() * 1e3;
        out.total_ms = Some(total_ms);
        out.compute_ms = out.rtt_ms.map(|r| (total_ms - r).max(0.0));
    }
    if let (TaskClass::Matmul, true, Some(ms)) = (task, out.verdict.passed, out.compute_ms) {
        let challenge = shared.setup.challenge(seed);
        shared.metrics.observe_tflops(
            challenge.dtype.name(),
            challenge.flops() * f64::from(out.devices),
            ms / 1e3,
        );
    }
    out
}

/// One challenge of class `task` for `seed` under challenge id `id`, answered and verified.
async fn challenge_device(
    shared: &RoundShared,
    to: &exchange::Target,
    id: &str,
    task: TaskClass,
    seed: u64,
) -> DeviceResult {
    let metrics = shared.metrics.clone();
    let observe = move |step: &'static str, elapsed: Duration| metrics.observe(step, elapsed.as_secs_f64());
    let call = Call {
        client: &shared.client,
        to,
        id,
        bounds: &shared.bounds,
        observe: &observe,
    };
    let sent = Instant::now();
    let (exchanged, verify_metric) = match shared.inference.as_ref().filter(|_| task == TaskClass::Inference)
    {
        Some(i) => {
            let picks = Picks {
                key: shared.picks_key,
                sequences: i.config.sequences,
            };
            let challenge = i.config.challenge(&i.model, seed);
            let ex = exchange::inference::exchange(call, challenge, i.verifier.clone(), picks).await;
            (ex, "inference_verify")
        }
        None => (
            exchange::matmul::exchange(call, &shared.setup, seed).await,
            "verify",
        ),
    };
    let work = exchanged.work;
    let verdict = match exchanged.result {
        Ok(verify) => verify_on_pool(shared, verify_metric, work, verify).await,
        Err(verdict) => verdict,
    };
    DeviceResult {
        verdict,
        answered_at: exchanged.answer_elapsed.map(|e| sent + e),
        answer_hash: exchanged.answer_hash,
        device: exchanged.device,
    }
}

/// The passed matmul challenges of a group whose answers named their device, each with its own compute
/// time (from the group's start to its answer, less the RTT): what `/scores` shows per device.
fn device_runs(
    task: TaskClass,
    results: &[DeviceResult],
    started: Instant,
    rtt_ms: Option<f64>,
) -> Vec<DeviceRun> {
    let Some(rtt_ms) = rtt_ms.filter(|_| task == TaskClass::Matmul) else {
        return Vec::new();
    };
    results
        .iter()
        .filter(|r| r.verdict.passed)
        .filter_map(|r| {
            let elapsed = r.answered_at?.saturating_duration_since(started);
            Some(DeviceRun {
                device: r.device?,
                compute_ms: (elapsed.as_secs_f64() * 1e3 - rtt_ms).max(0.0),
            })
        })
        .collect()
}

/// A device group folded into one verdict.
#[derive(Debug)]
struct Grouped {
    verdict: Verdict,
    /// The challenges the verdict sums.
    devices: u32,
    /// From the group's start to the last counted answer.
    elapsed: Option<Duration>,
    answer_hash: Option<String>,
}

/// Folds a device group into one verdict: every challenge passed, the group passes with their summed
/// work; any failed verification fails the group (a wrong answer anywhere forfeits all of it) with the
/// group's work; otherwise (timeouts, refusals) the challenges that passed form the group, and with
/// none, the first failure does. The time is from `started` to the last counted answer.
fn combine(results: &[DeviceResult], started: Instant) -> Grouped {
    let total_work: f64 = results.iter().map(|r| r.verdict.work_units).sum();
    let count = |rs: &[&DeviceResult]| u32::try_from(rs.len()).unwrap_or(u32::MAX).max(1);
    let elapsed = |rs: &[&DeviceResult]| {
        rs.iter()
            .filter_map(|r| r.answered_at)
            .max()
            .map(|t| t.saturating_duration_since(started))
    };
    let hash = |rs: &[&DeviceResult]| {
        if let [one] = rs {
            return one.answer_hash.clone();
        }
        let hashes: Vec<&str> = rs.iter().filter_map(|r| r.answer_hash.as_deref()).collect();
        (!hashes.is_empty()).then(|| blake3::hash(hashes.join(",").as_bytes()).to_hex().to_string())
    };
    let all: Vec<&DeviceResult> = results.iter().collect();
    let passed: Vec<&DeviceResult> = results.iter().filter(|r| r.verdict.passed).collect();
    let wrong = results
        .iter()
        .find(|r| r.verdict.reason.default_treatment() == scoring::task::Treatment::FailedVerification);
    let first_failure = results.iter().find(|r| !r.verdict.passed);
    let (verdict, counted) = match (wrong, first_failure) {
        (Some(w), _) => (with_work(&w.verdict, total_work, results.len()), all),
        (None, None) => (Verdict::pass(total_work), all),
        (None, Some(f)) if passed.is_empty() => (with_work(&f.verdict, total_work, results.len()), all),
        (None, Some(f)) => {
            let work = passed.iter().map(|r| r.verdict.work_units).sum();
            let mut v = Verdict::pass(work);
            v.detail = format!(
                "{} of {} challenges passed; first failure: {} {}",
                passed.len(),
                results.len(),
                f.verdict.reason.code(),
                f.verdict.detail
            );
            (v, passed)
        }
    };
    Grouped {
        verdict,
        devices: count(&counted),
        elapsed: elapsed(&counted),
        answer_hash: hash(&counted),
    }
}

/// `v` with the group's work, and the group size in its detail when there is a group.
fn with_work(v: &Verdict, work: f64, devices: usize) -> Verdict {
    let mut v = v.clone();
    v.work_units = work;
    if devices > 1 {
        v.detail = format!("one of {devices} challenges: {}", v.detail);
    }
    v
}

/// Runs `verify` on the verification pool, timed into the `metric` histogram; a task that could not
/// run is a failed verdict.
async fn verify_on_pool(
    shared: &RoundShared,
    metric: &'static str,
    work: f64,
    verify: impl FnOnce() -> Verdict + Send + 'static,
) -> Verdict {
    let started = Instant::now();
    let verdict = shared.pool.run(verify).await;
    shared.metrics.observe(metric, started.elapsed().as_secs_f64());
    verdict.unwrap_or_else(|e| Verdict::fail(Reason::Malformed, format!("verification task: {e}"), work))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_bind_block_hotkey_and_attempt() {
        let s = [7u8; 32];
        let b = [1u8; 32];
        let base = derive_seed(&s, &b, b"alice", 1);
        assert_eq!(base, derive_seed(&s, &b, b"alice", 1));
        assert_ne!(base, derive_seed(&s, &b, b"bob", 1));
        assert_ne!(base, derive_seed(&s, &b, b"alice", 2));
        assert_ne!(base, derive_seed(&s, &[2u8; 32], b"alice", 1));
        assert_ne!(base, derive_seed(&[8u8; 32], &b, b"alice", 1));
    }

    #[test]
    fn default_batches_keep_an_h200_busy_and_small_sizes_stay_capped() {
        let c = RoundConfig::default();
        for dtype in MatmulDtype::ALL {
            for &n in &c.matmul_sizes {
                let b = c.batch_for(n, dtype);
                let h200 = f64::from(b) * 2.0 * f64::from(n).powi(3) / dtype.h200_peak_flops();
                assert!(h200 >= 0.05, "{dtype} n={n}: B={b} keeps an H200 busy {h200} s");
                assert!(b <= c.matmul_max_batch && b <= MatmulLimits::default().max_batch);
            }
        }
        assert_eq!(c.batch_for(4096, MatmulDtype::F32), 22);
        assert_eq!(c.batch_for(4096, MatmulDtype::Bf16), 288);
        assert_eq!(c.batch_for(8192, MatmulDtype::Bf16), 36);
        assert_eq!(c.batch_for(64, MatmulDtype::F32), c.matmul_max_batch);
        let fixed = RoundConfig {
            matmul_batch: Some(2),
            ..RoundConfig::default()
        };
        assert_eq!(fixed.batch_for(8192, MatmulDtype::Bf16), 2);
    }

    #[test]
    fn device_seeds_keep_device_zero_and_differ_per_device() {
        assert_eq!(device_seed(77, 0), 77);
        let seeds: std::collections::BTreeSet<u64> = (0..8).map(|d| device_seed(77, d)).collect();
        assert_eq!(seeds.len(), 8);
        assert_ne!(device_seed(77, 1), device_seed(78, 1));
    }

    /// A device group: all passed sums the work; one wrong answer fails the whole group; timeouts
    /// leave the ones that passed, timed to the last of them; nothing passed keeps the first failure.
    #[test]
    fn a_device_group_folds_into_one_verdict() {
        let started = Instant::now();
        let at = |ms: u64| Some(started + Duration::from_millis(ms));
        let ok = |ms: u64| DeviceResult {
            verdict: Verdict::pass(10.0),
            answered_at: at(ms),
            answer_hash: Some(format!("h{ms}")),
            device: u32::try_from(ms).ok(),
        };
        let failed = |reason: Reason, ms: Option<u64>| DeviceResult {
            verdict: Verdict::fail(reason, "x", 10.0),
            answered_at: ms.and_then(at),
            answer_hash: None,
            device: Some(7),
        };
        // Per device: the passed challenges, each timed to its own answer less the RTT.
        let runs = device_runs(
            TaskClass::Matmul,
            &[ok(40), failed(Reason::Timeout, None), ok(50)],
            started,
            Some(10.0),
        );
        assert_eq!(
            runs.iter()
                .map(|r| (r.device, r.compute_ms.round()))
                .collect::<Vec<_>>(),
            vec![(40, 30.0), (50, 40.0)]
        );
        assert!(device_runs(TaskClass::Inference, &[ok(40)], started, Some(10.0)).is_empty());
        let g = combine(&[ok(40), ok(50)], started);
        assert!(g.verdict.passed);
        assert_eq!((g.verdict.work_units, g.devices), (20.0, 2));
        assert_eq!(g.elapsed, Some(Duration::from_millis(50)));
        assert_ne!(g.answer_hash, Some("h40".into()));
        let one = combine(&[ok(40)], started);
        assert_eq!((one.devices, one.answer_hash), (1, Some("h40".into())));

        let g = combine(&[ok(40), failed(Reason::WrongRow, Some(45)), ok(50)], started);
        assert_eq!(g.verdict.reason, Reason::WrongRow);
        assert_eq!((g.verdict.work_units, g.devices), (30.0, 3));

        let g = combine(&[ok(40), failed(Reason::Timeout, None), ok(60)], started);
        assert!(g.verdict.passed, "{:?}", g.verdict);
        assert_eq!((g.verdict.work_units, g.devices), (20.0, 2));
        assert_eq!(g.elapsed, Some(Duration::from_millis(60)));
        assert!(g.verdict.detail.contains("2 of 3"), "{}", g.verdict.detail);

        let g = combine(
            &[failed(Reason::Refused, None), failed(Reason::Timeout, None)],
            started,
        );
        assert_eq!(g.verdict.reason, Reason::Refused);
        assert_eq!((g.verdict.work_units, g.devices), (20.0, 2));
        assert_eq!(g.elapsed, None);
    }

    #[test]
    fn task_pick_follows_the_mix() {
        let inference = (0..1000u64)
            .filter(|&s| pick_task(s, 1.0, 1.0) == TaskClass::Inference)
            .count();
        assert!(
            (400..600).contains(&inference),
            "{inference} of 1000 picked inference at 1:1"
        );
        assert!((0..100).all(|s| pick_task(s, 1.0, 0.0) == TaskClass::Matmul));
        assert!((0..100).all(|s| pick_task(s, 0.0, 1.0) == TaskClass::Inference));
        assert!((0..100).all(|s| pick_task(s, 0.0, 0.0) == TaskClass::Matmul));
    }
}
