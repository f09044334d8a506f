//! The node: chain state, block production and the transaction pool.
//!
//! The head state lives in a `TestExternalities`; every block is built by `Executive` in it, then
//! its changes are committed to it and to a map of the whole key space, and the values they replaced
//! are kept as the block's undo record for the most recent blocks, so storage queries and runtime calls
//! can name a recent block hash (its state is rebuilt from the head's) while memory holds one state. Finality is
//! instant: every block is final when produced.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use parity_scale_codec::{Decode, Encode};
use polkadot_sdk::sp_core::{H256, storage::Storage};
use polkadot_sdk::sp_io::{self, TestExternalities};
use polkadot_sdk::sp_keyring::Sr25519Keyring;
use polkadot_sdk::sp_runtime::{
    BuildStorage, Digest, generic,
    traits::{BlakeTwo256, Hash as _, Header as _},
    transaction_validity::{
        InvalidTransaction, TransactionSource, TransactionValidity, TransactionValidityError,
        UnknownTransaction,
    },
};
use polkadot_sdk::{pallet_balances, pallet_sudo, pallet_timestamp};
use tokio::sync::{broadcast, mpsc};

use super::runtime::{
    AccountId, Block, BlockNumber, Executive, Header, Runtime, RuntimeCall, RuntimeGenesisConfig,
    UncheckedExtrinsic,
};

/// A storage snapshot: every top-trie key and value at one block.
pub type Snapshot = Arc<BTreeMap<Vec<u8>, Vec<u8>>>;

/// What one block changed, as the values its changed keys had before it (`None`: absent). Applied to
/// the block's state, it gives its parent's.
type Undo = Vec<(Vec<u8>, Option<Vec<u8>>)>;

/// How many recent blocks' states the node can serve (blocks), like a node pruning state at 256.
/// Only the head's state is held whole; older ones are rebuilt from it with the blocks' undo records.
pub const KEPT_STATES: usize = 256;
/// Rebuilt states of older blocks kept for the next query.
const REBUILT_STATES: usize = 4;
/// Most transactions the pool holds.
pub const MAX_POOL: usize = 8192;
/// Most block bodies and headers kept (older ones are pruned; their hashes stay known).
pub const KEPT_BLOCKS: usize = 16_384;
/// Rebuild the trie backend from the snapshot every this many blocks (drops stale trie nodes).
const COMPACT_EVERY: u32 = 64;

/// Status of a watched transaction, as `author_extrinsicUpdate` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxStatus {
    /// Accepted into the pool.
    Ready,
    /// Included in a block.
    InBlock(H256),
    /// The block is final.
    Finalized(H256),
    /// Refused at inclusion (for example its nonce went stale).
    Invalid,
    /// Dropped from the pool.
    Dropped,
}

/// Why the pool refused a transaction. Codes and messages follow Substrate's author RPC.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// 1001: the bytes are not an extrinsic.
    #[error("Extrinsic has invalid format: {0}")]
    BadFormat(String),
    /// 1010: the runtime refused it.
    #[error("Invalid Transaction: {0}")]
    Invalid(String),
    /// 1011: validity unknown.
    #[error("Unknown Transaction Validity: {0}")]
    Unknown(String),
    /// 1013: already in the pool.
    #[error("Transaction Already Imported")]
    AlreadyImported,
    /// 1014: a transaction with the same sender and nonce is already in the pool.
    #[error("Priority is too low: ({0} vs {0})")]
    TooLowPriority(u64),
    /// 1016: the pool is full.
    #[error("Immediately Dropped: The transaction couldn't enter the pool because of the limit")]
    ImmediatelyDropped,
}

impl PoolError {
    /// The JSON-RPC error code Substrate uses.
    pub fn code(&self) -> i32 {
        match self {
            Self::BadFormat(_) => 1001,
            Self::Invalid(_) => 1010,
            Self::Unknown(_) => 1011,
            Self::AlreadyImported => 1013,
            Self::TooLowPriority(_) => 1014,
            Self::ImmediatelyDropped => 1016,
        }
    }

