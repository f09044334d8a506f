//! The counter-based generator of the challenge matrices, on any burn device and on the CPU.
//!
//! Entry `(i, j)` of a matrix is a pure function of `(seed, matrix id, i, j)`, so the miner can build its
//! matrices on the device in O(n²) parallel work and the validator can rebuild any single row in O(n)
//! on the CPU, and both get the same numbers.
//!
//! # Construction
//!
//! Everything is arithmetic modulo the prime `Q = 32,749` (the largest prime below 2^15), on
//! non-negative integers below `Q² < 2^30`. No step can overflow an `i32`, wrap around, round, or depend
//! on how a backend defines division of negative numbers, so the integer ops of every burn backend (i32
//! on wgpu, i64 on flex) and the CPU reference agree bit for bit. A float-free, wraparound-free design
//! was chosen over the usual xor-shift hashes because burn's int tensors have no portable unsigned 32-bit
//! wrapping multiply or bit shift (wgpu computes in i32, flex in i64).
//!
//! 1. Per matrix, sixteen keys in `1..Q` are drawn from the seed and the matrix id with SplitMix64 (on the
//!    CPU, O(1)).
//! 2. Each row index `t` gets two hashes `u(t), v(t)` and each column index two more, with
//!    `lo = t mod Q`, `hi = t div Q` (so `t ↦ (lo, hi)` is injective for `t < Q²`):
//!    `h = (lo·k₀ + hi + k₁) mod Q; h = (h² + k₂) mod Q; h = (h² + lo + k₃) mod Q`.
//!    Two hashes per index make distinct rows collide with probability about `1/Q² ≈ 2^-30`.
//! 3. The entry mixes the row and column hashes with two squaring rounds, which makes it a non-linear
//!    function of both indices (no low-rank or affine structure a miner could exploit):
//!    `x = (u_r·u_c + v_r + v_c) mod Q; x = (x² + u_r) mod Q; x = (x² + v_c) mod Q`,
//!    `entry = (x mod (2b+1)) − b`.
//!
//! On a device, step 2 is a handful of int ops on `arange(n)` and step 3 a dozen element-wise int ops on
//! an `n × n` tensor built by broadcasting the row hashes against the column hashes. The result is cast
//! to f32: entries of `A` and `B` lie in `[-8, 8]`, so every product and partial sum of `C = A·B` is an
//! integer of magnitude at most `64·n < 2^24` and exact in f32 in any summation order, on any backend.
//! The generator is not a cryptographic PRF and does not need to be: the seeds are public to the miner;
//! what matters is that the matrices have no structure that makes `A·B` cheaper than a real product.

use burn::tensor::{Device, Int, Tensor};

/// The generator's modulus, the largest prime below 2^15.
pub const Q: u32 = 32_749;

/// Which matrix of a challenge (domain separation of the keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatrixId {
    /// The per-miner left factor `A` (`n × n`).
    A,
    /// The per-round right factor `B` (`n × n`).
    B,
    /// The per-round sketch matrix `R` (`n × m`).
    R,
}

impl MatrixId {
    const fn tag(self) -> u64 {
        match self {
            Self::A => 0x4d41_544d_554c_0041,
            Self::B => 0x4d41_544d_554c_0042,
            Self::R => 0x4d41_544d_554c_0052,
        }
    }
}

/// SplitMix64: one step of the public key schedule.
pub(crate) const fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Keys of one index hash.
type IndexKeys = [u32; 4];

/// Hash of one index `t < Q²` to `0..Q`.
#[inline]
fn index_hash(t: u32, k: &IndexKeys) -> u32 {
    let lo = t % Q;
    let hi = t / Q;
    let h = (lo * k[0] + hi + k[1]) % Q;
    let h = (h * h + k[2]) % Q;
    (h * h + lo + k[3]) % Q
}

/// The entry's mixing function; all intermediates stay below 2^31.
#[inline]
fn mix(ru: u32, rv: u32, cu: u32, cv: u32) -> u32 {
    let x = (ru * cu + rv + cv) % Q;
    let x = (x * x + ru) % Q;
    (x * x + cv) % Q
}

/// The generator of one matrix: its shape, value bound and keys.
#[derive(Debug, Clone)]
pub struct MatrixGen {
    rows: u32,
    cols: u32,
    bound: u32,
    row_u: IndexKeys,
    row_v: IndexKeys,
    col_u: IndexKeys,
    col_v: IndexKeys,
}

