//! The devnet's metadata against finney's (`../shared/reference/subtensor-finney-metadata.scale`):
//! transaction extensions, pallet indices, and for every call, storage item, event, error and
//! runtime API the devnet serves, the same name, index, argument names, hashers and type shapes.

use devnet::runtime::Runtime;
use scale_info::{PortableRegistry, TypeDef, form::PortableForm};
use subxt::Metadata;
use subxt::ext::frame_metadata::v15::RuntimeMetadataV15;

#[path = "../../tests/support/finney.rs"]
mod support;
use support::finney;

fn devnet(version: u32) -> Metadata {
    let opaque = Runtime::metadata_at_version(version).expect("version served");
    Metadata::decode_from(&opaque).expect("devnet metadata decodes")
}

/// A structural description of a type: primitives, sequences, arrays, tuples, compacts, and
/// composites by field names (single-field composites are transparent, as SCALE encodes them).
fn shape(types: &PortableRegistry, id: u32, depth: usize) -> String {
    if depth > 12 {
        return "…".into();
    }
    let ty = types.resolve(id).expect("type id resolves");
    match &ty.type_def {
        TypeDef::Primitive(p) => format!("{p:?}").to_lowercase(),
        TypeDef::Sequence(s) => format!("Vec<{}>", shape(types, s.type_param.id, depth + 1)),
        TypeDef::Array(a) => format!("[{}; {}]", shape(types, a.type_param.id, depth + 1), a.len),
        TypeDef::Compact(c) => format!("Compact<{}>", shape(types, c.type_param.id, depth + 1)),
        TypeDef::Tuple(t) => format!(
            "({})",
            t.fields
                .iter()
                .map(|f| shape(types, f.id, depth + 1))
                .collect::<Vec<_>>()
                .join(",")
        ),
        TypeDef::Composite(c) if c.fields.len() == 1 => shape(types, c.fields[0].ty.id, depth + 1),
        TypeDef::Composite(c) => format!(
            "{{{}}}",
            c.fields
                .iter()
                .map(|f| format!(
                    "{}:{}",
                    f.name.as_deref().unwrap_or("_"),
                    shape(types, f.ty.id, depth + 1)
                ))
                .collect::<Vec<_>>()
                .join(",")
        ),
        TypeDef::Variant(v) => {
            let path = ty.path.segments.join("::");
            if path.ends_with("Option") {
                let inner = v.variants.iter().find(|x| x.name == "Some").expect("Some");
                format!("Option<{}>", shape(types, inner.fields[0].ty.id, depth + 1))
            } else {
                format!("enum {}", path.rsplit("::").next().unwrap_or(""))
            }
        }
        TypeDef::BitSequence(_) => "bits".into(),
    }
}

fn fields(types: &PortableRegistry, v: &scale_info::Variant<PortableForm>) -> Vec<String> {
    v.fields
        .iter()
        .map(|f| {
            format!(
                "{}:{}",
                f.name.as_deref().unwrap_or("_"),
                shape(types, f.ty.id, 0)
            )
        })
        .collect()
}

#[test]
fn devnet_serves_metadata_v14_v15_v16() {
    assert_eq!(Runtime::metadata_versions(), vec![14, 15, 16]);
    for v in [14, 15, 16] {
        let m = devnet(v);
        assert_eq!(
            m.pallet_by_name("SubtensorModule").expect("pallet").call_index(),
            7
        );
    }
    // V15 lists the runtime APIs the devnet serves.
    let opaque = Runtime::metadata_at_version(15).expect("v15");
    let prefixed: subxt::ext::frame_metadata::RuntimeMetadataPrefixed =
        subxt::ext::codec::Decode::decode(&mut &opaque[..]).expect("prefixed");
    let subxt::ext::frame_metadata::RuntimeMetadata::V15(v15) = prefixed.1 else {
        panic!("not V15")
    };
    let v15: RuntimeMetadataV15 = v15;
    let apis: Vec<&str> = v15.apis.iter().map(|a| a.name.as_str()).collect();
    for api in [
        "NeuronInfoRuntimeApi",
        "SubnetInfoRuntimeApi",
        "AccountNonceApi",
        "Metadata",
        "Core",
    ] {
        assert!(apis.contains(&api), "{api} missing from {apis:?}");
    }
}