    /// The short message (`message` of the JSON-RPC error).
    pub fn message(&self) -> &'static str {
        match self {
            Self::BadFormat(_) => "Extrinsic has invalid format",
            Self::Invalid(_) => "Invalid Transaction",
            Self::Unknown(_) => "Unknown Transaction Validity",
            Self::AlreadyImported => "Transaction Already Imported",
            Self::TooLowPriority(_) => "Priority is too low",
            Self::ImmediatelyDropped => "Immediately Dropped",
        }
    }

    /// The detail (`data` of the JSON-RPC error), as Substrate words it.
    pub fn data(&self) -> Option<String> {
        match self {
            Self::BadFormat(d) | Self::Invalid(d) | Self::Unknown(d) => Some(d.clone()),
            Self::TooLowPriority(p) => Some(format!(
                "The transaction has too low priority to replace another transaction already in the pool. ({p} vs {p})"
            )),
            Self::ImmediatelyDropped => {
                Some("The transaction couldn't enter the pool because of the limit".into())
            }
            Self::AlreadyImported => None,
        }
    }
}

/// Substrate's wording of a transaction validity error (`data` of error 1010/1011).
pub fn describe_validity_error(e: &TransactionValidityError) -> String {
    match e {
        TransactionValidityError::Invalid(InvalidTransaction::Custom(c)) => {
            format!("Custom error: {c}")
        }
        TransactionValidityError::Invalid(i) => <&'static str>::from(*i).to_string(),
        TransactionValidityError::Unknown(UnknownTransaction::Custom(c)) => {
            format!("Custom error: {c}")
        }
        TransactionValidityError::Unknown(u) => <&'static str>::from(*u).to_string(),
    }
}

/// One dev account: name, keyring entry, free balance at genesis.
#[derive(Debug, Clone)]
pub struct DevAccount {
    /// Derivation path, e.g. `//Alice`.
    pub uri: &'static str,
    /// The keyring entry.
    pub keyring: Sr25519Keyring,
    /// Free balance at genesis (rao).
    pub balance: u64,
}

impl DevAccount {
    /// The account id.
    pub fn account_id(&self) -> AccountId {
        self.keyring.to_account_id()
    }
}

/// The funded dev accounts: //Alice (sudo, dev subnet owner), //Bob, //Charlie, //Dave, //Eve,
/// //Ferdie, //One, //Two, each with one million TAO.
pub fn dev_accounts() -> Vec<DevAccount> {
    use Sr25519Keyring::*;
    [
        ("//Alice", Alice),
        ("//Bob", Bob),
        ("//Charlie", Charlie),
        ("//Dave", Dave),
        ("//Eve", Eve),
        ("//Ferdie", Ferdie),
        ("//One", One),
        ("//Two", Two),
    ]
    .into_iter()
    .map(|(uri, keyring)| DevAccount {
        uri,
        keyring,
        balance: 1_000_000 * 1_000_000_000,
    })
    .collect()
}

/// Genesis parameters.
#[derive(Debug, Clone)]
pub struct GenesisParams {
    /// Tempo of new subnets.
    pub tempo: u16,
    /// Create netuid 1 owned by //Alice (coldkey and owner hotkey, uid 0).
    pub dev_subnet: bool,
    /// Commit-reveal on the dev subnet.
    pub dev_subnet_commit_reveal: bool,
}

/// The genesis storage.
pub fn genesis_storage(params: &GenesisParams) -> Result<Storage, String> {
    let accounts = dev_accounts();
    let alice = Sr25519Keyring::Alice.to_account_id();
    let config = RuntimeGenesisConfig {
        balances: pallet_balances::GenesisConfig {
            balances: accounts.iter().map(|a| (a.account_id(), a.balance)).collect(),
            ..Default::default()
        },
        sudo: pallet_sudo::GenesisConfig {
            key: Some(alice.clone()),
        },
        subtensor_module: super::subtensor::GenesisConfig {
            new_subnet_tempo: params.tempo,
            dev_subnet: params.dev_subnet.then(|| (alice.clone(), alice)),
            dev_subnet_commit_reveal: params.dev_subnet_commit_reveal,
        },
        ..Default::default()
    };
    config.build_storage()
}

