//! Wire types of the matmul exchange, the limits that guard them, and their validation.
//!
//! Everything here is plain serde data that the miner and the validator send over HTTP. Sizes in these
//! types come from the other side of a network connection, so nothing allocates from them before
//! [`MatmulChallenge::validate`] (or [`OpeningRequest::validate`]) has checked them against
//! [`MatmulLimits`].

use std::fmt;
use std::str::FromStr;

use burn::tensor::{FloatDType, bf16, f16};
use serde::{Deserialize, Serialize};

/// Largest `n` any node accepts, whatever its configured limits: it keeps every intermediate value of
/// the generator, the product and the verifier's 64-bit Freivalds sums far from overflow.
pub const HARD_MAX_N: u32 = 65_536;
/// Largest modulus `p`: residues below 2^11 are exact in fp16/tf32 inputs, so tensor-core matmuls stay
/// exact too.
pub const MAX_P: u32 = 2_048;
/// Smallest modulus `p`.
pub const MIN_P: u32 = 3;
/// Default sketch width `m`.
pub const DEFAULT_M: u32 = 8;
/// Default modulus `p` (prime; fits sketches of `n` up to 16,000 within f32's exact range).
pub const DEFAULT_P: u32 = 251;
/// Default number of opened rows `k`: a miner skipping 10% of the rows passes with probability
/// 0.9^40 ≈ 1.5%, one skipping 5% with 0.95^40 ≈ 13%.
pub const DEFAULT_K: u32 = 40;
/// Entries of `A` and `B` lie in `[-ENTRY_BOUND, ENTRY_BOUND]`.
pub const ENTRY_BOUND: u32 = 8;
/// Entries of the sketch matrix `R` lie in `[-SKETCH_BOUND, SKETCH_BOUND]`.
pub const SKETCH_BOUND: u32 = 4;
/// f32 represents every integer of magnitude below 2^24 exactly.
pub const F32_EXACT: u64 = 1 << 24;
/// Most products one challenge may carry, whatever a node's limits: it keeps the stacked row count
/// `batch·n ≤ 2^28`, far below the generator's `Q²` and `u32`.
pub const HARD_MAX_BATCH: u32 = 4_096;
/// The H200 time a GPU-sized challenge is sized for by default ([`batch_for_h200`]): 50 ms.
pub const DEFAULT_H200_SECONDS: f64 = 0.05;
/// The largest batch a validator sizes by default (288 products of 4096³ keep an H200 busy 50 ms in
/// bf16; miners accept up to [`MatmulLimits::max_batch`], 512 by default).
pub const DEFAULT_SIZED_MAX_BATCH: u32 = 512;
/// Rows of the stacked sketch per leaf of a batched challenge's commitment ([`crate::matmul::commit`]).
pub const LEAF_ROWS: u32 = 64;

/// Largest `n` of the [`MatmulDtype::F16`] class: beyond it an honest entry of `C` could overflow f16's
/// largest finite value, 65,504 (see [`MatmulDtype`] for the bound).
pub const F16_MAX_N: u32 = 8_192;

