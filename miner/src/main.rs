//! The tensorproof miner.

fn main() {}
