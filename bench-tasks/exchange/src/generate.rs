//! Organic generation: `POST /v1/generate` to one miner, streamed ([`Client::generate_stream`]) or not
//! ([`Client::generate`]), with the miner's generation receipt checked against what was received.
//!
//! The request is serialized once and those exact bytes are signed, sent and kept: the receipt's request
//! hash must be their sha256, its token hash must match the ids received, its counts the counts reported,
//! and its signature the miner's hotkey. A streamed answer is bounded in time (the first event must come
//! within [`StreamBounds::first_event`], each later one within [`StreamBounds::between_events`]) and in
//! size (no line over [`StreamBounds::max_line_bytes`], no more ids than asked for). Dropping a
//! [`GenerationStream`] closes the connection, which cancels the miner's work.

use std::time::{Duration, Instant};

use bench_tasks::wire::{
    ErrorBody, FinishReason, GENERATE_PATH, GenerateDone, GenerateEvent, GenerateRequest, GenerateResponse,
};
use chain::auth::generation::{GenerationReceipt, GenerationReceiptError};
use chain::auth::signed_http::{HttpError, StreamingReply};
use chain::keys::AccountId;

use crate::client::{Budget, CallError, Client, Target};

/// A streamed event as the miner sends it, with the generation receipt type filled in.
pub type Event = GenerateEvent<GenerationReceipt>;
/// The end of a generation, with its receipt.
pub type Done = GenerateDone<GenerationReceipt>;
/// A non-streamed answer, with its receipt.
pub type Response = GenerateResponse<GenerationReceipt>;

/// Room for a refusal's JSON error body.
const ERROR_BODY_CAP: usize = 16 * 1024;

/// Time and size bounds of one streamed generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamBounds {
    /// From sending the request to the first event (the status and headers included).
    pub first_event: Duration,
    /// Between two events once the first came.
    pub between_events: Duration,
    /// Longest NDJSON line accepted, in bytes.
    pub max_line_bytes: usize,
}

impl Default for StreamBounds {
    /// 30 s to the first event (a cold prompt on a busy miner), 10 s between events, 1 MiB lines.
    fn default() -> Self {
        Self {
            first_event: Duration::from_secs(30),
            between_events: Duration::from_secs(10),
            max_line_bytes: 1 << 20,
        }
    }
}

/// Why a generation failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GenerateError {
    /// The call failed before the answer began: unreachable, refused (with the miner's reason), timed
    /// out waiting for the status.
    #[error(transparent)]
    Call(#[from] CallError),
    /// The request could not be encoded (not the miner's fault).
    #[error("the generation request could not be encoded: {0}")]
    Encode(String),
    /// No event came within [`StreamBounds::first_event`].
    #[error("no event within {0:?} of sending the request")]
    FirstEventTimeout(Duration),
    /// The stream stalled: no event within [`StreamBounds::between_events`].
    #[error("the stream stalled: no event for {0:?}")]
    Stalled(Duration),
    /// The miner sent something that is not the contract (bad JSON, an over-long line, too many tokens,
    /// counts that disagree, an answer that is not NDJSON).
    #[error("malformed generation answer: {0}")]
    Malformed(String),
    /// The stream ended (connection closed) before its `done` event.
    #[error("the stream ended before its done event ({0})")]
    Truncated(String),
    /// The miner reported an error mid-stream.
    #[error("the miner failed mid-stream ({}): {}", .0.reason, .0.error)]
    Miner(ErrorBody),
    /// The receipt does not check out.
    #[error("generation receipt: {0}")]
    Receipt(#[from] GenerationReceiptError),
}

impl GenerateError {
    /// A short `snake_case` code for logs, metrics and usage rows.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Call(HttpError::Timeout { .. }) => "timeout",
            Self::Call(HttpError::Transport { .. }) => "unreachable",
            Self::Call(HttpError::Refused { .. }) => "refused",
            Self::Call(_) => "malformed",
            Self::Encode(_) => "encode",
            Self::FirstEventTimeout(_) => "first_token_timeout",
            Self::Stalled(_) => "stalled",
            Self::Malformed(_) => "malformed",
            Self::Truncated(_) => "truncated",
            Self::Miner(_) => "miner_error",
            Self::Receipt(_) => "bad_receipt",
        }
    }

    /// Whether no token can have reached the caller yet, so another miner may be tried.
    pub const fn before_first_token(&self) -> bool {
        matches!(self, Self::Call(_) | Self::FirstEventTimeout(_) | Self::Encode(_))
    }
}

