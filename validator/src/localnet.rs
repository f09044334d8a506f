//! `validator localnet`: the whole subnet on one machine, and `validator localnet-setup` for docker.
//!
//! [`run`] starts the embedded devnet in-process, creates and tunes a subnet with
//! [`chain::bootstrap`], starts real miner servers (flex backend, adversary modes from `miner`, each
//! holding the real model the inference challenges run, SmolLM2-135M-Instruct by default) on
//! distinct loopback addresses 127.0.0.2, 127.0.0.3, … (the chain refuses 127.0.0.1), registers and
//! serves them, waits for the validator's permit, then runs the validator's own round loop
//! ([`Validator::run_round`]) over the chain ([`ChainNetwork`]), setting weights through the chain
//! client, until the chain has run the requested number of epochs after the block that included the
//! first weights (read from its epoch clock, so an epoch that fired before them never counts). The
//! [`LocalnetReport`] holds, per miner, its verdict counts, EMA score and last weight from the validator
//! and its incentive read back from the chain.
//!
//! [`crate::setup`] is the same bootstrap against an external chain (subtensor's localnet image); it
//! needs only [`chain::bootstrap`], so it is in the production build.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let report = validator::localnet::run(&validator::localnet::LocalnetConfig::default()).await?;
//! for m in &report.miners {
//!     println!("uid {} {} incentive {:.3}", m.uid, m.kind, m.incentive);
//! }
//! # Ok(()) }
//! ```

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chain::auth::RequestSigner;
use chain::bootstrap::{self, Account, SubnetPlan};
use chain::calls::{AxonSpec, Hyperparameter};
use chain::client::{ChainClient, Network as ChainNet};
use chain::keys::Keypair;
use devnet::{Devnet, DevnetConfig};
use miner::behavior::Behavior;
use miner::models::HeldModels;
use serde::Serialize;

use crate::chain_net::ChainNetwork;
use crate::dashboard::Dashboard;
use crate::ledger::Ledger;
use crate::metrics::Metrics;
use crate::network::SubmitStatus;
use crate::organic::OrganicInbox;
use crate::round::{InferenceRoundConfig, RoundConfig, RoundSummary, Validator};
pub use crate::setup::MAX_MINERS;
use crate::setup::client_config;

/// How a localnet runs.
#[derive(Debug, Clone)]
pub struct LocalnetConfig {
    /// Miners in all, honest ones first.
    pub miners: usize,
    /// Adversary modes (`lazy:0.1`, `forge`, `slow:MS`, `garbage`, …) of the last miners, one each.
    pub adversaries: Vec<String>,
    /// Epochs the chain must run after the block that included the first weights (with commit-reveal,
    /// after their reveal epoch).
    pub epochs: u64,
    /// Blocks per epoch.
    pub tempo: u16,
    /// Block interval of the devnet.
    pub block_time: Duration,
    /// Matmul sizes the rounds draw from.
    pub matmul_sizes: Vec<u32>,
    /// Shortest time between round starts.
    pub round_interval: Duration,
    /// Commit-reveal on the subnet: weights go as timelocked (CR-v4) commits the devnet reveals.
    pub commit_reveal: bool,
    /// Print one line per round to stderr.
    pub progress: bool,
    /// Give up after this long.
    pub deadline: Duration,
    /// The model of the inference challenges: `smollm2` (the default; `scripts/fetch-model.sh` fetches
    /// it), a GGUF path, or `seeded` for the seeded `tiny` preset (no file, fast). The miners hold the
    /// real model (`miner run --model`) and the validator verifies on it on the CPU.
    pub inference_model: String,
    /// After the run, keep the subnet up and serve the OpenAI-compatible API here until Ctrl-C (the miners
    /// then hold the default real model, `smollm2`).
    pub serve_api: Option<SocketAddr>,
    /// The API key to accept (default: a fresh one, printed).
    pub api_key: Option<String>,
    /// The mechanism the validator sets its weights on (`--mechanism`); above 0 the subnet is split
    /// into `mechanism + 1` mechanisms (the devnet allows 2, subtensor's default `MaxMechanismCount`).
    pub mechanism: u8,
}

