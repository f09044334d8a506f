//! Chain access for the tensorproof subnet: keys and btcli wallets, hotkey-signed HTTP requests, and a
//! subxt client for subtensor (the embedded devnet, a localnet, testnet or finney). The embedded devnet
//! itself is the `devnet` crate (chain/devnet/), which imports [`timelock`], [`weights::storage_index`]
//! and [`mechanism::split_emission`] from here.
//!
//! * [`keys`]: sr25519 keypairs and SS58 addresses (prefix 42).
//! * [`wallet`]: btcli's wallet layout and keyfiles (`$NACL` encryption), and the `wallet new|show`
//!   subcommands both binaries embed.
//! * [`auth`]: `btauth/1` and Epistula V2 signing and verification, a bounded replay cache, and signed
//!   response receipts; framework-agnostic (works on [`http::HeaderMap`]).
//! * [`client`]: connect by network name, read the [`metagraph`] and hyperparameters, register, serve,
//!   and set weights (direct or commit-reveal) with classified failures and retries ([`submit`]).
//! * [`bootstrap`]: create and fund a subnet, register and stake, for local runs and docker compose.
//! * [`calls`], [`compat`]: the extrinsics, storage and runtime APIs used, built dynamically and checked
//!   against the connected runtime's metadata (and, in tests, finney's).
//! * [`weights`]: the CR-v2 commit hash, pre-submission checks and rate-limit arithmetic.
//! * [`mechanism`]: a subnet's mechanisms (count, emission split) and its epoch consensus.
//! * [`timelock`]: CR-v4 drand-timelocked weight commits (encrypt, decrypt, reveal-round clock).
//!
//! A validator signs a request; a miner verifies it and answers with a receipt:
//!
//! ```
//! use chain::auth::{Receipt, RequestSigner, Verifier, VerifierConfig};
//! use chain::keys::Keypair;
//!
//! let validator = Keypair::from_uri("//Alice").unwrap();
//! let miner = Keypair::from_uri("//Bob").unwrap();
//! let body = b"{}";
//! let signed = RequestSigner::new(validator.clone()).btauth("POST", "/ping", body, Some(&miner.account()));
//!
//! let request = Verifier::new(miner.account(), VerifierConfig::default())
//!     .verify("POST", "/ping", &signed.headers, body)
//!     .unwrap();
//! let receipt = Receipt::sign(&miner, &request, 200, b"pong");
//! receipt.verify(&miner.account(), &validator.account(), &signed.request_id, b"pong").unwrap();
//! ```

pub mod auth;
pub mod bootstrap;
pub mod calls;
pub mod client;
pub mod compat;
pub mod keys;
pub mod mechanism;
pub mod metagraph;
pub mod reveal;
pub mod submit;
pub mod timelock;
pub mod wallet;
pub mod weights;
