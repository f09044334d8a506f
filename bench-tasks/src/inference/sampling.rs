//! The decoding rule: greedy, or seeded sampling (temperature and top-p) that a verifier can replay.
//!
//! # The rule
//! For sequence `b` at generated position `t`, with logits `l` (one per token id):
//! * **Greedy** (`temperature == 0`): the token with the largest logit (the smallest id among equals).
//! * **Sampled** (`temperature = τ > 0`, `top_p = p ∈ (0, 1]`, `seed = s`):
//!   1. probabilities `π = softmax(l / τ)`; the *nucleus* is every token `i` whose strictly more probable
//!      tokens (larger logit, or equal logit and smaller id) hold less than `p` of the mass
//!      (with `p = 1`, every token);
//!   2. Gumbel noise `g_i = −ln(−ln(u_i))` with `u_i = (k + ½) / 2²⁴`, `k` the top 24 bits of word `i` of
//!      `SeededStream::new(SAMPLING_DOMAIN, s, "{b}/{t}")` (see [`super::seeded`]), computed in f64;
//!   3. the token is the nucleus member with the largest `z_i = l_i + τ · g_i` (the Gumbel-max trick: it is
//!      distributed as `π` restricted to the nucleus and renormalised).
//!
//! # Replaying it with a margin
//! The verifier recomputes `l` teacher-forced, and accepts the miner's token `c` when ([`deficit`]):
//! * greedy: `max(l) − l_c ≤ margin`;
//! * sampled: `c` could be in the miner's nucleus (the tokens with `l_j > l_c + 2·margin` hold less than
//!   `p · e^{2·margin/τ}` of the mass), and `max_{i ∈ C} z_i − z_c ≤ margin`, where `C` is the tokens
//!   certainly in any nucleus computed from logits within `margin` of the verifier's (those whose tokens with
//!   `l_j ≥ l_i − 2·margin` other than `i` hold less than `p · e^{−2·margin/τ}` of the mass; all tokens when
//!   `p = 1`).
//!
//! The noise is the same on both sides, so an honest miner whose logits are within `margin/2` of the
//! verifier's always passes, and a token other than the rule's choice passes only when its `z` is within
//! `margin` of the best.

use serde::{Deserialize, Serialize};

use super::InferenceError;
use super::seeded::SeededStream;

/// Domain string of the sampler's noise.
pub const SAMPLING_DOMAIN: &str = "tensorproof/inference/sampling/v1";

/// How tokens are chosen from logits (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sampling {
    /// 0 for greedy; otherwise the softmax temperature, in `(0, 10]`.
    pub temperature: f32,
    /// Nucleus mass in `(0, 1]` (1 keeps every token). Ignored when greedy.
    pub top_p: f32,
    /// Seed of the noise, chosen by the validator. Ignored when greedy.
    pub seed: u64,
}

impl Sampling {
    /// Greedy decoding.
    pub const GREEDY: Self = Self {
        temperature: 0.0,
        top_p: 1.0,
        seed: 0,
    };

    /// Whether this is greedy decoding.
    pub fn is_greedy(&self) -> bool {
        self.temperature == 0.0
    }

    /// Checks the ranges.
    ///
    /// # Errors
    /// [`InferenceError::BadChallenge`] naming `temperature` or `top_p`.
    pub fn validate(&self) -> Result<(), InferenceError> {
        if !(self.temperature.is_finite() && (0.0..=10.0).contains(&self.temperature)) {
            return Err(InferenceError::BadChallenge {
                field: "temperature",
                why: format!("{} is not in [0, 10]", self.temperature),
            });
        }
        if self.temperature > 0.0 && self.temperature < 1e-3 {
            return Err(InferenceError::BadChallenge {
                field: "temperature",
                why: format!(
                    "{} is positive but below 0.001 (use 0 for greedy)",
                    self.temperature
                ),
            });
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(InferenceError::BadChallenge {
                field: "top_p",
                why: format!("{} is not in (0, 1]", self.top_p),
            });
        }
        Ok(())
    }

