//! What this client needs from a chain's runtime, checked against its metadata on connect.
//!
//! # Why dynamic calls instead of static codegen
//!
//! Static subxt codegen bakes one chain's metadata into the binary and refuses (or silently
//! mis-encodes) calls when the connected runtime differs; the devnet, a localnet, testnet and finney all
//! run different runtimes. This client instead builds calls, storage queries and runtime-API calls by
//! name ([`crate::calls`], [`crate::metagraph`]) and lets subxt encode and decode them against the
//! metadata of the chain it is connected to. The list below is the contract: on connect,
//! [`check`] reports every missing item in one message, and `tests/finney_compat.rs` checks the same
//! list (plus encodings and value shapes) against finney's real metadata, which is read from
//! `shared/reference` at test time and never copied into the project.

use parity_scale_codec::Encode;
use subxt::Metadata;
use subxt::ext::scale_decode::DecodeAsType;

use crate::calls::{Call, PALLET};
use crate::metagraph::NEURONS_LITE_API;

/// Checks a storage value type: `(metadata, value type id, default bytes)`.
pub type ValueCheck = fn(&Metadata, u32, Option<&[u8]>) -> Result<(), String>;

/// A storage entry the client reads, with its key count and a check of its value type.
#[derive(Debug, Clone, Copy)]
pub struct StorageItem {
    /// Entry name in `SubtensorModule`.
    pub name: &'static str,
    /// Number of keys (0 = plain value).
    pub keys: usize,
    /// Whether the client can run without it (a default is used).
    pub optional: bool,
    /// Decodes the entry's default value as the Rust type the client uses.
    pub check_value: ValueCheck,
}

fn decode_exact<V: DecodeAsType>(metadata: &Metadata, ty: u32, bytes: &[u8]) -> Result<(), String> {
    let cursor = &mut &bytes[..];
    V::decode_as_type(cursor, ty, metadata.types()).map_err(|e| e.to_string())?;
    if cursor.is_empty() {
        Ok(())
    } else {
        Err(format!("{} bytes left over", cursor.len()))
    }
}

/// An account id as 32 raw bytes (decodes from `AccountId32`).
#[derive(Debug, Default, Encode, DecodeAsType)]
#[decode_as_type(crate_path = "subxt::ext::scale_decode")]
struct AccountBytes([u8; 32]);

/// The entry's value type matches `V`: its default value (present for `ValueQuery` entries) decodes as
/// `V`; for `OptionQuery` entries, which have none, `V`'s own SCALE encoding decodes as the chain's
/// type, so the layouts agree. (Finney and the devnet may differ in query kind; that is fine.)
fn value_is<V: DecodeAsType + Encode + Default>(
    metadata: &Metadata,
    ty: u32,
    default: Option<&[u8]>,
) -> Result<(), String> {
    match default {
        Some(bytes) => decode_exact::<V>(metadata, ty, bytes),
        None => decode_exact::<V>(metadata, ty, &V::default().encode()),
    }
}

const fn item(name: &'static str, keys: usize, optional: bool, check_value: ValueCheck) -> StorageItem {
    StorageItem {
        name,
        keys,
        optional,
        check_value,
    }
}

/// Every `SubtensorModule` storage entry the client reads.
pub const STORAGE: &[StorageItem] = &[
    item("NetworksAdded", 1, false, value_is::<bool>),
    item("SubnetworkN", 1, false, value_is::<u16>),
    item("Keys", 2, false, value_is::<AccountBytes>),
    item("Uids", 2, false, value_is::<u16>),
    item("LastUpdate", 1, false, value_is::<Vec<u64>>),
    item("Tempo", 1, false, value_is::<u16>),
    item("WeightsSetRateLimit", 1, false, value_is::<u64>),
    item("WeightsVersionKey", 1, false, value_is::<u64>),
    item("MinAllowedWeights", 1, false, value_is::<u16>),
    item("MaxWeightsLimit", 1, false, value_is::<u16>),
    item("CommitRevealWeightsEnabled", 1, false, value_is::<bool>),
    // Metagraph fallback when the runtime API is missing.
    item("Owner", 1, true, value_is::<AccountBytes>),
    item("Axons", 2, true, value_is::<crate::metagraph::AxonInfo>),
    item("TotalHotkeyAlpha", 2, true, value_is::<u64>),
    item("Active", 1, true, value_is::<Vec<bool>>),
    item("ValidatorPermit", 1, true, value_is::<Vec<bool>>),
    item("Consensus", 1, true, value_is::<Vec<u16>>),
    item("Dividends", 1, true, value_is::<Vec<u16>>),
    item("ValidatorTrust", 1, true, value_is::<Vec<u16>>),
    item("Incentive", 1, true, value_is::<Vec<u16>>),
    item("Emission", 1, true, value_is::<Vec<u64>>),
    // Mechanisms (one, with an even split, where absent).
    item("MechanismCountCurrent", 1, true, value_is::<u8>),
    item("MechanismEmissionSplit", 1, true, value_is::<Vec<u16>>),
    // Hyperparameters with safe defaults.
    item("RevealPeriodEpochs", 1, true, value_is::<u64>),
    item("MaxAllowedUids", 1, true, value_is::<u16>),
    item("ImmunityPeriod", 1, true, value_is::<u16>),
    item("ServingRateLimit", 1, true, value_is::<u64>),
    item("Burn", 1, true, value_is::<u64>),
    item("NetworkRegistrationAllowed", 1, true, value_is::<bool>),
    // Commit-reveal path and timing.
    // (The stateful epoch clock's SubnetEpochIndex/LastEpochBlock are used when present and are
    // not on finney yet, where the legacy formula applies: see `weights::EpochClock`.)
    item("CommitRevealWeightsVersion", 0, true, value_is::<u16>),
    // The stateful schedule's step counter (the reveal block, `crate::reveal`).
    item("BlocksSinceLastStep", 1, true, value_is::<u64>),
    item(
        "WeightCommits",
        2,
        true,
        value_is::<Vec<(AccountBytes, u64, u64, u64)>>,
    ),
];

