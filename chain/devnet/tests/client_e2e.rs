//! The chain client end to end against the embedded devnet: connect, register, serve, set weights,
//! commit and reveal, read everything back in the metagraph, and the failure paths.

use std::time::Duration;

use chain::calls::{AxonSpec, Call};
use chain::client::{ChainClient, ChainError, ClientConfig, Network, WeightsResult};
use chain::keys::Keypair;
use chain::metagraph::Source;
use chain::submit::FailureKind;
use chain::weights::RevealTiming;
use devnet::{Devnet, DevnetConfig};

async fn devnet(commit_reveal: bool) -> Devnet {
    Devnet::spawn(DevnetConfig {
        block_time: Some(Duration::from_millis(50)),
        dev_subnet: true,
        dev_subnet_commit_reveal: commit_reveal,
        ..DevnetConfig::default()
    })
    .await
    .expect("devnet starts")
}

fn config() -> ClientConfig {
    ClientConfig {
        request_timeout: Duration::from_secs(20),
        inclusion_timeout: Duration::from_secs(20),
        ..ClientConfig::default()
    }
}

async fn connect(devnet: &Devnet) -> ChainClient {
    ChainClient::connect(&Network::Url(devnet.ws_url()), config())
        .await
        .expect("client connects")
}

fn key(uri: &str) -> Keypair {
    Keypair::from_uri(uri).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_serve_and_set_weights_then_read_them_back() {
    let devnet = devnet(false).await;
    let client = connect(&devnet).await;
    assert!(client.compat_report().missing.is_empty());

    let graph = client.metagraph(1).await.unwrap();
    let owner = key("//Alice");
    assert_eq!(graph.by_uid(0).map(|n| n.hotkey), Some(owner.account()));

    // //Bob's coldkey registers the hotkey //Charlie.
    let miner = key("//Charlie"); // a funded dev account: the devnet charges serve_axon fees
    let report = client.burned_register(&key("//Bob"), 1, &miner.account()).await;
    assert!(report.is_included(), "{report:?}");
    assert_eq!(report.attempts, 1);
    let uid = client
        .uid_of(1, &miner.account())
        .await
        .unwrap()
        .expect("registered");

    // Serving: 127.0.0.1 is refused before submission; 127.0.0.2 lands and decodes.
    let bad = AxonSpec {
        ip: "127.0.0.1".parse().unwrap(),
        port: 8091,
        version: 7,
    };
    assert!(matches!(
        client.serve_axon(&miner, 1, bad).await,
        Err(ChainError::Axon(_))
    ));
    let axon = AxonSpec {
        ip: "127.0.0.2".parse().unwrap(),
        port: 8091,
        version: 7,
    };
    let report = client.serve_axon(&miner, 1, axon).await.unwrap();
    assert!(report.is_included(), "{report:?}");

    // The owner sets weights on both uids.
    let res = client
        .set_weights(&owner, 1, &[0, uid], &[1000, 65535], 0)
        .await
        .unwrap();
    let WeightsResult::Set {
        report,
        next_allowed_block,
    } = res
    else {
        panic!("expected a direct set: {res:?}")
    };
    assert!(report.is_included(), "{report:?}");

    let graph = client.metagraph(1).await.unwrap();
    let n = graph.by_hotkey(&miner.account()).expect("miner in metagraph");
    assert_eq!(n.uid, uid);
    assert_eq!(n.coldkey, key("//Bob").account());
    let served = n.axon.expect("axon decoded");
    assert_eq!(
        (served.ip.to_string(), served.port, served.version),
        ("127.0.0.2".into(), 8091, 7)
    );
    let owner_neuron = graph.by_uid(0).unwrap();
    assert!(owner_neuron.last_update > 0, "last_update written by set_weights");

    // The same call again before the rate limit expires is not submitted at all.
    if graph.hyperparams.weights_rate_limit > 1 {
        let again = client
            .set_weights(&owner, 1, &[0, uid], &[1000, 65535], 0)
            .await
            .unwrap();
        match again {
            WeightsResult::RateLimited {
                next_allowed_block: next,
                ..
            } => assert_eq!(next, next_allowed_block),
            other => panic!("expected rate limited, got {other:?}"),
        }
    }

    // The storage fallback reads the same neurons as the runtime API, every field, at one block
    // (after an epoch, so consensus, trust, incentive and emission are set).
    assert_eq!(graph.source, Source::RuntimeApi);
    // Stake on the owner, so the next epoch counts its weights.
    let stake = Call::Setup(chain::calls::SetupCall::AddStake {
        hotkey: owner.account(),
        netuid: 1,
        amount: 1_000_000_000_000,
    });
    let report = client.submit(&stake, &owner).await;
    assert!(report.is_included(), "{report:?}");
    let start = client.block_number().await.unwrap();
    while client.block_number().await.unwrap() < start + 12 {
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let block = client.block_number().await.unwrap();
    let api = client.metagraph_at(1, block, Source::RuntimeApi).await.unwrap();
    let from_storage = client.metagraph_at(1, block, Source::Storage).await.unwrap();
    assert_eq!(
        (api.source, from_storage.source),
        (Source::RuntimeApi, Source::Storage)
    );
    assert_eq!(api.block_hash, from_storage.block_hash);
    assert!(api.neurons.iter().any(|n| n.incentive > 0), "{:?}", api.neurons);
    assert_eq!(api.neurons, from_storage.neurons);
    devnet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watch_syncs_on_a_schedule_and_on_demand() {
    use std::sync::Arc;
    let devnet = devnet(false).await;
    let client = Arc::new(connect(&devnet).await);
    let mut watch = chain::client::MetagraphWatch::spawn(client.clone(), 1, Duration::from_secs(3600));
    let first = watch.changed(Duration::from_secs(20)).await.expect("first sync");
    assert_eq!(first.neurons.len(), 1);
    let report = client
        .burned_register(&key("//Bob"), 1, &key("//Dave").account())
        .await;
    assert!(report.is_included(), "{report:?}");
    // The hourly schedule would not refresh within the test; an on-demand refresh does.
    watch.refresh_now();
    let second = watch
        .changed(Duration::from_secs(20))
        .await
        .expect("refreshed on demand");
    assert!(second.block > first.block);
    assert!(second.by_hotkey(&key("//Dave").account()).is_some());
    drop(watch);
    devnet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_classified_and_not_retried() {
    let devnet = devnet(false).await;
    let client = connect(&devnet).await;
    let stranger = key("//Stranger");
    // Caught before submission.
    let err = client.set_weights(&stranger, 1, &[0], &[1], 0).await.unwrap_err();
    assert!(matches!(err, ChainError::NotRegistered { .. }), "{err}");
    assert!(matches!(
        client.hyperparams(42).await,
        Err(ChainError::NoSubnet(42))
    ));
    // Submitted anyway: the chain refuses, and the report says why, after one attempt.
    let call = Call::SetWeights {
        netuid: 1,
        uids: vec![0],
        values: vec![1],
        version_key: 0,
    };
    let report = client.submit(&call, &stranger).await;
    assert_eq!(report.attempts, 1, "{report:?}");
    assert!(
        matches!(
            report.failure(),
            Some(FailureKind::NotRegistered | FailureKind::InsufficientBalance)
        ),
        "{report:?}"
    );
    devnet.shutdown().await;
}

/// Root sets the chain-wide `CommitRevealWeightsVersion` through a stock subxt client.
async fn set_commit_reveal_version(devnet: &Devnet, version: u16) {
    use subxt::dynamic::{self, Value};
    let api = subxt::OnlineClient::<subxt::config::substrate::SubstrateConfig>::from_url(devnet.ws_url())
        .await
        .expect("subxt connects");
    let inner = Value::unnamed_variant(
        "AdminUtils",
        [Value::named_variant(
            "sudo_set_commit_reveal_version",
            [("version", Value::from(version))],
        )],
    );
    let call = dynamic::transaction("Sudo".to_string(), "sudo".to_string(), (inner,));
    let at = api.at_current_block().await.expect("block");
    at.transactions()
        .sign_and_submit_then_watch_default(&call, &subxt_signer::sr25519::dev::alice())
        .await
        .expect("submitted")
        .wait_for_finalized_success()
        .await
        .expect("root set the version");
}

/// A chain whose timelocked-commit version this client does not build (3): the CR-v2 hash commit,
/// revealed by the client in the reveal epoch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hash_commit_then_reveal_when_timelocked_commits_are_not_spoken() {
    // Epochs of 20 blocks, and the commit made just after an epoch starts: the "too early" reveal
    // below then has most of an epoch (about a second) to land before its reveal epoch begins.
    let devnet = Devnet::spawn(DevnetConfig {
        block_time: Some(Duration::from_millis(50)),
        dev_subnet: true,
        dev_subnet_commit_reveal: true,
        tempo: 20,
        ..DevnetConfig::default()
    })
    .await
    .expect("devnet starts");
    set_commit_reveal_version(&devnet, 3).await;
    let client = connect(&devnet).await;
    let owner = key("//Alice");
    let hp = client.hyperparams(1).await.unwrap();
    assert!(hp.commit_reveal_enabled);
    assert_eq!(hp.commit_reveal_version, Some(3));
    let mut aligned = false;
    for _ in 0..1000 {
        let (now, clock) = client.epoch_clock(1).await.unwrap();
        if clock.last_epoch_block(now).is_some_and(|e| now <= e + 1) {
            aligned = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(aligned, "an epoch starts within ten seconds");
    let res = client.set_weights(&owner, 1, &[0], &[65535], 0).await.unwrap();
    let WeightsResult::Committed { report, pending, .. } = res else {
        panic!("expected a commit: {res:?}")
    };
    assert!(report.is_included(), "{report:?}");
    // Too early: the chain refuses, and the refusal is classified (and not retried).
    let early = client.reveal_weights(&owner, &pending).await;
    assert_eq!(early.failure(), Some(FailureKind::RevealRejected), "{early:?}");
    assert_eq!(early.attempts, 1);
    // Wait until the client computes that the reveal is due, then it lands on the first try.
    let mut due = false;
    for _ in 0..400 {
        match client.reveal_timing(&owner.account(), &pending).await.unwrap() {
            Some(RevealTiming::Due) => {
                due = true;
                break;
            }
            Some(RevealTiming::TooEarly { .. }) => tokio::time::sleep(Duration::from_millis(25)).await,
            other => panic!("unexpected reveal timing {other:?}"),
        }
    }
    assert!(due, "the reveal epoch arrives");
    let revealed = client.reveal_weights(&owner, &pending).await;
    assert!(revealed.is_included(), "{revealed:?}");
    assert_eq!(revealed.attempts, 1);
    // The commit is consumed.
    assert_eq!(
        client.reveal_timing(&owner.account(), &pending).await.unwrap(),
        None
    );
    devnet.shutdown().await;
}

/// Commit-reveal as finney runs it (`CommitRevealWeightsVersion` 4): the client encrypts the weights to
/// a round of the beacon the chain names (the devnet's), the chain stores the ciphertext, and in the reveal epoch opens it
/// with the beacon's pulse and sets the weights. Nothing is revealed by the client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timelocked_commit_is_opened_by_the_chain_in_the_reveal_epoch() {
    use devnet::runtime::Runtime;
    use devnet::subtensor;
    let devnet = devnet(true).await;
    // Configured for drand quicknet (the default): the client reads the beacon the chain follows
    // from Drand::BeaconConfig and uses the devnet's.
    let client = connect(&devnet).await;
    assert_eq!(config().beacon, chain::timelock::BeaconConfig::quicknet());
    let owner = key("//Alice");
    let hp = client.hyperparams(1).await.unwrap();
    assert_eq!(hp.commit_reveal_version, Some(4));
    // The client measures the block time over the last 16 blocks: let them be steady-state blocks,
    // not the devnet's (and, under a loaded test run, the other tests') slow start, which would
    // make it aim at a round that comes due after the reveal epoch has ended.
    while client.block_number().await.unwrap() < 20 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        devnet
            .with_state(|| subtensor::Weights::<Runtime>::get(1, 0))
            .is_empty()
    );

    let on_chain = devnet.with_state(devnet::drand::BeaconConfig::<Runtime>::get);
    assert_eq!(
        on_chain.public_key,
        chain::timelock::BeaconConfig::devnet().public_key
    );
    let res = client.set_weights(&owner, 1, &[0], &[65535], 0).await.unwrap();
    let WeightsResult::TimelockCommitted {
        report,
        reveal_round,
        reveal_block,
        ..
    } = res
    else {
        panic!("expected a timelocked commit: {res:?}")
    };
    assert!(report.is_included(), "{report:?}");
    // The devnet has the SDK 11.3's mechanism calls, so mechanism 0's commit goes through them.
    assert_eq!(report.call, "commit_timelocked_mechanism_weights");
    let chain::submit::Outcome::Included { block, .. } = report.outcome else {
        unreachable!()
    };
    assert!(
        reveal_block > block,
        "reveal at {reveal_block}, committed at {block}"
    );
    // Encrypted on chain until the reveal epoch: the weights are not set yet.
    let queued = devnet.with_state(|| {
        subtensor::TimelockedWeightCommits::<Runtime>::iter_prefix(1)
            .flat_map(|(_, commits)| commits)
            .map(|(_, _, _, round)| round)
            .collect::<Vec<_>>()
    });
    assert_eq!(queued, vec![reveal_round]);
    // Watch (block, weights) pairs read from one state: empty before the reveal epoch, then the
    // chain opens the commit a block or two into it.
    let observe = || {
        devnet.with_state(|| {
            (
                polkadot_sdk::frame_system::Pallet::<Runtime>::block_number(),
                subtensor::Weights::<Runtime>::get(1, 0),
            )
        })
    };
    let mut opened_at = None;
    for _ in 0..400 {
        let (at, set) = observe();
        if !set.is_empty() {
            assert_eq!(set, vec![(0, 65535)]);
            opened_at = Some(u64::from(at));
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let opened_at = opened_at.unwrap_or_else(|| {
        let state = devnet.with_state(|| {
            (
                polkadot_sdk::frame_system::Pallet::<Runtime>::block_number(),
                devnet::drand::LastStoredRound::<Runtime>::get(),
                subtensor::SubnetEpochIndex::<Runtime>::get(1),
                subtensor::LastEpochBlock::<Runtime>::get(1),
                subtensor::TimelockedWeightCommits::<Runtime>::iter_prefix(1)
                    .map(|(e, c)| (e, c.len()))
                    .collect::<Vec<_>>(),
            )
        });
        panic!(
            "the chain never revealed the commit (round {reveal_round}, reveal block {reveal_block}, committed in {block}); (block, last stored round, epoch, last epoch block, queued) = {state:?}"
        )
    });
    assert!(
        opened_at >= reveal_block,
        "opened at {opened_at}, before its reveal epoch at {reveal_block}"
    );
    devnet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_endpoint_is_one_clear_error() {
    let cfg = ClientConfig {
        connect_attempts: 2,
        request_timeout: Duration::from_secs(2),
        ..ClientConfig::default()
    };
    let err = ChainClient::connect(&Network::Url("ws://127.0.0.1:1".into()), cfg)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ChainError::Unreachable { attempts: 2, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("check the endpoint"));
    assert!("nowhere".parse::<Network>().is_err());
    assert_eq!("finney".parse::<Network>().unwrap(), Network::Finney);
}

/// A TCP proxy in front of the devnet that cuts every open connection the first time the node
/// sends a transaction status update (`author_extrinsicUpdate`), i.e. after the transaction reached
/// the pool but before its inclusion was reported.
mod cutting_proxy {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    pub(crate) struct Proxy {
        pub(crate) url: String,
        pub(crate) cuts: Arc<AtomicUsize>,
    }

    fn contains(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }

    pub(crate) async fn start(upstream: std::net::SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}", listener.local_addr().unwrap());
        let armed = Arc::new(AtomicBool::new(true));
        let cuts = Arc::new(AtomicUsize::new(0));
        let cuts2 = cuts.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                let (armed, cuts) = (armed.clone(), cuts2.clone());
                tokio::spawn(async move {
                    let (mut cr, mut cw) = client.into_split();
                    let (mut sr, mut sw) = server.into_split();
                    let up = async {
                        let mut buf = vec![0u8; 64 * 1024];
                        while let Ok(n) = cr.read(&mut buf).await {
                            if n == 0 || sw.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    };
                    let down = async {
                        let mut buf = vec![0u8; 64 * 1024];
                        while let Ok(n) = sr.read(&mut buf).await {
                            if n == 0 {
                                break;
                            }
                            if contains(&buf[..n], b"author_extrinsicUpdate")
                                && armed.swap(false, Ordering::SeqCst)
                            {
                                cuts.fetch_add(1, Ordering::SeqCst);
                                break; // drop both halves without forwarding the update
                            }
                            if cw.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    };
                    tokio::select! { () = up => {}, () = down => {} }
                });
            }
        });
        Proxy { url, cuts }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_dropped_mid_submission_still_ends_in_one_inclusion() {
    use std::sync::atomic::Ordering;
    let devnet = devnet(false).await;
    let proxy = cutting_proxy::start(devnet.local_addr()).await;
    let client = ChainClient::connect(&Network::Url(proxy.url.clone()), config())
        .await
        .expect("connects via proxy");
    let owner = key("//Alice");
    let nonce_before = client.account_nonce(&owner.account()).await.unwrap();
    let res = client.set_weights(&owner, 1, &[0], &[65535], 0).await.unwrap();
    let WeightsResult::Set { report, .. } = res else {
        panic!("expected a direct set: {res:?}")
    };
    assert_eq!(
        proxy.cuts.load(Ordering::SeqCst),
        1,
        "the proxy cut the connection mid-submission"
    );
    assert!(report.is_included(), "{report:?}");
    // Exactly one transaction landed: no double submission after the reconnect.
    assert_eq!(
        client.account_nonce(&owner.account()).await.unwrap(),
        nonce_before + 1
    );
    let graph = client.metagraph(1).await.unwrap();
    assert!(graph.by_uid(0).unwrap().last_update > 0);
    devnet.shutdown().await;
}

/// Root and the owner (//Alice) split subnet 1 in two mechanisms, 1/4 and 3/4 of the emission:
/// through the client's set-up calls (`MaxAllowedUids` 128 so that 2 × 128 ≤ 256, then the count)
/// and a stock subxt client for the split.
async fn split_subnet_in_two(devnet: &Devnet, client: &ChainClient) {
    use chain::calls::{Hyperparameter, SetupCall};
    use subxt::dynamic::{self, Value};
    let alice = key("//Alice");
    for param in [
        Hyperparameter::MaxAllowedUids(128),
        Hyperparameter::MechanismCount(2),
    ] {
        let report = client
            .submit(&Call::Setup(SetupCall::SudoSet { netuid: 1, param }), &alice)
            .await;
        assert!(report.is_included(), "{param:?}: {report:?}");
    }
    let api = subxt::OnlineClient::<subxt::config::substrate::SubstrateConfig>::from_url(devnet.ws_url())
        .await
        .expect("subxt connects");
    let split = Value::unnamed_variant(
        "Some",
        [Value::unnamed_composite([
            Value::from(16_384u16),
            Value::from(49_151u16),
        ])],
    );
    let call = dynamic::transaction(
        "AdminUtils".to_string(),
        "sudo_set_mechanism_emission_split".to_string(),
        (Value::from(1u16), split),
    );
    let at = api.at_current_block().await.expect("block");
    at.transactions()
        .sign_and_submit_then_watch_default(&call, &subxt_signer::sr25519::dev::alice())
        .await
        .expect("submitted")
        .wait_for_finalized_success()
        .await
        .expect("the owner set the split");
}

/// Mechanisms end to end: the owner splits the subnet, the client reads the count and split, the
/// owner (a validator with stake) weights one miner on each mechanism through
/// `set_mechanism_weights`, each mechanism's metagraph shows its own incentive, and the miners' stake
/// grows in the ratio of the emission split. A mechanism beyond the count is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mechanism_weights_land_and_pay_per_mechanism() {
    use chain::calls::SetupCall;
    use chain::mechanism::{EpochConsensus, Mechanisms};
    let devnet = devnet(false).await;
    let client = connect(&devnet).await;
    assert!(
        client.compat_report().degraded.is_empty(),
        "{:?}",
        client.compat_report()
    );
    assert_eq!(client.mechanisms(1).await.unwrap(), Mechanisms::default());
    assert_eq!(client.epoch_consensus(1).await.unwrap(), EpochConsensus::Yuma);
    split_subnet_in_two(&devnet, &client).await;
    let mechanisms = client.mechanisms(1).await.unwrap();
    assert_eq!(
        mechanisms,
        Mechanisms {
            count: 2,
            emission_split: Some(vec![16_384, 49_151])
        }
    );

    let owner = key("//Alice");
    let report = client
        .submit(
            &Call::Setup(SetupCall::AddStake {
                hotkey: owner.account(),
                netuid: 1,
                amount: 100_000_000_000,
            }),
            &owner,
        )
        .await;
    assert!(report.is_included(), "{report:?}");
    let mut uids = Vec::new();
    for miner in ["//Charlie", "//Dave"] {
        let hotkey = key(miner).account();
        let report = client.burned_register(&key("//Bob"), 1, &hotkey).await;
        assert!(report.is_included(), "{report:?}");
        uids.push(client.uid_of(1, &hotkey).await.unwrap().expect("registered"));
    }
    let (charlie, dave) = (uids[0], uids[1]);
    // One weight per mechanism is enough (MinAllowedWeights defaults to 1024, capped at n).
    let report = client
        .submit(
            &Call::Setup(SetupCall::SudoSet {
                netuid: 1,
                param: chain::calls::Hyperparameter::MinAllowedWeights(1),
            }),
            &owner,
        )
        .await;
    assert!(report.is_included(), "{report:?}");

    let err = client
        .set_mechanism_weights(&owner, 1, 2, &[charlie], &[65535], 0)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ChainError::NoMechanism {
                netuid: 1,
                mecid: 2,
                count: 2
            }
        ),
        "{err}"
    );
    assert!(matches!(
        client.mechanism_metagraph(1, 2).await,
        Err(ChainError::NoMechanism { .. })
    ));
    for (mecid, miner) in [(0, charlie), (1, dave)] {
        let res = client
            .set_mechanism_weights(&owner, 1, mecid, &[miner], &[65535], 0)
            .await
            .unwrap();
        let WeightsResult::Set { report, .. } = res else {
            panic!("expected a direct set: {res:?}")
        };
        assert!(report.is_included(), "{report:?}");
        assert_eq!(report.call, "set_mechanism_weights");
    }

    // Each mechanism's metagraph shows its own incentive once an epoch ran.
    let incentive = |g: &chain::metagraph::Metagraph, uid| g.by_uid(uid).map_or(0, |n| n.incentive);
    let mut paid = None;
    for _ in 0..400 {
        let (m0, m1) = (
            client.mechanism_metagraph(1, 0).await.unwrap(),
            client.mechanism_metagraph(1, 1).await.unwrap(),
        );
        if incentive(&m0, charlie) > 0 && incentive(&m1, dave) > 0 {
            assert_eq!((incentive(&m0, charlie), incentive(&m0, dave)), (65535, 0));
            assert_eq!((incentive(&m1, charlie), incentive(&m1, dave)), (0, 65535));
            assert!(m1.by_uid(0).unwrap().last_update > 0, "mechanism 1's LastUpdate");
            paid = Some(m1);
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let before = paid.expect("an epoch pays both mechanisms");
    let stake = |g: &chain::metagraph::Metagraph, uid| g.by_uid(uid).map_or(0, |n| n.stake);
    // The next epochs pay mechanism 1's miner three times what mechanism 0's gets.
    let mut after = None;
    for _ in 0..400 {
        let g = client.metagraph(1).await.unwrap();
        if stake(&g, dave) > stake(&before, dave) {
            after = Some(g);
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let after = after.expect("another epoch pays");
    let gained = |uid| (stake(&after, uid) - stake(&before, uid)) as f64;
    let ratio = gained(dave) / gained(charlie);
    let want = mechanisms.split(1_000_000_000);
    let want = want[1] as f64 / want[0] as f64;
    assert!(
        (ratio - want).abs() < 1e-3,
        "paid in the ratio {ratio}, split {want}"
    );
    devnet.shutdown().await;
}

/// A CR-v4 commit of mechanism 1's weights (`commit_timelocked_mechanism_weights`, as the SDK 11.3
/// sends it) is stored under mechanism 1's index and opened by the chain into mechanism 1's weights.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timelocked_mechanism_commit_is_opened_into_its_mechanism() {
    use devnet::runtime::Runtime;
    use devnet::subtensor;
    let devnet = devnet(true).await;
    let client = connect(&devnet).await;
    split_subnet_in_two(&devnet, &client).await;
    // Steady-state blocks for the client's block-time measurement (see the test above).
    while client.block_number().await.unwrap() < 20 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let owner = key("//Alice");
    let mec1 = chain::weights::storage_index(1, 1);
    let res = client
        .set_mechanism_weights(&owner, 1, 1, &[0], &[65535], 0)
        .await
        .unwrap();
    let WeightsResult::TimelockCommitted {
        report, reveal_round, ..
    } = res
    else {
        panic!("expected a timelocked commit: {res:?}")
    };
    assert!(report.is_included(), "{report:?}");
    assert_eq!(report.call, "commit_timelocked_mechanism_weights");
    let queued = devnet.with_state(|| {
        subtensor::TimelockedWeightCommits::<Runtime>::iter_prefix(mec1)
            .flat_map(|(_, commits)| commits)
            .map(|(_, _, _, round)| round)
            .collect::<Vec<_>>()
    });
    assert_eq!(queued, vec![reveal_round]);
    let mut opened = false;
    for _ in 0..400 {
        let (m1, m0) = devnet.with_state(|| {
            (
                subtensor::Weights::<Runtime>::get(mec1, 0),
                subtensor::Weights::<Runtime>::get(1, 0),
            )
        });
        if !m1.is_empty() {
            assert_eq!(m1, vec![(0, 65535)]);
            assert!(m0.is_empty(), "mechanism 0 untouched: {m0:?}");
            opened = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(opened, "the chain opened the commit into mechanism 1");
    devnet.shutdown().await;
}

/// A devnet at 50 ms blocks with commit-reveal on and the given tempo.
async fn devnet_with_tempo(tempo: u16) -> Devnet {
    Devnet::spawn(DevnetConfig {
        block_time: Some(Duration::from_millis(50)),
        dev_subnet: true,
        dev_subnet_commit_reveal: true,
        tempo,
        ..DevnetConfig::default()
    })
    .await
    .expect("devnet starts")
}

/// Signs `call` as //Alice (root's key and subnet 1's owner) with a stock subxt client and waits for
/// its success, as an owner's own tooling would send it.
async fn alice_sends(devnet: &Devnet, call: impl subxt::tx::Payload) {
    let api = subxt::OnlineClient::<subxt::config::substrate::SubstrateConfig>::from_url(devnet.ws_url())
        .await
        .expect("subxt connects");
    let at = api.at_current_block().await.expect("block");
    at.transactions()
        .sign_and_submit_then_watch_default(&call, &subxt_signer::sr25519::dev::alice())
        .await
        .expect("submitted")
        .wait_for_finalized_success()
        .await
        .expect("the call succeeded");
}

/// The head block number with `f` read against that block's state (read again if a block was
/// produced in between). (`frame_system`'s block number in the stored head state is not the head's:
/// the devnet's node keeps its own.)
fn at_head<R>(devnet: &Devnet, f: impl Fn() -> R) -> (u64, R) {
    loop {
        let before = devnet.best_number();
        let r = devnet.with_state(&f);
        if devnet.best_number() == before {
            return (u64::from(before), r);
        }
    }
}

/// Waits until the chain opens the owner's timelocked commit into mechanism 1's weights, and returns
/// the subnet's epoch clock as it stood at the first block that showed them: (`SubnetEpochIndex`,
/// `LastEpochBlock`, that block). (Mechanism 1's `LastUpdate` holds the commit's block, not the
/// reveal's.)
async fn opened_into_mechanism_one(devnet: &Devnet) -> (u64, u64, u64) {
    use devnet::runtime::Runtime;
    use devnet::subtensor;
    let mec1 = chain::weights::storage_index(1, 1);
    for _ in 0..800 {
        let (block, opened) = at_head(devnet, || {
            (!subtensor::Weights::<Runtime>::get(mec1, 0).is_empty()).then(|| {
                (
                    subtensor::SubnetEpochIndex::<Runtime>::get(1),
                    subtensor::LastEpochBlock::<Runtime>::get(1),
                )
            })
        });
        if let Some((index, last)) = opened {
            return (index, last, block);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the chain never opened the commit into mechanism 1");
}

/// The epoch a queued timelocked commit of mechanism 1 was stored under.
fn commit_epochs(devnet: &Devnet) -> Vec<u64> {
    use devnet::runtime::Runtime;
    use devnet::subtensor;
    devnet.with_state(|| {
        subtensor::TimelockedWeightCommits::<Runtime>::iter_prefix(chain::weights::storage_index(1, 1))
            .map(|(epoch, _)| epoch)
            .collect()
    })
}

/// Subnet 1's epoch schedule at the head block (`chain::reveal`'s view of it).
fn head_schedule(devnet: &Devnet) -> chain::reveal::EpochSchedule {
    use devnet::runtime::Runtime;
    use devnet::subtensor;
    let (block, s) = at_head(devnet, || chain::reveal::EpochSchedule {
        block: 0,
        index: subtensor::SubnetEpochIndex::<Runtime>::get(1),
        last_epoch_block: subtensor::LastEpochBlock::<Runtime>::get(1),
        pending_at: subtensor::PendingEpochAt::<Runtime>::get(1),
        tempo: u64::from(subtensor::Tempo::<Runtime>::get(1)),
        blocks_since_last_step: subtensor::BlocksSinceLastStep::<Runtime>::get(1),
    });
    chain::reveal::EpochSchedule { block, ..s }
}

/// The owner (a staked validator) commits weights on mechanism 1 through the client; returns the reveal
/// block the client predicted.
async fn commit_to_mechanism_one(client: &ChainClient) -> u64 {
    let res = client
        .set_mechanism_weights(&key("//Alice"), 1, 1, &[0], &[65535], 0)
        .await
        .unwrap();
    let WeightsResult::TimelockCommitted {
        report, reveal_block, ..
    } = res
    else {
        panic!("expected a timelocked commit: {res:?}")
    };
    assert!(report.is_included(), "{report:?}");
    reveal_block
}

/// The client's CR-v4 commit after the owner triggered an epoch (`trigger_epoch`, pending when the
/// commit is sent): the client counts `PendingEpochAt` as the SDK 11.3 does, so it aims at the
/// triggered epoch, 2 s away rather than the tempo's 5 s; the chain opens the commit in the epoch the
/// triggered one begins (`RevealPeriodEpochs` 1), whose first block is the one the client predicted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timelocked_mechanism_commit_is_revealed_in_an_owner_triggered_epoch() {
    use chain::reveal::EpochSchedule;
    use devnet::runtime::Runtime;
    use devnet::subtensor;
    use subxt::dynamic::{self, Value};
    const TEMPO: u64 = 100;
    const WINDOW: u64 = 40;
    let devnet = devnet_with_tempo(TEMPO as u16).await;
    let client = connect(&devnet).await;
    split_subnet_in_two(&devnet, &client).await;
    let set_window = Value::unnamed_variant(
        "AdminUtils",
        [Value::named_variant(
            "sudo_set_admin_freeze_window",
            [("window", Value::from(WINDOW as u16))],
        )],
    );
    alice_sends(
        &devnet,
        dynamic::transaction("Sudo".to_string(), "sudo".to_string(), vec![set_window]),
    )
    .await;
    // Early in an epoch (past block 20, for the client's block-time measurement), so the trigger
    // lands well before the scheduled epoch.
    loop {
        let (now, last) = at_head(&devnet, || subtensor::LastEpochBlock::<Runtime>::get(1));
        if now >= 20 && now.saturating_sub(last) < 10 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    alice_sends(
        &devnet,
        dynamic::transaction(
            "SubtensorModule".to_string(),
            "trigger_epoch".to_string(),
            vec![Value::from(1u16)],
        ),
    )
    .await;
    let head = head_schedule(&devnet);
    let (now, fires_at, index, last) = (head.block, head.pending_at, head.index, head.last_epoch_block);
    assert!(
        fires_at > now + 10,
        "the trigger is pending: fires at {fires_at}, now {now}"
    );
    let scheduled = last + TEMPO;
    assert!(
        fires_at + 20 < scheduled,
        "the trigger moves the epoch ({fires_at} vs {scheduled})"
    );

    let reveal_block = commit_to_mechanism_one(&client).await;
    assert_eq!(
        commit_epochs(&devnet),
        vec![index],
        "committed in the epoch before the trigger"
    );
    assert_eq!(reveal_block, fires_at, "the client aims at the triggered epoch");
    // Without the trigger the same state would have put the reveal at the tempo's epoch.
    let untriggered = EpochSchedule {
        pending_at: 0,
        ..head
    };
    assert_eq!(untriggered.first_reveal_block(1), Ok(scheduled));

    let (epoch, epoch_start, seen_at) = opened_into_mechanism_one(&devnet).await;
    assert_eq!(epoch, index + 1, "opened in the reveal epoch");
    assert_eq!(epoch_start, fires_at, "which the trigger began");
    assert!(
        (fires_at..fires_at + TEMPO).contains(&seen_at),
        "opened by block {seen_at}, in the reveal epoch from {fires_at}"
    );
    devnet.shutdown().await;
}

/// The client's CR-v4 commit after root shortened the tempo (100 → 20 blocks; the cycle restarts at
/// that block, as on subtensor): the client reads the new tempo and `LastEpochBlock`, and the chain
/// opens the commit in the reveal epoch that begins at the block the client predicted. A client that
/// kept the old schedule would have aimed past the end of that epoch, when the chain has already
/// dropped the commit unrevealed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timelocked_mechanism_commit_is_revealed_on_schedule_after_a_tempo_change() {
    use chain::calls::{Hyperparameter, SetupCall};
    const OLD: u64 = 100;
    const NEW: u64 = 20;
    let devnet = devnet_with_tempo(OLD as u16).await;
    let client = connect(&devnet).await;
    split_subnet_in_two(&devnet, &client).await;
    let state = || head_schedule(&devnet);
    // Early in an epoch, past block 20.
    let before = loop {
        let s = state();
        if s.block >= 20 && s.block - s.last_epoch_block < 5 {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let report = client
        .submit(
            &Call::Setup(SetupCall::SudoSet {
                netuid: 1,
                param: Hyperparameter::Tempo(NEW as u16),
            }),
            &key("//Alice"),
        )
        .await;
    assert!(report.is_included(), "{report:?}");
    let after = state();
    assert_eq!(after.tempo, NEW);
    assert!(
        after.last_epoch_block > before.block,
        "the cycle restarted at the new tempo's block"
    );

    let reveal_block = commit_to_mechanism_one(&client).await;
    let committed = commit_epochs(&devnet);
    assert_eq!(committed.len(), 1, "{committed:?}");

    let (epoch, epoch_start, seen_at) = opened_into_mechanism_one(&devnet).await;
    assert_eq!(epoch, committed[0] + 1, "opened in the reveal epoch");
    assert_eq!(
        epoch_start, reveal_block,
        "which begins where the client predicted"
    );
    assert!(
        (reveal_block..reveal_block + NEW).contains(&seen_at),
        "opened by block {seen_at}, in the reveal epoch from {reveal_block}"
    );
    let stale = before.first_reveal_block(1).unwrap();
    assert!(
        stale >= reveal_block + NEW,
        "the old schedule's reveal block {stale} lies past the reveal epoch [{reveal_block}, {})",
        reveal_block + NEW
    );
    devnet.shutdown().await;
}
