//! The tensorproof validator.

fn main() {}
