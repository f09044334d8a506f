//! Mechanisms on the devnet runtime, dispatched through the pallets' calls: the owner's
//! `sudo_set_mechanism_count` and `sudo_set_mechanism_emission_split` with subtensor's checks,
//! per-mechanism weights (`set_mechanism_weights`, CR-v2 `commit_mechanism_weights` /
//! `reveal_mechanism_weights`) stored under `netuid + mecid * 4096`, and the epoch paying each
//! mechanism's miners out of its share of the emission.

use devnet::node::{GenesisParams, genesis_storage};
use devnet::runtime::{AccountId, Runtime, RuntimeCall, RuntimeOrigin};
use devnet::subtensor::mechanism::{mechanism_weight, weighted_acc_u64};
use devnet::{admin, subtensor};
use polkadot_sdk::frame_system;
use polkadot_sdk::sp_io::TestExternalities;
use polkadot_sdk::sp_keyring::Sr25519Keyring;
use polkadot_sdk::sp_runtime::DispatchError;
use polkadot_sdk::sp_runtime::traits::Dispatchable;

const NETUID: u16 = 1;
/// Mechanism 1's storage index.
const MEC1: u16 = NETUID + 4096;
/// 1/4 to mechanism 0, 3/4 to mechanism 1.
const SPLIT: [u16; 2] = [16_384, 49_151];

fn owner() -> AccountId {
    Sr25519Keyring::Alice.to_account_id()
}

fn hotkey(i: u8) -> AccountId {
    AccountId::from([i + 100; 32])
}

fn try_dispatch(call: RuntimeCall, origin: RuntimeOrigin) -> Result<(), DispatchError> {
    call.dispatch(origin).map(|_| ()).map_err(|e| e.error)
}

fn dispatch(call: RuntimeCall, origin: RuntimeOrigin) {
    let res = try_dispatch(call.clone(), origin);
    assert!(res.is_ok(), "{call:?} failed: {res:?}");
}

fn module_error(name: &str) -> impl Fn(&DispatchError) -> bool + '_ {
    move |e| matches!(e, DispatchError::Module(m) if m.message == Some(name))
}

fn as_owner(call: admin::Call<Runtime>) -> Result<(), DispatchError> {
    try_dispatch(RuntimeCall::AdminUtils(call), RuntimeOrigin::signed(owner()))
}

fn set_mechanism_weights(who: AccountId, mecid: u8, dests: &[u16]) -> Result<(), DispatchError> {
    try_dispatch(
        RuntimeCall::SubtensorModule(subtensor::Call::set_mechanism_weights {
            netuid: NETUID,
            mecid,
            dests: dests.to_vec(),
            weights: vec![u16::MAX; dests.len()],
            version_key: 0,
        }),
        RuntimeOrigin::signed(who),
    )
}

fn next_block() {
    let n = frame_system::Pallet::<Runtime>::block_number();
    frame_system::Pallet::<Runtime>::set_block_number(n + 1);
}

/// A subnet with the owner at uid 0, a staked validator at uid 1 and miners at uids 2 and 3, its
/// permits issued by a first epoch; commit-reveal as given.
fn subnet(commit_reveal: bool) -> TestExternalities {
    let storage = genesis_storage(&GenesisParams {
        tempo: 10,
        dev_subnet: true,
        dev_subnet_commit_reveal: commit_reveal,
    })
    .expect("genesis");
    let mut ext = TestExternalities::new(storage);
    ext.execute_with(|| {
        frame_system::Pallet::<Runtime>::set_block_number(1);
        for call in [
            admin::Call::sudo_set_min_allowed_weights {
                netuid: NETUID,
                min_allowed_weights: 1,
            },
            admin::Call::sudo_set_weights_set_rate_limit {
                netuid: NETUID,
                weights_set_rate_limit: 0,
            },
        ] {
            as_owner(call).expect("owner sets it");
        }
        let coldkey = Sr25519Keyring::Bob.to_account_id();
        for i in 0..3 {
            dispatch(
                RuntimeCall::SubtensorModule(subtensor::Call::burned_register {
                    netuid: NETUID,
                    hotkey: hotkey(i),
                }),
                RuntimeOrigin::signed(coldkey.clone()),
            );
        }
        dispatch(
            RuntimeCall::SubtensorModule(subtensor::Call::add_stake {
                hotkey: hotkey(0),
                netuid: NETUID,
                amount_staked: 1_000_000_000,
            }),
            RuntimeOrigin::signed(coldkey),
        );
        subtensor::Pallet::<Runtime>::epoch(NETUID, 0);
        assert!(
            subtensor::ValidatorPermit::<Runtime>::get(NETUID)[1],
            "the staked validator holds a permit"
        );
        next_block();
    });
    ext
}

