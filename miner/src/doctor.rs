//! `miner doctor`: act as a validator against a running miner and report, check by check, what works.
//!
//! It signs with the self-test key that `miner run` writes to its state folder (accepted only from a
//! loopback peer), or with `--key` (a validator key allow-listed with `--dev`). Each task class runs end
//! to end through the validator's own exchange ([`exchange`]): the challenge, the openings chosen
//! afterwards, the echoed ids, and the real verifier from `bench-tasks`.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bench_tasks::inference::{HostWeights, InferenceChallenge, ModelId, Preset, Transformer, Verifier};
use bench_tasks::matmul::{MatmulLimits, RoundParams, RoundSetup};
use bench_tasks::wire::{HEALTH_PATH, InferenceServed, MinerInfo, TaskClass};
use chain::client::{ChainClient, ClientConfig, Network};
use chain::keys::{AccountId, Keypair};
use clap::Args;
use exchange::inference::Picks;
use exchange::{Bounds, Call, Exchanged, MinerClient};
use serde::Serialize;

/// `miner doctor` flags.
#[derive(Debug, Clone, Args)]
pub struct DoctorArgs {
    /// The miner to test.
    #[arg(long, env = "MINER_DOCTOR_URL", default_value = "http://127.0.0.1:8091")]
    pub url: String,
    /// The miner's state folder, where `miner run` wrote the self-test key [default: ~/.tensorproof/miner].
    #[arg(long, env = "MINER_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Sign with this key instead (secret URI such as //Alice, a mnemonic, or a 0x seed); it must be
    /// allow-listed with `miner run --dev --allow-validator`.
    #[arg(long, env = "MINER_DOCTOR_KEY", value_name = "SECRET")]
    pub key: Option<String>,
    /// Matmul size n to test with (capped at what the miner serves).
    #[arg(long, default_value_t = 256)]
    pub n: u32,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Also check the miner's axon on this chain (devnet, local, test, finney or a ws:// URL), with
    /// --netuid: it must be registered and advertise the address it serves on.
    #[arg(long, env = "MINER_NETWORK", value_name = "NET", requires = "netuid")]
    pub network: Option<String>,
    /// The subnet the miner serves (with --network).
    #[arg(long, env = "MINER_NETUID", value_name = "N", requires = "network")]
    pub netuid: Option<u16>,
    /// The public IP the miner should advertise (as `miner run --external-ip`); without it only the
    /// port of --url is compared with the chain's axon.
    #[arg(long, env = "MINER_EXTERNAL_IP", value_name = "IP")]
    pub external_ip: Option<IpAddr>,
}

/// The chain `miner doctor` checks the miner's axon on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainTarget {
    /// Where to connect.
    pub network: Network,
    /// The subnet.
    pub netuid: u16,
    /// The public IP the miner should advertise, if known.
    pub external_ip: Option<IpAddr>,
}

/// The result of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Works.
    Pass,
    /// Works, but is probably not what the operator wants.
    Warn,
    /// Broken.
    Fail,
}

/// One line of the report.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// What was checked.
    pub name: String,
    /// The outcome.
    pub status: Status,
    /// Wall time of the check, in milliseconds.
    pub millis: f64,
    /// What was seen, and what to do about a warning or failure.
    pub detail: String,
}

impl Check {
    fn new(name: impl Into<String>, status: Status, started: Instant, detail: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            status,
            millis: started.elapsed().as_secs_f64() * 1e3,
            detail: detail.into(),
        }
    }
}

/// Runs every check against the miner at `url`, signing with `key`; with `chain`, also checks that the
/// miner's hotkey is registered there and that its axon is the address it serves on (`axon on chain`).
pub async fn run_checks(url: &str, key: Keypair, n: u32, chain: Option<&ChainTarget>) -> Vec<Check> {
    let mut checks = Vec::new();
    // Each step adds its checks and says whether the next can run.
    let Some((probe, info, miner)) = reach_and_identify(url, key, &mut checks).await else {
        return checks;
    };
    if let Some(target) = chain {
        checks.push(axon_check(target, &miner, url).await);
    }
    let client = probe.for_miner(miner);
    let ping = signed_ping(&client).await;
    let pinged = ping.status == Status::Pass;
    checks.push(ping);
    if !pinged {
        return checks;
    }
    for task in &info.tasks {
        match task.task {
            TaskClass::Matmul => {
                let n = n.min(u32::try_from(task.max_size).unwrap_or(u32::MAX)).max(1);
                checks.push(matmul_round(&client, n).await);
            }
            TaskClass::Inference => {
                if let Some(served) = &task.inference
                    && let Some(&preset) = served.presets.first()
                {
                    checks.push(inference_round(&client, preset, served).await);
                }
            }
            // Organic serving is not a challenge: `/info`'s `models` list what `/v1/generate` serves.
            TaskClass::Organic => {}
        }
    }
    checks
}

