//! A real miner server on a loopback port, driven over HTTP: the auth matrix, bad bodies, the queue
//! under a flood, the state memory cap, and honest rounds verified with bench-tasks' verifier.

use std::sync::mpsc;
use std::time::Duration;

use bench_tasks::matmul::{MatmulChallenge, MatmulLimits, RoundParams, RoundSetup};
use bench_tasks::wire::{
    CHALLENGE_PATH, ChallengeRequest, ErrorBody, HEALTH_PATH, OpenRequest, PING_PATH, TaskAnswer,
    TaskChallenge, TaskOpenRequest, TaskOpenings,
};
use chain::auth::{btauth, unix_nanos};
use chain::keys::{AccountId, Keypair};
use miner::validators::{ValidatorEntry, ValidatorSet};
use miner::{Limits, MinerClient, MinerConfig, MinerServer};

const FLOOR_RAO: u64 = 1_000;

struct Fixture {
    server: MinerServer,
    miner: Keypair,
    url: String,
    http: reqwest::Client,
}

fn key(uri: &str) -> Keypair {
    Keypair::from_uri(uri).expect("dev uri")
}

/// Alice: permitted validator with stake; Bob: no permit; Charlie: stake below the floor.
async fn start(limits: Limits) -> Fixture {
    start_with(limits, chain::auth::VerifierConfig::default()).await
}

/// [`start`] with request-verification settings.
async fn start_with(limits: Limits, verifier: chain::auth::VerifierConfig) -> Fixture {
    let validators = ValidatorSet::metagraph(FLOOR_RAO);
    validators.replace([
        (
            key("//Alice").account(),
            ValidatorEntry {
                stake_rao: 5_000,
                permit: true,
            },
        ),
        (
            key("//Bob").account(),
            ValidatorEntry {
                stake_rao: 5_000,
                permit: false,
            },
        ),
        (
            key("//Charlie").account(),
            ValidatorEntry {
                stake_rao: FLOOR_RAO - 1,
                permit: true,
            },
        ),
        (
            key("//Ferdie").account(),
            ValidatorEntry {
                stake_rao: 9_000,
                permit: true,
            },
        ),
    ]);
    let miner = key("//Miner");
    let mut config = MinerConfig::new(miner.clone(), validators);
    config.limits = limits;
    config.verifier = verifier;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let server = MinerServer::start(config, listener).await.expect("server starts");
    let url = format!("http://{}", server.local_addr());
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client");
    Fixture {
        server,
        miner,
        url,
        http,
    }
}

fn test_limits() -> Limits {
    Limits {
        concurrency_per_validator: 64,
        max_ping_bytes: 4096,
        max_body_bytes: 64 << 10,
        ..Limits::default()
    }
}

impl Fixture {
    fn client(&self, uri: &str) -> MinerClient {
        MinerClient::new(&self.url, self.miner.account(), key(uri), false).expect("client")
    }

    /// Sends `body` to `path` with the given headers and returns status and error body (if any).
    async fn send(
        &self,
        path: &str,
        headers: http::HeaderMap,
        body: Vec<u8>,
    ) -> (u16, Option<ErrorBody>, http::HeaderMap) {
        let response = self
            .http
            .post(format!("{}{path}", self.url))
            .headers(headers)
            .body(body)
            .send()
            .await
            .expect("loopback request");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("body");
        (status, serde_json::from_slice(&bytes).ok(), headers)
    }

    fn signed(
        &self,
        signer: &str,
        path: &str,
        body: &[u8],
        nonce: u64,
        receiver: Option<&AccountId>,
    ) -> http::HeaderMap {
        btauth::sign(&key(signer), "POST", path, body, nonce, receiver).headers
    }
}

fn reason(body: &Option<ErrorBody>) -> &str {
    body.as_ref().map_or("<no error body>", |b| b.reason.as_str())
}

