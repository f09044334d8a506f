//! From scores to the u16 weight vector a validator submits.
//!
//! [`sdk_convert`] is the Bittensor SDK's `convert_weights_and_uids_for_emit`: reject negatives, send
//! nothing when everything is zero, divide by the maximum, `round(w · 65535)` (Python's `round`,
//! which rounds halves to even) and drop zeros. [`weights_from_scores`] applies the owner policy
//! (score floor, burn share) first, then fits the result to the chain's `MaxWeightsLimit` (checked
//! with the chain's own fixed-point test, after the chain's own max-upscale) and `MinAllowedWeights`
//! (padding with the smallest weight, 1, on the best-scored uids left out, then the lowest uids).
//!
//! ```
//! use std::collections::BTreeMap;
//! use scoring::policy::Policy;
//! use scoring::weights::{weights_from_scores, ChainLimits};
//!
//! let scores = BTreeMap::from([(1u16, 0.5), (2, 0.25), (3, 0.0)]);
//! let limits = ChainLimits { n: 4, min_allowed_weights: 1, max_weight_limit: u16::MAX };
//! let w = weights_from_scores(&scores, &Policy::default(), &limits).unwrap();
//! assert_eq!(w.uids, vec![1, 2]);
//! assert_eq!(w.weights, vec![65535, 32768]);
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::policy::Policy;
use crate::yuma::{check_vec_max_limited, vec_u16_max_upscale_to_u16};

/// The chain's limits on one weight vector, read from the subnet's hyperparameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainLimits {
    /// Number of uids on the subnet (`SubnetworkN`); uids at or above it are dropped.
    pub n: u16,
    /// `MinAllowedWeights`: the fewest non-zero entries (capped at `n`).
    pub min_allowed_weights: u16,
    /// `MaxWeightsLimit`: the largest share of the normalized vector one uid may hold, of 65535
    /// (65535 means no limit).
    pub max_weight_limit: u16,
}

/// A weight vector as `set_weights` takes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeightVector {
    /// Destination uids, ascending.
    pub uids: Vec<u16>,
    /// Weights, same order; the largest is 65535.
    pub weights: Vec<u16>,
}

/// Why no weight vector could be produced.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WeightError {
    /// A score or weight is negative or not a number.
    #[error("the weight for uid {uid} is {value}; weights must be finite and not negative")]
    Invalid {
        /// The uid.
        uid: u16,
        /// The value.
        value: f64,
    },
    /// `uids` and `weights` differ in length.
    #[error("{uids} uids but {weights} weights; give one weight per uid")]
    LengthMismatch {
        /// Number of uids.
        uids: usize,
        /// Number of weights.
        weights: usize,
    },
    /// The policy's burn uid is not on the subnet.
    #[error(
        "the policy burns to uid {uid}, but the subnet has only {n} uids; set burn.uid to a registered uid"
    )]
    BurnUidOutOfRange {
        /// The burn uid.
        uid: u16,
        /// The number of uids.
        n: u16,
    },
    /// The max weight limit cannot be met with `n` uids.
    #[error(
        "max weight limit {limit}/65535 cannot be met with {n} uids; the subnet needs a higher limit or more uids"
    )]
    CannotFit {
        /// The limit.
        limit: u16,
        /// The number of uids.
        n: u16,
    },
}

/// The SDK's `convert_weights_and_uids_for_emit`.
pub fn sdk_convert(uids: &[u16], weights: &[f64]) -> Result<WeightVector, WeightError> {
    if uids.len() != weights.len() {
        return Err(WeightError::LengthMismatch {
            uids: uids.len(),
            weights: weights.len(),
        });
    }
    if let Some((&uid, &value)) = uids
        .iter()
        .zip(weights)
        .find(|(_, w)| !w.is_finite() || **w < 0.0)
    {
        return Err(WeightError::Invalid { uid, value });
    }
    let max = weights.iter().copied().fold(0.0_f64, f64::max);
    let mut out = WeightVector::default();
    if max <= 0.0 {
        return Ok(out);
    }
    for (&uid, &w) in uids.iter().zip(weights) {
        let v = (w / max * f64::from(u16::MAX)).round_ties_even();
        if v != 0.0 {
            out.uids.push(uid);
            out.weights.push(v as u16);
        }
    }
    Ok(out)
}

