//! Verifiable GPU challenges for the tensorproof subnet.
//!
//! A validator sends a seeded challenge, a miner runs it on whatever burn device it has (flex on a CPU,
//! wgpu/Vulkan, CUDA), and the validator checks the answer on a CPU for a small fraction of the miner's
//! cost. This crate holds the challenge types, both sides of each exchange, adversarial miners for tests
//! and simulation, and the task benchmarks. It knows nothing of HTTP or chains.
//!
//! * [`backend`]: choosing the burn device at run time ([`BackendKind`]).
//! * [`matmul`]: the matrix-multiplication proof of work (sketch + interactive openings + Freivalds).
//! * [`inference`]: greedy decoding of a Llama-style transformer, checked by one teacher-forced CPU pass.
//! * [`verdict`]: the shared [`Verdict`] and [`Reason`] codes.
//! * [`bench`]: the figures printed by `bench-tasks bench …`.
//!
//! # Example: one honest matmul exchange on the CPU
//!
//! ```
//! # #[cfg(feature = "flex")] {
//! use bench_tasks::backend::BackendKind;
//! use bench_tasks::matmul::{MatmulJob, MatmulLimits, RoundParams, RoundSetup};
//!
//! let device = BackendKind::Flex.device(0).unwrap();
//! let setup = RoundSetup::new(RoundParams::new(64, 1), [3; 32], &MatmulLimits::default()).unwrap();
//! let challenge = setup.challenge(0xfeed);
//! let (answer, state) = MatmulJob::run(&challenge, &device).unwrap();
//! let request = setup.choose_openings(challenge.miner_seed);
//! let verdict = setup.verify(&challenge, &answer, &request, &state.open(&request).unwrap());
//! assert!(verdict.passed, "{}", verdict.detail);
//! # }
//! ```

pub mod backend;
pub mod bench;
pub mod inference;
pub mod matmul;
pub mod verdict;
pub mod wire;

pub use backend::{BackendError, BackendKind};
pub use verdict::{Reason, Verdict};
