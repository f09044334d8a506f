//! Weight-setting rules as subtensor enforces them: the CR-v2 commit hash, input checks done before
//! submitting (so a bad vector fails here with a clear message instead of in the pool), the choice
//! between `set_weights` and commit-reveal, and rate-limit arithmetic.
//!
//! Weights arrive as `u16` vectors; converting scores into them is the `scoring` crate's job.
//!
//! ```
//! use chain::keys::Keypair;
//! use chain::weights::commit_hash;
//!
//! // The vector from subtensor-interface.md §3.1 (equal to the Python SDK's generate_weight_hash).
//! let alice = Keypair::from_uri("//Alice").unwrap().account();
//! let salt: Vec<u16> = (1..=8).collect();
//! let hash = commit_hash(&alice, 1, &[0, 1], &[10, 10], &salt, 0);
//! assert_eq!(hex::encode(hash), "d9bf9b22a51844e113d525eaadc9ae576918c6590431b199dd8534c19cebc517");
//! ```

use parity_scale_codec::Encode;
use scoring::weights::ChainLimits;

use crate::keys::AccountId;

/// subtensor's `GLOBAL_MAX_SUBNET_COUNT`: mechanism storage indices are `netuid + mecid * 4096`.
pub const GLOBAL_MAX_SUBNET_COUNT: u16 = 4096;

/// The per-mechanism storage index (`NetUidStorageIndex`); mechanism 0 gives `netuid`.
pub fn storage_index(netuid: u16, mecid: u8) -> u16 {
    netuid.wrapping_add(u16::from(mecid).wrapping_mul(GLOBAL_MAX_SUBNET_COUNT))
}

/// The CR-v2 commit hash: blake2b-256 of the SCALE encoding of
/// `(who, netuid_index, uids, values, salt, version_key)` (subtensor `get_commit_hash`).
pub fn commit_hash(
    who: &AccountId,
    netuid_index: u16,
    uids: &[u16],
    values: &[u16],
    salt: &[u16],
    version_key: u64,
) -> [u8; 32] {
    let preimage = (who.0, netuid_index, uids, values, salt, version_key).encode();
    sp_crypto_hashing::blake2_256(&preimage)
}

/// A fresh random salt of `len` u16 values (the SDK uses 8).
pub fn random_salt(len: usize) -> Vec<u16> {
    (0..len).map(|_| rand::random::<u16>()).collect()
}

/// A weight vector the chain would refuse; each message names the fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WeightsError {
    /// `uids` and `values` differ in length.
    #[error("{uids} uids but {values} weights; pass one weight per uid")]
    LengthMismatch {
        /// uids given.
        uids: usize,
        /// values given.
        values: usize,
    },
    /// Every weight is zero (after dropping zeros nothing is left).
    #[error("all weights are zero; the chain keeps the previous weights, so there is nothing to set")]
    Empty,
    /// A uid appears twice.
    #[error("uid {0} appears twice; merge its weights into one entry")]
    DuplicateUid(u16),
    /// A uid beyond the subnet size.
    #[error(
        "uid {uid} does not exist (the subnet has {n} uids); resync the metagraph and rebuild the vector"
    )]
    UnknownUid {
        /// The uid.
        uid: u16,
        /// Subnet size.
        n: u16,
    },
    /// Fewer entries than `MinAllowedWeights`.
    #[error(
        "{got} non-zero weights but the subnet requires at least {need} (MinAllowedWeights); score more miners"
    )]
    TooFew {
        /// Entries given.
        got: usize,
        /// Entries required.
        need: usize,
    },
    /// One weight exceeds `MaxWeightsLimit` after normalization.
    #[error(
        "uid {uid} holds {share:.4} of the weight, above the subnet's MaxWeightsLimit {limit:.4}; spread the weight"
    )]
    MaxWeightExceeded {
        /// The uid.
        uid: u16,
        /// Its normalized share.
        share: f64,
        /// The limit as a fraction.
        limit: f64,
    },
}

