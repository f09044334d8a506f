//! The validator's HTTP client to miners: signed requests, a bounded response body, a timeout on every
//! step, and the miner's signed receipt checked on every answer.
//!
//! One pooled [`reqwest::Client`] speaks HTTP/1.1 with keep-alive, so the signed ping that measures a
//! miner's round-trip time and the challenge that follows travel on the same TCP connection. Response
//! bodies are read chunk by chunk and the read stops as soon as the configured cap is passed, so a miner
//! answering 50 MB of garbage costs at most the cap in memory and its own timeout in time.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bench_tasks::Reason;
use chain::auth::{Receipt, RequestSigner};
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

/// Why one call to a miner failed. Each maps to the verdict [`Reason`] the miner gets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The step did not finish in time.
    #[error("{step} timed out after {after:?}")]
    Timeout {
        /// Which step.
        step: &'static str,
        /// The limit.
        after: Duration,
    },
    /// Connecting or reading failed.
    #[error("{step}: transport error: {detail}")]
    Transport {
        /// Which step.
        step: &'static str,
        /// The cause.
        detail: String,
    },
    /// The miner answered with an error status.
    #[error("{step}: miner answered HTTP {status}: {detail}")]
    Status {
        /// Which step.
        step: &'static str,
        /// HTTP status.
        status: u16,
        /// The miner's reason code or message, truncated.
        detail: String,
    },
    /// The answer passed the size cap.
    #[error("{step}: answer exceeds the {cap}-byte cap")]
    TooLarge {
        /// Which step.
        step: &'static str,
        /// The cap.
        cap: usize,
    },
    /// The answer is not what the protocol asks for (bad JSON, wrong id, bad receipt).
    #[error("{step}: malformed answer: {detail}")]
    Malformed {
        /// Which step.
        step: &'static str,
        /// What is wrong.
        detail: String,
    },
}

impl CallError {
    /// The verdict reason this failure earns.
    pub fn reason(&self) -> Reason {
        match self {
            Self::Timeout { .. } => Reason::Timeout,
            Self::Status {
                status: 401 | 403 | 413 | 429 | 503,
                ..
            } => Reason::Refused,
            Self::Status { .. } | Self::Transport { .. } | Self::TooLarge { .. } | Self::Malformed { .. } => {
                Reason::Malformed
            }
        }
    }
}

/// A successful answer.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The body, as received (at most the cap).
    pub body: Vec<u8>,
    /// From just before the request was sent to the last body byte.
    pub elapsed: Duration,
    /// The miner's verified receipt.
    pub receipt: Receipt,
}

/// A pooled, signing HTTP client for miners.
#[derive(Debug, Clone)]
pub struct MinerClient {
    http: reqwest::Client,
    signer: Arc<RequestSigner>,
}

impl MinerClient {
    /// A client signing with `signer`, keeping up to `idle_per_host` idle connections per miner.
    pub fn new(signer: Arc<RequestSigner>, idle_per_host: usize) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .http1_only()
            .pool_max_idle_per_host(idle_per_host)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()?;
        Ok(Self { http, signer })
    }

    /// The signing hotkey.
    pub fn hotkey(&self) -> AccountId {
        self.signer.key().account()
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
        let signed = self.signer.btauth("POST", path, &body, Some(&miner.hotkey));
        let url = format!("http://{}{path}", miner.addr);
        let request = self
            .http
            .post(url)
            .headers(signed.headers)
            .header("content-type", "application/json")
            .body(body);
        let started = Instant::now();
        let exchange = async {
            let mut resp = request.send().await.map_err(|e| CallError::Transport {
                step,
                detail: error_chain(&e),
            })?;
            let status = resp.status().as_u16();
            if let Some(len) = resp.content_length()
                && len > cap as u64
            {
                return Err(CallError::TooLarge { step, cap });
            }
            let mut buf = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(|e| CallError::Transport {
                step,
                detail: error_chain(&e),
            })? {
                if buf.len() + chunk.len() > cap {
                    return Err(CallError::TooLarge { step, cap });
                }
                buf.extend_from_slice(&chunk);
            }
            Ok((status, resp.headers().clone(), buf))
        };
        let (status, headers, buf) = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| CallError::Timeout { step, after: timeout })??;
        let elapsed = started.elapsed();
        if !(200..300).contains(&status) {
            let detail = serde_json::from_slice::<bench_tasks::wire::ErrorBody>(&buf)
                .map(|e| e.reason)
                .unwrap_or_else(|_| String::from_utf8_lossy(&buf[..buf.len().min(120)]).into_owned());
            return Err(CallError::Status { step, status, detail });
        }
        let receipt = Receipt::from_headers(&headers, status, &buf)
            .and_then(|r| {
                r.verify(&miner.hotkey, &self.hotkey(), &signed.request_id, &buf)
                    .map(|()| r)
            })
            .map_err(|e| CallError::Malformed {
                step,
                detail: format!("receipt: {e}"),
            })?;
        Ok(Reply {
            body: buf,
            elapsed,
            receipt,
        })
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

/// An error and its causes in one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
