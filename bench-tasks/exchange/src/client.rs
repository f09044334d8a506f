//! The one client a validator (or anything acting as one) uses to talk to miners.
//!
//! [`Client`] is [`chain::auth::signed_http`] (pooled connections, `btauth/1` request signing, the
//! miner's receipt checked on every answer, one timeout and one body cap per call) speaking the typed
//! bodies of [`bench_tasks::wire`]. Each answer must echo the id of the challenge it answers.
//! [`MinerClient`] is the same client bound to one miner with generous default bounds, for
//! `miner doctor`, `miner bench-transport` and tests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bench_tasks::Reason;
use bench_tasks::wire::{
    CHALLENGE_PATH, ChallengeRequest, ChallengeResponse, INFO_PATH, MinerInfo, OPEN_PATH, OpenRequest,
    OpenResponse, PING_PATH,
};
use chain::auth::signed_http::{HttpError, HttpOptions, SignedHttp, SignedReply};
use chain::auth::{Receipt, RequestSigner};
use chain::keys::{AccountId, Keypair};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Why a call failed: [`chain::auth::signed_http::HttpError`] (`status()` and `reason()` for
/// refusals); [`verdict_reason`] is the verdict it earns.
pub type CallError = HttpError;

/// A miner on the subnet: its uid, hotkey and the address it serves on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinerEndpoint {
    /// uid on the subnet.
    pub uid: u16,
    /// The miner's hotkey; requests are bound to it and receipts must be signed by it.
    pub hotkey: AccountId,
    /// Where it serves.
    pub addr: SocketAddr,
}

impl MinerEndpoint {
    /// Where calls to this miner go.
    pub fn target(&self) -> Target {
        Target {
            base: format!("http://{}", self.addr),
            hotkey: self.hotkey,
        }
    }
}

/// Where a call goes: a base URL (like `http://127.0.0.1:8091`) and the hotkey that must receipt it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The base URL, without a trailing `/`.
    pub base: String,
    /// The miner's hotkey.
    pub hotkey: AccountId,
}

impl Target {
    /// A target at `base` (a trailing `/` is dropped) for `hotkey`.
    pub fn new(base: &str, hotkey: AccountId) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            hotkey,
        }
    }
}

/// How long one call may take and how many answer bytes it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// The whole exchange (connect, send, status and body) must finish within this.
    pub timeout: Duration,
    /// Largest answer body, in bytes.
    pub cap: usize,
}

/// A receipted answer: the decoded body, the bytes it was decoded from, the receipt and the time.
#[derive(Debug, Clone)]
pub struct Signed<T> {
    /// The decoded body.
    pub body: T,
    /// The body as received (what answer hashes are taken of).
    pub bytes: Vec<u8>,
    /// The miner's receipt over the request and this body.
    pub receipt: Receipt,
    /// From just before the request was sent to the last body byte.
    pub elapsed: Duration,
}

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

/// A pooled, signing client for any number of miners.
#[derive(Debug, Clone)]
pub struct Client {
    http: SignedHttp,
}

impl Client {
    /// A client signing with `signer`, over connections made as `options` says.
    pub fn new(signer: Arc<RequestSigner>, options: &HttpOptions) -> Result<Self, CallError> {
        Ok(Self {
            http: SignedHttp::new(signer, options)?,
        })
    }

    /// A client signing with `signer`, keeping up to `idle_per_host` idle HTTP/1.1 connections per
    /// miner (so the ping that measures the round-trip time and the challenge share one).
    pub fn pooled(signer: Arc<RequestSigner>, idle_per_host: usize) -> Result<Self, CallError> {
        let options = HttpOptions {
            idle_per_host,
            ..HttpOptions::default()
        };
        Self::new(signer, &options)
    }

    /// The signing hotkey.
    pub fn hotkey(&self) -> AccountId {
        self.http.hotkey()
    }

    /// The signed HTTP client underneath.
    pub(crate) const fn http(&self) -> &SignedHttp {
        &self.http
    }

    /// Sends `body` signed to `to` at `path`, within `budget`, and checks the receipt.
    pub async fn post(
        &self,
        step: &'static str,
        to: &Target,
        path: &str,
        body: Vec<u8>,
        budget: Budget,
    ) -> Result<SignedReply, CallError> {
        self.http
            .post(step, &to.base, &to.hotkey, path, body, budget.timeout, budget.cap)
            .await
    }

    /// `GET` a public route of the server at `base`; any status comes back with its body.
    pub async fn get(&self, base: &str, path: &str, budget: Budget) -> Result<(u16, Vec<u8>), CallError> {
        self.http.get("get", base, path, budget.timeout, budget.cap).await
    }