/// Drops zero entries (the SDK does the same) and checks the vector against the subnet rules, in the
/// chain's order (§2.1 of the reference). `own_uid` enables the self-weight exemptions.
pub fn prepare(
    uids: &[u16],
    values: &[u16],
    own_uid: Option<u16>,
    rules: &ChainLimits,
) -> Result<(Vec<u16>, Vec<u16>), WeightsError> {
    if uids.len() != values.len() {
        return Err(WeightsError::LengthMismatch {
            uids: uids.len(),
            values: values.len(),
        });
    }
    let (uids, values): (Vec<u16>, Vec<u16>) = uids
        .iter()
        .zip(values)
        .filter(|(_, v)| **v > 0)
        .map(|(u, v)| (*u, *v))
        .unzip();
    if uids.is_empty() {
        return Err(WeightsError::Empty);
    }
    let mut seen = std::collections::HashSet::with_capacity(uids.len());
    for &uid in &uids {
        if !seen.insert(uid) {
            return Err(WeightsError::DuplicateUid(uid));
        }
    }
    if let Some(&uid) = uids.iter().find(|&&u| u >= rules.n) {
        return Err(WeightsError::UnknownUid { uid, n: rules.n });
    }
    let self_weight = uids.len() == 1 && Some(uids[0]) == own_uid;
    let need = usize::from(rules.min_allowed_weights.min(rules.n));
    if !self_weight && uids.len() < need {
        return Err(WeightsError::TooFew {
            got: uids.len(),
            need,
        });
    }
    if !self_weight && rules.max_weight_limit != u16::MAX {
        let sum: u64 = values.iter().map(|&v| u64::from(v)).sum();
        if let Some((i, &max)) = values.iter().enumerate().max_by_key(|(_, v)| **v) {
            // max / sum <= limit / 65535, compared exactly in integers.
            if u64::from(max) * 65_535 > u64::from(rules.max_weight_limit) * sum {
                return Err(WeightsError::MaxWeightExceeded {
                    uid: uids[i],
                    share: f64::from(max) / sum as f64,
                    limit: f64::from(rules.max_weight_limit) / 65_535.0,
                });
            }
        }
    }
    Ok((uids, values))
}

/// How weights go on chain for a subnet, decided from its hyperparameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WeightsPath {
    /// `set_weights`: commit-reveal is off.
    Direct,
    /// `commit_weights` now with the CR-v2 hash, `reveal_weights` in the reveal epoch.
    CommitReveal,
    /// `commit_timelocked_weights` (CR-v4, version given): weights encrypted to a drand round; the
    /// chain reveals them itself in the reveal epoch.
    Timelocked(u16),
}

/// The timelocked commit version this client builds ([`crate::timelock`]).
pub const TIMELOCK_COMMIT_VERSION: u16 = 4;

/// Chooses the path as the SDK does: direct when `CommitRevealWeightsEnabled` is off; with it on,
/// the timelocked commit when the chain's `CommitRevealWeightsVersion` is the one this client builds
/// (finney's default, 4), else the CR-v2 hash commit (runtimes without timelocked commits, or a
/// version this client does not speak, where subtensor still takes hash commits).
pub const fn choose_path(commit_reveal_enabled: bool, commit_reveal_version: Option<u16>) -> WeightsPath {
    match (commit_reveal_enabled, commit_reveal_version) {
        (false, _) => WeightsPath::Direct,
        (true, Some(TIMELOCK_COMMIT_VERSION)) => WeightsPath::Timelocked(TIMELOCK_COMMIT_VERSION),
        (true, _) => WeightsPath::CommitReveal,
    }
}

/// The first block at which a hotkey whose last weight update was `last_update` may set (or commit)
/// weights again: `last_update + rate_limit`, or any block if it never set weights (`last_update == 0`).
pub const fn next_allowed_block(last_update: u64, rate_limit: u64) -> u64 {
    if last_update == 0 {
        0
    } else {
        last_update.saturating_add(rate_limit)
    }
}

/// Blocks to wait at block `now` before weights are accepted again (0 = now).
pub const fn blocks_until_allowed(now: u64, last_update: u64, rate_limit: u64) -> u64 {
    next_allowed_block(last_update, rate_limit).saturating_sub(now)
}

