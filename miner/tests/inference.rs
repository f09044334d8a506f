//! The inference task over a real miner server on loopback: advertised in `/info`, answered in one
//! round and passed by bench-tasks' verifier, oversize refused before any work, `miner doctor` end to end.

use std::time::Duration;

use bench_tasks::inference::{
    HostWeights, InferenceChallenge, ModelId, Preset, Transformer, Verifier, pick_sequences,
};
use bench_tasks::wire::{
    ChallengeRequest, OpenRequest, TaskAnswer, TaskChallenge, TaskClass, TaskOpenRequest,
};
use burn::tensor::Device;
use chain::keys::Keypair;
use miner::validators::ValidatorSet;
use miner::{MinerClient, MinerConfig, MinerServer};

fn key(uri: &str) -> Keypair {
    Keypair::from_uri(uri).expect("dev uri")
}

async fn start() -> (MinerServer, MinerClient) {
    start_with(miner::Limits::default()).await
}

async fn start_with(limits: miner::Limits) -> (MinerServer, MinerClient) {
    let miner = key("//InferenceMiner");
    let mut config = MinerConfig::new(
        miner.clone(),
        ValidatorSet::allow_list([key("//Alice").account()]),
    );
    config.limits = limits;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let server = MinerServer::start(config, listener).await.expect("server starts");
    let url = format!("http://{}", server.local_addr());
    let client = MinerClient::new(&url, miner.account(), key("//Alice"), false).expect("client");
    (server, client)
}

fn tiny(seed: u64, batch: usize, new_tokens: usize) -> InferenceChallenge {
    InferenceChallenge {
        model: ModelId::Seeded {
            preset: Preset::Tiny,
            seed: 5,
        },
        seed,
        batch,
        prompt_len: 4,
        new_tokens,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn honest_inference_answer_passes_and_oversize_is_refused() {
    let (server, client) = start().await;
    let info = client.info().await.expect("info");
    let served = info
        .tasks
        .iter()
        .find(|t| t.task == TaskClass::Inference)
        .and_then(|t| t.inference.clone())
        .expect("inference is advertised");
    assert!(served.presets.contains(&Preset::Tiny), "{served:?}");

    let challenge = tiny(11, 2, 6);
    let request = ChallengeRequest {
        id: "inf-1".into(),
        challenge: TaskChallenge::Inference(challenge.clone()),
    };
    let reply = client.challenge(&request).await.expect("answers").body;
    let TaskAnswer::Inference(answer) = reply.answer else {
        panic!("an inference challenge got another task's answer")
    };
    assert_eq!(answer.tokens.len(), 2);
    let limits = served.limits;
    let verdict = tokio::task::spawn_blocking(move || {
        let model =
            Transformer::from_weights(&HostWeights::seeded(Preset::Tiny.config(), 5), &Device::flex())
                .expect("model");
        Verifier::new(challenge.model.clone(), model, limits).verify(
            &challenge,
            &answer,
            &pick_sequences(2, 2, 3),
        )
    })
    .await
    .expect("verifier thread");
    assert!(verdict.passed, "{verdict:?}");
    assert_eq!(verdict.work_units, 12.0);

    // One round: no state is kept, so an opening for it is an unknown challenge.
    let open = OpenRequest {
        id: "inf-1".into(),
        open: TaskOpenRequest::Matmul(bench_tasks::matmul::OpeningRequest { rows: vec![0] }),
    };
    let err = client.open(&open).await.unwrap_err();
    assert_eq!(err.reason(), Some("unknown_challenge"));

    // Beyond the advertised batch cap: refused before the device runs.
    let busy = server.metrics().device_busy_seconds.get();
    let request = ChallengeRequest {
        id: "inf-big".into(),
        challenge: TaskChallenge::Inference(tiny(12, limits.max_batch + 1, 4)),
    };
    let err = client.challenge(&request).await.unwrap_err();
    assert_eq!(
        (err.status(), err.reason()),
        (Some(422), Some("challenge_too_large"))
    );
    assert_eq!(
        server.metrics().device_busy_seconds.get(),
        busy,
        "the device never ran"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_runs_the_inference_task_end_to_end() {
    let (server, _client) = start().await;
    let url = format!("http://{}", server.local_addr());
    let checks = tokio::time::timeout(
        Duration::from_secs(300),
        miner::doctor::run_checks(&url, key("//Alice"), 32, None),
    )
    .await
    .expect("doctor finishes");
    let inference = checks
        .iter()
        .find(|c| c.name.starts_with("inference tiny"))
        .expect("doctor ran inference");
    assert_eq!(inference.status, miner::doctor::Status::Pass, "{inference:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inference_memory_cap_limits_presets_and_refuses_big_batches() {
    // Room for the tiny weights and little else.
    let cap = miner::tasks::weight_bytes(Preset::Tiny) + (1 << 20);
    let limits = miner::Limits {
        inference_memory_cap_bytes: cap,
        ..miner::Limits::default()
    };
    let (server, client) = start_with(limits.clone()).await;
    let info = client.info().await.expect("info");
    let served = info
        .tasks
        .iter()
        .find_map(|t| t.inference.clone())
        .expect("inference is advertised");
    assert_eq!(served.presets, vec![Preset::Tiny]);

    let big = tiny(3, limits.inference.max_batch, 64);
    assert!(miner::tasks::inference_work_bytes(&big) > cap);
    let request = ChallengeRequest {
        id: "inf-mem".into(),
        challenge: TaskChallenge::Inference(big),
    };
    let err = client.challenge(&request).await.unwrap_err();
    assert_eq!(err.reason(), Some("challenge_too_large"));
    let mut other_preset = tiny(4, 1, 2);
    other_preset.model = ModelId::Seeded {
        preset: Preset::Small,
        seed: 1,
    };
    let request = ChallengeRequest {
        id: "inf-preset".into(),
        challenge: TaskChallenge::Inference(other_preset),
    };
    let err = client.challenge(&request).await.unwrap_err();
    assert_eq!(err.reason(), Some("challenge_too_large"));
    assert_eq!(
        server.metrics().device_busy_seconds.get(),
        0.0,
        "the device never ran"
    );
}
