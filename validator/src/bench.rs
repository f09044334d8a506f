//! `validator bench-round`: round wall time, validator CPU time and peak memory for many miners, and
//! what the validator credits each answer as compute (elapsed − RTT): at a tiny `n`, where the product
//! itself takes microseconds, that is the real stack's fixed cost per answer (challenge generation and
//! request signing on the validator, signature check, matrix regeneration, serialization and response
//! signing on the miner, HTTP framing), which the scoring simulator models as `answer_overhead_ms`.
//!
//! The miners are real miner servers (flex backend) on loopback, hosted by a child process
//! (`validator bench-miners`) so that the CPU time and peak memory read from `/proc/self` are the
//! validator's alone. The validator runs its normal round ([`crate::round::Validator::run_round`]) over
//! the static network seam.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chain::auth::RequestSigner;
use chain::keys::{AccountId, Keypair};
use serde::{Deserialize, Serialize};

use crate::dashboard::Dashboard;
use crate::ledger::Ledger;
use crate::metrics::Metrics;
use crate::network::StaticNetwork;
use crate::round::{RoundConfig, Validator};
use bench_tasks::wire::TaskClass;
use exchange::{Client, MinerEndpoint};

/// One miner as the host process announces it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostedMiner {
    /// ss58 hotkey.
    pub hotkey: String,
    /// Address.
    pub addr: std::net::SocketAddr,
}

/// Starts `count` honest miners allowing `validator`, prints them as one JSON line, and serves until
/// stdin closes. The body of `validator bench-miners`.
pub async fn host_miners(count: usize, validator: AccountId) -> anyhow::Result<()> {
    let mut servers = Vec::with_capacity(count);
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let key = Keypair::from_uri(&format!("//bench-miner-{i}"))?;
        let config = miner::MinerConfig::new(key, miner::validators::ValidatorSet::allow_list([validator]));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let server = miner::MinerServer::start(config, listener).await?;
        out.push(HostedMiner {
            hotkey: server.hotkey().to_ss58(),
            addr: server.local_addr(),
        });
        servers.push(server);
    }
    println!("{}", serde_json::to_string(&out)?);
    std::io::stdout().flush()?;
    // Serve until the parent closes our stdin.
    tokio::task::spawn_blocking(|| {
        let mut s = String::new();
        let _ = std::io::stdin().read_line(&mut s);
    })
    .await?;
    for s in servers {
        s.shutdown().await;
    }
    Ok(())
}

/// CPU seconds (user + system) this process has used so far.
pub use bench_tasks::bench::cpu_seconds;

/// Peak resident memory of this process in MiB (`VmHWM`).
pub fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// One benchmark row.
#[derive(Debug, Clone, Serialize)]
pub struct BenchRow {
    /// Miners per round.
    pub miners: usize,
    /// Matrix size.
    pub n: u32,
    /// Rounds measured.
    pub rounds: u32,
    /// Median round wall time, seconds.
    pub round_wall_seconds: f64,
    /// Validator CPU seconds per round (mean).
    pub validator_cpu_seconds_per_round: f64,
    /// Validator CPU milliseconds per miner per round.
    pub validator_cpu_ms_per_miner: f64,
    /// Miners that passed in the last round.
    pub passed: usize,
    /// Peak resident memory of the validator process so far, MiB.
    pub peak_rss_mib: f64,
    /// Answers behind the `compute_ms_*` figures: every passed matmul answer of the measured rounds
    /// (the warm-up round excluded). Inference answers are left out: their time is the model's
    /// decode on the miner, not a fixed cost.
    pub answers: usize,
    /// Median RTT of the validator's signed ping over those answers, milliseconds.
    pub rtt_ms_median: f64,
    /// Median per-answer compute time as the validator measured and scores it (`total_ms − rtt_ms`,
    /// [`crate::state::MinerOutcome::compute_ms`]), milliseconds. At a tiny `n` this is the stack's
    /// fixed overhead per answer; the part that grows with `n` is the product.
    pub compute_ms_median: f64,
    /// 90th percentile of the same, milliseconds.
    pub compute_ms_p90: f64,
    /// Standard deviation of the same, milliseconds.
    pub compute_ms_sd: f64,
}

/// Median, 90th percentile and standard deviation of `xs` (all 0 when empty); sorts `xs`.
pub fn spread(xs: &mut [f64]) -> (f64, f64, f64) {
    if xs.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    xs.sort_by(f64::total_cmp);
    let at = |q: f64| xs[((q * (xs.len() - 1) as f64).round() as usize).min(xs.len() - 1)];
    let mean = xs.iter().sum::<f64>() / xs.len() as f64;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64;
    (at(0.5), at(0.9), var.sqrt())
}