/// What a request looked like on the wire: the exact body bytes signed and sent, the request id the
/// signature carried, and who signed it. A receipt is checked against these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The body bytes, as sent.
    pub body: Vec<u8>,
    /// The btauth nonce.
    pub request_id: String,
    /// The signing hotkey.
    pub requester: AccountId,
    /// The miner the request went to.
    pub miner: AccountId,
    /// The most tokens asked for.
    pub max_tokens: usize,
}

impl Sent {
    /// Checks `done` (its counts and its receipt) against the request and the `ids` received.
    ///
    /// # Errors
    /// [`GenerateError::Malformed`] for counts that disagree with the ids, the receipt or the request;
    /// [`GenerateError::Receipt`] for a receipt that is not the miner's over exactly these tokens.
    pub fn check(&self, done: &Done, ids: &[u32], model_sha256: Option<&str>) -> Result<(), GenerateError> {
        let r = &done.receipt;
        if done.completion_tokens != ids.len() {
            return Err(GenerateError::Malformed(format!(
                "done reports {} completion tokens, {} were received",
                done.completion_tokens,
                ids.len()
            )));
        }
        if ids.len() > self.max_tokens {
            return Err(GenerateError::Malformed(format!(
                "{} tokens generated, {} asked for at most",
                ids.len(),
                self.max_tokens
            )));
        }
        if r.prompt_tokens != done.prompt_tokens as u64 || r.finish_reason != done.finish_reason.as_str() {
            return Err(GenerateError::Malformed(
                "the receipt's prompt count or finish reason differs from the done event's".into(),
            ));
        }
        if let Some(sha) = model_sha256
            && !r.model_sha256.eq_ignore_ascii_case(sha)
        {
            return Err(GenerateError::Malformed(format!(
                "the receipt names model {}, the request went for {sha}",
                r.model_sha256
            )));
        }
        r.verify(&self.miner, &self.requester, &self.request_id, &self.body, ids)?;
        Ok(())
    }
}

/// One event of a streamed generation, after checking.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// Newly generated ids and their text.
    Tokens {
        /// The ids.
        ids: Vec<u32>,
        /// Their decoded text (possibly empty).
        text: String,
    },
    /// The generation ended and its receipt checked out against every id received.
    Done(Box<Done>),
}

/// A streamed generation in progress; [`next`](Self::next) yields its events.
#[derive(Debug)]
pub struct GenerationStream {
    reply: StreamingReply,
    sent: Sent,
    model_sha256: Option<String>,
    bounds: StreamBounds,
    buf: Vec<u8>,
    ids: Vec<u32>,
    first_event_at: Option<Instant>,
    finished: bool,
}

impl GenerationStream {
    /// The request as sent.
    pub const fn sent(&self) -> &Sent {
        &self.sent
    }

    /// Every id received so far.
    pub fn ids(&self) -> &[u32] {
        &self.ids
    }

    /// When the request was sent.
    pub const fn started(&self) -> Instant {
        self.reply.started()
    }

    /// When the first event arrived, once it has.
    pub const fn first_event_at(&self) -> Option<Instant> {
        self.first_event_at
    }

    /// The next event, `None` after the `done` event or an error. Each call is bounded by the stream's
    /// bounds: [`GenerateError::FirstEventTimeout`] before the first event, [`GenerateError::Stalled`]
    /// after it.
    pub async fn next(&mut self) -> Option<Result<StreamEvent, GenerateError>> {
        if self.finished {
            return None;
        }
        let out = self.next_inner().await;
        if !matches!(out, Ok(StreamEvent::Tokens { .. })) {
            self.finished = true;
        }
        Some(out)
    }

    async fn next_inner(&mut self) -> Result<StreamEvent, GenerateError> {
        loop {
            if let Some(line) = self.take_line()? {
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                if self.first_event_at.is_none() {
                    self.first_event_at = Some(Instant::now());
                }
                return self.event(&line);
            }
            let wait = match self.first_event_at {
                None => self
                    .bounds
                    .first_event
                    .saturating_sub(self.reply.started().elapsed()),
                Some(_) => self.bounds.between_events,
            };
            let chunk = match tokio::time::timeout(wait, self.reply.chunk()).await {
                Err(_) if self.first_event_at.is_none() => {
                    return Err(GenerateError::FirstEventTimeout(self.bounds.first_event));
                }
                Err(_) => return Err(GenerateError::Stalled(self.bounds.between_events)),
                Ok(Err(e)) => return Err(GenerateError::Truncated(e.to_string())),
                Ok(Ok(None)) => {
                    return Err(GenerateError::Truncated(format!(
                        "connection closed after {} tokens",
                        self.ids.len()
                    )));
                }
                Ok(Ok(Some(chunk))) => chunk,
            };
            self.buf.extend_from_slice(&chunk);
        }
    }