impl MatrixGen {
    /// The generator of matrix `id` (`rows × cols`, entries in `[-bound, bound]`) for `seed`.
    ///
    /// Callers validate sizes first (`rows, cols ≤ HARD_MAX_N < Q²`, `bound < Q/2`).
    pub fn new(seed: u64, id: MatrixId, rows: u32, cols: u32, bound: u32) -> Self {
        let mut state = seed ^ id.tag();
        let mut key = || {
            let mut four = [0u32; 4];
            for k in &mut four {
                // 1..Q: a zero multiplier would erase `lo`.
                *k = (splitmix64(&mut state) % u64::from(Q - 1)) as u32 + 1;
            }
            four
        };
        Self {
            rows,
            cols,
            bound,
            row_u: key(),
            row_v: key(),
            col_u: key(),
            col_v: key(),
        }
    }

    /// Number of rows.
    pub const fn rows(&self) -> u32 {
        self.rows
    }

    /// Number of columns.
    pub const fn cols(&self) -> u32 {
        self.cols
    }

    #[inline]
    fn finish(&self, x: u32) -> i32 {
        (x % (2 * self.bound + 1)) as i32 - self.bound as i32
    }

    /// One entry, on the CPU.
    pub fn entry(&self, i: u32, j: u32) -> i32 {
        let x = mix(
            index_hash(i, &self.row_u),
            index_hash(i, &self.row_v),
            index_hash(j, &self.col_u),
            index_hash(j, &self.col_v),
        );
        self.finish(x)
    }

    /// The column hashes, computed once (O(cols)) and reused for every row built on the CPU.
    pub fn column_hashes(&self) -> ColumnHashes {
        let (u, v) = (0..self.cols)
            .map(|j| (index_hash(j, &self.col_u), index_hash(j, &self.col_v)))
            .unzip();
        ColumnHashes { u, v }
    }

    /// Writes row `i` into `out` (`out.len()` must equal `cols`), using precomputed column hashes.
    pub fn row_into(&self, i: u32, cols: &ColumnHashes, out: &mut [i32]) {
        debug_assert_eq!(out.len(), cols.u.len());
        let ru = index_hash(i, &self.row_u);
        let rv = index_hash(i, &self.row_v);
        // The hot loop of the validator: a constant modulus compiles to a multiply, not a division.
        match self.bound {
            8 => fill_row::<8>(ru, rv, cols, out),
            4 => fill_row::<4>(ru, rv, cols, out),
            _ => {
                for ((o, &cu), &cv) in out.iter_mut().zip(&cols.u).zip(&cols.v) {
                    *o = self.finish(mix(ru, rv, cu, cv));
                }
            }
        }
    }

    /// The whole matrix on the CPU, row-major (tests and small sizes).
    pub fn to_vec(&self) -> Vec<i32> {
        let cols = self.column_hashes();
        let mut out = vec![0; self.rows as usize * self.cols as usize];
        if self.cols > 0 {
            for (i, row) in out.chunks_exact_mut(self.cols as usize).enumerate() {
                self.row_into(i as u32, &cols, row);
            }
        }
        out
    }

    /// The whole matrix generated on `device` with int tensor ops, as an f32 tensor.
    pub fn to_device(&self, device: &Device) -> Tensor<2> {
        self.rows_to_device(0..self.rows, device)
    }

    /// Rows `rows` (a range within `0..rows()`) generated on `device`, as an f32 tensor: the same
    /// values as the matching rows of [`to_device`](Self::to_device).
    pub fn rows_to_device(&self, rows: std::ops::Range<u32>, device: &Device) -> Tensor<2> {
        let q = i64::from(Q);
        let hash = |range: std::ops::Range<u32>, k: &IndexKeys| -> Tensor<1, Int> {
            let t = Tensor::<1, Int>::arange(i64::from(range.start)..i64::from(range.end), device);
            let lo = t.clone().remainder_scalar(q);
            let hi = t.div_scalar(q);
            let h = lo
                .clone()
                .mul_scalar(i64::from(k[0]))
                .add(hi)
                .add_scalar(i64::from(k[1]))
                .remainder_scalar(q);
            let h = h.clone().mul(h).add_scalar(i64::from(k[2])).remainder_scalar(q);
            h.clone()
                .mul(h)
                .add(lo)
                .add_scalar(i64::from(k[3]))
                .remainder_scalar(q)
        };
        let (r, c) = (rows.len(), self.cols as usize);
        let ru: Tensor<2, Int> = hash(rows.clone(), &self.row_u).reshape([r, 1]);
        let rv: Tensor<2, Int> = hash(rows, &self.row_v).reshape([r, 1]);
        let cu: Tensor<2, Int> = hash(0..self.cols, &self.col_u).reshape([1, c]);
        let cv: Tensor<2, Int> = hash(0..self.cols, &self.col_v).reshape([1, c]);
        let x = ru.clone().mul(cu).add(rv).add(cv.clone()).remainder_scalar(q);
        let x = x.clone().mul(x).add(ru).remainder_scalar(q);
        let x = x.clone().mul(x).add(cv).remainder_scalar(q);
        let b = i64::from(self.bound);
        x.remainder_scalar(2 * b + 1).sub_scalar(b).float()
    }
}

