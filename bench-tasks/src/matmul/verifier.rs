//! The validator's side, on the CPU: per-round setup, the choice of rows to open, per-miner verification.
//!
//! # Cost
//!
//! [`RoundSetup::new`] draws the secret Freivalds vector `r` and computes `B·r` once per round: O(n²)
//! (the rows of `B` are rebuilt from the seed and never stored; the work is split across the CPU's
//! cores). [`RoundSetup::verify`] then costs O(k·n·m) per miner: for each of the `k` opened rows it
//! rebuilds row `i` of `A` (O(n)), recomputes the row's sketch `(C_i mod p)·R` (O(n·m)) and checks
//! `C_i·r = A_i·(B·r)` (O(n)). Nothing is allocated from the miner's sizes before they are checked.
//!
//! # Soundness
//!
//! * Sketch binding. `S` arrives before the validator picks rows. Row `i` passes only if the opened
//!   `C_i` satisfies `S_i = (C_i mod p)·R` and `C_i·r = A_i·(B·r)`. With `r` secret, uniform in
//!   `1..=2^20` per entry and fresh each round, a wrong row passes the Freivalds test with probability
//!   at most `2^-20`; so every opened row must be the true row, and its sketch row must be the true
//!   sketch row. Because `x ↦ x mod p` is not linear, `S` cannot be had from `A·(B·R)` (O(n²·m))
//!   without `C`; computing all of `S` costs as much as computing `C`.
//! * Sampling. A miner whose committed sketch is wrong (or whose rows are wrong) on a fraction `f` of
//!   the rows passes only if none of the `k` distinct rows hits one of them: probability
//!   `C((1−f)n, k)/C(n, k) ≤ (1−f)^k`. With the default `k = 40`: `f = 0.10` passes with ≤ 1.5%
//!   (detected ≥ 98.5%), `f = 0.05` with ≤ 12.9%, and a miner that computes nothing (on-demand, replayed
//!   or linear-shortcut sketch, `f ≈ 1`) essentially never.
//! * Dtype classes ([`MatmulDtype`]). In f16 and bf16 the sketch commits to `round(C)`, the product rounded
//!   to the class's format; the opened rows are still the exact `C_i`, so the Freivalds test above is
//!   unchanged, and the sketch test applies the same round-to-nearest-even to `C_i` on the CPU before
//!   taking residues. `round` is a function of `C_i`, so a true row has exactly one passing sketch row:
//!   the binding and sampling arguments hold word for word. Why an honest f16/bf16 kernel produces
//!   exactly `round(C)` is argued at [`MatmulDtype`].
//! * Batches ([`MatmulChallenge::batch`] `= B`). The challenge is the stacked product `A·B` of
//!   `R = B·n` rows; `A`'s row `t·n + i` is row `i` of product `t`, and the `k` rows are drawn
//!   uniformly from all `R`. The committed sketch (a Merkle root, [`crate::matmul::commit`]) fixes every
//!   sketch row as firmly as the sketch sent in full, so the arguments above hold with `n` replaced by
//!   `R`: a miner that skips `s` of the `B` products is wrong on `s·n` rows and passes with probability
//!   `C(R − s·n, k)/C(R, k) ≤ (1 − s/B)^k` ([`RoundParams::pass_probability_of`]): with `k = 40`,
//!   skipping 10% of the products passes with ≤ 1.5%, 5% with ≤ 12.9%, whatever `B`.
//! * Cost of a batch. `B·r` and `R` are shared by every product and every miner (the same `B` factor),
//!   so the round setup stays O(n²); per miner the verifier rebuilds `k` rows of `A` (O(n) each, column
//!   hashes once per miner), checks `k` sketch rows (O(n·m) each), and hashes `k` leaves and
//!   `k·⌈log₂(R/64)⌉` nodes. Nothing grows with `B` but the logarithm, while the miner's work is
//!   `B·n³`: `B` scales the GPU's work at no cost to the validator.
//! * Interactivity. The rows are drawn from a keyed hash of the validator's secret only after `S`
//!   arrived. Deriving them from `S` itself (Fiat–Shamir) would let a cheater grind `S` until the
//!   rows avoid its skipped ones: `(1−f)^-k` tries, about 67 for `f = 0.10`.

