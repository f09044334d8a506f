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

/// Runs `on_initialize` of the next block, as the node does: timelocked reveals, then the epoch if
/// one is due.
fn next_block() -> u64 {
    use polkadot_sdk::frame_support::traits::Hooks;
    use polkadot_sdk::frame_system;
    let n = frame_system::Pallet::<Runtime>::block_number() + 1;
    frame_system::Pallet::<Runtime>::set_block_number(n);
    subtensor::Pallet::<Runtime>::on_initialize(n);
    u64::from(n)
}

fn trigger(origin: RuntimeOrigin) -> Result<(), DispatchError> {
    RuntimeCall::SubtensorModule(subtensor::Call::trigger_epoch { netuid: 1 })
        .dispatch(origin)
        .map(|_| ())
        .map_err(|e| e.error)
}

/// The owner's `trigger_epoch` (subtensor call 141): only the owner, `AdminFreezeWindow` blocks
/// ahead, one at a time, not when the scheduled epoch is nearer than the window; the epoch then
/// runs in exactly that block and the next one counts `Tempo` from it.
#[test]
fn the_owner_triggers_an_epoch_one_freeze_window_ahead() {
    ext().execute_with(|| {
        use subtensor::{AdminFreezeWindow, LastEpochBlock, PendingEpochAt, SubnetEpochIndex};
        assert_eq!(AdminFreezeWindow::<Runtime>::get(), 10, "subtensor's default");
        call(admin::Call::sudo_set_admin_freeze_window { window: 3 }, owner()).expect_err("root only");
        call(
            admin::Call::sudo_set_admin_freeze_window { window: 3 },
            RuntimeOrigin::root(),
        )
        .expect("root sets the window");
        call(
            admin::Call::sudo_set_tempo { netuid: 1, tempo: 20 },
            RuntimeOrigin::root(),
        )
        .unwrap();
        // Run to the first epoch so the schedule is in steady state.
        while SubnetEpochIndex::<Runtime>::get(1) == 0 {
            next_block();
        }
        let (start, index) = (
            LastEpochBlock::<Runtime>::get(1),
            SubnetEpochIndex::<Runtime>::get(1),
        );
        let now = next_block();
        assert_eq!(trigger(stranger()), Err(DispatchError::BadOrigin));
        assert_eq!(trigger(RuntimeOrigin::root()), Err(DispatchError::BadOrigin));
        trigger(owner()).expect("the owner triggers");
        assert_eq!(PendingEpochAt::<Runtime>::get(1), now + 3);
        assert_eq!(
            trigger(owner()),
            Err(subtensor::Error::<Runtime>::EpochTriggerAlreadyPending.into())
        );
        // The epoch runs in block now + 3, 17 blocks before the tempo would have run it.
        while next_block() < now + 2 {}
        assert_eq!(SubnetEpochIndex::<Runtime>::get(1), index);
        assert_eq!(next_block(), now + 3);
        assert_eq!(SubnetEpochIndex::<Runtime>::get(1), index + 1);
        assert_eq!(LastEpochBlock::<Runtime>::get(1), now + 3);
        assert!(now + 3 < start + 20);
        assert_eq!(PendingEpochAt::<Runtime>::get(1), 0, "the trigger is spent");
        // Two blocks before the next scheduled epoch (now + 23) the window no longer fits.
        while next_block() < now + 21 {}
        assert_eq!(
            trigger(owner()),
            Err(subtensor::Error::<Runtime>::AutoEpochAlreadyImminent.into())
        );
        assert_eq!(PendingEpochAt::<Runtime>::get(1), 0);
    });
}

/// A new tempo restarts the cycle at its block, as subtensor's `sudo_set_tempo` does.
#[test]
fn a_new_tempo_counts_from_the_block_it_is_set_in() {
    ext().execute_with(|| {
        use subtensor::{LastEpochBlock, SubnetEpochIndex};
        while SubnetEpochIndex::<Runtime>::get(1) == 0 {
            next_block();
        }
        for _ in 0..4 {
            next_block();
        }
        let now = next_block();
        call(
            admin::Call::sudo_set_tempo { netuid: 1, tempo: 7 },
            RuntimeOrigin::root(),
        )
        .unwrap();
        assert_eq!(LastEpochBlock::<Runtime>::get(1), now);
        let index = SubnetEpochIndex::<Runtime>::get(1);
        while next_block() < now + 6 {}
        assert_eq!(SubnetEpochIndex::<Runtime>::get(1), index);
        assert_eq!(next_block(), now + 7);
        assert_eq!(SubnetEpochIndex::<Runtime>::get(1), index + 1);
    });
}
