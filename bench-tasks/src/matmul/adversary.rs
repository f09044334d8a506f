//! Cheating miners, as real implementations: they run on a burn device like the honest miner and answer
//! through the same [`OpenState`], so tests, the simulator and `miner --adversary` exercise the
//! validator exactly as a cheater would.
//!
//! | adversary | what it does | cost | caught by |
//! |---|---|---|---|
//! | `honest` | the real work | B·n³ | — |
//! | `lazy:f` | skips `round(f·B·n)` rows of the stacked product (zeros there), with a sketch consistent with that: whole products first in a batched challenge (the cheat that saves whole matmuls), random rows of the one product otherwise | (1−f)·B·n³ | Freivalds on a skipped row, probability `1 − C(R−b, k)/C(R, k)` |
//! | `noisy:f` | corrupts one entry (+1) in a fraction `f` of the rows, sketch consistent | B·n³ | Freivalds, `1 − C(R−b, k)/C(R, k)` |
//! | `forged_sketch` | sends the linear shortcut `A·(B·R)` as the sketch (O(B·n²m)) and computes opened rows on demand | B·n²·m + k·n² | the sketch check, ≈ always |
//! | `on_demand` | commits a random sketch and computes only the opened rows afterwards | k·n² | the sketch check, ≈ always |
//! | `replay` | answers with another miner's result (a challenge for another `A`) | B·n³ | Freivalds, ≈ always |
//!
//! `R = B·n` is the number of rows of the stacked product and `b` the rows the cheat gets wrong
//! ([`Adversary::bad_rows`]). In a batched challenge the sketch is committed by its Merkle root
//! ([`crate::matmul::commit`]), so each cheat commits to the sketch it would have sent.
//!
//! ```
//! use bench_tasks::matmul::Adversary;
//!
//! let lazy: Adversary = "lazy:0.1".parse().unwrap();
//! assert_eq!(lazy, Adversary::Lazy { fraction: 0.1 });
//! assert_eq!(lazy.to_string(), "lazy:0.1");
//! ```

use std::fmt;
use std::str::FromStr;

use burn::tensor::{Device, IndexingUpdateOp, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::generator::splitmix64;
use super::miner::{MatmulJob, MinerError, OpenState, commit, factors, read_f32, sketch_matrix, sketch_of};
use super::params::{MatmulChallenge, MatmulLimits, Round1Answer, SKETCH_BOUND};

/// A miner strategy: honest, or one of the cheats the protocol must catch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Adversary {
    /// The real work.
    Honest,
    /// Skips a fraction of the rows of `C` (leaves them zero), with a consistent sketch.
    Lazy {
        /// Fraction of rows skipped, in `[0, 1]`.
        fraction: f64,
    },
    /// Corrupts one entry in a fraction of the rows, with a consistent sketch.
    Noisy {
        /// Fraction of rows corrupted, in `[0, 1]`.
        fraction: f64,
    },
    /// Sends the linear, cheap sketch `A·(B·R)` and computes opened rows on demand.
    ForgedSketch,
    /// Commits a random sketch and computes only the opened rows.
    OnDemand,
    /// Answers with another miner's result.
    Replay,
}

/// Why an adversary specification could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown adversary `{0}`; expected honest, lazy:F, noisy:F (0 ≤ F ≤ 1), forged_sketch, on_demand or replay"
)]
pub struct AdversaryParseError(String);

