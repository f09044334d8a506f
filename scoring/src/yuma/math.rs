//! Fixed-point vector and sparse-matrix helpers for the epoch, each reproducing the arithmetic of the
//! function of the same name in subtensor's `pallets/subtensor/src/epoch/math.rs`: same types, same
//! saturating operations, same order of accumulation, and division by zero giving zero (`safe_div`).
//!
//! Sparse matrices are `Vec<Row>`, one row per uid, each row a list of `(column, value)` pairs in the
//! order they were stored; functions never re-sort rows, because the chain does not either.

use substrate_fixed::transcendental::exp;
use substrate_fixed::types::{I32F32, I64F64};

/// One row of a sparse matrix: `(column uid, value)` pairs.
pub(super) type Row = Vec<(u16, I32F32)>;

/// `0` as I32F32.
pub(crate) const ZERO: I32F32 = I32F32::from_bits(0);

/// `1` as I32F32.
pub(crate) const ONE: I32F32 = I32F32::from_bits(1 << 32);

/// Division that yields zero when the divisor is zero or the quotient overflows (subtensor `safe_div`).
pub(crate) fn safe_div(a: I32F32, b: I32F32) -> I32F32 {
    a.checked_div(b).unwrap_or_default()
}

/// I64F64 division that yields zero on a zero divisor or overflow.
pub(crate) fn safe_div64(a: I64F64, b: I64F64) -> I64F64 {
    a.checked_div(b).unwrap_or_default()
}

/// A u16 proportion of `u16::MAX` as I32F32 (`u16_proportion_to_fixed`).
pub(crate) fn u16_proportion_to_fixed(x: u16) -> I32F32 {
    safe_div(
        I32F32::saturating_from_num(x),
        I32F32::saturating_from_num(u16::MAX),
    )
}

/// A proportion in [0, 1] scaled to u16, truncating (`fixed_proportion_to_u16`).
pub(crate) fn fixed_proportion_to_u16(x: I32F32) -> u16 {
    x.saturating_mul(I32F32::saturating_from_num(u16::MAX))
        .saturating_to_num::<u16>()
}

/// Plain sum, as `Iterator::sum` on fixed-point values in subtensor.
pub(crate) fn sum(x: &[I32F32]) -> I32F32 {
    x.iter().fold(ZERO, |acc, v| acc.wrapping_add(*v))
}

/// `e^x` with the input clamped to [-20, 20] (`exp_safe`).
pub(crate) fn exp_safe(input: I32F32) -> I32F32 {
    let min_input = I32F32::saturating_from_num(-20);
    let max_input = I32F32::saturating_from_num(20);
    let mut safe_input = input;
    if input < min_input {
        safe_input = min_input;
    } else if max_input < input {
        safe_input = max_input;
    }
    match exp::<I32F32, I32F32>(safe_input) {
        Ok(val) => val,
        Err(()) => {
            if safe_input <= 0 {
                ZERO
            } else {
                I32F32::max_value()
            }
        }
    }
}

/// `value` clamped to `[low, high]` (`clamp_value`: min with high first, then max with low).
pub(crate) fn clamp_value(value: I32F32, low: I32F32, high: I32F32) -> I32F32 {
    value.min(high).max(low)
}

/// True for entries that are non-zero and among the `k` largest; ties lose in uid order
/// (`is_topk_nonzero`: stable ascending sort, the first `n - k` cleared).
pub(crate) fn is_topk_nonzero(vector: &[I32F32], k: usize) -> Vec<bool> {
    let n = vector.len();
    let mut result: Vec<bool> = vector.iter().map(|&e| e != ZERO).collect();
    if n < k {
        return result;
    }
    let mut idxs: Vec<usize> = (0..n).collect();
    idxs.sort_by_key(|&i| vector[i]);
    for &i in idxs.iter().take(n.saturating_sub(k)) {
        result[i] = false;
    }
    result
}

/// Normalize to sum 1 in place, unless the sum is zero (`inplace_normalize`).
pub(crate) fn inplace_normalize(x: &mut [I32F32]) {
    let x_sum = sum(x);
    if x_sum == ZERO {
        return;
    }
    x.iter_mut().for_each(|v| *v = safe_div(*v, x_sum));
}

