//! The `miner` command line: `run`, `wallet`, `doctor`, `bench-transport`.
//!
//! Every `run` flag can also come from an environment variable (`MINER_*`, and btcli's `BT_WALLET_*`
//! for the wallet, shown in `--help`) and from
//! the TOML file given with `--config` (same names as the long flags, kebab-case, plus a `[limits]`
//! table with every field of [`Limits`]). Precedence: flag, then environment, then file, then default.
//!
//! ```toml
//! wallet = "miner"
//! hotkey = "default"
//! network = "finney"
//! netuid = 42
//! port = 8091
//! backend = "cuda"
//! min-stake = 1000.0
//! model = ["smollm2"]
//!
//! [limits]
//! queue-capacity = 32
//! state-memory-cap-bytes = 8589934592
//! [limits.matmul]
//! max-n = 16384
//! [limits.inference]
//! max-batch = 16
//! ```

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use anyhow::Context;
use bench_tasks::backend::BackendKind;
use chain::keys::{AccountId, Keypair};
use clap::{Args, Parser, Subcommand};
use serde::{Deserialize, Serialize};

use crate::behavior::Behavior;
use crate::config::Limits;
use crate::doctor_key::{default_state_dir, doctor_key_path, write_doctor_key};
use crate::models::HeldModels;
use crate::server::{MinerConfig, MinerServer};
use crate::validators::ValidatorSet;

/// Default port of the miner's HTTP server (Bittensor's customary axon port).
pub const DEFAULT_PORT: u16 = 8091;

/// The tensorproof miner: serves validators' signed GPU challenges.
#[derive(Debug, Parser)]
#[command(name = "miner", version, about, long_about = None)]
pub struct Cli {
    /// Log filter (tracing `EnvFilter` syntax, e.g. `info` or `miner=debug`).
    #[arg(long, global = true, env = "MINER_LOG", default_value = "info")]
    pub log: String,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve challenges: load the hotkey, check registration, advertise the axon, serve until Ctrl-C.
    Run(Box<RunArgs>),
    /// Act as a validator against a running miner and report what works (pass/fail table).
    Doctor(crate::doctor::DoctorArgs),
    /// Measure signed request latency and throughput through the full auth stack over loopback.
    BenchTransport(crate::bench::BenchArgs),
    /// Create or show the btcli wallet holding the miner's hotkey.
    Wallet {
        /// Which wallet.
        #[command(flatten)]
        wallet: chain::wallet::WalletArgs,
        /// `new` or `show`.
        #[command(subcommand)]
        command: chain::wallet::WalletCommand,
    },
}

/// Which devices `miner run --devices` serves.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum DeviceSelection {
    /// Every device the backend finds (`all`).
    All,
    /// These indices, in this order, each once.
    List(Vec<usize>),
}

impl std::str::FromStr for DeviceSelection {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("all") {
            return Ok(Self::All);
        }
        let mut list = Vec::new();
        for part in s.split(',') {
            let i: usize = part
                .trim()
                .parse()
                .map_err(|_| format!("`{part}` is not a device index; write `all` or indices such as 0,1"))?;
            if list.contains(&i) {
                return Err(format!("device {i} is listed twice"));
            }
            list.push(i);
        }
        if list.is_empty() {
            return Err("no device listed; write `all` or indices such as 0,1".into());
        }
        Ok(Self::List(list))
    }
}

