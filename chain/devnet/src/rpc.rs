//! WebSocket JSON-RPC: the legacy Substrate methods subxt and other clients use.

use std::sync::{Arc, Mutex, MutexGuard};

use jsonrpsee::core::RegisterMethodError;
use jsonrpsee::types::{ErrorObjectOwned, Params};
use jsonrpsee::{PendingSubscriptionSink, RpcModule, SubscriptionMessage};
use parity_scale_codec::{Decode, Encode};
use polkadot_sdk::sp_core::{H256, OpaqueMetadata, crypto::Ss58Codec};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use tokio::time::{Duration, timeout};

use super::node::{Chain, PoolError, TxStatus, decode_hex, encode_hex};
use super::runtime::{AccountId, Header};

/// Largest extrinsic or call payload accepted (bytes, after hex decoding).
pub const MAX_PAYLOAD: usize = 5 * 1024 * 1024;
/// Largest storage key accepted (bytes).
pub const MAX_KEY: usize = 4096;
/// Most keys in one `state_getKeysPaged` / `state_queryStorageAt`.
pub const MAX_KEYS: usize = 1000;
/// How long a watched transaction may wait for inclusion before the watch ends with `dropped`.
pub const WATCH_TIMEOUT: Duration = Duration::from_secs(600);

/// State shared by the RPC handlers and the block producer.
#[derive(Debug)]
pub struct Shared {
    /// The chain.
    pub chain: Mutex<Chain>,
    /// Signalled whenever a transaction enters the pool (drives instant sealing).
    pub new_tx: tokio::sync::Notify,
}

impl Shared {
    /// Lock the chain (a poisoned lock is recovered: the chain's state stays consistent because
    /// each block is committed at the end of `produce_block`).
    pub fn lock(&self) -> MutexGuard<'_, Chain> {
        self.chain.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn invalid_params(msg: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(-32602, "Invalid params", Some(msg.into()))
}

fn client_error(msg: impl Into<String>) -> ErrorObjectOwned {
    let msg = msg.into();
    ErrorObjectOwned::owned(4003, format!("Client error: {msg}"), None::<()>)
}

fn pool_error(e: PoolError) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(e.code(), e.message(), e.data())
}

fn params_vec(params: &Params<'_>) -> Result<Vec<Value>, ErrorObjectOwned> {
    if params.as_str().is_none() {
        return Ok(Vec::new());
    }
    params
        .parse::<Vec<Value>>()
        .map_err(|e| invalid_params(e.to_string()))
}

fn opt_hash(v: Option<&Value>) -> Result<Option<H256>, ErrorObjectOwned> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            let b = decode_hex(s, 32).map_err(invalid_params)?;
            if b.len() != 32 {
                return Err(invalid_params("block hash must be 32 bytes"));
            }
            Ok(Some(H256::from_slice(&b)))
        }
        Some(_) => Err(invalid_params("block hash must be a 0x-prefixed hex string")),
    }
}

fn req_hex(v: Option<&Value>, what: &str, max: usize) -> Result<Vec<u8>, ErrorObjectOwned> {
    match v {
        Some(Value::String(s)) => decode_hex(s, max).map_err(invalid_params),
        _ => Err(invalid_params(format!("missing {what} (0x-prefixed hex)"))),
    }
}

fn header_json(h: &Header) -> Value {
    serde_json::to_value(h).unwrap_or(Value::Null)
}

fn status_json(s: &TxStatus) -> Value {
    match s {
        TxStatus::Ready => json!("ready"),
        TxStatus::InBlock(h) => json!({ "inBlock": h }),
        TxStatus::Finalized(h) => json!({ "finalized": h }),
        TxStatus::Invalid => json!("invalid"),
        TxStatus::Dropped => json!("dropped"),
    }
}

/// The value under the key of `params` (`[key, at?]`) at the block it names (the head by default).
fn storage_value(p: &Params<'_>, s: &Shared) -> Result<Option<Vec<u8>>, ErrorObjectOwned> {
    let v = params_vec(p)?;
    let key = req_hex(v.first(), "storage key", MAX_KEY)?;
    let at = opt_hash(v.get(1))?;
    let chain = s.lock();
    let at = resolve_at(&chain, at)?;
    let state = chain
        .state(at)
        .ok_or_else(|| client_error("State already discarded for the requested block"))?;
    Ok(state.get(&key).cloned())
}