/// [`MatrixGen::row_into`] for a bound known at compile time.
#[inline]
fn fill_row<const BOUND: u32>(ru: u32, rv: u32, cols: &ColumnHashes, out: &mut [i32]) {
    for ((o, &cu), &cv) in out.iter_mut().zip(&cols.u).zip(&cols.v) {
        *o = (mix(ru, rv, cu, cv) % (2 * BOUND + 1)) as i32 - BOUND as i32;
    }
}

/// Per-column hashes of a [`MatrixGen`], reused across rows.
#[derive(Debug, Clone)]
pub struct ColumnHashes {
    u: Vec<u32>,
    v: Vec<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matmul::params::{ENTRY_BOUND, HARD_MAX_N};

    #[test]
    fn q_is_prime_and_no_step_overflows_i32() {
        assert!(crate::matmul::params::is_prime(Q));
        let qm = u64::from(Q - 1);
        // index hash: lo·k₀ + hi + k₁, h² + lo + k₃; mix: ru·cu + rv + cv, x² + ru.
        assert!(qm * qm + 2 * qm < i32::MAX as u64);
        assert!(u64::from(HARD_MAX_N) < u64::from(Q) * u64::from(Q));
    }

    #[test]
    fn entries_cover_the_range_evenly_and_rows_differ() {
        let g = MatrixGen::new(7, MatrixId::A, 64, 257, ENTRY_BOUND);
        let v = g.to_vec();
        let mut counts = [0usize; 17];
        for &x in &v {
            assert!((-8..=8).contains(&x));
            counts[(x + 8) as usize] += 1;
        }
        let expect = v.len() as f64 / 17.0;
        for c in counts {
            // Each value within 25% of uniform over 16,448 draws (σ ≈ 3%).
            assert!((c as f64 - expect).abs() < 0.25 * expect, "{counts:?}");
        }
        let rows: std::collections::HashSet<&[i32]> = v.chunks(257).collect();
        assert_eq!(rows.len(), 64, "two rows are identical");
        assert_eq!(g.entry(5, 200), v[5 * 257 + 200]);
    }

    #[test]
    fn seeds_and_ids_give_different_matrices() {
        let a = MatrixGen::new(1, MatrixId::A, 16, 16, 8).to_vec();
        let b = MatrixGen::new(1, MatrixId::B, 16, 16, 8).to_vec();
        let a2 = MatrixGen::new(2, MatrixId::A, 16, 16, 8).to_vec();
        assert_ne!(a, b);
        assert_ne!(a, a2);
        assert_eq!(a, MatrixGen::new(1, MatrixId::A, 16, 16, 8).to_vec());
    }

    #[cfg(feature = "flex")]
    #[test]
    fn flex_matches_cpu_reference() {
        let device = burn::tensor::Device::flex();
        for (rows, cols, bound) in [(1, 1, 8), (33, 17, 8), (70, 8, 4)] {
            let g = MatrixGen::new(99, MatrixId::R, rows, cols, bound);
            let dev: Vec<f32> = g.to_device(&device).into_data().try_into_vec_as::<f32>().unwrap();
            let cpu: Vec<f32> = g.to_vec().into_iter().map(|x| x as f32).collect();
            assert_eq!(dev, cpu, "{rows}x{cols}");
            let part: Vec<f32> = g
                .rows_to_device(rows / 3..rows, &device)
                .into_data()
                .try_into_vec_as::<f32>()
                .unwrap();
            assert_eq!(part, cpu[(rows / 3 * cols) as usize..], "{rows}x{cols} tail");
        }
    }
}
