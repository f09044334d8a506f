//! Rounds against real miner servers over loopback, with no chain (the static network seam).

mod common;

use bench_tasks::Reason;
use bench_tasks::matmul::Adversary;
use common::*;
use miner::behavior::Behavior;
use validator::ledger::Ledger;
use validator::roundlog::LogError;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn honest_miners_pass_cheaters_fail_and_replay_matches() {
    let honest = [
        start_miner("m0", Behavior::Honest).await,
        start_miner("m1", Behavior::Honest).await,
    ];
    let lazy = start_miner("m2", Behavior::Matmul(Adversary::Lazy { fraction: 0.5 })).await;
    let forge = start_miner("m3", Behavior::Matmul(Adversary::ForgedSketch)).await;
    let garbage = start_miner("m4", Behavior::Garbage).await;
    let miners = vec![
        endpoint(0, &honest[0]),
        endpoint(1, &honest[1]),
        endpoint(2, &lazy),
        endpoint(3, &forge),
        endpoint(4, &garbage),
    ];
    let dir = tempfile::tempdir().unwrap();
    let v = validator(dir.path(), miners, quick_config());
    let mut last = None;
    for _ in 0..3 {
        last = Some(v.run_round().await.unwrap());
    }
    let summary = last.unwrap();
    let rec = &summary.record;
    assert_eq!(rec.round, 3);
    let by_uid = |uid: u16| rec.miners.iter().find(|m| m.uid == uid).unwrap();
    for uid in [0, 1] {
        let m = by_uid(uid);
        assert!(m.verdict.passed, "honest uid {uid}: {:?}", m.verdict);
        assert!(m.rtt_ms.is_some() && m.total_ms.is_some() && m.answer_hash.is_some());
    }
    assert!(
        matches!(by_uid(2).verdict.reason, Reason::WrongSketch | Reason::WrongRow),
        "{:?}",
        by_uid(2).verdict
    );
    assert!(!by_uid(3).verdict.passed, "{:?}", by_uid(3).verdict);
    assert_eq!(
        by_uid(4).verdict.reason,
        Reason::Malformed,
        "{:?}",
        by_uid(4).verdict
    );
    // Only honest miners get weight; the forger's failed verifications leave it in debt.
    let w = rec.weights.clone().unwrap();
    assert_eq!(w.uids, vec![0, 1]);
    assert!(rec.book.scores[&0] > 0.0 && rec.book.scores[&2] < 0.0);

    // Replay from the log alone matches; an edited log is caught.
    let log = v.ledger().lock().unwrap().log_path();
    let report = validator::replay::replay(&log).unwrap();
    assert!(report.matches(), "{:?}", report.mismatches);
    assert_eq!(report.rounds, 3);
    assert_eq!(
        report.last_weights,
        w.uids
            .iter()
            .copied()
            .zip(w.weights.iter().copied())
            .collect::<Vec<_>>()
    );
    let text = std::fs::read_to_string(&log).unwrap();
    let tampered = dir.path().join("tampered.log");
    std::fs::write(&tampered, text.replacen("\"passed\":false", "\"passed\":true", 1)).unwrap();
    assert!(matches!(
        validator::replay::replay(&tampered),
        Err(LogError::Broken { .. })
    ));
}

