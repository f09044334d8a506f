//! A signed HTTP client for one miner: what `miner doctor` and `miner bench-transport` use, and what
//! tests use to talk to a real server over loopback.
//!
//! It is [`chain::auth::signed_http`] (the transport the validator's rounds use too) bound to one miner
//! and decoding [`bench_tasks::wire`] bodies: each call signs the exact body bytes it sends (`btauth/1`,
//! bound to the miner's hotkey), checks the miner's receipt on the answer, and has
//! [`CALL_TIMEOUT`] and [`MAX_ANSWER_BYTES`] as bounds.

use std::sync::Arc;
use std::time::Duration;

use bench_tasks::wire::{
    CHALLENGE_PATH, ChallengeRequest, ChallengeResponse, INFO_PATH, MinerInfo, OPEN_PATH, OpenRequest,
    OpenResponse, PING_PATH,
};
use chain::auth::signed_http::{HttpError, HttpOptions, SignedHttp};
use chain::auth::{Receipt, RequestSigner};
use chain::keys::{AccountId, Keypair};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Why a call failed: [`chain::auth::signed_http::HttpError`] (`status()` and `reason()` for
/// refusals).
pub type ClientError = HttpError;

/// Time allowed for one whole exchange.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// Largest answer body accepted.
pub const MAX_ANSWER_BYTES: usize = 64 << 20;

/// An answer to a signed request: the decoded body and the checked receipt.
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
    http: SignedHttp,
    base: String,
    miner: AccountId,
}

impl MinerClient {
    /// A client for the miner at `base` (like `http://127.0.0.1:8091`) with hotkey `miner`, signing with
    /// `key`. `http2` selects HTTP/2 with prior knowledge (h2c) instead of HTTP/1.1.
    pub fn new(base: &str, miner: AccountId, key: Keypair, http2: bool) -> Result<Self, ClientError> {
        let options = HttpOptions {
            http2,
            idle_per_host: 1024,
            ..HttpOptions::default()
        };
        Ok(Self {
            http: SignedHttp::new(Arc::new(RequestSigner::new(key)), &options)?,
            base: base.trim_end_matches('/').to_owned(),
            miner,
        })
    }

    /// The same client (and connection pool) signing for the miner with hotkey `miner`.
    pub fn for_miner(self, miner: AccountId) -> Self {
        Self { miner, ..self }
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
        self.http
            .get("get", &self.base, path, CALL_TIMEOUT, MAX_ANSWER_BYTES)
            .await
    }

    /// `GET /info`.
    pub async fn info(&self) -> Result<MinerInfo, ClientError> {
        let (status, body) = self.get(INFO_PATH).await?;
        if status != 200 {
            return Err(HttpError::Refused {
                step: "info",
                status,
                reason: "unknown".to_owned(),
                message: String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
            });
        }
        serde_json::from_slice(&body).map_err(|e| malformed("info", &e))
    }

    /// Sends `body` to `path`, signed, and returns the raw answer after checking its receipt.
    pub async fn post_raw(&self, path: &str, body: Vec<u8>) -> Result<Signed<Vec<u8>>, ClientError> {
        let reply = self
            .http
            .post(
                step_of(path),
                &self.base,
                &self.miner,
                path,
                body,
                CALL_TIMEOUT,
                MAX_ANSWER_BYTES,
            )
            .await?;
        Ok(Signed {
            body: reply.body,
            receipt: reply.receipt,
        })
    }

    async fn post_json<Q: Serialize, A: DeserializeOwned>(
        &self,
        path: &str,
        request: &Q,
    ) -> Result<Signed<A>, ClientError> {
        let body = serde_json::to_vec(request).map_err(|e| malformed(step_of(path), &e))?;
        let raw = self.post_raw(path, body).await?;
        let body = serde_json::from_slice(&raw.body).map_err(|e| malformed(step_of(path), &e))?;
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

/// The step name errors carry for a route.
fn step_of(path: &str) -> &'static str {
    match path {
        PING_PATH => "ping",
        CHALLENGE_PATH => "challenge",
        OPEN_PATH => "open",
        _ => "post",
    }
}

fn malformed(step: &'static str, e: &serde_json::Error) -> ClientError {
    HttpError::Malformed {
        step,
        detail: format!("not valid JSON for this route: {e}"),
    }
}
