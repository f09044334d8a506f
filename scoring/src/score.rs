//! From verdicts to per-miner scores: one round at a time ([`score_round`]), smoothed across rounds
//! ([`ScoreBook`]).
//!
//! Rules, in order:
//! 1. Correctness gates everything: only a passed answer earns credit.
//! 2. A passed answer earns `work / (devices × mean_work) × latency_factor`, where `mean_work` is the
//!    mean work of one challenge of that task class in the round (so classes measured in different
//!    units, multiply-adds or tokens, are comparable and bigger challenges count for more) and the
//!    latency factor compares its throughput (work per compute second, compute = measured time −
//!    measured RTT) with the round's reference throughput for the class ([`LatencyCurve`]): a
//!    quantile (`latency.reference_quantile`) of the passed answers' throughput per device, each
//!    answer's vote weighted by the compute it delivered (work per device × throughput), so a GPU
//!    split across uids or claiming devices it lacks votes as much as it computes, no more.
//!
//!    An observation may be a **device group** (`devices > 1`): the validator sent a miner one
//!    challenge per device it advertises, all at once, and the observation carries their summed work
//!    over the wall time of the group. Its size counts once (`work / devices` per challenge) and its
//!    throughput is the group's, so `d` real GPUs earn `d` times one GPU under the linear curve, and a
//!    miner claiming `d` devices with one GPU takes `d` times as long and earns as one.
//! 3. A failed verification costs `penalties.failed_verification` credits at the mean work;
//!    a timeout, an unreachable miner, a refusal or a malformed answer costs `penalties.unavailable`
//!    (0 by default); reasons
//!    in `penalties.ignored_codes` (the validator's own fault) are dropped.
//! 4. A miner's round score is its net credit per challenge, each challenge weighted by its class's
//!    task-mix weight. It may be negative: a round whose failed verifications outweigh its passed
//!    answers carries that debt into the EMA ([`ScoreBook::update`]), so a miner that cheats on one
//!    task class and answers another honestly does not keep the honest rounds' credit (with a score
//!    clamped at 0 per round, a `lazy` miner kept about half an honest miner's emission on the
//!    localnet). Weights count only positive smoothed scores ([`crate::weights::weights_from_scores`]).
//!    Averaging per challenge, not per class, means a miner is not
//!    marked down for classes a validator happened not to send it this round. A checked organic answer
//!    (class `organic`) counts here as one challenge.
//! 5. In a round that verified organic tokens, `organic.share` of the round's summed score is paid by
//!    volume, split by each miner's verified organic tokens (none for a miner that failed an organic
//!    check in the round), see [`crate::policy::Organic`].
//!
//! ```
//! use scoring::policy::Policy;
//! use scoring::score::{score_round, Observation};
//! use scoring::task::{Reason, TaskClass};
//!
//! let obs = |uid, passed, elapsed| Observation {
//!     uid, task_class: TaskClass::Matmul, passed,
//!     reason: if passed { Reason::Passed } else { Reason::WrongRow },
//!     elapsed_seconds: elapsed, rtt_seconds: 0.05, work_units: 8.0e9, devices: 1,
//! };
//! let scores = score_round(&[obs(1, true, 1.0), obs(2, true, 2.0), obs(3, false, 0.5)], &Policy::default());
//! assert!(scores[&1] > scores[&2]);
//! assert_eq!(scores[&3], -2.0); // a wrong answer costs `penalties.failed_verification` (2)
//! ```
//!
//! [`LatencyCurve`]: crate::policy::LatencyCurve

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::policy::Policy;
use crate::task::{Reason, TaskClass, Treatment};

