//! Epistula V2 (Manifold Labs), accepted for interoperability with peers that still use it.
//!
//! Signed message: the UTF-8 bytes of `"{sha256(body) hex}.{uuid}.{timestamp_ms}.{signed_for or ''}"`,
//! sr25519 with the Substrate context, as macrocosm-os/atom's `epistula.py` builds it. Verification runs
//! in the same order as btauth/1: shape → receiver → freshness (`max age` 8 s by default, plus the same
//! future skew as btauth, which atom does not check) → signature → uuid replay.
//!
//! The optional `Epistula-Secret-Signature-*` headers are neither produced nor checked: implementations
//! disagree on their format (float vs integer interval, sender vs receiver address).

use http::{HeaderMap, HeaderValue};

use super::{
    AuthError, Scheme, SignedHeaders, Verified, VerifierConfig, check_fresh, header, parse_account,
    parse_signature, required, sha256_hex,
};
use crate::keys::{AccountId, Keypair};

/// `Epistula-Version` (value `2`).
pub const H_VERSION: &str = "epistula-version";
/// `Epistula-Timestamp`: unix milliseconds.
pub const H_TIMESTAMP: &str = "epistula-timestamp";
/// `Epistula-Uuid`: a uuid4 string.
pub const H_UUID: &str = "epistula-uuid";
/// `Epistula-Signed-By`: the sender ss58.
pub const H_SIGNED_BY: &str = "epistula-signed-by";
/// `Epistula-Signed-For`: the receiver ss58 (optional in the protocol).
pub const H_SIGNED_FOR: &str = "epistula-signed-for";
/// `Epistula-Request-Signature`: `0x` + hex.
pub const H_SIGNATURE: &str = "epistula-request-signature";

/// Longest uuid accepted (a canonical uuid is 36 characters).
const MAX_UUID_LEN: usize = 64;

/// The exact bytes that are signed.
pub fn message(body: &[u8], uuid: &str, timestamp_ms: u64, signed_for: Option<&AccountId>) -> Vec<u8> {
    let signed_for = signed_for.map(AccountId::to_ss58).unwrap_or_default();
    format!("{}.{uuid}.{timestamp_ms}.{signed_for}", sha256_hex(body)).into_bytes()
}

/// Signs one request.
pub fn sign(
    key: &Keypair,
    body: &[u8],
    uuid: &str,
    timestamp_ms: u64,
    signed_for: Option<&AccountId>,
) -> SignedHeaders {
    let sig = key.sign(&message(body, uuid, timestamp_ms, signed_for));
    let mut headers = HeaderMap::new();
    let mut put = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    };
    put(H_VERSION, "2".into());
    put(H_TIMESTAMP, timestamp_ms.to_string());
    put(H_UUID, uuid.to_owned());
    put(H_SIGNED_BY, key.ss58());
    if let Some(r) = signed_for {
        put(H_SIGNED_FOR, r.to_ss58());
    }
    put(H_SIGNATURE, format!("0x{}", hex::encode(sig)));
    SignedHeaders {
        headers,
        request_id: uuid.to_owned(),
    }
}

