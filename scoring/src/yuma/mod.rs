//! Subtensor's Yuma consensus epoch, reproduced bit for bit.
//!
//! [`run_epoch`] takes one subnet's state as the chain holds it when an epoch fires ([`EpochInput`]) and
//! returns what the chain would store ([`EpochOutput`]). It follows subtensor's `epoch_mechanism`
//! (`pallets/subtensor/src/epoch/run_epoch.rs`) step by step, in the same `substrate-fixed` types
//! (I32F32 for proportions, I64F64 for stake, I96F32 for emission amounts) and the same order of
//! saturating operations, so incentive, dividends, bonds and emission match the chain exactly. Both
//! bond models are implemented: classic Yuma (EMA of column-normalized stake-weighted weights) and
//! Yuma3 (absolute bonds, optionally with per-cell "liquid alpha").
//!
//! Feed `output.bonds` and `output.validator_permit` into the next epoch's input to chain epochs.
//!
//! ```
//! use scoring::yuma::{run_epoch, EpochInput, YumaHyperparameters};
//!
//! // Two validators (stake 3 and 1) weigh one miner (uid 2).
//! let input = EpochInput {
//!     current_block: 100,
//!     tempo: 10,
//!     last_mechanism_step_block: 90,
//!     owner_uid: None,
//!     stake: vec![3, 1, 0],
//!     weights: vec![vec![(2, 65535)], vec![(2, 65535)], vec![]],
//!     bonds: vec![vec![], vec![], vec![]],
//!     last_update: vec![99, 99, 0],
//!     block_at_registration: vec![0, 0, 0],
//!     validator_permit: vec![true, true, false],
//!     rao_emission: 1_000_000_000,
//!     hyperparameters: YumaHyperparameters::default(),
//!     commit_blocks: None,
//! };
//! let out = run_epoch(&input).unwrap();
//! assert_eq!(out.incentive[2], 65535);
//! // Miners and validators split the emission evenly when every weight agrees.
//! assert_eq!(out.server_emission[2], 500_000_000);
//! assert_eq!(out.validator_emission[..2], [375_000_000, 124_999_999]);
//! ```

mod math;

use serde::{Deserialize, Serialize};
use substrate_fixed::types::{I32F32, I64F64, I96F32};

use math::*;
pub use math::{check_vec_max_limited, vec_max_upscale_to_u16, vec_u16_max_upscale_to_u16};

/// Subnet hyperparameters the epoch reads, with subtensor's genesis defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct YumaHyperparameters {
    /// Consensus majority as a proportion of 65535 (`Kappa`, default 32767 ≈ 0.5).
    pub kappa: u16,
    /// How far bonds follow clipped rather than raw weights, of 65535 (`BondsPenalty`, default 65535).
    pub bonds_penalty: u16,
    /// Bond EMA retention in millionths (`BondsMovingAverage`, default 900000: α = 0.1).
    pub bonds_moving_average: u64,
    /// Blocks after the last weight update (or commit) that a validator stays active
    /// (`get_activity_cutoff_blocks`, default 5000).
    pub activity_cutoff: u64,
    /// How many of the highest-stake uids get a validator permit (`MaxAllowedValidators`, default 128).
    pub max_allowed_validators: u16,
    /// Stake below which a uid's stake counts as zero, the owner excepted (`StakeThreshold`, default 0).
    pub stake_threshold: u64,
    /// Use Yuma3 bonds (`Yuma3On`, default false).
    pub yuma3: bool,
    /// Use per-cell liquid alpha for Yuma3 bonds (`LiquidAlphaOn`, default false).
    pub liquid_alpha: bool,
    /// Lowest liquid alpha, of 65535 (`AlphaValues.0`, default 45875 ≈ 0.7).
    pub alpha_low: u16,
    /// Highest liquid alpha, of 65535 (`AlphaValues.1`, default 58982 ≈ 0.9).
    pub alpha_high: u16,
    /// Steepness of the liquid-alpha sigmoid (`AlphaSigmoidSteepness`, default 1000).
    pub alpha_sigmoid_steepness: i16,
}

