//! `scoring`: replay a Yuma epoch from JSON, or run the incentive simulator.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "scoring",
    version,
    about = "Replay subtensor's Yuma epoch and simulate subnet incentives"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one Yuma epoch on a JSON `EpochInput` and print the `EpochOutput` as JSON.
    Yuma {
        /// The epoch input file (JSON; see scoring/README.md); `-` reads standard input.
        #[arg(long)]
        input: PathBuf,
        /// Print compact JSON instead of pretty JSON.
        #[arg(long)]
        compact: bool,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Yuma { input, compact } => yuma(&input, compact),
    }
}

fn yuma(path: &std::path::Path, compact: bool) -> anyhow::Result<()> {
    let text = if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())
            .context("could not read the epoch input from standard input")?
    } else {
        std::fs::read_to_string(path).with_context(|| {
            format!(
                "could not read the epoch input {}; check the path",
                path.display()
            )
        })?
    };
    let input: scoring::yuma::EpochInput = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a valid epoch input; see scoring/README.md for the format",
            path.display()
        )
    })?;
    let output = scoring::yuma::run_epoch(&input)?;
    let json = if compact {
        serde_json::to_string(&output)?
    } else {
        serde_json::to_string_pretty(&output)?
    };
    println!("{json}");
    Ok(())
}
