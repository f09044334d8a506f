//! Signed requests over HTTP: the one client the validator's rounds, `miner doctor` and
//! `miner bench-transport` use to talk to a miner.
//!
//! Every `POST` signs the exact body bytes it sends (`btauth/1`, bound to the receiver's hotkey) and
//! checks the receiver's [`Receipt`] over the answer. The whole exchange (connect, send, status,
//! body) has one timeout, and the body is read chunk by chunk up to a cap, so an answer of 50 MB of
//! garbage costs at most the cap in memory and the timeout in time. A refusal's JSON error body
//! (`{"error": …, "reason": …}`) is decoded into its reason code and message.
//!
//! ```no_run
//! # async fn demo() -> Result<(), chain::auth::signed_http::HttpError> {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use chain::auth::RequestSigner;
//! use chain::auth::signed_http::{HttpOptions, SignedHttp};
//! use chain::keys::Keypair;
//!
//! let validator = Keypair::from_uri("//Alice").unwrap();
//! let miner = Keypair::from_uri("//Bob").unwrap().account();
//! let http = SignedHttp::new(Arc::new(RequestSigner::new(validator)), &HttpOptions::default())?;
//! let reply = http
//!     .post("ping", "http://127.0.0.2:8091", &miner, "/v1/ping", b"{}".to_vec(), Duration::from_secs(2), 4096)
//!     .await?;
//! println!("{} bytes in {:?}", reply.body.len(), reply.elapsed);
//! # Ok(()) }
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Receipt, RequestSigner};
use crate::keys::AccountId;

/// How the pooled connections behave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpOptions {
    /// HTTP/2 with prior knowledge (h2c) instead of HTTP/1.1 with keep-alive.
    pub http2: bool,
    /// Idle connections kept per host.
    pub idle_per_host: usize,
    /// Timeout of the TCP connect alone.
    pub connect_timeout: Duration,
}

