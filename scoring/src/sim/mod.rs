//! The incentive simulator: miner and validator populations, the real scoring code and the real Yuma
//! epoch, over many epochs.
//!
//! Each epoch, every honest validator sends every miner `challenges_per_round` challenges (each as in
//! one validator round: one size per class shared by every miner, a class per miner), turns the
//! simulated answers into [`Observation`]s, scores them together and folds them into its
//! [`ScoreBook`] ([`ScoreBook::fold_round`]), and sets weights with [`weights_from_scores`]; weight-copying validators copy the
//! previous epoch's consensus. Then [`run_epoch`] runs on the resulting chain state, and bonds and
//! permits carry over. Uid 0 is the subnet owner (and the burn sink), validators come next, then
//! miners.
//!
//! ```
//! use scoring::sim::{SimConfig, run};
//!
//! let cfg = SimConfig::from_toml_str(r#"
//!     epochs = 5
//!     [[validators]]
//!     count = 2
//!     [[miners]]
//!     strategy = "honest"
//!     count = 3
//!     [[miners]]
//!     strategy = "copier"
//! "#).unwrap();
//! let result = run(&cfg, None).unwrap();
//! let copier = result.summary.miners.iter().find(|r| r.label == "copier").unwrap();
//! assert_eq!(copier.emission_rao, 0);
//! ```
//!
//! [`Observation`]: crate::score::Observation
//! [`ScoreBook`]: crate::score::ScoreBook
//! [`weights_from_scores`]: crate::weights::weights_from_scores
//! [`run_epoch`]: crate::yuma::run_epoch

mod config;
mod report;
mod rng;
mod svg;

use std::collections::BTreeMap;

pub use config::{
    Behaviour, ConfigError, GpuClass, MechanismSpec, MinerGroup, SimConfig, Strategy, TaskSpec,
    ValidatorGroup,
};
pub use report::{MinerSummary, Summary, ValidatorSummary, write_outputs};
pub use rng::SimRng;
pub use svg::{Series, line_chart};

use crate::score::{Observation, ScoreBook};
use crate::task::{Reason, TaskClass};
use crate::weights::{ChainLimits, sdk_convert, weights_from_scores};
use crate::yuma::{EpochInput, YumaError, run_epoch, vec_u16_max_upscale_to_u16};

/// The role of one simulated uid.
#[derive(Debug, Clone, PartialEq)]
pub enum Role {
    /// Uid 0: the subnet owner, which receives the burn.
    Owner,
    /// A validator.
    Validator {
        /// Its behaviour.
        behaviour: Behaviour,
        /// Its stake in rao.
        stake: u64,
        /// Its RTT measurement error, seconds.
        jitter_s: f64,
    },
    /// A miner.
    Miner(MinerModel),
}

/// A simulated miner uid, resolved from its group.
#[derive(Debug, Clone, PartialEq)]
pub struct MinerModel {
    /// Strategy.
    pub strategy: Strategy,
    /// Throughput of one of its devices (per uid), relative to the reference GPU.
    pub throughput: f64,
    /// Devices that really compute for the uid (a sybil uid: one share of its box).
    pub devices: u32,
    /// Devices it advertises: the validator sends `min(claimed, max_devices)` challenges at once.
    pub claimed: u32,
    /// Round-trip time, seconds.
    pub rtt_s: f64,
    /// RTT standard deviation, seconds.
    pub jitter_s: f64,
    /// Fraction of work skipped (lazy).
    pub skip_fraction: f64,
    /// Probability of being up in an epoch (flaky; 1 for the others).
    pub uptime: f64,
    /// Latency the validator's ping does not see, seconds (relay).
    pub hidden_latency_s: f64,
    /// Up/down cycle length in epochs (0: none) and this uid's offset in it.
    pub cycle: (u32, u32),
    /// The task classes it serves (empty: all).
    pub serves: Vec<TaskClass>,
}

