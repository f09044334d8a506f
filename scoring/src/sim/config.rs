//! The simulator's configuration file (TOML). Every field has a default; see `scoring/sims/` for
//! complete examples.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::policy::Policy;
use crate::task::TaskClass;
use crate::yuma::YumaHyperparameters;

/// A whole simulation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimConfig {
    /// Seed of every random draw (default 1).
    pub seed: u64,
    /// Epochs to run (default 100).
    pub epochs: u32,
    /// Blocks per epoch (default 360).
    pub tempo: u16,
    /// Seconds per block, for GPU cost (default 12).
    pub block_seconds: f64,
    /// Emission per epoch, miners and validators together, in rao (default 1e9).
    pub rao_emission: u64,
    /// Challenges each validator sends each miner per epoch, each drawn as one validator round (one
    /// size per class for every miner), scored together as one round of the EMA (default 4).
    pub challenges_per_round: u32,
    /// Rows the validator opens per challenge: a lazy miner skipping a fraction `f` of the work passes
    /// with probability `(1 − f)^openings` (default 4).
    pub openings: u32,
    /// Answers slower than this fail as timeouts, in seconds (default 30).
    pub timeout_seconds: f64,
    /// The validator's `[round] max_devices`: a miner claiming `d` devices gets `min(d, max_devices)`
    /// challenges at once, scored as one group (default 8).
    pub max_devices: u32,
    /// Relative spread of a GPU's compute time between runs (log-normal σ, default 0.05).
    pub compute_noise: f64,
    /// The real stack's fixed cost per challenge, in milliseconds, that the validator's clock sees
    /// and its RTT ping does not, so the score counts it as compute: the validator generating and
    /// signing the request, the miner checking the signature, regenerating the matrices from the seed,
    /// serializing and signing the answer, and the HTTP framing around both. Added to every
    /// challenge's elapsed time, drawn per challenge; a device group's challenges (and a split GPU's
    /// uids) pay theirs at once, as the validator sends them together, so a group waits for the
    /// largest. Default 0 (off: the network's RTT and jitter only, as before it existed).
    /// `validator bench-round` measures it as the median of `elapsed − RTT` over matmul answers at a
    /// tiny `n`: about 0.5 ms with a flex CPU miner on loopback (release build, `validator bench-round
    /// --miners 1 --n 32 --rounds 20 --concurrency 1`), with a tail where the matmul waited behind the
    /// miner's own inference work on its one device; see docs/owner.md for what 1, 10 and 100 ms do
    /// to the issue-17 ratios.
    pub answer_overhead_ms: f64,
    /// Standard deviation of `answer_overhead_ms` between challenges, in milliseconds (normal, cut at
    /// 0; default 0).
    pub answer_overhead_jitter_ms: f64,
    /// Cost per hour of the CPU box a copier runs on, in dollars (default 0.05).
    pub copier_cost_per_hour: f64,
    /// Commit-reveal (`RevealPeriodEpochs`): weights set in epoch `e` count, and are visible to anyone
    /// (a weight copier too), from epoch `e + reveal_period_epochs` on. 0 (the default): commit-reveal
    /// off, weights count in the epoch they are set.
    pub reveal_period_epochs: u32,
    /// The challenge classes.
    pub tasks: Vec<TaskSpec>,
    /// The subnet's mechanisms (`MechanismCountCurrent`, `MechanismEmissionSplit`): each scores the task
    /// classes it lists, gets its own weights, bonds and Yuma epoch, and pays its share of the emission.
    /// Empty (the default): one mechanism scoring every class, as a subnet without mechanisms.
    pub mechanisms: Vec<MechanismSpec>,
    /// GPU classes by name.
    pub gpus: BTreeMap<String, GpuClass>,
    /// The owner policy under test. The burn, when any, goes to uid 0, the simulated owner.
    pub policy: Policy,
    /// Yuma hyperparameters (`max_allowed_validators` is raised to the validator count when lower).
    pub yuma: YumaHyperparameters,
    /// `MinAllowedWeights` (default 1).
    pub min_allowed_weights: u16,
    /// `MaxWeightsLimit` (default 65535: no limit).
    pub max_weight_limit: u16,
    /// Miner populations.
    pub miners: Vec<MinerGroup>,
    /// Validator populations.
    pub validators: Vec<ValidatorGroup>,
}