use std::borrow::Cow;
use std::collections::HashSet;

use super::commit::{parse_hash, verify_proof};
use super::generator::{MatrixGen, MatrixId};
use super::params::{
    ChallengeError, DEFAULT_K, DEFAULT_M, DEFAULT_P, ENTRY_BOUND, MatmulChallenge, MatmulDtype, MatmulLimits,
    OpeningRequest, Openings, Round1Answer, SKETCH_BOUND, unpack_row, validate_batch, validate_shape,
};
use crate::verdict::{Reason, Verdict};

/// Freivalds vector entries are drawn from `1..=2^R_BITS`.
const R_BITS: u32 = 20;

/// The parameters a validator picks for one round of matmul challenges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RoundParams {
    /// Matrix side.
    pub n: u32,
    /// Sketch width.
    pub m: u32,
    /// Prime modulus of the sketch.
    pub p: u32,
    /// Rows opened per miner.
    pub k: u32,
    /// Seed of `B` and `R`, shared by every miner this round.
    pub round_seed: u64,
    /// Number format of the products (absent: f32).
    #[serde(default, skip_serializing_if = "MatmulDtype::is_f32")]
    pub dtype: MatmulDtype,
}

impl RoundParams {
    /// The defaults (`m = 8`, `p = 251`, `k = min(40, n)`, f32) for size `n`.
    pub fn new(n: u32, round_seed: u64) -> Self {
        Self {
            n,
            m: DEFAULT_M,
            p: DEFAULT_P,
            k: DEFAULT_K.min(n),
            round_seed,
            dtype: MatmulDtype::F32,
        }
    }

    /// The same parameters in dtype class `dtype`.
    #[must_use]
    pub const fn with_dtype(self, dtype: MatmulDtype) -> Self {
        Self { dtype, ..self }
    }

    /// Checks every parameter against `limits` and the exactness bounds.
    pub fn validate(&self, limits: &MatmulLimits) -> Result<(), ChallengeError> {
        self.validate_batched(1, limits)
    }

    /// [`validate`](Self::validate) for challenges of `batch` products (`k` may reach `batch·n`).
    pub fn validate_batched(&self, batch: u32, limits: &MatmulLimits) -> Result<(), ChallengeError> {
        validate_shape(self.n, self.m, self.p, self.dtype, limits)?;
        validate_batch(batch, limits)?;
        if self.k == 0 {
            return Err(ChallengeError::NoOpenings);
        }
        let max = self.n.saturating_mul(batch).min(limits.max_k);
        if self.k > max {
            return Err(ChallengeError::TooManyOpenings { k: self.k, max });
        }
        Ok(())
    }

    /// The one-product challenge for the miner whose seed is `miner_seed` (a batched round's come from
    /// [`RoundSetup::challenge`]).
    pub const fn challenge(&self, miner_seed: u64) -> MatmulChallenge {
        MatmulChallenge {
            n: self.n,
            m: self.m,
            p: self.p,
            round_seed: self.round_seed,
            miner_seed,
            dtype: self.dtype,
            batch: 1,
        }
    }

    /// The probability that a miner wrong on `bad_rows` of the `n` rows survives `k` distinct openings:
    /// `C(n − bad, k) / C(n, k)`, which is at most `(1 − bad/n)^k`.
    pub fn pass_probability(&self, bad_rows: u32) -> f64 {
        Self::pass_probability_of(self.n, self.k, bad_rows)
    }

    /// The probability that a miner wrong on `bad_rows` of `rows` rows (of a stacked product: `batch·n`)
    /// survives `k` distinct openings drawn uniformly: `C(rows − bad, k) / C(rows, k)`, at most
    /// `(1 − bad/rows)^k`.
    pub fn pass_probability_of(rows: u32, k: u32, bad_rows: u32) -> f64 {
        let k = k.min(rows);
        let rows = f64::from(rows);
        (0..k)
            .map(|t| ((rows - f64::from(bad_rows) - f64::from(t)) / (rows - f64::from(t))).max(0.0))
            .product()
    }
}

