//! `btauth/1`: the Bittensor SDK 11 hotkey-signed HTTP scheme.
//!
//! The signed payload is eight lines joined by `\n` (no trailing newline): `btauth/1`, the scheme
//! (`sr25519`/`ed25519`, rebuilt by the verifier from the parsed header), the upper-case method, the
//! request target (path and `?query`), the lowercase hex sha256 of the raw body, the decimal nanosecond
//! nonce, the sender ss58, and the receiver ss58 or `-`.
//!
//! Verification runs in the reference's order: header shape → receiver binding → freshness →
//! signature (under the declared scheme only) → replay (in [`super::Verifier`], written only after the
//! signature verified).

use http::{HeaderMap, HeaderValue};

use super::{
    AuthError, Scheme, SignedHeaders, Verified, VerifierConfig, check_fresh, header, parse_account,
    parse_signature, required, sha256_hex,
};
use crate::keys::{AccountId, Keypair};

/// `X-Bittensor-Version` (value `1`).
pub const H_VERSION: &str = "x-bittensor-version";
/// `X-Bittensor-Hotkey`: the sender ss58.
pub const H_HOTKEY: &str = "x-bittensor-hotkey";
/// `X-Bittensor-Receiver`: the receiver ss58.
pub const H_RECEIVER: &str = "x-bittensor-receiver";
/// `X-Bittensor-Nonce`: decimal unix nanoseconds.
pub const H_NONCE: &str = "x-bittensor-nonce";
/// `X-Bittensor-Crypto`: `sr25519` (default when absent) or `ed25519`.
pub const H_CRYPTO: &str = "x-bittensor-crypto";
/// `X-Bittensor-Signature`: `0x` + lowercase hex.
pub const H_SIGNATURE: &str = "x-bittensor-signature";

/// The signature schemes btauth/1 names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crypto {
    /// Schnorrkel with the Substrate context (the default).
    Sr25519,
    /// Ed25519.
    Ed25519,
}

impl Crypto {
    /// The name used in the header and in the payload.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Sr25519 => "sr25519",
            Self::Ed25519 => "ed25519",
        }
    }
}

/// The exact bytes that are signed.
pub fn payload(
    crypto: Crypto,
    method: &str,
    target: &str,
    body: &[u8],
    nonce: u64,
    sender: &AccountId,
    receiver: Option<&AccountId>,
) -> Vec<u8> {
    let receiver = receiver.map_or_else(|| "-".to_owned(), AccountId::to_ss58);
    [
        "btauth/1",
        crypto.name(),
        &method.to_ascii_uppercase(),
        target,
        &sha256_hex(body),
        &nonce.to_string(),
        &sender.to_ss58(),
        &receiver,
    ]
    .join("\n")
    .into_bytes()
}

/// Signs one request with an sr25519 hotkey.
pub fn sign(
    key: &Keypair,
    method: &str,
    target: &str,
    body: &[u8],
    nonce: u64,
    receiver: Option<&AccountId>,
) -> SignedHeaders {
    let sender = key.account();
    let msg = payload(Crypto::Sr25519, method, target, body, nonce, &sender, receiver);
    let sig = key.sign(&msg);
    let mut headers = HeaderMap::new();
    let mut put = |name: &'static str, value: String| {
        // ss58, decimal and hex strings are always valid header values.
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    };
    put(H_VERSION, "1".into());
    put(H_HOTKEY, sender.to_ss58());
    if let Some(r) = receiver {
        put(H_RECEIVER, r.to_ss58());
    }
    put(H_NONCE, nonce.to_string());
    put(H_CRYPTO, Crypto::Sr25519.name().into());
    put(H_SIGNATURE, format!("0x{}", hex::encode(sig)));
    SignedHeaders {
        headers,
        request_id: nonce.to_string(),
    }
}

