//! The validator's HTTP client to miners, over [`chain::auth::signed_http`]: signed requests, a bounded
//! response body, one timeout per step, and the miner's signed receipt checked on every answer.
//!
//! One pool speaks HTTP/1.1 with keep-alive, so the signed ping that measures a miner's round-trip time
//! and the challenge that follows travel on the same TCP connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bench_tasks::Reason;
use chain::auth::RequestSigner;
use chain::auth::signed_http::{HttpError, HttpOptions, SignedHttp, SignedReply};
use chain::keys::AccountId;

/// A miner the validator talks to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinerEndpoint {
    /// uid on the subnet.
    pub uid: u16,
    /// The miner's hotkey; requests are bound to it and receipts must be signed by it.
    pub hotkey: AccountId,
    /// Where it serves.
    pub addr: SocketAddr,
}

/// Why one call to a miner failed (see [`verdict_reason`] for the verdict it earns).
pub type CallError = HttpError;

/// A successful, receipted answer.
pub type Reply = SignedReply;

/// The verdict reason a failed call earns: a timeout is [`Reason::Timeout`], a miner that could not be
/// reached (connection refused or broken before the answer) [`Reason::Unreachable`], a refusal the
/// miner chose (401, 403, 413, 429, 503) [`Reason::Refused`], and an answer that is not what was asked
/// for [`Reason::Malformed`].
pub fn verdict_reason(e: &CallError) -> Reason {
    match e {
        HttpError::Timeout { .. } => Reason::Timeout,
        HttpError::Transport { .. } => Reason::Unreachable,
        HttpError::Refused {
            status: 401 | 403 | 413 | 429 | 503,
            ..
        } => Reason::Refused,
        HttpError::Refused { .. } | HttpError::TooLarge { .. } | HttpError::Malformed { .. } => {
            Reason::Malformed
        }
    }
}

/// A pooled, signing HTTP client for miners.
#[derive(Debug, Clone)]
pub struct MinerClient {
    http: SignedHttp,
}

impl MinerClient {
    /// A client signing with `signer`, keeping up to `idle_per_host` idle connections per miner.
    pub fn new(signer: Arc<RequestSigner>, idle_per_host: usize) -> Result<Self, CallError> {
        let options = HttpOptions {
            idle_per_host,
            ..HttpOptions::default()
        };
        Ok(Self {
            http: SignedHttp::new(signer, &options)?,
        })
    }

    /// The signing hotkey.
    pub fn hotkey(&self) -> AccountId {
        self.http.hotkey()
    }

    /// Sends a signed `POST path` with `body` to `miner`; the whole exchange (connect, send, status and
    /// body) must finish within `timeout` and the body must not exceed `cap` bytes.
    pub async fn post(
        &self,
        step: &'static str,
        miner: &MinerEndpoint,
        path: &str,
        body: Vec<u8>,
        timeout: Duration,
        cap: usize,
    ) -> Result<Reply, CallError> {
        let base = format!("http://{}", miner.addr);
        self.http
            .post(step, &base, &miner.hotkey, path, body, timeout, cap)
            .await
    }

    /// Measures the round-trip time to `miner` with `pings` signed pings on the pooled connection and
    /// returns the smallest (the first one may include the TCP handshake).
    pub async fn ping(
        &self,
        miner: &MinerEndpoint,
        pings: u32,
        timeout: Duration,
    ) -> Result<Duration, CallError> {
        let mut best: Option<Duration> = None;
        for i in 0..pings.max(1) {
            let body = format!("{{\"ping\":{i}}}").into_bytes();
            let reply = self
                .post(
                    "ping",
                    miner,
                    bench_tasks::wire::PING_PATH,
                    body.clone(),
                    timeout,
                    4096,
                )
                .await?;
            if reply.body != body {
                return Err(CallError::Malformed {
                    step: "ping",
                    detail: "the ping was not echoed".into(),
                });
            }
            best = Some(best.map_or(reply.elapsed, |b| b.min(reply.elapsed)));
        }
        Ok(best.unwrap_or_default())
    }
}
