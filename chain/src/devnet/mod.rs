//! An embedded Substrate devnet that speaks subtensor.
//!
//! A FRAME runtime ([`runtime`]) with a `SubtensorModule` pallet ([`subtensor`]) executed natively,
//! served over WebSocket JSON-RPC so that subxt and other Substrate clients use it unchanged.

pub mod admin;
pub mod drand;
pub mod runtime;
pub mod subtensor;