pub(crate) fn verify(
    headers: &HeaderMap,
    body: &[u8],
    own: &AccountId,
    config: &VerifierConfig,
    now_ns: u64,
) -> Result<Verified, AuthError> {
    // 1. Shape.
    if required(headers, H_VERSION)? != "2" {
        return Err(AuthError::Malformed("Epistula-Version must be 2".into()));
    }
    let ts_str = required(headers, H_TIMESTAMP)?;
    if ts_str.len() > 17 || !ts_str.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AuthError::Malformed(
            "Epistula-Timestamp must be decimal unix milliseconds".into(),
        ));
    }
    let ts_ms: u64 = ts_str
        .parse()
        .map_err(|_| AuthError::Malformed("Epistula-Timestamp is out of range".into()))?;
    let uuid = required(headers, H_UUID)?;
    if uuid.len() > MAX_UUID_LEN || !uuid.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(AuthError::Malformed("Epistula-Uuid must be a uuid string".into()));
    }
    let hotkey = parse_account("Epistula-Signed-By", required(headers, H_SIGNED_BY)?)?;
    let receiver = match header(headers, H_SIGNED_FOR)?.filter(|s| !s.is_empty()) {
        Some(r) => Some(parse_account("Epistula-Signed-For", r)?),
        None => None,
    };
    let signature = parse_signature("Epistula-Request-Signature", required(headers, H_SIGNATURE)?)?;

    // 2. Receiver.
    match receiver {
        None if config.require_receiver => return Err(AuthError::MissingReceiver(*own)),
        Some(r) if r != *own => {
            return Err(AuthError::WrongReceiver {
                expected: *own,
                got: r,
            });
        }
        _ => {}
    }

    // 3. Freshness.
    let ts_ns = ts_ms.saturating_mul(1_000_000);
    check_fresh(ts_ns, now_ns, config.epistula_max_age, config.allowed_skew)?;

    // 4. Signature (the timestamp line is the header as sent, so leading zeros stay as signed).
    let signed_for = receiver.map(|r| r.to_ss58()).unwrap_or_default();
    let msg = format!("{}.{uuid}.{ts_str}.{signed_for}", sha256_hex(body));
    if !hotkey.verify(msg.as_bytes(), &signature) {
        return Err(AuthError::BadSignature(hotkey));
    }
    Ok(Verified {
        scheme: Scheme::Epistula,
        hotkey,
        request_id: uuid.to_owned(),
        receiver,
        timestamp_ns: ts_ns,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::auth::Verifier;

    const TS: u64 = 1_790_000_000_123;
    const UUID: &str = "0f8fad5b-d9cb-469f-a165-70867728950e";

    fn alice() -> Keypair {
        Keypair::from_uri("//Alice").unwrap()
    }
    fn bob() -> Keypair {
        Keypair::from_uri("//Bob").unwrap()
    }

    #[test]
    fn message_bytes_are_pinned() {
        let m = message(b"{\"n\":256}", UUID, TS, Some(&bob().account()));
        assert_eq!(
            String::from_utf8(m).unwrap(),
            "2140a20e862d1d41ac2eaa2e2427179e24af3dac1f0a130d8d40b7143a0daa52.\
             0f8fad5b-d9cb-469f-a165-70867728950e.1790000000123.\
             5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty"
        );
        let m = message(b"", UUID, TS, None);
        assert!(String::from_utf8(m).unwrap().ends_with(".1790000000123."));
    }

    #[test]
    fn round_trip_then_replay_then_tamper() {
        let v = Verifier::new(bob().account(), VerifierConfig::default());
        let s = sign(&alice(), b"body", UUID, TS, Some(&bob().account()));
        let now = TS * 1_000_000 + 500_000_000;
        let ok = v
            .verify_at("POST", "/ignored", &s.headers, b"body", now, Instant::now())
            .unwrap();
        assert_eq!(
            (ok.scheme, ok.hotkey, ok.request_id.as_str()),
            (Scheme::Epistula, alice().account(), UUID)
        );
        let again = v.verify_at("POST", "/ignored", &s.headers, b"body", now, Instant::now());
        assert_eq!(again, Err(AuthError::Replayed(alice().account())));
        let s2 = sign(&alice(), b"body", "another-uuid", TS, Some(&bob().account()));
        let bad = v.verify_at("POST", "/", &s2.headers, b"b0dy", now, Instant::now());
        assert_eq!(bad, Err(AuthError::BadSignature(alice().account())));
    }

    #[test]
    fn old_timestamps_and_disabled_scheme_are_refused() {
        let v = Verifier::new(bob().account(), VerifierConfig::default());
        let s = sign(&alice(), b"body", UUID, TS, Some(&bob().account()));
        let late = (TS + 8_001) * 1_000_000;
        let err = v.verify_at("POST", "/", &s.headers, b"body", late, Instant::now());
        assert!(matches!(err, Err(AuthError::Stale { .. })));
        let strict = Verifier::new(
            bob().account(),
            VerifierConfig {
                accept_epistula: false,
                ..VerifierConfig::default()
            },
        );
        let err = strict.verify_at("POST", "/", &s.headers, b"body", TS * 1_000_000, Instant::now());
        assert_eq!(err, Err(AuthError::SchemeDisabled));
    }
}
