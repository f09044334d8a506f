//! A stock subxt 0.51 client against the embedded devnet: connect, read metadata, submit signed
//! extrinsics, watch them to finalization, read events, storage and runtime APIs, see incentive
//! move after an epoch, and commit/reveal weights.
//!
//! The devnet runs in instant-seal mode (a block as soon as a transaction arrives) with no block
//! timer, so the test decides exactly when epochs happen by producing empty blocks itself.

use devnet::runtime::{AccountId, Runtime};
use devnet::subtensor::{self, info::NeuronInfoLite};
use devnet::{Devnet, DevnetConfig};
use subxt::config::substrate::SubstrateConfig;
use subxt::dynamic;
use subxt::ext::codec::{Decode, Encode};
use subxt::ext::scale_encode::EncodeAsFields;
use subxt::tx::Payload;
use subxt::{OnlineClient, tx::TransactionStatus as TxStatus};
use subxt_signer::sr25519::{Keypair, dev};

type Api = OnlineClient<SubstrateConfig>;

async fn devnet() -> Devnet {
    Devnet::spawn(DevnetConfig {
        block_time: None,
        instant_seal: true,
        dev_subnet: true,
        tempo: 10,
        // The CR-v4 tests write drand quicknet's real round-1000 pulse themselves.
        dev_beacon: false,
        ..DevnetConfig::default()
    })
    .await
    .expect("devnet starts")
}

fn id(k: &Keypair) -> [u8; 32] {
    k.public_key().0
}

fn account(k: &Keypair) -> AccountId {
    AccountId::from(id(k))
}

/// Submit, watch to finalization, and return `(pallet, event)` names, or the error text.
async fn submit<C: Payload>(api: &Api, call: &C, signer: &Keypair) -> Result<Vec<(String, String)>, String> {
    let at = api.at_current_block().await.map_err(|e| e.to_string())?;
    let events = at
        .transactions()
        .sign_and_submit_then_watch_default(call, signer)
        .await
        .map_err(|e| e.to_string())?
        .wait_for_finalized_success()
        .await
        .map_err(|e| e.to_string())?;
    Ok(events
        .iter()
        .filter_map(Result::ok)
        .map(|e| (e.pallet_name().to_string(), e.event_name().to_string()))
        .collect())
}

/// Sign `call` and submit it with a raw `author_submitExtrinsic`; return the pool's JSON-RPC
/// error code and data (subxt's error text omits the data).
async fn pool_rejection<C: Payload>(devnet: &Devnet, api: &Api, call: &C, signer: &Keypair) -> (i32, String) {
    let at = api.at_current_block().await.expect("block");
    let mut txs = at.transactions();
    let signed = txs
        .create_signed(call, signer, Default::default())
        .await
        .expect("signed");
    let rpc = subxt::rpcs::RpcClient::from_insecure_url(devnet.ws_url())
        .await
        .expect("rpc");
    let hex = format!("0x{}", hex::encode(signed.encoded()));
    match rpc
        .request::<serde_json::Value>("author_submitExtrinsic", subxt::rpcs::rpc_params![hex])
        .await
    {
        Err(subxt::rpcs::Error::User(u)) => (u.code, u.data.map(|d| d.get().to_string()).unwrap_or_default()),
        other => panic!("expected a pool rejection, got {other:?}"),
    }
}

fn has(events: &[(String, String)], pallet: &str, event: &str) -> bool {
    events.iter().any(|(p, e)| p == pallet && e == event)
}

fn tx<A: EncodeAsFields>(pallet: &str, call: &str, args: A) -> impl Payload {
    dynamic::transaction(pallet.to_string(), call.to_string(), args)
}

/// The owner turns commit-reveal on and the weights rate limit off on the dev subnet.
async fn commit_reveal_without_rate_limit(api: &Api, owner: &Keypair) {
    let on = tx(
        "AdminUtils",
        "sudo_set_commit_reveal_weights_enabled",
        (1u16, true),
    );
    submit(api, &on, owner).await.expect("commit-reveal on");
    let no_limit = tx("AdminUtils", "sudo_set_weights_set_rate_limit", (1u16, 0u64));
    submit(api, &no_limit, owner).await.expect("rate limit off");
}

async fn blocks(devnet: &Devnet, n: usize) {
    for _ in 0..n {
        devnet.produce_block().await.expect("block");
    }
}

