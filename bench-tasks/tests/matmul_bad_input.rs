//! Bad input never panics: refused challenges are typed errors, bad answers are failed verdicts.

mod common;

use bench_tasks::matmul::params::{HARD_MAX_N, max_p_for, pack_row, unpack_row};
use bench_tasks::matmul::{
    ChallengeError, MatmulChallenge, MatmulDtype, MatmulJob, MatmulLimits, MinerError, OpenedRow,
    OpeningRequest, Openings, Round1Answer, RoundParams, RoundSetup,
};
use bench_tasks::{Reason, Verdict};

fn challenge(n: u32, m: u32, p: u32) -> MatmulChallenge {
    MatmulChallenge {
        n,
        m,
        p,
        round_seed: 1,
        miner_seed: 2,
        dtype: MatmulDtype::F32,
        batch: 1,
    }
}

#[test]
fn invalid_challenges_are_refused_before_any_work() {
    let device = &common::devices()[0].1;
    let lim = MatmulLimits {
        max_n: 512,
        ..MatmulLimits::default()
    };
    let cases = [
        (challenge(0, 8, 251), ChallengeError::EmptyMatrix),
        (
            challenge(513, 8, 251),
            ChallengeError::TooLarge { n: 513, max: 512 },
        ),
        // Sizes that would need terabytes are refused before anything is allocated.
        (
            challenge(u32::MAX, 8, 251),
            ChallengeError::TooLarge {
                n: u32::MAX,
                max: 512,
            },
        ),
        (
            challenge(64, 0, 251),
            ChallengeError::BadSketchWidth { m: 0, max: 64 },
        ),
        (
            challenge(64, 65, 251),
            ChallengeError::BadSketchWidth { m: 65, max: 64 },
        ),
        (challenge(64, 8, 255), ChallengeError::NotPrime { p: 255 }),
        (
            challenge(64, 8, 2),
            ChallengeError::ModulusOutOfRange {
                p: 2,
                max: max_p_for(64),
                n: 64,
            },
        ),
        (
            challenge(512, 8, 8191),
            ChallengeError::ModulusOutOfRange {
                p: 8191,
                max: max_p_for(512),
                n: 512,
            },
        ),
    ];
    for (c, want) in cases {
        match MatmulJob::run_with_limits(&c, device, &lim) {
            Err(MinerError::Refused(got)) => assert_eq!(got, want),
            other => panic!("{c:?}: expected refusal {want}, got {other:?}"),
        }
    }
    let huge = MatmulLimits {
        max_n: u32::MAX,
        ..MatmulLimits::default()
    };
    assert_eq!(
        challenge(HARD_MAX_N + 1, 8, 3).validate(&huge),
        Err(ChallengeError::TooLarge {
            n: HARD_MAX_N + 1,
            max: HARD_MAX_N
        })
    );
}

#[test]
fn invalid_round_parameters_are_refused() {
    let lim = MatmulLimits::default();
    let base = RoundParams::new(32, 0);
    for (params, want) in [
        (
            RoundParams { k: 33, ..base },
            ChallengeError::TooManyOpenings { k: 33, max: 32 },
        ),
        (RoundParams { k: 0, ..base }, ChallengeError::NoOpenings),
        (RoundParams { n: 0, ..base }, ChallengeError::EmptyMatrix),
        (RoundParams { p: 91, ..base }, ChallengeError::NotPrime { p: 91 }),
    ] {
        assert_eq!(RoundSetup::new(params, [0; 32], &lim).unwrap_err(), want);
    }
}

#[test]
fn bad_opening_requests_are_refused_by_the_miner() {
    let device = &common::devices()[0].1;
    let (_, state) = MatmulJob::run(&challenge(20, 4, 251), device).unwrap();
    for (rows, want) in [
        (vec![], ChallengeError::NoOpenings),
        (vec![20], ChallengeError::RowOutOfRange { row: 20, n: 20 }),
        (vec![3, 3], ChallengeError::DuplicateRow { row: 3 }),
        (
            (0..21).collect(),
            ChallengeError::TooManyOpenings { k: 21, max: 20 },
        ),
    ] {
        match state.open(&OpeningRequest { rows }) {
            Err(MinerError::Refused(got)) => assert_eq!(got, want),
            other => panic!("expected {want}, got {other:?}"),
        }
    }
}

