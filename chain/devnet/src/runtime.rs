//! The devnet's FRAME runtime, executed natively.
//!
//! Pallet indices follow finney (`System` 0, `Timestamp` 2, `Aura` 3, `Balances` 5,
//! `TransactionPayment` 6, `SubtensorModule` 7, `Sudo` 12, `Commitments` 18, `AdminUtils` 19,
//! `Drand` 26, `MevShield` 30), and so does the transaction
//! extension pipeline (`SystemTxExtension, CustomTxExtension, CheckMetadataHash`), so that a client
//! built for finney signs the same bytes.

#![allow(missing_docs, clippy::too_many_arguments)]

extern crate alloc;

use alloc::{borrow::Cow, vec::Vec};
use parity_scale_codec::{Decode, DecodeWithMemTracking, Encode};
use polkadot_sdk::frame_support::{
    self, construct_runtime, derive_impl, parameter_types,
    traits::{ConstBool, ConstU8, ConstU32, ConstU64},
    weights::{
        IdentityFee, Weight,
        constants::{RocksDbWeight, WEIGHT_REF_TIME_PER_SECOND},
    },
};
use polkadot_sdk::frame_system::{
    self,
    limits::{BlockLength, BlockWeights},
};
use polkadot_sdk::sp_api::impl_runtime_apis;
use polkadot_sdk::sp_core::OpaqueMetadata;
use polkadot_sdk::sp_runtime::{
    self, ApplyExtrinsicResult, MultiAddress, MultiSignature, Perbill, generic,
    traits::{
        AsSystemOriginSigner, BlakeTwo256, Block as BlockT, DispatchInfoOf, DispatchOriginOf, Implication,
        TransactionExtension, ValidateResult,
    },
    transaction_validity::{
        InvalidTransaction, TransactionSource, TransactionValidity, TransactionValidityError,
        ValidTransaction,
    },
};
use polkadot_sdk::sp_version::RuntimeVersion;
use polkadot_sdk::{
    frame_executive, frame_metadata_hash_extension, pallet_balances, pallet_sudo, pallet_timestamp,
    pallet_transaction_payment, sp_block_builder, sp_inherents, sp_transaction_pool,
};
use scale_info::TypeInfo;

pub use polkadot_sdk::sp_runtime::AccountId32 as AccountId;

use super::admin as pallet_admin_utils;
use super::aura as pallet_aura;
use super::commitments as pallet_commitments;
use super::drand as pallet_drand;
use super::shield as pallet_shield;
use super::subtensor as pallet_subtensor;
use super::subtensor::info::{Metagraph, NeuronInfoLite, StakeInfo, SubnetHyperparamsV2};

/// Signature type (sr25519, ed25519 or ecdsa).
pub type Signature = MultiSignature;
/// Balance in rao.
pub type Balance = u64;
/// Account nonce.
pub type Nonce = u32;
/// Block number.
pub type BlockNumber = u32;
/// Address format (finney: `MultiAddress<AccountId, ()>`).
pub type Address = MultiAddress<AccountId, ()>;
/// Block header.
pub type Header = generic::Header<BlockNumber, BlakeTwo256>;
/// Block.
pub type Block = generic::Block<Header, UncheckedExtrinsic>;
/// Block hash.
pub type Hash = polkadot_sdk::sp_core::H256;

/// FRAME's system extensions, in finney's order.
pub type SystemTxExtension = (
    frame_system::CheckNonZeroSender<Runtime>,
    frame_system::CheckSpecVersion<Runtime>,
    frame_system::CheckTxVersion<Runtime>,
    frame_system::CheckGenesis<Runtime>,
    frame_system::CheckMortality<Runtime>,
    frame_system::CheckNonce<Runtime>,
    frame_system::CheckWeight<Runtime>,
    pallet_transaction_payment::ChargeTransactionPayment<Runtime>,
);
/// Subtensor's own extensions (all zero-sized).
pub type CustomTxExtension = (
    SudoTransactionExtension,
    CheckShieldedTxValidity,
    SubtensorTransactionExtension,
    DrandPriority,
);
/// The full pipeline.
pub type TxExtension = (
    SystemTxExtension,
    CustomTxExtension,
    frame_metadata_hash_extension::CheckMetadataHash<Runtime>,
);
/// Extrinsic format.
pub type UncheckedExtrinsic = generic::UncheckedExtrinsic<Address, RuntimeCall, Signature, TxExtension>;
/// Executes blocks against the pallets.
pub type Executive = frame_executive::Executive<
    Runtime,
    Block,
    frame_system::ChainContext<Runtime>,
    Runtime,
    AllPalletsWithSystem,