/// Divide every entry by `x_sum` unless it is zero (`inplace_normalize_using_sum`).
pub(crate) fn inplace_normalize_using_sum(x: &mut [I32F32], x_sum: I32F32) {
    if x_sum == ZERO {
        return;
    }
    x.iter_mut().for_each(|v| *v = safe_div(*v, x_sum));
}

/// Normalize an I64F64 vector in place (`inplace_normalize_64`).
pub(crate) fn inplace_normalize_64(x: &mut [I64F64]) {
    let x_sum = x.iter().fold(I64F64::from_num(0), |acc, v| acc.wrapping_add(*v));
    if x_sum == I64F64::from_num(0) {
        return;
    }
    x.iter_mut().for_each(|v| *v = safe_div64(*v, x_sum));
}

/// Set entries where `mask` is true to zero; a missing mask entry masks (`inplace_mask_vector`).
pub(crate) fn inplace_mask_vector(mask: &[bool], vector: &mut [I32F32]) {
    if mask.is_empty() {
        return;
    }
    for (i, v) in vector.iter_mut().enumerate() {
        if *mask.get(i).unwrap_or(&true) {
            *v = ZERO;
        }
    }
}

/// Empty the rows where `mask` is true; a missing mask entry masks (`mask_rows_sparse`).
pub(crate) fn mask_rows_sparse(mask: &[bool], m: &[Row]) -> Vec<Row> {
    m.iter()
        .enumerate()
        .map(|(i, row)| {
            if mask.get(i).copied().unwrap_or(true) {
                Vec::new()
            } else {
                row.clone()
            }
        })
        .collect()
}

/// Drop diagonal entries (`mask_diag_sparse`).
pub(crate) fn mask_diag_sparse(m: &[Row]) -> Vec<Row> {
    m.iter()
        .enumerate()
        .map(|(i, row)| row.iter().filter(|(j, _)| i != *j as usize).copied().collect())
        .collect()
}

/// Drop diagonal entries except the one at `except` (`mask_diag_sparse_except_index`).
pub(crate) fn mask_diag_sparse_except_index(m: &[Row], except: u16) -> Vec<Row> {
    m.iter()
        .enumerate()
        .map(|(i, row)| {
            row.iter()
                .filter(|(j, _)| i != *j as usize || (i == except as usize && *j == except))
                .copied()
                .collect()
        })
        .collect()
}

/// Drop cell (i, j) where `mask_fn(first[i], second[j])` (`vec_mask_sparse_matrix`); missing entries read 0.
pub(crate) fn vec_mask_sparse_matrix(
    m: &[Row],
    first: &[u64],
    second: &[u64],
    mask_fn: impl Fn(u64, u64) -> bool,
) -> Vec<Row> {
    let mut fv_it = first.iter();
    m.iter()
        .map(|row| {
            let fv = fv_it.next().copied().unwrap_or(0);
            row.iter()
                .filter(|(j, _)| !mask_fn(fv, second.get(*j as usize).copied().unwrap_or(0)))
                .copied()
                .collect()
        })
        .collect()
}

/// Drop cell (i, j) where `mask_fn(scalar, vector[j])` (`scalar_vec_mask_sparse_matrix`).
pub(crate) fn scalar_vec_mask_sparse_matrix(
    m: &[Row],
    scalar: u64,
    vector: &[u64],
    mask_fn: impl Fn(u64, u64) -> bool,
) -> Vec<Row> {
    m.iter()
        .map(|row| {
            row.iter()
                .filter(|(j, _)| !mask_fn(scalar, vector.get(*j as usize).copied().unwrap_or(0)))
                .copied()
                .collect()
        })
        .collect()
}

/// Normalize each row with a positive sum (`inplace_row_normalize_sparse`).
pub(crate) fn inplace_row_normalize_sparse(m: &mut [Row]) {
    for row in m.iter_mut() {
        let row_sum = row.iter().fold(ZERO, |acc, (_, v)| acc.wrapping_add(*v));
        if row_sum > ZERO {
            row.iter_mut().for_each(|(_, v)| *v = safe_div(*v, row_sum));
        }
    }
}