#[test]
fn transaction_extensions_match_finney() {
    let ids = |m: &Metadata| -> Vec<String> {
        m.extrinsic()
            .transaction_extensions_to_use_for_encoding()
            .map(|e| e.identifier().to_string())
            .collect()
    };
    let f = finney();
    let d = devnet(16);
    assert_eq!(ids(&d), ids(&f));
    // Same explicit and implicit data shapes, so a finney client signs the same bytes.
    let shapes = |m: &Metadata| -> Vec<(String, String)> {
        m.extrinsic()
            .transaction_extensions_to_use_for_encoding()
            .map(|e| {
                (
                    shape(m.types(), e.extra_ty(), 0),
                    shape(m.types(), e.additional_ty(), 0),
                )
            })
            .collect()
    };
    assert_eq!(shapes(&d), shapes(&f));
}

#[test]
fn pallet_indices_match_finney() {
    let (f, d) = (finney(), devnet(16));
    for pallet in d.pallets() {
        let fp = f
            .pallet_by_name(pallet.name())
            .unwrap_or_else(|| panic!("{} not on finney", pallet.name()));
        assert_eq!(pallet.call_index(), fp.call_index(), "{}", pallet.name());
    }
}

/// What the devnet serves from runtimes newer than the reference finney metadata (subtensor's owner
/// `trigger_epoch`, call 141, with its event and errors); everything else must be finney's.
const NEWER_CALLS: [&str; 1] = ["trigger_epoch"];
/// Events of [`NEWER_CALLS`].
const NEWER_EVENTS: [&str; 1] = ["EpochTriggered"];
/// Errors of [`NEWER_CALLS`], after all of finney's.
const NEWER_ERRORS: [&str; 2] = ["EpochTriggerAlreadyPending", "AutoEpochAlreadyImminent"];

#[test]
fn subtensor_calls_events_errors_and_storage_match_finney() {
    let (f, d) = (finney(), devnet(16));
    for name in ["SubtensorModule", "AdminUtils"] {
        let (fp, dp) = (
            f.pallet_by_name(name).expect("finney pallet"),
            d.pallet_by_name(name).expect("devnet pallet"),
        );
        for call in dp.call_variants().expect("calls") {
            if name == "SubtensorModule" && NEWER_CALLS.contains(&call.name.as_str()) {
                assert!(
                    fp.call_variant_by_name(&call.name).is_none(),
                    "{} is on finney now: check it against finney instead",
                    call.name
                );
                continue;
            }
            let fc = fp
                .call_variant_by_name(&call.name)
                .unwrap_or_else(|| panic!("{name}::{} not on finney", call.name));
            assert_eq!(call.index, fc.index, "{name}::{} index", call.name);
            assert_eq!(
                fields(d.types(), call),
                fields(f.types(), fc),
                "{name}::{} arguments",
                call.name
            );
        }
    }
    let (fp, dp) = (
        f.pallet_by_name("SubtensorModule").unwrap(),
        d.pallet_by_name("SubtensorModule").unwrap(),
    );

    let f_events = fp.event_variants().expect("events");
    let strip = |v: Vec<String>| {
        v.into_iter()
            .map(|s| s.split_once(':').map(|x| x.1.to_string()).unwrap_or(s))
            .collect::<Vec<_>>()
    };
    let mut mismatched = Vec::new();
    for ev in dp.event_variants().expect("events") {
        if NEWER_EVENTS.contains(&ev.name.as_str()) {
            continue;
        }
        match f_events.iter().find(|e| e.name == ev.name) {
            None => mismatched.push(format!("{} not on finney", ev.name)),
            Some(fe) if strip(fields(d.types(), ev)) != strip(fields(f.types(), fe)) => {
                mismatched.push(format!(
                    "{}: devnet {:?} finney {:?}",
                    ev.name,
                    fields(d.types(), ev),
                    fields(f.types(), fe)
                ))
            }
            Some(_) => {}
        }
    }
    assert!(mismatched.is_empty(), "events differ: {mismatched:#?}");

    let f_errors: Vec<&str> = fp
        .error_variants()
        .unwrap()
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    let d_errors: Vec<&str> = dp
        .error_variants()
        .unwrap()
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    let (finneys, newer) = d_errors.split_at(f_errors.len().min(d_errors.len()));
    assert_eq!(finneys, f_errors, "error names and indices");
    assert_eq!(newer, NEWER_ERRORS, "errors after finney's");

    let fs = fp.storage().expect("storage");
    let ds = dp.storage().expect("storage");
    assert_eq!(ds.prefix(), fs.prefix());
    // The stateful epoch scheduler (subtensor spec 425, which the devnet follows) adds these, and
    // newer runtimes `SubnetEpochConsensus` and `CollateralLockShare` (which the SDK 11.3 reads);
    // the finney metadata in the reference predates them.
    let stateful = [
        "SubnetEpochIndex",
        "LastEpochBlock",
        "PendingEpochAt",
        "SubnetEpochConsensus",
        "CollateralLockShare",
    ];
    let mut checked = 0;
    let mut mismatched = Vec::new();
    for entry in ds.entries() {
        if entry.name().starts_with("Devnet") || stateful.contains(&entry.name()) {
            continue;
        }
        let Some(fe) = fs.entry_by_name(entry.name()) else {
            mismatched.push(format!("{} not on finney", entry.name()));
            continue;
        };
        let keys = |m: &Metadata, e: &subxt::metadata::StorageEntryMetadata| -> Vec<String> {
            e.keys()
                .map(|k| format!("{:?} {}", k.hasher, shape(m.types(), k.key_id, 0)))
                .collect()
        };
        let (dk, fk) = (keys(&d, entry), keys(&f, fe));
        let (dv, fv) = (
            shape(d.types(), entry.value_ty(), 0),
            shape(f.types(), fe.value_ty(), 0),
        );
        if dk != fk || dv != fv {
            mismatched.push(format!(
                "{}: devnet {dk:?} -> {dv}, finney {fk:?} -> {fv}",
                entry.name()
            ));
        }
        checked += 1;
    }
    assert!(mismatched.is_empty(), "storage differs: {mismatched:#?}");
    assert!(checked >= 60, "only {checked} storage items compared");
}