/// Everything a validator computes once per round: the secret `r`, `B·r`, and `R`.
///
/// Its `Debug` output shows the parameters only, never the secret or `r`.
#[derive(Clone)]
pub struct RoundSetup {
    params: RoundParams,
    /// Products per challenge.
    batch: u32,
    limits: MatmulLimits,
    secret: [u8; 32],
    /// Secret Freivalds vector, length `n`.
    r: Vec<i64>,
    /// `B·r`, length `n`.
    br: Vec<i64>,
    /// `R`, `n × m` row-major.
    sketch_r: Vec<i32>,
}

impl std::fmt::Debug for RoundSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoundSetup")
            .field("params", &self.params)
            .field("batch", &self.batch)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// A keyed XOF stream: the validator's secret randomness, domain-separated.
fn stream(secret: &[u8; 32], domain: &str, words: &[u64]) -> blake3::OutputReader {
    let mut h = blake3::Hasher::new_keyed(secret);
    h.update(domain.as_bytes());
    for w in words {
        h.update(&w.to_le_bytes());
    }
    h.finalize_xof()
}

fn next_u64(reader: &mut blake3::OutputReader) -> u64 {
    let mut b = [0u8; 8];
    reader.fill(&mut b);
    u64::from_le_bytes(b)
}

impl RoundSetup {
    /// Validates `params` and computes the round's secret state from `secret` (32 bytes the validator
    /// draws fresh for each round and never reveals). O(n²), once per round.
    pub fn new(params: RoundParams, secret: [u8; 32], limits: &MatmulLimits) -> Result<Self, ChallengeError> {
        Self::batched(params, 1, secret, limits)
    }

    /// [`new`](Self::new) for challenges of `batch` products each (see [`MatmulChallenge`]): the same
    /// O(n²) setup, whatever `batch`.
    pub fn batched(
        params: RoundParams,
        batch: u32,
        secret: [u8; 32],
        limits: &MatmulLimits,
    ) -> Result<Self, ChallengeError> {
        params.validate_batched(batch, limits)?;
        let n = params.n as usize;
        let mut xof = stream(
            &secret,
            "tensorproof/matmul/freivalds-r",
            &[params.round_seed, u64::from(params.n)],
        );
        let mut bytes = vec![0u8; 4 * n];
        xof.fill(&mut bytes);
        let r: Vec<i64> = bytes
            .chunks_exact(4)
            .map(|c| i64::from(u32::from_le_bytes([c[0], c[1], c[2], c[3]]) & ((1 << R_BITS) - 1)) + 1)
            .collect();
        let br = b_times_r(&params, &r);
        let sketch_r =
            MatrixGen::new(params.round_seed, MatrixId::R, params.n, params.m, SKETCH_BOUND).to_vec();
        Ok(Self {
            params,
            batch,
            limits: *limits,
            secret,
            r,
            br,
            sketch_r,
        })
    }

    /// The round's parameters.
    pub const fn params(&self) -> &RoundParams {
        &self.params
    }

    /// Products per challenge.
    pub const fn batch(&self) -> u32 {
        self.batch
    }

    /// The challenge for the miner whose seed is `miner_seed`.
    pub const fn challenge(&self, miner_seed: u64) -> MatmulChallenge {
        let mut c = self.params.challenge(miner_seed);
        c.batch = self.batch;
        c
    }

    /// Rows of the stacked product of this round's challenges, `batch·n`.
    pub const fn rows(&self) -> u32 {
        self.challenge(0).rows()
    }

    /// The probability that a miner wrong on `bad_rows` of this round's [`rows`](Self::rows) passes.
    pub fn pass_probability(&self, bad_rows: u32) -> f64 {
        RoundParams::pass_probability_of(self.rows(), self.params.k, bad_rows)
    }

    /// The `k` distinct rows (of the stacked product, `0..batch·n`) to open for this miner, drawn from
    /// the round secret. Call it only after the miner's round-1 answer arrived, and send the result as
    /// the round-2 request.
    pub fn choose_openings(&self, miner_seed: u64) -> OpeningRequest {
        let n = self.rows();
        let k = self.params.k.min(n);
        let mut xof = stream(
            &self.secret,
            "tensorproof/matmul/open",
            &[self.params.round_seed, miner_seed],
        );
        // Floyd's algorithm: k distinct values of 0..n in O(k).
        let mut chosen = HashSet::with_capacity(k as usize);
        let mut rows = Vec::with_capacity(k as usize);
        for j in (n - k)..n {
            let t = ((u128::from(next_u64(&mut xof)) * (u128::from(j) + 1)) >> 64) as u32;
            let pick = if chosen.contains(&t) { j } else { t };
            chosen.insert(pick);
            rows.push(pick);
        }
        rows.sort_unstable();
        OpeningRequest { rows }
    }

