//! The `SubtensorModule` extrinsics the client submits, built as subxt *dynamic* payloads.
//!
//! Dynamic payloads are encoded against the metadata of the chain actually connected (checked by name
//! and type when encoding), so one binary works against the embedded devnet, a localnet, testnet and
//! finney, whose runtimes differ. `tests/finney_compat.rs` encodes every payload built here against
//! finney's metadata.

use std::net::IpAddr;

use subxt::dynamic::Value;
use subxt::tx::DynamicPayload;
use subxt::utils::{AccountId32, H256};

use crate::keys::AccountId;

/// The pallet every call here belongs to.
pub const PALLET: &str = "SubtensorModule";

/// The SDK's `protocol` value for `serve_axon`.
pub const AXON_PROTOCOL: u8 = 4;

/// Which key signs a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Signer {
    /// The hotkey (weights, serving).
    Hotkey,
    /// The coldkey (registration pays the burn).
    Coldkey,
}

/// Where and how a miner serves, encoded as the SDK encodes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AxonSpec {
    /// The advertised address.
    pub ip: IpAddr,
    /// The port (non-zero).
    pub port: u16,
    /// The software version (`major*100 + minor*10 + patch` in the SDK).
    pub version: u32,
}

impl AxonSpec {
    /// The IP as the chain stores it: the big-endian integer of the address.
    pub fn ip_u128(&self) -> u128 {
        match self.ip {
            IpAddr::V4(v4) => u128::from(u32::from(v4)),
            IpAddr::V6(v6) => u128::from(v6),
        }
    }

    /// 4 or 6.
    pub const fn ip_type(&self) -> u8 {
        match self.ip {
            IpAddr::V4(_) => 4,
            IpAddr::V6(_) => 6,
        }
    }

    /// Checks what `serve_axon` checks, so a bad address fails here with a clear message.
    pub fn validate(&self) -> Result<(), String> {
        if self.port == 0 {
            return Err(
                "port 0 is refused by the chain (InvalidPort); pass the port the miner listens on".into(),
            );
        }
        let ip = self.ip_u128();
        let bad = match self.ip {
            IpAddr::V4(_) => ip >= u128::from(u32::MAX) || ip == 0x7f00_0001,
            IpAddr::V6(_) => ip == 1 || ip == u128::MAX,
        };
        if bad {
            return Err(format!(
                "the chain refuses the address {} (InvalidIpAddress); advertise a routable address, or 127.0.0.2 for local tests",
                self.ip
            ));
        }
        Ok(())
    }
}

/// Decodes an on-chain axon address (`ip`, `ip_type`) into an [`IpAddr`].
pub fn decode_ip(ip: u128, ip_type: u8) -> Option<IpAddr> {
    match ip_type {
        4 => u32::try_from(ip).ok().map(|v| IpAddr::V4(v.into())),
        6 => Some(IpAddr::V6(ip.into())),
        _ => None,
    }
}

/// The mechanism weight calls of SDK 11.3 (`set_mechanism_weights`, `commit_timelocked_mechanism_weights`).
/// The client uses them when the runtime has both (finney does), and the legacy `set_weights` /
/// `commit_timelocked_weights` otherwise; they are not required on connect.
pub const MECHANISM_CALLS: [&str; 2] = ["set_mechanism_weights", "commit_timelocked_mechanism_weights"];

