//! A miner holding the real default model (SmolLM2-135M-Instruct, `--model smollm2`) on a loopback port,
//! driven over signed HTTP: `/info` lists it by name and sha256, a challenge on it passes the validator's
//! verifier at the real-model margin, a challenge on a file it does not hold gets 422 `model_not_held`,
//! and the device worker hands out the built model with its tokenizer.
//!
//! Needs the model (`scripts/fetch-model.sh`, run by `scripts/install-deps.sh`); without it the tests fail
//! with a message naming the script, as `bench-tasks/tests/real_model.rs` does.

use std::sync::{Arc, OnceLock};

use bench_tasks::inference::real::{REAL_MODEL_MARGIN, RealModel, SMOLLM2, SMOLLM2_SHA256};
use bench_tasks::inference::{InferenceChallenge, ModelId, Transformer, Verifier, pick_sequences};
use bench_tasks::wire::{ChallengeRequest, TaskAnswer, TaskChallenge};
use burn::tensor::Device;
use chain::keys::Keypair;
use miner::models::HeldModels;
use miner::tasks::ModelError;
use miner::validators::ValidatorSet;
use miner::{MinerClient, MinerConfig, MinerServer};

/// The default model, loaded once for every test (it is 650 MB of f32 weights).
fn smollm2() -> Arc<RealModel> {
    static CELL: OnceLock<Arc<RealModel>> = OnceLock::new();
    CELL.get_or_init(|| Arc::new(RealModel::load(SMOLLM2).unwrap_or_else(|e| panic!("{e}"))))
        .clone()
}

fn key(uri: &str) -> Keypair {
    Keypair::from_uri(uri).expect("dev uri")
}

async fn start() -> (MinerServer, MinerClient) {
    let miner = key("//RealModelMiner");
    let mut config = MinerConfig::new(
        miner.clone(),
        ValidatorSet::allow_list([key("//Alice").account()]),
    );
    config.models = Arc::new(HeldModels::from_models([smollm2()]));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let server = MinerServer::start(config, listener).await.expect("server starts");
    let url = format!("http://{}", server.local_addr());
    let client = MinerClient::new(&url, miner.account(), key("//Alice"), false).expect("client");
    (server, client)
}

fn challenge(model: ModelId, seed: u64) -> InferenceChallenge {
    InferenceChallenge {
        model,
        seed,
        batch: 2,
        prompt_len: 8,
        new_tokens: 6,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_held_model_is_listed_served_and_verified_and_others_are_refused() {
    let real = tokio::task::spawn_blocking(smollm2).await.expect("loads");
    let (server, client) = start().await;

    // /info lists the held model with the miner's generation limits.
    let info = client.info().await.expect("info");
    let limits = miner::Limits::default();
    assert_eq!(info.models.len(), 1, "{:?}", info.models);
    let listed = &info.models[0];
    assert_eq!(
        (
            listed.name.as_str(),
            listed.sha256.as_str(),
            listed.precision.as_str()
        ),
        (SMOLLM2, SMOLLM2_SHA256, "f32")
    );
    assert_eq!(listed.context_length, real.config().max_seq_len);
    assert_eq!(
        (listed.max_sequences, listed.max_tokens),
        (limits.generate.max_sequences, limits.generate.max_tokens)
    );

    // A challenge on it is answered and passes the validator's check at the real-model margin.
    let c = challenge(real.id.clone(), 21);
    let request = ChallengeRequest {
        id: "real-1".into(),
        challenge: TaskChallenge::Inference(c.clone()),
    };
    let reply = client.challenge(&request).await.expect("answers").body;
    let TaskAnswer::Inference(answer) = reply.answer else {
        panic!("an inference challenge got another task's answer")
    };
    assert_eq!(answer.tokens.len(), 2);
    let checked = real.clone();
    let verdict = tokio::task::spawn_blocking(move || {
        let model = Transformer::from_weights(&checked.weights, &Device::flex()).expect("model");
        Verifier::new(checked.id.clone(), model, limits.inference)
            .with_margin(REAL_MODEL_MARGIN)
            .verify(&c, &answer, &pick_sequences(2, 2, 9))
    })
    .await
    .expect("verifier thread");
    assert!(verdict.passed, "{verdict:?}");

    // A file the miner does not hold: 422 model_not_held, pointing at /info, before any device work.
    let busy = server.metrics().device_busy_seconds.get();
    let ModelId::Gguf { config, .. } = &real.id else {
        panic!("{:?}", real.id)
    };
    let unheld = ModelId::Gguf {
        name: "other".into(),
        sha256: "ab".repeat(32),
        config: *config,
    };
    let request = ChallengeRequest {
        id: "real-unheld".into(),
        challenge: TaskChallenge::Inference(challenge(unheld, 22)),
    };
    let err = client.challenge(&request).await.unwrap_err();
    assert_eq!((err.status(), err.reason()), (Some(422), Some("model_not_held")));
    assert!(err.to_string().contains("/info"), "{err}");

    // The held file with another shape than its own: a bad challenge.
    let mut wrong_shape = *config;
    wrong_shape.max_seq_len = 64;
    let request = ChallengeRequest {
        id: "real-shape".into(),
        challenge: TaskChallenge::Inference(challenge(
            ModelId::Gguf {
                name: SMOLLM2.into(),
                sha256: SMOLLM2_SHA256.into(),
                config: wrong_shape,
            },
            23,
        )),
    };
    let err = client.challenge(&request).await.unwrap_err();
    assert_eq!((err.status(), err.reason()), (Some(422), Some("bad_challenge")));
    assert_eq!(
        server.metrics().device_busy_seconds.get(),
        busy,
        "the refused challenges never reached the device"
    );

    // The device worker hands out the built model with its tokenizer, by name or sha256.
    let found = server
        .queue()
        .submit(0, |context| {
            let by_name = context.real_model(SMOLLM2).map(|r| {
                (
                    r.id.clone(),
                    r.tokenizer.encode("Paris").ok(),
                    r.model.config().n_layers,
                )
            });
            let by_hash = context.real_model(SMOLLM2_SHA256).map(|r| r.id.clone());
            let unknown = matches!(context.real_model("llama-70b"), Err(ModelError::NotHeld { .. }));
            (by_name, by_hash, unknown, context.models.len())
        })
        .expect("queued")
        .await
        .expect("ran");
    let (by_name, by_hash, unknown, built) = found;
    let (id, paris, layers) = by_name.expect("held by name");
    assert_eq!(id, real.id);
    assert_eq!(paris, real.tokenizer.encode("Paris").ok());
    assert!(paris.is_some_and(|ids| !ids.is_empty()));
    assert_eq!(layers, real.config().n_layers);
    assert_eq!(by_hash.expect("held by sha256"), real.id);
    assert!(unknown, "an unknown model is NotHeld");
    assert_eq!(built, 1, "the challenge's model is reused, not built again");
    server.shutdown().await;
}