impl Adversary {
    /// Runs round 1 as this strategy would, returning its round-1 answer and the state that answers
    /// the opening request. `seed` drives the strategy's own choices (which rows to skip, the garbage it
    /// commits); vary it across trials.
    pub fn run(
        &self,
        challenge: &MatmulChallenge,
        device: &Device,
        limits: &MatmulLimits,
        seed: u64,
    ) -> Result<(Round1Answer, OpenState), MinerError> {
        challenge.validate(limits)?;
        let (n, rows) = (challenge.n, challenge.rows());
        let mut rng = seed ^ challenge.miner_seed.rotate_left(17) ^ challenge.round_seed;
        let committed = |values: Vec<f32>, state: OpenState| {
            let (answer, tree) = commit(challenge, values);
            (answer, state.with_tree(tree))
        };
        match *self {
            Self::Honest => MatmulJob::run_with_limits(challenge, device, limits),
            Self::Lazy { fraction } => {
                let kept = if challenge.batch > 1 {
                    // Whole products skipped (in a random order), the last one partly: the cheat that
                    // saves whole matmuls.
                    let (_, order) = split_rows(challenge.batch, 1.0, &mut rng);
                    let skipped = self.bad_rows(challenge) as usize;
                    order
                        .iter()
                        .flat_map(|&t| t * n..(t + 1) * n)
                        .skip(skipped)
                        .collect()
                } else {
                    split_rows(n, fraction, &mut rng).0
                };
                let (a, b) = factors(challenge, device);
                let zeros = Tensor::<2>::zeros([rows as usize, n as usize], device);
                let c = if kept.is_empty() {
                    zeros
                } else {
                    let idx = index_tensor(&kept, device);
                    let partial = a.select(0, idx.clone()).matmul(b);
                    zeros.select_assign(0, idx, partial, IndexingUpdateOp::Add)
                };
                let sketch = sketch_of(challenge, &c, device)?;
                Ok(committed(sketch, OpenState::stored(challenge, c, *limits)))
            }
            Self::Noisy { fraction } => {
                let (_, bad) = split_rows(rows, fraction, &mut rng);
                let (a, b) = factors(challenge, device);
                let mut c = a.matmul(b);
                if !bad.is_empty() {
                    let mut mask = vec![0f32; rows as usize];
                    for &r in &bad {
                        mask[r as usize] = 1.0;
                    }
                    let mut onehot = vec![0f32; n as usize];
                    onehot[(splitmix64(&mut rng) % u64::from(n)) as usize] = 1.0;
                    let mask = Tensor::<2>::from_data(TensorData::new(mask, [rows as usize, 1]), device);
                    let onehot = Tensor::<2>::from_data(TensorData::new(onehot, [1, n as usize]), device);
                    c = c.add(mask.mul(onehot));
                }
                let sketch = sketch_of(challenge, &c, device)?;
                Ok(committed(sketch, OpenState::stored(challenge, c, *limits)))
            }
            Self::ForgedSketch => {
                let (a, b) = factors(challenge, device);
                let linear = a
                    .clone()
                    .matmul(b.clone().matmul(sketch_matrix(challenge, device)));
                let sketch = read_f32(linear)?;
                Ok(committed(sketch, OpenState::on_demand(challenge, a, b, *limits)))
            }
            Self::OnDemand => {
                let (a, b) = factors(challenge, device);
                // Garbage in the honest range, so that only the sketch check can catch it.
                let span = u64::from(n) * u64::from(challenge.p - 1) * u64::from(SKETCH_BOUND);
                let sketch = (0..u64::from(rows) * u64::from(challenge.m))
                    .map(|_| (splitmix64(&mut rng) % (2 * span + 1)) as f32 - span as f32)
                    .collect();
                Ok(committed(sketch, OpenState::on_demand(challenge, a, b, *limits)))
            }
            Self::Replay => {
                let other = MatmulChallenge {
                    miner_seed: splitmix64(&mut rng),
                    ..*challenge
                };
                MatmulJob::run_with_limits(&other, device, limits)
            }
        }
    }

