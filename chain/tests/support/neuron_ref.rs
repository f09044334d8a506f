//! A reference encoder for `NeuronInfoLite`, written independently of `chain::metagraph`, in the field
//! order of subtensor's `rpc_info/neuron_info.rs` (shared/reference/subtensor-interface.md §4.1). Tests
//! and benchmarks encode with it and decode with the client's type-directed decoder.

use parity_scale_codec::{Compact, Encode};

/// `NeuronInfoLite<AccountId32>` as the runtime API returns it.
#[derive(Encode)]
pub(crate) struct RefNeuronInfoLite {
    pub(crate) hotkey: [u8; 32],
    pub(crate) coldkey: [u8; 32],
    pub(crate) uid: Compact<u16>,
    pub(crate) netuid: Compact<u16>,
    pub(crate) active: bool,
    pub(crate) axon: (u64, u32, u128, u16, u8, u8, u8, u8),
    pub(crate) prometheus: (u64, u32, u128, u16, u8),
    pub(crate) stake: Vec<([u8; 32], Compact<u64>)>,
    pub(crate) rank: Compact<u16>,
    pub(crate) emission: Compact<u64>,
    pub(crate) incentive: Compact<u16>,
    pub(crate) consensus: Compact<u16>,
    pub(crate) trust: Compact<u16>,
    pub(crate) validator_trust: Compact<u16>,
    pub(crate) dividends: Compact<u16>,
    pub(crate) last_update: Compact<u64>,
    pub(crate) validator_permit: bool,
    pub(crate) pruning_score: Compact<u16>,
}
