//! Shared test fixtures: real miner servers on loopback, and two hostile servers.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chain::auth::{Receipt, RequestSigner};
use chain::keys::{AccountId, Keypair};
use exchange::{Client, MinerEndpoint};
use miner::behavior::Behavior;
use miner::validators::ValidatorSet;
use miner::{MinerConfig, MinerServer};
use scoring::policy::Policy;
use validator::dashboard::Dashboard;
use validator::ledger::Ledger;
use validator::metrics::Metrics;
use validator::network::StaticNetwork;
use validator::round::{RoundConfig, Validator};

/// The validator's test hotkey.
pub(crate) fn validator_key() -> Keypair {
    Keypair::from_uri("//Alice").unwrap()
}

/// Starts a real miner server on loopback with `behavior`, allowing the test validator.
pub(crate) async fn start_miner(seed: &str, behavior: Behavior) -> MinerServer {
    let key = Keypair::from_uri(&format!("//{seed}")).unwrap();
    let mut config = MinerConfig::new(key, ValidatorSet::allow_list([validator_key().account()]));
    config.behavior = behavior;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    MinerServer::start(config, listener).await.unwrap()
}

/// Starts an honest miner server on loopback serving `devices` (flex: one CPU worker each), allowing
/// the test validator.
pub(crate) async fn start_miner_devices(seed: &str, devices: Vec<usize>) -> MinerServer {
    let key = Keypair::from_uri(&format!("//{seed}")).unwrap();
    let mut config = MinerConfig::new(key, ValidatorSet::allow_list([validator_key().account()]));
    config.devices = devices;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    MinerServer::start(config, listener).await.unwrap()
}

/// Occupies the worker of the miner's device at `slot` (its position in `/info` `devices`) until the
/// returned sender is sent to or dropped; returns once the worker runs the blocking job.
pub(crate) async fn hold_device(server: &MinerServer, slot: usize) -> std::sync::mpsc::Sender<()> {
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let (entered_tx, entered_rx) = std::sync::mpsc::channel::<()>();
    let _held = server.queues()[slot]
        .submit(u64::MAX, move |_| {
            let _ = entered_tx.send(());
            let _ = release_rx.recv_timeout(Duration::from_secs(60));
        })
        .unwrap();
    tokio::task::spawn_blocking(move || entered_rx.recv())
        .await
        .unwrap()
        .expect("the device's worker runs the holding job");
    release_tx
}

/// The endpoint of a running miner.
pub(crate) fn endpoint(uid: u16, server: &MinerServer) -> MinerEndpoint {
    MinerEndpoint {
        uid,
        hotkey: server.hotkey(),
        addr: server.local_addr(),
    }
}

/// Small, quick rounds.
pub(crate) fn quick_config() -> RoundConfig {
    RoundConfig {
        matmul_sizes: vec![64, 96],
        challenge_timeout_secs: 20.0,
        open_timeout_secs: 10.0,
        interval_secs: 0.0,
        // Matmul only: these rounds check matmul verdicts; `tests/inference_rounds.rs` mixes in inference.
        inference: validator::round::InferenceRoundConfig {
            enabled: false,
            ..Default::default()
        },
        ..RoundConfig::default()
    }
}

/// A validator over a static network of `miners`, with its state in `dir`.
pub(crate) fn validator(
    dir: &std::path::Path,
    miners: Vec<MinerEndpoint>,
    config: RoundConfig,
) -> Validator<StaticNetwork> {
    let key = validator_key();
    let ledger = Ledger::open(dir, Policy::default(), &key.ss58(), 1).unwrap();
    let client = Client::pooled(Arc::new(RequestSigner::new(key)), 2).unwrap();
    Validator::new(
        Arc::new(StaticNetwork::new(miners, Duration::from_millis(100))),
        client,
        ledger,
        [42; 32],
        config,
        Metrics::new(),
        Dashboard::new(),
    )
}

/// How a hostile server answers challenges (pings are answered correctly, with a receipt).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Hostile {
    /// Never answers.
    Hang,
    /// Streams `n` bytes of garbage without a Content-Length.
    Flood(usize),
}

struct Flood {
    left: usize,
}

impl http_body::Body for Flood {
    type Data = Bytes;
    type Error = std::convert::Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let n = self.left.min(1 << 20);
        self.left -= n;
        Poll::Ready(Some(Ok(http_body::Frame::data(Bytes::from(vec![b'#'; n])))))
    }
}

/// Starts a hostile server with hotkey `//seed`; returns its endpoint.
pub(crate) async fn start_hostile(uid: u16, seed: &str, how: Hostile) -> MinerEndpoint {
    let key = Arc::new(Keypair::from_uri(&format!("//{seed}")).unwrap());
    let account = key.account();
    let ping_key = key.clone();
    let app = Router::new()
        .route(
            "/v1/ping",
            post(move |headers: HeaderMap, body: Bytes| {
                let key = ping_key.clone();
                async move { with_receipt(&key, &headers, body.to_vec()) }
            }),
        )
        .route(
            "/v1/challenge",
            post(move || async move {
                match how {
                    Hostile::Hang => {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        StatusCode::OK.into_response()
                    }
                    Hostile::Flood(n) => Response::new(Body::new(Flood { left: n })),
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    MinerEndpoint {
        uid,
        hotkey: account,
        addr,
    }
}

fn with_receipt(key: &Keypair, headers: &HeaderMap, body: Vec<u8>) -> Response {
    let requester = headers
        .get("x-bittensor-hotkey")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| AccountId::from_ss58(s).ok());
    let nonce = headers
        .get("x-bittensor-nonce")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("0")
        .to_owned();
    let Some(requester) = requester else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let receipt = Receipt::sign_for(key, &requester, &nonce, 200, &body);
    let mut resp = Response::new(Body::from(body));
    receipt.write_headers(resp.headers_mut());
    resp
}
