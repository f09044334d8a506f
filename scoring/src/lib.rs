//! Scores, weights and Yuma consensus for the tensorproof subnet.
//!
//! - [`yuma`]: subtensor's epoch (classic Yuma and Yuma3 with liquid alpha), bit-exact with the chain.
//! - [`policy`]: the owner policy file (TOML) with documented defaults and validation.
//! - [`score`]: verdicts to per-miner round scores, and the EMA across rounds.
//! - [`weights`]: scores to the u16 weight vector, exactly as the Bittensor SDK converts it, fitted to
//!   the chain's limits.
//! - [`sim`]: the incentive simulator (miner and validator strategies, CSV, SVG charts, summary).

pub mod policy;
pub mod score;
pub mod sim;
pub mod weights;
pub mod yuma;
