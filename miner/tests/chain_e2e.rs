//! `miner run`'s chain path end to end against the embedded devnet, through [`miner::cli::start`] (what
//! `miner run` calls) with a btcli wallet on disk, real sr25519 keys and real HTTP:
//!
//! * an unregistered hotkey stops the start with the btcli command that registers it;
//! * a registered miner calls `serve_axon` when the chain's axon differs from `--external-ip` and the
//!   bound port, and not when it is current or without `--external-ip` (the axon's block, read back
//!   from the metagraph, stays);
//! * the validator set comes from the metagraph: a permitted validator above `--min-stake` is served, a
//!   permitted one below it, a registered hotkey without a permit and an unknown hotkey are refused
//!   with 403 and their reason codes, and a permit granted later is picked up by the refresher;
//! * `miner doctor` with a chain reports the axon as configured, or the misconfiguration.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use chain::bootstrap::{Account, SubnetChoice, SubnetPlan, TAO, bootstrap, wait_for_permit};
use chain::calls::{Call, SetupCall};
use chain::client::{ChainClient, ClientConfig, Network};
use chain::keys::Keypair;
use chain::metagraph::Axon;
use chain::wallet::Wallet;
use clap::Parser;
use devnet::{Devnet, DevnetConfig};
use miner::MinerClient;
use miner::chain_link::AxonAction;
use miner::cli::{Cli, Command, RunArgs, RunningMiner};
use miner::doctor::{ChainTarget, Status};

const NETUID: u16 = 1;
/// `--min-stake` of the miner under test, in TAO.
const MIN_STAKE_TAO: f64 = 10.0;
const WAIT: Duration = Duration::from_secs(60);

fn key(uri: &str) -> Keypair {
    Keypair::from_uri(uri).expect("a valid secret URI")
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("an IP literal")
}

async fn devnet() -> Devnet {
    Devnet::spawn(DevnetConfig {
        block_time: Some(Duration::from_millis(50)),
        dev_subnet: true,
        ..DevnetConfig::default()
    })
    .await
    .expect("devnet starts")
}

async fn client(devnet: &Devnet) -> ChainClient {
    ChainClient::connect(
        &Network::Url(devnet.ws_url()),
        ClientConfig {
            request_timeout: Duration::from_secs(20),
            inclusion_timeout: Duration::from_secs(20),
            ..ClientConfig::default()
        },
    )
    .await
    .expect("client connects")
}

