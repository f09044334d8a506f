//! The round loop.
//!
//! One round, per `ARCHITECTURE.md` ("One validator round"):
//! 1. read the [`ChainView`] at the current block (miners, block hash, weight limits);
//! 2. bump the attempt counter (committed), pick the matmul size, derive the round seed and the round's
//!    secret from the validator secret, the block hash and the attempt, and build the verifier's
//!    [`RoundSetup`] on the blocking pool;
//! 3. every miner, in random order, at most `concurrency` at a time: seed
//!    `H(secret ‖ block hash ‖ hotkey ‖ attempt)`, signed pings for the round-trip time, the timed
//!    challenge, the openings chosen only then, and verification on the verification pool (blocking
//!    threads, never the async workers). Every step has its own timeout and body cap, so a slow, hanging,
//!    garbage or oversized miner costs only its own slot;
//! 4. the [`Ledger`] scores the round and commits it (SQLite, then the round log);
//! 5. when the chain accepts weights, the round's weight vector is submitted and the outcome recorded.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bench_tasks::matmul::{MatmulLimits, OpeningRequest, RoundParams, RoundSetup};
use bench_tasks::wire::{
    CHALLENGE_PATH, ChallengeRequest, ChallengeResponse, OPEN_PATH, OpenRequest, OpenResponse, TaskAnswer,
    TaskChallenge, TaskOpenRequest, TaskOpenings,
};
use bench_tasks::{Reason, Verdict};
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use crate::client::{CallError, MinerClient, MinerEndpoint};
use crate::dashboard::Dashboard;
use crate::ledger::{Ledger, LedgerError, RoundInputs};
use crate::metrics::{Metrics, OutcomeLabels, VerdictLabels};
use crate::network::{ChainView, Network, NetworkError, SubmitStatus};
use crate::record::{MatmulRecord, RoundRecord};
use crate::state::{MinerOutcome, WeightSubmission};

/// Round settings (the `[round]` table of `validator.toml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoundConfig {
    /// Miners challenged at once.
    pub concurrency: usize,
    /// Matmul sizes `n`; each round draws one.
    pub matmul_sizes: Vec<u32>,
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
}

impl Default for RoundConfig {
    fn default() -> Self {
        Self {
            concurrency: 32,
            matmul_sizes: vec![192, 256, 320],
            openings: None,
            pings: 2,
            ping_timeout_secs: 2.0,
            challenge_timeout_secs: 30.0,
            open_timeout_secs: 10.0,
            max_answer_bytes: 32 << 20,
            verify_threads: None,
            interval_secs: 12.0,
            chain_timeout_secs: 30.0,
        }
    }
}

