//! The tensorproof miner: serves signed challenges from validators on a GPU, through a bounded,
//! stake-ordered work queue.
//!
//! A validator signs each request with its hotkey (`btauth/1` or Epistula V2). The miner checks the
//! signature, freshness and replay ([`chain::auth`]), that the sender is a permitted validator with
//! enough stake ([`validators`]), applies per-validator rate and concurrency limits ([`limits`]), runs
//! the task on its device's worker thread ([`queue`], [`tasks`]), keeps the round-1 state for the
//! opening round ([`store`]) and answers with a signed receipt. Wire types are
//! [`bench_tasks::wire`]; every refusal is an [`error::ApiError`] with a stable reason code.
//!
//! * [`server`]: [`MinerServer`], the HTTP server (HTTP/1.1 and h2c), startable in-process;
//!   [`connections`]: its accept loop (connection and per-IP caps, header-read and idle timeouts).
//! * [`MinerClient`]: the validator's signed client ([`exchange::MinerClient`]) bound to one miner
//!   (used by `miner doctor`, `bench-transport`, tests).
//! * [`cli`]: the `miner` command line (`run`, `wallet`, `doctor`, `bench-transport`); [`chain_link`]
//!   connects `run` to the chain (hotkey, registration, `serve_axon`, metagraph refresh).
//! * [`device_memory`]: the device memory `/info` reports.
//! * [`doctor`]: the end-to-end self-test, signing with the [`doctor_key`]; [`bench`]: the transport
//!   benchmark.
//! * [`behavior`]: honest, or bench-tasks' adversaries behind the `adversary` cargo feature.
//!
//! # Example: a dev miner on loopback, pinged by an allow-listed validator
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use chain::keys::Keypair;
//! use miner::{MinerClient, MinerConfig, MinerServer, validators::ValidatorSet};
//!
//! let validator = Keypair::from_uri("//Alice")?;
//! let miner_key = Keypair::from_uri("//Bob")?;
//! let config = MinerConfig::new(miner_key.clone(), ValidatorSet::allow_list([validator.account()]));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let server = MinerServer::start(config, listener).await?;
//!
//! let url = format!("http://{}", server.local_addr());
//! let client = MinerClient::new(&url, miner_key.account(), validator, false)?;
//! let echo = client.ping(b"hello".to_vec()).await?;
//! assert_eq!(echo.body, b"hello");
//! server.shutdown().await;
//! # Ok(()) }
//! ```

pub mod auth;
pub mod behavior;
pub mod bench;
pub mod chain_link;
pub mod cli;
pub mod config;
pub mod connections;
pub mod device_memory;
pub mod doctor;
pub mod doctor_key;
pub mod error;
pub mod generate;
pub mod limits;
pub mod metrics;
pub mod models;
pub mod queue;
pub mod server;
pub mod serving;
pub mod store;
pub mod tasks;
pub mod validators;

pub use config::Limits;
pub use exchange::MinerClient;
pub use server::{MinerConfig, MinerServer};