impl TryFrom<String> for DeviceSelection {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl DeviceSelection {
    /// The device indices to serve on `backend`. `all` asks the backend how many devices it has: CUDA
    /// devices for `cuda`, adapters for `wgpu`/`vulkan` (0 = the preferred one, then the others), and
    /// one for `flex` (a list such as `0,1` on flex runs two CPU workers, for tests).
    pub fn resolve(&self, backend: BackendKind) -> anyhow::Result<Vec<usize>> {
        match self {
            Self::List(list) => Ok(list.clone()),
            Self::All => {
                let count = device_count(backend);
                anyhow::ensure!(
                    count > 0,
                    "--devices all: the {backend} backend finds no device; check the driver with `miner doctor`"
                );
                Ok((0..count).collect())
            }
        }
    }
}

/// How many devices `backend` can reach (1 for flex and for backends that cannot tell).
fn device_count(backend: BackendKind) -> usize {
    #[allow(unused_imports)]
    use burn::tensor::{Device, DeviceType};
    match backend {
        #[cfg(feature = "cuda")]
        BackendKind::Cuda => Device::enumerate(DeviceType::Cuda).len(),
        #[cfg(feature = "vulkan")]
        BackendKind::Vulkan => Device::enumerate(DeviceType::Vulkan).len(),
        #[cfg(feature = "wgpu")]
        BackendKind::Wgpu => Device::enumerate(DeviceType::Wgpu).len(),
        _ => 1,
    }
}

/// `miner run` flags. All optional here so that the TOML file can fill what flags leave out.
#[derive(Debug, Clone, Default, Args, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct RunArgs {
    /// TOML file with any of these settings (flags and environment variables override it).
    #[arg(long, env = "MINER_CONFIG", value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Folder holding btcli wallets [default: ~/.bittensor/wallets].
    #[arg(long, env = "BT_WALLET_PATH", value_name = "DIR")]
    pub wallet_path: Option<PathBuf>,
    /// Wallet name (folder under the wallet path) [default: default].
    #[arg(long, env = "BT_WALLET_NAME", value_name = "NAME")]
    pub wallet: Option<String>,
    /// Hotkey name within the wallet; it signs receipts and is the receiver validators sign for
    /// [default: default].
    #[arg(long, env = "BT_WALLET_HOTKEY", value_name = "NAME")]
    pub hotkey: Option<String>,
    /// Chain to join: devnet, local, test, finney, or a ws:// / wss:// URL. Not used with --dev.
    #[arg(long, env = "MINER_NETWORK", value_name = "NET")]
    pub network: Option<String>,
    /// Subnet id to serve. Required unless --dev.
    #[arg(long, env = "MINER_NETUID", value_name = "N")]
    pub netuid: Option<u16>,
    /// TCP port for HTTP/1.1 and h2c [default: 8091].
    #[arg(long, env = "MINER_PORT", value_name = "PORT")]
    pub port: Option<u16>,
    /// Local address to listen on [default: 0.0.0.0].
    #[arg(long, env = "MINER_BIND", value_name = "IP")]
    pub bind: Option<IpAddr>,
    /// Compute backend: flex (CPU), wgpu, vulkan or cuda, as compiled in [default: flex].
    #[arg(long, env = "MINER_BACKEND", value_name = "KIND")]
    pub backend: Option<BackendKind>,
    /// Device index within the backend (CUDA ordinal; wgpu: 0 = preferred adapter) [default: 0].
    #[arg(long, env = "MINER_DEVICE", value_name = "I")]
    pub device: Option<usize>,
    /// Devices to serve, one worker each: `all` (every device the backend finds) or indices `0,1,…`;
    /// replaces --device. Challenges go to the least-loaded device.
    #[arg(long, env = "MINER_DEVICES", value_name = "LIST", conflicts_with = "device")]
    pub devices: Option<DeviceSelection>,
    /// Public IP to advertise on chain (serve_axon) when it differs from what the chain has.
    #[arg(long, env = "MINER_EXTERNAL_IP", value_name = "IP")]
    pub external_ip: Option<IpAddr>,
    /// Run without a chain: only the --allow-validator hotkeys may send work.
    #[arg(long, env = "MINER_DEV")]
    pub dev: bool,
    /// Validator hotkey (ss58) allowed in --dev mode; repeat the flag, or comma-separate in the env var.
    #[arg(
        long = "allow-validator",
        env = "MINER_ALLOW_VALIDATOR",
        value_name = "SS58",
        value_delimiter = ','
    )]
    pub allow_validator: Vec<String>,
    /// Least stake (TAO) a validator needs for its work to be served [default: 0].
    #[arg(long, env = "MINER_MIN_STAKE", value_name = "TAO")]
    pub min_stake: Option<f64>,
    /// Seconds between metagraph refreshes [default: 120].
    #[arg(long, env = "MINER_METAGRAPH_REFRESH_SECS", value_name = "SECS")]
    pub metagraph_refresh_secs: Option<u64>,
    /// Folder for the miner's own files (the `miner doctor` key) [default: ~/.tensorproof/miner].
    #[arg(long, env = "MINER_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Jobs that may wait for the device (429 beyond) [default: 32].
    #[arg(long, env = "MINER_QUEUE_CAPACITY", value_name = "N")]
    pub queue_capacity: Option<usize>,
    /// Memory for round-1 state kept for openings, in MiB [default: 4096].
    #[arg(long, env = "MINER_STATE_MEMORY_MIB", value_name = "MIB")]
    pub state_memory_mib: Option<u64>,
    /// Largest matmul size n served [default: 8192].
    #[arg(long, env = "MINER_MAX_MATMUL_N", value_name = "N")]
    pub max_matmul_n: Option<u32>,
    /// Sustained requests per second per validator [default: 50].
    #[arg(long, env = "MINER_RATE_PER_VALIDATOR", value_name = "RPS")]
    pub rate_per_validator: Option<f64>,
    /// Requests in flight per validator [default: 8].
    #[arg(long, env = "MINER_CONCURRENCY_PER_VALIDATOR", value_name = "N")]
    pub concurrency_per_validator: Option<u32>,
    /// Answer dishonestly (builds with `--features miner/adversary` only): lazy:F, noisy:F, forge,
    /// on-demand, replay, slow:MS or garbage.
    #[arg(long, env = "MINER_ADVERSARY", value_name = "MODE")]
    pub adversary: Option<String>,
    /// A real model to hold and serve in inference challenges: `smollm2` (the default model, fetched by
    /// scripts/fetch-model.sh) or a path to a Llama GGUF file. Repeat the flag (or comma-separate in the
    /// env var; a list in the file) for several; each is loaded once at start and listed in `/info`.
    #[arg(
        long = "model",
        env = "MINER_MODEL",
        value_name = "SPEC",
        value_delimiter = ','
    )]
    pub model: Vec<String>,
    /// Every limit (config file only: the `[limits]` table).
    #[arg(skip)]
    pub limits: Option<LimitsFile>,
}

