//! Every call, storage entry and runtime API the client uses, checked against finney's real metadata.
//!
//! The metadata is read from `shared/reference/subtensor-finney-metadata.scale` (next to the
//! workspace) at test time; it is never copied into the project.

use chain::calls::{AxonSpec, Call};
use chain::compat;
use chain::keys::Keypair;
use chain::metagraph::decode_neurons_lite;
use parity_scale_codec::{Compact, Encode};
use subxt::config::DefaultExtrinsicParamsBuilder;
use subxt::config::substrate::{SpecVersionForRange, SubstrateConfig};
use subxt::{Metadata, OfflineClient};

#[path = "support/neuron_ref.rs"]
mod neuron_ref;
#[path = "support/finney.rs"]
mod support;
use neuron_ref::RefNeuronInfoLite;
use support::finney;

fn calls() -> Vec<Call> {
    let bob = Keypair::from_uri("//Bob").unwrap().account();
    vec![
        Call::SetWeights {
            netuid: 1,
            uids: vec![0, 1],
            values: vec![65535, 10],
            version_key: 7,
        },
        Call::CommitWeights {
            netuid: 1,
            hash: [0xab; 32],
        },
        Call::RevealWeights {
            netuid: 1,
            uids: vec![0, 1],
            values: vec![10, 10],
            salt: (1..=8).collect(),
            version_key: 0,
        },
        Call::CommitTimelockedWeights {
            netuid: 1,
            commit: vec![0xcd; 300],
            reveal_round: 1_000,
            commit_reveal_version: 4,
        },
        Call::SetMechanismWeights {
            netuid: 1,
            mecid: 1,
            uids: vec![0, 1],
            values: vec![65535, 10],
            version_key: 7,
        },
        Call::CommitTimelockedMechanismWeights {
            netuid: 1,
            mecid: 2,
            commit: vec![0xcd; 300],
            reveal_round: 1_000,
            commit_reveal_version: 4,
        },
        Call::ServeAxon {
            netuid: 1,
            axon: AxonSpec {
                ip: "1.2.3.4".parse().unwrap(),
                port: 8091,
                version: 100,
            },
        },
        Call::BurnedRegister {
            netuid: 1,
            hotkey: bob,
        },
    ]
}

#[test]
fn every_required_item_exists_with_the_expected_shape() {
    let report = compat::check(&finney());
    assert!(
        report.missing.is_empty(),
        "missing on finney: {:?}",
        report.missing
    );
    assert!(
        report.degraded.is_empty(),
        "degraded on finney: {:?}",
        report.degraded
    );
    assert!(report.has_neurons_api);
}

#[test]
fn a_report_with_missing_items_is_one_clear_error() {
    let md = finney();
    let mut report = compat::check(&md);
    report
        .missing
        .push("storage SubtensorModule::Nope missing".into());
    let err = report.into_result().unwrap_err();
    assert!(
        err.contains("Nope") && err.contains("update tensorproof"),
        "{err}"
    );
}

fn offline(md: Metadata) -> OfflineClient<SubstrateConfig> {
    let config = SubstrateConfig::builder()
        .set_genesis_hash(subxt::utils::H256([0x42; 32]))
        .set_spec_version_for_block_ranges([SpecVersionForRange {
            block_range: 0..u64::MAX,
            spec_version: 425,
            transaction_version: 1,
        }])
        .set_metadata_for_spec_versions([(425, md.arc())])
        .build();
    OfflineClient::new_with_config(config)
}

