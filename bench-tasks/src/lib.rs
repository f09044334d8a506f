//! Verifiable GPU challenges for the tensorproof subnet.
