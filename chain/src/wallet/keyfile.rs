//! btcli keyfiles: the JSON fields, NaCl (`$NACL`) encryption, and btwallet's password environment
//! variables.
//!
//! JSON (every field optional; `bittensor-wallet` 4.x writes `cryptoType: 1` too):
//! `accountId`, `publicKey` (`0x` + 32-byte hex), `privateKey` (`0x` + 64-byte sr25519 secret),
//! `secretPhrase` (BIP-39), `secretSeed` (`0x` + 32-byte mini-secret), `ss58Address`.
//! A secret is loaded from `secretPhrase`, else `secretSeed`, else `privateKey` (btwallet's order).
//!
//! Encrypted files are `b"$NACL" ‖ nonce(24) ‖ XSalsa20-Poly1305 secretbox(json)` with the key from
//! Argon2i v1.3 over the password, btwallet's fixed salt, and libsodium's `OPSLIMIT_SENSITIVE` (8 passes)
//! and `MEMLIMIT_SENSITIVE` (512 MiB): deriving a key takes seconds and 512 MiB of memory by design.

use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine as _;
use crypto_secretbox::aead::{Aead, AeadCore, KeyInit, OsRng};
use crypto_secretbox::{Key, Nonce, XSalsa20Poly1305};
use serde::{Deserialize, Serialize};

use crate::keys::{AccountId, Keypair};

/// The prefix of NaCl-encrypted keyfiles.
pub const NACL_PREFIX: &[u8] = b"$NACL";
/// btwallet's fixed Argon2i salt (`NACL_SALT`).
pub const NACL_SALT: [u8; 16] = *b"\x13q\x83\xdf\xf1Z\t\xbc\x9c\x90\xb5Q\x879\xe9\xb1";
/// libsodium `crypto_pwhash_argon2i_OPSLIMIT_SENSITIVE`.
pub const OPSLIMIT_SENSITIVE: u32 = 8;
/// libsodium `crypto_pwhash_argon2i_MEMLIMIT_SENSITIVE`, in bytes.
pub const MEMLIMIT_SENSITIVE: usize = 536_870_912;

/// The key-derivation cost. Files for btcli must use [`KdfCost::SENSITIVE`]; a cheaper cost exists
/// only so unit tests of the encryption logic stay fast (btcli could not read such files).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfCost {
    /// Argon2 passes.
    pub ops: u32,
    /// Memory in bytes.
    pub mem_bytes: usize,
}

impl KdfCost {
    /// What btcli and libsodium use: 8 passes over 512 MiB.
    pub const SENSITIVE: Self = Self {
        ops: OPSLIMIT_SENSITIVE,
        mem_bytes: MEMLIMIT_SENSITIVE,
    };
}

/// The JSON inside a keyfile.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyfileData {
    /// `0x` + hex public key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// `0x` + hex public key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// `0x` + hex of the 64-byte sr25519 secret key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key: Option<String>,
    /// BIP-39 mnemonic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_phrase: Option<String>,
    /// `0x` + hex of the 32-byte mini-secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_seed: Option<String>,
    /// The SS58 address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ss58_address: Option<String>,
    /// 1 = sr25519.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crypto_type: Option<u8>,
}

/// Why keyfile bytes could not be used (the caller adds the path).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyfileError {
    /// Not JSON of the expected shape.
    #[error(
        "is not a valid keyfile ({0}); restore it from its mnemonic (btcli wallet regen_coldkey / regen_hotkey)"
    )]
    Malformed(String),
    /// Encrypted with a format we do not read.
    #[error(
        "is encrypted with the legacy {0} format; re-encrypt it with a current btcli (`btcli wallet update`), which writes $NACL"
    )]
    Legacy(&'static str),
    /// The password does not decrypt it.
    #[error(
        "could not be decrypted: wrong password; retype it, or fix TENSORPROOF_COLDKEY_PASSWORD / the BT_PW_* variable"
    )]
    WrongPassword,
    /// The derived address differs from the one stored in the file.
    #[error(
        "holds ss58Address {stored} but its secret derives {derived}; the file was edited or corrupted, restore it from your mnemonic"
    )]
    Ss58Mismatch {
        /// Address in the file.
        stored: String,
        /// Address derived from the secret.
        derived: String,
    },
    /// The file holds only a public key.
    #[error("holds only a public key; this command needs the secret key file")]
    PublicOnly,
    /// The KDF could not run (e.g. not enough memory).
    #[error("key derivation failed ({0}); Argon2 needs 512 MiB of free memory")]
    Kdf(String),
}

