//! The `AdminUtils` pallet (index 19 as on finney): the owner and sudo setters of subnet
//! hyperparameters, with subtensor's call names, indices and argument names.

pub use pallet::*;

#[polkadot_sdk::frame_support::pallet]
#[allow(missing_debug_implementations)]
pub mod pallet {
    use crate::subtensor::{self, Pallet as SubtensorPallet};
    use polkadot_sdk::frame_support::pallet_prelude::*;
    use polkadot_sdk::frame_system::pallet_prelude::*;

    /// The pallet.
    #[pallet::pallet]
    pub struct Pallet<T>(_);

    /// Events of the admin pallet itself.
    #[pallet::event]
    #[pallet::generate_deposit(pub(super) fn deposit_event)]
    pub enum Event<T: Config> {
        /// Yuma3 toggled on a subnet.
        Yuma3EnableToggled {
            /// The subnet.
            netuid: u16,
            /// On or off.
            enabled: bool,
        },
    }

    /// Configuration.
    #[pallet::config]
    pub trait Config: polkadot_sdk::frame_system::Config + subtensor::Config {}

    #[pallet::call]
    impl<T: Config> Pallet<T> {
        /// Set `ServingRateLimit` (root or the subnet owner).
        #[pallet::call_index(3)]
        #[pallet::weight(Weight::from_parts(10_000_000, 0))]
        pub fn sudo_set_serving_rate_limit(
            origin: OriginFor<T>,
            netuid: u16,
            serving_rate_limit: u64,
        ) -> DispatchResult {
            Self::ensure_setter(origin, netuid, Setter::OwnerOrRoot)?;
            subtensor::ServingRateLimit::<T>::insert(netuid, serving_rate_limit);
            SubtensorPallet::<T>::deposit_event(subtensor::Event::ServingRateLimitSet(
                netuid,
                serving_rate_limit,
            ));
            Ok(())
        }

        /// Set `WeightsVersionKey` (root or the subnet owner).
        #[pallet::call_index(6)]
        #[pallet::weight(Weight::from_parts(10_000_000, 0))]
        pub fn sudo_set_weights_version_key(
            origin: OriginFor<T>,
            netuid: u16,
            weights_version_key: u64,
        ) -> DispatchResult {
            Self::ensure_setter(origin, netuid, Setter::OwnerOrRoot)?;
            subtensor::WeightsVersionKey::<T>::insert(netuid, weights_version_key);
            SubtensorPallet::<T>::deposit_event(subtensor::Event::WeightsVersionKeySet(
                netuid,
                weights_version_key,
            ));
            Ok(())
        }

        /// Set `WeightsSetRateLimit` (root or the subnet owner).
        #[pallet::call_index(7)]
        #[pallet::weight(Weight::from_parts(10_000_000, 0))]
        pub fn sudo_set_weights_set_rate_limit(
            origin: OriginFor<T>,
            netuid: u16,
            weights_set_rate_limit: u64,
        ) -> DispatchResult {
            Self::ensure_setter(origin, netuid, Setter::OwnerOrRoot)?;
            subtensor::WeightsSetRateLimit::<T>::insert(netuid, weights_set_rate_limit);
            SubtensorPallet::<T>::deposit_event(subtensor::Event::WeightsSetRateLimitSet(
                netuid,
                weights_set_rate_limit,
            ));
            Ok(())
        }

        /// Set `ImmunityPeriod` (root or the subnet owner).
        #[pallet::call_index(13)]
        #[pallet::weight(Weight::from_parts(10_000_000, 0))]
        pub fn sudo_set_immunity_period(
            origin: OriginFor<T>,
            netuid: u16,
            immunity_period: u16,
        ) -> DispatchResult {
            Self::ensure_setter(origin, netuid, Setter::OwnerOrRoot)?;
            subtensor::ImmunityPeriod::<T>::insert(netuid, immunity_period);
            SubtensorPallet::<T>::deposit_event(subtensor::Event::ImmunityPeriodSet(netuid, immunity_period));
            Ok(())
        }

