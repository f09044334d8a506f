//! The OpenAI-compatible API end to end over real sockets: keys, limits, errors, SSE, usage rows and
//! receipts, failover and faults.
//!
//! The miners here are a test double that speaks the `/v1/generate` NDJSON contract with real btauth
//! verification and real signed generation receipts, so that faults (a miner that stalls, dies mid-stream,
//! refuses, or signs other tokens than it sent) can be injected. The honest mode exercises the API's
//! shapes and accounting; the end-to-end run against the real miner and model is in the localnet.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bench_tasks::wire::{
    ErrorBody, FinishReason, GenerateDone, GenerateEvent, GenerateRequest, GenerateResponse, MinerInfo,
    ModelInfo, NDJSON_CONTENT_TYPE, ServerLimits,
};
use chain::auth::generation::{Generation, GenerationReceipt, GenerationReceiptError};
use chain::auth::{RequestSigner, Verifier, VerifierConfig};
use chain::keys::Keypair;
use exchange::{Client, MinerEndpoint};
use tokio::sync::mpsc;
use validator::api::ApiConfig;
use validator::api::metrics::ApiMetrics;
use validator::api::route::{Candidate, Directory};
use validator::api::server::Api;
use validator::api::store::{ApiStore, NewKey, Outcome, UsageRow};

const SHA: &str = "ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12";
const MAX_TOKENS: usize = 64;

/// How the double behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Streams ids 10, 11, … (one per event) up to `max_tokens`, then a signed receipt.
    Honest,
    /// Refuses with 503 (slots full).
    Refuse,
    /// Accepts and never sends an event.
    Stall,
    /// Sends two tokens, then closes the connection.
    Die,
    /// Streams honestly but signs a receipt over other tokens.
    Tamper,
    /// Sends tokens slowly until the client goes away.
    Slow,
}

struct Double {
    key: Keypair,
    mode: Mode,
    verifier: Verifier,
    served: AtomicUsize,
    cancelled: AtomicBool,
}

struct ChannelBody(mpsc::Receiver<Bytes>);

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|o| o.map(|b| Ok(http_body::Frame::data(b))))
    }
}

fn line<T: serde::Serialize>(e: &T) -> Bytes {
    let mut s = serde_json::to_vec(e).unwrap();
    s.push(b'\n');
    Bytes::from(s)
}

async fn info(State(d): State<Arc<Double>>) -> axum::Json<MinerInfo> {
    axum::Json(MinerInfo {
        version: "double".into(),
        hotkey: d.key.account().to_ss58(),
        backend: "flex".into(),
        device: "cpu".into(),
        device_memory_bytes: None,
        devices: vec![],
        tasks: vec![],
        limits: ServerLimits {
            max_body_bytes: 1 << 20,
            max_ping_bytes: 1024,
            queue_capacity: 8,
            state_memory_cap_bytes: 0,
            state_ttl_secs: 0,
            rate_per_validator: 100.0,
            concurrency_per_validator: 8,
        },
        models: vec![model_info()],
    })
}

fn model_info() -> ModelInfo {
    ModelInfo {
        name: "smollm2".into(),
        sha256: SHA.into(),
        precision: "f32".into(),
        context_length: 2048,
        max_sequences: 4,
        max_tokens: MAX_TOKENS,
    }
}