/// One verified (or failed) challenge, in plain types so this crate stays independent of the task
/// and transport crates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// The miner's uid.
    pub uid: u16,
    /// The task class; answers are compared only within a class.
    pub task_class: TaskClass,
    /// Whether the answer passed verification.
    pub passed: bool,
    /// The verifier's reason code (`passed`, `wrong_row`, `timeout`, …).
    pub reason: Reason,
    /// Seconds from sending the challenge to receiving the answer, as the validator measured them.
    pub elapsed_seconds: f64,
    /// Round-trip time measured on the same connection just before, in seconds.
    pub rtt_seconds: f64,
    /// The work the challenge represents (multiply-adds, tokens); for a device group, the summed work
    /// of its challenges.
    pub work_units: f64,
    /// How many challenges, sent at once (one per device the miner advertised), this observation sums
    /// (1 for a plain challenge; absent from records written before device groups).
    #[serde(default = "one_device", skip_serializing_if = "is_one_device")]
    pub devices: u32,
}

const fn one_device() -> u32 {
    1
}

#[allow(clippy::trivially_copy_pass_by_ref)]
const fn is_one_device(d: &u32) -> bool {
    *d == 1
}

impl Observation {
    /// The challenges this observation sums, at least 1.
    pub fn challenges(&self) -> f64 {
        f64::from(self.devices.max(1))
    }

    /// Compute time: elapsed minus RTT, at least `min_seconds` (and `min_seconds` for non-finite input).
    pub fn compute_seconds(&self, min_seconds: f64) -> f64 {
        let c = self.elapsed_seconds - self.rtt_seconds;
        if c.is_finite() {
            c.max(min_seconds)
        } else {
            min_seconds
        }
    }
}

/// The value at which the cumulative weight first reaches `q` of the total (`pairs` = (value, weight)).
fn weighted_quantile(pairs: &mut [(f64, f64)], q: f64) -> Option<f64> {
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total: f64 = pairs.iter().map(|p| p.1).sum();
    let mut acc = 0.0;
    for &(v, w) in pairs.iter() {
        acc += w;
        if acc >= total * q {
            return Some(v);
        }
    }
    pairs.last().map(|p| p.0)
}

/// Score one round of observations: a score for every uid that appears (0 for a uid that only timed
/// out or was unreachable under the default penalties, negative for one whose failed verifications
/// outweigh its credit). Scores are in credits per challenge: under the default linear curve, 1 for a miner at the
/// reference speed on mean-size work, `d` for a group of `d` such devices (0.5 under the logistic).
///
/// This is the stateless form: each class's reference is this round's quantile alone. A validator
/// scores with [`ScoreBook::fold_round`], whose reference moves slowly across rounds.
pub fn score_round(observations: &[Observation], policy: &Policy) -> BTreeMap<u16, f64> {
    score_against(observations, policy, &round_references(observations, policy))
}

/// Whether an observation counts at all (not ignored, positive finite work).
fn usable(o: &Observation, policy: &Policy) -> bool {
    policy.penalties.treatment(o.reason) != Treatment::Ignored
        && o.work_units.is_finite()
        && o.work_units > 0.0
}

/// Per class with a passed answer: (mean work of one challenge, reference throughput per device) from
/// this round's observations alone.
fn round_references(observations: &[Observation], policy: &Policy) -> BTreeMap<TaskClass, (f64, f64)> {
    let min_c = policy.latency.min_compute_seconds;
    // Per class: the mean work of one challenge sent (the validator chooses the sizes, so miners
    // cannot move it; each observation's per-challenge work counts once), and the reference throughput: a quantile of the passed answers' throughput per
    // device, each weighted by the compute it delivered (work per device × throughput). Large
    // challenges, whose timing network jitter barely touches, weigh most, and a GPU's vote is its
    // compute whether it runs as one uid, is split across k (k votes of 1/k) or claims devices it
    // lacks (its group's throughput is one GPU's).
    let mut work: BTreeMap<TaskClass, (f64, f64)> = BTreeMap::new();
    let mut speeds: BTreeMap<TaskClass, Vec<(f64, f64)>> = BTreeMap::new();
    for o in observations.iter().filter(|o| usable(o, policy)) {
        // One vote per observation: a group's challenges have one size, and a miner claiming devices
        // cannot move the mean by the number it claims.
        let w = work.entry(o.task_class).or_default();
        w.0 += o.work_units / o.challenges();
        w.1 += 1.0;
        if o.passed {
            let speed = o.work_units / o.compute_seconds(min_c);
            let per_device = o.work_units / o.challenges();
            speeds
                .entry(o.task_class)
                .or_default()
                .push((speed / o.challenges(), per_device * speed));
        }
    }
    speeds
        .into_iter()
        .filter_map(|(k, mut s)| {
            Some((
                k,
                (
                    work[&k].0 / work[&k].1,
                    weighted_quantile(&mut s, policy.latency.reference_quantile)?,
                ),
            ))
        })
        .collect()
}

