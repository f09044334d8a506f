//! The chain client: connect by network name or URL, read the metagraph and hyperparameters, and submit
//! extrinsics that never fail silently.
//!
//! ```no_run
//! # async fn demo() -> Result<(), chain::client::ChainError> {
//! use chain::client::{ChainClient, ClientConfig, Network};
//! use chain::keys::Keypair;
//!
//! let client = ChainClient::connect(&"devnet".parse::<Network>()?, ClientConfig::default()).await?;
//! let graph = client.metagraph(1).await?;
//! println!("{} uids at block {}", graph.neurons.len(), graph.block);
//!
//! let hotkey = Keypair::from_uri("//Alice").unwrap();
//! let result = client.set_weights(&hotkey, 1, &[0, 1], &[65535, 30000], 0).await?;
//! println!("{result:?}");
//! # Ok(()) }
//! ```
//!
//! Every call has a timeout. A failed connection is rebuilt with exponential backoff; submissions are
//! re-signed with a fresh nonce and mortal era on each retry (see [`crate::submit`]).

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parity_scale_codec::Encode;
use subxt::config::DefaultExtrinsicParamsBuilder;
use subxt::dynamic;
use subxt::ext::futures::future::join_all;
use subxt::ext::scale_decode::DecodeAsType;
use subxt::tx::TransactionStatus;
use subxt::utils::AccountId32;
use subxt::{OnlineClient, SubstrateConfig};
use tokio::sync::RwLock;

use crate::calls::{AxonSpec, Call, PALLET};
use crate::compat::{self, Report};
use crate::keys::{AccountId, Keypair};
use crate::mechanism::{EpochConsensus, Mechanisms};
use crate::metagraph::{self, AxonInfo, Hyperparams, Metagraph, Neuron, Source};
use crate::submit::{FailureKind, Outcome, RetryPolicy, SubmitReport, classify};
use crate::timelock::BeaconConfig;
use crate::weights::{self, WeightsError, WeightsPath};

type Api = OnlineClient<SubstrateConfig>;
type AtBlock = subxt::client::OnlineClientAtBlock<SubstrateConfig>;

/// Which chain to talk to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Network {
    /// The embedded devnet: `ws://127.0.0.1:9944`, or `TENSORPROOF_DEVNET_URL`.
    Devnet,
    /// A subtensor localnet: `ws://127.0.0.1:9944`, or `BT_SUBTENSOR_CHAIN_ENDPOINT`.
    Local,
    /// Bittensor testnet.
    Test,
    /// Bittensor mainnet.
    Finney,
    /// Any `ws://` or `wss://` endpoint.
    Url(String),
}

impl Network {
    /// The WebSocket endpoint.
    pub fn url(&self) -> String {
        match self {
            Self::Devnet => {
                std::env::var("TENSORPROOF_DEVNET_URL").unwrap_or_else(|_| "ws://127.0.0.1:9944".into())
            }
            Self::Local => {
                std::env::var("BT_SUBTENSOR_CHAIN_ENDPOINT").unwrap_or_else(|_| "ws://127.0.0.1:9944".into())
            }
            Self::Test => "wss://test.finney.opentensor.ai:443".into(),
            Self::Finney => "wss://entrypoint-finney.opentensor.ai:443".into(),
            Self::Url(u) => u.clone(),
        }
    }
}

impl FromStr for Network {
    type Err = ChainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "devnet" => Self::Devnet,
            "local" | "localnet" => Self::Local,
            "test" | "testnet" => Self::Test,
            "finney" | "main" | "mainnet" => Self::Finney,
            u if u.starts_with("ws://") || u.starts_with("wss://") => Self::Url(u.to_owned()),
            other => {
                return Err(ChainError::Config(format!(
                    "unknown network `{other}`; use devnet, local, test, finney or a ws:// / wss:// URL"
                )));
            }
        })
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Devnet => f.write_str("devnet"),
            Self::Local => f.write_str("local"),
            Self::Test => f.write_str("test"),
            Self::Finney => f.write_str("finney"),
            Self::Url(u) => f.write_str(u),
        }
    }
}

/// Client settings.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Connection attempts before giving up (each with backoff).
    pub connect_attempts: u32,
    /// Timeout for one RPC round trip (storage read, runtime call, submission).
    pub request_timeout: Duration,
    /// Time to wait for a submitted transaction to be included.
    pub inclusion_timeout: Duration,
    /// Mortality of signed transactions, in blocks.
    pub mortality_blocks: u64,
    /// Retry policy for submissions and reconnects.
    pub retry: RetryPolicy,
    /// The drand beacon for timelocked (CR-v4) commits on chains that do not name one in
    /// `Drand::BeaconConfig` (a chain that names a known beacon, quicknet or the devnet's, is followed).
    pub beacon: BeaconConfig,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            connect_attempts: 5,
            request_timeout: Duration::from_secs(30),
            inclusion_timeout: Duration::from_secs(60),
            mortality_blocks: 32,
            retry: RetryPolicy::default(),
            beacon: BeaconConfig::quicknet(),
        }
    }
}

/// What went wrong talking to the chain; each message names the fix.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// A bad setting.
    #[error("{0}")]
    Config(String),
    /// The endpoint could not be reached.
    #[error(
        "cannot reach the chain at {url} after {attempts} attempts ({last}); check the endpoint and that the node is running"
    )]
    Unreachable {
        /// Endpoint.
        url: String,
        /// Attempts made.
        attempts: u32,
        /// Last error.
        last: String,
    },
    /// The runtime lacks something the client needs.
    #[error("{0}")]
    Incompatible(String),
    /// An RPC or decoding error.
    #[error("chain request failed: {0}")]
    Rpc(String),
    /// A request exceeded its timeout.
    #[error("the chain did not answer {0} within the timeout; check the endpoint's health")]
    Timeout(&'static str),
    /// The subnet does not exist.
    #[error("subnet {0} does not exist on this chain; check --netuid")]
    NoSubnet(u16),
    /// The hotkey is not registered.
    #[error("hotkey {hotkey} is not registered on subnet {netuid}; register it first")]
    NotRegistered {
        /// Hotkey.
        hotkey: AccountId,
        /// Subnet.
        netuid: u16,
    },
    /// The weight vector would be refused.
    #[error(transparent)]
    Weights(#[from] WeightsError),
    /// This software's weights version key is below the subnet's minimum.
    #[error(
        "weights version key {ours} is below the subnet's WeightsVersionKey {chain}; upgrade the validator"
    )]
    VersionKeyTooLow {
        /// Ours.
        ours: u64,
        /// The chain's minimum.
        chain: u64,
    },
    /// The axon spec would be refused.
    #[error("{0}")]
    Axon(String),
    /// The timelocked weights commit could not be built.
    #[error("could not encrypt the timelocked weights commit: {0}; check the beacon public key")]
    Timelock(#[from] crate::timelock::TimelockError),
    /// The subnet has no such mechanism.
    #[error(
        "subnet {netuid} has {count} mechanism(s), so mechanism {mecid} does not exist (the chain refuses it with MechanismDoesNotExist); pick a mechanism below {count}"
    )]
    NoMechanism {
        /// Subnet.
        netuid: u16,
        /// The mechanism asked for.
        mecid: u8,
        /// `MechanismCountCurrent`.
        count: u8,
    },
}

