//! Build signed extrinsics for the devnet runtime in-process (benchmarks, fixtures), with the
//! same transaction extensions and implicit data a finney client signs.

use parity_scale_codec::Encode;
use polkadot_sdk::frame_metadata_hash_extension::CheckMetadataHash;
use polkadot_sdk::frame_system;
use polkadot_sdk::pallet_transaction_payment::ChargeTransactionPayment;
use polkadot_sdk::sp_core::{H256, Pair as _, sr25519};
use polkadot_sdk::sp_runtime::{MultiAddress, MultiSignature, generic};

use super::runtime::{
    CheckShieldedTxValidity, DrandPriority, Runtime, RuntimeCall, SubtensorTransactionExtension,
    SudoTransactionExtension, TxExtension, UncheckedExtrinsic, VERSION,
};

/// Sign `call` as `pair` with `nonce`, immortal, no tip, metadata-hash check off.
pub fn sign(call: RuntimeCall, pair: &sr25519::Pair, nonce: u32, genesis: H256) -> UncheckedExtrinsic {
    let tx_ext: TxExtension = (
        (
            frame_system::CheckNonZeroSender::<Runtime>::new(),
            frame_system::CheckSpecVersion::<Runtime>::new(),
            frame_system::CheckTxVersion::<Runtime>::new(),
            frame_system::CheckGenesis::<Runtime>::new(),
            frame_system::CheckMortality::<Runtime>::from(generic::Era::Immortal),
            frame_system::CheckNonce::<Runtime>::from(nonce),
            frame_system::CheckWeight::<Runtime>::new(),
            ChargeTransactionPayment::<Runtime>::from(0),
        ),
        (
            SudoTransactionExtension,
            CheckShieldedTxValidity,
            SubtensorTransactionExtension,
            DrandPriority,
        ),
        CheckMetadataHash::<Runtime>::new(false),
    );
    let implicit = (
        (
            (),
            VERSION.spec_version,
            VERSION.transaction_version,
            genesis,
            genesis,
            (),
            (),
            (),
        ),
        ((), (), (), ()),
        None::<[u8; 32]>,
    );
    let payload =
        generic::SignedPayload::<RuntimeCall, TxExtension>::from_raw(call.clone(), tx_ext.clone(), implicit);
    let signature = payload.using_encoded(|bytes| pair.sign(bytes));
    UncheckedExtrinsic::new_signed(
        call,
        MultiAddress::Id(pair.public().into()),
        MultiSignature::Sr25519(signature),
        tx_ext,
    )
}

/// A dev keypair from a derivation path such as `//Alice` or `//bench/7`.
pub fn dev_pair(uri: &str) -> sr25519::Pair {
    // Derivation paths on the well-known dev phrase never fail to parse.
    sr25519::Pair::from_string(uri, None).unwrap_or_else(|_| sr25519::Pair::from_seed(&[0; 32]))
}