/// `reachable`, `info`, `gpu backend` and the miner's hotkey from `/info` (which need no miner
/// hotkey). `None` when the next checks cannot run.
async fn reach_and_identify(
    url: &str,
    key: Keypair,
    checks: &mut Vec<Check>,
) -> Option<(MinerClient, MinerInfo, AccountId)> {
    // The client is bound to the miner's hotkey once /info names it.
    let probe = match MinerClient::new(url, key.account(), key, false) {
        Ok(c) => c,
        Err(e) => {
            checks.push(Check::new(
                "reachable",
                Status::Fail,
                Instant::now(),
                e.to_string(),
            ));
            return None;
        }
    };
    let reachable = reachable(&probe).await;
    let ok = reachable.status == Status::Pass;
    checks.push(reachable);
    if !ok {
        return None;
    }
    let started = Instant::now();
    let info: MinerInfo = match probe.info().await {
        Ok(info) => info,
        Err(e) => {
            checks.push(Check::new("info", Status::Fail, started, e.to_string()));
            return None;
        }
    };
    checks.push(Check::new(
        "info",
        Status::Pass,
        started,
        format!(
            "version {}, hotkey {}, {} on {}",
            info.version, info.hotkey, info.backend, info.device
        ),
    ));
    checks.push(backend_check(&info));
    match info.hotkey.parse::<AccountId>() {
        Ok(miner) => Some((probe, info, miner)),
        Err(e) => {
            checks.push(Check::new(
                "miner hotkey",
                Status::Fail,
                Instant::now(),
                e.to_string(),
            ));
            None
        }
    }
}

/// `reachable`: `GET /health` answers 200.
async fn reachable(probe: &MinerClient) -> Check {
    let started = Instant::now();
    match probe.get(HEALTH_PATH).await {
        Ok((200, _)) => Check::new(
            "reachable",
            Status::Pass,
            started,
            format!("GET {HEALTH_PATH} answered"),
        ),
        Ok((status, _)) => Check::new(
            "reachable",
            Status::Fail,
            started,
            format!("GET {HEALTH_PATH} answered {status}"),
        ),
        Err(e) => Check::new(
            "reachable",
            Status::Fail,
            started,
            format!("{e}; is the port open and the miner running?"),
        ),
    }
}

/// `gpu backend`: a warning when the miner computes on the CPU.
fn backend_check(info: &MinerInfo) -> Check {
    if info.backend == "flex" {
        Check::new(
            "gpu backend",
            Status::Warn,
            Instant::now(),
            "the miner computes on the CPU (flex); start it with --backend cuda or wgpu to use the GPU",
        )
    } else {
        Check::new(
            "gpu backend",
            Status::Pass,
            Instant::now(),
            format!("{} backend", info.backend),
        )
    }
}

/// `signed ping`: 1 KiB echoed under a signature the miner accepts, with its receipt verified.
async fn signed_ping(client: &MinerClient) -> Check {
    let started = Instant::now();
    let payload: Vec<u8> = (0..1024u32).map(|i| (i % 251) as u8).collect();
    match client.ping(payload).await {
        Ok(_) => Check::new(
            "signed ping",
            Status::Pass,
            started,
            "1 KiB echoed; signature accepted and receipt verified",
        ),
        Err(e) => {
            let hint = match e.reason() {
                Some("unknown_hotkey") => {
                    "; run doctor on the miner's machine (the self-test key is loopback-only) or allow-list --key"
                }
                _ => "",
            };
            Check::new("signed ping", Status::Fail, started, format!("{e}{hint}"))
        }
    }
}