/// The `Drand` storage the client reads (`BeaconConfig`) and the devnet writes has finney's shape.
#[test]
fn drand_beacon_storage_matches_finney() {
    let (f, d) = (finney(), devnet(16));
    let entry = |m: &Metadata, name: &str| {
        let e = m
            .pallet_by_name("Drand")
            .and_then(|p| p.storage())
            .and_then(|s| s.entry_by_name(name))
            .unwrap_or_else(|| panic!("Drand::{name} missing"));
        (e.keys().count(), shape(m.types(), e.value_ty(), 0))
    };
    for name in ["BeaconConfig", "LastStoredRound"] {
        assert_eq!(entry(&d, name), entry(&f, name), "Drand::{name}");
    }
}

#[test]
fn runtime_apis_match_finney() {
    let (f, d) = (finney(), devnet(16));
    for (api, method) in [
        ("NeuronInfoRuntimeApi", "get_neurons_lite"),
        ("NeuronInfoRuntimeApi", "get_neuron_lite"),
        ("SubnetInfoRuntimeApi", "get_subnet_hyperparams_v2"),
        ("SubnetInfoRuntimeApi", "get_metagraph"),
        ("StakeInfoRuntimeApi", "get_stake_info_for_hotkey_coldkey_netuid"),
        ("SwapRuntimeApi", "current_alpha_price"),
    ] {
        let dm = d
            .runtime_api_trait_by_name(api)
            .and_then(|a| a.method_by_name(method))
            .expect("devnet api");
        let fm = f
            .runtime_api_trait_by_name(api)
            .and_then(|a| a.method_by_name(method))
            .expect("finney api");
        assert_eq!(
            shape(d.types(), dm.output_ty(), 0),
            shape(f.types(), fm.output_ty(), 0),
            "{api}_{method} output"
        );
        let ins = |m: &Metadata, x: &subxt::metadata::RuntimeApiMethodMetadata<'_>| -> Vec<String> {
            x.inputs()
                .map(|i| format!("{}:{}", i.name, shape(m.types(), i.id, 0)))
                .collect()
        };
        assert_eq!(ins(&d, &dm), ins(&f, &fm), "{api}_{method} inputs");
    }
}

/// `Commitments` (index 18) and `Aura` (index 3) have finney's storage the SDK reads.
#[test]
fn commitments_storage_matches_finney() {
    let (f, d) = (finney(), devnet(16));
    for m in [&f, &d] {
        assert_eq!(
            m.pallet_by_name("Commitments").expect("Commitments").call_index(),
            18
        );
        assert_eq!(m.pallet_by_name("Aura").expect("Aura").call_index(), 3);
    }
    let entry = |m: &Metadata, name: &str| {
        let e = m
            .pallet_by_name("Commitments")
            .and_then(|p| p.storage())
            .and_then(|s| s.entry_by_name(name))
            .unwrap_or_else(|| panic!("Commitments::{name}"))
            .clone();
        let keys: Vec<String> = e
            .keys()
            .map(|k| format!("{:?} {}", k.hasher, shape(m.types(), k.key_id, 0)))
            .collect();
        (keys, shape(m.types(), e.value_ty(), 0))
    };
    for name in ["CommitmentOf", "RevealedCommitments"] {
        assert_eq!(entry(&d, name), entry(&f, name), "Commitments::{name}");
    }
}

