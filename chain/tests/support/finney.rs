//! Locating and decoding finney's real runtime metadata for the compatibility tests.
//!
//! The file is `shared/reference/subtensor-finney-metadata.scale`, next to the workspace (`../shared`,
//! as CI lays it out) or inside it (`shared/`), or wherever `TENSORPROOF_FINNEY_METADATA` points. It is
//! never copied into the project.

use subxt::Metadata;

/// The metadata file's path; panics with the places looked at when it is missing.
pub(crate) fn finney_path() -> std::path::PathBuf {
    if let Some(p) = std::env::var_os("TENSORPROOF_FINNEY_METADATA") {
        return p.into();
    }
    // The workspace root: the nearest folder above this crate that holds Cargo.lock (chain/ and
    // chain/devnet/ both share this file).
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = manifest
        .ancestors()
        .find(|d| d.join("Cargo.lock").exists())
        .unwrap_or(manifest);
    let candidates = [
        root.join("../shared/reference/subtensor-finney-metadata.scale"),
        root.join("shared/reference/subtensor-finney-metadata.scale"),
    ];
    candidates
        .iter()
        .find(|p| p.exists())
        .cloned()
        .unwrap_or_else(|| {
            panic!("finney metadata not found at {candidates:?}; set TENSORPROOF_FINNEY_METADATA")
        })
}

/// finney's metadata, decoded.
pub(crate) fn finney() -> Metadata {
    let path = finney_path();
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    Metadata::decode_from(&bytes).expect("finney metadata decodes")
}
