//! Weight setting, commit-reveal and the pool-level checks, in subtensor's order.

use super::pallet::*;
use super::{MAX_TEMPO, MAX_UNREVEALED_COMMITS, MechId, NetUid};
use polkadot_sdk::frame_support::{BoundedVec, ensure, pallet_prelude::DispatchResult, traits::ConstU32};
use polkadot_sdk::sp_core::H256;
use polkadot_sdk::sp_runtime::traits::{BlakeTwo256, Hash};

/// Why the transaction pool refuses a SubtensorModule call, as subtensor's
/// `SubtensorTransactionExtension` maps it to `InvalidTransaction::Custom(code)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValidationError {
    /// `NotEnoughStakeToSetWeights` → 1.
    StakeAmountTooLow,
    /// `SettingWeightsTooFast` / `CommittingWeightsTooFast` → 6.
    RateLimitExceeded,
    /// `HotKeyNotRegisteredInNetwork` → 10.
    HotKeyNotRegisteredInNetwork,
    /// `InvalidIpAddress` → 11.
    InvalidIpAddress,
    /// `ServingRateLimitExceeded` → 12.
    ServingRateLimitExceeded,
    /// `InvalidPort` → 13.
    InvalidPort,
    /// `InvalidRevealRound` → 15.
    InvalidRevealRound,
    /// `NoWeightsCommitFound` → 16.
    CommitNotFound,
    /// `RevealTooEarly` → 17.
    CommitBlockNotInRevealRange,
    /// `InputLengthsUnequal` → 18.
    InputLengthsUnequal,
    /// `HotKeyNotRegisteredInSubNet` → 19.
    UidNotFound,
    /// Anything else → 255.
    BadRequest,
}

impl ValidationError {
    /// The `InvalidTransaction::Custom` code subtensor uses.
    pub fn code(self) -> u8 {
        match self {
            Self::StakeAmountTooLow => 1,
            Self::RateLimitExceeded => 6,
            Self::HotKeyNotRegisteredInNetwork => 10,
            Self::InvalidIpAddress => 11,
            Self::ServingRateLimitExceeded => 12,
            Self::InvalidPort => 13,
            Self::InvalidRevealRound => 15,
            Self::CommitNotFound => 16,
            Self::CommitBlockNotInRevealRange => 17,
            Self::InputLengthsUnequal => 18,
            Self::UidNotFound => 19,
            Self::BadRequest => 255,
        }
    }
}

impl<T: Config> From<Error<T>> for ValidationError {
    fn from(e: Error<T>) -> Self {
        match e {
            Error::NotEnoughStakeToSetWeights => Self::StakeAmountTooLow,
            Error::SettingWeightsTooFast | Error::CommittingWeightsTooFast => Self::RateLimitExceeded,
            Error::HotKeyNotRegisteredInNetwork => Self::HotKeyNotRegisteredInNetwork,
            Error::InvalidIpAddress => Self::InvalidIpAddress,
            Error::ServingRateLimitExceeded => Self::ServingRateLimitExceeded,
            Error::InvalidPort => Self::InvalidPort,
            Error::NoWeightsCommitFound => Self::CommitNotFound,
            Error::RevealTooEarly => Self::CommitBlockNotInRevealRange,
            Error::InputLengthsUnequal => Self::InputLengthsUnequal,
            Error::HotKeyNotRegisteredInSubNet => Self::UidNotFound,
            _ => Self::BadRequest,
        }
    }
}

