//! Inference challenges in the round loop, against real miner servers over loopback: honest miners pass,
//! inference cheaters fail with a wrong token, the task mix follows the policy and replay matches.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bench_tasks::Reason;
use bench_tasks::matmul::Adversary;
use bench_tasks::wire::TaskClass;
use chain::auth::RequestSigner;
use common::*;
use exchange::{Client, MinerEndpoint};
use miner::behavior::Behavior;
use scoring::policy::Policy;
use validator::dashboard::Dashboard;
use validator::ledger::Ledger;
use validator::metrics::Metrics;
use validator::network::StaticNetwork;
use validator::round::{InferenceRoundConfig, RoundConfig, Validator};

/// Quick rounds with a tiny inference challenge (B = 2, L = 4, T = 8).
fn config() -> RoundConfig {
    RoundConfig {
        inference: InferenceRoundConfig {
            enabled: true,
            model_seed: 9,
            batch: 2,
            prompt_len: 4,
            new_tokens: 8,
            sequences: 2,
            ..InferenceRoundConfig::default()
        },
        ..quick_config()
    }
}

/// A validator whose policy weighs matmul and inference as given.
fn validator_with_mix(
    dir: &std::path::Path,
    miners: Vec<MinerEndpoint>,
    matmul: f64,
    inference: f64,
    metrics: Metrics,
) -> Validator<StaticNetwork> {
    let mut policy = Policy::default();
    policy.tasks.mix = BTreeMap::from([(TaskClass::Matmul, matmul), (TaskClass::Inference, inference)]);
    let key = validator_key();
    let ledger = Ledger::open(dir, policy, &key.ss58(), 1).unwrap();
    let client = Client::pooled(Arc::new(RequestSigner::new(key)), 2).unwrap();
    Validator::new(
        Arc::new(StaticNetwork::new(miners, Duration::from_millis(100))),
        client,
        ledger,
        [42; 32],
        config(),
        metrics,
        Dashboard::new(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn honest_inference_passes_and_cheaters_fail_with_wrong_tokens() {
    let honest = start_miner("i0", Behavior::Honest).await;
    let lazy = start_miner("i1", Behavior::Matmul(Adversary::Lazy { fraction: 0.5 })).await;
    let forge = start_miner("i2", Behavior::Matmul(Adversary::ForgedSketch)).await;
    let miners = vec![endpoint(0, &honest), endpoint(1, &lazy), endpoint(2, &forge)];
    let dir = tempfile::tempdir().unwrap();
    let metrics = Metrics::new();
    let v = validator_with_mix(dir.path(), miners, 0.0, 1.0, metrics.clone());
    let rec = v.run_round().await.unwrap().record;
    let inference = rec
        .inference
        .clone()
        .expect("the round records its inference parameters");
    assert_eq!((inference.batch, inference.new_tokens), (2, 8));
    let by_uid = |uid: u16| rec.miners.iter().find(|m| m.uid == uid).unwrap();
    for m in &rec.miners {
        assert_eq!(m.task, TaskClass::Inference, "uid {}", m.uid);
    }
    let h = by_uid(0);
    assert!(h.verdict.passed, "{:?}", h.verdict);
    assert_eq!(h.verdict.work_units, 16.0, "work units are the generated tokens");
    assert!(h.total_ms.is_some() && h.answer_hash.is_some());
    // lazy → fewer layers, forge → random tokens: both produce tokens the model does not predict.
    for uid in [1, 2] {
        assert_eq!(
            by_uid(uid).verdict.reason,
            Reason::WrongToken,
            "{:?}",
            by_uid(uid).verdict
        );
    }
    assert!(
        rec.observations
            .iter()
            .all(|o| o.task_class == TaskClass::Inference)
    );
    assert_eq!(rec.weights.clone().unwrap().uids, vec![0]);
    let text = metrics.render();
    assert!(
        text.contains("validator_verdicts_total{task=\"inference\",reason=\"passed\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("validator_verdicts_total{task=\"inference\",reason=\"wrong_token\"} 2"),
        "{text}"
    );
    assert!(text.contains("step=\"inference_verify\""), "{text}");
    let log = v.ledger().lock().unwrap().log_path();
    let report = validator::replay::replay(&log).unwrap();
    assert!(report.matches(), "{:?}", report.mismatches);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_rounds_send_both_tasks_and_replay_matches() {
    let honest = [
        start_miner("x0", Behavior::Honest).await,
        start_miner("x1", Behavior::Honest).await,
    ];
    let lazy = start_miner("x2", Behavior::Matmul(Adversary::Lazy { fraction: 0.5 })).await;
    let miners = vec![
        endpoint(0, &honest[0]),
        endpoint(1, &honest[1]),
        endpoint(2, &lazy),
    ];
    let dir = tempfile::tempdir().unwrap();
    let v = validator_with_mix(dir.path(), miners, 1.0, 1.0, Metrics::new());
    let mut classes = std::collections::BTreeSet::new();
    for _ in 0..3 {
        let rec = v.run_round().await.unwrap().record;
        for m in &rec.miners {
            classes.insert(m.task);
            if m.uid == 2 {
                assert!(
                    matches!(
                        m.verdict.reason,
                        Reason::WrongSketch | Reason::WrongRow | Reason::WrongToken
                    ),
                    "{:?}",
                    m.verdict
                );
            } else {
                assert!(
                    m.verdict.passed,
                    "honest uid {} on {}: {:?}",
                    m.uid, m.task, m.verdict
                );
            }
        }
    }
    assert_eq!(
        classes.into_iter().collect::<Vec<_>>(),
        vec![TaskClass::Inference, TaskClass::Matmul],
        "a 1:1 mix sends both tasks over three rounds"
    );
    let log = v.ledger().lock().unwrap().log_path();
    let report = validator::replay::replay(&log).unwrap();
    assert!(report.matches(), "{:?}", report.mismatches);
    assert_eq!(report.rounds, 3);
}
