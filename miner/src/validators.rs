//! Authorization: which authenticated hotkeys may spend this miner's GPU time.
//!
//! A hotkey is authorized when the current validator set lists it with a validator permit and stake at
//! or above the configured floor. The set comes from the metagraph (refreshed on a schedule by the chain
//! link) or, in `--dev`, from an allow-list given on the command line. A throwaway self-test key may
//! additionally be allowed for loopback peers only (see `miner doctor`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};

use chain::keys::AccountId;

/// What the miner knows of one validator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidatorEntry {
    /// Stake, in rao (10⁻⁹ TAO). Orders the work queue.
    pub stake_rao: u64,
    /// Whether the hotkey holds a validator permit on the subnet.
    pub permit: bool,
}

/// Why an authenticated hotkey is refused (HTTP 403).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthzError {
    /// The hotkey is not in the metagraph (or the dev allow-list).
    #[error("hotkey is not registered on this subnet; register it as a validator first")]
    UnknownHotkey,
    /// The hotkey is registered without a validator permit.
    #[error("hotkey has no validator permit on this subnet")]
    NoPermit,
    /// The hotkey's stake is below the floor.
    #[error("validator stake {stake_rao} rao is below this miner's floor of {floor_rao} rao")]
    LowStake {
        /// The validator's stake.
        stake_rao: u64,
        /// The configured floor.
        floor_rao: u64,
    },
}

impl AuthzError {
    /// The stable reason code.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::UnknownHotkey => "unknown_hotkey",
            Self::NoPermit => "no_permit",
            Self::LowStake { .. } => "low_stake",
        }
    }
}

/// How the set is populated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// From the subnet's metagraph.
    Metagraph,
    /// From the `--allow-validator` list (`--dev`): listed hotkeys pass with a permit and zero stake.
    AllowList,
}

#[derive(Debug)]
struct Inner {
    entries: HashMap<AccountId, ValidatorEntry>,
    loopback_only: Vec<AccountId>,
}

/// The validator set and stake floor. Cheap to clone (shared); replaced whole on each metagraph
/// refresh.
#[derive(Debug, Clone)]
pub struct ValidatorSet {
    inner: Arc<RwLock<Inner>>,
    floor_rao: u64,
    source: Source,
}

impl ValidatorSet {
    /// An empty set fed from the metagraph, with a stake floor in rao.
    pub fn metagraph(floor_rao: u64) -> Self {
        Self::build(Source::Metagraph, floor_rao, HashMap::new())
    }

    /// A dev allow-list: each hotkey passes as a permitted validator with zero stake.
    pub fn allow_list(hotkeys: impl IntoIterator<Item = AccountId>) -> Self {
        let entries = hotkeys
            .into_iter()
            .map(|h| {
                (
                    h,
                    ValidatorEntry {
                        stake_rao: 0,
                        permit: true,
                    },
                )
            })
            .collect();
        Self::build(Source::AllowList, 0, entries)
    }

    fn build(source: Source, floor_rao: u64, entries: HashMap<AccountId, ValidatorEntry>) -> Self {
        Self {
            inner: Arc::new(RwLock::new(Inner {
                entries,
                loopback_only: Vec::new(),
            })),
            floor_rao,
            source,
        }
    }

    /// Where the set comes from.
    pub fn source(&self) -> Source {
        self.source
    }

    /// The stake floor, in rao.
    pub fn floor_rao(&self) -> u64 {
        self.floor_rao
    }

    /// Replaces the set (a metagraph refresh).
    pub fn replace(&self, entries: impl IntoIterator<Item = (AccountId, ValidatorEntry)>) {
        let mut inner = self
            .inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        inner.entries = entries.into_iter().collect();
    }

    /// Hotkeys in the set.
    pub fn len(&self) -> usize {
        self.inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entries
            .len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Allows `hotkey` with zero stake, but only for requests from a loopback peer (the self-test key).
    pub fn allow_from_loopback(&self, hotkey: AccountId) {
        let mut inner = self
            .inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !inner.loopback_only.contains(&hotkey) {
            inner.loopback_only.push(hotkey);
        }
    }

    /// Decides whether `hotkey`, connecting from `peer`, may use the miner; returns its stake.
    pub fn authorize(&self, hotkey: &AccountId, peer: Option<IpAddr>) -> Result<u64, AuthzError> {
        let inner = self
            .inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(entry) = inner.entries.get(hotkey) {
            if !entry.permit {
                return Err(AuthzError::NoPermit);
            }
            if entry.stake_rao < self.floor_rao {
                return Err(AuthzError::LowStake {
                    stake_rao: entry.stake_rao,
                    floor_rao: self.floor_rao,
                });
            }
            return Ok(entry.stake_rao);
        }
        if peer.is_some_and(|ip| ip.is_loopback()) && inner.loopback_only.contains(hotkey) {
            return Ok(0);
        }
        Err(AuthzError::UnknownHotkey)
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use chain::keys::Keypair;

    use super::*;

    fn account(uri: &str) -> AccountId {
        Keypair::from_uri(uri).expect("dev uri").account()
    }

    #[test]
    fn permit_and_floor_are_enforced() {
        let set = ValidatorSet::metagraph(1_000);
        set.replace([
            (
                account("//Alice"),
                ValidatorEntry {
                    stake_rao: 5_000,
                    permit: true,
                },
            ),
            (
                account("//Bob"),
                ValidatorEntry {
                    stake_rao: 5_000,
                    permit: false,
                },
            ),
            (
                account("//Charlie"),
                ValidatorEntry {
                    stake_rao: 999,
                    permit: true,
                },
            ),
        ]);
        assert_eq!(set.authorize(&account("//Alice"), None), Ok(5_000));
        assert_eq!(set.authorize(&account("//Bob"), None), Err(AuthzError::NoPermit));
        assert_eq!(
            set.authorize(&account("//Charlie"), None),
            Err(AuthzError::LowStake {
                stake_rao: 999,
                floor_rao: 1_000
            })
        );
        assert_eq!(
            set.authorize(&account("//Dave"), None),
            Err(AuthzError::UnknownHotkey)
        );
    }

    #[test]
    fn self_test_key_only_from_loopback() {
        let set = ValidatorSet::allow_list([account("//Alice")]);
        set.allow_from_loopback(account("//Eve"));
        assert_eq!(
            set.authorize(&account("//Eve"), Some(Ipv4Addr::LOCALHOST.into())),
            Ok(0)
        );
        assert_eq!(
            set.authorize(&account("//Eve"), Some(Ipv4Addr::new(10, 0, 0, 1).into())),
            Err(AuthzError::UnknownHotkey)
        );
        assert_eq!(set.authorize(&account("//Alice"), None), Ok(0));
    }
}
