//! `validator localnet-setup`, run as the compose setup service runs it (the real binary, real flags)
//! against the embedded devnet; then a miner wallet it wrote serves its axon, as each miner does when it
//! starts, which needs the hotkey funded for the fee.

#![cfg(feature = "localnet")]

use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;
use std::time::Duration;

use chain::calls::AxonSpec;
use chain::client::{ChainClient, ClientConfig, Network};
use chain::wallet::Wallet;
use devnet::{Devnet, DevnetConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn localnet_setup_registers_wallets_that_can_serve() {
    let devnet = Devnet::spawn(DevnetConfig {
        block_time: Some(Duration::from_millis(100)),
        ..DevnetConfig::default()
    })
    .await
    .unwrap();
    let wallets = tempfile::tempdir().unwrap();
    let url = devnet.ws_url();
    let path = wallets.path().to_owned();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_validator"))
            .args(["localnet-setup", "--network", &url, "--wallet-path"])
            .arg(&path)
            .args(["--miners", "2"])
            .env_remove("BT_WALLET_PATH")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "localnet-setup failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("created: validator, miner-1, miner-2"),
        "{stdout}"
    );
    let netuid: u16 = stdout
        .split("subnet ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no subnet in {stdout}"));

    let client = ChainClient::connect(&Network::Url(devnet.ws_url()), ClientConfig::default())
        .await
        .unwrap();
    let graph = client.metagraph(netuid).await.unwrap();
    for name in ["validator", "miner-1", "miner-2"] {
        let hot = Wallet::new(wallets.path().to_string_lossy(), name, "default")
            .unwrap()
            .hotkey()
            .unwrap();
        assert!(
            graph.by_hotkey(&hot.account()).is_some(),
            "{name} is not registered on subnet {netuid}"
        );
        if name == "validator" {
            continue;
        }
        let report = client
            .serve_axon(
                &hot,
                netuid,
                AxonSpec {
                    ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7)),
                    port: 8091,
                    version: 1,
                },
            )
            .await
            .unwrap();
        assert!(
            report.is_included(),
            "{name} could not serve its axon: {report:?}"
        );
    }
    devnet.shutdown().await;
}
