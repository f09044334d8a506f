//! Submission outcomes: every failure is classified into a [`FailureKind`] with a one-sentence fix, and
//! the retry decision is made here, apart from any network code, so it can be tested without a chain.
//!
//! Retried (with a fresh nonce and era, after reconnecting if needed): the transaction was dropped,
//! outdated or stale, the connection failed, or inclusion timed out. Never retried: the chain refused
//! it for a reason that a retry cannot fix (not registered, no permit, rate limited, version key…).

use std::time::Duration;

/// Why a submission did not land.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// Nonce or era no longer valid ("Transaction is outdated", "stale", "ancient birth block").
    Outdated,
    /// The pool dropped it, or it left the best chain.
    Dropped,
    /// The RPC connection failed.
    Connection,
    /// No inclusion within the configured time.
    Timeout,
    /// Weights or commits too soon (`SettingWeightsTooFast`, `CommittingWeightsTooFast`, pool code 6).
    RateLimited,
    /// The hotkey is not registered on the subnet.
    NotRegistered,
    /// The hotkey has no validator permit.
    NoPermit,
    /// Not enough stake to set weights.
    StakeTooLow,
    /// `version_key` below `WeightsVersionKey`.
    VersionKeyTooLow,
    /// `set_weights` while commit-reveal is on, or commit while it is off.
    CommitRevealMismatch,
    /// A reveal outside its reveal epoch or without a matching commit.
    RevealRejected,
    /// Serving refused (bad IP/port or serving rate limit).
    ServeRejected,
    /// Registration refused (balance, subnet full or closed, already registered).
    RegistrationRejected,
    /// The weight vector was refused (lengths, duplicates, unknown uids, too few, max weight).
    BadWeights,
    /// The signer cannot pay the fee.
    InsufficientBalance,
    /// Any other refusal.
    Other,
}

impl FailureKind {
    /// Whether a retry with a fresh nonce/era (and a new connection) can succeed.
    pub const fn retryable(self) -> bool {
        matches!(
            self,
            Self::Outdated | Self::Dropped | Self::Connection | Self::Timeout
        )
    }

    /// What to do about it, in one sentence.
    pub const fn hint(self) -> &'static str {
        match self {
            Self::Outdated => "the nonce or era went stale; it was re-signed with fresh ones",
            Self::Dropped => "the node dropped the transaction; it was resubmitted",
            Self::Connection => {
                "the connection to the chain failed; check the endpoint (it reconnects with backoff)"
            }
            Self::Timeout => "no block included it in time; check that the chain is producing blocks",
            Self::RateLimited => {
                "weights were set too recently; wait for the next allowed block (WeightsSetRateLimit)"
            }
            Self::NotRegistered => {
                "the hotkey is not registered on this subnet; register it (burned_register) first"
            }
            Self::NoPermit => {
                "the hotkey has no validator permit; it needs more stake than the lowest permitted validator"
            }
            Self::StakeTooLow => "the hotkey's stake is below the chain's StakeThreshold; add stake",
            Self::VersionKeyTooLow => {
                "the weights version key is below the subnet's WeightsVersionKey; upgrade the validator"
            }
            Self::CommitRevealMismatch => {
                "the subnet's commit-reveal setting changed; re-read hyperparameters and use the other path"
            }
            Self::RevealRejected => "the reveal was outside its epoch or matched no commit; commit again",
            Self::ServeRejected => {
                "the axon was refused; use a routable IP (not 127.0.0.1), a non-zero port, and respect ServingRateLimit"
            }
            Self::RegistrationRejected => {
                "registration was refused; check the coldkey balance against the burn, and that the subnet accepts registrations"
            }
            Self::BadWeights => "the chain refused the weight vector; resync the metagraph and rebuild it",
            Self::InsufficientBalance => "the signing account cannot pay the fee; fund it",
            Self::Other => "the chain refused the transaction; see the message",
        }
    }
}

