//! The MEV shield: subtensor's `MevShield` pallet (index 30 as on finney) and the block author's
//! side of it, so that a client which encrypts its extrinsic to the chain's key (the Bittensor SDK
//! always does for `BurnedRegister`) is served as on finney.
//!
//! * Every block the node announces a fresh ML-KEM-768 key pair ([`ShieldKeys::announce`]) and
//!   rotates the storage as subtensor's `announce_next_key` inherent does: `CurrentKey ← PendingKey`,
//!   `PendingKey ← NextKey`, `NextKey ←` the new encapsulation key, `PendingKeyExpiresAt = now + 2`,
//!   `NextKeyExpiresAt = now + 3`. The devnet has one author, so the key it announces is the one
//!   users encrypt to at once (on finney, `NextKey` is the key of the author two blocks ahead).
//! * A client reads `NextKey`, signs its extrinsic (at the nonce after the carrier's), encrypts the
//!   signed extrinsic's bytes and submits them in `submit_encrypted(ciphertext)`:
//!   `ciphertext = twox128(NextKey)(16) ‖ kem_len(u16 LE) ‖ kem_ct ‖ nonce(24) ‖ aead_ct`, the AEAD
//!   being XChaCha20-Poly1305 keyed with the ML-KEM shared secret, no associated data.
//! * `submit_encrypted` only records `EncryptedSubmitted { id, who }` (`id` = hash of
//!   `(who, ciphertext)`); the block author ([`crate::node::Chain::produce_block`]) decrypts it
//!   with the secret key of a key it announced and includes the inner extrinsic right after its
//!   carrier, in the same block, as a regular signed extrinsic (its own signer, nonce, fee and
//!   events). A ciphertext that does not parse is refused in the pool (`CheckShieldedTxValidity`,
//!   `Custom(23)`); one to an unknown key, tampered, or whose inner extrinsic is invalid (a replay
//!   is stale by its nonce) leaves only the carrier in the block.
//!
//! Simplified: the author accepts ciphertexts to any of the last [`KEPT_KEYS`] keys it announced
//! (finney: only the key announced for its slot), since a 50 ms devnet block can pass before the
//! client's carrier lands; `AuthorKeys`, `HasMigrationRun` and the `store_encrypted` queue of later
//! subtensor versions are not served.

use std::collections::VecDeque;

use chacha20poly1305::{
    KeyInit, XChaCha20Poly1305, XNonce,
    aead::{Aead, Payload},
};
use ml_kem::{
    Ciphertext, EncodedSizeUser, KemCore, MlKem768, MlKem768Params,
    kem::{Decapsulate, DecapsulationKey, Encapsulate, EncapsulationKey},
};
use polkadot_sdk::sp_io::hashing::twox_128;

pub use pallet::*;

/// Length of an ML-KEM-768 encapsulation (public) key.
pub const MLKEM768_ENC_KEY_LEN: usize = 1184;
/// Length of an ML-KEM-768 ciphertext.
pub const MLKEM768_CT_LEN: usize = 1088;
/// Length of the key hash that starts a shielded ciphertext (`twox128` of the key).
pub const KEY_HASH_LEN: usize = 16;
/// Length of the XChaCha20-Poly1305 nonce.
pub const NONCE_LEN: usize = 24;
/// Largest `submit_encrypted` ciphertext (bytes), as on finney (the call's `ConstU32<8192>` bound).
pub const MAX_CIPHERTEXT_LEN: u32 = 8192;
/// How many announced keys the author can still decrypt to (the newest first).
pub const KEPT_KEYS: usize = 16;

#[polkadot_sdk::frame_support::pallet]
#[allow(missing_debug_implementations)]
pub mod pallet {
    use polkadot_sdk::frame_support::pallet_prelude::*;
    use polkadot_sdk::frame_system::pallet_prelude::*;
    use polkadot_sdk::sp_runtime::traits::Hash;

    /// An ML-KEM-768 encapsulation key as stored (subtensor's `ShieldEncKey`).
    pub type ShieldEncKey = BoundedVec<u8, ConstU32<2048>>;

    /// The pallet.
    #[pallet::pallet]
    pub struct Pallet<T>(_);

    /// Configuration.
    #[pallet::config]
    pub trait Config: polkadot_sdk::frame_system::Config {}

