//! The owner policy: every incentive knob a subnet owner turns, read from TOML and validated.
//!
//! Every field has a documented default, so an empty file is a valid policy. Invalid values are
//! refused with an error that names the field and its allowed range.
//!
//! ```
//! let policy = scoring::policy::Policy::from_toml_str(r#"
//!     [tasks.mix]
//!     matmul = 3.0
//!     inference = 1.0
//!
//!     [latency]
//!     shape = "logistic"
//!     softness = 0.4
//!
//!     [burn]
//!     share = 0.1
//!     uid = 0
//! "#).unwrap();
//! assert_eq!(policy.ema.alpha, 0.1);
//!
//! let err = scoring::policy::Policy::from_toml_str("[ema]\nalpha = 2.0").unwrap_err();
//! assert!(err.to_string().contains("ema.alpha"));
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::task::{Reason, TaskClass, Treatment};

/// A complete owner policy. See each section for its defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// Which task classes count, and how much.
    pub tasks: TaskMix,
    /// The latency curve.
    pub latency: LatencyCurve,
    /// Score smoothing across rounds.
    pub ema: Ema,
    /// Extra penalties for failures.
    pub penalties: Penalties,
    /// The owner's emission sink.
    pub burn: Burn,
    /// Score floors applied when turning scores into weights.
    pub weights: WeightRules,
    /// What serving paying requests (the validator's API) is worth. Not serialized at its default, so
    /// a policy logged before this section existed hashes as it did then.
    #[serde(skip_serializing_if = "Organic::is_default")]
    pub organic: Organic,
}

/// The task mix: the share of a miner's round score each task class carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TaskMix {
    /// Relative weight per task class (default `matmul = 1`, `inference = 1`, `organic = 1`: a
    /// checked organic answer counts as one challenge, so a wrong one costs what a failed challenge
    /// does). Keys are class names
    /// ([`TaskClass`]); a name that is no class is an error. Weights are relative; they need not sum to
    /// 1. Allowed range per entry: [0, 1000].
    pub mix: BTreeMap<TaskClass, f64>,
    /// Weight of a class the mix does not list (default 0: unlisted classes do not count). Range
    /// [0, 1000].
    pub unlisted: f64,
}

impl Default for TaskMix {
    fn default() -> Self {
        Self {
            mix: BTreeMap::from([
                (TaskClass::Matmul, 1.0),
                (TaskClass::Inference, 1.0),
                (TaskClass::Organic, 1.0),
            ]),
            unlisted: 0.0,
        }
    }
}

impl TaskMix {
    /// The weight of a task class under this mix.
    pub fn weight_of(&self, class: TaskClass) -> f64 {
        self.mix.get(&class).copied().unwrap_or(self.unlisted)
    }
}