#[tokio::test]
async fn auth_matrix_answers_each_case_with_its_status() {
    let f = start(test_limits()).await;
    let me = f.miner.account();
    let body = b"ping".to_vec();
    let now = unix_nanos();
    let cases: Vec<(&str, http::HeaderMap, Vec<u8>, u16, &str)> = vec![
        ("unsigned", http::HeaderMap::new(), body.clone(), 401, "unsigned"),
        (
            "bad signature",
            f.signed("//Alice", PING_PATH, b"other bytes", now, Some(&me)),
            body.clone(),
            401,
            "bad_signature",
        ),
        (
            "stale",
            f.signed("//Alice", PING_PATH, &body, now - 60_000_000_000, Some(&me)),
            body.clone(),
            401,
            "stale",
        ),
        (
            "future",
            f.signed("//Alice", PING_PATH, &body, now + 60_000_000_000, Some(&me)),
            body.clone(),
            401,
            "future",
        ),
        (
            "wrong receiver",
            f.signed(
                "//Alice",
                PING_PATH,
                &body,
                now + 1,
                Some(&key("//Eve").account()),
            ),
            body.clone(),
            403,
            "wrong_receiver",
        ),
        (
            "unknown hotkey",
            f.signed("//Dave", PING_PATH, &body, now + 2, Some(&me)),
            body.clone(),
            403,
            "unknown_hotkey",
        ),
        (
            "no permit",
            f.signed("//Bob", PING_PATH, &body, now + 3, Some(&me)),
            body.clone(),
            403,
            "no_permit",
        ),
        (
            "low stake",
            f.signed("//Charlie", PING_PATH, &body, now + 4, Some(&me)),
            body.clone(),
            403,
            "low_stake",
        ),
    ];
    for (name, headers, body, status, code) in cases {
        let (got, error, _) = f.send(PING_PATH, headers, body).await;
        assert_eq!((got, reason(&error)), (status, code), "case {name}");
    }

    // Accepted once, then the very same signed request is a replay.
    let headers = f.signed("//Alice", PING_PATH, &body, unix_nanos(), Some(&me));
    let (first, _, receipt) = f.send(PING_PATH, headers.clone(), body.clone()).await;
    assert_eq!(first, 200);
    assert!(
        receipt.contains_key(chain::auth::receipt::H_SIGNATURE),
        "answers carry a receipt"
    );
    let (again, error, _) = f.send(PING_PATH, headers, body).await;
    assert_eq!((again, reason(&error)), (401, "replayed"));

    // A request with a bad signature must not poison the replay cache for the genuine nonce.
    let nonce = unix_nanos() + 10;
    let forged = f.signed("//Alice", PING_PATH, b"forged", nonce, Some(&me));
    assert_eq!(f.send(PING_PATH, forged, b"ping".to_vec()).await.0, 401);
    let genuine = f.signed("//Alice", PING_PATH, b"ping", nonce, Some(&me));
    assert_eq!(f.send(PING_PATH, genuine, b"ping".to_vec()).await.0, 200);

    let metrics = f
        .http
        .get(format!("{}/metrics", f.url))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(metrics.contains("outcome=\"bad_signature\""), "{metrics}");
    f.server.shutdown().await;
}

/// Validly signed requests from keys that are not validators are refused before the replay cache is
/// written: however many there are, the permitted validator is not locked out with 503 `auth_busy`.
#[tokio::test]
async fn unknown_senders_cannot_fill_the_replay_cache() {
    let f = start_with(
        test_limits(),
        chain::auth::VerifierConfig {
            replay_capacity: 4,
            ..chain::auth::VerifierConfig::default()
        },
    )
    .await;
    let me = f.miner.account();
    let body = b"ping".to_vec();
    for i in 0..12u64 {
        let signer = if i % 2 == 0 { "//Dave" } else { "//Bob" };
        let headers = f.signed(signer, PING_PATH, &body, unix_nanos() + i, Some(&me));
        let (status, error, _) = f.send(PING_PATH, headers, body.clone()).await;
        assert_eq!(status, 403, "{signer} request {i}: {}", reason(&error));
    }
    let alice = f.client("//Alice");
    for i in 0..4 {
        alice
            .ping(body.clone())
            .await
            .unwrap_or_else(|e| panic!("validator ping {i} after the flood: {e}"));
    }
    f.server.shutdown().await;
}

