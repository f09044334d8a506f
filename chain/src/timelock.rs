//! Drand-timelocked weight commits (subtensor's commit-reveal v4, `commit_timelocked_weights`).
//!
//! A validator encrypts its weights to a future drand quicknet round. The chain stores the ciphertext
//! and, once the pulse (the beacon's BLS signature) for that round is on chain, decrypts it in the
//! reveal epoch and applies the weights as if the validator had called `set_weights`.
//!
//! The bytes are what subtensor's `reveal_crv3_commits_for_subnet` reads: a SCALE-encoded
//! [`WeightsTlockPayload`] encrypted as ideal-lab5/timelock's `tle::<TinyBLS381,
//! AESGCMStreamCipherProvider, _>` does (Boneh-Franklin IBE on BLS12-381 for the identity
//! `sha256(round as u64 big-endian)`, AES-256-GCM body), in ark's `serialize_compressed` layout (IBE
//! header, body, then the cipher suite `AES_GCM_`). It is built here on ark 0.4 because the
//! `timelock` crate (0.0.1 pins `w3f-bls = "=0.1.4"`) cannot share a lockfile with sp-core 43
//! (w3f-bls 0.1.9), and w3f-bls 0.1.9 hashes identities differently, so relaxing the pin would break
//! decryption with real drand signatures. Compatibility is pinned by test vectors made with
//! `timelock` 0.0.1 and by drand's own round-1000 signature.
//!
//! ```
//! use chain::timelock::{decrypt_weights_commit, encrypt_weights_commit, QUICKNET_PUBLIC_KEY};
//!
//! let hotkey = [7u8; 32];
//! let ciphertext =
//!     encrypt_weights_commit(&hotkey, &[0, 1], &[65535, 1], 0, 1000, &QUICKNET_PUBLIC_KEY).unwrap();
//! // The quicknet beacon's signature of round 1000 (what `Drand::Pulses[1000]` holds on chain).
//! let signature = hex::decode(
//!     "b44679b9a59af2ec876b1a6b1ad52ea9b1615fc3982b19576350f93447cb1125e342b73a8dd2bacbe47e4b6b63ed5e39",
//! )
//! .unwrap();
//! let payload = decrypt_weights_commit(&ciphertext, &signature).unwrap();
//! assert_eq!(payload.uids, vec![0, 1]);
//! assert_eq!(payload.hotkey, hotkey.to_vec());
//! ```

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use ark_bls12_381::{Bls12_381, Fr, G1Affine, G1Projective, G2Affine, G2Projective};
use ark_ec::hashing::HashToCurve;
use ark_ec::hashing::curve_maps::wb::WBMap;
use ark_ec::hashing::map_to_curve_hasher::MapToCurveBasedHasher;
use ark_ec::pairing::Pairing;
use ark_ec::{CurveGroup, Group};
use ark_ff::PrimeField;
use ark_ff::field_hashers::DefaultFieldHasher;
use ark_serialize::{CanonicalDeserialize, CanonicalSerialize};
use parity_scale_codec::{Decode, Encode};
use sha2::{Digest, Sha256};

/// Hash-to-curve domain separation tag of drand quicknet (`bls-unchained-g1-rfc9380`): signatures
/// on G1, so the IBE identity of a round is this hash of [`round_identity`] onto G1.
pub const QUICKNET_DST: &[u8] = b"BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_NUL_";

/// The symmetric cipher suite tag the ciphertext ends with (`AESGCMStreamCipherProvider`).
pub const CIPHER_SUITE: &[u8] = b"AES_GCM_";

/// AES-GCM nonce length.
const NONCE_BYTES: usize = 12;

/// Compressed G2 point length (the IBE header's `U`, the beacon public key).
const G2_BYTES: usize = 96;

/// Unix time (seconds) of drand quicknet's round 1.
pub const QUICKNET_GENESIS_TIME: u64 = 1_692_803_367;

/// Seconds between two drand quicknet rounds.
pub const QUICKNET_PERIOD_SECS: u64 = 3;

/// Drand quicknet's beacon public key: a compressed BLS12-381 G2 point (96 bytes).
pub const QUICKNET_PUBLIC_KEY: [u8; 96] = hex_96(
    b"83cf0f2896adee7eb8b5f01fcad3912212c437e0073e911fb90022d3e760183c8c4b450b6a0a6c3ac6a5776a2d1064510d1fec758c921cc22b0e17e63aaf4bcb5ed66304de9cf809bd274ca73bab4af5a6e9c76a4bc09e76eae8991ef5ece45a",
);

