//! Verifiable GPU challenges for the tensorproof subnet.

pub mod inference;
pub mod verdict;

pub use verdict::{Reason, Verdict};