/// An honest exchange to tamper with.
struct Exchange {
    setup: RoundSetup,
    challenge: MatmulChallenge,
    answer: Round1Answer,
    request: OpeningRequest,
    openings: Openings,
}

impl Exchange {
    fn new() -> Self {
        Self::batched(1)
    }

    /// An honest exchange of `batch` products of 24² (opening 5 of the stacked rows).
    fn batched(batch: u32) -> Self {
        let device = &common::devices()[0].1;
        let setup = common::batched(24, batch, 5, 3, 4);
        let challenge = setup.challenge(8);
        let (answer, state) = MatmulJob::run(&challenge, device).unwrap();
        let request = setup.choose_openings(8);
        let openings = state.open(&request).unwrap();
        Self {
            setup,
            challenge,
            answer,
            request,
            openings,
        }
    }

    fn verify(&self) -> Verdict {
        self.setup
            .verify(&self.challenge, &self.answer, &self.request, &self.openings)
    }
}

#[test]
fn tampered_answers_fail_with_the_right_reason() {
    assert!(Exchange::new().verify().passed);
    type Tamper = fn(&mut Exchange);
    let cases: [(&str, Tamper, Reason); 14] = [
        (
            "sketch too short",
            |e| {
                e.answer.sketch.pop();
            },
            Reason::BadShape,
        ),
        ("sketch empty", |e| e.answer.sketch.clear(), Reason::BadShape),
        (
            "NaN in sketch",
            |e| e.answer.sketch[3] = f32::NAN,
            Reason::BadValue,
        ),
        (
            "infinity in sketch",
            |e| e.answer.sketch[0] = f32::INFINITY,
            Reason::BadValue,
        ),
        (
            "fraction in sketch",
            |e| e.answer.sketch[1] += 0.5,
            Reason::BadValue,
        ),
        (
            "opened row too short",
            |e| {
                e.openings.rows[0].values.pop();
            },
            Reason::BadShape,
        ),
        (
            "opened row too long",
            |e| e.openings.rows[1].values.push(0.0),
            Reason::BadShape,
        ),
        ("a row missing", |e| drop(e.openings.rows.pop()), Reason::BadShape),
        (
            "a row not asked",
            |e| {
                let asked = &e.request.rows;
                let other = (0..24).find(|r| !asked.contains(r)).unwrap();
                e.openings.rows[0] = OpenedRow {
                    index: other,
                    values: e.openings.rows[0].values.clone(),
                    packed: None,
                    proof: None,
                };
            },
            Reason::BadShape,
        ),
        (
            "NaN in a row",
            |e| e.openings.rows[2].values[5] = f32::NAN,
            Reason::BadValue,
        ),
        (
            "huge value in a row",
            |e| e.openings.rows[2].values[5] = 1e9,
            Reason::BadValue,
        ),
        (
            "wrong value in a row",
            |e| e.openings.rows[0].values[7] += 1.0,
            Reason::WrongSketch,
        ),
        (
            "challenge of another round",
            |e| e.challenge.round_seed ^= 1,
            Reason::BadChallenge,
        ),
        (
            "request with duplicate rows",
            |e| e.request.rows[1] = e.request.rows[0],
            Reason::BadChallenge,
        ),
    ];
    for (name, tamper, want) in cases {
        let mut e = Exchange::new();
        tamper(&mut e);
        let v = e.verify();
        assert!(!v.passed, "{name}: passed");
        assert_eq!(v.reason, want, "{name}: {}", v.detail);
        assert!(!v.detail.is_empty());
    }
}