/// The owner splits the subnet in two (after making room: 128 uids × 2 mechanisms ≤ 256).
fn split_in_two() {
    let too_many = as_owner(admin::Call::sudo_set_mechanism_count {
        netuid: NETUID,
        mechanism_count: 2,
    })
    .unwrap_err();
    assert!(module_error("TooManyUIDsPerMechanism")(&too_many), "{too_many:?}");
    dispatch(
        RuntimeCall::AdminUtils(admin::Call::sudo_set_max_allowed_uids {
            netuid: NETUID,
            max_allowed_uids: 128,
        }),
        RuntimeOrigin::root(),
    );
    as_owner(admin::Call::sudo_set_mechanism_count {
        netuid: NETUID,
        mechanism_count: 2,
    })
    .expect("two mechanisms");
    as_owner(admin::Call::sudo_set_mechanism_emission_split {
        netuid: NETUID,
        maybe_split: Some(SPLIT.to_vec()),
    })
    .expect("split");
}

#[test]
fn the_owner_sets_the_count_and_split_with_subtensors_checks() {
    subnet(false).execute_with(|| {
        assert_eq!(subtensor::MechanismCountCurrent::<Runtime>::get(NETUID), 1);
        assert_eq!(subtensor::MaxMechanismCount::<Runtime>::get(), 2);
        split_in_two();
        assert_eq!(subtensor::MechanismCountCurrent::<Runtime>::get(NETUID), 2);
        assert_eq!(
            subtensor::MechanismEmissionSplit::<Runtime>::get(NETUID),
            Some(SPLIT.to_vec())
        );
        let invalid = module_error("InvalidValue");
        // Beyond MaxMechanismCount (2), zero, a split that does not sum to 65535, one longer than
        // the count, an empty one.
        for call in [
            admin::Call::sudo_set_mechanism_count {
                netuid: NETUID,
                mechanism_count: 3,
            },
            admin::Call::sudo_set_mechanism_count {
                netuid: NETUID,
                mechanism_count: 0,
            },
            admin::Call::sudo_set_mechanism_emission_split {
                netuid: NETUID,
                maybe_split: Some(vec![1, 1]),
            },
            admin::Call::sudo_set_mechanism_emission_split {
                netuid: NETUID,
                maybe_split: Some(vec![65_533, 1, 1]),
            },
            admin::Call::sudo_set_mechanism_emission_split {
                netuid: NETUID,
                maybe_split: Some(vec![]),
            },
        ] {
            let e = as_owner(call.clone()).unwrap_err();
            assert!(invalid(&e), "{call:?}: {e:?}");
        }
        // Only the owner or root: another coldkey is refused.
        let other = try_dispatch(
            RuntimeCall::AdminUtils(admin::Call::sudo_set_mechanism_count {
                netuid: NETUID,
                mechanism_count: 1,
            }),
            RuntimeOrigin::signed(Sr25519Keyring::Bob.to_account_id()),
        );
        assert_eq!(other, Err(DispatchError::BadOrigin));
        // Raising MaxAllowedUids past 256 / count is refused while there are two mechanisms.
        let e = try_dispatch(
            RuntimeCall::AdminUtils(admin::Call::sudo_set_max_allowed_uids {
                netuid: NETUID,
                max_allowed_uids: 129,
            }),
            RuntimeOrigin::root(),
        )
        .unwrap_err();
        assert!(module_error("TooManyUIDsPerMechanism")(&e), "{e:?}");

        // Weights on mechanism 1 live under its own index.
        set_mechanism_weights(hotkey(0), 1, &[3]).expect("mechanism 1 weights");
        assert_eq!(subtensor::Weights::<Runtime>::get(MEC1, 1), vec![(3, 65535)]);
        assert!(subtensor::Weights::<Runtime>::get(NETUID, 1).is_empty());
        // Back to one mechanism: mechanism 1's state is cleared and the split reset.
        as_owner(admin::Call::sudo_set_mechanism_count {
            netuid: NETUID,
            mechanism_count: 1,
        })
        .expect("one mechanism");
        assert!(subtensor::Weights::<Runtime>::get(MEC1, 1).is_empty());
        assert!(subtensor::LastUpdate::<Runtime>::get(MEC1).is_empty());
        assert_eq!(subtensor::MechanismEmissionSplit::<Runtime>::get(NETUID), None);
        // And mechanism 1 is refused again.
        let e = set_mechanism_weights(hotkey(0), 1, &[3]).unwrap_err();
        assert!(module_error("MechanismDoesNotExist")(&e), "{e:?}");
    });
}

#[test]
fn a_mechanism_beyond_the_count_is_refused() {
    subnet(false).execute_with(|| {
        split_in_two();
        let e = set_mechanism_weights(hotkey(0), 2, &[2]).unwrap_err();
        assert!(module_error("MechanismDoesNotExist")(&e), "{e:?}");
        // The pool refuses it too, as subtensor's rate-limit guard does for an unknown mechanism.
        let call = subtensor::Call::<Runtime>::set_mechanism_weights {
            netuid: NETUID,
            mecid: 2,
            dests: vec![2],
            weights: vec![1],
            version_key: 0,
        };
        assert!(subtensor::check_weights_for_pool::<Runtime>(&hotkey(0), &call).is_err());
        let ok = subtensor::Call::<Runtime>::set_mechanism_weights {
            netuid: NETUID,
            mecid: 1,
            dests: vec![2],
            weights: vec![1],
            version_key: 0,
        };
        assert_eq!(
            subtensor::check_weights_for_pool::<Runtime>(&hotkey(0), &ok),
            Ok(())
        );
    });
}

