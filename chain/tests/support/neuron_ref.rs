//! A reference encoder for `NeuronInfoLite`, written independently of `chain::metagraph`, in the field
//! order of subtensor's `rpc_info/neuron_info.rs` (shared/reference/subtensor-interface.md §4.1). Tests
//! and benchmarks encode with it and decode with the client's type-directed decoder.

use parity_scale_codec::{Compact, Encode};

/// `NeuronInfoLite<AccountId32>` as the runtime API returns it.
#[derive(Encode)]
pub struct RefNeuronInfoLite {
    pub hotkey: [u8; 32],
    pub coldkey: [u8; 32],
    pub uid: Compact<u16>,
    pub netuid: Compact<u16>,
    pub active: bool,
    pub axon: (u64, u32, u128, u16, u8, u8, u8, u8),
    pub prometheus: (u64, u32, u128, u16, u8),
    pub stake: Vec<([u8; 32], Compact<u64>)>,
    pub rank: Compact<u16>,
    pub emission: Compact<u64>,
    pub incentive: Compact<u16>,
    pub consensus: Compact<u16>,
    pub trust: Compact<u16>,
    pub validator_trust: Compact<u16>,
    pub dividends: Compact<u16>,
    pub last_update: Compact<u64>,
    pub validator_permit: bool,
    pub pruning_score: Compact<u16>,
}
