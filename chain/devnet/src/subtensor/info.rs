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

/// `SubnetIdentityV3` (the devnet has no subnet identities: always `None` in [`Metagraph`]).
#[derive(Encode, Decode, TypeInfo, Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct SubnetIdentityV3 {
    pub subnet_name: Vec<u8>,
    pub github_repo: Vec<u8>,
    pub subnet_contact: Vec<u8>,
    pub subnet_url: Vec<u8>,
    pub discord: Vec<u8>,
    pub description: Vec<u8>,
    pub logo_url: Vec<u8>,
    pub additional: Vec<u8>,
}

/// `ChainIdentityV2` (the devnet has no coldkey identities: always `None` in [`Metagraph`]).
#[derive(Encode, Decode, TypeInfo, Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct ChainIdentityV2 {
    pub name: Vec<u8>,
    pub url: Vec<u8>,
    pub github_repo: Vec<u8>,
    pub image: Vec<u8>,
    pub discord: Vec<u8>,
    pub description: Vec<u8>,
    pub additional: Vec<u8>,
}

/// Subtensor's `I96F32` (`substrate_fixed::FixedI128`) as SCALE sees it: the raw bits.
#[derive(Encode, Decode, TypeInfo, Clone, Copy, Debug, PartialEq, Eq)]
pub struct FixedI128 {
    /// `value × 2^32`.
    pub bits: i128,
}

/// `Metagraph` (`rpc_info/metagraph.rs`) in subtensor's field order: the subnet's parameters and
/// every per-uid column, as `SubnetInfoRuntimeApi::get_metagraph` returns them.
#[derive(Encode, Decode, TypeInfo, Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct Metagraph<AccountId> {
    pub netuid: Compact<NetUid>,
    pub name: Vec<Compact<u8>>,
    pub symbol: Vec<Compact<u8>>,
    pub identity: Option<SubnetIdentityV3>,
    pub network_registered_at: Compact<u64>,
    pub owner_hotkey: AccountId,
    pub owner_coldkey: AccountId,
    pub block: Compact<u64>,
    pub tempo: Compact<u16>,
    pub last_step: Compact<u64>,
    pub blocks_since_last_step: Compact<u64>,
    pub subnet_emission: Compact<u64>,
    pub alpha_in: Compact<u64>,
    pub alpha_out: Compact<u64>,
    pub tao_in: Compact<u64>,
    pub alpha_out_emission: Compact<u64>,
    pub alpha_in_emission: Compact<u64>,
    pub tao_in_emission: Compact<u64>,
    pub pending_alpha_emission: Compact<u64>,
    pub pending_root_emission: Compact<u64>,
    pub subnet_volume: Compact<u128>,
    pub moving_price: FixedI128,
    pub rho: Compact<u16>,
    pub kappa: Compact<u16>,
    pub min_allowed_weights: Compact<u16>,
    pub max_weights_limit: Compact<u16>,
    pub weights_version: Compact<u64>,
    pub weights_rate_limit: Compact<u64>,
    pub activity_cutoff: Compact<u16>,
    pub max_validators: Compact<u16>,
    pub num_uids: Compact<u16>,
    pub max_uids: Compact<u16>,
    pub burn: Compact<u64>,
    pub difficulty: Compact<u64>,
    pub registration_allowed: bool,
    pub pow_registration_allowed: bool,
    pub immunity_period: Compact<u16>,
    pub min_difficulty: Compact<u64>,
    pub max_difficulty: Compact<u64>,
    pub min_burn: Compact<u64>,
    pub max_burn: Compact<u64>,
    pub adjustment_alpha: Compact<u64>,
    pub adjustment_interval: Compact<u16>,
    pub target_regs_per_interval: Compact<u16>,
    pub max_regs_per_block: Compact<u16>,
    pub serving_rate_limit: Compact<u64>,
    pub commit_reveal_weights_enabled: bool,
    pub commit_reveal_period: Compact<u64>,
    pub liquid_alpha_enabled: bool,
    pub alpha_high: Compact<u16>,
    pub alpha_low: Compact<u16>,
    pub bonds_moving_avg: Compact<u64>,
    pub hotkeys: Vec<AccountId>,
    pub coldkeys: Vec<AccountId>,
    pub identities: Vec<Option<ChainIdentityV2>>,
    pub axons: Vec<AxonInfo>,
    pub active: Vec<bool>,
    pub validator_permit: Vec<bool>,
    pub pruning_score: Vec<Compact<u16>>,
    pub last_update: Vec<Compact<u64>>,
    pub emission: Vec<Compact<u64>>,
    pub dividends: Vec<Compact<u16>>,
    pub incentives: Vec<Compact<u16>>,
    pub consensus: Vec<Compact<u16>>,
    pub trust: Vec<Compact<u16>>,
    pub rank: Vec<Compact<u16>>,
    pub block_at_registration: Vec<Compact<u64>>,
    pub alpha_stake: Vec<Compact<u64>>,
    pub tao_stake: Vec<Compact<u64>>,
    pub total_stake: Vec<Compact<u64>>,
    pub tao_dividends_per_hotkey: Vec<(AccountId, Compact<u64>)>,
    pub alpha_dividends_per_hotkey: Vec<(AccountId, Compact<u64>)>,
}