    /// The key the current block's author decrypts with (internal, not for encryption).
    #[pallet::storage]
    pub type CurrentKey<T> = StorageValue<_, ShieldEncKey, OptionQuery>;

    /// The key staged before it becomes `CurrentKey`.
    #[pallet::storage]
    pub type PendingKey<T> = StorageValue<_, ShieldEncKey, OptionQuery>;

    /// The key users encrypt to.
    #[pallet::storage]
    pub type NextKey<T> = StorageValue<_, ShieldEncKey, OptionQuery>;

    /// Block number at which `PendingKey` is no longer valid (exclusive).
    #[pallet::storage]
    pub type PendingKeyExpiresAt<T: Config> = StorageValue<_, BlockNumberFor<T>, OptionQuery>;

    /// Block number at which `NextKey` is no longer valid (exclusive).
    #[pallet::storage]
    pub type NextKeyExpiresAt<T: Config> = StorageValue<_, BlockNumberFor<T>, OptionQuery>;

    /// Events.
    #[pallet::event]
    #[pallet::generate_deposit(pub(super) fn deposit_event)]
    pub enum Event<T: Config> {
        /// Encrypted wrapper accepted.
        EncryptedSubmitted {
            /// Hash of `(who, ciphertext)`.
            id: T::Hash,
            /// The carrier's signer.
            who: T::AccountId,
        },
    }

    /// Errors.
    #[pallet::error]
    pub enum Error<T> {
        /// The announced ML-KEM encapsulation key length is invalid.
        BadEncKeyLen,
        /// Unreachable.
        Unreachable,
    }

    #[pallet::call]
    impl<T: Config> Pallet<T> {
        /// Rotate the keys and announce the author's encapsulation key (an inherent on finney; the
        /// devnet's node applies the same rotation itself when it builds a block).
        #[pallet::call_index(0)]
        #[pallet::weight((Weight::from_parts(10_000_000, 0), DispatchClass::Mandatory))]
        pub fn announce_next_key(origin: OriginFor<T>, enc_key: Option<ShieldEncKey>) -> DispatchResult {
            ensure_none(origin)?;
            Self::rotate(enc_key)
        }

        /// Submit an encrypted extrinsic (see the module documentation for the layout).
        #[pallet::call_index(1)]
        #[pallet::weight(Weight::from_parts(20_000_000, 0))]
        pub fn submit_encrypted(
            origin: OriginFor<T>,
            ciphertext: BoundedVec<u8, ConstU32<8192>>,
        ) -> DispatchResult {
            let who = ensure_signed(origin)?;
            let id = T::Hashing::hash_of(&(who.clone(), &ciphertext));
            Self::deposit_event(Event::EncryptedSubmitted { id, who });
            Ok(())
        }
    }

    impl<T: Config> Pallet<T> {
        /// `announce_next_key`'s rotation with the devnet's single author: the announced key
        /// becomes `NextKey` at once.
        pub fn rotate(enc_key: Option<ShieldEncKey>) -> DispatchResult {
            if let Some(key) = &enc_key {
                ensure!(key.len() == super::MLKEM768_ENC_KEY_LEN, Error::<T>::BadEncKeyLen);
            }
            let now = polkadot_sdk::frame_system::Pallet::<T>::block_number();
            match PendingKey::<T>::take() {
                Some(k) => CurrentKey::<T>::put(k),
                None => CurrentKey::<T>::kill(),
            }
            match NextKey::<T>::take() {
                Some(k) => PendingKey::<T>::put(k),
                None => PendingKey::<T>::kill(),
            }
            match enc_key {
                Some(k) => NextKey::<T>::put(k),
                None => NextKey::<T>::kill(),
            }
            if PendingKey::<T>::exists() {
                PendingKeyExpiresAt::<T>::put(now + 2u32.into());
            } else {
                PendingKeyExpiresAt::<T>::kill();
            }
            if NextKey::<T>::exists() {
                NextKeyExpiresAt::<T>::put(now + 3u32.into());
            } else {
                NextKeyExpiresAt::<T>::kill();
            }
            Ok(())
        }
    }
}