/// Produce empty blocks until the dev subnet's epoch index moves.
async fn next_epoch(devnet: &Devnet) {
    let start = devnet.with_state(|| subtensor::SubnetEpochIndex::<Runtime>::get(1));
    for _ in 0..100 {
        devnet.produce_block().await.expect("block");
        if devnet.with_state(|| subtensor::SubnetEpochIndex::<Runtime>::get(1)) > start {
            return;
        }
    }
    panic!("no epoch ran in 100 blocks");
}

async fn storage_u16_vec(api: &Api, name: &str) -> Vec<u16> {
    let at = api.at_current_block().await.expect("block");
    at.storage()
        .fetch(
            dynamic::storage::<(u16,), Vec<u16>>("SubtensorModule", name),
            (1u16,),
        )
        .await
        .expect("fetch")
        .decode()
        .expect("decode")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subxt_reads_metadata_and_watches_a_transaction_to_finalization() {
    let devnet = devnet().await;
    let api = Api::from_url(devnet.ws_url()).await.expect("subxt connects");
    let at = api.at_current_block().await.expect("current block");
    let metadata = at.metadata();
    let pallet = metadata
        .pallet_by_name("SubtensorModule")
        .expect("SubtensorModule in metadata");
    assert_eq!(pallet.call_index(), 7);

    let events = submit(
        &api,
        &tx("SubtensorModule", "burned_register", (1u16, id(&dev::charlie()))),
        &dev::bob(),
    )
    .await
    .expect("burned_register finalized");
    assert!(
        has(&events, "SubtensorModule", "NeuronRegistered"),
        "events: {events:?}"
    );

    let at = api.at_current_block().await.expect("current block");
    let n = at
        .storage()
        .fetch(
            dynamic::storage::<(u16,), u16>("SubtensorModule", "SubnetworkN"),
            (1u16,),
        )
        .await
        .expect("SubnetworkN")
        .decode()
        .expect("u16");
    assert_eq!(n, 2, "owner uid 0 plus Charlie");

    // Watching by hand: ready, in block, finalized.
    let at = api.at_current_block().await.expect("current block");
    let mut progress = at
        .transactions()
        .sign_and_submit_then_watch_default(
            &tx(
                "Balances",
                "transfer_keep_alive",
                (dev::eve().public_key().to_address::<u32>(), 5_000_000_000u64),
            ),
            &dev::ferdie(),
        )
        .await
        .expect("submitted");
    let mut seen = Vec::new();
    while let Some(status) = progress.next().await {
        match status.expect("status") {
            TxStatus::Validated => seen.push("validated"),
            TxStatus::InBestBlock(_) => seen.push("in block"),
            TxStatus::InFinalizedBlock(_) => {
                seen.push("finalized");
                break;
            }
            other => panic!("unexpected status {other:?}"),
        }
    }
    assert_eq!(seen, ["validated", "in block", "finalized"]);
    devnet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subnet_registers_serves_sets_weights_and_pays_incentive() {
    let devnet = devnet().await;
    let api = Api::from_url(devnet.ws_url()).await.expect("subxt connects");
    let (alice, bob, charlie, dave) = (dev::alice(), dev::bob(), dev::charlie(), dev::dave());

    // The owner (not sudo) tunes its subnet.
    let ev = submit(
        &api,
        &tx("AdminUtils", "sudo_set_weights_set_rate_limit", (1u16, 0u64)),
        &alice,
    )
    .await
    .expect("owner sets the rate limit");
    assert!(has(&ev, "SubtensorModule", "WeightsSetRateLimitSet"), "{ev:?}");
    submit(
        &api,
        &tx("AdminUtils", "sudo_set_min_allowed_weights", (1u16, 1u16)),
        &alice,
    )
    .await
    .expect("owner sets min allowed weights");
    // Someone else may not.
    let err = submit(&api, &tx("AdminUtils", "sudo_set_tempo", (1u16, 5u16)), &bob)
        .await
        .expect_err("only root sets the tempo");
    assert!(err.contains("Bad origin"), "{err}");

    // Bob's coldkey registers a miner (Charlie) and a validator (Dave), and stakes on Dave.
    for hot in [&charlie, &dave] {
        let ev = submit(
            &api,
            &tx("SubtensorModule", "burned_register", (1u16, id(hot))),
            &bob,
        )
        .await
        .expect("registered");
        assert!(has(&ev, "SubtensorModule", "NeuronRegistered"));
    }
    let ev = submit(
        &api,
        &tx(
            "SubtensorModule",
            "add_stake",
            (id(&dave), 1u16, 1_000_000_000_000u64),
        ),
        &bob,
    )
    .await
    .expect("staked");
    assert!(has(&ev, "SubtensorModule", "StakeAdded"));

    // 127.0.0.1 is refused in the pool with subtensor's code (InvalidIpAddress → 11)...
    let serve = |ip: u128| {
        tx(
            "SubtensorModule",
            "serve_axon",
            (1u16, 1u32, ip, 8091u16, 4u8, 4u8, 0u8, 0u8),
        )
    };
    let (code, data) = pool_rejection(&devnet, &api, &serve(0x7f00_0001), &charlie).await;
    assert_eq!((code, data.as_str()), (1010, "\"Custom error: 11\""));
    // ...another loopback address is served.
    let ev = submit(&api, &serve(0x7f00_0002), &charlie).await.expect("served");
    assert!(has(&ev, "SubtensorModule", "AxonServed"));

    // Without a permit, Dave's weights fail at dispatch with subtensor's error.
    let weights = tx(
        "SubtensorModule",
        "set_weights",
        (1u16, vec![1u16], vec![65535u16], 0u64),
    );
    let err = submit(&api, &weights, &dave).await.expect_err("no permit yet");
    assert!(err.contains("NeuronNoValidatorPermit"), "{err}");

    // An epoch hands out permits by stake; then the weights land, max-upscaled.
    next_epoch(&devnet).await;
    let permits: Vec<bool> = {
        let at = api.at_current_block().await.expect("block");
        at.storage()
            .fetch(
                dynamic::storage::<(u16,), Vec<bool>>("SubtensorModule", "ValidatorPermit"),
                (1u16,),
            )
            .await
            .expect("fetch")
            .decode()
            .expect("decode")
    };
    assert_eq!(
        permits,
        vec![true, false, true],
        "owner and Dave hold permits, Charlie does not"
    );
    let ev = submit(
        &api,
        &tx(
            "SubtensorModule",
            "set_weights",
            (1u16, vec![1u16], vec![7u16], 0u64),
        ),
        &dave,
    )
    .await
    .expect("weights set");
    assert!(has(&ev, "SubtensorModule", "WeightsSet"));
    let stored = devnet.with_state(|| subtensor::Weights::<Runtime>::get(1, 2));
    assert_eq!(stored, vec![(1, 65535)]);

    assert_eq!(storage_u16_vec(&api, "Incentive").await, vec![0, 0, 0]);
    next_epoch(&devnet).await;
    let incentive = storage_u16_vec(&api, "Incentive").await;
    assert_eq!(incentive[1], 65535, "Charlie earns all incentive: {incentive:?}");
    let dividends = storage_u16_vec(&api, "Dividends").await;
    assert!(dividends[2] > 0, "Dave earns dividends: {dividends:?}");

    // The neuron runtime API, through state_call, in subtensor's SCALE shape.
    let at = api.at_current_block().await.expect("block");
    let raw = at
        .runtime_apis()
        .call_raw("NeuronInfoRuntimeApi_get_neurons_lite", Some(&1u16.encode()))
        .await
        .expect("runtime api");
    let neurons = Vec::<NeuronInfoLite<AccountId>>::decode(&mut &raw[..]).expect("NeuronInfoLite");
    assert_eq!(neurons.len(), 3);
    let miner = &neurons[1];
    assert_eq!(miner.hotkey, account(&charlie));
    assert_eq!(miner.coldkey, account(&bob));
    assert_eq!(miner.axon_info.ip, 0x7f00_0002);
    assert_eq!(miner.axon_info.port, 8091);
    assert_eq!(miner.incentive.0, 65535);
    assert!(miner.emission.0 > 0);
    assert!(neurons[2].validator_permit);
    let raw = at
        .runtime_apis()
        .call_raw(
            "SubnetInfoRuntimeApi_get_subnet_hyperparams_v2",
            Some(&1u16.encode()),
        )
        .await
        .expect("hyperparams");
    let hp = Option::<subtensor::info::SubnetHyperparamsV2>::decode(&mut &raw[..])
        .expect("decodes")
        .expect("subnet exists");
    assert_eq!(hp.tempo.0, 10);
    assert_eq!(hp.weights_rate_limit.0, 0);
    assert_eq!(hp.min_allowed_weights.0, 1);
    devnet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_then_reveal_in_the_next_epoch() {
    let devnet = devnet().await;
    let api = Api::from_url(devnet.ws_url()).await.expect("subxt connects");
    let alice = dev::alice();
    commit_reveal_without_rate_limit(&api, &alice).await;
    submit(
        &api,
        &tx("AdminUtils", "sudo_set_min_allowed_weights", (1u16, 1u16)),
        &alice,
    )
    .await
    .expect("one weight is enough");
    submit(
        &api,
        &tx("SubtensorModule", "burned_register", (1u16, id(&dev::charlie()))),
        &dev::bob(),
    )
    .await
    .expect("miner registered");

    // set_weights is refused while commit-reveal is on.
    let err = submit(
        &api,
        &tx(
            "SubtensorModule",
            "set_weights",
            (1u16, vec![1u16], vec![1u16], 0u64),
        ),
        &alice,
    )
    .await
    .expect_err("commit-reveal is on");
    assert!(err.contains("CommitRevealEnabled"), "{err}");

    // The owner (uid 0, exempt from the permit) commits the hash subtensor computes.
    let (uids, values, salt, version_key) = (vec![1u16], vec![40_000u16], vec![7u16, 8, 9], 0u64);
    let hash = subtensor::Pallet::<Runtime>::get_commit_hash(
        &account(&alice),
        1,
        &uids,
        &values,
        &salt,
        version_key,
    );
    let ev = submit(
        &api,
        &tx("SubtensorModule", "commit_weights", (1u16, hash.0)),
        &alice,
    )
    .await
    .expect("committed");
    assert!(has(&ev, "SubtensorModule", "WeightsCommitted"));

    // Revealing in the commit's own epoch is too early (refused in the pool: RevealTooEarly → 17).
    let reveal = tx(
        "SubtensorModule",
        "reveal_weights",
        (1u16, uids.clone(), values.clone(), salt.clone(), version_key),
    );
    let (code, data) = pool_rejection(&devnet, &api, &reveal, &alice).await;
    assert_eq!((code, data.as_str()), (1010, "\"Custom error: 17\""));

    next_epoch(&devnet).await;
    let ev = submit(&api, &reveal, &alice).await.expect("revealed");
    assert!(has(&ev, "SubtensorModule", "WeightsRevealed"), "{ev:?}");
    assert!(has(&ev, "SubtensorModule", "WeightsSet"), "{ev:?}");
    assert_eq!(
        devnet.with_state(|| subtensor::Weights::<Runtime>::get(1, 0)),
        vec![(1, 65535)]
    );
    assert!(
        devnet
            .with_state(|| subtensor::WeightCommits::<Runtime>::get(1, account(&alice)))
            .is_none()
    );
    blocks(&devnet, 1).await;
    devnet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timelocked_commits_are_stored_and_polkadot_config_signs_too() {
    let devnet = devnet().await;
    // The stock PolkadotConfig (MultiAddress<AccountId32, ()>, as finney) signs the same way.
    let papi = OnlineClient::<subxt::PolkadotConfig>::from_url(devnet.ws_url())
        .await
        .expect("connects");
    let at = papi.at_current_block().await.expect("block");
    let call = tx(
        "AdminUtils",
        "sudo_set_commit_reveal_weights_enabled",
        (1u16, true),
    );
    at.transactions()
        .sign_and_submit_then_watch_default(&call, &dev::alice())
        .await
        .expect("submitted")
        .wait_for_finalized_success()
        .await
        .expect("commit-reveal on");

    let api = Api::from_url(devnet.ws_url()).await.expect("subxt connects");
    let ciphertext = vec![7u8; 300];
    let commit = |version: u16| {
        tx(
            "SubtensorModule",
            "commit_timelocked_weights",
            (1u16, ciphertext.clone(), 1_000u64, version),
        )
    };
    let err = submit(&api, &commit(3), &dev::alice())
        .await
        .expect_err("wrong version");
    assert!(err.contains("IncorrectCommitRevealVersion"), "{err}");
    let ev = submit(&api, &commit(4), &dev::alice()).await.expect("committed");
    assert!(
        has(&ev, "SubtensorModule", "TimelockedWeightsCommitted"),
        "{ev:?}"
    );
    let epoch = devnet.with_state(|| subtensor::SubnetEpochIndex::<Runtime>::get(1));
    let stored = devnet.with_state(|| subtensor::TimelockedWeightCommits::<Runtime>::get(1, epoch));
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].0, account(&dev::alice()));
    assert_eq!(stored[0].2.to_vec(), ciphertext);
    assert_eq!(stored[0].3, 1_000);
    // In its reveal epoch the commit waits for the pulse of round 1000, which never comes; once the
    // epoch has passed it is deleted unrevealed, and no weights were set.
    next_epoch(&devnet).await;
    assert_eq!(
        devnet
            .with_state(|| subtensor::TimelockedWeightCommits::<Runtime>::get(1, epoch))
            .len(),
        1
    );
    next_epoch(&devnet).await;
    assert!(
        devnet
            .with_state(|| subtensor::TimelockedWeightCommits::<Runtime>::get(1, epoch))
            .is_empty()
    );
    assert!(
        devnet
            .with_state(|| subtensor::Weights::<Runtime>::get(1, 0))
            .is_empty()
    );
    devnet.shutdown().await;
}

/// `Sudo::sudo(Drand::dev_write_pulse { round, signature })`, the devnet's drand feed.
fn write_pulse(round: u64, signature: &[u8]) -> impl Payload {
    use subxt::dynamic::Value;
    let inner = Value::unnamed_variant(
        "Drand",
        [Value::named_variant(
            "dev_write_pulse",
            [
                ("round", Value::u128(u128::from(round))),
                ("signature", Value::from_bytes(signature)),
            ],
        )],
    );
    tx("Sudo", "sudo", (inner,))
}

/// CR-v4 end to end: a ciphertext built by `chain::timelock` is committed with a stock subxt
/// client, waits in its reveal epoch until the drand pulse of its round is written, then the devnet
/// decrypts it and sets the weights through the `set_weights` checks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timelocked_weights_are_revealed_with_the_drand_pulse() {
    use chain::timelock::{QUICKNET_PUBLIC_KEY, encrypt_weights_commit};
    // drand quicknet's signature of round 1000 (public beacon data).
    const ROUND_1000_SIGNATURE: &str =
        "b44679b9a59af2ec876b1a6b1ad52ea9b1615fc3982b19576350f93447cb1125e342b73a8dd2bacbe47e4b6b63ed5e39";
    let devnet = devnet().await;
    let api = Api::from_url(devnet.ws_url()).await.expect("subxt connects");
    let alice = dev::alice();
    let bob = dev::bob();
    commit_reveal_without_rate_limit(&api, &alice).await;

    // The owner (uid 0) commits a self-weight for round 1000. Another
    // commit by Alice carries Bob's hotkey in its payload: it must not be applied.
    let commit = |ciphertext: Vec<u8>| {
        tx(
            "SubtensorModule",
            "commit_timelocked_weights",
            (1u16, ciphertext, 1_000u64, 4u16),
        )
    };
    let good = encrypt_weights_commit(&id(&alice), &[0], &[40_000], 0, 1_000, &QUICKNET_PUBLIC_KEY)
        .expect("encrypts");
    let forged =
        encrypt_weights_commit(&id(&bob), &[0], &[1], 0, 1_000, &QUICKNET_PUBLIC_KEY).expect("encrypts");
    let ev = submit(&api, &commit(forged), &alice).await.expect("committed");
    assert!(
        has(&ev, "SubtensorModule", "TimelockedWeightsCommitted"),
        "{ev:?}"
    );
    let epoch = devnet.with_state(|| subtensor::SubnetEpochIndex::<Runtime>::get(1));
    submit(&api, &commit(good), &alice).await.expect("committed");
    let weights = || devnet.with_state(|| subtensor::Weights::<Runtime>::get(1, 0));
    let queued = || {
        devnet
            .with_state(|| subtensor::TimelockedWeightCommits::<Runtime>::get(1, epoch))
            .len()
    };
    assert_eq!(queued(), 2);

    // The reveal epoch comes but the pulse does not: both commits wait, nothing is set.
    next_epoch(&devnet).await;
    blocks(&devnet, 1).await;
    assert_eq!(queued(), 2);
    assert!(weights().is_empty());

    // Root writes the pulse (in instant seal this block's on_initialize ran before the write); the
    // next block reveals: Alice's weights are set, the forged commit is dropped.
    let signature = hex::decode(ROUND_1000_SIGNATURE).expect("hex");
    submit(&api, &write_pulse(1_000, &signature), &alice)
        .await
        .expect("pulse written");
    assert_eq!(queued(), 2);
    blocks(&devnet, 1).await;
    assert_eq!(queued(), 0);
    assert_eq!(weights(), vec![(0, 65535)]);
    devnet.shutdown().await;
}