/// The `[limits]` table of the config file: every field of [`Limits`], kebab-case, unknown keys
/// refused. [`LimitsFile::from_limits`] and [`LimitsFile::apply`] convert both ways.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct LimitsFile {
    /// See [`Limits::max_body_bytes`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_body_bytes: Option<usize>,
    /// See [`Limits::max_ping_bytes`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_ping_bytes: Option<usize>,
    /// See [`Limits::queue_capacity`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_capacity: Option<usize>,
    /// See [`Limits::state_memory_cap_bytes`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_memory_cap_bytes: Option<u64>,
    /// See [`Limits::state_ttl_secs`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_ttl_secs: Option<u64>,
    /// See [`Limits::rate_per_validator`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_per_validator: Option<f64>,
    /// See [`Limits::burst_per_validator`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub burst_per_validator: Option<u32>,
    /// See [`Limits::concurrency_per_validator`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency_per_validator: Option<u32>,
    /// See [`Limits::request_timeout_secs`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_timeout_secs: Option<u64>,
    /// See [`Limits::inference_memory_cap_bytes`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inference_memory_cap_bytes: Option<u64>,
    /// See [`Limits::model_cache_bytes`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_cache_bytes: Option<u64>,
    /// See [`Limits::max_connections`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<usize>,
    /// See [`Limits::health_connections`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_connections: Option<usize>,
    /// See [`Limits::max_connections_per_ip`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connections_per_ip: Option<usize>,
    /// See [`Limits::header_read_timeout_secs`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header_read_timeout_secs: Option<u64>,
    /// See [`Limits::idle_timeout_secs`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_timeout_secs: Option<u64>,
    /// `[limits.matmul]`: see [`Limits::matmul`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matmul: Option<MatmulLimitsFile>,
    /// `[limits.inference]`: see [`Limits::inference`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inference: Option<InferenceLimitsFile>,
    /// `[limits.generate]`: see [`Limits::generate`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generate: Option<GenerateLimitsFile>,
}

