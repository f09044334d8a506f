//! sr25519 keys and SS58 addresses (prefix 42), the identity of every miner and validator.
//!
//! [`Keypair`] wraps `sp_core::sr25519::Pair`, so signatures use the Substrate signing context
//! (`b"substrate"`) exactly as Bittensor's Python SDK, btcli and the chain itself do. [`AccountId`] is the
//! 32-byte public key, printed and parsed as an SS58 address with the Bittensor prefix 42.
//!
//! ```
//! use chain::keys::{AccountId, Keypair};
//!
//! let alice = Keypair::from_uri("//Alice").unwrap();
//! assert_eq!(alice.account().to_string(), "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY");
//! let sig = alice.sign(b"hello");
//! assert!(alice.account().verify(b"hello", &sig));
//! let parsed: AccountId = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY".parse().unwrap();
//! assert_eq!(parsed, alice.account());
//! ```

use std::fmt;
use std::str::FromStr;

use sp_core::crypto::{Ss58AddressFormat, Ss58Codec};
use sp_core::{Pair as _, ed25519, sr25519};

/// The SS58 address prefix of every Bittensor network (subtensor `SS58Prefix`).
pub const SS58_PREFIX: u16 = 42;

/// A 32-byte account id (an sr25519 public key), shown as an SS58 address with prefix 42.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId(pub [u8; 32]);

/// Why a string is not a usable SS58 address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// The string does not decode as SS58 (bad base58, checksum or length).
    #[error("`{0}` is not a valid SS58 address; copy the address again from `wallet show` or btcli")]
    Invalid(String),
    /// The address is valid SS58 but for another network prefix.
    #[error("address `{address}` uses SS58 prefix {prefix}, Bittensor uses 42; re-encode it for prefix 42")]
    WrongPrefix {
        /// The address as given.
        address: String,
        /// Its prefix.
        prefix: u16,
    },
}

impl AccountId {
    /// The raw 32 public-key bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The SS58 address (prefix 42).
    pub fn to_ss58(&self) -> String {
        sr25519::Public::from_raw(self.0).to_ss58check_with_version(Ss58AddressFormat::custom(SS58_PREFIX))
    }

    /// Parses an SS58 address; only prefix 42 is accepted.
    pub fn from_ss58(s: &str) -> Result<Self, AddressError> {
        let (public, format) = sr25519::Public::from_ss58check_with_version(s)
            .map_err(|_| AddressError::Invalid(truncate(s, 64)))?;
        let prefix = u16::from(format);
        if prefix != SS58_PREFIX {
            return Err(AddressError::WrongPrefix {
                address: s.to_owned(),
                prefix,
            });
        }
        Ok(Self(public.0))
    }

    /// Parses `0x`-prefixed (or bare) hex of 32 bytes.
    pub fn from_hex(s: &str) -> Option<Self> {
        let raw = hex::decode(s.strip_prefix("0x").unwrap_or(s)).ok()?;
        Some(Self(raw.try_into().ok()?))
    }

    /// Verifies an sr25519 signature (Substrate signing context) by this account over `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        let sig = sr25519::Signature::from_raw(*signature);
        sr25519::Pair::verify(&sig, message, &sr25519::Public::from_raw(self.0))
    }

    /// Verifies an ed25519 signature by this account's key read as an ed25519 public key.
    pub fn verify_ed25519(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        let sig = ed25519::Signature::from_raw(*signature);
        ed25519::Pair::verify(&sig, message, &ed25519::Public::from_raw(self.0))
    }
}

pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_ss58())
    }
}

impl fmt::Debug for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccountId({})", self.to_ss58())
    }
}

impl FromStr for AccountId {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_ss58(s)
    }
}

impl serde::Serialize for AccountId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_ss58())
    }
}

impl<'de> serde::Deserialize<'de> for AccountId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::from_ss58(&s).map_err(serde::de::Error::custom)
    }
}

/// Why key material could not be turned into a keypair.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The mnemonic is not a valid BIP-39 phrase.
    #[error("the secret phrase is not a valid BIP-39 mnemonic; check the words and their order")]
    BadPhrase,
    /// The seed has the wrong length or is not a valid secret key.
    #[error("the secret seed must be 32 bytes (or a 64-byte sr25519 secret key); got {0} bytes")]
    BadSeed(usize),
    /// A secret URI such as `//Alice` could not be parsed.
    #[error("the secret URI is not valid; use a mnemonic, a 0x-hex seed or a dev path like //Alice")]
    BadUri,
}

/// An sr25519 keypair (a hotkey or coldkey). `Debug` shows only the public address.
#[derive(Clone)]
pub struct Keypair {
    pair: sr25519::Pair,
}