impl Default for LocalnetConfig {
    fn default() -> Self {
        Self {
            miners: 4,
            adversaries: vec!["lazy:0.1".into()],
            epochs: 3,
            tempo: 10,
            block_time: Duration::from_millis(200),
            matmul_sizes: vec![64, 96],
            round_interval: Duration::from_millis(500),
            commit_reveal: false,
            progress: true,
            deadline: Duration::from_secs(600),
            inference_model: bench_tasks::inference::real::SMOLLM2.to_owned(),
            serve_api: None,
            api_key: None,
            mechanism: 0,
        }
    }
}

impl LocalnetConfig {
    /// The `[round.inference]` settings: a small challenge on a real model (`B = 4`, `L = 16`, `T = 16`,
    /// two sequences checked, so that the CPU miners and the CPU verifier keep rounds short), or the
    /// defaults on the seeded preset.
    pub fn inference_round(&self) -> InferenceRoundConfig {
        let seeded = InferenceRoundConfig::default();
        let config = InferenceRoundConfig {
            model: self.inference_model.trim().to_owned(),
            ..seeded
        };
        if config.is_seeded() {
            return seeded;
        }
        InferenceRoundConfig {
            batch: 4,
            prompt_len: 16,
            new_tokens: 16,
            sequences: 2,
            ..config
        }
    }
}

/// One miner in the final summary.
#[derive(Debug, Clone, Serialize)]
pub struct MinerSummary {
    /// Its uid.
    pub uid: u16,
    /// Its hotkey (ss58).
    pub hotkey: String,
    /// `honest` or the adversary mode.
    pub kind: String,
    /// Verdicts passed.
    pub passed: u64,
    /// Verdicts failed.
    pub failed: u64,
    /// The validator's EMA score.
    pub score: f64,
    /// The last weight the validator set (u16).
    pub weight: u16,
    /// Incentive read back from the chain, in [0, 1].
    pub incentive: f64,
}

/// What a localnet run did (`--json` prints exactly this).
#[derive(Debug, Clone, Serialize)]
pub struct LocalnetReport {
    /// Epochs the chain ran after the block that included the first weights (with commit-reveal,
    /// after their reveal epoch).
    pub epochs: u64,
    /// The chain's block number at the end.
    pub blocks: u64,
    /// One row per miner, by uid.
    pub miners: Vec<MinerSummary>,
    /// Weight submissions included.
    pub weights_set: u64,
    /// Weight submissions that failed.
    pub weights_failed: u64,
    /// The extrinsic that carried the weights (`set_mechanism_weights`, or
    /// `commit_timelocked_mechanism_weights` with commit-reveal on; the legacy `set_weights` and
    /// `commit_timelocked_weights` on runtimes without mechanisms).
    pub weights_call: Option<String>,
}

impl LocalnetReport {
    /// The summary table for people.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{:>4}  {:<48}  {:<10}  {:>6}  {:>6}  {:>7}  {:>6}  {:>9}\n",
            "uid", "hotkey", "kind", "passed", "failed", "score", "weight", "incentive"
        );
        for m in &self.miners {
            out.push_str(&format!(
                "{:>4}  {:<48}  {:<10}  {:>6}  {:>6}  {:>7.4}  {:>6}  {:>9.4}\n",
                m.uid, m.hotkey, m.kind, m.passed, m.failed, m.score, m.weight, m.incentive
            ));
        }
        out.push_str(&format!(
            "{} epochs, {} blocks, weights set {} times ({} failed) with {}\n",
            self.epochs,
            self.blocks,
            self.weights_set,
            self.weights_failed,
            self.weights_call.as_deref().unwrap_or("-")
        ));
        out
    }
}

fn dev_key(name: &str) -> anyhow::Result<Keypair> {
    Keypair::from_uri(&format!("//tensorproof-localnet-{name}")).map_err(|e| anyhow::anyhow!("{e}"))
}