/// One challenge class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskSpec {
    /// The class scores compare within (`matmul`, `inference`).
    pub class: TaskClass,
    /// Share of challenges of this class.
    pub share: f64,
    /// Possible challenge sizes in work units, drawn uniformly once per round (every miner of the
    /// round gets the same size, as the validator draws one `n` per round).
    pub work_units: Vec<f64>,
    /// Seconds per work unit on a GPU of throughput 1.
    pub seconds_per_unit: f64,
}

/// One mechanism of the subnet: the task classes whose scores set its weights and its emission share.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MechanismSpec {
    /// The task classes it scores; each class of `tasks` belongs to exactly one mechanism.
    pub classes: Vec<TaskClass>,
    /// Its share of the emission (shares are normalized over the mechanisms; at least one must be above
    /// 0). On chain, `MechanismEmissionSplit` holds these as u16 parts of 65535.
    pub emission_share: f64,
}

/// A GPU model: its speed relative to the reference and what an hour of it costs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuClass {
    /// Throughput relative to the reference GPU (1 = reference).
    pub throughput: f64,
    /// Rental cost per hour, in dollars.
    pub cost_per_hour: f64,
}

/// What a miner population does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Computes every answer on its GPU and answers at once.
    Honest,
    /// Skips `skip_fraction` of the work and hopes the openings miss it.
    Lazy,
    /// Honest, but its GPU delivers only `speed_factor` of its class's throughput (shared, throttled).
    Slow,
    /// Honest when up; down (every answer times out) for a whole epoch with probability `1 − uptime`.
    Flaky,
    /// Runs no GPU and returns another miner's answer; seeds are bound to the miner, so it fails.
    Copier,
    /// One box behind `uids_per_gpu` uids, each uid getting a share of its GPUs (its challenges run
    /// at once on the shared GPU, as the validator sends every miner's challenges together).
    Sybil,
    /// Forwards challenges to a `remote_gpu` elsewhere, paying `extra_latency_ms` that the validator's
    /// RTT ping (answered by the relay) does not see.
    Relay,
}

impl Strategy {
    /// The snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Honest => "honest",
            Self::Lazy => "lazy",
            Self::Slow => "slow",
            Self::Flaky => "flaky",
            Self::Copier => "copier",
            Self::Sybil => "sybil",
            Self::Relay => "relay",
        }
    }
}

/// A population of miners with one strategy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MinerGroup {
    /// The strategy.
    pub strategy: Strategy,
    /// Label in the CSV, charts and summary (default: the strategy name).
    #[serde(default)]
    pub label: Option<String>,
    /// Number of miners (for `sybil`, of boxes; each registers `uids_per_gpu` uids). Default 1.
    #[serde(default = "one")]
    pub count: u32,
    /// GPU class name (default `h100`).
    #[serde(default = "default_gpu")]
    pub gpu: String,
    /// GPUs in each miner's box, all of class `gpu` (default 1). The box costs that many GPUs. A
    /// `sybil` box splits all of them across its `uids_per_gpu` uids.
    #[serde(default = "one")]
    pub gpus_per_box: u32,
    /// Devices the box advertises in `/info` (default: `gpus_per_box`). The validator sends that many
    /// challenges at once (up to `max_devices`); claiming more than the box has only makes the group
    /// take longer.
    #[serde(default)]
    pub claimed_devices: Option<u32>,
    /// Network round-trip time to validators, in milliseconds (default 30).
    #[serde(default = "default_rtt")]
    pub rtt_ms: f64,
    /// Standard deviation of the round-trip time, in milliseconds (default 5).
    #[serde(default = "default_jitter")]
    pub jitter_ms: f64,
    /// `lazy`: fraction of the work skipped (default 0.3).
    #[serde(default = "default_skip")]
    pub skip_fraction: f64,
    /// `slow`: fraction of the GPU's throughput delivered (default 0.35).
    #[serde(default = "default_speed")]
    pub speed_factor: f64,
    /// `flaky`: probability of being up in an epoch (default 0.7).
    #[serde(default = "default_uptime")]
    pub uptime: f64,
    /// `sybil`: uids per GPU (default 4).
    #[serde(default = "default_uids_per_gpu")]
    pub uids_per_gpu: u32,
    /// `relay`: the remote GPU class (default `h100`).
    #[serde(default = "default_gpu")]
    pub remote_gpu: String,
    /// `relay`: extra latency per answer, relay to remote and back, in milliseconds (default 60).
    #[serde(default = "default_extra_latency")]
    pub extra_latency_ms: f64,
    /// Miners whose performance changes over time: with `cycle_epochs = c > 0`, each miner of the group
    /// serves for `c / 2` epochs, then is down (every answer times out) for the rest of the cycle, the
    /// group's miners staggered evenly across it, so which uids are worth weight keeps moving while
    /// the group's total stays level. 0 (the default): no cycle.
    #[serde(default)]
    pub cycle_epochs: u32,
    /// The task classes the group serves; challenges of the others time out (a specialist box: an
    /// inference-only miner, say). Empty (the default): every class.
    #[serde(default)]
    pub serves: Vec<TaskClass>,
}