impl Default for YumaHyperparameters {
    fn default() -> Self {
        Self {
            kappa: 32_767,
            bonds_penalty: u16::MAX,
            bonds_moving_average: 900_000,
            activity_cutoff: 5000,
            max_allowed_validators: 128,
            stake_threshold: 0,
            yuma3: false,
            liquid_alpha: false,
            alpha_low: 45_875,
            alpha_high: 58_982,
            alpha_sigmoid_steepness: 1000,
        }
    }
}

/// One subnet's state when its epoch runs, as read from chain storage. Every per-uid vector has one
/// entry per uid (`n = stake.len()`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EpochInput {
    /// The block the epoch runs in.
    pub current_block: u64,
    /// The subnet's tempo.
    pub tempo: u16,
    /// `LastMechansimStepBlock`: the block of the previous epoch, 0 when none.
    pub last_mechanism_step_block: u64,
    /// The uid of the subnet owner's hotkey, when registered: it always holds a permit, keeps its
    /// self-weight and is exempt from the stake threshold.
    pub owner_uid: Option<u16>,
    /// Total stake weight per uid (alpha plus root TAO × `TaoWeight`), in rao.
    pub stake: Vec<u64>,
    /// Stored weights per uid: `(dest uid, u16)` pairs, row-max-upscaled as `set_weights` stores them.
    pub weights: Vec<Vec<(u16, u16)>>,
    /// Stored bonds per uid, as the previous epoch output them.
    pub bonds: Vec<Vec<(u16, u16)>>,
    /// `LastUpdate`: block of each uid's last weight set (or commit).
    pub last_update: Vec<u64>,
    /// `BlockAtRegistration` per uid.
    pub block_at_registration: Vec<u64>,
    /// `ValidatorPermit` per uid, as the previous epoch stored it.
    pub validator_permit: Vec<bool>,
    /// Emission to distribute this epoch, in rao.
    pub rao_emission: u64,
    /// Hyperparameters.
    #[serde(default)]
    pub hyperparameters: YumaHyperparameters,
    /// Commit-reveal only: per uid, the block of its earliest unexpired weight commit (`u64::MAX` or
    /// absent for none). When present, weight (i, j) is dropped if uid i's commit is older than uid j's
    /// registration, as the chain does when `CommitRevealWeightsEnabled`. `null` when commit-reveal is off.
    #[serde(default)]
    pub commit_blocks: Option<Vec<u64>>,
}

/// What the epoch stores, per uid. Proportions are u16 (65535 = 1), amounts are rao.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochOutput {
    /// Miner incentive (`Incentive`).
    pub incentive: Vec<u16>,
    /// Validator dividends (`Dividends`).
    pub dividends: Vec<u16>,
    /// Stake-weighted median weight each uid received (`Consensus`).
    pub consensus: Vec<u16>,
    /// Sum of a validator's consensus-clipped weights (`ValidatorTrust`).
    pub validator_trust: Vec<u16>,
    /// Rao paid to each uid as a miner.
    pub server_emission: Vec<u64>,
    /// Rao paid to each uid as a validator.
    pub validator_emission: Vec<u64>,
    /// Combined emission as the chain records it in `Emission`.
    pub emission: Vec<u64>,
    /// Normalized stake weight (`StakeWeight`).
    pub stake_weight: Vec<u16>,
    /// New bonds per uid, as `Bonds` stores them (empty rows for uids without a permit).
    pub bonds: Vec<Vec<(u16, u16)>>,
    /// New validator permits (`ValidatorPermit`).
    pub validator_permit: Vec<bool>,
    /// Whether each uid updated within the activity cutoff (`Active`).
    pub active: Vec<bool>,
}

