//! A minimal `Drand` pallet (index 26 as on finney): the beacon pulses that timelocked weight
//! commits wait for. On the devnet there is no off-chain worker fetching drand: the node writes the
//! pulses of its own beacon ([`chain::timelock::DevBeacon::devnet`]) as their rounds come due
//! ([`write_due_pulses`], on unless `DevnetConfig::dev_beacon` is off) and records it in
//! `BeaconConfig` as finney records quicknet, and root may write any pulse (`dev_write_pulse`), e.g.
//! drand quicknet's real ones from a test.

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

    /// The beacon the pulses come from, in finney's `pallet_drand::types::BeaconConfiguration`
    /// shape (its bounded vectors as plain ones), so clients can tell which beacon a chain follows.
    #[derive(Encode, Decode, DecodeWithMemTracking, TypeInfo, Clone, PartialEq, Eq, Debug, Default)]
    pub struct BeaconConfiguration {
        /// The beacon's public key (compressed G2).
        pub public_key: Vec<u8>,
        /// Seconds between rounds (0: under a second, as the devnet's 100 ms beacon).
        pub period: u32,
        /// Unix time of the beacon's genesis.
        pub genesis_time: u32,
        /// The beacon's chain hash.
        pub hash: Vec<u8>,
        /// The group hash.
        pub group_hash: Vec<u8>,
        /// The signature scheme.
        pub scheme_id: Vec<u8>,
        /// Free-form metadata.
        pub metadata: BeaconMetadata,
    }

    /// `pallet_drand::types::Metadata`.
    #[derive(Encode, Decode, DecodeWithMemTracking, TypeInfo, Clone, PartialEq, Eq, Debug, Default)]
    pub struct BeaconMetadata {
        /// The beacon's id.
        pub beacon_id: Vec<u8>,
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

    /// The beacon followed (written by the node when its beacon is on; empty otherwise).
    #[pallet::storage]
    pub type BeaconConfig<T> = StorageValue<_, BeaconConfiguration, ValueQuery>;

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
            Self::store_pulse(round, signature);
            Ok(())
        }
    }

    impl<T: Config> Pallet<T> {
        /// Stores the pulse of `round` and advances `LastStoredRound`.
        pub fn store_pulse(round: u64, signature: Vec<u8>) {
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
        }
    }
}

/// Most pulses the devnet's beacon writes in one block (the backlog after a pause is skipped).
pub const MAX_PULSES_PER_BLOCK: u64 = 64;

/// Writes `beacon`'s pulses for every round of `config` due at `now_ms` and not stored yet (at most
/// [`MAX_PULSES_PER_BLOCK`], the newest). Runs inside block execution.
pub fn write_due_pulses<T: Config>(
    beacon: &chain::timelock::DevBeacon,
    config: &chain::timelock::BeaconConfig,
    now_ms: u64,
) {
    if BeaconConfig::<T>::get().public_key != config.public_key {
        BeaconConfig::<T>::put(BeaconConfiguration {
            public_key: config.public_key.clone(),
            period: u32::try_from(config.period_ms / 1000).unwrap_or(u32::MAX),
            genesis_time: u32::try_from(config.genesis_secs).unwrap_or(u32::MAX),
            metadata: BeaconMetadata {
                beacon_id: b"tensorproof-devnet".to_vec(),
            },
            ..BeaconConfiguration::default()
        });
    }
    let due = config.round_at(now_ms);
    let from = LastStoredRound::<T>::get()
        .saturating_add(1)
        .max(due.saturating_sub(MAX_PULSES_PER_BLOCK - 1));
    for round in from..=due {
        match beacon.sign_round(round) {
            Ok(signature) => Pallet::<T>::store_pulse(round, signature),
            Err(error) => tracing::error!(round, %error, "devnet beacon could not sign a round"),
        }
    }
}
