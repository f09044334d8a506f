//! `miner bench-transport`: signed-request latency and throughput through the full auth stack.
//!
//! Starts a real miner server on a loopback port in this process, then sends `--requests` signed
//! `POST /v1/ping` requests of `--body-bytes` each (1 KiB by default) from `--concurrency` concurrent
//! senders, over HTTP/1.1 keep-alive (or h2c with `--http2`). Every request is signed with `btauth/1`
//! and verified by the server (signature, freshness, replay cache, authorization, rate limit), and every
//! answer's receipt is verified by the client, so the figures include all the cryptography a real
//! validator–miner exchange pays. Client and server share the machine's cores.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chain::keys::Keypair;
use clap::Args;
use serde::Serialize;

use crate::config::Limits;
use crate::server::{MinerConfig, MinerServer};
use crate::validators::ValidatorSet;
use exchange::MinerClient;

/// `miner bench-transport` flags.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Signed requests to send in total.
    #[arg(long, default_value_t = 10_000)]
    pub requests: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 1)]
    pub concurrency: usize,
    /// Body size of each request, in bytes.
    #[arg(long, default_value_t = 1024)]
    pub body_bytes: usize,
    /// Use HTTP/2 over cleartext (one multiplexed connection) instead of HTTP/1.1.
    #[arg(long)]
    pub http2: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The figures of one run.
#[derive(Debug, Clone, Serialize)]
pub struct TransportReport {
    /// `http/1.1` or `h2c`.
    pub protocol: &'static str,
    /// Requests answered successfully.
    pub requests: usize,
    /// Requests that failed.
    pub errors: usize,
    /// Concurrent senders.
    pub concurrency: usize,
    /// Request body size.
    pub body_bytes: usize,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
    /// Mean latency, ms.
    pub mean_ms: f64,
    /// Successful requests per second of wall time.
    pub requests_per_second: f64,
    /// TCP connections the server accepted.
    pub connections: u64,
    /// Wall time, seconds.
    pub seconds: f64,
}

/// Runs the benchmark against a fresh in-process server.
pub async fn measure(args: &BenchArgs) -> anyhow::Result<TransportReport> {
    let validator = Keypair::generate().0;
    let miner_key = Keypair::generate().0;
    let mut config = MinerConfig::new(miner_key.clone(), ValidatorSet::allow_list([validator.account()]));
    config.limits = Limits {
        max_ping_bytes: args.body_bytes.max(1024),
        max_body_bytes: args.body_bytes.max(1 << 20),
        rate_per_validator: 1e9,
        burst_per_validator: u32::MAX,
        concurrency_per_validator: u32::try_from(args.concurrency).unwrap_or(u32::MAX).max(1),
        ..Limits::default()
    };
    // Every request's nonce stays in the replay cache for its freshness window; make room for all.
    config.verifier.replay_capacity = config
        .verifier
        .replay_capacity
        .max(args.requests + args.concurrency + 16);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let server = MinerServer::start(config, listener).await?;
    let url = format!("http://{}", server.local_addr());
    let client = Arc::new(MinerClient::new(
        &url,
        miner_key.account(),
        validator,
        args.http2,
    )?);
    let body: Vec<u8> = (0..args.body_bytes).map(|i| (i % 251) as u8).collect();

    // Warm up: open the connections and fault in the code paths.
    for _ in 0..args.concurrency.min(args.requests).max(1) {
        client.ping(body.clone()).await?;
    }

    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut senders = Vec::with_capacity(args.concurrency);
    for _ in 0..args.concurrency.max(1) {
        let (client, next, body, total) = (
            Arc::clone(&client),
            Arc::clone(&next),
            body.clone(),
            args.requests,
        );
        senders.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0usize;
            while next.fetch_add(1, Ordering::Relaxed) < total {
                let sent = Instant::now();
                match client.ping(body.clone()).await {
                    Ok(echo) if echo.body.len() == body.len() => latencies.push(sent.elapsed()),
                    _ => errors += 1,
                }
            }
            (latencies, errors)
        }));
    }
    let mut latencies: Vec<Duration> = Vec::with_capacity(args.requests);
    let mut errors = 0;
    for sender in senders {
        let (l, e) = sender.await?;
        latencies.extend(l);
        errors += e;
    }
    let seconds = started.elapsed().as_secs_f64();
    let connections = server.metrics().connections.get();
    server.shutdown().await;

    latencies.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let pick = |q: f64| {
        if latencies.is_empty() {
            return f64::NAN;
        }
        let i = ((latencies.len() as f64 - 1.0) * q).round() as usize;
        ms(latencies[i.min(latencies.len() - 1)])
    };
    let mean = if latencies.is_empty() {
        f64::NAN
    } else {
        latencies.iter().map(|d| ms(*d)).sum::<f64>() / latencies.len() as f64
    };
    Ok(TransportReport {
        protocol: if args.http2 { "h2c" } else { "http/1.1" },
        requests: latencies.len(),
        errors,
        concurrency: args.concurrency,
        body_bytes: args.body_bytes,
        p50_ms: pick(0.5),
        p99_ms: pick(0.99),
        mean_ms: mean,
        requests_per_second: latencies.len() as f64 / seconds,
        connections,
        seconds,
    })
}

/// `miner bench-transport`.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let report = measure(&args).await?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "{} signed {}-byte pings over {} at concurrency {}: p50 {:.3} ms, p99 {:.3} ms, {:.0} req/s, {} connections, {} errors",
            report.requests,
            report.body_bytes,
            report.protocol,
            report.concurrency,
            report.p50_ms,
            report.p99_ms,
            report.requests_per_second,
            report.connections,
            report.errors
        );
    }
    Ok(())
}