impl MinerModel {
    /// Whether the uid serves in `epoch` by its cycle (always, without one): up for the first half of
    /// each cycle, counted from its offset.
    pub const fn in_service(&self, epoch: u32) -> bool {
        let (len, offset) = self.cycle;
        len == 0 || (epoch + offset) % len < len / 2
    }
}

/// One simulated uid.
#[derive(Debug, Clone, PartialEq)]
pub struct Participant {
    /// Its uid.
    pub uid: u16,
    /// Its group label (`owner`, `validator:honest`, a miner group's label).
    pub label: String,
    /// Its role.
    pub role: Role,
    /// What running it costs per epoch, in dollars.
    pub cost_per_epoch: f64,
}

/// One row of the per-epoch CSV.
#[derive(Debug, Clone, PartialEq)]
pub struct UidEpoch {
    /// Epoch index from 0.
    pub epoch: u32,
    /// Uid.
    pub uid: u16,
    /// Group label.
    pub label: String,
    /// Stake-weighted mean of the honest validators' EMA scores for this uid.
    pub score: f64,
    /// Stake-weighted mean of the normalized weight validators set on this uid.
    pub weight: f64,
    /// Incentive (0–1).
    pub incentive: f64,
    /// Dividends (0–1).
    pub dividends: f64,
    /// Validator trust (0–1).
    pub validator_trust: f64,
    /// Emission this epoch, rao (miner plus validator share).
    pub emission_rao: u64,
    /// Cost this epoch, dollars.
    pub cost: f64,
}

/// Everything a run produced.
#[derive(Debug, Clone)]
pub struct SimResult {
    /// The uids and their roles.
    pub participants: Vec<Participant>,
    /// One row per epoch and uid.
    pub rows: Vec<UidEpoch>,
    /// The summary table.
    pub summary: Summary,
}

/// Why a simulation stopped.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The epoch refused its input (a bug in the simulator if it happens).
    #[error("the Yuma epoch refused the simulated state: {0}")]
    Yuma(#[from] YumaError),
}

fn build_participants(cfg: &SimConfig) -> Vec<Participant> {
    let epoch_hours = f64::from(cfg.tempo) * cfg.block_seconds / 3600.0;
    let mut out = vec![Participant {
        uid: 0,
        label: "owner".into(),
        role: Role::Owner,
        cost_per_epoch: 0.0,
    }];
    for g in &cfg.validators {
        for _ in 0..g.count {
            out.push(Participant {
                uid: out.len() as u16,
                label: format!("validator:{}", g.behaviour.name()),
                role: Role::Validator {
                    behaviour: g.behaviour,
                    stake: g.stake,
                    jitter_s: g.jitter_ms / 1000.0,
                },
                cost_per_epoch: 0.0,
            });
        }
    }
    for g in &cfg.miners {
        let gpu = &cfg.gpus[&g.gpu];
        let remote = &cfg.gpus[&g.remote_gpu];
        let label = g.label.clone().unwrap_or_else(|| g.strategy.name().to_string());
        let uids_per_unit = if g.strategy == Strategy::Sybil {
            g.uids_per_gpu
        } else {
            1
        };
        let (throughput, cost_per_hour) = match g.strategy {
            Strategy::Honest | Strategy::Lazy | Strategy::Flaky => (gpu.throughput, gpu.cost_per_hour),
            Strategy::Slow => (gpu.throughput * g.speed_factor, gpu.cost_per_hour),
            Strategy::Copier => (0.0, cfg.copier_cost_per_hour),
            Strategy::Sybil => (
                gpu.throughput * f64::from(g.gpus_per_box) / f64::from(g.uids_per_gpu),
                gpu.cost_per_hour / f64::from(g.uids_per_gpu),
            ),
            Strategy::Relay => (remote.throughput, remote.cost_per_hour + cfg.copier_cost_per_hour),
        };
        // A sybil uid computes on its share of the box as one device; the others on every GPU.
        let (devices, cost_per_hour) = match g.strategy {
            Strategy::Sybil => (1, cost_per_hour * f64::from(g.gpus_per_box)),
            Strategy::Copier => (g.gpus_per_box, cost_per_hour),
            _ => (g.gpus_per_box, cost_per_hour * f64::from(g.gpus_per_box)),
        };
        let model = MinerModel {
            strategy: g.strategy,
            throughput,
            devices,
            claimed: g.claimed_devices.unwrap_or(devices),
            rtt_s: g.rtt_ms / 1000.0,
            jitter_s: g.jitter_ms / 1000.0,
            skip_fraction: if g.strategy == Strategy::Lazy {
                g.skip_fraction
            } else {
                0.0
            },
            uptime: if g.strategy == Strategy::Flaky {
                g.uptime
            } else {
                1.0
            },
            hidden_latency_s: if g.strategy == Strategy::Relay {
                g.extra_latency_ms / 1000.0
            } else {
                0.0
            },
            cycle: (g.cycle_epochs, 0),
            serves: g.serves.clone(),
        };
        let uids = g.count * uids_per_unit;
        for k in 0..uids {
            // Stagger the group's miners evenly across the cycle.
            let offset = (u64::from(k) * u64::from(g.cycle_epochs) / u64::from(uids)) as u32;
            out.push(Participant {
                uid: out.len() as u16,
                label: label.clone(),
                role: Role::Miner(MinerModel {
                    cycle: (g.cycle_epochs, offset),
                    ..model.clone()
                }),
                cost_per_epoch: cost_per_hour * epoch_hours,
            });
        }
    }
    out
}