/// Verifies steps 1–4 (shape, receiver, freshness, signature); the caller does the replay check.
pub(crate) fn verify(
    method: &str,
    target: &str,
    headers: &HeaderMap,
    body: &[u8],
    own: &AccountId,
    config: &VerifierConfig,
    now_ns: u64,
) -> Result<Verified, AuthError> {
    // 1. Shape.
    if required(headers, H_VERSION)? != "1" {
        return Err(AuthError::Malformed("X-Bittensor-Version must be 1".into()));
    }
    let hotkey = parse_account("X-Bittensor-Hotkey", required(headers, H_HOTKEY)?)?;
    let nonce_str = required(headers, H_NONCE)?;
    if nonce_str.len() > 20 || !nonce_str.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AuthError::Malformed(
            "X-Bittensor-Nonce must be a decimal integer".into(),
        ));
    }
    // The signature covers the canonical decimal form and the replay cache keys on it: any other spelling
    // of the same value (`0N`, `00N`) would be a second, unseen key for one signed request.
    if nonce_str.len() > 1 && nonce_str.starts_with('0') {
        return Err(AuthError::Malformed(
            "X-Bittensor-Nonce must be written without leading zeros".into(),
        ));
    }
    let nonce: u64 = nonce_str
        .parse()
        .map_err(|_| AuthError::Malformed("X-Bittensor-Nonce does not fit in 64 bits".into()))?;
    let crypto = match header(headers, H_CRYPTO)? {
        None | Some("sr25519") => Crypto::Sr25519,
        Some("ed25519") => Crypto::Ed25519,
        Some(_) => {
            return Err(AuthError::Malformed(
                "X-Bittensor-Crypto must be sr25519 or ed25519".into(),
            ));
        }
    };
    let signature = parse_signature("X-Bittensor-Signature", required(headers, H_SIGNATURE)?)?;
    let receiver = match header(headers, H_RECEIVER)?.filter(|s| !s.is_empty()) {
        Some(r) => Some(parse_account("X-Bittensor-Receiver", r)?),
        None => None,
    };

    // 2. Receiver binding.
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
    check_fresh(nonce, now_ns, config.max_age, config.allowed_skew)?;

    // 4. Signature, under the declared scheme only. The nonce line uses the canonical decimal form of
    // the parsed value; a sender with leading zeros would not match its own signature.
    let msg = payload(crypto, method, target, body, nonce, &hotkey, receiver.as_ref());
    let ok = match crypto {
        Crypto::Sr25519 => hotkey.verify(&msg, &signature),
        Crypto::Ed25519 => hotkey.verify_ed25519(&msg, &signature),
    };
    if !ok {
        return Err(AuthError::BadSignature(hotkey));
    }
    Ok(Verified {
        scheme: Scheme::BtAuth,
        hotkey,
        request_id: nonce.to_string(),
        receiver,
        timestamp_ns: nonce,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::auth::Verifier;

    fn alice() -> Keypair {
        Keypair::from_uri("//Alice").unwrap()
    }
    fn bob() -> Keypair {
        Keypair::from_uri("//Bob").unwrap()
    }
    const NONCE: u64 = 1_790_000_000_123_456_789;

    #[test]
    fn payload_bytes_are_pinned() {
        let p = payload(
            Crypto::Sr25519,
            "post",
            "/v1/challenge?round=7",
            b"{\"n\":256}",
            NONCE,
            &alice().account(),
            Some(&bob().account()),
        );
        let expected = "btauth/1\n\
            sr25519\n\
            POST\n\
            /v1/challenge?round=7\n\
            2140a20e862d1d41ac2eaa2e2427179e24af3dac1f0a130d8d40b7143a0daa52\n\
            1790000000123456789\n\
            5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY\n\
            5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty";
        assert_eq!(sha256_hex(b"{\"n\":256}"), expected.lines().nth(4).unwrap());
        assert_eq!(String::from_utf8(p).unwrap(), expected);
    }

    #[test]
    fn unbound_payload_uses_dash_and_empty_body_hash() {
        let p = payload(Crypto::Ed25519, "GET", "/ping", b"", 5, &alice().account(), None);
        assert_eq!(
            String::from_utf8(p).unwrap(),
            "btauth/1\ned25519\nGET\n/ping\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n5\n\
             5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY\n-"
        );
    }

    fn setup() -> (Verifier, SignedHeaders) {
        let v = Verifier::new(bob().account(), VerifierConfig::default());
        let s = sign(&alice(), "POST", "/x?y=1", b"body", NONCE, Some(&bob().account()));
        (v, s)
    }

    fn run(v: &Verifier, h: &HeaderMap, body: &[u8], now_ns: u64) -> Result<Verified, AuthError> {
        v.verify_at("POST", "/x?y=1", h, body, now_ns, Instant::now())
    }

    #[test]
    fn valid_request_verifies_once_then_is_a_replay() {
        let (v, s) = setup();
        let ok = run(&v, &s.headers, b"body", NONCE + 1_000).unwrap();
        assert_eq!(ok.hotkey, alice().account());
        assert_eq!(ok.request_id, NONCE.to_string());
        assert_eq!(
            run(&v, &s.headers, b"body", NONCE + 2_000),
            Err(AuthError::Replayed(alice().account()))
        );
    }

    /// A captured request with its nonce re-spelled (`0N`) is the same signed request: refused, and it
    /// never gets a second replay-cache entry.
    #[test]
    fn a_re_spelled_nonce_is_refused_not_replayed() {
        let (v, s) = setup();
        assert!(run(&v, &s.headers, b"body", NONCE + 1_000).is_ok());
        for spelled in [format!("0{NONCE}"), format!("00{NONCE}")] {
            let mut h = s.headers.clone();
            h.insert(H_NONCE, HeaderValue::from_str(&spelled).unwrap());
            let err = run(&v, &h, b"body", NONCE + 2_000).unwrap_err();
            assert!(matches!(err, AuthError::Malformed(_)), "{spelled}: {err}");
        }
        // A fresh verifier refuses the re-spelled form too, so it cannot be the first one accepted.
        let (fresh, _) = setup();
        let mut h = s.headers.clone();
        h.insert(H_NONCE, HeaderValue::from_str(&format!("0{NONCE}")).unwrap());
        assert!(matches!(
            run(&fresh, &h, b"body", NONCE),
            Err(AuthError::Malformed(_))
        ));
        // "0" alone is canonical (and stale here).
        let mut h = s.headers;
        h.insert(H_NONCE, HeaderValue::from_static("0"));
        assert!(matches!(
            run(&fresh, &h, b"body", NONCE),
            Err(AuthError::Stale { .. })
        ));
    }

    #[test]
    fn each_tampered_field_fails_the_signature() {
        let (v, s) = setup();
        assert_eq!(
            run(&v, &s.headers, b"bodY", NONCE),
            Err(AuthError::BadSignature(alice().account()))
        );
        let err = v.verify_at("GET", "/x?y=1", &s.headers, b"body", NONCE, Instant::now());
        assert_eq!(err, Err(AuthError::BadSignature(alice().account())));
        let err = v.verify_at("POST", "/x?y=2", &s.headers, b"body", NONCE, Instant::now());
        assert_eq!(err, Err(AuthError::BadSignature(alice().account())));
        let mut h = s.headers.clone();
        h.insert(H_NONCE, HeaderValue::from_str(&(NONCE + 1).to_string()).unwrap());
        assert_eq!(
            run(&v, &h, b"body", NONCE),
            Err(AuthError::BadSignature(alice().account()))
        );
        // Declaring ed25519 for an sr25519 signature fails: the verifier never tries both.
        let mut h = s.headers;
        h.insert(H_CRYPTO, HeaderValue::from_static("ed25519"));
        assert_eq!(
            run(&v, &h, b"body", NONCE),
            Err(AuthError::BadSignature(alice().account()))
        );
    }

    #[test]
    fn a_bad_signature_does_not_poison_the_replay_cache() {
        let (v, s) = setup();
        assert!(run(&v, &s.headers, b"forged", NONCE).is_err());
        assert!(run(&v, &s.headers, b"body", NONCE).is_ok());
    }

    #[test]
    fn receiver_binding() {
        let (v, _) = setup();
        let charlie = Keypair::from_uri("//Charlie").unwrap().account();
        let s = sign(&alice(), "POST", "/x?y=1", b"body", NONCE, Some(&charlie));
        let err = run(&v, &s.headers, b"body", NONCE).unwrap_err();
        assert_eq!(
            err,
            AuthError::WrongReceiver {
                expected: bob().account(),
                got: charlie
            }
        );
        assert_eq!(err.status(), 403);
        let s = sign(&alice(), "POST", "/x?y=1", b"body", NONCE, None);
        assert_eq!(
            run(&v, &s.headers, b"body", NONCE),
            Err(AuthError::MissingReceiver(bob().account()))
        );
        let lax = Verifier::new(
            bob().account(),
            VerifierConfig {
                require_receiver: false,
                ..VerifierConfig::default()
            },
        );
        assert!(run(&lax, &s.headers, b"body", NONCE).is_ok());
    }

    #[test]
    fn stale_and_future_nonces_are_rejected_before_the_signature_is_checked() {
        let (v, s) = setup();
        let late = NONCE + 10_000_000_001;
        assert!(matches!(
            run(&v, &s.headers, b"tampered", late),
            Err(AuthError::Stale { .. })
        ));
        let early = NONCE - 2_000_000_001;
        assert!(matches!(
            run(&v, &s.headers, b"body", early),
            Err(AuthError::Stale { .. })
        ));
        assert!(run(&v, &s.headers, b"body", NONCE + 10_000_000_000).is_ok());
    }

    #[test]
    fn malformed_headers_are_401_and_do_not_echo_the_signature() {
        let (v, s) = setup();
        let cases: [(&str, Option<&str>); 7] = [
            (H_VERSION, Some("2")),
            (H_HOTKEY, None),
            (H_HOTKEY, Some("not-an-address")),
            (H_NONCE, Some("12ab")),
            (H_NONCE, Some("-5")),
            (H_CRYPTO, Some("ecdsa")),
            (H_SIGNATURE, Some("deadbeef")),
        ];
        for (name, value) in cases {
            let mut h = s.headers.clone();
            match value {
                Some(val) => h.insert(name, HeaderValue::from_str(val).unwrap()),
                None => h.remove(name),
            };
            let err = run(&v, &h, b"body", NONCE).unwrap_err();
            assert!(matches!(err, AuthError::Malformed(_)), "{name}={value:?}: {err}");
            assert_eq!(err.status(), 401);
            let sig = s.headers[H_SIGNATURE].to_str().unwrap();
            assert!(!err.to_string().contains(&sig[2..20]));
        }
    }

    #[test]
    fn missing_crypto_header_means_sr25519_and_header_names_are_case_insensitive() {
        let (v, s) = setup();
        let mut h = HeaderMap::new();
        for (k, val) in &s.headers {
            if k.as_str() != H_CRYPTO {
                let upper = http::HeaderName::from_bytes(k.as_str().to_ascii_uppercase().as_bytes()).unwrap();
                h.insert(upper, val.clone());
            }
        }
        assert!(run(&v, &h, b"body", NONCE).is_ok());
    }

    #[test]
    fn ed25519_signatures_verify_under_the_ed25519_scheme() {
        use sp_core::Pair as _;
        let ed = sp_core::ed25519::Pair::from_string("//Dave", None).unwrap();
        let sender = AccountId(ed.public().0);
        let msg = payload(
            Crypto::Ed25519,
            "POST",
            "/x?y=1",
            b"body",
            NONCE,
            &sender,
            Some(&bob().account()),
        );
        let sig = ed.sign(&msg).0;
        let mut h = HeaderMap::new();
        h.insert(H_VERSION, HeaderValue::from_static("1"));
        h.insert(H_HOTKEY, HeaderValue::from_str(&sender.to_ss58()).unwrap());
        h.insert(H_RECEIVER, HeaderValue::from_str(&bob().ss58()).unwrap());
        h.insert(H_NONCE, HeaderValue::from_str(&NONCE.to_string()).unwrap());
        h.insert(H_CRYPTO, HeaderValue::from_static("ed25519"));
        h.insert(
            H_SIGNATURE,
            HeaderValue::from_str(&format!("0x{}", hex::encode(sig))).unwrap(),
        );
        let (v, _) = setup();
        assert_eq!(run(&v, &h, b"body", NONCE).unwrap().hotkey, sender);
    }
}
