//! The seam between the round loop and the chain: where miners, blocks and weight submissions come from.
//!
//! [`Network`] is what a round needs from a chain: a view at the current block (block hash, serving
//! miners, the weight limits, whether weights are due) and a way to submit a weight vector. The chain
//! implementation (`crate::chain_net`) reads the metagraph through the `chain` crate. [`StaticNetwork`]
//! is the implementation for a validator run with no chain (a fixed miner list and a local block clock),
//! used by `validator run --miners …`, tests and benchmarks: weights are computed and logged, never sent.

use std::future::Future;
use std::time::{Duration, Instant};

use scoring::weights::{ChainLimits, WeightVector};

use exchange::MinerEndpoint;

/// The chain as a round sees it at one block.
#[derive(Debug, Clone)]
pub struct ChainView {
    /// Block number.
    pub block_number: u64,
    /// Block hash.
    pub block_hash: [u8; 32],
    /// Serving miners (axon set), never the validator itself.
    pub miners: Vec<MinerEndpoint>,
    /// Limits the weight vector must respect.
    pub limits: ChainLimits,
    /// Whether the chain accepts weights from this validator now (rate limit passed).
    pub weights_due: bool,
}

/// How a weight submission ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubmitStatus {
    /// Included in a block and dispatched successfully.
    Included,
    /// Rejected, dropped or timed out after the client's retries.
    Failed,
    /// Not sent (no chain).
    Skipped,
}

impl SubmitStatus {
    /// `included`, `failed` or `skipped`.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::Included => "included",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
        }
    }
}

/// The result of a weight submission.
#[derive(Debug, Clone)]
pub struct SubmitOutcome {
    /// Final status.
    pub status: SubmitStatus,
    /// The chain client's message (mode, block, dispatch error).
    pub detail: String,
    /// Attempts made.
    pub attempts: u32,
    /// From the first attempt to the final status.
    pub latency: Duration,
    /// The block the submission was included in (`None` unless [`SubmitStatus::Included`]).
    pub block: Option<u64>,
    /// The extrinsic sent (`set_weights`, `commit_timelocked_weights`, …), if one was.
    pub call: Option<&'static str>,
}

/// An error reading the chain.
#[derive(Debug, thiserror::Error)]
#[error("could not read the chain: {0}; the validator retries next round")]
pub struct NetworkError(pub String);

/// What the round loop needs from a chain.
pub trait Network: Send + Sync + 'static {
    /// The view at the current block.
    fn view(&self) -> impl Future<Output = Result<ChainView, NetworkError>> + Send;
    /// Submits `weights` (plain or commit-reveal, as the chain requires), waiting for the outcome.
    fn submit_weights(&self, weights: &WeightVector) -> impl Future<Output = SubmitOutcome> + Send;
}

/// A fixed miner list and a local block clock: one block per `block_time`, hash = blake3 of a per-run
/// random genesis and the number.
#[derive(Debug)]
pub struct StaticNetwork {
    miners: Vec<MinerEndpoint>,
    started: Instant,
    block_time: Duration,
    genesis: [u8; 32],
}

impl StaticNetwork {
    /// Serves `miners`, with a block every `block_time`.
    pub fn new(miners: Vec<MinerEndpoint>, block_time: Duration) -> Self {
        let mut genesis = [0u8; 32];
        rand::fill(&mut genesis);
        Self {
            miners,
            started: Instant::now(),
            block_time,
            genesis,
        }
    }

    /// The block number now.
    pub fn block_number(&self) -> u64 {
        (self.started.elapsed().as_nanos() / self.block_time.as_nanos().max(1)) as u64 + 1
    }
}

impl Network for StaticNetwork {
    async fn view(&self) -> Result<ChainView, NetworkError> {
        let block_number = self.block_number();
        let mut h = blake3::Hasher::new();
        h.update(&self.genesis);
        h.update(&block_number.to_le_bytes());
        let n = self.miners.iter().map(|m| m.uid).max().map_or(0, |u| u + 1);
        Ok(ChainView {
            block_number,
            block_hash: *h.finalize().as_bytes(),
            miners: self.miners.clone(),
            limits: ChainLimits {
                n,
                min_allowed_weights: 1,
                max_weight_limit: u16::MAX,
            },
            weights_due: true,
        })
    }

    async fn submit_weights(&self, _weights: &WeightVector) -> SubmitOutcome {
        SubmitOutcome {
            status: SubmitStatus::Skipped,
            detail: "no chain: weights computed and logged, not sent".into(),
            attempts: 0,
            latency: Duration::ZERO,
            block: None,
            call: None,
        }
    }
}