/// Simulate one challenge sent to one miner: as the validator does, one challenge of size `work` per
/// device the miner claims (up to `max_devices`), all at once, observed as one group. Its elapsed time
/// is the compute, the network round trip and the stack's fixed cost per challenge
/// ([`SimConfig::answer_overhead_ms`]); the validator subtracts only its measured RTT.
#[allow(clippy::too_many_arguments)]
fn answer(
    cfg: &SimConfig,
    rng: &mut SimRng,
    m: &MinerModel,
    uid: u16,
    up: bool,
    task: &TaskSpec,
    work: f64,
    validator_jitter_s: f64,
) -> Observation {
    let group = m.claimed.clamp(1, cfg.max_devices);
    let net = |rng: &mut SimRng| (m.rtt_s + m.jitter_s * rng.normal()).max(0.0);
    let rtt_measured = (net(rng) + validator_jitter_s * rng.normal()).max(0.0);
    let mut o = Observation {
        uid,
        task_class: task.class,
        passed: false,
        reason: Reason::Timeout,
        elapsed_seconds: cfg.timeout_seconds,
        rtt_seconds: rtt_measured,
        work_units: work * f64::from(group),
        devices: group,
    };
    if !up || !(m.serves.is_empty() || m.serves.contains(&task.class)) {
        return o;
    }
    if m.strategy == Strategy::Copier {
        o.elapsed_seconds = net(rng) + 0.005;
        o.reason = Reason::WrongSketch;
        return o;
    }
    // The group's challenges share the devices it really has: `group` challenges on
    // `min(group, devices)` of them.
    let busy = f64::from(group.min(m.devices).max(1));
    let compute = o.work_units * task.seconds_per_unit / (m.throughput * busy)
        * (cfg.compute_noise * rng.normal()).exp()
        * (1.0 - m.skip_fraction);
    // The stack's fixed cost per challenge, paid by each of the group's challenges at once.
    // Without a spread it is the same for every challenge and draws nothing, so a run with the
    // overheads off (both 0) repeats the draws of a simulator without them.
    let overhead = if cfg.answer_overhead_jitter_ms > 0.0 {
        (0..group)
            .map(|_| (cfg.answer_overhead_ms + cfg.answer_overhead_jitter_ms * rng.normal()).max(0.0))
            .fold(0.0, f64::max)
    } else {
        cfg.answer_overhead_ms
    } / 1000.0;
    let elapsed = compute + overhead + net(rng) + m.hidden_latency_s;
    if elapsed > cfg.timeout_seconds {
        return o;
    }
    o.elapsed_seconds = elapsed;
    let openings = f64::from(cfg.openings) * f64::from(group);
    if m.skip_fraction > 0.0 && !rng.chance((1.0 - m.skip_fraction).powf(openings)) {
        o.reason = Reason::WrongRow;
        return o;
    }
    o.passed = true;
    o.reason = Reason::Passed;
    o
}

