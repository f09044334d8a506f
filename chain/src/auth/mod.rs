//! Hotkey-signed HTTP requests and signed responses, independent of any HTTP framework.
//!
//! * [`btauth`]: `btauth/1`, the Bittensor SDK 11 scheme (primary).
//! * [`epistula`]: Epistula V2, accepted for peers that still use it.
//! * [`replay`]: the bounded cache of accepted (hotkey, nonce) pairs.
//! * [`receipt`]: the responder's signature over the request id and the sha256 of the response body.
//! * [`generation`]: the miner's signature over one generation it served (request, model, tokens, counts),
//!   carried in a streamed answer's final event.
//! * [`signed_http`]: the HTTP client that signs requests and checks receipts, with bounded bodies
//!   and one timeout per exchange.
//!
//! Everything works on [`http::HeaderMap`] (shared by axum, hyper and reqwest) and raw body bytes.
//! The caller hashes the body bytes exactly as received, before any parsing.
//!
//! ```
//! use chain::auth::{RequestSigner, Verifier, VerifierConfig};
//! use chain::keys::Keypair;
//!
//! let validator = Keypair::from_uri("//Alice").unwrap();
//! let miner = Keypair::from_uri("//Bob").unwrap();
//!
//! // Client side: sign the exact bytes that will be sent.
//! let body = br#"{"task":"matmul"}"#;
//! let signed = RequestSigner::new(validator.clone()).btauth("POST", "/challenge?x=1", body, Some(&miner.account()));
//!
//! // Server side: verify, then decide authorization (validator permit, stake) from the metagraph.
//! let verifier = Verifier::new(miner.account(), VerifierConfig::default());
//! let who = verifier.verify("POST", "/challenge?x=1", &signed.headers, body).unwrap();
//! assert_eq!(who.hotkey, validator.account());
//!
//! // The same request again is a replay.
//! let err = verifier.verify("POST", "/challenge?x=1", &signed.headers, body).unwrap_err();
//! assert_eq!(err.status(), 401);
//! ```

pub mod btauth;
pub mod epistula;
pub mod generation;
pub mod receipt;
pub mod replay;
pub mod signed_http;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http::HeaderMap;

use crate::keys::{AccountId, Keypair};
pub use receipt::{Receipt, ReceiptError};
pub use replay::{InsertOutcome, ReplayCache, ReplayKey};

/// Which signing scheme a request used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// `btauth/1` (Bittensor SDK 11).
    BtAuth,
    /// Epistula V2.
    Epistula,
}

impl Scheme {
    const fn tag(self) -> u8 {
        match self {
            Self::BtAuth => 1,
            Self::Epistula => 2,
        }
    }
}

/// Why a request was not authenticated. [`AuthError::status`] gives the HTTP status to answer with.
///
/// Messages never echo the signature or the signed payload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// A header is missing or badly formed.
    #[error("malformed auth headers: {0}")]
    Malformed(String),
    /// The request names no receiver and this server requires one.
    #[error("the request is not bound to a receiver; sign it for this server's hotkey ({0})")]
    MissingReceiver(AccountId),
    /// The request was signed for another server.
    #[error(
        "the request was signed for {got}, not for this server ({expected}); sign it for the right hotkey"
    )]
    WrongReceiver {
        /// This server's hotkey.
        expected: AccountId,
        /// The receiver named in the request.
        got: AccountId,
    },
    /// The nonce/timestamp is too old or too far in the future.
    #[error(
        "the request timestamp is {age_ms} ms old (allowed: -{skew_ms}..={max_age_ms} ms); check the sender's clock and sign each request fresh"
    )]
    Stale {
        /// now − timestamp, in ms (negative: from the future).
        age_ms: i64,
        /// Largest accepted age.
        max_age_ms: u64,
        /// Largest accepted clock lead of the sender.
        skew_ms: u64,
    },
    /// The signature does not verify for the sender's hotkey.
    #[error("the signature does not verify for hotkey {0}; sign the exact bytes sent with that hotkey")]
    BadSignature(AccountId),
    /// This (hotkey, nonce) was already accepted.
    #[error("the nonce from {0} was already used; use a fresh nonce for every request and retry")]
    Replayed(AccountId),
    /// The replay cache is full of live entries; the request is refused rather than risk a replay.
    #[error("too many recent authenticated requests; retry in a few seconds")]
    Busy,
    /// The request uses Epistula and this server accepts only btauth/1.
    #[error("Epistula requests are disabled on this server; sign with btauth/1")]
    SchemeDisabled,
}