/// A transaction waiting in the pool.
#[derive(Debug)]
struct PoolTx {
    xt: UncheckedExtrinsic,
    hash: H256,
    sender_nonce: Option<(AccountId, u32)>,
    watcher: Option<mpsc::Sender<TxStatus>>,
}

/// What `produce_block` did.
#[derive(Debug, Clone)]
pub struct Produced {
    /// Hash of the new block.
    pub hash: H256,
    /// Its header.
    pub header: Header,
    /// Extrinsics included besides the timestamp inherent.
    pub included: usize,
    /// Extrinsics dropped as invalid.
    pub dropped: usize,
}

/// The block author's side of the MEV shield: when `carrier` (already applied) is a
/// `MevShield.submit_encrypted`, decrypt it with `keys` and apply the inner signed extrinsic right
/// after it. Returns the inner extrinsic when it was applied (its dispatch may still have failed, as
/// any included extrinsic's); `None` for any other call, an undecryptable ciphertext or an invalid
/// inner extrinsic (bad signature, stale nonce of a replay, …), which leaves only the carrier.
fn unshield_inner(keys: &crate::shield::ShieldKeys, carrier: &UncheckedExtrinsic) -> Option<PoolTx> {
    let RuntimeCall::MevShield(crate::shield::Call::submit_encrypted { ciphertext }) = &carrier.function
    else {
        return None;
    };
    let plaintext = keys
        .unshield(ciphertext)
        .inspect_err(|e| tracing::debug!("devnet: shielded extrinsic not decrypted: {e}"))
        .ok()?;
    let mut input = &plaintext[..];
    let xt = UncheckedExtrinsic::decode(&mut input).ok()?;
    // One level only, and never an unsigned (inherent) call.
    if !input.is_empty()
        || matches!(xt.function, RuntimeCall::MevShield(_))
        || matches!(xt.preamble, generic::Preamble::Bare(_))
    {
        return None;
    }
    sp_io::storage::start_transaction();
    let applied = catch_unwind(AssertUnwindSafe(|| Executive::apply_extrinsic(xt.clone())))
        .unwrap_or(Err(TransactionValidityError::Invalid(InvalidTransaction::Call)));
    if let Err(e) = applied {
        sp_io::storage::rollback_transaction();
        tracing::debug!(
            "devnet: shielded extrinsic invalid: {}",
            describe_validity_error(&e)
        );
        return None;
    }
    sp_io::storage::commit_transaction();
    Some(PoolTx {
        hash: BlakeTwo256::hash(&plaintext),
        sender_nonce: sender_nonce(&xt),
        xt,
        watcher: None,
    })
}