    /// Rows of `challenge`'s stacked product this strategy gets wrong: `round(f·B·n)` for `lazy:f` and
    /// `noisy:f` (on a batch, lazy skips `⌊f·B⌋` whole products and part of one more), and every row for
    /// the full cheats. A validator opening `k` of the `B·n` rows misses them all with probability
    /// [`RoundParams::pass_probability_of`](super::RoundParams::pass_probability_of).
    pub fn bad_rows(&self, challenge: &MatmulChallenge) -> u32 {
        let count = |units: u32, fraction: f64| {
            ((fraction.clamp(0.0, 1.0) * f64::from(units)).round() as u32).min(units)
        };
        match *self {
            Self::Honest => 0,
            Self::Lazy { fraction } | Self::Noisy { fraction } => count(challenge.rows(), fraction),
            Self::ForgedSketch | Self::OnDemand | Self::Replay => challenge.rows(),
        }
    }
}

/// Splits `0..n` into (kept, bad) with `round(fraction·n)` bad rows chosen by a seeded shuffle.
fn split_rows(n: u32, fraction: f64, rng: &mut u64) -> (Vec<u32>, Vec<u32>) {
    let mut rows: Vec<u32> = (0..n).collect();
    for i in (1..rows.len()).rev() {
        let j = (splitmix64(rng) % (i as u64 + 1)) as usize;
        rows.swap(i, j);
    }
    let bad = ((fraction.clamp(0.0, 1.0) * f64::from(n)).round() as usize).min(rows.len());
    let kept = rows.split_off(bad);
    (kept, rows)
}

fn index_tensor(rows: &[u32], device: &Device) -> Tensor<1, Int> {
    let idx: Vec<i64> = rows.iter().map(|&r| i64::from(r)).collect();
    Tensor::<1, Int>::from_data(TensorData::new(idx, [rows.len()]), device)
}

impl fmt::Display for Adversary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Honest => f.write_str("honest"),
            Self::Lazy { fraction } => write!(f, "lazy:{fraction}"),
            Self::Noisy { fraction } => write!(f, "noisy:{fraction}"),
            Self::ForgedSketch => f.write_str("forged_sketch"),
            Self::OnDemand => f.write_str("on_demand"),
            Self::Replay => f.write_str("replay"),
        }
    }
}

impl FromStr for Adversary {
    type Err = AdversaryParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || AdversaryParseError(s.to_owned());
        let norm = s.trim().to_ascii_lowercase().replace('-', "_");
        let (name, arg) = match norm.split_once(':') {
            Some((name, arg)) => (name, Some(arg)),
            None => (norm.as_str(), None),
        };
        let fraction = || -> Result<f64, AdversaryParseError> {
            let f: f64 = arg.ok_or_else(err)?.parse().map_err(|_| err())?;
            if (0.0..=1.0).contains(&f) {
                Ok(f)
            } else {
                Err(err())
            }
        };
        match (name, arg) {
            ("honest", None) => Ok(Self::Honest),
            ("lazy", Some(_)) => Ok(Self::Lazy {
                fraction: fraction()?,
            }),
            ("noisy", Some(_)) => Ok(Self::Noisy {
                fraction: fraction()?,
            }),
            ("forged_sketch", None) => Ok(Self::ForgedSketch),
            ("on_demand", None) => Ok(Self::OnDemand),
            ("replay", None) => Ok(Self::Replay),
            _ => Err(err()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_display_round_trip() {
        for a in [
            Adversary::Honest,
            Adversary::Lazy { fraction: 0.05 },
            Adversary::Noisy { fraction: 1.0 },
            Adversary::ForgedSketch,
            Adversary::OnDemand,
            Adversary::Replay,
        ] {
            assert_eq!(a.to_string().parse::<Adversary>().unwrap(), a);
        }
        assert_eq!("on-demand".parse::<Adversary>().unwrap(), Adversary::OnDemand);
        for bad in ["lazy", "lazy:1.5", "lazy:x", "honest:1", "sloth"] {
            assert!(bad.parse::<Adversary>().is_err(), "{bad}");
        }
    }

    #[test]
    fn split_rows_counts() {
        let mut rng = 1;
        let (kept, bad) = split_rows(100, 0.1, &mut rng);
        assert_eq!((kept.len(), bad.len()), (90, 10));
        let mut all: Vec<u32> = kept.iter().chain(&bad).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
    }
}