/// `axon on chain`: the miner's hotkey is registered on the target subnet and the chain advertises the
/// port of `url` (and `external_ip`, when given). Every failure names the fix.
pub async fn axon_check(target: &ChainTarget, miner: &AccountId, url: &str) -> Check {
    const NAME: &str = "axon on chain";
    let started = Instant::now();
    let fail = |detail: String| Check::new(NAME, Status::Fail, started, detail);
    let port = match reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.port_or_known_default())
    {
        Some(p) => p,
        None => {
            return fail(format!(
                "--url {url} has no port; pass the miner's URL with its port"
            ));
        }
    };
    let network = &target.network;
    // A diagnostic: give up after two tries rather than retry for minutes.
    let config = ClientConfig {
        connect_attempts: 2,
        request_timeout: Duration::from_secs(20),
        ..ClientConfig::default()
    };
    let client = match ChainClient::connect(network, config).await {
        Ok(c) => c,
        Err(e) => {
            return fail(format!(
                "cannot connect to {network} ({}): {e}; check --network",
                network.url()
            ));
        }
    };
    let netuid = target.netuid;
    let graph = match client.metagraph(netuid).await {
        Ok(g) => g,
        Err(e) => {
            return fail(format!(
                "cannot read subnet {netuid} of {network}: {e}; check --netuid"
            ));
        }
    };
    let Some(neuron) = graph.by_hotkey(miner) else {
        return fail(format!(
            "misconfigured: hotkey {miner} is not registered on subnet {netuid} of {network}; register it with `{}`",
            crate::chain_link::register_command(netuid, "<wallet>", "<hotkey>", &network.to_string())
        ));
    };
    let on_chain = neuron.axon.map(|a| SocketAddr::new(a.ip, a.port));
    match crate::chain_link::axon_mismatch(on_chain, target.external_ip, port) {
        Some(problem) => fail(format!("misconfigured (uid {}): {problem}", neuron.uid)),
        None => {
            let shown = on_chain.map_or_else(String::new, |a| a.to_string());
            let ip_note = if target.external_ip.is_some() {
                ""
            } else {
                " (pass --external-ip to compare the IP too)"
            };
            Check::new(
                NAME,
                Status::Pass,
                started,
                format!("uid {} advertises {shown}, as configured{ip_note}", neuron.uid),
            )
        }
    }
}

/// The bounds of the doctor's exchanges: generous, it is a diagnostic.
const DOCTOR_BOUNDS: Bounds = Bounds {
    challenge_timeout: exchange::client::CALL_TIMEOUT,
    open_timeout: exchange::client::CALL_TIMEOUT,
    max_answer_bytes: exchange::client::MAX_ANSWER_BYTES,
};

/// A fresh challenge id.
fn doctor_id() -> String {
    format!("doctor-{}", hex::encode(rand::random::<[u8; 8]>()))
}

/// One exchange with the miner `client` is bound to, under `id`, with the doctor's bounds.
fn doctor_call<'a>(client: &'a MinerClient, id: &'a str) -> Call<'a> {
    Call {
        client: client.client(),
        to: client.target(),
        id,
        bounds: &DOCTOR_BOUNDS,
        observe: &ignore_latency,
    }
}

