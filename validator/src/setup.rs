//! `validator localnet-setup`: the subnet set-up for docker compose, against an external chain
//! (subtensor's localnet image). It writes btcli wallets (`validator`, `miner-1`, …, hotkey `default`,
//! no password) and registers them with [`chain::bootstrap`], //Alice as sudo. It needs no devnet and
//! no in-process miners, so it is part of the production build (unlike `validator localnet`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use chain::bootstrap::{self, Account, SubnetChoice, SubnetPlan};
use chain::client::{ChainClient, ClientConfig, Network as ChainNet};
use chain::keys::Keypair;
use chain::wallet::Wallet;
use chain::wallet::keyfile::KdfCost;
use serde::Serialize;

/// Most miners a set-up (or a localnet) registers (one loopback address each, 127.0.0.2 upwards).
pub const MAX_MINERS: usize = 250;

/// The chain client's timeouts for set-up and localnet runs.
pub(crate) fn client_config() -> ClientConfig {
    ClientConfig {
        request_timeout: Duration::from_secs(20),
        inclusion_timeout: Duration::from_secs(30),
        ..ClientConfig::default()
    }
}

/// What [`setup`] did.
#[derive(Debug, Clone, Serialize)]
pub struct SetupReport {
    /// The wallets folder.
    pub wallet_path: PathBuf,
    /// Wallet names created (existing ones are reused).
    pub created: Vec<String>,
    /// The bootstrap.
    pub bootstrap: bootstrap::BootstrapReport,
}

fn open_or_create(path: &Path, name: &str, created: &mut Vec<String>) -> anyhow::Result<Account> {
    let wallet = Wallet::new(path.to_string_lossy(), name, "default")?;
    let password = chain::wallet::Password::Given(String::new());
    let coldkey = if wallet.coldkey_path().exists() {
        wallet
            .coldkey(&password)
            .with_context(|| format!("wallet {name}: the coldkey must be unencrypted"))?
    } else {
        created.push(name.to_owned());
        wallet.create_coldkey(None, KdfCost::SENSITIVE)?.0
    };
    let hotkey = if wallet.hotkey_path().exists() {
        wallet.hotkey()?
    } else {
        wallet.create_hotkey()?.0
    };
    Ok(Account::new(coldkey, hotkey))
}

/// Creates (or reuses) btcli wallets `validator` and `miner-1..=miners` under `wallet_path` and
/// bootstraps them on `network` with //Alice as sudo: a new subnet unless `netuid` is given. Miners are
/// registered but not served: each miner serves its own axon when it starts.
pub async fn setup(
    network: &str,
    wallet_path: &Path,
    miners: usize,
    netuid: Option<u16>,
) -> anyhow::Result<SetupReport> {
    if miners > MAX_MINERS {
        anyhow::bail!("--miners must be at most {MAX_MINERS}");
    }
    let mut created = Vec::new();
    let validator = open_or_create(wallet_path, "validator", &mut created)?;
    let accounts = (1..=miners)
        .map(|i| open_or_create(wallet_path, &format!("miner-{i}"), &mut created))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let network: ChainNet = network
        .parse()
        .map_err(|e| anyhow::anyhow!("--network {network}: {e}"))?;
    let client = ChainClient::connect(&network, client_config()).await?;
    let sudo = Keypair::from_uri("//Alice").map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut plan = SubnetPlan::localnet(10);
    if let Some(n) = netuid {
        plan.subnet = SubnetChoice::Existing(n);
        // Keep the subnet's tempo.
        plan.hyperparameters
            .retain(|p| !matches!(p, chain::calls::Hyperparameter::Tempo(_)));
    }
    let bootstrap = bootstrap::bootstrap(&client, &sudo, &plan, &validator, &accounts).await?;
    Ok(SetupReport {
        wallet_path: wallet_path.to_owned(),
        created,
        bootstrap,
    })
}
