//! Chain access for the tensorproof subnet.

#[cfg(feature = "devnet")]
pub mod devnet;