/// A captured request with its nonce re-spelled with a leading zero is refused, not served again.
#[tokio::test]
async fn a_re_spelled_nonce_is_not_a_second_request() {
    let f = start(test_limits()).await;
    let body = b"ping".to_vec();
    let nonce = unix_nanos();
    let headers = f.signed("//Alice", PING_PATH, &body, nonce, Some(&f.miner.account()));
    assert_eq!(f.send(PING_PATH, headers.clone(), body.clone()).await.0, 200);
    let mut respelled = headers;
    respelled.insert(
        btauth::H_NONCE,
        http::HeaderValue::from_str(&format!("0{nonce}")).unwrap(),
    );
    let (status, error, _) = f.send(PING_PATH, respelled, body).await;
    assert_eq!((status, reason(&error)), (401, "malformed_auth"));
    f.server.shutdown().await;
}

/// Whether the server closes `stream` within `within` (reading whatever it sends first, e.g. a 408).
async fn closed_within(stream: &mut tokio::net::TcpStream, within: Duration) -> bool {
    use tokio::io::AsyncReadExt as _;
    let deadline = tokio::time::Instant::now() + within;
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

/// A raw TCP connection to `addr` from the loopback address `from`.
async fn connect_from(from: [u8; 4], addr: std::net::SocketAddr) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind((std::net::Ipv4Addr::from(from), 0).into()).unwrap();
    socket.connect(addr).await.unwrap()
}

/// `GET /health` over a raw connection: the status code.
async fn raw_health(stream: &mut tokio::net::TcpStream) -> Option<u16> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: m\r\n\r\n")
        .await
        .ok()?;
    let mut buf = [0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .ok()?
        .ok()?;
    std::str::from_utf8(&buf[..n]).ok()?.get(9..12)?.parse().ok()
}

/// Slow-header and idle connections are closed; without it anyone could hold the miner's descriptors.
#[tokio::test]
async fn slow_header_and_idle_connections_are_closed() {
    let f = start(Limits {
        header_read_timeout_secs: 1,
        idle_timeout_secs: 1,
        ..test_limits()
    })
    .await;
    let addr = f.server.local_addr();
    let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
    {
        use tokio::io::AsyncWriteExt as _;
        slow.write_all(b"GET /health HTTP/1.1\r\nHost: m\r\n")
            .await
            .unwrap();
    }
    let mut idle = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut used = tokio::net::TcpStream::connect(addr).await.unwrap();
    assert_eq!(raw_health(&mut used).await, Some(200));
    assert!(
        closed_within(&mut slow, Duration::from_secs(5)).await,
        "slow headers kept open"
    );
    assert!(
        closed_within(&mut idle, Duration::from_secs(5)).await,
        "idle connection kept open"
    );
    assert!(
        closed_within(&mut used, Duration::from_secs(5)).await,
        "idle keep-alive kept open"
    );
    f.server.shutdown().await;
}