/// The chain: head state, blocks, snapshots and pool.
pub struct Chain {
    ext: TestExternalities,
    head_state: Snapshot,
    genesis_hash: H256,
    head: H256,
    head_number: BlockNumber,
    hashes: Vec<H256>,
    blocks: HashMap<H256, Block>,
    /// Undo records of the latest [`KEPT_STATES`] blocks, oldest first.
    undo: VecDeque<(H256, Undo)>,
    /// Recently rebuilt states of older blocks, newest first.
    rebuilt: std::sync::Mutex<VecDeque<(H256, Snapshot)>>,
    pool: Vec<PoolTx>,
    last_timestamp: u64,
    heads: broadcast::Sender<Header>,
    beacon: Option<(chain::timelock::DevBeacon, chain::timelock::BeaconConfig)>,
    /// The MEV shield key pairs this author announced.
    shield: crate::shield::ShieldKeys,
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain")
            .field("head", &self.head)
            .field("head_number", &self.head_number)
            .field("pool", &self.pool.len())
            .finish_non_exhaustive()
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn sender_nonce(xt: &UncheckedExtrinsic) -> Option<(AccountId, u32)> {
    match &xt.preamble {
        generic::Preamble::Signed(address, _, ext) => {
            let who = match address {
                polkadot_sdk::sp_runtime::MultiAddress::Id(id) => id.clone(),
                _ => return None,
            };
            Some((who, ext.0.5.0))
        }
        _ => None,
    }
}

impl Chain {
    /// Build the chain from genesis storage.
    pub fn new(storage: Storage) -> Self {
        let top: BTreeMap<Vec<u8>, Vec<u8>> = storage.top.clone().into_iter().collect();
        let ext = TestExternalities::new(storage);
        let state_root = *ext.backend.root();
        let genesis = Header::new(
            0,
            BlakeTwo256::ordered_trie_root(Vec::new(), Default::default()),
            state_root,
            H256::zero(),
            Digest::default(),
        );
        let genesis_hash = genesis.hash();
        let block = Block {
            header: genesis,
            extrinsics: Vec::new(),
        };
        let snapshot: Snapshot = Arc::new(top);
        let (heads, _) = broadcast::channel(256);
        let mut chain = Self {
            ext,
            head_state: snapshot,
            genesis_hash,
            head: genesis_hash,
            head_number: 0,
            hashes: vec![genesis_hash],
            blocks: HashMap::from([(genesis_hash, block)]),
            undo: VecDeque::new(),
            rebuilt: std::sync::Mutex::new(VecDeque::new()),
            pool: Vec::new(),
            last_timestamp: 0,
            heads,
            beacon: None,
            shield: crate::shield::ShieldKeys::new(),
        };
        // The genesis state is served like any kept block's: rebuilt through the later blocks' undo.
        chain.keep_undo(genesis_hash, Undo::new());
        let _ = chain.ext.commit_all();
        chain
    }

    /// Write `beacon`'s pulses (rounds of `config`) in every block from now on, as their rounds come
    /// due by the block timestamp.
    pub fn set_beacon(&mut self, beacon: chain::timelock::DevBeacon, config: chain::timelock::BeaconConfig) {
        self.beacon = Some((beacon, config));
    }

    fn keep_undo(&mut self, hash: H256, undo: Undo) {
        self.undo.push_back((hash, undo));
        while self.undo.len() > KEPT_STATES {
            self.undo.pop_front();
        }
    }

    /// Bytes of state the node holds for older blocks: the undo records and the rebuilt states kept.
    pub fn history_bytes(&self) -> usize {
        let undo: usize = self
            .undo
            .iter()
            .flat_map(|(_, u)| u.iter())
            .map(|(k, v)| k.len() + v.as_ref().map_or(0, Vec::len))
            .sum();
        let rebuilt: usize = self
            .rebuilt
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|(_, s)| s.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>())
            .sum();
        undo + rebuilt
    }