/// What a keyfile's bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Plain JSON.
    Plain,
    /// `$NACL` encrypted.
    Nacl,
    /// `$ANSIBLE_VAULT` (legacy, unsupported).
    AnsibleVault,
    /// Fernet `gAAAAA` (legacy, unsupported).
    Fernet,
}

/// Classifies keyfile bytes.
pub fn encoding(bytes: &[u8]) -> Encoding {
    if bytes.starts_with(NACL_PREFIX) {
        Encoding::Nacl
    } else if bytes.starts_with(b"$ANSIBLE_VAULT") {
        Encoding::AnsibleVault
    } else if bytes.starts_with(b"gAAAAA") {
        Encoding::Fernet
    } else {
        Encoding::Plain
    }
}

fn derive_key(password: &[u8], cost: KdfCost) -> Result<Key, KeyfileError> {
    let m_kib = u32::try_from(cost.mem_bytes / 1024).map_err(|e| KeyfileError::Kdf(e.to_string()))?;
    let params = Params::new(m_kib, cost.ops, 1, Some(32)).map_err(|e| KeyfileError::Kdf(e.to_string()))?;
    let mut key = Key::default();
    Argon2::new(Algorithm::Argon2i, Version::V0x13, params)
        .hash_password_into(password, &NACL_SALT, &mut key)
        .map_err(|e| KeyfileError::Kdf(e.to_string()))?;
    Ok(key)
}

