//! Mechanisms: a subnet split by its owner into up to 16 weight sets, each with its own weights,
//! incentive and share of the subnet's emission (subtensor `pallets/subtensor/src/subnets/mechanism.rs`).
//!
//! A mechanism's per-uid chain state (`Weights`, `Bonds`, `Incentive`, `LastUpdate`, commits) is
//! stored under the index [`crate::weights::storage_index`] (`netuid + mecid * 4096`). The epoch runs
//! Yuma once per mechanism on its share of the emission ([`split_emission`]); `Incentive` is kept per
//! mechanism, while `Dividends`, `Consensus`, `ValidatorTrust` and `Emission` are per subnet, the
//! mechanisms' values weighted by their share of the emission.
//!
//! ```
//! use chain::mechanism::{Mechanisms, split_emission};
//!
//! // Two mechanisms, the owner gives 3/4 of the emission to mechanism 1.
//! let m = Mechanisms { count: 2, emission_split: Some(vec![16_384, 49_151]) };
//! assert_eq!(split_emission(1_000_000, m.count, m.emission_split.as_deref()), [250_004, 749_996]);
//! // Unset: an even split.
//! assert_eq!(split_emission(1_001, 2, None), [501, 500]);
//! ```

use subxt::ext::scale_decode::{self, DecodeAsType};

/// How a subnet's epoch computes rewards (`SubtensorModule::SubnetEpochConsensus` in newer runtimes;
/// [`EpochConsensus::Yuma`] where the runtime does not have it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, DecodeAsType, serde::Serialize)]
#[decode_as_type(crate_path = "scale_decode")]
#[serde(rename_all = "lowercase")]
pub enum EpochConsensus {
    /// Yuma consensus.
    #[default]
    Yuma,
    /// Null consensus: only the highest-stake uid holds a validator permit, and only it may set
    /// weights (the SDK 11.3 refuses to sign for anyone else).
    Null,
}

/// A subnet's mechanisms, as its owner set them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Mechanisms {
    /// `MechanismCountCurrent` (1 unless the owner split the subnet).
    pub count: u8,
    /// `MechanismEmissionSplit`: each mechanism's share ×65535 (summing to 65535), or `None` for an
    /// even split.
    pub emission_split: Option<Vec<u16>>,
}

impl Default for Mechanisms {
    fn default() -> Self {
        Self {
            count: 1,
            emission_split: None,
        }
    }
}

impl Mechanisms {
    /// Whether mechanism `mecid` exists (else the chain refuses it with `MechanismDoesNotExist`).
    pub const fn has(&self, mecid: u8) -> bool {
        mecid < self.count
    }

    /// Each mechanism's share of an emission of `alpha` rao, as the chain splits it.
    pub fn split(&self, alpha: u64) -> Vec<u64> {
        split_emission(alpha, self.count, self.emission_split.as_deref())
    }
}

/// subtensor's `split_emissions`: `alpha × split[m] / 65535` per mechanism (or `alpha / count` each
/// when `split` is `None`), padded with zeros (or cut) to `count` entries; what integer division
/// loses goes to mechanism 0.
pub fn split_emission(alpha: u64, count: u8, split: Option<&[u16]>) -> Vec<u64> {
    let count = usize::from(count);
    let mut result: Vec<u64> = match split {
        Some(split) => split
            .iter()
            .map(|s| {
                let share = u128::from(alpha) * u128::from(*s) / u128::from(u16::MAX);
                u64::try_from(share).unwrap_or(u64::MAX)
            })
            .collect(),
        None => vec![alpha.checked_div(count as u64).unwrap_or(0); count],
    };
    result.resize(count, 0);
    let lost = alpha.saturating_sub(result.iter().fold(0u64, |a, s| a.saturating_add(*s)));
    if let Some(first) = result.first_mut() {
        *first = first.saturating_add(lost);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_mechanism_gets_everything() {
        assert_eq!(split_emission(12_345, 1, None), [12_345]);
        assert_eq!(split_emission(12_345, 1, Some(&[u16::MAX])), [12_345]);
    }

    #[test]
    fn a_short_split_pads_with_zero_and_rounding_goes_to_mechanism_zero() {
        // One entry for three mechanisms: mechanism 0 takes it all, 1 and 2 nothing.
        assert_eq!(split_emission(999, 3, Some(&[u16::MAX])), [999, 0, 0]);
        // 1000 / 3 = 333 each, the lost 1 goes to mechanism 0.
        assert_eq!(split_emission(1_000, 3, None), [334, 333, 333]);
        assert_eq!(
            Mechanisms {
                count: 2,
                emission_split: Some(vec![1, 65_534])
            }
            .split(65_535),
            [1, 65_534]
        );
    }
}