        /// Set `MinAllowedWeights` (root or the subnet owner).
        #[pallet::call_index(14)]
        #[pallet::weight(Weight::from_parts(10_000_000, 0))]
        pub fn sudo_set_min_allowed_weights(
            origin: OriginFor<T>,
            netuid: u16,
            min_allowed_weights: u16,
        ) -> DispatchResult {
            Self::ensure_setter(origin, netuid, Setter::OwnerOrRoot)?;
            subtensor::MinAllowedWeights::<T>::insert(netuid, min_allowed_weights);
            SubtensorPallet::<T>::deposit_event(subtensor::Event::MinAllowedWeightSet(
                netuid,
                min_allowed_weights,
            ));
            Ok(())
        }

        /// Set `MaxAllowedUids` (root).
        #[pallet::call_index(15)]
        #[pallet::weight(Weight::from_parts(10_000_000, 0))]
        pub fn sudo_set_max_allowed_uids(
            origin: OriginFor<T>,
            netuid: u16,
            max_allowed_uids: u16,
        ) -> DispatchResult {
            Self::ensure_setter(origin, netuid, Setter::Root)?;
            SubtensorPallet::<T>::ensure_max_uids_over_all_mechanisms(
                max_allowed_uids,
                subtensor::MechanismCountCurrent::<T>::get(netuid),
            )?;
            subtensor::MaxAllowedUids::<T>::insert(netuid, max_allowed_uids);
            SubtensorPallet::<T>::deposit_event(subtensor::Event::MaxAllowedUidsSet(
                netuid,
                max_allowed_uids,
            ));
            Ok(())
        }

        /// Set `Kappa` (root or the subnet owner).
        #[pallet::call_index(16)]
        #[pallet::weight(Weight::from_parts(10_000_000, 0))]
        pub fn sudo_set_kappa(origin: OriginFor<T>, netuid: u16, kappa: u16) -> DispatchResult {
            Self::ensure_setter(origin, netuid, Setter::OwnerOrRoot)?;
            subtensor::Kappa::<T>::insert(netuid, kappa);
            SubtensorPallet::<T>::deposit_event(subtensor::Event::KappaSet(netuid, kappa));
            Ok(())
        }

        /// Set `ActivityCutoff` (root or the subnet owner).
        #[pallet::call_index(18)]
        #[pallet::weight(Weight::from_parts(10_000_000, 0))]
        pub fn sudo_set_activity_cutoff(
            origin: OriginFor<T>,
            netuid: u16,
            activity_cutoff: u16,
        ) -> DispatchResult {
            Self::ensure_setter(origin, netuid, Setter::OwnerOrRoot)?;
            subtensor::ActivityCutoff::<T>::insert(netuid, activity_cutoff);
            SubtensorPallet::<T>::deposit_event(subtensor::Event::ActivityCutoffSet(netuid, activity_cutoff));
            Ok(())
        }

        /// Set `NetworkRegistrationAllowed` (root or the subnet owner).
        #[pallet::call_index(19)]
        #[pallet::weight(Weight::from_parts(10_000_000, 0))]
        pub fn sudo_set_network_registration_allowed(
            origin: OriginFor<T>,
            netuid: u16,
            registration_allowed: bool,
        ) -> DispatchResult {
            Self::ensure_setter(origin, netuid, Setter::OwnerOrRoot)?;
            subtensor::NetworkRegistrationAllowed::<T>::insert(netuid, registration_allowed);
            SubtensorPallet::<T>::deposit_event(subtensor::Event::RegistrationAllowed(
                netuid,
                registration_allowed,
            ));
            Ok(())
        }

        /// Set `MaxAllowedValidators` (root or the subnet owner).
        #[pallet::call_index(25)]
        #[pallet::weight(Weight::from_parts(10_000_000, 0))]
        pub fn sudo_set_max_allowed_validators(
            origin: OriginFor<T>,
            netuid: u16,
            max_allowed_validators: u16,
        ) -> DispatchResult {
            Self::ensure_setter(origin, netuid, Setter::OwnerOrRoot)?;
            subtensor::MaxAllowedValidators::<T>::insert(netuid, max_allowed_validators);
            SubtensorPallet::<T>::deposit_event(subtensor::Event::MaxAllowedValidatorsSet(
                netuid,
                max_allowed_validators,
            ));
            Ok(())
        }