/// Runs `rounds` rounds against `count` hosted miners at size `n`.
pub async fn bench_round(count: usize, n: u32, rounds: u32, concurrency: usize) -> anyhow::Result<BenchRow> {
    let key = Keypair::from_uri("//bench-validator")?;
    let exe = std::env::current_exe()?;
    let mut child = Command::new(exe)
        .args([
            "bench-miners",
            "--count",
            &count.to_string(),
            "--validator",
            &key.ss58(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .env("RUST_LOG", "error")
        .spawn()?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdout from the miner host"))?;
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).map(|_| line)
    })
    .await??;
    let hosted: Vec<HostedMiner> = serde_json::from_str(line.trim()).map_err(|e| {
        anyhow::anyhow!("the miner host did not start its miners ({e}); see its errors above")
    })?;
    let miners = hosted
        .iter()
        .enumerate()
        .map(|(uid, h)| {
            Ok(MinerEndpoint {
                uid: uid as u16,
                hotkey: AccountId::from_ss58(&h.hotkey).map_err(|e| anyhow::anyhow!("{e}"))?,
                addr: h.addr,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let dir = tempfile_dir()?;
    let ledger = Ledger::open(&dir, scoring::policy::Policy::default(), &key.ss58(), 1)?;
    let client = Client::pooled(Arc::new(RequestSigner::new(key)), 2)?;
    let config = RoundConfig {
        matmul_sizes: vec![n],
        // One product of n per challenge, as this benchmark's CPU miners can compute it; the
        // validator's cost per challenge does not grow with the batch (bench-tasks bench matmul --batch).
        matmul_batch: Some(1),
        concurrency,
        interval_secs: 0.0,
        challenge_timeout_secs: 120.0,
        open_timeout_secs: 60.0,
        ..RoundConfig::default()
    };
    let v = Validator::new(
        Arc::new(StaticNetwork::new(miners, Duration::from_secs(12))),
        client,
        ledger,
        [3; 32],
        config,
        Metrics::new(),
        Dashboard::new(),
    );
    // One warm-up round opens the connections.
    v.run_round().await?;
    let mut walls = Vec::new();
    let cpu0 = cpu_seconds();
    let mut passed = 0;
    let (mut compute, mut rtt) = (Vec::new(), Vec::new());
    for _ in 0..rounds.max(1) {
        let t = Instant::now();
        let s = v.run_round().await?;
        walls.push(t.elapsed().as_secs_f64());
        passed = s.record.miners.iter().filter(|m| m.verdict.passed).count();
        let matmul = |m: &&crate::state::MinerOutcome| m.verdict.passed && m.task == TaskClass::Matmul;
        for m in s.record.miners.iter().filter(matmul) {
            if let (Some(c), Some(r)) = (m.compute_ms, m.rtt_ms) {
                compute.push(c);
                rtt.push(r);
            }
        }
    }
    let (compute_ms_median, compute_ms_p90, compute_ms_sd) = spread(&mut compute);
    let (rtt_ms_median, _, _) = spread(&mut rtt);
    let cpu = (cpu_seconds() - cpu0) / f64::from(rounds.max(1));
    walls.sort_by(f64::total_cmp);
    drop(child.stdin.take());
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(BenchRow {
        miners: count,
        n,
        rounds: rounds.max(1),
        round_wall_seconds: walls[walls.len() / 2],
        validator_cpu_seconds_per_round: cpu,
        validator_cpu_ms_per_miner: cpu * 1e3 / count.max(1) as f64,
        passed,
        peak_rss_mib: peak_rss_mib(),
        answers: compute.len(),
        rtt_ms_median,
        compute_ms_median,
        compute_ms_p90,
        compute_ms_sd,
    })
}

fn tempfile_dir() -> std::io::Result<std::path::PathBuf> {
    let mut b = [0u8; 8];
    rand::fill(&mut b);
    let dir = std::env::temp_dir().join(format!("validator-bench-{}", hex::encode(b)));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::spread;

    #[test]
    fn spread_is_median_p90_and_standard_deviation() {
        let mut xs: Vec<f64> = (1..=11).rev().map(f64::from).collect();
        let (median, p90, sd) = spread(&mut xs);
        assert_eq!((median, p90), (6.0, 10.0));
        // Population standard deviation of 1..=11: sqrt(10).
        assert!((sd - 10f64.sqrt()).abs() < 1e-12, "{sd}");
        assert_eq!(spread(&mut []), (0.0, 0.0, 0.0));
        assert_eq!(spread(&mut [2.5]), (2.5, 2.5, 0.0));
    }
}