async fn generate(State(d): State<Arc<Double>>, headers: HeaderMap, body: Bytes) -> Response {
    let verified = match d.verifier.verify("POST", "/v1/generate", &headers, &body) {
        Ok(v) => v,
        Err(e) => return (StatusCode::UNAUTHORIZED, e.to_string()).into_response(),
    };
    let request: GenerateRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    d.served.fetch_add(1, Ordering::SeqCst);
    if d.mode == Mode::Refuse {
        let body = ErrorBody {
            error: "all slots are busy".into(),
            reason: "busy".into(),
        };
        return (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
    }
    let n = request.max_tokens.min(MAX_TOKENS);
    let ids: Vec<u32> = (0..n as u32).map(|i| 10 + i).collect();
    let signed_ids: Vec<u32> = if d.mode == Mode::Tamper {
        ids.iter().map(|i| i + 1).collect()
    } else {
        ids.clone()
    };
    let receipt = GenerationReceipt::sign(
        &d.key,
        &Generation {
            requester: &verified.hotkey,
            request_id: &verified.request_id,
            request_body: &body,
            model_sha256: SHA,
            prompt_tokens: 5,
            tokens: &signed_ids,
            finish_reason: "length",
        },
    )
    .unwrap();
    let done = GenerateDone {
        finish_reason: FinishReason::Length,
        prompt_tokens: 5,
        completion_tokens: ids.len(),
        ttft_seconds: 0.0,
        total_seconds: 0.0,
        receipt,
    };
    if !request.stream {
        let text: String = ids.iter().map(|i| format!("t{i} ")).collect();
        return axum::Json(GenerateResponse { ids, text, done }).into_response();
    }
    let (tx, rx) = mpsc::channel::<Bytes>(4);
    let mode = d.mode;
    let double = d;
    tokio::spawn(async move {
        if mode == Mode::Stall {
            // Hold the stream open without a word until the client gives up.
            tx.closed().await;
            double.cancelled.store(true, Ordering::SeqCst);
            return;
        }
        for (i, id) in ids.iter().enumerate() {
            if mode == Mode::Die && i == 2 {
                return;
            }
            if mode == Mode::Slow {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let e: GenerateEvent<GenerationReceipt> = GenerateEvent::Tokens {
                ids: vec![*id],
                text: format!("t{id} "),
            };
            if tx.send(line(&e)).await.is_err() {
                double.cancelled.store(true, Ordering::SeqCst);
                return;
            }
        }
        if mode == Mode::Slow {
            tx.closed().await;
            double.cancelled.store(true, Ordering::SeqCst);
            return;
        }
        let _ = tx.send(line(&GenerateEvent::Done(done))).await;
    });
    Response::builder()
        .header("content-type", NDJSON_CONTENT_TYPE)
        .body(Body::new(ChannelBody(rx)))
        .unwrap()
}

/// Starts a double; returns it and its endpoint.
async fn double(uid: u16, mode: Mode) -> (Arc<Double>, MinerEndpoint) {
    let key = Keypair::from_uri(&format!("//Miner{uid}")).unwrap();
    let d = Arc::new(Double {
        verifier: Verifier::new(key.account(), VerifierConfig::default()),
        key,
        mode,
        served: AtomicUsize::new(0),
        cancelled: AtomicBool::new(false),
    });
    let app = Router::new()
        .route("/info", get(info))
        .route("/v1/generate", post(generate))
        .with_state(d.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let endpoint = MinerEndpoint {
        uid,
        hotkey: d.key.account(),
        addr,
    };
    (d, endpoint)
}

struct Harness {
    base: String,
    http: reqwest::Client,
    dir: tempfile::TempDir,
    directory: Directory,
    validator: Keypair,
    key: String,
    registry: prometheus_client::registry::Registry,
}

async fn harness(config: ApiConfig) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let mut store = ApiStore::open_dir(dir.path()).unwrap();
    let (key, _) = store.create_key(&NewKey::default()).unwrap();
    let validator = Keypair::from_uri("//Validator").unwrap();
    let client = Client::pooled(Arc::new(RequestSigner::new(validator.clone())), 4).unwrap();
    let directory = Directory::new();
    let mut registry = prometheus_client::registry::Registry::default();
    let api = Api::new(
        config,
        client,
        directory.clone(),
        store,
        None,
        ApiMetrics::register(&mut registry),
        Default::default(),
    );
    let (addr, _) = api
        .serve("127.0.0.1:0".parse::<SocketAddr>().unwrap())
        .await
        .unwrap();
    Harness {
        base: format!("http://{addr}"),
        http: reqwest::Client::new(),
        dir,
        directory,
        validator,
        key,
        registry,
    }
}

fn fast_config() -> ApiConfig {
    ApiConfig {
        first_token_deadline_secs: 10.0,
        attempt_first_token_secs: 1.0,
        stall_secs: 1.0,
        verify_fraction: 0.0,
        ..ApiConfig::default()
    }
}

fn candidate(endpoint: MinerEndpoint, score: f64) -> Candidate {
    Candidate {
        endpoint,
        models: vec![model_info()],
        score,
        eligible: true,
    }
}

impl Harness {
    fn new_key(&self, new: &NewKey) -> (String, i64) {
        let mut store = ApiStore::open_dir(self.dir.path()).unwrap();
        let (k, r) = store.create_key(new).unwrap();
        (k, r.id)
    }

    async fn post(&self, path: &str, key: Option<&str>, body: &str) -> (u16, String) {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        let resp = tokio::time::timeout(Duration::from_secs(30), req.send())
            .await
            .expect("the API answers")
            .unwrap();
        let status = resp.status().as_u16();
        let text = tokio::time::timeout(Duration::from_secs(30), resp.text())
            .await
            .expect("the answer ends")
            .unwrap();
        (status, text)
    }

    async fn chat(&self, body: &str) -> (u16, String) {
        self.post("/v1/chat/completions", Some(&self.key.clone()), body)
            .await
    }

    /// The usage rows, waiting (bounded) until there are `n`.
    async fn rows(&self, n: usize) -> Vec<UsageRow> {
        let store = ApiStore::open_dir(self.dir.path()).unwrap();
        for _ in 0..200 {
            let rows = store.usage(None, 0, 1000).unwrap();
            if rows.len() >= n {
                return rows;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!(
            "fewer than {n} usage rows: {:?}",
            store.usage(None, 0, 1000).unwrap()
        );
    }

    /// Checks a row's receipt as a third party holding only the row would.
    fn check_receipt(
        &self,
        row: &UsageRow,
        miner: &chain::keys::AccountId,
    ) -> Result<(), GenerationReceiptError> {
        let receipt: GenerationReceipt = serde_json::from_str(row.receipt.as_deref().unwrap()).unwrap();
        let ids: Vec<u32> = serde_json::from_str(row.token_ids.as_deref().unwrap()).unwrap();
        receipt.verify(
            miner,
            &self.validator.account(),
            &receipt.request_id,
            row.request_body.as_deref().unwrap().as_bytes(),
            &ids,
        )
    }
}

fn error_code(body: &str) -> (String, String) {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    (
        v["error"]["code"].as_str().unwrap_or_default().to_owned(),
        v["error"]["param"].as_str().unwrap_or_default().to_owned(),
    )
}

const CHAT: &str = r#"{"model":"smollm2","messages":[{"role":"user","content":"hi"}],"max_tokens":4}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_checked_on_every_call() {
    let h = harness(fast_config()).await;
    let (s, body) = h.post("/v1/chat/completions", None, CHAT).await;
    assert_eq!((s, error_code(&body).0.as_str()), (401, "invalid_api_key"));
    let (s, _) = h.post("/v1/chat/completions", Some("tp-0000"), CHAT).await;
    assert_eq!(s, 401);
    let (revoked, id) = h.new_key(&NewKey::default());
    assert!(ApiStore::open_dir(h.dir.path()).unwrap().revoke(id).unwrap());
    let (s, body) = h.post("/v1/chat/completions", Some(&revoked), CHAT).await;
    assert_eq!(s, 401, "{body}");
    assert!(body.contains("revoked"), "{body}");
    let resp = h
        .http
        .get(format!("{}/v1/models", h.base))
        .bearer_auth(&revoked)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    // Public routes need no key.
    let resp = h.http.get(format!("{}/health", h.base)).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let page = h
        .http
        .get(format!("{}/chat", h.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("/v1/chat/completions"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_from_one_key_gets_429_and_other_keys_are_unaffected() {
    let h = harness(fast_config()).await;
    let (limited, _) = h.new_key(&NewKey {
        name: "flood".into(),
        rate_per_min: Some(60.0),
        token_quota: None,
    });
    let get = |key: String| {
        let h = &h;
        async move {
            h.http
                .get(format!("{}/v1/models", h.base))
                .bearer_auth(key)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let mut statuses = Vec::new();
    for _ in 0..20 {
        statuses.push(get(limited.clone()).await);
    }
    // A burst of 6 (a tenth of the minute's 60), then refusals.
    assert_eq!(statuses.iter().filter(|&&s| s == 200).count(), 6, "{statuses:?}");
    assert!(statuses.iter().skip(6).all(|&s| s == 429), "{statuses:?}");
    for _ in 0..20 {
        assert_eq!(get(h.key.clone()).await, 200);
    }
    let resp = h
        .http
        .get(format!("{}/v1/models", h.base))
        .bearer_auth(&limited)
        .send()
        .await
        .unwrap();
    let body = resp.text().await.unwrap();
    assert_eq!(error_code(&body).0, "rate_limit_exceeded");
}

/// Concurrent requests cannot overrun a token quota: each reserves its completion tokens from what the
/// key has left, the last one is capped, and once the quota is spent the key gets 429 at once (not after
/// the key cache expires).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_share_a_token_quota_without_overrunning_it() {
    let h = harness(fast_config()).await;
    let (_d, endpoint) = double(4, Mode::Honest).await;
    h.directory.set(vec![candidate(endpoint, 0.5)]);
    let (key, _) = h.new_key(&NewKey {
        name: "metered".into(),
        rate_per_min: None,
        token_quota: Some(30),
    });
    let body = r#"{"model":"smollm2","messages":[{"role":"user","content":"hi"}],"max_tokens":16}"#;
    let ask = || h.post("/v1/chat/completions", Some(&key), body);
    let (a, b, c, d) = tokio::join!(ask(), ask(), ask(), ask());
    let answers = [a, b, c, d];
    let mut completion = 0;
    let mut served = 0;
    for (status, text) in &answers {
        match status {
            200 => {
                let v: serde_json::Value = serde_json::from_str(text).unwrap();
                completion += v["usage"]["completion_tokens"].as_u64().unwrap();
                served += 1;
            }
            429 => assert_eq!(error_code(text).0, "insufficient_quota", "{text}"),
            _ => panic!("{status}: {text}"),
        }
    }
    // Four requests of 16 would be 64: the completions granted fit the quota of 30, and at least two
    // requests were served (16, then the 14 left).
    assert!(served >= 2 && completion <= 30, "{answers:?}");
    h.rows(served).await;
    let (status, text) = h.post("/v1/chat/completions", Some(&key), body).await;
    assert_eq!(
        (status, error_code(&text).0.as_str()),
        (429, "insufficient_quota"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_openai_errors() {
    let h = harness(fast_config()).await;
    // No miner at all: 503.
    let (s, body) = h.chat(CHAT).await;
    assert_eq!(
        (s, error_code(&body).0.as_str()),
        (503, "no_miner_available"),
        "{body}"
    );
    let (_, endpoint) = double(1, Mode::Honest).await;
    h.directory.set(vec![candidate(endpoint.clone(), 0.5)]);
    let (s, _) = h.chat("{not json").await;
    assert_eq!(s, 400);
    let (s, body) = h
        .chat(r#"{"model":"smollm2","messages":[{"role":"user","content":"hi"}],"max_tokenz":4}"#)
        .await;
    assert_eq!((s, error_code(&body).1.as_str()), (400, "max_tokenz"), "{body}");
    let (s, body) = h
        .chat(r#"{"model":"smollm2","messages":[{"role":"user","content":"hi"}],"max_tokens":100000000}"#)
        .await;
    assert_eq!(
        (s, error_code(&body)),
        (400, ("max_tokens_too_large".into(), "max_tokens".into())),
        "{body}"
    );
    let (s, body) = h
        .chat(r#"{"model":"gpt-9","messages":[{"role":"user","content":"hi"}]}"#)
        .await;
    assert_eq!(
        (s, error_code(&body).0.as_str()),
        (404, "model_not_found"),
        "{body}"
    );
    let huge = format!(
        r#"{{"model":"smollm2","messages":[{{"role":"user","content":"{}"}}]}}"#,
        "x".repeat(2 << 20)
    );
    let (s, _) = h.chat(&huge).await;
    assert_eq!(s, 413);
    // The only miner holding the model is not eligible: 503, not 404.
    let mut c = candidate(endpoint, 0.5);
    c.eligible = false;
    h.directory.set(vec![c]);
    let (s, body) = h.chat(CHAT).await;
    assert_eq!(s, 503, "{body}");
    let (s, body) = h.post("/v1/nope", Some(&h.key.clone()), "{}").await;
    assert_eq!((s, error_code(&body).0.as_str()), (404, "not_found"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_answer_is_counted_and_its_receipt_verifies() {
    let h = harness(fast_config()).await;
    let (d, endpoint) = double(3, Mode::Honest).await;
    h.directory.set(vec![candidate(endpoint.clone(), 0.5)]);
    let (s, body) = h
        .chat(r#"{"model":"smollm2","messages":[{"role":"user","content":"hi"}],"max_tokens":3,"seed":42}"#)
        .await;
    assert_eq!(s, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["choices"][0]["message"]["content"], "t10 t11 t12 ");
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    assert_eq!(v["usage"]["completion_tokens"], 3);
    assert_eq!(v["usage"]["total_tokens"], 8);
    assert_eq!(v["tensorproof"]["miner_uid"], 3);
    assert_eq!(v["tensorproof"]["seed"], 42);
    let rows = h.rows(1).await;
    let row = &rows[0];
    assert_eq!(
        (row.outcome, row.completion_tokens, row.prompt_tokens),
        (Outcome::Complete, 3, 5)
    );
    assert_eq!(
        (row.miner_uid, row.seed.as_str(), row.receipt_ok),
        (Some(3), "42", true)
    );
    assert_eq!(row.finish_reason.as_deref(), Some("length"));
    assert!(row.ttft_ms.is_some());
    h.check_receipt(row, &d.key.account()).unwrap();
    // One altered token and the stored receipt no longer verifies.
    let mut altered = row.clone();
    altered.token_ids = Some("[10,11,13]".into());
    assert_eq!(
        h.check_receipt(&altered, &d.key.account()),
        Err(GenerationReceiptError::TokensMismatch)
    );
    // No seed given: the validator chose one and recorded it.
    let (s, body) = h.chat(CHAT).await;
    assert_eq!(s, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let rows = h.rows(2).await;
    assert_eq!(
        rows[1].seed,
        v["tensorproof"]["seed"].as_u64().unwrap().to_string()
    );
    let store = ApiStore::open_dir(h.dir.path()).unwrap();
    let key = store.key_by_secret(&h.key).unwrap().unwrap();
    assert_eq!(key.tokens_used, 8 + 9);
    // The organic metrics count both answers and the miner's tokens.
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &h.registry).unwrap();
    assert!(
        text.contains(r#"organic_requests_total{outcome="complete"} 2"#),
        "{text}"
    );
    assert!(
        text.contains(r#"organic_completion_tokens_total{uid="3"} 7"#),
        "{text}"
    );
    assert!(text.contains("organic_ttft_seconds_count 2"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_ends_with_usage_and_done() {
    let h = harness(fast_config()).await;
    let (_, endpoint) = double(2, Mode::Honest).await;
    h.directory.set(vec![candidate(endpoint, 0.5)]);
    let (s, body) = h
        .chat(
            r#"{"model":"smollm2","messages":[{"role":"user","content":"hi"}],"max_tokens":3,"stream":true,
                "stream_options":{"include_usage":true}}"#,
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let events: Vec<&str> = body
        .split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| e.strip_prefix("data: ").expect("every event is a data line"))
        .collect();
    assert_eq!(*events.last().unwrap(), "[DONE]");
    let chunks: Vec<serde_json::Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "t10 t11 t12 ");
    assert!(chunks.iter().all(|c| c["object"] == "chat.completion.chunk"));
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "length");
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"].as_array().unwrap().len(), 0);
    assert_eq!(usage["usage"]["completion_tokens"], 3);
    let rows = h.rows(1).await;
    assert_eq!((rows[0].outcome, rows[0].stream), (Outcome::Complete, true));

    // Text completions without a held tokenizer are refused plainly.
    let (s, _) = h
        .post(
            "/v1/completions",
            Some(&h.key.clone()),
            r#"{"model":"smollm2","prompt":"once"}"#,
        )
        .await;
    assert_eq!(s, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_or_refusing_miner_is_failed_over_before_the_first_token() {
    let h = harness(fast_config()).await;
    let (stall, stall_at) = double(4, Mode::Stall).await;
    let (refuse, refuse_at) = double(5, Mode::Refuse).await;
    let (good, good_at) = double(6, Mode::Honest).await;
    // The bad miners score so high that they are (almost surely) tried first.
    h.directory.set(vec![
        candidate(stall_at, 1e9),
        candidate(refuse_at, 1e9),
        candidate(good_at, 0.0),
    ]);
    let (s, body) = h.chat(CHAT).await;
    assert_eq!(s, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["tensorproof"]["miner_uid"], 6);
    assert_eq!(good.served.load(Ordering::SeqCst), 1);
    assert_eq!(
        stall.served.load(Ordering::SeqCst) + refuse.served.load(Ordering::SeqCst),
        2
    );
    let rows = h.rows(1).await;
    assert!(
        rows[0].detail.contains("first_token_timeout"),
        "{}",
        rows[0].detail
    );
    assert!(rows[0].detail.contains("refused"), "{}", rows[0].detail);
    // Only bad miners left: 503 once each was tried.
    h.directory.set(vec![candidate(
        MinerEndpoint {
            uid: 5,
            hotkey: refuse.key.account(),
            addr: h.directory.miners()[1].endpoint.addr,
        },
        1.0,
    )]);
    let (s, body) = h.chat(CHAT).await;
    assert_eq!(s, 503, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_miner_dying_mid_stream_ends_the_stream_with_an_error_event() {
    let h = harness(fast_config()).await;
    let (_, endpoint) = double(7, Mode::Die).await;
    h.directory.set(vec![candidate(endpoint, 0.5)]);
    let (s, body) = h
        .chat(
            r#"{"model":"smollm2","messages":[{"role":"user","content":"hi"}],"max_tokens":8,"stream":true}"#,
        )
        .await;
    assert_eq!(s, 200);
    assert!(body.contains("t10 ") && body.contains("t11 "), "{body}");
    assert!(body.contains(r#""error""#), "{body}");
    assert!(!body.contains("[DONE]"), "{body}");
    let rows = h.rows(1).await;
    assert_eq!(
        (rows[0].outcome, rows[0].completion_tokens, rows[0].receipt_ok),
        (Outcome::Failed, 2, false)
    );
    assert!(rows[0].detail.contains("truncated"), "{}", rows[0].detail);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_over_other_tokens_is_refused() {
    let h = harness(fast_config()).await;
    let (_, endpoint) = double(8, Mode::Tamper).await;
    h.directory.set(vec![candidate(endpoint, 0.5)]);
    let (s, body) = h.chat(CHAT).await;
    assert_eq!((s, error_code(&body).0.as_str()), (502, "miner_error"), "{body}");
    let rows = h.rows(1).await;
    assert_eq!((rows[0].outcome, rows[0].receipt_ok), (Outcome::Failed, false));
    assert!(rows[0].detail.contains("bad_receipt"), "{}", rows[0].detail);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_leaving_mid_stream_cancels_the_miner_and_is_recorded_as_partial() {
    let h = harness(fast_config()).await;
    let (d, endpoint) = double(9, Mode::Slow).await;
    h.directory.set(vec![candidate(endpoint, 0.5)]);
    let mut resp = h
        .http
        .post(format!("{}/v1/chat/completions", h.base))
        .bearer_auth(&h.key)
        .body(r#"{"model":"smollm2","messages":[{"role":"user","content":"hi"}],"max_tokens":64,"stream":true}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let first = tokio::time::timeout(Duration::from_secs(10), resp.chunk())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(first.starts_with(b"data: "));
    drop(resp);
    let rows = h.rows(1).await;
    assert_eq!(rows[0].outcome, Outcome::Partial);
    assert!(rows[0].completion_tokens < 64);
    for _ in 0..200 {
        if d.cancelled.load(Ordering::SeqCst) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        d.cancelled.load(Ordering::SeqCst),
        "the miner's stream was not closed"
    );
}
