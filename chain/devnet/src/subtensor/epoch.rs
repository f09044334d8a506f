//! Block step: the stateful epoch schedule and the Yuma epoch, run by `scoring::yuma::run_epoch`.

use super::NetUid;
use super::pallet::*;
use parity_scale_codec::Decode;
use scoring::yuma::{EpochInput, YumaHyperparameters, run_epoch};

impl<T: Config> Pallet<T> {
    /// Runs in `on_initialize`: advance `BlocksSinceLastStep`, and run the epoch of every subnet
    /// whose slot fires in this block.
    pub(crate) fn block_step() {
        let now = Self::current_block();
        let netuids: alloc::vec::Vec<NetUid> = NetworksAdded::<T>::iter()
            .filter(|(_, added)| *added)
            .map(|(n, _)| n)
            .collect();
        for netuid in netuids {
            Self::reveal_timelocked_commits(netuid);
            if Self::should_run_epoch(netuid, now) {
                let blocks = now.saturating_sub(LastEpochBlock::<T>::get(netuid)).max(1);
                let emission = DevnetRaoEmissionPerBlock::<T>::get().saturating_mul(blocks);
                Self::epoch(netuid, emission);
                Self::distribute_emission(netuid);
                LastEpochBlock::<T>::insert(netuid, now);
                PendingEpochAt::<T>::insert(netuid, 0);
                SubnetEpochIndex::<T>::mutate(netuid, |e| *e = e.saturating_add(1));
                BlocksSinceLastStep::<T>::insert(netuid, 0);
                LastMechansimStepBlock::<T>::insert(netuid, now);
            } else {
                BlocksSinceLastStep::<T>::mutate(netuid, |b| *b = b.saturating_add(1));
            }
        }
    }

    /// Every block, before the epoch: reveal the timelocked (CR-v4) commits of epoch
    /// `current_epoch_with_lookahead − RevealPeriodEpochs`, as subtensor's
    /// `reveal_crv3_commits_for_subnet`. Older commits are deleted unrevealed. A commit whose drand
    /// pulse (`Drand::Pulses[reveal_round]`) is not on chain yet waits for the next block of the
    /// reveal epoch; one that does not decrypt, whose payload `hotkey` is not the committer, or whose
    /// weights fail a `set_weights` check is dropped (subtensor only logs these).
    fn reveal_timelocked_commits(netuid: NetUid) {
        let now = Self::current_block();
        let reveal_epoch = Self::current_epoch_with_lookahead_at(netuid, now)
            .saturating_sub(RevealPeriodEpochs::<T>::get(netuid));
        let stale: alloc::vec::Vec<u64> = TimelockedWeightCommits::<T>::iter_key_prefix(netuid)
            .filter(|epoch| *epoch < reveal_epoch)
            .collect();
        for epoch in stale {
            TimelockedWeightCommits::<T>::remove(netuid, epoch);
        }
        let mut queue = TimelockedWeightCommits::<T>::take(netuid, reveal_epoch);
        let mut waiting = alloc::collections::VecDeque::new();
        while let Some((who, commit_block, commit, reveal_round)) = queue.pop_front() {
            let Some(pulse) = crate::drand::Pulses::<T>::get(reveal_round) else {
                waiting.push_back((who, commit_block, commit, reveal_round));
                continue;
            };
            let payload = match chain::timelock::decrypt_weights_commit(&commit, &pulse.signature) {
                Ok(payload) => payload,
                Err(error) => {
                    tracing::debug!(%who, netuid, reveal_round, %error, "timelocked commit dropped");
                    continue;
                }
            };
            match T::AccountId::decode(&mut &payload.hotkey[..]) {
                Ok(hotkey) if hotkey == who => {}
                _ => {
                    tracing::debug!(%who, netuid, "timelocked commit dropped: payload hotkey is not the committer");
                    continue;
                }
            }
            match Self::do_set_weights(&who, netuid, payload.uids, payload.values, payload.version_key) {
                Ok(()) => Self::deposit_event(Event::TimelockedWeightsRevealed(netuid, who)),
                Err(error) => {
                    tracing::debug!(%who, netuid, ?error, "timelocked weights rejected at reveal");
                }
            }
        }
        if !waiting.is_empty() {
            TimelockedWeightCommits::<T>::insert(netuid, reveal_epoch, waiting);
        }
    }