        /// Set `BondsMovingAverage` (root or the subnet owner).
        #[pallet::call_index(26)]
        #[pallet::weight(Weight::from_parts(10_000_000, 0))]
        pub fn sudo_set_bonds_moving_average(
            origin: OriginFor<T>,
            netuid: u16,
            bonds_moving_average: u64,
        ) -> DispatchResult {
            Self::ensure_setter(origin, netuid, Setter::OwnerOrRoot)?;
            subtensor::BondsMovingAverage::<T>::insert(netuid, bonds_moving_average);
            SubtensorPallet::<T>::deposit_event(subtensor::Event::BondsMovingAverageSet(
                netuid,
                bonds_moving_average,
            ));
            Ok(())
        }

        /// Set `BondsPenalty` (root or the subnet owner).
        #[pallet::call_index(60)]
        #[pallet::weight(Weight::from_parts(10_000_000, 0))]
        pub fn sudo_set_bonds_penalty(
            origin: OriginFor<T>,
            netuid: u16,
            bonds_penalty: u16,
        ) -> DispatchResult {
            Self::ensure_setter(origin, netuid, Setter::OwnerOrRoot)?;
            subtensor::BondsPenalty::<T>::insert(netuid, bonds_penalty);
            SubtensorPallet::<T>::deposit_event(subtensor::Event::BondsPenaltySet(netuid, bonds_penalty));
            Ok(())
        }

        /// Set `Tempo` (root). As subtensor does since its stateful epoch schedule, the cycle restarts:
        /// `LastEpochBlock` becomes this block, so the next epoch is `tempo` blocks away.
        #[pallet::call_index(30)]
        #[pallet::weight(Weight::from_parts(10_000_000, 0))]
        pub fn sudo_set_tempo(origin: OriginFor<T>, netuid: u16, tempo: u16) -> DispatchResult {
            Self::ensure_setter(origin, netuid, Setter::Root)?;
            subtensor::Tempo::<T>::insert(netuid, tempo);
            // Subtensor's cycle reset: the new tempo counts from this block.
            subtensor::LastEpochBlock::<T>::insert(netuid, SubtensorPallet::<T>::current_block());
            SubtensorPallet::<T>::deposit_event(subtensor::Event::TempoSet(netuid, tempo));
            Ok(())
        }

        /// Set `AdminFreezeWindow` (root): the blocks at the end of each tempo in which owner admin
        /// calls are refused, and how far ahead `trigger_epoch` fires.
        #[pallet::call_index(74)]
        #[pallet::weight(Weight::from_parts(10_000_000, 0))]
        pub fn sudo_set_admin_freeze_window(origin: OriginFor<T>, window: u16) -> DispatchResult {
            ensure_root(origin)?;
            subtensor::AdminFreezeWindow::<T>::put(window);
            SubtensorPallet::<T>::deposit_event(subtensor::Event::AdminFreezeWindowSet(window));
            Ok(())
        }

        /// Set `CommitRevealWeightsEnabled` (root or the subnet owner).
        #[pallet::call_index(49)]
        #[pallet::weight(Weight::from_parts(10_000_000, 0))]
        pub fn sudo_set_commit_reveal_weights_enabled(
            origin: OriginFor<T>,
            netuid: u16,
            enabled: bool,
        ) -> DispatchResult {
            Self::ensure_setter(origin, netuid, Setter::OwnerOrRoot)?;
            subtensor::CommitRevealWeightsEnabled::<T>::insert(netuid, enabled);
            SubtensorPallet::<T>::deposit_event(subtensor::Event::CommitRevealEnabled(netuid, enabled));
            Ok(())
        }

