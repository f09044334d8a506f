//! Devnet benchmark: blocks per second, extrinsics per second with 256-uid `set_weights`, and
//! p50 latency of a storage query and of submit-to-inclusion, all measured in one run.

use std::time::{Duration, Instant};

use parity_scale_codec::Encode;
use polkadot_sdk::sp_core::{Pair as _, sr25519};
use polkadot_sdk::sp_runtime::MultiAddress;
use serde_json::Value;
use subxt::rpcs::{RpcClient, rpc_params};

use super::runtime::{Runtime, RuntimeCall};
use super::signer::{dev_pair, sign};
use super::{Devnet, DevnetConfig, admin, subtensor};

/// Figures from one benchmark run.
#[derive(Debug, Clone)]
pub struct BenchReport {
    /// Empty blocks produced per second.
    pub empty_blocks_per_s: f64,
    /// Setup extrinsics (transfers, registrations, stakes) validated and included per second.
    pub setup_extrinsics_per_s: f64,
    /// Number of setup extrinsics.
    pub setup_extrinsics: usize,
    /// 256-uid `set_weights` extrinsics validated and included per second.
    pub set_weights_per_s: f64,
    /// Number of `set_weights` extrinsics measured.
    pub set_weights: usize,
    /// Blocks per second while each block carries `validators` 256-uid `set_weights`.
    pub weight_blocks_per_s: f64,
    /// Validators setting weights in each block.
    pub validators: usize,
    /// p50 of `state_getStorage` over WebSocket (one `Weights` row of 256 entries).
    pub storage_query_p50: Duration,
    /// p99 of the same.
    pub storage_query_p99: Duration,
    /// p50 from `author_submitAndWatchExtrinsic` to the `inBlock` notification (instant seal).
    pub submit_to_inclusion_p50: Duration,
    /// p99 of the same.
    pub submit_to_inclusion_p99: Duration,
}