    /// The state at `hash`, an older kept block: the head's state with the undo records of every block
    /// after it applied, newest first.
    fn rebuild(&self, hash: H256) -> Option<Snapshot> {
        // Only blocks still in the window are served, whatever the rebuilt cache holds.
        let at = self.undo.iter().position(|(h, _)| *h == hash)?;
        let mut rebuilt = self
            .rebuilt
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, s)) = rebuilt.iter().find(|(h, _)| *h == hash) {
            return Some(s.clone());
        }
        let mut state = self.head_state.as_ref().clone();
        for (_, undo) in self.undo.iter().skip(at + 1).rev() {
            for (k, v) in undo {
                match v {
                    Some(v) => state.insert(k.clone(), v.clone()),
                    None => state.remove(k),
                };
            }
        }
        let snapshot: Snapshot = Arc::new(state);
        rebuilt.push_front((hash, snapshot.clone()));
        rebuilt.truncate(REBUILT_STATES);
        Some(snapshot)
    }

    /// Subscribe to new heads (every block is final).
    pub fn subscribe_heads(&self) -> broadcast::Receiver<Header> {
        self.heads.subscribe()
    }

    /// Genesis hash.
    pub fn genesis_hash(&self) -> H256 {
        self.genesis_hash
    }

    /// Head hash (also the finalized head).
    pub fn head(&self) -> H256 {
        self.head
    }

    /// Head number.
    pub fn head_number(&self) -> BlockNumber {
        self.head_number
    }

    /// Hash of block `n`.
    pub fn hash_of(&self, n: u64) -> Option<H256> {
        self.hashes.get(usize::try_from(n).ok()?).copied()
    }

    /// A block by hash.
    pub fn block(&self, hash: &H256) -> Option<&Block> {
        self.blocks.get(hash)
    }

    /// The state snapshot at `hash` (`None` = head), if still kept.
    pub fn state(&self, hash: Option<H256>) -> Option<Snapshot> {
        match hash {
            None => Some(self.head_state.clone()),
            Some(h) if h == self.head => Some(self.head_state.clone()),
            Some(h) => self.rebuild(h),
        }
    }

    /// The pool's transactions, hex-encoded.
    pub fn pending_hex(&self) -> Vec<String> {
        self.pool.iter().map(|t| encode_hex(&t.xt.encode())).collect()
    }

    /// Number of transactions waiting.
    pub fn pool_len(&self) -> usize {
        self.pool.len()
    }

    /// Call a runtime API at `hash` (`None` = head) without keeping any change.
    pub fn call(&mut self, hash: Option<H256>, method: &str, data: &[u8]) -> Result<Vec<u8>, String> {
        let run = |ext: &mut TestExternalities| {
            ext.execute_with(|| {
                sp_io::storage::start_transaction();
                let out = super::runtime::dispatch_runtime_api(method, data);
                sp_io::storage::rollback_transaction();
                out
            })
        };
        let out = match hash {
            Some(h) if h != self.head => {
                let snap = self
                    .rebuild(h)
                    .ok_or_else(|| format!("State already discarded for {h:?}"))?;
                let mut ext = TestExternalities::new(Storage {
                    top: snap.as_ref().clone(),
                    children_default: Default::default(),
                });
                catch_unwind(AssertUnwindSafe(|| run(&mut ext)))
            }
            _ => {
                let out = catch_unwind(AssertUnwindSafe(|| run(&mut self.ext)));
                if out.is_err() {
                    self.ext.reset_overlay();
                }
                out
            }
        };
        out.map_err(|_| format!("Execution aborted: the runtime panicked in {method}"))?
            .ok_or_else(|| format!("Exported method {method} is not found"))
    }

    /// Validate a transaction against the head, as the pool does.
    pub fn validate(&mut self, xt: &UncheckedExtrinsic) -> TransactionValidity {
        let head = self.head;
        let xt = xt.clone();
        let out = catch_unwind(AssertUnwindSafe(|| {
            self.ext.execute_with(|| {
                sp_io::storage::start_transaction();
                let out = Executive::validate_transaction(TransactionSource::External, xt, head);
                sp_io::storage::rollback_transaction();
                out
            })
        }));
        out.unwrap_or_else(|_| {
            self.ext.reset_overlay();
            Err(TransactionValidityError::Invalid(InvalidTransaction::Call))
        })
    }

    /// Next nonce of `who`, counting its transactions in the pool.
    pub fn next_nonce(&mut self, who: &AccountId) -> u32 {
        let who2 = who.clone();
        let on_chain = self
            .ext
            .execute_with(|| polkadot_sdk::frame_system::Pallet::<Runtime>::account_nonce(who2));
        let mut next = on_chain;
        let mut pooled: Vec<u32> = self
            .pool
            .iter()
            .filter_map(|t| t.sender_nonce.as_ref().filter(|(w, _)| w == who).map(|(_, n)| *n))
            .collect();
        pooled.sort_unstable();
        for n in pooled {
            if n == next {
                next += 1;
            }
        }
        next
    }

    /// Decode, validate and queue a transaction. Returns its hash.
    pub fn submit(
        &mut self,
        bytes: &[u8],
        watcher: Option<mpsc::Sender<TxStatus>>,
    ) -> Result<H256, PoolError> {
        let mut input = bytes;
        let xt = UncheckedExtrinsic::decode(&mut input).map_err(|e| PoolError::BadFormat(e.to_string()))?;
        if !input.is_empty() {
            return Err(PoolError::BadFormat(format!("{} trailing bytes", input.len())));
        }
        let hash = BlakeTwo256::hash(bytes);
        if self.pool.iter().any(|t| t.hash == hash) {
            return Err(PoolError::AlreadyImported);
        }
        if self.pool.len() >= MAX_POOL {
            return Err(PoolError::ImmediatelyDropped);
        }
        if let generic::Preamble::Bare(_) = xt.preamble {
            return Err(PoolError::Invalid("Transaction call is not expected".into()));
        }
        let sender_nonce = sender_nonce(&xt);
        if let Some(sn) = &sender_nonce
            && self.pool.iter().any(|t| t.sender_nonce.as_ref() == Some(sn))
        {
            return Err(PoolError::TooLowPriority(0));
        }
        match self.validate(&xt) {
            Ok(_) => {}
            Err(e @ TransactionValidityError::Invalid(_)) => {
                return Err(PoolError::Invalid(describe_validity_error(&e)));
            }
            Err(e @ TransactionValidityError::Unknown(_)) => {
                return Err(PoolError::Unknown(describe_validity_error(&e)));
            }
        }
        if let Some(w) = &watcher {
            let _ = w.try_send(TxStatus::Ready);
        }
        self.pool.push(PoolTx {
            xt,
            hash,
            sender_nonce,
            watcher,
        });
        Ok(hash)
    }

    /// Build, execute and finalize the next block with the pool's transactions.
    pub fn produce_block(&mut self) -> Result<Produced, String> {
        let number = self.head_number + 1;
        let parent = self.head;
        let header = Header::new(number, H256::zero(), H256::zero(), parent, Digest::default());
        let timestamp = now_ms().max(self.last_timestamp + 1);
        self.last_timestamp = timestamp;
        let inherent = UncheckedExtrinsic::new_bare(RuntimeCall::Timestamp(pallet_timestamp::Call::set {
            now: timestamp,
        }));
        let mut pending = std::mem::take(&mut self.pool);
        let mut included: Vec<PoolTx> = Vec::new();
        let mut dropped: Vec<PoolTx> = Vec::new();
        let beacon = self.beacon.clone();
        let enc_key = self.shield.announce();
        let shield = &self.shield;
        let built = catch_unwind(AssertUnwindSafe(|| {
            self.ext.execute_with(|| {
                Executive::initialize_block(&header);
                // The inherent cannot fail for a timestamp past the previous one.
                let _ = Executive::apply_extrinsic(inherent.clone());
                // What subtensor's `announce_next_key` inherent does; the key has the right length.
                let _ = crate::shield::Pallet::<Runtime>::rotate(enc_key.try_into().ok());
                // The beacon's pulses land after `on_initialize`, like drand's off-chain worker's
                // unsigned transactions: commits revealed by them open in a later block.
                if let Some((beacon, config)) = &beacon {
                    crate::drand::write_due_pulses::<Runtime>(beacon, config, timestamp);
                }
                loop {
                    let mut progress = false;
                    let mut later = Vec::new();
                    for tx in pending.drain(..) {
                        sp_io::storage::start_transaction();
                        let applied =
                            catch_unwind(AssertUnwindSafe(|| Executive::apply_extrinsic(tx.xt.clone())))
                                .unwrap_or(Err(TransactionValidityError::Invalid(InvalidTransaction::Call)));
                        match applied {
                            Ok(_) => {
                                sp_io::storage::commit_transaction();
                                let inner = unshield_inner(shield, &tx.xt);
                                included.push(tx);
                                included.extend(inner);
                                progress = true;
                            }
                            Err(TransactionValidityError::Invalid(
                                InvalidTransaction::Future | InvalidTransaction::ExhaustsResources,
                            )) => {
                                sp_io::storage::rollback_transaction();
                                later.push(tx);
                            }
                            Err(_) => {
                                sp_io::storage::rollback_transaction();
                                dropped.push(tx);
                            }
                        }
                    }
                    pending = later;
                    if !progress || pending.is_empty() {
                        break;
                    }
                }
                Executive::finalize_block()
            })
        }));
        let header = match built {
            Ok(h) => h,
            Err(_) => {
                // A panic outside any one transaction (block initialization or finalization):
                // discard the partial block, keep the transactions, report.
                self.ext.reset_overlay();
                self.pool = pending;
                self.pool.extend(included);
                self.pool.extend(dropped);
                return Err(format!(
                    "block {number} aborted: the runtime panicked while building it"
                ));
            }
        };
        self.pool = pending;
        let hash = header.hash();
        let mut extrinsics = vec![inherent];
        extrinsics.extend(included.iter().map(|t| t.xt.clone()));
        let block = Block {
            header: header.clone(),
            extrinsics,
        };

        // Apply the changes to the head state (in place unless a reader still holds it), keeping what
        // they replaced as the block's undo record, then commit them.
        let changed: Vec<Vec<u8>> = self
            .ext
            .overlayed_changes()
            .changes()
            .map(|(k, _)| k.clone())
            .collect();
        let values: Vec<Option<Vec<u8>>> = self.ext.execute_with(|| {
            changed
                .iter()
                .map(|k| sp_io::storage::get(k).map(|b| b.to_vec()))
                .collect()
        });
        let state = Arc::make_mut(&mut self.head_state);
        let mut undo: Undo = Vec::with_capacity(changed.len());
        for (k, v) in changed.into_iter().zip(values) {
            let old = match v {
                Some(v) => state.insert(k.clone(), v),
                None => state.remove(&k),
            };
            undo.push((k, old));
        }
        let snapshot = self.head_state.clone();
        if number.is_multiple_of(COMPACT_EVERY) {
            self.ext = TestExternalities::new(Storage {
                top: snapshot.as_ref().clone(),
                children_default: Default::default(),
            });
        } else if let Err(e) = self.ext.commit_all() {
            tracing::error!("devnet: commit failed: {e}; rebuilding the head state");
            self.ext = TestExternalities::new(Storage {
                top: snapshot.as_ref().clone(),
                children_default: Default::default(),
            });
        }
        drop(snapshot);
        self.keep_undo(hash, undo);
        self.head = hash;
        self.head_number = number;
        self.hashes.push(hash);
        self.blocks.insert(hash, block);
        if let Some(old) = self
            .hashes
            .len()
            .checked_sub(KEPT_BLOCKS + 1)
            .and_then(|i| self.hashes.get(i))
            && *old != self.genesis_hash
        {
            self.blocks.remove(old);
        }

        for tx in &included {
            if let Some(w) = &tx.watcher {
                let _ = w.try_send(TxStatus::InBlock(hash));
                let _ = w.try_send(TxStatus::Finalized(hash));
            }
        }
        for tx in &dropped {
            if let Some(w) = &tx.watcher {
                let _ = w.try_send(TxStatus::Invalid);
            }
        }
        let _ = self.heads.send(header.clone());
        Ok(Produced {
            hash,
            header,
            included: included.len(),
            dropped: dropped.len(),
        })
    }

    /// Encoded runtime version (`Core_version`).
    pub fn runtime_version(&self) -> polkadot_sdk::sp_version::RuntimeVersion {
        super::runtime::VERSION
    }

    /// Run `f` with the head state as externalities, discarding changes.
    pub fn with_state<R>(&mut self, f: impl FnOnce() -> R) -> R {
        self.ext.execute_with(|| {
            sp_io::storage::start_transaction();
            let r = f();
            sp_io::storage::rollback_transaction();
            r
        })
    }
}