/// Issue 17: a miner serving two devices gets one challenge per device, sent together and scored as one
/// group (their summed work over the group's wall time); a one-device miner gets one challenge, and a
/// server without `/info` (the hostile one) is challenged as one device. `[round] max_devices = 1`
/// turns groups off. The log replays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_device_miner_gets_one_challenge_per_device_scored_as_one_group() {
    let two = start_miner_devices("d0", vec![0, 1]).await;
    let one = start_miner("d1", Behavior::Honest).await;
    let hang = start_hostile(2, "d2", Hostile::Hang).await;
    let miners = vec![endpoint(0, &two), endpoint(1, &one), hang];
    let dir = tempfile::tempdir().unwrap();
    let config = validator::round::RoundConfig {
        challenge_timeout_secs: 3.0,
        ..quick_config()
    };
    let v = validator(dir.path(), miners.clone(), config.clone());
    let s = v.run_round().await.unwrap();
    let by_uid = |uid: u16| s.record.miners.iter().find(|m| m.uid == uid).unwrap().clone();
    let (group, single) = (by_uid(0), by_uid(1));
    assert!(
        group.verdict.passed && single.verdict.passed,
        "{group:?} {single:?}"
    );
    assert_eq!((group.devices, single.devices, by_uid(2).devices), (2, 1, 1));
    assert_eq!(by_uid(2).verdict.reason, Reason::Timeout);
    // One matmul size per round: the group did twice a single challenge's work.
    assert_eq!(group.verdict.work_units, 2.0 * single.verdict.work_units);
    assert!(group.total_ms.is_some() && group.answer_hash.is_some());
    let obs = s.record.observations.iter().find(|o| o.uid == 0).unwrap();
    assert_eq!((obs.devices, obs.work_units), (2, group.verdict.work_units));
    assert!(s.record.round_scores[&0] > 0.0 && s.record.round_scores[&1] > 0.0);
    // The group is stored as such.
    let stored = v.ledger().lock().unwrap().store().round_outcomes(1).unwrap();
    assert_eq!(stored.iter().find(|o| o.uid == 0).unwrap().devices, 2);
    let log = v.ledger().lock().unwrap().log_path();
    let report = validator::replay::replay(&log).unwrap();
    assert!(report.matches(), "{:?}", report.mismatches);
    drop(v);

    let off = validator::round::RoundConfig {
        max_devices: 1,
        ..config
    };
    let dir = tempfile::tempdir().unwrap();
    let v = validator(dir.path(), miners, off);
    let s = v.run_round().await.unwrap();
    let m = s.record.miners.iter().find(|m| m.uid == 0).unwrap();
    assert!(m.verdict.passed && m.devices == 1, "{m:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_and_cancelled_rounds_lose_nothing_and_count_nothing_twice() {
    let a = start_miner("r0", Behavior::Honest).await;
    let b = start_miner("r1", Behavior::Matmul(Adversary::Lazy { fraction: 0.5 })).await;
    let miners = vec![endpoint(0, &a), endpoint(1, &b)];
    let dir = tempfile::tempdir().unwrap();

    let v = validator(dir.path(), miners.clone(), quick_config());
    v.run_round().await.unwrap();
    v.run_round().await.unwrap();
    let (book, attempts) = {
        let l = v.ledger().lock().unwrap();
        (l.book().clone(), l.store().last_attempt().unwrap())
    };
    drop(v);
    // A round dropped mid-flight (the process stopping between challenges and commit) counts nothing.
    // A miner that never answers holds the round open until its 20 s challenge timeout, so dropping it
    // after 1.5 s always lands mid-flight, however fast the machine is.
    let mut with_hang = miners.clone();
    with_hang.push(start_hostile(2, "r2", Hostile::Hang).await);
    let v = validator(dir.path(), with_hang, quick_config());
    let cancelled = tokio::time::timeout(std::time::Duration::from_millis(1500), v.run_round()).await;
    assert!(cancelled.is_err(), "the round should still have been running");
    drop(v);

    let v = validator(dir.path(), miners, quick_config());
    {
        let l = v.ledger().lock().unwrap();
        assert_eq!(l.book(), &book, "the EMA book is restored exactly");
        assert_eq!(l.store().round_count().unwrap(), 2);
        assert!(
            l.store().last_attempt().unwrap() > attempts,
            "the cancelled attempt's seeds are burnt"
        );
    }
    let s = v.run_round().await.unwrap();
    assert_eq!(s.record.round, 3);
    assert!(s.record.attempt > attempts + 1, "the new round uses fresh seeds");
    let log = v.ledger().lock().unwrap().log_path();
    let report = validator::replay::replay(&log).unwrap();
    assert!(report.matches(), "{:?}", report.mismatches);
    assert_eq!(report.rounds, 3);

    drop(v);
    let ledger = Ledger::open(dir.path(), scoring::policy::Policy::default(), "x", 1).unwrap();
    assert_eq!(ledger.next_round().unwrap(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_and_flooding_miners_cost_only_their_own_slot() {
    let honest = start_miner("h0", Behavior::Honest).await;
    let hang = start_hostile(1, "h1", Hostile::Hang).await;
    let flood = start_hostile(2, "h2", Hostile::Flood(50 << 20)).await;
    let dir = tempfile::tempdir().unwrap();
    let config = validator::round::RoundConfig {
        challenge_timeout_secs: 3.0,
        ..quick_config()
    };
    let v = validator(dir.path(), vec![endpoint(0, &honest), hang, flood], config);
    let s = v.run_round().await.unwrap();
    let by_uid = |uid: u16| s.record.miners.iter().find(|m| m.uid == uid).unwrap().clone();
    let h = by_uid(0);
    assert!(h.verdict.passed, "{:?}", h.verdict);
    // The honest miner's own exchange was not held up by the hanging one's 3 s timeout.
    assert!(
        h.total_ms.unwrap() < 3000.0,
        "honest exchange took {:?} ms",
        h.total_ms
    );
    assert_eq!(
        by_uid(1).verdict.reason,
        Reason::Timeout,
        "{:?}",
        by_uid(1).verdict
    );
    let f = by_uid(2);
    assert_eq!(f.verdict.reason, Reason::Malformed, "{:?}", f.verdict);
    assert!(f.verdict.detail.contains("cap"), "{}", f.verdict.detail);
}

/// A miner whose port refuses connections is `unreachable` (not `malformed`), one that never answers is
/// `timeout`, one that answers junk is `malformed`: three facts, three codes, on the record and in
/// `validator_verdicts_total`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_timed_out_and_malformed_miners_get_their_own_codes() {
    let honest = start_miner("u0", Behavior::Honest).await;
    let hang = start_hostile(1, "u1", Hostile::Hang).await;
    let garbage = start_miner("u2", Behavior::Garbage).await;
    // A port nothing listens on: bound, then closed.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let gone = exchange::MinerEndpoint {
        uid: 3,
        hotkey: chain::keys::Keypair::from_uri("//u3").unwrap().account(),
        addr: closed,
    };
    let dir = tempfile::tempdir().unwrap();
    let key = validator_key();
    let ledger = Ledger::open(dir.path(), scoring::policy::Policy::default(), &key.ss58(), 1).unwrap();
    let client =
        exchange::Client::pooled(std::sync::Arc::new(chain::auth::RequestSigner::new(key)), 2).unwrap();
    let metrics = validator::metrics::Metrics::new();
    let config = validator::round::RoundConfig {
        challenge_timeout_secs: 2.0,
        ..quick_config()
    };
    let v = validator::round::Validator::new(
        std::sync::Arc::new(validator::network::StaticNetwork::new(
            vec![endpoint(0, &honest), hang, endpoint(2, &garbage), gone],
            std::time::Duration::from_millis(100),
        )),
        client,
        ledger,
        [3; 32],
        config,
        metrics.clone(),
        validator::dashboard::Dashboard::new(),
    );
    let s = v.run_round().await.unwrap();
    let reason = |uid: u16| {
        let m = s.record.miners.iter().find(|m| m.uid == uid).unwrap();
        (m.verdict.reason, m.verdict.detail.clone())
    };
    assert_eq!(reason(0).0, Reason::Passed, "{:?}", reason(0));
    assert_eq!(reason(1).0, Reason::Timeout, "{:?}", reason(1));
    assert_eq!(reason(2).0, Reason::Malformed, "{:?}", reason(2));
    assert_eq!(reason(3).0, Reason::Unreachable, "{:?}", reason(3));
    let text = metrics.render();
    for code in ["timeout", "malformed", "unreachable"] {
        assert!(
            text.lines()
                .any(|l| l.starts_with("validator_verdicts_total")
                    && l.contains(&format!("reason=\"{code}\""))),
            "no {code} verdict in the metrics:\n{text}"
        );
    }
}

/// A chain whose weight submission never returns (the fault injected on purpose): the round stops while
/// the submission is in flight, as under `kill -9`.
struct StuckSubmission {
    inner: validator::network::StaticNetwork,
    entered: tokio::sync::mpsc::UnboundedSender<()>,
}

impl validator::network::Network for StuckSubmission {
    async fn view(&self) -> Result<validator::network::ChainView, validator::network::NetworkError> {
        self.inner.view().await
    }

    async fn submit_weights(
        &self,
        _weights: &scoring::weights::WeightVector,
    ) -> validator::network::SubmitOutcome {
        let _ = self.entered.send(());
        std::future::pending().await
    }
}

/// The attempt to submit a round's weights is on record before they are sent: a validator stopped
/// between committing the round and learning the submission's outcome leaves a `pending` record (in
/// the database and the round log), and the log still replays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_weight_submission_is_recorded_before_it_is_sent() {
    let honest = start_miner("w0", Behavior::Honest).await;
    let dir = tempfile::tempdir().unwrap();
    let key = validator_key();
    let ledger = Ledger::open(dir.path(), scoring::policy::Policy::default(), &key.ss58(), 1).unwrap();
    let client =
        exchange::Client::pooled(std::sync::Arc::new(chain::auth::RequestSigner::new(key)), 2).unwrap();
    let (tx, mut entered) = tokio::sync::mpsc::unbounded_channel();
    let network = StuckSubmission {
        inner: validator::network::StaticNetwork::new(
            vec![endpoint(0, &honest)],
            std::time::Duration::from_millis(100),
        ),
        entered: tx,
    };
    let v = validator::round::Validator::new(
        std::sync::Arc::new(network),
        client,
        ledger,
        [5; 32],
        quick_config(),
        validator::metrics::Metrics::new(),
        validator::dashboard::Dashboard::new(),
    );
    tokio::select! {
        r = v.run_round() => panic!("the round ended though its submission never returns: {r:?}"),
        _ = entered.recv() => {}
    }
    // The round future is dropped mid-submission; nothing after the send runs.
    let log = v.ledger().lock().unwrap().log_path();
    drop(v);
    let store = validator::state::Store::open_dir(dir.path()).unwrap();
    assert_eq!(store.last_round().unwrap(), 1);
    let sub = store
        .last_submission()
        .unwrap()
        .expect("the attempt is recorded before sending");
    assert_eq!((sub.round, sub.status.as_str()), (1, "pending"));
    assert_eq!(sub.uids, vec![0]);
    let report = validator::replay::replay(&log).unwrap();
    assert!(report.matches(), "{:?}", report.mismatches);
    assert_eq!((report.rounds, report.submissions), (1, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_server_shows_scores_metrics_and_html() {
    let a = start_miner("s0", Behavior::Honest).await;
    let dir = tempfile::tempdir().unwrap();
    let metrics = validator::metrics::Metrics::new();
    let dashboard = validator::dashboard::Dashboard::new();
    let key = validator_key();
    let ledger = Ledger::open(dir.path(), scoring::policy::Policy::default(), &key.ss58(), 1).unwrap();
    let client =
        exchange::Client::pooled(std::sync::Arc::new(chain::auth::RequestSigner::new(key)), 2).unwrap();
    let v = validator::round::Validator::new(
        std::sync::Arc::new(validator::network::StaticNetwork::new(
            vec![endpoint(7, &a)],
            std::time::Duration::from_millis(100),
        )),
        client,
        ledger,
        [1; 32],
        // f32 pinned: the assertions below name the class.
        validator::round::RoundConfig {
            matmul_dtypes: vec![bench_tasks::matmul::MatmulDtype::F32],
            ..quick_config()
        },
        metrics.clone(),
        dashboard.clone(),
    );
    v.run_round().await.unwrap();
    let (addr, _h) = validator::http::serve("127.0.0.1:0".parse().unwrap(), metrics, dashboard)
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let scores: serde_json::Value = http
        .get(format!("http://{addr}/scores"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(scores["round"], 1);
    let m = &scores["miners"][0];
    assert_eq!(m["uid"], 7);
    assert_eq!(m["recent"][0]["reason"], "passed");
    assert!(m["score"].as_f64().unwrap() > 0.0);
    assert_eq!(m["computed_weight"], 65535);
    // One passed f32 answer: its throughput, and the device a one-device miner names (index 0).
    assert_eq!(m["matmul_tflops"]["f32"]["samples"], 1, "{m}");
    assert!(m["matmul_tflops"]["f32"]["tflops"].as_f64().unwrap() > 0.0, "{m}");
    assert_eq!(m["matmul_devices"][0]["device"], 0, "{m}");
    assert_eq!(m["matmul_devices"][0]["dtype"], "f32", "{m}");
    let text = http
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("validator_rounds_total 1"), "{text}");
    assert!(
        text.contains("validator_verdicts_total{task=\"matmul\",reason=\"passed\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("validator_weight_submissions_total{outcome=\"skipped\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("validator_miner_matmul_tflops{uid=\"7\",dtype=\"f32\"} "),
        "{text}"
    );
    let html = http
        .get(format!("http://{addr}/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("<table>") && html.contains(&a.hotkey().to_ss58()));
    assert!(
        html.contains("<th>matmul TFLOP/s</th>") && html.contains("<td>f32 "),
        "{html}"
    );
    assert!(html.contains("<h2>Matmul throughput per device</h2>"), "{html}");
}

/// A miner serving two flex devices names the device of each answer: with device 0 busy the round's
/// challenge runs on device 1, then (device 0 free again, and first on a tie) on device 0. The round
/// records the dtype class, the batch and each device, and `/scores`, the page and `/metrics` show
/// TFLOP/s per class and per device.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_device_miner_shows_throughput_per_device() {
    let miner = start_miner_devices("v0", vec![0, 1]).await;
    let dir = tempfile::tempdir().unwrap();
    let metrics = validator::metrics::Metrics::new();
    let dashboard = validator::dashboard::Dashboard::new();
    let key = validator_key();
    let ledger = Ledger::open(dir.path(), scoring::policy::Policy::default(), &key.ss58(), 1).unwrap();
    let client =
        exchange::Client::pooled(std::sync::Arc::new(chain::auth::RequestSigner::new(key)), 2).unwrap();
    let config = validator::round::RoundConfig {
        matmul_dtypes: vec![bench_tasks::matmul::MatmulDtype::Bf16],
        matmul_batch: Some(2),
        // One challenge per round, so holding device 0 decides where it runs (a group of two would
        // queue its second challenge behind the held job).
        max_devices: 1,
        ..quick_config()
    };
    let v = validator::round::Validator::new(
        std::sync::Arc::new(validator::network::StaticNetwork::new(
            vec![endpoint(4, &miner)],
            std::time::Duration::from_millis(100),
        )),
        client,
        ledger,
        [9; 32],
        config,
        metrics.clone(),
        dashboard.clone(),
    );
    let release = hold_device(&miner, 0).await;
    let first = v.run_round().await.unwrap().record;
    release.send(()).unwrap();
    let second = v.run_round().await.unwrap().record;
    for (record, device) in [(&first, 1), (&second, 0)] {
        let m = &record.miners[0];
        assert!(m.verdict.passed, "{:?}", m.verdict);
        assert_eq!(
            m.device_runs.iter().map(|r| r.device).collect::<Vec<_>>(),
            vec![device],
            "round {}",
            record.round
        );
        assert_eq!(m.dtype, Some(bench_tasks::matmul::MatmulDtype::Bf16));
        assert_eq!(record.matmul.dtype, bench_tasks::matmul::MatmulDtype::Bf16);
        assert_eq!(record.matmul_batch, Some(2));
    }

    let view = dashboard.view();
    let row = &view.miners[0];
    assert_eq!(row.uid, 4);
    assert_eq!(row.matmul_tflops["bf16"].samples, 2);
    let devices: Vec<(u32, &str, usize)> = row
        .matmul_devices
        .iter()
        .map(|d| (d.device, d.dtype, d.samples))
        .collect();
    assert_eq!(devices, vec![(0, "bf16", 1), (1, "bf16", 1)]);
    assert!(row.matmul_devices.iter().all(|d| d.tflops > 0.0));
    let scores = serde_json::to_value(&view).unwrap();
    let named: Vec<&serde_json::Value> = scores["miners"][0]["matmul_devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| &d["device"])
        .collect();
    assert_eq!(named, [0, 1]);
    let html = validator::http::render_html(&view);
    for device in [0, 1] {
        assert!(
            html.contains(&format!(
                "<tr><td>4</td><td>{device}</td><td class=\"l\">bf16</td>"
            )),
            "{html}"
        );
    }
    assert!(
        metrics
            .render()
            .contains("validator_miner_matmul_tflops{uid=\"4\",dtype=\"bf16\"} "),
        "{}",
        metrics.render()
    );
    miner.shutdown().await;
}