    /// Takes one complete line off the buffer, if one is there.
    fn take_line(&mut self) -> Result<Option<Vec<u8>>, GenerateError> {
        match self.buf.iter().position(|&b| b == b'\n') {
            Some(i) if i > self.bounds.max_line_bytes => Err(self.too_long()),
            Some(i) => {
                let mut line: Vec<u8> = self.buf.drain(..=i).collect();
                line.pop();
                Ok(Some(line))
            }
            None if self.buf.len() > self.bounds.max_line_bytes => Err(self.too_long()),
            None => Ok(None),
        }
    }

    fn too_long(&self) -> GenerateError {
        GenerateError::Malformed(format!(
            "an NDJSON line is over {} bytes",
            self.bounds.max_line_bytes
        ))
    }

    fn event(&mut self, line: &[u8]) -> Result<StreamEvent, GenerateError> {
        let event: Event = serde_json::from_slice(line)
            .map_err(|e| GenerateError::Malformed(format!("not a generation event: {e}")))?;
        match event {
            GenerateEvent::Tokens { ids, text } => {
                if self.ids.len() + ids.len() > self.sent.max_tokens {
                    return Err(GenerateError::Malformed(format!(
                        "more than the {} tokens asked for",
                        self.sent.max_tokens
                    )));
                }
                self.ids.extend_from_slice(&ids);
                Ok(StreamEvent::Tokens { ids, text })
            }
            GenerateEvent::Done(done) => {
                self.sent.check(&done, &self.ids, self.model_sha256.as_deref())?;
                Ok(StreamEvent::Done(Box::new(done)))
            }
            GenerateEvent::Error(e) => Err(GenerateError::Miner(e)),
        }
    }
}

/// A non-streamed generation whose receipt checked out.
#[derive(Debug, Clone)]
pub struct Generated {
    /// The answer.
    pub response: Response,
    /// The request as sent.
    pub sent: Sent,
    /// From sending the request to the answer's last byte.
    pub elapsed: Duration,
}

impl Client {
    async fn send_generate(
        &self,
        to: &Target,
        request: &GenerateRequest,
        timeout: Duration,
    ) -> Result<(StreamingReply, Sent), GenerateError> {
        let body = serde_json::to_vec(request).map_err(|e| GenerateError::Encode(e.to_string()))?;
        let reply = self
            .http()
            .post_streaming(
                "generate",
                &to.base,
                &to.hotkey,
                GENERATE_PATH,
                body.clone(),
                timeout,
                ERROR_BODY_CAP,
            )
            .await?;
        let sent = Sent {
            body,
            request_id: reply.request_id.clone(),
            requester: reply.requester,
            miner: to.hotkey,
            max_tokens: request.max_tokens,
        };
        Ok((reply, sent))
    }

    /// `POST /v1/generate` with `stream: true`: returns once the miner accepted the request (its status
    /// arrived within `bounds.first_event`); the events follow through [`GenerationStream::next`].
    /// `model_sha256`, when given, is the model the receipt must name.
    ///
    /// # Errors
    /// [`GenerateError::Call`] when the miner cannot be reached or refuses (503 when its slots are full),
    /// [`GenerateError::Malformed`] when its answer is not NDJSON.
    pub async fn generate_stream(
        &self,
        to: &Target,
        request: &GenerateRequest,
        model_sha256: Option<&str>,
        bounds: StreamBounds,
    ) -> Result<GenerationStream, GenerateError> {
        let request = GenerateRequest {
            stream: true,
            ..request.clone()
        };
        let (reply, sent) = self.send_generate(to, &request, bounds.first_event).await?;
        if let Some(ct) = reply.content_type()
            && !ct.starts_with(bench_tasks::wire::NDJSON_CONTENT_TYPE)
        {
            return Err(GenerateError::Malformed(format!(
                "a streamed generation came as {ct}, not NDJSON"
            )));
        }
        Ok(GenerationStream {
            reply,
            sent,
            model_sha256: model_sha256.map(str::to_owned),
            bounds,
            buf: Vec::new(),
            ids: Vec::new(),
            first_event_at: None,
            finished: false,
        })
    }