/// Encode helper used by tests and the RPC layer.
pub fn encode_hex(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

/// Decode `0x…` hex, refusing inputs longer than `max` bytes before allocating.
pub fn decode_hex(s: &str, max: usize) -> Result<Vec<u8>, String> {
    let s = s.strip_prefix("0x").unwrap_or(s);
    if s.len() / 2 > max {
        return Err(format!(
            "hex input of {} bytes is over the {max}-byte limit",
            s.len() / 2
        ));
    }
    hex::decode(s).map_err(|e| format!("invalid hex: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain() -> Chain {
        let storage = genesis_storage(&GenesisParams {
            tempo: 10,
            dev_subnet: false,
            dev_subnet_commit_reveal: false,
        })
        .unwrap();
        let mut chain = Chain::new(storage);
        chain.set_beacon(
            chain::timelock::DevBeacon::devnet(),
            chain::timelock::BeaconConfig::devnet(),
        );
        chain
    }

    /// Older blocks' states are rebuilt exactly from the head's and the undo records, while the node
    /// holds one whole state plus records the size of what the blocks changed (not 256 copies).
    #[test]
    fn older_states_are_rebuilt_exactly_from_undo_records() {
        let mut chain = chain();
        let genesis = chain.state(None).unwrap();
        let mut seen: Vec<(H256, Snapshot)> = vec![(chain.genesis_hash(), genesis)];
        for _ in 0..40 {
            let produced = chain.produce_block().unwrap();
            let head = chain.state(None).unwrap();
            seen.push((produced.hash, Arc::new(head.as_ref().clone())));
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        for (hash, expected) in &seen {
            assert_eq!(chain.state(Some(*hash)).unwrap(), *expected, "state at {hash:?}");
        }
        let head_bytes: usize = chain
            .state(None)
            .unwrap()
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum();
        // Undo records of 40 blocks plus at most four rebuilt states hold less than a quarter of what a
        // state copy per block would (even with genesis's small state; the ratio grows with the state),
        // beside what every block rotates: the MEV shield's three keys (`CurrentKey ← PendingKey ←
        // NextKey ←` new), each replaced value kept in the block's undo record.
        let rotated = 3 * (crate::shield::MLKEM768_ENC_KEY_LEN + 64);
        assert!(
            chain.history_bytes() < seen.len() * (head_bytes / 4 + rotated),
            "history {} bytes, head state {head_bytes} bytes",
            chain.history_bytes()
        );
        // Blocks past the window are forgotten.
        for _ in 0..KEPT_STATES {
            chain.produce_block().unwrap();
        }
        assert!(chain.state(Some(seen[1].0)).is_none());
    }

    /// Pulses older than `MAX_KEPT_PULSES` rounds behind the last are pruned as new ones land.
    #[test]
    fn old_beacon_pulses_are_pruned() {
        use crate::drand::{
            LastStoredRound, MAX_KEPT_PULSES, MAX_REMOVED_PULSES, OldestStoredRound, Pallet, Pulses,
        };
        let mut chain = chain();
        chain.ext.execute_with(|| {
            let extra = 2 * MAX_REMOVED_PULSES;
            for round in 1..=MAX_KEPT_PULSES + extra {
                Pallet::<Runtime>::store_pulse(round, vec![7; 48]);
            }
            assert_eq!(LastStoredRound::<Runtime>::get(), MAX_KEPT_PULSES + extra);
            assert_eq!(OldestStoredRound::<Runtime>::get(), extra + 1);
            assert!(!Pulses::<Runtime>::contains_key(extra));
            assert!(Pulses::<Runtime>::contains_key(extra + 1));
            assert_eq!(Pulses::<Runtime>::iter_keys().count() as u64, MAX_KEPT_PULSES);
        });
    }
}