/// The `[limits.generate]` table: the `POST /v1/generate` caps ([`crate::config::GenerateLimits`]),
/// kebab-case.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct GenerateLimitsFile {
    /// Sequences decoded together per model and device.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_sequences: Option<usize>,
    /// Most tokens one request may generate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<usize>,
    /// KV-cache bytes per model and device.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kv_cache_bytes: Option<u64>,
    /// Longest wait for the first token, in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_token_timeout_secs: Option<u64>,
}

/// The `[limits.matmul]` table: [`MatmulLimits`](bench_tasks::matmul::MatmulLimits), kebab-case (the
/// snake_case spellings `max_n`, `max_m`, `max_k` of earlier versions are still read).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct MatmulLimitsFile {
    /// Largest matrix side `n` (as `--max-matmul-n`).
    #[serde(alias = "max_n", skip_serializing_if = "Option::is_none")]
    pub max_n: Option<u32>,
    /// Largest sketch width `m`.
    #[serde(alias = "max_m", skip_serializing_if = "Option::is_none")]
    pub max_m: Option<u32>,
    /// Most rows one opening request may ask for.
    #[serde(alias = "max_k", skip_serializing_if = "Option::is_none")]
    pub max_k: Option<u32>,
    /// Most products one challenge may carry.
    #[serde(alias = "max_batch", skip_serializing_if = "Option::is_none")]
    pub max_batch: Option<u32>,
}

/// The `[limits.inference]` table: the inference challenge caps
/// ([`bench_tasks::inference::Limits`]), kebab-case.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct InferenceLimitsFile {
    /// Most prompts per challenge, `B`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_batch: Option<usize>,
    /// Longest prompt, in tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_prompt_len: Option<usize>,
    /// Most generated tokens per prompt, `T`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_new_tokens: Option<usize>,
}

impl LimitsFile {
    /// Every key set, to the values of `limits`.
    pub fn from_limits(limits: &Limits) -> Self {
        Self {
            max_body_bytes: Some(limits.max_body_bytes),
            max_ping_bytes: Some(limits.max_ping_bytes),
            queue_capacity: Some(limits.queue_capacity),
            state_memory_cap_bytes: Some(limits.state_memory_cap_bytes),
            state_ttl_secs: Some(limits.state_ttl_secs),
            rate_per_validator: Some(limits.rate_per_validator),
            burst_per_validator: Some(limits.burst_per_validator),
            concurrency_per_validator: Some(limits.concurrency_per_validator),
            request_timeout_secs: Some(limits.request_timeout_secs),
            inference_memory_cap_bytes: Some(limits.inference_memory_cap_bytes),
            model_cache_bytes: Some(limits.model_cache_bytes),
            max_connections: Some(limits.max_connections),
            health_connections: Some(limits.health_connections),
            max_connections_per_ip: Some(limits.max_connections_per_ip),
            header_read_timeout_secs: Some(limits.header_read_timeout_secs),
            idle_timeout_secs: Some(limits.idle_timeout_secs),
            matmul: Some(MatmulLimitsFile {
                max_n: Some(limits.matmul.max_n),
                max_m: Some(limits.matmul.max_m),
                max_k: Some(limits.matmul.max_k),
                max_batch: Some(limits.matmul.max_batch),
            }),
            inference: Some(InferenceLimitsFile {
                max_batch: Some(limits.inference.max_batch),
                max_prompt_len: Some(limits.inference.max_prompt_len),
                max_new_tokens: Some(limits.inference.max_new_tokens),
            }),
            generate: Some(GenerateLimitsFile {
                max_sequences: Some(limits.generate.max_sequences),
                max_tokens: Some(limits.generate.max_tokens),
                kv_cache_bytes: Some(limits.generate.kv_cache_bytes),
                first_token_timeout_secs: Some(limits.generate.first_token_timeout_secs),
            }),
        }
    }

