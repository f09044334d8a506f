//! Mechanisms (subtensor's "sub-subnets"): a subnet split into up to [`MAX_MECHANISM_COUNT_PER_SUBNET`]
//! weight sets, each with its own `Weights`, `Bonds`, `Incentive`, `LastUpdate` and commits, stored
//! under the index `netuid + mecid * 4096` ([`chain::weights::storage_index`]; mechanism 0's index is
//! the netuid). The epoch runs Yuma once per mechanism on its share of the subnet's emission
//! (`MechanismEmissionSplit`, an even split when unset) and aggregates the per-uid terms as subtensor's
//! `epoch_with_mechanisms` does (`pallets/subtensor/src/subnets/mechanism.rs`).

use super::pallet::*;
use super::{MechId, NetUid};
use polkadot_sdk::frame_support::{ensure, pallet_prelude::DispatchResult};

extern crate alloc;
use alloc::vec::Vec;

/// Most mechanisms a subnet may have (`MAX_MECHANISM_COUNT_PER_SUBNET`).
pub const MAX_MECHANISM_COUNT_PER_SUBNET: MechId = 16;
/// `DefaultMaxAllowedUids`: `MaxAllowedUids × MechanismCountCurrent` may not exceed it.
pub const MAX_UIDS_OVER_ALL_MECHANISMS: u16 = 256;

/// The weight of one mechanism in the aggregated per-netuid terms: `sub_emission / rao_emission` as
/// a U64F64 fraction (`raw / 2^64`); with no emission, mechanism 0 weighs 1 and the others 0
/// (subtensor's `safe_div_or`).
pub fn mechanism_weight(mecid: MechId, sub_emission: u64, rao_emission: u64) -> u128 {
    if rao_emission == 0 {
        return if mecid == 0 { 1u128 << 64 } else { 0 };
    }
    (u128::from(sub_emission) << 64) / u128::from(rao_emission)
}

/// `existing + floor(added × weight)` (subtensor's `weighted_acc_u16`, saturating).
pub fn weighted_acc_u16(existing: u16, added: u16, weight: u128) -> u16 {
    let add = (u128::from(added).saturating_mul(weight)) >> 64;
    u16::try_from(u128::from(existing).saturating_add(add)).unwrap_or(u16::MAX)
}

/// `existing + floor(added × weight)` for rao amounts (subtensor's `weighted_acc_alpha`, saturating).
pub fn weighted_acc_u64(existing: u64, added: u64, weight: u128) -> u64 {
    let add = (u128::from(added).saturating_mul(weight)) >> 64;
    u64::try_from(u128::from(existing).saturating_add(add)).unwrap_or(u64::MAX)
}

impl<T: Config> Pallet<T> {
    /// The storage index of mechanism `mecid` of `netuid`.
    pub fn mechanism_index(netuid: NetUid, mecid: MechId) -> u16 {
        chain::weights::storage_index(netuid, mecid)
    }

    /// The subnet exists and has mechanism `mecid`, else `MechanismDoesNotExist`.
    pub fn ensure_mechanism_exists(netuid: NetUid, mecid: MechId) -> DispatchResult {
        ensure!(NetworksAdded::<T>::get(netuid), Error::<T>::MechanismDoesNotExist);
        ensure!(
            MechanismCountCurrent::<T>::get(netuid) > mecid,
            Error::<T>::MechanismDoesNotExist
        );
        Ok(())
    }

    /// `MaxAllowedUids × count` must stay within [`MAX_UIDS_OVER_ALL_MECHANISMS`]
    /// (`TooManyUIDsPerMechanism`).
    pub fn ensure_max_uids_over_all_mechanisms(max_uids: u16, count: MechId) -> DispatchResult {
        ensure!(
            max_uids.saturating_mul(u16::from(count)) <= MAX_UIDS_OVER_ALL_MECHANISMS,
            Error::<T>::TooManyUIDsPerMechanism
        );
        Ok(())
    }

