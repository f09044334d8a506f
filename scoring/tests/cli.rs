//! The `scoring` binary end to end: `yuma` replays an epoch file, `simulate` writes its outputs.

use std::process::Command;

use scoring::yuma::{EpochInput, EpochOutput, run_epoch};

const BIN: &str = env!("CARGO_BIN_EXE_scoring");
const MANIFEST: &str = env!("CARGO_MANIFEST_DIR");

#[test]
fn yuma_prints_the_epoch_output() {
    let path = format!("{MANIFEST}/examples/epoch.json");
    let out = Command::new(BIN)
        .args(["yuma", "--input", &path])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed: EpochOutput = serde_json::from_slice(&out.stdout).unwrap();
    let input: EpochInput = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(printed, run_epoch(&input).unwrap());
    // subtensor's test_bonds numbers for this state.
    assert_eq!(
        printed.validator_emission[..4],
        [49999998, 99999999, 150000000, 200000001]
    );
    assert_eq!(
        printed.server_emission[4..],
        [49998779, 100000610, 149996337, 200004272]
    );
}

#[test]
fn yuma_explains_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"current_block": 1}"#).unwrap();
    let out = Command::new(BIN)
        .args(["yuma", "--input", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not a valid epoch input") && err.contains("missing field"),
        "{err}"
    );

    let missing = dir.path().join("nope.json");
    let out = Command::new(BIN)
        .args(["yuma", "--input", missing.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("could not read the epoch input"));
}

#[test]
fn simulate_writes_outputs_and_prints_the_summary() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = format!("{MANIFEST}/sims/small.toml");
    let out = Command::new(BIN)
        .args([
            "simulate",
            "--config",
            &cfg,
            "--out",
            dir.path().to_str().unwrap(),
            "--epochs",
            "4",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("vs honest") && stdout.contains("epochs/s"),
        "{stdout}"
    );
    let csv = std::fs::read_to_string(dir.path().join("epochs.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 4 * 21);
    assert!(dir.path().join("emission_share.svg").exists());
}
