//! subtensor's `test_bonds` golden vectors (`pallets/subtensor/src/tests/epoch.rs`), replayed
//! through the devnet runtime: neurons register, stake and set weights by dispatching the
//! pallet's calls, and `SubtensorModule::epoch` runs Yuma from the `scoring` crate.
//!
//! The devnet's subnet, like subtensor's, holds the owner's hotkey at uid 0 (zero stake, no
//! weights), so the test's eight neurons sit at uids 1..=8; the owner takes no part in
//! consensus and earns nothing, and every other figure equals subtensor's.

use devnet::node::{GenesisParams, genesis_storage};
use devnet::runtime::{AccountId, Runtime, RuntimeCall, RuntimeOrigin};
use devnet::{admin, subtensor};
use polkadot_sdk::frame_system;
use polkadot_sdk::sp_io::TestExternalities;
use polkadot_sdk::sp_keyring::Sr25519Keyring;
use polkadot_sdk::sp_runtime::traits::Dispatchable;

const NETUID: u16 = 1;

fn hotkey(i: u16) -> AccountId {
    AccountId::from([i as u8 + 100; 32])
}

fn dispatch(call: RuntimeCall, origin: RuntimeOrigin) {
    let res = call.clone().dispatch(origin);
    assert!(res.is_ok(), "{call:?} failed: {res:?}");
}

fn admin(call: admin::Call<Runtime>) {
    dispatch(RuntimeCall::AdminUtils(call), RuntimeOrigin::root());
}

/// Set weights as hotkey of test uid `i` (chain uid `i + 1`) on test uids `dests`.
fn set_weights(i: u16, dests: &[u16], values: &[u16]) {
    dispatch(
        RuntimeCall::SubtensorModule(subtensor::Call::set_weights {
            netuid: NETUID,
            dests: dests.iter().map(|d| d + 1).collect(),
            weights: values.to_vec(),
            version_key: 0,
        }),
        RuntimeOrigin::signed(hotkey(i)),
    );
}

fn next_block() {
    let n = frame_system::Pallet::<Runtime>::block_number();
    frame_system::Pallet::<Runtime>::set_block_number(n + 1);
}

/// Run the epoch; return test uids' emission (uid 0, the owner, must earn nothing).
fn epoch() -> Vec<u64> {
    subtensor::Pallet::<Runtime>::epoch(NETUID, 1_000_000_000);
    let e = subtensor::Emission::<Runtime>::get(NETUID);
    assert_eq!(e[0], 0, "the owner uid earns nothing");
    e[1..].to_vec()
}

/// Bond of test uid `i` on test uid `j`.
fn bond(i: u16, j: u16) -> u16 {
    subtensor::Bonds::<Runtime>::get(NETUID, i + 1)
        .iter()
        .find(|(k, _)| *k == j + 1)
        .map_or(0, |(_, v)| *v)
}

fn bonds_on(j: u16) -> [u16; 4] {
    [bond(0, j), bond(1, j), bond(2, j), bond(3, j)]
}

#[test]
fn test_bonds_golden_vectors_through_the_devnet_epoch() {
    let storage = genesis_storage(&GenesisParams {
        tempo: 1,
        dev_subnet: true,
        dev_subnet_commit_reveal: false,
    })
    .expect("genesis");
    let mut ext = TestExternalities::new(storage);
    ext.execute_with(|| {
        frame_system::Pallet::<Runtime>::set_block_number(1);
        admin(admin::Call::sudo_set_max_allowed_validators {
            netuid: NETUID,
            max_allowed_validators: 8,
        });
        admin(admin::Call::sudo_set_min_allowed_weights {
            netuid: NETUID,
            min_allowed_weights: 1,
        });
        admin(admin::Call::sudo_set_weights_set_rate_limit {
            netuid: NETUID,
            weights_set_rate_limit: 0,
        });
        admin(admin::Call::sudo_set_bonds_penalty {
            netuid: NETUID,
            bonds_penalty: u16::MAX,
        });
        let coldkey = Sr25519Keyring::Bob.to_account_id();
        let stakes = [1u64, 2, 3, 4, 0, 0, 0, 0];
        for (i, stake) in stakes.iter().enumerate() {
            let hk = hotkey(i as u16);
            dispatch(
                RuntimeCall::SubtensorModule(subtensor::Call::burned_register {
                    netuid: NETUID,
                    hotkey: hk.clone(),
                }),
                RuntimeOrigin::signed(coldkey.clone()),
            );
            if *stake > 0 {
                dispatch(
                    RuntimeCall::SubtensorModule(subtensor::Call::add_stake {
                        hotkey: hk,
                        netuid: NETUID,
                        amount_staked: *stake,
                    }),
                    RuntimeOrigin::signed(coldkey.clone()),
                );
            }
        }
        assert_eq!(subtensor::SubnetworkN::<Runtime>::get(NETUID), 9);

        // Permits are issued by the first epoch.
        epoch();
        next_block();
        for i in 0..4 {
            set_weights(
                i,
                &[4, 5, 6, 7],
                &[u16::MAX / 4, u16::MAX / 2, (u16::MAX / 4) * 3, u16::MAX],
            );
        }
        assert_eq!(
            subtensor::Weights::<Runtime>::get(NETUID, 1),
            vec![(5, 16383), (6, 32767), (7, 49149), (8, 65535)],
            "stored max-upscaled as subtensor stores them"
        );
        let e = epoch();
        assert_eq!(bonds_on(4), [16383, 32767, 49151, 65535]);
        assert_eq!(
            e,
            [
                49999998, 99999999, 150000000, 200000001, 49998779, 100000610, 149996337, 200004272
            ]
        );

        set_weights(0, &[0], &[u16::MAX]);
        next_block();
        let e = epoch();
        assert_eq!(bonds_on(4), [14582, 32767, 49151, 65535]);
        assert_eq!(
            e,
            [
                44998351, 101110561, 151667215, 202223870, 49998779, 100000610, 149996337, 200004272
            ]
        );

        set_weights(1, &[1], &[u16::MAX]);
        next_block();
        let e = epoch();
        assert_eq!(bonds_on(4), [12603, 28321, 49151, 65535]);
        assert_eq!(
            e,
            [
                40496805, 90999783, 157929636, 210573773, 49998779, 100000610, 149996337, 200004272
            ]
        );

        set_weights(2, &[2], &[u16::MAX]);
        next_block();
        let e = epoch();
        assert_eq!(bonds_on(7), [12602, 28320, 49150, 65535]);
        assert_eq!(e, [99999999, 199999999, 299999999, 399999999, 0, 0, 0, 0]);

        set_weights(2, &[7], &[u16::MAX]);
        next_block();
        let e = epoch();
        assert_eq!(bonds_on(7), [10951, 24609, 49150, 65535]);
        assert_eq!(e, [36443733, 81898628, 163565493, 218092144, 0, 0, 0, 500000000]);

        next_block();
        let e = epoch();
        assert_eq!(bonds_on(7), [9559, 21482, 49150, 65535]);
        assert_eq!(e, [32799427, 73706612, 168638129, 224855830, 0, 0, 0, 500000000]);

        next_block();
        let e = epoch();
        assert_eq!(bonds_on(7), [8376, 18824, 49150, 65535]);
        assert_eq!(e, [29518068, 66336137, 173203134, 230942659, 0, 0, 0, 500000000]);

        next_block();
        let e = epoch();
        assert_eq!(e, [26565175, 59701871, 177311856, 236421095, 0, 0, 0, 500000000]);
    });
}