    /// Verifies one miner's two answers against this round. Never panics on miner data: every size and
    /// value is checked first, and a bad one is a failed [`Verdict`] with its [`Reason`].
    pub fn verify(
        &self,
        challenge: &MatmulChallenge,
        answer: &Round1Answer,
        request: &OpeningRequest,
        openings: &Openings,
    ) -> Verdict {
        let work = challenge.work_units();
        let fail = |reason, detail: String| Verdict::fail(reason, detail, work);
        if *challenge != self.challenge(challenge.miner_seed) {
            return fail(
                Reason::BadChallenge,
                "the challenge does not belong to this round".into(),
            );
        }
        let rows = self.rows();
        if let Err(e) = request.validate(rows, &self.limits) {
            return fail(Reason::BadChallenge, format!("opening request: {e}"));
        }
        let (n, m, p) = (
            self.params.n as usize,
            self.params.m as usize,
            i64::from(self.params.p),
        );
        let sketch_max = (n as f32) * (p as f32 - 1.0) * SKETCH_BOUND as f32;
        let root = if challenge.committed() {
            match (&answer.root, answer.sketch.is_empty()) {
                (Some(root), true) => match parse_hash(root) {
                    Some(root) => Some(root),
                    None => {
                        return fail(Reason::BadShape, "the commitment is not 64 hex digits".into());
                    }
                },
                _ => {
                    return fail(
                        Reason::BadShape,
                        "a batched challenge is answered by a commitment (root) and no sketch".into(),
                    );
                }
            }
        } else {
            if answer.root.is_some() || answer.sketch.len() != n * m {
                return fail(
                    Reason::BadShape,
                    format!(
                        "sketch has {} values, expected n·m = {} (and no root)",
                        answer.sketch.len(),
                        n * m
                    ),
                );
            }
            None
        };
        if let Some(pos) = answer.sketch.iter().position(|&v| !is_int_within(v, sketch_max)) {
            return fail(
                Reason::BadValue,
                format!(
                    "sketch value {} at {pos} is not an integer within ±{sketch_max}",
                    answer.sketch[pos]
                ),
            );
        }
        if openings.rows.len() != request.rows.len() {
            return fail(
                Reason::BadShape,
                format!(
                    "{} rows opened, {} asked",
                    openings.rows.len(),
                    request.rows.len()
                ),
            );
        }
        let c_max = (n * ENTRY_BOUND as usize * ENTRY_BOUND as usize) as f32;
        let mut row_values: Vec<Cow<'_, [f32]>> = Vec::with_capacity(openings.rows.len());
        for (opened, &asked) in openings.rows.iter().zip(&request.rows) {
            if opened.index != asked {
                return fail(
                    Reason::BadShape,
                    format!("row {} was opened where row {asked} was asked", opened.index),
                );
            }
            let values = match (challenge.committed(), &opened.packed) {
                (false, None) => Cow::Borrowed(&opened.values[..]),
                (true, Some(packed)) if opened.values.is_empty() => match unpack_row(packed, n) {
                    Some(values) => Cow::Owned(values),
                    None => {
                        return fail(
                            Reason::BadShape,
                            format!("row {asked} is not {n} packed i32 values"),
                        );
                    }
                },
                _ => {
                    return fail(
                        Reason::BadShape,
                        format!(
                            "row {asked}: a batched challenge's rows come packed, a one-product challenge's as values"
                        ),
                    );
                }
            };
            if values.len() != n {
                return fail(
                    Reason::BadShape,
                    format!("row {asked} has {} values, expected {n}", values.len()),
                );
            }
            if let Some(j) = values.iter().position(|&v| !is_int_within(v, c_max)) {
                return fail(
                    Reason::BadValue,
                    format!(
                        "row {asked} column {j}: {} is not an integer within ±{c_max}",
                        values[j]
                    ),
                );
            }
            row_values.push(values);
        }

        let a_gen = MatrixGen::new(
            challenge.miner_seed,
            MatrixId::A,
            rows,
            self.params.n,
            ENTRY_BOUND,
        );
        let a_cols = a_gen.column_hashes();
        let mut a_row = vec![0i32; n];
        let mut acc = vec![0i32; m];
        let p_inv = 1.0 / p as f64;
        let dtype = self.params.dtype;
        for (opened, values) in openings.rows.iter().zip(&row_values) {
            let i = opened.index as usize;
            // Sketch: (round(C_i) mod p)·R == S_i. Sums stay below 2^24 (validated), so i32 is exact.
            // The hot loop of a round: the default width unrolled into fixed-size adds, the class's
            // rounding chosen once per row.
            let (values, r) = (&values[..], &self.sketch_r[..]);
            match (m, dtype) {
                (8, MatmulDtype::F32) => sketch_row::<8>(values, r, |c| c, p_inv, p as i32, &mut acc),
                (8, MatmulDtype::Bf16) => sketch_row::<8>(values, r, round_bf16, p_inv, p as i32, &mut acc),
                (8, MatmulDtype::F16) => sketch_row::<8>(values, r, round_f16, p_inv, p as i32, &mut acc),
                _ => sketch_row_any(values, r, |c| dtype.round(c), p_inv, p as i32, &mut acc),
            }
            let claimed = match (&root, &opened.proof) {
                (None, _) => &answer.sketch[i * m..(i + 1) * m],
                (Some(root), Some(proof)) => {
                    match verify_proof(root, rows, self.params.m, opened.index, proof) {
                        Ok(values) if values.iter().all(|&v| is_int_within(v, sketch_max)) => values,
                        Ok(_) => {
                            return fail(
                                Reason::BadValue,
                                format!("row {i}: a sketch value is not an integer within ±{sketch_max}"),
                            );
                        }
                        Err(e) => return fail(Reason::WrongSketch, e),
                    }
                }
                (Some(_), None) => {
                    return fail(
                        Reason::BadShape,
                        format!("row {i} was opened without its sketch proof"),
                    );
                }
            };
            if acc.iter().zip(claimed).any(|(&a, &s)| a != s as i32) {
                return fail(
                    Reason::WrongSketch,
                    format!("row {i}: the sketch sent in round 1 does not match the opened row"),
                );
            }
            // Freivalds on one row: C_i·r == A_i·(B·r). |terms| < 2^22·2^21, n ≤ 2^16: no i64 overflow.
            a_gen.row_into(opened.index, &a_cols, &mut a_row);
            let lhs: i64 = values.iter().zip(&self.r).map(|(&c, &r)| c as i64 * r).sum();
            let rhs: i64 = a_row
                .iter()
                .zip(&self.br)
                .map(|(&a, &br)| i64::from(a) * br)
                .sum();
            if lhs != rhs {
                return fail(Reason::WrongRow, format!("row {i} of C is not row {i} of A·B"));
            }
        }
        Verdict::pass(work)
    }
}

