#!/usr/bin/env python3
"""Writes the table that pins tensorproof's CR-v4 reveal round to the Bittensor SDK's.

For every chain state below it asks the SDK itself (bittensor 11.3.0, through the same
`bittensor_core.get_encrypted_commit_v2` that `bittensor.intents.weights` calls) for the drand round a
timelocked weight commit would be encrypted to, and writes the states and rounds as JSON. The SDK reads
the wall clock, so run it under a frozen one:

    python3 -m venv /tmp/sdk && /tmp/sdk/bin/pip install bittensor==11.3.0
    apt-get install faketime
    faketime -f '@2026-12-01 00:00:00' /tmp/sdk/bin/python chain/tests/sdk/reveal_rounds.py \
        > chain/tests/data/sdk_reveal_rounds.json

`chain/tests/sdk_reveal_round.rs` replays the table through `chain::weights` and `chain::timelock`.
"""
import json
import sys
import time

import bittensor
import bittensor_core

HOTKEY = bytes(32)

BASE = dict(
    last_epoch_block=0,
    pending_epoch_at=0,
    subnet_epoch_index=0,
    tempo=360,
    blocks_since_last_step=0,
    current_block=1000,
    subnet_reveal_period_epochs=1,
    block_time=12.0,
)

# Each case changes some fields of BASE. They cover the schedule's branches: an epoch due in the
# commit's block, one not yet due, an owner-triggered epoch pending before and after the scheduled one,
# a stale BlocksSinceLastStep beyond MAX_TEMPO, longer reveal periods, a changed (shorter, longer) tempo
# with the old LastEpochBlock, tempo 1, the largest tempo, fast-block chains (0.25 s).
CASES = [
    ("base", {}),
    ("next_block", dict(current_block=1001)),
    ("tempo_100", dict(tempo=100)),
    ("mid_epoch", dict(last_epoch_block=990, subnet_epoch_index=7, blocks_since_last_step=10)),
    ("epoch_due_next_block", dict(last_epoch_block=641, subnet_epoch_index=3, blocks_since_last_step=359)),
    ("epoch_due_in_two", dict(last_epoch_block=642, subnet_epoch_index=3, blocks_since_last_step=358)),
    ("just_ran", dict(last_epoch_block=1000, subnet_epoch_index=4)),
    ("pending_soon", dict(last_epoch_block=900, subnet_epoch_index=2, pending_epoch_at=1005, blocks_since_last_step=100)),
    ("pending_next_block", dict(last_epoch_block=900, subnet_epoch_index=2, pending_epoch_at=1001, blocks_since_last_step=100)),
    ("pending_past", dict(last_epoch_block=900, subnet_epoch_index=2, pending_epoch_at=998, blocks_since_last_step=100)),
    ("pending_after_schedule", dict(last_epoch_block=900, subnet_epoch_index=2, pending_epoch_at=1400, blocks_since_last_step=100)),
    ("stale_step_counter", dict(last_epoch_block=900, subnet_epoch_index=2, blocks_since_last_step=60000)),
    ("period_2", dict(last_epoch_block=990, subnet_reveal_period_epochs=2)),
    ("period_3_pending", dict(last_epoch_block=990, pending_epoch_at=1010, subnet_reveal_period_epochs=3)),
    ("tempo_shortened", dict(last_epoch_block=950, tempo=20, subnet_epoch_index=9, blocks_since_last_step=50)),
    ("tempo_lengthened", dict(last_epoch_block=990, tempo=1000, subnet_epoch_index=9, blocks_since_last_step=10)),
    ("tempo_1", dict(last_epoch_block=999, tempo=1, subnet_epoch_index=500)),
    ("tempo_max", dict(last_epoch_block=900, tempo=50400, subnet_epoch_index=1)),
    ("fast_blocks", dict(last_epoch_block=990, block_time=0.25)),
    ("fast_blocks_tempo_10", dict(last_epoch_block=995, tempo=10, block_time=0.25, subnet_reveal_period_epochs=2)),
    ("late_chain", dict(current_block=6_543_210, last_epoch_block=6_543_100, subnet_epoch_index=18_000, tempo=360)),
    ("genesis_first_epoch", dict(current_block=5, tempo=360)),
]


def main() -> None:
    rows = []
    for name, change in CASES:
        state = dict(BASE, **change)
        now = time.time()
        _, reveal_round = bittensor_core.get_encrypted_commit_v2(
            uids=[0], weights=[65535], version_key=0, hotkey=HOTKEY, **state
        )
        rows.append(dict(name=name, now_unix=now, reveal_round=reveal_round, **state))
    # Tempo 0: the SDK refuses (no epochs run).
    try:
        bittensor_core.get_encrypted_commit_v2(
            uids=[0], weights=[65535], version_key=0, hotkey=HOTKEY, **dict(BASE, tempo=0)
        )
        refused = False
    except Exception:  # noqa: BLE001 - the SDK raises its own error type
        refused = True
    json.dump(
        dict(sdk=bittensor.__version__, tempo_zero_refused=refused, cases=rows),
        sys.stdout,
        indent=1,
    )
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
