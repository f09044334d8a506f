//! The devnet's JSON-RPC under bad input, and storage queries at recent block hashes.
//! Every bad request gets a JSON-RPC error with Substrate's code and wording, and the node keeps
//! producing blocks and serving afterwards.

use devnet::{Devnet, DevnetConfig};
use polkadot_sdk::sp_io::hashing::twox_128;
use serde_json::{Value, json};
use subxt::config::substrate::SubstrateConfig;
use subxt::dynamic;
use subxt::ext::codec::{Compact, Decode};
use subxt::rpcs::{Error as RpcError, RpcClient, rpc_params};
use subxt_signer::sr25519::dev;

async fn devnet() -> Devnet {
    Devnet::spawn(DevnetConfig {
        block_time: None,
        instant_seal: false,
        max_request_bytes: 64 * 1024,
        ..DevnetConfig::default()
    })
    .await
    .expect("devnet starts")
}

/// `(code, message, data)` of a JSON-RPC error.
fn rpc_err(r: Result<Value, RpcError>) -> (i32, String, String) {
    match r {
        Err(RpcError::User(u)) => (
            u.code,
            u.message,
            u.data.map(|d| d.get().to_string()).unwrap_or_default(),
        ),
        other => panic!("expected a JSON-RPC error, got {other:?}"),
    }
}

fn system_number_key() -> String {
    let mut k = twox_128(b"System").to_vec();
    k.extend(twox_128(b"Number"));
    format!("0x{}", hex::encode(k))
}