/// `acc = (round(values) mod p)·R` for an `R` of width `M` (`acc.len() == M`).
fn sketch_row<const M: usize>(
    values: &[f32],
    sketch_r: &[i32],
    round: impl Fn(f32) -> f32,
    p_inv: f64,
    p: i32,
    acc: &mut [i32],
) {
    let mut sum = [0i32; M];
    for (&c, r_row) in values.iter().zip(sketch_r.chunks_exact(M)) {
        let residue = residue(round(c), p_inv, p);
        for (s, &rv) in sum.iter_mut().zip(r_row) {
            *s += residue * rv;
        }
    }
    acc.copy_from_slice(&sum);
}

/// [`sketch_row`] for any width.
fn sketch_row_any(
    values: &[f32],
    sketch_r: &[i32],
    round: impl Fn(f32) -> f32,
    p_inv: f64,
    p: i32,
    acc: &mut [i32],
) {
    acc.fill(0);
    let m = acc.len();
    for (&c, r_row) in values.iter().zip(sketch_r.chunks_exact(m)) {
        let residue = residue(round(c), p_inv, p);
        for (a, &rv) in acc.iter_mut().zip(r_row) {
            *a += residue * rv;
        }
    }
}

/// [`MatmulDtype::Bf16`]'s rounding of a finite `x` (round to nearest, ties to even, on the upper 16
/// bits), without the NaN handling of a general conversion: the verifier applies it only to values it
/// has checked are finite integers.
#[inline]
fn round_bf16(x: f32) -> f32 {
    let bits = x.to_bits();
    let lsb = (bits >> 16) & 1;
    f32::from_bits(bits.wrapping_add(0x7fff + lsb) & 0xffff_0000)
}

