//! Inference rounds on the real default model (SmolLM2-135M-Instruct, `round.inference.model =
//! "smollm2"`) against real miner servers holding it (`miner run --model smollm2`): the honest miner passes
//! the CPU verifier at the real-model margin, a lazy miner (half the layers of the real model) fails with a
//! wrong token, a miner without the model is refused (422 `model_not_held`), and replay matches.
//!
//! Needs the model (`scripts/fetch-model.sh`, run by `scripts/install-deps.sh`); without it the test fails
//! with a message naming the script, as `bench-tasks/tests/real_model.rs` does.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bench_tasks::Reason;
use bench_tasks::inference::ModelId;
use bench_tasks::inference::real::{RealModel, SMOLLM2, SMOLLM2_SHA256};
use bench_tasks::matmul::Adversary;
use bench_tasks::wire::TaskClass;
use chain::auth::RequestSigner;
use chain::keys::Keypair;
use common::{endpoint, quick_config, validator_key};
use exchange::Client;
use miner::behavior::Behavior;
use miner::models::HeldModels;
use miner::validators::ValidatorSet;
use miner::{MinerConfig, MinerServer};
use scoring::policy::Policy;
use validator::dashboard::Dashboard;
use validator::ledger::Ledger;
use validator::metrics::Metrics;
use validator::network::StaticNetwork;
use validator::round::{InferenceRoundConfig, RoundConfig, Validator};

async fn start_miner(seed: &str, behavior: Behavior, held: Arc<HeldModels>) -> MinerServer {
    let key = Keypair::from_uri(&format!("//{seed}")).unwrap();
    let mut config = MinerConfig::new(key, ValidatorSet::allow_list([validator_key().account()]));
    config.behavior = behavior;
    config.models = held;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    MinerServer::start(config, listener).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_model_rounds_pass_honest_and_catch_lazy_and_unheld() {
    let real = tokio::task::spawn_blocking(|| RealModel::load(SMOLLM2).unwrap_or_else(|e| panic!("{e}")))
        .await
        .unwrap();
    let held = Arc::new(HeldModels::from_models([Arc::new(real)]));
    let honest = start_miner("r0", Behavior::Honest, held.clone()).await;
    let lazy = start_miner("r1", Behavior::Matmul(Adversary::Lazy { fraction: 0.5 }), held).await;
    let without = start_miner("r2", Behavior::Honest, Arc::new(HeldModels::none())).await;
    let miners = vec![endpoint(0, &honest), endpoint(1, &lazy), endpoint(2, &without)];

    let mut policy = Policy::default();
    policy.tasks.mix = BTreeMap::from([(TaskClass::Matmul, 0.0), (TaskClass::Inference, 1.0)]);
    let key = validator_key();
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path(), policy, &key.ss58(), 1).unwrap();
    let config = RoundConfig {
        challenge_timeout_secs: 120.0,
        inference: InferenceRoundConfig {
            enabled: true,
            model: SMOLLM2.into(),
            batch: 2,
            prompt_len: 8,
            new_tokens: 8,
            sequences: 2,
            ..InferenceRoundConfig::default()
        },
        ..quick_config()
    };
    let v = Validator::new(
        Arc::new(StaticNetwork::new(miners, Duration::from_millis(100))),
        Client::pooled(Arc::new(RequestSigner::new(key)), 2).unwrap(),
        ledger,
        [7; 32],
        config,
        Metrics::new(),
        Dashboard::new(),
    );
    let rec = v.run_round().await.unwrap().record;
    let inference = rec
        .inference
        .clone()
        .expect("the round records its inference parameters");
    assert!(
        matches!(&inference.model, ModelId::Gguf { sha256, .. } if sha256 == SMOLLM2_SHA256),
        "{:?}",
        inference.model
    );
    let by_uid = |uid: u16| rec.miners.iter().find(|m| m.uid == uid).unwrap();
    for m in &rec.miners {
        assert_eq!(m.task, TaskClass::Inference, "uid {}", m.uid);
    }
    assert!(by_uid(0).verdict.passed, "{:?}", by_uid(0).verdict);
    assert_eq!(by_uid(0).verdict.work_units, 16.0);
    assert_eq!(
        by_uid(1).verdict.reason,
        Reason::WrongToken,
        "{:?}",
        by_uid(1).verdict
    );
    let refused = &by_uid(2).verdict;
    assert!(
        !refused.passed && refused.detail.contains("does not hold the model"),
        "{refused:?}"
    );
    assert_eq!(rec.weights.clone().unwrap().uids, vec![0]);
    let log = v.ledger().lock().unwrap().log_path();
    let report = validator::replay::replay(&log).unwrap();
    assert!(report.matches(), "{:?}", report.mismatches);
}
