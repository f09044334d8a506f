//! The `devnet` binary (see `chain::devnet`).
fn main() {}
