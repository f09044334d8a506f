//! The tensorproof validator: the round loop, its durable state, the audit log and replay.
//!
//! - [`round`]: the round loop ([`round::Validator`]): challenges every serving miner with bounded
//!   concurrency, verifies on a bounded blocking pool, scores, commits, and submits weights.
//! - The miners are reached through `exchange` (the one signed, pooled client and each task's
//!   exchange, shared with `miner doctor` and the benchmarks).
//! - [`network`]: the seam to the chain ([`network::Network`]) and [`network::StaticNetwork`] for runs
//!   without one; [`chain_net`]: the real chain through the `chain` client.
//! - [`ledger`], [`state`], [`roundlog`], [`record`]: SQLite state, the hash-chained round log, and what
//!   they record, kept consistent by one commit protocol.
//! - [`replay`]: recompute scores and weights from the log alone.
//! - [`organic`]: the API's organic verdicts, held until the next round commits and scores them.
//! - [`api`]: the OpenAI-compatible API (`--api-listen`): keys, routing to miners, receipts, usage,
//!   organic verification.
//! - [`metrics`], [`dashboard`], [`http`]: `GET /metrics`, `GET /scores`, `GET /`; [`throughput`]: the
//!   matmul TFLOP/s per dtype class and per device they show.
//! - `localnet` (feature `localnet`): the whole subnet on one machine (devnet, miners, validator).
//! - [`setup`]: the subnet set-up for docker compose (`localnet-setup`; in the production build).
//! - `bench` (feature `localnet`): round wall time, CPU time and peak memory for many in-process miners.
//!
//! # Example: state, log and replay without any network
//!
//! ```
//! use validator::ledger::{Ledger, RoundInputs};
//! use bench_tasks::matmul::RoundParams;
//! use validator::state::MinerOutcome;
//! use scoring::{policy::Policy, weights::ChainLimits};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let mut ledger = Ledger::open(dir.path(), Policy::default(), "validator", 1).unwrap();
//! let attempt = ledger.begin_attempt().unwrap();
//! let outcome = |uid: u16, passed: bool| MinerOutcome {
//!     uid,
//!     hotkey: format!("miner{uid}"),
//!     task: bench_tasks::wire::TaskClass::Matmul,
//!     verdict: if passed {
//!         bench_tasks::Verdict::pass(1e6)
//!     } else {
//!         bench_tasks::Verdict::fail(bench_tasks::Reason::WrongRow, "row 3", 1e6)
//!     },
//!     rtt_ms: Some(1.0),
//!     total_ms: Some(20.0),
//!     compute_ms: Some(19.0),
//!     seed: "00".into(),
//!     answer_hash: None,
//!     devices: 1,
//!     dtype: Some(bench_tasks::matmul::MatmulDtype::F32),
//!     device_runs: Vec::new(),
//! };
//! let record = ledger
//!     .commit_round(RoundInputs {
//!         attempt,
//!         block_number: 10,
//!         block_hash: "ab".into(),
//!         started_ms: 0,
//!         finished_ms: 1,
//!         matmul: RoundParams::new(64, 1),
//!         matmul_batch: 1,
//!         outcomes: vec![outcome(0, true), outcome(1, false)],
//!         organic: vec![],
//!         limits: ChainLimits { n: 2, min_allowed_weights: 1, max_weight_limit: u16::MAX },
//!     })
//!     .unwrap();
//! assert_eq!(record.weights.unwrap().uids, vec![0]);
//! let report = validator::replay::replay(&ledger.log_path()).unwrap();
//! assert!(report.matches());
//! ```

pub mod api;
#[cfg(feature = "localnet")]
pub mod bench;
pub mod chain_net;
pub mod dashboard;
pub mod http;
pub mod ledger;
#[cfg(feature = "localnet")]
pub mod localnet;
pub mod metrics;
pub mod network;
pub mod organic;
pub mod record;
pub mod replay;
pub mod round;
pub mod roundlog;
pub mod setup;
pub mod state;
pub mod throughput;
