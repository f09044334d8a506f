//! How the miner answers: honestly, or (with the `adversary` cargo feature) as one of the dishonest
//! miners the validator must catch.
//!
//! The dishonest matmul variants are bench-tasks' own [`Adversary`](bench_tasks::matmul::Adversary)
//! implementations; this module only maps the `--adversary` flag onto them and adds two transport-level
//! misbehaviors (`slow:MS`, `garbage`). Release images are built without the feature, so a production
//! binary can only be honest.
//!
//! | `--adversary` | behavior |
//! |---|---|
//! | `lazy:F` | skips a fraction `F` of the rows of `C` |
//! | `noisy:F` | corrupts a fraction `F` of the rows |
//! | `forge` (or `forged_sketch`) | sends the cheap linear sketch, opens rows on demand |
//! | `on-demand` | commits a random sketch, computes only the opened rows |
//! | `replay` | answers another miner's challenge |
//! | `slow:MS` | honest, but holds the device `MS` ms longer per challenge |
//! | `garbage` | answers challenges and openings with bytes that are not JSON |
//!
//! The matmul modes also cheat on inference, as the closest bench-tasks inference
//! [`Adversary`](bench_tasks::inference::adversary::Adversary): `lazy` decodes with half the layers
//! (`fewer_layers`), `noisy` decodes half the tokens then random ids (`half_then_garbage`), `forge` sends
//! random ids (`random_tokens`), `on-demand` runs a smaller model (`smaller_model`) and `replay` answers
//! another prompt seed (`cached_other_seed`).
//! They cheat the same way on a held real model (`--model smollm2`): half of its layers, a seeded
//! half-size model with its vocabulary, and so on ([`crate::tasks::InferenceModels`] builds them beside it).

use std::time::Duration;

#[cfg(feature = "adversary")]
use bench_tasks::matmul::Adversary;
use bench_tasks::matmul::{MatmulChallenge, MatmulJob, MatmulLimits, MinerError, OpenState, Round1Answer};
use burn::tensor::Device;

/// The miner's answering behavior.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[non_exhaustive]
pub enum Behavior {
    /// Compute and answer honestly.
    #[default]
    Honest,
    /// Answer matmul challenges as this bench-tasks adversary.
    #[cfg(feature = "adversary")]
    Matmul(Adversary),
    /// Honest answers, delivered late.
    #[cfg(feature = "adversary")]
    Slow(Duration),
    /// Bytes that are not JSON instead of answers.
    #[cfg(feature = "adversary")]
    Garbage,
}

impl Behavior {
    /// Parses an `--adversary` value. Without the `adversary` feature every value is refused.
    pub fn parse(spec: &str) -> Result<Self, String> {
        #[cfg(feature = "adversary")]
        {
            let spec = spec.trim();
            if let Some(ms) = spec.strip_prefix("slow:") {
                let ms: u64 = ms.parse().map_err(|_| {
                    format!("`slow:{ms}` needs a whole number of milliseconds, like slow:250")
                })?;
                return Ok(Self::Slow(Duration::from_millis(ms)));
            }
            match spec {
                "garbage" => return Ok(Self::Garbage),
                "honest" => return Ok(Self::Honest),
                "forge" => return Ok(Self::Matmul(Adversary::ForgedSketch)),
                _ => {}
            }
            spec.parse::<Adversary>()
                .map(Self::Matmul)
                .map_err(|e| format!("{e}; the miner also accepts forge, slow:MS and garbage"))
        }
        #[cfg(not(feature = "adversary"))]
        Err(format!(
            "`--adversary {spec}` needs a miner built with `--features miner/adversary` (never in release images)"
        ))
    }