        /// Set `LiquidAlphaOn` (root or the subnet owner).
        #[pallet::call_index(50)]
        #[pallet::weight(Weight::from_parts(10_000_000, 0))]
        pub fn sudo_set_liquid_alpha_enabled(
            origin: OriginFor<T>,
            netuid: u16,
            enabled: bool,
        ) -> DispatchResult {
            Self::ensure_setter(origin, netuid, Setter::OwnerOrRoot)?;
            subtensor::LiquidAlphaOn::<T>::insert(netuid, enabled);
            Ok(())
        }

        /// Set `RevealPeriodEpochs` (root or the subnet owner).
        #[pallet::call_index(57)]
        #[pallet::weight(Weight::from_parts(10_000_000, 0))]
        pub fn sudo_set_commit_reveal_weights_interval(
            origin: OriginFor<T>,
            netuid: u16,
            interval: u64,
        ) -> DispatchResult {
            Self::ensure_setter(origin, netuid, Setter::OwnerOrRoot)?;
            ensure!(
                interval >= subtensor::MIN_COMMIT_REVEAL_PERIODS,
                subtensor::Error::<T>::RevealPeriodTooSmall
            );
            ensure!(
                interval <= subtensor::MAX_COMMIT_REVEAL_PERIODS,
                subtensor::Error::<T>::RevealPeriodTooLarge
            );
            subtensor::RevealPeriodEpochs::<T>::insert(netuid, interval);
            SubtensorPallet::<T>::deposit_event(subtensor::Event::CommitRevealPeriodsSet(netuid, interval));
            Ok(())
        }

        /// Set `AlphaSigmoidSteepness` (root or the subnet owner).
        #[pallet::call_index(68)]
        #[pallet::weight(Weight::from_parts(10_000_000, 0))]
        pub fn sudo_set_alpha_sigmoid_steepness(
            origin: OriginFor<T>,
            netuid: u16,
            steepness: i16,
        ) -> DispatchResult {
            Self::ensure_setter(origin, netuid, Setter::OwnerOrRoot)?;
            subtensor::AlphaSigmoidSteepness::<T>::insert(netuid, steepness);
            SubtensorPallet::<T>::deposit_event(subtensor::Event::AlphaSigmoidSteepnessSet(
                netuid, steepness,
            ));
            Ok(())
        }

        /// Set `Yuma3On` (root or the subnet owner).
        #[pallet::call_index(69)]
        #[pallet::weight(Weight::from_parts(10_000_000, 0))]
        pub fn sudo_set_yuma3_enabled(origin: OriginFor<T>, netuid: u16, enabled: bool) -> DispatchResult {
            Self::ensure_setter(origin, netuid, Setter::OwnerOrRoot)?;
            subtensor::Yuma3On::<T>::insert(netuid, enabled);
            Self::deposit_event(Event::Yuma3EnableToggled { netuid, enabled });
            Ok(())
        }

        /// Set `MinBurn` (root).
        #[pallet::call_index(22)]
        #[pallet::weight(Weight::from_parts(10_000_000, 0))]
        pub fn sudo_set_min_burn(origin: OriginFor<T>, netuid: u16, min_burn: u64) -> DispatchResult {
            Self::ensure_setter(origin, netuid, Setter::Root)?;
            subtensor::MinBurn::<T>::insert(netuid, min_burn);
            SubtensorPallet::<T>::deposit_event(subtensor::Event::MinBurnSet(netuid, min_burn));
            Ok(())
        }

        /// Set `MaxBurn` (root).
        #[pallet::call_index(23)]
        #[pallet::weight(Weight::from_parts(10_000_000, 0))]
        pub fn sudo_set_max_burn(origin: OriginFor<T>, netuid: u16, max_burn: u64) -> DispatchResult {
            Self::ensure_setter(origin, netuid, Setter::Root)?;
            subtensor::MaxBurn::<T>::insert(netuid, max_burn);
            SubtensorPallet::<T>::deposit_event(subtensor::Event::MaxBurnSet(netuid, max_burn));
            Ok(())
        }

        /// Set `StakeThreshold` (root).
        #[pallet::call_index(42)]
        #[pallet::weight(Weight::from_parts(10_000_000, 0))]
        pub fn sudo_set_stake_threshold(origin: OriginFor<T>, min_stake: u64) -> DispatchResult {
            ensure_root(origin)?;
            subtensor::StakeThreshold::<T>::put(min_stake);
            SubtensorPallet::<T>::deposit_event(subtensor::Event::StakeThresholdSet(min_stake));
            Ok(())
        }