    /// `GET /info` of the server at `base`.
    pub async fn info(&self, base: &str, budget: Budget) -> Result<MinerInfo, CallError> {
        let (status, body) = self.get(base, INFO_PATH, budget).await?;
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

    /// `POST /v1/ping`: the miner must echo `body`.
    pub async fn ping(
        &self,
        to: &Target,
        body: Vec<u8>,
        budget: Budget,
    ) -> Result<Signed<Vec<u8>>, CallError> {
        let reply = self.post("ping", to, PING_PATH, body.clone(), budget).await?;
        if reply.body != body {
            return Err(HttpError::Malformed {
                step: "ping",
                detail: "the ping was not echoed".into(),
            });
        }
        Ok(Signed {
            body: reply.body.clone(),
            bytes: reply.body,
            receipt: reply.receipt,
            elapsed: reply.elapsed,
        })
    }

    /// The round-trip time to `to`: the smallest of `pings` signed pings on the pooled connection
    /// (the first may include the TCP handshake).
    pub async fn rtt(&self, to: &Target, pings: u32, timeout: Duration) -> Result<Duration, CallError> {
        let budget = Budget { timeout, cap: 4096 };
        let mut best: Option<Duration> = None;
        for i in 0..pings.max(1) {
            let reply = self
                .ping(to, format!("{{\"ping\":{i}}}").into_bytes(), budget)
                .await?;
            best = Some(best.map_or(reply.elapsed, |b| b.min(reply.elapsed)));
        }
        Ok(best.unwrap_or_default())
    }

    /// `POST /v1/challenge`; the answer must echo the challenge's id.
    pub async fn challenge(
        &self,
        to: &Target,
        request: &ChallengeRequest,
        budget: Budget,
    ) -> Result<Signed<ChallengeResponse>, CallError> {
        let answer: Signed<ChallengeResponse> = self
            .post_json("challenge", to, CHALLENGE_PATH, request, budget)
            .await?;
        echoed("challenge", &request.id, &answer.body.id)?;
        Ok(answer)
    }

    /// `POST /v1/open`; the answer must echo the challenge's id.
    pub async fn open(
        &self,
        to: &Target,
        request: &OpenRequest,
        budget: Budget,
    ) -> Result<Signed<OpenResponse>, CallError> {
        let answer: Signed<OpenResponse> = self.post_json("open", to, OPEN_PATH, request, budget).await?;
        echoed("open", &request.id, &answer.body.id)?;
        Ok(answer)
    }

    async fn post_json<Q: Serialize, A: DeserializeOwned>(
        &self,
        step: &'static str,
        to: &Target,
        path: &str,
        request: &Q,
        budget: Budget,
    ) -> Result<Signed<A>, CallError> {
        let body = serde_json::to_vec(request).map_err(|e| malformed(step, &e))?;
        let reply = self.post(step, to, path, body, budget).await?;
        let decoded = serde_json::from_slice(&reply.body).map_err(|e| malformed(step, &e))?;
        Ok(Signed {
            body: decoded,
            bytes: reply.body,
            receipt: reply.receipt,
            elapsed: reply.elapsed,
        })
    }
}

/// An answer naming another challenge than the one asked is malformed.
fn echoed(step: &'static str, asked: &str, answered: &str) -> Result<(), CallError> {
    if asked == answered {
        Ok(())
    } else {
        Err(HttpError::Malformed {
            step,
            detail: format!("the answer names challenge {answered:?}, not {asked:?}"),
        })
    }
}

fn malformed(step: &'static str, e: &serde_json::Error) -> CallError {
    HttpError::Malformed {
        step,
        detail: format!("not valid JSON for this route: {e}"),
    }
}

/// Time allowed for one whole exchange of a [`MinerClient`].
pub const CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// Largest answer body a [`MinerClient`] accepts.
pub const MAX_ANSWER_BYTES: usize = 64 << 20;

/// The default bounds of a [`MinerClient`] call.
pub const DEFAULT_BUDGET: Budget = Budget {
    timeout: CALL_TIMEOUT,
    cap: MAX_ANSWER_BYTES,
};

/// A [`Client`] bound to one miner (its base URL and hotkey), each call bounded by
/// [`DEFAULT_BUDGET`]: what `miner doctor`, `miner bench-transport` and tests use.
#[derive(Debug, Clone)]
pub struct MinerClient {
    client: Client,
    target: Target,
}

impl MinerClient {
    /// A client for the miner at `base` (like `http://127.0.0.1:8091`) with hotkey `miner`, signing with
    /// `key`. `http2` selects HTTP/2 with prior knowledge (h2c) instead of HTTP/1.1.
    pub fn new(base: &str, miner: AccountId, key: Keypair, http2: bool) -> Result<Self, CallError> {
        let options = HttpOptions {
            http2,
            idle_per_host: 1024,
            ..HttpOptions::default()
        };
        Ok(Self {
            client: Client::new(Arc::new(RequestSigner::new(key)), &options)?,
            target: Target::new(base, miner),
        })
    }