/// How a validator sets weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Behaviour {
    /// Tests every miner and sets weights from its own scores.
    Honest,
    /// Tests nobody and copies the previous epoch's on-chain consensus.
    Copier,
}

impl Behaviour {
    /// The snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Honest => "honest",
            Self::Copier => "copier",
        }
    }
}

/// A population of validators.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidatorGroup {
    /// Number of validators (default 1).
    #[serde(default = "one")]
    pub count: u32,
    /// Stake of each, in rao (default 1e12).
    #[serde(default = "default_stake")]
    pub stake: u64,
    /// Standard deviation of this validator's RTT measurement error, in milliseconds (default 2).
    #[serde(default = "default_validator_jitter")]
    pub jitter_ms: f64,
    /// Behaviour (default honest).
    #[serde(default = "default_behaviour")]
    pub behaviour: Behaviour,
}

fn one() -> u32 {
    1
}
fn default_gpu() -> String {
    "h100".into()
}
fn default_rtt() -> f64 {
    30.0
}
fn default_jitter() -> f64 {
    5.0
}
fn default_skip() -> f64 {
    0.3
}
fn default_speed() -> f64 {
    0.35
}
fn default_uptime() -> f64 {
    0.7
}
fn default_uids_per_gpu() -> u32 {
    4
}
fn default_extra_latency() -> f64 {
    60.0
}
fn default_stake() -> u64 {
    1_000_000_000_000
}
fn default_validator_jitter() -> f64 {
    2.0
}
fn default_behaviour() -> Behaviour {
    Behaviour::Honest
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            epochs: 100,
            tempo: 360,
            block_seconds: 12.0,
            rao_emission: 1_000_000_000,
            challenges_per_round: 4,
            openings: 4,
            timeout_seconds: 30.0,
            max_devices: 8,
            compute_noise: 0.05,
            answer_overhead_ms: 0.0,
            answer_overhead_jitter_ms: 0.0,
            copier_cost_per_hour: 0.05,
            reveal_period_epochs: 0,
            mechanisms: Vec::new(),
            tasks: vec![
                TaskSpec {
                    class: TaskClass::Matmul,
                    share: 0.5,
                    // n³ multiply-adds for n = 8192, 16384, 32768: 22 ms to 1.4 s on the reference GPU,
                    // so compute time stands well above the network's jitter.
                    work_units: vec![5.50e11, 4.40e12, 3.52e13],
                    // About 25 T multiply-adds per second on the reference GPU.
                    seconds_per_unit: 4.0e-14,
                },
                TaskSpec {
                    class: TaskClass::Inference,
                    share: 0.5,
                    // Generated tokens: batch × new tokens.
                    work_units: vec![1024.0, 2048.0, 4096.0],
                    seconds_per_unit: 5.0e-4,
                },
            ],
            gpus: BTreeMap::from([
                (
                    "h100".into(),
                    GpuClass {
                        throughput: 1.0,
                        cost_per_hour: 2.5,
                    },
                ),
                (
                    "a100".into(),
                    GpuClass {
                        throughput: 0.55,
                        cost_per_hour: 1.4,
                    },
                ),
                (
                    "rtx4090".into(),
                    GpuClass {
                        throughput: 0.45,
                        cost_per_hour: 0.5,
                    },
                ),
                (
                    "l4".into(),
                    GpuClass {
                        throughput: 0.15,
                        cost_per_hour: 0.6,
                    },
                ),
            ]),
            policy: Policy::default(),
            yuma: YumaHyperparameters::default(),
            min_allowed_weights: 1,
            max_weight_limit: u16::MAX,
            miners: Vec::new(),
            validators: Vec::new(),
        }
    }
}

