//! The subnet as the chain sees it: one [`Neuron`] per uid, plus the [`Hyperparams`] the client obeys.
//!
//! Decoding is type-directed (`scale_decode::DecodeAsType` against the connected chain's metadata):
//! fields are matched by name, so a runtime that adds fields to `NeuronInfoLite` still decodes, and one
//! that renames or retypes a field we use fails with a clear error instead of garbage.

use std::net::IpAddr;

use subxt::Metadata;
use subxt::ext::scale_decode::{self, DecodeAsType};
use subxt::utils::AccountId32;

use crate::calls::decode_ip;
use crate::keys::AccountId;

/// The runtime API used first for the metagraph.
pub const NEURONS_LITE_API: (&str, &str) = ("NeuronInfoRuntimeApi", "get_neurons_lite");

/// A served axon, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Axon {
    /// The advertised address.
    pub ip: IpAddr,
    /// Its port.
    pub port: u16,
    /// The software version the miner announced.
    pub version: u32,
    /// The block it was served at.
    pub block: u64,
}

/// One uid of a subnet.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Neuron {
    /// The uid.
    pub uid: u16,
    /// Its hotkey.
    pub hotkey: AccountId,
    /// The owning coldkey.
    pub coldkey: AccountId,
    /// The axon, if one was served with a valid address and non-zero port.
    pub axon: Option<Axon>,
    /// Stake on this subnet (alpha, in rao units).
    pub stake: u64,
    /// Holds a validator permit.
    pub validator_permit: bool,
    /// Block of the last weight update (or commit).
    pub last_update: u64,
    /// Incentive ×65535.
    pub incentive: u16,
    /// Dividends ×65535.
    pub dividends: u16,
    /// Consensus ×65535.
    pub consensus: u16,
    /// Validator trust ×65535.
    pub validator_trust: u16,
    /// Emission at the last epoch (rao).
    pub emission: u64,
    /// Active at the last epoch.
    pub active: bool,
}

/// The subnet hyperparameters the client reads (never assumed from genesis defaults).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Hyperparams {
    /// `SubnetworkN`: number of uids.
    pub n: u16,
    /// `Tempo` in blocks.
    pub tempo: u16,
    /// `WeightsSetRateLimit` in blocks.
    pub weights_rate_limit: u64,
    /// `WeightsVersionKey`: the minimum version key.
    pub weights_version_key: u64,
    /// `MinAllowedWeights`.
    pub min_allowed_weights: u16,
    /// `MaxWeightsLimit`.
    pub max_weights_limit: u16,
    /// `CommitRevealWeightsEnabled`.
    pub commit_reveal_enabled: bool,
    /// `RevealPeriodEpochs` (1 when the chain does not have it).
    pub reveal_period_epochs: u64,
    /// `CommitRevealWeightsVersion` (chain-wide): the timelocked commit version the chain accepts;
    /// `None` on runtimes without timelocked commits.
    pub commit_reveal_version: Option<u16>,
    /// `MaxAllowedUids`.
    pub max_allowed_uids: u16,
    /// `ImmunityPeriod` in blocks.
    pub immunity_period: u16,
    /// `ServingRateLimit` in blocks.
    pub serving_rate_limit: u64,
    /// `Burn`: current registration cost (rao).
    pub burn: u64,
    /// `NetworkRegistrationAllowed`.
    pub registration_allowed: bool,
}

impl Hyperparams {
    /// The subnet's limits on a weight vector: what [`crate::weights::prepare`] checks and what
    /// `scoring::weights::weights_from_scores` shapes weights to (one type for both).
    pub const fn weight_limits(&self) -> scoring::weights::ChainLimits {
        scoring::weights::ChainLimits {
            n: self.n,
            min_allowed_weights: self.min_allowed_weights,
            max_weight_limit: self.max_weights_limit,
        }
    }
}

/// Where the neurons were read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// `NeuronInfoRuntimeApi_get_neurons_lite`.
    RuntimeApi,
    /// Individual storage items (fallback).
    Storage,
}

/// A snapshot of one subnet at one block.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Metagraph {
    /// The subnet.
    pub netuid: u16,
    /// The block read.
    pub block: u64,
    /// Its hash.
    pub block_hash: [u8; 32],
    /// One entry per uid, sorted by uid.
    pub neurons: Vec<Neuron>,
    /// Hyperparameters at that block.
    pub hyperparams: Hyperparams,
    /// Where the neurons came from.
    pub source: Source,
}

impl Metagraph {
    /// The neuron registered with `hotkey`.
    pub fn by_hotkey(&self, hotkey: &AccountId) -> Option<&Neuron> {
        self.neurons.iter().find(|n| n.hotkey == *hotkey)
    }

    /// The neuron at `uid`.
    pub fn by_uid(&self, uid: u16) -> Option<&Neuron> {
        self.neurons
            .get(usize::from(uid))
            .filter(|n| n.uid == uid)
            .or_else(|| self.neurons.iter().find(|n| n.uid == uid))
    }

    /// Neurons holding a validator permit.
    pub fn validators(&self) -> impl Iterator<Item = &Neuron> {
        self.neurons.iter().filter(|n| n.validator_permit)
    }

