//! A short localnet: the embedded devnet, three honest miners and one lazy one, the validator's round
//! loop setting weights through the chain; the chain's incentive must favour every honest miner.

#![cfg(feature = "localnet")]

use std::time::Duration;

use validator::localnet::{LocalnetConfig, LocalnetReport, run};

fn config(commit_reveal: bool) -> LocalnetConfig {
    LocalnetConfig {
        miners: 4,
        adversaries: vec!["lazy:0.1".into()],
        // Three 5-block epochs after the first weights: the last one reads weights set after the
        // lazy miner's first caught round (an epoch right after round 1 pays whatever passed it).
        epochs: 3,
        tempo: 5,
        block_time: Duration::from_millis(100),
        matmul_sizes: vec![32],
        round_interval: Duration::from_millis(100),
        commit_reveal,
        progress: true,
        deadline: Duration::from_secs(300),
        // The seeded preset keeps this test fast; `validator localnet` (and .ci/run) uses SmolLM2.
        inference_model: "seeded".into(),
        serve_api: None,
        api_key: None,
        mechanism: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn honest_miners_out_earn_a_lazy_one_on_chain() {
    let report = run(&config(false)).await.expect("localnet runs");
    check(&report);
    assert_eq!(
        report.weights_call.as_deref(),
        Some("set_mechanism_weights"),
        "{report:?}"
    );
}

/// The validator on mechanism 1 of a subnet split in two (`--mechanism 1`): its weights go to
/// mechanism 1 and the incentive the report reads back (mechanism 1's) favours the honest miners.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weights_on_mechanism_one_pay_honest_miners_there() {
    let report = run(&LocalnetConfig {
        mechanism: 1,
        ..config(false)
    })
    .await
    .expect("localnet runs");
    check(&report);
    assert_eq!(
        report.weights_call.as_deref(),
        Some("set_mechanism_weights"),
        "{report:?}"
    );
}

/// The same through commit-reveal as finney runs it: every weight vector goes on chain as a
/// drand-timelocked (CR-v4) commit, which the devnet opens with its beacon's pulse; incentive can
/// only reach the miners through those reveals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timelocked_weights_reach_the_chain_and_pay_honest_miners() {
    let report = run(&config(true)).await.expect("localnet runs");
    check(&report);
    assert_eq!(
        report.weights_call.as_deref(),
        Some("commit_timelocked_mechanism_weights"),
        "{report:?}"
    );
}

fn check(report: &LocalnetReport) {
    assert!(report.weights_set >= 1, "no weights landed: {report:?}");
    assert!(report.epochs >= 1, "{report:?}");
    assert_eq!(report.miners.len(), 4, "{report:?}");
    let (honest, lazy): (Vec<_>, Vec<_>) = report.miners.iter().partition(|m| m.kind == "honest");
    assert_eq!((honest.len(), lazy.len()), (3, 1), "{report:?}");
    let lazy = lazy[0];
    assert!(lazy.kind.starts_with("lazy"), "{report:?}");
    for m in &honest {
        assert!(m.passed > 0, "honest miner {} never passed: {report:?}", m.uid);
        assert!(
            m.incentive > lazy.incentive,
            "honest uid {} incentive {} is not above the lazy uid {}'s {}: {report:?}",
            m.uid,
            m.incentive,
            lazy.uid,
            lazy.incentive
        );
    }
    // Every uid's incentive on chain sums to about one once weights have been through an epoch.
    let total: f64 = report.miners.iter().map(|m| m.incentive).sum();
    assert!(total > 0.9, "incentive did not reach the miners: {report:?}");
}