    /// The token the rule picks for sequence `b`, position `t` (call [`validate`](Self::validate) first).
    pub fn choose(&self, logits: &[f32], b: usize, t: usize) -> u32 {
        if self.is_greedy() {
            return argmax(logits) as u32;
        }
        let noise = self.noise(b, t);
        let tau = f64::from(self.temperature);
        let z = |i: usize| f64::from(logits[i]) + tau * noise.gumbel(i);
        let best = if self.top_p >= 1.0 {
            (0..logits.len()).max_by(|&i, &j| z(i).total_cmp(&z(j)).then(j.cmp(&i)))
        } else {
            let order = sorted_desc(logits);
            let probs = softmax(logits, self.temperature);
            let mut mass = 0.0;
            let mut nucleus = Vec::new();
            for &i in &order {
                if mass >= f64::from(self.top_p) {
                    break;
                }
                nucleus.push(i);
                mass += probs[i];
            }
            nucleus
                .into_iter()
                .max_by(|&i, &j| z(i).total_cmp(&z(j)).then(j.cmp(&i)))
        };
        best.unwrap_or(0) as u32
    }

    fn noise(&self, b: usize, t: usize) -> Noise {
        Noise(SeededStream::new(SAMPLING_DOMAIN, self.seed, &format!("{b}/{t}")))
    }
}

struct Noise(SeededStream);

impl Noise {
    fn gumbel(&self, i: usize) -> f64 {
        let k = self.0.word(i as u64) >> 40;
        let u = (k as f64 + 0.5) / f64::from(1u32 << 24);
        -(-u.ln()).ln()
    }
}

/// Index of the largest value (the first among equals; NaN never wins).
pub fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] || v[best].is_nan() {
            best = i;
        }
    }
    best
}

fn sorted_desc(logits: &[f32]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&i, &j| logits[j].total_cmp(&logits[i]).then(i.cmp(&j)));
    order
}

fn softmax(logits: &[f32], temperature: f32) -> Vec<f64> {
    let tau = f64::from(temperature);
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f64> = logits
        .iter()
        .map(|&l| ((f64::from(l) - f64::from(max)) / tau).exp())
        .collect();
    let sum: f64 = e.iter().sum();
    e.into_iter().map(|x| x / sum).collect()
}