/// Classifies a node or runtime error message (pool rejection text, `Pallet::Error` names, RPC errors).
pub fn classify(message: &str) -> FailureKind {
    let m = message.to_ascii_lowercase();
    let has = |needles: &[&str]| needles.iter().any(|n| m.contains(&n.to_ascii_lowercase()));
    // Pool-level InvalidTransaction::Custom codes from SubtensorTransactionExtension (reference §1.2).
    if let Some(code) = custom_code(&m) {
        return match code {
            1 => FailureKind::StakeTooLow,
            6 => FailureKind::RateLimited,
            10 | 19 => FailureKind::NotRegistered,
            11..=13 => FailureKind::ServeRejected,
            15..=17 => FailureKind::RevealRejected,
            18 => FailureKind::BadWeights,
            _ => FailureKind::Other,
        };
    }
    if has(&[
        "SettingWeightsTooFast",
        "CommittingWeightsTooFast",
        "RateLimitExceeded",
        "TooManyUnrevealedCommits",
    ]) {
        FailureKind::RateLimited
    } else if has(&["HotKeyNotRegistered", "HotKeyAccountNotExists", "UidNotFound"]) {
        FailureKind::NotRegistered
    } else if has(&["NeuronNoValidatorPermit"]) {
        FailureKind::NoPermit
    } else if has(&["NotEnoughStakeToSetWeights", "StakeAmountTooLow"]) {
        FailureKind::StakeTooLow
    } else if has(&["IncorrectWeightVersionKey"]) {
        FailureKind::VersionKeyTooLow
    } else if has(&[
        "CommitRevealEnabled",
        "CommitRevealDisabled",
        "IncorrectCommitRevealVersion",
    ]) {
        FailureKind::CommitRevealMismatch
    } else if has(&[
        "RevealTooEarly",
        "ExpiredWeightCommit",
        "InvalidRevealCommitHashNotMatch",
        "NoWeightsCommitFound",
        "InvalidRevealRound",
    ]) {
        FailureKind::RevealRejected
    } else if has(&[
        "InvalidIpAddress",
        "InvalidIpType",
        "InvalidPort",
        "ServingRateLimitExceeded",
    ]) {
        FailureKind::ServeRejected
    } else if has(&[
        "NotEnoughBalanceToStake",
        "SubNetRegistrationDisabled",
        "HotKeyAlreadyRegisteredInSubNet",
        "NoNeuronIdAvailable",
        "NonAssociatedColdKey",
        "SubnetNotExists",
        "TooManyRegistrationsThisBlock",
        "TooManyRegistrationsThisInterval",
    ]) {
        FailureKind::RegistrationRejected
    } else if has(&[
        "WeightVecNotEqualSize",
        "DuplicateUids",
        "UidVecContainInvalidOne",
        "WeightVecLengthIsLow",
        "MaxWeightExceeded",
        "UidsLengthExceedUidsInSubNet",
        "CanNotSetRootNetworkWeights",
    ]) {
        FailureKind::BadWeights
    } else if has(&["Inability to pay some fees", "InsufficientBalance", "Payment"]) {
        FailureKind::InsufficientBalance
    } else if has(&["outdated", "stale", "ancient birth block", "bad proof", "future"]) {
        FailureKind::Outdated
    } else if has(&[
        "dropped",
        "usurped",
        "NoLongerInBestBlock",
        "retracted",
        "temporarily banned",
        "priority is too low",
    ]) {
        FailureKind::Dropped
    } else if has(&[
        "connection",
        "restart",
        "closed",
        "transport",
        "i/o error",
        "background task",
        "subscription",
        "websocket",
        "networking",
    ]) {
        FailureKind::Connection
    } else {
        FailureKind::Other
    }
}

/// Extracts `n` from "custom error: n" / "Custom(n)" in a pool rejection message (lower case).
fn custom_code(m: &str) -> Option<u8> {
    for marker in ["custom error: ", "custom(", "custom error ("] {
        if let Some(i) = m.find(marker) {
            let digits: String = m[i + marker.len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            if let Ok(code) = digits.parse() {
                return Some(code);
            }
        }
    }
    None
}

/// Whether a transaction signed with nonce `used` was included, given the chain's next expected nonce
/// for the same account (assumes no one else signs with that account concurrently).
pub const fn landed_by_nonce(used: u64, chain_next: u64) -> bool {
    chain_next > used
}

/// Retry settings for one submission.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Most attempts (including the first).
    pub max_attempts: u32,
    /// Delay before the second attempt; doubles each time.
    pub initial_backoff: Duration,
    /// Upper bound of the delay.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
        }
    }
}

impl RetryPolicy {
    /// Whether to try again after attempt number `attempt` (1-based) failed with `kind`.
    pub const fn should_retry(&self, attempt: u32, kind: FailureKind) -> bool {
        kind.retryable() && attempt < self.max_attempts
    }

    /// The delay before attempt `attempt + 1`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(16);
        self.initial_backoff.saturating_mul(factor).min(self.max_backoff)
    }
}