/// Cap every share at `cap` (shares sum to 1), handing the excess to the uncapped entries in
/// proportion to their share, or evenly to the zero entries when no positive entry is left under the
/// cap. Returns false when even that cannot meet the cap.
fn cap_shares(w: &mut [f64], cap: f64) -> bool {
    for _ in 0..=w.len() {
        let excess: f64 = w.iter().filter(|&&x| x > cap).map(|x| x - cap).sum();
        if excess <= 1e-15 {
            return true;
        }
        w.iter_mut().filter(|x| **x > cap).for_each(|x| *x = cap);
        let room: f64 = w.iter().filter(|&&x| x > 0.0 && x < cap).sum();
        if room > 0.0 {
            let scale = 1.0 + excess / room;
            w.iter_mut()
                .filter(|x| **x > 0.0 && **x < cap)
                .for_each(|x| *x *= scale);
        } else {
            let zeros = w.iter().filter(|&&x| x == 0.0).count();
            if zeros == 0 {
                return false;
            }
            let each = excess / zeros as f64;
            w.iter_mut().filter(|x| **x == 0.0).for_each(|x| *x = each);
        }
    }
    false
}

/// Turn per-uid scores into the weight vector to submit, applying the policy and the chain limits.
/// A negative score (a miner still working off failed verifications) weighs 0. An empty vector means
/// "nothing to weigh" (no positive score and no burn).
pub fn weights_from_scores(
    scores: &BTreeMap<u16, f64>,
    policy: &Policy,
    limits: &ChainLimits,
) -> Result<WeightVector, WeightError> {
    let n = usize::from(limits.n);
    let mut dense = vec![0.0_f64; n];
    for (&uid, &s) in scores {
        if !s.is_finite() {
            return Err(WeightError::Invalid { uid, value: s });
        }
        // A negative score is a miner still paying off failed verifications: no weight.
        if let Some(d) = dense.get_mut(usize::from(uid)) {
            *d = s.max(0.0);
        }
    }
    let best = dense.iter().copied().fold(0.0_f64, f64::max);
    let floor = policy.weights.min_relative_score * best;
    dense.iter_mut().filter(|x| **x < floor).for_each(|x| *x = 0.0);
    let total: f64 = dense.iter().sum();
    if total > 0.0 {
        dense.iter_mut().for_each(|x| *x /= total);
    }
    let burn = usize::from(policy.burn.uid);
    if policy.burn.share > 0.0 && burn >= n {
        return Err(WeightError::BurnUidOutOfRange {
            uid: policy.burn.uid,
            n: limits.n,
        });
    }
    if policy.burn.share > 0.0 {
        if total > 0.0 {
            dense.iter_mut().for_each(|x| *x *= 1.0 - policy.burn.share);
            dense[burn] += policy.burn.share;
        } else {
            dense[burn] = 1.0;
        }
    }
    if dense.iter().all(|&x| x == 0.0) {
        return Ok(WeightVector::default());
    }
    let limited = limits.max_weight_limit < u16::MAX;
    if limited {
        let cap = f64::from(limits.max_weight_limit) / f64::from(u16::MAX);
        if !cap_shares(&mut dense, cap) {
            return Err(WeightError::CannotFit {
                limit: limits.max_weight_limit,
                n: limits.n,
            });
        }
    }
    let uids: Vec<u16> = (0..limits.n).collect();
    let mut out = sdk_convert(&uids, &dense)?;

    // MinAllowedWeights: pad with weight 1, best-scored left-out uids first, then by uid.
    let need = usize::from(limits.min_allowed_weights.min(limits.n));
    if out.uids.len() < need {
        let mut extra: Vec<u16> = uids.iter().copied().filter(|u| !out.uids.contains(u)).collect();
        extra.sort_by(|a, b| {
            let (sa, sb) = (
                scores.get(a).copied().unwrap_or(0.0),
                scores.get(b).copied().unwrap_or(0.0),
            );
            sb.total_cmp(&sa).then(a.cmp(b))
        });
        let mut pairs: Vec<(u16, u16)> = out
            .uids
            .iter()
            .copied()
            .zip(out.weights.iter().copied())
            .collect();
        pairs.extend(extra.into_iter().take(need - out.uids.len()).map(|u| (u, 1)));
        pairs.sort_unstable();
        out = WeightVector {
            uids: pairs.iter().map(|p| p.0).collect(),
            weights: pairs.iter().map(|p| p.1).collect(),
        };
    }

    // Rounding can push the largest share a hair over the limit: trim the largest entries, as the
    // chain will see them after its own max-upscale, until its check passes.
    if limited {
        let mut tries = 0;
        while !check_vec_max_limited(&vec_u16_max_upscale_to_u16(&out.weights), limits.max_weight_limit) {
            let max = out.weights.iter().copied().max().unwrap_or(0);
            if max <= 1 || tries > 10_000 {
                return Err(WeightError::CannotFit {
                    limit: limits.max_weight_limit,
                    n: limits.n,
                });
            }
            out.weights
                .iter_mut()
                .filter(|w| **w == max)
                .for_each(|w| *w -= 1);
            tries += 1;
        }
        out.weights = vec_u16_max_upscale_to_u16(&out.weights);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(n: u16, min: u16, max: u16) -> ChainLimits {
        ChainLimits {
            n,
            min_allowed_weights: min,
            max_weight_limit: max,
        }
    }

    #[test]
    fn sdk_conversion_matches_python() {
        // round(0.5 / 1 * 65535) = round(32767.5) = 32768 (half to even), zeros dropped.
        let w = sdk_convert(&[0, 1, 2, 3], &[0.0, 0.5, 1.0, 1e-9]).unwrap();
        assert_eq!(w.uids, vec![1, 2]);
        assert_eq!(w.weights, vec![32768, 65535]);
        // 0.25 * 65535 = 16383.75 -> 16384; a tie 2.5 -> 2.
        let w = sdk_convert(&[0, 1, 2], &[0.25, 1.0, 2.5 / 65535.0]).unwrap();
        assert_eq!(w.weights, vec![16384, 65535, 2]);
        assert_eq!(sdk_convert(&[0], &[0.0]).unwrap(), WeightVector::default());
        assert!(sdk_convert(&[0, 1], &[1.0, -1.0]).is_err());
    }

    #[test]
    fn weights_sum_and_order_follow_scores() {
        let scores: BTreeMap<u16, f64> = (0..10).map(|u| (u, f64::from(u) / 10.0)).collect();
        let w = weights_from_scores(&scores, &Policy::default(), &limits(10, 1, u16::MAX)).unwrap();
        assert_eq!(w.uids, (1..10).collect::<Vec<_>>());
        assert_eq!(*w.weights.last().unwrap(), u16::MAX);
        assert!(w.weights.windows(2).all(|p| p[0] < p[1]));
        // Normalized, the weights sum to 1 within u16 resolution.
        let total: f64 = w.weights.iter().map(|&x| f64::from(x)).sum();
        let shares: Vec<f64> = w.weights.iter().map(|&x| f64::from(x) / total).collect();
        assert!((shares.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!((shares[8] - 9.0 / 45.0).abs() < 1e-4);
    }

    #[test]
    fn burn_share_goes_to_the_sink() {
        let mut p = Policy::default();
        p.burn.share = 0.5;
        p.burn.uid = 0;
        let scores = BTreeMap::from([(1, 1.0), (2, 1.0)]);
        let w = weights_from_scores(&scores, &p, &limits(3, 1, u16::MAX)).unwrap();
        assert_eq!(w.uids, vec![0, 1, 2]);
        assert_eq!(w.weights, vec![65535, 32768, 32768]);
        // Nothing to reward: everything burns.
        let w = weights_from_scores(&BTreeMap::new(), &p, &limits(3, 1, u16::MAX)).unwrap();
        assert_eq!((w.uids, w.weights), (vec![0], vec![65535]));
        p.burn.uid = 3;
        assert!(matches!(
            weights_from_scores(&scores, &p, &limits(3, 1, u16::MAX)),
            Err(WeightError::BurnUidOutOfRange { uid: 3, n: 3 })
        ));
    }

    #[test]
    fn fitted_to_max_weight_limit_and_min_allowed_weights() {
        let scores = BTreeMap::from([(0, 10.0), (1, 1.0), (2, 1.0), (3, 0.5)]);
        // At most 40% per uid.
        let limit = (0.4 * 65535.0) as u16;
        let w = weights_from_scores(&scores, &Policy::default(), &limits(8, 6, limit)).unwrap();
        assert!(w.uids.len() >= 6);
        assert!(check_vec_max_limited(&w.weights, limit));
        assert!(check_vec_max_limited(
            &vec_u16_max_upscale_to_u16(&w.weights),
            limit
        ));
        assert_eq!(w.uids[0], 0);
        // 2 uids can never satisfy a 40% limit.
        let two = BTreeMap::from([(0, 1.0), (1, 1.0)]);
        assert!(matches!(
            weights_from_scores(&two, &Policy::default(), &limits(2, 1, limit)),
            Err(WeightError::CannotFit { .. })
        ));
    }

    #[test]
    fn score_floor_drops_dust() {
        let mut p = Policy::default();
        p.weights.min_relative_score = 0.1;
        let scores = BTreeMap::from([(0, 1.0), (1, 0.05), (2, 0.5)]);
        let w = weights_from_scores(&scores, &p, &limits(3, 1, u16::MAX)).unwrap();
        assert_eq!(w.uids, vec![0, 2]);
    }
}
