//! The miner's use of the chain: its hotkey from a btcli wallet, the registration check, the advertised
//! axon and the metagraph that feeds the [`ValidatorSet`].
//!
//! Everything else in the miner works without a chain (`miner run --dev`).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chain::calls::AxonSpec;
use chain::client::{ChainClient, ClientConfig, MetagraphWatch, Network, SharedClient};
use chain::keys::Keypair;
use chain::metagraph::Metagraph;
use chain::wallet::Wallet;
use tokio::task::JoinHandle;

use crate::cli::{DEFAULT_PORT, RunArgs};
use crate::validators::{ValidatorEntry, ValidatorSet};

/// Default seconds between metagraph refreshes.
pub const DEFAULT_REFRESH_SECS: u64 = 120;

/// Loads the miner's hotkey from its btcli wallet (`--wallet-path`, `--wallet`, `--hotkey`).
pub fn load_hotkey(args: &RunArgs) -> anyhow::Result<Keypair> {
    let path = args.wallet_path.as_deref().map_or_else(
        || chain::wallet::DEFAULT_WALLET_PATH.to_owned(),
        |p| p.to_string_lossy().into_owned(),
    );
    let wallet = Wallet::new(
        &path,
        args.wallet.as_deref().unwrap_or("default"),
        args.hotkey.as_deref().unwrap_or("default"),
    )?;
    wallet.hotkey().map_err(|e| {
        anyhow::anyhow!(
            "{e} (create one with `miner wallet new --wallet {} --hotkey {}`)",
            wallet.name(),
            wallet.hotkey_name()
        )
    })
}

/// A live connection to the subnet.
#[derive(Debug)]
pub struct ChainLink {
    client: SharedClient,
    netuid: u16,
    refresh: Duration,
}

/// Fills `validators` from a metagraph snapshot.
pub fn apply_metagraph(validators: &ValidatorSet, graph: &Metagraph) {
    validators.replace(graph.neurons.iter().map(|n| {
        (
            n.hotkey,
            ValidatorEntry {
                stake_rao: n.stake,
                permit: n.validator_permit,
            },
        )
    }));
}

/// The axon version number as the Python SDK encodes it (`major·100 + minor·10 + patch`).
fn axon_version() -> u32 {
    let part = |s: &str| s.parse::<u32>().unwrap_or(0);
    part(env!("CARGO_PKG_VERSION_MAJOR")) * 100
        + part(env!("CARGO_PKG_VERSION_MINOR")) * 10
        + part(env!("CARGO_PKG_VERSION_PATCH"))
}

/// Connects to the chain named by `--network`, checks that `keypair` is registered on `--netuid` (and
/// says how to register if not), loads the validator set, and calls `serve_axon` when `--external-ip`
/// and the port differ from what the chain advertises.
pub async fn connect(
    args: &RunArgs,
    keypair: &Keypair,
    validators: &ValidatorSet,
) -> anyhow::Result<ChainLink> {
    let network: Network = args
        .network
        .as_deref()
        .context("--network is required without --dev (devnet, local, test, finney or a ws:// URL)")?
        .parse()?;
    let netuid = args.netuid.context("--netuid is required without --dev")?;
    let client = ChainClient::connect(&network, ClientConfig::default())
        .await
        .with_context(|| format!("cannot connect to {network} ({})", network.url()))?;
    let client: SharedClient = Arc::new(client);
    let hotkey = keypair.account();
    let Some(uid) = client.uid_of(netuid, &hotkey).await? else {
        let wallet = args.wallet.as_deref().unwrap_or("default");
        let name = args.hotkey.as_deref().unwrap_or("default");
        anyhow::bail!(
            "hotkey {hotkey} is not registered on subnet {netuid} of {network}; register it with \
             `btcli subnets register --netuid {netuid} --wallet.name {wallet} --wallet.hotkey {name} --network {network}`"
        );
    };
    let graph = client.metagraph(netuid).await?;
    apply_metagraph(validators, &graph);
    let permitted = graph.neurons.iter().filter(|n| n.validator_permit).count();
    tracing::info!(%network, netuid, uid, block = graph.block, validators = permitted, "registered; metagraph loaded");

    let port = args.port.unwrap_or(DEFAULT_PORT);
    let advertised = graph
        .neurons
        .iter()
        .find(|n| n.hotkey == hotkey)
        .and_then(|n| n.axon);
    match args.external_ip {
        Some(ip) => {
            if advertised.is_some_and(|a| a.ip == ip && a.port == port) {
                tracing::info!(%ip, port, "axon on chain is current");
            } else {
                serve_axon(&client, keypair, netuid, ip, port).await?;
            }
        }
        None => match advertised {
            Some(a) if a.port == port => {
                tracing::info!(ip = %a.ip, port, "axon on chain (pass --external-ip to change it)")
            }
            Some(a) => tracing::warn!(
                ip = %a.ip,
                chain_port = a.port,
                port,
                "the axon on chain names another port; pass --external-ip so validators can reach this one"
            ),
            None => tracing::warn!("no axon on chain; pass --external-ip so validators can find this miner"),
        },
    }
    let refresh = Duration::from_secs(args.metagraph_refresh_secs.unwrap_or(DEFAULT_REFRESH_SECS).max(1));
    Ok(ChainLink {
        client,
        netuid,
        refresh,
    })
}

async fn serve_axon(
    client: &ChainClient,
    keypair: &Keypair,
    netuid: u16,
    ip: IpAddr,
    port: u16,
) -> anyhow::Result<()> {
    let spec = AxonSpec {
        ip,
        port,
        version: axon_version(),
    };
    let report = client.serve_axon(keypair, netuid, spec).await?;
    if !report.is_included() {
        anyhow::bail!("serve_axon for {ip}:{port} did not land: {:?}", report.outcome);
    }
    tracing::info!(%ip, port, attempts = report.attempts, "axon advertised on chain");
    Ok(())
}

impl ChainLink {
    /// Keeps the validator set fresh from the metagraph in the background.
    pub fn spawn_refresh(self, validators: ValidatorSet) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut watch = MetagraphWatch::spawn(self.client, self.netuid, self.refresh);
            loop {
                if let Some(graph) = watch.changed(self.refresh * 2).await {
                    apply_metagraph(&validators, &graph);
                }
            }
        })
    }
}
