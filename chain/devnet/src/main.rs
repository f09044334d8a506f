//! The `devnet` binary: an embedded Substrate devnet that speaks subtensor.
//!
//! ```text
//! cargo run --release -p devnet -- --port 9944 --block-time-ms 250 --tempo 10 --dev-subnet
//! ```
//!
//! Prints the endpoint and the funded dev accounts, then produces blocks until Ctrl-C.

use std::net::IpAddr;
use std::time::Duration;

use clap::Parser;
use devnet::{Devnet, DevnetConfig, dev_accounts};
use polkadot_sdk::sp_core::crypto::Ss58Codec;

/// Command-line options.
#[derive(Debug, Parser)]
#[command(name = "devnet", about = "An embedded Substrate devnet that speaks subtensor")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// WebSocket JSON-RPC port (0 picks a free one).
    #[arg(long, default_value_t = 9944)]
    port: u16,
    /// Milliseconds between blocks (0: only on demand, via the `dev_newBlock` RPC).
    #[arg(long, default_value_t = 250)]
    block_time_ms: u64,
    /// Tempo of new subnets, in blocks.
    #[arg(long, default_value_t = 10)]
    tempo: u16,
    /// Create netuid 1 owned by //Alice.
    #[arg(long)]
    dev_subnet: bool,
    /// Turn commit-reveal on for the dev subnet.
    #[arg(long)]
    commit_reveal: bool,
    /// Do not write the devnet beacon's drand pulses (timelocked commits then wait for
    /// `Drand::dev_write_pulse`).
    #[arg(long)]
    no_beacon: bool,
    /// Also produce a block as soon as a transaction arrives (Anvil's automine).
    #[arg(long)]
    instant_seal: bool,
    /// Run the benchmark instead of serving, and print its figures.
    #[arg(long)]
    bench: bool,
    /// Validators setting 256-uid weights per block in the benchmark (at most 128).
    #[arg(long, default_value_t = 128)]
    bench_validators: usize,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if args.bench {
        bench(args.bench_validators).await;
        return;
    }
    let config = DevnetConfig {
        host: args.host,
        port: args.port,
        block_time: (args.block_time_ms > 0).then(|| Duration::from_millis(args.block_time_ms)),
        tempo: args.tempo,
        dev_subnet: args.dev_subnet,
        dev_subnet_commit_reveal: args.commit_reveal,
        instant_seal: args.instant_seal,
        dev_beacon: !args.no_beacon,
        ..DevnetConfig::default()
    };
    let devnet = match Devnet::spawn(config).await {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    println!(
        "tensorproof devnet (spec node-subtensor {})",
        devnet::runtime::VERSION.spec_version
    );
    println!("endpoint: {}", devnet.ws_url());
    println!(
        "block time: {}, tempo: {}, dev subnet: {}",
        if args.block_time_ms > 0 {
            format!("{} ms", args.block_time_ms)
        } else {
            "on demand".into()
        },
        args.tempo,
        if args.dev_subnet {
            "netuid 1 owned by //Alice"
        } else {
            "none"
        }
    );
    if args.no_beacon {
        println!("drand beacon: off (pulses only through root's Drand::dev_write_pulse)");
    } else {
        println!(
            "drand beacon: the devnet's own (public key {}), a round every {} ms",
            hex::encode(chain::timelock::BeaconConfig::devnet().public_key),
            chain::timelock::DEVNET_BEACON_PERIOD_MS
        );
    }
    println!();
    println!("{:<10} {:<50} {:>14}", "account", "ss58", "free (TAO)");
    for a in dev_accounts() {
        println!(
            "{:<10} {:<50} {:>14}",
            a.uri,
            a.account_id().to_ss58check(),
            a.balance / 1_000_000_000
        );
    }
    println!();
    println!("//Alice is sudo. Ctrl-C stops the devnet.");
    if let Err(e) = tokio::signal::ctrl_c().await {
        eprintln!("error: cannot wait for Ctrl-C: {e}");
    }
    devnet.shutdown().await;
}

async fn bench(validators: usize) {
    let r = match devnet::bench::run(validators, 3).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: benchmark failed: {e}");
            std::process::exit(1);
        }
    };
    println!(
        "devnet benchmark (one run, in-process node, {} profile)",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    println!(
        "empty blocks/s                         {:>10.1}",
        r.empty_blocks_per_s
    );
    println!(
        "setup extrinsics/s ({} mixed)         {:>10.1}",
        r.setup_extrinsics, r.setup_extrinsics_per_s
    );
    println!(
        "256-uid set_weights/s ({} txs)        {:>10.1}",
        r.set_weights, r.set_weights_per_s
    );
    println!(
        "blocks/s with {} set_weights per block {:>10.2}",
        r.validators, r.weight_blocks_per_s
    );
    println!(
        "state_getStorage p50 / p99 (ms)        {:>10.3} / {:.3}",
        r.storage_query_p50.as_secs_f64() * 1e3,
        r.storage_query_p99.as_secs_f64() * 1e3
    );
    println!(
        "submit-to-inclusion p50 / p99 (ms)     {:>10.3} / {:.3}",
        r.submit_to_inclusion_p50.as_secs_f64() * 1e3,
        r.submit_to_inclusion_p99.as_secs_f64() * 1e3
    );
}