/// The number format a matmul challenge is computed in: its *dtype class*.
///
/// `A` and `B` hold integers in `[-8, 8]`, exact in every class. The miner multiplies in the class's
/// format (tensor cores for f16/bf16 on a GPU) and commits in round 1 to the sketch of
/// `Ĉ = round(C)`, the product rounded to the class's format; in round 2 it opens the asked rows of the
/// exact `C` (integers carried as f32), which the verifier checks with exact Freivalds as in f32, and
/// then checks the sketch against `round(C_i)` computed on the CPU.
///
/// # Why `Ĉ = round(C)` exactly, bit for bit
///
/// Every product `a·b` is an integer of magnitude at most 64, exact in f16, bf16 and f32. An
/// accumulator in f32 (what tensor cores use for f16/bf16 inputs, and what burn's kernels use: checked on
/// flex and wgpu by `tests/matmul_dtype.rs`, on CUDA by `scripts/gpu-check.sh`) holds every partial sum
/// exactly while `|partial sum| ≤ 64·n < 2^24`, that is for every `n ≤` [`HARD_MAX_N`], in any
/// summation order and any tiling. So the accumulator ends at the exact integer `C_ij`, and the only
/// rounding is the final conversion to the output format, round-to-nearest-even (the IEEE default:
/// CUDA's `cvt.rn`, the `half` crate on the CPU). The verifier applies the same conversion to the exact
/// opened row and compares the sketch bit for bit: no tolerance, so no slack a forger could use.
/// A kernel that accumulated in the output format itself would round partial sums and fail honestly;
/// the tests and the GPU check would show it.
///
/// # Overflow bound (f16)
///
/// f16's largest finite value is 65,504. Each `C_ij` is a sum of `n` independent terms in `[-64, 64]`
/// with mean 0, so by Hoeffding `P(|C_ij| ≥ 65,520) ≤ 2·exp(−65,520² / (2·n·64²))`: at
/// `n = 8,192` that is `2·e^{−64} < 4·10^{−28}` per entry, below `3·10^{−20}` for all `n²` entries. So f16
/// challenges are limited to `n ≤` [`F16_MAX_N`]; bf16 (largest value 3.4·10^38) and f32 have no such
/// limit.
///
/// # What the class proves
///
/// The class fixes the format the answer is committed in, not the unit that computed it: small integers
/// are exact in int8 and fp8 too, so a miner may compute the exact product on any unit that gives exact
/// results (and round it). The timing then ranks the fastest exact unit the miner has, which on an H200
/// is the tensor cores in every 16-bit class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MatmulDtype {
    /// IEEE single precision (SIMT cores, or TF32 tensor cores: inputs are exact in TF32 too).
    #[default]
    F32,
    /// IEEE half precision, f32 accumulation (tensor cores).
    F16,
    /// bfloat16, f32 accumulation (tensor cores).
    Bf16,
}

impl MatmulDtype {
    /// Every class, in a fixed order.
    pub const ALL: [Self; 3] = [Self::F32, Self::F16, Self::Bf16];

    /// Whether this is the f32 class (the wire default, left out of serialized challenges).
    pub const fn is_f32(&self) -> bool {
        matches!(self, Self::F32)
    }

    /// The stable name (`"f32"`, `"f16"`, `"bf16"`).
    pub const fn name(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::F16 => "f16",
            Self::Bf16 => "bf16",
        }
    }

    /// burn's float format of the class.
    pub const fn float_dtype(self) -> FloatDType {
        match self {
            Self::F32 => FloatDType::F32,
            Self::F16 => FloatDType::F16,
            Self::Bf16 => FloatDType::BF16,
        }
    }

    /// `x` rounded to the class's format (round to nearest, ties to even) and widened back to f32.
    pub fn round(self, x: f32) -> f32 {
        match self {
            Self::F32 => x,
            Self::F16 => f16::from_f32(x).to_f32(),
            Self::Bf16 => bf16::from_f32(x).to_f32(),
        }
    }

    /// Largest `n` of the class ([`F16_MAX_N`] for f16, [`HARD_MAX_N`] otherwise).
    pub const fn max_n(self) -> u32 {
        match self {
            Self::F16 => F16_MAX_N,
            Self::F32 | Self::Bf16 => HARD_MAX_N,
        }
    }

    /// Dense peak of an NVIDIA H200 for the class, in FLOP/s: about 790 TFLOP/s for f16 and bf16
    /// (measured through PyTorch at 8192³) and about 60 TFLOP/s for f32 on the SIMT cores. The yardstick
    /// for sizing GPU challenges.
    pub const fn h200_peak_flops(self) -> f64 {
        match self {
            Self::F32 => 60e12,
            Self::F16 | Self::Bf16 => 790e12,
        }
    }
}

impl fmt::Display for MatmulDtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown dtype class name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown matmul dtype `{0}`; expected f32, f16 or bf16")]
pub struct DtypeParseError(String);

impl FromStr for MatmulDtype {
    type Err = DtypeParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|d| d.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| DtypeParseError(s.to_owned()))
    }
}

/// What a node is willing to compute or verify. Checked before any allocation sized by a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MatmulLimits {
    /// Largest matrix side `n` (memory: about `3·n²·4` bytes of device memory plus temporaries).
    pub max_n: u32,
    /// Largest sketch width `m`.
    pub max_m: u32,
    /// Most rows one opening request may ask for.
    pub max_k: u32,
    /// Most products one challenge may carry (the miner keeps `B` plus the stacked sketch,
    /// `batch·n·m` values; the device works through the products a few at a time).
    pub max_batch: u32,
}

impl Default for MatmulLimits {
    fn default() -> Self {
        Self {
            max_n: 8_192,
            max_m: 64,
            max_k: 1_024,
            max_batch: 512,
        }
    }
}