/// Sum of each row (`row_sum_sparse`).
pub(crate) fn row_sum_sparse(m: &[Row]) -> Vec<I32F32> {
    m.iter()
        .map(|row| row.iter().fold(ZERO, |acc, (_, v)| acc.wrapping_add(*v)))
        .collect()
}

/// Normalize each column with a non-zero sum (`inplace_col_normalize_sparse`).
pub(crate) fn inplace_col_normalize_sparse(m: &mut [Row], columns: usize) {
    let mut col_sum = vec![ZERO; columns];
    for row in m.iter() {
        for &(j, v) in row {
            if let Some(s) = col_sum.get_mut(j as usize) {
                *s = s.saturating_add(v);
            }
        }
    }
    for row in m.iter_mut() {
        for (j, v) in row.iter_mut() {
            let denom = col_sum.get(*j as usize).copied().unwrap_or(ZERO);
            if denom != ZERO {
                *v = safe_div(*v, denom);
            }
        }
    }
}

/// Scale each column so its largest entry is 1 (`inplace_col_max_upscale_sparse`).
pub(crate) fn inplace_col_max_upscale_sparse(m: &mut [Row], columns: usize) {
    let mut col_max = vec![ZERO; columns];
    for row in m.iter() {
        for &(j, v) in row {
            if let Some(mx) = col_max.get_mut(j as usize)
                && *mx < v
            {
                *mx = v;
            }
        }
    }
    for row in m.iter_mut() {
        for (j, v) in row.iter_mut() {
            let mx = col_max.get(*j as usize).copied().unwrap_or(ZERO);
            if mx != ZERO {
                *v = safe_div(*v, mx);
            }
        }
    }
}

/// Multiply each row by the matching vector entry (`row_hadamard_sparse`).
pub(crate) fn row_hadamard_sparse(m: &[Row], vector: &[I32F32]) -> Vec<Row> {
    m.iter()
        .zip(vector)
        .map(|(row, &scale)| row.iter().map(|&(j, v)| (j, v.saturating_mul(scale))).collect())
        .collect()
}

/// `result_j = Σ_i vector_i · m_ij` (`matmul_sparse`).
pub(crate) fn matmul_sparse(m: &[Row], vector: &[I32F32], columns: usize) -> Vec<I32F32> {
    let mut result = vec![ZERO; columns];
    let mut vec_it = vector.iter();
    for row in m {
        let scale = vec_it.next().copied().unwrap_or(ZERO);
        for &(j, v) in row {
            if let Some(r) = result.get_mut(j as usize) {
                *r = r.saturating_add(scale.saturating_mul(v));
            }
        }
    }
    result
}

/// `result_i = Σ_j vector_j · m_ij` (`matmul_transpose_sparse`).
pub(crate) fn matmul_transpose_sparse(m: &[Row], vector: &[I32F32]) -> Vec<I32F32> {
    m.iter()
        .map(|row| {
            row.iter().fold(ZERO, |acc, &(j, v)| {
                acc.saturating_add(vector.get(j as usize).copied().unwrap_or(ZERO).saturating_mul(v))
            })
        })
        .collect()
}

/// Clip each entry to its column threshold, dropping it when the threshold is not positive
/// (`col_clip_sparse`).
pub(crate) fn col_clip_sparse(m: &[Row], threshold: &[I32F32]) -> Vec<Row> {
    m.iter()
        .map(|row| {
            let mut out = Vec::with_capacity(row.len());
            for &(j, v) in row {
                let th = threshold.get(j as usize).copied().unwrap_or(ZERO);
                if th < v {
                    if th > ZERO {
                        out.push((j, th));
                    }
                } else {
                    out.push((j, v));
                }
            }
            out
        })
        .collect()
}