/// Pool-level checks of a SubtensorModule call signed by `who` (subtensor's `CheckWeights` and
/// `CheckRateLimits` guards): registration, minimum stake, rate limits, reveal window, axon data.
/// Other calls pass. Runs against the state the next block builds on.
pub fn check_weights_for_pool<T: Config>(who: &T::AccountId, call: &Call<T>) -> Result<(), ValidationError> {
    let now = Pallet::<T>::current_block().saturating_add(1);
    match call {
        Call::set_weights {
            netuid,
            dests,
            weights,
            ..
        } => pool_set_weights::<T>(who, *netuid, 0, dests, weights, now),
        Call::set_mechanism_weights {
            netuid,
            mecid,
            dests,
            weights,
            ..
        } => pool_set_weights::<T>(who, *netuid, *mecid, dests, weights, now),
        Call::commit_weights { netuid, .. } => pool_commit::<T>(who, *netuid, 0, None, now),
        Call::commit_mechanism_weights { netuid, mecid, .. } => {
            pool_commit::<T>(who, *netuid, *mecid, None, now)
        }
        Call::commit_timelocked_weights {
            netuid, reveal_round, ..
        } => pool_commit::<T>(who, *netuid, 0, Some(*reveal_round), now),
        Call::commit_timelocked_mechanism_weights {
            netuid,
            mecid,
            reveal_round,
            ..
        } => pool_commit::<T>(who, *netuid, *mecid, Some(*reveal_round), now),
        Call::reveal_weights {
            netuid,
            uids,
            values,
            salt,
            version_key,
        } => pool_reveal::<T>(who, *netuid, 0, uids, values, salt, *version_key, now),
        Call::reveal_mechanism_weights {
            netuid,
            mecid,
            uids,
            values,
            salt,
            version_key,
        } => pool_reveal::<T>(who, *netuid, *mecid, uids, values, salt, *version_key, now),
        Call::serve_axon {
            netuid,
            version,
            ip,
            port,
            ip_type,
            protocol,
            placeholder1,
            placeholder2,
        } => {
            let axon = AxonInfo {
                block: 0,
                version: *version,
                ip: *ip,
                port: *port,
                ip_type: *ip_type,
                protocol: *protocol,
                placeholder1: *placeholder1,
                placeholder2: *placeholder2,
            };
            Pallet::<T>::validate_serve_axon(who, *netuid, axon)
                .map(|_| ())
                .map_err(Into::into)
        }
        _ => Ok(()),
    }
}

/// `set_weights` / `set_mechanism_weights` in the pool: lengths, registration, stake, and the rate
/// limit of the mechanism when commit-reveal is off.
fn pool_set_weights<T: Config>(
    who: &T::AccountId,
    netuid: NetUid,
    mecid: MechId,
    dests: &[u16],
    weights: &[u16],
    now: u64,
) -> Result<(), ValidationError> {
    ensure!(dests.len() == weights.len(), ValidationError::InputLengthsUnequal);
    let uid = Pallet::<T>::pool_uid(netuid, who)?;
    Pallet::<T>::pool_min_stake(netuid, who)?;
    if !CommitRevealWeightsEnabled::<T>::get(netuid) {
        ensure!(
            Pallet::<T>::check_rate_limit(netuid, mecid, uid, now),
            ValidationError::RateLimitExceeded
        );
    }
    Ok(())
}

/// A hash or timelocked commit in the pool: registration, stake, the mechanism's rate limit, and
/// for a timelocked one a reveal round the chain does not hold yet.
fn pool_commit<T: Config>(
    who: &T::AccountId,
    netuid: NetUid,
    mecid: MechId,
    reveal_round: Option<u64>,
    now: u64,
) -> Result<(), ValidationError> {
    let uid = Pallet::<T>::pool_uid(netuid, who)?;
    Pallet::<T>::pool_min_stake(netuid, who)?;
    ensure!(
        Pallet::<T>::check_rate_limit(netuid, mecid, uid, now),
        ValidationError::RateLimitExceeded
    );
    if let Some(reveal_round) = reveal_round {
        let last = crate::drand::LastStoredRound::<T>::get();
        ensure!(reveal_round >= last, ValidationError::InvalidRevealRound);
    }
    Ok(())
}

/// A CR-v2 reveal in the pool: the commit exists under the mechanism and its reveal epoch came.
#[allow(clippy::too_many_arguments)]
fn pool_reveal<T: Config>(
    who: &T::AccountId,
    netuid: NetUid,
    mecid: MechId,
    uids: &[u16],
    values: &[u16],
    salt: &[u16],
    version_key: u64,
    now: u64,
) -> Result<(), ValidationError> {
    ensure!(uids.len() == values.len(), ValidationError::InputLengthsUnequal);
    Pallet::<T>::pool_uid(netuid, who)?;
    Pallet::<T>::pool_min_stake(netuid, who)?;
    let idx = Pallet::<T>::mechanism_index(netuid, mecid);
    let hash = Pallet::<T>::get_commit_hash(who, idx, uids, values, salt, version_key);
    let commits = WeightCommits::<T>::get(idx, who).ok_or(ValidationError::CommitNotFound)?;
    let (_, epoch, _, _) = commits
        .iter()
        .find(|(h, ..)| *h == hash)
        .ok_or(ValidationError::CommitNotFound)?;
    ensure!(
        Pallet::<T>::current_epoch_with_lookahead_at(netuid, now)
            >= epoch.saturating_add(RevealPeriodEpochs::<T>::get(netuid)),
        ValidationError::CommitBlockNotInRevealRange
    );
    Ok(())
}

impl<T: Config> Pallet<T> {
    fn pool_uid(netuid: NetUid, who: &T::AccountId) -> Result<u16, ValidationError> {
        Uids::<T>::get(netuid, who).ok_or(ValidationError::UidNotFound)
    }