/// At the connection cap, new connections land on the health reserve (public routes only, signed
/// routes 503 `connections_full`); beyond it they are closed at once; one address cannot take more
/// than its share.
#[tokio::test]
async fn connection_caps_keep_health_reachable() {
    let f = start(Limits {
        max_connections: 4,
        health_connections: 2,
        max_connections_per_ip: 3,
        ..test_limits()
    })
    .await;
    let addr = f.server.local_addr();
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect_from([127, 0, 0, 1], addr).await);
    }
    // The fourth from the same address is over its per-IP share.
    let mut extra = connect_from([127, 0, 0, 1], addr).await;
    assert!(
        closed_within(&mut extra, Duration::from_secs(3)).await,
        "per-IP cap not applied"
    );
    // Another address takes the last full slot, then the two reserve slots.
    let mut full = connect_from([127, 0, 0, 2], addr).await;
    assert_eq!(raw_health(&mut full).await, Some(200));
    let mut reserve = connect_from([127, 0, 0, 2], addr).await;
    assert_eq!(raw_health(&mut reserve).await, Some(200), "health on the reserve");
    // A signed route on a reserve connection is refused.
    let body = b"ping".to_vec();
    let headers = f.signed(
        "//Alice",
        PING_PATH,
        &body,
        unix_nanos(),
        Some(&f.miner.account()),
    );
    let mut request = format!(
        "POST {PING_PATH} HTTP/1.1\r\nHost: m\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in &headers {
        request.push_str(&format!("{k}: {}\r\n", v.to_str().unwrap()));
    }
    request.push_str("\r\n");
    let mut signed = connect_from([127, 0, 0, 3], addr).await;
    {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        signed.write_all(request.as_bytes()).await.unwrap();
        signed.write_all(&body).await.unwrap();
        let mut buf = vec![0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(5), signed.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        let text = String::from_utf8_lossy(&buf[..n]);
        assert!(
            text.starts_with("HTTP/1.1 503") && text.contains("connections_full"),
            "{text}"
        );
    }
    // Cap and reserve are full now (3 + 1 full, 2 reserve... the signed one was closed after its 503).
    let _more = connect_from([127, 0, 0, 4], addr).await;
    let mut over = connect_from([127, 0, 0, 5], addr).await;
    assert!(
        closed_within(&mut over, Duration::from_secs(3)).await,
        "connection beyond cap and reserve kept"
    );
    // Closing connections frees their slots.
    drop(held);
    drop(full);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut again = connect_from([127, 0, 0, 1], addr).await;
    assert_eq!(raw_health(&mut again).await, Some(200));
    drop(reserve);
    f.server.shutdown().await;
}

#[tokio::test]
async fn oversized_and_malformed_bodies_are_refused() {
    let f = start(test_limits()).await;
    let me = f.miner.account();
    let big = vec![b'x'; 8 << 10];
    let headers = f.signed("//Alice", PING_PATH, &big, unix_nanos(), Some(&me));
    let (status, error, _) = f.send(PING_PATH, headers, big).await;
    assert_eq!((status, reason(&error)), (413, "body_too_large"));

    let huge = vec![b'{'; 128 << 10];
    let headers = f.signed("//Alice", CHALLENGE_PATH, &huge, unix_nanos(), Some(&me));
    let (status, error, _) = f.send(CHALLENGE_PATH, headers, huge).await;
    assert_eq!((status, reason(&error)), (413, "body_too_large"));

    let garbage = b"{\"id\": \"x\", \"challenge\": 12".to_vec();
    let headers = f.signed("//Alice", CHALLENGE_PATH, &garbage, unix_nanos(), Some(&me));
    let (status, error, receipt) = f.send(CHALLENGE_PATH, headers, garbage).await;
    assert_eq!((status, reason(&error)), (400, "malformed_json"));
    assert!(
        receipt.contains_key(chain::auth::receipt::H_SIGNATURE),
        "authenticated refusals carry a receipt"
    );
    f.server.shutdown().await;
}

fn matmul_request(id: &str, n: u32) -> (RoundSetup, MatmulChallenge, ChallengeRequest) {
    let limits = MatmulLimits::default();
    let setup = RoundSetup::new(RoundParams::new(n, 11), [7; 32], &limits).expect("valid round");
    let challenge = setup.challenge(0xabcd);
    let request = ChallengeRequest {
        id: id.to_owned(),
        challenge: TaskChallenge::Matmul(challenge),
    };
    (setup, challenge, request)
}