/// [`MatmulDtype::F16`]'s rounding of a finite `x` whose magnitude is an integer or zero: below 2^16 it
/// keeps 11 significant bits (round to nearest, ties to even) with the same bit trick as
/// [`round_bf16`]; at f16's overflow edge and beyond it defers to the general conversion.
#[inline]
fn round_f16(x: f32) -> f32 {
    if x.abs() >= 65_504.0 {
        return MatmulDtype::F16.round(x);
    }
    let bits = x.to_bits();
    let lsb = (bits >> 13) & 1;
    f32::from_bits(bits.wrapping_add(0xfff + lsb) & !0x1fff)
}

/// `c mod p` in `0..p` for an integral `|c| < 2^24`, without an integer division: `c·(1/p)` in f64,
/// truncated, is within one of the floor of the true quotient for such small integers, and the two
/// fix-ups correct it.
#[inline]
fn residue(c: f32, p_inv: f64, p: i32) -> i32 {
    let c = c as i32;
    // Truncation (a plain conversion, no libm call) is within one of the true quotient's floor on
    // either side of zero, so the remainder lands in -p..2p and the two fix-ups correct it.
    let q = (f64::from(c) * p_inv) as i32;
    let mut r = c - q * p;
    if r < 0 {
        r += p;
    }
    if r >= p {
        r -= p;
    }
    r
}

/// Whether `v` is a finite integer with `|v| ≤ max`.
fn is_int_within(v: f32, max: f32) -> bool {
    // `max < 2^24`, so within range the conversion to i32 is exact for integers (and no libm call).
    v.is_finite() && v.abs() <= max && (v as i32) as f32 == v
}