impl AuthError {
    /// The HTTP status for this error: 401 for authentication failures, 403 for a request addressed to
    /// another server, 503 when the replay cache is full.
    pub const fn status(&self) -> u16 {
        match self {
            Self::WrongReceiver { .. } => 403,
            Self::Busy => 503,
            Self::Malformed(_)
            | Self::MissingReceiver(_)
            | Self::Stale { .. }
            | Self::BadSignature(_)
            | Self::Replayed(_)
            | Self::SchemeDisabled => 401,
        }
    }
}

/// An authenticated request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The scheme it used.
    pub scheme: Scheme,
    /// The sender's hotkey (authenticated; authorization is the server's next step).
    pub hotkey: AccountId,
    /// The request id a receipt binds to: the btauth nonce or the Epistula uuid, as sent.
    pub request_id: String,
    /// The receiver the request was bound to, if any.
    pub receiver: Option<AccountId>,
    /// The request timestamp in unix nanoseconds (Epistula's ms scaled).
    pub timestamp_ns: u64,
}

/// Verification settings.
#[derive(Debug, Clone)]
pub struct VerifierConfig {
    /// Largest accepted `now - nonce` (btauth default 10 s).
    pub max_age: Duration,
    /// Largest accepted `nonce - now` (btauth default 2 s).
    pub allowed_skew: Duration,
    /// Largest accepted Epistula age (atom's default 8 s).
    pub epistula_max_age: Duration,
    /// Refuse requests without a receiver (default true).
    pub require_receiver: bool,
    /// Accept Epistula V2 requests as well as btauth/1 (default true).
    pub accept_epistula: bool,
    /// Most (hotkey, nonce) pairs remembered at once (default 262,144).
    pub replay_capacity: usize,
}

impl Default for VerifierConfig {
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(10),
            allowed_skew: Duration::from_secs(2),
            epistula_max_age: Duration::from_secs(8),
            require_receiver: true,
            accept_epistula: true,
            replay_capacity: 262_144,
        }
    }
}

/// Verifies requests addressed to one server hotkey and remembers accepted nonces.
#[derive(Debug)]
pub struct Verifier {
    own: AccountId,
    config: VerifierConfig,
    replay: ReplayCache,
}

impl Verifier {
    /// A verifier for requests addressed to `own`.
    pub fn new(own: AccountId, config: VerifierConfig) -> Self {
        let window = config.max_age.max(config.epistula_max_age) + config.allowed_skew;
        // One extra second covers clock reads taken at slightly different moments.
        let replay = ReplayCache::new(window + Duration::from_secs(1), config.replay_capacity);
        Self { own, config, replay }
    }

    /// This server's hotkey.
    pub const fn own(&self) -> &AccountId {
        &self.own
    }

    /// The settings in force.
    pub const fn config(&self) -> &VerifierConfig {
        &self.config
    }