    /// Neurons with a served axon.
    pub fn serving(&self) -> impl Iterator<Item = &Neuron> {
        self.neurons.iter().filter(|n| n.axon.is_some())
    }
}

/// `AxonInfo` as the runtime encodes it (fields matched by name).
///
/// `Encode` writes the leading fields in the runtime's order (`block, version, ip, port, ip_type,
/// protocol, placeholder1, placeholder2`), which the compatibility check uses.
#[derive(Debug, Clone, Default, DecodeAsType)]
#[decode_as_type(crate_path = "scale_decode")]
pub struct AxonInfo {
    /// Block served.
    pub block: u64,
    /// Version.
    pub version: u32,
    /// Big-endian integer IP.
    pub ip: u128,
    /// Port.
    pub port: u16,
    /// 4 or 6.
    pub ip_type: u8,
}

impl parity_scale_codec::Encode for AxonInfo {
    fn encode_to<W: parity_scale_codec::Output + ?Sized>(&self, out: &mut W) {
        (
            self.block,
            self.version,
            self.ip,
            self.port,
            self.ip_type,
            crate::calls::AXON_PROTOCOL,
            0u8,
            0u8,
        )
            .encode_to(out);
    }
}

impl AxonInfo {
    /// The decoded axon, or `None` when never served (port 0) or the address is invalid.
    pub fn to_axon(&self) -> Option<Axon> {
        if self.port == 0 {
            return None;
        }
        Some(Axon {
            ip: decode_ip(self.ip, self.ip_type)?,
            port: self.port,
            version: self.version,
            block: self.block,
        })
    }
}

/// The fields of `NeuronInfoLite` this client uses.
#[derive(Debug, Clone, DecodeAsType)]
#[decode_as_type(crate_path = "scale_decode")]
pub struct NeuronInfoLite {
    /// Hotkey.
    pub hotkey: AccountId32,
    /// Coldkey.
    pub coldkey: AccountId32,
    /// Uid (compact on the wire).
    pub uid: u16,
    /// Netuid.
    pub netuid: u16,
    /// Active flag.
    pub active: bool,
    /// Axon.
    pub axon_info: AxonInfo,
    /// `(coldkey, stake)` pairs.
    pub stake: Vec<(AccountId32, u64)>,
    /// Emission.
    pub emission: u64,
    /// Incentive.
    pub incentive: u16,
    /// Consensus.
    pub consensus: u16,
    /// Validator trust.
    pub validator_trust: u16,
    /// Dividends.
    pub dividends: u16,
    /// Last update.
    pub last_update: u64,
    /// Validator permit.
    pub validator_permit: bool,
}

impl From<NeuronInfoLite> for Neuron {
    fn from(n: NeuronInfoLite) -> Self {
        Self {
            uid: n.uid,
            hotkey: AccountId(n.hotkey.0),
            coldkey: AccountId(n.coldkey.0),
            axon: n.axon_info.to_axon(),
            stake: n.stake.iter().map(|(_, s)| *s).fold(0u64, u64::saturating_add),
            validator_permit: n.validator_permit,
            last_update: n.last_update,
            incentive: n.incentive,
            dividends: n.dividends,
            consensus: n.consensus,
            validator_trust: n.validator_trust,
            emission: n.emission,
            active: n.active,
        }
    }
}

/// Why neurons could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The runtime API is not in this chain's metadata.
    #[error("the chain has no {}_{}; the client falls back to storage", NEURONS_LITE_API.0, NEURONS_LITE_API.1)]
    NoApi,
    /// The bytes do not match the declared type.
    #[error(
        "cannot decode {what}: {source}; the runtime changed a type this client relies on, update tensorproof"
    )]
    Decode {
        /// What was decoded.
        what: &'static str,
        /// Why.
        source: scale_decode::Error,
    },
    /// Bytes were left over.
    #[error("{0} bytes left over after decoding the neurons; the runtime's type differs from its metadata")]
    Leftover(usize),
}

/// The output type id of `get_neurons_lite` in `metadata`.
pub fn neurons_lite_type(metadata: &Metadata) -> Option<u32> {
    let api = metadata.runtime_api_trait_by_name(NEURONS_LITE_API.0)?;
    Some(api.method_by_name(NEURONS_LITE_API.1)?.output_ty())
}

/// Decodes the SCALE output of `get_neurons_lite` against `metadata`, sorted by uid.
pub fn decode_neurons_lite(bytes: &[u8], metadata: &Metadata) -> Result<Vec<Neuron>, DecodeError> {
    let ty = neurons_lite_type(metadata).ok_or(DecodeError::NoApi)?;
    let cursor = &mut &bytes[..];
    let raw = Vec::<NeuronInfoLite>::decode_as_type(cursor, ty, metadata.types()).map_err(|source| {
        DecodeError::Decode {
            what: "NeuronInfoLite",
            source,
        }
    })?;
    if !cursor.is_empty() {
        return Err(DecodeError::Leftover(cursor.len()));
    }
    let mut neurons: Vec<Neuron> = raw.into_iter().map(Neuron::from).collect();
    neurons.sort_by_key(|n| n.uid);
    Ok(neurons)
}