/// A configuration that cannot run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// The TOML does not parse or has unknown fields.
    #[error("the simulation config is not valid TOML for this simulator: {0}")]
    Parse(String),
    /// A field is out of range or inconsistent.
    #[error("simulation config field `{field}`: {problem}")]
    Invalid {
        /// The field.
        field: String,
        /// What is wrong and what is allowed.
        problem: String,
    },
    /// The embedded policy is invalid.
    #[error(transparent)]
    Policy(#[from] crate::policy::PolicyError),
}

fn invalid(field: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.into(),
        problem: problem.into(),
    }
}

fn in_range(field: &str, v: f64, lo: f64, hi: f64) -> Result<(), ConfigError> {
    if v.is_finite() && v >= lo && v <= hi {
        Ok(())
    } else {
        Err(invalid(field, format!("is {v}, must be in [{lo}, {hi}]")))
    }
}

impl SimConfig {
    /// Parse and validate a configuration.
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        let cfg: Self = toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Number of uids the simulation registers (owner + validators + miner uids).
    pub fn uid_count(&self) -> usize {
        1 + self.validators.iter().map(|v| v.count as usize).sum::<usize>()
            + self
                .miners
                .iter()
                .map(|m| {
                    m.count as usize
                        * if m.strategy == Strategy::Sybil {
                            m.uids_per_gpu as usize
                        } else {
                            1
                        }
                })
                .sum::<usize>()
    }

