//! The tensorproof validator binary: `validator run`, `validator wallet new|show`, `validator replay`,
//! `validator bench-round`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chain::auth::RequestSigner;
use chain::keys::AccountId;
use chain::wallet::{WalletArgs, WalletCommand};
use clap::{Parser, Subcommand};
use exchange::{Client, MinerEndpoint};
use scoring::policy::Policy;
use serde::Deserialize;
use validator::api::ApiConfig;
use validator::api::store::{ApiStore, NewKey};
use validator::chain_net::ChainNetwork;
use validator::dashboard::Dashboard;
use validator::ledger::Ledger;
use validator::metrics::Metrics;
use validator::network::Network;
use validator::network::StaticNetwork;
use validator::organic::OrganicInbox;
use validator::round::{RoundConfig, Validator};

#[derive(Debug, Parser)]
#[command(
    name = "validator",
    version,
    about = "The tensorproof validator: challenges miners, verifies, scores and sets weights."
)]
struct Cli {
    #[command(flatten)]
    wallet: WalletArgs,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run the round loop.
    Run(RunArgs),
    /// Manage keys (btcli's wallet layout).
    #[command(subcommand)]
    Wallet(WalletCommand),
    /// Recompute scores and weights from a round log and check them against what was recorded.
    Replay {
        /// The round log (`rounds.log` in the state directory).
        #[arg(long)]
        log: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Benchmark: round wall time, validator CPU time and peak memory against in-process miners.
    #[cfg(feature = "localnet")]
    BenchRound {
        /// Miner counts to measure, comma separated.
        #[arg(long, value_delimiter = ',', default_value = "64,256")]
        miners: Vec<usize>,
        /// Matrix size n.
        #[arg(long, default_value_t = 32)]
        n: u32,
        /// Rounds measured per count (after one warm-up round).
        #[arg(long, default_value_t = 3)]
        rounds: u32,
        /// Miners challenged at once.
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// The whole subnet on this machine: embedded devnet, miners (some adversarial) and this validator's
    /// round loop, until the requested epochs have passed; ends with a per-miner summary.
    #[cfg(feature = "localnet")]
    Localnet {
        /// Miners in all (honest ones first, then one per adversary).
        #[arg(long, default_value_t = 4)]
        miners: usize,
        /// Adversary modes of the last miners, comma separated (lazy:F, forge, on-demand, slow:MS,
        /// garbage); an empty value for none.
        #[arg(long, value_delimiter = ',', default_value = "lazy:0.1")]
        adversaries: Vec<String>,
        /// Epochs to run after the first weights landed.
        #[arg(long, default_value_t = 3)]
        epochs: u64,
        /// Blocks per epoch.
        #[arg(long, default_value_t = 10)]
        tempo: u16,
        /// Devnet block interval in milliseconds.
        #[arg(long, default_value_t = 200)]
        block_ms: u64,
        /// Commit-reveal on, as on finney: weights go on chain as drand-timelocked (CR-v4) commits
        /// that the devnet opens with its beacon's pulses one epoch later.
        #[arg(long)]
        commit_reveal: bool,
        /// Model of the inference challenges: `smollm2` (SmolLM2-135M-Instruct, fetched by
        /// scripts/fetch-model.sh; the miners hold it), a GGUF path, or `seeded` for the seeded tiny
        /// preset (no file, faster).
        #[arg(long, default_value = "smollm2", value_name = "MODEL")]
        inference_model: String,
        /// Print exactly one JSON object on stdout instead of the table.
        #[arg(long)]
        json: bool,
        /// After the run, keep the subnet up and serve the OpenAI-compatible API on this address until
        /// Ctrl-C (the miners then hold the default model, smollm2; prints a key and a curl example).
        #[arg(long)]
        serve_api: Option<SocketAddr>,
        /// The API key `--serve-api` accepts (default: a fresh one).
        #[arg(long, requires = "serve_api")]
        api_key: Option<String>,
        /// The subnet mechanism the validator sets weights on; above 0 the subnet is split into two
        /// mechanisms (0 or 1 on the devnet).
        #[arg(long, default_value_t = 0)]
        mechanism: u8,
    },
    /// Create btcli wallets (validator, miner-1, …) and set up a subnet for them on an external chain
    /// (subtensor's localnet image), with //Alice as sudo.
    LocalnetSetup {
        /// The chain: `local`, `devnet` or a ws:// URL.
        #[arg(long, default_value = "local")]
        network: String,
        /// Miner wallets to create and register.
        #[arg(long, default_value_t = 2)]
        miners: usize,
        /// Use this existing subnet instead of creating one.
        #[arg(long)]
        netuid: Option<u16>,
    },
    /// Benchmark the API against an in-process miner with the real model (smollm2): requests/s, tokens/s
    /// and TTFT p50/p99 through the API and directly, per concurrency; CPU verification cost per token.
    #[cfg(feature = "localnet")]
    BenchApi {
        /// Concurrencies to measure, comma separated.
        #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
        concurrency: Vec<usize>,
        /// Requests per level: this many times the concurrency.
        #[arg(long, default_value_t = 2)]
        rounds: usize,
        /// Tokens per request.
        #[arg(long, default_value_t = 16)]
        max_tokens: usize,
    },
    /// Manage the API's keys (stored hashed in `api.sqlite` in the state directory).
    #[command(subcommand)]
    ApiKey(ApiKeyCmd),
    /// Summarize the API's usage rows: requests, tokens, outcomes, verification, per miner.
    Usage {
        #[command(flatten)]
        state: StateDirArgs,
        /// Only this key (its id, from `api-key list`).
        #[arg(long)]
        key: Option<i64>,
        /// Only rows since this time: unix seconds, or an age like `30m`, `12h`, `7d`.
        #[arg(long)]
        since: Option<String>,
        /// Print the summary and every row (receipts included) as JSON.
        #[arg(long)]
        json: bool,
    },
    /// (Used by bench-round.) Host honest miners on loopback until stdin closes.
    #[cfg(feature = "localnet")]
    #[command(hide = true)]
    BenchMiners {
        /// How many.
        #[arg(long)]
        count: usize,
        /// The validator hotkey to allow.
        #[arg(long)]
        validator: String,
    },
}

/// Where the state directory is: `--state-dir`, or the default for `--netuid`.
#[derive(Debug, clap::Args)]
struct StateDirArgs {
    /// The validator's state directory.
    #[arg(long, env = "VALIDATOR_STATE_DIR")]
    state_dir: Option<PathBuf>,
    /// Subnet uid (the default state directory is `~/.tensorproof/validator/NETUID`).
    #[arg(long, env = "VALIDATOR_NETUID")]
    netuid: Option<u16>,
}

impl StateDirArgs {
    fn dir(&self) -> anyhow::Result<PathBuf> {
        match (&self.state_dir, self.netuid) {
            (Some(d), _) => Ok(d.clone()),
            (None, Some(n)) => Ok(chain::wallet::expand_home(&format!(
                "~/.tensorproof/validator/{n}"
            ))),
            (None, None) => anyhow::bail!("pass --state-dir DIR or --netuid N"),
        }
    }

    fn store(&self) -> anyhow::Result<ApiStore> {
        let dir = self.dir()?;
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(ApiStore::open_dir(&dir)?)
    }
}

#[derive(Debug, Subcommand)]
enum ApiKeyCmd {
    /// Create a key; it is printed once and only its hash is kept.
    Create {
        #[command(flatten)]
        state: StateDirArgs,
        /// A label for people.
        #[arg(long, default_value = "")]
        name: String,
        /// Requests a minute allowed (default: no limit).
        #[arg(long)]
        rate_per_min: Option<f64>,
        /// Tokens (prompt and completion) allowed in all (default: no quota).
        #[arg(long)]
        token_quota: Option<u64>,
    },
    /// List the keys (never the keys themselves).
    List {
        #[command(flatten)]
        state: StateDirArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key by id; it is refused from then on (within seconds for a running server).
    Revoke {
        #[command(flatten)]
        state: StateDirArgs,
        /// The key's id.
        id: i64,
    },
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Config file (TOML); flags and environment variables override it.
    #[arg(long, env = "VALIDATOR_CONFIG")]
    config: Option<PathBuf>,
    /// Network: `devnet`, `local`, `test`, `finney` or a ws:// URL.
    #[arg(long, env = "VALIDATOR_NETWORK")]
    network: Option<String>,
    /// Subnet uid.
    #[arg(long, env = "VALIDATOR_NETUID")]
    netuid: Option<u16>,
    /// Folder for the state database, the round log and the validator secret.
    #[arg(long, env = "VALIDATOR_STATE_DIR")]
    state_dir: Option<PathBuf>,
    /// Owner policy (TOML); defaults apply when absent.
    #[arg(long, env = "VALIDATOR_POLICY")]
    policy: Option<PathBuf>,
    /// Address of the /metrics, /scores and / server.
    #[arg(long, env = "VALIDATOR_LISTEN")]
    listen: Option<SocketAddr>,
    /// Run without a chain against these miners: `UID=HOTKEY@IP:PORT`, comma separated. Weights are
    /// computed and logged, not sent.
    #[arg(long, env = "VALIDATOR_MINERS", value_delimiter = ',')]
    miners: Vec<String>,
    /// Serve the OpenAI-compatible API on this address (off unless given; `[api]` in the config sets the
    /// rest).
    #[arg(long, env = "VALIDATOR_API_LISTEN")]
    api_listen: Option<SocketAddr>,
    /// Stop after this many rounds (default: run until Ctrl-C).
    #[arg(long)]
    rounds: Option<u64>,
    /// Rounds of verdicts and weight submissions kept in the state database (0: all). The round log
    /// keeps the whole history. Default 20000.
    #[arg(long, env = "VALIDATOR_RETAIN_ROUNDS")]
    retain_rounds: Option<u64>,
    /// Model of the inference challenges (`round.inference.model`): `seeded` (the configured preset),
    /// `smollm2` (fetched by scripts/fetch-model.sh) or a GGUF path. Default: the config's, else seeded.
    #[arg(long, env = "VALIDATOR_INFERENCE_MODEL", value_name = "MODEL")]
    inference_model: Option<String>,
    /// The subnet mechanism to set weights on (`set_mechanism_weights`' `mecid`; the subnet owner
    /// decides how many there are). Default: the config's `mechanism`, else 0.
    #[arg(long, env = "VALIDATOR_MECHANISM")]
    mechanism: Option<u8>,
}

/// Default of `--retain-rounds`.
const DEFAULT_RETAIN_ROUNDS: u64 = 20_000;

/// `validator.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ConfigFile {
    network: Option<String>,
    netuid: Option<u16>,
    state_dir: Option<PathBuf>,
    policy: Option<PathBuf>,
    listen: Option<SocketAddr>,
    miners: Vec<String>,
    retain_rounds: Option<u64>,
    mechanism: Option<u8>,
    round: RoundConfig,
    api: ApiConfig,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.cmd {
        Cmd::Wallet(cmd) => {
            cmd.run(&cli.wallet, &mut std::io::stdout())?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Replay { log, json } => replay(&log, json),
        #[cfg(feature = "localnet")]
        Cmd::BenchRound {
            miners,
            n,
            rounds,
            concurrency,
            json,
        } => bench_round(miners, n, rounds, concurrency, json),
        #[cfg(feature = "localnet")]
        Cmd::BenchMiners { count, validator } => {
            let account =
                AccountId::from_ss58(&validator).map_err(|e| anyhow::anyhow!("--validator: {e}"))?;
            runtime()?.block_on(validator::bench::host_miners(count, account))?;
            Ok(ExitCode::SUCCESS)
        }
        #[cfg(feature = "localnet")]
        Cmd::Localnet {
            miners,
            adversaries,
            epochs,
            tempo,
            block_ms,
            commit_reveal,
            inference_model,
            json,
            serve_api,
            api_key,
            mechanism,
        } => {
            let config = validator::localnet::LocalnetConfig {
                serve_api,
                api_key,
                mechanism,
                miners,
                adversaries,
                epochs,
                tempo,
                commit_reveal,
                inference_model,
                block_time: Duration::from_millis(block_ms.max(1)),
                ..validator::localnet::LocalnetConfig::default()
            };
            let report = runtime()?.block_on(validator::localnet::run(&config))?;
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                print!("{}", report.table());
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::LocalnetSetup {
            network,
            miners,
            netuid,
        } => {
            // The wallets folder is the global `--wallet-path` (or `BT_WALLET_PATH`): a subcommand field
            // of the same name would clash with it in clap.
            let wallet_path = PathBuf::from(&cli.wallet.wallet_path);
            let report =
                runtime()?.block_on(validator::setup::setup(&network, &wallet_path, miners, netuid))?;
            print_setup(&report);
            Ok(ExitCode::SUCCESS)
        }
        #[cfg(feature = "localnet")]
        Cmd::BenchApi {
            concurrency,
            rounds,
            max_tokens,
        } => {
            let report =
                runtime()?.block_on(validator::api::bench::bench_api(&concurrency, rounds, max_tokens))?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(ExitCode::SUCCESS)
        }
        Cmd::ApiKey(cmd) => api_key(cmd),
        Cmd::Usage {
            state,
            key,
            since,
            json,
        } => usage(&state, key, since.as_deref(), json),
        Cmd::Run(args) => {
            runtime()?.block_on(run_validator(&cli.wallet, args))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The multi-threaded runtime every async command runs on.
fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build()
}

/// `validator replay`: recompute the log and say whether it matches (exit 1 when not).
fn replay(log: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let report = validator::replay::replay(log)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{} entries, {} rounds recomputed, {} submissions checked{}",
            report.entries,
            report.rounds,
            report.submissions,
            if report.torn_tail {
                " (a torn final line was ignored)"
            } else {
                ""
            }
        );
        for m in &report.mismatches {
            println!("MISMATCH: {m}");
        }
        println!(
            "{}",
            if report.matches() {
                "replay matches: every score and weight recomputed from the log equals what was recorded"
            } else {
                "replay DOES NOT match"
            }
        );
    }
    Ok(if report.matches() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `validator bench-round`: one row per miner count.
#[cfg(feature = "localnet")]
fn bench_round(
    miners: Vec<usize>,
    n: u32,
    rounds: u32,
    concurrency: usize,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let rt = runtime()?;
    let mut rows = Vec::new();
    for count in miners {
        let row = rt.block_on(validator::bench::bench_round(count, n, rounds, concurrency))?;
        if !json {
            println!(
                "miners {:>4}  n {:>4}  round wall {:>8.3} s  validator CPU {:>8.3} s/round ({:.2} ms/miner)  passed {}  peak RSS {:.0} MiB  elapsed-RTT per answer: median {:.2} ms, p90 {:.2} ms, sd {:.2} ms ({} answers, RTT median {:.2} ms)",
                row.miners,
                row.n,
                row.round_wall_seconds,
                row.validator_cpu_seconds_per_round,
                row.validator_cpu_ms_per_miner,
                row.passed,
                row.peak_rss_mib,
                row.compute_ms_median,
                row.compute_ms_p90,
                row.compute_ms_sd,
                row.answers,
                row.rtt_ms_median
            );
        }
        rows.push(row);
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    }
    Ok(ExitCode::SUCCESS)
}

/// `validator api-key create|list|revoke`.
fn api_key(cmd: ApiKeyCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        ApiKeyCmd::Create {
            state,
            name,
            rate_per_min,
            token_quota,
        } => {
            if rate_per_min.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
                anyhow::bail!("--rate-per-min must be a positive number");
            }
            let (key, record) = state.store()?.create_key(&NewKey {
                name,
                rate_per_min,
                token_quota,
            })?;
            println!("{key}");
            eprintln!(
                "key id {} created; this is the only time it is shown (only its sha256 is stored)",
                record.id
            );
        }
        ApiKeyCmd::List { state, json } => {
            let keys = state.store()?.keys()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&keys)?);
            } else {
                println!(
                    "{:>4}  {:<10} {:<16} {:>10} {:>12} {:>12}  status",
                    "id", "prefix", "name", "rate/min", "quota", "used"
                );
                for k in keys {
                    println!(
                        "{:>4}  {:<10} {:<16} {:>10} {:>12} {:>12}  {}",
                        k.id,
                        k.prefix,
                        k.name,
                        k.rate_per_min.map_or_else(|| "-".into(), |r| r.to_string()),
                        k.token_quota.map_or_else(|| "-".into(), |q| q.to_string()),
                        k.tokens_used,
                        if k.revoked_ms.is_some() {
                            "revoked"
                        } else {
                            "active"
                        }
                    );
                }
            }
        }
        ApiKeyCmd::Revoke { state, id } => {
            if !state.store()?.revoke(id)? {
                anyhow::bail!("no key with id {id} (see `validator api-key list`)");
            }
            println!("key {id} revoked");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Parses `--since`: unix seconds, or an age (`30s`, `30m`, `12h`, `7d`) before now; returns unix ms.
fn parse_since(s: &str, now_ms: u64) -> anyhow::Result<u64> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(secs.saturating_mul(1000));
    }
    let (num, unit) = s.split_at(s.len().saturating_sub(1));
    let n: u64 = num
        .parse()
        .with_context(|| format!("--since {s:?} is neither unix seconds nor an age like 30m, 12h, 7d"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => anyhow::bail!("--since {s:?}: the unit must be s, m, h or d"),
    };
    Ok(now_ms.saturating_sub(secs.saturating_mul(1000)))
}

/// `validator usage`.
fn usage(
    state: &StateDirArgs,
    key: Option<i64>,
    since: Option<&str>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let store = state.store()?;
    let since_ms = since
        .map(|s| parse_since(s, validator::api::store::now_ms()))
        .transpose()?
        .unwrap_or(0);
    let summary = store.summary(key, since_ms)?;
    if json {
        let rows = store.usage(key, since_ms, 100_000)?;
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"summary": summary, "rows": rows}))?
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{} requests, {} prompt + {} completion tokens",
        summary.requests, summary.prompt_tokens, summary.completion_tokens
    );
    let pairs = |v: &[(String, u64)]| {
        v.iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!("outcomes: {}", pairs(&summary.by_outcome));
    println!("verification: {}", pairs(&summary.by_verification));
    for (uid, hotkey, requests, tokens) in &summary.by_miner {
        println!("miner uid {uid} {hotkey}: {requests} requests, {tokens} completion tokens");
    }
    Ok(ExitCode::SUCCESS)
}

/// What `validator localnet-setup` did, in a few lines.
fn print_setup(report: &validator::setup::SetupReport) {
    let b = &report.bootstrap;
    println!(
        "wallets in {} (created: {})",
        report.wallet_path.display(),
        if report.created.is_empty() {
            "none".to_owned()
        } else {
            report.created.join(", ")
        }
    );
    println!(
        "subnet {} {}; {} transactions; validator uid {}; miner uids {:?}",
        b.netuid,
        if b.created { "created" } else { "reused" },
        b.submitted,
        b.validator_uid,
        b.miner_uids
    );
    println!(
        "tempo {}, weights rate limit {}, commit-reveal {}",
        b.hyperparams.tempo, b.hyperparams.weights_rate_limit, b.hyperparams.commit_reveal_enabled
    );
    for w in &b.warnings {
        println!("warning: {w}");
    }
}

/// Parses `UID=HOTKEY@IP:PORT`.
fn parse_miner(spec: &str) -> anyhow::Result<MinerEndpoint> {
    let (uid, rest) = spec
        .split_once('=')
        .with_context(|| format!("miner {spec:?} is not UID=HOTKEY@IP:PORT"))?;
    let (hotkey, addr) = rest
        .split_once('@')
        .with_context(|| format!("miner {spec:?} is not UID=HOTKEY@IP:PORT"))?;
    Ok(MinerEndpoint {
        uid: uid
            .trim()
            .parse()
            .with_context(|| format!("miner {spec:?}: uid is not a number 0..65535"))?,
        hotkey: AccountId::from_ss58(hotkey.trim()).map_err(|e| anyhow::anyhow!("miner {spec:?}: {e}"))?,
        addr: addr
            .trim()
            .parse()
            .with_context(|| format!("miner {spec:?}: address is not IP:PORT"))?,
    })
}

/// Reads the validator secret from `dir/validator-secret`, creating it (mode 0600) on first use.
fn load_secret(dir: &Path) -> anyhow::Result<[u8; 32]> {
    let path = dir.join("validator-secret");
    if path.exists() {
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let bytes = hex::decode(text.trim()).with_context(|| format!("{} is not hex", path.display()))?;
        return bytes
            .try_into()
            .map_err(|_| anyhow::anyhow!("{} must hold 32 bytes of hex", path.display()));
    }
    let mut secret = [0u8; 32];
    rand::fill(&mut secret);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    std::io::Write::write_all(&mut f, hex::encode(secret).as_bytes())?;
    f.sync_all()?;
    Ok(secret)
}

async fn run_validator(wallet: &WalletArgs, args: RunArgs) -> anyhow::Result<()> {
    let file: ConfigFile = match &args.config {
        Some(p) => {
            toml::from_str(&std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?)
                .with_context(|| format!("{} is not a valid validator config", p.display()))?
        }
        None => ConfigFile::default(),
    };
    let netuid = args
        .netuid
        .or(file.netuid)
        .context("no subnet: pass --netuid N (or netuid in the config)")?;
    let state_dir = args
        .state_dir
        .or(file.state_dir)
        .unwrap_or_else(|| chain::wallet::expand_home(&format!("~/.tensorproof/validator/{netuid}")));
    std::fs::create_dir_all(&state_dir).with_context(|| format!("creating {}", state_dir.display()))?;
    let policy = match args.policy.or(file.policy) {
        Some(p) => Policy::from_toml_str(
            &std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?,
        )?,
        None => Policy::default(),
    };
    let listen = args
        .listen
        .or(file.listen)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 9100)));
    let miner_specs = if args.miners.is_empty() {
        file.miners
    } else {
        args.miners
    };
    let network_name = args.network.or(file.network);
    let mut round = file.round;
    if let Some(model) = args.inference_model {
        round.inference.model = model;
    }
    let mut api_config = file.api.clone();
    if args.api_listen.is_some() {
        api_config.listen = args.api_listen;
    }

    let hotkey = wallet.open()?.hotkey()?;
    let hotkey_pair = hotkey.clone();
    let ss58 = hotkey.ss58();
    let secret = load_secret(&state_dir)?;
    let mut ledger = Ledger::open(&state_dir, policy, &ss58, netuid)?;
    ledger.retain_rounds(Some(
        args.retain_rounds
            .or(file.retain_rounds)
            .unwrap_or(DEFAULT_RETAIN_ROUNDS),
    ));
    let client = Client::pooled(Arc::new(RequestSigner::new(hotkey)), 2)?;
    let metrics = Metrics::new();
    let dashboard = Dashboard::new();
    let (bound, _server) = validator::http::serve(listen, metrics.clone(), dashboard.clone())
        .await
        .with_context(|| format!("binding the status server on {listen}"))?;
    tracing::info!(hotkey = %ss58, netuid, state_dir = %state_dir.display(), "status on http://{bound}/");

    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    if !miner_specs.is_empty() {
        let miners = miner_specs
            .iter()
            .map(|s| parse_miner(s))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let network = Arc::new(StaticNetwork::new(miners, Duration::from_secs(12)));
        let inbox = OrganicInbox::default();
        let _api = start_api(
            &api_config,
            &state_dir,
            &network,
            &client,
            &metrics,
            &dashboard,
            &inbox,
        )
        .await?;
        let v = Validator::new(network, client, ledger, secret, round, metrics, dashboard)
            .with_organic_inbox(inbox);
        return drive(&v, args.rounds, stop).await;
    }
    let name = network_name
        .context("no chain and no miners: pass --network devnet|local|test|finney|ws://… (or --miners for a run without a chain)")?;
    let net: chain::client::Network = name.parse()?;
    let chain_client =
        chain::client::ChainClient::connect(&net, chain::client::ClientConfig::default()).await?;
    let mechanism = args.mechanism.or(file.mechanism).unwrap_or(0);
    let network = Arc::new(
        ChainNetwork::new(Arc::new(chain_client), hotkey_pair, netuid, false).with_mechanism(mechanism),
    );
    let inbox = OrganicInbox::default();
    let _api = start_api(
        &api_config,
        &state_dir,
        &network,
        &client,
        &metrics,
        &dashboard,
        &inbox,
    )
    .await?;
    let v =
        Validator::new(network, client, ledger, secret, round, metrics, dashboard).with_organic_inbox(inbox);
    drive(&v, args.rounds, stop).await
}

