//! Chain access for the tensorproof subnet: keys, wallets, request signing, and (next) the subxt client.
//!
//! * [`keys`]: sr25519 keypairs and SS58 addresses (prefix 42).
//! * [`auth`]: `btauth/1` and Epistula V2 request signing and verification, a bounded replay cache, and
//!   signed response receipts; framework-agnostic (works on [`http::HeaderMap`]).
//!
//! ```
//! use chain::keys::Keypair;
//! let hotkey = Keypair::from_uri("//Alice").unwrap();
//! assert!(hotkey.ss58().starts_with('5'));
//! ```

pub mod auth;
pub mod calls;
pub mod compat;
pub mod keys;
pub mod metagraph;
pub mod wallet;
pub mod weights;

/// The embedded Substrate devnet (feature `devnet`): a native FRAME runtime that speaks subtensor.
#[cfg(feature = "devnet")]
pub mod devnet;
