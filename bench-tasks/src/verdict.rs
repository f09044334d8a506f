//! The validator's judgement of one challenge answer, shared by every task class.

use serde::{Deserialize, Serialize};

/// Why an answer passed or failed: defined in `scoring` ([`scoring::task::Reason`]), which must know
/// how to count every code, and re-exported here for the verifiers.
pub use scoring::task::Reason;

/// The outcome of verifying one answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Whether the answer is accepted. `true` exactly when `reason == Reason::Passed`.
    pub passed: bool,
    /// The reason code.
    pub reason: Reason,
    /// A short human-readable explanation (which row, which token, which field), never the raw answer.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// Work the challenge represents, in the task's own unit (multiply-adds for matmul, generated
    /// tokens for inference), so scoring can weigh challenges of different sizes.
    pub work_units: f64,
}

impl Verdict {
    /// An accepted answer worth `work_units`.
    pub fn pass(work_units: f64) -> Self {
        Self {
            passed: true,
            reason: Reason::Passed,
            detail: String::new(),
            work_units,
        }
    }

    /// A rejected answer with its reason and a short explanation.
    pub fn fail(reason: Reason, detail: impl Into<String>, work_units: f64) -> Self {
        debug_assert!(
            reason != Reason::Passed,
            "a failed verdict needs a failure reason"
        );
        Self {
            passed: false,
            reason,
            detail: detail.into(),
            work_units,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pass_and_fail_set_the_flag() {
        assert!(Verdict::pass(1.0).passed);
        let v = Verdict::fail(Reason::WrongRow, "row 3", 1.0);
        assert!(!v.passed);
        assert_eq!(v.reason, Reason::WrongRow);
    }
}