/// Why challenge parameters were refused. Each message says what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChallengeError {
    /// `n = 0`.
    #[error("matrix size n is 0; ask for n ≥ 1")]
    EmptyMatrix,
    /// `n` above the node's cap (or [`HARD_MAX_N`]).
    #[error("matrix size n = {n} exceeds this node's cap of {max}; ask for a smaller n or raise max_n")]
    TooLarge {
        /// Requested size.
        n: u32,
        /// The cap.
        max: u32,
    },
    /// `n` above the dtype class's exactness bound ([`MatmulDtype::max_n`]).
    #[error(
        "matrix size n = {n} exceeds {max}, the largest exact size of the {dtype} class; ask for a smaller n"
    )]
    TooLargeForDtype {
        /// Requested size.
        n: u32,
        /// The class's bound.
        max: u32,
        /// The class.
        dtype: MatmulDtype,
    },
    /// Sketch width outside `1..=max_m`.
    #[error("sketch width m = {m} is outside 1..={max}; pick m in that range")]
    BadSketchWidth {
        /// Requested width.
        m: u32,
        /// The cap.
        max: u32,
    },
    /// The modulus is not prime.
    #[error("modulus p = {p} is not prime; use a prime such as 251")]
    NotPrime {
        /// Requested modulus.
        p: u32,
    },
    /// The modulus is outside the range that keeps the sketch exact for this `n`.
    #[error(
        "modulus p = {p} is outside {MIN_P}..={max} for n = {n} (sketch sums must stay below 2^24); pick a smaller prime"
    )]
    ModulusOutOfRange {
        /// Requested modulus.
        p: u32,
        /// Largest modulus allowed for this `n`.
        max: u32,
        /// Matrix size.
        n: u32,
    },
    /// No rows to open.
    #[error("k = 0 rows to open; ask for at least one")]
    NoOpenings,
    /// More rows to open than the matrix has, or than the node's cap.
    #[error("k = {k} rows to open exceeds min(n, max_k) = {max}; ask for fewer rows")]
    TooManyOpenings {
        /// Requested row count.
        k: u32,
        /// The cap.
        max: u32,
    },
    /// An opening request names a row outside `0..n` (`n`: the rows of the stacked product,
    /// `batch·n`).
    #[error("row {row} is outside 0..{n}; ask only for rows of the matrix")]
    RowOutOfRange {
        /// Row asked for.
        row: u32,
        /// Rows of the stacked product.
        n: u32,
    },
    /// The batch is 0 or above the node's cap (or [`HARD_MAX_BATCH`]).
    #[error("batch = {batch} products is outside 1..={max}; ask for fewer products or raise max_batch")]
    BadBatch {
        /// Requested batch.
        batch: u32,
        /// The cap.
        max: u32,
    },
    /// An opening request names a row twice.
    #[error("row {row} is asked for twice; ask for distinct rows")]
    DuplicateRow {
        /// Row asked for twice.
        row: u32,
    },
}

/// The largest modulus that keeps `n·(p−1)·SKETCH_BOUND < 2^24` (and `p ≤ MAX_P`).
pub const fn max_p_for(n: u32) -> u32 {
    if n == 0 {
        return MAX_P;
    }
    let by_exactness = (F32_EXACT - 1) / (n as u64 * SKETCH_BOUND as u64) + 1;
    if by_exactness < MAX_P as u64 {
        by_exactness as u32
    } else {
        MAX_P
    }
}

/// Deterministic trial division; `p ≤ MAX_P` so this is at most ~45 divisions.
pub const fn is_prime(p: u32) -> bool {
    if p < 2 {
        return false;
    }
    let mut d = 2;
    while d * d <= p {
        if p.is_multiple_of(d) {
            return false;
        }
        d += 1;
    }
    true
}

/// Checks `n`, `m`, `p` and the dtype class against the limits and the exactness bounds.
pub(crate) fn validate_shape(
    n: u32,
    m: u32,
    p: u32,
    dtype: MatmulDtype,
    limits: &MatmulLimits,
) -> Result<(), ChallengeError> {
    if n == 0 {
        return Err(ChallengeError::EmptyMatrix);
    }
    let max_n = limits.max_n.min(HARD_MAX_N);
    if n > max_n {
        return Err(ChallengeError::TooLarge { n, max: max_n });
    }
    if n > dtype.max_n() {
        return Err(ChallengeError::TooLargeForDtype {
            n,
            max: dtype.max_n(),
            dtype,
        });
    }
    if m == 0 || m > limits.max_m {
        return Err(ChallengeError::BadSketchWidth { m, max: limits.max_m });
    }
    let max_p = max_p_for(n);
    if !(MIN_P..=max_p).contains(&p) {
        return Err(ChallengeError::ModulusOutOfRange { p, max: max_p, n });
    }
    if !is_prime(p) {
        return Err(ChallengeError::NotPrime { p });
    }
    Ok(())
}

