//! Embedded devnet.