/// Why an epoch input was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum YumaError {
    /// A per-uid vector does not have one entry per uid.
    #[error(
        "epoch input field `{field}` has {len} entries but `stake` has {n}; give every per-uid field one entry per uid"
    )]
    LengthMismatch {
        /// The offending field.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The number of uids.
        n: usize,
    },
    /// More uids than any subnet holds.
    #[error(
        "epoch input has {0} uids but at most {MAX_UIDS} are supported (the chain's largest subnet size)"
    )]
    TooManyUids(usize),
}

fn check_len(field: &'static str, len: usize, n: usize) -> Result<(), YumaError> {
    if len == n {
        Ok(())
    } else {
        Err(YumaError::LengthMismatch { field, len, n })
    }
}

/// The most uids an epoch accepts: subtensor's `GLOBAL_MAX_SUBNET_COUNT`, the largest
/// `MaxAllowedUids` its benchmarks use. It also bounds the epoch's memory (the weighted median
/// builds a uids × validators table).
pub const MAX_UIDS: usize = 4096;

/// Run one epoch. Fails only when the per-uid vectors disagree in length or there are more than
/// [`MAX_UIDS`] uids.
pub fn run_epoch(input: &EpochInput) -> Result<EpochOutput, YumaError> {
    let n = input.stake.len();
    if n > MAX_UIDS {
        return Err(YumaError::TooManyUids(n));
    }
    check_len("weights", input.weights.len(), n)?;
    check_len("bonds", input.bonds.len(), n)?;
    check_len("last_update", input.last_update.len(), n)?;
    check_len("block_at_registration", input.block_at_registration.len(), n)?;
    check_len("validator_permit", input.validator_permit.len(), n)?;
    if let Some(cb) = &input.commit_blocks {
        check_len("commit_blocks", cb.len(), n)?;
    }
    let hp = &input.hyperparameters;
    let current_block = input.current_block;
    let tempo = u64::from(input.tempo);
    let owner_uid = input.owner_uid.filter(|&u| (u as usize) < n);

    // == Active & updated ==
    let inactive: Vec<bool> = input
        .last_update
        .iter()
        .map(|u| u.saturating_add(hp.activity_cutoff) < current_block)
        .collect();
    let active: Vec<bool> = inactive.iter().map(|b| !b).collect();

    // == Stake ==
    let total_stake: Vec<I64F64> = input
        .stake
        .iter()
        .map(|&s| I64F64::saturating_from_num(s))
        .collect();
    let mut filtered: Vec<I64F64> = total_stake
        .iter()
        .enumerate()
        .map(|(uid, &s)| {
            if owner_uid != Some(uid as u16) && s.saturating_to_num::<u64>() < hp.stake_threshold {
                I64F64::from_num(0)
            } else {
                s
            }
        })
        .collect();
    inplace_normalize_64(&mut filtered);
    let stake: Vec<I32F32> = filtered.into_iter().map(I32F32::saturating_from_num).collect();

    // == Validator permits ==
    let mut validator_permits = input.validator_permit.clone();
    if let Some(o) = owner_uid {
        validator_permits[o as usize] = true;
    }
    let validator_forbids: Vec<bool> = validator_permits.iter().map(|b| !b).collect();
    let mut new_validator_permits = is_topk_nonzero(&stake, hp.max_allowed_validators as usize);
    if let Some(o) = owner_uid {
        new_validator_permits[o as usize] = true;
    }

    // == Active stake ==
    let mut active_stake = stake.clone();
    inplace_mask_vector(&inactive, &mut active_stake);
    inplace_mask_vector(&validator_forbids, &mut active_stake);
    inplace_normalize(&mut active_stake);

    // == Weights ==
    let mut weights: Vec<Row> = input
        .weights
        .iter()
        .map(|row| {
            row.iter()
                .filter(|(j, _)| (*j as usize) < n)
                .map(|&(j, w)| (j, I32F32::saturating_from_num(w)))
                .collect()
        })
        .collect();
    weights = mask_rows_sparse(&validator_forbids, &weights);
    weights = match owner_uid {
        Some(o) => mask_diag_sparse_except_index(&weights, o),
        None => mask_diag_sparse(&weights),
    };
    weights = vec_mask_sparse_matrix(
        &weights,
        &input.last_update,
        &input.block_at_registration,
        |u, r| u <= r,
    );
    if let Some(commit_blocks) = &input.commit_blocks {
        weights = vec_mask_sparse_matrix(&weights, commit_blocks, &input.block_at_registration, |c, r| {
            c < r
        });
    }
    inplace_row_normalize_sparse(&mut weights);

    // == Consensus, validator trust ==
    let kappa = safe_div(
        I32F32::saturating_from_num(hp.kappa),
        I32F32::saturating_from_num(u16::MAX),
    );
    let consensus = weighted_median_col_sparse(&active_stake, &weights, n, kappa);
    let clipped = col_clip_sparse(&weights, &consensus);
    let validator_trust = row_sum_sparse(&clipped);

    // == Incentive ==
    let mut ranks = matmul_sparse(&clipped, &active_stake, n);
    inplace_normalize(&mut ranks);
    let incentive = ranks;

    // == Bonds and dividends ==
    let bonds_penalty = safe_div(
        I32F32::saturating_from_num(hp.bonds_penalty),
        I32F32::saturating_from_num(u16::MAX),
    );
    let weights_for_bonds = interpolate_sparse(&weights, &clipped, n, bonds_penalty);
    let last_tempo = if input.last_mechanism_step_block == 0 {
        current_block.saturating_sub(tempo)
    } else {
        input.last_mechanism_step_block.saturating_add(1)
    };
    let mut dividends: Vec<I32F32>;
    let mut ema_bonds: Vec<Row>;
    if hp.yuma3 {
        let mut bonds: Vec<Row> = input
            .bonds
            .iter()
            .map(|row| {
                row.iter()
                    .map(|&(j, b)| (j, u16_proportion_to_fixed(b)))
                    .collect()
            })
            .collect();
        bonds =
            scalar_vec_mask_sparse_matrix(&bonds, last_tempo, &input.block_at_registration, |t, r| t <= r);
        ema_bonds = compute_bonds_yuma3(hp, &weights_for_bonds, &bonds, &consensus);
        let mut ema_norm = ema_bonds.clone();
        inplace_col_normalize_sparse(&mut ema_norm, n);
        let total_bonds_per_validator = row_sum_sparse(&mat_vec_mul_sparse(&ema_norm, &incentive));
        dividends = vec_mul(&total_bonds_per_validator, &active_stake);
        inplace_normalize(&mut dividends);
    } else {
        let mut bonds: Vec<Row> = input
            .bonds
            .iter()
            .map(|row| {
                row.iter()
                    .map(|&(j, b)| (j, I32F32::saturating_from_num(b)))
                    .collect()
            })
            .collect();
        bonds =
            scalar_vec_mask_sparse_matrix(&bonds, last_tempo, &input.block_at_registration, |t, r| t <= r);
        inplace_col_normalize_sparse(&mut bonds, n);
        let mut bonds_delta = row_hadamard_sparse(&weights_for_bonds, &active_stake);
        inplace_col_normalize_sparse(&mut bonds_delta, n);
        let bma = safe_div64(
            I64F64::saturating_from_num(hp.bonds_moving_average),
            I64F64::saturating_from_num(1_000_000),
        );
        let alpha = ONE.saturating_sub(I32F32::saturating_from_num(bma));
        ema_bonds = mat_ema_sparse(&bonds_delta, &bonds, alpha);
        inplace_col_normalize_sparse(&mut ema_bonds, n);
        dividends = matmul_transpose_sparse(&ema_bonds, &incentive);
        inplace_normalize(&mut dividends);
        inplace_col_max_upscale_sparse(&mut ema_bonds, n);
    }

    // == Emission ==
    let combined: Vec<I32F32> = incentive
        .iter()
        .zip(&dividends)
        .map(|(i, d)| i.saturating_add(*d))
        .collect();
    let emission_sum = sum(&combined);
    let mut norm_server = incentive.clone();
    let mut norm_validator = dividends.clone();
    let mut norm_combined = combined;
    inplace_normalize_using_sum(&mut norm_server, emission_sum);
    inplace_normalize_using_sum(&mut norm_validator, emission_sum);
    inplace_normalize(&mut norm_combined);
    if emission_sum == ZERO {
        if sum(&active_stake) == ZERO {
            norm_validator.clone_from(&stake);
            norm_combined.clone_from(&stake);
        } else {
            norm_validator.clone_from(&active_stake);
            norm_combined.clone_from(&active_stake);
        }
    }
    let rao = I96F32::saturating_from_num(input.rao_emission);
    let to_rao = |v: &[I32F32]| -> Vec<u64> {
        v.iter()
            .map(|x| {
                I96F32::saturating_from_num(*x)
                    .saturating_mul(rao)
                    .saturating_to_num::<u64>()
            })
            .collect()
    };

    // == Outputs ==
    let to_u16 = |v: &[I32F32]| -> Vec<u16> { v.iter().map(|x| fixed_proportion_to_u16(*x)).collect() };
    let bonds_out: Vec<Vec<(u16, u16)>> = ema_bonds
        .iter()
        .zip(&new_validator_permits)
        .map(|(row, &permit)| {
            if permit {
                row.iter()
                    .map(|&(j, v)| (j, fixed_proportion_to_u16(v)))
                    .collect()
            } else {
                Vec::new()
            }
        })
        .collect();
    Ok(EpochOutput {
        incentive: to_u16(&incentive),
        dividends: to_u16(&dividends),
        consensus: to_u16(&consensus),
        validator_trust: to_u16(&validator_trust),
        server_emission: to_rao(&norm_server),
        validator_emission: to_rao(&norm_validator),
        emission: to_rao(&norm_combined),
        stake_weight: to_u16(&stake),
        bonds: bonds_out,
        validator_permit: new_validator_permits,
        active,
    })
}

