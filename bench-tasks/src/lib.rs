//! Verifiable GPU challenges for the tensorproof subnet.

pub mod verdict;

pub use verdict::{Reason, Verdict};