/// One extrinsic of `SubtensorModule`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// `set_weights(netuid, dests, weights, version_key)`.
    SetWeights {
        /// Subnet.
        netuid: u16,
        /// Destination uids.
        uids: Vec<u16>,
        /// u16 weights.
        values: Vec<u16>,
        /// Must be ≥ `WeightsVersionKey`.
        version_key: u64,
    },
    /// `commit_weights(netuid, commit_hash)`.
    CommitWeights {
        /// Subnet.
        netuid: u16,
        /// [`crate::weights::commit_hash`].
        hash: [u8; 32],
    },
    /// `reveal_weights(netuid, uids, values, salt, version_key)`.
    RevealWeights {
        /// Subnet.
        netuid: u16,
        /// The uids committed.
        uids: Vec<u16>,
        /// The values committed.
        values: Vec<u16>,
        /// The salt committed.
        salt: Vec<u16>,
        /// The version key committed.
        version_key: u64,
    },
    /// `commit_timelocked_weights(netuid, commit, reveal_round, commit_reveal_version)` (CR-v4): weights
    /// encrypted to a drand round by [`crate::timelock::encrypt_weights_commit`], revealed by the chain.
    CommitTimelockedWeights {
        /// Subnet.
        netuid: u16,
        /// The ciphertext (at most [`crate::timelock::MAX_COMMIT_BYTES`]).
        commit: Vec<u8>,
        /// The drand round whose pulse opens it.
        reveal_round: u64,
        /// Must equal the chain's `CommitRevealWeightsVersion`.
        commit_reveal_version: u16,
    },
    /// `set_mechanism_weights(netuid, mecid, dests, weights, version_key)` (call 119): weights of one
    /// mechanism of a subnet, as the SDK 11.3 sets them (mechanism 0 is the subnet's only mechanism
    /// unless its owner split it).
    SetMechanismWeights {
        /// Subnet.
        netuid: u16,
        /// Mechanism (`MechId`).
        mecid: u8,
        /// Destination uids.
        uids: Vec<u16>,
        /// u16 weights.
        values: Vec<u16>,
        /// Must be ≥ `WeightsVersionKey`.
        version_key: u64,
    },
    /// `commit_timelocked_mechanism_weights(netuid, mecid, commit, reveal_round, commit_reveal_version)`
    /// (call 118): the CR-v4 commit of one mechanism's weights, as the SDK 11.3 sends it.
    CommitTimelockedMechanismWeights {
        /// Subnet.
        netuid: u16,
        /// Mechanism (`MechId`).
        mecid: u8,
        /// The ciphertext (at most [`crate::timelock::MAX_COMMIT_BYTES`]).
        commit: Vec<u8>,
        /// The drand round whose pulse opens it.
        reveal_round: u64,
        /// Must equal the chain's `CommitRevealWeightsVersion`.
        commit_reveal_version: u16,
    },
    /// `serve_axon(netuid, version, ip, port, ip_type, protocol, 0, 0)`.
    ServeAxon {
        /// Subnet.
        netuid: u16,
        /// Address.
        axon: AxonSpec,
    },
    /// `burned_register(netuid, hotkey)`, signed by the coldkey.
    BurnedRegister {
        /// Subnet.
        netuid: u16,
        /// The hotkey to register.
        hotkey: AccountId,
    },
    /// A subnet set-up call (funding, subnet creation, staking, hyperparameters), used by
    /// [`crate::bootstrap`]; never needed by a running miner or validator.
    Setup(SetupCall),
}

/// A subnet hyperparameter, set through its `AdminUtils::sudo_set_*` call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Hyperparameter {
    /// Blocks per epoch (`sudo_set_tempo`, root only).
    Tempo(u16),
    /// Blocks between two weight submissions of one validator (`sudo_set_weights_set_rate_limit`).
    WeightsSetRateLimit(u64),
    /// Commit-reveal of weights on or off (`sudo_set_commit_reveal_weights_enabled`).
    CommitRevealWeightsEnabled(bool),
    /// Fewest uids a weight vector must name (`sudo_set_min_allowed_weights`).
    MinAllowedWeights(u16),
    /// Blocks a new neuron is protected from pruning (`sudo_set_immunity_period`).
    ImmunityPeriod(u16),
    /// Most uids holding a validator permit (`sudo_set_max_allowed_validators`).
    MaxAllowedValidators(u16),
    /// Most uids on the subnet (`sudo_set_max_allowed_uids`, root only); times the mechanism count
    /// at most 256.
    MaxAllowedUids(u16),
    /// Mechanisms of the subnet (`sudo_set_mechanism_count`); needs `MaxAllowedUids × count ≤ 256`.
    MechanismCount(u8),
}

impl Hyperparameter {
    /// The `AdminUtils` call that sets it.
    pub const fn setter(&self) -> &'static str {
        match self {
            Self::Tempo(_) => "sudo_set_tempo",
            Self::WeightsSetRateLimit(_) => "sudo_set_weights_set_rate_limit",
            Self::CommitRevealWeightsEnabled(_) => "sudo_set_commit_reveal_weights_enabled",
            Self::MinAllowedWeights(_) => "sudo_set_min_allowed_weights",
            Self::ImmunityPeriod(_) => "sudo_set_immunity_period",
            Self::MaxAllowedValidators(_) => "sudo_set_max_allowed_validators",
            Self::MaxAllowedUids(_) => "sudo_set_max_allowed_uids",
            Self::MechanismCount(_) => "sudo_set_mechanism_count",
        }
    }

    fn value(&self) -> Value {
        match *self {
            Self::Tempo(v)
            | Self::MinAllowedWeights(v)
            | Self::ImmunityPeriod(v)
            | Self::MaxAllowedValidators(v)
            | Self::MaxAllowedUids(v) => Value::from(v),
            Self::MechanismCount(v) => Value::from(v),
            Self::WeightsSetRateLimit(v) => Value::from(v),
            Self::CommitRevealWeightsEnabled(v) => Value::bool(v),
        }
    }
}

