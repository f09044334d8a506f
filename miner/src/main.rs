//! The `miner` binary: `miner run`, `miner wallet`, `miner doctor`, `miner bench-transport`.
//! See the `miner` library's [`cli`](miner::cli) module.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = miner::cli::Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    match miner::cli::main_with(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