    /// Verifies a request (btauth/1 if `X-Bittensor-Version` is present, else Epistula V2) now and
    /// remembers its id. Every sender with a valid signature gets an entry in the replay cache: servers
    /// that answer only some senders use [`Self::verify_authorized`], which asks first.
    ///
    /// `target` is the request target exactly as sent: path plus `?query` if any.
    pub fn verify(
        &self,
        method: &str,
        target: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Verified, AuthError> {
        self.verify_at(method, target, headers, body, unix_nanos(), Instant::now())
    }

    /// [`Self::verify`] with an explicit wall clock (unix ns) and monotonic instant, for tests.
    pub fn verify_at(
        &self,
        method: &str,
        target: &str,
        headers: &HeaderMap,
        body: &[u8],
        now_ns: u64,
        now: Instant,
    ) -> Result<Verified, AuthError> {
        self.verify_authorized_at(method, target, headers, body, now_ns, now, |_| {
            Ok::<(), std::convert::Infallible>(())
        })
        .map(|(verified, ())| verified)
        .map_err(|refused| match refused {
            Refused::Auth(e) => e,
            Refused::Unauthorized { error, .. } => match error {},
        })
    }

    /// Verifies a request, then asks `authorize` about the authenticated sender, and only for a sender
    /// it accepts remembers the request id. A sender the server would refuse anyway (unregistered,
    /// without a permit) therefore never takes a place in the shared replay cache, so a flood of validly
    /// signed requests from throwaway keys cannot fill it and lock out the real validators.
    ///
    /// A refused sender's request is not remembered, so it may be sent again; it is refused again.
    pub fn verify_authorized<T, E>(
        &self,
        method: &str,
        target: &str,
        headers: &HeaderMap,
        body: &[u8],
        authorize: impl FnOnce(&Verified) -> Result<T, E>,
    ) -> Result<(Verified, T), Refused<E>> {
        self.verify_authorized_at(
            method,
            target,
            headers,
            body,
            unix_nanos(),
            Instant::now(),
            authorize,
        )
    }

    /// [`Self::verify_authorized`] with an explicit wall clock (unix ns) and monotonic instant.
    #[allow(clippy::too_many_arguments)]
    pub fn verify_authorized_at<T, E>(
        &self,
        method: &str,
        target: &str,
        headers: &HeaderMap,
        body: &[u8],
        now_ns: u64,
        now: Instant,
        authorize: impl FnOnce(&Verified) -> Result<T, E>,
    ) -> Result<(Verified, T), Refused<E>> {
        let verified = if headers.contains_key(btauth::H_VERSION) {
            btauth::verify(method, target, headers, body, &self.own, &self.config, now_ns)?
        } else if headers.contains_key(epistula::H_VERSION) {
            if !self.config.accept_epistula {
                return Err(AuthError::SchemeDisabled.into());
            }
            epistula::verify(headers, body, &self.own, &self.config, now_ns)?
        } else {
            return Err(
                AuthError::Malformed("no X-Bittensor-* (btauth/1) or Epistula-* headers".into()).into(),
            );
        };
        let granted = match authorize(&verified) {
            Ok(granted) => granted,
            Err(error) => return Err(Refused::Unauthorized { verified, error }),
        };
        let key = ReplayKey {
            scheme: verified.scheme.tag(),
            hotkey: verified.hotkey,
            id: verified.request_id.clone(),
        };
        match self.replay.insert_at(key, now) {
            InsertOutcome::Fresh => Ok((verified, granted)),
            InsertOutcome::Replayed => Err(AuthError::Replayed(verified.hotkey).into()),
            InsertOutcome::Full => Err(AuthError::Busy.into()),
        }
    }

    /// Live entries in the replay cache.
    pub fn remembered(&self) -> usize {
        self.replay.len()
    }
}

/// Why [`Verifier::verify_authorized`] refused a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused<E> {
    /// It did not authenticate (or was a replay, or the replay cache is full).
    Auth(AuthError),
    /// It authenticated, and the server's authorization refused the sender; nothing was remembered.
    Unauthorized {
        /// The authenticated request (a server may still sign its refusal for the sender).
        verified: Verified,
        /// What the authorization said.
        error: E,
    },
}