fn resolve_at(chain: &Chain, at: Option<H256>) -> Result<Option<H256>, ErrorObjectOwned> {
    match at {
        Some(h) if chain.block(&h).is_none() => {
            Err(client_error(format!("UnknownBlock: header not found for {h:?}")))
        }
        other => Ok(other),
    }
}

/// The RPC module the devnet serves.
type Module = RpcModule<Arc<Shared>>;

/// Build the RPC module.
pub fn module(shared: Arc<Shared>) -> Result<Module, RegisterMethodError> {
    let mut m = RpcModule::new(shared);
    register_system(&mut m)?;
    register_chain(&mut m)?;
    register_state(&mut m)?;
    register_storage(&mut m)?;
    register_author(&mut m)?;
    register_dev(&mut m)?;
    let names: Vec<String> = m.method_names().map(str::to_string).collect();
    m.register_method("rpc_methods", move |_, _, _| {
        let mut all = names.clone();
        all.push("rpc_methods".into());
        all.sort();
        json!({ "version": 1, "methods": all })
    })?;
    Ok(m)
}

/// `system_*`: the node's identity, health and the account nonce.
fn register_system(m: &mut Module) -> Result<(), RegisterMethodError> {
    m.register_method("system_chain", |_, _, _| "tensorproof devnet")?;
    m.register_method("system_name", |_, _, _| "tensorproof-devnet")?;
    m.register_method("system_version", |_, _, _| env!("CARGO_PKG_VERSION"))?;
    m.register_method("system_chainType", |_, _, _| "Development")?;
    m.register_method(
        "system_properties",
        |_, _, _| json!({ "ss58Format": 42, "tokenDecimals": 9, "tokenSymbol": "TAO" }),
    )?;
    m.register_method(
        "system_health",
        |_, _, _| json!({ "peers": 0, "isSyncing": false, "shouldHavePeers": false }),
    )?;
    m.register_method("system_accountNextIndex", |p, s, _| {
        let v = params_vec(&p)?;
        let who = match v.first() {
            Some(Value::String(a)) => AccountId::from_ss58check(a)
                .or_else(|_| {
                    decode_hex(a, 32)
                        .ok()
                        .and_then(|b| <[u8; 32]>::try_from(b).ok())
                        .map(AccountId::from)
                        .ok_or(())
                })
                .map_err(|_| invalid_params("account must be SS58 or 32-byte hex"))?,
            _ => return Err(invalid_params("missing account")),
        };
        Ok::<_, ErrorObjectOwned>(s.lock().next_nonce(&who))
    })?;
    // The alias real nodes serve (the Bittensor SDK calls it).
    m.register_alias("account_nextIndex", "system_accountNextIndex")?;

    m.register_method("system_peers", |_, _, _| json!([]))?;
    m.register_method("system_nodeRoles", |_, _, _| json!(["Authority"]))?;
    m.register_method("system_localListenAddresses", |_, _, _| json!([]))?;
    Ok(())
}

