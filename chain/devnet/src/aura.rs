//! An `Aura` pallet (index 3 as on finney) that carries the `SlotDuration` constant and nothing
//! else: the devnet produces its own blocks, without Aura consensus. Clients read the constant for
//! their block time (the SDK 11.3 times its waits, retries and rate-limit hints with it).
//!
//! The value is [`SLOT_DURATION_MS`], the devnet's default block time and subtensor's fast-blocks
//! slot (250 ms). A devnet started with another `--block-time-ms` still reports 250: metadata is
//! cached by clients per genesis hash and spec version, so it must not vary with a run-time option.

pub use pallet::*;

/// The `SlotDuration` constant, in milliseconds.
pub const SLOT_DURATION_MS: u64 = 250;

#[polkadot_sdk::frame_support::pallet]
#[allow(missing_debug_implementations)]
pub mod pallet {
    /// The pallet.
    #[pallet::pallet]
    pub struct Pallet<T>(_);

    /// Configuration.
    #[pallet::config]
    pub trait Config: polkadot_sdk::frame_system::Config {}

    #[pallet::extra_constants]
    impl<T: Config> Pallet<T> {
        /// Milliseconds per slot (one block per slot).
        #[pallet::constant_name(SlotDuration)]
        fn slot_duration() -> u64 {
            super::SLOT_DURATION_MS
        }
    }
}