impl<E> From<AuthError> for Refused<E> {
    fn from(e: AuthError) -> Self {
        Self::Auth(e)
    }
}

/// Headers produced by [`RequestSigner`], plus the request id a receipt will bind to.
#[derive(Debug, Clone)]
pub struct SignedHeaders {
    /// Headers to add to the request.
    pub headers: HeaderMap,
    /// The nonce (btauth) or uuid (Epistula).
    pub request_id: String,
}

/// Signs outgoing requests with a hotkey.
#[derive(Debug)]
pub struct RequestSigner {
    key: Keypair,
    last_nonce: AtomicU64,
}

impl RequestSigner {
    /// A signer for `key`.
    pub const fn new(key: Keypair) -> Self {
        Self {
            key,
            last_nonce: AtomicU64::new(0),
        }
    }

    /// The signing hotkey.
    pub const fn key(&self) -> &Keypair {
        &self.key
    }

    /// A fresh nanosecond nonce, strictly increasing within this signer even if the clock stalls.
    pub fn next_nonce(&self) -> u64 {
        let now = unix_nanos();
        let mut prev = self.last_nonce.load(Ordering::Relaxed);
        loop {
            let next = now.max(prev + 1);
            match self
                .last_nonce
                .compare_exchange_weak(prev, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return next,
                Err(p) => prev = p,
            }
        }
    }

    /// `btauth/1` headers for one request (call again for every retry: each needs a fresh nonce).
    pub fn btauth(
        &self,
        method: &str,
        target: &str,
        body: &[u8],
        receiver: Option<&AccountId>,
    ) -> SignedHeaders {
        let nonce = self.next_nonce();
        btauth::sign(&self.key, method, target, body, nonce, receiver)
    }

    /// Epistula V2 headers for one request.
    pub fn epistula(&self, body: &[u8], receiver: Option<&AccountId>) -> SignedHeaders {
        let uuid = uuid::Uuid::new_v4().to_string();
        epistula::sign(&self.key, body, &uuid, unix_nanos() / 1_000_000, receiver)
    }
}

/// Wall-clock unix time in nanoseconds.
pub fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Lowercase hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Reads a header as a UTF-8 string; `None` if absent, `Malformed` if not visible ASCII.
pub(crate) fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, AuthError> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(|s| Some(s.trim()))
            .map_err(|_| AuthError::Malformed(format!("header {name} is not visible ASCII"))),
    }
}

pub(crate) fn required<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str, AuthError> {
    header(headers, name)?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| AuthError::Malformed(format!("header {name} is missing")))
}

pub(crate) fn parse_account(name: &str, value: &str) -> Result<AccountId, AuthError> {
    AccountId::from_ss58(value)
        .map_err(|_| AuthError::Malformed(format!("header {name} is not an SS58 address with prefix 42")))
}

pub(crate) fn parse_signature(name: &str, value: &str) -> Result<[u8; 64], AuthError> {
    let bad = || AuthError::Malformed(format!("header {name} is not 0x-prefixed hex of 64 bytes"));
    let hex_part = value.strip_prefix("0x").ok_or_else(bad)?;
    if hex_part.len() != 128 {
        return Err(bad());
    }
    let raw = hex::decode(hex_part).map_err(|_| bad())?;
    raw.try_into().map_err(|_| bad())
}