impl RoundConfig {
    fn secs(s: f64) -> Duration {
        Duration::try_from_secs_f64(s).unwrap_or(Duration::from_secs(1))
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

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Everything a miner task needs, shared.
struct RoundShared {
    client: MinerClient,
    setup: Arc<RoundSetup>,
    config: RoundConfig,
    pool: VerifyPool,
    metrics: Metrics,
    attempt: u64,
    task: String,
}

/// The validator: its secret, client, ledger and the network it reads.
#[derive(Debug)]
pub struct Validator<N> {
    network: Arc<N>,
    client: MinerClient,
    ledger: Arc<Mutex<Ledger>>,
    secret: [u8; 32],
    config: RoundConfig,
    pool: VerifyPool,
    metrics: Metrics,
    dashboard: Dashboard,
}

/// What one round did.
#[derive(Debug, Clone)]
pub struct RoundSummary {
    /// The committed record.
    pub record: RoundRecord,
    /// The weight submission status, if one was made.
    pub submission: Option<SubmitStatus>,
    /// Wall time of the round (challenges to commit).
    pub wall: Duration,
}

impl<N: Network> Validator<N> {
    /// A validator over `network`, signing with `client`'s hotkey, with `secret` for its seeds.
    pub fn new(
        network: Arc<N>,
        client: MinerClient,
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
        Self {
            network,
            client,
            ledger: Arc::new(Mutex::new(ledger)),
            secret,
            config,
            pool: VerifyPool::new(threads),
            metrics,
            dashboard,
        }
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
                    weights = ?s.submission.as_ref().map(SubmitStatus::code),
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

    /// Runs one round: challenges, verification, commit, and a weight submission when due.
    pub async fn run_round(&self) -> Result<RoundSummary, RoundError> {
        let view: ChainView = tokio::time::timeout(
            RoundConfig::secs(self.config.chain_timeout_secs),
            self.network.view(),
        )
        .await
        .map_err(|_| NetworkError("timed out reading the chain view".into()))??;
        let started = Instant::now();
        let started_ms = unix_ms();
        let attempt = self.with_ledger(|l| l.begin_attempt()).await?;
        let n = {
            let sizes = &self.config.matmul_sizes;
            if sizes.is_empty() {
                return Err(RoundError::Config("matmul_sizes is empty".into()));
            }
            sizes[rand::random_range(0..sizes.len())]
        };
        let round_seed = {
            let b = derive_bytes(
                "tensorproof validator round seed v1",
                &self.secret,
                &view.block_hash,
                b"",
                attempt,
            );
            u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
        };
        let setup_secret = derive_bytes(
            "tensorproof validator round secret v1",
            &self.secret,
            &view.block_hash,
            b"",
            attempt,
        );
        let mut params = RoundParams::new(n, round_seed);
        if let Some(k) = self.config.openings {
            params.k = k.min(n);
        }
        let limits = MatmulLimits {
            max_n: n.max(MatmulLimits::default().max_n),
            ..MatmulLimits::default()
        };
        let setup = self
            .pool
            .run(move || RoundSetup::new(params, setup_secret, &limits))
            .await
            .map_err(RoundError::Join)?
            .map_err(|e| RoundError::Config(e.to_string()))?;
        let shared = Arc::new(RoundShared {
            client: self.client.clone(),
            setup: Arc::new(setup),
            config: self.config.clone(),
            pool: self.pool.clone(),
            metrics: self.metrics.clone(),
            attempt,
            task: "matmul".to_owned(),
        });

        let mut miners = view.miners.clone();
        miners.shuffle(&mut rand::rng());
        let slots = Arc::new(Semaphore::new(self.config.concurrency.max(1)));
        let mut tasks = tokio::task::JoinSet::new();
        for miner in miners {
            let seed = derive_seed(&self.secret, &view.block_hash, miner.hotkey.as_bytes(), attempt);
            let (shared, slots) = (shared.clone(), slots.clone());
            tasks.spawn(async move {
                let _slot = slots.acquire_owned().await;
                probe_miner(&shared, &miner, seed).await
            });
        }
        let mut outcomes = Vec::with_capacity(tasks.len());
        while let Some(res) = tasks.join_next().await {
            outcomes.push(res.map_err(|e| RoundError::Join(e.to_string()))?);
        }
        for o in &outcomes {
            self.metrics
                .verdicts
                .get_or_create(&VerdictLabels {
                    task: o.task.clone(),
                    reason: o.verdict.reason.code().to_owned(),
                })
                .inc();
        }
        let inputs = RoundInputs {
            attempt,
            block_number: view.block_number,
            block_hash: hex::encode(view.block_hash),
            started_ms,
            finished_ms: unix_ms(),
            matmul: MatmulRecord {
                n: params.n,
                m: params.m,
                p: params.p,
                k: params.k,
                round_seed,
            },
            outcomes,
            limits: view.limits,
        };
        let record = self.with_ledger(move |l| l.commit_round(inputs)).await?;
        let wall = started.elapsed();
        self.metrics.rounds.inc();
        self.metrics.round_seconds.observe(wall.as_secs_f64());
        self.metrics.miners.set(record.miners.len() as i64);
        self.metrics.block.set(view.block_number as i64);
        self.dashboard.round_committed(&record);

        let mut submission = None;
        if view.weights_due
            && let Some(w) = record.weights.clone().filter(|w| !w.uids.is_empty())
        {
            let outcome = self.network.submit_weights(&w).await;
            self.metrics
                .weight_submissions
                .get_or_create(&OutcomeLabels {
                    outcome: outcome.status.code().to_owned(),
                })
                .inc();
            let sub = WeightSubmission {
                round: record.round,
                block: view.block_number,
                uids: w.uids.clone(),
                weights: w.weights.clone(),
                status: outcome.status.code().to_owned(),
                detail: outcome.detail.clone(),
                attempts: outcome.attempts,
                latency_ms: outcome.latency.as_secs_f64() * 1e3,
            };
            self.with_ledger(move |l| l.record_submission(&sub)).await?;
            if outcome.status == SubmitStatus::Included {
                self.dashboard.weights_set(&w);
            }
            if outcome.status == SubmitStatus::Failed {
                tracing::warn!(detail = %outcome.detail, "weight submission failed");
            }
            submission = Some(outcome.status);
        }
        Ok(RoundSummary {
            record,
            submission,
            wall,
        })
    }
}

/// Challenges one miner end to end; every failure becomes a failed verdict with its reason.
async fn probe_miner(shared: &RoundShared, miner: &MinerEndpoint, seed: u64) -> MinerOutcome {
    let challenge = shared.setup.challenge(seed);
    let work = challenge.work_units();
    let mut out = MinerOutcome {
        uid: miner.uid,
        hotkey: miner.hotkey.to_ss58(),
        task: shared.task.clone(),
        verdict: Verdict::fail(Reason::Malformed, "not run", work),
        rtt_ms: None,
        total_ms: None,
        compute_ms: None,
        seed: format!("{seed:016x}"),
        answer_hash: None,
    };
    let cfg = &shared.config;
    let failed = |out: &mut MinerOutcome, e: CallError| {
        out.verdict = Verdict::fail(e.reason(), e.to_string(), work);
    };

    // 1. RTT on the pooled connection.
    match shared
        .client
        .ping(miner, cfg.pings, RoundConfig::secs(cfg.ping_timeout_secs))
        .await
    {
        Ok(rtt) => {
            shared.metrics.observe("rtt", rtt.as_secs_f64());
            out.rtt_ms = Some(rtt.as_secs_f64() * 1e3);
        }
        Err(e) => {
            failed(&mut out, e);
            return out;
        }
    }

    // 2. The timed challenge.
    let id = format!("{}-{}", shared.attempt, miner.uid);
    let request = ChallengeRequest {
        id: id.clone(),
        challenge: TaskChallenge::Matmul(challenge),
    };
    let body = serde_json::to_vec(&request).unwrap_or_default();
    let (n, m, k) = (
        challenge.n as usize,
        challenge.m as usize,
        shared.setup.params().k as usize,
    );
    // JSON of an integer-valued f32 is at most ~13 bytes; allow 24 per value plus the envelope.
    let cap1 = (n * m * 24 + 64 * 1024).min(cfg.max_answer_bytes);
    let reply1 = match shared
        .client
        .post(
            "challenge",
            miner,
            CHALLENGE_PATH,
            body,
            RoundConfig::secs(cfg.challenge_timeout_secs),
            cap1,
        )
        .await
    {
        Ok(r) => r,
        Err(e) => {
            failed(&mut out, e);
            return out;
        }
    };
    shared.metrics.observe("challenge", reply1.elapsed.as_secs_f64());
    let total_ms = reply1.elapsed.as_secs_f64() * 1e3;
    out.total_ms = Some(total_ms);
    out.compute_ms = out.rtt_ms.map(|r| (total_ms - r).max(0.0));
    let mut hasher = blake3::Hasher::new();
    hasher.update(&reply1.body);
    out.answer_hash = Some(hasher.finalize().to_hex().to_string());
    let answer = match serde_json::from_slice::<ChallengeResponse>(&reply1.body) {
        Ok(r) if r.id == id => match r.answer {
            TaskAnswer::Matmul(a) => a,
        },
        Ok(r) => {
            out.verdict = Verdict::fail(
                Reason::Malformed,
                format!("answer names challenge {:?}", r.id),
                work,
            );
            return out;
        }
        Err(e) => {
            out.verdict = Verdict::fail(Reason::Malformed, format!("challenge answer: {e}"), work);
            return out;
        }
    };

    // 3. Openings chosen only now.
    let rows: OpeningRequest = shared.setup.choose_openings(seed);
    let open = OpenRequest {
        id: id.clone(),
        open: TaskOpenRequest::Matmul(rows.clone()),
    };
    let body = serde_json::to_vec(&open).unwrap_or_default();
    let cap2 = (k * n * 24 + 64 * 1024).min(cfg.max_answer_bytes);
    let reply2 = match shared
        .client
        .post(
            "open",
            miner,
            OPEN_PATH,
            body,
            RoundConfig::secs(cfg.open_timeout_secs),
            cap2,
        )
        .await
    {
        Ok(r) => r,
        Err(e) => {
            failed(&mut out, e);
            return out;
        }
    };
    shared.metrics.observe("open", reply2.elapsed.as_secs_f64());
    hasher.update(&reply2.body);
    out.answer_hash = Some(hasher.finalize().to_hex().to_string());

    // 4. Parse and verify on the verification pool.
    let setup = shared.setup.clone();
    let body2 = reply2.body;
    let verify_start = Instant::now();
    let verdict = shared
        .pool
        .run(move || match serde_json::from_slice::<OpenResponse>(&body2) {
            Ok(r) if r.id == id => match r.openings {
                TaskOpenings::Matmul(o) => setup.verify(&challenge, &answer, &rows, &o),
            },
            Ok(r) => Verdict::fail(
                Reason::Malformed,
                format!("openings name challenge {:?}", r.id),
                work,
            ),
            Err(e) => Verdict::fail(Reason::Malformed, format!("openings: {e}"), work),
        })
        .await;
    shared
        .metrics
        .observe("verify", verify_start.elapsed().as_secs_f64());
    out.verdict =
        verdict.unwrap_or_else(|e| Verdict::fail(Reason::Malformed, format!("verification task: {e}"), work));
    out
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
}