#[test]
fn each_mechanism_pays_its_miners_its_share_of_the_emission() {
    subnet(false).execute_with(|| {
        split_in_two();
        // The validator weights miner uid 2 on mechanism 0 and miner uid 3 on mechanism 1.
        set_mechanism_weights(hotkey(0), 0, &[2]).expect("mechanism 0");
        set_mechanism_weights(hotkey(0), 1, &[3]).expect("mechanism 1");
        let now = frame_system::Pallet::<Runtime>::block_number();
        assert_eq!(subtensor::LastUpdate::<Runtime>::get(NETUID)[1], u64::from(now));
        assert_eq!(subtensor::LastUpdate::<Runtime>::get(MEC1)[1], u64::from(now));
        next_block();

        let emission = 1_000_000_000;
        let paid = subtensor::Pallet::<Runtime>::epoch(NETUID, emission);
        // Incentive per mechanism.
        assert_eq!(subtensor::Incentive::<Runtime>::get(NETUID), vec![0, 0, 65535, 0]);
        assert_eq!(subtensor::Incentive::<Runtime>::get(MEC1), vec![0, 0, 0, 65535]);
        // The split: 250_003_815 and 749_996_185 rao; each mechanism's only miner gets half
        // (incentive and dividends weigh equally), the validator the other halves (up to the
        // fixed-point rounding of each mechanism's Yuma).
        let shares = chain::mechanism::split_emission(emission, 2, Some(&SPLIT));
        assert_eq!(shares, [250_003_815, 749_996_185]);
        assert!(paid[2].abs_diff(shares[0] / 2) <= 2, "{paid:?}");
        assert!(paid[3].abs_diff(shares[1] / 2) <= 2, "{paid:?}");
        assert_eq!(paid[0], 0, "the unstaked owner earns nothing");
        assert!(paid[1].abs_diff(emission / 2) <= 4, "{paid:?}");
        assert!(paid.iter().sum::<u64>().abs_diff(emission) <= 4, "{paid:?}");
        // The per-subnet terms are the mechanisms' weighted by their emission share, as subtensor
        // aggregates them: the validator's dividends sum to (almost) 1 and a miner's Emission is
        // its mechanism's emission scaled by that mechanism's share.
        let (w0, w1) = (
            mechanism_weight(0, shares[0], emission),
            mechanism_weight(1, shares[1], emission),
        );
        let stored = subtensor::Emission::<Runtime>::get(NETUID);
        assert_eq!(stored[2], weighted_acc_u64(0, paid[2], w0));
        assert_eq!(stored[3], weighted_acc_u64(0, paid[3], w1));
        assert!(subtensor::Dividends::<Runtime>::get(NETUID)[1] >= 65_534);
        assert!(subtensor::Active::<Runtime>::get(NETUID).iter().all(|a| *a));
    });
}

#[test]
fn hash_commits_and_reveals_work_per_mechanism() {
    subnet(true).execute_with(|| {
        split_in_two();
        let salt: Vec<u16> = (1..=8).collect();
        let hash = subtensor::Pallet::<Runtime>::get_commit_hash(&hotkey(0), MEC1, &[3], &[65535], &salt, 0);
        dispatch(
            RuntimeCall::SubtensorModule(subtensor::Call::commit_mechanism_weights {
                netuid: NETUID,
                mecid: 1,
                commit_hash: hash,
            }),
            RuntimeOrigin::signed(hotkey(0)),
        );
        assert_eq!(
            subtensor::WeightCommits::<Runtime>::get(MEC1, hotkey(0)).map(|c| c.len()),
            Some(1)
        );
        assert_eq!(subtensor::WeightCommits::<Runtime>::get(NETUID, hotkey(0)), None);
        // set_mechanism_weights is refused while commit-reveal is on.
        let e = set_mechanism_weights(hotkey(0), 1, &[3]).unwrap_err();
        assert!(module_error("CommitRevealEnabled")(&e), "{e:?}");
        let reveal = || {
            try_dispatch(
                RuntimeCall::SubtensorModule(subtensor::Call::reveal_mechanism_weights {
                    netuid: NETUID,
                    mecid: 1,
                    uids: vec![3],
                    values: vec![65535],
                    salt: salt.clone(),
                    version_key: 0,
                }),
                RuntimeOrigin::signed(hotkey(0)),
            )
        };
        let early = reveal().unwrap_err();
        assert!(module_error("RevealTooEarly")(&early), "{early:?}");
        // Next epoch (RevealPeriodEpochs 1): the reveal lands under mechanism 1.
        subtensor::SubnetEpochIndex::<Runtime>::mutate(NETUID, |e| *e += 1);
        reveal().expect("revealed in the reveal epoch");
        assert_eq!(subtensor::Weights::<Runtime>::get(MEC1, 1), vec![(3, 65535)]);
        assert!(subtensor::Weights::<Runtime>::get(NETUID, 1).is_empty());
    });
}