#[test]
fn every_call_encodes_against_finney_with_the_right_indices_and_bytes() {
    let client = offline(finney());
    let at = client.at_block(0u64).unwrap();
    let expected_index = [0u8, 96, 97, 113, 119, 118, 4, 7];
    for (call, idx) in calls().iter().zip(expected_index) {
        let data = at
            .transactions()
            .call_data(&call.payload())
            .unwrap_or_else(|e| panic!("{}: {e}", call.name()));
        assert_eq!((data[0], data[1]), (7, idx), "{} pallet/call index", call.name());
        // And it decodes back against the same metadata with nothing left over.
        at.transactions().from_call_data_bytes(&data).unwrap();
    }
    // Pin the full bytes of set_weights and serve_axon.
    let set = at.transactions().call_data(&calls()[0].payload()).unwrap();
    let mut want = vec![7u8, 0];
    (1u16, vec![0u16, 1], vec![65535u16, 10], 7u64).encode_to(&mut want);
    assert_eq!(set, want);
    let serve = at.transactions().call_data(&calls()[6].payload()).unwrap();
    let mut want = vec![7u8, 4];
    (1u16, 100u32, 0x0102_0304u128, 8091u16, 4u8, 4u8, 0u8, 0u8).encode_to(&mut want);
    assert_eq!(serve, want);
    // commit_timelocked_weights: the BoundedVec is a length-prefixed byte vector.
    let commit = at.transactions().call_data(&calls()[3].payload()).unwrap();
    let mut want = vec![7u8, 113];
    (1u16, vec![0xcdu8; 300], 1_000u64, 4u16).encode_to(&mut want);
    assert_eq!(commit, want);
    // The SDK 11.3's mechanism calls: MechId is one byte after the netuid.
    let set = at.transactions().call_data(&calls()[4].payload()).unwrap();
    let mut want = vec![7u8, 119];
    (1u16, 1u8, vec![0u16, 1], vec![65535u16, 10], 7u64).encode_to(&mut want);
    assert_eq!(set, want);
    let commit = at.transactions().call_data(&calls()[5].payload()).unwrap();
    let mut want = vec![7u8, 118];
    (1u16, 2u8, vec![0xcdu8; 300], 1_000u64, 4u16).encode_to(&mut want);
    assert_eq!(commit, want);
}

#[test]
fn finney_has_the_mechanism_calls_and_a_12_second_slot() {
    let md = finney();
    assert!(compat::has_mechanism_calls(&md));
    assert_eq!(compat::slot_duration_ms(&md), Some(12_000));
    for storage in [
        "MechanismCountCurrent",
        "MechanismEmissionSplit",
        "BlocksSinceLastStep",
    ] {
        assert!(
            md.pallet_by_name("SubtensorModule")
                .and_then(|p| p.storage())
                .and_then(|s| s.entry_by_name(storage))
                .is_some(),
            "{storage}"
        );
    }
}

#[test]
fn transaction_extensions_match_finney_and_sign() {
    let md = finney();
    let names: Vec<String> = md
        .extrinsic()
        .transaction_extensions_to_use_for_encoding()
        .map(|e| e.identifier().to_owned())
        .collect();
    assert_eq!(
        names,
        [
            "CheckNonZeroSender",
            "CheckSpecVersion",
            "CheckTxVersion",
            "CheckGenesis",
            "CheckMortality",
            "CheckNonce",
            "CheckWeight",
            "ChargeTransactionPayment",
            "SudoTransactionExtension",
            "CheckShieldedTxValidity",
            "SubtensorTransactionExtension",
            "DrandPriority",
            "CheckMetadataHash",
        ]
    );
    let client = offline(md);
    let at = client.at_block(0u64).unwrap();
    let alice = Keypair::from_uri("//Alice").unwrap();
    let txs = at.transactions();
    for call in calls() {
        let params = DefaultExtrinsicParamsBuilder::<SubstrateConfig>::new()
            .nonce(3)
            .build();
        let payload = call.payload();
        let mut signable = txs.create_signable_offline(&payload, params).unwrap();
        let tx = signable
            .sign(&alice)
            .unwrap_or_else(|e| panic!("{}: {e}", call.name()));
        let bytes = tx.encoded();
        // A v4 signed extrinsic: compact length, then 0x84, then the MultiAddress::Id of the signer.
        let mut cursor = bytes;
        let len = <Compact<u32> as parity_scale_codec::Decode>::decode(&mut cursor)
            .unwrap()
            .0;
        assert_eq!(len as usize, cursor.len());
        assert_eq!(cursor[0], 0x84, "{}", call.name());
        assert_eq!(&cursor[2..34], &alice.account().0);
    }
}