/// subtensor's epoch counter for a subnet, as either scheduler defines it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpochClock {
    /// Stateful scheduler (subtensor ≥ v3.4.8 and the devnet): `SubnetEpochIndex` advances when
    /// `block - LastEpochBlock >= Tempo` or at an owner-triggered `PendingEpochAt`.
    Stateful {
        /// `SubnetEpochIndex`.
        index: u64,
        /// `LastEpochBlock`.
        last_epoch_block: u64,
        /// `PendingEpochAt` (0 = none).
        pending_at: u64,
        /// `Tempo`.
        tempo: u64,
    },
    /// Legacy scheduler (finney at the time of writing): epoch = `(block + netuid + 1) / (tempo + 1)`.
    Legacy {
        /// `Tempo`.
        tempo: u64,
        /// The subnet.
        netuid: u16,
    },
}

impl EpochClock {
    /// The epoch a commit or reveal executing in `block` is counted in (`current_epoch_with_lookahead`).
    pub const fn epoch_at(&self, block: u64) -> u64 {
        match *self {
            Self::Stateful {
                index,
                last_epoch_block,
                pending_at,
                tempo,
            } => {
                let due = tempo != 0
                    && ((pending_at > 0 && block >= pending_at)
                        || block.saturating_sub(last_epoch_block) >= tempo);
                index + due as u64
            }
            Self::Legacy { tempo, netuid } => (block + netuid as u64 + 1) / (tempo + 1),
        }
    }

    /// The block whose `on_initialize` ran the most recent epoch at or before `block`, as this
    /// clock (read at `block`) knows it; `None` if no epoch has run yet.
    pub const fn last_epoch_block(&self, block: u64) -> Option<u64> {
        match *self {
            Self::Stateful { last_epoch_block, .. } => {
                if last_epoch_block == 0 {
                    None
                } else {
                    Some(last_epoch_block)
                }
            }
            // Epochs run where (b + netuid + 1) % (tempo + 1) == 0.
            Self::Legacy { tempo, netuid } => {
                let period = tempo + 1;
                let shifted = block + netuid as u64 + 1;
                let fired = shifted - shifted % period;
                if fired <= netuid as u64 + 1 {
                    None
                } else {
                    Some(fired - netuid as u64 - 1)
                }
            }
        }
    }

    /// The first block counted in epoch `epoch` (the block whose `on_initialize` fires it, where
    /// timelocked commits of `epoch − reveal_period` are revealed), assuming no owner trigger
    /// beyond the one pending now. An epoch that already fired gives the last epoch block.
    pub const fn epoch_start_block(&self, epoch: u64) -> u64 {
        match *self {
            Self::Stateful {
                index,
                last_epoch_block,
                pending_at,
                tempo,
            } => {
                if epoch <= index {
                    return last_epoch_block;
                }
                let scheduled = last_epoch_block + tempo;
                let next = if pending_at > 0 && pending_at < scheduled {
                    pending_at
                } else {
                    scheduled
                };
                next + (epoch - index - 1) * tempo
            }
            Self::Legacy { tempo, netuid } => (epoch * (tempo + 1)).saturating_sub(netuid as u64 + 1),
        }
    }
}

/// Whether a CR-v2 commit can be revealed now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RevealTiming {
    /// Wait `epochs` more epochs.
    TooEarly {
        /// Epochs to wait.
        epochs: u64,
    },
    /// Reveal now (valid only in epoch `commit_epoch + reveal_period`).
    Due,
    /// The reveal epoch passed; the commit can no longer be revealed.
    Expired,
}