>;

/// Runtime version: subtensor's spec name and version, so clients take it for subtensor.
pub const VERSION: RuntimeVersion = RuntimeVersion {
    spec_name: Cow::Borrowed("node-subtensor"),
    impl_name: Cow::Borrowed("tensorproof-devnet"),
    authoring_version: 1,
    spec_version: 429,
    impl_version: 1,
    apis: RUNTIME_API_VERSIONS,
    transaction_version: 1,
    system_version: 1,
};

const NORMAL_DISPATCH_RATIO: Perbill = Perbill::from_percent(75);

parameter_types! {
    pub const Version: RuntimeVersion = VERSION;
    pub RuntimeBlockWeights: BlockWeights = BlockWeights::with_sensible_defaults(
        Weight::from_parts(2 * WEIGHT_REF_TIME_PER_SECOND, u64::MAX),
        NORMAL_DISPATCH_RATIO,
    );
    pub RuntimeBlockLength: BlockLength =
        BlockLength::builder().max_length(5 * 1024 * 1024).build();
}

construct_runtime!(
    pub enum Runtime {
        System: frame_system = 0,
        Timestamp: pallet_timestamp = 2,
        Aura: pallet_aura = 3,
        Balances: pallet_balances = 5,
        TransactionPayment: pallet_transaction_payment = 6,
        SubtensorModule: pallet_subtensor = 7,
        Sudo: pallet_sudo = 12,
        Commitments: pallet_commitments = 18,
        AdminUtils: pallet_admin_utils = 19,
        Drand: pallet_drand = 26,
        MevShield: pallet_shield = 30,
    }
);

#[derive_impl(frame_system::config_preludes::SolochainDefaultConfig)]
impl frame_system::Config for Runtime {
    type Block = Block;
    type AccountId = AccountId;
    type Lookup = sp_runtime::traits::AccountIdLookup<AccountId, ()>;
    type Nonce = Nonce;
    type Hash = Hash;
    type BlockHashCount = ConstU32<4096>;
    type BlockWeights = RuntimeBlockWeights;
    type BlockLength = RuntimeBlockLength;
    type DbWeight = RocksDbWeight;
    type Version = Version;
    type AccountData = pallet_balances::AccountData<Balance>;
    type SS58Prefix = ConstU16<42>;
    type MaxConsumers = ConstU32<16>;
}

use frame_support::traits::ConstU16;

impl pallet_timestamp::Config for Runtime {
    type Moment = u64;
    type OnTimestampSet = ();
    type MinimumPeriod = ConstU64<1>;
    type WeightInfo = ();
}

#[derive_impl(pallet_balances::config_preludes::TestDefaultConfig)]
impl pallet_balances::Config for Runtime {
    type Balance = Balance;
    type ExistentialDeposit = ConstU64<500>;
    type AccountStore = System;
}

impl pallet_transaction_payment::Config for Runtime {
    type RuntimeEvent = RuntimeEvent;
    type OnChargeTransaction = pallet_transaction_payment::FungibleAdapter<Balances, ()>;
    type OperationalFeeMultiplier = ConstU8<5>;
    type WeightToFee = IdentityFee<Balance>;
    type LengthToFee = IdentityFee<Balance>;
    type FeeMultiplierUpdate = ();
    type WeightInfo = ();
}

impl pallet_sudo::Config for Runtime {
    type RuntimeEvent = RuntimeEvent;
    type RuntimeCall = RuntimeCall;
    type WeightInfo = ();
}

impl pallet_subtensor::Config for Runtime {}

impl pallet_admin_utils::Config for Runtime {}

impl pallet_drand::Config for Runtime {}

impl pallet_commitments::Config for Runtime {}

impl pallet_aura::Config for Runtime {}

impl pallet_shield::Config for Runtime {}

// Keep unused-import lints quiet for types only some configurations use.
const _: Option<ConstBool<true>> = None;

/// Subtensor's `SudoTransactionExtension`: a sudo call signed by anyone but the sudo key is
/// refused in the pool (`BadSigner`).
#[derive(Encode, Decode, DecodeWithMemTracking, Clone, Eq, PartialEq, TypeInfo, Debug, Default)]
pub struct SudoTransactionExtension;

impl TransactionExtension<RuntimeCall> for SudoTransactionExtension {
    const IDENTIFIER: &'static str = "SudoTransactionExtension";
    type Implicit = ();
    type Val = ();
    type Pre = ();

