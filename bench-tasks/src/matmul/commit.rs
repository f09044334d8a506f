//! The commitment of a batched challenge: a Merkle tree over the rows of the stacked sketch.
//!
//! A batched challenge ([`MatmulChallenge::batch`] `= B > 1`) has a stacked sketch of `B·n` rows of `m`
//! values: about 2.4 million values (≈ 20 MB of JSON) for 36 products of 8192³, far too much to send in
//! the timed round. So the miner sends only the root of a binary Merkle tree whose leaves are blocks of
//! [`LEAF_ROWS`] consecutive sketch rows (the last one may be shorter), and each opened row of round 2
//! carries its leaf and the sibling hashes up to the root ([`SketchProof`]). The verifier hashes the
//! leaf, walks the path, compares with the root sent in round 1, and then checks the row's sketch as in
//! a one-product challenge.
//!
//! Binding: the root fixes every leaf (finding a second leaf or path with the same root is a BLAKE3
//! collision), so the sketch rows are as fixed after round 1 as a sketch sent in full, and the
//! soundness argument of [`crate::matmul::verifier`] applies word for word. Leaves hash the values'
//! f32 bit patterns, which JSON carries exactly (shortest round-trip notation).
//!
//! Tree shape: level 0 holds the leaf hashes; each next level hashes pairs, and an odd last node is
//! carried up unchanged. The verifier knows the leaf count (`⌈B·n / LEAF_ROWS⌉`), hence the shape,
//! hence exactly how many siblings a path must have.
//!
//! Cost: the miner hashes `B·n·m·4` bytes once (on all its cores), the validator `k` leaves of at most
//! `LEAF_ROWS·m·4` bytes and `k·⌈log₂ leaves⌉` nodes per challenge: nothing that grows with `B`
//! beyond the logarithm.

use super::params::{LEAF_ROWS, SketchProof};

/// Domain of the leaf hashes.
const LEAF_DOMAIN: &str = "tensorproof matmul sketch leaf v1";
/// Domain of the inner node hashes.
const NODE_DOMAIN: &str = "tensorproof matmul sketch node v1";

/// One hash of the tree.
pub type Hash = [u8; 32];

fn leaf_hash(index: u64, values: &[f32]) -> Hash {
    let mut h = blake3::Hasher::new_derive_key(LEAF_DOMAIN);
    h.update(&index.to_le_bytes());
    let mut bytes = Vec::with_capacity(values.len() * 4);
    for v in values {
        bytes.extend_from_slice(&v.to_bits().to_le_bytes());
    }
    h.update(&bytes);
    *h.finalize().as_bytes()
}

fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = blake3::Hasher::new_derive_key(NODE_DOMAIN);
    h.update(left);
    h.update(right);
    *h.finalize().as_bytes()
}

/// Leaves of a stacked sketch of `rows` rows.
pub const fn leaf_count(rows: u32) -> u32 {
    rows.div_ceil(LEAF_ROWS)
}

/// Siblings on the path of leaf `index` in a tree of `leaves` leaves (carried nodes have none).
fn path_len(mut index: u32, mut width: u32) -> usize {
    let mut len = 0;
    while width > 1 {
        if index ^ 1 < width {
            len += 1;
        }
        index >>= 1;
        width = width.div_ceil(2);
    }
    len
}

/// The miner's tree: the stacked sketch and every level of hashes.
#[derive(Debug, Clone)]
pub struct SketchTree {
    m: usize,
    sketch: Vec<f32>,
    levels: Vec<Vec<Hash>>,
}

impl SketchTree {
    /// Builds the tree of a stacked sketch (`rows × m`, row-major), hashing the leaves on all cores.
    /// `m` must be at least 1 and divide `sketch.len()`.
    pub fn build(sketch: Vec<f32>, m: usize) -> Self {
        let m = m.max(1);
        let per_leaf = LEAF_ROWS as usize * m;
        let leaves = sketch.len().div_ceil(per_leaf).max(1);
        let mut level0 = vec![[0u8; 32]; leaves];
        let threads = std::thread::available_parallelism()
            .map_or(1, |t| t.get())
            .min(leaves.div_ceil(64))
            .max(1);
        let chunk = leaves.div_ceil(threads);
        std::thread::scope(|scope| {
            for (c, out) in level0.chunks_mut(chunk).enumerate() {
                let sketch = &sketch;
                scope.spawn(move || {
                    for (t, o) in out.iter_mut().enumerate() {
                        let leaf = c * chunk + t;
                        let start = (leaf * per_leaf).min(sketch.len());
                        let end = (start + per_leaf).min(sketch.len());
                        *o = leaf_hash(leaf as u64, &sketch[start..end]);
                    }
                });
            }
        });
        let mut levels = vec![level0];
        while let Some(top) = levels.last().filter(|l| l.len() > 1) {
            let next = top
                .chunks(2)
                .map(|pair| pair.get(1).map_or(pair[0], |right| node_hash(&pair[0], right)))
                .collect();
            levels.push(next);
        }
        Self { m, sketch, levels }
    }

    /// The root, as sent in round 1.
    pub fn root(&self) -> Hash {
        self.levels
            .last()
            .and_then(|l| l.first())
            .copied()
            .unwrap_or([0; 32])
    }

    /// The root as 64 lowercase hex digits.
    pub fn root_hex(&self) -> String {
        hex::encode(self.root())
    }