/// Scores a round against per-class (mean work, reference throughput) `reference`.
fn score_against(
    observations: &[Observation],
    policy: &Policy,
    reference: &BTreeMap<TaskClass, (f64, f64)>,
) -> BTreeMap<u16, f64> {
    let min_c = policy.latency.min_compute_seconds;
    let pen = &policy.penalties;
    // Per uid: mix-weighted net credit and mix-weighted challenge count (a device group counts once).
    let mut net: BTreeMap<u16, (f64, f64)> = BTreeMap::new();
    for o in observations.iter().filter(|o| usable(o, policy)) {
        let mix = policy.tasks.weight_of(o.task_class);
        let e = net.entry(o.uid).or_default();
        e.1 += mix;
        let Some(&(mean_work, ref_speed)) = reference.get(&o.task_class) else {
            // Nobody passed this class in the round: nothing to compare with, and no credit to lose.
            continue;
        };
        let size = o.work_units / (o.challenges() * mean_work);
        let credit = if o.passed {
            let speed = o.work_units / o.compute_seconds(min_c);
            size * policy.latency.factor(speed / ref_speed)
        } else if pen.treatment(o.reason) == Treatment::FailedVerification {
            -size * pen.failed_verification
        } else {
            -size * pen.unavailable
        };
        e.0 += mix * credit;
    }
    let scores = net
        .into_iter()
        .map(|(uid, (credit, weight))| (uid, if weight > 0.0 { credit / weight } else { 0.0 }));
    with_organic_volume(scores.collect(), observations, policy)
}

/// Rule 5: blends in the volume share ([`crate::policy::Organic`]) when the round verified organic
/// tokens; otherwise returns `scores` unchanged. The volume pool is `share` of the round's summed
/// challenge scores, split by verified tokens, so the share means the same under any latency curve and
/// however many devices the miners have.
fn with_organic_volume(
    mut scores: BTreeMap<u16, f64>,
    observations: &[Observation],
    policy: &Policy,
) -> BTreeMap<u16, f64> {
    let share = policy.organic.share;
    let mut tokens: BTreeMap<u16, f64> = BTreeMap::new();
    let mut cheated: Vec<u16> = Vec::new();
    for o in observations.iter().filter(|o| o.task_class == TaskClass::Organic) {
        if o.passed && o.work_units.is_finite() && o.work_units > 0.0 {
            *tokens.entry(o.uid).or_default() += o.work_units;
        } else if policy.penalties.treatment(o.reason) == Treatment::FailedVerification {
            cheated.push(o.uid);
        }
    }
    for uid in &cheated {
        tokens.remove(uid);
    }
    let all_tokens: f64 = tokens.values().sum();
    if share <= 0.0 || all_tokens <= 0.0 {
        return scores;
    }
    let total: f64 = scores.values().filter(|s| **s > 0.0).sum();
    let pool = if total > 0.0 { total } else { 1.0 };
    for (uid, score) in &mut scores {
        let volume = tokens.get(uid).map_or(0.0, |t| t / all_tokens) * pool;
        *score = (1.0 - share) * *score + share * volume;
    }
    scores
}