/// The doctor reports each check's own time; step latencies are not collected.
const fn ignore_latency(_step: &'static str, _elapsed: Duration) {}

/// The check a finished exchange earns: its round-1 time, the miner's self-reported times and the
/// verdict (verification runs on a blocking thread).
async fn exchange_check(name: String, started: Instant, exchanged: Exchanged) -> Check {
    let answer_ms = exchanged.answer_elapsed.map(|d| d.as_secs_f64() * 1e3);
    let reported = exchanged.reported;
    let verdict = match tokio::task::spawn_blocking(move || exchanged.verdict_here()).await {
        Ok(v) => v,
        Err(e) => return Check::new(name, Status::Fail, started, format!("verifier thread: {e}")),
    };
    let timing = match (answer_ms, reported) {
        (Some(ms), Some((queue, compute))) => format!(
            "round 1 {ms:.1} ms (miner compute {:.1} ms, queued {:.1} ms); ",
            compute * 1e3,
            queue * 1e3
        ),
        _ => String::new(),
    };
    let detail = format!(
        "{timing}verdict {}{}",
        verdict.reason,
        if verdict.detail.is_empty() {
            String::new()
        } else {
            format!(": {}", verdict.detail)
        }
    );
    let status = if verdict.passed {
        Status::Pass
    } else {
        Status::Fail
    };
    Check::new(name, status, started, detail)
}

/// One honest-validator matmul round against the miner, through the validator's own exchange
/// ([`exchange::matmul`]): the challenge, the openings chosen afterwards, echoed ids, and the verifier.
async fn matmul_round(client: &MinerClient, n: u32) -> Check {
    let name = format!("matmul n={n}");
    let started = Instant::now();
    let secret: [u8; 32] = rand::random();
    let limits = MatmulLimits {
        max_n: n.max(MatmulLimits::default().max_n),
        ..MatmulLimits::default()
    };
    let setup = match RoundSetup::new(RoundParams::new(n, rand::random()), secret, &limits) {
        Ok(s) => Arc::new(s),
        Err(e) => return Check::new(name, Status::Fail, started, e.to_string()),
    };
    let id = doctor_id();
    let call = doctor_call(client, &id);
    let exchanged = exchange::matmul::exchange(call, &setup, rand::random()).await;
    exchange_check(name, started, exchanged).await
}

/// One honest-validator inference challenge (the smallest preset served, a few prompts and tokens),
/// through the validator's own exchange ([`exchange::inference`]), verified with bench-tasks'
/// teacher-forced verifier on this machine's CPU.
async fn inference_round(client: &MinerClient, preset: Preset, served: &InferenceServed) -> Check {
    let challenge = InferenceChallenge {
        model: ModelId::Seeded {
            preset,
            seed: rand::random(),
        },
        seed: rand::random(),
        batch: served.limits.max_batch.clamp(1, 4),
        prompt_len: served.limits.max_prompt_len.clamp(1, 8),
        new_tokens: served.limits.max_new_tokens.clamp(1, 8),
    };
    let name = format!(
        "inference {preset} B={} T={}",
        challenge.batch, challenge.new_tokens
    );
    let started = Instant::now();
    let (model, limits) = (challenge.model.clone(), served.limits);
    let built = tokio::task::spawn_blocking(move || {
        let ModelId::Seeded { preset, seed } = model else {
            return Err("only seeded models are checked".to_owned());
        };
        let weights = HostWeights::seeded(preset.config(), seed);
        let transformer =
            Transformer::from_weights(&weights, &burn::tensor::Device::flex()).map_err(|e| e.to_string())?;
        Ok(Verifier::new(model, transformer, limits))
    })
    .await;
    let verifier = match built {
        Ok(Ok(v)) => Arc::new(Mutex::new(v)),
        Ok(Err(e)) => return Check::new(name, Status::Fail, started, e),
        Err(e) => return Check::new(name, Status::Fail, started, format!("verifier thread: {e}")),
    };
    let id = doctor_id();
    let call = doctor_call(client, &id);
    let picks = Picks {
        key: rand::random(),
        sequences: 2,
    };
    let exchanged = exchange::inference::exchange(call, challenge, verifier, picks).await;
    exchange_check(name, started, exchanged).await
}

/// Formats the checks as a table.
pub fn table(checks: &[Check]) -> String {
    let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(5).max(5);
    let mut out = format!("{:<width$}  {:<6}  {:>10}  detail\n", "check", "result", "time");
    for c in checks {
        let status = match c.status {
            Status::Pass => "PASS",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        };
        out.push_str(&format!(
            "{:<width$}  {:<6}  {:>7.1} ms  {}\n",
            c.name, status, c.millis, c.detail
        ));
    }
    out
}

/// `miner doctor`.
pub async fn run(args: DoctorArgs) -> anyhow::Result<()> {
    let key = match &args.key {
        Some(secret) => Keypair::from_uri(secret).map_err(|e| anyhow::anyhow!("--key: {e}"))?,
        None => {
            let dir = args
                .state_dir
                .clone()
                .unwrap_or_else(crate::doctor_key::default_state_dir);
            crate::doctor_key::read_doctor_key(&crate::doctor_key::doctor_key_path(&dir))?
        }
    };
    let chain = match (&args.network, args.netuid) {
        (Some(network), Some(netuid)) => Some(ChainTarget {
            network: network
                .parse()
                .map_err(|e| anyhow::anyhow!("--network {network}: {e}"))?,
            netuid,
            external_ip: args.external_ip,
        }),
        _ => None,
    };
    let checks = run_checks(&args.url, key, args.n, chain.as_ref()).await;
    let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
    if args.json {
        println!(
            "{}",
            serde_json::json!({ "url": args.url, "passed": failed == 0, "checks": checks })
        );
    } else {
        print!("{}", table(&checks));
    }
    if failed > 0 {
        anyhow::bail!("{failed} check(s) failed");
    }
    Ok(())
}