        /// Set `AlphaValues` (root or the subnet owner).
        #[pallet::call_index(51)]
        #[pallet::weight(Weight::from_parts(10_000_000, 0))]
        pub fn sudo_set_alpha_values(
            origin: OriginFor<T>,
            netuid: u16,
            alpha_low: u16,
            alpha_high: u16,
        ) -> DispatchResult {
            Self::ensure_setter(origin, netuid, Setter::OwnerOrRoot)?;
            ensure!(alpha_low <= alpha_high, subtensor::Error::<T>::AlphaLowOutOfRange);
            subtensor::AlphaValues::<T>::insert(netuid, (alpha_low, alpha_high));
            Ok(())
        }

        /// Set `MechanismCountCurrent` (root or the subnet owner): 1..=`MaxMechanismCount`, with
        /// `MaxAllowedUids × count ≤ 256`. Lowering it clears the removed mechanisms; any change
        /// resets the emission split to even.
        #[pallet::call_index(76)]
        #[pallet::weight(Weight::from_parts(15_000_000, 0))]
        pub fn sudo_set_mechanism_count(
            origin: OriginFor<T>,
            netuid: u16,
            mechanism_count: u8,
        ) -> DispatchResult {
            SubtensorPallet::<T>::ensure_subnet_owner_or_root(origin, netuid)?;
            SubtensorPallet::<T>::do_set_mechanism_count(netuid, mechanism_count)
        }

        /// Set `MechanismEmissionSplit` (root or the subnet owner): `Some` proportions (at most one
        /// per mechanism, summing to 65535; missing ones get nothing) or `None` for an even split.
        #[pallet::call_index(77)]
        #[pallet::weight(Weight::from_parts(15_000_000, 0))]
        pub fn sudo_set_mechanism_emission_split(
            origin: OriginFor<T>,
            netuid: u16,
            maybe_split: Option<Vec<u16>>,
        ) -> DispatchResult {
            SubtensorPallet::<T>::ensure_subnet_owner_or_root(origin, netuid)?;
            SubtensorPallet::<T>::do_set_emission_split(netuid, maybe_split)
        }

        /// Set `MaxMechanismCount` (root): 1..=16.
        #[pallet::call_index(88)]
        #[pallet::weight(Weight::from_parts(15_000_000, 0))]
        pub fn sudo_set_max_mechanism_count(origin: OriginFor<T>, max_mechanism_count: u8) -> DispatchResult {
            ensure_root(origin)?;
            SubtensorPallet::<T>::do_set_max_mechanism_count(max_mechanism_count)
        }

        /// Set `CommitRevealWeightsVersion` (root).
        #[pallet::call_index(71)]
        #[pallet::weight(Weight::from_parts(10_000_000, 0))]
        pub fn sudo_set_commit_reveal_version(origin: OriginFor<T>, version: u16) -> DispatchResult {
            ensure_root(origin)?;
            subtensor::CommitRevealWeightsVersion::<T>::put(version);
            Ok(())
        }
    }

    /// Who may call a subnet setter.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Setter {
        /// Root or the subnet's owner coldkey.
        OwnerOrRoot,
        /// Root only.
        Root,
    }

    impl<T: Config> Pallet<T> {
        /// The checks every subnet setter makes first, in subtensor's order: the origin may set
        /// (`BadOrigin` otherwise), then the subnet exists (`SubnetNotExists`).
        fn ensure_setter(origin: OriginFor<T>, netuid: u16, setter: Setter) -> DispatchResult {
            match setter {
                Setter::OwnerOrRoot => SubtensorPallet::<T>::ensure_subnet_owner_or_root(origin, netuid)?,
                Setter::Root => ensure_root(origin)?,
            }
            ensure!(
                subtensor::NetworksAdded::<T>::get(netuid),
                subtensor::Error::<T>::SubnetNotExists
            );
            Ok(())
        }
    }
}