/// The error's message plus the JSON-RPC `data` of a node error, which holds the reason a node refused
/// a transaction (e.g. `"Custom error: 6"`, `"Transaction is outdated"`) and which `Display` omits.
pub fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    use subxt::error::{BackendError, ExtrinsicError, RpcError};
    let mut msg = e.to_string();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        // Some wrappers do not expose their inner error as `source()`; descend through them by hand.
        let backend = match err.downcast_ref::<ExtrinsicError>() {
            Some(
                ExtrinsicError::ErrorSubmittingTransaction(b)
                | ExtrinsicError::TransactionStatusStreamError(b)
                | ExtrinsicError::CannotGetValidationInfo(b),
            ) => Some(b),
            _ => err.downcast_ref::<BackendError>(),
        };
        let rpc_err = match backend {
            Some(BackendError::Rpc(RpcError::ClientError(e))) => Some(e),
            _ => err.downcast_ref::<subxt::rpcs::Error>(),
        };
        let user = match rpc_err {
            Some(subxt::rpcs::Error::User(u)) => Some(u),
            _ => err.downcast_ref::<subxt::rpcs::UserError>(),
        };
        if let Some(u) = user {
            if let Some(data) = &u.data {
                msg.push_str(": ");
                msg.push_str(data.get().trim_matches('"'));
            }
            break;
        }
        cur = err.source();
    }
    msg
}

fn rpc(e: impl fmt::Display) -> ChainError {
    ChainError::Rpc(e.to_string())
}

/// A connected chain client. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct ChainClient {
    url: String,
    config: ClientConfig,
    api: RwLock<Api>,
    report: Report,
}

async fn open(url: &str, timeout: Duration) -> Result<Api, String> {
    let fut = async {
        if url.starts_with("ws://") {
            Api::from_insecure_url(url).await
        } else {
            Api::from_url(url).await
        }
    };
    match tokio::time::timeout(timeout, fut).await {
        Ok(Ok(api)) => Ok(api),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("timed out".into()),
    }
}

impl ChainClient {
    /// Connects, checks the runtime against [`compat::check`], and logs the spec version.
    pub async fn connect(network: &Network, config: ClientConfig) -> Result<Self, ChainError> {
        let url = network.url();
        let api = Self::open_with_backoff(&url, &config).await?;
        let at = tokio::time::timeout(config.request_timeout, api.at_current_block())
            .await
            .map_err(|_| ChainError::Timeout("the current block"))?
            .map_err(rpc)?;
        let report = compat::check(&at.metadata())
            .into_result()
            .map_err(ChainError::Incompatible)?;
        for line in &report.degraded {
            tracing::warn!(%url, "{line}; using a fallback or default");
        }
        tracing::info!(
            network = %network,
            %url,
            spec_version = at.spec_version(),
            transaction_version = at.transaction_version(),
            block = at.block_number(),
            "connected to chain"
        );
        Ok(Self {
            url,
            config,
            api: RwLock::new(api),
            report,
        })
    }

    async fn open_with_backoff(url: &str, config: &ClientConfig) -> Result<Api, ChainError> {
        let attempts = config.connect_attempts.max(1);
        let mut last = String::new();
        for attempt in 1..=attempts {
            match open(url, config.request_timeout).await {
                Ok(api) => return Ok(api),
                Err(e) => {
                    tracing::warn!(%url, attempt, error = %e, "cannot connect to the chain");
                    last = e;
                }
            }
            if attempt < attempts {
                tokio::time::sleep(config.retry.backoff(attempt)).await;
            }
        }
        Err(ChainError::Unreachable {
            url: url.to_owned(),
            attempts,
            last,
        })
    }

    /// Replaces the connection (after a connection failure).
    pub async fn reconnect(&self) -> Result<(), ChainError> {
        let api = Self::open_with_backoff(&self.url, &self.config).await?;
        *self.api.write().await = api;
        tracing::info!(url = %self.url, "reconnected to chain");
        Ok(())
    }

    /// The endpoint.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// What the compatibility check found on connect.
    pub const fn compat_report(&self) -> &Report {
        &self.report
    }

    async fn at_best(&self) -> Result<AtBlock, ChainError> {
        let api = self.api.read().await.clone();
        tokio::time::timeout(self.config.request_timeout, api.at_current_block())
            .await
            .map_err(|_| ChainError::Timeout("the current block"))?
            .map_err(rpc)
    }

    /// The best block number.
    pub async fn block_number(&self) -> Result<u64, ChainError> {
        Ok(self.at_best().await?.block_number())
    }

    /// The runtime's spec version.
    pub async fn spec_version(&self) -> Result<u32, ChainError> {
        Ok(self.at_best().await?.spec_version())
    }

    async fn fetch<K, V>(&self, at: &AtBlock, entry: &str, keys: K) -> Result<V, ChainError>
    where
        K: subxt::ext::frame_decode::storage::IntoEncodableValues
            + subxt::ext::frame_decode::storage::IntoDecodableValues,
        V: DecodeAsType,
    {
        self.fetch_in(at, PALLET, entry, keys).await
    }

    async fn fetch_in<K, V>(&self, at: &AtBlock, pallet: &str, entry: &str, keys: K) -> Result<V, ChainError>
    where
        K: subxt::ext::frame_decode::storage::IntoEncodableValues
            + subxt::ext::frame_decode::storage::IntoDecodableValues,
        V: DecodeAsType,
    {
        let addr = dynamic::storage::<K, V>(pallet, entry);
        let value = tokio::time::timeout(self.config.request_timeout, at.storage().fetch(addr, keys))
            .await
            .map_err(|_| ChainError::Timeout("a storage read"))?
            .map_err(|e| ChainError::Rpc(format!("{pallet}::{entry}: {e}")))?;
        value
            .decode()
            .map_err(|e| ChainError::Rpc(format!("{pallet}::{entry}: {e}")))
    }

    /// The beacon the chain's `Drand` pallet follows (`Drand::BeaconConfig`), as a known
    /// [`BeaconConfig`]: the configured one when the keys match or the chain does not say, drand
    /// quicknet or the embedded devnet's by key otherwise. A beacon this client does not know is an
    /// error: a commit to it would never open.
    async fn chain_beacon(&self, at: &AtBlock) -> Result<BeaconConfig, ChainError> {
        let has = at
            .metadata_ref()
            .pallet_by_name("Drand")
            .and_then(|p| p.storage())
            .and_then(|s| s.entry_by_name("BeaconConfig"))
            .is_some();
        if !has {
            return Ok(self.config.beacon.clone());
        }
        let on_chain: ChainBeacon = self.fetch_in(at, "Drand", "BeaconConfig", ()).await?;
        let key = on_chain.public_key;
        if key.is_empty() || key == self.config.beacon.public_key {
            return Ok(self.config.beacon.clone());
        }
        BeaconConfig::known(&key).ok_or_else(|| {
            ChainError::Config(format!(
                "the chain's drand beacon (public key {}) is neither drand quicknet nor the embedded devnet's; \
                 set the client's beacon (ClientConfig::beacon) to it",
                hex::encode(&key)
            ))
        })
    }