    /// `do_set_mechanism_count`: the count is 1..=`MaxMechanismCount` (and at most 16), and the
    /// subnet's uids over all mechanisms stay bounded. Lowering it clears the removed mechanisms'
    /// weights, bonds, incentive, last updates and commits; any change resets the emission split to
    /// even.
    pub fn do_set_mechanism_count(netuid: NetUid, count: MechId) -> DispatchResult {
        ensure!(NetworksAdded::<T>::get(netuid), Error::<T>::MechanismDoesNotExist);
        ensure!(count > 0, Error::<T>::InvalidValue);
        ensure!(count <= MaxMechanismCount::<T>::get(), Error::<T>::InvalidValue);
        Self::ensure_max_uids_over_all_mechanisms(MaxAllowedUids::<T>::get(netuid), count)?;
        ensure!(count <= MAX_MECHANISM_COUNT_PER_SUBNET, Error::<T>::InvalidValue);
        let old = MechanismCountCurrent::<T>::get(netuid);
        if old != count {
            for mecid in count..old {
                let idx = Self::mechanism_index(netuid, mecid);
                let _ = Weights::<T>::clear_prefix(idx, u32::MAX, None);
                Incentive::<T>::remove(idx);
                LastUpdate::<T>::remove(idx);
                let _ = Bonds::<T>::clear_prefix(idx, u32::MAX, None);
                let _ = WeightCommits::<T>::clear_prefix(idx, u32::MAX, None);
                let _ = TimelockedWeightCommits::<T>::clear_prefix(idx, u32::MAX, None);
            }
            MechanismCountCurrent::<T>::insert(netuid, count);
            MechanismEmissionSplit::<T>::remove(netuid);
        }
        Ok(())
    }

    /// `do_set_max_mechanism_count`: 1..=16.
    pub fn do_set_max_mechanism_count(max: MechId) -> DispatchResult {
        ensure!(max > 0, Error::<T>::InvalidValue);
        ensure!(max <= MAX_MECHANISM_COUNT_PER_SUBNET, Error::<T>::InvalidValue);
        MaxMechanismCount::<T>::put(max);
        Ok(())
    }

    /// `do_set_emission_split`: `Some(split)` with 1..=count entries summing to 65535, or `None`
    /// for an even split.
    pub fn do_set_emission_split(netuid: NetUid, split: Option<Vec<u16>>) -> DispatchResult {
        ensure!(NetworksAdded::<T>::get(netuid), Error::<T>::MechanismDoesNotExist);
        match split {
            Some(split) => {
                ensure!(!split.is_empty(), Error::<T>::InvalidValue);
                ensure!(
                    split.len() <= usize::from(MechanismCountCurrent::<T>::get(netuid)),
                    Error::<T>::InvalidValue
                );
                let total: u64 = split.iter().map(|s| u64::from(*s)).sum();
                ensure!(total == u64::from(u16::MAX), Error::<T>::InvalidValue);
                MechanismEmissionSplit::<T>::insert(netuid, split);
            }
            None => MechanismEmissionSplit::<T>::remove(netuid),
        }
        Ok(())
    }

    /// `split_emissions`: the subnet's emission per mechanism ([`chain::mechanism::split_emission`]
    /// with `MechanismCountCurrent` and `MechanismEmissionSplit`).
    pub fn split_emissions(netuid: NetUid, alpha: u64) -> Vec<u64> {
        chain::mechanism::split_emission(
            alpha,
            MechanismCountCurrent::<T>::get(netuid),
            MechanismEmissionSplit::<T>::get(netuid).as_deref(),
        )
    }

    /// `LastUpdate[idx]` padded with zeros to the subnet's size (`get_last_update`).
    pub fn last_update_padded(netuid: NetUid, idx: u16) -> Vec<u64> {
        let mut v = LastUpdate::<T>::get(idx);
        let n = usize::from(SubnetworkN::<T>::get(netuid));
        if v.len() < n {
            v.resize(n, 0);
        }
        v
    }

    /// Set `LastUpdate[idx][uid]` (`set_last_update_for_uid`: the vector is padded first).
    pub fn set_last_update(netuid: NetUid, idx: u16, uid: u16, block: u64) {
        let mut v = Self::last_update_padded(netuid, idx);
        if let Some(x) = v.get_mut(usize::from(uid)) {
            *x = block;
            LastUpdate::<T>::insert(idx, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_mechanism_weighs_exactly_one() {
        let w = mechanism_weight(0, 1_000, 1_000);
        assert_eq!(w, 1u128 << 64);
        assert_eq!(weighted_acc_u16(0, 65535, w), 65535);
        assert_eq!(weighted_acc_u64(0, 123_456_789, w), 123_456_789);
    }

    #[test]
    fn weighted_sums_floor_each_term() {
        // 3/4 and 1/4 of 1000 rao: 1000·3/4 = 750, 1001·1/4 = 250.25 → 250.
        let (a, b) = (mechanism_weight(0, 750, 1_000), mechanism_weight(1, 250, 1_000));
        assert_eq!(weighted_acc_u64(weighted_acc_u64(0, 1_000, a), 1_001, b), 1_000);
        assert_eq!(weighted_acc_u16(weighted_acc_u16(0, 65535, a), 65535, b), 65534);
        assert_eq!(mechanism_weight(1, 0, 0), 0);
        assert_eq!(mechanism_weight(0, 0, 0), 1u128 << 64);
    }
}