    /// Overwrites in `limits` every value this table sets.
    pub fn apply(&self, limits: &mut Limits) {
        macro_rules! set {
            ($from:expr, $to:expr, $($field:ident),+) => {
                $( if let Some(v) = $from.$field { $to.$field = v; } )+
            };
        }
        set!(
            self,
            limits,
            max_body_bytes,
            max_ping_bytes,
            queue_capacity,
            state_memory_cap_bytes,
            state_ttl_secs,
            rate_per_validator,
            burst_per_validator,
            concurrency_per_validator,
            request_timeout_secs,
            inference_memory_cap_bytes,
            model_cache_bytes,
            max_connections,
            health_connections,
            max_connections_per_ip,
            header_read_timeout_secs,
            idle_timeout_secs
        );
        if let Some(m) = &self.matmul {
            set!(m, limits.matmul, max_n, max_m, max_k, max_batch);
        }
        if let Some(i) = &self.inference {
            set!(i, limits.inference, max_batch, max_prompt_len, max_new_tokens);
        }
        if let Some(g) = &self.generate {
            set!(
                g,
                limits.generate,
                max_sequences,
                max_tokens,
                kv_cache_bytes,
                first_token_timeout_secs
            );
        }
    }
}

macro_rules! take_missing {
    ($cli:ident, $file:ident, $($field:ident),+ $(,)?) => {
        $( if $cli.$field.is_none() { $cli.$field = $file.$field.take(); } )+
    };
}

impl RunArgs {
    /// Fills every setting the flags and environment left out from the `--config` file, if any.
    pub fn merge_config_file(mut self) -> anyhow::Result<Self> {
        let Some(path) = self.config.clone() else {
            return Ok(self);
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read the config file {}; check the path", path.display()))?;
        let mut file: Self = toml::from_str(&text).with_context(|| {
            format!(
                "{} is not a valid miner config; see `miner run --help`",
                path.display()
            )
        })?;
        take_missing!(
            self,
            file,
            wallet_path,
            wallet,
            hotkey,
            network,
            netuid,
            port,
            bind,
            backend,
            device,
            devices,
            external_ip,
            min_stake,
            metagraph_refresh_secs,
            state_dir,
            queue_capacity,
            state_memory_mib,
            max_matmul_n,
            rate_per_validator,
            concurrency_per_validator,
            adversary,
            limits,
        );
        self.dev |= file.dev;
        if self.allow_validator.is_empty() {
            self.allow_validator = file.allow_validator;
        }
        if self.model.is_empty() {
            self.model = file.model;
        }
        Ok(self)
    }

    /// The limits: defaults, then the file's `[limits]` table, then the dedicated flags.
    pub fn limits(&self) -> Limits {
        let mut limits = Limits::default();
        if let Some(f) = &self.limits {
            f.apply(&mut limits);
        }
        if let Some(v) = self.queue_capacity {
            limits.queue_capacity = v;
        }
        if let Some(v) = self.state_memory_mib {
            limits.state_memory_cap_bytes = v.saturating_mul(1 << 20);
        }
        if let Some(v) = self.max_matmul_n {
            limits.matmul.max_n = v;
        }
        if let Some(v) = self.rate_per_validator {
            limits.rate_per_validator = v;
        }
        if let Some(v) = self.concurrency_per_validator {
            limits.concurrency_per_validator = v;
        }
        limits
    }

    /// The folder for the miner's own files.
    pub fn state_dir(&self) -> PathBuf {
        self.state_dir.clone().unwrap_or_else(default_state_dir)
    }

    /// What the chain link needs of these flags.
    pub fn chain_args(&self) -> crate::chain_link::ChainArgs {
        crate::chain_link::ChainArgs {
            wallet_path: self.wallet_path.clone(),
            wallet: self.wallet.clone(),
            hotkey: self.hotkey.clone(),
            network: self.network.clone(),
            netuid: self.netuid,
            external_ip: self.external_ip,
            metagraph_refresh_secs: self.metagraph_refresh_secs,
        }
    }
}

/// Parses the `--allow-validator` list.
pub fn parse_allow_list(list: &[String]) -> anyhow::Result<Vec<AccountId>> {
    list.iter()
        .map(|s| AccountId::from_ss58(s.trim()).map_err(|e| anyhow::anyhow!("--allow-validator {s}: {e}")))
        .collect()
}

/// Converts TAO to rao.
pub fn tao_to_rao(tao: f64) -> u64 {
    if tao.is_finite() && tao > 0.0 {
        (tao * 1e9).round().min(u64::MAX as f64) as u64
    } else {
        0
    }
}

/// Runs the parsed command line.
pub fn main_with(cli: Cli) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("miner-io")
        .build()
        .context("cannot start the async runtime")?;
    match cli.command {
        Command::Run(args) => runtime.block_on(run(args.merge_config_file()?)),
        Command::Doctor(args) => runtime.block_on(crate::doctor::run(args)),
        Command::BenchTransport(args) => runtime.block_on(crate::bench::run(args)),
        Command::Wallet { wallet, command } => command
            .run(&wallet, &mut std::io::stdout().lock())
            .map_err(anyhow::Error::from),
    }
}