    /// The name shown in `/info` and logs (`honest`, `lazy:0.1`, `slow:250`, …).
    pub fn name(&self) -> String {
        match self {
            Self::Honest => "honest".to_owned(),
            #[cfg(feature = "adversary")]
            Self::Matmul(a) => a.to_string(),
            #[cfg(feature = "adversary")]
            Self::Slow(d) => format!("slow:{}", d.as_millis()),
            #[cfg(feature = "adversary")]
            Self::Garbage => "garbage".to_owned(),
        }
    }

    /// Round 1 of a matmul challenge under this behavior (device thread).
    pub fn matmul(
        &self,
        challenge: &MatmulChallenge,
        device: &Device,
        limits: &MatmulLimits,
    ) -> Result<(Round1Answer, OpenState), MinerError> {
        match self {
            #[cfg(feature = "adversary")]
            Self::Matmul(adversary) => adversary.run(challenge, device, limits, 0),
            _ => MatmulJob::run_with_limits(challenge, device, limits),
        }
    }

    /// The inference adversary this behavior runs, if it cheats on inference (see the module docs).
    pub fn inference_adversary(&self) -> Option<bench_tasks::inference::adversary::Adversary> {
        #[cfg(feature = "adversary")]
        if let Self::Matmul(a) = self {
            use bench_tasks::inference::adversary::Adversary as Cheat;
            return match a {
                Adversary::Lazy { .. } => Some(Cheat::FewerLayers),
                Adversary::Noisy { .. } => Some(Cheat::HalfThenGarbage),
                Adversary::ForgedSketch => Some(Cheat::RandomTokens),
                Adversary::OnDemand => Some(Cheat::SmallerModel),
                Adversary::Replay => Some(Cheat::CachedOtherSeed),
                _ => None,
            };
        }
        None
    }

    /// Extra time to hold the device after the work (the `slow` adversary); none otherwise.
    pub fn extra_delay(&self) -> Duration {
        match self {
            #[cfg(feature = "adversary")]
            Self::Slow(d) => *d,
            _ => Duration::ZERO,
        }
    }

    /// Whether answers are replaced by bytes that are not JSON (the `garbage` adversary).
    pub fn garbage(&self) -> bool {
        #[cfg(feature = "adversary")]
        if matches!(self, Self::Garbage) {
            return true;
        }
        false
    }
}

#[cfg(all(test, feature = "adversary"))]
mod tests {
    use super::*;

    #[test]
    fn adversary_specs_map_onto_bench_tasks() {
        assert_eq!(
            Behavior::parse("lazy:0.1"),
            Ok(Behavior::Matmul(Adversary::Lazy { fraction: 0.1 }))
        );
        assert_eq!(
            Behavior::parse("forge"),
            Ok(Behavior::Matmul(Adversary::ForgedSketch))
        );
        assert_eq!(
            Behavior::parse("on-demand"),
            Ok(Behavior::Matmul(Adversary::OnDemand))
        );
        assert_eq!(
            Behavior::parse("slow:250"),
            Ok(Behavior::Slow(Duration::from_millis(250)))
        );
        assert_eq!(Behavior::parse("garbage"), Ok(Behavior::Garbage));
        assert!(Behavior::parse("slow:soon").is_err());
        assert!(Behavior::parse("lazy:2").is_err());
    }

    #[test]
    fn matmul_cheats_map_onto_inference_cheats() {
        use bench_tasks::inference::adversary::Adversary as Cheat;
        let cheat = |spec: &str| Behavior::parse(spec).unwrap().inference_adversary();
        assert_eq!(cheat("lazy:0.5"), Some(Cheat::FewerLayers));
        assert_eq!(cheat("noisy:0.1"), Some(Cheat::HalfThenGarbage));
        assert_eq!(cheat("forge"), Some(Cheat::RandomTokens));
        assert_eq!(cheat("on-demand"), Some(Cheat::SmallerModel));
        assert_eq!(cheat("replay"), Some(Cheat::CachedOtherSeed));
        assert_eq!(cheat("honest"), None);
        assert_eq!(cheat("slow:5"), None);
    }
}