/// The latency curve: how a correct answer's speed, relative to the other miners on the same task
/// class in the same round, scales its credit.
///
/// Speed is throughput: work units per second of compute time, where compute time is the time the
/// validator measured minus the round-trip time it measured on the same connection (for a miner sent
/// one challenge per device, the group's work over the group's wall time). `ratio` is speed over the
/// round's reference speed for that class (see `reference_quantile`).
///
/// **`shape = "linear"` (the default)**: the factor is `min(ratio, max_ratio)`: credit is
/// proportional to throughput. That is the only shape under which splitting one GPU across `k` uids
/// neither pays nor costs: each uid gets `1/k` of the GPU, so `k · (ratio / k) = ratio`. It also pays a
/// box with `d` GPUs `d` times one GPU (the validator sends it `d` challenges at once), and a miner 100×
/// as fast 100× as much. What keeps timing noise from deciding emission is not a bounded curve but the
/// challenge size (the validator sizes challenges to keep a GPU busy for tens of milliseconds, far above
/// network jitter), `min_compute_seconds` and the cap `max_ratio`.
///
/// **`shape = "logistic"`**: the factor is `floor + (1 − floor) · 1 / (1 + e^(−x / softness))` with
/// `x = ln(ratio)`: bounded (a miner can never take more than a full credit, however fast), smooth and
/// symmetric in log-speed. ComputeHorde's `1/t` and `1 − t/(2·timeout)` rewards let jitter decide
/// emission (see `prior-art.md` §2), which is why this shape was the first default. Its weakness is
/// saturation: near and above the reference, twice the speed earns far less than twice the credit, so
/// a fast GPU split across uids (each at a lower ratio, on the steep part of the curve) earns more than
/// the same GPU as one uid, and an 8-GPU box cannot earn 8×. With `floor = 0` the factor is
/// `r^(1/softness) / (1 + r^(1/softness))`; splitting loses only while every split uid stays well below
/// the reference. Kept for owners who prefer a bounded reward.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LatencyCurve {
    /// `linear` (default) or `logistic`: see the type's documentation.
    pub shape: CurveShape,
    /// Logistic only: width of the logistic in log-speed units (default 0.5: twice the reference speed
    /// earns 0.80 of the span above the floor, half earns 0.20). Larger is flatter. Range (0, 10].
    pub softness: f64,
    /// Logistic only: factor for a correct answer infinitely slower than the reference (default 0).
    /// Range [0, 1]. A floor above 0 pays sybils: k uids behind one GPU each earn at least `floor`, so
    /// splitting a GPU across many uids eventually beats running it as one; the simulator shows where.
    pub floor: f64,
    /// Which quantile of the round's passed throughputs (per class, per device, each answer's vote
    /// weighted by the compute it delivered: work per device times throughput) is the reference speed
    /// (default 0.75). Weighting by delivered compute gives every GPU's compute the same vote however
    /// many uids it is split across or devices it claims; above the median so that a crowd of slow
    /// uids cannot drag the reference down; below 1 so that one outlier cannot set it. Under the linear
    /// shape the reference only scales every credit of the class alike (and sets what `max_ratio` and
    /// the penalties mean), so moving it gains no miner a larger share of the class. Range [0.5, 1].
    pub reference_quantile: f64,
    /// How far each round moves a class's reference toward that round's quantile (default 0.05: a
    /// change of hardware shows half its effect after about 14 rounds). 1 uses each round's quantile
    /// alone. The reference lives in the validator's score book ([`crate::score::ScoreBook::fold_round`]):
    /// a round's quantile depends on which miners drew the class that round, and a slow reference
    /// keeps that luck of the draw from paying uids that are present in every class every round (many
    /// uids behind one GPU). Range (0, 1].
    pub reference_alpha: f64,
    /// Smallest compute time credited, in seconds, so that an RTT measured too high cannot make an
    /// answer look instant (default 0.001). Range (0, 60].
    pub min_compute_seconds: f64,
    /// Linear only: the most one answer (or one device group) is credited, as a multiple of the
    /// reference speed (default 100). A cap bounds what one mismeasured timing can earn, but it also
    /// reopens the split: a box faster than `max_ratio` × the reference earns more split across uids
    /// (each below the cap) than as one. Keep it above the fastest box you expect (8 GPUs each 3× the
    /// reference is 24); challenge sizes and `min_compute_seconds` are the noise guards. Range
    /// [1, 1e6].
    pub max_ratio: f64,
}

/// The shape of the [`LatencyCurve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CurveShape {
    /// Credit proportional to throughput, up to `max_ratio` (the default).
    #[default]
    Linear,
    /// The bounded logistic in log-speed (`softness`, `floor`).
    Logistic,
}

impl Default for LatencyCurve {
    fn default() -> Self {
        Self {
            shape: CurveShape::Linear,
            softness: 0.5,
            floor: 0.0,
            reference_quantile: 0.75,
            reference_alpha: 0.05,
            min_compute_seconds: 0.001,
            max_ratio: 100.0,
        }
    }
}

impl LatencyCurve {
    /// The latency factor for a speed relative to the round reference (`ratio = speed / reference`):
    /// `min(ratio, max_ratio)` for the linear shape (1 at the reference), in `[floor, 1]` for the
    /// logistic (0.5 at the reference). A non-finite or non-positive ratio earns the floor (linear: 0).
    pub fn factor(&self, ratio: f64) -> f64 {
        match self.shape {
            CurveShape::Linear => {
                if ratio.is_finite() && ratio > 0.0 {
                    ratio.min(self.max_ratio)
                } else {
                    0.0
                }
            }
            CurveShape::Logistic => {
                if !ratio.is_finite() || ratio <= 0.0 {
                    return self.floor;
                }
                let x = ratio.ln() / self.softness;
                self.floor + (1.0 - self.floor) / (1.0 + (-x).exp())
            }
        }
    }
}

/// Exponential moving average of round scores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Ema {
    /// Weight of the newest round (default 0.1: a change shows half its effect after about 7 rounds).
    /// Range (0, 1].
    pub alpha: f64,
}