/// A `submit_encrypted` ciphertext split into its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShieldedParts<'a> {
    /// `twox128` of the encapsulation key it was made for.
    pub key_hash: [u8; KEY_HASH_LEN],
    /// The ML-KEM ciphertext.
    pub kem_ct: &'a [u8],
    /// The XChaCha20-Poly1305 nonce.
    pub nonce: [u8; NONCE_LEN],
    /// The AEAD ciphertext (with its tag).
    pub aead_ct: &'a [u8],
}

/// Split `ciphertext` (`key_hash(16) ‖ kem_len(u16 LE) ‖ kem_ct ‖ nonce(24) ‖ aead_ct`); `None` when
/// it is too short for what its length field says.
pub fn parse(ciphertext: &[u8]) -> Option<ShieldedParts<'_>> {
    let key_hash: [u8; KEY_HASH_LEN] = ciphertext.get(..KEY_HASH_LEN)?.try_into().ok()?;
    let rest = ciphertext.get(KEY_HASH_LEN..)?;
    let kem_len = u16::from_le_bytes(rest.get(..2)?.try_into().ok()?) as usize;
    let rest = rest.get(2..)?;
    let kem_ct = rest.get(..kem_len)?;
    let rest = rest.get(kem_len..)?;
    let nonce: [u8; NONCE_LEN] = rest.get(..NONCE_LEN)?.try_into().ok()?;
    let aead_ct = rest.get(NONCE_LEN..)?;
    Some(ShieldedParts {
        key_hash,
        kem_ct,
        nonce,
        aead_ct,
    })
}

/// Why a shielded ciphertext was not decrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UnshieldError {
    /// The bytes do not have the shielded layout.
    #[error("malformed shielded ciphertext")]
    Malformed,
    /// Made for a key this author does not hold (never announced, or too old).
    #[error("shielded ciphertext for an unknown key")]
    UnknownKey,
    /// The KEM ciphertext has the wrong length.
    #[error("bad ML-KEM ciphertext")]
    BadKemCiphertext,
    /// Authentication failed: wrong key or tampered bytes.
    #[error("shielded ciphertext does not authenticate")]
    Aead,
}

/// The author's announced ML-KEM-768 key pairs, the newest first.
pub struct ShieldKeys {
    keys: VecDeque<([u8; KEY_HASH_LEN], DecapsulationKey<MlKem768Params>)>,
}

impl std::fmt::Debug for ShieldKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShieldKeys")
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl Default for ShieldKeys {
    fn default() -> Self {
        Self::new()
    }
}

impl ShieldKeys {
    /// No keys yet.
    pub fn new() -> Self {
        Self {
            keys: VecDeque::with_capacity(KEPT_KEYS + 1),
        }
    }

    /// Make a fresh key pair, keep its secret half (dropping the oldest beyond [`KEPT_KEYS`]) and
    /// return the encapsulation key's bytes to announce.
    pub fn announce(&mut self) -> Vec<u8> {
        let (dk, ek) = MlKem768::generate(&mut rand_core_06::OsRng);
        let bytes = ek.as_bytes().to_vec();
        self.keys.push_front((twox_128(&bytes), dk));
        self.keys.truncate(KEPT_KEYS);
        bytes
    }

    /// Decrypt a `submit_encrypted` ciphertext made for one of the kept keys: the plaintext (the
    /// inner extrinsic's bytes).
    pub fn unshield(&self, ciphertext: &[u8]) -> Result<Vec<u8>, UnshieldError> {
        let parts = parse(ciphertext).ok_or(UnshieldError::Malformed)?;
        let (_, dk) = self
            .keys
            .iter()
            .find(|(h, _)| *h == parts.key_hash)
            .ok_or(UnshieldError::UnknownKey)?;
        let ct =
            Ciphertext::<MlKem768>::try_from(parts.kem_ct).map_err(|_| UnshieldError::BadKemCiphertext)?;
        // ML-KEM decapsulation does not fail on a wrong ciphertext (implicit rejection): it yields
        // another secret, which the AEAD then refuses.
        let shared = dk.decapsulate(&ct).map_err(|_| UnshieldError::BadKemCiphertext)?;
        let aead = XChaCha20Poly1305::new(shared.as_slice().into());
        aead.decrypt(
            XNonce::from_slice(&parts.nonce),
            Payload {
                msg: parts.aead_ct,
                aad: &[],
            },
        )
        .map_err(|_| UnshieldError::Aead)
    }
}