    /// The same client (and connection pool) signing for the miner with hotkey `miner`.
    pub fn for_miner(self, miner: AccountId) -> Self {
        Self {
            target: Target::new(&self.target.base, miner),
            ..self
        }
    }

    /// The pooled client underneath.
    pub const fn client(&self) -> &Client {
        &self.client
    }

    /// Where calls go.
    pub const fn target(&self) -> &Target {
        &self.target
    }

    /// The miner's hotkey this client signs for.
    pub const fn miner(&self) -> &AccountId {
        &self.target.hotkey
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.target.base
    }

    /// `GET` a public route and return the raw status and body.
    pub async fn get(&self, path: &str) -> Result<(u16, Vec<u8>), CallError> {
        self.client.get(&self.target.base, path, DEFAULT_BUDGET).await
    }

    /// `GET /info`.
    pub async fn info(&self) -> Result<MinerInfo, CallError> {
        self.client.info(&self.target.base, DEFAULT_BUDGET).await
    }

    /// Sends `body` to `path`, signed, and returns the raw answer after checking its receipt.
    pub async fn post_raw(&self, path: &str, body: Vec<u8>) -> Result<Signed<Vec<u8>>, CallError> {
        let reply = self
            .client
            .post(step_of(path), &self.target, path, body, DEFAULT_BUDGET)
            .await?;
        Ok(Signed {
            body: reply.body.clone(),
            bytes: reply.body,
            receipt: reply.receipt,
            elapsed: reply.elapsed,
        })
    }

    /// `POST /v1/ping`: the miner echoes `body`.
    pub async fn ping(&self, body: Vec<u8>) -> Result<Signed<Vec<u8>>, CallError> {
        self.client.ping(&self.target, body, DEFAULT_BUDGET).await
    }

    /// `POST /v1/challenge`; the answer must echo the id.
    pub async fn challenge(
        &self,
        request: &ChallengeRequest,
    ) -> Result<Signed<ChallengeResponse>, CallError> {
        self.client.challenge(&self.target, request, DEFAULT_BUDGET).await
    }

    /// `POST /v1/open`; the answer must echo the id.
    pub async fn open(&self, request: &OpenRequest) -> Result<Signed<OpenResponse>, CallError> {
        self.client.open(&self.target, request, DEFAULT_BUDGET).await
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_for_another_challenge_is_malformed() {
        assert_eq!(echoed("challenge", "7-1", "7-1"), Ok(()));
        let err = echoed("open", "7-1", "7-2").unwrap_err();
        assert_eq!(verdict_reason(&err), Reason::Malformed);
        assert!(err.to_string().contains("\"7-2\""), "{err}");
    }

    #[test]
    fn failed_calls_earn_their_reason() {
        let refused = |status| HttpError::Refused {
            step: "challenge",
            status,
            reason: "busy".into(),
            message: String::new(),
        };
        let timeout = HttpError::Timeout {
            step: "challenge",
            after: Duration::from_secs(1),
        };
        assert_eq!(verdict_reason(&timeout), Reason::Timeout);
        for status in [401, 403, 413, 429, 503] {
            assert_eq!(verdict_reason(&refused(status)), Reason::Refused, "{status}");
        }
        assert_eq!(verdict_reason(&refused(500)), Reason::Malformed);
        let too_large = HttpError::TooLarge {
            step: "open",
            cap: 10,
        };
        assert_eq!(verdict_reason(&too_large), Reason::Malformed);
    }

    #[test]
    fn targets_drop_a_trailing_slash_and_endpoints_use_http() {
        let hotkey = Keypair::from_uri("//Bob").unwrap().account();
        assert_eq!(
            Target::new("http://127.0.0.1:8091/", hotkey).base,
            "http://127.0.0.1:8091"
        );
        let endpoint = MinerEndpoint {
            uid: 3,
            hotkey,
            addr: "127.0.0.2:9000".parse().unwrap(),
        };
        assert_eq!(endpoint.target(), Target::new("http://127.0.0.2:9000", hotkey));
    }
}