    /// Check ranges and references.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.policy.validate()?;
        if self.epochs == 0 || self.epochs > 1_000_000 {
            return Err(invalid("epochs", "must be in [1, 1000000]"));
        }
        if self.tempo == 0 {
            return Err(invalid("tempo", "must be at least 1"));
        }
        in_range("block_seconds", self.block_seconds, 0.001, 3600.0)?;
        if self.challenges_per_round == 0 || self.challenges_per_round > 1000 {
            return Err(invalid("challenges_per_round", "must be in [1, 1000]"));
        }
        if self.openings > 10_000 {
            return Err(invalid("openings", "must be at most 10000"));
        }
        in_range("timeout_seconds", self.timeout_seconds, 0.001, 86_400.0)?;
        if self.max_devices == 0 || self.max_devices > 64 {
            return Err(invalid("max_devices", "must be in [1, 64]"));
        }
        in_range("compute_noise", self.compute_noise, 0.0, 2.0)?;
        in_range("answer_overhead_ms", self.answer_overhead_ms, 0.0, 60_000.0)?;
        in_range(
            "answer_overhead_jitter_ms",
            self.answer_overhead_jitter_ms,
            0.0,
            60_000.0,
        )?;
        in_range("copier_cost_per_hour", self.copier_cost_per_hour, 0.0, 1e6)?;
        if self.reveal_period_epochs > 100 {
            return Err(invalid("reveal_period_epochs", "must be at most 100"));
        }
        if self.tasks.is_empty() {
            return Err(invalid("tasks", "needs at least one task class"));
        }
        for (i, t) in self.tasks.iter().enumerate() {
            in_range(&format!("tasks[{i}].share"), t.share, 0.0, 1e6)?;
            in_range(
                &format!("tasks[{i}].seconds_per_unit"),
                t.seconds_per_unit,
                1e-30,
                1e6,
            )?;
            if t.work_units.is_empty() || t.work_units.iter().any(|w| !w.is_finite() || *w <= 0.0) {
                return Err(invalid(
                    format!("tasks[{i}].work_units"),
                    "needs at least one positive size",
                ));
            }
        }
        if self.tasks.iter().map(|t| t.share).sum::<f64>() <= 0.0 {
            return Err(invalid("tasks", "the shares must not all be 0"));
        }
        if self.mechanisms.len() > 16 {
            return Err(invalid("mechanisms", "at most 16 (subtensor's limit)"));
        }
        for (i, m) in self.mechanisms.iter().enumerate() {
            in_range(
                &format!("mechanisms[{i}].emission_share"),
                m.emission_share,
                0.0,
                1e6,
            )?;
            if m.classes.is_empty() {
                return Err(invalid(
                    format!("mechanisms[{i}].classes"),
                    "needs at least one class",
                ));
            }
        }
        if !self.mechanisms.is_empty() {
            if self.mechanisms.iter().map(|m| m.emission_share).sum::<f64>() <= 0.0 {
                return Err(invalid("mechanisms", "the emission shares must not all be 0"));
            }
            for t in &self.tasks {
                let owners = self
                    .mechanisms
                    .iter()
                    .filter(|m| m.classes.contains(&t.class))
                    .count();
                if owners != 1 {
                    return Err(invalid(
                        "mechanisms",
                        format!(
                            "task class `{}` must belong to exactly one mechanism, not {owners}",
                            t.class
                        ),
                    ));
                }
            }
        }
        for (name, g) in &self.gpus {
            in_range(&format!("gpus.{name}.throughput"), g.throughput, 1e-9, 1e9)?;
            in_range(&format!("gpus.{name}.cost_per_hour"), g.cost_per_hour, 0.0, 1e6)?;
        }
        if self.miners.is_empty() {
            return Err(invalid("miners", "needs at least one miner group"));
        }
        for (i, m) in self.miners.iter().enumerate() {
            let f = |name: &str| format!("miners[{i}].{name}");
            if m.count == 0 {
                return Err(invalid(f("count"), "must be at least 1"));
            }
            if m.cycle_epochs == 1 || m.cycle_epochs > 100_000 {
                return Err(invalid(f("cycle_epochs"), "must be 0 (off) or in [2, 100000]"));
            }
            for gpu in [&m.gpu, &m.remote_gpu] {
                if !self.gpus.contains_key(gpu) {
                    let known: Vec<&str> = self.gpus.keys().map(String::as_str).collect();
                    return Err(invalid(
                        f("gpu"),
                        format!("unknown GPU class `{gpu}`; known: {}", known.join(", ")),
                    ));
                }
            }
            in_range(&f("rtt_ms"), m.rtt_ms, 0.0, 60_000.0)?;
            in_range(&f("jitter_ms"), m.jitter_ms, 0.0, 60_000.0)?;
            in_range(&f("skip_fraction"), m.skip_fraction, 0.0, 1.0)?;
            in_range(&f("speed_factor"), m.speed_factor, 1e-6, 1.0)?;
            in_range(&f("uptime"), m.uptime, 0.0, 1.0)?;
            in_range(&f("extra_latency_ms"), m.extra_latency_ms, 0.0, 60_000.0)?;
            if m.gpus_per_box == 0 || m.gpus_per_box > 64 {
                return Err(invalid(f("gpus_per_box"), "must be in [1, 64]"));
            }
            if m.claimed_devices.is_some_and(|d| d == 0 || d > 64) {
                return Err(invalid(f("claimed_devices"), "must be in [1, 64]"));
            }
            if m.uids_per_gpu == 0 || m.uids_per_gpu > 256 {
                return Err(invalid(f("uids_per_gpu"), "must be in [1, 256]"));
            }
            if let Some(l) = &m.label
                && (l.is_empty() || l.contains([',', '"', '\n']))
            {
                return Err(invalid(
                    f("label"),
                    "must be non-empty without commas, quotes or newlines",
                ));
            }
        }
        if self.validators.is_empty() {
            return Err(invalid("validators", "needs at least one validator group"));
        }
        if !self
            .validators
            .iter()
            .any(|v| v.behaviour == Behaviour::Honest && v.count > 0)
        {
            return Err(invalid(
                "validators",
                "needs at least one honest validator, or nobody tests the miners",
            ));
        }
        for (i, v) in self.validators.iter().enumerate() {
            if v.count == 0 {
                return Err(invalid(format!("validators[{i}].count"), "must be at least 1"));
            }
            in_range(&format!("validators[{i}].jitter_ms"), v.jitter_ms, 0.0, 60_000.0)?;
        }
        if self.uid_count() > 4096 {
            return Err(invalid(
                "miners",
                format!("{} uids in all; at most 4096 are supported", self.uid_count()),
            ));
        }
        Ok(())
    }
}