/// Where a submission ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// Included in a block and executed successfully.
    ///
    /// `block == 0` with an empty `block_hash` means the connection dropped after submission and the
    /// inclusion was confirmed by the account nonce, without learning the block.
    Included {
        /// Block number.
        block: u64,
        /// Block hash (hex).
        block_hash: String,
        /// Extrinsic hash (hex).
        tx_hash: String,
    },
    /// Not included, or included but failed.
    Failed {
        /// The class of failure.
        kind: FailureKind,
        /// The node's or runtime's message (with our hint).
        message: String,
    },
}

/// The metrics-friendly record of one submission.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SubmitReport {
    /// The call name (`set_weights`, …).
    pub call: &'static str,
    /// Attempts made (1 = no retry).
    pub attempts: u32,
    /// Time from first signing to the final status.
    pub latency: Duration,
    /// The final status.
    pub outcome: Outcome,
}

impl SubmitReport {
    /// Whether it landed successfully.
    pub const fn is_included(&self) -> bool {
        matches!(self.outcome, Outcome::Included { .. })
    }

    /// The failure kind, if it failed.
    pub const fn failure(&self) -> Option<FailureKind> {
        match &self.outcome {
            Outcome::Failed { kind, .. } => Some(*kind),
            Outcome::Included { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_and_runtime_messages_are_classified() {
        let cases = [
            (
                "Invalid Transaction: Transaction is outdated",
                FailureKind::Outdated,
            ),
            ("Transaction is stale", FailureKind::Outdated),
            ("Transaction has an ancient birth block", FailureKind::Outdated),
            ("Invalid Transaction: Custom error: 6", FailureKind::RateLimited),
            ("Invalid(Custom(1))", FailureKind::StakeTooLow),
            ("InvalidTransaction::Custom(10)", FailureKind::NotRegistered),
            ("Custom error: 17", FailureKind::RevealRejected),
            ("SubtensorModule::SettingWeightsTooFast", FailureKind::RateLimited),
            ("SubtensorModule::NeuronNoValidatorPermit", FailureKind::NoPermit),
            (
                "SubtensorModule::IncorrectWeightVersionKey",
                FailureKind::VersionKeyTooLow,
            ),
            (
                "SubtensorModule::CommitRevealEnabled",
                FailureKind::CommitRevealMismatch,
            ),
            (
                "SubtensorModule::HotKeyNotRegisteredInSubNet",
                FailureKind::NotRegistered,
            ),
            ("SubtensorModule::InvalidIpAddress", FailureKind::ServeRejected),
            (
                "SubtensorModule::NotEnoughBalanceToStake",
                FailureKind::RegistrationRejected,
            ),
            ("SubtensorModule::WeightVecLengthIsLow", FailureKind::BadWeights),
            (
                "Inability to pay some fees (e.g. account balance too low)",
                FailureKind::InsufficientBalance,
            ),
            ("Transaction was dropped", FailureKind::Dropped),
            ("Transaction is temporarily banned", FailureKind::Dropped),
            (
                "Rpc error: The background task closed connection closed; restart required",
                FailureKind::Connection,
            ),
            ("SubtensorModule::SomethingNew", FailureKind::Other),
        ];
        for (msg, want) in cases {
            assert_eq!(classify(msg), want, "{msg}");
        }
    }

    #[test]
    fn only_transient_failures_are_retried_and_attempts_are_bounded() {
        let p = RetryPolicy::default();
        assert!(p.should_retry(1, FailureKind::Outdated));
        assert!(p.should_retry(3, FailureKind::Connection));
        assert!(!p.should_retry(4, FailureKind::Connection));
        assert!(!p.should_retry(1, FailureKind::RateLimited));
        assert!(!p.should_retry(1, FailureKind::NotRegistered));
        assert!(!p.should_retry(1, FailureKind::Other));
    }

    #[test]
    fn nonce_advance_means_included() {
        assert!(landed_by_nonce(5, 6));
        assert!(!landed_by_nonce(5, 5));
        assert!(!landed_by_nonce(5, 4));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff(1), Duration::from_millis(500));
        assert_eq!(p.backoff(2), Duration::from_secs(1));
        assert_eq!(p.backoff(3), Duration::from_secs(2));
        assert_eq!(p.backoff(10), Duration::from_secs(8));
        assert_eq!(p.backoff(u32::MAX), Duration::from_secs(8));
    }

    #[test]
    fn every_kind_has_a_hint() {
        for k in [
            FailureKind::Outdated,
            FailureKind::RateLimited,
            FailureKind::Other,
        ] {
            assert!(
                k.hint()
                    .ends_with(|c: char| c.is_ascii_alphanumeric() || c == ')')
            );
        }
    }
}
