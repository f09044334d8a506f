//! The validator's judgement of one challenge answer, shared by every task class.

use serde::{Deserialize, Serialize};

/// Why an answer passed or failed. Serialized as a stable `snake_case` code that the validator stores,
/// exports as a metrics label and shows to miners, so variants may be added but never renamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Reason {
    /// Every check passed.
    Passed,
    /// The round-1 sketch (or commitment) does not match an opened row.
    WrongSketch,
    /// An opened row of the product fails the Freivalds check against `A·(B·r)`.
    WrongRow,
    /// A vector or matrix has the wrong dimensions, or openings are missing or for rows not asked.
    BadShape,
    /// A value is NaN, infinite, non-integral or otherwise outside what an honest miner can produce.
    BadValue,
    /// A generated token is not the model's argmax within the allowed logit margin.
    WrongToken,
    /// A token id is outside the model's vocabulary.
    OutOfVocab,
    /// The challenge parameters themselves are invalid (refused before any work).
    BadChallenge,
    /// The miner did not answer within the deadline.
    Timeout,
    /// The miner could not be reached or the connection broke before an answer arrived (connection
    /// refused or reset, no route): an availability fact, not a judgement of an answer.
    Unreachable,
    /// The miner answered, and the answer could not be parsed or is not what was asked for (bad JSON,
    /// bad receipt, over the size cap, an unexpected status).
    Malformed,
    /// The miner refused the work (busy, unauthorized, too large).
    Refused,
}

impl Reason {
    /// The stable code, as serialized (`"wrong_row"`, …).
    pub const fn code(self) -> &'static str {
        match self {
            Self::Passed => "passed",
            Self::WrongSketch => "wrong_sketch",
            Self::WrongRow => "wrong_row",
            Self::BadShape => "bad_shape",
            Self::BadValue => "bad_value",
            Self::WrongToken => "wrong_token",
            Self::OutOfVocab => "out_of_vocab",
            Self::BadChallenge => "bad_challenge",
            Self::Timeout => "timeout",
            Self::Unreachable => "unreachable",
            Self::Malformed => "malformed",
            Self::Refused => "refused",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

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
    fn reason_codes_match_serde() {
        for r in [
            Reason::Passed,
            Reason::WrongSketch,
            Reason::WrongRow,
            Reason::BadShape,
            Reason::Timeout,
            Reason::Unreachable,
            Reason::Malformed,
        ] {
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(json, format!("\"{}\"", r.code()));
        }
    }

    #[test]
    fn pass_and_fail_set_the_flag() {
        assert!(Verdict::pass(1.0).passed);
        let v = Verdict::fail(Reason::WrongRow, "row 3", 1.0);
        assert!(!v.passed);
        assert_eq!(v.reason, Reason::WrongRow);
    }
}