    /// Milliseconds per block at `at`, measured from `Timestamp::Now` over up to the last 16 blocks
    /// (genesis, whose timestamp is 0, excluded).
    async fn measured_block_time_ms(&self, at: &AtBlock) -> Result<u64, ChainError> {
        let now_block = at.block_number();
        let span = now_block.saturating_sub(1).min(16);
        if span == 0 {
            return Err(ChainError::Rpc(
                "the chain is too young to measure its block time; retry in a few blocks".into(),
            ));
        }
        let api = self.api.read().await.clone();
        let earlier = tokio::time::timeout(self.config.request_timeout, api.at_block(now_block - span))
            .await
            .map_err(|_| ChainError::Timeout("an earlier block"))?
            .map_err(rpc)?;
        let t_now: u64 = self.fetch_in(at, "Timestamp", "Now", ()).await?;
        let t_then: u64 = self.fetch_in(&earlier, "Timestamp", "Now", ()).await?;
        Ok(t_now.saturating_sub(t_then) / span)
    }

    /// Like [`Self::fetch`] for an `OptionQuery` entry: `None` when no value is stored.
    async fn try_fetch<K, V>(&self, at: &AtBlock, entry: &str, keys: K) -> Result<Option<V>, ChainError>
    where
        K: subxt::ext::frame_decode::storage::IntoEncodableValues
            + subxt::ext::frame_decode::storage::IntoDecodableValues,
        V: DecodeAsType,
    {
        let addr = dynamic::storage::<K, V>(PALLET, entry);
        let value = tokio::time::timeout(self.config.request_timeout, at.storage().try_fetch(addr, keys))
            .await
            .map_err(|_| ChainError::Timeout("a storage read"))?
            .map_err(|e| ChainError::Rpc(format!("{PALLET}::{entry}: {e}")))?;
        value
            .map(|v| v.decode())
            .transpose()
            .map_err(|e| ChainError::Rpc(format!("{PALLET}::{entry}: {e}")))
    }

    /// Like [`Self::fetch`], but `default` when this runtime does not have the entry.
    async fn fetch_or<K, V>(&self, at: &AtBlock, entry: &str, keys: K, default: V) -> Result<V, ChainError>
    where
        K: subxt::ext::frame_decode::storage::IntoEncodableValues
            + subxt::ext::frame_decode::storage::IntoDecodableValues,
        V: DecodeAsType,
    {
        if has_storage(at, entry) {
            self.fetch(at, entry, keys).await
        } else {
            Ok(default)
        }
    }

    async fn hyperparams_at(&self, at: &AtBlock, netuid: u16) -> Result<Hyperparams, ChainError> {
        let k = (netuid,);
        if !self.fetch::<_, bool>(at, "NetworksAdded", k).await? {
            return Err(ChainError::NoSubnet(netuid));
        }
        Ok(Hyperparams {
            n: self.fetch(at, "SubnetworkN", k).await?,
            tempo: self.fetch(at, "Tempo", k).await?,
            weights_rate_limit: self.fetch(at, "WeightsSetRateLimit", k).await?,
            weights_version_key: self.fetch(at, "WeightsVersionKey", k).await?,
            min_allowed_weights: self.fetch(at, "MinAllowedWeights", k).await?,
            max_weights_limit: self.fetch(at, "MaxWeightsLimit", k).await?,
            commit_reveal_enabled: self.fetch(at, "CommitRevealWeightsEnabled", k).await?,
            reveal_period_epochs: self.fetch_or(at, "RevealPeriodEpochs", k, 1).await?,
            commit_reveal_version: if has_storage(at, "CommitRevealWeightsVersion") {
                Some(self.fetch(at, "CommitRevealWeightsVersion", ()).await?)
            } else {
                None
            },
            max_allowed_uids: self.fetch_or(at, "MaxAllowedUids", k, 256).await?,
            immunity_period: self.fetch_or(at, "ImmunityPeriod", k, 4096).await?,
            serving_rate_limit: self.fetch_or(at, "ServingRateLimit", k, 50).await?,
            burn: self.fetch_or(at, "Burn", k, 0).await?,
            registration_allowed: self.fetch_or(at, "NetworkRegistrationAllowed", k, true).await?,
        })
    }

    /// The subnet's hyperparameters at the best block.
    pub async fn hyperparams(&self, netuid: u16) -> Result<Hyperparams, ChainError> {
        let at = self.at_best().await?;
        self.hyperparams_at(&at, netuid).await
    }

    /// The metagraph at the best block: the runtime API first, storage as the fallback.
    pub async fn metagraph(&self, netuid: u16) -> Result<Metagraph, ChainError> {
        let at = self.at_best().await?;
        self.metagraph_here(&at, netuid).await
    }

    /// The metagraph at `at`: the runtime API first, storage as the fallback.
    async fn metagraph_here(&self, at: &AtBlock, netuid: u16) -> Result<Metagraph, ChainError> {
        let from_api = if self.report.has_neurons_api {
            match self.neurons_from_api(at, netuid).await {
                Ok(n) => Some(n),
                Err(e) => {
                    tracing::warn!(netuid, error = %e, "neuron runtime API failed; reading storage instead");
                    None
                }
            }
        } else {
            None
        };
        self.metagraph_in(at, netuid, from_api).await
    }

    /// The subnet's mechanisms at the best block: `MechanismCountCurrent` and `MechanismEmissionSplit`
    /// (one mechanism, even split, on runtimes without them).
    pub async fn mechanisms(&self, netuid: u16) -> Result<Mechanisms, ChainError> {
        let at = self.at_best().await?;
        self.mechanisms_at(&at, netuid).await
    }

    async fn mechanisms_at(&self, at: &AtBlock, netuid: u16) -> Result<Mechanisms, ChainError> {
        let k = (netuid,);
        let count: u8 = self.fetch_or(at, "MechanismCountCurrent", k, 1).await?;
        let emission_split = if has_storage(at, "MechanismEmissionSplit") {
            self.try_fetch::<_, Vec<u16>>(at, "MechanismEmissionSplit", k)
                .await?
        } else {
            None
        };
        Ok(Mechanisms {
            count,
            emission_split,
        })
    }

    /// How the subnet's epoch computes rewards (`SubnetEpochConsensus`), [`EpochConsensus::Yuma`] on
    /// runtimes without it.
    pub async fn epoch_consensus(&self, netuid: u16) -> Result<EpochConsensus, ChainError> {
        let at = self.at_best().await?;
        self.fetch_or(&at, "SubnetEpochConsensus", (netuid,), EpochConsensus::Yuma)
            .await
    }

