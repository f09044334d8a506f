//! The matmul challenge: proof that a miner multiplied two `n × n` matrices, checked on a CPU in
//! O(k·n·m) per miner.
//!
//! # Protocol
//!
//! 1. The validator fixes [`RoundParams`] (`n`, sketch width `m`, prime `p`, openings `k`, round seed)
//!    and builds a [`RoundSetup`] from a fresh 32-byte secret: the secret vector `r` and `B·r`, once per
//!    round.
//! 2. Each miner gets a [`MatmulChallenge`] whose `miner_seed` is bound to it. On its device it generates
//!    `A` (from `miner_seed`) and `B`, `R` (from `round_seed`) with the counter-based
//!    [`generator`], computes `C = A·B` and the non-linear sketch `S = (C mod p)·R` (`n × m`), and
//!    answers [`Round1Answer`] (timed). It keeps `C` in an [`OpenState`].
//! 3. Only then the validator draws `k` rows ([`RoundSetup::choose_openings`]) and sends an
//!    [`OpeningRequest`]; the miner answers [`Openings`] with those rows of `C`.
//! 4. [`RoundSetup::verify`] checks shapes and values, then for each opened row `S_i = (C_i mod p)·R`
//!    and `C_i·r = A_i·(B·r)`, and returns a [`Verdict`](crate::Verdict).
//!
//! A challenge may carry `batch = B` independent products (each `n × n`, `A_t` seeded per index, `B`
//! shared): the miner answers round 1 with a Merkle root of the stacked sketch ([`commit`]) instead of
//! the sketch, and the validator opens `k` rows drawn across all `B·n`. That is how a validator sizes a
//! challenge for a GPU ([`params::batch_for_h200`]) while its own CPU cost stays that of `k` rows.
//!
//! The soundness argument, with the numbers for the default `k`, is in [`verifier`]; the generator's
//! exactness argument in [`generator`]; the cheats the tests run in [`adversary`].
//!
//! # Design notes (changes from the first sketch of the design)
//!
//! * The generator is arithmetic modulo a 15-bit prime with no overflow at all, rather than a bit-mixing
//!   hash: burn's int tensors are i32 on GPUs and i64 on flex, so wrapping 32-bit arithmetic would differ
//!   between backends. See [`generator`].
//! * The sketch uses a small modulus (`p ≤ 2048`, default 251) and `R` entries in `[-4, 4]` so that both
//!   the residues and the sketch sums are exact even through fp16/tf32 tensor-core inputs and f32
//!   accumulation; validation refuses any `(n, p)` for which the sketch could exceed 2^24.
//! * The row choice comes from a keyed BLAKE3 stream of the validator's secret, so it is unpredictable,
//!   replayable by the validator, and never derived from the miner's answer (no Fiat–Shamir grinding).
//!
//! # Example
//!
//! ```
//! # #[cfg(feature = "flex")] {
//! use bench_tasks::matmul::{MatmulJob, MatmulLimits, RoundParams, RoundSetup};
//!
//! let limits = MatmulLimits::default();
//! let setup = RoundSetup::new(RoundParams::new(100, 42), [9; 32], &limits).unwrap();
//! let challenge = setup.challenge(7);
//! let (answer, state) = MatmulJob::run(&challenge, &burn::tensor::Device::flex()).unwrap();
//! let request = setup.choose_openings(challenge.miner_seed);
//! let openings = state.open(&request).unwrap();
//! assert!(setup.verify(&challenge, &answer, &request, &openings).passed);
//! # }
//! ```

pub mod adversary;
pub mod commit;
pub mod generator;
pub mod miner;
pub mod params;
pub mod verifier;

pub use adversary::{Adversary, AdversaryParseError};
pub use miner::{MatmulJob, MinerError, OpenState};
pub use params::{
    ChallengeError, DtypeParseError, F16_MAX_N, HARD_MAX_BATCH, MatmulChallenge, MatmulDtype, MatmulLimits,
    OpenedRow, OpeningRequest, Openings, Round1Answer, SketchProof, batch_for_h200,
};
pub use verifier::{RoundParams, RoundSetup};
