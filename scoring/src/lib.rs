//! Scores, weights and Yuma consensus for the tensorproof subnet.