    /// The metagraph of mechanism `mecid` of the subnet at the best block, as subtensor's
    /// `get_mechagraph` gives it: the subnet's metagraph with each neuron's `incentive` and
    /// `last_update` read from the mechanism (`Incentive` and `LastUpdate` at
    /// [`weights::storage_index`]). `dividends`, `consensus`, `validator_trust` and `emission` stay the
    /// subnet's: the chain keeps them per subnet, each mechanism's weighted by its emission share.
    /// Mechanism 0 equals [`Self::metagraph`].
    pub async fn mechanism_metagraph(&self, netuid: u16, mecid: u8) -> Result<Metagraph, ChainError> {
        let at = self.at_best().await?;
        let mechanisms = self.mechanisms_at(&at, netuid).await?;
        if !mechanisms.has(mecid) {
            return Err(ChainError::NoMechanism {
                netuid,
                mecid,
                count: mechanisms.count,
            });
        }
        let mut graph = self.metagraph_here(&at, netuid).await?;
        if mecid != 0 {
            let idx = (weights::storage_index(netuid, mecid),);
            let incentive: Vec<u16> = self.fetch(&at, "Incentive", idx).await?;
            let last_update: Vec<u64> = self.fetch(&at, "LastUpdate", idx).await?;
            for n in &mut graph.neurons {
                let i = usize::from(n.uid);
                n.incentive = incentive.get(i).copied().unwrap_or(0);
                n.last_update = last_update.get(i).copied().unwrap_or(0);
            }
        }
        Ok(graph)
    }

    /// The metagraph at block `number` (kept by the node: recent blocks, or any on an archive node),
    /// read through `source` only: the runtime API, or the storage items the fallback reads.
    pub async fn metagraph_at(
        &self,
        netuid: u16,
        number: u64,
        source: Source,
    ) -> Result<Metagraph, ChainError> {
        let api = self.api.read().await.clone();
        let at = tokio::time::timeout(self.config.request_timeout, api.at_block(number))
            .await
            .map_err(|_| ChainError::Timeout("a past block"))?
            .map_err(rpc)?;
        let from_api = match source {
            Source::RuntimeApi => Some(self.neurons_from_api(&at, netuid).await?),
            Source::Storage => None,
        };
        self.metagraph_in(&at, netuid, from_api).await
    }

    /// The metagraph at `at` with the neurons already read from the runtime API, or from storage.
    async fn metagraph_in(
        &self,
        at: &AtBlock,
        netuid: u16,
        from_api: Option<Vec<Neuron>>,
    ) -> Result<Metagraph, ChainError> {
        let hyperparams = self.hyperparams_at(at, netuid).await?;
        let (neurons, source) = match from_api {
            Some(n) => (n, Source::RuntimeApi),
            None => (
                self.neurons_from_storage(at, netuid, hyperparams.n).await?,
                Source::Storage,
            ),
        };
        Ok(Metagraph {
            netuid,
            block: at.block_number(),
            block_hash: at.block_hash().0,
            neurons,
            hyperparams,
            source,
        })
    }

    async fn neurons_from_api(&self, at: &AtBlock, netuid: u16) -> Result<Vec<Neuron>, ChainError> {
        let (api, method) = metagraph::NEURONS_LITE_API;
        let args = netuid.encode();
        let bytes = tokio::time::timeout(
            self.config.request_timeout,
            at.runtime_apis()
                .call_raw(&format!("{api}_{method}"), Some(&args)),
        )
        .await
        .map_err(|_| ChainError::Timeout("the neuron runtime API"))?
        .map_err(rpc)?;
        metagraph::decode_neurons_lite(&bytes, at.metadata_ref()).map_err(rpc)
    }

    /// Reads the neurons from individual storage items (for runtimes without the neuron API).
    pub async fn neurons_from_storage_at_best(&self, netuid: u16) -> Result<Vec<Neuron>, ChainError> {
        let at = self.at_best().await?;
        let n: u16 = self.fetch(&at, "SubnetworkN", (netuid,)).await?;
        self.neurons_from_storage(&at, netuid, n).await
    }

    async fn neurons_from_storage(
        &self,
        at: &AtBlock,
        netuid: u16,
        n: u16,
    ) -> Result<Vec<Neuron>, ChainError> {
        let k = (netuid,);
        let active: Vec<bool> = self.fetch_or(at, "Active", k, Vec::new()).await?;
        let permit: Vec<bool> = self.fetch_or(at, "ValidatorPermit", k, Vec::new()).await?;
        let consensus: Vec<u16> = self.fetch_or(at, "Consensus", k, Vec::new()).await?;
        let dividends: Vec<u16> = self.fetch_or(at, "Dividends", k, Vec::new()).await?;
        let validator_trust: Vec<u16> = self.fetch_or(at, "ValidatorTrust", k, Vec::new()).await?;
        let incentive: Vec<u16> = self.fetch_or(at, "Incentive", k, Vec::new()).await?;
        let emission: Vec<u64> = self.fetch_or(at, "Emission", k, Vec::new()).await?;
        let last_update: Vec<u64> = self.fetch(at, "LastUpdate", k).await?;
        let get = |v: &[u16], i: usize| v.get(i).copied().unwrap_or(0);
        let mut neurons = Vec::with_capacity(usize::from(n));
        // Bounded concurrency: 32 uids (≈100 reads) in flight at a time.
        let uids: Vec<u16> = (0..n).collect();
        for chunk in uids.chunks(32) {
            let reads = chunk.iter().map(|&uid| async move {
                let hotkey: AccountId32 = self.fetch(at, "Keys", (netuid, uid)).await?;
                let coldkey: AccountId32 = self.fetch_or(at, "Owner", (hotkey,), hotkey).await?;
                let axon = self.fetch_axon(at, netuid, hotkey).await?;
                let stake: u64 = self.fetch_or(at, "TotalHotkeyAlpha", (hotkey, netuid), 0).await?;
                Ok::<_, ChainError>((uid, hotkey, coldkey, axon, stake))
            });
            for r in join_all(reads).await {
                let (uid, hotkey, coldkey, axon, stake) = r?;
                let i = usize::from(uid);
                neurons.push(Neuron {
                    uid,
                    hotkey: AccountId(hotkey.0),
                    coldkey: AccountId(coldkey.0),
                    axon: axon.and_then(|a| a.to_axon()),
                    stake,
                    validator_permit: permit.get(i).copied().unwrap_or(false),
                    last_update: last_update.get(i).copied().unwrap_or(0),
                    incentive: get(&incentive, i),
                    dividends: get(&dividends, i),
                    consensus: get(&consensus, i),
                    validator_trust: get(&validator_trust, i),
                    emission: emission.get(i).copied().unwrap_or(0),
                    active: active.get(i).copied().unwrap_or(false),
                });
            }
        }
        Ok(neurons)
    }

    async fn fetch_axon(
        &self,
        at: &AtBlock,
        netuid: u16,
        hotkey: AccountId32,
    ) -> Result<Option<AxonInfo>, ChainError> {
        let has = at
            .metadata_ref()
            .pallet_by_name(PALLET)
            .and_then(|p| p.storage())
            .and_then(|s| s.entry_by_name("Axons"))
            .is_some();
        if !has {
            return Ok(None);
        }
        let addr = dynamic::storage::<(u16, AccountId32), AxonInfo>(PALLET, "Axons");
        let v = tokio::time::timeout(
            self.config.request_timeout,
            at.storage().try_fetch(addr, (netuid, hotkey)),
        )
        .await
        .map_err(|_| ChainError::Timeout("an axon read"))?
        .map_err(rpc)?;
        v.map(|v| v.decode().map_err(rpc)).transpose()
    }