#[tokio::test]
async fn honest_round_verifies_and_state_opens_once_for_its_owner() {
    let f = start(test_limits()).await;
    let alice = f.client("//Alice");
    let (setup, challenge, request) = matmul_request("round-1", 70);
    let answer = alice.challenge(&request).await.expect("round 1");
    assert_eq!(answer.body.id, "round-1");
    let TaskAnswer::Matmul(sketch) = answer.body.answer else {
        panic!("a matmul challenge got another task's answer")
    };

    let rows = setup.choose_openings(challenge.miner_seed);
    let open = OpenRequest {
        id: "round-1".into(),
        open: TaskOpenRequest::Matmul(rows.clone()),
    };
    // Another validator cannot open Alice's challenge.
    let err = f.client("//Ferdie").open(&open).await.unwrap_err();
    assert_eq!(
        (err.status(), err.reason()),
        (Some(404), Some("unknown_challenge"))
    );

    let openings = alice.open(&open).await.expect("round 2");
    let TaskOpenings::Matmul(openings) = openings.body.openings;
    let verdict = setup.verify(&challenge, &sketch, &rows, &openings);
    assert!(verdict.passed, "{verdict:?}");

    let err = alice.open(&open).await.unwrap_err();
    assert_eq!(err.reason(), Some("unknown_challenge"), "state opens once");

    // The same round over HTTP/2 (h2c).
    let h2 = MinerClient::new(&f.url, f.miner.account(), key("//Alice"), true).expect("client");
    let (setup, challenge, request) = matmul_request("round-h2", 33);
    let TaskAnswer::Matmul(sketch) = h2.challenge(&request).await.expect("h2 round 1").body.answer else {
        panic!("a matmul challenge got another task's answer")
    };
    let rows = setup.choose_openings(challenge.miner_seed);
    let open = OpenRequest {
        id: "round-h2".into(),
        open: TaskOpenRequest::Matmul(rows.clone()),
    };
    let TaskOpenings::Matmul(openings) = h2.open(&open).await.expect("h2 round 2").body.openings;
    assert!(setup.verify(&challenge, &sketch, &rows, &openings).passed);
    f.server.shutdown().await;
}

#[tokio::test]
async fn challenge_beyond_the_memory_cap_is_refused_before_any_work() {
    // 64 KiB of state: n = 128 needs exactly that, n = 129 more.
    let limits = Limits {
        state_memory_cap_bytes: 128 * 128 * 4,
        ..test_limits()
    };
    let f = start(limits).await;
    let alice = f.client("//Alice");
    let (_, _, request) = matmul_request("too-big", 129);
    let err = alice.challenge(&request).await.unwrap_err();
    assert_eq!(
        (err.status(), err.reason()),
        (Some(422), Some("challenge_too_large"))
    );
    let oversized = MatmulChallenge {
        n: MatmulLimits::default().max_n + 1,
        m: 8,
        p: 251,
        round_seed: 1,
        miner_seed: 2,
        dtype: bench_tasks::matmul::MatmulDtype::F32,
        batch: 1,
    };
    let request = ChallengeRequest {
        id: "too-big-n".into(),
        challenge: TaskChallenge::Matmul(oversized),
    };
    let err = alice.challenge(&request).await.unwrap_err();
    assert_eq!(err.reason(), Some("challenge_too_large"));
    // A batch above the miner's max_batch is refused the same way, before any work.
    let request = ChallengeRequest {
        id: "too-big-batch".into(),
        challenge: TaskChallenge::Matmul(MatmulChallenge {
            n: 64,
            batch: MatmulLimits::default().max_batch + 1,
            ..oversized
        }),
    };
    let err = alice.challenge(&request).await.unwrap_err();
    assert_eq!(err.reason(), Some("challenge_too_large"));
    assert_eq!(
        f.server.metrics().device_busy_seconds.get(),
        0.0,
        "the device never ran"
    );
    assert_eq!(f.server.metrics().state_bytes.get(), 0, "nothing was reserved");

    let (_, _, request) = matmul_request("fits", 128);
    alice
        .challenge(&request)
        .await
        .expect("a challenge at the cap is served");
    assert_eq!(f.server.metrics().state_bytes.get(), 128 * 128 * 4);
    // The cap is now held: the next one waits for an opening or the TTL.
    let (_, _, request) = matmul_request("second", 128);
    let err = alice.challenge(&request).await.unwrap_err();
    assert_eq!((err.status(), err.reason()), (Some(503), Some("state_full")));
    f.server.shutdown().await;
}

