//! The API in front of a real miner serving the real default model (SmolLM2-135M-Instruct;
//! `scripts/fetch-model.sh`, which `scripts/install-deps.sh` runs; without it this test fails): a streamed
//! sampled chat and a plain text completion go through, every usage row's receipt verifies, and the
//! validator's CPU replay of each answer (teacher-forced, with the seed it recorded) passes, and the next
//! round commits those verdicts to the ledger and the round log and pays the miner for them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bench_tasks::inference::real::{RealModel, SMOLLM2};
use chain::auth::RequestSigner;
use chain::auth::generation::GenerationReceipt;
use chain::keys::Keypair;
use exchange::{Budget, Client, MinerEndpoint};
use miner::validators::{ValidatorEntry, ValidatorSet};
use miner::{MinerConfig, MinerServer};
use validator::api::ApiConfig;
use validator::api::metrics::ApiMetrics;
use validator::api::route::{Candidate, Directory};
use validator::api::server::Api;
use validator::api::store::{ApiStore, NewKey, Outcome, UsageRow};
use validator::api::verify::HeldModel;
use validator::ledger::{Ledger, RoundInputs};
use validator::organic::OrganicInbox;
use validator::state::MinerOutcome;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_from_a_real_miner_are_counted_receipted_and_replay_on_the_cpu() {
    let validator = Keypair::from_uri("//Validator").unwrap();
    let real = Arc::new(RealModel::load(SMOLLM2).unwrap_or_else(|e| panic!("{e}")));
    let validators = ValidatorSet::metagraph(1_000);
    validators.replace([(
        validator.account(),
        ValidatorEntry {
            stake_rao: 5_000,
            permit: true,
        },
    )]);
    let miner_key = Keypair::from_uri("//RealMiner").unwrap();
    let mut config = MinerConfig::new(miner_key.clone(), validators);
    config.models = Arc::new(miner::models::HeldModels::from_models([real]));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = MinerServer::start(config, listener).await.unwrap();
    let endpoint = MinerEndpoint {
        uid: 1,
        hotkey: miner_key.account(),
        addr: server.local_addr(),
    };

    let dir = tempfile::tempdir().unwrap();
    let mut store = ApiStore::open_dir(dir.path()).unwrap();
    let (key, _) = store.create_key(&NewKey::default()).unwrap();
    let client = Client::pooled(Arc::new(RequestSigner::new(validator.clone())), 4).unwrap();
    let info = client
        .info(
            &endpoint.target().base,
            Budget {
                timeout: Duration::from_secs(10),
                cap: 1 << 20,
            },
        )
        .await
        .unwrap();
    let directory = Directory::new();
    directory.set(vec![Candidate {
        endpoint,
        models: info.models.clone(),
        score: 0.5,
        eligible: true,
    }]);
    let held = tokio::task::spawn_blocking(|| HeldModel::load(SMOLLM2))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(held.sha256, info.models[0].sha256);
    let mut registry = prometheus_client::registry::Registry::default();
    let inbox = OrganicInbox::default();
    let api = Api::new(
        ApiConfig {
            verify_fraction: 1.0,
            ..ApiConfig::default()
        },
        client,
        directory,
        store,
        Some(Arc::new(held)),
        ApiMetrics::register(&mut registry),
        inbox.clone(),
    );
    let (addr, _) = api
        .serve("127.0.0.1:0".parse::<SocketAddr>().unwrap())
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let post = |path: &'static str, body: &'static str| {
        let (http, key) = (http.clone(), key.clone());
        async move {
            let resp = http
                .post(format!("http://{addr}{path}"))
                .bearer_auth(key)
                .body(body)
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            (status, resp.text().await.unwrap())
        }
    };

    let (status, body) = tokio::time::timeout(
        Duration::from_secs(300),
        post(
            "/v1/chat/completions",
            r#"{"model":"smollm2","messages":[{"role":"user","content":"Name three colours."}],
                "max_tokens":16,"temperature":0.8,"top_p":0.95,"stream":true,"stream_options":{"include_usage":true}}"#,
        ),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.ends_with("data: [DONE]\n\n"), "{body}");
    let text: String = body
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter(|e| *e != "[DONE]")
        .filter_map(|e| serde_json::from_str::<serde_json::Value>(e).ok())
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str().map(str::to_owned))
        .collect();
    assert!(!text.trim().is_empty(), "{body}");

    let (status, body) = tokio::time::timeout(
        Duration::from_secs(300),
        post(
            "/v1/completions",
            r#"{"model":"smollm2","prompt":"Once upon a time","max_tokens":8,"temperature":0}"#,
        ),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["object"], "text_completion");
    assert!(v["usage"]["prompt_tokens"].as_u64().unwrap() > 0);

    // A prompt beyond the model's context: the miner refuses it before any work, and so does the API,
    // with a 400 (no failover: any miner would refuse it).
    let long = format!(
        r#"{{"model":"smollm2","messages":[{{"role":"user","content":"{}"}}],"max_tokens":8}}"#,
        "word ".repeat(20_000)
    );
    let resp = http
        .post(format!("http://{addr}/v1/chat/completions"))
        .bearer_auth(&key)
        .body(long)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap();
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("context"), "{body}");

    // Both rows: complete, receipts that verify, and a CPU replay that passed.
    let reader = ApiStore::open_dir(dir.path()).unwrap();
    let mut rows: Vec<UsageRow> = Vec::new();
    for _ in 0..1200 {
        rows = reader.usage(None, 0, 10).unwrap();
        if rows.len() == 2 && rows.iter().all(|r| r.verification != "pending") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(rows.len(), 2, "{rows:?}");
    for row in &rows {
        assert_eq!(row.outcome, Outcome::Complete, "{row:?}");
        assert_eq!(row.verification, "passed", "{row:?}");
        let receipt: GenerationReceipt = serde_json::from_str(row.receipt.as_deref().unwrap()).unwrap();
        let ids: Vec<u32> = serde_json::from_str(row.token_ids.as_deref().unwrap()).unwrap();
        assert_eq!(ids.len() as u64, row.completion_tokens);
        receipt
            .verify(
                &miner_key.account(),
                &validator.account(),
                &receipt.request_id,
                row.request_body.as_deref().unwrap().as_bytes(),
                &ids,
            )
            .unwrap();
    }

    // The verdicts wait for the next round: it commits them with the round's challenge verdicts, scores
    // them (class `organic`), and the log replays.
    let organic = inbox.drain();
    assert_eq!(organic.len(), 2, "{organic:?}");
    for o in &organic {
        let row = rows
            .iter()
            .find(|r| r.id == o.usage_id)
            .expect("a verdict for each usage row");
        assert!(o.verdict.passed, "{o:?}");
        assert_eq!(o.verdict.work_units, row.completion_tokens as f64);
        assert_eq!(
            (o.uid, o.hotkey.as_str()),
            (1, miner_key.account().to_ss58().as_str())
        );
        assert_eq!(o.seed, row.seed);
    }
    let ledger_dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(ledger_dir.path(), scoring::policy::Policy::default(), "v", 1).unwrap();
    let challenge = |uid: u16, hotkey: String| MinerOutcome {
        uid,
        hotkey,
        task: bench_tasks::wire::TaskClass::Matmul,
        verdict: bench_tasks::Verdict::pass(1e6),
        rtt_ms: Some(1.0),
        total_ms: Some(50.0),
        compute_ms: Some(49.0),
        seed: "00".into(),
        answer_hash: None,
        devices: 1,
        dtype: Some(bench_tasks::matmul::MatmulDtype::F32),
        device_runs: Vec::new(),
    };
    let attempt = ledger.begin_attempt().unwrap();
    let record = ledger
        .commit_round(RoundInputs {
            attempt,
            block_number: 10,
            block_hash: "ab".into(),
            started_ms: 0,
            finished_ms: 1,
            matmul: bench_tasks::matmul::RoundParams::new(64, 1),
            matmul_batch: 1,
            outcomes: vec![
                challenge(1, miner_key.account().to_ss58()),
                challenge(2, Keypair::from_uri("//Idle").unwrap().account().to_ss58()),
            ],
            organic,
            limits: scoring::weights::ChainLimits {
                n: 3,
                min_allowed_weights: 1,
                max_weight_limit: u16::MAX,
            },
        })
        .unwrap();
    assert_eq!(record.organic.len(), 2);
    assert_eq!(
        ledger.store().organic_outcomes(record.round).unwrap(),
        record.organic
    );
    // uid 1 served the most verified tokens: it earns the whole volume share. uid 2 served nobody: its
    // challenge, at the reference speed (1 credit under the linear curve), keeps only the rest.
    let share = scoring::policy::Policy::default().organic.share;
    assert!(record.round_scores[&1] >= share, "{:?}", record.round_scores);
    assert!(
        (record.round_scores[&2] - (1.0 - share) * 1.0).abs() < 1e-9,
        "{:?}",
        record.round_scores
    );
    let report = validator::replay::replay(&ledger.log_path()).unwrap();
    assert!(report.matches(), "{:?}", report.mismatches);
    server.shutdown().await;
}