impl Default for HttpOptions {
    /// HTTP/1.1, two idle connections per host (a ping and the challenge after it share one), 5 s to
    /// connect.
    fn default() -> Self {
        Self {
            http2: false,
            idle_per_host: 2,
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// Why one call failed; `step` names the call (`ping`, `challenge`, `open`, …).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// The exchange did not finish in time.
    #[error("{step} timed out after {after:?}")]
    Timeout {
        /// Which call.
        step: &'static str,
        /// The limit.
        after: Duration,
    },
    /// Connecting, sending or reading failed.
    #[error("{step}: could not reach {url}: {detail}; check the address and that the server runs")]
    Transport {
        /// Which call.
        step: &'static str,
        /// The URL called.
        url: String,
        /// The cause, with its chain.
        detail: String,
    },
    /// The server answered with a status outside 2xx.
    #[error("{step}: HTTP {status} ({reason}): {message}")]
    Refused {
        /// Which call.
        step: &'static str,
        /// HTTP status.
        status: u16,
        /// The error body's reason code, or `unknown` when the body is not an error body.
        reason: String,
        /// The error body's message, or the start of the body.
        message: String,
    },
    /// The answer passed the size cap.
    #[error("{step}: answer exceeds the {cap}-byte cap")]
    TooLarge {
        /// Which call.
        step: &'static str,
        /// The cap.
        cap: usize,
    },
    /// The answer is not what was asked for (bad receipt, bad JSON, no echo).
    #[error("{step}: malformed answer: {detail}")]
    Malformed {
        /// Which call.
        step: &'static str,
        /// What is wrong.
        detail: String,
    },
}

impl HttpError {
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

/// A successful, receipted answer.
#[derive(Debug, Clone)]
pub struct SignedReply {
    /// The body, as received.
    pub body: Vec<u8>,
    /// From just before the request was sent to the last body byte.
    pub elapsed: Duration,
    /// The receiver's verified receipt over the request and this body.
    pub receipt: Receipt,
}

/// A signed request whose answer's body is still streaming ([`SignedHttp::post_streaming`]).
#[derive(Debug)]
pub struct StreamingReply {
    step: &'static str,
    url: String,
    /// The request's btauth nonce (what a generation receipt names as its request id).
    pub request_id: String,
    /// The hotkey that signed the request.
    pub requester: AccountId,
    response: reqwest::Response,
    started: Instant,
}

impl StreamingReply {
    /// The answer's HTTP status (2xx).
    pub fn status(&self) -> u16 {
        self.response.status().as_u16()
    }

    /// The answer's `Content-Type`, when it has one.
    pub fn content_type(&self) -> Option<&str> {
        self.response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
    }

    /// When the request was sent.
    pub const fn started(&self) -> Instant {
        self.started
    }

    /// The next chunk of the body (`None` at its end), with no timeout of its own: the caller bounds it.
    pub async fn chunk(&mut self) -> Result<Option<Vec<u8>>, HttpError> {
        match self.response.chunk().await {
            Ok(c) => Ok(c.map(|b| b.to_vec())),
            Err(e) => Err(HttpError::Transport {
                step: self.step,
                url: self.url.clone(),
                detail: error_chain(&e),
            }),
        }
    }
}

/// A pooled client that signs with one hotkey.
#[derive(Debug, Clone)]
pub struct SignedHttp {
    http: reqwest::Client,
    signer: Arc<RequestSigner>,
}

impl SignedHttp {
    /// A client signing with `signer`.
    pub fn new(signer: Arc<RequestSigner>, options: &HttpOptions) -> Result<Self, HttpError> {
        let builder = reqwest::Client::builder()
            .pool_max_idle_per_host(options.idle_per_host)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .connect_timeout(options.connect_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy();
        let builder = if options.http2 {
            builder.http2_prior_knowledge()
        } else {
            builder.http1_only()
        };
        let http = builder.build().map_err(|e| HttpError::Transport {
            step: "setup",
            url: String::new(),
            detail: error_chain(&e),
        })?;
        Ok(Self { http, signer })
    }

    /// The signing hotkey.
    pub fn hotkey(&self) -> AccountId {
        self.signer.key().account()
    }

    /// The btauth-signed JSON `POST` of `body` to `base` + `path` for `receiver`: its request id, URL and
    /// request, not yet sent.
    fn signed_post(
        &self,
        base: &str,
        receiver: &AccountId,
        path: &str,
        body: Vec<u8>,
    ) -> (String, String, reqwest::RequestBuilder) {
        let signed = self.signer.btauth("POST", path, &body, Some(receiver));
        let url = format!("{base}{path}");
        let request = self
            .http
            .post(&url)
            .headers(signed.headers)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(body);
        (signed.request_id, url, request)
    }

    /// Sends `body` signed to `base` + `path` (`base` like `http://1.2.3.4:8091`) for `receiver`;
    /// the exchange must finish within `timeout`, the body must not pass `cap` bytes and must carry
    /// `receiver`'s receipt.
    #[allow(clippy::too_many_arguments)]
    pub async fn post(
        &self,
        step: &'static str,
        base: &str,
        receiver: &AccountId,
        path: &str,
        body: Vec<u8>,
        timeout: Duration,
        cap: usize,
    ) -> Result<SignedReply, HttpError> {
        let (request_id, url, request) = self.signed_post(base, receiver, path, body);
        let started = Instant::now();
        let (status, headers, buf) = exchange(step, &url, request, timeout, cap).await?;
        let elapsed = started.elapsed();
        if !(200..300).contains(&status) {
            return Err(refusal(step, status, &buf));
        }
        let receipt = Receipt::from_headers(&headers, status, &buf)
            .and_then(|r| r.verify(receiver, &self.hotkey(), &request_id, &buf).map(|()| r))
            .map_err(|e| HttpError::Malformed {
                step,
                detail: format!("receipt: {e}"),
            })?;
        Ok(SignedReply {
            body: buf,
            elapsed,
            receipt,
        })
    }

    /// Sends `body` signed to `base` + `path` for `receiver` and returns as soon as the answer's status
    /// and headers arrive (within `timeout`), leaving its body to the caller to read as it streams: for
    /// answers that carry their own proof (generation receipts in an NDJSON stream) rather than the HTTP
    /// [`Receipt`] over the whole body. A status outside 2xx is read (at most `error_cap` bytes, within the
    /// same `timeout`) and returned as [`HttpError::Refused`]. Dropping the returned [`StreamingReply`]
    /// closes the connection, which tells the server to stop.
    #[allow(clippy::too_many_arguments)]
    pub async fn post_streaming(
        &self,
        step: &'static str,
        base: &str,
        receiver: &AccountId,
        path: &str,
        body: Vec<u8>,
        timeout: Duration,
        error_cap: usize,
    ) -> Result<StreamingReply, HttpError> {
        let (request_id, url, request) = self.signed_post(base, receiver, path, body);
        let started = Instant::now();
        let transport = |e: reqwest::Error| HttpError::Transport {
            step,
            url: url.clone(),
            detail: error_chain(&e),
        };
        let response = tokio::time::timeout(timeout, request.send())
            .await
            .map_err(|_| HttpError::Timeout { step, after: timeout })?
            .map_err(transport)?;
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            let left = timeout.saturating_sub(started.elapsed());
            let mut response = response;
            let read = async {
                let mut buf = Vec::new();
                while let Some(chunk) = response.chunk().await.map_err(transport)? {
                    let room = error_cap.saturating_sub(buf.len());
                    buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
                    if buf.len() >= error_cap {
                        break;
                    }
                }
                Ok::<_, HttpError>(buf)
            };
            let buf = tokio::time::timeout(left, read)
                .await
                .map_err(|_| HttpError::Timeout { step, after: timeout })??;
            return Err(refusal(step, status, &buf));
        }
        Ok(StreamingReply {
            step,
            url,
            request_id,
            requester: self.hotkey(),
            response,
            started,
        })
    }

    /// `GET base + path` (unsigned: public routes), with the same time and size bounds; any status
    /// comes back with its body.
    pub async fn get(
        &self,
        step: &'static str,
        base: &str,
        path: &str,
        timeout: Duration,
        cap: usize,
    ) -> Result<(u16, Vec<u8>), HttpError> {
        let url = format!("{base}{path}");
        let request = self.http.get(&url);
        let (status, _, body) = exchange(step, &url, request, timeout, cap).await?;
        Ok((status, body))
    }
}

/// Sends `request` and reads the status, headers and at most `cap` body bytes within `timeout`.
async fn exchange(
    step: &'static str,
    url: &str,
    request: reqwest::RequestBuilder,
    timeout: Duration,
    cap: usize,
) -> Result<(u16, http::HeaderMap, Vec<u8>), HttpError> {
    let transport = |e: reqwest::Error| HttpError::Transport {
        step,
        url: url.to_owned(),
        detail: error_chain(&e),
    };
    let read = async {
        let mut resp = request.send().await.map_err(transport)?;
        let status = resp.status().as_u16();
        if resp.content_length().is_some_and(|len| len > cap as u64) {
            return Err(HttpError::TooLarge { step, cap });
        }
        let mut buf = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(transport)? {
            if buf.len() + chunk.len() > cap {
                return Err(HttpError::TooLarge { step, cap });
            }
            buf.extend_from_slice(&chunk);
        }
        Ok((status, resp.headers().clone(), buf))
    };
    tokio::time::timeout(timeout, read)
        .await
        .map_err(|_| HttpError::Timeout { step, after: timeout })?
}

/// A refusal from its status and JSON error body (`{"error": message, "reason": code}`).
fn refusal(step: &'static str, status: u16, body: &[u8]) -> HttpError {
    let parsed = serde_json::from_slice::<serde_json::Value>(body).ok();
    let field = |name: &str| {
        parsed
            .as_ref()
            .and_then(|v| v.get(name))
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
    };
    HttpError::Refused {
        step,
        status,
        reason: field("reason").unwrap_or_else(|| "unknown".to_owned()),
        message: field("error")
            .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned()),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_keep_the_reason_code_and_message_or_the_body() {
        let e = refusal("open", 429, br#"{"error":"slow down","reason":"rate_limited"}"#);
        assert_eq!((e.status(), e.reason()), (Some(429), Some("rate_limited")));
        assert_eq!(e.to_string(), "open: HTTP 429 (rate_limited): slow down");
        let e = refusal("open", 502, b"<html>bad gateway</html>");
        assert_eq!(e.reason(), Some("unknown"));
        assert!(e.to_string().ends_with("<html>bad gateway</html>"), "{e}");
        let long = vec![b'x'; 1000];
        let HttpError::Refused { message, .. } = refusal("open", 500, &long) else {
            unreachable!()
        };
        assert_eq!(message.len(), 200);
    }
}
