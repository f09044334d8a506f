//! A small seeded scenario checked end to end.

use super::*;

fn small() -> SimConfig {
    let text = include_str!("../../sims/small.toml");
    SimConfig::from_toml_str(text).expect("the shipped example config is valid")
}

#[test]
fn honest_miners_earn_the_most_per_gpu_dollar() {
    let cfg = small();
    let result = run(&cfg, None).unwrap();
    let s = &result.summary;
    let get = |label: &str| s.miners.iter().find(|m| m.label == label).unwrap();
    let honest = get("honest");
    assert!((honest.relative_to_honest - 1.0).abs() < 1e-12);
    for m in s
        .miners
        .iter()
        .filter(|m| !["honest", "owner", "sybil"].contains(&m.label.as_str()))
    {
        assert!(
            m.relative_to_honest < 1.0,
            "{} earns {} of honest per dollar",
            m.label,
            m.relative_to_honest
        );
    }
    // Splitting one GPU across 3 uids is neutral under the linear curve: per dollar (that is, per GPU)
    // the split earns what one uid on it would, up to the sampling noise of 40 epochs (1.003 with this
    // seed, 0.98 to 1.03 with seeds 1 to 5).
    let sybil = get("sybil").relative_to_honest;
    assert!(
        (sybil - 1.0).abs() < 0.06,
        "sybil earns {sybil} of honest per dollar"
    );
    // Copiers and lazy miners are caught by verification: nothing at all for copiers.
    assert_eq!(get("copier").emission_rao, 0);
    assert!(get("lazy").relative_to_honest < 0.2);
    // The honest miners (4 of 13 GPUs' worth of uids, one of them split) take the largest share.
    assert!(honest.share > 0.4, "honest share {}", honest.share);
}

#[test]
fn summary_numbers_are_the_csv_totals() {
    let cfg = small();
    let result = run(&cfg, None).unwrap();
    let s = &result.summary;
    // Recompute each group's emission and cost from the per-epoch rows.
    for m in &s.miners {
        let e: u64 = result
            .rows
            .iter()
            .filter(|r| r.label == m.label)
            .map(|r| r.emission_rao)
            .sum();
        let c: f64 = result
            .rows
            .iter()
            .filter(|r| r.label == m.label)
            .map(|r| r.cost)
            .sum();
        assert_eq!(e, m.emission_rao, "{}", m.label);
        assert!((c - m.cost).abs() < 1e-9);
    }
    let shares: f64 = s.miners.iter().map(|m| m.share).sum();
    assert!((shares - 1.0).abs() < 1e-9);
    // Every epoch pays out the emission, less the chain's truncation to whole rao.
    for epoch in 0..cfg.epochs {
        let paid: u64 = result
            .rows
            .iter()
            .filter(|r| r.epoch == epoch)
            .map(|r| r.emission_rao)
            .sum();
        assert!(
            paid <= cfg.rao_emission && paid + 100 >= cfg.rao_emission,
            "epoch {epoch} paid {paid}"
        );
    }
    // One H100 honest miner for 40 epochs of 360 blocks of 12 s costs 2.5 $/h × 48 h.
    assert!((s.miners[0].cost / 4.0 - 2.5 * 48.0).abs() < 1e-9);
    // The seeded scenario's summary (README table), to three decimals.
    let rel = |label: &str| {
        s.miners
            .iter()
            .find(|m| m.label == label)
            .unwrap()
            .relative_to_honest
    };
    for (label, want) in [
        ("lazy", 0.0),
        ("slow", 0.350),
        ("flaky", 0.598),
        ("copier", 0.0),
        ("sybil", 1.002),
        ("relay", 0.873),
    ] {
        assert!(
            (rel(label) - want).abs() < 0.0015,
            "{label}: {} vs {want}",
            rel(label)
        );
    }
    assert!(
        (s.miners[0].share - 0.4608).abs() < 0.0015,
        "honest share {}",
        s.miners[0].share
    );
    // Same seed, same result.
    let again = run(&cfg, None).unwrap();
    assert_eq!(again.summary, result.summary);
}

