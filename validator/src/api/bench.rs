//! `validator bench-api`: the API's figures against an in-process real miner with the real model, side by
//! side with calling the miner directly, at several concurrencies; and the validator's CPU cost per
//! checked token. Figures, not tests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bench_tasks::inference::Sampling;
use bench_tasks::inference::real::{RealModel, SMOLLM2};
use bench_tasks::wire::{ChatMessage, GenerateRequest};
use chain::auth::RequestSigner;
use chain::keys::Keypair;
use exchange::generate::{StreamBounds, StreamEvent};
use exchange::{Budget, Client, MinerEndpoint};
use serde::Serialize;

use super::ApiConfig;
use super::metrics::ApiMetrics;
use super::route::{Candidate, Directory};
use super::server::Api;
use super::store::{ApiStore, NewKey};
use super::verify::HeldModel;

/// One measured level.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchRow {
    /// `api` (through the gateway) or `direct` (the exchange client straight to the miner).
    pub path: &'static str,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Requests sent.
    pub requests: usize,
    /// Requests that failed (503 when every slot was busy, …).
    pub errors: usize,
    /// The first error, when there was one.
    pub first_error: Option<String>,
    /// Completed requests per second.
    pub requests_per_second: f64,
    /// Completion tokens per second, all requests together.
    pub tokens_per_second: f64,
    /// Time to first token, median, ms.
    pub ttft_p50_ms: f64,
    /// Time to first token, 99th percentile, ms.
    pub ttft_p99_ms: f64,
}

/// The whole run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchReport {
    /// Tokens per request asked for.
    pub max_tokens: usize,
    /// Per path and concurrency.
    pub rows: Vec<BenchRow>,
    /// Tokens replayed on the CPU to measure verification.
    pub verified_tokens: usize,
    /// Milliseconds of CPU replay per checked token (teacher-forced, one sequence at a time).
    pub verify_ms_per_token: f64,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn prompt(i: usize) -> Vec<ChatMessage> {
    vec![ChatMessage {
        role: "user".into(),
        content: format!("Write one sentence about the number {i}."),
    }]
}

/// One request's result: time to first token and tokens, or an error.
type One = Result<(Duration, usize), String>;

fn row(path: &'static str, concurrency: usize, results: &[One], wall: Duration) -> BenchRow {
    let mut ttft: Vec<f64> = results
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(|(t, _)| t.as_secs_f64() * 1e3)
        .collect();
    ttft.sort_by(f64::total_cmp);
    let tokens: usize = results
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .map(|(_, n)| n)
        .sum();
    let ok = ttft.len();
    let secs = wall.as_secs_f64().max(1e-9);
    BenchRow {
        path,
        concurrency,
        requests: results.len(),
        errors: results.len() - ok,
        first_error: results.iter().find_map(|r| r.as_ref().err().cloned()),
        requests_per_second: ok as f64 / secs,
        tokens_per_second: tokens as f64 / secs,
        ttft_p50_ms: percentile(&ttft, 0.5),
        ttft_p99_ms: percentile(&ttft, 0.99),
    }
}