/// Per-uid scores smoothed across rounds by an exponential moving average. Serializes exactly: a
/// saved and restored book continues bit-identically (f64 values round-trip through JSON and TOML).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScoreBook {
    /// Smoothed score per uid.
    pub scores: BTreeMap<u16, f64>,
    /// Rounds folded in so far.
    pub rounds: u64,
    /// The reference throughput per device of each task class, moved by every round
    /// ([`ScoreBook::fold_round`]; absent from books saved before it existed, and then rebuilt from
    /// the next round).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub references: BTreeMap<TaskClass, f64>,
    /// The same for a class scored in a named variant ([`ScoreBook::fold_round_in`]): one reference
    /// per `class:variant` (for matmul, per dtype class: `matmul:bf16`), so rounds in a format 13×
    /// slower on the same GPU (f32 on SIMT cores against bf16 on tensor cores) do not drag the other's
    /// reference. Absent from books saved before it existed.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variant_references: BTreeMap<String, f64>,
}

impl ScoreBook {
    /// An empty book.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fold in one round: `s ← α·new + (1 − α)·s` for every uid scored this round. A uid seen for the
    /// first time starts from 0, so a new miner earns its way up. Uids not in the round keep their
    /// score (a validator that did not reach a miner this round does not punish it).
    pub fn update(&mut self, round: &BTreeMap<u16, f64>, alpha: f64) {
        for (&uid, &s) in round {
            let old = self.scores.get(&uid).copied().unwrap_or(0.0);
            self.scores.insert(uid, alpha * s + (1.0 - alpha) * old);
        }
        self.rounds += 1;
    }

    /// Scores one round and folds it in, the validator's scoring step: each class's reference
    /// throughput moves from the book's toward this round's quantile by `latency.reference_alpha`
    /// (a class seen for the first time takes the round's quantile), the round is scored against it
    /// ([`score_round`]'s rules otherwise), and the scores go into the EMA ([`ScoreBook::update`]).
    /// Returns the round's scores.
    ///
    /// Why a moving reference: a round's quantile comes from the miners that drew the class that round.
    /// In a round where the fastest miners drew another class, it drops, and everyone present earns
    /// more; many uids behind one GPU are present in every class every round and would collect those
    /// gains (+33 % to +60 % for a 4-way split in the simulator's issue-17 population with a
    /// per-round reference). A slow-moving reference keeps a round's luck of the draw small.
    pub fn fold_round(&mut self, observations: &[Observation], policy: &Policy) -> BTreeMap<u16, f64> {
        self.fold_round_in(observations, policy, &BTreeMap::new())
    }

    /// [`ScoreBook::fold_round`] where some classes were scored in a named variant this round (the
    /// validator names the round's matmul dtype class): each such class's reference moves only with
    /// rounds of the same variant (`variant_references`), the others as in `fold_round`.
    pub fn fold_round_in(
        &mut self,
        observations: &[Observation],
        policy: &Policy,
        variants: &BTreeMap<TaskClass, String>,
    ) -> BTreeMap<u16, f64> {
        let alpha = policy.latency.reference_alpha;
        let move_toward = |old: Option<&f64>, now: f64| match old {
            Some(&old) if old.is_finite() && old > 0.0 => alpha * now + (1.0 - alpha) * old,
            _ => now,
        };
        let mut reference = round_references(observations, policy);
        for (class, (_, speed)) in &mut reference {
            *speed = match variants.get(class) {
                Some(variant) => {
                    let key = format!("{class}:{variant}");
                    let moved = move_toward(self.variant_references.get(&key), *speed);
                    self.variant_references.insert(key, moved);
                    moved
                }
                None => {
                    let moved = move_toward(self.references.get(class), *speed);
                    self.references.insert(*class, moved);
                    moved
                }
            };
        }
        let scores = score_against(observations, policy, &reference);
        self.update(&scores, policy.ema.alpha);
        scores
    }