    fn validate(
        &self,
        origin: DispatchOriginOf<RuntimeCall>,
        call: &RuntimeCall,
        _info: &DispatchInfoOf<RuntimeCall>,
        _len: usize,
        _self_implicit: (),
        _inherited_implication: &impl Implication,
        _source: TransactionSource,
    ) -> ValidateResult<(), RuntimeCall> {
        if let (RuntimeCall::Sudo(_), Some(who)) = (call, origin.as_system_origin_signer())
            && pallet_sudo::Key::<Runtime>::get().as_ref() != Some(who)
        {
            return Err(InvalidTransaction::BadSigner.into());
        }
        Ok((ValidTransaction::default(), (), origin))
    }

    sp_runtime::impl_tx_ext_default!(RuntimeCall; weight prepare);
}

/// Subtensor's `CheckShieldedTxValidity` (MEV shield): a signed `MevShield.submit_encrypted` whose
/// ciphertext does not have the shielded layout is refused in the pool with
/// `InvalidTransaction::Custom(23)` (subtensor's `FailedShieldedTxParsing`).
#[derive(Encode, Decode, DecodeWithMemTracking, Clone, Eq, PartialEq, TypeInfo, Debug, Default)]
pub struct CheckShieldedTxValidity;

/// `InvalidTransaction::Custom` code of an unparseable shielded ciphertext, as on subtensor.
pub const FAILED_SHIELDED_TX_PARSING: u8 = 23;

impl TransactionExtension<RuntimeCall> for CheckShieldedTxValidity {
    const IDENTIFIER: &'static str = "CheckShieldedTxValidity";
    type Implicit = ();
    type Val = ();
    type Pre = ();

    fn validate(
        &self,
        origin: DispatchOriginOf<RuntimeCall>,
        call: &RuntimeCall,
        _info: &DispatchInfoOf<RuntimeCall>,
        _len: usize,
        _self_implicit: (),
        _inherited_implication: &impl Implication,
        _source: TransactionSource,
    ) -> ValidateResult<(), RuntimeCall> {
        if let (RuntimeCall::MevShield(pallet_shield::Call::submit_encrypted { ciphertext }), Some(_)) =
            (call, origin.as_system_origin_signer())
            && pallet_shield::parse(ciphertext).is_none()
        {
            return Err(InvalidTransaction::Custom(FAILED_SHIELDED_TX_PARSING).into());
        }
        Ok((ValidTransaction::default(), (), origin))
    }

    sp_runtime::impl_tx_ext_default!(RuntimeCall; weight prepare);
}

/// Subtensor's `DrandPriority`; priority ordering is not modelled, only the identifier.
#[derive(Encode, Decode, DecodeWithMemTracking, Clone, Eq, PartialEq, TypeInfo, Debug, Default)]
pub struct DrandPriority;

impl TransactionExtension<RuntimeCall> for DrandPriority {
    const IDENTIFIER: &'static str = "DrandPriority";
    type Implicit = ();
    type Val = ();
    type Pre = ();
    sp_runtime::impl_tx_ext_default!(RuntimeCall; weight validate prepare);
}

/// Subtensor's `SubtensorTransactionExtension`: weight and axon calls are checked in the pool
/// (registration, stake, rate limits, reveal window, axon data) and refused with
/// `InvalidTransaction::Custom(code)` before inclusion.
#[derive(Encode, Decode, DecodeWithMemTracking, Clone, Eq, PartialEq, TypeInfo, Debug, Default)]
pub struct SubtensorTransactionExtension;

impl TransactionExtension<RuntimeCall> for SubtensorTransactionExtension {
    const IDENTIFIER: &'static str = "SubtensorTransactionExtension";
    type Implicit = ();
    type Val = ();
    type Pre = ();

    fn validate(
        &self,
        origin: DispatchOriginOf<RuntimeCall>,
        call: &RuntimeCall,
        _info: &DispatchInfoOf<RuntimeCall>,
        _len: usize,
        _self_implicit: (),
        _inherited_implication: &impl Implication,
        _source: TransactionSource,
    ) -> ValidateResult<(), RuntimeCall> {
        if let (RuntimeCall::SubtensorModule(inner), Some(who)) = (call, origin.as_system_origin_signer()) {
            pallet_subtensor::check_weights_for_pool::<Runtime>(who, inner)
                .map_err(|e| TransactionValidityError::Invalid(InvalidTransaction::Custom(e.code())))?;
        }
        Ok((ValidTransaction::default(), (), origin))
    }

    sp_runtime::impl_tx_ext_default!(RuntimeCall; weight prepare);
}