    fn pool_min_stake(netuid: NetUid, who: &T::AccountId) -> Result<(), ValidationError> {
        ensure!(
            Self::has_min_stake(netuid, who),
            ValidationError::StakeAmountTooLow
        );
        Ok(())
    }

    /// Stake weight of a hotkey on a subnet (alpha only: the devnet has no root stake).
    pub fn stake_weight(netuid: NetUid, hotkey: &T::AccountId) -> u64 {
        TotalHotkeyAlpha::<T>::get(hotkey, netuid)
    }

    /// `check_weights_min_stake`: the owner hotkey is exempt.
    fn has_min_stake(netuid: NetUid, who: &T::AccountId) -> bool {
        SubnetOwnerHotkey::<T>::get(netuid).as_ref() == Some(who)
            || Self::stake_weight(netuid, who) >= StakeThreshold::<T>::get()
    }

    /// `LastUpdate[idx] == 0 || now - LastUpdate[idx] >= WeightsSetRateLimit`, for the mechanism's
    /// storage index `idx`.
    /// A uid that is not registered, or a mechanism the subnet does not have, never passes.
    pub fn check_rate_limit(netuid: NetUid, mecid: MechId, uid: u16, now: u64) -> bool {
        if Self::ensure_mechanism_exists(netuid, mecid).is_err() || !Keys::<T>::contains_key(netuid, uid) {
            return false;
        }
        let last = LastUpdate::<T>::get(Self::mechanism_index(netuid, mecid))
            .get(uid as usize)
            .copied()
            .unwrap_or(0);
        last == 0 || now.saturating_sub(last) >= WeightsSetRateLimit::<T>::get(netuid)
    }

    /// subtensor's `get_commit_hash`: blake2-256 of
    /// `(hotkey, netuid_index, uids, values, salt, version_key)` SCALE-encoded.
    pub fn get_commit_hash(
        who: &T::AccountId,
        netuid_index: u16,
        uids: &[u16],
        values: &[u16],
        salt: &[u16],
        version_key: u64,
    ) -> H256 {
        BlakeTwo256::hash_of(&(who.clone(), netuid_index, uids, values, salt, version_key))
    }

    /// The stateful epoch rule: tempo ≠ 0 and (pending trigger reached, or more than `MAX_TEMPO`
    /// blocks since the last step, or `block - LastEpochBlock >= Tempo`).
    pub fn should_run_epoch(netuid: NetUid, block: u64) -> bool {
        let tempo = u64::from(Tempo::<T>::get(netuid));
        if tempo == 0 || !NetworksAdded::<T>::get(netuid) {
            return false;
        }
        let pending = PendingEpochAt::<T>::get(netuid);
        let last = LastEpochBlock::<T>::get(netuid);
        (pending > 0 && block >= pending)
            || BlocksSinceLastStep::<T>::get(netuid) > MAX_TEMPO
            || block.saturating_sub(last) >= tempo
    }

    /// `SubnetEpochIndex` plus one when an epoch is due in `block`.
    pub fn current_epoch_with_lookahead_at(netuid: NetUid, block: u64) -> u64 {
        let base = SubnetEpochIndex::<T>::get(netuid);
        if Self::should_run_epoch(netuid, block) {
            base.saturating_add(1)
        } else {
            base
        }
    }

    fn current_epoch_with_lookahead(netuid: NetUid) -> u64 {
        Self::current_epoch_with_lookahead_at(netuid, Self::current_block())
    }

    fn is_commit_expired(netuid: NetUid, commit_epoch: u64) -> bool {
        Self::current_epoch_with_lookahead(netuid)
            > commit_epoch.saturating_add(RevealPeriodEpochs::<T>::get(netuid))
    }

    fn is_reveal_block_range(netuid: NetUid, commit_epoch: u64) -> bool {
        Self::current_epoch_with_lookahead(netuid)
            == commit_epoch.saturating_add(RevealPeriodEpochs::<T>::get(netuid))
    }