    /// The proof of the leaf holding stacked row `row` (which the caller has checked is in range).
    pub fn proof(&self, row: u32) -> SketchProof {
        let per_leaf = LEAF_ROWS as usize * self.m;
        let leaf = row / LEAF_ROWS;
        let start = (leaf as usize * per_leaf).min(self.sketch.len());
        let end = (start + per_leaf).min(self.sketch.len());
        let mut path = Vec::new();
        let mut index = leaf as usize;
        for level in &self.levels[..self.levels.len() - 1] {
            if let Some(sibling) = level.get(index ^ 1) {
                path.push(hex::encode(sibling));
            }
            index >>= 1;
        }
        SketchProof {
            leaf: self.sketch[start..end].to_vec(),
            path,
        }
    }

    /// Bytes this tree holds (the sketch and the hashes), for the miner's memory accounting.
    pub fn bytes(&self) -> u64 {
        let hashes: usize = self.levels.iter().map(Vec::len).sum();
        (self.sketch.len() * 4 + hashes * 32) as u64
    }
}

/// Bytes a [`SketchTree`] of a stacked sketch of `rows × m` holds: an upper bound of
/// [`SketchTree::bytes`], computed before anything is allocated.
pub fn tree_bytes(rows: u32, m: u32) -> u64 {
    // Each level holds at most half the one below it, rounded up: fewer than 2·leaves + 32 hashes.
    u64::from(rows) * u64::from(m) * 4 + (2 * u64::from(leaf_count(rows).max(1)) + 32) * 32
}

/// Checks `proof` for stacked row `row` of a sketch of `rows × m` against `root`, and returns the row's
/// `m` sketch values. The error says what is wrong, in one sentence.
pub fn verify_proof<'p>(
    root: &Hash,
    rows: u32,
    m: u32,
    row: u32,
    proof: &'p SketchProof,
) -> Result<&'p [f32], String> {
    let leaves = leaf_count(rows);
    let leaf = row / LEAF_ROWS;
    let first = leaf * LEAF_ROWS;
    let leaf_rows = LEAF_ROWS.min(rows.saturating_sub(first));
    let want = leaf_rows as usize * m as usize;
    if row >= rows || proof.leaf.len() != want {
        return Err(format!(
            "the sketch leaf of row {row} has {} values, expected {want}",
            proof.leaf.len()
        ));
    }
    let depth = path_len(leaf, leaves);
    if proof.path.len() != depth {
        return Err(format!(
            "the Merkle path of row {row} has {} hashes, expected {depth}",
            proof.path.len()
        ));
    }
    let mut hash = leaf_hash(u64::from(leaf), &proof.leaf);
    let (mut index, mut width) = (leaf, leaves);
    let mut siblings = proof.path.iter();
    while width > 1 {
        if index ^ 1 < width {
            let sibling = siblings
                .next()
                .and_then(|s| parse_hash(s))
                .ok_or_else(|| format!("the Merkle path of row {row} holds a malformed hash"))?;
            hash = if index & 1 == 0 {
                node_hash(&hash, &sibling)
            } else {
                node_hash(&sibling, &hash)
            };
        }
        index >>= 1;
        width = width.div_ceil(2);
    }
    if hash != *root {
        return Err(format!(
            "the sketch leaf of row {row} does not hash to the root committed in round 1"
        ));
    }
    let offset = (row - first) as usize * m as usize;
    Ok(&proof.leaf[offset..offset + m as usize])
}

/// A hash from 64 hex digits.
pub fn parse_hash(s: &str) -> Option<Hash> {
    let mut out = [0u8; 32];
    (s.len() == 64).then_some(())?;
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sketch(rows: u32, m: u32) -> Vec<f32> {
        (0..rows * m).map(|v| (v % 1000) as f32 - 500.0).collect()
    }

    #[test]
    fn every_row_proves_against_the_root_for_any_leaf_count() {
        for rows in [1u32, 63, 64, 65, 200, 64 * 5, 64 * 7 + 3] {
            let m = 3;
            let tree = SketchTree::build(sketch(rows, m), m as usize);
            let root = tree.root();
            assert_eq!(parse_hash(&tree.root_hex()), Some(root));
            for row in 0..rows {
                let proof = tree.proof(row);
                let values = verify_proof(&root, rows, m, row, &proof).unwrap();
                let want: Vec<f32> = sketch(rows, m)[(row * m) as usize..((row + 1) * m) as usize].to_vec();
                assert_eq!(values, &want[..], "rows={rows} row={row}");
            }
            assert!(tree.bytes() <= tree_bytes(rows, m));
        }
    }

    #[test]
    fn a_changed_leaf_path_or_row_is_refused() {
        let (rows, m) = (64 * 6 + 10, 2);
        let tree = SketchTree::build(sketch(rows, m), m as usize);
        let root = tree.root();
        let good = tree.proof(130);
        let mut leaf = good.clone();
        leaf.leaf[5] += 1.0;
        assert!(verify_proof(&root, rows, m, 130, &leaf).is_err());
        let mut path = good.clone();
        path.path[0] = hex::encode([7u8; 32]);
        assert!(verify_proof(&root, rows, m, 130, &path).is_err());
        let mut short = good.clone();
        short.path.pop();
        assert!(verify_proof(&root, rows, m, 130, &short).is_err());
        let mut bad_hex = good.clone();
        bad_hex.path[0] = "zz".repeat(32);
        assert!(verify_proof(&root, rows, m, 130, &bad_hex).is_err());
        // The proof of a row in another leaf does not open this row.
        assert!(verify_proof(&root, rows, m, 130, &tree.proof(10)).is_err());
        // Out of range.
        assert!(verify_proof(&root, rows, m, rows, &good).is_err());
        // Another sketch has another root.
        let mut other = sketch(rows, m);
        other[0] += 1.0;
        assert_ne!(SketchTree::build(other, m as usize).root(), root);
    }
}