impl Default for Ema {
    fn default() -> Self {
        Self { alpha: 0.1 }
    }
}

/// Penalties, in credits at the challenge's size: a credit is what a reference-speed answer earns under
/// the linear curve (the logistic pays 0.5 at the reference and at most 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Penalties {
    /// Extra penalty for an answer that failed verification, on top of earning nothing (default 2: one
    /// wrong answer cancels two reference-speed answers, what the default of 1 cost when the logistic
    /// paid 0.5 at the reference). Range [0, 100].
    pub failed_verification: f64,
    /// Penalty for a miner that was not available or did not answer usefully (default 0: those just
    /// earn nothing): codes `timeout`, `unreachable` (connection refused or broken), `refused` (the
    /// miner declined: busy, unauthorized) and `malformed` (an answer that is not what was asked), and
    /// any other code not listed below. Range [0, 100].
    pub unavailable: f64,
    /// Reason codes that count as failed verification (default: the codes whose
    /// [`Reason::default_treatment`] is a failed verification: `wrong_sketch`, `wrong_row`,
    /// `bad_shape`, `bad_value`, `wrong_token`, `out_of_vocab`). A name that is no reason code is an
    /// error.
    pub verification_failure_codes: Vec<Reason>,
    /// Reason codes that are the validator's own fault and are ignored entirely (default: those whose
    /// default treatment is to be ignored, `bad_challenge`).
    pub ignored_codes: Vec<Reason>,
}

impl Penalties {
    /// How this policy counts an answer with `reason`: `passed` earns credit; a code in
    /// `ignored_codes` is dropped, one in `verification_failure_codes` is a failed verification, and
    /// any other (timeout, refusal, malformed answer) is unavailable.
    pub fn treatment(&self, reason: Reason) -> Treatment {
        if reason == Reason::Passed {
            Treatment::Credit
        } else if self.ignored_codes.contains(&reason) {
            Treatment::Ignored
        } else if self.verification_failure_codes.contains(&reason) {
            Treatment::FailedVerification
        } else {
            Treatment::Unavailable
        }
    }
}

/// The reasons whose default treatment is `t`, in [`Reason::ALL`] order.
fn reasons_treated(t: Treatment) -> Vec<Reason> {
    Reason::ALL
        .into_iter()
        .filter(|r| r.default_treatment() == t)
        .collect()
}

impl Default for Penalties {
    fn default() -> Self {
        Self {
            failed_verification: 2.0,
            unavailable: 0.0,
            verification_failure_codes: reasons_treated(Treatment::FailedVerification),
            ignored_codes: reasons_treated(Treatment::Ignored),
        }
    }
}

/// The owner's burn: a share of every weight vector sent to one uid the owner controls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Burn {
    /// Share of the weight given to `uid` (default 0: no burn). Range [0, 1]; 1 burns everything.
    pub share: f64,
    /// The uid receiving the burn (default 0, usually the owner's hotkey).
    pub uid: u16,
}

/// Floors applied to scores before they become weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct WeightRules {
    /// Scores below this fraction of the best score get no weight (default 0). Range [0, 1).
    pub min_relative_score: f64,
}

/// Organic serving: the share of a round's score paid for verified organic tokens.
///
/// Checked organic answers already count in the task mix (class `organic`), like challenges: by size
/// and speed when they pass, `penalties.failed_verification` when they do not. That alone would not pay
/// for serving: a score is an average per challenge, so a miner that served nobody is not marked down.
/// The volume share does: in a round where any organic tokens were verified, a miner's score becomes
/// `(1 − share) · score + share · (tokens / all_tokens) · all_scores`, where `tokens` are the organic
/// tokens verified for it that round, `all_tokens` those of every miner and `all_scores` the sum of the
/// round's scores before the blend: exactly `share` of the round's score goes by serving volume, in the
/// scores' own units (a reference-speed answer is 1 under the linear curve, 0.5 under the logistic, and
/// a box of `d` GPUs scores `d`), so the share keeps its meaning whatever the curve and the boxes. A
/// miner with any organic answer that failed
/// verification in the round forfeits its volume share for that round. Tokens are those checked (a
/// random sample of everything served, `[api] verify_fraction`), so the share tracks tokens served
/// without paying for any that nobody checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Organic {
    /// Share of the round score paid by verified organic volume (default 0.2). Range [0, 1]; 0 turns
    /// volume pay off (checked answers still count in the task mix).
    pub share: f64,
}

