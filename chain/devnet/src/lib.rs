//! An embedded Substrate devnet that speaks subtensor, the way Anvil serves Ethereum developers.
//!
//! A FRAME runtime ([`runtime`]) with a `SubtensorModule` pallet ([`subtensor`]) holding the part
//! of subtensor a subnet uses, executed natively (`sp_io::TestExternalities` +
//! `frame_executive::Executive`), served over WebSocket JSON-RPC ([`rpc`]) that subxt and other
//! Substrate clients use unchanged. Blocks are produced on an interval and on demand; every block
//! is final at once. Dev accounts (//Alice … //Two) are funded; //Alice is sudo.
//!
//! ```no_run
//! # async fn demo() -> Result<(), devnet::DevnetError> {
//! use devnet::{Devnet, DevnetConfig};
//! let devnet = Devnet::spawn(DevnetConfig { dev_subnet: true, ..DevnetConfig::default() }).await?;
//! println!("serving {}", devnet.ws_url());
//! devnet.produce_block().await?;
//! devnet.shutdown().await;
//! # Ok(()) }
//! ```

pub mod admin;
pub mod aura;
pub mod bench;
pub mod commitments;
pub mod drand;
pub mod node;
pub mod rpc;
pub mod runtime;
pub mod shield;
pub mod signer;
pub mod subtensor;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jsonrpsee::server::{Server, ServerConfig, ServerHandle};
use tokio::task::JoinHandle;

pub use node::{DevAccount, Produced, dev_accounts};

/// How the devnet is started.
#[derive(Debug, Clone)]
pub struct DevnetConfig {
    /// Address to listen on (loopback by default).
    pub host: IpAddr,
    /// Port; 0 picks a free one.
    pub port: u16,
    /// Produce a block every this long; `None` produces blocks only on demand
    /// ([`Devnet::produce_block`] or the `dev_newBlock` RPC).
    pub block_time: Option<Duration>,
    /// Also produce a block as soon as a transaction enters the pool (Anvil's automine).
    pub instant_seal: bool,
    /// Tempo of new subnets (blocks per epoch).
    pub tempo: u16,
    /// Create netuid 1 owned by //Alice (coldkey and owner hotkey, uid 0).
    pub dev_subnet: bool,
    /// Commit-reveal on the dev subnet (subtensor's default is on; the devnet's is off).
    pub dev_subnet_commit_reveal: bool,
    /// Write the pulses of the devnet's drand-style beacon
    /// ([`chain::timelock::BeaconConfig::devnet`]) as their rounds come due, so timelocked (CR-v4)
    /// commits are revealed. Off: only root's `Drand::dev_write_pulse` writes pulses.
    pub dev_beacon: bool,
    /// Largest JSON-RPC request body (bytes).
    pub max_request_bytes: u32,
    /// Most simultaneous connections.
    pub max_connections: u32,
}

impl Default for DevnetConfig {
    fn default() -> Self {
        Self {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            block_time: Some(Duration::from_millis(250)),
            instant_seal: false,
            tempo: 10,
            dev_subnet: false,
            dev_subnet_commit_reveal: false,
            dev_beacon: true,
            max_request_bytes: 12 * 1024 * 1024,
            max_connections: 128,
        }
    }
}