/// `StakeInfo` (`rpc_info/stake_info.rs`) in subtensor's field order.
#[derive(Encode, Decode, TypeInfo, Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct StakeInfo<AccountId> {
    pub hotkey: AccountId,
    pub coldkey: AccountId,
    pub netuid: Compact<NetUid>,
    pub stake: Compact<u64>,
    pub locked: Compact<u64>,
    pub emission: Compact<u64>,
    pub tao_emission: Compact<u64>,
    pub drain: Compact<u64>,
    pub is_registered: bool,
}

/// The devnet's alpha price: 1 TAO per alpha, in rao (there is no AMM; see [`super`]).
pub const ALPHA_PRICE_RAO: u64 = 1_000_000_000;

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

    /// `SubnetInfoRuntimeApi::get_metagraph`. Per-uid columns come from the same storage as
    /// [`Self::get_neurons_lite`]; what the devnet does not model (identities, AMM reserves and
    /// emissions split, dividends per hotkey) is empty or zero, and prices are
    /// [`ALPHA_PRICE_RAO`].
    pub fn get_metagraph(netuid: NetUid) -> Option<Metagraph<AccountId32>> {
        if !NetworksAdded::<T>::get(netuid) {
            return None;
        }
        let n = SubnetworkN::<T>::get(netuid);
        let neurons: Vec<NeuronInfoLite<AccountId32>> = (0..n)
            .filter_map(|uid| Self::get_neuron_lite(netuid, uid))
            .collect();
        let owner_coldkey = SubnetOwner::<T>::get(netuid)?;
        let owner_hotkey = SubnetOwnerHotkey::<T>::get(netuid).unwrap_or_else(|| owner_coldkey.clone());
        let (alpha_low, alpha_high) = AlphaValues::<T>::get(netuid);
        let tao_in = SubnetTAO::<T>::get(netuid);
        let stakes: Vec<Compact<u64>> = neurons
            .iter()
            .map(|n| Compact(TotalHotkeyAlpha::<T>::get(&n.hotkey, netuid)))
            .collect();
        let compact = |s: &[u8]| s.iter().map(|b| Compact(*b)).collect::<Vec<_>>();
        let last_epoch = LastEpochBlock::<T>::get(netuid);
        let now = Self::current_block();
        Some(Metagraph {
            netuid: Compact(netuid),
            name: compact(&TokenSymbol::<T>::get(netuid)),
            symbol: compact(&TokenSymbol::<T>::get(netuid)),
            identity: None,
            network_registered_at: Compact(0),
            owner_hotkey,
            owner_coldkey,
            block: Compact(now),
            tempo: Compact(Tempo::<T>::get(netuid)),
            last_step: Compact(last_epoch),
            blocks_since_last_step: Compact(now.saturating_sub(last_epoch)),
            subnet_emission: Compact(0),
            alpha_in: Compact(tao_in),
            alpha_out: Compact(tao_in),
            tao_in: Compact(tao_in),
            alpha_out_emission: Compact(0),
            alpha_in_emission: Compact(0),
            tao_in_emission: Compact(0),
            pending_alpha_emission: Compact(0),
            pending_root_emission: Compact(0),
            subnet_volume: Compact(0),
            moving_price: FixedI128 { bits: 1 << 32 },
            rho: Compact(Rho::<T>::get(netuid)),
            kappa: Compact(Kappa::<T>::get(netuid)),
            min_allowed_weights: Compact(MinAllowedWeights::<T>::get(netuid)),
            max_weights_limit: Compact(MaxWeightsLimit::<T>::get(netuid)),
            weights_version: Compact(WeightsVersionKey::<T>::get(netuid)),
            weights_rate_limit: Compact(WeightsSetRateLimit::<T>::get(netuid)),
            activity_cutoff: Compact(ActivityCutoff::<T>::get(netuid)),
            max_validators: Compact(MaxAllowedValidators::<T>::get(netuid)),
            num_uids: Compact(n),
            max_uids: Compact(MaxAllowedUids::<T>::get(netuid)),
            burn: Compact(Burn::<T>::get(netuid)),
            difficulty: Compact(0),
            registration_allowed: NetworkRegistrationAllowed::<T>::get(netuid),
            pow_registration_allowed: false,
            immunity_period: Compact(ImmunityPeriod::<T>::get(netuid)),
            min_difficulty: Compact(0),
            max_difficulty: Compact(0),
            min_burn: Compact(MinBurn::<T>::get(netuid)),
            max_burn: Compact(MaxBurn::<T>::get(netuid)),
            adjustment_alpha: Compact(0),
            adjustment_interval: Compact(0),
            target_regs_per_interval: Compact(0),
            max_regs_per_block: Compact(u16::MAX),
            serving_rate_limit: Compact(ServingRateLimit::<T>::get(netuid)),
            commit_reveal_weights_enabled: CommitRevealWeightsEnabled::<T>::get(netuid),
            commit_reveal_period: Compact(RevealPeriodEpochs::<T>::get(netuid)),
            liquid_alpha_enabled: LiquidAlphaOn::<T>::get(netuid),
            alpha_high: Compact(alpha_high),
            alpha_low: Compact(alpha_low),
            bonds_moving_avg: Compact(BondsMovingAverage::<T>::get(netuid)),
            identities: neurons.iter().map(|_| None).collect(),
            axons: neurons.iter().map(|n| n.axon_info.clone()).collect(),
            active: neurons.iter().map(|n| n.active).collect(),
            validator_permit: neurons.iter().map(|n| n.validator_permit).collect(),
            pruning_score: neurons.iter().map(|n| n.pruning_score).collect(),
            last_update: neurons.iter().map(|n| n.last_update).collect(),
            emission: neurons.iter().map(|n| n.emission).collect(),
            dividends: neurons.iter().map(|n| n.dividends).collect(),
            incentives: neurons.iter().map(|n| n.incentive).collect(),
            consensus: neurons.iter().map(|n| n.consensus).collect(),
            trust: neurons.iter().map(|n| n.trust).collect(),
            rank: neurons.iter().map(|n| n.rank).collect(),
            block_at_registration: neurons
                .iter()
                .map(|n| Compact(BlockAtRegistration::<T>::get(netuid, n.uid.0)))
                .collect(),
            alpha_stake: stakes.clone(),
            tao_stake: neurons.iter().map(|_| Compact(0)).collect(),
            total_stake: stakes,
            tao_dividends_per_hotkey: Vec::new(),
            alpha_dividends_per_hotkey: Vec::new(),
            hotkeys: neurons.iter().map(|n| n.hotkey.clone()).collect(),
            coldkeys: neurons.iter().map(|n| n.coldkey.clone()).collect(),
        })
    }

    /// `StakeInfoRuntimeApi::get_stake_info_for_hotkey_coldkey_netuid`: `None` when the coldkey
    /// holds no stake on the hotkey there (as subtensor).
    pub fn get_stake_info_for_hotkey_coldkey_netuid(
        hotkey: AccountId32,
        coldkey: AccountId32,
        netuid: NetUid,
    ) -> Option<StakeInfo<AccountId32>> {
        let shares = Alpha::<T>::get((&hotkey, &coldkey, netuid)).bits;
        if shares == 0 {
            return None;
        }
        let stake = u64::try_from(shares >> 64).unwrap_or(u64::MAX);
        Some(StakeInfo {
            is_registered: Uids::<T>::contains_key(netuid, &hotkey),
            hotkey,
            coldkey,
            netuid: Compact(netuid),
            stake: Compact(stake),
            locked: Compact(0),
            emission: Compact(0),
            tao_emission: Compact(0),
            drain: Compact(0),
        })
    }

    /// `SwapRuntimeApi::current_alpha_price`: [`ALPHA_PRICE_RAO`] on every subnet.
    pub fn current_alpha_price(_netuid: NetUid) -> u64 {
        ALPHA_PRICE_RAO
    }
}
