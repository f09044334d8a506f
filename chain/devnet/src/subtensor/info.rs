//! Runtime API return types with subtensor's SCALE shapes (`rpc_info/neuron_info.rs`,
//! `rpc_info/subnet_info.rs`), and the functions that fill them from storage.

use super::NetUid;
use super::pallet::*;
use parity_scale_codec::{Compact, Decode, Encode};
use polkadot_sdk::sp_runtime::AccountId32;
use scale_info::TypeInfo;

extern crate alloc;
use alloc::vec::Vec;

/// `NeuronInfoLite` in subtensor's field order.
#[derive(Encode, Decode, TypeInfo, Clone, Debug, PartialEq, Eq)]
pub struct NeuronInfoLite<AccountId> {
    /// Hotkey.
    pub hotkey: AccountId,
    /// Owning coldkey.
    pub coldkey: AccountId,
    /// Uid.
    pub uid: Compact<u16>,
    /// Subnet.
    pub netuid: Compact<NetUid>,
    /// Active in the last epoch.
    pub active: bool,
    /// Axon endpoint.
    pub axon_info: AxonInfo,
    /// Prometheus endpoint.
    pub prometheus_info: PrometheusInfo,
    /// `(coldkey, alpha)` staked on the hotkey.
    pub stake: Vec<(AccountId, Compact<u64>)>,
    /// Always 0 (no longer computed by subtensor).
    pub rank: Compact<u16>,
    /// Emission of the last epoch (rao).
    pub emission: Compact<u64>,
    /// Incentive (×65535).
    pub incentive: Compact<u16>,
    /// Consensus (×65535).
    pub consensus: Compact<u16>,
    /// Always 0 (no longer computed by subtensor).
    pub trust: Compact<u16>,
    /// Validator trust (×65535).
    pub validator_trust: Compact<u16>,
    /// Dividends (×65535).
    pub dividends: Compact<u16>,
    /// Block of the last weight update.
    pub last_update: Compact<u64>,
    /// Validator permit.
    pub validator_permit: bool,
    /// Always `u16::MAX` (no longer computed by subtensor).
    pub pruning_score: Compact<u16>,
}

/// Subtensor's `I32F32` as SCALE sees it: the raw bits.
#[derive(Encode, Decode, TypeInfo, Clone, Copy, Debug, PartialEq, Eq)]
pub struct FixedI32F32 {
    /// `value × 2^32`.
    pub bits: i64,
}

/// `SubnetHyperparamsV2` in subtensor's field order.
#[derive(Encode, Decode, TypeInfo, Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct SubnetHyperparamsV2 {
    pub rho: Compact<u16>,
    pub kappa: Compact<u16>,
    pub immunity_period: Compact<u16>,
    pub min_allowed_weights: Compact<u16>,
    pub max_weights_limit: Compact<u16>,
    pub tempo: Compact<u16>,
    pub min_difficulty: Compact<u64>,
    pub max_difficulty: Compact<u64>,
    pub weights_version: Compact<u64>,
    pub weights_rate_limit: Compact<u64>,
    pub adjustment_interval: Compact<u16>,
    pub activity_cutoff: Compact<u16>,
    pub registration_allowed: bool,
    pub target_regs_per_interval: Compact<u16>,
    pub min_burn: Compact<u64>,
    pub max_burn: Compact<u64>,
    pub bonds_moving_avg: Compact<u64>,
    pub max_regs_per_block: Compact<u16>,
    pub serving_rate_limit: Compact<u64>,
    pub max_validators: Compact<u16>,
    pub adjustment_alpha: Compact<u64>,
    pub difficulty: Compact<u64>,
    pub commit_reveal_period: Compact<u64>,
    pub commit_reveal_weights_enabled: bool,
    pub alpha_high: Compact<u16>,
    pub alpha_low: Compact<u16>,
    pub liquid_alpha_enabled: bool,
    pub alpha_sigmoid_steepness: FixedI32F32,
    pub yuma_version: Compact<u16>,
    pub subnet_is_active: bool,
    pub transfers_enabled: bool,
    pub bonds_reset_enabled: bool,
    pub user_liquidity_enabled: bool,
}

