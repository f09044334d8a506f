//! A short localnet: the embedded devnet, three honest miners and one lazy one, the validator's round
//! loop setting weights through the chain; the chain's incentive must favour every honest miner.

#![cfg(feature = "localnet")]

use std::time::Duration;

use validator::localnet::{LocalnetConfig, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn honest_miners_out_earn_a_lazy_one_on_chain() {
    let config = LocalnetConfig {
        miners: 4,
        adversaries: vec!["lazy:0.1".into()],
        epochs: 1,
        tempo: 5,
        block_time: Duration::from_millis(100),
        matmul_sizes: vec![32],
        round_interval: Duration::from_millis(100),
        progress: true,
        deadline: Duration::from_secs(300),
    };
    let report = run(&config).await.expect("localnet runs");
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
