//! The `SubtensorModule` pallet: the part of subtensor a subnet uses.
//!
//! Call names, call indices, argument names and types, storage names and hashers, event and error
//! names follow opentensor/subtensor (`pallets/subtensor`), so that a client generated from finney's
//! metadata talks to the devnet unchanged. What is simplified, and why:
//! - no AMM: staking converts TAO to alpha one to one (`SwapRuntimeApi::current_alpha_price` is
//!   always 1 TAO, so `add_stake_limit` fills whole or fails `SlippageTooHigh`; a coldkey's `Alpha`
//!   shares equal its alpha), and the stake weight of a hotkey is its `TotalHotkeyAlpha` on the
//!   subnet (no root stake, no child/parent hotkeys, no collateral: `CollateralLockShare` is 0);
//! - the registration burn is constant (`Burn`), with no per-interval adjustment;
//! - mechanisms ([`mechanism`]) as subtensor keeps them: `MechanismCountCurrent` and
//!   `MechanismEmissionSplit` (set through `AdminUtils`), per-mechanism weights, commits, reveals,
//!   `Incentive`, `LastUpdate` and `Bonds` under the index `netuid + mecid * 4096`, and one Yuma run
//!   per mechanism on its share of the emission; the owner rate limits and the admin freeze window of
//!   the `AdminUtils` setters are not modelled (`AdminFreezeWindow` only sets how far ahead an owner's
//!   `trigger_epoch` fires);
//! - `SubnetEpochConsensus` (newer runtimes) is always `Yuma`: there is no setter and no `Null` mode;
//! - emission per epoch is a fixed `rao_emission` per tempo block, split by Yuma as subtensor's
//!   `epoch_mechanism` does, and paid to `Emission` (no owner cut, no swap);
//! - CR-v2 (`commit_weights`/`reveal_weights`) and CR-v4 (`commit_timelocked_weights`) are complete:
//!   timelocked commits are decrypted with `Drand::Pulses[reveal_round]` ([`chain::timelock`]) in the
//!   blocks of their reveal epoch and applied through the `set_weights` checks. Pulses are written
//!   by root (`Drand::dev_write_pulse`); the devnet does not verify them against a beacon key.
//!
//! The epoch schedule is subtensor's **stateful** rule (spec 425): an epoch runs in the block where
//! `block - LastEpochBlock >= Tempo` (or `PendingEpochAt` is reached); then `LastEpochBlock = block`
//! and `SubnetEpochIndex += 1`. The owner moves it as on subtensor: `trigger_epoch` (call 141) sets
//! `PendingEpochAt` `AdminFreezeWindow` blocks ahead, and a new tempo (`AdminUtils::sudo_set_tempo`)
//! restarts the cycle at its block.

mod checks;
mod epoch;
pub mod info;
pub mod mechanism;

pub use checks::{ValidationError, check_weights_for_pool};
pub use pallet::*;

use polkadot_sdk::sp_core::H256;

/// Subnet identifier. Subtensor's `NetUid(u16)` has the type info of `u16`.
pub type NetUid = u16;
/// Mechanism identifier (`MechId(u8)`).
pub type MechId = u8;
/// Balances in rao (`TaoBalance`/`AlphaBalance` are `u64` in metadata).
pub type Balance = u64;

/// `MAX_CRV3_COMMIT_SIZE_BYTES` in subtensor.
pub const MAX_CRV3_COMMIT_SIZE_BYTES: u32 = 5000;
/// Most unrevealed CR-v2 commits per hotkey (`TooManyUnrevealedCommits`).
pub const MAX_UNREVEALED_COMMITS: usize = 10;
/// Bounds of `RevealPeriodEpochs`.
pub const MIN_COMMIT_REVEAL_PERIODS: u64 = 1;
/// Upper bound of `RevealPeriodEpochs`.
pub const MAX_COMMIT_REVEAL_PERIODS: u64 = 100;
/// An epoch is forced when this many blocks passed since the last one (`MAX_TEMPO`).
pub const MAX_TEMPO: u64 = 50_400;

/// One CR-v2 commit: `(hash, commit_epoch, commit_block, reveal_block_placeholder)`.
pub type WeightCommit = (H256, u64, u64, u64);

#[polkadot_sdk::frame_support::pallet]
#[allow(missing_debug_implementations, clippy::too_many_arguments)]
pub mod pallet {
    use super::{Balance, MAX_CRV3_COMMIT_SIZE_BYTES, MechId, NetUid, WeightCommit};
    use alloc::collections::VecDeque;
    use polkadot_sdk::frame_support::{
        self,
        pallet_prelude::*,
        traits::{Currency, ExistenceRequirement, WithdrawReasons},
    };
    use polkadot_sdk::frame_system::{self, pallet_prelude::*};
    use polkadot_sdk::sp_core::H256;
    use polkadot_sdk::sp_runtime::AccountId32;

    extern crate alloc;

