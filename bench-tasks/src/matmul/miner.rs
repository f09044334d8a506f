//! The miner's side, on any burn device: generate `A` and `B`, multiply, sketch, commit, keep what the
//! openings need, open rows.
//!
//! A batched challenge (`batch = B`) is the stacked product `A·B` with `A` of `B·n` rows
//! ([`MatmulChallenge`]); the honest miner works through it a group of products at a time
//! ([`GROUP_ELEMENTS`] bounds the device memory of a group), keeps only `B` and the sketch, and recomputes
//! the exact rows the validator opens.
//!
//! ```
//! # #[cfg(feature = "flex")] {
//! use bench_tasks::matmul::{MatmulChallenge, MatmulDtype, MatmulJob, OpeningRequest};
//!
//! let device = burn::tensor::Device::flex();
//! let challenge = MatmulChallenge { n: 48, m: 8, p: 251, round_seed: 1, miner_seed: 2, dtype: MatmulDtype::Bf16, batch: 1 };
//! let (answer, state) = MatmulJob::run(&challenge, &device).unwrap();
//! assert_eq!(answer.sketch.len(), 48 * 8);
//! let openings = state.open(&OpeningRequest { rows: vec![3, 40] }).unwrap();
//! assert_eq!(openings.rows[1].values.len(), 48);
//!
//! // Three products: the answer is a commitment, and rows are numbered across the stack.
//! let batched = MatmulChallenge { batch: 3, ..challenge };
//! let (answer, state) = MatmulJob::run(&batched, &device).unwrap();
//! assert!(answer.sketch.is_empty() && answer.root.is_some());
//! let openings = state.open(&OpeningRequest { rows: vec![5, 140] }).unwrap();
//! assert!(openings.rows[1].proof.is_some());
//! # }
//! ```

use burn::tensor::{Device, FloatDType, Int, Tensor, TensorData};

