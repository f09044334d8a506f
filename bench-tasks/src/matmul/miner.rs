//! The miner's side, on any burn device: generate `A` and `B`, multiply, sketch, keep `C`, open rows.
//!
//! ```
//! # #[cfg(feature = "flex")] {
//! use bench_tasks::matmul::{MatmulChallenge, MatmulJob, OpeningRequest};
//!
//! let device = burn::tensor::Device::flex();
//! let challenge = MatmulChallenge { n: 48, m: 8, p: 251, round_seed: 1, miner_seed: 2 };
//! let (answer, state) = MatmulJob::run(&challenge, &device).unwrap();
//! assert_eq!(answer.sketch.len(), 48 * 8);
//! let openings = state.open(&OpeningRequest { rows: vec![3, 40] }).unwrap();
//! assert_eq!(openings.rows[1].values.len(), 48);
//! # }
//! ```

use burn::tensor::{Device, Int, Tensor, TensorData};

use super::generator::{MatrixGen, MatrixId};
use super::params::{
    ChallengeError, ENTRY_BOUND, MatmulChallenge, MatmulLimits, OpenedRow, OpeningRequest, Openings,
    Round1Answer, SKETCH_BOUND,
};

/// Why the miner could not answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MinerError {
    /// The challenge or opening request was refused before any work.
    #[error("refused: {0}")]
    Refused(#[from] ChallengeError),
    /// The device failed while computing or reading back.
    #[error("the device failed: {0}; check the backend with `miner self-test`")]
    Device(String),
}

/// Entry point of the honest miner.
#[derive(Debug, Clone, Copy, Default)]
pub struct MatmulJob;

impl MatmulJob {
    /// Runs the timed round 1 with [`MatmulLimits::default`]: returns the sketch and the state that
    /// answers the opening request.
    pub fn run(
        challenge: &MatmulChallenge,
        device: &Device,
    ) -> Result<(Round1Answer, OpenState), MinerError> {
        Self::run_with_limits(challenge, device, &MatmulLimits::default())
    }

    /// [`run`](Self::run) with explicit limits (the miner's configured memory cap).
    pub fn run_with_limits(
        challenge: &MatmulChallenge,
        device: &Device,
        limits: &MatmulLimits,
    ) -> Result<(Round1Answer, OpenState), MinerError> {
        challenge.validate(limits)?;
        let (a, b) = factors(challenge, device);
        let c = a.matmul(b);
        let answer = sketch_of(challenge, &c, device)?;
        Ok((answer, OpenState::stored(challenge, c, *limits)))
    }
}

/// `A` and `B` of a validated challenge, generated on `device`.
pub(crate) fn factors(challenge: &MatmulChallenge, device: &Device) -> (Tensor<2>, Tensor<2>) {
    let n = challenge.n;
    let a = MatrixGen::new(challenge.miner_seed, MatrixId::A, n, n, ENTRY_BOUND).to_device(device);
    let b = MatrixGen::new(challenge.round_seed, MatrixId::B, n, n, ENTRY_BOUND).to_device(device);
    (a, b)
}

/// `R` (`n × m`) of a validated challenge, generated on `device`.
pub(crate) fn sketch_matrix(challenge: &MatmulChallenge, device: &Device) -> Tensor<2> {
    MatrixGen::new(
        challenge.round_seed,
        MatrixId::R,
        challenge.n,
        challenge.m,
        SKETCH_BOUND,
    )
    .to_device(device)
}

/// The non-linear sketch `S = (C mod p)·R`, computed on the device and read back.
///
/// `C` holds exact integers, so the cast to int is exact; burn's int remainder is floor modulo (result
/// in `0..p` for a positive divisor) on every backend; residues below 2^11 times `R`'s entries summed
/// over `n` stay below 2^24 (checked by validation), so the float product is exact again.
pub(crate) fn sketch_of(
    challenge: &MatmulChallenge,
    c: &Tensor<2>,
    device: &Device,
) -> Result<Round1Answer, MinerError> {
    let residues = c.clone().int().remainder_scalar(i64::from(challenge.p)).float();
    let s = residues.matmul(sketch_matrix(challenge, device));
    Ok(Round1Answer { sketch: read_f32(s)? })
}

pub(crate) fn read_f32<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>, MinerError> {
    t.try_into_data()
        .map_err(|e| MinerError::Device(e.to_string()))?
        .try_into_vec_as::<f32>()
        .map_err(|e| MinerError::Device(format!("{e:?}")))
}

/// Where opened rows come from.
#[derive(Debug)]
enum RowSource {
    /// `C` (or what the miner claims is `C`) kept on the device.
    Stored(Box<Tensor<2>>),
    /// Rows recomputed from `A` and `B` when asked (the on-demand adversaries).
    OnDemand(Box<[Tensor<2>; 2]>),
}

/// What the miner keeps between round 1 and round 2.
#[derive(Debug)]
pub struct OpenState {
    n: u32,
    limits: MatmulLimits,
    source: RowSource,
}

impl OpenState {
    pub(crate) fn stored(challenge: &MatmulChallenge, c: Tensor<2>, limits: MatmulLimits) -> Self {
        Self {
            n: challenge.n,
            limits,
            source: RowSource::Stored(Box::new(c)),
        }
    }

    pub(crate) fn on_demand(
        challenge: &MatmulChallenge,
        a: Tensor<2>,
        b: Tensor<2>,
        limits: MatmulLimits,
    ) -> Self {
        Self {
            n: challenge.n,
            limits,
            source: RowSource::OnDemand(Box::new([a, b])),
        }
    }

    /// Matrix side of the challenge this state answers.
    pub const fn n(&self) -> u32 {
        self.n
    }

    /// Answers the validator's opening request with the asked rows of `C`, in the order asked.
    /// The request is validated first (count, range, duplicates).
    pub fn open(&self, request: &OpeningRequest) -> Result<Openings, MinerError> {
        request.validate(self.n, &self.limits)?;
        let device = match &self.source {
            RowSource::Stored(c) => c.device(),
            RowSource::OnDemand(ab) => ab[0].device(),
        };
        let idx: Vec<i64> = request.rows.iter().map(|&r| i64::from(r)).collect();
        let idx = Tensor::<1, Int>::from_data(TensorData::new(idx, [request.rows.len()]), &device);
        let picked = match &self.source {
            RowSource::Stored(c) => c.clone().select(0, idx),
            RowSource::OnDemand(ab) => ab[0].clone().select(0, idx).matmul(ab[1].clone()),
        };
        let flat = read_f32(picked)?;
        let n = self.n as usize;
        Ok(Openings {
            rows: request
                .rows
                .iter()
                .zip(flat.chunks_exact(n))
                .map(|(&index, values)| OpenedRow {
                    index,
                    values: values.to_vec(),
                })
                .collect(),
        })
    }
}