/// Checks a batch (products per challenge) against the limits and [`HARD_MAX_BATCH`].
pub(crate) fn validate_batch(batch: u32, limits: &MatmulLimits) -> Result<(), ChallengeError> {
    let max = limits.max_batch.min(HARD_MAX_BATCH);
    if batch == 0 || batch > max {
        return Err(ChallengeError::BadBatch { batch, max });
    }
    Ok(())
}

/// The smallest batch whose `batch·2n³` FLOPs keep an NVIDIA H200 busy at least `seconds` at the class's
/// peak ([`MatmulDtype::h200_peak_flops`]), within `1..=max`: how a validator sizes GPU challenges.
///
/// ```
/// use bench_tasks::matmul::{MatmulDtype, params::batch_for_h200};
///
/// // 50 ms of an H200: 36 bf16 products of 8192³, 3 in f32.
/// assert_eq!(batch_for_h200(8192, MatmulDtype::Bf16, 0.05, 256), 36);
/// assert_eq!(batch_for_h200(8192, MatmulDtype::F32, 0.05, 256), 3);
/// assert_eq!(batch_for_h200(64, MatmulDtype::F32, 0.05, 4), 4);
/// assert_eq!(batch_for_h200(64, MatmulDtype::F32, 0.0, 4), 1);
/// ```
pub fn batch_for_h200(n: u32, dtype: MatmulDtype, seconds: f64, max: u32) -> u32 {
    let per_product = 2.0 * f64::from(n.max(1)).powi(3) / dtype.h200_peak_flops();
    let wanted = (seconds.max(0.0) / per_product).ceil();
    if wanted.is_finite() {
        (wanted as u32).clamp(1, max.max(1))
    } else {
        max.max(1)
    }
}

const fn one() -> u32 {
    1
}

// serde's skip_serializing_if passes a reference.
const fn is_one(v: &u32) -> bool {
    *v == 1
}

/// One miner's matmul challenge: compute `batch` products `C_t = A_t·B` (`n × n` each) and the sketch
/// `S = (C mod p)·R` of their stack.
///
/// `B` and `R` come from `round_seed` and are shared by every miner in a round; `A` comes from
/// `miner_seed`, which the validator binds to one miner and one block, so answers cannot be shared.
///
/// # Batches
///
/// With `batch = B > 1` the challenge is `B` independent products with the same `B` factor: `A_t` is the
/// `t`-th block of `n` rows of the stacked matrix `A` (`B·n × n`) the generator derives from
/// `miner_seed` (row `t·n + i`; every row is a non-linear function of its own index, so each block is a
/// fresh matrix), and the answer is the stacked product `C = A·B` (`B·n × n`), whose rows the validator
/// numbers `0..B·n`. The round-1 answer is then not the sketch itself (`B·n·m` values, too many to send
/// in the timed round) but the Merkle root of its rows ([`crate::matmul::commit`]), and each opened row
/// carries its sketch leaf and path. `B = 1` is the original challenge, bit for bit (absent on the
/// wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MatmulChallenge {
    /// Matrix side.
    pub n: u32,
    /// Sketch width (columns of `R` and `S`).
    pub m: u32,
    /// Prime modulus of the sketch.
    pub p: u32,
    /// Seed of `B` and `R`.
    pub round_seed: u64,
    /// Seed of `A`.
    pub miner_seed: u64,
    /// Number format of the product (absent on the wire: f32).
    #[serde(default, skip_serializing_if = "MatmulDtype::is_f32")]
    pub dtype: MatmulDtype,
    /// Independent products `B` (absent on the wire: 1).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub batch: u32,
}

impl MatmulChallenge {
    /// Checks the parameters against `limits` and the exactness bounds; call before any work.
    pub fn validate(&self, limits: &MatmulLimits) -> Result<(), ChallengeError> {
        validate_shape(self.n, self.m, self.p, self.dtype, limits)?;
        validate_batch(self.batch, limits)
    }

    /// Rows of the stacked product, `batch·n`: the rows an opening request numbers. Saturates on
    /// parameters that [`validate`](Self::validate) refuses.
    pub const fn rows(&self) -> u32 {
        self.batch.saturating_mul(self.n)
    }

