//! Who may call the devnet's `AdminUtils` setters, as on subtensor: the subnet owner or root for the
//! owner hyperparameters, root alone for the root ones, and never on a subnet that does not exist.

use devnet::node::{GenesisParams, genesis_storage};
use devnet::runtime::{Runtime, RuntimeCall, RuntimeOrigin};
use devnet::{admin, subtensor};
use polkadot_sdk::sp_io::TestExternalities;
use polkadot_sdk::sp_keyring::Sr25519Keyring;
use polkadot_sdk::sp_runtime::DispatchError;
use polkadot_sdk::sp_runtime::traits::Dispatchable;

fn ext() -> TestExternalities {
    let storage = genesis_storage(&GenesisParams {
        tempo: 10,
        dev_subnet: true,
        dev_subnet_commit_reveal: false,
    })
    .expect("genesis");
    TestExternalities::new(storage)
}

fn call(call: admin::Call<Runtime>, origin: RuntimeOrigin) -> Result<(), DispatchError> {
    RuntimeCall::AdminUtils(call)
        .dispatch(origin)
        .map(|_| ())
        .map_err(|e| e.error)
}

fn owner() -> RuntimeOrigin {
    RuntimeOrigin::signed(Sr25519Keyring::Alice.to_account_id())
}

fn stranger() -> RuntimeOrigin {
    RuntimeOrigin::signed(Sr25519Keyring::Bob.to_account_id())
}

#[test]
fn owner_setters_take_the_owner_or_root_and_no_one_else() {
    ext().execute_with(|| {
        let kappa = |k| admin::Call::sudo_set_kappa { netuid: 1, kappa: k };
        assert_eq!(call(kappa(100), stranger()), Err(DispatchError::BadOrigin));
        assert_ne!(subtensor::Kappa::<Runtime>::get(1), 100);
        call(kappa(100), owner()).expect("the owner sets kappa");
        assert_eq!(subtensor::Kappa::<Runtime>::get(1), 100);
        call(kappa(200), RuntimeOrigin::root()).expect("root sets kappa");
        assert_eq!(subtensor::Kappa::<Runtime>::get(1), 200);
    });
}

#[test]
fn root_setters_refuse_the_owner() {
    ext().execute_with(|| {
        let tempo = |t| admin::Call::sudo_set_tempo { netuid: 1, tempo: t };
        assert_eq!(call(tempo(7), owner()), Err(DispatchError::BadOrigin));
        assert_ne!(subtensor::Tempo::<Runtime>::get(1), 7);
        call(tempo(7), RuntimeOrigin::root()).expect("root sets the tempo");
        assert_eq!(subtensor::Tempo::<Runtime>::get(1), 7);
    });
}

#[test]
fn setters_refuse_a_subnet_that_does_not_exist() {
    ext().execute_with(|| {
        let err = call(
            admin::Call::sudo_set_max_burn {
                netuid: 42,
                max_burn: 1,
            },
            RuntimeOrigin::root(),
        )
        .unwrap_err();
        assert_eq!(
            err,
            DispatchError::from(subtensor::Error::<Runtime>::SubnetNotExists)
        );
        assert_eq!(
            subtensor::MaxBurn::<Runtime>::get(42),
            subtensor::MaxBurn::<Runtime>::get(43)
        );
    });
}