/// The set-up calls [`crate::bootstrap`] submits; all exist with these names and arguments in subtensor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetupCall {
    /// `Balances::transfer_keep_alive(dest, value)`.
    Transfer {
        /// Receiver.
        dest: AccountId,
        /// Amount in rao.
        amount: u64,
    },
    /// `SubtensorModule::register_network(hotkey)`: a new subnet owned by the signing coldkey.
    RegisterNetwork {
        /// The owner's hotkey (uid 0 of the new subnet).
        hotkey: AccountId,
    },
    /// `SubtensorModule::start_call(netuid)`: starts emissions on a new subnet (subtensor only; the
    /// embedded devnet starts them at creation).
    StartCall {
        /// Subnet.
        netuid: u16,
    },
    /// `SubtensorModule::add_stake(hotkey, netuid, amount)`, signed by the coldkey.
    AddStake {
        /// The hotkey staked on.
        hotkey: AccountId,
        /// Subnet.
        netuid: u16,
        /// Amount in rao.
        amount: u64,
    },
    /// `Sudo::sudo(AdminUtils::sudo_set_*(netuid, value))`, signed by the sudo key.
    SudoSet {
        /// Subnet.
        netuid: u16,
        /// What to set.
        param: Hyperparameter,
    },
}

impl SetupCall {
    /// The call's name in its pallet.
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Transfer { .. } => "transfer_keep_alive",
            Self::RegisterNetwork { .. } => "register_network",
            Self::StartCall { .. } => "start_call",
            Self::AddStake { .. } => "add_stake",
            Self::SudoSet { .. } => "sudo",
        }
    }

    /// The subnet it targets (0 for a transfer and for a subnet not yet created).
    pub const fn netuid(&self) -> u16 {
        match self {
            Self::Transfer { .. } | Self::RegisterNetwork { .. } => 0,
            Self::StartCall { netuid } | Self::AddStake { netuid, .. } | Self::SudoSet { netuid, .. } => {
                *netuid
            }
        }
    }

    fn payload(&self) -> DynamicPayload<Vec<Value>> {
        let account = |a: &AccountId| Value::from_bytes(AccountId32(a.0).0);
        match self {
            Self::Transfer { dest, amount } => subxt::dynamic::tx(
                "Balances",
                self.name(),
                vec![
                    Value::unnamed_variant("Id", [account(dest)]),
                    Value::from(*amount),
                ],
            ),
            Self::RegisterNetwork { hotkey } => {
                subxt::dynamic::tx(PALLET, self.name(), vec![account(hotkey)])
            }
            Self::StartCall { netuid } => subxt::dynamic::tx(PALLET, self.name(), vec![Value::from(*netuid)]),
            Self::AddStake {
                hotkey,
                netuid,
                amount,
            } => subxt::dynamic::tx(
                PALLET,
                self.name(),
                vec![account(hotkey), Value::from(*netuid), Value::from(*amount)],
            ),
            Self::SudoSet { netuid, param } => {
                let inner = Value::unnamed_variant(
                    "AdminUtils",
                    [Value::unnamed_variant(
                        param.setter(),
                        [Value::from(*netuid), param.value()],
                    )],
                );
                subxt::dynamic::tx("Sudo", self.name(), vec![inner])
            }
        }
    }
}