/// Encrypts keyfile bytes in btcli's `$NACL` format.
pub fn encrypt(plain: &[u8], password: &str, cost: KdfCost) -> Result<Vec<u8>, KeyfileError> {
    let cipher = XSalsa20Poly1305::new(&derive_key(password.as_bytes(), cost)?);
    let nonce = XSalsa20Poly1305::generate_nonce(&mut OsRng);
    let sealed = cipher
        .encrypt(&nonce, plain)
        .map_err(|_| KeyfileError::Kdf("encryption failed".into()))?;
    let mut out = Vec::with_capacity(NACL_PREFIX.len() + nonce.len() + sealed.len());
    out.extend_from_slice(NACL_PREFIX);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// Decrypts `$NACL` keyfile bytes.
pub fn decrypt(bytes: &[u8], password: &str, cost: KdfCost) -> Result<Vec<u8>, KeyfileError> {
    let rest = bytes
        .strip_prefix(NACL_PREFIX)
        .ok_or_else(|| KeyfileError::Malformed("missing $NACL prefix".into()))?;
    if rest.len() < 24 + 16 {
        return Err(KeyfileError::Malformed("encrypted data is truncated".into()));
    }
    let (nonce, sealed) = rest.split_at(24);
    let cipher = XSalsa20Poly1305::new(&derive_key(password.as_bytes(), cost)?);
    cipher
        .decrypt(Nonce::from_slice(nonce), sealed)
        .map_err(|_| KeyfileError::WrongPassword)
}

fn parse_hex<const N: usize>(field: &str, value: &str) -> Result<[u8; N], KeyfileError> {
    let raw = hex::decode(value.strip_prefix("0x").unwrap_or(value))
        .map_err(|_| KeyfileError::Malformed(format!("{field} is not hex")))?;
    raw.try_into()
        .map_err(|_| KeyfileError::Malformed(format!("{field} must be {N} bytes")))
}

impl KeyfileData {
    /// Parses plain keyfile JSON.
    pub fn from_json(bytes: &[u8]) -> Result<Self, KeyfileError> {
        serde_json::from_slice(bytes).map_err(|e| KeyfileError::Malformed(e.to_string()))
    }

    /// The JSON bytes.
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing a struct of strings cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// A full keyfile for a keypair; `phrase`/`seed` are included when known.
    pub fn from_keypair(key: &Keypair, phrase: Option<&str>, seed: Option<&[u8; 32]>) -> Self {
        let public = format!("0x{}", hex::encode(key.account().0));
        Self {
            account_id: Some(public.clone()),
            public_key: Some(public),
            private_key: Some(format!("0x{}", hex::encode(key.secret_key_bytes()))),
            secret_phrase: phrase.map(str::to_owned),
            secret_seed: seed.map(|s| format!("0x{}", hex::encode(s))),
            ss58_address: Some(key.ss58()),
            crypto_type: Some(1),
        }
    }

    /// The public-only file (`coldkeypub.txt`, `hotkeys/<name>pub.txt`).
    pub fn public_only(account: &AccountId) -> Self {
        let public = format!("0x{}", hex::encode(account.0));
        Self {
            account_id: Some(public.clone()),
            public_key: Some(public),
            ss58_address: Some(account.to_ss58()),
            crypto_type: Some(1),
            ..Self::default()
        }
    }

    /// The secret keypair, in btwallet's priority order, checked against `ss58Address` when present.
    pub fn keypair(&self) -> Result<Keypair, KeyfileError> {
        let key = if let Some(phrase) = &self.secret_phrase {
            Keypair::from_phrase(phrase)
                .map_err(|e| KeyfileError::Malformed(e.to_string()))?
                .0
        } else if let Some(seed) = &self.secret_seed {
            Keypair::from_seed(&parse_hex::<32>("secretSeed", seed)?)
        } else if let Some(private) = &self.private_key {
            Keypair::from_seed_slice(&parse_hex::<64>("privateKey", private)?)
                .map_err(|e| KeyfileError::Malformed(e.to_string()))?
        } else {
            return Err(KeyfileError::PublicOnly);
        };
        self.check_address(&key.account())?;
        Ok(key)
    }

    /// The public account: from `ss58Address`, else `publicKey`/`accountId`, else the secret.
    pub fn account(&self) -> Result<AccountId, KeyfileError> {
        if let Some(ss58) = &self.ss58_address {
            let account = AccountId::from_ss58(ss58).map_err(|e| KeyfileError::Malformed(e.to_string()))?;
            if let Some(pk) = self.public_key.as_ref().or(self.account_id.as_ref()) {
                let pk = AccountId(parse_hex::<32>("publicKey", pk)?);
                if pk != account {
                    return Err(KeyfileError::Ss58Mismatch {
                        stored: ss58.clone(),
                        derived: pk.to_ss58(),
                    });
                }
            }
            return Ok(account);
        }
        if let Some(pk) = self.public_key.as_ref().or(self.account_id.as_ref()) {
            return Ok(AccountId(parse_hex::<32>("publicKey", pk)?));
        }
        Ok(self.keypair()?.account())
    }

    fn check_address(&self, derived: &AccountId) -> Result<(), KeyfileError> {
        if let Some(stored) = &self.ss58_address
            && *stored != derived.to_ss58()
        {
            return Err(KeyfileError::Ss58Mismatch {
                stored: stored.clone(),
                derived: derived.to_ss58(),
            });
        }
        if let Some(pk) = self.public_key.as_ref().or(self.account_id.as_ref()) {
            let pk = AccountId(parse_hex::<32>("publicKey", pk)?);
            if pk != *derived {
                return Err(KeyfileError::Ss58Mismatch {
                    stored: pk.to_ss58(),
                    derived: derived.to_ss58(),
                });
            }
        }
        Ok(())
    }
}

/// btwallet's password environment variable for a keyfile path: `BT_PW_` + the path with `/` and `.`
/// replaced by `_`, upper-cased.
pub fn password_env_name(path: &str) -> String {
    format!("BT_PW_{}", path.replace(['/', '.'], "_").to_uppercase())
}

/// Decodes a `BT_PW_*` value: base64 of the password XOR-ed with the variable's name (repeated).
pub fn decode_env_password(env_name: &str, value: &str) -> Option<String> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .ok()?;
    let key = env_name.as_bytes();
    if key.is_empty() {
        return None;
    }
    let plain: Vec<u8> = raw
        .iter()
        .enumerate()
        .map(|(i, b)| b ^ key[i % key.len()])
        .collect();
    String::from_utf8(plain).ok()
}

