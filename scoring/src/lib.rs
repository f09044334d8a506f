//! Scores, weights and Yuma consensus for the tensorproof subnet.
//!
//! The validator turns each round's verdicts into per-miner scores, smooths them across rounds and
//! sets weights on chain; the chain turns everyone's weights into emission with Yuma consensus. This
//! crate holds both halves, so an owner can see who earns what before deploying a policy. It knows
//! nothing of HTTP, chains or task code: inputs are plain numbers and the typed task classes and
//! reason codes of [`task`], which the verifiers in `bench-tasks` re-export.
//!
//! - [`task`]: [`task::TaskClass`] and [`task::Reason`], and how the default policy treats each reason.
//! - [`policy`]: the owner policy file (TOML) with documented defaults and validation.
//! - [`score`]: verdicts to per-miner round scores ([`score::score_round`]) and the EMA across rounds
//!   ([`score::ScoreBook`]).
//! - [`weights`]: scores to the u16 weight vector, exactly as the Bittensor SDK converts it, fitted to
//!   the chain's limits.
//! - [`yuma`]: subtensor's epoch (classic Yuma and Yuma3 with liquid alpha), bit-exact with the chain.
//! - [`sim`]: the incentive simulator (miner and validator strategies, CSV, SVG charts, summary).
//!
//! From one round of verdicts to the weights a validator submits:
//!
//! ```
//! use scoring::policy::Policy;
//! use scoring::score::{score_round, Observation, ScoreBook};
//! use scoring::task::{Reason, TaskClass};
//! use scoring::weights::{weights_from_scores, ChainLimits};
//!
//! let policy = Policy::from_toml_str("[burn]\nshare = 0.1\nuid = 0").unwrap();
//! let verdict = |uid, elapsed: f64, passed| Observation {
//!     uid,
//!     task_class: TaskClass::Matmul,
//!     passed,
//!     reason: if passed { Reason::Passed } else { Reason::WrongRow },
//!     elapsed_seconds: elapsed,
//!     rtt_seconds: 0.03,
//!     work_units: 5.5e11,
//!     devices: 1,
//! };
//! let round = [verdict(1, 0.05, true), verdict(2, 0.09, true), verdict(3, 0.02, false)];
//!
//! let mut book = ScoreBook::new();
//! book.update(&score_round(&round, &policy), policy.ema.alpha);
//! let limits = ChainLimits { n: 4, min_allowed_weights: 1, max_weight_limit: u16::MAX };
//! let w = weights_from_scores(&book.scores, &policy, &limits).unwrap();
//!
//! // The owner's burn uid, then the faster miner above the slower one; the cheat gets nothing.
//! assert_eq!(w.uids, vec![0, 1, 2]);
//! assert!(w.weights[1] > w.weights[2]);
//! ```

pub mod policy;
pub mod score;
pub mod sim;
pub mod task;
pub mod weights;
pub mod yuma;