/// Stake-weighted median by deterministic mid-pivot binary search (`weighted_median`).
pub(crate) fn weighted_median(
    stake: &[I32F32],
    score: &[I32F32],
    partition_idx: &[usize],
    minority: I32F32,
    mut partition_lo: I32F32,
    mut partition_hi: I32F32,
) -> I32F32 {
    if stake.len() != score.len() {
        return ZERO;
    }
    let get = |v: &[I32F32], i: usize| v.get(i).copied().unwrap_or_default();
    let mut current: Vec<usize> = partition_idx.to_vec();
    let iteration_limit = partition_idx.len();
    let mut iterations = 0usize;
    let mut lower: Vec<usize> = Vec::new();
    let mut upper: Vec<usize> = Vec::new();
    loop {
        let n = current.len();
        if n == 0 {
            return ZERO;
        }
        if n == 1 {
            return get(score, current[0]);
        }
        let pivot = get(score, current[n / 2]);
        let mut lo_stake = ZERO;
        let mut hi_stake = ZERO;
        for &idx in &current {
            let s = get(score, idx);
            if s == pivot {
                continue;
            }
            if s < pivot {
                lo_stake = lo_stake.saturating_add(get(stake, idx));
                lower.push(idx);
            } else {
                hi_stake = hi_stake.saturating_add(get(stake, idx));
                upper.push(idx);
            }
        }
        if minority < partition_lo.saturating_add(lo_stake) && !lower.is_empty() {
            current = std::mem::take(&mut lower);
            partition_hi = partition_lo.saturating_add(lo_stake);
        } else if partition_hi.saturating_sub(hi_stake) <= minority && !upper.is_empty() {
            current = std::mem::take(&mut upper);
            partition_lo = partition_hi.saturating_sub(hi_stake);
        } else {
            return pivot;
        }
        lower.clear();
        upper.clear();
        iterations += 1;
        if iterations > iteration_limit {
            return ZERO;
        }
    }
}

/// Per-column stake-weighted median over the rows with positive stake (`weighted_median_col_sparse`).
pub(crate) fn weighted_median_col_sparse(
    stake: &[I32F32],
    score: &[Row],
    columns: usize,
    majority: I32F32,
) -> Vec<I32F32> {
    let mut use_stake: Vec<I32F32> = stake.iter().copied().filter(|&s| s > ZERO).collect();
    inplace_normalize(&mut use_stake);
    let stake_sum = sum(&use_stake);
    let minority = stake_sum.saturating_sub(majority);
    let stake_idx: Vec<usize> = (0..use_stake.len()).collect();
    let mut use_score: Vec<Vec<I32F32>> = vec![vec![ZERO; use_stake.len()]; columns];
    let mut k = 0usize;
    for (&s, row) in stake.iter().zip(score) {
        if s > ZERO {
            for &(c, v) in row {
                if let Some(cell) = use_score.get_mut(c as usize).and_then(|col| col.get_mut(k)) {
                    *cell = v;
                }
            }
            k += 1;
        }
    }
    use_score
        .iter()
        .map(|col| weighted_median(&use_stake, col, &stake_idx, minority, ZERO, stake_sum))
        .collect()
}

/// `A + ratio · (B − A)` element-wise, keeping positive results (`interpolate_sparse`).
pub(crate) fn interpolate_sparse(a: &[Row], b: &[Row], columns: usize, ratio: I32F32) -> Vec<Row> {
    if ratio == ZERO {
        return a.to_vec();
    }
    if ratio == ONE {
        return b.to_vec();
    }
    if a.len() != b.len() {
        return b.to_vec();
    }
    let densify = |row: &Row| {
        let mut d = vec![ZERO; columns];
        for &(j, v) in row {
            if let Some(e) = d.get_mut(j as usize) {
                *e = v;
            }
        }
        d
    };
    a.iter()
        .zip(b)
        .map(|(ra, rb)| {
            let (r1, r2) = (densify(ra), densify(rb));
            let mut out = Vec::new();
            for j in 0..columns {
                let v = r1[j].saturating_add(ratio.saturating_mul(r2[j].saturating_sub(r1[j])));
                if ZERO < v {
                    out.push((j as u16, v));
                }
            }
            out
        })
        .collect()
}

/// Element-wise product, zero on overflow (`vec_mul`).
pub(crate) fn vec_mul(a: &[I32F32], b: &[I32F32]) -> Vec<I32F32> {
    a.iter()
        .zip(b)
        .map(|(x, y)| x.checked_mul(*y).unwrap_or_default())
        .collect()
}