    /// Whether the round-1 answer is a commitment (`batch > 1`) rather than the sketch itself.
    pub const fn committed(&self) -> bool {
        self.batch > 1
    }

    /// Multiply-adds an honest miner performs (`batch·n³`), the challenge's work units.
    pub fn work_units(&self) -> f64 {
        f64::from(self.batch) * f64::from(self.n).powi(3)
    }

    /// Floating-point operations of the products (`2·batch·n³`), for TFLOP/s figures.
    pub fn flops(&self) -> f64 {
        2.0 * self.work_units()
    }
}

/// The timed round-1 answer: the sketch `S = (C mod p)·R` (`n × m`, row-major) of a one-product
/// challenge, or the Merkle root of the stacked sketch's rows (`batch·n × m`) of a batched one.
///
/// Sketch values are integers carried as f32 (what the device produces); the verifier rejects anything
/// non-finite, fractional or out of the honest range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Round1Answer {
    /// `S`, row-major, `n·m` values (empty in a batched answer).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sketch: Vec<f32>,
    /// The commitment to the stacked sketch, 64 lowercase hex digits (batched challenges only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
}

impl Round1Answer {
    /// The answer of a one-product challenge: its sketch.
    pub const fn sketch(sketch: Vec<f32>) -> Self {
        Self { sketch, root: None }
    }
}

/// The validator's round-2 request: the rows of `C` it chose after receiving the sketch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpeningRequest {
    /// Distinct row indices of the stacked product, in `0..batch·n`.
    pub rows: Vec<u32>,
}

impl OpeningRequest {
    /// Checks the request against the rows of the stacked product (`n` here is
    /// [`MatmulChallenge::rows`]) and the limits: `1 ≤ k ≤ min(n, max_k)`, every row in `0..n`, no row
    /// twice.
    pub fn validate(&self, n: u32, limits: &MatmulLimits) -> Result<(), ChallengeError> {
        let k = u32::try_from(self.rows.len()).unwrap_or(u32::MAX);
        if k == 0 {
            return Err(ChallengeError::NoOpenings);
        }
        let max = n.min(limits.max_k);
        if k > max {
            return Err(ChallengeError::TooManyOpenings { k, max });
        }
        if let Some(&row) = self.rows.iter().find(|&&r| r >= n) {
            return Err(ChallengeError::RowOutOfRange { row, n });
        }
        let mut sorted = self.rows.clone();
        sorted.sort_unstable();
        if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
            return Err(ChallengeError::DuplicateRow { row: w[0] });
        }
        Ok(())
    }
}

/// One opened row of `C`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenedRow {
    /// Row index.
    pub index: u32,
    /// The `n` values of the row (integers carried as f32); empty in a batched challenge's openings,
    /// which carry `packed` instead.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<f32>,
    /// The row packed ([`pack_row`]: base64 of the `n` values as i32 little-endian), batched challenges
    /// only: a quarter of the JSON numbers' bytes, and decoded several times faster by the validator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packed: Option<String>,
    /// The row's sketch leaf and Merkle path (batched challenges only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<SketchProof>,
}

/// `values` (integers of magnitude below 2^31, as every honest row is) packed as base64 (standard
/// alphabet, padded) of i32 little-endian.
pub fn pack_row(values: &[f32]) -> String {
    use base64::Engine as _;
    let mut bytes = Vec::with_capacity(values.len() * 4);
    for &v in values {
        bytes.extend_from_slice(&(v as i32).to_le_bytes());
    }
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The `n` values of a [`pack_row`] string, or `None` when it is not valid base64 of exactly `n` i32s
/// (checked against the encoded length before anything is decoded).
pub fn unpack_row(packed: &str, n: usize) -> Option<Vec<f32>> {
    use base64::Engine as _;
    if packed.len() != (4 * n).div_ceil(3) * 4 {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD.decode(packed).ok()?;
    (bytes.len() == 4 * n).then(|| {
        bytes
            .chunks_exact(4)
            .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32)
            .collect()
    })
}

/// The sketch leaf holding an opened row of a batched challenge, and its Merkle path to the committed
/// root ([`crate::matmul::commit`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SketchProof {
    /// The leaf's sketch rows (at most [`LEAF_ROWS`] rows of `m` values, row-major).
    pub leaf: Vec<f32>,
    /// Sibling hashes from the leaf up to the root, 64 lowercase hex digits each.
    pub path: Vec<String>,
}

