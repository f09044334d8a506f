//! A minimal `Drand` pallet (index 26 as on finney): the beacon pulses that timelocked weight
//! commits wait for. On the devnet there is no off-chain worker fetching drand; pulses are
//! written by root (`dev_write_pulse`), e.g. from a test or the `devnet` binary.

pub use pallet::*;

#[polkadot_sdk::frame_support::pallet]
#[allow(missing_debug_implementations)]
pub mod pallet {
    use polkadot_sdk::frame_support::pallet_prelude::*;
    use polkadot_sdk::frame_system::pallet_prelude::*;

    extern crate alloc;
    use alloc::vec::Vec;

    /// A drand pulse: round, randomness and the BLS signature over the round.
    #[derive(Encode, Decode, DecodeWithMemTracking, TypeInfo, Clone, PartialEq, Eq, Debug)]
    pub struct Pulse {
        /// Round number.
        pub round: u64,
        /// sha256 of the signature.
        pub randomness: Vec<u8>,
        /// The beacon's signature (compressed G1 for quicknet).
        pub signature: Vec<u8>,
    }

    /// The pallet.
    #[pallet::pallet]
    #[pallet::without_storage_info]
    pub struct Pallet<T>(_);

    /// Configuration.
    #[pallet::config]
    pub trait Config: polkadot_sdk::frame_system::Config {}

    /// round → pulse.
    #[pallet::storage]
    pub type Pulses<T> = StorageMap<_, Blake2_128Concat, u64, Pulse, OptionQuery>;

    /// Highest round stored.
    #[pallet::storage]
    pub type LastStoredRound<T> = StorageValue<_, u64, ValueQuery>;

    /// Errors.
    #[pallet::error]
    pub enum Error<T> {
        /// The signature is longer than 96 bytes.
        PulseTooLarge,
    }

    #[pallet::call]
    impl<T: Config> Pallet<T> {
        /// Store a pulse (root only; the devnet's stand-in for the drand off-chain worker).
        #[pallet::call_index(0)]
        #[pallet::weight(Weight::from_parts(10_000_000, 0))]
        pub fn dev_write_pulse(origin: OriginFor<T>, round: u64, signature: Vec<u8>) -> DispatchResult {
            ensure_root(origin)?;
            ensure!(signature.len() <= 96, Error::<T>::PulseTooLarge);
            let randomness = polkadot_sdk::sp_io::hashing::sha2_256(&signature).to_vec();
            Pulses::<T>::insert(
                round,
                Pulse {
                    round,
                    randomness,
                    signature,
                },
            );
            LastStoredRound::<T>::mutate(|r| *r = (*r).max(round));
            Ok(())
        }
    }
}