/// `chain_*`: blocks, headers, heads and their subscriptions, the runtime version.
fn register_chain(m: &mut Module) -> Result<(), RegisterMethodError> {
    m.register_method("chain_getBlockHash", |p, s, _| {
        let v = params_vec(&p)?;
        let chain = s.lock();
        let n = match v.first() {
            None | Some(Value::Null) => return Ok(Some(chain.head())),
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) => {
                let t = s.strip_prefix("0x").unwrap_or(s);
                u64::from_str_radix(t, if s.starts_with("0x") { 16 } else { 10 }).ok()
            }
            Some(Value::Array(_)) => {
                return Err(invalid_params("lists of block numbers are not supported"));
            }
            _ => None,
        }
        .ok_or_else(|| invalid_params("block number must be a number or hex string"))?;
        Ok::<_, ErrorObjectOwned>(chain.hash_of(n))
    })?;
    m.register_method("chain_getHeader", |p, s, _| {
        let v = params_vec(&p)?;
        let at = opt_hash(v.first())?;
        let chain = s.lock();
        let h = at.unwrap_or_else(|| chain.head());
        Ok::<_, ErrorObjectOwned>(chain.block(&h).map(|b| header_json(&b.header)))
    })?;
    m.register_method("chain_getBlock", |p, s, _| {
        let v = params_vec(&p)?;
        let at = opt_hash(v.first())?;
        let chain = s.lock();
        let h = at.unwrap_or_else(|| chain.head());
        Ok::<_, ErrorObjectOwned>(chain.block(&h).map(|b| {
            json!({
                "block": {
                    "header": header_json(&b.header),
                    "extrinsics": b.extrinsics.iter().map(|x| encode_hex(&x.encode())).collect::<Vec<_>>(),
                },
                "justifications": null,
            })
        }))
    })?;
    m.register_method("chain_getFinalizedHead", |_, s, _| {
        Ok::<_, ErrorObjectOwned>(s.lock().head())
    })?;
    m.register_method("chain_getHead", |_, s, _| {
        Ok::<_, ErrorObjectOwned>(s.lock().head())
    })?;

    for (sub, notif, unsub) in [
        (
            "chain_subscribeAllHeads",
            "chain_allHead",
            "chain_unsubscribeAllHeads",
        ),
        (
            "chain_subscribeNewHeads",
            "chain_newHead",
            "chain_unsubscribeNewHeads",
        ),
        (
            "chain_subscribeFinalizedHeads",
            "chain_finalizedHead",
            "chain_unsubscribeFinalizedHeads",
        ),
    ] {
        m.register_subscription(sub, notif, unsub, |_, pending, s, _| async move {
            heads_subscription(pending, (*s).clone()).await
        })?;
    }

    m.register_method("chain_getRuntimeVersion", |_, s, _| {
        serde_json::to_value(s.lock().runtime_version()).unwrap_or(Value::Null)
    })?;
    Ok(())
}

/// `state_*`: storage subscriptions, runtime calls, metadata and version (reads: [`register_storage`]).
fn register_state(m: &mut Module) -> Result<(), RegisterMethodError> {
    m.register_subscription(
        "state_subscribeStorage",
        "state_storage",
        "state_unsubscribeStorage",
        |p, pending, s, _| async move {
            let keys = match params_vec(&p).and_then(|v| match v.first() {
                Some(Value::Array(a)) if !a.is_empty() && a.len() <= MAX_KEYS => a
                    .iter()
                    .map(|k| req_hex(Some(k), "storage key", MAX_KEY))
                    .collect::<Result<Vec<_>, _>>(),
                _ => Err(invalid_params(format!(
                    "give a list of 1 to {MAX_KEYS} storage keys to watch"
                ))),
            }) {
                Ok(k) => k,
                Err(e) => {
                    pending.reject(e).await;
                    return;
                }
            };
            storage_subscription(pending, (*s).clone(), keys).await;
        },
    )?;
    m.register_method("state_getRuntimeVersion", |_, s, _| {
        serde_json::to_value(s.lock().runtime_version()).unwrap_or(Value::Null)
    })?;
    m.register_subscription(
        "state_subscribeRuntimeVersion",
        "state_runtimeVersion",
        "state_unsubscribeRuntimeVersion",
        |_, pending, s, _| async move {
            let version = serde_json::to_value(s.lock().runtime_version()).unwrap_or(Value::Null);
            let Ok(sink) = pending.accept().await else { return };
            if let Ok(raw) = serde_json::value::to_raw_value(&version) {
                let _ = sink.send(SubscriptionMessage::from(raw)).await;
            }
            // The runtime never changes; keep the subscription open until the client leaves.
            sink.closed().await;
        },
    )?;
    m.register_method("state_getMetadata", |p, s, _| {
        let v = params_vec(&p)?;
        let at = opt_hash(v.first())?;
        let mut chain = s.lock();
        let at = resolve_at(&chain, at)?;
        let raw = chain.call(at, "Metadata_metadata", &[]).map_err(client_error)?;
        let meta = OpaqueMetadata::decode(&mut &raw[..])
            .map_err(|e| client_error(format!("metadata did not decode: {e}")))?;
        Ok::<_, ErrorObjectOwned>(encode_hex(&meta))
    })?;
    m.register_method("state_call", |p, s, _| {
        let v = params_vec(&p)?;
        let method = match v.first() {
            Some(Value::String(m)) if m.len() <= 256 => m.clone(),
            _ => return Err(invalid_params("missing method name")),
        };
        let data = match v.get(1) {
            None | Some(Value::Null) => Vec::new(),
            other => req_hex(other, "call data", MAX_PAYLOAD)?,
        };
        let at = opt_hash(v.get(2))?;
        let mut chain = s.lock();
        let at = resolve_at(&chain, at)?;
        let out = chain.call(at, &method, &data).map_err(|e| {
            ErrorObjectOwned::owned(4003, format!("Client error: Execution failed: {e}"), None::<()>)
        })?;
        Ok(encode_hex(&out))
    })?;
    Ok(())
}