/// `miner run --network <devnet> --netuid 1 --wallet-path <dir>/wallets --wallet miner --hotkey default
/// --bind <bind> --port <port> [--external-ip <external>] --min-stake 10 --metagraph-refresh-secs 1
/// --state-dir <dir>/state`, parsed by the real command line as `miner run` parses it.
fn run_args(devnet: &Devnet, dir: &Path, bind: IpAddr, port: u16, external: Option<IpAddr>) -> RunArgs {
    let mut argv: Vec<String> = [
        "miner",
        "run",
        "--network",
        &devnet.ws_url(),
        "--netuid",
        &NETUID.to_string(),
        "--wallet-path",
        &dir.join("wallets").to_string_lossy(),
        "--wallet",
        "miner",
        "--hotkey",
        "default",
        "--bind",
        &bind.to_string(),
        "--port",
        &port.to_string(),
        "--min-stake",
        &MIN_STAKE_TAO.to_string(),
        "--metagraph-refresh-secs",
        "1",
        "--state-dir",
        &dir.join("state").to_string_lossy(),
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    if let Some(ip) = external {
        argv.extend(["--external-ip".to_owned(), ip.to_string()]);
    }
    let cli = Cli::try_parse_from(argv).expect("the flags parse");
    let Command::Run(args) = cli.command else {
        panic!("`miner run` parsed as another command")
    };
    args.merge_config_file().expect("no config file to merge")
}

async fn axon_of(client: &ChainClient, hotkey: &Keypair) -> Option<Axon> {
    let graph = client.metagraph(NETUID).await.expect("metagraph");
    graph
        .by_hotkey(&hotkey.account())
        .expect("registered hotkey in the metagraph")
        .axon
}

/// The `/v1/ping` status a validator key gets from the miner (200, or the refusal's status and reason).
async fn ping_as(url: &str, miner: &Keypair, validator: &Keypair) -> (u16, String) {
    let client = MinerClient::new(url, miner.account(), validator.clone(), false).expect("client");
    match client.ping(b"are you there".to_vec()).await {
        Ok(echo) => {
            assert_eq!(echo.body, b"are you there", "the miner echoes the body");
            (200, "ok".into())
        }
        Err(e) => (
            e.status()
                .unwrap_or_else(|| panic!("transport failure, not a refusal: {e}")),
            e.reason().unwrap_or_default().to_owned(),
        ),
    }
}

async fn wait_for_block(client: &ChainClient, block: u64) {
    let started = Instant::now();
    while client.block_number().await.expect("block number") < block {
        assert!(
            started.elapsed() < WAIT,
            "the devnet stopped producing blocks before {block}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn served(miner: &RunningMiner) -> AxonAction {
    miner.chain().expect("started on a chain").axon
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn miner_run_on_the_devnet_registers_serves_its_axon_once_and_authorizes_from_the_metagraph() {
    let devnet = devnet().await;
    let chain = client(&devnet).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let miner_key = key("//tensorproof-e2e-miner");
    Wallet::new(dir.path().join("wallets").to_string_lossy(), "miner", "default")
        .expect("wallet names")
        .write_hotkey(&miner_key, None, None)
        .expect("hotkey written");
    let a2 = ip("127.0.0.2");

    // (a) Not registered: the start stops and names the command that registers this very hotkey.
    let err = miner::cli::start(run_args(&devnet, dir.path(), a2, 0, Some(a2)))
        .await
        .expect_err("an unregistered hotkey must not start");
    let message = format!("{err:#}");
    assert!(message.contains(&miner_key.ss58()), "{message}");
    assert!(
        message.contains(&format!(
            "`btcli subnets register --netuid 1 --wallet.name miner --wallet.hotkey default --network {}`",
            devnet.ws_url()
        )),
        "{message}"
    );

    // The subnet: a staked validator (1000 TAO), a validator staked below the floor (1 TAO), a
    // registered hotkey without stake (so without a permit), and the miner, registered without an axon.
    let validator = Account::new(key("//e2e-validator-cold"), key("//e2e-validator"));
    let low = Account::new(key("//e2e-low-cold"), key("//e2e-low"));
    let plain = Account::new(key("//e2e-plain-cold"), key("//e2e-plain"));
    let miner_account = Account::new(key("//e2e-miner-cold"), miner_key.clone());
    let plan = SubnetPlan {
        subnet: SubnetChoice::Existing(NETUID),
        hyperparameters: Vec::new(),
        coldkey_funding: 100 * TAO,
        hotkey_funding: TAO,
        validator_stake: 1000 * TAO,
    };
    bootstrap(
        &chain,
        &key("//Alice"),
        &plan,
        &validator,
        &[miner_account, low.clone(), plain.clone()],
    )
    .await
    .expect("bootstrap");
    let stake = Call::Setup(SetupCall::AddStake {
        hotkey: low.hotkey.account(),
        netuid: NETUID,
        amount: TAO,
    });
    let report = chain.submit(&stake, &low.coldkey).await;
    assert!(report.is_included(), "{report:?}");
    for hotkey in [&validator.hotkey, &low.hotkey] {
        wait_for_permit(&chain, NETUID, &hotkey.account(), WAIT)
            .await
            .expect("permit after an epoch");
    }
    let graph = chain.metagraph(NETUID).await.expect("metagraph");
    let plain_neuron = graph.by_hotkey(&plain.hotkey.account()).expect("registered");
    assert!(
        !plain_neuron.validator_permit,
        "precondition: no stake, no permit"
    );
    assert!(
        graph
            .by_hotkey(&miner_key.account())
            .expect("registered")
            .axon
            .is_none()
    );

    // (b) First start: no axon on chain, so serve_axon with --external-ip and the bound port.
    let first = miner::cli::start(run_args(&devnet, dir.path(), a2, 0, Some(a2)))
        .await
        .expect("a registered miner starts");
    let port = first.server().local_addr().port();
    let expected = SocketAddr::new(a2, port);
    assert_eq!(
        served(&first),
        AxonAction::Served {
            previous: None,
            now: expected
        }
    );
    assert_eq!(first.chain().expect("on chain").netuid, NETUID);
    let axon = axon_of(&chain, &miner_key).await.expect("axon served");
    assert_eq!(SocketAddr::new(axon.ip, axon.port), expected);
    let served_at = axon.block;

    // (c) Validators reach the miner at the address the chain advertises; the set is the metagraph's.
    let url = format!("http://{}:{}", axon.ip, axon.port);
    assert_eq!(
        ping_as(&url, &miner_key, &validator.hotkey).await,
        (200, "ok".into())
    );
    assert_eq!(
        ping_as(&url, &miner_key, &low.hotkey).await,
        (403, "low_stake".into()),
        "a permit with stake below --min-stake is refused"
    );
    assert_eq!(
        ping_as(&url, &miner_key, &plain.hotkey).await,
        (403, "no_permit".into())
    );
    assert_eq!(
        ping_as(&url, &miner_key, &key("//e2e-stranger")).await,
        (403, "unknown_hotkey".into())
    );

    // The refresher picks up a permit granted after the start.
    let stake = Call::Setup(SetupCall::AddStake {
        hotkey: plain.hotkey.account(),
        netuid: NETUID,
        amount: 50 * TAO,
    });
    let report = chain.submit(&stake, &plain.coldkey).await;
    assert!(report.is_included(), "{report:?}");
    wait_for_permit(&chain, NETUID, &plain.hotkey.account(), WAIT)
        .await
        .expect("permit after an epoch");
    let started = Instant::now();
    loop {
        let (status, reason) = ping_as(&url, &miner_key, &plain.hotkey).await;
        if status == 200 {
            break;
        }
        assert_eq!((status, reason.as_str()), (403, "no_permit"));
        assert!(
            started.elapsed() < WAIT,
            "the metagraph refresher never picked up the new permit"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // `miner doctor` with the chain: the axon matches the configured address.
    let state_dir = dir.path().join("state");
    let doctor_key = miner::doctor_key::read_doctor_key(&miner::doctor_key::doctor_key_path(&state_dir))
        .expect("doctor key");
    let target = ChainTarget {
        network: Network::Url(devnet.ws_url()),
        netuid: NETUID,
        external_ip: Some(a2),
    };
    let checks = miner::doctor::run_checks(&url, doctor_key.clone(), 32, Some(&target)).await;
    let line = checks
        .iter()
        .find(|c| c.name == "axon on chain")
        .unwrap_or_else(|| panic!("no axon line:\n{}", miner::doctor::table(&checks)));
    assert_eq!(line.status, Status::Pass, "{}", miner::doctor::table(&checks));
    assert!(line.detail.contains(&expected.to_string()), "{}", line.detail);
    // Configured for another IP than the chain has: a misconfiguration line naming both.
    let elsewhere = ChainTarget {
        external_ip: Some(ip("203.0.113.7")),
        ..target.clone()
    };
    let checks = miner::doctor::run_checks(&url, doctor_key, 32, Some(&elsewhere)).await;
    let line = checks
        .iter()
        .find(|c| c.name == "axon on chain")
        .expect("axon line");
    assert_eq!(line.status, Status::Fail, "{}", miner::doctor::table(&checks));
    assert!(
        line.detail.contains(&expected.to_string()) && line.detail.contains("203.0.113.7"),
        "{}",
        line.detail
    );
    first.shutdown().await;

    // (b) Restart on the same address: nothing is submitted, so the axon's block does not move. (A
    // second serve_axon within the serving rate limit would also be refused and fail the start.)
    let second = miner::cli::start(run_args(&devnet, dir.path(), a2, port, Some(a2)))
        .await
        .expect("restarts");
    assert_eq!(served(&second), AxonAction::Current(expected));
    let now = chain.block_number().await.expect("block");
    wait_for_block(&chain, now + 2).await;
    let axon = axon_of(&chain, &miner_key).await.expect("axon kept");
    assert_eq!(
        (SocketAddr::new(axon.ip, axon.port), axon.block),
        (expected, served_at),
        "an unchanged address must not be served again"
    );
    second.shutdown().await;

    // (b) A new address after the serving rate limit (50 blocks on the devnet): served again.
    wait_for_block(&chain, served_at + 51).await;
    let a3 = ip("127.0.0.3");
    let third = miner::cli::start(run_args(&devnet, dir.path(), a3, port, Some(a3)))
        .await
        .expect("restarts with a new address");
    let moved = SocketAddr::new(a3, port);
    assert_eq!(
        served(&third),
        AxonAction::Served {
            previous: Some(expected),
            now: moved
        }
    );
    let axon = axon_of(&chain, &miner_key).await.expect("axon moved");
    assert_eq!(SocketAddr::new(axon.ip, axon.port), moved);
    assert!(axon.block > served_at, "served at a later block");
    let url = format!("http://{moved}");
    assert_eq!(
        ping_as(&url, &miner_key, &validator.hotkey).await,
        (200, "ok".into())
    );
    third.shutdown().await;

    // Without --external-ip nothing is submitted, whatever the chain has; the start says what it has.
    let fourth = miner::cli::start(run_args(&devnet, dir.path(), a3, 0, None))
        .await
        .expect("starts without --external-ip");
    assert_eq!(
        served(&fourth),
        AxonAction::NotAdvertised {
            on_chain: Some(moved)
        }
    );
    let kept = axon_of(&chain, &miner_key).await.expect("axon kept");
    assert_eq!(
        (SocketAddr::new(kept.ip, kept.port), kept.block),
        (moved, axon.block)
    );
    fourth.shutdown().await;
    devnet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_reports_an_unregistered_miner_hotkey_with_the_register_command() {
    let devnet = devnet().await;
    let dir = tempfile::tempdir().expect("temp dir");
    // A --dev miner with a throwaway hotkey: serving works, but the chain does not know it.
    let args = RunArgs {
        dev: true,
        bind: Some(ip("127.0.0.1")),
        port: Some(0),
        state_dir: Some(dir.path().join("state")),
        ..RunArgs::default()
    };
    let miner = miner::cli::start(args).await.expect("dev miner starts");
    assert!(miner.chain().is_none());
    let url = format!("http://{}", miner.server().local_addr());
    let doctor_key =
        miner::doctor_key::read_doctor_key(&miner::doctor_key::doctor_key_path(&dir.path().join("state")))
            .expect("doctor key");
    let target = ChainTarget {
        network: Network::Url(devnet.ws_url()),
        netuid: NETUID,
        external_ip: None,
    };
    let checks = miner::doctor::run_checks(&url, doctor_key, 32, Some(&target)).await;
    let line = checks
        .iter()
        .find(|c| c.name == "axon on chain")
        .unwrap_or_else(|| panic!("no axon line:\n{}", miner::doctor::table(&checks)));
    assert_eq!(line.status, Status::Fail);
    assert!(
        line.detail.contains(&miner.server().hotkey().to_ss58())
            && line.detail.contains("btcli subnets register --netuid 1"),
        "{}",
        line.detail
    );
    // The other checks still ran and passed: the chain line is one more check, not a gate.
    assert!(
        checks
            .iter()
            .any(|c| c.name == "signed ping" && c.status == Status::Pass),
        "{}",
        miner::doctor::table(&checks)
    );
    // No chain at that address: the line says so and names the flag to fix.
    let nowhere = ChainTarget {
        network: Network::Url("ws://127.0.0.1:9".into()),
        netuid: NETUID,
        external_ip: None,
    };
    let hotkey = miner.server().hotkey();
    let line = miner::doctor::axon_check(&nowhere, &hotkey, &url).await;
    assert_eq!(line.status, Status::Fail);
    assert!(
        line.detail.contains("cannot connect") && line.detail.contains("check --network"),
        "{}",
        line.detail
    );
    miner.shutdown().await;
    devnet.shutdown().await;
}
