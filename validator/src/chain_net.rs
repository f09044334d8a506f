//! The production [`Network`]: the metagraph and weight submissions through the `chain` client.
//!
//! The view lists every neuron with a served axon except the validator itself (and, when
//! `loopback_only` is set, as localnet and tests do, only axons on 127.0.0.0/8, so traffic never leaves
//! the machine whatever the chain says). Weights are due once the chain's `WeightsSetRateLimit` has passed
//! since this validator's `LastUpdate` on its mechanism. Submission goes through
//! [`ChainClient::set_mechanism_weights`] on the validator's mechanism (0 unless
//! [`ChainNetwork::with_mechanism`] picks another), which picks a direct set, a timelocked commit or a
//! CR-v2 commit as the subnet requires; a pending CR-v2 commit is revealed on later views until the
//! chain accepts the reveal.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chain::client::{ChainClient, PendingReveal, WeightsResult};
use chain::keys::Keypair;
use chain::submit::Outcome;
use scoring::weights::WeightVector;

use crate::network::{ChainView, Network, NetworkError, SubmitOutcome, SubmitStatus};
use exchange::MinerEndpoint;

/// Reveal attempts before a pending commit is given up.
const MAX_REVEAL_TRIES: u32 = 64;

/// The chain, through the `chain` crate's client.
#[derive(Debug)]
pub struct ChainNetwork {
    client: Arc<ChainClient>,
    hotkey: Keypair,
    netuid: u16,
    mecid: u8,
    loopback_only: bool,
    version_key: u64,
    pending: Mutex<Option<(PendingReveal, u32)>>,
}

impl ChainNetwork {
    /// A network over `client` for `hotkey` on `netuid`.
    pub fn new(client: Arc<ChainClient>, hotkey: Keypair, netuid: u16, loopback_only: bool) -> Self {
        Self {
            client,
            hotkey,
            netuid,
            mecid: 0,
            loopback_only,
            version_key: 0,
            pending: Mutex::new(None),
        }
    }

    /// The same network, setting weights on mechanism `mecid` of the subnet (`--mechanism`).
    pub const fn with_mechanism(mut self, mecid: u8) -> Self {
        self.mecid = mecid;
        self
    }

    /// The chain client.
    pub fn client(&self) -> &Arc<ChainClient> {
        &self.client
    }

    async fn reveal_pending(&self) {
        let pending = self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let Some((p, tries)) = pending else { return };
        let report = self.client.reveal_weights(&self.hotkey, &p).await;
        let mut slot = self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if report.is_included() {
            tracing::info!("weights revealed");
            *slot = None;
        } else if tries + 1 >= MAX_REVEAL_TRIES {
            tracing::warn!(?report.outcome, "giving up revealing a weight commit");
            *slot = None;
        } else {
            *slot = Some((p, tries + 1));
        }
    }
}

fn allowed(ip: IpAddr, loopback_only: bool) -> bool {
    !ip.is_unspecified() && (!loopback_only || ip.is_loopback())
}

impl Network for ChainNetwork {
    async fn view(&self) -> Result<ChainView, NetworkError> {
        self.reveal_pending().await;
        // The mechanism's view: its `LastUpdate` decides when weights are due.
        let graph = self
            .client
            .mechanism_metagraph(self.netuid, self.mecid)
            .await
            .map_err(|e| NetworkError(e.to_string()))?;
        let me = self.hotkey.account();
        let hp = &graph.hyperparams;
        let miners = graph
            .neurons
            .iter()
            .filter(|n| n.hotkey != me)
            .filter_map(|n| {
                let axon = n.axon?;
                allowed(axon.ip, self.loopback_only).then(|| MinerEndpoint {
                    uid: n.uid,
                    hotkey: n.hotkey,
                    addr: SocketAddr::new(axon.ip, axon.port),
                })
            })
            .collect();
        let weights_due = graph.by_hotkey(&me).is_some_and(|n| {
            graph.block >= chain::weights::next_allowed_block(n.last_update, hp.weights_rate_limit)
        });
        Ok(ChainView {
            block_number: graph.block,
            block_hash: graph.block_hash,
            miners,
            limits: hp.weight_limits(),
            weights_due,
        })
    }

    async fn submit_weights(&self, weights: &WeightVector) -> SubmitOutcome {
        let started = Instant::now();
        let result = self
            .client
            .set_mechanism_weights(
                &self.hotkey,
                self.netuid,
                self.mecid,
                &weights.uids,
                &weights.weights,
                self.version_key,
            )
            .await;
        let failed = |detail: String, attempts, call| SubmitOutcome {
            status: SubmitStatus::Failed,
            detail,
            attempts,
            latency: started.elapsed(),
            block: None,
            call,
        };
        let report = match result {
            Err(e) => return failed(e.to_string(), 0, None),
            Ok(WeightsResult::RateLimited {
                now,
                next_allowed_block,
            }) => {
                return SubmitOutcome {
                    status: SubmitStatus::Skipped,
                    detail: format!("rate limited at block {now}; next allowed at {next_allowed_block}"),
                    attempts: 0,
                    latency: started.elapsed(),
                    block: None,
                    call: None,
                };
            }
            Ok(WeightsResult::Set { report, .. }) => report,
            // The chain opens it by itself in the reveal epoch; nothing to keep.
            Ok(WeightsResult::TimelockCommitted {
                report,
                reveal_round,
                reveal_block,
                ..
            }) => {
                tracing::debug!(reveal_round, reveal_block, "timelocked weights committed");
                report
            }
            Ok(WeightsResult::Committed { report, pending, .. }) => {
                if report.is_included() {
                    *self
                        .pending
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((pending, 0));
                }
                report
            }
        };
        match &report.outcome {
            Outcome::Included { block, .. } => SubmitOutcome {
                status: SubmitStatus::Included,
                detail: format!("{} included in block {block}", report.call),
                attempts: report.attempts,
                latency: report.latency,
                // 0: inclusion confirmed by nonce after a dropped connection, block unknown.
                block: (*block > 0).then_some(*block),
                call: Some(report.call),
            },
            Outcome::Failed { message, .. } => failed(
                format!("{}: {message}", report.call),
                report.attempts,
                Some(report.call),
            ),
        }
    }
}