/// `state_*` storage reads: one value (its hash, its size), many at once, keys by prefix.
fn register_storage(m: &mut Module) -> Result<(), RegisterMethodError> {
    m.register_method("state_getStorage", |p, s, _| {
        Ok::<_, ErrorObjectOwned>(storage_value(&p, s)?.map(|v| encode_hex(&v)))
    })?;
    // The alias real nodes serve (the Bittensor SDK reads storage through it).
    m.register_alias("state_getStorageAt", "state_getStorage")?;
    m.register_method("state_getStorageHash", |p, s, _| {
        Ok::<_, ErrorObjectOwned>(
            storage_value(&p, s)?.map(|v| encode_hex(&polkadot_sdk::sp_io::hashing::blake2_256(&v))),
        )
    })?;
    m.register_method("state_getStorageSize", |p, s, _| {
        Ok::<_, ErrorObjectOwned>(storage_value(&p, s)?.map(|v| v.len() as u64))
    })?;
    m.register_method("state_queryStorageAt", |p, s, _| {
        let v = params_vec(&p)?;
        let keys = match v.first() {
            Some(Value::Array(a)) if a.len() <= MAX_KEYS => a
                .iter()
                .map(|k| req_hex(Some(k), "storage key", MAX_KEY))
                .collect::<Result<Vec<_>, _>>()?,
            Some(Value::Array(_)) => {
                return Err(invalid_params(format!("at most {MAX_KEYS} keys per query")));
            }
            _ => return Err(invalid_params("missing list of storage keys")),
        };
        let at = opt_hash(v.get(1))?;
        let chain = s.lock();
        let at = resolve_at(&chain, at)?;
        let block = at.unwrap_or_else(|| chain.head());
        let state = chain
            .state(at)
            .ok_or_else(|| client_error("State already discarded for the requested block"))?;
        let changes: Vec<Value> = keys
            .iter()
            .map(|k| json!([encode_hex(k), state.get(k).map(|v| encode_hex(v))]))
            .collect();
        Ok::<_, ErrorObjectOwned>(json!([{ "block": block, "changes": changes }]))
    })?;
    m.register_method("state_getKeysPaged", |p, s, _| {
        let v = params_vec(&p)?;
        let prefix = match v.first() {
            None | Some(Value::Null) => Vec::new(),
            other => req_hex(other, "key prefix", MAX_KEY)?,
        };
        let count = v
            .get(1)
            .and_then(Value::as_u64)
            .ok_or_else(|| invalid_params("missing count"))?;
        if count > MAX_KEYS as u64 {
            return Err(invalid_params(format!(
                "count exceeds maximum value. value: {count}, max: {MAX_KEYS}"
            )));
        }
        let start = match v.get(2) {
            None | Some(Value::Null) => None,
            other => Some(req_hex(other, "start key", MAX_KEY)?),
        };
        let at = opt_hash(v.get(3))?;
        let chain = s.lock();
        let at = resolve_at(&chain, at)?;
        let state = chain
            .state(at)
            .ok_or_else(|| client_error("State already discarded for the requested block"))?;
        let keys: Vec<String> = state
            .range(prefix.clone()..)
            .map(|(k, _)| k)
            .take_while(|k| k.starts_with(&prefix))
            .filter(|k| start.as_ref().is_none_or(|s| k.as_slice() > s.as_slice()))
            .take(count as usize)
            .map(|k| encode_hex(k))
            .collect();
        Ok::<_, ErrorObjectOwned>(keys)
    })?;
    Ok(())
}