    /// The uid of `hotkey` on `netuid`, if registered.
    pub async fn uid_of(&self, netuid: u16, hotkey: &AccountId) -> Result<Option<u16>, ChainError> {
        let at = self.at_best().await?;
        self.uid_at(&at, netuid, hotkey).await
    }

    async fn uid_at(&self, at: &AtBlock, netuid: u16, hotkey: &AccountId) -> Result<Option<u16>, ChainError> {
        let addr = dynamic::storage::<(u16, AccountId32), u16>(PALLET, "Uids");
        let v = tokio::time::timeout(
            self.config.request_timeout,
            at.storage().try_fetch(addr, (netuid, AccountId32(hotkey.0))),
        )
        .await
        .map_err(|_| ChainError::Timeout("a uid read"))?
        .map_err(rpc)?;
        v.map(|v| v.decode().map_err(rpc)).transpose()
    }

    /// Signs `call` with `signer`, submits it, and waits for inclusion; retries transient failures with
    /// a fresh nonce and era, reconnecting when the connection failed. Never fails silently: the
    /// report says where it ended.
    pub async fn submit(&self, call: &Call, signer: &Keypair) -> SubmitReport {
        let started = Instant::now();
        let policy = &self.config.retry;
        let mut attempt = 0;
        // The earliest attempt whose fate is unknown (sent, then the connection dropped or it timed out
        // or left the pool). It may still land; only one transaction per nonce can, so the account
        // nonce tells whether it did, and resubmitting blindly would double-submit.
        let mut in_doubt: Option<(u64, String)> = None;
        loop {
            attempt += 1;
            let mut sent = None;
            let mut outcome = self.submit_once(call, signer, &mut sent).await;
            let kind = match &outcome {
                Outcome::Included { .. } => None,
                Outcome::Failed { kind, .. } => Some(*kind),
            };
            if let (Some(kind), Some(s)) = (kind, sent)
                && kind.retryable()
                && in_doubt.is_none()
            {
                in_doubt = Some(s);
            }
            match kind {
                Some(kind) if policy.should_retry(attempt, kind) => {
                    tracing::warn!(
                        call = call.name(),
                        attempt,
                        ?kind,
                        ?outcome,
                        "submission failed; retrying"
                    );
                    if kind == FailureKind::Connection
                        && let Err(e) = self.reconnect().await
                    {
                        tracing::warn!(error = %e, "reconnect failed");
                    }
                    tokio::time::sleep(policy.backoff(attempt)).await;
                    if let Some(landed) = self.landed(call, signer, in_doubt.as_ref()).await {
                        return self.finish(call, attempt, started, landed);
                    }
                }
                Some(_) => {
                    if let Some(landed) = self.landed(call, signer, in_doubt.as_ref()).await {
                        outcome = landed;
                    }
                    return self.finish(call, attempt, started, outcome);
                }
                None => return self.finish(call, attempt, started, outcome),
            }
        }
    }

    /// `Included` if the in-doubt transaction's nonce has been consumed.
    async fn landed(
        &self,
        call: &Call,
        signer: &Keypair,
        in_doubt: Option<&(u64, String)>,
    ) -> Option<Outcome> {
        let (nonce, tx_hash) = in_doubt?;
        let next = self.account_nonce(&signer.account()).await.ok()?;
        crate::submit::landed_by_nonce(*nonce, next).then(|| {
            tracing::warn!(call = call.name(), %tx_hash, "lost track of the transaction, but its nonce was consumed: included");
            Outcome::Included { block: 0, block_hash: String::new(), tx_hash: tx_hash.clone() }
        })
    }

    fn finish(&self, call: &Call, attempts: u32, started: Instant, outcome: Outcome) -> SubmitReport {
        let report = SubmitReport {
            call: call.name(),
            attempts,
            latency: started.elapsed(),
            outcome,
        };
        if report.is_included() {
            tracing::info!(
                call = call.name(),
                attempts,
                latency_ms = report.latency.as_millis() as u64,
                "included"
            );
        } else {
            tracing::error!(call = call.name(), attempts, outcome = ?report.outcome, "submission failed");
        }
        report
    }

    /// The next nonce the chain expects from `account` (at the best block).
    pub async fn account_nonce(&self, account: &AccountId) -> Result<u64, ChainError> {
        let at = self.at_best().await?;
        tokio::time::timeout(
            self.config.request_timeout,
            at.transactions().account_nonce(&AccountId32(account.0)),
        )
        .await
        .map_err(|_| ChainError::Timeout("the account nonce"))?
        .map_err(rpc)
    }

    async fn submit_once(&self, call: &Call, signer: &Keypair, sent: &mut Option<(u64, String)>) -> Outcome {
        let fail = |message: String| {
            let kind = classify(&message);
            Outcome::Failed {
                kind,
                message: format!("{message} ({})", kind.hint()),
            }
        };
        let timeout = self.config.request_timeout;
        let at = match self.at_best().await {
            Ok(at) => at,
            Err(ChainError::Timeout(what)) => {
                return Outcome::Failed {
                    kind: FailureKind::Connection,
                    message: format!("timed out reading {what}"),
                };
            }
            Err(e) => {
                return Outcome::Failed {
                    kind: FailureKind::Connection,
                    message: e.to_string(),
                };
            }
        };
        let payload = call.payload();
        let mut txs = at.transactions();
        let account = AccountId32(signer.account().0);
        let nonce = match tokio::time::timeout(timeout, txs.account_nonce(&account)).await {
            Ok(Ok(n)) => n,
            Ok(Err(e)) => return fail(describe(&e)),
            Err(_) => {
                return Outcome::Failed {
                    kind: FailureKind::Connection,
                    message: "timed out reading the account nonce".into(),
                };
            }
        };
        let params = DefaultExtrinsicParamsBuilder::<SubstrateConfig>::new()
            .mortal(self.config.mortality_blocks)
            .nonce(nonce)
            .build();
        let signed = match tokio::time::timeout(timeout, txs.create_signed(&payload, signer, params)).await {
            Ok(Ok(tx)) => tx,
            Ok(Err(e)) => return fail(describe(&e)),
            Err(_) => {
                return Outcome::Failed {
                    kind: FailureKind::Connection,
                    message: "timed out signing".into(),
                };
            }
        };
        let tx_hash = format!("0x{}", hex::encode(signed.hash().0));
        *sent = Some((nonce, tx_hash.clone()));
        let mut progress = match tokio::time::timeout(timeout, signed.submit_and_watch()).await {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => return fail(describe(&e)),
            Err(_) => {
                return Outcome::Failed {
                    kind: FailureKind::Connection,
                    message: "timed out submitting".into(),
                };
            }
        };
        let deadline = tokio::time::Instant::now() + self.config.inclusion_timeout;
        loop {
            let next = match tokio::time::timeout_at(deadline, progress.next()).await {
                Err(_) => {
                    return Outcome::Failed {
                        kind: FailureKind::Timeout,
                        message: format!(
                            "not included within {:?} ({})",
                            self.config.inclusion_timeout,
                            FailureKind::Timeout.hint()
                        ),
                    };
                }
                Ok(None) => return fail("transaction status stream closed (connection dropped)".into()),
                Ok(Some(Err(e))) => return fail(describe(&e)),
                Ok(Some(Ok(status))) => status,
            };
            match next {
                TransactionStatus::Validated
                | TransactionStatus::Broadcasted
                | TransactionStatus::NoLongerInBestBlock => {}
                TransactionStatus::InBestBlock(in_block) | TransactionStatus::InFinalizedBlock(in_block) => {
                    let block_hash = in_block.block_hash();
                    let result = tokio::time::timeout(timeout, in_block.wait_for_success()).await;
                    return match result {
                        Err(_) => Outcome::Failed {
                            kind: FailureKind::Connection,
                            message: "timed out reading the block's events".into(),
                        },
                        Ok(Err(e)) => fail(describe(&e)),
                        Ok(Ok(_events)) => {
                            let block = match tokio::time::timeout(
                                timeout,
                                self.api.read().await.clone().at_block(block_hash),
                            )
                            .await
                            {
                                Ok(Ok(b)) => b.block_number(),
                                _ => 0,
                            };
                            Outcome::Included {
                                block,
                                block_hash: format!("0x{}", hex::encode(block_hash.0)),
                                tx_hash,
                            }
                        }
                    };
                }
                TransactionStatus::Error { message } => return fail(message),
                TransactionStatus::Invalid { message } => return fail(format!("invalid: {message}")),
                TransactionStatus::Dropped { message } => return fail(format!("dropped: {message}")),
            }
        }
    }

