//! The CR-v4 reveal round, pinned against the Bittensor SDK 11.3 itself.
//!
//! `tests/data/sdk_reveal_rounds.json` holds chain states and the drand round the SDK's
//! `get_encrypted_commit_v2` chose for each, under a frozen clock (the script that made it is
//! `tests/sdk/reveal_rounds.py`). Each state is run through [`EpochSchedule::first_reveal_block`] and
//! [`BeaconConfig::round_for`], and the rounds must be equal.

use chain::reveal::{EpochSchedule, ScheduleError};
use chain::timelock::BeaconConfig;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Table {
    sdk: String,
    tempo_zero_refused: bool,
    cases: Vec<Case>,
}

#[derive(Debug, Deserialize)]
struct Case {
    name: String,
    now_unix: f64,
    reveal_round: u64,
    last_epoch_block: u64,
    pending_epoch_at: u64,
    subnet_epoch_index: u64,
    tempo: u64,
    blocks_since_last_step: u64,
    current_block: u64,
    subnet_reveal_period_epochs: u64,
    block_time: f64,
}

fn table() -> Table {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/sdk_reveal_rounds.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn reveal_rounds_equal_the_sdks_for_every_chain_state() {
    let table = table();
    assert_eq!(table.sdk, "11.3.0");
    assert!(table.cases.len() >= 20);
    let quicknet = BeaconConfig::quicknet();
    let mut wrong = Vec::new();
    for case in &table.cases {
        let head = EpochSchedule {
            block: case.current_block,
            index: case.subnet_epoch_index,
            last_epoch_block: case.last_epoch_block,
            pending_at: case.pending_epoch_at,
            tempo: case.tempo,
            blocks_since_last_step: case.blocks_since_last_step,
        };
        let reveal_block = head
            .first_reveal_block(case.subnet_reveal_period_epochs)
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        assert!(reveal_block > case.current_block, "{}", case.name);
        let now_ms = (case.now_unix * 1000.0).floor() as u64;
        let block_time_ms = (case.block_time * 1000.0).round() as u64;
        let round = quicknet.round_for(now_ms, reveal_block - case.current_block, block_time_ms);
        if round != case.reveal_round {
            wrong.push(format!(
                "{}: ours {round} (reveal block {reveal_block}), the SDK's {}",
                case.name, case.reveal_round
            ));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn tempo_zero_is_refused_like_the_sdk_refuses_it() {
    assert!(table().tempo_zero_refused);
    let head = EpochSchedule {
        block: 1000,
        index: 0,
        last_epoch_block: 0,
        pending_at: 0,
        tempo: 0,
        blocks_since_last_step: 0,
    };
    assert_eq!(head.first_reveal_block(1), Err(ScheduleError::NoEpochs));
}
