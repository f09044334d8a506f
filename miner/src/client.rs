//! A signed HTTP client for a miner: what `miner doctor` and `miner bench-transport` use, and what
//! tests use to talk to a real server over loopback.
//!
//! Each call signs the exact body bytes it sends (`btauth/1`, bound to the miner's hotkey), checks the
//! miner's receipt on the answer, and decodes [`bench_tasks::wire`] bodies.

use std::time::Duration;

use bench_tasks::wire::{
    CHALLENGE_PATH, ChallengeRequest, ChallengeResponse, ErrorBody, INFO_PATH, MinerInfo, OPEN_PATH,
    OpenRequest, OpenResponse, PING_PATH,
};
use chain::auth::{Receipt, RequestSigner};
use chain::keys::{AccountId, Keypair};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The connection or transfer failed.
    #[error("could not reach the miner at {url}: {source}; check the address and that the miner runs")]
    Transport {
        /// The URL called.
        url: String,
        /// The underlying error.
        source: reqwest::Error,
    },
    /// The miner answered with an error status.
    #[error("the miner refused ({status}, {reason}): {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The reason code (`queue_full`, …), or `unknown` if the body was not an error body.
        reason: String,
        /// The miner's message.
        message: String,
    },
    /// The answer is not the expected JSON.
    #[error("the miner's answer is not valid JSON for this route: {0}")]
    Decode(String),
    /// The receipt is missing or does not verify.
    #[error(transparent)]
    Receipt(#[from] chain::auth::ReceiptError),
}

impl ClientError {
    /// The HTTP status, for refusals.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The reason code, for refusals.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Self::Refused { reason, .. } => Some(reason),
            _ => None,
        }
    }
}

/// An answer to a signed request: status, body and the checked receipt.
#[derive(Debug, Clone)]
pub struct Signed<T> {
    /// The decoded body.
    pub body: T,
    /// The miner's receipt over the request and this body.
    pub receipt: Receipt,
}

/// A client bound to one miner (its base URL and hotkey) and signing with one validator hotkey.
#[derive(Debug)]
pub struct MinerClient {
    http: reqwest::Client,
    base: String,
    miner: AccountId,
    signer: RequestSigner,
}

impl MinerClient {
    /// A client for the miner at `base` (like `http://127.0.0.1:8091`) with hotkey `miner`, signing with
    /// `key`. `http2` selects HTTP/2 with prior knowledge (h2c) instead of HTTP/1.1.
    pub fn new(base: &str, miner: AccountId, key: Keypair, http2: bool) -> Result<Self, ClientError> {
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .connect_timeout(Duration::from_secs(5))
            .pool_max_idle_per_host(1024)
            .tcp_nodelay(true)
            .no_proxy();
        if http2 {
            builder = builder.http2_prior_knowledge();
        } else {
            builder = builder.http1_only();
        }
        let http = builder.build().map_err(|source| ClientError::Transport {
            url: base.to_owned(),
            source,
        })?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            miner,
            signer: RequestSigner::new(key),
        })
    }

    /// The miner's hotkey this client signs for.
    pub fn miner(&self) -> &AccountId {
        &self.miner
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `GET` a public route and return the raw status and body.
    pub async fn get(&self, path: &str) -> Result<(u16, Vec<u8>), ClientError> {
        let url = format!("{}{path}", self.base);
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|source| ClientError::Transport {
                url: url.clone(),
                source,
            })?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|source| ClientError::Transport { url, source })?;
        Ok((status, body.to_vec()))
    }

    /// `GET /info`.
    pub async fn info(&self) -> Result<MinerInfo, ClientError> {
        let (status, body) = self.get(INFO_PATH).await?;
        if status != 200 {
            return Err(refusal(status, &body));
        }
        serde_json::from_slice(&body).map_err(|e| ClientError::Decode(e.to_string()))
    }

    /// Sends `body` to `path`, signed, and returns the raw answer after checking its receipt.
    pub async fn post_raw(&self, path: &str, body: Vec<u8>) -> Result<Signed<Vec<u8>>, ClientError> {
        let signed = self.signer.btauth("POST", path, &body, Some(&self.miner));
        let url = format!("{}{path}", self.base);
        let response = self
            .http
            .post(&url)
            .headers(signed.headers)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|source| ClientError::Transport {
                url: url.clone(),
                source,
            })?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response
            .bytes()
            .await
            .map_err(|source| ClientError::Transport { url, source })?;
        if status != 200 {
            return Err(refusal(status, &bytes));
        }
        let receipt = Receipt::from_headers(&headers, status, &bytes)?;
        receipt.verify(
            &self.miner,
            &self.signer.key().account(),
            &signed.request_id,
            &bytes,
        )?;
        Ok(Signed {
            body: bytes.to_vec(),
            receipt,
        })
    }

    async fn post_json<Q: Serialize, A: DeserializeOwned>(
        &self,
        path: &str,
        request: &Q,
    ) -> Result<Signed<A>, ClientError> {
        let body = serde_json::to_vec(request).map_err(|e| ClientError::Decode(e.to_string()))?;
        let raw = self.post_raw(path, body).await?;
        let body = serde_json::from_slice(&raw.body).map_err(|e| ClientError::Decode(e.to_string()))?;
        Ok(Signed {
            body,
            receipt: raw.receipt,
        })
    }

    /// `POST /v1/ping`: the miner echoes `body`.
    pub async fn ping(&self, body: Vec<u8>) -> Result<Signed<Vec<u8>>, ClientError> {
        self.post_raw(PING_PATH, body).await
    }

    /// `POST /v1/challenge`.
    pub async fn challenge(
        &self,
        request: &ChallengeRequest,
    ) -> Result<Signed<ChallengeResponse>, ClientError> {
        self.post_json(CHALLENGE_PATH, request).await
    }

    /// `POST /v1/open`.
    pub async fn open(&self, request: &OpenRequest) -> Result<Signed<OpenResponse>, ClientError> {
        self.post_json(OPEN_PATH, request).await
    }
}

fn refusal(status: u16, body: &[u8]) -> ClientError {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(e) => ClientError::Refused {
            status,
            reason: e.reason,
            message: e.error,
        },
        Err(_) => ClientError::Refused {
            status,
            reason: "unknown".to_owned(),
            message: String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
        },
    }
}