/// `m_ij · vector_j`, keeping non-zero results (`mat_vec_mul_sparse`).
pub(crate) fn mat_vec_mul_sparse(m: &[Row], vector: &[I32F32]) -> Vec<Row> {
    m.iter()
        .map(|row| {
            row.iter()
                .filter_map(|&(j, v)| {
                    let x = vector.get(j as usize)?;
                    let p = v.saturating_mul(*x);
                    (p != ZERO).then_some((j, p))
                })
                .collect()
        })
        .collect()
}

/// `alpha · new + (1 − alpha) · old`, densified per row, keeping positive entries (`mat_ema_sparse`).
pub(crate) fn mat_ema_sparse(new: &[Row], old: &[Row], alpha: I32F32) -> Vec<Row> {
    let one_minus_alpha = ONE.saturating_sub(alpha);
    let n = new.len();
    let mut old_it = old.iter();
    new.iter()
        .map(|new_row| {
            let mut acc = vec![ZERO; n];
            for &(j, v) in new_row {
                if let Some(c) = acc.get_mut(j as usize) {
                    *c = c.saturating_add(alpha.saturating_mul(v));
                }
            }
            if let Some(orow) = old_it.next() {
                for &(j, v) in orow {
                    if let Some(c) = acc.get_mut(j as usize) {
                        *c = c.saturating_add(one_minus_alpha.saturating_mul(v));
                    }
                }
            }
            acc.iter()
                .enumerate()
                .filter(|(_, v)| **v > ZERO)
                .map(|(j, v)| (j as u16, *v))
                .collect()
        })
        .collect()
}

/// Per-cell-alpha EMA `min(1, (1 − α)·old + α·new)`; only columns present in the new row survive
/// (`mat_ema_alpha_sparse`).
pub(crate) fn mat_ema_alpha_sparse(new: &[Row], old: &[Row], alpha: &[Vec<I32F32>]) -> Vec<Row> {
    if new.len() != old.len() || new.len() != alpha.len() {
        return new.to_vec();
    }
    new.iter()
        .zip(old)
        .zip(alpha)
        .map(|((new_row, old_row), alpha_row)| {
            let mut decayed = vec![ZERO; alpha_row.len()];
            for &(j, ov) in old_row {
                if let (Some(&a), Some(c)) = (alpha_row.get(j as usize), decayed.get_mut(j as usize)) {
                    *c = ONE.saturating_sub(a).saturating_mul(ov);
                }
            }
            let mut out = Vec::new();
            for &(j, nv) in new_row {
                if let (Some(&a), Some(&d)) = (alpha_row.get(j as usize), decayed.get(j as usize)) {
                    let inc = a.saturating_mul(nv).max(ZERO);
                    let v = d.saturating_add(inc).min(ONE);
                    if v > ZERO {
                        out.push((j, v));
                    }
                }
            }
            out
        })
        .collect()
}

/// The liquid-alpha sigmoid for one cell (`alpha_sigmoid` in subtensor's `run_epoch.rs`).
pub(crate) fn alpha_sigmoid(
    consensus: I32F32,
    weight: I32F32,
    bond: I32F32,
    alpha_low: I32F32,
    alpha_high: I32F32,
    steepness: I32F32,
) -> I32F32 {
    let diff_buy = clamp_value(weight.saturating_sub(consensus), ZERO, ONE);
    let diff_sell = clamp_value(bond.saturating_sub(weight), ZERO, ONE);
    let combined = if weight >= bond { diff_buy } else { diff_sell };
    let sigmoid = ONE.saturating_div(
        ONE.saturating_add(exp_safe(
            steepness
                .saturating_div(I32F32::from_num(-100))
                .saturating_mul(combined.saturating_sub(I32F32::from_num(0.5))),
        )),
    );
    let alpha = alpha_low.saturating_add(sigmoid.saturating_mul(alpha_high.saturating_sub(alpha_low)));
    clamp_value(alpha, alpha_low, alpha_high)
}