polkadot_sdk::sp_api::decl_runtime_apis! {
    /// Subtensor's `NeuronInfoRuntimeApi` (the lite calls).
    pub trait NeuronInfoRuntimeApi {
        /// All neurons of a subnet.
        fn get_neurons_lite(netuid: u16) -> Vec<NeuronInfoLite<AccountId>>;
        /// One neuron.
        fn get_neuron_lite(netuid: u16, uid: u16) -> Option<NeuronInfoLite<AccountId>>;
    }

    /// Subtensor's `SubnetInfoRuntimeApi` (the calls a validator needs).
    pub trait SubnetInfoRuntimeApi {
        /// Hyperparameters of a subnet.
        fn get_subnet_hyperparams_v2(netuid: u16) -> Option<SubnetHyperparamsV2>;
        /// First block of the next epoch.
        fn get_next_epoch_start_block(netuid: u16) -> Option<u64>;
        /// The whole metagraph of a subnet in one call (what the SDK's metagraph read uses).
        fn get_metagraph(netuid: u16) -> Option<Metagraph<AccountId>>;
    }

    /// Subtensor's `StakeInfoRuntimeApi` (the call the SDK's stake read uses).
    pub trait StakeInfoRuntimeApi {
        /// The stake of `coldkey_account` on `hotkey_account` on `netuid`.
        fn get_stake_info_for_hotkey_coldkey_netuid(
            hotkey_account: AccountId,
            coldkey_account: AccountId,
            netuid: u16,
        ) -> Option<StakeInfo<AccountId>>;
    }

    /// Subtensor's `SwapRuntimeApi` (the call the SDK's slippage-protected staking uses).
    pub trait SwapRuntimeApi {
        /// Rao of TAO per alpha of `netuid` at the current pool price.
        fn current_alpha_price(netuid: u16) -> u64;
    }
}

impl_runtime_apis! {
    impl polkadot_sdk::sp_api::Core<Block> for Runtime {
        fn version() -> RuntimeVersion {
            VERSION
        }

        fn execute_block(block: <Block as BlockT>::LazyBlock) {
            Executive::execute_block(block);
        }

        fn initialize_block(header: &<Block as BlockT>::Header) -> sp_runtime::ExtrinsicInclusionMode {
            Executive::initialize_block(header)
        }
    }

    impl polkadot_sdk::sp_api::Metadata<Block> for Runtime {
        fn metadata() -> OpaqueMetadata {
            OpaqueMetadata::new(subtensor_type_paths(Self::metadata().into()))
        }

        fn metadata_at_version(version: u32) -> Option<OpaqueMetadata> {
            Self::metadata_at_version(version).map(|m| OpaqueMetadata::new(subtensor_type_paths(m.to_vec())))
        }

        fn metadata_versions() -> Vec<u32> {
            Self::metadata_versions()
        }
    }

    impl sp_block_builder::BlockBuilder<Block> for Runtime {
        fn apply_extrinsic(extrinsic: <Block as BlockT>::Extrinsic) -> ApplyExtrinsicResult {
            Executive::apply_extrinsic(extrinsic)
        }

        fn finalize_block() -> <Block as BlockT>::Header {
            Executive::finalize_block()
        }

        fn inherent_extrinsics(data: sp_inherents::InherentData) -> Vec<<Block as BlockT>::Extrinsic> {
            data.create_extrinsics()
        }

        fn check_inherents(
            block: <Block as BlockT>::LazyBlock,
            data: sp_inherents::InherentData,
        ) -> sp_inherents::CheckInherentsResult {
            data.check_extrinsics(&block)
        }
    }

    impl sp_transaction_pool::runtime_api::TaggedTransactionQueue<Block> for Runtime {
        fn validate_transaction(
            source: TransactionSource,
            tx: <Block as BlockT>::Extrinsic,
            block_hash: <Block as BlockT>::Hash,
        ) -> TransactionValidity {
            Executive::validate_transaction(source, tx, block_hash)
        }
    }

    impl polkadot_sdk::frame_system_rpc_runtime_api::AccountNonceApi<Block, AccountId, Nonce> for Runtime {
        fn account_nonce(account: AccountId) -> Nonce {
            System::account_nonce(account)
        }
    }

    impl polkadot_sdk::pallet_transaction_payment_rpc_runtime_api::TransactionPaymentApi<Block, Balance> for Runtime {
        fn query_info(
            uxt: <Block as BlockT>::Extrinsic,
            len: u32,
        ) -> pallet_transaction_payment::RuntimeDispatchInfo<Balance> {
            TransactionPayment::query_info(uxt, len)
        }

        fn query_fee_details(
            uxt: <Block as BlockT>::Extrinsic,
            len: u32,
        ) -> pallet_transaction_payment::FeeDetails<Balance> {
            TransactionPayment::query_fee_details(uxt, len)
        }

        fn query_weight_to_fee(weight: Weight) -> Balance {
            TransactionPayment::weight_to_fee(weight)
        }

        fn query_length_to_fee(length: u32) -> Balance {
            TransactionPayment::length_to_fee(length)
        }
    }

    impl self::NeuronInfoRuntimeApi<Block> for Runtime {
        fn get_neurons_lite(netuid: u16) -> Vec<NeuronInfoLite<AccountId>> {
            SubtensorModule::get_neurons_lite(netuid)
        }

        fn get_neuron_lite(netuid: u16, uid: u16) -> Option<NeuronInfoLite<AccountId>> {
            SubtensorModule::get_neuron_lite(netuid, uid)
        }
    }

    impl self::SubnetInfoRuntimeApi<Block> for Runtime {
        fn get_subnet_hyperparams_v2(netuid: u16) -> Option<SubnetHyperparamsV2> {
            SubtensorModule::get_subnet_hyperparams_v2(netuid)
        }

        fn get_next_epoch_start_block(netuid: u16) -> Option<u64> {
            SubtensorModule::get_next_epoch_start_block(netuid)
        }

        fn get_metagraph(netuid: u16) -> Option<Metagraph<AccountId>> {
            SubtensorModule::get_metagraph(netuid)
        }
    }

    impl self::StakeInfoRuntimeApi<Block> for Runtime {
        fn get_stake_info_for_hotkey_coldkey_netuid(
            hotkey_account: AccountId,
            coldkey_account: AccountId,
            netuid: u16,
        ) -> Option<StakeInfo<AccountId>> {
            SubtensorModule::get_stake_info_for_hotkey_coldkey_netuid(hotkey_account, coldkey_account, netuid)
        }
    }

    impl self::SwapRuntimeApi<Block> for Runtime {
        fn current_alpha_price(netuid: u16) -> u64 {
            SubtensorModule::current_alpha_price(netuid)
        }
    }
}