    /// Registers `hotkey` on `netuid`, paying the burn from `coldkey`.
    pub async fn burned_register(&self, coldkey: &Keypair, netuid: u16, hotkey: &AccountId) -> SubmitReport {
        self.submit(
            &Call::BurnedRegister {
                netuid,
                hotkey: *hotkey,
            },
            coldkey,
        )
        .await
    }

    /// Announces the miner's axon. The address is checked first as the chain checks it.
    pub async fn serve_axon(
        &self,
        hotkey: &Keypair,
        netuid: u16,
        axon: AxonSpec,
    ) -> Result<SubmitReport, ChainError> {
        axon.validate().map_err(ChainError::Axon)?;
        Ok(self.submit(&Call::ServeAxon { netuid, axon }, hotkey).await)
    }

    /// Sets weights the way the subnet requires: reads the hyperparameters, checks the vector,
    /// respects the rate limit (without submitting when it is not yet allowed), and uses `set_weights`,
    /// a timelocked (CR-v4) commit or a CR-v2 commit as [`weights::choose_path`] decides from the
    /// chain. `version_key` 0 uses the subnet's `WeightsVersionKey`; a non-zero key below it is refused
    /// before submission (the subnet owner raised it to require an upgrade). Mechanism 0; see
    /// [`Self::set_mechanism_weights`].
    pub async fn set_weights(
        &self,
        hotkey: &Keypair,
        netuid: u16,
        uids: &[u16],
        values: &[u16],
        version_key: u64,
    ) -> Result<WeightsResult, ChainError> {
        self.set_mechanism_weights(hotkey, netuid, 0, uids, values, version_key)
            .await
    }

    /// [`Self::set_weights`] for mechanism `mecid` of the subnet. On a runtime with the SDK 11.3's
    /// mechanism calls ([`crate::calls::MECHANISM_CALLS`]: finney) the weights go through
    /// `set_mechanism_weights` or `commit_timelocked_mechanism_weights`, as the SDK sends them; on one
    /// without (older runtimes, the devnet) through the legacy calls, which only know mechanism 0.
    pub async fn set_mechanism_weights(
        &self,
        hotkey: &Keypair,
        netuid: u16,
        mecid: u8,
        uids: &[u16],
        values: &[u16],
        version_key: u64,
    ) -> Result<WeightsResult, ChainError> {
        let at = self.at_best().await?;
        let mechanisms = compat::has_mechanism_calls(at.metadata_ref());
        if mecid != 0 && !mechanisms {
            return Err(ChainError::Config(format!(
                "mechanism {mecid} asked for, but this runtime has no mechanism weight calls; use mechanism 0"
            )));
        }
        let hp = self.hyperparams_at(&at, netuid).await?;
        let count = self.mechanisms_at(&at, netuid).await?.count;
        if mecid >= count {
            return Err(ChainError::NoMechanism { netuid, mecid, count });
        }
        let me = hotkey.account();
        let uid = self
            .uid_at(&at, netuid, &me)
            .await?
            .ok_or(ChainError::NotRegistered { hotkey: me, netuid })?;
        let (uids, values) = weights::prepare(uids, values, Some(uid), &hp.weight_limits())?;
        let version_key = match version_key {
            0 => hp.weights_version_key,
            ours if ours < hp.weights_version_key => {
                return Err(ChainError::VersionKeyTooLow {
                    ours,
                    chain: hp.weights_version_key,
                });
            }
            ours => ours,
        };
        let last_updates: Vec<u64> = self
            .fetch(&at, "LastUpdate", (weights::storage_index(netuid, mecid),))
            .await?;
        let last_update = last_updates.get(usize::from(uid)).copied().unwrap_or(0);
        let now = at.block_number();
        let next_allowed = weights::next_allowed_block(last_update, hp.weights_rate_limit);
        if now < next_allowed {
            return Ok(WeightsResult::RateLimited {
                now,
                next_allowed_block: next_allowed,
            });
        }
        let v = ReadyWeights {
            netuid,
            mecid,
            mechanisms,
            uids,
            values,
            version_key,
            now,
        };
        match weights::choose_path(hp.commit_reveal_enabled, hp.commit_reveal_version) {
            WeightsPath::Direct => {
                let call = if v.mechanisms {
                    Call::SetMechanismWeights {
                        netuid,
                        mecid: v.mecid,
                        uids: v.uids,
                        values: v.values,
                        version_key,
                    }
                } else {
                    Call::SetWeights {
                        netuid,
                        uids: v.uids,
                        values: v.values,
                        version_key,
                    }
                };
                let report = self.submit(&call, hotkey).await;
                let next_allowed_block = next_after(&report, now, hp.weights_rate_limit);
                Ok(WeightsResult::Set {
                    report,
                    next_allowed_block,
                })
            }
            WeightsPath::CommitReveal if mecid != 0 => Err(ChainError::Config(format!(
                "mechanism {mecid}: this client sends hash (CR-v2) commits for mechanism 0 only"
            ))),
            WeightsPath::CommitReveal => Ok(self.commit_hashed(hotkey, &hp, v).await),
            WeightsPath::Timelocked(version) => self.commit_timelocked(&at, hotkey, &hp, v, version).await,
        }
    }