#[test]
fn tampered_batched_answers_fail_with_the_right_reason() {
    let honest = Exchange::batched(40);
    assert!(honest.verify().passed, "{}", honest.verify().detail);
    assert!(honest.answer.sketch.is_empty() && honest.answer.root.is_some());
    assert!(
        honest.request.rows.iter().any(|&r| r >= 24),
        "rows are drawn across the stack: {:?}",
        honest.request.rows
    );
    type Tamper = fn(&mut Exchange);
    let cases: [(&str, Tamper, Reason); 11] = [
        ("no root", |e| e.answer.root = None, Reason::BadShape),
        (
            "root not hex",
            |e| e.answer.root = Some("xy".repeat(32)),
            Reason::BadShape,
        ),
        (
            "another root",
            |e| e.answer.root = Some("ab".repeat(32)),
            Reason::WrongSketch,
        ),
        (
            "a sketch beside the root",
            |e| e.answer.sketch = vec![0.0; 24 * 8],
            Reason::BadShape,
        ),
        (
            "a row without its proof",
            |e| e.openings.rows[1].proof = None,
            Reason::BadShape,
        ),
        (
            "a changed leaf",
            |e| {
                if let Some(p) = e.openings.rows[0].proof.as_mut() {
                    p.leaf[0] += 1.0;
                }
            },
            Reason::WrongSketch,
        ),
        (
            "a shortened path",
            |e| {
                if let Some(p) = e.openings.rows[3].proof.as_mut() {
                    p.path.pop();
                }
            },
            Reason::WrongSketch,
        ),
        (
            "a wrong value in a row",
            |e| {
                let row = &mut e.openings.rows[0];
                let mut values = unpack_row(row.packed.as_deref().unwrap(), 24).unwrap();
                values[7] += 1.0;
                row.packed = Some(pack_row(&values));
            },
            Reason::WrongSketch,
        ),
        (
            "a row packed short",
            |e| {
                let row = &mut e.openings.rows[2];
                let values = unpack_row(row.packed.as_deref().unwrap(), 24).unwrap();
                row.packed = Some(pack_row(&values[..23]));
            },
            Reason::BadShape,
        ),
        (
            "a row as values instead of packed",
            |e| {
                let row = &mut e.openings.rows[1];
                row.values = unpack_row(row.packed.take().as_deref().unwrap(), 24).unwrap();
            },
            Reason::BadShape,
        ),
        (
            "the one-product challenge of the round",
            |e| e.challenge.batch = 1,
            Reason::BadChallenge,
        ),
    ];
    for (name, tamper, want) in cases {
        let mut e = Exchange::batched(40);
        tamper(&mut e);
        let v = e.verify();
        assert!(!v.passed, "{name}: passed");
        assert_eq!(v.reason, want, "{name}: {}", v.detail);
    }
    // A batched challenge names its batch on the wire; a one-product one does not.
    let json = serde_json::to_string(&honest.challenge).unwrap();
    assert!(json.contains(r#""batch":40"#), "{json}");
    assert!(
        !serde_json::to_string(&Exchange::new().challenge)
            .unwrap()
            .contains("batch")
    );
    let json = serde_json::to_string(&honest.openings).unwrap();
    assert_eq!(serde_json::from_str::<Openings>(&json).unwrap(), honest.openings);
}

#[test]
fn a_consistent_lie_is_caught_by_freivalds() {
    // Change one value of an opened row and fix the sketch to match: only the Freivalds check remains.
    let mut e = Exchange::new();
    e.openings.rows[0].values[0] += 251.0; // same residue mod p, so the sketch still matches
    let v = e.verify();
    assert_eq!(v.reason, Reason::WrongRow, "{}", v.detail);
}

#[test]
fn wire_types_round_trip_and_reject_garbage() {
    let e = Exchange::new();
    let json = serde_json::to_string(&e.openings).unwrap();
    assert_eq!(serde_json::from_str::<Openings>(&json).unwrap(), e.openings);
    let json = serde_json::to_string(&e.challenge).unwrap();
    assert_eq!(
        serde_json::from_str::<MatmulChallenge>(&json).unwrap(),
        e.challenge
    );
    // serde_json writes NaN as null, which a sketch cannot hold: a parse error, not a panic.
    assert!(serde_json::from_str::<Round1Answer>(r#"{"sketch":[1.0,null]}"#).is_err());
    assert!(
        serde_json::from_str::<MatmulChallenge>(r#"{"n":-1,"m":8,"p":251,"round_seed":1,"miner_seed":2}"#)
            .is_err()
    );
}