/// Loads the miner's hotkey, or in `--dev` without a wallet makes a throwaway one.
fn load_hotkey(args: &RunArgs) -> anyhow::Result<Keypair> {
    if args.dev && args.wallet.is_none() && args.hotkey.is_none() {
        let (key, _, _) = Keypair::generate();
        tracing::warn!(hotkey = %key.ss58(), "--dev without --wallet/--hotkey: using a throwaway hotkey for this run");
        return Ok(key);
    }
    crate::chain_link::load_hotkey(&args.chain_args())
}

/// Loads the `--model` specs on the host (off the async workers), once for every device worker.
async fn load_models(specs: &[String]) -> anyhow::Result<std::sync::Arc<HeldModels>> {
    if specs.is_empty() {
        return Ok(std::sync::Arc::new(HeldModels::none()));
    }
    let specs = specs.to_vec();
    let held = tokio::task::spawn_blocking(move || HeldModels::load(&specs))
        .await
        .context("the model loading thread failed")??;
    for m in held.models() {
        tracing::info!(model = %m.id, path = %m.path.display(), "holding a real model");
    }
    Ok(std::sync::Arc::new(held))
}

/// A started `miner run`: the HTTP server and, on a chain, what was found there and the metagraph
/// refresher.
#[derive(Debug)]
pub struct RunningMiner {
    server: MinerServer,
    chain: Option<crate::chain_link::ChainStatus>,
    refresher: Option<tokio::task::JoinHandle<()>>,
    behavior: Behavior,
}

impl RunningMiner {
    /// The HTTP server.
    pub fn server(&self) -> &MinerServer {
        &self.server
    }

    /// What was found and done on chain at start (`None` with `--dev`).
    pub fn chain(&self) -> Option<&crate::chain_link::ChainStatus> {
        self.chain.as_ref()
    }

    /// The answer behavior (honest unless `--adversary`).
    pub fn behavior(&self) -> Behavior {
        self.behavior
    }

    /// Waits until the server stops on its own (an I/O error).
    pub async fn wait(&mut self) -> anyhow::Result<()> {
        self.server.wait().await.context("the HTTP server stopped")
    }

    /// Stops the metagraph refresher and the server (open requests get up to 5 s).
    pub async fn shutdown(mut self) {
        if let Some(task) = self.refresher.take() {
            task.abort();
        }
        self.server.shutdown().await;
    }
}