use super::commit::SketchTree;
use super::generator::{MatrixGen, MatrixId};
use super::params::{
    ChallengeError, ENTRY_BOUND, MatmulChallenge, MatmulDtype, MatmulLimits, OpenedRow, OpeningRequest,
    Openings, Round1Answer, SKETCH_BOUND, pack_row,
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

/// Entries of `A` (and of `C`) one group of products may hold on the device: 2^26 (256 MiB in f32), so
/// a group is one product of 8192² or 16 products of 2048².
pub const GROUP_ELEMENTS: u64 = 1 << 26;

/// Entry point of the honest miner.
#[derive(Debug, Clone, Copy, Default)]
pub struct MatmulJob;

impl MatmulJob {
    /// Runs the timed round 1 with [`MatmulLimits::default`]: returns the answer (the sketch, or the
    /// commitment of a batched challenge) and the state that answers the opening request.
    pub fn run(
        challenge: &MatmulChallenge,
        device: &Device,
    ) -> Result<(Round1Answer, OpenState), MinerError> {
        Self::run_with_limits(challenge, device, &MatmulLimits::default())
    }

    /// [`run`](Self::run) with explicit limits (the miner's configured memory cap).
    ///
    /// Each group of products is multiplied in the class's format (f32 accumulation in the kernel) and
    /// sketched on the device; only the sketch is read back. A device without a qualified kernel in the
    /// format ([`exact_in`]) computes the exact product in f32 and rounds it on the host: the same
    /// answer, slower. The exact rows are recomputed in f32 from `B` when opened.
    pub fn run_with_limits(
        challenge: &MatmulChallenge,
        device: &Device,
        limits: &MatmulLimits,
    ) -> Result<(Round1Answer, OpenState), MinerError> {
        challenge.validate(limits)?;
        let n = challenge.n;
        let a_gen = MatrixGen::new(
            challenge.miner_seed,
            MatrixId::A,
            challenge.rows(),
            n,
            ENTRY_BOUND,
        );
        let b = MatrixGen::new(challenge.round_seed, MatrixId::B, n, n, ENTRY_BOUND).to_device(device);
        let r = sketch_matrix(challenge, device);
        let native = challenge.dtype != MatmulDtype::F32 && exact_in(device, challenge.dtype);
        let dtype = challenge.dtype.float_dtype();
        let b_in = if native { b.clone().cast(dtype) } else { b.clone() };
        let per_group =
            (GROUP_ELEMENTS / (u64::from(n) * u64::from(n)).max(1)).clamp(1, u64::from(HARD_GROUP));
        let mut sketches = Vec::new();
        let mut first = 0u32;
        while first < challenge.batch {
            let last = (u64::from(first) + per_group).min(u64::from(challenge.batch)) as u32;
            let a = a_gen.rows_to_device(first * n..last * n, device);
            let c = if native {
                a.cast(dtype).matmul(b_in.clone()).cast(FloatDType::F32)
            } else {
                // Exact in f32; the sketch rounds it to the class.
                a.matmul(b.clone())
            };
            sketches.push(sketch_tensor(challenge, &c, r.clone(), device)?);
            first = last;
        }
        let sketch = read_f32(Tensor::cat(sketches, 0))?;
        let (answer, tree) = commit(challenge, sketch);
        Ok((
            answer,
            OpenState::exact_rows(challenge, b, *limits).with_tree(tree),
        ))
    }
}

/// Most products in one group, whatever their size (bounds the number of tensors concatenated).
const HARD_GROUP: u32 = 1024;

/// The round-1 answer for a stacked sketch: the sketch itself for one product, or the Merkle root of
/// its rows (and the tree the openings need) for a batch.
pub(crate) fn commit(challenge: &MatmulChallenge, sketch: Vec<f32>) -> (Round1Answer, Option<SketchTree>) {
    if challenge.committed() {
        let tree = SketchTree::build(sketch, challenge.m as usize);
        (
            Round1Answer {
                sketch: Vec::new(),
                root: Some(tree.root_hex()),
            },
            Some(tree),
        )
    } else {
        (Round1Answer::sketch(sketch), None)
    }
}

/// Side of the qualification product of [`exact_in`]: large enough that many entries and partial sums
/// pass 2^11, where an f16 accumulator would start to round.
pub const QUALIFY_N: u32 = 1024;

/// Whether `device`'s matmul kernel in `dtype` computes exactly `round(A·B)` (f32 accumulation, one
/// rounding at the end), found once per device and dtype by comparing a [`QUALIFY_N`]³ product of
/// challenge-like matrices with the rounded exact f32 product, bit for bit, and cached for the
/// process. A device without the format, or whose kernel rounds partial sums (burn-flex's f16 gemm
/// does), is not qualified: its miner multiplies in f32 and rounds, the same answer.
pub fn exact_in(device: &Device, dtype: MatmulDtype) -> bool {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock, PoisonError};
    if dtype == MatmulDtype::F32 {
        return true;
    }
    if !device.supports_dtype(dtype.float_dtype()) {
        return false;
    }
    static CACHE: OnceLock<Mutex<HashMap<(String, MatmulDtype), bool>>> = OnceLock::new();
    let key = (format!("{device:?}"), dtype);
    let cache = CACHE.get_or_init(Mutex::default);
    if let Some(&known) = cache.lock().unwrap_or_else(PoisonError::into_inner).get(&key) {
        return known;
    }
    let qualified = qualify(device, dtype).unwrap_or(false);
    cache
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(key, qualified);
    qualified
}

fn qualify(device: &Device, dtype: MatmulDtype) -> Result<bool, MinerError> {
    let n = QUALIFY_N;
    let a = MatrixGen::new(0x0a11_f1ed, MatrixId::A, n, n, ENTRY_BOUND).to_device(device);
    let b = MatrixGen::new(0x0a11_f1ed, MatrixId::B, n, n, ENTRY_BOUND).to_device(device);
    let exact = read_f32(a.clone().matmul(b.clone()))?;
    let got = read_f32(product_in(a, b, dtype.float_dtype()).cast(FloatDType::F32))?;
    Ok(got.len() == exact.len()
        && got
            .iter()
            .zip(&exact)
            .all(|(g, &e)| g.to_bits() == dtype.round(e).to_bits()))
}