    /// Axon endpoint of a neuron (`AxonInfo` in subtensor).
    #[derive(
        Encode, Decode, DecodeWithMemTracking, Default, TypeInfo, Clone, PartialEq, Eq, Debug, MaxEncodedLen,
    )]
    pub struct AxonInfo {
        /// Block of the last `serve_axon`.
        pub block: u64,
        /// Axon version.
        pub version: u32,
        /// IP as a big-endian integer.
        pub ip: u128,
        /// Port.
        pub port: u16,
        /// 4 or 6.
        pub ip_type: u8,
        /// Protocol (the SDK sends 4).
        pub protocol: u8,
        /// Unused.
        pub placeholder1: u8,
        /// Unused.
        pub placeholder2: u8,
    }

    /// Subtensor's `U64F64` (`substrate_fixed::FixedU128`) as SCALE sees it: the raw bits.
    #[derive(
        Encode,
        Decode,
        DecodeWithMemTracking,
        Default,
        TypeInfo,
        Clone,
        Copy,
        PartialEq,
        Eq,
        Debug,
        MaxEncodedLen,
    )]
    pub struct U64F64 {
        /// `value × 2^64`.
        pub bits: u128,
    }

    /// Prometheus endpoint of a neuron (`PrometheusInfo` in subtensor).
    #[derive(
        Encode, Decode, DecodeWithMemTracking, Default, TypeInfo, Clone, PartialEq, Eq, Debug, MaxEncodedLen,
    )]
    pub struct PrometheusInfo {
        /// Block of the last serve.
        pub block: u64,
        /// Version.
        pub version: u32,
        /// IP as a big-endian integer.
        pub ip: u128,
        /// Port.
        pub port: u16,
        /// 4 or 6.
        pub ip_type: u8,
    }

    /// How a subnet's epoch computes rewards (`SubnetEpochConsensus` in newer runtimes, as the SDK
    /// 11.3 reads it): Yuma, or Null, where only the highest-stake uid holds a validator permit.
    #[derive(
        Encode,
        Decode,
        DecodeWithMemTracking,
        Default,
        TypeInfo,
        Clone,
        Copy,
        PartialEq,
        Eq,
        Debug,
        MaxEncodedLen,
    )]
    pub enum EpochConsensus {
        /// Yuma consensus (the default).
        #[default]
        Yuma,
        /// Null consensus (not run by the devnet).
        Null,
    }

    /// The pallet.
    #[pallet::pallet]
    #[pallet::without_storage_info]
    pub struct Pallet<T>(_);

    /// Configuration of the pallet.
    #[pallet::config]
    pub trait Config:
        polkadot_sdk::frame_system::Config<AccountId = AccountId32>
        + pallet_drand::Config
        + polkadot_sdk::pallet_balances::Config<Balance = Balance>
    {
    }

    use crate::drand as pallet_drand;

    // ---- defaults (subtensor `Default*` / runtime `SubtensorInitial*`) ----
    /// Default of `Tempo`.
    #[pallet::type_value]
    pub fn DefaultTempo() -> u16 {
        360
    }
    /// Default of `WeightsSetRateLimit`.
    #[pallet::type_value]
    pub fn DefaultWeightsSetRateLimit() -> u64 {
        100
    }
    /// Default of `MaxAllowedUids`.
    #[pallet::type_value]
    pub fn DefaultMaxAllowedUids() -> u16 {
        256
    }
    /// Default of `MinAllowedWeights`.
    #[pallet::type_value]
    pub fn DefaultMinAllowedWeights() -> u16 {
        1024
    }
    /// Default of `MaxWeightsLimit`.
    #[pallet::type_value]
    pub fn DefaultMaxWeightsLimit() -> u16 {
        u16::MAX
    }
    /// Default of `MaxAllowedValidators`.
    #[pallet::type_value]
    pub fn DefaultMaxAllowedValidators() -> u16 {
        128
    }
    /// Default of `ImmunityPeriod`.
    #[pallet::type_value]
    pub fn DefaultImmunityPeriod() -> u16 {
        4096
    }
    /// Default of `ActivityCutoff`.
    #[pallet::type_value]
    pub fn DefaultActivityCutoff() -> u16 {
        5000
    }
    /// Default of `Kappa`.
    #[pallet::type_value]
    pub fn DefaultKappa() -> u16 {
        32_767
    }
    /// Default of `Rho`.
    #[pallet::type_value]
    pub fn DefaultRho() -> u16 {
        10
    }
    /// Default of `BondsMovingAverage`.
    #[pallet::type_value]
    pub fn DefaultBondsMovingAverage() -> u64 {
        900_000
    }
    /// Default of `BondsPenalty`.
    #[pallet::type_value]
    pub fn DefaultBondsPenalty() -> u16 {
        u16::MAX
    }
    /// Default of `AlphaValues`.
    #[pallet::type_value]
    pub fn DefaultAlphaValues() -> (u16, u16) {
        (45_875, 58_982)
    }
    /// Default of `AlphaSigmoidSteepness`.
    #[pallet::type_value]
    pub fn DefaultAlphaSigmoidSteepness() -> i16 {
        1000
    }
    /// Default of `True`.
    #[pallet::type_value]
    pub fn DefaultTrue() -> bool {
        true
    }
    /// Default of `RevealPeriodEpochs`.
    #[pallet::type_value]
    pub fn DefaultRevealPeriodEpochs() -> u64 {
        1
    }
    /// Default of `ServingRateLimit`.
    #[pallet::type_value]
    pub fn DefaultServingRateLimit() -> u64 {
        50
    }
    /// Default of `Burn`.
    #[pallet::type_value]
    pub fn DefaultBurn() -> Balance {
        100_000_000
    }
    /// Default of `MinBurn`.
    #[pallet::type_value]
    pub fn DefaultMinBurn() -> Balance {
        500_000
    }
    /// Default of `MaxBurn`.
    #[pallet::type_value]
    pub fn DefaultMaxBurn() -> Balance {
        100_000_000_000
    }
    /// Default of `CommitRevealWeightsVersion`.
    #[pallet::type_value]
    pub fn DefaultCommitRevealWeightsVersion() -> u16 {
        4
    }
    /// Default of `MechanismCount`.
    #[pallet::type_value]
    pub fn DefaultMechanismCount() -> u8 {
        1
    }
    /// Default of `MaxMechanismCount`.
    #[pallet::type_value]
    pub fn DefaultMaxMechanismCount() -> u8 {
        2
    }
    /// Default of `TokenSymbol`: 𝜏.
    #[pallet::type_value]
    pub fn DefaultTokenSymbol() -> Vec<u8> {
        "\u{1D70F}".as_bytes().to_vec()
    }
    /// Default of `RaoEmission`.
    #[pallet::type_value]
    pub fn DefaultRaoEmission() -> u64 {
        1_000_000_000
    }

    // ---- network ----
    /// Number of uids on a subnet.
    #[pallet::storage]
    pub type SubnetworkN<T> = StorageMap<_, Identity, NetUid, u16, ValueQuery>;
    /// Whether a subnet exists.
    #[pallet::storage]
    pub type NetworksAdded<T> = StorageMap<_, Identity, NetUid, bool, ValueQuery>;
    /// Number of subnets.
    #[pallet::storage]
    pub type TotalNetworks<T> = StorageValue<_, u16, ValueQuery>;
    /// Coldkey owning a subnet.
    #[pallet::storage]
    pub type SubnetOwner<T: Config> = StorageMap<_, Identity, NetUid, T::AccountId, OptionQuery>;
    /// Hotkey of the subnet owner.
    #[pallet::storage]
    pub type SubnetOwnerHotkey<T: Config> = StorageMap<_, Identity, NetUid, T::AccountId, OptionQuery>;
    /// Mechanisms per subnet (1 unless the owner split the subnet).
    #[pallet::storage]
    pub type MechanismCountCurrent<T> =
        StorageMap<_, Twox64Concat, NetUid, u8, ValueQuery, DefaultMechanismCount>;
    /// Share of the subnet's emission per mechanism (u16 proportions summing to 65535); unset means
    /// an even split.
    #[pallet::storage]
    pub type MechanismEmissionSplit<T> = StorageMap<_, Twox64Concat, NetUid, Vec<u16>, OptionQuery>;
    /// Most mechanisms a subnet owner may set.
    #[pallet::storage]
    pub type MaxMechanismCount<T> = StorageValue<_, u8, ValueQuery, DefaultMaxMechanismCount>;
    /// The subnet token's symbol (UTF-8), which the SDK reads on connect.
    #[pallet::storage]
    pub type TokenSymbol<T> = StorageMap<_, Identity, NetUid, Vec<u8>, ValueQuery, DefaultTokenSymbol>;
    /// How a subnet's epoch computes rewards (newer runtimes); always `Yuma` on the devnet.
    #[pallet::storage]
    pub type SubnetEpochConsensus<T> = StorageMap<_, Identity, NetUid, EpochConsensus, ValueQuery>;
    /// Whether registration is open.
    #[pallet::storage]
    pub type NetworkRegistrationAllowed<T> = StorageMap<_, Identity, NetUid, bool, ValueQuery, DefaultTrue>;

    // ---- neurons ----
    /// (netuid, uid) → hotkey.
    #[pallet::storage]
    pub type Keys<T: Config> =
        StorageDoubleMap<_, Identity, NetUid, Identity, u16, T::AccountId, OptionQuery>;
    /// (netuid, hotkey) → uid.
    #[pallet::storage]
    pub type Uids<T: Config> =
        StorageDoubleMap<_, Identity, NetUid, Blake2_128Concat, T::AccountId, u16, OptionQuery>;
    /// hotkey → owning coldkey.
    #[pallet::storage]
    pub type Owner<T: Config> = StorageMap<_, Blake2_128Concat, T::AccountId, T::AccountId, OptionQuery>;
    /// coldkey → its hotkeys.
    #[pallet::storage]
    pub type OwnedHotkeys<T: Config> =
        StorageMap<_, Blake2_128Concat, T::AccountId, Vec<T::AccountId>, ValueQuery>;
    /// (hotkey, netuid) → registered.
    #[pallet::storage]
    pub type IsNetworkMember<T: Config> =
        StorageDoubleMap<_, Blake2_128Concat, T::AccountId, Identity, NetUid, bool, ValueQuery>;
    /// (netuid, hotkey) → axon.
    #[pallet::storage]
    pub type Axons<T: Config> =
        StorageDoubleMap<_, Identity, NetUid, Blake2_128Concat, T::AccountId, AxonInfo, OptionQuery>;
    /// (netuid, hotkey) → prometheus endpoint.
    #[pallet::storage]
    pub type Prometheus<T: Config> =
        StorageDoubleMap<_, Identity, NetUid, Blake2_128Concat, T::AccountId, PrometheusInfo, OptionQuery>;
    /// (netuid, uid) → block of registration.
    #[pallet::storage]
    pub type BlockAtRegistration<T> = StorageDoubleMap<_, Identity, NetUid, Identity, u16, u64, ValueQuery>;
    /// Registrations in the current block.
    #[pallet::storage]
    pub type RegistrationsThisBlock<T> = StorageMap<_, Identity, NetUid, u16, ValueQuery>;

    // ---- stake ----
    /// (hotkey, netuid) → alpha staked on the hotkey.
    #[pallet::storage]
    pub type TotalHotkeyAlpha<T: Config> =
        StorageDoubleMap<_, Blake2_128Concat, T::AccountId, Identity, NetUid, Balance, ValueQuery>;
    /// (hotkey, coldkey, netuid) → the coldkey's shares of the hotkey's alpha (U64F64 bits, as
    /// subtensor's `Alpha`); on the devnet one share is one alpha.
    #[pallet::storage]
    pub type Alpha<T: Config> = StorageNMap<
        _,
        (
            NMapKey<Blake2_128Concat, T::AccountId>,
            NMapKey<Blake2_128Concat, T::AccountId>,
            NMapKey<Identity, NetUid>,
        ),
        U64F64,
        ValueQuery,
    >;
    /// Share of the registration cost locked as miner collateral (×65535; newer runtimes, read by
    /// the SDK 11.3 before `burned_register`). Always 0 on the devnet: the whole cost is burned.
    #[pallet::storage]
    pub type CollateralLockShare<T> = StorageMap<_, Identity, NetUid, u16, ValueQuery>;
    /// All TAO staked.
    #[pallet::storage]
    pub type TotalStake<T> = StorageValue<_, Balance, ValueQuery>;
    /// Subnet TAO reserve.
    #[pallet::storage]
    pub type SubnetTAO<T> = StorageMap<_, Identity, NetUid, Balance, ValueQuery>;
    /// coldkey → hotkeys it staked to.
    #[pallet::storage]
    pub type StakingHotkeys<T: Config> =
        StorageMap<_, Blake2_128Concat, T::AccountId, Vec<T::AccountId>, ValueQuery>;
    /// Minimum stake weight to set weights.
    #[pallet::storage]
    pub type StakeThreshold<T> = StorageValue<_, u64, ValueQuery>;

    // ---- per-uid epoch outputs ----
    /// Active flags.
    #[pallet::storage]
    pub type Active<T> = StorageMap<_, Identity, NetUid, Vec<bool>, ValueQuery>;
    /// Validator permits.
    #[pallet::storage]
    pub type ValidatorPermit<T> = StorageMap<_, Identity, NetUid, Vec<bool>, ValueQuery>;
    /// Consensus (×65535).
    #[pallet::storage]
    pub type Consensus<T> = StorageMap<_, Identity, NetUid, Vec<u16>, ValueQuery>;
    /// Dividends (×65535).
    #[pallet::storage]
    pub type Dividends<T> = StorageMap<_, Identity, NetUid, Vec<u16>, ValueQuery>;
    /// Validator trust (×65535).
    #[pallet::storage]
    pub type ValidatorTrust<T> = StorageMap<_, Identity, NetUid, Vec<u16>, ValueQuery>;
    /// Normalized stake weight (×65535).
    #[pallet::storage]
    pub type StakeWeight<T> = StorageMap<_, Identity, NetUid, Vec<u16>, ValueQuery>;
    /// Emission per uid of the last epoch (rao).
    #[pallet::storage]
    pub type Emission<T> = StorageMap<_, Identity, NetUid, Vec<Balance>, ValueQuery>;
    /// Incentive (×65535), per mechanism storage index.
    #[pallet::storage]
    pub type Incentive<T> = StorageMap<_, Identity, u16, Vec<u16>, ValueQuery>;
    /// Last weight update block per uid, per mechanism storage index.
    #[pallet::storage]
    pub type LastUpdate<T> = StorageMap<_, Identity, u16, Vec<u64>, ValueQuery>;
    /// (idx, uid) → sparse weights (max-upscaled u16).
    #[pallet::storage]
    pub type Weights<T> = StorageDoubleMap<_, Identity, u16, Identity, u16, Vec<(u16, u16)>, ValueQuery>;
    /// (idx, uid) → sparse bonds.
    #[pallet::storage]
    pub type Bonds<T> = StorageDoubleMap<_, Identity, u16, Identity, u16, Vec<(u16, u16)>, ValueQuery>;

    // ---- commit-reveal ----
    /// (idx, hotkey) → CR-v2 commits.
    #[pallet::storage]
    pub type WeightCommits<T: Config> = StorageDoubleMap<
        _,
        Twox64Concat,
        u16,
        Twox64Concat,
        T::AccountId,
        VecDeque<WeightCommit>,
        OptionQuery,
    >;
    /// (idx, epoch) → timelocked commits `(who, commit_block, ciphertext, reveal_round)`.
    #[pallet::storage]
    pub type TimelockedWeightCommits<T: Config> = StorageDoubleMap<
        _,
        Twox64Concat,
        u16,
        Twox64Concat,
        u64,
        VecDeque<(
            T::AccountId,
            u64,
            BoundedVec<u8, ConstU32<MAX_CRV3_COMMIT_SIZE_BYTES>>,
            u64,
        )>,
        ValueQuery,
    >;
    /// Commit-reveal version accepted by `commit_timelocked_weights`.
    #[pallet::storage]
    pub type CommitRevealWeightsVersion<T> =
        StorageValue<_, u16, ValueQuery, DefaultCommitRevealWeightsVersion>;

    // ---- epoch schedule ----
    /// Epochs run so far.
    #[pallet::storage]
    pub type SubnetEpochIndex<T> = StorageMap<_, Identity, NetUid, u64, ValueQuery>;
    /// Block of the last epoch.
    #[pallet::storage]
    pub type LastEpochBlock<T> = StorageMap<_, Identity, NetUid, u64, ValueQuery>;
    /// Owner-triggered epoch block (0 = none).
    #[pallet::storage]
    pub type PendingEpochAt<T> = StorageMap<_, Identity, NetUid, u64, ValueQuery>;
    /// Subtensor's default `AdminFreezeWindow`: 10 blocks (finney, tempo 360).
    #[pallet::type_value]
    pub fn DefaultAdminFreezeWindow() -> u16 {
        10
    }
    /// Blocks at the end of each tempo in which owner admin calls are refused, and how far ahead an
    /// owner's `trigger_epoch` fires (`AdminFreezeWindow`; root sets it with
    /// `AdminUtils::sudo_set_admin_freeze_window`).
    #[pallet::storage]
    pub type AdminFreezeWindow<T> = StorageValue<_, u16, ValueQuery, DefaultAdminFreezeWindow>;
    /// Blocks since the last epoch.
    #[pallet::storage]
    pub type BlocksSinceLastStep<T> = StorageMap<_, Identity, NetUid, u64, ValueQuery>;
    /// Block of the last mechanism step (subtensor's spelling).
    #[pallet::storage]
    pub type LastMechansimStepBlock<T> = StorageMap<_, Identity, NetUid, u64, ValueQuery>;
    /// Emission (rao) paid out per block of tempo, split by the epoch.
    #[pallet::storage]
    pub type DevnetRaoEmissionPerBlock<T> = StorageValue<_, u64, ValueQuery, DefaultRaoEmission>;
    /// Tempo given to new subnets.
    #[pallet::storage]
    pub type DevnetNewSubnetTempo<T> = StorageValue<_, u16, ValueQuery, DefaultTempo>;

    // ---- hyperparameters ----
    /// Blocks per epoch.
    #[pallet::storage]
    pub type Tempo<T> = StorageMap<_, Identity, NetUid, u16, ValueQuery, DefaultTempo>;
    /// Blocks between weight updates of one uid.
    #[pallet::storage]
    pub type WeightsSetRateLimit<T> =
        StorageMap<_, Identity, NetUid, u64, ValueQuery, DefaultWeightsSetRateLimit>;
    /// Minimum weights version key.
    #[pallet::storage]
    pub type WeightsVersionKey<T> = StorageMap<_, Identity, NetUid, u64, ValueQuery>;
    /// Most uids on the subnet.
    #[pallet::storage]
    pub type MaxAllowedUids<T> = StorageMap<_, Identity, NetUid, u16, ValueQuery, DefaultMaxAllowedUids>;
    /// Fewest weights a validator must set.
    #[pallet::storage]
    pub type MinAllowedWeights<T> =
        StorageMap<_, Identity, NetUid, u16, ValueQuery, DefaultMinAllowedWeights>;
    /// Largest normalized weight (×65535).
    #[pallet::storage]
    pub type MaxWeightsLimit<T> = StorageMap<_, Identity, NetUid, u16, ValueQuery, DefaultMaxWeightsLimit>;
    /// Most validator permits.
    #[pallet::storage]
    pub type MaxAllowedValidators<T> =
        StorageMap<_, Identity, NetUid, u16, ValueQuery, DefaultMaxAllowedValidators>;
    /// Blocks a new uid is immune from pruning.
    #[pallet::storage]
    pub type ImmunityPeriod<T> = StorageMap<_, Identity, NetUid, u16, ValueQuery, DefaultImmunityPeriod>;
    /// Blocks without an update before a uid is inactive.
    #[pallet::storage]
    pub type ActivityCutoff<T> = StorageMap<_, Identity, NetUid, u16, ValueQuery, DefaultActivityCutoff>;
    /// Consensus majority (×65535).
    #[pallet::storage]
    pub type Kappa<T> = StorageMap<_, Identity, NetUid, u16, ValueQuery, DefaultKappa>;
    /// Rho (unused by the epoch, kept for clients).
    #[pallet::storage]
    pub type Rho<T> = StorageMap<_, Identity, NetUid, u16, ValueQuery, DefaultRho>;
    /// Bonds EMA (÷1e6).
    #[pallet::storage]
    pub type BondsMovingAverage<T> =
        StorageMap<_, Identity, NetUid, u64, ValueQuery, DefaultBondsMovingAverage>;
    /// Bonds penalty (×65535).
    #[pallet::storage]
    pub type BondsPenalty<T> = StorageMap<_, Identity, NetUid, u16, ValueQuery, DefaultBondsPenalty>;
    /// Liquid alpha on/off.
    #[pallet::storage]
    pub type LiquidAlphaOn<T> = StorageMap<_, Blake2_128Concat, NetUid, bool, ValueQuery>;
    /// Yuma3 on/off.
    #[pallet::storage]
    pub type Yuma3On<T> = StorageMap<_, Blake2_128Concat, NetUid, bool, ValueQuery>;
    /// Liquid alpha bounds (×65535).
    #[pallet::storage]
    pub type AlphaValues<T> = StorageMap<_, Identity, NetUid, (u16, u16), ValueQuery, DefaultAlphaValues>;
    /// Liquid alpha sigmoid steepness.
    #[pallet::storage]
    pub type AlphaSigmoidSteepness<T> =
        StorageMap<_, Identity, NetUid, i16, ValueQuery, DefaultAlphaSigmoidSteepness>;
    /// Commit-reveal on/off.
    #[pallet::storage]
    pub type CommitRevealWeightsEnabled<T> = StorageMap<_, Identity, NetUid, bool, ValueQuery, DefaultTrue>;
    /// Epochs between commit and reveal.
    #[pallet::storage]
    pub type RevealPeriodEpochs<T> =
        StorageMap<_, Twox64Concat, NetUid, u64, ValueQuery, DefaultRevealPeriodEpochs>;
    /// Blocks between `serve_axon` calls.
    #[pallet::storage]
    pub type ServingRateLimit<T> = StorageMap<_, Identity, NetUid, u64, ValueQuery, DefaultServingRateLimit>;
    /// Registration burn (rao).
    #[pallet::storage]
    pub type Burn<T> = StorageMap<_, Identity, NetUid, Balance, ValueQuery, DefaultBurn>;
    /// Lowest burn.
    #[pallet::storage]
    pub type MinBurn<T> = StorageMap<_, Identity, NetUid, Balance, ValueQuery, DefaultMinBurn>;
    /// Highest burn.
    #[pallet::storage]
    pub type MaxBurn<T> = StorageMap<_, Identity, NetUid, Balance, ValueQuery, DefaultMaxBurn>;

    /// Events (subtensor's names and fields).
    #[pallet::event]
    #[pallet::generate_deposit(pub(crate) fn deposit_event)]
    pub enum Event<T: Config> {
        /// A subnet was added: (netuid, mechanism).
        NetworkAdded(NetUid, u16),
        /// Stake added: (coldkey, hotkey, tao, alpha, netuid, fee).
        StakeAdded(T::AccountId, T::AccountId, Balance, Balance, NetUid, u64),
        /// Weights set: (storage index, uid).
        WeightsSet(u16, u16),
        /// A neuron registered: (netuid, uid, hotkey).
        NeuronRegistered(NetUid, u16, T::AccountId),
        /// Max allowed uids set.
        MaxAllowedUidsSet(NetUid, u16),
        /// Max weight limit set.
        MaxWeightLimitSet(NetUid, u16),
        /// Activity cutoff set.
        ActivityCutoffSet(NetUid, u16),
        /// Liquid alpha sigmoid steepness set.
        AlphaSigmoidSteepnessSet(NetUid, i16),
        /// Kappa set.
        KappaSet(NetUid, u16),
        /// Min allowed weights set.
        MinAllowedWeightSet(NetUid, u16),
        /// Weights rate limit set.
        WeightsSetRateLimitSet(NetUid, u64),
        /// Immunity period set.
        ImmunityPeriodSet(NetUid, u16),
        /// Bonds moving average set.
        BondsMovingAverageSet(NetUid, u64),
        /// Bonds penalty set.
        BondsPenaltySet(NetUid, u16),
        /// Max validators set.
        MaxAllowedValidatorsSet(NetUid, u16),
        /// An axon was served: (netuid, hotkey).
        AxonServed(NetUid, T::AccountId),
        /// Weights version key set.
        WeightsVersionKeySet(NetUid, u64),
        /// Serving rate limit set.
        ServingRateLimitSet(NetUid, u64),
        /// Tempo set.
        TempoSet(NetUid, u16),
        /// Stake threshold set.
        StakeThresholdSet(u64),
        /// CR-v2 commit: (hotkey, storage index, hash).
        WeightsCommitted(T::AccountId, u16, H256),
        /// CR-v2 reveal: (hotkey, storage index, hash).
        WeightsRevealed(T::AccountId, u16, H256),
        /// Reveal period set.
        CommitRevealPeriodsSet(NetUid, u64),
        /// Commit-reveal toggled.
        CommitRevealEnabled(NetUid, bool),
        /// Timelocked commit: (hotkey, storage index, blake2 of the commit, reveal round).
        TimelockedWeightsCommitted(T::AccountId, u16, H256, u64),
        /// Timelocked commit revealed: (storage index, hotkey).
        TimelockedWeightsRevealed(u16, T::AccountId),
        /// Registration toggled.
        RegistrationAllowed(NetUid, bool),
        /// Burn set.
        BurnSet(NetUid, Balance),
        /// Min burn set.
        MinBurnSet(NetUid, Balance),
        /// Max burn set.
        MaxBurnSet(NetUid, Balance),
        /// Admin freeze window set (blocks).
        AdminFreezeWindowSet(u16),
        /// The subnet owner scheduled an epoch (newer runtimes than the reference finney metadata).
        EpochTriggered {
            /// The subnet.
            netuid: NetUid,
            /// The owner's coldkey.
            by: T::AccountId,
            /// The block the epoch runs in (`PendingEpochAt`).
            fires_at: u64,
        },
    }

    /// Errors: finney's, in finney's order (so that module error indices match the live chain).
    #[pallet::error]
    pub enum Error<T> {
        /// Subtensor's `RootNetworkDoesNotExist`; not raised by the devnet.
        RootNetworkDoesNotExist,
        /// The IP type is not 4 or 6.
        InvalidIpType,
        /// The IP address is not allowed (127.0.0.1, broadcast, out of range).
        InvalidIpAddress,
        /// The port is 0.
        InvalidPort,
        /// The hotkey is not registered on the subnet.
        HotKeyNotRegisteredInSubNet,
        /// The hotkey has no owning coldkey.
        HotKeyAccountNotExists,
        /// The hotkey is not registered on the network.
        HotKeyNotRegisteredInNetwork,
        /// The coldkey does not own the hotkey.
        NonAssociatedColdKey,
        /// Subtensor's `NotEnoughStake`; not raised by the devnet.
        NotEnoughStake,
        /// Subtensor's `NotEnoughStakeToWithdraw`; not raised by the devnet.
        NotEnoughStakeToWithdraw,
        /// The stake weight is below `StakeThreshold`.
        NotEnoughStakeToSetWeights,
        /// Subtensor's `NotEnoughStakeToSetChildkeys`; not raised by the devnet.
        NotEnoughStakeToSetChildkeys,
        /// The balance is below the amount or the burn.
        NotEnoughBalanceToStake,
        /// The balance could not be withdrawn.
        BalanceWithdrawalError,
        /// Subtensor's `ZeroBalanceAfterWithdrawn`; not raised by the devnet.
        ZeroBalanceAfterWithdrawn,
        /// The neuron has no validator permit.
        NeuronNoValidatorPermit,
        /// `dests` and `weights` differ in length.
        WeightVecNotEqualSize,
        /// A uid appears twice.
        DuplicateUids,
        /// A uid does not exist on the subnet.
        UidVecContainInvalidOne,
        /// Fewer weights than `MinAllowedWeights`.
        WeightVecLengthIsLow,
        /// Subtensor's `TooManyRegistrationsThisBlock`; not raised by the devnet.
        TooManyRegistrationsThisBlock,
        /// The hotkey is already registered on the subnet.
        HotKeyAlreadyRegisteredInSubNet,
        /// Subtensor's `NewHotKeyIsSameWithOld`; not raised by the devnet.
        NewHotKeyIsSameWithOld,
        /// Subtensor's `InvalidWorkBlock`; not raised by the devnet.
        InvalidWorkBlock,
        /// Subtensor's `InvalidDifficulty`; not raised by the devnet.
        InvalidDifficulty,
        /// Subtensor's `InvalidSeal`; not raised by the devnet.
        InvalidSeal,
        /// A normalized weight exceeds `MaxWeightsLimit`.
        MaxWeightExceeded,
        /// Subtensor's `HotKeyAlreadyDelegate`; not raised by the devnet.
        HotKeyAlreadyDelegate,
        /// Weights set again within `WeightsSetRateLimit` blocks.
        SettingWeightsTooFast,
        /// The version key is below `WeightsVersionKey`.
        IncorrectWeightVersionKey,
        /// The axon was served again within `ServingRateLimit` blocks.
        ServingRateLimitExceeded,
        /// More uids than the subnet has.
        UidsLengthExceedUidsInSubNet,
        /// Subtensor's `NetworkTxRateLimitExceeded`; not raised by the devnet.
        NetworkTxRateLimitExceeded,
        /// Subtensor's `DelegateTxRateLimitExceeded`; not raised by the devnet.
        DelegateTxRateLimitExceeded,
        /// Subtensor's `HotKeySetTxRateLimitExceeded`; not raised by the devnet.
        HotKeySetTxRateLimitExceeded,
        /// Subtensor's `StakingRateLimitExceeded`; not raised by the devnet.
        StakingRateLimitExceeded,
        /// Registration is closed on the subnet.
        SubNetRegistrationDisabled,
        /// Subtensor's `TooManyRegistrationsThisInterval`; not raised by the devnet.
        TooManyRegistrationsThisInterval,
        /// Subtensor's `TransactorAccountShouldBeHotKey`; not raised by the devnet.
        TransactorAccountShouldBeHotKey,
        /// Subtensor's `FaucetDisabled`; not raised by the devnet.
        FaucetDisabled,
        /// The caller does not own the subnet.
        NotSubnetOwner,
        /// Registration on root is not allowed.
        RegistrationNotPermittedOnRootSubnet,
        /// Subtensor's `StakeTooLowForRoot`; not raised by the devnet.
        StakeTooLowForRoot,
        /// Subtensor's `AllNetworksInImmunity`; not raised by the devnet.
        AllNetworksInImmunity,
        /// Subtensor's `NotEnoughBalanceToPaySwapHotKey`; not raised by the devnet.
        NotEnoughBalanceToPaySwapHotKey,
        /// Subtensor's `NotRootSubnet`; not raised by the devnet.
        NotRootSubnet,
        /// Weights cannot be set on root.
        CanNotSetRootNetworkWeights,
        /// No free or prunable uid.
        NoNeuronIdAvailable,
        /// Subtensor's `DelegateTakeTooLow`; not raised by the devnet.
        DelegateTakeTooLow,
        /// Subtensor's `DelegateTakeTooHigh`; not raised by the devnet.
        DelegateTakeTooHigh,
        /// No commit to reveal.
        NoWeightsCommitFound,
        /// The revealed weights match no commit.
        InvalidRevealCommitHashNotMatch,
        /// Commit-reveal is on: commit and reveal instead.
        CommitRevealEnabled,
        /// Commit-reveal is off: set weights instead.
        CommitRevealDisabled,
        /// Subtensor's `LiquidAlphaDisabled`; not raised by the devnet.
        LiquidAlphaDisabled,
        /// Subtensor's `AlphaHighTooLow`; not raised by the devnet.
        AlphaHighTooLow,
        /// Subtensor's `AlphaLowOutOfRange`; not raised by the devnet.
        AlphaLowOutOfRange,
        /// Subtensor's `ColdKeyAlreadyAssociated`; not raised by the devnet.
        ColdKeyAlreadyAssociated,
        /// Subtensor's `NotEnoughBalanceToPaySwapColdKey`; not raised by the devnet.
        NotEnoughBalanceToPaySwapColdKey,
        /// Subtensor's `InvalidChild`; not raised by the devnet.
        InvalidChild,
        /// Subtensor's `DuplicateChild`; not raised by the devnet.
        DuplicateChild,
        /// Subtensor's `ProportionOverflow`; not raised by the devnet.
        ProportionOverflow,
        /// Subtensor's `TooManyChildren`; not raised by the devnet.
        TooManyChildren,
        /// Subtensor's `TxRateLimitExceeded`; not raised by the devnet.
        TxRateLimitExceeded,
        /// Subtensor's `ColdkeySwapAnnouncementNotFound`; not raised by the devnet.
        ColdkeySwapAnnouncementNotFound,
        /// Subtensor's `ColdkeySwapTooEarly`; not raised by the devnet.
        ColdkeySwapTooEarly,
        /// Subtensor's `ColdkeySwapReannouncedTooEarly`; not raised by the devnet.
        ColdkeySwapReannouncedTooEarly,
        /// Subtensor's `AnnouncedColdkeyHashDoesNotMatch`; not raised by the devnet.
        AnnouncedColdkeyHashDoesNotMatch,
        /// Subtensor's `ColdkeySwapAlreadyDisputed`; not raised by the devnet.
        ColdkeySwapAlreadyDisputed,
        /// Subtensor's `NewColdKeyIsHotkey`; not raised by the devnet.
        NewColdKeyIsHotkey,
        /// Subtensor's `InvalidChildkeyTake`; not raised by the devnet.
        InvalidChildkeyTake,
        /// Subtensor's `TxChildkeyTakeRateLimitExceeded`; not raised by the devnet.
        TxChildkeyTakeRateLimitExceeded,
        /// Subtensor's `InvalidIdentity`; not raised by the devnet.
        InvalidIdentity,
        /// The mechanism does not exist.
        MechanismDoesNotExist,
        /// Subtensor's `CannotUnstakeLock`; not raised by the devnet.
        CannotUnstakeLock,
        /// The subnet does not exist.
        SubnetNotExists,
        /// More than ten unrevealed commits.
        TooManyUnrevealedCommits,
        /// The commit's reveal window has passed.
        ExpiredWeightCommit,
        /// The commit's reveal window has not opened.
        RevealTooEarly,
        /// Batch inputs differ in length.
        InputLengthsUnequal,
        /// Committed again within `WeightsSetRateLimit` blocks.
        CommittingWeightsTooFast,
        /// The amount is zero or too low.
        AmountTooLow,
        /// Subtensor's `InsufficientLiquidity`; not raised by the devnet.
        InsufficientLiquidity,
        /// Subtensor's `SlippageTooHigh`; not raised by the devnet.
        SlippageTooHigh,
        /// Subtensor's `TransferDisallowed`; not raised by the devnet.
        TransferDisallowed,
        /// Subtensor's `ActivityCutoffTooLow`; not raised by the devnet.
        ActivityCutoffTooLow,
        /// Subtensor's `CallDisabled`; not raised by the devnet.
        CallDisabled,
        /// Subtensor's `FirstEmissionBlockNumberAlreadySet`; not raised by the devnet.
        FirstEmissionBlockNumberAlreadySet,
        /// Subtensor's `NeedWaitingMoreBlocksToStarCall`; not raised by the devnet.
        NeedWaitingMoreBlocksToStarCall,
        /// Subtensor's `NotEnoughAlphaOutToRecycle`; not raised by the devnet.
        NotEnoughAlphaOutToRecycle,
        /// Subtensor's `CannotBurnOrRecycleOnRootSubnet`; not raised by the devnet.
        CannotBurnOrRecycleOnRootSubnet,
        /// Subtensor's `UnableToRecoverPublicKey`; not raised by the devnet.
        UnableToRecoverPublicKey,
        /// Subtensor's `InvalidRecoveredPublicKey`; not raised by the devnet.
        InvalidRecoveredPublicKey,
        /// Subtensor's `SubtokenDisabled`; not raised by the devnet.
        SubtokenDisabled,
        /// Subtensor's `HotKeySwapOnSubnetIntervalNotPassed`; not raised by the devnet.
        HotKeySwapOnSubnetIntervalNotPassed,
        /// Subtensor's `ZeroMaxStakeAmount`; not raised by the devnet.
        ZeroMaxStakeAmount,
        /// Subtensor's `SameNetuid`; not raised by the devnet.
        SameNetuid,
        /// Subtensor's `InsufficientBalance`; not raised by the devnet.
        InsufficientBalance,
        /// Subtensor's `StakingOperationRateLimitExceeded`; not raised by the devnet.
        StakingOperationRateLimitExceeded,
        /// Subtensor's `InvalidLeaseBeneficiary`; not raised by the devnet.
        InvalidLeaseBeneficiary,
        /// Subtensor's `LeaseCannotEndInThePast`; not raised by the devnet.
        LeaseCannotEndInThePast,
        /// Subtensor's `LeaseNetuidNotFound`; not raised by the devnet.
        LeaseNetuidNotFound,
        /// Subtensor's `LeaseDoesNotExist`; not raised by the devnet.
        LeaseDoesNotExist,
        /// Subtensor's `LeaseHasNoEndBlock`; not raised by the devnet.
        LeaseHasNoEndBlock,
        /// Subtensor's `LeaseHasNotEnded`; not raised by the devnet.
        LeaseHasNotEnded,
        /// Subtensor's `Overflow`; not raised by the devnet.
        Overflow,
        /// Subtensor's `BeneficiaryDoesNotOwnHotkey`; not raised by the devnet.
        BeneficiaryDoesNotOwnHotkey,
        /// Subtensor's `ExpectedBeneficiaryOrigin`; not raised by the devnet.
        ExpectedBeneficiaryOrigin,
        /// Subtensor's `AdminActionProhibitedDuringWeightsWindow`; not raised by the devnet.
        AdminActionProhibitedDuringWeightsWindow,
        /// Subtensor's `SymbolDoesNotExist`; not raised by the devnet.
        SymbolDoesNotExist,
        /// Subtensor's `SymbolAlreadyInUse`; not raised by the devnet.
        SymbolAlreadyInUse,
        /// The commit-reveal version differs from `CommitRevealWeightsVersion`.
        IncorrectCommitRevealVersion,
        /// The reveal period is above the maximum.
        RevealPeriodTooLarge,
        /// The reveal period is below the minimum.
        RevealPeriodTooSmall,
        /// The value is out of range.
        InvalidValue,
        /// Subtensor's `SubnetLimitReached`; not raised by the devnet.
        SubnetLimitReached,
        /// Subtensor's `CannotAffordLockCost`; not raised by the devnet.
        CannotAffordLockCost,
        /// Subtensor's `EvmKeyAssociateRateLimitExceeded`; not raised by the devnet.
        EvmKeyAssociateRateLimitExceeded,
        /// Subtensor's `SameAutoStakeHotkeyAlreadySet`; not raised by the devnet.
        SameAutoStakeHotkeyAlreadySet,
        /// Subtensor's `UidMapCouldNotBeCleared`; not raised by the devnet.
        UidMapCouldNotBeCleared,
        /// Subtensor's `TrimmingWouldExceedMaxImmunePercentage`; not raised by the devnet.
        TrimmingWouldExceedMaxImmunePercentage,
        /// Subtensor's `ChildParentInconsistency`; not raised by the devnet.
        ChildParentInconsistency,
        /// Subtensor's `InvalidNumRootClaim`; not raised by the devnet.
        InvalidNumRootClaim,
        /// Subtensor's `InvalidRootClaimThreshold`; not raised by the devnet.
        InvalidRootClaimThreshold,
        /// Subtensor's `InvalidSubnetNumber`; not raised by the devnet.
        InvalidSubnetNumber,
        /// Subtensor's `TooManyUIDsPerMechanism`; not raised by the devnet.
        TooManyUIDsPerMechanism,
        /// Subtensor's `VotingPowerTrackingNotEnabled`; not raised by the devnet.
        VotingPowerTrackingNotEnabled,
        /// Subtensor's `InvalidVotingPowerEmaAlpha`; not raised by the devnet.
        InvalidVotingPowerEmaAlpha,
        /// Subtensor's `PrecisionLoss`; not raised by the devnet.
        PrecisionLoss,
        /// Subtensor's `Deprecated`; not raised by the devnet.
        Deprecated,
        /// Subtensor's `AddStakeBurnRateLimitExceeded`; not raised by the devnet.
        AddStakeBurnRateLimitExceeded,
        /// Subtensor's `ColdkeySwapAnnounced`; not raised by the devnet.
        ColdkeySwapAnnounced,
        /// Subtensor's `ColdkeySwapDisputed`; not raised by the devnet.
        ColdkeySwapDisputed,
        /// Subtensor's `ColdkeySwapClearTooEarly`; not raised by the devnet.
        ColdkeySwapClearTooEarly,
        /// Subtensor's `DisabledTemporarily`; not raised by the devnet.
        DisabledTemporarily,
        // Newer runtimes than the reference finney metadata (after every finney error, so finney's
        // indices stay as they are):
        /// `trigger_epoch` while an owner-triggered epoch is still pending.
        EpochTriggerAlreadyPending,
        /// `trigger_epoch` with the next scheduled epoch closer than `AdminFreezeWindow` blocks.
        AutoEpochAlreadyImminent,
    }

    /// Genesis: the tempo of new subnets and an optional dev subnet.
    #[pallet::genesis_config]
    #[derive(frame_support::DefaultNoBound)]
    pub struct GenesisConfig<T: Config> {
        /// Tempo of new subnets.
        pub new_subnet_tempo: u16,
        /// Create netuid 1 owned by `(coldkey, hotkey)`.
        pub dev_subnet: Option<(T::AccountId, T::AccountId)>,
        /// Hyperparameter tweaks for the dev subnet: commit-reveal on/off.
        pub dev_subnet_commit_reveal: bool,
    }

    #[pallet::genesis_build]
    impl<T: Config> BuildGenesisConfig for GenesisConfig<T> {
        fn build(&self) {
            if self.new_subnet_tempo > 0 {
                DevnetNewSubnetTempo::<T>::put(self.new_subnet_tempo);
            }
            if let Some((cold, hot)) = &self.dev_subnet {
                let netuid = Pallet::<T>::init_new_network(cold, hot, 0);
                CommitRevealWeightsEnabled::<T>::insert(netuid, self.dev_subnet_commit_reveal);
            }
        }
    }

    #[pallet::hooks]
    impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
        fn on_initialize(_n: BlockNumberFor<T>) -> Weight {
            let _ = RegistrationsThisBlock::<T>::clear(u32::MAX, None);
            Self::block_step();
            Weight::zero()
        }
    }

    #[pallet::call]
    impl<T: Config> Pallet<T> {
        /// Set weights on a subnet (hotkey). Refused while commit-reveal is on.
        #[pallet::call_index(0)]
        #[pallet::weight((Weight::from_parts(20_000_000, 0), DispatchClass::Normal, Pays::No))]
        pub fn set_weights(
            origin: OriginFor<T>,
            netuid: NetUid,
            dests: Vec<u16>,
            weights: Vec<u16>,
            version_key: u64,
        ) -> DispatchResult {
            ensure!(
                !CommitRevealWeightsEnabled::<T>::get(netuid),
                Error::<T>::CommitRevealEnabled
            );
            let who = ensure_signed(origin)?;
            Self::do_set_weights(&who, netuid, 0, dests, weights, version_key)
        }

        /// Set the weights of mechanism `mecid` of a subnet (hotkey), as the SDK 11.3 does. Refused
        /// while commit-reveal is on.
        #[pallet::call_index(119)]
        #[pallet::weight((Weight::from_parts(20_000_000, 0), DispatchClass::Normal, Pays::No))]
        pub fn set_mechanism_weights(
            origin: OriginFor<T>,
            netuid: NetUid,
            mecid: MechId,
            dests: Vec<u16>,
            weights: Vec<u16>,
            version_key: u64,
        ) -> DispatchResult {
            ensure!(
                !CommitRevealWeightsEnabled::<T>::get(netuid),
                Error::<T>::CommitRevealEnabled
            );
            let who = ensure_signed(origin)?;
            Self::do_set_weights(&who, netuid, mecid, dests, weights, version_key)
        }

        /// Add stake from the signing coldkey to `hotkey` on `netuid` (1 TAO → 1 alpha).
        #[pallet::call_index(2)]
        #[pallet::weight(Weight::from_parts(50_000_000, 0))]
        pub fn add_stake(
            origin: OriginFor<T>,
            hotkey: T::AccountId,
            netuid: NetUid,
            amount_staked: Balance,
        ) -> DispatchResult {
            let coldkey = ensure_signed(origin)?;
            Self::do_add_stake(coldkey, hotkey, netuid, amount_staked)
        }

        /// `add_stake` refused when the alpha price is above `limit_price` (rao per alpha). The
        /// devnet's price is constant ([`Pallet::current_alpha_price`]), so a fill is always whole
        /// and `allow_partial` changes nothing.
        #[pallet::call_index(88)]
        #[pallet::weight(Weight::from_parts(50_000_000, 0))]
        pub fn add_stake_limit(
            origin: OriginFor<T>,
            hotkey: T::AccountId,
            netuid: NetUid,
            amount_staked: Balance,
            limit_price: u64,
            allow_partial: bool,
        ) -> DispatchResult {
            let coldkey = ensure_signed(origin)?;
            let _ = allow_partial;
            ensure!(
                Self::current_alpha_price(netuid) <= limit_price,
                Error::<T>::SlippageTooHigh
            );
            Self::do_add_stake(coldkey, hotkey, netuid, amount_staked)
        }

        /// Serve an axon (hotkey). Free, as on subtensor (`Pays::No`): a hotkey need hold no TAO.
        #[pallet::call_index(4)]
        #[pallet::weight((Weight::from_parts(20_000_000, 0), DispatchClass::Normal, Pays::No))]
        #[allow(clippy::too_many_arguments)]
        pub fn serve_axon(
            origin: OriginFor<T>,
            netuid: NetUid,
            version: u32,
            ip: u128,
            port: u16,
            ip_type: u8,
            protocol: u8,
            placeholder1: u8,
            placeholder2: u8,
        ) -> DispatchResult {
            let hotkey = ensure_signed(origin)?;
            let axon = Self::validate_serve_axon(
                &hotkey,
                netuid,
                AxonInfo {
                    block: 0,
                    version,
                    ip,
                    port,
                    ip_type,
                    protocol,
                    placeholder1,
                    placeholder2,
                },
            )?;
            Axons::<T>::insert(netuid, &hotkey, axon);
            Self::deposit_event(Event::AxonServed(netuid, hotkey));
            Ok(())
        }

        /// Register `hotkey` on `netuid`, burning `Burn` from the signing coldkey.
        #[pallet::call_index(7)]
        #[pallet::weight(Weight::from_parts(100_000_000, 0))]
        pub fn burned_register(origin: OriginFor<T>, netuid: NetUid, hotkey: T::AccountId) -> DispatchResult {
            let coldkey = ensure_signed(origin)?;
            Self::do_burned_register(&coldkey, netuid, &hotkey)
        }

        /// Create a subnet owned by the signing coldkey, with `hotkey` as uid 0.
        #[pallet::call_index(59)]
        #[pallet::weight(Weight::from_parts(100_000_000, 0))]
        pub fn register_network(origin: OriginFor<T>, hotkey: T::AccountId) -> DispatchResult {
            let coldkey = ensure_signed(origin)?;
            if let Some(owner) = Owner::<T>::get(&hotkey) {
                ensure!(owner == coldkey, Error::<T>::NonAssociatedColdKey);
            }
            let now = Self::current_block();
            let netuid = Self::init_new_network(&coldkey, &hotkey, now);
            Self::deposit_event(Event::NetworkAdded(netuid, 0));
            Ok(())
        }

        /// CR-v2 commit of a weights hash (hotkey).
        #[pallet::call_index(96)]
        #[pallet::weight((Weight::from_parts(20_000_000, 0), DispatchClass::Normal, Pays::No))]
        pub fn commit_weights(origin: OriginFor<T>, netuid: NetUid, commit_hash: H256) -> DispatchResult {
            let who = ensure_signed(origin)?;
            Self::do_commit_weights(&who, netuid, 0, commit_hash)
        }

        /// CR-v2 commit of a weights hash for mechanism `mecid` (hotkey).
        #[pallet::call_index(115)]
        #[pallet::weight((Weight::from_parts(20_000_000, 0), DispatchClass::Normal, Pays::No))]
        pub fn commit_mechanism_weights(
            origin: OriginFor<T>,
            netuid: NetUid,
            mecid: MechId,
            commit_hash: H256,
        ) -> DispatchResult {
            let who = ensure_signed(origin)?;
            Self::do_commit_weights(&who, netuid, mecid, commit_hash)
        }

        /// CR-v2 reveal for mechanism `mecid` (hotkey).
        #[pallet::call_index(116)]
        #[pallet::weight((Weight::from_parts(20_000_000, 0), DispatchClass::Normal, Pays::No))]
        pub fn reveal_mechanism_weights(
            origin: OriginFor<T>,
            netuid: NetUid,
            mecid: MechId,
            uids: Vec<u16>,
            values: Vec<u16>,
            salt: Vec<u16>,
            version_key: u64,
        ) -> DispatchResult {
            let who = ensure_signed(origin)?;
            Self::do_reveal_weights(&who, netuid, mecid, uids, values, salt, version_key)
        }

        /// CR-v2 reveal (hotkey).
        #[pallet::call_index(97)]
        #[pallet::weight((Weight::from_parts(20_000_000, 0), DispatchClass::Normal, Pays::No))]
        pub fn reveal_weights(
            origin: OriginFor<T>,
            netuid: NetUid,
            uids: Vec<u16>,
            values: Vec<u16>,
            salt: Vec<u16>,
            version_key: u64,
        ) -> DispatchResult {
            let who = ensure_signed(origin)?;
            Self::do_reveal_weights(&who, netuid, 0, uids, values, salt, version_key)
        }

        /// CR-v4 timelocked commit (hotkey): revealed when the drand pulse of `reveal_round` exists.
        #[pallet::call_index(113)]
        #[pallet::weight((Weight::from_parts(20_000_000, 0), DispatchClass::Normal, Pays::No))]
        pub fn commit_timelocked_weights(
            origin: OriginFor<T>,
            netuid: NetUid,
            commit: BoundedVec<u8, ConstU32<MAX_CRV3_COMMIT_SIZE_BYTES>>,
            reveal_round: u64,
            commit_reveal_version: u16,
        ) -> DispatchResult {
            let who = ensure_signed(origin)?;
            Self::do_commit_timelocked_weights(&who, netuid, 0, commit, reveal_round, commit_reveal_version)
        }

        /// CR-v4 timelocked commit of mechanism `mecid`'s weights (hotkey), as the SDK 11.3 sends it;
        /// revealed when the drand pulse of `reveal_round` exists.
        #[pallet::call_index(118)]
        #[pallet::weight((Weight::from_parts(20_000_000, 0), DispatchClass::Normal, Pays::No))]
        pub fn commit_timelocked_mechanism_weights(
            origin: OriginFor<T>,
            netuid: NetUid,
            mecid: MechId,
            commit: BoundedVec<u8, ConstU32<MAX_CRV3_COMMIT_SIZE_BYTES>>,
            reveal_round: u64,
            commit_reveal_version: u16,
        ) -> DispatchResult {
            let who = ensure_signed(origin)?;
            Self::do_commit_timelocked_weights(
                &who,
                netuid,
                mecid,
                commit,
                reveal_round,
                commit_reveal_version,
            )
        }

        /// The subnet owner schedules an epoch `AdminFreezeWindow` blocks from now (`PendingEpochAt`),
        /// as subtensor's `trigger_epoch` (call 141, in runtimes newer than the reference finney
        /// metadata). Refused while a trigger is pending (`EpochTriggerAlreadyPending`) and when the
        /// next scheduled epoch is closer than the window (`AutoEpochAlreadyImminent`). Subtensor
        /// also rate-limits it per owner; the devnet does not.
        #[pallet::call_index(141)]
        #[pallet::weight((Weight::from_parts(15_000_000, 0), DispatchClass::Normal, Pays::Yes))]
        pub fn trigger_epoch(origin: OriginFor<T>, netuid: NetUid) -> DispatchResult {
            let who = ensure_signed(origin)?;
            ensure!(NetworksAdded::<T>::get(netuid), Error::<T>::SubnetNotExists);
            ensure!(
                SubnetOwner::<T>::get(netuid).as_ref() == Some(&who),
                DispatchError::BadOrigin
            );
            ensure!(
                PendingEpochAt::<T>::get(netuid) == 0,
                Error::<T>::EpochTriggerAlreadyPending
            );
            let now = Self::current_block();
            let window = u64::from(AdminFreezeWindow::<T>::get());
            let next_auto =
                LastEpochBlock::<T>::get(netuid).saturating_add(u64::from(Tempo::<T>::get(netuid)));
            ensure!(
                next_auto.saturating_sub(now) >= window,
                Error::<T>::AutoEpochAlreadyImminent
            );
            let fires_at = now.saturating_add(window);
            PendingEpochAt::<T>::insert(netuid, fires_at);
            Self::deposit_event(Event::EpochTriggered {
                netuid,
                by: who,
                fires_at,
            });
            Ok(())
        }
    }

    impl<T: Config> Pallet<T> {
        /// The current block number as u64.
        pub fn current_block() -> u64 {
            use polkadot_sdk::sp_runtime::SaturatedConversion;
            frame_system::Pallet::<T>::block_number().saturated_into::<u64>()
        }

        /// Stake `amount` of the coldkey's TAO on `hotkey` (1 TAO → 1 alpha; shares in `Alpha`
        /// equal alpha, as U64F64).
        fn do_add_stake(
            coldkey: T::AccountId,
            hotkey: T::AccountId,
            netuid: NetUid,
            amount: Balance,
        ) -> DispatchResult {
            ensure!(NetworksAdded::<T>::get(netuid), Error::<T>::SubnetNotExists);
            ensure!(
                Owner::<T>::contains_key(&hotkey),
                Error::<T>::HotKeyAccountNotExists
            );
            ensure!(amount > 0, Error::<T>::AmountTooLow);
            Self::burn_from(&coldkey, amount)?;
            TotalHotkeyAlpha::<T>::mutate(&hotkey, netuid, |a| *a = a.saturating_add(amount));
            Alpha::<T>::mutate((&hotkey, &coldkey, netuid), |shares| {
                shares.bits = shares.bits.saturating_add(u128::from(amount) << 64)
            });
            TotalStake::<T>::mutate(|t| *t = t.saturating_add(amount));
            SubnetTAO::<T>::mutate(netuid, |t| *t = t.saturating_add(amount));
            StakingHotkeys::<T>::mutate(&coldkey, |hs| {
                if !hs.contains(&hotkey) {
                    hs.push(hotkey.clone())
                }
            });
            Self::deposit_event(Event::StakeAdded(coldkey, hotkey, amount, amount, netuid, 0));
            Ok(())
        }

        /// Withdraw `amount` from `who` and burn it.
        pub(crate) fn burn_from(who: &T::AccountId, amount: Balance) -> DispatchResult {
            let free =
                <polkadot_sdk::pallet_balances::Pallet<T> as Currency<T::AccountId>>::free_balance(who);
            ensure!(free >= amount, Error::<T>::NotEnoughBalanceToStake);
            let imbalance = <polkadot_sdk::pallet_balances::Pallet<T> as Currency<T::AccountId>>::withdraw(
                who,
                amount,
                WithdrawReasons::except(WithdrawReasons::TIP),
                ExistenceRequirement::KeepAlive,
            )
            .map_err(|_| Error::<T>::BalanceWithdrawalError)?;
            drop(imbalance);
            Ok(())
        }

        /// Create a subnet; registers `hotkey` as uid 0. Returns the netuid.
        pub(crate) fn init_new_network(cold: &T::AccountId, hot: &T::AccountId, now: u64) -> NetUid {
            let mut netuid: NetUid = 1;
            while NetworksAdded::<T>::get(netuid) {
                netuid = netuid.saturating_add(1);
            }
            NetworksAdded::<T>::insert(netuid, true);
            TotalNetworks::<T>::mutate(|n| *n = n.saturating_add(1));
            SubnetOwner::<T>::insert(netuid, cold);
            SubnetOwnerHotkey::<T>::insert(netuid, hot);
            Tempo::<T>::insert(netuid, DevnetNewSubnetTempo::<T>::get());
            TokenSymbol::<T>::insert(netuid, super::subnet_symbol(netuid));
            LastEpochBlock::<T>::insert(netuid, now);
            LastMechansimStepBlock::<T>::insert(netuid, now);
            if !Owner::<T>::contains_key(hot) {
                Owner::<T>::insert(hot, cold);
                OwnedHotkeys::<T>::mutate(cold, |hs| hs.push(hot.clone()));
            }
            Self::append_neuron(netuid, hot, now);
            netuid
        }

        /// Append a neuron at uid `SubnetworkN` and extend the per-uid vectors.
        pub(crate) fn append_neuron(netuid: NetUid, hotkey: &T::AccountId, now: u64) -> u16 {
            let uid = SubnetworkN::<T>::get(netuid);
            SubnetworkN::<T>::insert(netuid, uid.saturating_add(1));
            Active::<T>::mutate(netuid, |v| v.push(true));
            ValidatorPermit::<T>::mutate(netuid, |v| v.push(false));
            Consensus::<T>::mutate(netuid, |v| v.push(0));
            Dividends::<T>::mutate(netuid, |v| v.push(0));
            ValidatorTrust::<T>::mutate(netuid, |v| v.push(0));
            StakeWeight::<T>::mutate(netuid, |v| v.push(0));
            Emission::<T>::mutate(netuid, |v| v.push(0));
            for mecid in 0..MechanismCountCurrent::<T>::get(netuid) {
                let idx = Self::mechanism_index(netuid, mecid);
                Incentive::<T>::mutate(idx, |v| v.push(0));
                Self::set_last_update(netuid, idx, uid, now);
            }
            Self::set_neuron(netuid, uid, hotkey, now);
            uid
        }

        fn set_neuron(netuid: NetUid, uid: u16, hotkey: &T::AccountId, now: u64) {
            Keys::<T>::insert(netuid, uid, hotkey);
            Uids::<T>::insert(netuid, hotkey, uid);
            BlockAtRegistration::<T>::insert(netuid, uid, now);
            IsNetworkMember::<T>::insert(hotkey, netuid, true);
        }

        /// Replace the neuron at `uid` with `hotkey`, clearing its state.
        fn replace_neuron(netuid: NetUid, uid: u16, hotkey: &T::AccountId, now: u64) {
            if let Some(old) = Keys::<T>::get(netuid, uid) {
                Uids::<T>::remove(netuid, &old);
                IsNetworkMember::<T>::remove(&old, netuid);
                Axons::<T>::remove(netuid, &old);
                Prometheus::<T>::remove(netuid, &old);
                for mecid in 0..MechanismCountCurrent::<T>::get(netuid) {
                    WeightCommits::<T>::remove(Self::mechanism_index(netuid, mecid), &old);
                }
            }
            let i = uid as usize;
            for mecid in 0..MechanismCountCurrent::<T>::get(netuid) {
                let idx = Self::mechanism_index(netuid, mecid);
                Weights::<T>::remove(idx, uid);
                Bonds::<T>::remove(idx, uid);
                Incentive::<T>::mutate(idx, |v| v.get_mut(i).map(|x| *x = 0));
                Self::set_last_update(netuid, idx, uid, now);
            }
            Emission::<T>::mutate(netuid, |v| v.get_mut(i).map(|x| *x = 0));
            Consensus::<T>::mutate(netuid, |v| v.get_mut(i).map(|x| *x = 0));
            Dividends::<T>::mutate(netuid, |v| v.get_mut(i).map(|x| *x = 0));
            ValidatorTrust::<T>::mutate(netuid, |v| v.get_mut(i).map(|x| *x = 0));
            ValidatorPermit::<T>::mutate(netuid, |v| v.get_mut(i).map(|x| *x = false));
            Self::set_neuron(netuid, uid, hotkey, now);
        }

        fn do_burned_register(
            coldkey: &T::AccountId,
            netuid: NetUid,
            hotkey: &T::AccountId,
        ) -> DispatchResult {
            ensure!(netuid != 0, Error::<T>::RegistrationNotPermittedOnRootSubnet);
            ensure!(NetworksAdded::<T>::get(netuid), Error::<T>::SubnetNotExists);
            ensure!(
                NetworkRegistrationAllowed::<T>::get(netuid),
                Error::<T>::SubNetRegistrationDisabled
            );
            ensure!(
                !Uids::<T>::contains_key(netuid, hotkey),
                Error::<T>::HotKeyAlreadyRegisteredInSubNet
            );
            let burn = Burn::<T>::get(netuid);
            let free =
                <polkadot_sdk::pallet_balances::Pallet<T> as Currency<T::AccountId>>::free_balance(coldkey);
            ensure!(free >= burn, Error::<T>::NotEnoughBalanceToStake);
            if let Some(owner) = Owner::<T>::get(hotkey) {
                ensure!(&owner == coldkey, Error::<T>::NonAssociatedColdKey);
            }
            let now = Self::current_block();
            let n = SubnetworkN::<T>::get(netuid);
            let uid = if n < MaxAllowedUids::<T>::get(netuid) {
                None
            } else {
                Some(Self::uid_to_prune(netuid, now).ok_or(Error::<T>::NoNeuronIdAvailable)?)
            };
            Self::burn_from(coldkey, burn)?;
            if !Owner::<T>::contains_key(hotkey) {
                Owner::<T>::insert(hotkey, coldkey);
                OwnedHotkeys::<T>::mutate(coldkey, |hs| hs.push(hotkey.clone()));
            }
            let uid = match uid {
                None => Self::append_neuron(netuid, hotkey, now),
                Some(uid) => {
                    Self::replace_neuron(netuid, uid, hotkey, now);
                    uid
                }
            };
            RegistrationsThisBlock::<T>::mutate(netuid, |r| *r = r.saturating_add(1));
            Self::deposit_event(Event::NeuronRegistered(netuid, uid, hotkey.clone()));
            Ok(())
        }

        /// The non-immune, non-owner uid with the lowest emission (lowest uid on ties).
        fn uid_to_prune(netuid: NetUid, now: u64) -> Option<u16> {
            let n = SubnetworkN::<T>::get(netuid);
            let immunity = u64::from(ImmunityPeriod::<T>::get(netuid));
            let owner_hot = SubnetOwnerHotkey::<T>::get(netuid);
            let emission = Emission::<T>::get(netuid);
            (0..n)
                .filter(|uid| {
                    BlockAtRegistration::<T>::get(netuid, uid).saturating_add(immunity) < now
                        && Keys::<T>::get(netuid, uid) != owner_hot
                })
                .min_by_key(|uid| (emission.get(*uid as usize).copied().unwrap_or(0), *uid))
        }

        /// The IP checks of subtensor's `is_valid_ip_address` (0 allowed for testing).
        pub fn is_valid_ip_address(ip_type: u8, ip: u128) -> bool {
            if ip == 0 {
                return true;
            }
            match ip_type {
                4 => ip < u128::from(u32::MAX) && ip != 0x7f00_0001,
                6 => ip != 1 && ip != u128::MAX,
                _ => false,
            }
        }

        pub(crate) fn validate_serve_axon(
            hotkey: &T::AccountId,
            netuid: NetUid,
            mut axon: AxonInfo,
        ) -> Result<AxonInfo, Error<T>> {
            ensure!(
                Uids::<T>::contains_key(netuid, hotkey),
                Error::<T>::HotKeyNotRegisteredInNetwork
            );
            ensure!(matches!(axon.ip_type, 4 | 6), Error::<T>::InvalidIpType);
            ensure!(
                Self::is_valid_ip_address(axon.ip_type, axon.ip),
                Error::<T>::InvalidIpAddress
            );
            let prev = Axons::<T>::get(netuid, hotkey).unwrap_or_default();
            let now = Self::current_block();
            let limit = ServingRateLimit::<T>::get(netuid);
            ensure!(
                limit == 0 || prev.block == 0 || now.saturating_sub(prev.block) >= limit,
                Error::<T>::ServingRateLimitExceeded
            );
            ensure!(axon.port != 0, Error::<T>::InvalidPort);
            axon.block = now;
            Ok(axon)
        }

        /// Check the origin is root or the subnet's owner coldkey.
        pub fn ensure_subnet_owner_or_root(
            origin: OriginFor<T>,
            netuid: NetUid,
        ) -> Result<(), DispatchError> {
            match origin.into() {
                Ok(frame_system::RawOrigin::Root) => Ok(()),
                Ok(frame_system::RawOrigin::Signed(who)) => {
                    ensure!(NetworksAdded::<T>::get(netuid), Error::<T>::SubnetNotExists);
                    ensure!(
                        SubnetOwner::<T>::get(netuid).as_ref() == Some(&who),
                        DispatchError::BadOrigin
                    );
                    Ok(())
                }
                _ => Err(DispatchError::BadOrigin),
            }
        }
    }
}

/// The symbol a new subnet gets: as in subtensor's table, the lowercase Greek letter of its netuid
/// (α for 1 … ω for 24, with `t` for 19); past the Greek letters, where subtensor's table goes on
/// through other alphabets, the devnet uses `Τ`, subtensor's default.
pub fn subnet_symbol(netuid: NetUid) -> alloc::vec::Vec<u8> {
    const GREEK: &str = "αβγδεζηθικλμνξοπρσtυφχψω";
    GREEK
        .chars()
        .nth(usize::from(netuid).wrapping_sub(1))
        .unwrap_or('Τ')
        .to_string()
        .into_bytes()
}

extern crate alloc;