/// Checks `now - ts` against the allowed window; times in ns.
pub(crate) fn check_fresh(
    ts_ns: u64,
    now_ns: u64,
    max_age: Duration,
    skew: Duration,
) -> Result<(), AuthError> {
    let age = i128::from(now_ns) - i128::from(ts_ns);
    let max_age_ns = i128::try_from(max_age.as_nanos()).unwrap_or(i128::MAX);
    let skew_ns = i128::try_from(skew.as_nanos()).unwrap_or(i128::MAX);
    if age > max_age_ns || -age > skew_ns {
        let age_ms = i64::try_from(age / 1_000_000).unwrap_or(if age > 0 { i64::MAX } else { i64::MIN });
        return Err(AuthError::Stale {
            age_ms,
            max_age_ms: u64::try_from(max_age.as_millis()).unwrap_or(u64::MAX),
            skew_ms: u64::try_from(skew.as_millis()).unwrap_or(u64::MAX),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_authentication_to_401_and_misaddressing_to_403() {
        let a = AccountId([1; 32]);
        assert_eq!(AuthError::Malformed("x".into()).status(), 401);
        assert_eq!(AuthError::BadSignature(a).status(), 401);
        assert_eq!(AuthError::Replayed(a).status(), 401);
        assert_eq!(
            AuthError::Stale {
                age_ms: 1,
                max_age_ms: 0,
                skew_ms: 0
            }
            .status(),
            401
        );
        assert_eq!(AuthError::WrongReceiver { expected: a, got: a }.status(), 403);
        assert_eq!(AuthError::Busy.status(), 503);
    }

    /// Senders the server refuses never enter the replay cache: a flood of validly signed requests from
    /// unknown keys leaves it empty, and the known sender still gets in.
    #[test]
    fn refused_senders_take_no_place_in_the_replay_cache() {
        let miner = Keypair::from_uri("//Miner").unwrap();
        let validator = Keypair::from_uri("//Alice").unwrap();
        let verifier = Verifier::new(
            miner.account(),
            VerifierConfig {
                replay_capacity: 4,
                ..VerifierConfig::default()
            },
        );
        let known = |v: &Verified| {
            if v.hotkey == validator.account() {
                Ok(7u64)
            } else {
                Err("unknown_hotkey")
            }
        };
        for i in 0..16 {
            let throwaway = Keypair::from_uri(&format!("//Throwaway{i}")).unwrap();
            let signed =
                RequestSigner::new(throwaway.clone()).btauth("POST", "/p", b"x", Some(&miner.account()));
            let refused = verifier
                .verify_authorized("POST", "/p", &signed.headers, b"x", known)
                .unwrap_err();
            assert!(
                matches!(&refused, Refused::Unauthorized { verified, error: "unknown_hotkey" } if verified.hotkey == throwaway.account()),
                "{refused:?}"
            );
        }
        assert_eq!(verifier.remembered(), 0);
        let signer = RequestSigner::new(validator.clone());
        for _ in 0..4 {
            let signed = signer.btauth("POST", "/p", b"x", Some(&miner.account()));
            let (verified, stake) = verifier
                .verify_authorized("POST", "/p", &signed.headers, b"x", known)
                .unwrap();
            assert_eq!((verified.hotkey, stake), (validator.account(), 7));
        }
        assert_eq!(verifier.remembered(), 4);
        // Only the known sender's own traffic can fill the cache.
        let signed = signer.btauth("POST", "/p", b"x", Some(&miner.account()));
        assert!(matches!(
            verifier.verify_authorized("POST", "/p", &signed.headers, b"x", known),
            Err(Refused::Auth(AuthError::Busy))
        ));
    }

    #[test]
    fn nonces_strictly_increase() {
        let s = RequestSigner::new(Keypair::from_uri("//Alice").unwrap());
        let mut prev = 0;
        for _ in 0..1000 {
            let n = s.next_nonce();
            assert!(n > prev);
            prev = n;
        }
    }

    #[test]
    fn freshness_window_edges() {
        let max = Duration::from_secs(10);
        let skew = Duration::from_secs(2);
        let now = 100_000_000_000_u64;
        assert!(check_fresh(now - 10_000_000_000, now, max, skew).is_ok());
        assert!(check_fresh(now - 10_000_000_001, now, max, skew).is_err());
        assert!(check_fresh(now + 2_000_000_000, now, max, skew).is_ok());
        assert!(check_fresh(now + 2_000_000_001, now, max, skew).is_err());
    }
}