impl<T: Config> Pallet<T> {
    /// `NeuronInfoRuntimeApi::get_neuron_lite`.
    pub fn get_neuron_lite(netuid: NetUid, uid: u16) -> Option<NeuronInfoLite<AccountId32>> {
        let hotkey = Keys::<T>::get(netuid, uid)?;
        let coldkey = Owner::<T>::get(&hotkey).unwrap_or_else(|| hotkey.clone());
        let i = usize::from(uid);
        let u16_at = |v: Vec<u16>| Compact(v.get(i).copied().unwrap_or(0));
        Some(NeuronInfoLite {
            axon_info: Axons::<T>::get(netuid, &hotkey).unwrap_or_default(),
            prometheus_info: Prometheus::<T>::get(netuid, &hotkey).unwrap_or_default(),
            stake: alloc::vec![(
                coldkey.clone(),
                Compact(TotalHotkeyAlpha::<T>::get(&hotkey, netuid))
            )],
            hotkey,
            coldkey,
            uid: Compact(uid),
            netuid: Compact(netuid),
            active: Active::<T>::get(netuid).get(i).copied().unwrap_or(false),
            rank: Compact(0),
            emission: Compact(Emission::<T>::get(netuid).get(i).copied().unwrap_or(0)),
            incentive: u16_at(Incentive::<T>::get(netuid)),
            consensus: u16_at(Consensus::<T>::get(netuid)),
            trust: Compact(0),
            validator_trust: u16_at(ValidatorTrust::<T>::get(netuid)),
            dividends: u16_at(Dividends::<T>::get(netuid)),
            last_update: Compact(LastUpdate::<T>::get(netuid).get(i).copied().unwrap_or(0)),
            validator_permit: ValidatorPermit::<T>::get(netuid).get(i).copied().unwrap_or(false),
            pruning_score: Compact(u16::MAX),
        })
    }

    /// `NeuronInfoRuntimeApi::get_neurons_lite`.
    pub fn get_neurons_lite(netuid: NetUid) -> Vec<NeuronInfoLite<AccountId32>> {
        if !NetworksAdded::<T>::get(netuid) {
            return Vec::new();
        }
        (0..SubnetworkN::<T>::get(netuid))
            .filter_map(|uid| Self::get_neuron_lite(netuid, uid))
            .collect()
    }

    /// `SubnetInfoRuntimeApi::get_subnet_hyperparams_v2`.
    pub fn get_subnet_hyperparams_v2(netuid: NetUid) -> Option<SubnetHyperparamsV2> {
        if !NetworksAdded::<T>::get(netuid) {
            return None;
        }
        let (alpha_low, alpha_high) = AlphaValues::<T>::get(netuid);
        Some(SubnetHyperparamsV2 {
            rho: Compact(Rho::<T>::get(netuid)),
            kappa: Compact(Kappa::<T>::get(netuid)),
            immunity_period: Compact(ImmunityPeriod::<T>::get(netuid)),
            min_allowed_weights: Compact(MinAllowedWeights::<T>::get(netuid)),
            max_weights_limit: Compact(MaxWeightsLimit::<T>::get(netuid)),
            tempo: Compact(Tempo::<T>::get(netuid)),
            min_difficulty: Compact(0),
            max_difficulty: Compact(0),
            weights_version: Compact(WeightsVersionKey::<T>::get(netuid)),
            weights_rate_limit: Compact(WeightsSetRateLimit::<T>::get(netuid)),
            adjustment_interval: Compact(0),
            activity_cutoff: Compact(ActivityCutoff::<T>::get(netuid)),
            registration_allowed: NetworkRegistrationAllowed::<T>::get(netuid),
            target_regs_per_interval: Compact(0),
            min_burn: Compact(MinBurn::<T>::get(netuid)),
            max_burn: Compact(MaxBurn::<T>::get(netuid)),
            bonds_moving_avg: Compact(BondsMovingAverage::<T>::get(netuid)),
            max_regs_per_block: Compact(u16::MAX),
            serving_rate_limit: Compact(ServingRateLimit::<T>::get(netuid)),
            max_validators: Compact(MaxAllowedValidators::<T>::get(netuid)),
            adjustment_alpha: Compact(0),
            difficulty: Compact(0),
            commit_reveal_period: Compact(RevealPeriodEpochs::<T>::get(netuid)),
            commit_reveal_weights_enabled: CommitRevealWeightsEnabled::<T>::get(netuid),
            alpha_high: Compact(alpha_high),
            alpha_low: Compact(alpha_low),
            liquid_alpha_enabled: LiquidAlphaOn::<T>::get(netuid),
            alpha_sigmoid_steepness: FixedI32F32 {
                bits: i64::from(AlphaSigmoidSteepness::<T>::get(netuid)) << 32,
            },
            yuma_version: Compact(if Yuma3On::<T>::get(netuid) { 3 } else { 2 }),
            subnet_is_active: true,
            transfers_enabled: true,
            bonds_reset_enabled: false,
            user_liquidity_enabled: false,
        })
    }

    /// `SubnetInfoRuntimeApi::get_next_epoch_start_block`: `LastEpochBlock + tempo`, or the
    /// pending trigger when earlier.
    pub fn get_next_epoch_start_block(netuid: NetUid) -> Option<u64> {
        if !NetworksAdded::<T>::get(netuid) {
            return None;
        }
        let next = LastEpochBlock::<T>::get(netuid).saturating_add(u64::from(Tempo::<T>::get(netuid)));
        let pending = PendingEpochAt::<T>::get(netuid);
        Some(if pending > 0 { next.min(pending) } else { next })
    }
}