/// Starts the API when `config.listen` is set: its store, the model it holds, the directory refresh and
/// the server, its organic verdicts going to `inbox`. The tasks stop when the returned handles are
/// dropped with the runtime.
async fn start_api<N: Network>(
    config: &ApiConfig,
    state_dir: &Path,
    network: &Arc<N>,
    client: &Client,
    metrics: &Metrics,
    dashboard: &Dashboard,
    inbox: &OrganicInbox,
) -> anyhow::Result<Option<validator::api::server::Api>> {
    let Some(listen) = config.listen else {
        return Ok(None);
    };
    let api = validator::api::server::start(
        config,
        state_dir,
        network.clone(),
        client,
        metrics,
        dashboard,
        inbox.clone(),
    )
    .await?;
    let (bound, _handle) = api
        .serve(listen)
        .await
        .with_context(|| format!("binding the API on {listen}"))?;
    tracing::info!("OpenAI-compatible API on http://{bound}/v1 (chat page: http://{bound}/chat)");
    Ok(Some(api))
}

/// Runs `rounds` rounds, or until `stop`.
async fn drive<N: Network>(
    v: &Validator<N>,
    rounds: Option<u64>,
    stop: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    match rounds {
        Some(n) => {
            for _ in 0..n {
                v.run_round().await?;
            }
        }
        None => v.run_until(stop).await?,
    }
    Ok(())
}