/// `B·r` with `B` rebuilt row by row from the round seed, split across the available cores.
fn b_times_r(params: &RoundParams, r: &[i64]) -> Vec<i64> {
    let n = params.n as usize;
    let b_gen = MatrixGen::new(params.round_seed, MatrixId::B, params.n, params.n, ENTRY_BOUND);
    let cols = b_gen.column_hashes();
    let mut br = vec![0i64; n];
    let threads = std::thread::available_parallelism()
        .map_or(1, |t| t.get())
        .min(n.div_ceil(64))
        .max(1);
    let chunk = n.div_ceil(threads);
    std::thread::scope(|scope| {
        for (c, out) in br.chunks_mut(chunk).enumerate() {
            let (b_gen, cols) = (&b_gen, &cols);
            scope.spawn(move || {
                let mut row = vec![0i32; n];
                for (t, o) in out.iter_mut().enumerate() {
                    b_gen.row_into((c * chunk + t) as u32, cols, &mut row);
                    *o = row.iter().zip(r).map(|(&b, &r)| i64::from(b) * r).sum();
                }
            });
        }
    });
    br
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openings_are_distinct_in_range_and_secret_dependent() {
        let lim = MatmulLimits::default();
        let p = RoundParams {
            k: 40,
            ..RoundParams::new(50, 3)
        };
        let s1 = RoundSetup::new(p, [1; 32], &lim).unwrap();
        let s2 = RoundSetup::new(p, [2; 32], &lim).unwrap();
        let o1 = s1.choose_openings(9);
        assert!(o1.validate(50, &lim).is_ok());
        assert_eq!(o1.rows.len(), 40);
        assert_eq!(o1, s1.choose_openings(9));
        assert_ne!(o1, s2.choose_openings(9));
        assert_ne!(o1, s1.choose_openings(10));
        let all = RoundSetup::new(
            RoundParams {
                k: 7,
                ..RoundParams::new(7, 3)
            },
            [1; 32],
            &lim,
        )
        .unwrap();
        assert_eq!(all.choose_openings(0).rows, (0..7).collect::<Vec<_>>());
    }

    #[test]
    fn b_times_r_matches_dense_product() {
        let params = RoundParams::new(37, 5);
        let setup = RoundSetup::new(params, [7; 32], &MatmulLimits::default()).unwrap();
        let b = MatrixGen::new(5, MatrixId::B, 37, 37, ENTRY_BOUND).to_vec();
        for i in 0..37 {
            let want: i64 = (0..37).map(|j| i64::from(b[i * 37 + j]) * setup.r[j]).sum();
            assert_eq!(setup.br[i], want);
        }
        assert!(setup.r.iter().all(|&x| (1..=1 << R_BITS).contains(&x)));
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let setup = RoundSetup::new(RoundParams::new(8, 1), [0xee; 32], &MatmulLimits::default()).unwrap();
        let shown = format!("{setup:?}");
        assert!(
            shown.contains("round_seed") && !shown.contains("238") && !shown.contains("secret"),
            "{shown}"
        );
    }

    #[test]
    fn bf16_rounding_of_the_verifier_matches_the_class() {
        for c in (-4_200_000i32..4_200_000)
            .step_by(97)
            .chain([0, 1, -1, 257, 259, -259, 1 << 23])
        {
            let x = c as f32;
            assert_eq!(
                round_bf16(x).to_bits(),
                MatmulDtype::Bf16.round(x).to_bits(),
                "{c}"
            );
        }
    }

    #[test]
    fn f16_rounding_of_the_verifier_matches_the_class() {
        for c in (-70_000i32..70_000).chain([1 << 20, -(1 << 22)]) {
            let x = c as f32;
            assert_eq!(round_f16(x).to_bits(), MatmulDtype::F16.round(x).to_bits(), "{c}");
        }
    }

    #[test]
    fn residue_matches_rem_euclid() {
        for p in [3, 251, 2039] {
            for c in (-70_000i32..70_000)
                .step_by(7)
                .chain([-(1 << 23), (1 << 23) - 1, 0, -1, 1])
            {
                assert_eq!(
                    residue(c as f32, 1.0 / f64::from(p), p),
                    c.rem_euclid(p),
                    "c={c} p={p}"
                );
            }
            for c in (-10..10).map(|t| t * p) {
                assert_eq!(residue(c as f32, 1.0 / f64::from(p), p), 0);
            }
        }
    }

    #[test]
    fn batched_rounds_open_rows_across_the_stack_at_the_same_setup() {
        let lim = MatmulLimits::default();
        let params = RoundParams {
            k: 12,
            ..RoundParams::new(16, 3)
        };
        let one = RoundSetup::new(params, [4; 32], &lim).unwrap();
        let many = RoundSetup::batched(params, 10, [4; 32], &lim).unwrap();
        assert_eq!((one.rows(), many.rows(), many.challenge(1).batch), (16, 160, 10));
        assert_eq!(one.br, many.br, "B·r is shared by every product");
        let rows = many.choose_openings(1).rows;
        assert!(rows.iter().any(|&r| r >= 16) && rows.iter().all(|&r| r < 160));
        // Skipping 1 of 10 products (16 of 160 rows) against 12 openings.
        let p = many.pass_probability(16);
        assert!(p <= 0.9f64.powi(12) && p > 0.0, "{p}");
        // More openings than one product has rows: fine for a batch, refused for one product.
        let wide = RoundParams { k: 100, ..params };
        assert!(RoundSetup::batched(wide, 10, [4; 32], &lim).is_ok());
        assert!(RoundSetup::new(wide, [4; 32], &lim).is_err());
        assert!(RoundSetup::batched(params, 0, [4; 32], &lim).is_err());
        assert!(RoundSetup::batched(params, lim.max_batch + 1, [4; 32], &lim).is_err());
    }

    #[test]
    fn pass_probability_is_hypergeometric() {
        let p = RoundParams {
            k: 2,
            ..RoundParams::new(10, 0)
        };
        assert!((p.pass_probability(1) - 0.8).abs() < 1e-12);
        assert_eq!(p.pass_probability(10), 0.0);
        assert_eq!(p.pass_probability(0), 1.0);
    }
}