/// Blocks after the reveal block whose time the Bittensor SDK 11.3 encrypts to (its
/// `SECURITY_BLOCK_OFFSET`): the round due then is one the chain has ingested a few blocks after the
/// reveal block, and the chain opens the commit once it holds that pulse.
pub const SDK_INGEST_OFFSET_BLOCKS: u64 = 3;

/// Largest ciphertext accepted for decryption, in bytes (subtensor's `MAX_CRV3_COMMIT_SIZE_BYTES`).
pub const MAX_COMMIT_BYTES: usize = 5000;

/// Length of a compressed G1 signature (a drand quicknet pulse signature).
pub const SIGNATURE_BYTES: usize = 48;

/// The plaintext of a timelocked weight commit, SCALE-encoded before encryption.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct WeightsTlockPayload {
    /// The committing hotkey's public key (32 bytes for sr25519); the chain checks it is the signer.
    pub hotkey: Vec<u8>,
    /// Neuron uids, one per weight.
    pub uids: Vec<u16>,
    /// Weights, u16-normalized like `set_weights`.
    pub values: Vec<u16>,
    /// The subnet's weights version key.
    pub version_key: u64,
}

/// Why a timelocked commit could not be built or opened.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TimelockError {
    /// The beacon public key is not a compressed BLS12-381 G2 point.
    #[error("beacon public key is not a 96-byte compressed BLS12-381 G2 point; check the drand chain's key")]
    PublicKey,
    /// The round signature is not a compressed BLS12-381 G1 point.
    #[error("round signature is not a 48-byte compressed BLS12-381 G1 point; check the pulse bytes")]
    Signature,
    /// `uids` and `values` differ in length.
    #[error("{uids} uids but {values} weight values; pass one value per uid")]
    LengthMismatch {
        /// Number of uids.
        uids: usize,
        /// Number of values.
        values: usize,
    },
    /// The ciphertext is larger than [`MAX_COMMIT_BYTES`].
    #[error("timelocked commit is {0} bytes, over the {MAX_COMMIT_BYTES}-byte limit; commit fewer weights")]
    TooLarge(usize),
    /// Timelock encryption failed.
    #[error("timelock encryption failed; this is a bug in the stream cipher setup")]
    Encrypt,
    /// The bytes are not an ark-serialized timelock ciphertext.
    #[error("commit bytes are not a timelock ciphertext (TLECiphertext<TinyBLS381>, ark compressed)")]
    Ciphertext,
    /// Decryption failed: the signature is not the one for the commit's round, or the body was altered.
    #[error(
        "timelock decryption failed; the signature is not for this commit's drand round or the commit was altered"
    )]
    Decrypt,
    /// The plaintext is not a SCALE-encoded [`WeightsTlockPayload`].
    #[error("decrypted commit is not a SCALE-encoded WeightsTlockPayload")]
    Payload,
}

/// The IBE identity of a drand quicknet round: `sha256(round as u64 big-endian)`.
pub fn round_identity(round: u64) -> [u8; 32] {
    Sha256::digest(round.to_be_bytes()).into()
}

/// Encrypts `uids`/`values` as a [`WeightsTlockPayload`] for `hotkey` to drand round `reveal_round`.
///
/// The result is the `commit` argument of `SubtensorModule::commit_timelocked_weights` (call 113),
/// with `reveal_round` as its `reveal_round` and `commit_reveal_version` 4.
pub fn encrypt_weights_commit(
    hotkey_pubkey: &[u8; 32],
    uids: &[u16],
    values: &[u16],
    version_key: u64,
    reveal_round: u64,
    beacon_public_key: &[u8],
) -> Result<Vec<u8>, TimelockError> {
    if uids.len() != values.len() {
        return Err(TimelockError::LengthMismatch {
            uids: uids.len(),
            values: values.len(),
        });
    }
    let payload = WeightsTlockPayload {
        hotkey: hotkey_pubkey.to_vec(),
        uids: uids.to_vec(),
        values: values.to_vec(),
        version_key,
    };
    encrypt_payload(&payload, reveal_round, beacon_public_key)
}