#[tokio::test]
async fn flood_beyond_the_queue_gets_429_while_health_answers() {
    let limits = Limits {
        queue_capacity: 2,
        ..test_limits()
    };
    let f = start(limits).await;
    // Hold the device: a job that runs until the test releases it (the fault injected on purpose).
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let (entered_tx, entered_rx) = mpsc::channel::<()>();
    let held = f
        .server
        .queue()
        .submit(u64::MAX, move |_| {
            entered_tx.send(()).expect("test alive");
            release_rx.recv().expect("released");
        })
        .expect("queue accepts");
    tokio::task::spawn_blocking(move || entered_rx.recv())
        .await
        .expect("join")
        .expect("device held");

    let mut waiting = Vec::new();
    for i in 0..2 {
        let client = f.client("//Alice");
        waiting.push(tokio::spawn(async move {
            let (_, _, request) = matmul_request(&format!("queued-{i}"), 16);
            client.challenge(&request).await
        }));
    }
    for _ in 0..500 {
        if f.server.queue().depth() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(f.server.queue().depth(), 2, "two challenges wait for the device");

    let alice = f.client("//Alice");
    for i in 0..6 {
        let (_, _, request) = matmul_request(&format!("flood-{i}"), 16);
        let err = alice.challenge(&request).await.unwrap_err();
        assert_eq!(
            (err.status(), err.reason()),
            (Some(429), Some("queue_full")),
            "flood request {i}"
        );
    }
    let (status, headers) = {
        let r = f
            .http
            .get(format!("{}{HEALTH_PATH}", f.url))
            .send()
            .await
            .expect("health");
        (r.status().as_u16(), r.headers().clone())
    };
    assert_eq!(status, 200, "health answers while the device is busy");
    assert!(!headers.contains_key(http::header::RETRY_AFTER));

    // Retry-After is set on the raw answer.
    let (_, _, request) = matmul_request("flood-raw", 16);
    let raw = serde_json::to_vec(&request).expect("json");
    let signed = f.signed(
        "//Alice",
        CHALLENGE_PATH,
        &raw,
        unix_nanos(),
        Some(&f.miner.account()),
    );
    let (status, _, headers) = f.send(CHALLENGE_PATH, signed, raw).await;
    assert_eq!(status, 429);
    assert!(headers.contains_key(http::header::RETRY_AFTER));

    release_tx.send(()).expect("worker alive");
    held.await.expect("held job finished");
    for task in waiting {
        task.await
            .expect("join")
            .expect("queued challenge answered once the device is free");
    }
    f.server.shutdown().await;
}

/// `GET /info` on the CPU backend reports the host memory the miner may use (Linux: `MemTotal`, capped
/// by the cgroup limit), the same figure [`miner::device_memory::host_memory_bytes`] reads.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn info_reports_host_memory_for_the_cpu_backend() {
    let f = start(test_limits()).await;
    let info = f.client("//Alice").info().await.expect("info");
    assert_eq!(info.backend, "flex");
    let reported = info
        .device_memory_bytes
        .expect("the CPU backend's memory is known on Linux");
    assert_eq!(Some(reported), miner::device_memory::host_memory_bytes());
    let meminfo = std::fs::read_to_string("/proc/meminfo").expect("/proc/meminfo");
    let total = miner::device_memory::parse_meminfo_total(&meminfo).expect("MemTotal");
    assert!(reported <= total, "{reported} > MemTotal {total}");
    f.server.shutdown().await;
}