    /// `internal_set_weights` of mechanism `mecid`: every check of subtensor's §2.1 after the
    /// commit-reveal gate, in order, then max-upscale and store under the mechanism's index.
    pub(crate) fn do_set_weights(
        who: &T::AccountId,
        netuid: NetUid,
        mecid: MechId,
        uids: Vec<u16>,
        values: Vec<u16>,
        version_key: u64,
    ) -> DispatchResult {
        let idx = Self::mechanism_index(netuid, mecid);
        ensure!(netuid != 0, Error::<T>::CanNotSetRootNetworkWeights);
        ensure!(uids.len() == values.len(), Error::<T>::WeightVecNotEqualSize);
        Self::ensure_mechanism_exists(netuid, mecid)?;
        let n = SubnetworkN::<T>::get(netuid);
        ensure!(
            uids.len() <= usize::from(n),
            Error::<T>::UidsLengthExceedUidsInSubNet
        );
        let uid = Uids::<T>::get(netuid, who).ok_or(Error::<T>::HotKeyNotRegisteredInSubNet)?;
        ensure!(
            Self::has_min_stake(netuid, who),
            Error::<T>::NotEnoughStakeToSetWeights
        );
        let required = WeightsVersionKey::<T>::get(netuid);
        ensure!(
            required == 0 || version_key >= required,
            Error::<T>::IncorrectWeightVersionKey
        );
        let now = Self::current_block();
        let cr = CommitRevealWeightsEnabled::<T>::get(netuid);
        if !cr {
            ensure!(
                Self::check_rate_limit(netuid, mecid, uid, now),
                Error::<T>::SettingWeightsTooFast
            );
        }
        let self_weight = uids.len() == 1 && uids.first() == Some(&uid);
        let owner_uid = SubnetOwnerHotkey::<T>::get(netuid).and_then(|h| Uids::<T>::get(netuid, h));
        let permit = ValidatorPermit::<T>::get(netuid)
            .get(uid as usize)
            .copied()
            .unwrap_or(false);
        ensure!(
            self_weight || owner_uid == Some(uid) || permit,
            Error::<T>::NeuronNoValidatorPermit
        );
        let mut seen = alloc::collections::BTreeSet::new();
        ensure!(uids.iter().all(|u| seen.insert(*u)), Error::<T>::DuplicateUids);
        ensure!(uids.iter().all(|u| *u < n), Error::<T>::UidVecContainInvalidOne);
        let min = MinAllowedWeights::<T>::get(netuid).min(n);
        ensure!(
            self_weight || values.len() >= usize::from(min),
            Error::<T>::WeightVecLengthIsLow
        );
        let upscaled = scoring::yuma::vec_u16_max_upscale_to_u16(&values);
        let max_limit = MaxWeightsLimit::<T>::get(netuid);
        ensure!(
            self_weight
                || max_limit == u16::MAX
                || scoring::yuma::check_vec_max_limited(&upscaled, max_limit),
            Error::<T>::MaxWeightExceeded
        );
        Weights::<T>::insert(idx, uid, uids.into_iter().zip(upscaled).collect::<Vec<_>>());
        if !cr {
            Self::set_last_update(netuid, idx, uid, now);
        }
        Self::deposit_event(Event::WeightsSet(idx, uid));
        Ok(())
    }

    /// `internal_commit_weights` of mechanism `mecid`.
    pub(crate) fn do_commit_weights(
        who: &T::AccountId,
        netuid: NetUid,
        mecid: MechId,
        commit_hash: H256,
    ) -> DispatchResult {
        Self::ensure_mechanism_exists(netuid, mecid)?;
        let idx = Self::mechanism_index(netuid, mecid);
        ensure!(
            CommitRevealWeightsEnabled::<T>::get(netuid),
            Error::<T>::CommitRevealDisabled
        );
        let uid = Uids::<T>::get(netuid, who).ok_or(Error::<T>::HotKeyNotRegisteredInSubNet)?;
        let now = Self::current_block();
        ensure!(
            Self::check_rate_limit(netuid, mecid, uid, now),
            Error::<T>::CommittingWeightsTooFast
        );
        let commit_epoch = Self::current_epoch_with_lookahead(netuid);
        let mut commits = WeightCommits::<T>::get(idx, who).unwrap_or_default();
        while let Some((_, epoch, _, _)) = commits.front() {
            if Self::is_commit_expired(netuid, *epoch) {
                commits.pop_front();
            } else {
                break;
            }
        }
        ensure!(
            commits.len() < MAX_UNREVEALED_COMMITS,
            Error::<T>::TooManyUnrevealedCommits
        );
        commits.push_back((commit_hash, commit_epoch, now, 0));
        WeightCommits::<T>::insert(idx, who, commits);
        Self::deposit_event(Event::WeightsCommitted(who.clone(), idx, commit_hash));
        Self::set_last_update(netuid, idx, uid, now);
        Ok(())
    }