/// Everything `miner run` does before serving: loads the hotkey, binds the port, on a chain checks the
/// registration, loads the validator set and advertises the bound address, probes the device and starts
/// the server. Returns once the server accepts connections.
pub async fn start(args: RunArgs) -> anyhow::Result<RunningMiner> {
    let limits = args.limits();
    let keypair = load_hotkey(&args)?;
    let behavior = match &args.adversary {
        Some(spec) => Behavior::parse(spec).map_err(anyhow::Error::msg)?,
        None => Behavior::Honest,
    };
    let validators = if args.dev {
        let allowed = parse_allow_list(&args.allow_validator)?;
        if allowed.is_empty() {
            tracing::warn!(
                "--dev without --allow-validator: only `miner doctor` on this machine can send work"
            );
        }
        ValidatorSet::allow_list(allowed)
    } else {
        ValidatorSet::metagraph(tao_to_rao(args.min_stake.unwrap_or(0.0)))
    };
    let state_dir = args.state_dir();
    let doctor = write_doctor_key(&doctor_key_path(&state_dir))?;
    validators.allow_from_loopback(doctor.account());

    let port = args.port.unwrap_or(DEFAULT_PORT);
    let bind = SocketAddr::new(args.bind.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)), port);
    // Bound first, so that the chain is told the port actually served (`--port 0` picks a free one).
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("cannot listen on {bind}; pick another --port or stop what uses it"))?;
    let bound_port = listener.local_addr()?.port();
    let link = if args.dev {
        None
    } else {
        Some(crate::chain_link::connect(&args.chain_args(), &keypair, &validators, bound_port).await?)
    };

    let mut config = MinerConfig::new(keypair, validators);
    config.backend = args.backend.unwrap_or(BackendKind::Flex);
    config.device_index = args.device.unwrap_or(0);
    if let Some(selection) = &args.devices {
        config.devices = selection.resolve(config.backend)?;
        config.device_index = config.devices[0];
    }
    config.limits = limits;
    config.behavior = behavior;
    config.models = load_models(&args.model).await?;
    if config.backend == BackendKind::Flex {
        tracing::warn!("serving on the CPU (flex backend); pass --backend cuda or wgpu to use a GPU");
    }
    let server = MinerServer::start(config, listener).await?;
    let chain = link.as_ref().map(|l| l.status().clone());
    let refresher = link.map(|l| l.spawn_refresh(server.validators().clone()));
    Ok(RunningMiner {
        server,
        chain,
        refresher,
        behavior,
    })
}