fn percentile(mut v: Vec<Duration>, p: f64) -> Duration {
    v.sort_unstable();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v.get(i).copied().unwrap_or_default()
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

async fn drain(devnet: &Devnet) -> Result<usize, String> {
    let mut blocks = 0;
    while devnet.pool_len() > 0 {
        let p = devnet.produce_block().await.map_err(err)?;
        blocks += 1;
        if p.included == 0 {
            return Err(format!("{} transactions stuck in the pool", devnet.pool_len()));
        }
    }
    Ok(blocks)
}

/// Run the benchmark with `validators` validators (at most 128) on a 256-uid subnet.
pub async fn run(validators: usize, rounds: usize) -> Result<BenchReport, String> {
    let validators = validators.clamp(1, 128);
    let devnet = Devnet::spawn(DevnetConfig {
        block_time: None,
        dev_subnet: true,
        tempo: 10,
        ..DevnetConfig::default()
    })
    .await
    .map_err(err)?;
    let genesis = devnet.genesis_hash();

    // 1. Empty blocks.
    let n = 200u32;
    let t = Instant::now();
    for _ in 0..n {
        devnet.produce_block().await.map_err(err)?;
    }
    let empty_blocks_per_s = f64::from(n) / t.elapsed().as_secs_f64();

    // 2. Setup: Alice funds the validators, registers 255 hotkeys (uid 0 is hers), stakes.
    let alice = dev_pair("//Alice");
    let hotkeys: Vec<sr25519::Pair> = (1..256).map(|i| dev_pair(&format!("//bench/{i}"))).collect();
    let mut nonce = 0u32;
    let mut setup = Vec::new();
    let mut push = |call: RuntimeCall| {
        setup.push(sign(call, &alice, nonce, genesis).encode());
        nonce += 1;
    };
    push(RuntimeCall::AdminUtils(
        admin::Call::sudo_set_weights_set_rate_limit {
            netuid: 1,
            weights_set_rate_limit: 0,
        },
    ));
    for hk in &hotkeys[..validators] {
        push(RuntimeCall::Balances(
            polkadot_sdk::pallet_balances::Call::transfer_keep_alive {
                dest: MultiAddress::Id(hk.public().into()),
                value: 1_000_000_000_000,
            },
        ));
    }
    for hk in &hotkeys {
        push(RuntimeCall::SubtensorModule(subtensor::Call::burned_register {
            netuid: 1,
            hotkey: hk.public().into(),
        }));
    }
    for hk in &hotkeys[..validators] {
        push(RuntimeCall::SubtensorModule(subtensor::Call::add_stake {
            hotkey: hk.public().into(),
            netuid: 1,
            amount_staked: 100_000_000_000,
        }));
    }
    let setup_extrinsics = setup.len();
    let t = Instant::now();
    for xt in &setup {
        devnet.submit_extrinsic(xt).map_err(err)?;
    }
    drain(&devnet).await?;
    let setup_extrinsics_per_s = setup_extrinsics as f64 / t.elapsed().as_secs_f64();
    if devnet.with_state(|| subtensor::SubnetworkN::<Runtime>::get(1)) != 256 {
        return Err("setup did not register 256 uids".into());
    }

    // Permits come with the next epoch.
    let epoch = devnet.with_state(|| subtensor::SubnetEpochIndex::<Runtime>::get(1));
    while devnet.with_state(|| subtensor::SubnetEpochIndex::<Runtime>::get(1)) == epoch {
        devnet.produce_block().await.map_err(err)?;
    }

    // 3. 256-uid set_weights from every validator, `rounds` times.
    let dests: Vec<u16> = (0..256).collect();
    let mut total = Duration::ZERO;
    let mut blocks = 0;
    let mut count = 0;
    for round in 0..rounds {
        let batch: Vec<Vec<u8>> = hotkeys[..validators]
            .iter()
            .enumerate()
            .map(|(v, hk)| {
                let weights: Vec<u16> = dests
                    .iter()
                    .map(|d| 1 + ((*d as usize * 7919 + v * 31 + round) % 65_000) as u16)
                    .collect();
                let call = RuntimeCall::SubtensorModule(subtensor::Call::set_weights {
                    netuid: 1,
                    dests: dests.clone(),
                    weights,
                    version_key: 0,
                });
                sign(call, hk, round as u32, genesis).encode()
            })
            .collect();
        let t = Instant::now();
        for xt in &batch {
            devnet.submit_extrinsic(xt).map_err(err)?;
        }
        blocks += drain(&devnet).await?;
        total += t.elapsed();
        count += batch.len();
    }
    let set_weights_per_s = count as f64 / total.as_secs_f64();
    let weight_blocks_per_s = blocks as f64 / total.as_secs_f64();
    let stored = devnet.with_state(|| subtensor::Weights::<Runtime>::get(1, 1).len());
    if stored != 256 {
        return Err(format!("validator 1 stored {stored} weights, expected 256"));
    }

    // 4. Storage query latency over WebSocket.
    let rpc = RpcClient::from_insecure_url(devnet.ws_url()).await.map_err(err)?;
    let key = {
        let key = subtensor::Weights::<Runtime>::hashed_key_for(1u16, 1u16);
        format!("0x{}", hex::encode(key))
    };
    let mut lat = Vec::new();
    for _ in 0..1000 {
        let t = Instant::now();
        let v: Value = rpc
            .request("state_getStorage", rpc_params![key.clone()])
            .await
            .map_err(err)?;
        lat.push(t.elapsed());
        if v.is_null() {
            return Err("Weights row missing".into());
        }
    }
    let storage_query_p50 = percentile(lat.clone(), 0.5);
    let storage_query_p99 = percentile(lat, 0.99);
    devnet.shutdown().await;

    // 5. Submit-to-inclusion with instant seal: pre-signed transfers from Bob.
    let devnet = Devnet::spawn(DevnetConfig {
        block_time: None,
        instant_seal: true,
        ..DevnetConfig::default()
    })
    .await
    .map_err(err)?;
    let genesis = devnet.genesis_hash();
    let bob = dev_pair("//Bob");
    let rpc = RpcClient::from_insecure_url(devnet.ws_url()).await.map_err(err)?;
    let mut lat = Vec::new();
    for nonce in 0..200u32 {
        let call = RuntimeCall::Balances(polkadot_sdk::pallet_balances::Call::transfer_keep_alive {
            dest: MultiAddress::Id(dev_pair("//Charlie").public().into()),
            value: 1_000_000_000,
        });
        let hex_xt = format!("0x{}", hex::encode(sign(call, &bob, nonce, genesis).encode()));
        let t = Instant::now();
        let mut sub = rpc
            .subscribe::<Value>(
                "author_submitAndWatchExtrinsic",
                rpc_params![hex_xt],
                "author_unwatchExtrinsic",
            )
            .await
            .map_err(err)?;
        loop {
            match tokio::time::timeout(Duration::from_secs(10), sub.next()).await {
                Ok(Some(Ok(v))) if v.get("inBlock").is_some() => break,
                Ok(Some(Ok(_))) => continue,
                other => return Err(format!("watch ended early: {other:?}")),
            }
        }
        lat.push(t.elapsed());
    }
    devnet.shutdown().await;
    Ok(BenchReport {
        empty_blocks_per_s,
        setup_extrinsics_per_s,
        setup_extrinsics,
        set_weights_per_s,
        set_weights: count,
        weight_blocks_per_s,
        validators,
        storage_query_p50,
        storage_query_p99,
        submit_to_inclusion_p50: percentile(lat.clone(), 0.5),
        submit_to_inclusion_p99: percentile(lat, 0.99),
    })
}