/// Why the devnet could not start.
#[derive(Debug, thiserror::Error)]
pub enum DevnetError {
    /// The genesis state could not be built.
    #[error("devnet genesis failed: {0}; this is a bug in the devnet runtime")]
    Genesis(String),
    /// The RPC server could not bind.
    #[error("devnet could not listen on {addr}: {source}; pick another --port or free this one")]
    Bind {
        /// Address tried.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
    /// The RPC module could not be built.
    #[error("devnet RPC setup failed: {0}")]
    Rpc(String),
    /// A background task failed.
    #[error("devnet block production task failed: {0}")]
    Task(String),
}

/// A running devnet.
#[derive(Debug)]
pub struct Devnet {
    shared: Arc<rpc::Shared>,
    server: ServerHandle,
    addr: SocketAddr,
    producer: Option<JoinHandle<()>>,
    sealer: Option<JoinHandle<()>>,
}

impl Devnet {
    /// Build genesis, start the RPC server and (with a block time) the block producer.
    pub async fn spawn(config: DevnetConfig) -> Result<Self, DevnetError> {
        let storage = node::genesis_storage(&node::GenesisParams {
            tempo: config.tempo,
            dev_subnet: config.dev_subnet,
            dev_subnet_commit_reveal: config.dev_subnet_commit_reveal,
        })
        .map_err(DevnetError::Genesis)?;
        let mut chain = node::Chain::new(storage);
        if config.dev_beacon {
            chain.set_beacon(
                chain::timelock::DevBeacon::devnet(),
                chain::timelock::BeaconConfig::devnet(),
            );
        }
        let shared = Arc::new(rpc::Shared {
            chain: Mutex::new(chain),
            new_tx: tokio::sync::Notify::new(),
        });
        let module = rpc::module(shared.clone()).map_err(|e| DevnetError::Rpc(e.to_string()))?;
        let addr = SocketAddr::new(config.host, config.port);
        let server = Server::builder()
            .set_config(
                ServerConfig::builder()
                    .max_request_body_size(config.max_request_bytes)
                    .max_response_body_size(64 * 1024 * 1024)
                    .max_connections(config.max_connections)
                    .max_subscriptions_per_connection(4096)
                    .build(),
            )
            .build(addr)
            .await
            .map_err(|source| DevnetError::Bind { addr, source })?;
        let addr = server
            .local_addr()
            .map_err(|source| DevnetError::Bind { addr, source })?;
        let server = server.start(module);
        let producer = config.block_time.map(|period| {
            let shared = shared.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(period);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    let s = shared.clone();
                    match tokio::task::spawn_blocking(move || s.lock().produce_block()).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => tracing::error!("devnet: {e}"),
                        Err(e) => {
                            tracing::error!("devnet: block producer task failed: {e}; stopping it");
                            return;
                        }
                    }
                }
            })
        });
        let sealer = config.instant_seal.then(|| {
            let shared = shared.clone();
            tokio::spawn(async move {
                loop {
                    shared.new_tx.notified().await;
                    let s = shared.clone();
                    let produced = tokio::task::spawn_blocking(move || {
                        let mut chain = s.lock();
                        (chain.pool_len() > 0).then(|| chain.produce_block())
                    });
                    match produced.await {
                        Ok(Some(Err(e))) => tracing::error!("devnet: {e}"),
                        Ok(_) => {}
                        Err(e) => {
                            tracing::error!("devnet: sealer task failed: {e}; stopping it");
                            return;
                        }
                    }
                }
            })
        });
        Ok(Self {
            shared,
            server,
            addr,
            producer,
            sealer,
        })
    }

    /// The WebSocket endpoint, e.g. `ws://127.0.0.1:9944`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Produce one block now with the pool's transactions.
    pub async fn produce_block(&self) -> Result<Produced, DevnetError> {
        let s = self.shared.clone();
        tokio::task::spawn_blocking(move || s.lock().produce_block())
            .await
            .map_err(|e| DevnetError::Task(e.to_string()))?
            .map_err(DevnetError::Task)
    }

    /// The genesis hash.
    pub fn genesis_hash(&self) -> polkadot_sdk::sp_core::H256 {
        self.shared.lock().genesis_hash()
    }

    /// Validate and queue an encoded extrinsic in-process, as `author_submitExtrinsic` does.
    pub fn submit_extrinsic(&self, bytes: &[u8]) -> Result<polkadot_sdk::sp_core::H256, node::PoolError> {
        let hash = self.shared.lock().submit(bytes, None)?;
        self.shared.new_tx.notify_one();
        Ok(hash)
    }

    /// The head block number.
    pub fn best_number(&self) -> u32 {
        self.shared.lock().head_number()
    }

    /// Transactions waiting in the pool.
    pub fn pool_len(&self) -> usize {
        self.shared.lock().pool_len()
    }

    /// Run `f` against the head state (storage reads, pallet getters); changes are discarded.
    pub fn with_state<R>(&self, f: impl FnOnce() -> R) -> R {
        self.shared.lock().with_state(f)
    }

    /// The funded dev accounts.
    pub fn dev_accounts(&self) -> Vec<DevAccount> {
        dev_accounts()
    }

    /// Stop block production and the RPC server.
    pub async fn shutdown(mut self) {
        for p in [self.producer.take(), self.sealer.take()].into_iter().flatten() {
            p.abort();
            let _ = p.await;
        }
        let _ = self.server.stop();
        self.server.clone().stopped().await;
    }
}

impl Drop for Devnet {
    fn drop(&mut self) {
        for p in [self.producer.take(), self.sealer.take()].into_iter().flatten() {
            p.abort();
        }
        let _ = self.server.stop();
    }
}