/// Encrypts an arbitrary [`WeightsTlockPayload`] to drand round `reveal_round` (see
/// [`encrypt_weights_commit`]).
pub fn encrypt_payload(
    payload: &WeightsTlockPayload,
    reveal_round: u64,
    beacon_public_key: &[u8],
) -> Result<Vec<u8>, TimelockError> {
    let bytes = encrypt_bytes(&payload.encode(), reveal_round, beacon_public_key)?;
    if bytes.len() > MAX_COMMIT_BYTES {
        return Err(TimelockError::TooLarge(bytes.len()));
    }
    Ok(bytes)
}

/// Timelock-encrypts `message` to drand round `round`: Boneh-Franklin FullIdent IBE of a fresh
/// AES-256-GCM key for the round's identity, then the message under that key.
///
/// Layout (ark `serialize_compressed` of `TLECiphertext<TinyBLS381>`, `Vec`s as u64-LE length +
/// bytes): `U` (compressed G2) ‖ `V` ‖ `W` ‖ body (`AESOutput { ciphertext, nonce }`) ‖ suite.
pub fn encrypt_bytes(message: &[u8], round: u64, beacon_public_key: &[u8]) -> Result<Vec<u8>, TimelockError> {
    let public_key =
        G2Affine::deserialize_compressed(beacon_public_key).map_err(|_| TimelockError::PublicKey)?;
    let identity = identity_point(round)?;
    let aes_key: [u8; 32] = rand::random();
    let nonce: [u8; NONCE_BYTES] = rand::random();
    let t = Fr::from_le_bytes_mod_order(&rand::random::<[u8; 64]>());

    // sigma = H4(t); r = H3(sigma, key); U = rP; V = sigma ⊕ H2(e(Q_id, r·P_pub)); W = key ⊕ H4(sigma).
    let sigma = sha256(&compressed(&t)?);
    let r = h3(&sigma, &aes_key);
    let u = (G2Projective::generator() * r).into_affine();
    let g_id = Bls12_381::pairing(identity, public_key * r);
    let v = xor32(&sigma, &sha256(&compressed(&g_id.0)?));
    let w = xor32(&aes_key, &sha256(&sigma));

    let cipher = Aes256Gcm::new((&aes_key).into());
    let sealed = cipher
        .encrypt(Nonce::from_slice(&nonce), message)
        .map_err(|_| TimelockError::Encrypt)?;
    let mut body = Vec::with_capacity(sealed.len() + NONCE_BYTES + 16);
    put_vec(&mut body, &sealed);
    put_vec(&mut body, &nonce);

    let mut out = compressed(&u)?;
    put_vec(&mut out, &v);
    put_vec(&mut out, &w);
    put_vec(&mut out, &body);
    put_vec(&mut out, CIPHER_SUITE);
    Ok(out)
}

/// Decrypts a timelocked commit with the beacon's signature of its round and decodes the payload, as
/// subtensor does at reveal. Safe on untrusted bytes: size-bounded, no panics.
pub fn decrypt_weights_commit(
    ciphertext: &[u8],
    round_signature: &[u8],
) -> Result<WeightsTlockPayload, TimelockError> {
    let plaintext = decrypt_commit_bytes(ciphertext, round_signature)?;
    WeightsTlockPayload::decode(&mut &plaintext[..]).map_err(|_| TimelockError::Payload)
}

/// Decrypts a timelocked commit to its raw plaintext (subtensor's `tld`): recover the AES key from
/// the IBE header with the round signature, check `U = H3(sigma, key)·P`, then open the AES-GCM body.
/// Like the chain's reader, bytes after the cipher suite are ignored and the suite is not checked.
pub fn decrypt_commit_bytes(ciphertext: &[u8], round_signature: &[u8]) -> Result<Vec<u8>, TimelockError> {
    if ciphertext.len() > MAX_COMMIT_BYTES {
        return Err(TimelockError::TooLarge(ciphertext.len()));
    }
    let signature = parse_signature(round_signature)?;
    let mut input = ciphertext;
    let u_bytes = take(&mut input, G2_BYTES)?;
    let u = G2Affine::deserialize_compressed(u_bytes).map_err(|_| TimelockError::Ciphertext)?;
    let v = take_vec(&mut input)?;
    let w = take_vec(&mut input)?;
    let mut body = take_vec(&mut input)?;
    let _suite = take_vec(&mut input)?;
    let (Ok(v), Ok(w)) = (<[u8; 32]>::try_from(v), <[u8; 32]>::try_from(w)) else {
        return Err(TimelockError::Ciphertext);
    };
    let sealed = take_vec(&mut body)?;
    let nonce = take_vec(&mut body)?;

    let g = Bls12_381::pairing(signature, u);
    let sigma = xor32(&v, &sha256(&compressed(&g.0)?));
    let aes_key = xor32(&w, &sha256(&sigma));
    if (G2Projective::generator() * h3(&sigma, &aes_key)).into_affine() != u {
        return Err(TimelockError::Decrypt);
    }
    if nonce.len() != NONCE_BYTES {
        return Err(TimelockError::Ciphertext);
    }
    Aes256Gcm::new((&aes_key).into())
        .decrypt(Nonce::from_slice(nonce), sealed)
        .map_err(|_| TimelockError::Decrypt)
}