/// The miner's round-2 answer: the requested rows, in the order asked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Openings {
    /// One entry per requested row.
    pub rows: Vec<OpenedRow>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primes_and_bounds() {
        assert!(is_prime(251) && is_prime(3) && is_prime(2039));
        assert!(!is_prime(1) && !is_prime(255) && !is_prime(2047));
        assert_eq!(max_p_for(1024), 2048.min((F32_EXACT as u32 - 1) / 4096 + 1));
        // n·(p−1)·4 < 2^24 holds at the bound.
        for n in [1u32, 1024, 4096, 16_000, HARD_MAX_N] {
            let p = max_p_for(n);
            assert!(
                u64::from(n) * u64::from(p - 1) * u64::from(SKETCH_BOUND) < F32_EXACT,
                "n={n}"
            );
        }
        assert!(
            validate_shape(
                16_000,
                8,
                DEFAULT_P,
                MatmulDtype::F32,
                &MatmulLimits {
                    max_n: 16_000,
                    ..Default::default()
                }
            )
            .is_ok()
        );
    }

    #[test]
    fn dtype_rounding_names_and_bounds() {
        for d in MatmulDtype::ALL {
            assert_eq!(d.name().parse::<MatmulDtype>().unwrap(), d);
            assert_eq!(serde_json::to_string(&d).unwrap(), format!("\"{d}\""));
        }
        assert!("f64".parse::<MatmulDtype>().is_err());
        // Integers up to 2^11 (f16) and 2^8 (bf16) are exact; above, ties go to even.
        assert_eq!(MatmulDtype::F16.round(2049.0), 2048.0);
        assert_eq!(MatmulDtype::F16.round(2051.0), 2052.0);
        assert_eq!(MatmulDtype::Bf16.round(257.0), 256.0);
        assert_eq!(MatmulDtype::Bf16.round(259.0), 260.0);
        assert_eq!(MatmulDtype::Bf16.round(-1000.0), -1000.0);
        assert_eq!(MatmulDtype::F32.round(16_777_215.0), 16_777_215.0);
        // Hoeffding bound of the f16 overflow at F16_MAX_N, per challenge.
        let n = f64::from(F16_MAX_N);
        let per_entry = 2.0 * (-(65_520f64.powi(2)) / (2.0 * n * 64.0 * 64.0)).exp();
        assert!(per_entry * n * n < 3e-20, "{per_entry}");
        let lim = MatmulLimits {
            max_n: 16_384,
            ..Default::default()
        };
        assert!(matches!(
            validate_shape(8_193, 8, 251, MatmulDtype::F16, &lim),
            Err(ChallengeError::TooLargeForDtype { .. })
        ));
        assert!(validate_shape(8_193, 8, 251, MatmulDtype::Bf16, &lim).is_ok());
        // A challenge without a dtype on the wire is f32.
        let c: MatmulChallenge =
            serde_json::from_str(r#"{"n":4,"m":2,"p":3,"round_seed":1,"miner_seed":2}"#).unwrap();
        assert_eq!(c.dtype, MatmulDtype::F32);
    }

    #[test]
    fn packed_rows_round_trip_and_refuse_other_lengths() {
        let row = [0.0, -1.0, 524_288.0, -524_288.0, 7.0];
        let packed = pack_row(&row);
        assert_eq!(unpack_row(&packed, 5).as_deref(), Some(&row[..]));
        assert_eq!(unpack_row(&packed, 4), None);
        assert_eq!(unpack_row(&packed, 6), None);
        assert_eq!(unpack_row(&"!".repeat(packed.len()), 5), None);
        assert_eq!(unpack_row("", 0), Some(Vec::new()));
    }

    #[test]
    fn opening_request_validation() {
        let lim = MatmulLimits::default();
        let req = |rows: &[u32]| OpeningRequest { rows: rows.to_vec() };
        assert_eq!(req(&[]).validate(10, &lim), Err(ChallengeError::NoOpenings));
        assert_eq!(
            req(&[1, 2, 3]).validate(2, &lim),
            Err(ChallengeError::TooManyOpenings { k: 3, max: 2 })
        );
        assert_eq!(
            req(&[1, 9]).validate(5, &lim),
            Err(ChallengeError::RowOutOfRange { row: 9, n: 5 })
        );
        assert_eq!(
            req(&[4, 1, 4]).validate(5, &lim),
            Err(ChallengeError::DuplicateRow { row: 4 })
        );
        assert!(req(&[4, 1, 0]).validate(5, &lim).is_ok());
    }
}
