//! Chain access for the tensorproof subnet.