/// Whether `signature` is the beacon's BLS signature of `round` under `beacon_public_key`
/// (`e(sig, G2) = e(H(round), pk)`), which is what makes it open commits to that round.
pub fn verify_round_signature(
    beacon_public_key: &[u8],
    round: u64,
    signature: &[u8],
) -> Result<bool, TimelockError> {
    let public_key =
        G2Affine::deserialize_compressed(beacon_public_key).map_err(|_| TimelockError::PublicKey)?;
    let signature = parse_signature(signature)?;
    let identity = identity_point(round)?;
    Ok(Bls12_381::pairing(signature, G2Projective::generator()) == Bls12_381::pairing(identity, public_key))
}

/// A beacon keypair for devnets and tests: signs rounds like drand quicknet, under its own key.
#[derive(Clone)]
pub struct DevBeacon {
    secret: Fr,
}

impl std::fmt::Debug for DevBeacon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DevBeacon(..)")
    }
}

impl DevBeacon {
    /// The beacon whose secret key is derived from `seed` (so tests and devnets agree on it).
    pub fn from_seed(seed: &[u8]) -> Self {
        Self {
            secret: Fr::from_le_bytes_mod_order(&sha256(seed)),
        }
    }

    /// The embedded devnet's beacon, from [`DEVNET_BEACON_SEED`].
    pub fn devnet() -> Self {
        Self::from_seed(DEVNET_BEACON_SEED)
    }

    /// The public key (compressed G2, 96 bytes): pass it to [`encrypt_weights_commit`].
    pub fn public_key(&self) -> Vec<u8> {
        let point = (G2Projective::generator() * self.secret).into_affine();
        compressed(&point).unwrap_or_default()
    }

    /// The round's signature (compressed G1, 48 bytes): the pulse to write with `dev_write_pulse`.
    pub fn sign_round(&self, round: u64) -> Result<Vec<u8>, TimelockError> {
        let point = (G1Projective::from(identity_point(round)?) * self.secret).into_affine();
        compressed(&point)
    }
}

fn parse_signature(bytes: &[u8]) -> Result<G1Affine, TimelockError> {
    if bytes.len() != SIGNATURE_BYTES {
        return Err(TimelockError::Signature);
    }
    G1Affine::deserialize_compressed(bytes).map_err(|_| TimelockError::Signature)
}

/// The round's IBE public identity: `hash_to_curve_G1(sha256(round be), QUICKNET_DST)`.
fn identity_point(round: u64) -> Result<G1Affine, TimelockError> {
    type Hasher = MapToCurveBasedHasher<
        G1Projective,
        DefaultFieldHasher<sha2_010::Sha256, 128>,
        WBMap<ark_bls12_381::g1::Config>,
    >;
    Hasher::new(QUICKNET_DST)
        .and_then(|h| h.hash(&round_identity(round)))
        .map_err(|_| TimelockError::Encrypt)
}

/// H3: `sha256(a ‖ b)` read big-endian, reduced into the scalar field.
fn h3(a: &[u8; 32], b: &[u8; 32]) -> Fr {
    let mut input = [0u8; 64];
    input[..32].copy_from_slice(a);
    input[32..].copy_from_slice(b);
    Fr::from_be_bytes_mod_order(&sha256(&input))
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn xor32(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    std::array::from_fn(|i| a[i] ^ b[i])
}

fn compressed<T: CanonicalSerialize>(value: &T) -> Result<Vec<u8>, TimelockError> {
    let mut out = Vec::with_capacity(value.compressed_size());
    value
        .serialize_compressed(&mut out)
        .map_err(|_| TimelockError::Encrypt)?;
    Ok(out)
}

/// Appends an ark-serialized byte vector: u64-LE length, then the bytes.
fn put_vec(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    out.extend_from_slice(bytes);
}

fn take<'a>(input: &mut &'a [u8], n: usize) -> Result<&'a [u8], TimelockError> {
    if input.len() < n {
        return Err(TimelockError::Ciphertext);
    }
    let (head, rest) = input.split_at(n);
    *input = rest;
    Ok(head)
}

