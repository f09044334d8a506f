//! The `devnet` binary: an embedded Substrate devnet that speaks subtensor.
//!
//! ```text
//! cargo run --release -p chain --bin devnet -- --port 9944 --block-time-ms 250 --tempo 10 --dev-subnet
//! ```
//!
//! Prints the endpoint and the funded dev accounts, then produces blocks until Ctrl-C.

use std::net::IpAddr;
use std::time::Duration;

use chain::devnet::{Devnet, DevnetConfig, dev_accounts};
use clap::Parser;
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
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let config = DevnetConfig {
        host: args.host,
        port: args.port,
        block_time: (args.block_time_ms > 0).then(|| Duration::from_millis(args.block_time_ms)),
        tempo: args.tempo,
        dev_subnet: args.dev_subnet,
        dev_subnet_commit_reveal: args.commit_reveal,
        ..DevnetConfig::default()
    };
    let devnet = match Devnet::spawn(config).await {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    println!("tensorproof devnet (spec node-subtensor 425)");
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