async fn signed_transfer(devnet: &Devnet) -> Vec<u8> {
    let api = subxt::OnlineClient::<SubstrateConfig>::from_url(devnet.ws_url())
        .await
        .expect("subxt");
    let at = api.at_current_block().await.expect("block");
    let call = dynamic::transaction(
        "Balances",
        "transfer_keep_alive",
        (dev::bob().public_key().to_address::<u32>(), 1_000_000_000u64),
    );
    let mut txs = at.transactions();
    let signed = txs
        .create_signed(&call, &dev::alice(), Default::default())
        .await
        .expect("signed");
    signed.encoded().to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_substrate_errors_and_the_node_keeps_going() {
    let devnet = devnet().await;
    let rpc = RpcClient::from_insecure_url(devnet.ws_url()).await.expect("rpc");

    let (code, _, _) = rpc_err(rpc.request("no_such_method", rpc_params![]).await);
    assert_eq!(code, -32601, "unknown method");

    let (code, _, data) = rpc_err(rpc.request("state_getStorage", rpc_params!["0xzz"]).await);
    assert_eq!(code, -32602, "malformed hex: {data}");

    let (code, msg, _) = rpc_err(rpc.request("author_submitExtrinsic", rpc_params!["0x1234"]).await);
    assert_eq!((code, msg.as_str()), (1001, "Extrinsic has invalid format"));

    // A signature that does not verify.
    let good = signed_transfer(&devnet).await;
    let mut bad = good.clone();
    let prefix = {
        let mut input = &good[..];
        let _ = Compact::<u32>::decode(&mut input).expect("length prefix");
        good.len() - input.len()
    };
    // length prefix, version byte, MultiAddress::Id (1 + 32), MultiSignature tag, then the signature.
    bad[prefix + 1 + 33 + 1 + 7] ^= 0xff;
    let (code, _, data) = rpc_err(
        rpc.request(
            "author_submitExtrinsic",
            rpc_params![format!("0x{}", hex::encode(&bad))],
        )
        .await,
    );
    assert_eq!(
        (code, data.as_str()),
        (1010, "\"Transaction has a bad signature\"")
    );

    // The good one is accepted, a duplicate is refused, and after inclusion it is stale.
    let hex_good = format!("0x{}", hex::encode(&good));
    let hash: Value = rpc
        .request("author_submitExtrinsic", rpc_params![hex_good.clone()])
        .await
        .expect("accepted");
    assert!(hash.as_str().is_some_and(|h| h.len() == 66));
    let (code, _, _) = rpc_err(
        rpc.request("author_submitExtrinsic", rpc_params![hex_good.clone()])
            .await,
    );
    assert_eq!(code, 1013, "already imported");
    let produced = devnet.produce_block().await.expect("block");
    assert_eq!(produced.included, 1);
    let (code, _, data) = rpc_err(rpc.request("author_submitExtrinsic", rpc_params![hex_good]).await);
    assert_eq!((code, data.as_str()), (1010, "\"Transaction is outdated\""));

    // Oversized request: refused by the server ("request too big", with a null id, so this
    // client's connection is spent), which keeps serving new connections.
    let huge = format!("0x{}", "00".repeat(100 * 1024));
    assert!(
        rpc.request::<Value>("author_submitExtrinsic", rpc_params![huge])
            .await
            .is_err()
    );
    let rpc = RpcClient::from_insecure_url(devnet.ws_url())
        .await
        .expect("new connection");

    let (code, _, _) = rpc_err(
        rpc.request("state_getKeysPaged", rpc_params!["0x", 100_000])
            .await,
    );
    assert_eq!(code, -32602, "count over the limit");
    let (code, _, _) = rpc_err(
        rpc.request(
            "state_getStorage",
            rpc_params![system_number_key(), format!("0x{}", "11".repeat(32))],
        )
        .await,
    );
    assert_eq!(code, 4003, "unknown block");

    let before = devnet.best_number();
    devnet.produce_block().await.expect("block");
    let rpc2 = RpcClient::from_insecure_url(devnet.ws_url())
        .await
        .expect("fresh connection");
    let head: Value = rpc2
        .request("chain_getHeader", rpc_params![])
        .await
        .expect("header");
    assert_eq!(head["number"], json!(format!("0x{:x}", before + 1)));
    devnet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_queries_answer_at_recent_block_hashes() {
    let devnet = devnet().await;
    for _ in 0..3 {
        devnet.produce_block().await.expect("block");
    }
    let rpc = RpcClient::from_insecure_url(devnet.ws_url()).await.expect("rpc");
    let key = system_number_key();
    let mut seen = Vec::new();
    for n in 1u32..=3 {
        let hash: Value = rpc
            .request("chain_getBlockHash", rpc_params![n])
            .await
            .expect("hash");
        let value: Value = rpc
            .request("state_getStorage", rpc_params![key.clone(), hash.clone()])
            .await
            .expect("storage");
        assert_eq!(
            value,
            json!(format!("0x{}", hex::encode(n.to_le_bytes()))),
            "System.Number at block {n}"
        );
        let at: Value = rpc
            .request(
                "state_queryStorageAt",
                rpc_params![vec![key.clone()], hash.clone()],
            )
            .await
            .expect("query");
        assert_eq!(at[0]["block"], hash);
        assert_eq!(at[0]["changes"][0][1], value);
        seen.push(hash);
    }
    // Keys under the System prefix, paged.
    let prefix = format!("0x{}", hex::encode(twox_128(b"System")));
    let page1: Vec<String> = rpc
        .request("state_getKeysPaged", rpc_params![prefix.clone(), 2])
        .await
        .expect("keys");
    assert_eq!(page1.len(), 2);
    let page2: Vec<String> = rpc
        .request(
            "state_getKeysPaged",
            rpc_params![prefix.clone(), 2, page1[1].clone()],
        )
        .await
        .expect("keys");
    assert!(page2.iter().all(|k| k.starts_with(&prefix) && k > &page1[1]));
    let methods: Value = rpc.request("rpc_methods", rpc_params![]).await.expect("methods");
    for m in [
        "chain_subscribeFinalizedHeads",
        "author_submitAndWatchExtrinsic",
        "state_call",
        "state_getKeysPaged",
    ] {
        assert!(
            methods["methods"].as_array().expect("list").contains(&json!(m)),
            "{m}"
        );
    }
    let version: Value = rpc
        .request("state_getRuntimeVersion", rpc_params![])
        .await
        .expect("version");
    assert_eq!(version["specName"], json!("node-subtensor"));
    assert_eq!(
        version["specVersion"],
        json!(devnet::runtime::VERSION.spec_version)
    );
    devnet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_subscriptions_report_each_change() {
    let devnet = devnet().await;
    let rpc = RpcClient::from_insecure_url(devnet.ws_url()).await.expect("rpc");
    let key = system_number_key();
    let mut sub = rpc
        .subscribe::<Value>(
            "state_subscribeStorage",
            rpc_params![vec![key.clone()]],
            "state_unsubscribeStorage",
        )
        .await
        .expect("subscribed");
    let first = sub.next().await.expect("initial").expect("ok");
    assert_eq!(first["changes"][0][0], json!(key));
    for n in 1u32..=2 {
        let produced = devnet.produce_block().await.expect("block");
        let update = tokio::time::timeout(std::time::Duration::from_secs(10), sub.next())
            .await
            .expect("an update arrives")
            .expect("open")
            .expect("ok");
        assert_eq!(update["block"], json!(produced.hash));
        assert_eq!(
            update["changes"][0][1],
            json!(format!("0x{}", hex::encode(n.to_le_bytes())))
        );
    }
    devnet.shutdown().await;
}

/// What the Bittensor SDK 11.3 reads on connect: the RPC aliases real nodes serve
/// (`state_getStorageAt` for `state_getStorage`, `account_nextIndex` for `system_accountNextIndex`)
/// answer as the originals do, and `SubtensorModule::TokenSymbol` holds the subnet's symbol.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_aliases_and_the_token_symbol() {
    let devnet = Devnet::spawn(DevnetConfig {
        block_time: None,
        dev_subnet: true,
        ..DevnetConfig::default()
    })
    .await
    .expect("devnet starts");
    devnet.produce_block().await.expect("block");
    let rpc = RpcClient::from_insecure_url(devnet.ws_url()).await.expect("rpc");
    let key = system_number_key();
    let head: String = rpc
        .request("chain_getBlockHash", rpc_params![])
        .await
        .expect("head");
    for params in [rpc_params![key.clone()], rpc_params![key.clone(), head.clone()]] {
        let plain: Value = rpc
            .request("state_getStorage", params.clone())
            .await
            .expect("getStorage");
        let alias: Value = rpc
            .request("state_getStorageAt", params)
            .await
            .expect("getStorageAt");
        assert_eq!(alias, plain);
        assert_eq!(plain, json!("0x01000000"), "System::Number is block 1");
    }
    let alice = dev::alice().public_key().to_account_id().to_string();
    let signed = signed_transfer(&devnet).await;
    let _: Value = rpc
        .request(
            "author_submitExtrinsic",
            rpc_params![format!("0x{}", hex::encode(&signed))],
        )
        .await
        .expect("submitted");
    let plain: u64 = rpc
        .request("system_accountNextIndex", rpc_params![alice.clone()])
        .await
        .expect("nonce");
    let alias: u64 = rpc
        .request("account_nextIndex", rpc_params![alice])
        .await
        .expect("alias nonce");
    assert_eq!((plain, alias), (1, 1), "the pooled transfer counts");
    let methods: Value = rpc.request("rpc_methods", rpc_params![]).await.expect("methods");
    for m in ["state_getStorageAt", "account_nextIndex"] {
        assert!(
            methods["methods"].as_array().expect("list").contains(&json!(m)),
            "{m}"
        );
    }
    // TokenSymbol of netuid 1 (Identity-hashed u16 key): α, as subtensor names it; any other
    // netuid reads the default 𝜏.
    let symbol_key = |netuid: u16| {
        let mut k = twox_128(b"SubtensorModule").to_vec();
        k.extend(twox_128(b"TokenSymbol"));
        k.extend(netuid.to_le_bytes());
        format!("0x{}", hex::encode(k))
    };
    let symbol: Option<String> = rpc
        .request("state_getStorage", rpc_params![symbol_key(1)])
        .await
        .expect("symbol");
    let bytes = hex::decode(symbol.expect("stored").trim_start_matches("0x")).expect("hex");
    assert_eq!(
        Vec::<u8>::decode(&mut &bytes[..]).expect("Vec<u8>"),
        "α".as_bytes()
    );
    let default = devnet.with_state(|| devnet::subtensor::TokenSymbol::<devnet::runtime::Runtime>::get(7));
    assert_eq!(default, "𝜏".as_bytes());
    devnet.shutdown().await;
}