/// The dense matrix of liquid alphas, walking each (assumed sorted) sparse row alongside the
/// consensus columns (`compute_liquid_alpha_values_sparse`).
pub(crate) fn liquid_alpha_values_sparse(
    weights: &[Row],
    bonds: &[Row],
    consensus: &[I32F32],
    alpha_low: I32F32,
    alpha_high: I32F32,
    steepness: I32F32,
) -> Vec<Vec<I32F32>> {
    if weights.len() != bonds.len() {
        return Vec::new();
    }
    weights
        .iter()
        .zip(bonds)
        .map(|(w_row, b_row)| {
            let mut w_it = w_row.iter().peekable();
            let mut b_it = b_row.iter().peekable();
            consensus
                .iter()
                .enumerate()
                .map(|(pos, &c)| {
                    let j = pos as u16;
                    let mut weight = ZERO;
                    while let Some(&&(i, v)) = w_it.peek() {
                        if i < j {
                            w_it.next();
                        } else {
                            if i == j {
                                weight = v;
                            }
                            break;
                        }
                    }
                    let mut bond = ZERO;
                    while let Some(&&(i, v)) = b_it.peek() {
                        if i < j {
                            b_it.next();
                        } else {
                            if i == j {
                                bond = v;
                            }
                            break;
                        }
                    }
                    alpha_sigmoid(c, weight, bond, alpha_low, alpha_high, steepness)
                })
                .collect()
        })
        .collect()
}

/// Whether every row's columns are strictly ascending.
pub(crate) fn rows_sorted(m: &[Row]) -> bool {
    m.iter().all(|row| row.windows(2).all(|p| p[0].0 < p[1].0))
}

/// `mat_ema_alpha_sparse(new, old, liquid_alpha_values_sparse(new, old, …))` for rows sorted by
/// column, evaluating the sigmoid only at the cells the EMA reads (columns of the new row). For sorted
/// rows the chain's merge walk finds exactly the entry of the same column, so the result is identical.
pub(crate) fn liquid_alpha_ema_sorted(
    new: &[Row],
    old: &[Row],
    consensus: &[I32F32],
    alpha_low: I32F32,
    alpha_high: I32F32,
    steepness: I32F32,
) -> Vec<Row> {
    if new.len() != old.len() {
        return new.to_vec();
    }
    new.iter()
        .zip(old)
        .map(|(new_row, old_row)| {
            let mut out = Vec::with_capacity(new_row.len());
            for &(j, nv) in new_row {
                let Some(&c) = consensus.get(j as usize) else {
                    continue;
                };
                let ov = old_row
                    .binary_search_by_key(&j, |e| e.0)
                    .ok()
                    .map(|k| old_row[k].1);
                let a = alpha_sigmoid(c, nv, ov.unwrap_or(ZERO), alpha_low, alpha_high, steepness);
                let decayed = ov.map_or(ZERO, |ov| ONE.saturating_sub(a).saturating_mul(ov));
                let v = decayed.saturating_add(a.saturating_mul(nv).max(ZERO)).min(ONE);
                if v > ZERO {
                    out.push((j, v));
                }
            }
            out
        })
        .collect()
}

/// Max-upscale to u16 so the largest entry is 65535, with rounding (`vec_max_upscale_to_u16`).
pub fn vec_max_upscale_to_u16(vec: &[I32F32]) -> Vec<u16> {
    let u16_max = I32F32::saturating_from_num(u16::MAX);
    let threshold = I32F32::saturating_from_num(32768);
    match vec.iter().max() {
        Some(&val) => {
            if val == ZERO {
                return vec
                    .iter()
                    .map(|e| e.saturating_mul(u16_max).saturating_to_num::<u16>())
                    .collect();
            }
            if val > threshold {
                return vec
                    .iter()
                    .map(|e| {
                        e.saturating_mul(safe_div(u16_max, val))
                            .round()
                            .saturating_to_num::<u16>()
                    })
                    .collect();
            }
            vec.iter()
                .map(|e| {
                    safe_div(e.saturating_mul(u16_max), val)
                        .round()
                        .saturating_to_num::<u16>()
                })
                .collect()
        }
        None => Vec::new(),
    }
}