#[test]
fn copying_validators_earn_less_per_stake() {
    let result = run(&small(), None).unwrap();
    let copier = result
        .summary
        .validators
        .iter()
        .find(|v| v.behaviour == "copier")
        .unwrap();
    assert!(
        copier.relative_to_honest < 1.0,
        "copier earns {} per stake",
        copier.relative_to_honest
    );
}

#[test]
fn outputs_are_written() {
    let mut cfg = small();
    cfg.epochs = 3;
    let result = run(&cfg, None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    write_outputs(&result, dir.path()).unwrap();
    let csv = std::fs::read_to_string(dir.path().join("epochs.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 3 * result.participants.len());
    for f in [
        "summary.csv",
        "summary.txt",
        "emission_share.svg",
        "validator_trust.svg",
    ] {
        assert!(std::fs::metadata(dir.path().join(f)).unwrap().len() > 0, "{f}");
    }
}

#[test]
fn invalid_configs_name_the_field() {
    let err = SimConfig::from_toml_str("[[validators]]\n[[miners]]\nstrategy = \"honest\"\ngpu = \"tpu\"")
        .unwrap_err();
    assert!(
        err.to_string().contains("miners[0].gpu") && err.to_string().contains("h100"),
        "{err}"
    );
    let err =
        SimConfig::from_toml_str("[[validators]]\nbehaviour = \"copier\"\n[[miners]]\nstrategy = \"honest\"")
            .unwrap_err();
    assert!(err.to_string().contains("honest validator"));
    let err = SimConfig::from_toml_str("epochs = 0").unwrap_err();
    assert!(err.to_string().contains("epochs"));
    let err = SimConfig::from_toml_str("answer_overhead_ms = -1").unwrap_err();
    assert!(err.to_string().contains("answer_overhead_ms"), "{err}");
}

#[test]
fn shipped_configs_are_valid() {
    for (name, text) in [
        ("small", include_str!("../../sims/small.toml")),
        ("n256", include_str!("../../sims/n256.toml")),
        ("yuma3_burn", include_str!("../../sims/yuma3_burn.toml")),
        ("mechanisms", include_str!("../../sims/mechanisms.toml")),
        ("issue17", include_str!("../../sims/issue17.toml")),
        (
            "issue17_gpu_sized",
            include_str!("../../sims/issue17_gpu_sized.toml"),
        ),
        (
            "n256_commit_reveal",
            include_str!("../../sims/n256_commit_reveal.toml"),
        ),
    ] {
        let cfg = SimConfig::from_toml_str(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(cfg.uid_count() > 1, "{name}");
    }
    assert_eq!(
        SimConfig::from_toml_str(include_str!("../../sims/n256.toml"))
            .unwrap()
            .uid_count(),
        256
    );
}

#[test]
fn yuma3_burn_scenario_pays_the_owner_within_the_weight_cap() {
    let mut cfg = SimConfig::from_toml_str(include_str!("../../sims/yuma3_burn.toml")).unwrap();
    cfg.epochs = 30;
    let result = run(&cfg, None).unwrap();
    let owner = result
        .summary
        .miners
        .iter()
        .find(|m| m.label == "owner")
        .expect("the burn reaches the owner");
    // A 20% burn is capped by the 10% max weight limit.
    assert!(
        owner.share > 0.05 && owner.share <= 0.105,
        "owner share {}",
        owner.share
    );
    let honest = result
        .summary
        .miners
        .iter()
        .find(|m| m.label == "honest")
        .unwrap();
    assert!(
        result
            .summary
            .miners
            .iter()
            .filter(|m| m.label != "owner")
            .all(|m| m.relative_to_honest <= honest.relative_to_honest)
    );
}

/// `small.toml` with the honest GPUs cycling in and out of service and a faster validator EMA, under
/// commit-reveal with `period` epochs.
fn changing(period: u32) -> SimConfig {
    let mut cfg = small();
    cfg.epochs = 120;
    cfg.reveal_period_epochs = period;
    cfg.policy.ema.alpha = 0.3;
    for g in cfg.miners.iter_mut().filter(|g| g.strategy == Strategy::Honest) {
        g.cycle_epochs = 16;
    }
    cfg
}

fn copier_per_stake(cfg: &SimConfig) -> f64 {
    let result = run(cfg, None).unwrap();
    result
        .summary
        .validators
        .iter()
        .find(|v| v.behaviour == "copier")
        .unwrap()
        .relative_to_honest
}

#[test]
fn commit_reveal_makes_copied_weights_stale_when_miners_change() {
    let open = copier_per_stake(&changing(0));
    let revealed_late = copier_per_stake(&changing(3));
    assert!(
        revealed_late < open - 0.05,
        "copier per stake: {open} without commit-reveal, {revealed_late} with a 3-epoch reveal"
    );
}

#[test]
fn a_miner_cycle_takes_turns_and_keeps_half_the_group_serving() {
    let mut cfg = small();
    cfg.epochs = 32;
    for g in cfg.miners.iter_mut().filter(|g| g.strategy == Strategy::Honest) {
        g.cycle_epochs = 8;
    }
    let result = run(&cfg, None).unwrap();
    let honest: Vec<&Participant> = result
        .participants
        .iter()
        .filter(|p| matches!(&p.role, Role::Miner(m) if m.strategy == Strategy::Honest))
        .collect();
    assert_eq!(honest.len(), 4);
    for epoch in 0..32 {
        let serving = honest
            .iter()
            .filter(|p| matches!(&p.role, Role::Miner(m) if m.in_service(epoch)))
            .count();
        assert_eq!(serving, 2, "epoch {epoch}");
    }
    // Each miner is down for 4 epochs in a row, then up for 4.
    let Role::Miner(m) = &honest[1].role else {
        unreachable!()
    };
    let pattern: Vec<bool> = (0..8).map(|e| m.in_service(e)).collect();
    assert_eq!(pattern.iter().filter(|up| **up).count(), 4);
}

fn mechanisms() -> SimConfig {
    SimConfig::from_toml_str(include_str!("../../sims/mechanisms.toml")).expect("the shipped config is valid")
}

/// One mechanism that scores every class is the subnet without mechanisms, draw for draw.
#[test]
fn one_mechanism_scoring_every_class_is_the_plain_subnet() {
    let plain = small();
    let mut one = plain.clone();
    one.mechanisms = vec![MechanismSpec {
        classes: plain.tasks.iter().map(|t| t.class).collect(),
        emission_share: 1.0,
    }];
    assert_eq!(run(&plain, None).unwrap().rows, run(&one, None).unwrap().rows);
}

/// Each mechanism pays its share: a specialist of the 0.7 mechanism earns about 0.7/0.3 of a specialist
/// of the 0.3 one, generalists earn from both, and cheats earn nothing in either.
#[test]
fn each_mechanism_pays_its_emission_share() {
    let result = run(&mechanisms(), None).unwrap();
    let per_uid = |label: &str| {
        let m = result.summary.miners.iter().find(|m| m.label == label).unwrap();
        m.emission_rao as f64 / m.uids as f64
    };
    let (compute, inference, generalist) = (
        per_uid("compute-only"),
        per_uid("inference-only"),
        per_uid("generalist"),
    );
    let ratio = inference / compute;
    assert!(
        (1.8..2.9).contains(&ratio),
        "inference/compute specialists: {ratio}"
    );
    assert!(
        generalist > compute && generalist > 0.5 * inference,
        "{generalist} {compute} {inference}"
    );
    // Lazy miners (skipping 0.3 of the work, 4 rows opened) earn 0.13 to 0.22 of a compute specialist
    // over seeds 1 to 5 and the shipped 7; honest GPUs never pay less.
    assert!(per_uid("lazy") < 0.3 * compute, "lazy {}", per_uid("lazy"));
    assert_eq!(per_uid("copier"), 0.0);
}

#[test]
fn a_class_in_no_mechanism_or_in_two_is_refused() {
    let mut cfg = mechanisms();
    cfg.mechanisms[1].classes = vec![crate::task::TaskClass::Organic];
    let err = cfg.validate().unwrap_err().to_string();
    assert!(
        err.contains("`inference` must belong to exactly one mechanism, not 0"),
        "{err}"
    );
    cfg.mechanisms[1].classes = vec![crate::task::TaskClass::Matmul, crate::task::TaskClass::Inference];
    let err = cfg.validate().unwrap_err().to_string();
    assert!(
        err.contains("`matmul` must belong to exactly one mechanism, not 2"),
        "{err}"
    );
}

/// Issue 17 at the default task mix and sizes (`sims/issue17.toml`). A miner with 100× the throughput
/// earns at least 30× per uid. One fast GPU split across 4 uids (the `split` group) earns, summed over
/// its uids, no more than the same GPU as one uid (`fast`), within 5 % for timing noise: the linear
/// curve pays each uid a quarter, and the reference moves slowly across rounds, so the split's uids,
/// present in every class every round, do not collect the rounds whose reference dropped because the
/// fast uids drew the other class (with a per-round reference they earned 1.33× to 1.6×; under the old
/// logistic default 1.56×). The split's remaining edge is the 100× GPU's own timing: its smallest
/// challenge takes 0.2 ms, under `min_compute_seconds` and the network's jitter.
///
/// With the real stack's fixed cost per matmul answer (`answer_overhead_ms`, which the validator
/// counts as compute): `validator bench-round` measures about 0.5 ms on loopback (median over matmul
/// answers, release build), so the same holds at 1 ms (σ 0.3): 118× and a split of 0.98. The margin is
/// not large: at 10 ms the 30× still holds (56× over 30 epochs) but the split earns 1.44× its GPU,
/// since the split's 4 uids pay their overheads at once while each waits 4× the compute, and at a
/// hypothetical 100 ms the fast uid earns only 18× the slow one. GPU-sized challenges hold at all of
/// these (the next test).
#[test]
fn a_hundred_times_the_throughput_earns_thirty_times_per_uid() {
    let ratios = |extra: &str| {
        let result = run(&issue17(extra), None).unwrap();
        let get = |label: &str| result.summary.miners.iter().find(|m| m.label == label).unwrap();
        let per_uid = |label: &str| get(label).emission_rao as f64 / get(label).uids as f64;
        let fast = per_uid("fast");
        assert!(fast > 0.0);
        (fast / per_uid("slow"), get("split").emission_rao as f64 / fast)
    };
    let (speed, split) = ratios("epochs = 30");
    assert!(speed >= 30.0, "fast earns {speed}x slow per uid");
    assert!(split <= 1.05, "split GPU earns {split}x one uid");
    let (speed, split) = ratios("epochs = 30\nanswer_overhead_ms = 1\nanswer_overhead_jitter_ms = 0.3");
    assert!(
        speed >= 30.0,
        "measured overhead: fast earns {speed}x slow per uid"
    );
    assert!(
        split <= 1.05,
        "measured overhead: split GPU earns {split}x one uid"
    );
    let (speed, split) = ratios("epochs = 30\nanswer_overhead_ms = 10\nanswer_overhead_jitter_ms = 3");
    assert!(speed >= 30.0, "10 ms overhead: fast earns {speed}x slow per uid");
    assert!(split > 1.2, "10 ms overhead: split GPU earns {split}x one uid");
    let (speed, _) = ratios("epochs = 30\nanswer_overhead_ms = 100\nanswer_overhead_jitter_ms = 60");
    assert!(speed < 30.0, "100 ms overhead: fast earns {speed}x slow per uid");
}

/// Issue 17, every GPU in the box, with challenges sized for the 100× GPU (its smallest takes 22 ms,
/// as the validator sizes challenges to keep a GPU busy): a box of 8 such GPUs (8 challenges at once
/// per round) earns about 8 times one of them as a uid; a uid with one such GPU claiming 8 devices, and
/// the GPU split over 4 uids, earn no more than the GPU as one uid (5 % tolerance for timing noise;
/// over 200 epochs, seeds 17 to 20: box 7.8 to 8.0, split 1.00 to 1.01, claimed devices 0.99 to 1.03).
///
/// Then again with a fixed cost per answer 200 times what `validator bench-round` measures for a
/// matmul answer (100 ms, σ 60, counted as compute), as a stress: the fast uid still earns far more than
/// 30× the slow one (87× with this seed), but the fixed cost, paid at once by the split's 4 uids and
/// by a liar's 8 challenges, lets the split and the liar earn about 1.1× the GPU as one uid and the
/// box 7.3× (15 % tolerance here).
#[test]
fn a_box_earns_for_every_gpu_and_claiming_devices_it_lacks_earns_nothing() {
    let tasks = |overhead: &str| {
        format!(
            r#"
        epochs = 200
        timeout_seconds = 3000
        {overhead}
        [[tasks]]
        class = "matmul"
        share = 0.5
        work_units = [5.50e13, 4.40e14, 3.52e15]
        seconds_per_unit = 4.0e-14
        [[tasks]]
        class = "inference"
        share = 0.5
        work_units = [102400.0, 204800.0, 409600.0]
        seconds_per_unit = 5.0e-4
        [[miners]]
        strategy = "honest"
        label = "box"
        count = 1
        gpu = "fast"
        gpus_per_box = 8
        [[miners]]
        strategy = "honest"
        label = "liar"
        count = 1
        gpu = "fast"
        claimed_devices = 8
    "#
        )
    };
    for (overhead, tolerance, boxed_min) in [
        ("", 1.05, 7.5),
        (
            "answer_overhead_ms = 100\nanswer_overhead_jitter_ms = 60",
            1.15,
            7.0,
        ),
    ] {
        let result = run(&issue17(&tasks(overhead)), None).unwrap();
        let get = |label: &str| result.summary.miners.iter().find(|m| m.label == label).unwrap();
        let per_uid = |label: &str| get(label).emission_rao as f64 / get(label).uids as f64;
        let fast = per_uid("fast");
        let (boxed, liar, split) = (per_uid("box"), per_uid("liar"), get("split").emission_rao as f64);
        assert!(
            fast >= 30.0 * per_uid("slow"),
            "{overhead}: fast {fast} vs slow per uid"
        );
        assert!(
            (boxed_min..8.5).contains(&(boxed / fast)),
            "{overhead}: 8-GPU box {boxed} vs one GPU {fast}"
        );
        assert!(
            liar <= tolerance * fast,
            "{overhead}: claiming 8 devices {liar} vs one GPU {fast}"
        );
        assert!(
            split <= tolerance * fast,
            "{overhead}: split GPU {split} vs one uid {fast}"
        );
    }
}

/// `sims/issue17.toml` is the tests' issue-17 population, so an owner re-runs what they assert.
#[test]
fn the_shipped_issue17_config_is_the_tests_population() {
    let shipped = SimConfig::from_toml_str(include_str!("../../sims/issue17.toml")).unwrap();
    assert_eq!(shipped, issue17("epochs = 30"));
    assert_eq!(
        (shipped.answer_overhead_ms, shipped.answer_overhead_jitter_ms),
        (0.0, 0.0)
    );
}

/// The issue-17 population: two 100× GPUs as one uid each, two 1× GPUs, one 100× GPU split over 4
/// uids, plus `extra` (top-level keys, tables and miner groups).
fn issue17(extra: &str) -> SimConfig {
    SimConfig::from_toml_str(&format!(
        r#"
        seed = 17
        {extra}
        [[validators]]
        count = 2
        [[miners]]
        strategy = "honest"
        label = "fast"
        count = 2
        gpu = "fast"
        [[miners]]
        strategy = "honest"
        label = "slow"
        count = 2
        gpu = "slow"
        [[miners]]
        strategy = "sybil"
        label = "split"
        count = 1
        gpu = "fast"
        uids_per_gpu = 4
        [gpus.fast]
        throughput = 100.0
        cost_per_hour = 3.0
        [gpus.slow]
        throughput = 1.0
        cost_per_hour = 1.0
        [gpus.h100]
        throughput = 1.0
        cost_per_hour = 2.5
        "#
    ))
    .unwrap()
}