/// Dispatch a runtime API call by its `Trait_method` name, with SCALE-encoded arguments, as
/// `state_call` does. `None` when the method does not exist.
pub fn dispatch_runtime_api(method: &str, data: &[u8]) -> Option<Vec<u8>> {
    api::dispatch(method, data)
}

/// Where a type path of the devnet's own modules reads as subtensor's: `construct_runtime`'s
/// outer types (`RuntimeEvent`, `RuntimeCall`, …) live in `node_subtensor_runtime`, and the pallets'
/// types in their crates (`pallet_subtensor::pallet::Call`, …). Clients key on these paths (e.g.
/// `*::RuntimeEvent` to decode `System.Events`).
const SUBTENSOR_PATHS: [(&[&str], &str); 7] = [
    (&["devnet", "runtime"], "node_subtensor_runtime"),
    (&["devnet", "subtensor"], "pallet_subtensor"),
    (&["devnet", "admin"], "pallet_admin_utils"),
    (&["devnet", "drand"], "pallet_drand"),
    (&["devnet", "commitments"], "pallet_commitments"),
    (&["devnet", "aura"], "pallet_aura"),
    (&["devnet"], "node_subtensor_runtime"),
];

/// Rewrite the type paths of SCALE-encoded, magic-prefixed metadata (V14–V16) as subtensor's
/// ([`SUBTENSOR_PATHS`]). Bytes that do not decode as metadata are returned unchanged.
pub fn subtensor_type_paths(bytes: Vec<u8>) -> Vec<u8> {
    use subxt::ext::frame_metadata::{RuntimeMetadata, RuntimeMetadataPrefixed};
    let Ok(mut prefixed) = RuntimeMetadataPrefixed::decode(&mut &bytes[..]) else {
        return bytes;
    };
    let types = match &mut prefixed.1 {
        RuntimeMetadata::V14(m) => &mut m.types,
        RuntimeMetadata::V15(m) => &mut m.types,
        RuntimeMetadata::V16(m) => &mut m.types,
        _ => return bytes,
    };
    for ty in types.types.iter_mut() {
        let segments = &mut ty.ty.path.segments;
        if let Some((prefix, crate_name)) = SUBTENSOR_PATHS.iter().find(|(prefix, _)| {
            segments.len() > prefix.len() && segments.iter().zip(prefix.iter()).all(|(a, b)| a == b)
        }) {
            segments.splice(..prefix.len(), [(*crate_name).into()]);
        }
    }
    prefixed.encode()
}