impl Keypair {
    /// From a 32-byte mini-secret ("secretSeed" in btcli keyfiles).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self {
            pair: sr25519::Pair::from_seed(seed),
        }
    }

    /// From a 32-byte mini-secret or a 64-byte expanded secret key ("privateKey" in btcli keyfiles).
    pub fn from_seed_slice(seed: &[u8]) -> Result<Self, KeyError> {
        sr25519::Pair::from_seed_slice(seed)
            .map(|pair| Self { pair })
            .map_err(|_| KeyError::BadSeed(seed.len()))
    }

    /// From a BIP-39 mnemonic without a password, as btcli derives it. Returns the keypair and its seed.
    pub fn from_phrase(phrase: &str) -> Result<(Self, [u8; 32]), KeyError> {
        let (pair, seed) = sr25519::Pair::from_phrase(phrase, None).map_err(|_| KeyError::BadPhrase)?;
        Ok((Self { pair }, seed))
    }

    /// From a Substrate secret URI (`//Alice`, `<mnemonic>//hard/soft`, `0x<seed>`).
    pub fn from_uri(uri: &str) -> Result<Self, KeyError> {
        sr25519::Pair::from_string(uri, None)
            .map(|pair| Self { pair })
            .map_err(|_| KeyError::BadUri)
    }

    /// A fresh random keypair with its 12-word mnemonic and seed.
    pub fn generate() -> (Self, String, [u8; 32]) {
        let (pair, phrase, seed) = sr25519::Pair::generate_with_phrase(None);
        (Self { pair }, phrase, seed)
    }

    /// The public account id.
    pub fn account(&self) -> AccountId {
        AccountId(self.pair.public().0)
    }

    /// The SS58 address (prefix 42).
    pub fn ss58(&self) -> String {
        self.account().to_ss58()
    }

    /// Signs `message` with the Substrate signing context.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.pair.sign(message).0
    }

    /// The 64-byte expanded secret key (btcli's "privateKey").
    pub fn secret_key_bytes(&self) -> [u8; 64] {
        let raw = self.pair.to_raw_vec();
        let mut out = [0u8; 64];
        out.copy_from_slice(&raw);
        out
    }

    /// The underlying `sp_core` pair, for code that signs extrinsics.
    pub const fn as_pair(&self) -> &sr25519::Pair {
        &self.pair
    }
}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Keypair({})", self.ss58())
    }
}

/// Signs extrinsics for subxt's `SubstrateConfig` (the stock config signs subtensor transactions
/// correctly: its custom extensions are zero-sized and skipped).
impl subxt::tx::Signer<subxt::SubstrateConfig> for Keypair {
    fn account_id(&self) -> subxt::utils::AccountId32 {
        subxt::utils::AccountId32(self.account().0)
    }

    fn sign(&self, signer_payload: &[u8]) -> subxt::utils::MultiSignature {
        subxt::utils::MultiSignature::Sr25519(Self::sign(self, signer_payload))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alice_has_the_well_known_address() {
        let alice = Keypair::from_uri("//Alice").unwrap();
        assert_eq!(alice.ss58(), "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY");
        assert_eq!(
            hex::encode(alice.account().0),
            "d43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d"
        );
    }

    #[test]
    fn signatures_verify_only_for_the_signed_message_and_key() {
        let a = Keypair::from_uri("//Alice").unwrap();
        let b = Keypair::from_uri("//Bob").unwrap();
        let sig = a.sign(b"payload");
        assert!(a.account().verify(b"payload", &sig));
        assert!(!a.account().verify(b"payloaD", &sig));
        assert!(!b.account().verify(b"payload", &sig));
    }

    #[test]
    fn other_prefixes_and_garbage_are_rejected() {
        // Alice on Polkadot (prefix 0).
        let err = AccountId::from_ss58("15oF4uVJwmo4TdGW7VfQxNLavjCXviqxT9S1MgbjMNHr6Sp5").unwrap_err();
        assert!(
            matches!(err, AddressError::WrongPrefix { prefix: 0, .. }),
            "{err}"
        );
        assert!(matches!(
            AccountId::from_ss58("hello"),
            Err(AddressError::Invalid(_))
        ));
    }

    #[test]
    fn expanded_secret_round_trips() {
        let (k, _, _) = Keypair::generate();
        let k2 = Keypair::from_seed_slice(&k.secret_key_bytes()).unwrap();
        assert_eq!(k.account(), k2.account());
        assert_eq!(
            Keypair::from_seed_slice(&[1u8; 31]).unwrap_err(),
            KeyError::BadSeed(31)
        );
    }
}
