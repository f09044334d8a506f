//! The words a verdict is made of: the task class a challenge belongs to and the reason code it got,
//! typed end to end from the verifier (`bench-tasks`) through the validator into scoring.
//!
//! They live here, in the crate that scores them, because scoring has to know every one: a new
//! [`Reason`] does not compile until [`Reason::default_treatment`] says how the policy counts it, and
//! a new [`TaskClass`] gets a weight in the owner's task mix by name. `bench-tasks` re-exports both
//! (`bench_tasks::Reason`, `bench_tasks::wire::TaskClass`), so the wire format has one definition.
//! Both serialize as stable `snake_case` strings (`"matmul"`, `"wrong_row"`) that the validator stores
//! and exports as metrics labels: variants may be added but never renamed.

use serde::{Deserialize, Serialize};

/// A task class: what kind of work a challenge asks for.
///
/// Ordered by name, so maps keyed by class serialize in the same order as maps keyed by its string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskClass {
    /// The verifiable matrix product (`bench_tasks::matmul`).
    Matmul,
    /// Verifiable greedy decoding of a seeded transformer (`bench_tasks::inference`).
    Inference,
    /// Organic inference: a paying request the validator's API routed to the miner, re-checked
    /// teacher-forced on the validator's CPU after the client had its answer. Work is the tokens checked.
    Organic,
}

impl TaskClass {
    /// Every class.
    pub const ALL: [Self; 3] = [Self::Matmul, Self::Inference, Self::Organic];

    /// The stable name, as serialized (`"matmul"`, `"inference"`).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Matmul => "matmul",
            Self::Inference => "inference",
            Self::Organic => "organic",
        }
    }
}

impl PartialOrd for TaskClass {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for TaskClass {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.name().cmp(other.name())
    }
}

impl std::fmt::Display for TaskClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is no [`TaskClass`] or [`Reason`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{name}`; known: {known}")]
pub struct UnknownName {
    /// `task class` or `reason code`.
    pub what: &'static str,
    /// The name given.
    pub name: String,
    /// The names known, comma separated.
    pub known: String,
}

/// The one of `all` whose `name_of` is `name`.
fn by_name<T: Copy>(
    what: &'static str,
    all: &[T],
    name_of: fn(T) -> &'static str,
    name: &str,
) -> Result<T, UnknownName> {
    all.iter()
        .copied()
        .find(|t| name_of(*t) == name)
        .ok_or_else(|| UnknownName {
            what,
            name: name.to_owned(),
            known: all.iter().map(|t| name_of(*t)).collect::<Vec<_>>().join(", "),
        })
}

impl std::str::FromStr for TaskClass {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        by_name("task class", &Self::ALL, Self::name, s)
    }
}

/// Why an answer passed or failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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

/// How scoring counts an answer with a given [`Reason`] (see `scoring::score::score_round`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Treatment {
    /// A correct answer: credit by size and speed.
    Credit,
    /// A wrong answer: the policy's `penalties.failed_verification`.
    FailedVerification,
    /// No usable answer (timeout, refusal, garbage): the policy's `penalties.unavailable`.
    Unavailable,
    /// The validator's own fault: dropped from the round.
    Ignored,
}

impl Reason {
    /// Every reason code.
    pub const ALL: [Self; 12] = [
        Self::Passed,
        Self::WrongSketch,
        Self::WrongRow,
        Self::BadShape,
        Self::BadValue,
        Self::WrongToken,
        Self::OutOfVocab,
        Self::BadChallenge,
        Self::Timeout,
        Self::Unreachable,
        Self::Malformed,
        Self::Refused,
    ];

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

    /// How the default policy counts this reason. Exhaustive on purpose: a new reason does not
    /// compile until it is given a treatment here, and the default policy's code lists
    /// (`penalties.verification_failure_codes`, `penalties.ignored_codes`) follow from it.
    pub const fn default_treatment(self) -> Treatment {
        match self {
            Self::Passed => Treatment::Credit,
            Self::WrongSketch
            | Self::WrongRow
            | Self::BadShape
            | Self::BadValue
            | Self::WrongToken
            | Self::OutOfVocab => Treatment::FailedVerification,
            Self::BadChallenge => Treatment::Ignored,
            Self::Timeout | Self::Unreachable | Self::Malformed | Self::Refused => Treatment::Unavailable,
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

impl std::str::FromStr for Reason {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        by_name("reason code", &Self::ALL, Self::code, s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The position of each variant; exhaustive, so a new variant must be placed (and then `ALL`,
    /// checked below, must hold it).
    const fn index(r: Reason) -> usize {
        match r {
            Reason::Passed => 0,
            Reason::WrongSketch => 1,
            Reason::WrongRow => 2,
            Reason::BadShape => 3,
            Reason::BadValue => 4,
            Reason::WrongToken => 5,
            Reason::OutOfVocab => 6,
            Reason::BadChallenge => 7,
            Reason::Timeout => 8,
            Reason::Unreachable => 9,
            Reason::Malformed => 10,
            Reason::Refused => 11,
        }
    }

    #[test]
    fn all_holds_every_reason_once_and_codes_match_serde() {
        for (i, r) in Reason::ALL.into_iter().enumerate() {
            assert_eq!(index(r), i, "{r:?} out of place in Reason::ALL");
            assert_eq!(serde_json::to_string(&r).unwrap(), format!("\"{}\"", r.code()));
            assert_eq!(r.code().parse::<Reason>(), Ok(r));
        }
        let err = "wrong-row".parse::<Reason>().unwrap_err().to_string();
        assert!(err.contains("wrong_row") && err.contains("`wrong-row`"), "{err}");
    }

    #[test]
    fn only_passed_earns_credit() {
        for r in Reason::ALL {
            assert_eq!(
                r.default_treatment() == Treatment::Credit,
                r == Reason::Passed,
                "{r}"
            );
        }
    }

    #[test]
    fn classes_round_trip_and_order_by_name() {
        for c in TaskClass::ALL {
            assert_eq!(serde_json::to_string(&c).unwrap(), format!("\"{c}\""));
            assert_eq!(c.name().parse::<TaskClass>(), Ok(c));
        }
        assert!(TaskClass::Inference < TaskClass::Matmul && TaskClass::Matmul < TaskClass::Organic);
        assert!("matmul/4096".parse::<TaskClass>().is_err());
    }
}