/// `miner run`: [`start`], then serve until Ctrl-C or an I/O error.
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let mut miner = start(args).await?;
    println!(
        "miner {} serving on {} (backend {}, behavior {})",
        miner.server().hotkey(),
        miner.server().local_addr(),
        miner.server().info().backend,
        miner.behavior().name()
    );
    let outcome = tokio::select! {
        result = miner.wait() => result,
        _ = tokio::signal::ctrl_c() => Ok(()),
    };
    miner.shutdown().await;
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_file_and_file_fills_the_rest() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("miner.toml");
        std::fs::write(
            &path,
            "port = 9000\nnetuid = 7\nbackend = \"flex\"\nallow-validator = [\"a\"]\n[limits]\nqueue-capacity = 3\n[limits.matmul]\nmax_n = 512\n",
        )
        .expect("write");
        let cli = Cli::try_parse_from([
            "miner",
            "run",
            "--config",
            path.to_str().expect("utf-8"),
            "--port",
            "9100",
        ])
        .expect("parses");
        let Command::Run(args) = cli.command else {
            panic!("run expected")
        };
        let args = args.merge_config_file().expect("merges");
        assert_eq!(args.port, Some(9100), "flag wins over file");
        assert_eq!(args.netuid, Some(7), "file fills what flags leave out");
        assert_eq!(args.allow_validator, vec!["a".to_owned()]);
        let limits = args.limits();
        assert_eq!(limits.queue_capacity, 3);
        assert_eq!(limits.matmul.max_n, 512);
    }

    #[test]
    fn unknown_config_keys_are_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("miner.toml");
        std::fs::write(&path, "prot = 9000\n").expect("write");
        let args = RunArgs {
            config: Some(path),
            ..RunArgs::default()
        };
        let err = args.merge_config_file().unwrap_err();
        assert!(format!("{err:#}").contains("prot"), "{err:#}");
    }

    fn limits_from_file(text: &str) -> anyhow::Result<Limits> {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("miner.toml");
        std::fs::write(&path, text).expect("write");
        let args = RunArgs {
            config: Some(path),
            ..RunArgs::default()
        };
        Ok(args.merge_config_file()?.limits())
    }

    #[test]
    fn every_limit_round_trips_through_the_limits_table() {
        // Every field differs from its default, so a key the file cannot set shows up as a mismatch.
        let wanted = Limits {
            max_body_bytes: 12_345,
            max_ping_bytes: 2_345,
            queue_capacity: 7,
            state_memory_cap_bytes: 3 << 20,
            state_ttl_secs: 9,
            rate_per_validator: 2.5,
            burst_per_validator: 11,
            concurrency_per_validator: 3,
            matmul: bench_tasks::matmul::MatmulLimits {
                max_n: 640,
                max_m: 16,
                max_k: 80,
                max_batch: 512,
            },
            inference: bench_tasks::inference::Limits {
                max_batch: 5,
                max_prompt_len: 17,
                max_new_tokens: 19,
            },
            inference_memory_cap_bytes: 1 << 28,
            request_timeout_secs: 33,
            model_cache_bytes: 1 << 27,
            max_connections: 99,
            health_connections: 5,
            max_connections_per_ip: 6,
            header_read_timeout_secs: 4,
            idle_timeout_secs: 44,
            generate: crate::config::GenerateLimits {
                max_sequences: 3,
                max_tokens: 77,
                kv_cache_bytes: 1 << 25,
                first_token_timeout_secs: 8,
            },
        };
        let defaults = Limits::default();
        assert_ne!(wanted.matmul, defaults.matmul);
        assert_ne!(wanted.inference, defaults.inference);
        #[derive(Serialize)]
        struct File {
            limits: LimitsFile,
        }
        let text = toml::to_string(&File {
            limits: LimitsFile::from_limits(&wanted),
        })
        .expect("serializes");
        assert!(
            text.contains("[limits.inference]") && text.contains("max-new-tokens = 19"),
            "{text}"
        );
        assert_eq!(limits_from_file(&text).expect("parses"), wanted, "{text}");
    }

    #[test]
    fn inference_limits_come_from_the_file_and_the_rest_keeps_its_defaults() {
        let limits = limits_from_file(
            "[limits]\ninference-memory-cap-bytes = 1048576\n[limits.inference]\nmax-batch = 4\n",
        )
        .expect("parses");
        let defaults = Limits::default();
        assert_eq!(limits.inference.max_batch, 4);
        assert_eq!(limits.inference.max_new_tokens, defaults.inference.max_new_tokens);
        assert_eq!(limits.inference_memory_cap_bytes, 1 << 20);
        assert_eq!(limits.matmul, defaults.matmul);
    }

    #[test]
    fn nested_limit_tables_refuse_unknown_keys_and_read_the_old_matmul_spelling() {
        for (text, bad) in [
            ("[limits.inference]\nmax-batches = 4\n", "max-batches"),
            ("[limits.matmul]\nmax-nn = 4\n", "max-nn"),
        ] {
            let err = limits_from_file(text).unwrap_err();
            assert!(format!("{err:#}").contains(bad), "{err:#}");
        }
        let limits = limits_from_file("[limits.matmul]\nmax_n = 512\nmax-k = 9\n").expect("parses");
        assert_eq!((limits.matmul.max_n, limits.matmul.max_k), (512, 9));
    }
}