/// A weight row set by validator `.1`, counting from epoch `.0` (commit-reveal).
type Commit = (u32, usize, Vec<(u16, u16)>);

/// One mechanism's chain and validator state across epochs.
struct Mechanism {
    /// The classes it scores.
    classes: Vec<TaskClass>,
    /// Its share of the emission, normalized.
    fraction: f64,
    /// Its emission per epoch, rao.
    emission_rao: u64,
    /// Each honest validator's EMA book, by validator index.
    books: BTreeMap<usize, ScoreBook>,
    /// The weight rows in force, per uid.
    weights: Vec<Vec<(u16, u16)>>,
    bonds: Vec<Vec<(u16, u16)>>,
    last_update: Vec<u64>,
    prev_consensus: Vec<u16>,
    /// Commit-reveal: weight rows in submission order, each with the epoch it counts from.
    committed: std::collections::VecDeque<Commit>,
}

impl Mechanism {
    /// The mechanisms `cfg` lists (one scoring every class when it lists none), with the emission split
    /// in whole rao (the last takes the rounding remainder, so the total is exact).
    fn all(cfg: &SimConfig, n: usize) -> Vec<Self> {
        let specs = if cfg.mechanisms.is_empty() {
            vec![MechanismSpec {
                classes: cfg.tasks.iter().map(|t| t.class).collect(),
                emission_share: 1.0,
            }]
        } else {
            cfg.mechanisms.clone()
        };
        let total: f64 = specs.iter().map(|m| m.emission_share).sum();
        let mut left = cfg.rao_emission;
        let count = specs.len();
        specs
            .into_iter()
            .enumerate()
            .map(|(i, m)| {
                let fraction = m.emission_share / total;
                let rao = if i + 1 == count {
                    left
                } else {
                    ((cfg.rao_emission as f64 * fraction).round() as u64).min(left)
                };
                left -= rao;
                Self {
                    classes: m.classes,
                    fraction,
                    emission_rao: rao,
                    books: BTreeMap::new(),
                    weights: vec![Vec::new(); n],
                    bonds: vec![Vec::new(); n],
                    last_update: vec![0; n],
                    prev_consensus: vec![0; n],
                    committed: Default::default(),
                }
            })
            .collect()
    }
}