/// Yuma3 bond EMA (`compute_bonds_sparse`): liquid alpha per cell when enabled and some consensus is
/// non-zero, else the fixed `1 − BondsMovingAverage/1e6`.
fn compute_bonds_yuma3(
    hp: &YumaHyperparameters,
    weights: &[Row],
    bonds: &[Row],
    consensus: &[I32F32],
) -> Vec<Row> {
    if hp.liquid_alpha && !consensus.is_empty() && consensus.iter().any(|&c| c != ZERO) {
        let steepness = I32F32::saturating_from_num(hp.alpha_sigmoid_steepness);
        let low = u16_proportion_to_fixed(hp.alpha_low);
        let high = u16_proportion_to_fixed(hp.alpha_high);
        if rows_sorted(weights) && rows_sorted(bonds) {
            // Same cells, same arithmetic, but only where a new weight exists: the chain computes an
            // n × n alpha matrix and then reads it only at those cells.
            liquid_alpha_ema_sorted(weights, bonds, consensus, low, high, steepness)
        } else {
            let alphas = liquid_alpha_values_sparse(weights, bonds, consensus, low, high, steepness);
            mat_ema_alpha_sparse(weights, bonds, &alphas)
        }
    } else {
        let bma = I64F64::saturating_from_num(hp.bonds_moving_average)
            .saturating_div(I64F64::saturating_from_num(1_000_000));
        let alpha = ONE.saturating_sub(I32F32::saturating_from_num(bma));
        mat_ema_sparse(weights, bonds, alpha)
    }
}

#[cfg(test)]
mod golden;