/// How far token `c` falls short of what the rule allows, in logit units, for sequence `b` and position
/// `t` (see the module docs): 0 for the rule's own choice, `+∞` for a token outside any possible nucleus,
/// NaN when the logits are not finite.
pub fn deficit(sampling: &Sampling, logits: &[f32], c: u32, margin: f32, b: usize, t: usize) -> f32 {
    if logits.iter().any(|x| !x.is_finite()) {
        return f32::NAN;
    }
    let c = c as usize;
    if sampling.is_greedy() {
        let top = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        return top - logits[c];
    }
    let noise = sampling.noise(b, t);
    let tau = f64::from(sampling.temperature);
    let z = |i: usize| f64::from(logits[i]) + tau * noise.gumbel(i);
    let zc = z(c);
    if sampling.top_p >= 1.0 {
        let best = (0..logits.len()).map(z).fold(f64::NEG_INFINITY, f64::max);
        return (best - zc).max(0.0) as f32;
    }
    let m2 = 2.0 * f64::from(margin);
    let p = f64::from(sampling.top_p);
    let probs = softmax(logits, sampling.temperature);
    let order = sorted_desc(logits);
    // prefix[k]: mass of the k most probable tokens.
    let mut prefix = Vec::with_capacity(order.len() + 1);
    prefix.push(0.0);
    for &i in &order {
        prefix.push(prefix.last().copied().unwrap_or(0.0) + probs[i]);
    }
    // Mass of tokens with logit > x (strict) or ≥ x.
    let count_above = |x: f64, strict: bool| {
        order.partition_point(|&j| {
            let l = f64::from(logits[j]);
            if strict { l > x } else { l >= x }
        })
    };
    let above_c = prefix[count_above(f64::from(logits[c]) + m2, true)];
    if above_c >= p * (m2 / tau).exp() {
        return f32::INFINITY;
    }
    let mut best = f64::NEG_INFINITY;
    for (k, &i) in order.iter().enumerate() {
        if prefix[k] >= p {
            break;
        }
        let near = prefix[count_above(f64::from(logits[i]) - m2, false)] - probs[i];
        if near < p * (-m2 / tau).exp() {
            best = best.max(z(i));
        }
    }
    (best - zc).max(0.0) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logits(n: usize, seed: u64) -> Vec<f32> {
        let s = SeededStream::new("test", seed, "");
        (0..n).map(|i| s.symmetric_unit(i as u64) * 4.0).collect()
    }

    #[test]
    fn greedy_is_argmax_and_sampled_choices_pass_their_own_check() {
        let l = logits(500, 1);
        assert_eq!(Sampling::GREEDY.choose(&l, 0, 0) as usize, argmax(&l));
        for (temperature, top_p) in [(0.7, 1.0), (1.0, 0.9), (0.3, 0.5)] {
            let s = Sampling {
                temperature,
                top_p,
                seed: 9,
            };
            s.validate().unwrap();
            for t in 0..20 {
                let c = s.choose(&l, 3, t);
                assert_eq!(
                    deficit(&s, &l, c, 0.3, 3, t),
                    0.0,
                    "τ {temperature} p {top_p} t {t}"
                );
            }
        }
    }

    #[test]
    fn honest_logits_within_half_the_margin_always_pass() {
        // The miner's logits differ from the verifier's by up to margin/2 (another device, another
        // summation order); its choice must pass, including at nucleus boundaries.
        let margin = 0.3;
        for seed in 0..40u64 {
            let verifier = logits(300, seed);
            let jitter = SeededStream::new("jitter", seed, "");
            let miner: Vec<f32> = verifier
                .iter()
                .enumerate()
                .map(|(i, &l)| l + jitter.symmetric_unit(i as u64) * margin / 2.0)
                .collect();
            for (temperature, top_p) in [(0.0, 1.0), (1.0, 1.0), (0.7, 0.9), (1.3, 0.3), (0.5, 0.99)] {
                let s = Sampling {
                    temperature,
                    top_p,
                    seed,
                };
                let c = s.choose(&miner, 1, seed as usize);
                let d = deficit(&s, &verifier, c, margin, 1, seed as usize);
                assert!(d <= margin, "seed {seed} τ {temperature} p {top_p}: deficit {d}");
            }
        }
    }

    #[test]
    fn sampling_follows_the_distribution_and_wrong_tokens_fail() {
        // Two tokens with logits 0 and ln 3 at τ = 1: the second is chosen ~75% of the time.
        let l = [0.0f32, 3f32.ln()];
        let s = Sampling {
            temperature: 1.0,
            top_p: 1.0,
            seed: 4,
        };
        let ones = (0..4000).filter(|&t| s.choose(&l, 0, t) == 1).count();
        assert!((2800..3200).contains(&ones), "{ones}");
        // Over many positions, the other token falls outside a small margin most of the time.
        let wide = logits(2000, 2);
        let s = Sampling {
            temperature: 0.8,
            top_p: 0.95,
            seed: 5,
        };
        let caught = (0..200)
            .filter(|&t| {
                let c = s.choose(&wide, 0, t);
                let wrong = (c + 1) % 2000;
                deficit(&s, &wide, wrong, 0.05, 0, t) > 0.05
            })
            .count();
        assert!(caught > 190, "{caught}");
        // A token far below the nucleus is refused outright.
        let low = argmax(&wide.iter().map(|x| -x).collect::<Vec<_>>()) as u32;
        assert_eq!(
            deficit(&Sampling { top_p: 0.5, ..s }, &wide, low, 0.05, 0, 0),
            f32::INFINITY
        );
        assert!(
            Sampling {
                temperature: -1.0,
                ..s
            }
            .validate()
            .is_err()
        );
        assert!(Sampling { top_p: 0.0, ..s }.validate().is_err());
    }
}
