//! The miner's use of the chain: its hotkey from a btcli wallet, the registration check, the advertised
//! axon and the metagraph that feeds the [`ValidatorSet`].
//!
//! Everything else in the miner works without a chain (`miner run --dev`).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chain::calls::AxonSpec;
use chain::client::{ChainClient, ClientConfig, MetagraphWatch, Network, SharedClient};
use chain::keys::Keypair;
use chain::metagraph::Metagraph;
use chain::wallet::Wallet;
use tokio::task::JoinHandle;

use crate::validators::{ValidatorEntry, ValidatorSet};

/// Default seconds between metagraph refreshes.
pub const DEFAULT_REFRESH_SECS: u64 = 120;

/// What the chain link needs of `miner run`'s flags (`crate::cli::RunArgs::chain_args`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChainArgs {
    /// `--wallet-path`.
    pub wallet_path: Option<PathBuf>,
    /// `--wallet`.
    pub wallet: Option<String>,
    /// `--hotkey`.
    pub hotkey: Option<String>,
    /// `--network`.
    pub network: Option<String>,
    /// `--netuid`.
    pub netuid: Option<u16>,
    /// `--external-ip`.
    pub external_ip: Option<IpAddr>,
    /// `--metagraph-refresh-secs`.
    pub metagraph_refresh_secs: Option<u64>,
}

/// Loads the miner's hotkey from its btcli wallet (`--wallet-path`, `--wallet`, `--hotkey`).
pub fn load_hotkey(args: &ChainArgs) -> anyhow::Result<Keypair> {
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
    status: ChainStatus,
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

/// What `miner run` did about its axon on chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AxonAction {
    /// `serve_axon` was submitted and included, because the chain advertised another address (or none).
    Served {
        /// What the chain advertised before, if anything.
        previous: Option<SocketAddr>,
        /// What it advertises now.
        now: SocketAddr,
    },
    /// The chain already advertises `--external-ip` and the bound port; nothing was submitted.
    Current(SocketAddr),
    /// No `--external-ip`: nothing was submitted; this is what the chain advertises.
    NotAdvertised {
        /// The chain's axon, if any.
        on_chain: Option<SocketAddr>,
    },
}

/// What the miner found and did on chain at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainStatus {
    /// The network, as named on the command line.
    pub network: String,
    /// The subnet.
    pub netuid: u16,
    /// The miner's uid on it.
    pub uid: u16,
    /// Permitted validators in the metagraph at start.
    pub validators: usize,
    /// What was done about the axon.
    pub axon: AxonAction,
}

/// The btcli command that registers `hotkey_name` of `wallet` on `netuid` of `network`.
pub fn register_command(netuid: u16, wallet: &str, hotkey_name: &str, network: &str) -> String {
    format!(
        "btcli subnets register --netuid {netuid} --wallet.name {wallet} --wallet.hotkey {hotkey_name} --network {network}"
    )
}

/// Compares the chain's axon with the address this miner serves on: `port` always, the IP only when
/// `external_ip` is known. `None` when they agree; otherwise one sentence naming both and the fix.
pub fn axon_mismatch(on_chain: Option<SocketAddr>, external_ip: Option<IpAddr>, port: u16) -> Option<String> {
    let Some(chain) = on_chain else {
        return Some(format!(
            "the chain advertises no axon for this hotkey; start `miner run` with --external-ip <public IP> --port {port} \
             so validators can find it"
        ));
    };
    let wanted_ip = external_ip.unwrap_or_else(|| chain.ip());
    if chain.ip() == wanted_ip && chain.port() == port {
        return None;
    }
    let wanted = SocketAddr::new(wanted_ip, port);
    Some(format!(
        "the chain advertises {chain} but this miner serves on {wanted}; restart `miner run` with \
         --external-ip {wanted_ip} --port {port} so that it calls serve_axon with the right address"
    ))
}