    /// `POST /v1/generate` with `stream: false`, within `budget` (the whole exchange and the answer's
    /// size); the receipt is checked against the ids of the answer.
    ///
    /// # Errors
    /// As [`Self::generate_stream`], plus [`GenerateError::Call`] with a timeout or a too-large answer.
    pub async fn generate(
        &self,
        to: &Target,
        request: &GenerateRequest,
        model_sha256: Option<&str>,
        budget: Budget,
    ) -> Result<Generated, GenerateError> {
        let request = GenerateRequest {
            stream: false,
            ..request.clone()
        };
        let (mut reply, sent) = self.send_generate(to, &request, budget.timeout).await?;
        let started = reply.started();
        let read = async {
            let mut buf = Vec::new();
            while let Some(chunk) = reply.chunk().await? {
                if buf.len() + chunk.len() > budget.cap {
                    return Err(HttpError::TooLarge {
                        step: "generate",
                        cap: budget.cap,
                    });
                }
                buf.extend_from_slice(&chunk);
            }
            Ok(buf)
        };
        let left = budget.timeout.saturating_sub(started.elapsed());
        let buf = tokio::time::timeout(left, read)
            .await
            .map_err(|_| HttpError::Timeout {
                step: "generate",
                after: budget.timeout,
            })??;
        let response: Response = serde_json::from_slice(&buf)
            .map_err(|e| GenerateError::Malformed(format!("not a generation answer: {e}")))?;
        sent.check(&response.done, &response.ids, model_sha256)?;
        Ok(Generated {
            response,
            sent,
            elapsed: started.elapsed(),
        })
    }
}

/// The finish reason a receipt states, parsed.
pub fn finish_reason(receipt: &GenerationReceipt) -> Option<FinishReason> {
    match receipt.finish_reason.as_str() {
        "stop" => Some(FinishReason::Stop),
        "length" => Some(FinishReason::Length),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chain::auth::generation::Generation;
    use chain::keys::Keypair;

    fn sent_and_done(tokens: &[u32]) -> (Sent, Done) {
        let validator = Keypair::from_uri("//Alice").unwrap();
        let miner = Keypair::from_uri("//Bob").unwrap();
        let body = br#"{"model":"smollm2","prompt_tokens":[1],"max_tokens":4}"#.to_vec();
        let receipt = GenerationReceipt::sign(
            &miner,
            &Generation {
                requester: &validator.account(),
                request_id: "n1",
                request_body: &body,
                model_sha256: "ab",
                prompt_tokens: 1,
                tokens,
                finish_reason: "length",
            },
        )
        .unwrap();
        let sent = Sent {
            body,
            request_id: "n1".into(),
            requester: validator.account(),
            miner: miner.account(),
            max_tokens: 4,
        };
        let done = Done {
            finish_reason: FinishReason::Length,
            prompt_tokens: 1,
            completion_tokens: tokens.len(),
            ttft_seconds: 0.0,
            total_seconds: 0.0,
            receipt,
        };
        (sent, done)
    }

    #[test]
    fn a_receipt_checks_against_the_ids_received_and_fails_for_an_altered_token() {
        let (sent, done) = sent_and_done(&[5, 6, 7]);
        sent.check(&done, &[5, 6, 7], Some("ab")).unwrap();
        assert!(matches!(
            sent.check(&done, &[5, 6, 8], Some("ab")),
            Err(GenerateError::Receipt(GenerationReceiptError::TokensMismatch))
        ));
        // A count that disagrees with the ids is caught before the receipt.
        assert!(matches!(
            sent.check(&done, &[5, 6], Some("ab")),
            Err(GenerateError::Malformed(_))
        ));
        // Another model than the one routed to.
        assert!(matches!(
            sent.check(&done, &[5, 6, 7], Some("cd")),
            Err(GenerateError::Malformed(_))
        ));
        // Another body than the one sent.
        let other = Sent {
            body: b"{}".to_vec(),
            ..sent
        };
        assert!(matches!(
            other.check(&done, &[5, 6, 7], None),
            Err(GenerateError::Receipt(GenerationReceiptError::WrongRequest))
        ));
        assert_eq!(finish_reason(&done.receipt), Some(FinishReason::Length));
    }

    #[test]
    fn more_tokens_than_asked_are_malformed() {
        let (mut sent, done) = sent_and_done(&[1, 2, 3]);
        sent.max_tokens = 2;
        assert!(matches!(
            sent.check(&done, &[1, 2, 3], None),
            Err(GenerateError::Malformed(_))
        ));
    }
}
