//! `miner run --devices`: one worker per device, `/info` lists each, a challenge goes to an idle device
//! while another is busy, and its opening is answered by the device that holds its state. Two flex devices
//! (and flex-compatible wgpu when compiled in) stand in for two GPUs.

use std::sync::mpsc;
use std::time::Duration;

use bench_tasks::matmul::{MatmulDtype, MatmulLimits, RoundParams, RoundSetup};
use bench_tasks::wire::{
    ChallengeRequest, OpenRequest, TaskAnswer, TaskChallenge, TaskOpenRequest, TaskOpenings,
};
use chain::keys::Keypair;
use miner::validators::ValidatorSet;
use miner::{MinerClient, MinerConfig, MinerServer};

fn key(uri: &str) -> Keypair {
    Keypair::from_uri(uri).expect("dev uri")
}

async fn start(devices: Vec<usize>) -> (MinerServer, MinerClient) {
    let miner = key("//Miner");
    let mut config = MinerConfig::new(
        miner.clone(),
        ValidatorSet::allow_list([key("//Alice").account()]),
    );
    config.devices = devices;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let server = MinerServer::start(config, listener).await.expect("server starts");
    let client = MinerClient::new(
        &format!("http://{}", server.local_addr()),
        miner.account(),
        key("//Alice"),
        false,
    )
    .expect("client");
    (server, client)
}

/// Holds the worker of `queue` until the returned sender is dropped or sent to.
async fn hold(server: &MinerServer, slot: usize) -> mpsc::Sender<()> {
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let (entered_tx, entered_rx) = mpsc::channel::<()>();
    let _held = server.queues()[slot]
        .submit(u64::MAX, move |_| {
            entered_tx.send(()).expect("test alive");
            let _ = release_rx.recv_timeout(Duration::from_secs(60));
        })
        .expect("queue accepts");
    tokio::task::spawn_blocking(move || entered_rx.recv())
        .await
        .expect("join")
        .expect("device held");
    release_tx
}

#[tokio::test]
async fn two_devices_two_workers_and_state_stays_on_its_device() {
    let (server, client) = start(vec![0, 1]).await;
    let info = client.info().await.expect("info");
    assert_eq!(info.devices.len(), 2, "{info:?}");
    assert_eq!(
        info.devices.iter().map(|d| d.index).collect::<Vec<_>>(),
        vec![0, 1]
    );
    assert!(
        info.devices
            .iter()
            .all(|d| d.backend == "flex" && !d.name.is_empty())
    );
    assert_eq!(info.device, info.devices[0].name);
    assert_eq!(server.queues().len(), 2);

    // Device 0 is busy: the challenge must run on device 1 and answer while device 0 stays held.
    let release = hold(&server, 0).await;
    let setup = RoundSetup::new(
        RoundParams::new(64, 3).with_dtype(MatmulDtype::Bf16),
        [5; 32],
        &MatmulLimits::default(),
    )
    .expect("round");
    let challenge = setup.challenge(0x77);
    let request = ChallengeRequest {
        id: "on-device-1".into(),
        challenge: TaskChallenge::Matmul(challenge),
    };
    let answer = tokio::time::timeout(Duration::from_secs(30), client.challenge(&request))
        .await
        .expect("answered while device 0 is held: it ran on device 1")
        .expect("round 1");
    assert_eq!(
        answer.body.device,
        Some(1),
        "the answer names the device that computed it"
    );
    let TaskAnswer::Matmul(sketch) = answer.body.answer else {
        panic!("a matmul challenge got another task's answer")
    };
    assert_eq!(server.queues()[0].load(), 1, "device 0 still runs the held job");

    // The opening must go to device 1, which holds the state: device 0 is still held, so an opening
    // sent there would not answer in time.
    let rows = setup.choose_openings(challenge.miner_seed);
    let open = OpenRequest {
        id: "on-device-1".into(),
        open: TaskOpenRequest::Matmul(rows.clone()),
    };
    let openings = tokio::time::timeout(Duration::from_secs(30), client.open(&open))
        .await
        .expect("opened by device 1")
        .expect("round 2");
    let TaskOpenings::Matmul(openings) = openings.body.openings;
    let verdict = setup.verify(&challenge, &sketch, &rows, &openings);
    assert!(verdict.passed, "{verdict:?}");
    release.send(()).expect("held job waits");
    server.shutdown().await;
}

#[tokio::test]
async fn one_device_by_default() {
    let (server, client) = start(Vec::new()).await;
    let info = client.info().await.expect("info");
    assert_eq!(info.devices.len(), 1);
    assert_eq!(info.devices[0].index, 0);
    server.shutdown().await;
}