impl Call {
    /// The call's name in the pallet.
    pub const fn name(&self) -> &'static str {
        match self {
            Self::SetWeights { .. } => "set_weights",
            Self::CommitWeights { .. } => "commit_weights",
            Self::RevealWeights { .. } => "reveal_weights",
            Self::CommitTimelockedWeights { .. } => "commit_timelocked_weights",
            Self::SetMechanismWeights { .. } => MECHANISM_CALLS[0],
            Self::CommitTimelockedMechanismWeights { .. } => MECHANISM_CALLS[1],
            Self::ServeAxon { .. } => "serve_axon",
            Self::BurnedRegister { .. } => "burned_register",
            Self::Setup(c) => c.name(),
        }
    }

    /// Every call name this client may submit (checked against metadata on connect).
    pub const ALL_NAMES: [&'static str; 6] = [
        "set_weights",
        "commit_weights",
        "reveal_weights",
        "commit_timelocked_weights",
        "serve_axon",
        "burned_register",
    ];

    /// Which key signs it.
    pub const fn signer(&self) -> Signer {
        match self {
            Self::BurnedRegister { .. } | Self::Setup(_) => Signer::Coldkey,
            _ => Signer::Hotkey,
        }
    }

    /// The subnet it targets.
    pub const fn netuid(&self) -> u16 {
        match self {
            Self::SetWeights { netuid, .. }
            | Self::CommitWeights { netuid, .. }
            | Self::RevealWeights { netuid, .. }
            | Self::CommitTimelockedWeights { netuid, .. }
            | Self::SetMechanismWeights { netuid, .. }
            | Self::CommitTimelockedMechanismWeights { netuid, .. }
            | Self::ServeAxon { netuid, .. }
            | Self::BurnedRegister { netuid, .. } => *netuid,
            Self::Setup(c) => c.netuid(),
        }
    }

    /// The dynamic payload; field types are resolved against the connected chain's metadata.
    pub fn payload(&self) -> DynamicPayload<Vec<Value>> {
        let fields: Vec<Value> = match self {
            Self::SetWeights {
                netuid,
                uids,
                values,
                version_key,
            } => vec![
                Value::from(*netuid),
                u16s(uids),
                u16s(values),
                Value::from(*version_key),
            ],
            Self::CommitWeights { netuid, hash } => {
                vec![Value::from(*netuid), Value::from_bytes(H256(*hash).0)]
            }
            Self::RevealWeights {
                netuid,
                uids,
                values,
                salt,
                version_key,
            } => vec![
                Value::from(*netuid),
                u16s(uids),
                u16s(values),
                u16s(salt),
                Value::from(*version_key),
            ],
            Self::CommitTimelockedWeights {
                netuid,
                commit,
                reveal_round,
                commit_reveal_version,
            } => vec![
                Value::from(*netuid),
                Value::from_bytes(commit),
                Value::from(*reveal_round),
                Value::from(*commit_reveal_version),
            ],
            Self::SetMechanismWeights {
                netuid,
                mecid,
                uids,
                values,
                version_key,
            } => vec![
                Value::from(*netuid),
                Value::from(*mecid),
                u16s(uids),
                u16s(values),
                Value::from(*version_key),
            ],
            Self::CommitTimelockedMechanismWeights {
                netuid,
                mecid,
                commit,
                reveal_round,
                commit_reveal_version,
            } => vec![
                Value::from(*netuid),
                Value::from(*mecid),
                Value::from_bytes(commit),
                Value::from(*reveal_round),
                Value::from(*commit_reveal_version),
            ],
            Self::ServeAxon { netuid, axon } => vec![
                Value::from(*netuid),
                Value::from(axon.version),
                Value::from(axon.ip_u128()),
                Value::from(axon.port),
                Value::from(axon.ip_type()),
                Value::from(AXON_PROTOCOL),
                Value::from(0u8),
                Value::from(0u8),
            ],
            Self::BurnedRegister { netuid, hotkey } => {
                vec![Value::from(*netuid), Value::from_bytes(AccountId32(hotkey.0).0)]
            }
            Self::Setup(c) => return c.payload(),
        };
        subxt::dynamic::tx(PALLET, self.name(), fields)
    }
}

fn u16s(xs: &[u16]) -> Value {
    Value::unnamed_composite(xs.iter().map(|&x| Value::from(x)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_encoding_matches_the_sdk() {
        let a = AxonSpec {
            ip: "1.2.3.4".parse().unwrap(),
            port: 8091,
            version: 100,
        };
        assert_eq!(a.ip_u128(), 0x0102_0304);
        assert_eq!(a.ip_type(), 4);
        assert_eq!(decode_ip(a.ip_u128(), 4), Some(a.ip));
        let v6 = AxonSpec {
            ip: "2001:db8::1".parse().unwrap(),
            port: 1,
            version: 0,
        };
        assert_eq!(v6.ip_u128(), 0x2001_0db8_0000_0000_0000_0000_0000_0001);
        assert_eq!(decode_ip(v6.ip_u128(), 6), Some(v6.ip));
        assert_eq!(decode_ip(1, 5), None);
        assert_eq!(decode_ip(u128::from(u32::MAX) + 1, 4), None);
    }

    #[test]
    fn the_chain_checks_are_mirrored() {
        let ok = AxonSpec {
            ip: "127.0.0.2".parse().unwrap(),
            port: 8091,
            version: 1,
        };
        assert!(ok.validate().is_ok());
        assert!(
            AxonSpec {
                ip: "127.0.0.1".parse().unwrap(),
                ..ok
            }
            .validate()
            .is_err()
        );
        assert!(
            AxonSpec {
                ip: "255.255.255.255".parse().unwrap(),
                ..ok
            }
            .validate()
            .is_err()
        );
        assert!(AxonSpec { port: 0, ..ok }.validate().is_err());
        assert!(
            AxonSpec {
                ip: "::1".parse().unwrap(),
                ..ok
            }
            .validate()
            .is_err()
        );
    }
}