/// Storage entries the metagraph fallback needs (all of them, or the runtime API).
pub const METAGRAPH_FALLBACK: &[&str] = &[
    "Keys",
    "Owner",
    "Axons",
    "TotalHotkeyAlpha",
    "Active",
    "ValidatorPermit",
    "LastUpdate",
];

/// Runtime APIs the client calls, `(trait, method)`.
pub const RUNTIME_APIS: &[(&str, &str)] = &[NEURONS_LITE_API];

/// The result of checking a chain's metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Items the client cannot work without.
    pub missing: Vec<String>,
    /// Items replaced by defaults or fallbacks.
    pub degraded: Vec<String>,
    /// Whether the neuron runtime API is present (else the storage fallback is used).
    pub has_neurons_api: bool,
}

impl Report {
    /// `Ok` when every required item is present, else one message naming all missing items.
    pub fn into_result(self) -> Result<Self, String> {
        if self.missing.is_empty() {
            Ok(self)
        } else {
            Err(format!(
                "the chain's runtime lacks {}; it is not a subtensor this client supports (check the endpoint or update tensorproof)",
                self.missing.join(", ")
            ))
        }
    }
}

/// Whether the runtime has the SDK 11.3's mechanism weight calls ([`crate::calls::MECHANISM_CALLS`]).
pub fn has_mechanism_calls(metadata: &Metadata) -> bool {
    metadata.pallet_by_name(PALLET).is_some_and(|p| {
        crate::calls::MECHANISM_CALLS
            .iter()
            .all(|n| p.call_variant_by_name(n).is_some())
    })
}

/// The runtime's slot duration in milliseconds (`Aura::SlotDuration`), which the SDK 11.3 takes as the
/// block time (12 s on finney, 0.25 s on fast-block chains); `None` where the runtime has no Aura
/// pallet (the devnet).
pub fn slot_duration_ms(metadata: &Metadata) -> Option<u64> {
    let constant = metadata
        .pallet_by_name("Aura")?
        .constant_by_name("SlotDuration")?;
    let ms = <u64 as parity_scale_codec::Decode>::decode(&mut constant.value()).ok()?;
    (ms > 0).then_some(ms)
}

/// Checks `metadata` for every call, storage entry and runtime API the client uses, and the shapes of
/// the storage values.
pub fn check(metadata: &Metadata) -> Report {
    let mut report = Report::default();
    let Some(pallet) = metadata.pallet_by_name(PALLET) else {
        report.missing.push(format!("pallet {PALLET}"));
        return report;
    };
    for name in Call::ALL_NAMES {
        if pallet.call_variant_by_name(name).is_none() {
            report.missing.push(format!("call {PALLET}::{name}"));
        }
    }
    let storage = pallet.storage();
    for it in STORAGE {
        let problem = match storage.and_then(|s| s.entry_by_name(it.name)) {
            None => Some("missing".to_owned()),
            Some(e) if e.keys().len() != it.keys => {
                Some(format!("has {} keys, expected {}", e.keys().len(), it.keys))
            }
            Some(e) => (it.check_value)(metadata, e.value_ty(), e.default_value())
                .err()
                .map(|why| format!("has another value type ({why})")),
        };
        if let Some(problem) = problem {
            let line = format!("storage {PALLET}::{} {problem}", it.name);
            if it.optional {
                report.degraded.push(line)
            } else {
                report.missing.push(line)
            }
        }
    }
    report.has_neurons_api = RUNTIME_APIS.iter().all(|(t, m)| {
        metadata
            .runtime_api_trait_by_name(t)
            .and_then(|api| api.method_by_name(m))
            .is_some()
    });
    if !report.has_neurons_api {
        let fallback_ok = METAGRAPH_FALLBACK
            .iter()
            .all(|n| storage.and_then(|s| s.entry_by_name(n)).is_some());
        let line = format!("runtime API {}_{}", NEURONS_LITE_API.0, NEURONS_LITE_API.1);
        if fallback_ok {
            report.degraded.push(line)
        } else {
            report.missing.push(line)
        }
    }
    report
}
