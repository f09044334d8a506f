//! Scores, weights and Yuma consensus for the tensorproof subnet.
//!
//! - [`yuma`]: subtensor's epoch (classic Yuma and Yuma3 with liquid alpha), bit-exact with the chain.

pub mod yuma;
