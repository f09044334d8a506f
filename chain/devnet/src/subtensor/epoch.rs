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
                let paid = Self::epoch(netuid, emission);
                Self::distribute_emission(netuid, &paid);
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
    /// `current_epoch_with_lookahead − RevealPeriodEpochs` of every mechanism, as subtensor's
    /// `reveal_crv3_commits_for_subnet`. Older commits are deleted unrevealed. A commit whose drand
    /// pulse (`Drand::Pulses[reveal_round]`) is not on chain yet waits for the next block of the
    /// reveal epoch; one that does not decrypt, whose payload `hotkey` is not the committer, or whose
    /// weights fail a `set_mechanism_weights` check is dropped (subtensor only logs these).
    fn reveal_timelocked_commits(netuid: NetUid) {
        let now = Self::current_block();
        let current_epoch = Self::current_epoch_with_lookahead_at(netuid, now);
        let reveal_period = RevealPeriodEpochs::<T>::get(netuid);
        let reveal_epoch = current_epoch.saturating_sub(reveal_period);
        for mecid in 0..MechanismCountCurrent::<T>::get(netuid) {
            let idx = Self::mechanism_index(netuid, mecid);
            let stale: alloc::vec::Vec<u64> = TimelockedWeightCommits::<T>::iter_key_prefix(idx)
                .filter(|epoch| *epoch < reveal_epoch)
                .collect();
            for epoch in stale {
                TimelockedWeightCommits::<T>::remove(idx, epoch);
            }
            if current_epoch < reveal_period {
                return;
            }
            Self::reveal_mechanism_commits(netuid, mecid, reveal_epoch);
        }
    }

    /// Reveal the timelocked commits of mechanism `mecid` queued for `reveal_epoch`.
    fn reveal_mechanism_commits(netuid: NetUid, mecid: super::MechId, reveal_epoch: u64) {
        let idx = Self::mechanism_index(netuid, mecid);
        let mut queue = TimelockedWeightCommits::<T>::take(idx, reveal_epoch);
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
            match Self::do_set_weights(
                &who,
                netuid,
                mecid,
                payload.uids,
                payload.values,
                payload.version_key,
            ) {
                Ok(()) => Self::deposit_event(Event::TimelockedWeightsRevealed(idx, who)),
                Err(error) => {
                    tracing::debug!(%who, netuid, ?error, "timelocked weights rejected at reveal");
                }
            }
        }
        if !waiting.is_empty() {
            TimelockedWeightCommits::<T>::insert(idx, reveal_epoch, waiting);
        }
    }

    /// Credit what the epoch paid each uid (server plus validator emission over all mechanisms) to
    /// its hotkey as stake (the coinbase's job).
    fn distribute_emission(netuid: NetUid, paid: &[u64]) {
        for (uid, amount) in paid.iter().copied().enumerate() {
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

    /// Read mechanism `mecid` of the subnet into an [`EpochInput`]: the subnet's stake, permits and
    /// registrations, the mechanism's weights, bonds, last updates and commits.
    pub fn epoch_input(netuid: NetUid, mecid: super::MechId, rao_emission: u64) -> EpochInput {
        let idx = Self::mechanism_index(netuid, mecid);
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
                        .and_then(|h| WeightCommits::<T>::get(idx, h))
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
            weights: (0..n).map(|uid| Weights::<T>::get(idx, uid)).collect(),
            bonds: (0..n).map(|uid| Bonds::<T>::get(idx, uid)).collect(),
            last_update: pad(LastUpdate::<T>::get(idx)),
            block_at_registration: (0..n)
                .map(|uid| BlockAtRegistration::<T>::get(netuid, uid))
                .collect(),
            validator_permit: permits,
            rao_emission,
            hyperparameters: Self::yuma_hyperparameters(netuid),
            commit_blocks,
        }
    }

    /// Run the epoch of `netuid` as subtensor's `epoch_with_mechanisms`: split `rao_emission` over
    /// the mechanisms ([`Self::split_emissions`]), run Yuma once per mechanism and store its
    /// `Incentive` and `Bonds` under the mechanism's index, then store the per-netuid terms
    /// (`Dividends`, `Consensus`, `ValidatorTrust`, `StakeWeight`, `Emission`) as the sums of each
    /// mechanism's terms weighted by its share of the emission, and `Active`/`ValidatorPermit` as
    /// their OR. Returns the rao each uid earned (server plus validator emission, summed over the
    /// mechanisms), which the coinbase pays.
    pub fn epoch(netuid: NetUid, rao_emission: u64) -> alloc::vec::Vec<u64> {
        use super::mechanism::{mechanism_weight, weighted_acc_u16, weighted_acc_u64};
        let n = usize::from(SubnetworkN::<T>::get(netuid));
        let mut terms = alloc::vec![UidTerms::default(); n];
        for (mecid, sub_emission) in Self::split_emissions(netuid, rao_emission)
            .into_iter()
            .enumerate()
        {
            let mecid = super::MechId::try_from(mecid).unwrap_or(super::MechId::MAX);
            let idx = Self::mechanism_index(netuid, mecid);
            let input = Self::epoch_input(netuid, mecid, sub_emission);
            let Ok(out) = run_epoch(&input) else {
                // The input is built with one entry per uid, so this cannot fail; skip the
                // mechanism if it ever does rather than abort the block.
                continue;
            };
            let w = mechanism_weight(mecid, sub_emission, rao_emission);
            for (i, t) in terms.iter_mut().enumerate() {
                let get16 = |v: &[u16]| v.get(i).copied().unwrap_or(0);
                let get64 = |v: &[u64]| v.get(i).copied().unwrap_or(0);
                t.paid = t
                    .paid
                    .saturating_add(get64(&out.server_emission))
                    .saturating_add(get64(&out.validator_emission));
                t.dividends = weighted_acc_u16(t.dividends, get16(&out.dividends), w);
                t.consensus = weighted_acc_u16(t.consensus, get16(&out.consensus), w);
                t.validator_trust = weighted_acc_u16(t.validator_trust, get16(&out.validator_trust), w);
                t.stake_weight = weighted_acc_u16(t.stake_weight, get16(&out.stake_weight), w);
                t.emission = weighted_acc_u64(t.emission, get64(&out.emission), w);
                t.active |= out.active.get(i).copied().unwrap_or(false);
                t.permit |= out.validator_permit.get(i).copied().unwrap_or(false);
            }
            Incentive::<T>::insert(idx, out.incentive);
            for (uid, row) in out.bonds.into_iter().enumerate() {
                let uid = uid as u16;
                if row.is_empty() {
                    Bonds::<T>::remove(idx, uid);
                } else {
                    Bonds::<T>::insert(idx, uid, row);
                }
            }
        }
        Dividends::<T>::insert(
            netuid,
            terms.iter().map(|t| t.dividends).collect::<alloc::vec::Vec<_>>(),
        );
        Consensus::<T>::insert(
            netuid,
            terms.iter().map(|t| t.consensus).collect::<alloc::vec::Vec<_>>(),
        );
        ValidatorTrust::<T>::insert(
            netuid,
            terms
                .iter()
                .map(|t| t.validator_trust)
                .collect::<alloc::vec::Vec<_>>(),
        );
        StakeWeight::<T>::insert(
            netuid,
            terms
                .iter()
                .map(|t| t.stake_weight)
                .collect::<alloc::vec::Vec<_>>(),
        );
        ValidatorPermit::<T>::insert(
            netuid,
            terms.iter().map(|t| t.permit).collect::<alloc::vec::Vec<_>>(),
        );
        Active::<T>::insert(
            netuid,
            terms.iter().map(|t| t.active).collect::<alloc::vec::Vec<_>>(),
        );
        Emission::<T>::insert(
            netuid,
            terms.iter().map(|t| t.emission).collect::<alloc::vec::Vec<_>>(),
        );
        terms.into_iter().map(|t| t.paid).collect()
    }
}

/// One uid's epoch terms, accumulated over the mechanisms (subtensor's aggregated `EpochTerms`).
#[derive(Debug, Clone, Copy, Default)]
struct UidTerms {
    paid: u64,
    dividends: u16,
    consensus: u16,
    validator_trust: u16,
    stake_weight: u16,
    emission: u64,
    active: bool,
    permit: bool,
}

extern crate alloc;