/// `GET /info` of a miner on `backend`, started with Alice allowed.
#[cfg(any(feature = "wgpu", feature = "vulkan"))]
async fn info_on(backend: bench_tasks::backend::BackendKind) -> bench_tasks::wire::MinerInfo {
    let validators = ValidatorSet::allow_list([key("//Alice").account()]);
    let miner = key("//Miner");
    let mut config = MinerConfig::new(miner.clone(), validators);
    config.backend = backend;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let server = MinerServer::start(config, listener)
        .await
        .expect("a GPU-backend miner starts");
    let client = MinerClient::new(
        &format!("http://{}", server.local_addr()),
        miner.account(),
        key("//Alice"),
        false,
    )
    .expect("client");
    let info = client.info().await.expect("info");
    server.shutdown().await;
    info
}

/// `vulkan` (wgpu on SPIR-V): `/info` reports the largest device-local heap cubecl reads from the
/// driver (on Mesa's lavapipe, host memory).
#[cfg(feature = "vulkan")]
#[tokio::test]
async fn info_reports_the_vulkan_heap_size() {
    let info = info_on(bench_tasks::backend::BackendKind::Vulkan).await;
    assert_eq!(info.backend, "vulkan");
    let memory = info
        .device_memory_bytes
        .expect("the Vulkan adapter states its heap size");
    assert!(memory >= 64 << 20, "{memory} bytes is no GPU heap");
}

/// `wgpu` (WGSL): cubecl states no capacity on this path, so `/info` leaves the figure out rather than
/// guess (docs/miner.md says so; if cubecl starts reporting one, this test tells).
#[cfg(all(feature = "wgpu", not(feature = "vulkan")))]
#[tokio::test]
async fn info_leaves_device_memory_out_on_the_wgsl_path() {
    let info = info_on(bench_tasks::backend::BackendKind::Wgpu).await;
    assert_eq!(info.backend, "wgpu");
    assert_eq!(info.device_memory_bytes, None);
}

#[tokio::test]
async fn doctor_passes_against_a_healthy_miner_with_the_loopback_key() {
    let f = start(test_limits()).await;
    let doctor = Keypair::generate().0;
    f.server.validators().allow_from_loopback(doctor.account());
    let checks = miner::doctor::run_checks(&f.url, doctor, 48, None).await;
    assert!(
        !checks.iter().any(|c| c.status == miner::doctor::Status::Fail),
        "{}",
        miner::doctor::table(&checks)
    );
    assert!(
        checks
            .iter()
            .any(|c| c.name == "matmul n=48" && c.status == miner::doctor::Status::Pass)
    );
    assert!(
        checks
            .iter()
            .any(|c| c.name == "gpu backend" && c.status == miner::doctor::Status::Warn),
        "a CPU backend is flagged"
    );
    // An unknown key is refused, and doctor says so.
    let checks = miner::doctor::run_checks(&f.url, Keypair::generate().0, 48, None).await;
    assert!(
        checks
            .iter()
            .any(|c| c.name == "signed ping" && c.status == miner::doctor::Status::Fail)
    );
    f.server.shutdown().await;
}

#[cfg(feature = "adversary")]
#[tokio::test]
async fn lazy_adversary_miner_fails_verification() {
    let validators = ValidatorSet::allow_list([key("//Alice").account()]);
    let miner = key("//Miner");
    let mut config = MinerConfig::new(miner.clone(), validators);
    config.behavior = miner::behavior::Behavior::parse("lazy:1.0").expect("valid spec");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let server = MinerServer::start(config, listener).await.expect("starts");
    let client = MinerClient::new(
        &format!("http://{}", server.local_addr()),
        miner.account(),
        key("//Alice"),
        false,
    )
    .expect("client");
    let (setup, challenge, request) = matmul_request("lazy", 40);
    let TaskAnswer::Matmul(sketch) = client.challenge(&request).await.expect("answers").body.answer else {
        panic!("a matmul challenge got another task's answer")
    };
    let rows = setup.choose_openings(challenge.miner_seed);
    let open = OpenRequest {
        id: "lazy".into(),
        open: TaskOpenRequest::Matmul(rows.clone()),
    };
    let TaskOpenings::Matmul(openings) = client.open(&open).await.expect("opens").body.openings;
    assert!(!setup.verify(&challenge, &sketch, &rows, &openings).passed);
    server.shutdown().await;
}