/// Why [`encrypt`] could not encrypt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EncryptError {
    /// The key is not an ML-KEM-768 encapsulation key.
    #[error("not an ML-KEM-768 encapsulation key ({0} bytes)")]
    BadKey(usize),
    /// The AEAD refused the plaintext (too long).
    #[error("encryption failed")]
    Aead,
}

/// What a client does with `NextKey` (`enc_key`) and its signed extrinsic's bytes: the
/// `submit_encrypted` ciphertext, with a random KEM secret and nonce.
pub fn encrypt(enc_key: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, EncryptError> {
    let encoded = enc_key
        .try_into()
        .map_err(|_| EncryptError::BadKey(enc_key.len()))?;
    let ek = EncapsulationKey::<MlKem768Params>::from_bytes(encoded);
    let (kem_ct, shared) = ek
        .encapsulate(&mut rand_core_06::OsRng)
        .map_err(|_| EncryptError::BadKey(enc_key.len()))?;
    let mut nonce = [0u8; NONCE_LEN];
    rand_core_06::RngCore::fill_bytes(&mut rand_core_06::OsRng, &mut nonce);
    let aead = XChaCha20Poly1305::new(shared.as_slice().into());
    let sealed = aead
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad: &[],
            },
        )
        .map_err(|_| EncryptError::Aead)?;
    let mut out = Vec::with_capacity(KEY_HASH_LEN + 2 + kem_ct.len() + NONCE_LEN + sealed.len());
    out.extend_from_slice(&twox_128(enc_key));
    out.extend_from_slice(&(kem_ct.len() as u16).to_le_bytes());
    out.extend_from_slice(&kem_ct);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ciphertext_round_trips_only_with_its_key_and_untampered() {
        let mut keys = ShieldKeys::new();
        let ek = keys.announce();
        assert_eq!(ek.len(), MLKEM768_ENC_KEY_LEN);
        let ct = encrypt(&ek, b"signed extrinsic").unwrap();
        let parts = parse(&ct).unwrap();
        assert_eq!(parts.kem_ct.len(), MLKEM768_CT_LEN);
        assert_eq!(parts.key_hash, twox_128(&ek));
        assert_eq!(keys.unshield(&ct).unwrap(), b"signed extrinsic");

        // Another author's key: unknown key hash.
        let mut other = ShieldKeys::new();
        let other_ek = other.announce();
        let foreign = encrypt(&other_ek, b"x").unwrap();
        assert_eq!(keys.unshield(&foreign), Err(UnshieldError::UnknownKey));
        // The right key hash but made for another key: the AEAD refuses it.
        let mut forged = foreign;
        forged[..KEY_HASH_LEN].copy_from_slice(&twox_128(&ek));
        assert_eq!(keys.unshield(&forged), Err(UnshieldError::Aead));
        // Any flipped byte past the key hash fails without panicking.
        for i in [
            KEY_HASH_LEN + 2,
            KEY_HASH_LEN + 2 + 500,
            ct.len() - 30,
            ct.len() - 1,
        ] {
            let mut t = ct.clone();
            t[i] ^= 1;
            assert_eq!(keys.unshield(&t), Err(UnshieldError::Aead), "byte {i}");
        }
        // A wrong KEM length or truncation.
        let mut t = ct.clone();
        t[KEY_HASH_LEN] ^= 1;
        assert!(matches!(
            keys.unshield(&t),
            Err(UnshieldError::BadKemCiphertext | UnshieldError::Malformed)
        ));
        assert_eq!(keys.unshield(&ct[..40]), Err(UnshieldError::Malformed));
        assert_eq!(keys.unshield(&[]), Err(UnshieldError::Malformed));
        assert!(encrypt(&ek[1..], b"x").is_err());
    }

    #[test]
    fn old_keys_are_forgotten() {
        let mut keys = ShieldKeys::new();
        let first = keys.announce();
        let ct = encrypt(&first, b"late").unwrap();
        for _ in 1..KEPT_KEYS {
            keys.announce();
        }
        assert_eq!(keys.unshield(&ct).unwrap(), b"late");
        keys.announce();
        assert_eq!(keys.unshield(&ct), Err(UnshieldError::UnknownKey));
    }
}