impl Default for Organic {
    fn default() -> Self {
        Self { share: 0.2 }
    }
}

impl Organic {
    fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// A policy value outside its allowed range, or a file that is not a policy.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PolicyError {
    /// A numeric field is outside its range.
    #[error("policy field `{field}` is {value}, but it must be in {allowed}; fix it in the policy file")]
    OutOfRange {
        /// The dotted field path, e.g. `latency.softness`.
        field: String,
        /// The value given.
        value: f64,
        /// The allowed range, in interval notation.
        allowed: &'static str,
    },
    /// The TOML does not parse or has unknown fields.
    #[error("the policy file is not valid: {0}")]
    Parse(String),
}

fn check(field: &str, value: f64, ok: bool, allowed: &'static str) -> Result<(), PolicyError> {
    if ok && value.is_finite() {
        Ok(())
    } else {
        Err(PolicyError::OutOfRange {
            field: field.to_string(),
            value,
            allowed,
        })
    }
}

impl Policy {
    /// Parse and validate a policy from TOML text.
    pub fn from_toml_str(text: &str) -> Result<Self, PolicyError> {
        let policy: Self = toml::from_str(text).map_err(|e| PolicyError::Parse(e.to_string()))?;
        policy.validate()?;
        Ok(policy)
    }

    /// Check every field against its allowed range.
    pub fn validate(&self) -> Result<(), PolicyError> {
        for (k, &w) in &self.tasks.mix {
            check(
                &format!("tasks.mix.{k}"),
                w,
                (0.0..=1000.0).contains(&w),
                "[0, 1000]",
            )?;
        }
        let u = self.tasks.unlisted;
        check("tasks.unlisted", u, (0.0..=1000.0).contains(&u), "[0, 1000]")?;
        let l = &self.latency;
        check(
            "latency.softness",
            l.softness,
            l.softness > 0.0 && l.softness <= 10.0,
            "(0, 10]",
        )?;
        check("latency.floor", l.floor, (0.0..=1.0).contains(&l.floor), "[0, 1]")?;
        let q = l.reference_quantile;
        check(
            "latency.reference_quantile",
            q,
            (0.5..=1.0).contains(&q),
            "[0.5, 1]",
        )?;
        let m = l.min_compute_seconds;
        check("latency.min_compute_seconds", m, m > 0.0 && m <= 60.0, "(0, 60]")?;
        let ra = l.reference_alpha;
        check("latency.reference_alpha", ra, ra > 0.0 && ra <= 1.0, "(0, 1]")?;
        let c = l.max_ratio;
        check("latency.max_ratio", c, (1.0..=1e6).contains(&c), "[1, 1e6]")?;
        let a = self.ema.alpha;
        check("ema.alpha", a, a > 0.0 && a <= 1.0, "(0, 1]")?;
        let p = &self.penalties;
        check(
            "penalties.failed_verification",
            p.failed_verification,
            (0.0..=100.0).contains(&p.failed_verification),
            "[0, 100]",
        )?;
        check(
            "penalties.unavailable",
            p.unavailable,
            (0.0..=100.0).contains(&p.unavailable),
            "[0, 100]",
        )?;
        check(
            "burn.share",
            self.burn.share,
            (0.0..=1.0).contains(&self.burn.share),
            "[0, 1]",
        )?;
        let r = self.weights.min_relative_score;
        check("weights.min_relative_score", r, (0.0..1.0).contains(&r), "[0, 1)")?;
        let o = self.organic.share;
        check("organic.share", o, (0.0..=1.0).contains(&o), "[0, 1]")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_policy_is_the_default() {
        assert_eq!(Policy::from_toml_str("").unwrap(), Policy::default());
    }

    #[test]
    fn shipped_example_is_the_default() {
        let text = include_str!("../examples/policy.toml");
        assert_eq!(Policy::from_toml_str(text).unwrap(), Policy::default());
    }

    #[test]
    fn errors_name_the_field_and_range() {
        let cases = [
            ("[latency]\nsoftness = 0.0", "latency.softness", "(0, 10]"),
            ("[latency]\nfloor = 1.5", "latency.floor", "[0, 1]"),
            ("[ema]\nalpha = 0.0", "ema.alpha", "(0, 1]"),
            ("[burn]\nshare = -0.1", "burn.share", "[0, 1]"),
            ("[tasks.mix]\nmatmul = -1.0", "tasks.mix.matmul", "[0, 1000]"),
            (
                "[weights]\nmin_relative_score = 1.0",
                "weights.min_relative_score",
                "[0, 1)",
            ),
            ("[organic]\nshare = 1.5", "organic.share", "[0, 1]"),
            (
                "[penalties]\nfailed_verification = 1000.0",
                "penalties.failed_verification",
                "[0, 100]",
            ),
        ];
        for (text, field, range) in cases {
            let msg = Policy::from_toml_str(text).unwrap_err().to_string();
            assert!(msg.contains(field) && msg.contains(range), "{msg}");
        }
        assert!(matches!(
            Policy::from_toml_str("[ema]\nbeta = 1.0"),
            Err(PolicyError::Parse(_))
        ));
    }

    #[test]
    fn mix_is_keyed_by_class() {
        let mix = TaskMix::default();
        assert_eq!(mix.weight_of(TaskClass::Matmul), 1.0);
        assert_eq!(mix.weight_of(TaskClass::Inference), 1.0);
        let only = Policy::from_toml_str("[tasks]\nmix = { matmul = 2.0 }\nunlisted = 0.5").unwrap();
        assert_eq!(only.tasks.weight_of(TaskClass::Matmul), 2.0);
        assert_eq!(only.tasks.weight_of(TaskClass::Inference), 0.5);
        let err = Policy::from_toml_str("[tasks]\nmix = { video = 1.0 }").unwrap_err();
        assert!(err.to_string().contains("video"), "{err}");
    }

    #[test]
    fn logistic_curve_is_bounded_monotone_and_symmetric() {
        let c = LatencyCurve {
            shape: CurveShape::Logistic,
            ..LatencyCurve::default()
        };
        assert!((c.factor(1.0) - 0.5).abs() < 1e-12);
        assert!(c.factor(1e9) <= 1.0 && c.factor(1e-9) >= c.floor);
        let mut last = 0.0;
        for r in [0.1, 0.5, 0.9, 1.0, 1.1, 2.0, 10.0] {
            assert!(c.factor(r) > last);
            last = c.factor(r);
        }
        // Splitting one GPU below the reference over k uids loses; splitting a GPU far above it pays
        // (the saturation the linear default removes).
        for k in 2..50 {
            assert!(f64::from(k) * c.factor(1.0 / f64::from(k)) < c.factor(1.0));
        }
        assert!(4.0 * c.factor(4.0 / 4.0) > c.factor(4.0));
        let mid = c.factor(1.0);
        assert!(((c.factor(2.0) - mid) - (mid - c.factor(0.5))).abs() < 1e-12);
    }

    /// The default curve is linear up to the cap: splitting a GPU over k uids (each at ratio r/k)
    /// earns exactly what the GPU earns as one uid, below the cap; above it, splitting pays, which is
    /// why the cap is generous.
    #[test]
    fn linear_curve_is_split_neutral_below_its_cap() {
        let c = LatencyCurve::default();
        assert_eq!(c.shape, CurveShape::Linear);
        assert_eq!(c.factor(1.0), 1.0);
        assert_eq!(c.factor(0.0), 0.0);
        assert_eq!(c.factor(f64::NAN), 0.0);
        for r in [0.01, 0.3, 1.0, 7.0, 40.0, 100.0] {
            for k in 1..64 {
                let split = f64::from(k) * c.factor(r / f64::from(k));
                assert!((split - c.factor(r)).abs() <= 1e-9 * r, "r={r} k={k}");
            }
        }
        assert_eq!(c.factor(1e4), c.max_ratio);
        assert!(4.0 * c.factor(400.0 / 4.0) > c.factor(400.0));
    }

    /// A policy written before `shape` and `max_ratio` existed still parses (it gets the new defaults).
    #[test]
    fn old_latency_tables_parse() {
        let p = Policy::from_toml_str(
            "[latency]\nsoftness = 0.5\nfloor = 0.0\nreference_quantile = 0.75\nmin_compute_seconds = 0.001",
        )
        .unwrap();
        assert_eq!(p, Policy::default());
        let p = Policy::from_toml_str("[latency]\nshape = \"logistic\"\nsoftness = 0.4").unwrap();
        assert_eq!(p.latency.shape, CurveShape::Logistic);
        assert!(Policy::from_toml_str("[latency]\nshape = \"cubic\"").is_err());
        let err = Policy::from_toml_str("[latency]\nmax_ratio = 0.5").unwrap_err();
        assert!(err.to_string().contains("latency.max_ratio"), "{err}");
    }
}