/// `author_*`: transaction submission and watching.
fn register_author(m: &mut Module) -> Result<(), RegisterMethodError> {
    m.register_method("author_submitExtrinsic", |p, s, _| {
        let v = params_vec(&p)?;
        let bytes = req_hex(v.first(), "extrinsic", MAX_PAYLOAD)?;
        let hash = s.lock().submit(&bytes, None).map_err(pool_error)?;
        s.new_tx.notify_one();
        Ok::<_, ErrorObjectOwned>(hash)
    })?;
    m.register_method("author_pendingExtrinsics", |_, s, _| s.lock().pending_hex())?;
    m.register_subscription(
        "author_submitAndWatchExtrinsic",
        "author_extrinsicUpdate",
        "author_unwatchExtrinsic",
        |p, pending, s, _| async move {
            let bytes = match params_vec(&p).and_then(|v| req_hex(v.first(), "extrinsic", MAX_PAYLOAD)) {
                Ok(b) => b,
                Err(e) => {
                    pending.reject(e).await;
                    return;
                }
            };
            let (tx, mut rx) = mpsc::channel(8);
            let submitted = s.lock().submit(&bytes, Some(tx));
            if let Err(e) = submitted {
                pending.reject(pool_error(e)).await;
                return;
            }
            s.new_tx.notify_one();
            s.new_tx.notify_one();
            let Ok(sink) = pending.accept().await else { return };
            loop {
                let next = tokio::select! {
                    s = timeout(WATCH_TIMEOUT, rx.recv()) => s.ok().flatten().unwrap_or(TxStatus::Dropped),
                    _ = sink.closed() => return,
                };
                let Ok(raw) = serde_json::value::to_raw_value(&status_json(&next)) else {
                    return;
                };
                if sink.send(SubscriptionMessage::from(raw)).await.is_err() {
                    return;
                }
                if matches!(
                    next,
                    TxStatus::Finalized(_) | TxStatus::Invalid | TxStatus::Dropped
                ) {
                    return;
                }
            }
        },
    )?;
    Ok(())
}

/// `dev_*`: the devnet's own controls (produce a block now).
fn register_dev(m: &mut Module) -> Result<(), RegisterMethodError> {
    m.register_method("dev_newBlock", |_, s, _| {
        let produced = s.lock().produce_block().map_err(client_error)?;
        Ok::<_, ErrorObjectOwned>(json!({ "hash": produced.hash, "number": produced.header.number }))
    })?;
    Ok(())
}

async fn storage_subscription(pending: PendingSubscriptionSink, s: Arc<Shared>, keys: Vec<Vec<u8>>) {
    let (mut rx, mut last, head) = {
        let chain = s.lock();
        (chain.subscribe_heads(), chain.state(None), chain.head())
    };
    let Ok(sink) = pending.accept().await else { return };
    let send = |block: H256, changes: Vec<Value>| {
        let sink = &sink;
        async move {
            let msg = json!({ "block": block, "changes": changes });
            match serde_json::value::to_raw_value(&msg) {
                Ok(raw) => sink.send(SubscriptionMessage::from(raw)).await.is_ok(),
                Err(_) => false,
            }
        }
    };
    let value = |snap: &Option<super::node::Snapshot>, k: &Vec<u8>| {
        snap.as_ref().and_then(|st| st.get(k).map(|v| encode_hex(v)))
    };
    let initial = keys
        .iter()
        .map(|k| json!([encode_hex(k), value(&last, k)]))
        .collect();
    if !send(head, initial).await {
        return;
    }
    loop {
        let next = tokio::select! {
            n = rx.recv() => n,
            _ = sink.closed() => return,
        };
        let header = match next {
            Ok(h) => h,
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let hash = header.hash();
        let now = s.lock().state(Some(hash));
        let changes: Vec<Value> = keys
            .iter()
            .filter(|k| value(&now, k) != value(&last, k))
            .map(|k| json!([encode_hex(k), value(&now, k)]))
            .collect();
        last = now;
        if !changes.is_empty() && !send(hash, changes).await {
            return;
        }
    }
}

async fn heads_subscription(pending: PendingSubscriptionSink, s: Arc<Shared>) {
    let (mut rx, current) = {
        let chain = s.lock();
        (
            chain.subscribe_heads(),
            chain.block(&chain.head()).map(|b| b.header.clone()),
        )
    };
    let Ok(sink) = pending.accept().await else { return };
    let send = |h: Header| {
        let sink = &sink;
        async move {
            match serde_json::value::to_raw_value(&header_json(&h)) {
                Ok(raw) => sink.send(SubscriptionMessage::from(raw)).await.is_ok(),
                Err(_) => false,
            }
        }
    };
    if let Some(h) = current
        && !send(h).await
    {
        return;
    }
    loop {
        let next = tokio::select! {
            n = rx.recv() => n,
            _ = sink.closed() => return,
        };
        match next {
            Ok(h) => {
                if !send(h).await {
                    return;
                }
            }
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}