    /// The CR-v2 path: commits the hash of the vector and a fresh salt; the caller reveals later.
    async fn commit_hashed(&self, hotkey: &Keypair, hp: &Hyperparams, v: ReadyWeights) -> WeightsResult {
        let salt = weights::random_salt(8);
        let hash = weights::commit_hash(
            &hotkey.account(),
            weights::storage_index(v.netuid, 0),
            &v.uids,
            &v.values,
            &salt,
            v.version_key,
        );
        let report = self
            .submit(
                &Call::CommitWeights {
                    netuid: v.netuid,
                    hash,
                },
                hotkey,
            )
            .await;
        let next_allowed_block = next_after(&report, v.now, hp.weights_rate_limit);
        WeightsResult::Committed {
            report,
            pending: PendingReveal {
                netuid: v.netuid,
                uids: v.uids,
                values: v.values,
                salt,
                version_key: v.version_key,
                commit_hash: hash,
            },
            next_allowed_block,
        }
    }

    /// The CR-v4 path: a drand-timelocked commit the chain opens itself in the reveal epoch.
    async fn commit_timelocked(
        &self,
        at: &AtBlock,
        hotkey: &Keypair,
        hp: &Hyperparams,
        v: ReadyWeights,
        commit_reveal_version: u16,
    ) -> Result<WeightsResult, ChainError> {
        let now = v.now;
        let reveal_block = self
            .reveal_block_at(at, v.netuid, hp.reveal_period_epochs)
            .await?;
        let beacon = self.chain_beacon(at).await?;
        let block_time_ms = match beacon.block_time_ms {
            Some(default) => compat::slot_duration_ms(at.metadata_ref()).unwrap_or(default),
            None => self.measured_block_time_ms(at).await?,
        };
        // A round the chain already holds when the commit lands is refused (InvalidRevealRound,
        // nothing included): aim again from the new time, two blocks later per try, at most
        // TIMELOCK_COMMIT_TRIES times.
        let mut attempt = 0;
        let (report, reveal_round) = loop {
            attempt += 1;
            let slack_ms = u64::from(attempt - 1) * 2 * block_time_ms;
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            let reveal_round =
                beacon.round_for(now_ms + slack_ms, reveal_block.saturating_sub(now), block_time_ms);
            let commit = crate::timelock::encrypt_weights_commit(
                &hotkey.account().0,
                &v.uids,
                &v.values,
                v.version_key,
                reveal_round,
                &beacon.public_key,
            )?;
            let call = if v.mechanisms {
                Call::CommitTimelockedMechanismWeights {
                    netuid: v.netuid,
                    mecid: v.mecid,
                    commit,
                    reveal_round,
                    commit_reveal_version,
                }
            } else {
                Call::CommitTimelockedWeights {
                    netuid: v.netuid,
                    commit,
                    reveal_round,
                    commit_reveal_version,
                }
            };
            let report = self.submit(&call, hotkey).await;
            if attempt < TIMELOCK_COMMIT_TRIES
                && report.failure() == Some(crate::submit::FailureKind::RevealRejected)
            {
                tracing::warn!(
                    netuid = v.netuid,
                    reveal_round,
                    "the chain already holds the pulse; committing again"
                );
                continue;
            }
            break (report, reveal_round);
        };
        let next_allowed_block = next_after(&report, now, hp.weights_rate_limit);
        Ok(WeightsResult::TimelockCommitted {
            report,
            reveal_round,
            reveal_block,
            next_allowed_block,
        })
    }

    /// The subnet's epoch clock at `at`: the stateful one (`SubnetEpochIndex`, `LastEpochBlock`,
    /// `PendingEpochAt`) when the runtime has it, else the legacy formula.
    async fn epoch_clock_at(&self, at: &AtBlock, netuid: u16) -> Result<weights::EpochClock, ChainError> {
        let k = (netuid,);
        let tempo = u64::from(self.fetch::<_, u16>(at, "Tempo", k).await?);
        let stateful = has_storage(at, "SubnetEpochIndex") && has_storage(at, "LastEpochBlock");
        Ok(if stateful {
            weights::EpochClock::Stateful {
                index: self.fetch(at, "SubnetEpochIndex", k).await?,
                last_epoch_block: self.fetch(at, "LastEpochBlock", k).await?,
                pending_at: self.fetch_or(at, "PendingEpochAt", k, 0).await?,
                tempo,
            }
        } else {
            weights::EpochClock::Legacy { tempo, netuid }
        })
    }

    /// The block that opens a timelocked commit sent at `at` (included in the next block). Where the
    /// runtime has the stateful schedule, it is run forward as the SDK 11.3 runs it
    /// ([`crate::reveal::EpochSchedule`], with `BlocksSinceLastStep`); on the legacy clock, the first
    /// block of the commit's epoch plus `reveal_period`.
    async fn reveal_block_at(
        &self,
        at: &AtBlock,
        netuid: u16,
        reveal_period: u64,
    ) -> Result<u64, ChainError> {
        let now = at.block_number();
        match self.epoch_clock_at(at, netuid).await? {
            weights::EpochClock::Stateful {
                index,
                last_epoch_block,
                pending_at,
                tempo,
            } => {
                let schedule = crate::reveal::EpochSchedule {
                    block: now,
                    index,
                    last_epoch_block,
                    pending_at,
                    tempo,
                    blocks_since_last_step: self.fetch_or(at, "BlocksSinceLastStep", (netuid,), 0).await?,
                };
                schedule
                    .first_reveal_block(reveal_period)
                    .map_err(|e| ChainError::Config(e.to_string()))
            }
            clock => Ok(clock.epoch_start_block(clock.epoch_at(now + 1) + reveal_period)),
        }
    }

    /// The best block number and the subnet's epoch clock read at it.
    pub async fn epoch_clock(&self, netuid: u16) -> Result<(u64, weights::EpochClock), ChainError> {
        let at = self.at_best().await?;
        Ok((at.block_number(), self.epoch_clock_at(&at, netuid).await?))
    }

    /// Whether `pending` (committed by `hotkey`) can be revealed in the next block: reads the commit's
    /// epoch from `WeightCommits` and the subnet's epoch clock (stateful `SubnetEpochIndex` when the
    /// runtime has it, else the legacy formula). `None`: no such commit (already revealed or dropped).
    pub async fn reveal_timing(
        &self,
        hotkey: &AccountId,
        pending: &PendingReveal,
    ) -> Result<Option<weights::RevealTiming>, ChainError> {
        let at = self.at_best().await?;
        let netuid = pending.netuid;
        let index = weights::storage_index(netuid, 0);
        let addr = dynamic::storage::<(u16, AccountId32), Vec<(subxt::utils::H256, u64, u64, u64)>>(
            PALLET,
            "WeightCommits",
        );
        let commits = tokio::time::timeout(
            self.config.request_timeout,
            at.storage().try_fetch(addr, (index, AccountId32(hotkey.0))),
        )
        .await
        .map_err(|_| ChainError::Timeout("the weight commits"))?
        .map_err(rpc)?;
        let commits = match commits {
            Some(v) => v.decode().map_err(rpc)?,
            None => return Ok(None),
        };
        let Some(&(_, commit_epoch, _, _)) = commits.iter().find(|(h, ..)| h.0 == pending.commit_hash) else {
            return Ok(None);
        };
        let k = (netuid,);
        let clock = self.epoch_clock_at(&at, netuid).await?;
        let reveal_period: u64 = self.fetch_or(&at, "RevealPeriodEpochs", k, 1).await?;
        let current = clock.epoch_at(at.block_number() + 1);
        Ok(Some(weights::reveal_timing(current, commit_epoch, reveal_period)))
    }