    /// Drop a uid (deregistered, or its hotkey changed), so a new owner starts from zero.
    pub fn forget(&mut self, uid: u16) {
        self.scores.remove(&uid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(
        uid: u16,
        class: &str,
        passed: bool,
        reason: &str,
        elapsed: f64,
        rtt: f64,
        work: f64,
    ) -> Observation {
        Observation {
            uid,
            task_class: class.parse().unwrap(),
            passed,
            reason: reason.parse().unwrap(),
            elapsed_seconds: elapsed,
            rtt_seconds: rtt,
            work_units: work,
            devices: 1,
        }
    }

    fn group(uid: u16, devices: u32, elapsed: f64, work: f64) -> Observation {
        Observation {
            devices,
            ..obs(uid, "matmul", true, "passed", elapsed, 0.0, work)
        }
    }

    /// Issue 17: a box earns for every GPU it has, and no more. Peers (uids 10..14) run one GPU that
    /// does 1e9 work in 1 s. A real 2-GPU box answers its 2 concurrent challenges in the same second
    /// and earns twice a 1-GPU miner; a 1-GPU miner claiming 8 devices answers 8 challenges in 8 s
    /// and earns what it would have earned honestly, and so does the same GPU split over 4 uids.
    #[test]
    fn a_device_group_earns_per_real_gpu_and_lying_or_splitting_earns_nothing_extra() {
        let p = Policy::default();
        let peers = |extra: Vec<Observation>| {
            let mut round: Vec<Observation> = (10..14).map(|u| group(u, 1, 1.0, 1e9)).collect();
            round.extend(extra);
            score_round(&round, &p)
        };
        let honest = peers(vec![group(1, 1, 1.0, 1e9)])[&1];
        let liar = peers(vec![group(1, 8, 8.0, 8e9)])[&1];
        let two = peers(vec![group(1, 2, 1.0, 2e9)])[&1];
        assert!(liar <= honest * (1.0 + 1e-9), "liar {liar} vs honest {honest}");
        assert!(
            (two / honest - 2.0).abs() < 0.05,
            "2 GPUs earn {two}, one {honest}"
        );
        // The liar's 8 challenges do not drag the reference down: the peers score as before.
        let with_liar = peers(vec![group(1, 8, 8.0, 8e9)]);
        let with_honest = peers(vec![group(1, 1, 1.0, 1e9)]);
        assert!((with_liar[&10] - with_honest[&10]).abs() < 1e-9);
        // One GPU split over 4 uids, each getting a quarter of it.
        let split = peers((1..=4).map(|u| group(u, 1, 4.0, 1e9)).collect());
        let split_total: f64 = (1..=4).map(|u| split[&u]).sum();
        assert!(
            split_total <= honest * (1.0 + 1e-9),
            "split {split_total} vs {honest}"
        );
        // A failed group costs one challenge's penalty at its per-challenge size, not eight.
        let mut failed = group(1, 8, 8.0, 8e9);
        failed.passed = false;
        failed.reason = Reason::WrongRow;
        let mut round: Vec<Observation> = (10..14).map(|u| group(u, 1, 1.0, 1e9)).collect();
        round.push(failed);
        round.push(group(1, 1, 1.0, 1e9));
        // One good answer (1 credit) and one failed group (−2 at `failed_verification` 2, not −16):
        // net −1 over two challenges.
        let net = score_round(&round, &p)[&1];
        assert!((net + 0.5).abs() < 1e-9, "{net}");
    }

    /// The book's reference moves slowly: a round in which only a slow uid drew the class (the fast
    /// ones drew another) pays it about its speed over the usual reference, not a full credit as the
    /// stateless per-round reference would. A book saved before references existed still loads.
    #[test]
    fn the_book_reference_keeps_a_round_s_luck_of_the_draw_small() {
        let p = Policy::default();
        let mut book = ScoreBook::new();
        let full: Vec<Observation> = (1..=4)
            .map(|u| obs(u, "matmul", true, "passed", 1.0, 0.0, 1e9))
            .chain([obs(9, "matmul", true, "passed", 4.0, 0.0, 1e9)])
            .collect();
        for _ in 0..20 {
            book.fold_round(&full, &p);
        }
        assert!((book.references[&TaskClass::Matmul] - 1e9).abs() < 1.0);
        // uid 9 alone, at a quarter of the fast speed.
        let alone = [obs(9, "matmul", true, "passed", 4.0, 0.0, 1e9)];
        assert_eq!(
            score_round(&alone, &p)[&9],
            1.0,
            "stateless: the round's own reference"
        );
        let s = book.fold_round(&alone, &p)[&9];
        assert!((0.25..0.3).contains(&s), "{s}");
        let old: ScoreBook = serde_json::from_str(r#"{"scores":{"1":0.5},"rounds":3}"#).unwrap();
        assert!(old.references.is_empty() && old.rounds == 3);
        let mut p1 = p.clone();
        p1.latency.reference_alpha = 1.0;
        let mut b = book.clone();
        assert_eq!(
            b.fold_round(&alone, &p1)[&9],
            1.0,
            "alpha 1 is the per-round reference"
        );
    }

    /// A record written before device groups (no `devices` field) reads as single challenges, and a
    /// single challenge serializes without the field.
    #[test]
    fn devices_defaults_to_one_on_the_wire() {
        let o = obs(1, "matmul", true, "passed", 1.0, 0.0, 1e9);
        let json = serde_json::to_string(&o).unwrap();
        assert!(!json.contains("devices"), "{json}");
        assert_eq!(serde_json::from_str::<Observation>(&json).unwrap(), o);
        let g = group(1, 4, 1.0, 4e9);
        assert_eq!(
            serde_json::from_str::<Observation>(&serde_json::to_string(&g).unwrap()).unwrap(),
            g
        );
    }

    #[test]
    fn faster_compute_scores_higher_and_rtt_is_subtracted() {
        let p = Policy::default();
        let mut last = f64::INFINITY;
        for t in [0.5, 1.0, 2.0, 4.0] {
            // Four peers at 1 s set the reference; uid 1 varies.
            let mut round: Vec<Observation> = (2..6)
                .map(|u| obs(u, "matmul", true, "passed", 1.0, 0.0, 1e9))
                .collect();
            round.push(obs(1, "matmul", true, "passed", t, 0.0, 1e9));
            // Relative to a peer: weights are relative, and a fast uid may set the reference itself.
            let scores = score_round(&round, &p);
            let s = scores[&1] / scores[&2];
            assert!(s < last, "score must fall as compute time grows");
            last = s;
        }
        // Same compute, different network distance: equal scores.
        let round = [
            obs(1, "matmul", true, "passed", 1.0, 0.0, 1e9),
            obs(2, "matmul", true, "passed", 1.3, 0.3, 1e9),
        ];
        let s = score_round(&round, &p);
        assert!((s[&1] - s[&2]).abs() < 1e-12);
    }

    #[test]
    fn failures_score_zero_and_verification_failures_cost_more() {
        let p = Policy::default();
        let round = [
            obs(1, "matmul", true, "passed", 1.0, 0.0, 1e9),
            obs(1, "matmul", false, "timeout", 1.0, 0.0, 1e9),
            obs(2, "matmul", true, "passed", 1.0, 0.0, 1e9),
            obs(2, "matmul", false, "wrong_row", 1.0, 0.0, 1e9),
            obs(3, "matmul", false, "timeout", 9.0, 0.0, 1e9),
            obs(4, "matmul", false, "bad_challenge", 1.0, 0.0, 1e9),
        ];
        let s = score_round(&round, &p);
        assert_eq!(s[&3], 0.0);
        assert!(s[&1] > 0.0);
        assert!(s[&2] < s[&1]);
        assert!(!s.contains_key(&4), "validator-side failures are ignored");
    }

    /// Rounds in a slow variant of a class (f32 matmul, 13× slower than bf16 on an H200) keep their
    /// own reference: an honest miner at the variant's usual speed earns the same in either variant's
    /// rounds, where one shared slow-moving reference would pay the f32 rounds a thirteenth.
    #[test]
    fn each_variant_keeps_its_own_reference() {
        let p = Policy::default();
        let mut book = ScoreBook::new();
        let round = |elapsed: f64| {
            [
                obs(1, "matmul", true, "passed", elapsed, 0.0, 1e9),
                obs(2, "matmul", true, "passed", elapsed, 0.0, 1e9),
            ]
        };
        let bf16 = BTreeMap::from([(TaskClass::Matmul, "bf16".to_string())]);
        let f32 = BTreeMap::from([(TaskClass::Matmul, "f32".to_string())]);
        let mut last = (0.0, 0.0);
        for _ in 0..20 {
            last.0 = book.fold_round_in(&round(0.1), &p, &bf16)[&1];
            last.1 = book.fold_round_in(&round(1.3), &p, &f32)[&1];
        }
        assert!((last.0 - last.1).abs() < 1e-9, "{last:?}");
        assert!((last.0 - 1.0).abs() < 1e-9, "{last:?}");
        assert!(book.references.is_empty());
        assert_eq!(book.variant_references.len(), 2);
        // One shared reference: the f32 rounds pay far less than the bf16 ones.
        let mut shared = ScoreBook::new();
        for _ in 0..20 {
            last.0 = shared.fold_round(&round(0.1), &p)[&1];
            last.1 = shared.fold_round(&round(1.3), &p)[&1];
        }
        assert!(last.1 < 0.5 * last.0, "{last:?}");
    }

    /// A miner that cheats on one class and answers the other honestly (the localnet's `lazy` miner:
    /// it skips matmul rows and serves inference) must not keep its honest rounds' credit: a round
    /// it fails verification in scores negative, the debt carries through the EMA, and its weight is
    /// 0 while an honest peer's is not. With round scores clamped at 0 it kept about half an honest
    /// miner's EMA.
    #[test]
    fn a_failed_verification_carries_into_the_ema_and_costs_the_weight() {
        use crate::weights::{ChainLimits, weights_from_scores};
        let p = Policy::default();
        let mut book = ScoreBook::new();
        for round in 0..40 {
            let class = if round % 2 == 0 { "matmul" } else { "inference" };
            let cheat_passes = class == "inference";
            let reason = if cheat_passes { "passed" } else { "wrong_row" };
            let obs = [
                obs(1, class, true, "passed", 1.0, 0.0, 1e9),
                obs(2, class, true, "passed", 1.0, 0.0, 1e9),
                obs(3, class, cheat_passes, reason, 1.0, 0.0, 1e9),
            ];
            let scores = book.fold_round(&obs, &p);
            if !cheat_passes {
                assert!(scores[&3] < 0.0, "round {round}: {scores:?}");
            }
        }
        assert!(book.scores[&1] > 0.5, "{:?}", book.scores);
        assert!(book.scores[&3] < 0.0, "the cheater's debt: {:?}", book.scores);
        let limits = ChainLimits {
            n: 4,
            min_allowed_weights: 0,
            max_weight_limit: u16::MAX,
        };
        let w = weights_from_scores(&book.scores, &p, &limits).unwrap();
        let of = |uid: u16| w.uids.iter().position(|&u| u == uid).map_or(0, |i| w.weights[i]);
        assert!(of(1) > 0 && of(2) > 0, "{w:?}");
        assert_eq!(of(3), 0, "{w:?}");
    }

    /// Serving paying requests pays: with equal challenge results, the miner with more verified organic
    /// tokens scores higher, a miner that served nobody loses the share, and one wrong organic answer
    /// costs the volume share and a failed challenge's penalty. A round without organic tokens scores as
    /// before.
    #[test]
    fn verified_organic_tokens_earn_the_volume_share_and_cheating_forfeits_it() {
        let p = Policy::default();
        let challenges: Vec<Observation> = (1..=4)
            .map(|u| obs(u, "matmul", true, "passed", 1.0, 0.0, 1e9))
            .collect();
        let plain = score_round(&challenges, &p);
        let mut round = challenges.clone();
        // uid 1 served 300 verified tokens, uid 2 100, uid 3 none, uid 4 200 and one wrong answer.
        round.extend([
            obs(1, "organic", true, "passed", 2.0, 0.0, 200.0),
            obs(1, "organic", true, "passed", 1.0, 0.0, 100.0),
            obs(2, "organic", true, "passed", 1.0, 0.0, 100.0),
            obs(4, "organic", true, "passed", 2.0, 0.0, 200.0),
            obs(4, "organic", false, "wrong_token", 1.0, 0.0, 100.0),
        ]);
        let s = score_round(&round, &p);
        assert!(s[&1] > s[&2] && s[&2] > s[&3], "{s:?}");
        assert!(
            s[&4] < s[&3],
            "a cheat on organic traffic must cost more than serving nobody: {s:?}"
        );
        // uid 3 had no organic observation: only the share is lost.
        assert!(
            (s[&3] - (1.0 - p.organic.share) * plain[&3]).abs() < 1e-12,
            "{s:?} {plain:?}"
        );
        // A share of 0 leaves the task mix alone: uid 3 scores exactly as without organic traffic.
        let mut no_share = p.clone();
        no_share.organic.share = 0.0;
        assert_eq!(score_round(&round, &no_share)[&3], plain[&3]);
        // Organic answers that failed for the validator's own reasons change nothing.
        let mut ignored = challenges;
        ignored.push(obs(2, "organic", false, "bad_challenge", 1.0, 0.0, 100.0));
        assert_eq!(score_round(&ignored, &p), plain);
    }

    /// `unreachable` is an availability fact: it costs `penalties.unavailable`, never the verification
    /// penalty.
    #[test]
    fn unreachable_costs_the_unavailable_penalty_only() {
        let mut p = Policy::default();
        p.penalties.unavailable = 0.25;
        let round = [
            obs(1, "matmul", true, "passed", 1.0, 0.0, 1e9),
            obs(1, "matmul", true, "passed", 1.0, 0.0, 1e9),
            obs(2, "matmul", true, "passed", 1.0, 0.0, 1e9),
            obs(2, "matmul", false, "unreachable", 1.0, 0.0, 1e9),
            obs(3, "matmul", true, "passed", 1.0, 0.0, 1e9),
            obs(3, "matmul", false, "timeout", 1.0, 0.0, 1e9),
            obs(4, "matmul", true, "passed", 1.0, 0.0, 1e9),
            obs(4, "matmul", false, "wrong_row", 1.0, 0.0, 1e9),
        ];
        let s = score_round(&round, &p);
        assert!((s[&2] - s[&3]).abs() < 1e-12, "{s:?}");
        assert!(s[&2] < s[&1] && s[&2] > s[&4], "{s:?}");
    }

    #[test]
    fn work_size_counts_and_classes_are_separate() {
        let p = Policy::default();
        let round = [
            obs(1, "matmul", true, "passed", 1.0, 0.0, 2e9),
            obs(2, "matmul", true, "passed", 0.5, 0.0, 1e9),
            obs(3, "inference", true, "passed", 10.0, 0.0, 100.0),
        ];
        let s = score_round(&round, &p);
        // Same throughput, twice the work: more credit.
        assert!(s[&1] > s[&2]);
        // uid 3 is the only (hence reference) inference miner; it got nothing in matmul.
        assert!(s[&3] > 0.0);
    }

    #[test]
    fn ema_state_round_trips_exactly() {
        let p = Policy::default();
        let mut a = ScoreBook::new();
        let rounds: Vec<BTreeMap<u16, f64>> = (0..5)
            .map(|r| {
                let round: Vec<Observation> = (0..4)
                    .map(|u| {
                        obs(
                            u,
                            "matmul",
                            true,
                            "passed",
                            0.3 + f64::from(u) * 0.17 + f64::from(r) * 0.01,
                            0.02,
                            1e9,
                        )
                    })
                    .collect();
                score_round(&round, &p)
            })
            .collect();
        for r in &rounds[..2] {
            a.update(r, p.ema.alpha);
        }
        let saved = serde_json::to_string(&a).unwrap();
        let mut b: ScoreBook = serde_json::from_str(&saved).unwrap();
        for r in &rounds[2..] {
            a.update(r, p.ema.alpha);
            b.update(r, p.ema.alpha);
        }
        assert_eq!(a, b);
        assert_eq!(a.rounds, 5);
    }
}