/// Reads an ark-serialized byte vector; the length is checked against what is left, never allocated.
fn take_vec<'a>(input: &mut &'a [u8]) -> Result<&'a [u8], TimelockError> {
    let len = u64::from_le_bytes(
        take(input, 8)?
            .try_into()
            .map_err(|_| TimelockError::Ciphertext)?,
    );
    let len = usize::try_from(len).map_err(|_| TimelockError::Ciphertext)?;
    take(input, len)
}

/// The seed of the embedded devnet's beacon ([`DevBeacon::devnet`]): public, like the dev accounts.
pub const DEVNET_BEACON_SEED: &[u8] = b"tensorproof devnet drand beacon";

/// Round period of the embedded devnet's beacon: fast enough that a pulse is on chain within a
/// block or two of any commit, whatever the devnet's block time and tempo.
pub const DEVNET_BEACON_PERIOD_MS: u64 = 100;

/// Blocks ahead a devnet commit aims its round ([`BeaconConfig::devnet`]).
pub const DEVNET_BEACON_LEAD_BLOCKS: u64 = 3;

/// A drand-style beacon as a chain's `Drand` pallet follows it, and how a client picks a round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BeaconConfig {
    /// The beacon's public key (compressed G2, 96 bytes).
    pub public_key: Vec<u8>,
    /// Unix time of round 0 (seconds).
    pub genesis_secs: u64,
    /// Milliseconds between rounds.
    pub period_ms: u64,
    /// Milliseconds per block of the chain, to turn blocks into wall-clock time; `None`: measure it
    /// from the chain's timestamps when committing.
    pub block_time_ms: Option<u64>,
    /// Blocks after the reveal block whose time the round is chosen for
    /// ([`SDK_INGEST_OFFSET_BLOCKS`] for quicknet).
    pub ingest_offset_blocks: u64,
    /// Aim this many blocks ahead instead of at the reveal block (`None`: the reveal block).
    pub lead_blocks: Option<u64>,
}

impl BeaconConfig {
    /// drand quicknet as finney and testnet follow it: 3 s rounds, 12 s blocks (unless the chain says
    /// otherwise: `Aura::SlotDuration`), the round due [`SDK_INGEST_OFFSET_BLOCKS`] blocks after the
    /// reveal block, as the SDK 11.3 picks it.
    pub fn quicknet() -> Self {
        Self {
            public_key: QUICKNET_PUBLIC_KEY.to_vec(),
            genesis_secs: QUICKNET_GENESIS_TIME,
            period_ms: QUICKNET_PERIOD_SECS * 1000,
            block_time_ms: Some(12_000),
            ingest_offset_blocks: SDK_INGEST_OFFSET_BLOCKS,
            lead_blocks: None,
        }
    }

    /// The embedded devnet's beacon ([`DevBeacon::devnet`], [`DEVNET_BEACON_PERIOD_MS`] rounds), as the
    /// devnet writes it: each round's pulse in the first block at or after the round's time. A commit
    /// must target a round the chain does not hold when it lands, and one that is on chain before its
    /// reveal epoch ends. The devnet's block time is set per run (and measured here), and epochs
    /// last a few hundred milliseconds, so a commit aims [`DEVNET_BEACON_LEAD_BLOCKS`] blocks ahead:
    /// time for it to land, and its pulse is on chain before the reveal epoch begins (a reveal epoch
    /// starts at least two blocks after the commit). The weights are then readable by anyone before
    /// their reveal epoch, which on a devnet costs nothing.
    pub fn devnet() -> Self {
        static PUBLIC_KEY: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        Self {
            public_key: PUBLIC_KEY
                .get_or_init(|| DevBeacon::devnet().public_key())
                .clone(),
            genesis_secs: QUICKNET_GENESIS_TIME,
            period_ms: DEVNET_BEACON_PERIOD_MS,
            block_time_ms: None,
            ingest_offset_blocks: 0,
            lead_blocks: Some(DEVNET_BEACON_LEAD_BLOCKS),
        }
    }

