//! A stock subxt 0.51 client against the embedded devnet: connect, read metadata, submit signed
//! extrinsics, watch them to finalization, read events and storage.

use std::time::Duration;

use chain::devnet::{Devnet, DevnetConfig};
use subxt::dynamic::{self, Value};
use subxt::{OnlineClient, SubstrateConfig};
use subxt_signer::sr25519::{Keypair, dev};

async fn devnet() -> Devnet {
    Devnet::spawn(DevnetConfig {
        block_time: Some(Duration::from_millis(50)),
        dev_subnet: true,
        ..DevnetConfig::default()
    })
    .await
    .expect("devnet starts")
}

fn id(k: &Keypair) -> [u8; 32] {
    k.public_key().0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subxt_reads_metadata_and_watches_a_transaction_to_finalization() {
    let devnet = devnet().await;
    let api = OnlineClient::<SubstrateConfig>::from_url(devnet.ws_url())
        .await
        .expect("subxt connects");
    let at = api.at_current_block().await.expect("current block");
    let metadata = at.metadata();
    let pallet = metadata
        .pallet_by_name("SubtensorModule")
        .expect("SubtensorModule in metadata");
    assert_eq!(pallet.call_index(), 7);

    // Bob (coldkey) registers Charlie's hotkey on the dev subnet.
    let tx = dynamic::transaction("SubtensorModule", "burned_register", (1u16, id(&dev::charlie())));
    let events = at
        .transactions()
        .sign_and_submit_then_watch_default(&tx, &dev::bob())
        .await
        .expect("submitted")
        .wait_for_finalized_success()
        .await
        .expect("finalized and successful");
    let names: Vec<(String, String)> = events
        .iter()
        .filter_map(Result::ok)
        .map(|e| (e.pallet_name().to_string(), e.event_name().to_string()))
        .collect();
    assert!(
        names.contains(&("SubtensorModule".into(), "NeuronRegistered".into())),
        "events: {names:?}"
    );

    let at = api.at_current_block().await.expect("current block");
    let n = at
        .storage()
        .fetch(
            dynamic::storage::<(u16,), u16>("SubtensorModule", "SubnetworkN"),
            (1u16,),
        )
        .await
        .expect("SubnetworkN")
        .decode()
        .expect("u16");
    assert_eq!(n, 2, "owner uid 0 plus Charlie");
    let _ = Value::u128(0);
    devnet.shutdown().await;
}