/// The metadata served to clients (the `Metadata` runtime API, as `state_getMetadata` answers)
/// names types as subtensor does: `node_subtensor_runtime::RuntimeEvent`, `pallet_subtensor::…`.
#[test]
fn served_metadata_uses_subtensors_type_paths() {
    use subxt::ext::codec::{Decode, Encode};
    for version in [14u32, 15, 16] {
        let raw = devnet::runtime::dispatch_runtime_api("Metadata_metadata_at_version", &version.encode())
            .expect("Metadata_metadata_at_version");
        let opaque = Option::<Vec<u8>>::decode(&mut &raw[..])
            .expect("SCALE option")
            .expect("version served");
        let md = Metadata::decode_from(&opaque[..]).expect("metadata decodes");
        let paths: Vec<String> = md
            .types()
            .types
            .iter()
            .map(|t| t.ty.path.segments.join("::"))
            .collect();
        for want in [
            "node_subtensor_runtime::RuntimeEvent",
            "node_subtensor_runtime::RuntimeCall",
            "pallet_subtensor::pallet::Call",
            "pallet_subtensor::pallet::Event",
        ] {
            assert!(paths.iter().any(|p| p == want), "v{version}: {want} missing");
        }
        assert!(
            !paths.iter().any(|p| p.starts_with("devnet::")),
            "v{version}: a devnet:: path is left"
        );
    }
}

/// `MevShield` (index 30): every call, event, error and storage item the devnet serves is finney's,
/// with the same indices, argument and field shapes, hashers and value shapes.
#[test]
fn mev_shield_matches_finney() {
    let (f, d) = (finney(), devnet(16));
    let (fp, dp) = (
        f.pallet_by_name("MevShield").expect("finney MevShield"),
        d.pallet_by_name("MevShield").expect("devnet MevShield"),
    );
    assert_eq!((dp.call_index(), fp.call_index()), (30, 30));
    let calls = dp.call_variants().expect("calls");
    assert!(calls.iter().any(|c| c.name == "submit_encrypted"));
    for call in calls {
        let fc = fp.call_variant_by_name(&call.name).expect("call on finney");
        assert_eq!(call.index, fc.index, "MevShield::{} index", call.name);
        assert_eq!(
            fields(d.types(), call),
            fields(f.types(), fc),
            "MevShield::{}",
            call.name
        );
    }
    let (de, fe) = (
        dp.event_variants().expect("events"),
        fp.event_variants().expect("events"),
    );
    assert!(!de.is_empty());
    for ev in de {
        let fv = fe.iter().find(|v| v.name == ev.name).expect("event on finney");
        assert_eq!(ev.index, fv.index, "MevShield::{} index", ev.name);
        assert_eq!(
            fields(d.types(), ev),
            fields(f.types(), fv),
            "MevShield::{}",
            ev.name
        );
    }
    let names = |p: &subxt::metadata::PalletMetadata<'_>| -> Vec<(u8, String)> {
        p.error_variants()
            .unwrap_or_default()
            .iter()
            .map(|e| (e.index, e.name.clone()))
            .collect()
    };
    assert_eq!(names(&dp), names(&fp), "errors");
    let (ds, fs) = (dp.storage().expect("storage"), fp.storage().expect("storage"));
    assert_eq!(ds.prefix(), fs.prefix());
    let mut compared = 0;
    for entry in ds.entries() {
        let fe = fs.entry_by_name(entry.name()).expect("storage item on finney");
        let keys = |m: &Metadata, e: &subxt::metadata::StorageEntryMetadata| -> Vec<String> {
            e.keys()
                .map(|k| format!("{:?} {}", k.hasher, shape(m.types(), k.key_id, 0)))
                .collect()
        };
        assert_eq!(keys(&d, entry), keys(&f, fe), "MevShield::{} keys", entry.name());
        assert_eq!(
            shape(d.types(), entry.value_ty(), 0),
            shape(f.types(), fe.value_ty(), 0),
            "MevShield::{} value",
            entry.name()
        );
        compared += 1;
    }
    assert_eq!(
        compared, 5,
        "CurrentKey, PendingKey, NextKey and the two expiries"
    );
}
