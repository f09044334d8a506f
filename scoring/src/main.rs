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
    /// Simulate miner and validator strategies under a policy over many epochs, with the real scoring
    /// code and the real Yuma epoch; write CSV, SVG charts and a summary into `--out`.
    Simulate {
        /// The simulation config (TOML; examples in scoring/sims/).
        #[arg(long)]
        config: PathBuf,
        /// Output folder (created when missing).
        #[arg(long)]
        out: PathBuf,
        /// Override the config's seed.
        #[arg(long)]
        seed: Option<u64>,
        /// Override the config's epoch count.
        #[arg(long)]
        epochs: Option<u32>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Yuma { input, compact } => yuma(&input, compact),
        Command::Simulate {
            config,
            out,
            seed,
            epochs,
        } => simulate(&config, &out, seed, epochs),
    }
}

fn simulate(
    config: &std::path::Path,
    out: &std::path::Path,
    seed: Option<u64>,
    epochs: Option<u32>,
) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(config).with_context(|| {
        format!(
            "could not read the simulation config {}; check the path",
            config.display()
        )
    })?;
    let mut cfg =
        scoring::sim::SimConfig::from_toml_str(&text).with_context(|| format!("in {}", config.display()))?;
    if let Some(s) = seed {
        cfg.seed = s;
    }
    if let Some(e) = epochs {
        cfg.epochs = e;
    }
    let pb = indicatif::ProgressBar::new(u64::from(cfg.epochs));
    pb.set_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {pos}/{len} epochs ({per_sec}, eta {eta})",
        )
        .context("progress bar template")?
        .progress_chars("=> "),
    );
    let started = std::time::Instant::now();
    let result = scoring::sim::run(&cfg, Some(&pb))?;
    let secs = started.elapsed().as_secs_f64();
    pb.finish_and_clear();
    scoring::sim::write_outputs(&result, out)?;
    print!("{}", result.summary.table());
    println!();
    println!(
        "{} epochs, {} uids in {:.2} s: {:.1} epochs/s; outputs in {}",
        cfg.epochs,
        result.participants.len(),
        secs,
        f64::from(cfg.epochs) / secs,
        out.display()
    );
    Ok(())
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