/// Encodes a password the way btwallet's `save_password_to_env` does.
pub fn encode_env_password(env_name: &str, password: &str) -> String {
    let key = env_name.as_bytes();
    let mixed: Vec<u8> = password
        .bytes()
        .enumerate()
        .map(|(i, b)| b ^ key[i % key.len().max(1)])
        .collect();
    base64::engine::general_purpose::STANDARD.encode(mixed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHEAP: KdfCost = KdfCost {
        ops: 1,
        mem_bytes: 64 * 1024,
    };

    #[test]
    fn nacl_round_trip_and_wrong_password() {
        let sealed = encrypt(b"{\"a\":1}", "pw", CHEAP).unwrap();
        assert!(sealed.starts_with(NACL_PREFIX));
        assert_eq!(sealed.len(), 5 + 24 + 16 + 7);
        assert_eq!(decrypt(&sealed, "pw", CHEAP).unwrap(), b"{\"a\":1}");
        assert_eq!(decrypt(&sealed, "pW", CHEAP), Err(KeyfileError::WrongPassword));
        assert!(matches!(
            decrypt(&sealed[..30], "pw", CHEAP),
            Err(KeyfileError::Malformed(_))
        ));
    }

    #[test]
    fn env_password_matches_btwallet() {
        // Value printed by bittensor-wallet 4.1.1's `Keyfile.save_password_to_env("tensorproof-test-pw")`
        // for the keyfile path /tmp/btw/fixture/coldkey.
        let name = password_env_name("/tmp/btw/fixture/coldkey");
        assert_eq!(name, "BT_PW__TMP_BTW_FIXTURE_COLDKEY");
        assert_eq!(
            encode_env_password(&name, "tensorproof-test-pw"),
            "NjExIzgtLyYiPzlvIDIsMmQoIw=="
        );
        assert_eq!(
            decode_env_password(&name, "NjExIzgtLyYiPzlvIDIsMmQoIw==").as_deref(),
            Some("tensorproof-test-pw")
        );
    }

    #[test]
    fn secret_priority_and_address_check() {
        let (k, phrase, seed) = Keypair::generate();
        let full = KeyfileData::from_keypair(&k, Some(&phrase), Some(&seed));
        assert_eq!(full.keypair().unwrap().account(), k.account());
        let mut only_private = full.clone();
        only_private.secret_phrase = None;
        only_private.secret_seed = None;
        assert_eq!(only_private.keypair().unwrap().account(), k.account());
        let mut tampered = full;
        tampered.ss58_address = Some(Keypair::from_uri("//Bob").unwrap().ss58());
        assert!(matches!(
            tampered.keypair(),
            Err(KeyfileError::Ss58Mismatch { .. })
        ));
        let public = KeyfileData::public_only(&k.account());
        assert_eq!(public.keypair().unwrap_err(), KeyfileError::PublicOnly);
        assert_eq!(public.account().unwrap(), k.account());
        assert_eq!(encoding(b"gAAAAAxyz"), Encoding::Fernet);
        assert_eq!(encoding(b"{}"), Encoding::Plain);
    }
}