/// Connects to the chain named by `--network`, checks that `keypair` is registered on `--netuid` (and
/// names the command that registers it if not), loads the validator set, and calls `serve_axon` when
/// `--external-ip` and `port` (the port the server is bound to) differ from what the chain advertises.
pub async fn connect(
    args: &ChainArgs,
    keypair: &Keypair,
    validators: &ValidatorSet,
    port: u16,
) -> anyhow::Result<ChainLink> {
    let network_name = args
        .network
        .as_deref()
        .context("--network is required without --dev (devnet, local, test, finney or a ws:// URL)")?;
    let network: Network = network_name.parse()?;
    let netuid = args.netuid.context("--netuid is required without --dev")?;
    let client = ChainClient::connect(&network, ClientConfig::default())
        .await
        .with_context(|| {
            format!(
                "cannot connect to {network} ({}); check --network and that the node is reachable",
                network.url()
            )
        })?;
    let client: SharedClient = Arc::new(client);
    let hotkey = keypair.account();
    let Some(uid) = client.uid_of(netuid, &hotkey).await? else {
        let wallet = args.wallet.as_deref().unwrap_or("default");
        let name = args.hotkey.as_deref().unwrap_or("default");
        anyhow::bail!(
            "hotkey {hotkey} is not registered on subnet {netuid} of {network_name}; register it with `{}`",
            register_command(netuid, wallet, name, network_name)
        );
    };
    let graph = client.metagraph(netuid).await?;
    apply_metagraph(validators, &graph);
    let permitted = graph.neurons.iter().filter(|n| n.validator_permit).count();
    tracing::info!(%network, netuid, uid, block = graph.block, validators = permitted, "registered; metagraph loaded");

    let on_chain = graph
        .neurons
        .iter()
        .find(|n| n.hotkey == hotkey)
        .and_then(|n| n.axon)
        .map(|a| SocketAddr::new(a.ip, a.port));
    let axon = match args.external_ip {
        Some(ip) if on_chain == Some(SocketAddr::new(ip, port)) => {
            tracing::info!(%ip, port, "axon on chain is current");
            AxonAction::Current(SocketAddr::new(ip, port))
        }
        Some(ip) => {
            serve_axon(&client, keypair, netuid, ip, port).await?;
            AxonAction::Served {
                previous: on_chain,
                now: SocketAddr::new(ip, port),
            }
        }
        None => {
            match axon_mismatch(on_chain, None, port) {
                Some(problem) => tracing::warn!("{problem}"),
                None => tracing::info!(axon = ?on_chain, "axon on chain (pass --external-ip to change it)"),
            }
            AxonAction::NotAdvertised { on_chain }
        }
    };
    let refresh = Duration::from_secs(args.metagraph_refresh_secs.unwrap_or(DEFAULT_REFRESH_SECS).max(1));
    Ok(ChainLink {
        client,
        netuid,
        refresh,
        status: ChainStatus {
            network: network_name.to_owned(),
            netuid,
            uid,
            validators: permitted,
            axon,
        },
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
        anyhow::bail!(
            "serve_axon for {ip}:{port} was not included ({:?}); check the hotkey's balance for the fee and \
             the subnet's serving rate limit, then restart",
            report.outcome
        );
    }
    tracing::info!(%ip, port, attempts = report.attempts, "axon advertised on chain");
    Ok(())
}

impl ChainLink {
    /// What was found and done at start.
    pub fn status(&self) -> &ChainStatus {
        &self.status
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("a socket address")
    }

    #[test]
    fn axon_mismatch_compares_the_port_always_and_the_ip_when_known() {
        let ip: IpAddr = "203.0.113.7".parse().expect("ip");
        assert_eq!(
            axon_mismatch(Some(addr("203.0.113.7:8091")), Some(ip), 8091),
            None
        );
        assert_eq!(
            axon_mismatch(Some(addr("198.51.100.1:8091")), None, 8091),
            None,
            "without --external-ip the chain's IP is not second-guessed"
        );
        let moved = axon_mismatch(Some(addr("198.51.100.1:8091")), Some(ip), 8091).expect("IP differs");
        assert!(
            moved.contains("198.51.100.1:8091") && moved.contains("203.0.113.7:8091"),
            "{moved}"
        );
        let port = axon_mismatch(Some(addr("203.0.113.7:9000")), None, 8091).expect("port differs");
        assert!(
            port.contains("203.0.113.7:9000") && port.contains("--port 8091"),
            "{port}"
        );
        let none = axon_mismatch(None, Some(ip), 8091).expect("no axon");
        assert!(
            none.contains("no axon") && none.contains("--external-ip"),
            "{none}"
        );
    }

    #[test]
    fn register_command_names_the_wallet_hotkey_subnet_and_network() {
        assert_eq!(
            register_command(42, "miner", "hot1", "finney"),
            "btcli subnets register --netuid 42 --wallet.name miner --wallet.hotkey hot1 --network finney"
        );
    }
}
