//! When the chain opens a timelocked (CR-v4) weight commit, computed as the Bittensor SDK 11.3 computes
//! it: the first block whose reveal step counts the commit's epoch plus `RevealPeriodEpochs`, found by
//! running subtensor's stateful epoch schedule forward from the chain state read at the head.
//!
//! # The schedule
//! Subtensor's `block_step` does two things per block that matter here, in this order:
//! 1. it reveals timelocked commits, counting the current epoch as `SubnetEpochIndex`, plus one if an
//!    epoch is due in this block (the "lookahead"); extrinsics of the block (a commit) count the same;
//! 2. its coinbase adds one to `BlocksSinceLastStep` and, if an epoch is due, runs it: `LastEpochBlock`
//!    becomes this block, `PendingEpochAt` is cleared, `SubnetEpochIndex` grows by one and
//!    `BlocksSinceLastStep` goes back to zero.
//!
//! An epoch is due in block `b` when the tempo is non-zero and any of: the owner's trigger
//! `PendingEpochAt` is set and reached, `BlocksSinceLastStep` exceeds [`MAX_TEMPO`], or `b −
//! LastEpochBlock ≥ Tempo`. Step 1 tests the step counter as it stood before the block, step 2 after
//! its increment; the SDK keeps that difference and so does [`EpochSchedule`].
//!
//! A commit sent at head block `h` lands in `h + 1`; it is opened in the first block `r ≥ h + 1` whose
//! step 1 counts `commit_epoch + reveal_period` (an equality, as the SDK tests it: a schedule that
//! skips that count never opens the commit, and the search gives up after
//! `(reveal_period + 1) × MAX_TEMPO` blocks).
//!
//! `tests/sdk_reveal_round.rs` pins [`EpochSchedule::first_reveal_block`] and
//! [`crate::timelock::BeaconConfig::round_for`] against rounds the SDK itself returned for a table of
//! chain states (made by `tests/sdk/reveal_rounds.py`).
//!
//! ```
//! use chain::reveal::EpochSchedule;
//!
//! // Tempo 360, the last epoch ran at block 990: the commit sent at block 1000 lands in epoch 0, and
//! // the reveal step of block 1350 is the first to count epoch 1.
//! let head = EpochSchedule {
//!     block: 1000,
//!     index: 0,
//!     last_epoch_block: 990,
//!     pending_at: 0,
//!     tempo: 360,
//!     blocks_since_last_step: 10,
//! };
//! assert_eq!(head.first_reveal_block(1), Ok(1350));
//! ```

/// Subtensor's largest tempo (`MAX_TEMPO`, about a week of 12 s blocks). A `BlocksSinceLastStep` above
/// it forces an epoch.
pub const MAX_TEMPO: u64 = 50_400;

/// Why no reveal block can be computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// Tempo 0: the subnet runs no epochs, so nothing is ever revealed.
    #[error("the subnet's tempo is 0: it runs no epochs, so a timelocked commit would never be revealed")]
    NoEpochs,
    /// The schedule never counted the reveal epoch within the search bound.
    #[error("no block within {searched} blocks counts the reveal epoch {epoch}")]
    NotFound {
        /// The epoch the commit is revealed in.
        epoch: u64,
        /// Blocks searched.
        searched: u64,
    },
}

/// A subnet's stateful epoch schedule as it stands after block `block` (the storage values read at
/// that block).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochSchedule {
    /// The block the values were read at (the chain head when committing).
    pub block: u64,
    /// `SubnetEpochIndex`.
    pub index: u64,
    /// `LastEpochBlock`.
    pub last_epoch_block: u64,
    /// `PendingEpochAt` (0: no owner trigger).
    pub pending_at: u64,
    /// `Tempo`.
    pub tempo: u64,
    /// `BlocksSinceLastStep`.
    pub blocks_since_last_step: u64,
}

impl EpochSchedule {
    /// Whether an epoch is due in block `b`, with `steps` as the step counter to test.
    const fn due_with(&self, b: u64, steps: u64) -> bool {
        self.tempo != 0
            && ((self.pending_at != 0 && b >= self.pending_at)
                || steps > MAX_TEMPO
                || b.saturating_sub(self.last_epoch_block) >= self.tempo)
    }