    /// `internal_reveal_weights` of mechanism `mecid`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn do_reveal_weights(
        who: &T::AccountId,
        netuid: NetUid,
        mecid: MechId,
        uids: Vec<u16>,
        values: Vec<u16>,
        salt: Vec<u16>,
        version_key: u64,
    ) -> DispatchResult {
        ensure!(
            CommitRevealWeightsEnabled::<T>::get(netuid),
            Error::<T>::CommitRevealDisabled
        );
        let idx = Self::mechanism_index(netuid, mecid);
        let mut commits = WeightCommits::<T>::get(idx, who).ok_or(Error::<T>::NoWeightsCommitFound)?;
        let mut expired = alloc::vec::Vec::new();
        while let Some((hash, epoch, _, _)) = commits.front() {
            if Self::is_commit_expired(netuid, *epoch) {
                expired.push(*hash);
                commits.pop_front();
            } else {
                break;
            }
        }
        let provided = Self::get_commit_hash(who, idx, &uids, &values, &salt, version_key);
        if commits.is_empty() {
            return Err(if expired.contains(&provided) {
                Error::<T>::ExpiredWeightCommit
            } else {
                Error::<T>::NoWeightsCommitFound
            }
            .into());
        }
        let Some(position) = commits.iter().position(|(h, ..)| *h == provided) else {
            return Err(if expired.contains(&provided) {
                Error::<T>::ExpiredWeightCommit
            } else {
                Error::<T>::InvalidRevealCommitHashNotMatch
            }
            .into());
        };
        let commit_epoch = commits.get(position).map(|c| c.1).unwrap_or_default();
        ensure!(
            Self::is_reveal_block_range(netuid, commit_epoch),
            Error::<T>::RevealTooEarly
        );
        for _ in 0..=position {
            commits.pop_front();
        }
        if commits.is_empty() {
            WeightCommits::<T>::remove(idx, who);
        } else {
            WeightCommits::<T>::insert(idx, who, commits);
        }
        Self::do_set_weights(who, netuid, mecid, uids, values, version_key)?;
        Self::deposit_event(Event::WeightsRevealed(who.clone(), idx, provided));
        Ok(())
    }

    /// `internal_commit_timelocked_weights` of mechanism `mecid`.
    pub(crate) fn do_commit_timelocked_weights(
        who: &T::AccountId,
        netuid: NetUid,
        mecid: MechId,
        commit: BoundedVec<u8, ConstU32<{ super::MAX_CRV3_COMMIT_SIZE_BYTES }>>,
        reveal_round: u64,
        commit_reveal_version: u16,
    ) -> DispatchResult {
        Self::ensure_mechanism_exists(netuid, mecid)?;
        let idx = Self::mechanism_index(netuid, mecid);
        ensure!(
            CommitRevealWeightsEnabled::<T>::get(netuid),
            Error::<T>::CommitRevealDisabled
        );
        ensure!(
            commit_reveal_version == CommitRevealWeightsVersion::<T>::get(),
            Error::<T>::IncorrectCommitRevealVersion
        );
        let uid = Uids::<T>::get(netuid, who).ok_or(Error::<T>::HotKeyNotRegisteredInSubNet)?;
        let now = Self::current_block();
        ensure!(
            Self::check_rate_limit(netuid, mecid, uid, now),
            Error::<T>::CommittingWeightsTooFast
        );
        let epoch = Self::current_epoch_with_lookahead(netuid);
        let mut commits = TimelockedWeightCommits::<T>::get(idx, epoch);
        ensure!(
            commits.iter().filter(|(a, ..)| a == who).count() < MAX_UNREVEALED_COMMITS,
            Error::<T>::TooManyUnrevealedCommits
        );
        let hash = BlakeTwo256::hash(&commit);
        commits.push_back((who.clone(), now, commit, reveal_round));
        TimelockedWeightCommits::<T>::insert(idx, epoch, commits);
        Self::deposit_event(Event::TimelockedWeightsCommitted(
            who.clone(),
            idx,
            hash,
            reveal_round,
        ));
        Self::set_last_update(netuid, idx, uid, now);
        Ok(())
    }
}

extern crate alloc;
use alloc::vec::Vec;

#[cfg(test)]
mod tests {
    use crate::runtime::{AccountId, Runtime};
    use polkadot_sdk::sp_keyring::Sr25519Keyring;

    /// The CR-v2 vector of `subtensor-interface.md` §3.1 (equal to the Python SDK's
    /// `generate_weight_hash`).
    #[test]
    fn commit_hash_matches_the_sdk_vector() {
        let alice: AccountId = Sr25519Keyring::Alice.to_account_id();
        let salt: Vec<u16> = (1..=8).collect();
        let h = super::Pallet::<Runtime>::get_commit_hash(&alice, 1, &[0, 1], &[10, 10], &salt, 0);
        assert_eq!(
            hex::encode(h.0),
            "d9bf9b22a51844e113d525eaadc9ae576918c6590431b199dd8534c19cebc517"
        );
    }
}