/// The behaviors of `config.miners` miners: honest, then the adversaries.
fn behaviors(config: &LocalnetConfig) -> anyhow::Result<Vec<Behavior>> {
    let adversaries: Vec<&str> = config
        .adversaries
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .collect();
    let total = config.miners.max(adversaries.len());
    if total == 0 || total > MAX_MINERS {
        anyhow::bail!("--miners must be between 1 and {MAX_MINERS}");
    }
    let mut out = vec![Behavior::Honest; total - adversaries.len()];
    for a in adversaries {
        out.push(Behavior::parse(a).map_err(|e| anyhow::anyhow!("--adversaries {a}: {e}"))?);
    }
    Ok(out)
}

/// Prefix of the state folders `validator localnet` makes under the temporary directory.
/// Products per matmul challenge on the localnet (its miners run on the CPU; the rounds still exercise
/// the batched protocol: commitment, openings across the stack).
pub const LOCALNET_MAX_BATCH: u32 = 4;

const STATE_DIR_PREFIX: &str = "validator-localnet-";
/// The file in a state folder its owning process holds an exclusive lock on while it runs.
const OWNER_LOCK: &str = ".owner";
/// A folder without an owner lock (a run from before the lock, or one killed while creating it) is
/// removed once it is this old; a live run creates its lock within microseconds.
const UNLOCKED_GRACE: Duration = Duration::from_secs(600);

/// A localnet's state folder, removed on drop; its owner lock is held while it exists.
#[derive(Debug)]
pub struct StateDir {
    path: PathBuf,
    _owner: std::fs::File,
}

impl StateDir {
    /// Creates a fresh state folder under `base`, first removing the stale folders that runs killed
    /// with `-9` left there ([`remove_stale_state_dirs`]).
    pub fn create_in(base: &Path) -> std::io::Result<Self> {
        let removed = remove_stale_state_dirs(base);
        if removed > 0 {
            tracing::info!(removed, "removed state folders of localnet runs that are gone");
        }
        let mut b = [0u8; 8];
        rand::fill(&mut b);
        let path = base.join(format!("{STATE_DIR_PREFIX}{}", hex::encode(b)));
        std::fs::create_dir_all(&path)?;
        let owner = std::fs::File::create(path.join(OWNER_LOCK))?;
        owner.try_lock().map_err(std::io::Error::other)?;
        Ok(Self { path, _owner: owner })
    }

