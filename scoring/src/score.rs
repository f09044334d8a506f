//! From verdicts to per-miner scores: one round at a time ([`score_round`]), smoothed across rounds
//! ([`ScoreBook`]).
//!
//! Rules, in order:
//! 1. Correctness gates everything: only a passed answer earns credit.
//! 2. A passed answer earns `work / mean_work × latency_factor`, where `mean_work` is the mean work
//!    of all challenges of that task class in the round (so classes measured in different units,
//!    multiply-adds or tokens, are comparable and bigger challenges count for more) and the
//!    latency factor compares its throughput (work per compute second, compute = measured time −
//!    measured RTT) with the round's reference throughput for the class, a work-weighted quantile
//!    (`latency.reference_quantile`) of the passed answers' throughput ([`LatencyCurve`]).
//! 3. A failed verification costs `penalties.failed_verification` credits at the mean work;
//!    a timeout, an unreachable miner, a refusal or a malformed answer costs `penalties.unavailable`
//!    (0 by default); reasons
//!    in `penalties.ignored_codes` (the validator's own fault) are dropped.
//! 4. A miner's round score is its net credit per challenge, each challenge weighted by its class's
//!    task-mix weight (never below 0). Averaging per challenge, not per class, means a miner is not
//!    marked down for classes a validator happened not to send it this round. A checked organic answer
//!    (class `organic`) counts here as one challenge.
//! 5. In a round that verified organic tokens, `organic.share` of the score is paid by volume: each
//!    miner's verified organic tokens over the most any miner had (none for a miner that failed an
//!    organic check in the round), see [`crate::policy::Organic`].
//!
//! ```
//! use scoring::policy::Policy;
//! use scoring::score::{score_round, Observation};
//! use scoring::task::{Reason, TaskClass};
//!
//! let obs = |uid, passed, elapsed| Observation {
//!     uid, task_class: TaskClass::Matmul, passed,
//!     reason: if passed { Reason::Passed } else { Reason::WrongRow },
//!     elapsed_seconds: elapsed, rtt_seconds: 0.05, work_units: 8.0e9,
//! };
//! let scores = score_round(&[obs(1, true, 1.0), obs(2, true, 2.0), obs(3, false, 0.5)], &Policy::default());
//! assert!(scores[&1] > scores[&2]);
//! assert_eq!(scores[&3], 0.0);
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
    /// The work the challenge represents (multiply-adds, tokens).
    pub work_units: f64,
}

impl Observation {
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

/// Score one round of observations: a score ≥ 0 for every uid that appears (0 for a uid that only
/// failed). Scores are in credits per challenge: 0.5 for a miner at the reference speed on mean-size work.
pub fn score_round(observations: &[Observation], policy: &Policy) -> BTreeMap<u16, f64> {
    let min_c = policy.latency.min_compute_seconds;
    let pen = &policy.penalties;
    let usable = |o: &&Observation| {
        pen.treatment(o.reason) != Treatment::Ignored && o.work_units.is_finite() && o.work_units > 0.0
    };
    // Per class: the mean work of every challenge sent (the validator chooses the sizes, so miners
    // cannot move it), and the reference throughput: a work-weighted quantile of the passed answers'
    // throughput (every unit of work gets one vote, so large challenges, whose timing network jitter
    // barely touches, set it).
    let mut work: BTreeMap<TaskClass, (f64, f64)> = BTreeMap::new();
    let mut speeds: BTreeMap<TaskClass, Vec<(f64, f64)>> = BTreeMap::new();
    for o in observations.iter().filter(usable) {
        let w = work.entry(o.task_class).or_default();
        w.0 += o.work_units;
        w.1 += 1.0;
        if o.passed {
            let speed = o.work_units / o.compute_seconds(min_c);
            speeds
                .entry(o.task_class)
                .or_default()
                .push((speed, o.work_units));
        }
    }
    let reference: BTreeMap<TaskClass, (f64, f64)> = speeds
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
        .collect();

    // Per uid: mix-weighted net credit and mix-weighted challenge count.
    let mut net: BTreeMap<u16, (f64, f64)> = BTreeMap::new();
    for o in observations.iter().filter(usable) {
        let mix = policy.tasks.weight_of(o.task_class);
        let e = net.entry(o.uid).or_default();
        e.1 += mix;
        let Some(&(mean_work, med_speed)) = reference.get(&o.task_class) else {
            // Nobody passed this class in the round: nothing to compare with, and no credit to lose.
            continue;
        };
        let size = o.work_units / mean_work;
        let credit = if o.passed {
            let speed = o.work_units / o.compute_seconds(min_c);
            size * policy.latency.factor(speed / med_speed)
        } else if pen.treatment(o.reason) == Treatment::FailedVerification {
            -size * pen.failed_verification
        } else {
            -size * pen.unavailable
        };
        e.0 += mix * credit;
    }
    let scores = net.into_iter().map(|(uid, (credit, weight))| {
        (
            uid,
            if weight > 0.0 {
                (credit / weight).max(0.0)
            } else {
                0.0
            },
        )
    });
    with_organic_volume(scores.collect(), observations, policy)
}

/// Rule 5: blends in the volume share ([`crate::policy::Organic`]) when the round verified organic
/// tokens; otherwise returns `scores` unchanged.
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
    let most = tokens.values().copied().fold(0.0, f64::max);
    if share <= 0.0 || most <= 0.0 {
        return scores;
    }
    for (uid, score) in &mut scores {
        let volume = tokens.get(uid).map_or(0.0, |t| t / most);
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
        }
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
            let s = score_round(&round, &p)[&1];
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