    /// Reveals a CR-v2 commit made by [`Self::set_weights`] (call it in the reveal epoch).
    pub async fn reveal_weights(&self, hotkey: &Keypair, pending: &PendingReveal) -> SubmitReport {
        let call = Call::RevealWeights {
            netuid: pending.netuid,
            uids: pending.uids.clone(),
            values: pending.values.clone(),
            salt: pending.salt.clone(),
            version_key: pending.version_key,
        };
        self.submit(&call, hotkey).await
    }
}

/// The next allowed block after a weights submission: the chain records `LastUpdate` at the inclusion
/// block; if it was not included, the previous limit still applies from `now`.
/// `Drand::BeaconConfig` (finney's `pallet_drand::types::BeaconConfiguration`).
#[derive(Debug, DecodeAsType)]
#[decode_as_type(crate_path = "subxt::ext::scale_decode")]
#[allow(dead_code)] // Every field is decoded; the client uses the key.
struct ChainBeacon {
    public_key: Vec<u8>,
    period: u32,
    genesis_time: u32,
    hash: Vec<u8>,
    group_hash: Vec<u8>,
    scheme_id: Vec<u8>,
    metadata: ChainBeaconMetadata,
}

/// `pallet_drand::types::Metadata`.
#[derive(Debug, DecodeAsType)]
#[decode_as_type(crate_path = "subxt::ext::scale_decode")]
#[allow(dead_code)]
struct ChainBeaconMetadata {
    beacon_id: Vec<u8>,
}

/// Timelocked commits tried before giving up on `InvalidRevealRound` (the chain already held the
/// round's pulse when the commit landed).
const TIMELOCK_COMMIT_TRIES: u32 = 3;

/// A weight vector checked against the subnet's rules, ready to submit at block `now`.
#[derive(Debug)]
struct ReadyWeights {
    netuid: u16,
    /// The mechanism.
    mecid: u8,
    /// Whether the runtime has the mechanism weight calls (else the legacy calls, mechanism 0).
    mechanisms: bool,
    uids: Vec<u16>,
    values: Vec<u16>,
    version_key: u64,
    now: u64,
}

/// Whether the runtime at `at` has the `SubtensorModule` storage entry `entry`.
fn has_storage(at: &AtBlock, entry: &str) -> bool {
    at.metadata_ref()
        .pallet_by_name(PALLET)
        .and_then(|p| p.storage())
        .and_then(|s| s.entry_by_name(entry))
        .is_some()
}

fn next_after(report: &SubmitReport, now: u64, rate_limit: u64) -> u64 {
    match report.outcome {
        Outcome::Included { block, .. } if block > 0 => weights::next_allowed_block(block, rate_limit),
        _ => now,
    }
}

/// A CR-v2 commit waiting for its reveal epoch; persist it to survive restarts.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PendingReveal {
    /// Subnet.
    pub netuid: u16,
    /// The uids committed.
    pub uids: Vec<u16>,
    /// The weights committed.
    pub values: Vec<u16>,
    /// The salt.
    pub salt: Vec<u16>,
    /// The version key.
    pub version_key: u64,
    /// The hash submitted.
    pub commit_hash: [u8; 32],
}

/// What [`ChainClient::set_weights`] did.
#[derive(Debug, Clone)]
pub enum WeightsResult {
    /// `set_weights` was submitted.
    Set {
        /// The submission.
        report: SubmitReport,
        /// First block at which weights may be set again.
        next_allowed_block: u64,
    },
    /// A CR-v2 commit was submitted; reveal `pending` in the reveal epoch.
    Committed {
        /// The submission.
        report: SubmitReport,
        /// What to reveal.
        pending: PendingReveal,
        /// First block at which weights may be committed again.
        next_allowed_block: u64,
    },
    /// A timelocked (CR-v4) commit was submitted; the chain reveals it by itself once the beacon's
    /// pulse for `reveal_round` is on chain, in the epoch that starts at `reveal_block`.
    TimelockCommitted {
        /// The submission.
        report: SubmitReport,
        /// The drand round the weights are encrypted to.
        reveal_round: u64,
        /// The expected first block of the reveal epoch (assuming the tempo does not change).
        reveal_block: u64,
        /// First block at which weights may be committed again.
        next_allowed_block: u64,
    },
    /// Nothing was submitted: the rate limit forbids it until `next_allowed_block`.
    RateLimited {
        /// The current block.
        now: u64,
        /// First block at which weights are accepted.
        next_allowed_block: u64,
    },
}

/// A shared client handle.
pub type SharedClient = Arc<ChainClient>;

/// A metagraph kept fresh in the background: refreshed every `interval` and on demand.
#[derive(Debug)]
pub struct MetagraphWatch {
    rx: tokio::sync::watch::Receiver<Option<Arc<Metagraph>>>,
    refresh: Arc<tokio::sync::Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl MetagraphWatch {
    /// Starts refreshing subnet `netuid` through `client` every `interval` (first sync immediately).
    /// A failed refresh is logged and keeps the previous snapshot.
    pub fn spawn(client: SharedClient, netuid: u16, interval: Duration) -> Self {
        let (tx, rx) = tokio::sync::watch::channel(None);
        let refresh = Arc::new(tokio::sync::Notify::new());
        let wake = refresh.clone();
        let task = tokio::spawn(async move {
            loop {
                match client.metagraph(netuid).await {
                    Ok(graph) => {
                        tracing::debug!(
                            netuid,
                            block = graph.block,
                            uids = graph.neurons.len(),
                            "metagraph synced"
                        );
                        if tx.send(Some(Arc::new(graph))).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(netuid, error = %e, "metagraph sync failed; keeping the previous snapshot")
                    }
                }
                tokio::select! {
                    () = tokio::time::sleep(interval) => {}
                    () = wake.notified() => {}
                }
            }
        });
        Self { rx, refresh, task }
    }

    /// The latest snapshot (`None` until the first sync succeeds).
    pub fn latest(&self) -> Option<Arc<Metagraph>> {
        self.rx.borrow().clone()
    }

    /// Asks for a refresh now (returns at once).
    pub fn refresh_now(&self) {
        self.refresh.notify_one();
    }

    /// Waits for the next snapshot after this call, or at most `timeout`.
    pub async fn changed(&mut self, timeout: Duration) -> Option<Arc<Metagraph>> {
        tokio::time::timeout(timeout, self.rx.changed())
            .await
            .ok()?
            .ok()?;
        self.latest()
    }
}

impl Drop for MetagraphWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}