    /// The known beacon with this public key: drand quicknet or the embedded devnet's.
    pub fn known(public_key: &[u8]) -> Option<Self> {
        [Self::quicknet(), Self::devnet()]
            .into_iter()
            .find(|b| b.public_key == public_key)
    }

    /// The round due at Unix time `unix_ms` (the latest whose time has come; 0 before genesis).
    pub fn round_at(&self, unix_ms: u64) -> u64 {
        unix_ms.saturating_sub(self.genesis_secs.saturating_mul(1000)) / self.period_ms.max(1)
    }

    /// The round to encrypt a commit to at `now_unix_ms`, `blocks_until_reveal` blocks of
    /// `block_time_ms` before the reveal block.
    ///
    /// Quicknet, as the SDK 11.3 (`generate_commit_v2`): the round due at the time of the block
    /// [`Self::ingest_offset_blocks`] after the reveal block,
    /// `max(1, floor((now + (blocks_until_reveal + offset) × block_time − genesis) / period))`.
    ///
    /// With [`Self::lead_blocks`] (the devnet), `lead_blocks` replaces the distance to the reveal block
    /// and the round is the first one not due before that time:
    /// `ceil((now + lead × block_time − genesis) / period)`.
    pub fn round_for(&self, now_unix_ms: u64, blocks_until_reveal: u64, block_time_ms: u64) -> u64 {
        let period = self.period_ms.max(1);
        let genesis = self.genesis_secs.saturating_mul(1000);
        match self.lead_blocks {
            Some(lead) => now_unix_ms
                .saturating_add(lead.saturating_mul(block_time_ms))
                .saturating_sub(genesis)
                .div_ceil(period),
            None => {
                let blocks = blocks_until_reveal.saturating_add(self.ingest_offset_blocks);
                (now_unix_ms
                    .saturating_add(blocks.saturating_mul(block_time_ms))
                    .saturating_sub(genesis)
                    / period)
                    .max(1)
            }
        }
    }
}

impl Default for BeaconConfig {
    fn default() -> Self {
        Self::quicknet()
    }
}