/// `c` rounded to `dtype`'s format on the host and uploaded again (devices without that format).
fn round_on_host(c: Tensor<2>, dtype: MatmulDtype) -> Result<Tensor<2>, MinerError> {
    let device = c.device();
    let shape = c.dims();
    let values: Vec<f32> = read_f32(c)?.into_iter().map(|x| dtype.round(x)).collect();
    Ok(Tensor::from_data(TensorData::new(values, shape), &device))
}

/// `A·B` computed in `dtype` (both factors cast first), output in `dtype`.
pub fn product_in(a: Tensor<2>, b: Tensor<2>, dtype: FloatDType) -> Tensor<2> {
    if dtype == FloatDType::F32 {
        a.matmul(b)
    } else {
        a.cast(dtype).matmul(b.cast(dtype))
    }
}

/// `A` (stacked, `batch·n × n`) and `B` of a validated challenge, generated on `device`.
pub(crate) fn factors(challenge: &MatmulChallenge, device: &Device) -> (Tensor<2>, Tensor<2>) {
    let n = challenge.n;
    let a = MatrixGen::new(
        challenge.miner_seed,
        MatrixId::A,
        challenge.rows(),
        n,
        ENTRY_BOUND,
    )
    .to_device(device);
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

/// The non-linear sketch `S = (round(C) mod p)·R` of (a block of rows of) the stacked `C`, read back;
/// `round` is the conversion to the challenge's dtype class (none for f32; idempotent on an already
/// rounded `C`).
pub(crate) fn sketch_of(
    challenge: &MatmulChallenge,
    c: &Tensor<2>,
    device: &Device,
) -> Result<Vec<f32>, MinerError> {
    read_f32(sketch_tensor(
        challenge,
        c,
        sketch_matrix(challenge, device),
        device,
    )?)
}

/// [`sketch_of`] left on the device, with `R` given.
///
/// `C` holds exact integers (so does `round(C)`: above 2^11 every f16 value is an even integer, above
/// 2^8 every bf16 value), so the cast to int is exact; burn's int remainder is floor modulo (result
/// in `0..p` for a positive divisor) on every backend; residues below 2^11 times `R`'s entries summed
/// over `n` stay below 2^24 (checked by validation), so the float product is exact again.
fn sketch_tensor(
    challenge: &MatmulChallenge,
    c: &Tensor<2>,
    r: Tensor<2>,
    device: &Device,
) -> Result<Tensor<2>, MinerError> {
    let dtype = challenge.dtype.float_dtype();
    let c = if challenge.dtype == MatmulDtype::F32 {
        c.clone()
    } else if !exact_in(device, challenge.dtype) {
        // No qualified kernel in this format (the f32 fallback of `run`): round on the host.
        round_on_host(c.clone(), challenge.dtype)?
    } else {
        c.clone().cast(dtype).cast(FloatDType::F32)
    };
    let residues = c.int().remainder_scalar(i64::from(challenge.p)).float();
    Ok(residues.matmul(r))
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
    /// Exact rows recomputed in f32 from rows of `A` rebuilt on the host and `B` kept on the device
    /// (the honest miner, which keeps neither `C` nor its rounded form).
    ExactRows(Box<(MatrixGen, Tensor<2>)>),
}

/// What the miner keeps between round 1 and round 2.
#[derive(Debug)]
pub struct OpenState {
    /// Rows of the stacked product.
    rows: u32,
    n: u32,
    limits: MatmulLimits,
    source: RowSource,
    /// The commitment of a batched challenge (its sketch and hashes).
    tree: Option<Box<SketchTree>>,
}

impl OpenState {
    pub(crate) fn stored(challenge: &MatmulChallenge, c: Tensor<2>, limits: MatmulLimits) -> Self {
        Self::with_source(challenge, limits, RowSource::Stored(Box::new(c)))
    }

    pub(crate) fn on_demand(
        challenge: &MatmulChallenge,
        a: Tensor<2>,
        b: Tensor<2>,
        limits: MatmulLimits,
    ) -> Self {
        Self::with_source(challenge, limits, RowSource::OnDemand(Box::new([a, b])))
    }

    pub(crate) fn exact_rows(challenge: &MatmulChallenge, b: Tensor<2>, limits: MatmulLimits) -> Self {
        let a_gen = MatrixGen::new(
            challenge.miner_seed,
            MatrixId::A,
            challenge.rows(),
            challenge.n,
            ENTRY_BOUND,
        );
        Self::with_source(challenge, limits, RowSource::ExactRows(Box::new((a_gen, b))))
    }

    fn with_source(challenge: &MatmulChallenge, limits: MatmulLimits, source: RowSource) -> Self {
        Self {
            rows: challenge.rows(),
            n: challenge.n,
            limits,
            source,
            tree: None,
        }
    }

    /// The state with the commitment of its batched answer (none for a one-product challenge).
    pub(crate) fn with_tree(mut self, tree: Option<SketchTree>) -> Self {
        self.tree = tree.map(Box::new);
        self
    }

    /// Matrix side of the challenge this state answers.
    pub const fn n(&self) -> u32 {
        self.n
    }

    /// Rows of the stacked product (`batch·n`) this state answers.
    pub const fn rows(&self) -> u32 {
        self.rows
    }

    /// Answers the validator's opening request with the asked rows of `C`, in the order asked, each
    /// with its sketch proof when the challenge was batched. The request is validated first (count,
    /// range, duplicates).
    pub fn open(&self, request: &OpeningRequest) -> Result<Openings, MinerError> {
        request.validate(self.rows, &self.limits)?;
        let device = match &self.source {
            RowSource::Stored(c) => c.device(),
            RowSource::OnDemand(ab) => ab[0].device(),
            RowSource::ExactRows(gb) => gb.1.device(),
        };
        let idx: Vec<i64> = request.rows.iter().map(|&r| i64::from(r)).collect();
        let idx = Tensor::<1, Int>::from_data(TensorData::new(idx, [request.rows.len()]), &device);
        let picked = match &self.source {
            RowSource::Stored(c) => c.clone().select(0, idx),
            RowSource::OnDemand(ab) => ab[0].clone().select(0, idx).matmul(ab[1].clone()),
            RowSource::ExactRows(gb) => {
                let (a_gen, b) = &**gb;
                let n = self.n as usize;
                let cols = a_gen.column_hashes();
                let mut rows = vec![0i32; request.rows.len() * n];
                for (&r, out) in request.rows.iter().zip(rows.chunks_exact_mut(n)) {
                    a_gen.row_into(r, &cols, out);
                }
                let rows: Vec<f32> = rows.into_iter().map(|x| x as f32).collect();
                let a_rows = Tensor::<2>::from_data(TensorData::new(rows, [request.rows.len(), n]), &device);
                // Entries ≤ 8 are exact in f32 and TF32; partial sums stay below 2^24: exact in any order.
                a_rows.matmul(b.clone())
            }
        };
        let flat = read_f32(picked)?;
        let n = self.n as usize;
        Ok(Openings {
            rows: request
                .rows
                .iter()
                .zip(flat.chunks_exact(n))
                .map(|(&index, values)| match &self.tree {
                    // A batched challenge: the row packed, with its sketch proof.
                    Some(tree) => OpenedRow {
                        index,
                        values: Vec::new(),
                        packed: Some(pack_row(values)),
                        proof: Some(tree.proof(index)),
                    },
                    None => OpenedRow {
                        index,
                        values: values.to_vec(),
                        packed: None,
                        proof: None,
                    },
                })
                .collect(),
        })
    }
}