    /// Credit the last epoch's `Emission` to each uid's hotkey as stake (the coinbase's job).
    fn distribute_emission(netuid: NetUid) {
        for (uid, amount) in Emission::<T>::get(netuid).into_iter().enumerate() {
            if let Some(hotkey) = Keys::<T>::get(netuid, uid as u16) {
                TotalHotkeyAlpha::<T>::mutate(&hotkey, netuid, |a| *a = a.saturating_add(amount));
                SubnetTAO::<T>::mutate(netuid, |t| *t = t.saturating_add(amount));
            }
        }
    }

    /// The hyperparameters the epoch reads, from storage.
    pub fn yuma_hyperparameters(netuid: NetUid) -> YumaHyperparameters {
        let (alpha_low, alpha_high) = AlphaValues::<T>::get(netuid);
        YumaHyperparameters {
            kappa: Kappa::<T>::get(netuid),
            bonds_penalty: BondsPenalty::<T>::get(netuid),
            bonds_moving_average: BondsMovingAverage::<T>::get(netuid),
            activity_cutoff: u64::from(ActivityCutoff::<T>::get(netuid)),
            max_allowed_validators: MaxAllowedValidators::<T>::get(netuid),
            stake_threshold: StakeThreshold::<T>::get(),
            yuma3: Yuma3On::<T>::get(netuid),
            liquid_alpha: LiquidAlphaOn::<T>::get(netuid),
            alpha_low,
            alpha_high,
            alpha_sigmoid_steepness: AlphaSigmoidSteepness::<T>::get(netuid),
        }
    }

    /// Read the subnet into an [`EpochInput`].
    pub fn epoch_input(netuid: NetUid, rao_emission: u64) -> EpochInput {
        let n = SubnetworkN::<T>::get(netuid);
        let hotkeys: alloc::vec::Vec<_> = (0..n).map(|uid| Keys::<T>::get(netuid, uid)).collect();
        let stake = hotkeys
            .iter()
            .map(|h| h.as_ref().map(|h| Self::stake_weight(netuid, h)).unwrap_or(0))
            .collect();
        let pad = |mut v: alloc::vec::Vec<u64>| {
            v.resize(usize::from(n), 0);
            v
        };
        let mut permits = ValidatorPermit::<T>::get(netuid);
        permits.resize(usize::from(n), false);
        let cr = CommitRevealWeightsEnabled::<T>::get(netuid);
        let commit_blocks = cr.then(|| {
            hotkeys
                .iter()
                .map(|h| {
                    h.as_ref()
                        .and_then(|h| WeightCommits::<T>::get(netuid, h))
                        .and_then(|c| c.iter().map(|(_, _, block, _)| *block).min())
                        .unwrap_or(u64::MAX)
                })
                .collect()
        });
        EpochInput {
            current_block: Self::current_block(),
            tempo: Tempo::<T>::get(netuid),
            last_mechanism_step_block: LastMechansimStepBlock::<T>::get(netuid),
            owner_uid: SubnetOwnerHotkey::<T>::get(netuid).and_then(|h| Uids::<T>::get(netuid, h)),
            stake,
            weights: (0..n).map(|uid| Weights::<T>::get(netuid, uid)).collect(),
            bonds: (0..n).map(|uid| Bonds::<T>::get(netuid, uid)).collect(),
            last_update: pad(LastUpdate::<T>::get(netuid)),
            block_at_registration: (0..n)
                .map(|uid| BlockAtRegistration::<T>::get(netuid, uid))
                .collect(),
            validator_permit: permits,
            rao_emission,
            hyperparameters: Self::yuma_hyperparameters(netuid),
            commit_blocks,
        }
    }

    /// Run one Yuma epoch on `netuid`, store its outputs and credit the emission as stake.
    pub fn epoch(netuid: NetUid, rao_emission: u64) {
        let input = Self::epoch_input(netuid, rao_emission);
        let Ok(out) = run_epoch(&input) else {
            // The input is built with one entry per uid, so this cannot fail; skip the epoch if
            // it ever does rather than abort the block.
            return;
        };
        Incentive::<T>::insert(netuid, out.incentive);
        Dividends::<T>::insert(netuid, out.dividends);
        Consensus::<T>::insert(netuid, out.consensus);
        ValidatorTrust::<T>::insert(netuid, out.validator_trust);
        StakeWeight::<T>::insert(netuid, out.stake_weight);
        ValidatorPermit::<T>::insert(netuid, out.validator_permit);
        Active::<T>::insert(netuid, out.active);
        for (uid, row) in out.bonds.into_iter().enumerate() {
            let uid = uid as u16;
            if row.is_empty() {
                Bonds::<T>::remove(netuid, uid);
            } else {
                Bonds::<T>::insert(netuid, uid, row);
            }
        }
        Emission::<T>::insert(netuid, out.emission);
    }
}

extern crate alloc;