/// Parses 192 hex digits at compile time.
const fn hex_96(hex: &[u8; 192]) -> [u8; 96] {
    const fn nibble(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => panic!("not a lowercase hex digit"),
        }
    }
    let mut out = [0u8; 96];
    let mut i = 0;
    while i < 96 {
        out[i] = (nibble(hex[2 * i]) << 4) | nibble(hex[2 * i + 1]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUND_1000_SIGNATURE: &str =
        "b44679b9a59af2ec876b1a6b1ad52ea9b1615fc3982b19576350f93447cb1125e342b73a8dd2bacbe47e4b6b63ed5e39";

    /// Made by ideal-lab5/timelock 0.0.1 (`tle::<TinyBLS381, AESGCMStreamCipherProvider, OsRng>`, w3f-bls
    /// 0.1.4) for quicknet round 1000: the payload `{ hotkey: [7; 32], uids: [0, 1, 2], values:
    /// [65535, 32768, 1], version_key: 1000 }`.
    const TIMELOCK_CRATE_CIPHERTEXT: &str = concat!(
        "a7dfd7ae54580f1e4d9740c94641cc5a6a0756c0d2f25dd0c8fa52029a6753e8752b4aa81d5bca971c01b06aabbfb722",
        "02727cf7042dca905f97780cb3b6426cd4479030661fba2fb82d85ca9ca7fd8f310a9dd92c570ad67ebec6f989651673",
        "2000000000000000cd5abfe145a489392a9370ad3a2d835818885ceeb9b0138b8e4560c9336c04dc2000000000000000",
        "94ca60f744bca6ed25870ff19f08c6d4675b9e8d2e3ca0af355e16738013147263000000000000004700000000000000",
        "32cb3a93c914e6bcbae4e218fe921d016c579d7130ed5a272f5169adb8e123bc1c2d546f9979fe7c07dfe42a18372ed8",
        "f1d5baf8a7e683f60aceb1ba1dc7619d6c8791a38150ba0c000000000000000f52fbf99e91a856ff2604130800000000",
        "0000004145535f47434d5f",
    );

    fn sig_1000() -> Vec<u8> {
        hex::decode(ROUND_1000_SIGNATURE).unwrap()
    }

    #[test]
    fn opens_a_ciphertext_made_by_the_timelock_crate() {
        let ct = hex::decode(TIMELOCK_CRATE_CIPHERTEXT).unwrap();
        let payload = decrypt_weights_commit(&ct, &sig_1000()).unwrap();
        assert_eq!(
            payload,
            WeightsTlockPayload {
                hotkey: vec![7; 32],
                uids: vec![0, 1, 2],
                values: vec![65535, 32768, 1],
                version_key: 1000
            }
        );
        // Same layout as ours: header (96 + 8 + 32 + 8 + 32), body, suite.
        let ours = encrypt_weights_commit(
            &[7; 32],
            &[0, 1, 2],
            &[65535, 32768, 1],
            1000,
            1000,
            &QUICKNET_PUBLIC_KEY,
        )
        .unwrap();
        assert_eq!(ours.len(), ct.len());
        assert_eq!(ours[96..104], ct[96..104]);
        assert_eq!(ours[ours.len() - 16..], ct[ct.len() - 16..]);
    }

    #[test]
    fn quicknet_round_1000_signature_verifies() {
        assert!(verify_round_signature(&QUICKNET_PUBLIC_KEY, 1000, &sig_1000()).unwrap());
        assert!(!verify_round_signature(&QUICKNET_PUBLIC_KEY, 1001, &sig_1000()).unwrap());
    }

    #[test]
    fn round_trip_with_quicknet_round_1000() {
        let hotkey = [9u8; 32];
        let ct = encrypt_weights_commit(
            &hotkey,
            &[3, 1, 4],
            &[100, 65535, 7],
            42,
            1000,
            &QUICKNET_PUBLIC_KEY,
        )
        .unwrap();
        // Ends with the ark-serialized cipher suite: u64 LE length 8, then `AES_GCM_`.
        assert!(ct.ends_with(&[
            8, 0, 0, 0, 0, 0, 0, 0, b'A', b'E', b'S', b'_', b'G', b'C', b'M', b'_'
        ]));
        let payload = decrypt_weights_commit(&ct, &sig_1000()).unwrap();
        assert_eq!(
            payload,
            WeightsTlockPayload {
                hotkey: hotkey.to_vec(),
                uids: vec![3, 1, 4],
                values: vec![100, 65535, 7],
                version_key: 42
            }
        );
    }

    #[test]
    fn dev_beacon_signs_rounds_that_open_commits() {
        let beacon = DevBeacon::from_seed(b"tensorproof devnet beacon");
        let pk = beacon.public_key();
        let sig = beacon.sign_round(77).unwrap();
        assert!(verify_round_signature(&pk, 77, &sig).unwrap());
        let ct = encrypt_weights_commit(&[2; 32], &[5], &[9], 0, 77, &pk).unwrap();
        assert_eq!(decrypt_weights_commit(&ct, &sig).unwrap().uids, vec![5]);
        // The quicknet signature of another round does not open it.
        assert_eq!(
            decrypt_weights_commit(&ct, &sig_1000()),
            Err(TimelockError::Decrypt)
        );
    }

    #[test]
    fn wrong_round_cannot_be_opened() {
        // Encrypted to round 1001, opened with round 1000's signature.
        let ct = encrypt_weights_commit(&[1; 32], &[0], &[1], 0, 1001, &QUICKNET_PUBLIC_KEY).unwrap();
        assert_eq!(
            decrypt_weights_commit(&ct, &sig_1000()),
            Err(TimelockError::Decrypt)
        );
    }

    #[test]
    fn malformed_inputs_are_typed_errors() {
        let ct = encrypt_weights_commit(&[1; 32], &[0], &[1], 0, 1000, &QUICKNET_PUBLIC_KEY).unwrap();
        assert_eq!(
            decrypt_weights_commit(&ct, &[0u8; 48]),
            Err(TimelockError::Signature)
        );
        assert_eq!(
            decrypt_weights_commit(&ct, &sig_1000()[..47]),
            Err(TimelockError::Signature)
        );
        assert_eq!(
            decrypt_weights_commit(&ct[..40], &sig_1000()),
            Err(TimelockError::Ciphertext)
        );
        assert_eq!(
            decrypt_weights_commit(&ct[..150], &sig_1000()),
            Err(TimelockError::Ciphertext)
        );
        assert_eq!(
            decrypt_weights_commit(&[0u8; 6000], &sig_1000()),
            Err(TimelockError::TooLarge(6000))
        );
        // A huge declared length is rejected without allocating.
        let mut huge = ct.clone();
        huge[96..104].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(
            decrypt_weights_commit(&huge, &sig_1000()),
            Err(TimelockError::Ciphertext)
        );
        // A flipped body byte fails the AES-GCM tag.
        let mut flipped = ct.clone();
        let body_byte = ct.len() - 40;
        flipped[body_byte] ^= 1;
        assert_eq!(
            decrypt_weights_commit(&flipped, &sig_1000()),
            Err(TimelockError::Decrypt)
        );
        // A flipped W byte changes the recovered key, which fails the U = rP check.
        let mut flipped_w = ct;
        flipped_w[96 + 8 + 32 + 8] ^= 1;
        assert_eq!(
            decrypt_weights_commit(&flipped_w, &sig_1000()),
            Err(TimelockError::Decrypt)
        );
        assert_eq!(
            encrypt_weights_commit(&[1; 32], &[0], &[1], 0, 1000, &[0u8; 96]),
            Err(TimelockError::PublicKey)
        );
        assert_eq!(
            encrypt_weights_commit(&[1; 32], &[0, 1], &[1], 0, 1000, &QUICKNET_PUBLIC_KEY),
            Err(TimelockError::LengthMismatch { uids: 2, values: 1 })
        );
    }

    #[test]
    fn payload_scale_bytes_are_pinned() {
        let payload = WeightsTlockPayload {
            hotkey: vec![0xaa, 0xbb],
            uids: vec![1, 258],
            values: vec![65535, 0],
            version_key: 7,
        };
        // compact(2) aa bb | compact(2) 0100 0201 | compact(2) ffff 0000 | u64 LE 7
        assert_eq!(
            hex::encode(payload.encode()),
            "08aabb080100020108ffff00000700000000000000"
        );
        let plain = decrypt_commit_bytes(
            &encrypt_payload(&payload, 1000, &QUICKNET_PUBLIC_KEY).unwrap(),
            &sig_1000(),
        )
        .unwrap();
        assert_eq!(plain, payload.encode());
    }

    #[test]
    fn identity_and_round_clock() {
        assert_eq!(round_identity(1000), sha256(&[0, 0, 0, 0, 0, 0, 3, 0xe8]));
        // Quicknet, the SDK 11.3's rule: now = genesis + 3000 s, reveal 10 blocks of 12 s ahead, plus
        // the 3-block ingest offset: 3156 s → round 1052 (a partial period rounds down).
        let quicknet = BeaconConfig::quicknet();
        let at = |secs: u64| secs * 1000;
        assert_eq!(quicknet.round_at(at(QUICKNET_GENESIS_TIME + 3000)), 1000);
        assert_eq!(quicknet.round_at(0), 0);
        assert_eq!(
            quicknet.round_for(at(QUICKNET_GENESIS_TIME + 3000), 10, 12_000),
            1052
        );
        assert_eq!(
            quicknet.round_for(at(QUICKNET_GENESIS_TIME + 3002), 0, 12_000),
            1012
        );
        // Sub-second blocks count (0.25 s on fast-block chains).
        assert_eq!(quicknet.round_for(at(QUICKNET_GENESIS_TIME + 3000), 9, 250), 1001);
        // Before genesis: round 1, never 0.
        assert_eq!(quicknet.round_for(0, 0, 12_000), 1);
        // The devnet aims three blocks ahead whatever the reveal: past every round due two blocks
        // from now, never more than one period beyond the third.
        let devnet = BeaconConfig::devnet();
        let base = QUICKNET_GENESIS_TIME * 1000 + 5_000_000;
        for now in (base..base + 300).step_by(7) {
            let round = devnet.round_for(now, 1000, 100);
            assert!(round > devnet.round_at(now + 2 * 100), "{now}");
            assert!(
                round <= devnet.round_at(now + 3 * 100 + DEVNET_BEACON_PERIOD_MS),
                "{now}"
            );
        }
        assert_eq!(
            BeaconConfig::quicknet().round_at(QUICKNET_GENESIS_TIME * 1000 + 3_000_000),
            1000
        );
        assert_eq!(BeaconConfig::default(), BeaconConfig::quicknet());
        assert_eq!(
            BeaconConfig::known(&QUICKNET_PUBLIC_KEY),
            Some(BeaconConfig::quicknet())
        );
        assert_eq!(BeaconConfig::known(&devnet.public_key), Some(devnet.clone()));
        assert_eq!(BeaconConfig::known(&[1, 2, 3]), None);
        assert_ne!(devnet.public_key, QUICKNET_PUBLIC_KEY.to_vec());
    }
}