#[test]
fn neurons_lite_decodes_with_finney_types() {
    let alice = Keypair::from_uri("//Alice").unwrap().account();
    let bob = Keypair::from_uri("//Bob").unwrap().account();
    let n = |uid: u16, hot: [u8; 32], port: u16| RefNeuronInfoLite {
        hotkey: hot,
        coldkey: bob.0,
        uid: Compact(uid),
        netuid: Compact(3),
        active: true,
        axon: (10, 100, 0x0102_0304, port, 4, 4, 0, 0),
        prometheus: (0, 0, 0, 0, 0),
        stake: vec![(bob.0, Compact(5_000_000_000))],
        rank: Compact(0),
        emission: Compact(123_456),
        incentive: Compact(1000),
        consensus: Compact(2000),
        trust: Compact(0),
        validator_trust: Compact(3000),
        dividends: Compact(4000),
        last_update: Compact(99_999),
        validator_permit: uid == 1,
        pruning_score: Compact(u16::MAX),
    };
    let bytes = vec![n(1, alice.0, 8091), n(0, bob.0, 0)].encode();
    let neurons = decode_neurons_lite(&bytes, &finney()).unwrap();
    assert_eq!(neurons.len(), 2);
    let (n0, n1) = (&neurons[0], &neurons[1]);
    assert_eq!((n0.uid, n0.hotkey, n0.axon), (0, bob, None));
    assert_eq!((n1.uid, n1.hotkey, n1.coldkey), (1, alice, bob));
    let axon = n1.axon.unwrap();
    assert_eq!(
        (axon.ip.to_string(), axon.port, axon.version, axon.block),
        ("1.2.3.4".into(), 8091, 100, 10)
    );
    assert_eq!(
        (
            n1.stake,
            n1.emission,
            n1.incentive,
            n1.consensus,
            n1.validator_trust,
            n1.dividends,
            n1.last_update
        ),
        (5_000_000_000, 123_456, 1000, 2000, 3000, 4000, 99_999)
    );
    assert!(n1.validator_permit && !n0.validator_permit && n1.active);
    // Truncated bytes are an error, not a panic.
    assert!(decode_neurons_lite(&bytes[..bytes.len() - 3], &finney()).is_err());
}

/// The owner's mechanism set-up (`AdminUtils::sudo_set_max_allowed_uids` 15 and
/// `sudo_set_mechanism_count` 76, under `Sudo::sudo`) encodes against finney.
#[test]
fn mechanism_setup_calls_encode_against_finney() {
    use chain::calls::{Hyperparameter, SetupCall};
    let client = offline(finney());
    let at = client.at_block(0u64).unwrap();
    for (param, index, value) in [
        (Hyperparameter::MaxAllowedUids(128), 15u8, 128u16.encode()),
        (Hyperparameter::MechanismCount(2), 76, 2u8.encode()),
    ] {
        let call = Call::Setup(SetupCall::SudoSet { netuid: 1, param });
        let data = at.transactions().call_data(&call.payload()).unwrap();
        let mut want = vec![12u8, 0, 19, index];
        want.extend(1u16.encode());
        want.extend(value);
        assert_eq!(data, want, "{param:?}");
    }
}

/// The keys of the per-mechanism storage the client reads, computed from finney's metadata: a
/// mechanism's `Incentive` and `LastUpdate` live at `netuid + mecid * 4096` (Identity-hashed u16),
/// `MechanismCountCurrent` and `MechanismEmissionSplit` at the netuid (Twox64Concat).
#[test]
fn mechanism_storage_keys_match_finney() {
    use sp_crypto_hashing::{twox_64, twox_128};
    let client = offline(finney());
    let at = client.at_block(0u64).unwrap();
    let prefix = |entry: &str| [twox_128(b"SubtensorModule"), twox_128(entry.as_bytes())].concat();
    let index = chain::weights::storage_index(1, 1);
    assert_eq!(index, 4097);
    for entry in ["Incentive", "LastUpdate"] {
        let e = at
            .storage()
            .entry(subxt::dynamic::storage::<(u16,), subxt::dynamic::Value>(
                "SubtensorModule",
                entry,
            ))
            .unwrap();
        let mut want = prefix(entry);
        want.extend(index.encode());
        assert_eq!(e.fetch_key((index,)).unwrap(), want, "{entry}");
    }
    for entry in ["MechanismCountCurrent", "MechanismEmissionSplit"] {
        let e = at
            .storage()
            .entry(subxt::dynamic::storage::<(u16,), subxt::dynamic::Value>(
                "SubtensorModule",
                entry,
            ))
            .unwrap();
        let mut want = prefix(entry);
        want.extend(twox_64(&1u16.encode()));
        want.extend(1u16.encode());
        assert_eq!(e.fetch_key((1u16,)).unwrap(), want, "{entry}");
    }
    // The client reads both with these value types (`compat::STORAGE`).
    let report = compat::check(&finney());
    for entry in [
        "MechanismCountCurrent",
        "MechanismEmissionSplit",
        "Incentive",
        "LastUpdate",
    ] {
        assert!(compat::STORAGE.iter().any(|i| i.name == entry), "{entry}");
        assert!(!report.degraded.iter().any(|d| d.contains(entry)), "{entry}");
    }
}
