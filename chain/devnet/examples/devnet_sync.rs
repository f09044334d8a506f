//! Figures for the chain client on the embedded devnet: submit-to-inclusion latency, and metagraph
//! sync time for 256 and 1024 uids through the runtime API and through the storage fallback.
//!
//! `cargo run -p devnet --example devnet_sync [--release]` (prints a table; nothing is asserted).

use std::time::{Duration, Instant};

use chain::client::{ChainClient, ClientConfig, Network};
use chain::keys::Keypair;
use devnet::{Devnet, DevnetConfig};
use subxt::config::DefaultExtrinsicParamsBuilder;
use subxt::dynamic::{self, Value};
use subxt::{OnlineClient, SubstrateConfig};

const BLOCK_TIME: Duration = Duration::from_millis(100);

fn key(uri: &str) -> Keypair {
    Keypair::from_uri(uri).expect("dev uri")
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

/// Registers hotkeys `//bench//{from..to}` from //Bob without waiting for each inclusion.
async fn register_many(api: &OnlineClient<SubstrateConfig>, from: u32, to: u32) {
    let bob = key("//Bob");
    let account = subxt::utils::AccountId32(bob.account().0);
    let mut nonce = api
        .at_current_block()
        .await
        .expect("block")
        .transactions()
        .account_nonce(&account)
        .await
        .expect("nonce");
    let ids: Vec<u32> = (from..to).collect();
    // A fresh birth block per chunk keeps every transaction's era young.
    for chunk in ids.chunks(64) {
        let at = api.at_current_block().await.expect("block");
        let mut txs = at.transactions();
        for i in chunk {
            let hot = key(&format!("//bench//{i}")).account();
            let call = dynamic::tx("SubtensorModule", "burned_register", (1u16, hot.0));
            let params = DefaultExtrinsicParamsBuilder::<SubstrateConfig>::new()
                .nonce(nonce)
                .mortal(256)
                .build();
            let tx = txs.create_signed(&call, &bob, params).await.expect("sign");
            tx.submit().await.expect("submit");
            nonce += 1;
        }
    }
}

async fn wait_for_n(client: &ChainClient, n: u16) {
    loop {
        if client.hyperparams(1).await.expect("hyperparams").n >= n {
            return;
        }
        tokio::time::sleep(BLOCK_TIME).await;
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let devnet = Devnet::spawn(DevnetConfig {
        block_time: Some(BLOCK_TIME),
        dev_subnet: true,
        ..DevnetConfig::default()
    })
    .await
    .expect("devnet");
    let client = ChainClient::connect(&Network::Url(devnet.ws_url()), ClientConfig::default())
        .await
        .expect("connect");
    let api = OnlineClient::<SubstrateConfig>::from_insecure_url(devnet.ws_url())
        .await
        .expect("subxt");

    // Allow 1024 uids (root call through Sudo, signed by //Alice).
    let inner = Value::unnamed_variant(
        "AdminUtils",
        [Value::named_variant(
            "sudo_set_max_allowed_uids",
            [
                ("netuid", Value::from(1u16)),
                ("max_allowed_uids", Value::from(1024u16)),
            ],
        )],
    );
    let sudo = dynamic::tx("Sudo", "sudo", vec![inner]);
    api.at_current_block()
        .await
        .expect("block")
        .transactions()
        .sign_and_submit_then_watch_default(&sudo, &key("//Alice"))
        .await
        .expect("sudo submitted")
        .wait_for_finalized_success()
        .await
        .expect("sudo applied");

    // Submit-to-inclusion latency: 20 registrations, each waited for.
    let mut latencies = Vec::new();
    for i in 0..20 {
        let report = client
            .burned_register(&key("//Bob"), 1, &key(&format!("//bench//{i}")).account())
            .await;
        assert!(report.is_included(), "{report:?}");
        latencies.push(report.latency);
    }
    println!(
        "submit-to-inclusion (burned_register, {} ms blocks): median {:?}, max {:?} over 20",
        BLOCK_TIME.as_millis(),
        median(latencies.clone()),
        latencies.iter().max().copied().unwrap_or_default()
    );

    let mut registered = 20;
    for target in [256u16, 1024] {
        register_many(&api, registered, u32::from(target) - 1).await;
        registered = u32::from(target) - 1;
        wait_for_n(&client, target).await;
        let mut api_times = Vec::new();
        let mut storage_times = Vec::new();
        for _ in 0..3 {
            let t = Instant::now();
            let graph = client.metagraph(1).await.expect("metagraph");
            api_times.push(t.elapsed());
            assert_eq!(graph.neurons.len(), usize::from(target));
            let t = Instant::now();
            let neurons = client.neurons_from_storage_at_best(1).await.expect("storage");
            storage_times.push(t.elapsed());
            assert_eq!(neurons.len(), usize::from(target));
        }
        let (a, s) = (median(api_times), median(storage_times));
        println!(
            "metagraph sync, {target} uids: runtime API {a:?}, storage fallback {s:?} (storage/API = {:.1}x)",
            s.as_secs_f64() / a.as_secs_f64()
        );
    }
    devnet.shutdown().await;
}