/// Max-upscale a u16 vector as `set_weights` does before storing it (`vec_u16_max_upscale_to_u16`).
pub fn vec_u16_max_upscale_to_u16(vec: &[u16]) -> Vec<u16> {
    let fixed: Vec<I32F32> = vec.iter().map(|&e| I32F32::saturating_from_num(e)).collect();
    vec_max_upscale_to_u16(&fixed)
}

/// Whether the largest entry of `vec`, normalized, is at most `max_limit / 65535`
/// (`check_vec_max_limited`, the chain's `MaxWeightsLimit` test).
pub fn check_vec_max_limited(vec: &[u16], max_limit: u16) -> bool {
    let limit = safe_div(
        I32F32::saturating_from_num(max_limit),
        I32F32::saturating_from_num(u16::MAX),
    );
    let mut fixed: Vec<I32F32> = vec.iter().map(|&e| I32F32::saturating_from_num(e)).collect();
    inplace_normalize(&mut fixed);
    fixed.iter().max().is_none_or(|v| *v <= limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(x: f64) -> I32F32 {
        I32F32::from_num(x)
    }

    #[test]
    fn weighted_median_picks_the_stake_majority() {
        // Stakes 0.6 on score 0.2 and 0.4 on score 0.9: the kappa=0.5 median is 0.2.
        let stake = [f(0.6), f(0.4)];
        let score = [f(0.2), f(0.9)];
        let m = weighted_median(&stake, &score, &[0, 1], f(1.0) - f(0.5), f(0.0), f(1.0));
        assert_eq!(m, f(0.2));
        let stake = [f(0.4), f(0.6)];
        let m = weighted_median(&stake, &score, &[0, 1], f(1.0) - f(0.5), f(0.0), f(1.0));
        assert_eq!(m, f(0.9));
    }

    #[test]
    fn max_upscale_matches_set_weights_storage() {
        // The test_bonds weights are stored unchanged because their max is already 65535.
        let w = [16383u16, 32767, 49149, 65535];
        assert_eq!(vec_u16_max_upscale_to_u16(&w), w.to_vec());
        assert_eq!(vec_u16_max_upscale_to_u16(&[1, 2]), vec![32768, 65535]);
        assert_eq!(vec_u16_max_upscale_to_u16(&[0, 0]), vec![0, 0]);
    }

    #[test]
    fn sorted_liquid_alpha_matches_the_dense_walk_bit_for_bit() {
        let mut x: u64 = 12345;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let n = 40usize;
        let mut sparse = |density: u64| -> Vec<Row> {
            (0..n)
                .map(|_| {
                    let mut row = Row::new();
                    for j in 0..n as u16 {
                        if next() % 100 < density {
                            row.push((j, I32F32::from_bits((next() % (1 << 32)) as i64)));
                        }
                    }
                    row
                })
                .collect()
        };
        let (w, b) = (sparse(30), sparse(50));
        let c: Vec<I32F32> = sparse(100)[0].iter().map(|e| e.1).collect();
        let (lo, hi, st) = (f(0.1), f(0.3), f(1000.0));
        let dense = mat_ema_alpha_sparse(&w, &b, &liquid_alpha_values_sparse(&w, &b, &c, lo, hi, st));
        assert_eq!(liquid_alpha_ema_sorted(&w, &b, &c, lo, hi, st), dense);
        assert!(dense.iter().map(Vec::len).sum::<usize>() > 100);
    }

    #[test]
    fn exp_safe_clamps() {
        assert_eq!(exp_safe(f(100.0)), exp_safe(f(20.0)));
        assert!(exp_safe(f(-100.0)) < f(1e-8));
        assert_eq!(exp_safe(f(0.0)), f(1.0));
    }

    #[test]
    fn topk_nonzero_drops_zero_and_lowest() {
        let v = [f(0.1), f(0.0), f(0.5), f(0.1)];
        assert_eq!(is_topk_nonzero(&v, 2), vec![false, false, true, true]);
        assert_eq!(is_topk_nonzero(&v, 8), vec![true, false, true, true]);
    }
}