/// Runs `concurrencies.len()` levels of `rounds × concurrency` requests of `max_tokens` tokens, through the
/// API and directly, against one in-process miner holding SmolLM2 (`scripts/fetch-model.sh`).
///
/// # Errors
/// The model is missing, a server cannot start.
pub async fn bench_api(
    concurrencies: &[usize],
    rounds: usize,
    max_tokens: usize,
) -> anyhow::Result<BenchReport> {
    let validator = Keypair::from_uri("//BenchValidator").map_err(|e| anyhow::anyhow!("{e}"))?;
    let real = Arc::new(tokio::task::spawn_blocking(|| RealModel::load(SMOLLM2)).await??);
    let peak = concurrencies.iter().copied().max().unwrap_or(1);
    let miner_key = Keypair::from_uri("//BenchMiner").map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut config = miner::MinerConfig::new(
        miner_key.clone(),
        miner::validators::ValidatorSet::allow_list([validator.account()]),
    );
    config.models = Arc::new(miner::models::HeldModels::from_models([real]));
    config.limits.concurrency_per_validator = u32::try_from((2 * peak).max(64)).unwrap_or(u32::MAX);
    config.limits.generate.max_sequences = peak;
    // The gateway's own figures, not the miner's per-validator throttle, are measured here.
    config.limits.rate_per_validator = 1e6;
    config.limits.burst_per_validator = u32::try_from(peak * 4).unwrap_or(u32::MAX);
    config.limits.queue_capacity = config.limits.queue_capacity.max(peak * 2);
    config.limits.max_connections_per_ip = config.limits.max_connections_per_ip.max(peak * 4);
    config.limits.max_connections = config.limits.max_connections.max(peak * 8);
    config.limits.generate.kv_cache_bytes = config.limits.generate.kv_cache_bytes.max(4 << 30);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let server = miner::MinerServer::start(config, listener).await?;
    let endpoint = MinerEndpoint {
        uid: 1,
        hotkey: miner_key.account(),
        addr: server.local_addr(),
    };
    let client = Client::pooled(Arc::new(RequestSigner::new(validator)), peak * 2)?;
    let info = client
        .info(
            &endpoint.target().base,
            Budget {
                timeout: Duration::from_secs(10),
                cap: 1 << 20,
            },
        )
        .await?;
    let dir = tempfile_dir()?;
    let mut store = ApiStore::open_dir(&dir)?;
    let (key, _) = store.create_key(&NewKey::default())?;
    let directory = Directory::new();
    directory.set(vec![Candidate {
        endpoint: endpoint.clone(),
        models: info.models.clone(),
        score: 1.0,
        eligible: true,
    }]);
    let mut registry = prometheus_client::registry::Registry::default();
    let api = Api::new(
        ApiConfig {
            verify_fraction: 0.0,
            first_token_deadline_secs: 600.0,
            attempt_first_token_secs: 600.0,
            stall_secs: 120.0,
            ..ApiConfig::default()
        },
        client.clone(),
        directory,
        store,
        None,
        ApiMetrics::register(&mut registry),
        Default::default(),
    );
    let (addr, _) = api.serve(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(peak * 2)
        .build()?;

    // One request first so that neither path pays the miner's first-use costs.
    let warm = GenerateRequest {
        model: info.models[0].sha256.clone(),
        messages: Some(prompt(0)),
        prompt_tokens: None,
        max_tokens,
        temperature: 0.0,
        top_p: 1.0,
        seed: 0,
        stop: Vec::new(),
        stream: false,
    };
    let warm_budget = Budget {
        timeout: Duration::from_secs(600),
        cap: 1 << 20,
    };
    client
        .generate(&endpoint.target(), &warm, None, warm_budget)
        .await
        .map_err(|e| anyhow::anyhow!("warm-up request: {e}"))?;
    let mut rows = Vec::new();
    let mut samples: Vec<(Vec<ChatMessage>, Vec<u32>)> = Vec::new();
    for &c in concurrencies {
        let n = rounds.max(1) * c;
        // Through the API.
        let started = Instant::now();
        let tasks: Vec<_> = (0..n)
            .map(|i| {
                let (http, key) = (http.clone(), key.clone());
                async move {
                    let body = serde_json::json!({
                        "model": SMOLLM2, "messages": prompt(i), "max_tokens": max_tokens,
                        "temperature": 0, "stream": true,
                        "stream_options": {"include_usage": true},
                    });
                    let t0 = Instant::now();
                    let mut resp = http
                        .post(format!("http://{addr}/v1/chat/completions"))
                        .bearer_auth(key)
                        .json(&body)
                        .send()
                        .await
                        .map_err(|e| e.to_string())?;
                    if !resp.status().is_success() {
                        return Err(format!("HTTP {}", resp.status()));
                    }
                    let mut ttft = None;
                    let mut text = Vec::new();
                    while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
                        ttft.get_or_insert_with(|| t0.elapsed());
                        text.extend_from_slice(&chunk);
                    }
                    let text = String::from_utf8_lossy(&text);
                    let tokens = text
                        .split("\n\n")
                        .filter_map(|e| e.strip_prefix("data: "))
                        .filter_map(|e| serde_json::from_str::<serde_json::Value>(e).ok())
                        .find_map(|v| v["usage"]["completion_tokens"].as_u64())
                        .unwrap_or(0) as usize;
                    Ok((ttft.unwrap_or_default(), tokens))
                }
            })
            .collect();
        let results = run_bounded(tasks, c).await;
        rows.push(row("api", c, &results, started.elapsed()));

        // Directly to the miner.
        let started = Instant::now();
        let target = endpoint.target();
        let sha = info.models[0].sha256.clone();
        let tasks: Vec<_> = (0..n)
            .map(|i| {
                let (client, target, sha) = (client.clone(), target.clone(), sha.clone());
                async move {
                    let request = GenerateRequest {
                        model: sha.clone(),
                        messages: Some(prompt(i)),
                        prompt_tokens: None,
                        max_tokens,
                        temperature: 0.0,
                        top_p: 1.0,
                        seed: 0,
                        stop: Vec::new(),
                        stream: true,
                    };
                    let t0 = Instant::now();
                    let bounds = StreamBounds {
                        first_event: Duration::from_secs(600),
                        between_events: Duration::from_secs(120),
                        max_line_bytes: 1 << 20,
                    };
                    let mut stream = client
                        .generate_stream(&target, &request, Some(&sha), bounds)
                        .await
                        .map_err(|e| e.to_string())?;
                    let mut ttft = None;
                    while let Some(event) = stream.next().await {
                        match event.map_err(|e| e.to_string())? {
                            StreamEvent::Tokens { .. } => {
                                ttft.get_or_insert_with(|| t0.elapsed());
                            }
                            StreamEvent::Done(_) => break,
                        }
                    }
                    Ok::<_, String>((ttft.unwrap_or_default(), stream.ids().to_vec(), prompt(i)))
                }
            })
            .collect();
        let direct = run_bounded(tasks, c).await;
        let wall = started.elapsed();
        let results: Vec<One> = direct
            .iter()
            .map(|r| {
                r.as_ref()
                    .map(|(t, ids, _)| (*t, ids.len()))
                    .map_err(Clone::clone)
            })
            .collect();
        rows.push(row("direct", c, &results, wall));
        if samples.len() < 4 {
            samples.extend(
                direct
                    .into_iter()
                    .filter_map(Result::ok)
                    .map(|(_, ids, p)| (p, ids))
                    .take(4),
            );
        }
    }
    server.shutdown().await;
    drop(api);

    // The validator's CPU replay of a few answers.
    let (verified_tokens, verify_secs) =
        tokio::task::spawn_blocking(move || -> Result<(usize, f64), String> {
            let held = HeldModel::load(SMOLLM2)?;
            let (mut tokens, mut secs) = (0, 0.0);
            for (messages, ids) in samples.iter().take(4) {
                let prompt = held.chat_prompt(messages)?;
                let t0 = Instant::now();
                let verdict = held.verifier.verify_generation(&prompt, ids, &Sampling::GREEDY);
                secs += t0.elapsed().as_secs_f64();
                if !verdict.passed {
                    return Err(format!("an honest answer failed verification: {verdict:?}"));
                }
                tokens += ids.len();
            }
            Ok((tokens, secs))
        })
        .await?
        .map_err(|e| anyhow::anyhow!(e))?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(BenchReport {
        max_tokens,
        rows,
        verified_tokens,
        verify_ms_per_token: verify_secs * 1e3 / verified_tokens.max(1) as f64,
    })
}

/// Runs `tasks` with at most `limit` in flight; results in order.
async fn run_bounded<T: Send + 'static>(
    tasks: Vec<impl Future<Output = T> + Send + 'static>,
    limit: usize,
) -> Vec<T> {
    let gate = Arc::new(tokio::sync::Semaphore::new(limit.max(1)));
    let handles: Vec<_> = tasks
        .into_iter()
        .map(|t| {
            let gate = gate.clone();
            tokio::spawn(async move {
                let _permit = gate.acquire_owned().await;
                t.await
            })
        })
        .collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        if let Ok(v) = h.await {
            out.push(v);
        }
    }
    out
}

fn tempfile_dir() -> std::io::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "validator-bench-api-{}",
        hex::encode(rand::random::<[u8; 8]>())
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