    /// The epoch that block `self.block + 1` counts in its reveal step and its extrinsics.
    pub const fn epoch_seen_by_next_block(&self) -> u64 {
        let next = self.block + 1;
        self.index + self.due_with(next, self.blocks_since_last_step) as u64
    }

    /// The schedule after the coinbase of block `self.block + 1`.
    #[must_use]
    pub const fn next(&self) -> Self {
        let b = self.block + 1;
        let steps = self.blocks_since_last_step.saturating_add(1);
        if self.due_with(b, steps) {
            Self {
                block: b,
                index: self.index + 1,
                last_epoch_block: b,
                pending_at: 0,
                tempo: self.tempo,
                blocks_since_last_step: 0,
            }
        } else {
            Self {
                block: b,
                blocks_since_last_step: steps,
                ..*self
            }
        }
    }

    /// The first block that reveals a commit sent now (included in `self.block + 1`) with
    /// `reveal_period` epochs to wait (`RevealPeriodEpochs`).
    pub fn first_reveal_block(&self, reveal_period: u64) -> Result<u64, ScheduleError> {
        if self.tempo == 0 {
            return Err(ScheduleError::NoEpochs);
        }
        let target = self.epoch_seen_by_next_block() + reveal_period;
        let searched = reveal_period.saturating_add(1).saturating_mul(MAX_TEMPO);
        let mut state = *self;
        for _ in 0..=searched {
            if state.epoch_seen_by_next_block() == target {
                return Ok(state.block + 1);
            }
            state = state.next();
        }
        Err(ScheduleError::NotFound {
            epoch: target,
            searched,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(block: u64, last_epoch_block: u64, tempo: u64) -> EpochSchedule {
        EpochSchedule {
            block,
            index: 5,
            last_epoch_block,
            pending_at: 0,
            tempo,
            blocks_since_last_step: block - last_epoch_block,
        }
    }

    #[test]
    fn an_epoch_runs_every_tempo_blocks() {
        let mut s = at(100, 100, 10);
        let mut fired = Vec::new();
        for _ in 0..25 {
            s = s.next();
            if s.last_epoch_block == s.block {
                fired.push(s.block);
            }
        }
        assert_eq!(fired, [110, 120]);
        assert_eq!(s.index, 7);
    }

    #[test]
    fn the_reveal_is_one_period_after_the_commit_epoch() {
        // Epoch due at 110; a commit at head 104 lands in epoch 5 and is revealed when epoch 6 begins.
        assert_eq!(at(104, 100, 10).first_reveal_block(1), Ok(110));
        // Committing at head 109 lands in block 110, which already counts epoch 6 (lookahead).
        assert_eq!(at(109, 100, 10).first_reveal_block(1), Ok(120));
        assert_eq!(at(104, 100, 10).first_reveal_block(3), Ok(130));
    }

    #[test]
    fn an_owner_trigger_moves_the_reveal_earlier() {
        let mut s = at(104, 100, 10);
        s.pending_at = 106;
        // Epoch at 106 (trigger), then 116 (tempo from the new LastEpochBlock).
        assert_eq!(s.first_reveal_block(1), Ok(106));
        assert_eq!(s.first_reveal_block(2), Ok(116));
    }

    #[test]
    fn a_tempo_change_applies_from_the_last_epoch_block() {
        // Tempo lowered from 100 to 10 long after the last epoch: due in the very next block.
        let s = at(500, 400, 10);
        assert_eq!(s.epoch_seen_by_next_block(), 6);
        assert_eq!(s.first_reveal_block(1), Ok(511));
    }

    #[test]
    fn a_stale_step_counter_forces_an_epoch() {
        let mut s = at(1000, 900, 360);
        s.blocks_since_last_step = MAX_TEMPO + 1;
        assert_eq!(s.epoch_seen_by_next_block(), 6);
        assert_eq!(s.first_reveal_block(1), Ok(1001 + 360));
    }

    #[test]
    fn tempo_zero_is_refused() {
        assert_eq!(at(10, 5, 0).first_reveal_block(1), Err(ScheduleError::NoEpochs));
    }
}