/// Run a simulation. `progress` is advanced once per epoch when given.
pub fn run(cfg: &SimConfig, progress: Option<&indicatif::ProgressBar>) -> Result<SimResult, SimError> {
    cfg.validate()?;
    let participants = build_participants(cfg);
    let n = participants.len();
    let mut policy = cfg.policy.clone();
    policy.burn.uid = 0;
    let limits = ChainLimits {
        n: n as u16,
        min_allowed_weights: cfg.min_allowed_weights,
        max_weight_limit: cfg.max_weight_limit,
    };
    let validator_count = cfg.validators.iter().map(|v| v.count as usize).sum::<usize>();
    let mut hp = cfg.yuma.clone();
    hp.max_allowed_validators = hp.max_allowed_validators.max(validator_count as u16);

    let stake: Vec<u64> = participants
        .iter()
        .map(|p| {
            if let Role::Validator { stake, .. } = p.role {
                stake
            } else {
                0
            }
        })
        .collect();
    let validators: Vec<(usize, Behaviour, f64)> = participants
        .iter()
        .enumerate()
        .filter_map(|(i, p)| match p.role {
            Role::Validator {
                behaviour, jitter_s, ..
            } => Some((i, behaviour, jitter_s)),
            _ => None,
        })
        .collect();
    let miners: Vec<(u16, &MinerModel)> = participants
        .iter()
        .filter_map(|p| {
            if let Role::Miner(m) = &p.role {
                Some((p.uid, m))
            } else {
                None
            }
        })
        .collect();
    let share_total: f64 = cfg.tasks.iter().map(|t| t.share).sum();

    let mut rng = SimRng::new(cfg.seed);
    let mut mechs = Mechanism::all(cfg, n);
    let mut permits: Vec<bool> = participants
        .iter()
        .map(|p| !matches!(p.role, Role::Miner(_)))
        .collect();
    let mut rows = Vec::with_capacity(n * cfg.epochs as usize);
    let tempo = u64::from(cfg.tempo);

    for epoch in 0..cfg.epochs {
        let block = (u64::from(epoch) + 1) * tempo;
        let up: Vec<bool> = miners
            .iter()
            .map(|(_, m)| rng.chance(m.uptime) && m.in_service(epoch))
            .collect();
        for &(vi, behaviour, jitter_s) in &validators {
            // An honest validator tests every miner once per epoch; each mechanism scores its classes.
            let obs = (behaviour == Behaviour::Honest).then(|| {
                // Each of the epoch's challenges is one validator round: one size per class, the same
                // for every miner (the validator draws `n` per round), and a class per miner.
                let sizes: Vec<Vec<f64>> = (0..cfg.challenges_per_round)
                    .map(|_| {
                        cfg.tasks
                            .iter()
                            .map(|t| t.work_units[rng.index(t.work_units.len())])
                            .collect()
                    })
                    .collect();
                let mut obs: Vec<Vec<Observation>> = vec![Vec::with_capacity(miners.len()); sizes.len()];
                for (k, (uid, m)) in miners.iter().enumerate() {
                    for (round, obs) in sizes.iter().zip(&mut obs) {
                        let mut pick = rng.uniform() * share_total;
                        let t = cfg
                            .tasks
                            .iter()
                            .position(|t| {
                                pick -= t.share;
                                pick < 0.0
                            })
                            .unwrap_or(cfg.tasks.len() - 1);
                        let task = &cfg.tasks[t];
                        obs.push(answer(cfg, &mut rng, m, *uid, up[k], task, round[t], jitter_s));
                    }
                }
                obs
            });
            for mech in &mut mechs {
                let set = match &obs {
                    Some(rounds) => {
                        // The epoch's rounds scored together (so a failed challenge's penalty offsets
                        // the epoch's passes, as several challenges per validator round would).
                        let mine: Vec<Observation> = rounds
                            .iter()
                            .flatten()
                            .filter(|o| mech.classes.contains(&o.task_class))
                            .cloned()
                            .collect();
                        let book = mech.books.entry(vi).or_default();
                        book.fold_round(&mine, &policy);
                        weights_from_scores(&book.scores, &policy, &limits).ok()
                    }
                    None => {
                        let all: Vec<u16> = (0..n as u16).collect();
                        let c: Vec<f64> = mech.prev_consensus.iter().map(|&x| f64::from(x)).collect();
                        sdk_convert(&all, &c).ok()
                    }
                };
                if let Some(w) = set.filter(|w| !w.uids.is_empty()) {
                    let row = w
                        .uids
                        .iter()
                        .copied()
                        .zip(vec_u16_max_upscale_to_u16(&w.weights))
                        .collect();
                    mech.committed
                        .push_back((epoch + cfg.reveal_period_epochs, vi, row));
                    mech.last_update[vi] = block - 1;
                }
            }
        }
        // Per mechanism: weights whose reveal epoch has come count from now on (at once without
        // commit-reveal), then its own epoch on its share of the emission.
        let mut outs = Vec::with_capacity(mechs.len());
        for mech in &mut mechs {
            while mech.committed.front().is_some_and(|(due, _, _)| *due <= epoch) {
                if let Some((_, vi, row)) = mech.committed.pop_front() {
                    mech.weights[vi] = row;
                }
            }
            let input = EpochInput {
                current_block: block,
                tempo: cfg.tempo,
                last_mechanism_step_block: if epoch == 0 { 0 } else { block - tempo },
                owner_uid: Some(0),
                stake: stake.clone(),
                weights: mech.weights.clone(),
                bonds: std::mem::take(&mut mech.bonds),
                last_update: mech.last_update.clone(),
                block_at_registration: vec![0; n],
                validator_permit: permits.clone(),
                rao_emission: mech.emission_rao,
                hyperparameters: hp.clone(),
                commit_blocks: None,
            };
            let out = run_epoch(&input)?;
            mech.bonds = out.bonds.clone();
            mech.prev_consensus = out.consensus.clone();
            outs.push(out);
        }
        // Permits are the subnet's (by stake), the same in every mechanism's epoch.
        permits = outs[0].validator_permit.clone();

        // Per uid, across mechanisms by emission share: score as the honest validators see it, weight as
        // all validators set it, incentive, dividends and trust; emission summed.
        let mut score = vec![0.0; n];
        let mut weight = vec![0.0; n];
        let mut incentive = vec![0.0; n];
        let mut dividends = vec![0.0; n];
        let mut trust = vec![0.0; n];
        let mut emission = vec![0u64; n];
        for (mech, out) in mechs.iter().zip(&outs) {
            let f = mech.fraction;
            let (mut ms, mut mw) = (vec![0.0; n], vec![0.0; n]);
            let (mut score_stake, mut weight_stake) = (0.0, 0.0);
            for &(vi, behaviour, _) in &validators {
                let st = stake[vi] as f64;
                if let Some(book) = mech.books.get(&vi).filter(|_| behaviour == Behaviour::Honest) {
                    for (&uid, &v) in &book.scores {
                        ms[uid as usize] += st * v;
                    }
                    score_stake += st;
                }
                let total: f64 = mech.weights[vi].iter().map(|(_, w)| f64::from(*w)).sum();
                if total > 0.0 {
                    for &(uid, w) in &mech.weights[vi] {
                        mw[uid as usize] += st * f64::from(w) / total;
                    }
                    weight_stake += st;
                }
            }
            for u in 0..n {
                if score_stake > 0.0 {
                    score[u] += f * ms[u] / score_stake;
                }
                if weight_stake > 0.0 {
                    weight[u] += f * mw[u] / weight_stake;
                }
                incentive[u] += f * f64::from(out.incentive[u]) / 65535.0;
                dividends[u] += f * f64::from(out.dividends[u]) / 65535.0;
                trust[u] += f * f64::from(out.validator_trust[u]) / 65535.0;
                emission[u] += out.server_emission[u] + out.validator_emission[u];
            }
        }
        for p in &participants {
            let u = p.uid as usize;
            rows.push(UidEpoch {
                epoch,
                uid: p.uid,
                label: p.label.clone(),
                score: score[u],
                weight: weight[u],
                incentive: incentive[u],
                dividends: dividends[u],
                validator_trust: trust[u],
                emission_rao: emission[u],
                cost: p.cost_per_epoch,
            });
        }
        if let Some(pb) = progress {
            pb.inc(1);
        }
    }
    let summary = Summary::compute(&participants, &rows, cfg.epochs);
    Ok(SimResult {
        participants,
        rows,
        summary,
    })
}

#[cfg(test)]
mod tests;