    /// The folder.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for StateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Removes the `validator-localnet-*` folders under `base` whose owning process is gone: their owner
/// lock can be taken (the kernel drops a process's locks when it dies, `kill -9` included), or they have
/// no lock file and are older than ten minutes. Folders of live runs are kept. Returns how many went.
pub fn remove_stale_state_dirs(base: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(base) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let is_ours = name.to_str().is_some_and(|n| n.starts_with(STATE_DIR_PREFIX));
        // `file_type` does not follow symlinks: a link with our prefix is never followed or removed.
        if !is_ours || !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let dir = entry.path();
        let stale = match std::fs::File::open(dir.join(OWNER_LOCK)) {
            // Taking the lock succeeds only when no live process holds it; it is released on drop.
            Ok(lock) => lock.try_lock().is_ok(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > UNLOCKED_GRACE),
            Err(_) => false,
        };
        if stale && std::fs::remove_dir_all(&dir).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// Runs a localnet (see the module docs) and returns its summary.
pub async fn run(config: &LocalnetConfig) -> anyhow::Result<LocalnetReport> {
    let behaviors = behaviors(config)?;
    let dir = StateDir::create_in(&std::env::temp_dir()).context("creating the localnet state folder")?;
    let result = tokio::time::timeout(config.deadline, run_in(config, &behaviors, dir.path())).await;
    let result = result.map_err(|_| {
        anyhow::anyhow!(
            "the localnet did not finish within {:?}; run with RUST_LOG=info to see where it stalled",
            config.deadline
        )
    })?;
    let (report, lingering) = result?;
    if let Some(l) = lingering {
        eprint!("{}", report.table());
        let _ = tokio::signal::ctrl_c().await;
        eprintln!("localnet: stopping");
        l.rounds.abort();
        for s in l.servers {
            s.shutdown().await;
        }
        l.devnet.shutdown().await;
    }
    drop(dir);
    Ok(report)
}

/// Pause between rounds while the API is served (`--serve-api`).
const SERVING_ROUND_INTERVAL: Duration = Duration::from_secs(5);

/// What stays up while the API is served (`--serve-api`).
struct Lingering {
    servers: Vec<miner::MinerServer>,
    devnet: Devnet,
    /// The validator's round loop, still scoring (organic verdicts included).
    rounds: tokio::task::JoinHandle<()>,
}

async fn run_in(
    config: &LocalnetConfig,
    behaviors: &[Behavior],
    dir: &Path,
) -> anyhow::Result<(LocalnetReport, Option<Lingering>)> {
    let say = |line: String| {
        if config.progress {
            eprintln!("localnet: {line}");
        }
    };
    let started = Instant::now();
    let devnet = Devnet::spawn(DevnetConfig {
        block_time: Some(config.block_time),
        tempo: config.tempo,
        ..DevnetConfig::default()
    })
    .await?;
    say(format!("devnet at {}", devnet.ws_url()));
    // The client finds the devnet's beacon in Drand::BeaconConfig, as it finds quicknet on finney.
    let client = Arc::new(ChainClient::connect(&ChainNet::Url(devnet.ws_url()), client_config()).await?);

    let v_hot = dev_key("validator")?;
    let inference = config.inference_round();
    // With --serve-api the miners hold a real model even when the challenges use the seeded preset.
    let held = if inference.is_seeded() && config.serve_api.is_none() {
        HeldModels::none()
    } else {
        let spec = if inference.is_seeded() {
            bench_tasks::inference::real::SMOLLM2.to_owned()
        } else {
            inference.model.clone()
        };
        let held = tokio::task::spawn_blocking(move || HeldModels::load(&[spec]))
            .await
            .context("the model loading thread failed")??;
        say(format!(
            "inference on {} ({:.1} s to load)",
            held.models()
                .first()
                .map_or_else(String::new, |m| m.id.to_string()),
            started.elapsed().as_secs_f64()
        ));
        held
    };
    let (servers, accounts) = start_miners(behaviors, &v_hot, Arc::new(held)).await?;
    say(format!(
        "{} miners on {}",
        servers.len(),
        servers
            .iter()
            .map(|s| s.local_addr().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let boot = set_up_subnet(config, &client, &v_hot, &accounts, &say).await?;
    let netuid = boot.netuid;

    // The validator's real round loop over the chain.
    let network = Arc::new(
        ChainNetwork::new(client.clone(), v_hot.clone(), netuid, true).with_mechanism(config.mechanism),
    );
    let api_network = network.clone();
    let metrics = Metrics::new();
    let ledger = Ledger::open(dir, scoring::policy::Policy::default(), &v_hot.ss58(), netuid)?;
    let dashboard = Dashboard::new();
    let inbox = OrganicInbox::default();
    let mut secret = [0u8; 32];
    rand::fill(&mut secret);
    let round_config = RoundConfig {
        matmul_sizes: config.matmul_sizes.clone(),
        // Small batches on the CPU miners here: the production default sizes challenges for GPUs.
        matmul_max_batch: LOCALNET_MAX_BATCH,
        interval_secs: config.round_interval.as_secs_f64(),
        concurrency: 8,
        inference,
        ..RoundConfig::default()
    };
    let v = Validator::new(
        network,
        exchange::Client::pooled(Arc::new(RequestSigner::new(v_hot.clone())), 2)?,
        ledger,
        secret,
        round_config,
        metrics.clone(),
        dashboard.clone(),
    )
    .with_organic_inbox(inbox.clone());
    let tally = drive_rounds(config, &client, netuid, &v, &say).await?;

    // The summary: the validator's view plus incentive read back from the chain (its mechanism's).
    let graph = client.mechanism_metagraph(netuid, config.mechanism).await?;
    let view = dashboard.view();
    let miners = boot
        .miner_uids
        .iter()
        .zip(&accounts)
        .zip(behaviors)
        .map(|((&uid, account), behavior)| {
            let row = view.miners.iter().find(|r| r.uid == uid);
            MinerSummary {
                uid,
                hotkey: account.hotkey.ss58(),
                kind: behavior.name(),
                passed: row.map_or(0, |r| r.passed),
                failed: row.map_or(0, |r| r.failed),
                score: row.map_or(0.0, |r| r.score),
                weight: row.map_or(0, |r| r.weight),
                incentive: graph
                    .by_uid(uid)
                    .map_or(0.0, |n| f64::from(n.incentive) / f64::from(u16::MAX)),
            }
        })
        .collect();
    say(format!("done in {:.1} s", started.elapsed().as_secs_f64()));
    let report = LocalnetReport {
        epochs: tally.epochs,
        blocks: graph.block,
        miners,
        weights_set: tally.weights_set,
        weights_failed: tally.weights_failed,
        weights_call: tally.weights_call,
    };
    if let Some(listen) = config.serve_api {
        let api_config = crate::api::ApiConfig {
            listen: Some(listen),
            model: Some(bench_tasks::inference::real::SMOLLM2.into()),
            // Every answer is checked, so each request shows up as an organic verdict in the next round.
            verify_fraction: 1.0,
            ..crate::api::ApiConfig::default()
        };
        let signer = exchange::Client::pooled(Arc::new(RequestSigner::new(v_hot.clone())), 8)?;
        let api = crate::api::server::start(
            &api_config,
            dir,
            api_network,
            &signer,
            &metrics,
            &dashboard,
            inbox,
        )
        .await?;
        let key = crate::api::store::ApiStore::open_dir(dir).and_then(|mut store| {
            let new = crate::api::store::NewKey {
                name: "localnet".into(),
                ..Default::default()
            };
            match &config.api_key {
                Some(k) => store.import_key(k, &new).map(|_| k.clone()),
                None => store.create_key(&new).map(|(k, _)| k),
            }
        })?;
        let (bound, _) = api
            .serve(listen)
            .await
            .with_context(|| format!("binding the API on {listen}"))?;
        eprintln!(
            "localnet: serving the OpenAI-compatible API on http://{bound}/v1 until Ctrl-C (chat page: http://{bound}/chat)\n\
             localnet: API key {key}; usage: validator usage --state-dir {}\n\
             curl http://{bound}/v1/chat/completions -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' \\\n  \
             -d '{{\"model\":\"smollm2\",\"messages\":[{{\"role\":\"user\",\"content\":\"Name three colours.\"}}],\"max_tokens\":32}}'",
            dir.display()
        );
        // Rounds go on while the API serves, at a calmer pace than the run's (the CPU is the miners'
        // GPU here), so organic verdicts are committed and scored with them.
        let rounds = tokio::spawn(async move {
            loop {
                match v.run_round().await {
                    Ok(s) if !s.record.organic.is_empty() => eprintln!(
                        "localnet: round {} scored {} organic verdicts",
                        s.record.round,
                        s.record.organic.len()
                    ),
                    Ok(_) => {}
                    Err(e) => eprintln!("localnet: round failed: {e}"),
                }
                tokio::time::sleep(SERVING_ROUND_INTERVAL).await;
            }
        });
        return Ok((
            report,
            Some(Lingering {
                servers,
                devnet,
                rounds,
            }),
        ));
    }
    for s in servers {
        s.shutdown().await;
    }
    devnet.shutdown().await;
    Ok((report, None))
}

/// Starts one real miner server per behavior, each on its own loopback address (127.0.0.2 upwards),
/// allow-listing the validator hotkey `v_hot` and holding the real models `held` (one host copy for all);
/// returns the servers and their chain accounts.
async fn start_miners(
    behaviors: &[Behavior],
    v_hot: &Keypair,
    held: Arc<HeldModels>,
) -> anyhow::Result<(Vec<miner::MinerServer>, Vec<Account>)> {
    let mut servers = Vec::with_capacity(behaviors.len());
    let mut accounts = Vec::with_capacity(behaviors.len());
    for (i, behavior) in behaviors.iter().enumerate() {
        let hotkey = dev_key(&format!("miner-{}", i + 1))?;
        let ip = Ipv4Addr::new(127, 0, (i / 250) as u8, (i % 250) as u8 + 2);
        let listener = tokio::net::TcpListener::bind(SocketAddr::new(IpAddr::V4(ip), 0))
            .await
            .with_context(|| format!("binding a miner to {ip}"))?;
        let miner_config = miner::MinerConfig {
            behavior: *behavior,
            models: Arc::clone(&held),
            ..miner::MinerConfig::new(
                hotkey.clone(),
                miner::validators::ValidatorSet::allow_list([v_hot.account()]),
            )
        };
        let server = miner::MinerServer::start(miner_config, listener).await?;
        let axon = AxonSpec {
            ip: IpAddr::V4(ip),
            port: server.local_addr().port(),
            version: 1,
        };
        accounts.push(Account::new(dev_key(&format!("miner-{}-cold", i + 1))?, hotkey).serving(axon));
        servers.push(server);
    }
    Ok((servers, accounts))
}

/// Subnet, funding, registration, axons and stake (//Alice as sudo), then the validator's permit.
async fn set_up_subnet(
    config: &LocalnetConfig,
    client: &ChainClient,
    v_hot: &Keypair,
    accounts: &[Account],
    say: &impl Fn(String),
) -> anyhow::Result<bootstrap::BootstrapReport> {
    let sudo = Keypair::from_uri("//Alice").map_err(|e| anyhow::anyhow!("{e}"))?;
    let validator = Account::new(dev_key("validator-cold")?, v_hot.clone());
    let mut plan = SubnetPlan::localnet(config.tempo);
    for hp in &mut plan.hyperparameters {
        if let Hyperparameter::CommitRevealWeightsEnabled(on) = hp {
            *on = config.commit_reveal;
        }
    }
    if config.mechanism > 0 {
        let count = config
            .mechanism
            .checked_add(1)
            .filter(|c| *c <= 2)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "--mechanism {}: the devnet allows 2 mechanisms (MaxMechanismCount); pass 0 or 1",
                    config.mechanism
                )
            })?;
        // MaxAllowedUids × count may not exceed 256.
        plan.hyperparameters
            .push(Hyperparameter::MaxAllowedUids(256 / u16::from(count)));
        plan.hyperparameters.push(Hyperparameter::MechanismCount(count));
    }
    let boot = bootstrap::bootstrap(client, &sudo, &plan, &validator, accounts).await?;
    say(format!(
        "subnet {} ready in {:.1} s ({} transactions); validator uid {}, miners {:?}",
        boot.netuid,
        boot.elapsed.as_secs_f64(),
        boot.submitted,
        boot.validator_uid,
        boot.miner_uids
    ));
    let permit_timeout = config.block_time * (u32::from(config.tempo) + 2) * 3 + Duration::from_secs(10);
    let block = bootstrap::wait_for_permit(client, boot.netuid, &v_hot.account(), permit_timeout).await?;
    say(format!("validator permit at block {block}"));
    Ok(boot)
}

/// What the round loop saw of weights and epochs.
#[derive(Debug, Default)]
struct Tally {
    weights_set: u64,
    weights_failed: u64,
    weights_call: Option<String>,
    /// Block of the first included weights.
    first_included: Option<u64>,
    /// Epochs (by block) after the first included weights.
    epochs_seen: std::collections::BTreeSet<u64>,
    /// Epochs counted: those seen less the reveal epochs.
    epochs: u64,
}

/// Runs the validator's rounds until the chain has run `config.epochs` epochs after the block that
/// included the first weights (plus the reveal epochs with commit-reveal), counted on the chain's own
/// epoch clock: an epoch firing in that block's `on_initialize` ran before them and does not count.
async fn drive_rounds(
    config: &LocalnetConfig,
    client: &ChainClient,
    netuid: u16,
    v: &Validator<ChainNetwork>,
    say: &impl Fn(String),
) -> anyhow::Result<Tally> {
    let reveal_epochs = if config.commit_reveal {
        client.hyperparams(netuid).await?.reveal_period_epochs
    } else {
        0
    };
    let mut tally = Tally::default();
    loop {
        let round_started = Instant::now();
        match v.run_round().await {
            Ok(s) => {
                tally_round(&mut tally, &s, client).await?;
                let passed = s.record.miners.iter().filter(|m| m.verdict.passed).count();
                say(format!(
                    "round {:>3}  block {:>5}  epoch {}/{}  passed {}/{}  weights {}  {:.0} ms",
                    s.record.round,
                    s.record.block_number,
                    (tally.epochs_seen.len() as u64).saturating_sub(reveal_epochs),
                    config.epochs,
                    passed,
                    s.record.miners.len(),
                    s.submission.as_ref().map_or("-", |o| o.status.code()),
                    s.wall.as_secs_f64() * 1e3
                ));
            }
            Err(e) => say(format!("round failed: {e}")),
        }
        if let Some(first) = tally.first_included {
            let (now, clock) = client.epoch_clock(netuid).await?;
            if let Some(epoch_block) = clock.last_epoch_block(now).filter(|&e| e > first) {
                tally.epochs_seen.insert(epoch_block);
            }
            if tally.epochs_seen.len() as u64 >= config.epochs + reveal_epochs {
                break;
            }
        }
        tokio::time::sleep(config.round_interval.saturating_sub(round_started.elapsed())).await;
    }
    tally.epochs = (tally.epochs_seen.len() as u64).saturating_sub(reveal_epochs);
    Ok(tally)
}

/// Counts one round's weight submission.
async fn tally_round(tally: &mut Tally, s: &RoundSummary, client: &ChainClient) -> anyhow::Result<()> {
    match s.submission.as_ref().map(|o| (&o.status, o.block)) {
        Some((SubmitStatus::Included, included_in)) => {
            tally.weights_set += 1;
            tally.weights_call = s.submission.as_ref().and_then(|o| o.call).map(str::to_owned);
            if tally.first_included.is_none() {
                // Inclusion confirmed without a block number: the current block bounds it.
                let block = match included_in {
                    Some(block) => block,
                    None => client.block_number().await?,
                };
                tally.first_included = Some(block);
            }
        }
        Some((SubmitStatus::Failed, _)) => tally.weights_failed += 1,
        Some((SubmitStatus::Skipped, _)) | None => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default localnet challenges on SmolLM2 with a small, CPU-verifiable challenge; `seeded` keeps
    /// the seeded preset's defaults.
    #[test]
    fn inference_runs_on_the_real_model_unless_seeded_is_asked_for() {
        let real = LocalnetConfig::default().inference_round();
        assert_eq!(real.model, "smollm2");
        assert!(!real.is_seeded());
        assert_eq!(
            (real.batch, real.prompt_len, real.new_tokens, real.sequences),
            (4, 16, 16, 2)
        );
        let seeded = LocalnetConfig {
            inference_model: "Seeded".into(),
            ..LocalnetConfig::default()
        }
        .inference_round();
        assert!(seeded.is_seeded());
        assert_eq!(seeded, InferenceRoundConfig::default());
    }

    /// A run killed with `-9` leaves its folder behind with its owner lock released; the next start
    /// removes it and keeps the folders of runs that are still going.
    #[test]
    fn stale_state_folders_go_and_live_ones_stay() {
        let base = tempfile::tempdir().unwrap();
        let live = StateDir::create_in(base.path()).unwrap();
        // A killed run: the folder and lock file stay, the lock is gone with the process.
        let killed = base.path().join(format!("{STATE_DIR_PREFIX}00000000deadbeef"));
        std::fs::create_dir_all(&killed).unwrap();
        std::fs::write(killed.join(OWNER_LOCK), b"").unwrap();
        std::fs::write(killed.join("state.sqlite"), vec![0u8; 4096]).unwrap();
        // Someone else's folder and a fresh folder without a lock file are left alone.
        let other = base.path().join("validator-other");
        std::fs::create_dir_all(&other).unwrap();
        let unlocked = base.path().join(format!("{STATE_DIR_PREFIX}0000000000000001"));
        std::fs::create_dir_all(&unlocked).unwrap();

        let next = StateDir::create_in(base.path()).unwrap();
        assert!(!killed.exists(), "the killed run's folder is still there");
        assert!(live.path().exists() && next.path().exists() && other.exists() && unlocked.exists());
        let next_path = next.path().to_owned();
        drop(next);
        assert!(!next_path.exists(), "a finished run removes its own folder");
        assert_eq!(
            remove_stale_state_dirs(base.path()),
            0,
            "the live run's folder is kept"
        );
        assert!(live.path().exists());
    }
}