/// The reveal rule of subtensor (`is_reveal_block_range`, `is_commit_expired`).
pub const fn reveal_timing(current_epoch: u64, commit_epoch: u64, reveal_period: u64) -> RevealTiming {
    let reveal_epoch = commit_epoch.saturating_add(reveal_period);
    if current_epoch < reveal_epoch {
        RevealTiming::TooEarly {
            epochs: reveal_epoch - current_epoch,
        }
    } else if current_epoch == reveal_epoch {
        RevealTiming::Due
    } else {
        RevealTiming::Expired
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Keypair;

    #[test]
    fn commit_hash_matches_the_reference_vector_and_preimage() {
        let alice = Keypair::from_uri("//Alice").unwrap().account();
        let salt: Vec<u16> = (1..=8).collect();
        let preimage = (alice.0, 1u16, &[0u16, 1][..], &[10u16, 10][..], &salt[..], 0u64).encode();
        assert_eq!(
            hex::encode(&preimage),
            "d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d\
             0100\
             0800000100\
             080a000a00\
             2001000200030004000500060007000800\
             0000000000000000"
        );
        assert_eq!(
            hex::encode(commit_hash(&alice, 1, &[0, 1], &[10, 10], &salt, 0)),
            "d9bf9b22a51844e113d525eaadc9ae576918c6590431b199dd8534c19cebc517"
        );
        // Any change to an input changes the hash.
        assert_ne!(
            commit_hash(&alice, 1, &[0, 1], &[10, 10], &salt, 1),
            commit_hash(&alice, 1, &[0, 1], &[10, 10], &salt, 0)
        );
        assert_ne!(
            commit_hash(&alice, storage_index(1, 1), &[0, 1], &[10, 10], &salt, 0),
            commit_hash(&alice, 1, &[0, 1], &[10, 10], &salt, 0)
        );
    }

    #[test]
    fn storage_index_follows_mechanisms() {
        assert_eq!(storage_index(5, 0), 5);
        assert_eq!(storage_index(5, 1), 4101);
    }

    const RULES: ChainLimits = ChainLimits {
        n: 10,
        min_allowed_weights: 3,
        max_weight_limit: u16::MAX,
    };

    #[test]
    fn prepare_drops_zeros_and_checks_in_chain_order() {
        assert_eq!(
            prepare(&[0, 1, 2, 3], &[5, 0, 7, 9], None, &RULES),
            Ok((vec![0, 2, 3], vec![5, 7, 9]))
        );
        assert_eq!(
            prepare(&[0, 1], &[1], None, &RULES),
            Err(WeightsError::LengthMismatch { uids: 2, values: 1 })
        );
        assert_eq!(prepare(&[0, 1], &[0, 0], None, &RULES), Err(WeightsError::Empty));
        assert_eq!(
            prepare(&[0, 1, 1], &[1, 1, 1], None, &RULES),
            Err(WeightsError::DuplicateUid(1))
        );
        assert_eq!(
            prepare(&[0, 1, 10], &[1, 1, 1], None, &RULES),
            Err(WeightsError::UnknownUid { uid: 10, n: 10 })
        );
        assert_eq!(
            prepare(&[0, 1], &[1, 1], None, &RULES),
            Err(WeightsError::TooFew { got: 2, need: 3 })
        );
        // A self-weight is exempt from the minimum.
        assert!(prepare(&[4], &[1], Some(4), &RULES).is_ok());
        // min(MinAllowedWeights, n): a 2-uid subnet needs only 2.
        let small = ChainLimits { n: 2, ..RULES };
        assert!(prepare(&[0, 1], &[1, 1], None, &small).is_ok());
    }

    #[test]
    fn max_weight_limit_is_exact_at_the_boundary() {
        // limit 0.5 ×65535 = 32767.5 → 32767 means strictly below one half.
        let rules = ChainLimits {
            n: 10,
            min_allowed_weights: 1,
            max_weight_limit: 32_768,
        };
        assert!(prepare(&[0, 1], &[1, 1], None, &rules).is_ok());
        let strict = ChainLimits {
            max_weight_limit: 32_767,
            ..rules
        };
        let err = prepare(&[0, 1], &[1, 1], None, &strict);
        assert!(
            matches!(err, Err(WeightsError::MaxWeightExceeded { .. })),
            "{err:?}"
        );
        let err = prepare(&[3, 1, 2], &[1, 3, 1], None, &rules);
        assert!(
            matches!(err, Err(WeightsError::MaxWeightExceeded { uid: 1, .. })),
            "{err:?}"
        );
        assert!(prepare(&[3, 1, 2], &[1, 1, 1], None, &strict).is_ok());
        // The unlimited default lets one uid hold everything.
        assert!(
            prepare(
                &[0],
                &[9],
                None,
                &ChainLimits {
                    min_allowed_weights: 1,
                    ..RULES
                }
            )
            .is_ok()
        );
    }

    #[test]
    fn rate_limit_arithmetic() {
        assert_eq!(next_allowed_block(0, 100), 0);
        assert_eq!(next_allowed_block(1_000, 100), 1_100);
        assert_eq!(blocks_until_allowed(1_050, 1_000, 100), 50);
        assert_eq!(blocks_until_allowed(1_100, 1_000, 100), 0);
        assert_eq!(blocks_until_allowed(5, 0, 100), 0);
        assert_eq!(next_allowed_block(u64::MAX - 1, 100), u64::MAX);
        assert_eq!(choose_path(true, None), WeightsPath::CommitReveal);
        assert_eq!(choose_path(true, Some(3)), WeightsPath::CommitReveal);
        assert_eq!(choose_path(true, Some(4)), WeightsPath::Timelocked(4));
        assert_eq!(choose_path(false, Some(4)), WeightsPath::Direct);
        assert_eq!(choose_path(false, None), WeightsPath::Direct);
    }

    #[test]
    fn epoch_clocks_and_reveal_timing() {
        // Legacy: netuid 1, tempo 360 → epochs change at blocks where (b + 2) % 361 == 0.
        let legacy = EpochClock::Legacy {
            tempo: 360,
            netuid: 1,
        };
        assert_eq!(legacy.epoch_at(358), 0);
        assert_eq!(legacy.epoch_at(359), 1);
        // Stateful: tempo 10, last epoch at 100: block 109 is still epoch 5, block 110 runs epoch 6.
        let stateful = EpochClock::Stateful {
            index: 5,
            last_epoch_block: 100,
            pending_at: 0,
            tempo: 10,
        };
        assert_eq!(stateful.epoch_at(109), 5);
        assert_eq!(stateful.epoch_at(110), 6);
        let triggered = EpochClock::Stateful {
            index: 5,
            last_epoch_block: 100,
            pending_at: 103,
            tempo: 10,
        };
        assert_eq!(triggered.epoch_at(103), 6);
        // Where epochs start, and the last one that ran, on both clocks.
        assert_eq!(stateful.epoch_start_block(6), 110);
        assert_eq!(stateful.epoch_start_block(8), 130);
        assert_eq!(stateful.epoch_start_block(5), 100);
        assert_eq!(triggered.epoch_start_block(6), 103);
        assert_eq!(triggered.epoch_start_block(7), 113);
        assert_eq!(stateful.last_epoch_block(109), Some(100));
        assert_eq!(legacy.epoch_start_block(1), 359);
        assert_eq!(legacy.epoch_at(legacy.epoch_start_block(7)), 7);
        assert_eq!(legacy.epoch_at(legacy.epoch_start_block(7) - 1), 6);
        assert_eq!(legacy.last_epoch_block(358), None);
        assert_eq!(legacy.last_epoch_block(359), Some(359));
        assert_eq!(legacy.last_epoch_block(1000), Some(359 + 361));
        for b in [359, 700, 720, 721, 5000] {
            let e = legacy.epoch_at(b);
            assert_eq!(
                legacy.last_epoch_block(b),
                Some(legacy.epoch_start_block(e)),
                "block {b}"
            );
        }
        assert_eq!(reveal_timing(5, 5, 1), RevealTiming::TooEarly { epochs: 1 });
        assert_eq!(reveal_timing(6, 5, 1), RevealTiming::Due);
        assert_eq!(reveal_timing(7, 5, 1), RevealTiming::Expired);
    }

    #[test]
    fn salts_are_random() {
        let a = random_salt(8);
        assert_eq!(a.len(), 8);
        assert_ne!(a, random_salt(8));
    }
}
