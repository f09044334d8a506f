//! Honest miners pass on every compiled backend, for sizes that are not multiples of any tile size, and
//! every backend produces the same bits.

mod common;

use bench_tasks::Reason;
use bench_tasks::matmul::generator::{MatrixGen, MatrixId};
use bench_tasks::matmul::params::{ENTRY_BOUND, unpack_row};
use bench_tasks::matmul::{MatmulJob, OpeningRequest, Openings, Round1Answer};

/// C = A·B on the CPU, from the generator's reference rows.
fn cpu_product(n: u32, round_seed: u64, miner_seed: u64) -> Vec<i64> {
    let a = MatrixGen::new(miner_seed, MatrixId::A, n, n, ENTRY_BOUND).to_vec();
    let b = MatrixGen::new(round_seed, MatrixId::B, n, n, ENTRY_BOUND).to_vec();
    let n = n as usize;
    let mut c = vec![0i64; n * n];
    for i in 0..n {
        for l in 0..n {
            let a_il = i64::from(a[i * n + l]);
            for j in 0..n {
                c[i * n + j] += a_il * i64::from(b[l * n + j]);
            }
        }
    }
    c
}

#[test]
fn honest_answers_pass_on_every_backend_for_odd_sizes() {
    for (kind, device) in common::devices() {
        for (t, &n) in [1u32, 2, 17, 63, 130].iter().enumerate() {
            let setup = common::setup(n, n.min(12), 1000 + u64::from(n), t as u32);
            let challenge = setup.challenge(77 + u64::from(n));
            let (answer, state) = MatmulJob::run(&challenge, &device).unwrap();
            let request = setup.choose_openings(challenge.miner_seed);
            let openings = state.open(&request).unwrap();
            let verdict = setup.verify(&challenge, &answer, &request, &openings);
            assert!(verdict.passed, "{kind} n={n}: {verdict:?}");
            assert_eq!(verdict.reason, Reason::Passed);
            assert_eq!(verdict.work_units, f64::from(n).powi(3));
        }
    }
}

/// Opens every row and checks the whole of C and S against the CPU reference.
fn full_answer(
    device: &burn::tensor::Device,
    n: u32,
    round_seed: u64,
    miner_seed: u64,
) -> (Round1Answer, Openings) {
    let setup = common::setup(n, n, round_seed, 0);
    let challenge = setup.challenge(miner_seed);
    let (answer, state) = MatmulJob::run(&challenge, device).unwrap();
    let request = OpeningRequest {
        rows: (0..n).collect(),
    };
    let openings = state.open(&request).unwrap();
    assert!(setup.verify(&challenge, &answer, &request, &openings).passed);
    (answer, openings)
}

#[test]
fn product_and_sketch_match_the_cpu_reference() {
    let (n, round_seed, miner_seed) = (45u32, 5, 6);
    let c = cpu_product(n, round_seed, miner_seed);
    let r = MatrixGen::new(round_seed, MatrixId::R, n, 8, 4).to_vec();
    for (kind, device) in common::devices() {
        let (answer, openings) = full_answer(&device, n, round_seed, miner_seed);
        let got: Vec<i64> = openings
            .rows
            .iter()
            .flat_map(|row| row.values.iter().map(|&v| v as i64))
            .collect();
        assert_eq!(got, c, "{kind}: C differs from the CPU product");
        for i in 0..n as usize {
            for l in 0..8 {
                let want: i64 = (0..n as usize)
                    .map(|j| c[i * n as usize + j].rem_euclid(251) * i64::from(r[j * 8 + l]))
                    .sum();
                assert_eq!(answer.sketch[i * 8 + l] as i64, want, "{kind}: S[{i},{l}]");
            }
        }
    }
}

#[cfg(all(feature = "flex", feature = "wgpu"))]
#[test]
fn flex_and_wgpu_are_bit_identical() {
    let flex = bench_tasks::BackendKind::Flex.device(0).unwrap();
    let wgpu = bench_tasks::BackendKind::Wgpu.device(0).unwrap();
    // Generated matrices, including a non-square R and sizes off every tile multiple.
    for (rows, cols, id) in [
        (97u32, 97u32, MatrixId::A),
        (130, 130, MatrixId::B),
        (130, 8, MatrixId::R),
    ] {
        let g = MatrixGen::new(0xabc, id, rows, cols, 8);
        let f: Vec<u32> = g
            .to_device(&flex)
            .into_data()
            .try_into_vec_as::<f32>()
            .unwrap()
            .iter()
            .map(|x| x.to_bits())
            .collect();
        let w: Vec<u32> = g
            .to_device(&wgpu)
            .into_data()
            .try_into_vec_as::<f32>()
            .unwrap()
            .iter()
            .map(|x| x.to_bits())
            .collect();
        assert_eq!(f, w, "{id:?} {rows}x{cols}");
    }
    // Products and sketches.
    for n in [64u32, 97, 200] {
        let (sf, of) = full_answer(&flex, n, 11, 12);
        let (sw, ow) = full_answer(&wgpu, n, 11, 12);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&sf.sketch), bits(&sw.sketch), "sketch n={n}");
        for (rf, rw) in of.rows.iter().zip(&ow.rows) {
            assert_eq!(bits(&rf.values), bits(&rw.values), "row {} n={n}", rf.index);
        }
    }
}

/// A batch of 3 products of 17² (not a multiple of any tile, nor of the 64-row leaves): every stacked
/// row opened is row `i` of `A_t·B` with `A_t` rows `17t..17t+17` of the stacked generator, every row
/// passes, on every backend, and every backend commits to the same root.
#[test]
fn batched_products_are_the_stacked_product_on_every_backend() {
    let (n, batch) = (17u32, 3u32);
    let a = MatrixGen::new(6, MatrixId::A, n * batch, n, ENTRY_BOUND).to_vec();
    let b = MatrixGen::new(5, MatrixId::B, n, n, ENTRY_BOUND).to_vec();
    let nn = n as usize;
    let mut roots = Vec::new();
    for (kind, device) in common::devices() {
        let setup = common::batched(n, batch, n * batch, 5, 0);
        let challenge = setup.challenge(6);
        let (answer, state) = MatmulJob::run(&challenge, &device).unwrap();
        let request = OpeningRequest {
            rows: (0..n * batch).collect(),
        };
        let openings = state.open(&request).unwrap();
        let verdict = setup.verify(&challenge, &answer, &request, &openings);
        assert!(verdict.passed, "{kind}: {verdict:?}");
        assert_eq!(verdict.work_units, 3.0 * 17f64.powi(3));
        for row in &openings.rows {
            let g = row.index as usize;
            let want: Vec<f32> = (0..nn)
                .map(|j| (0..nn).map(|l| a[g * nn + l] * b[l * nn + j]).sum::<i32>() as f32)
                .collect();
            let packed = row.packed.as_deref().expect("a batch's rows come packed");
            assert_eq!(unpack_row(packed, nn), Some(want), "{kind}: stacked row {g}");
        }
        roots.push(answer.root.expect("a batched answer is a root"));
    }
    roots.dedup();
    assert_eq!(roots.len(), 1, "backends committed to different sketches");
}
