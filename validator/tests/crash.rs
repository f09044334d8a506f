//! `kill -9` at random moments: the validator binary runs rounds against real miners on loopback and is
//! killed several times; after every restart the state and the round log must agree, no round may be
//! counted twice, and a replay of the log must match.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use miner::behavior::Behavior;
use scoring::policy::Policy;
use validator::ledger::Ledger;
use validator::state::Store;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_dash_nine_loses_nothing_and_counts_nothing_twice() {
    let a = start_miner("k0", Behavior::Honest).await;
    let b = start_miner("k1", Behavior::Honest).await;
    let dir = tempfile::tempdir().unwrap();
    let wallets = dir.path().join("wallets");
    let wallet = chain::wallet::Wallet::new(wallets.to_str().unwrap(), "v", "h").unwrap();
    wallet.write_hotkey(&validator_key(), None, None).unwrap();
    let state = dir.path().join("state");
    let config = dir.path().join("validator.toml");
    std::fs::write(&config, "[round]\nmatmul_sizes = [48]\ninterval_secs = 0.0\n").unwrap();
    let miners = format!(
        "0={}@{},1={}@{}",
        a.hotkey().to_ss58(),
        a.local_addr(),
        b.hotkey().to_ss58(),
        b.local_addr()
    );
    let mut committed_before = 0;
    // Kill times spread over startup, mid-round and commit.
    for (i, ms) in [700u64, 1100, 450, 1600, 900].into_iter().enumerate() {
        let mut child = Command::new(env!("CARGO_BIN_EXE_validator"))
            .args([
                "--wallet-path",
                wallets.to_str().unwrap(),
                "--wallet",
                "v",
                "--hotkey",
                "h",
                "run",
            ])
            .args(["--netuid", "1", "--listen", "127.0.0.1:0", "--miners", &miners])
            .arg("--state-dir")
            .arg(&state)
            .arg("--config")
            .arg(&config)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(ms)).await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();

        // The database is the source of truth; the log file is appended just after each commit, so
        // a kill in between leaves it at most one entry behind, and it must still replay.
        let log = state.join("rounds.log");
        let store = Store::open_dir(&state).unwrap();
        let rounds = store.round_count().unwrap();
        assert_eq!(
            store.last_round().unwrap(),
            rounds,
            "round numbers are contiguous"
        );
        drop(store);
        let before = validator::replay::replay(&log).unwrap();
        assert!(before.matches(), "after kill {i}: {:?}", before.mismatches);
        assert!(
            before.rounds == rounds || before.rounds + 1 == rounds,
            "after kill {i}: the log holds {} rounds, the database {rounds}",
            before.rounds
        );
        // What the next start does first: the ledger restores the log from the database.
        drop(Ledger::open(&state, Policy::default(), "restart", 1).unwrap());
        let report = validator::replay::replay(&log).unwrap();
        assert!(report.matches(), "after kill {i}: {:?}", report.mismatches);
        assert_eq!(
            report.rounds, rounds,
            "after kill {i} and restart: log and database hold the same rounds"
        );
        assert!(rounds >= committed_before, "no committed round was lost");
        committed_before = rounds;
    }
    assert!(committed_before > 0, "some rounds were committed between kills");
}
