//! Subnet bootstrap: create (or adopt) a subnet, tune it, fund, register, serve and stake, in one call.
//!
//! [`bootstrap`] takes a [`SubnetPlan`], the sudo key, a validator and its miners, and brings a chain to
//! the point where the validator can set weights: the subnet exists with the planned hyperparameters,
//! every coldkey and hotkey has funds for the burn and fees, every hotkey is registered, miners serve
//! their axons, and the validator holds stake, so the next epoch gives it a validator permit
//! ([`wait_for_permit`] waits for it).
//!
//! It submits only calls that subtensor has with the same names and arguments ([`SetupCall`]) through
//! [`ChainClient::submit`], so it works on the embedded devnet and on subtensor's localnet alike, where
//! //Alice is sudo and funded. Hyperparameters go through `Sudo::sudo`, which subtensor accepts for
//! every `AdminUtils` setter; because `Sudo::sudo` succeeds even when the inner call fails, the values
//! are read back afterwards and a mismatch is an error.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use chain::bootstrap::{Account, SubnetPlan, bootstrap};
//! use chain::client::{ChainClient, ClientConfig, Network};
//! use chain::keys::Keypair;
//!
//! let client = ChainClient::connect(&Network::Local, ClientConfig::default()).await?;
//! let sudo = Keypair::from_uri("//Alice")?;
//! let validator = Account::new(Keypair::from_uri("//v-cold")?, Keypair::from_uri("//v-hot")?);
//! let miner = Account::new(Keypair::from_uri("//m-cold")?, Keypair::from_uri("//m-hot")?);
//! let report = bootstrap(&client, &sudo, &SubnetPlan::localnet(10), &validator, &[miner]).await?;
//! println!("subnet {} ready; validator uid {}", report.netuid, report.validator_uid);
//! # Ok(()) }
//! ```

use std::time::{Duration, Instant};

use crate::calls::{AxonSpec, Call, Hyperparameter, SetupCall};
use crate::client::{ChainClient, ChainError};
use crate::keys::{AccountId, Keypair};
use crate::metagraph::Hyperparams;
use crate::submit::{Outcome, SubmitReport};

/// One TAO in rao.
pub const TAO: u64 = 1_000_000_000;

/// Which subnet to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SubnetChoice {
    /// Create a new subnet owned by the sudo account (its hotkey is uid 0).
    Create,
    /// Use this existing subnet (the sudo key can tune any subnet).
    Existing(u16),
}

/// What [`bootstrap`] sets up.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SubnetPlan {
    /// Create a subnet or use an existing one.
    pub subnet: SubnetChoice,
    /// Hyperparameters to set, in order (through `Sudo::sudo`).
    pub hyperparameters: Vec<Hyperparameter>,
    /// Transferred from the sudo account to every coldkey (rao): pays the registration burn.
    pub coldkey_funding: u64,
    /// Transferred to every hotkey (rao): pays the fees of `serve_axon` and `set_weights` on chains that
    /// charge them.
    pub hotkey_funding: u64,
    /// Staked by the validator's coldkey on its hotkey (rao), on top of its funding.
    pub validator_stake: u64,
}

impl SubnetPlan {
    /// A fresh subnet for local runs: `tempo` blocks per epoch, no weights rate limit, commit-reveal off,
    /// one weight suffices, a long immunity period; 100 TAO per coldkey, 1 TAO per hotkey and 1000 TAO of
    /// validator stake.
    pub fn localnet(tempo: u16) -> Self {
        Self {
            subnet: SubnetChoice::Create,
            hyperparameters: vec![
                Hyperparameter::Tempo(tempo),
                Hyperparameter::WeightsSetRateLimit(0),
                Hyperparameter::CommitRevealWeightsEnabled(false),
                Hyperparameter::MinAllowedWeights(1),
                Hyperparameter::ImmunityPeriod(5000),
            ],
            coldkey_funding: 100 * TAO,
            hotkey_funding: TAO,
            validator_stake: 1000 * TAO,
        }
    }
}

/// A participant: the coldkey pays, the hotkey is registered; a miner may also serve an axon.
#[derive(Debug, Clone)]
pub struct Account {
    /// Pays the burn and the stake.
    pub coldkey: Keypair,
    /// Registered on the subnet.
    pub hotkey: Keypair,
    /// Served after registration (miners).
    pub axon: Option<AxonSpec>,
}

impl Account {
    /// An account with no axon.
    pub const fn new(coldkey: Keypair, hotkey: Keypair) -> Self {
        Self {
            coldkey,
            hotkey,
            axon: None,
        }
    }

    /// The same account, serving `axon`.
    pub const fn serving(mut self, axon: AxonSpec) -> Self {
        self.axon = Some(axon);
        self
    }
}

/// What [`bootstrap`] did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BootstrapReport {
    /// The subnet used.
    pub netuid: u16,
    /// Whether it was created now.
    pub created: bool,
    /// The validator's uid.
    pub validator_uid: u16,
    /// Each miner's uid, in the order given.
    pub miner_uids: Vec<u16>,
    /// Hyperparameters after the set-up, read back from the chain.
    pub hyperparams: Hyperparams,
    /// Transactions included.
    pub submitted: usize,
    /// Steps that failed without stopping the set-up (e.g. `start_call` on a chain without it).
    pub warnings: Vec<String>,
    /// Wall time.
    pub elapsed: Duration,
}

/// Why the set-up stopped.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// Reading the chain failed.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// A transaction was not included.
    #[error("{step} failed: {message}; check the sudo key's balance and the chain's logs")]
    Step {
        /// What was being done.
        step: String,
        /// The chain's or client's message.
        message: String,
    },
    /// A hyperparameter did not take the planned value (the sudo call dispatched, its inner call failed).
    #[error(
        "{param} is {actual} on subnet {netuid} after setting it to {wanted}; is the signing key the chain's sudo key?"
    )]
    NotApplied {
        /// Subnet.
        netuid: u16,
        /// The setter.
        param: &'static str,
        /// Planned value.
        wanted: String,
        /// Value read back.
        actual: String,
    },
    /// The new subnet could not be found after `register_network`.
    #[error("register_network was included but no new subnet appeared; check the chain's network rate limit")]
    SubnetNotFound,
    /// The validator got no permit in time.
    #[error(
        "{hotkey} has no validator permit on subnet {netuid} after {waited:?}; check its stake and MaxAllowedValidators"
    )]
    NoPermit {
        /// Hotkey.
        hotkey: AccountId,
        /// Subnet.
        netuid: u16,
        /// Time waited.
        waited: Duration,
    },
}

/// Netuids probed when looking for existing subnets.
const MAX_PROBED_NETUID: u16 = 128;

async fn existing_netuids(client: &ChainClient) -> Result<Vec<u16>, ChainError> {
    let mut found = Vec::new();
    let mut misses = 0;
    for netuid in 1..=MAX_PROBED_NETUID {
        match client.hyperparams(netuid).await {
            Ok(_) => {
                found.push(netuid);
                misses = 0;
            }
            Err(ChainError::NoSubnet(_)) => {
                misses += 1;
                if misses >= 4 {
                    break;
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(found)
}

fn check(step: impl Into<String>, report: SubmitReport) -> Result<(), BootstrapError> {
    match report.outcome {
        Outcome::Included { .. } => Ok(()),
        Outcome::Failed { message, .. } => Err(BootstrapError::Step {
            step: step.into(),
            message,
        }),
    }
}

fn applied(hp: &Hyperparams, p: Hyperparameter) -> Option<(String, String)> {
    let (wanted, actual) = match p {
        Hyperparameter::Tempo(v) => (v.to_string(), hp.tempo.to_string()),
        Hyperparameter::WeightsSetRateLimit(v) => (v.to_string(), hp.weights_rate_limit.to_string()),
        Hyperparameter::CommitRevealWeightsEnabled(v) => {
            (v.to_string(), hp.commit_reveal_enabled.to_string())
        }
        Hyperparameter::MinAllowedWeights(v) => (v.to_string(), hp.min_allowed_weights.to_string()),
        Hyperparameter::ImmunityPeriod(v) => (v.to_string(), hp.immunity_period.to_string()),
        Hyperparameter::MaxAllowedUids(v) => (v.to_string(), hp.max_allowed_uids.to_string()),
        // Not in the hyperparameters the client reads.
        Hyperparameter::MaxAllowedValidators(_) | Hyperparameter::MechanismCount(_) => return None,
    };
    (wanted != actual).then_some((wanted, actual))
}

/// Sets up a subnet per `plan` for `validator` and `miners`, signing set-up calls with `sudo`. Steps
/// already done (a registered hotkey) are skipped, so running it twice is safe.
pub async fn bootstrap(
    client: &ChainClient,
    sudo: &Keypair,
    plan: &SubnetPlan,
    validator: &Account,
    miners: &[Account],
) -> Result<BootstrapReport, BootstrapError> {
    let started = Instant::now();
    let mut s = Steps {
        client,
        sudo,
        submitted: 0,
        warnings: Vec::new(),
    };
    let (netuid, created) = s.subnet(plan.subnet).await?;
    let hyperparams = s.hyperparameters(netuid, &plan.hyperparameters).await?;
    s.fund(plan, validator, miners).await?;
    let uids = s.register(netuid, validator, miners).await?;
    s.serve_axons(netuid, miners).await?;
    s.stake(netuid, validator, plan.validator_stake).await?;
    Ok(BootstrapReport {
        netuid,
        created,
        validator_uid: uids[0],
        miner_uids: uids[1..].to_vec(),
        hyperparams,
        submitted: s.submitted,
        warnings: s.warnings,
        elapsed: started.elapsed(),
    })
}

/// The bootstrap's steps, counting the transactions they submit.
struct Steps<'a> {
    client: &'a ChainClient,
    sudo: &'a Keypair,
    submitted: usize,
    warnings: Vec<String>,
}

impl Steps<'_> {
    async fn submit(&self, call: SetupCall, signer: &Keypair) -> SubmitReport {
        self.client.submit(&Call::Setup(call), signer).await
    }

    /// Submits `call` signed by `signer` and counts it; a failure is the error `what` names.
    async fn must(
        &mut self,
        what: impl Into<String>,
        call: SetupCall,
        signer: &Keypair,
    ) -> Result<(), BootstrapError> {
        let report = self.submit(call, signer).await;
        check(what, report)?;
        self.submitted += 1;
        Ok(())
    }

    /// 1. The subnet: the existing one, or a new one (then `start_call`, where the chain has it).
    async fn subnet(&mut self, choice: SubnetChoice) -> Result<(u16, bool), BootstrapError> {
        let client = self.client;
        let netuid = match choice {
            SubnetChoice::Existing(netuid) => {
                client.hyperparams(netuid).await?;
                return Ok((netuid, false));
            }
            SubnetChoice::Create => {
                let before = existing_netuids(client).await?;
                let hotkey = self.sudo.account();
                self.must(
                    "register_network",
                    SetupCall::RegisterNetwork { hotkey },
                    self.sudo,
                )
                .await?;
                let after = existing_netuids(client).await?;
                after
                    .into_iter()
                    .find(|n| !before.contains(n))
                    .ok_or(BootstrapError::SubnetNotFound)?
            }
        };
        tracing::info!(netuid, "subnet created");
        // subtensor needs `start_call` before staking and emissions; the devnet has no such call.
        let report = self.submit(SetupCall::StartCall { netuid }, self.sudo).await;
        match report.outcome {
            Outcome::Included { .. } => self.submitted += 1,
            Outcome::Failed { message, .. } => self.warnings.push(format!("start_call: {message}")),
        }
        Ok((netuid, true))
    }

    /// 2. Hyperparameters, then read back: each must hold the value set.
    async fn hyperparameters(
        &mut self,
        netuid: u16,
        params: &[Hyperparameter],
    ) -> Result<Hyperparams, BootstrapError> {
        for &param in params {
            let what = format!("{} on subnet {netuid}", param.setter());
            self.must(what, SetupCall::SudoSet { netuid, param }, self.sudo)
                .await?;
        }
        let hyperparams = self.client.hyperparams(netuid).await?;
        for &param in params {
            if let Some((wanted, actual)) = applied(&hyperparams, param) {
                return Err(BootstrapError::NotApplied {
                    netuid,
                    param: param.setter(),
                    wanted,
                    actual,
                });
            }
        }
        Ok(hyperparams)
    }

    /// 3. Funding, one transfer per distinct account that is not the sudo account.
    async fn fund(
        &mut self,
        plan: &SubnetPlan,
        validator: &Account,
        miners: &[Account],
    ) -> Result<(), BootstrapError> {
        let mut transfers: Vec<(AccountId, u64)> = Vec::new();
        let sudo = self.sudo.account();
        let mut add = |account: AccountId, amount: u64| {
            if account == sudo || amount == 0 {
                return;
            }
            match transfers.iter_mut().find(|(a, _)| *a == account) {
                Some((_, total)) => *total = total.saturating_add(amount),
                None => transfers.push((account, amount)),
            }
        };
        add(
            validator.coldkey.account(),
            plan.coldkey_funding.saturating_add(plan.validator_stake),
        );
        add(validator.hotkey.account(), plan.hotkey_funding);
        for m in miners {
            add(m.coldkey.account(), plan.coldkey_funding);
            add(m.hotkey.account(), plan.hotkey_funding);
        }
        for (dest, amount) in transfers {
            self.must(
                format!("funding {dest}"),
                SetupCall::Transfer { dest, amount },
                self.sudo,
            )
            .await?;
        }
        Ok(())
    }

    /// 4. Registration of the validator, then the miners: their uids, in that order.
    async fn register(
        &mut self,
        netuid: u16,
        validator: &Account,
        miners: &[Account],
    ) -> Result<Vec<u16>, BootstrapError> {
        let client = self.client;
        let mut uids = Vec::with_capacity(miners.len() + 1);
        for account in std::iter::once(validator).chain(miners) {
            let hotkey = account.hotkey.account();
            if let Some(uid) = client.uid_of(netuid, &hotkey).await? {
                uids.push(uid);
                continue;
            }
            let report = client.burned_register(&account.coldkey, netuid, &hotkey).await;
            check(format!("registering {hotkey}"), report)?;
            self.submitted += 1;
            let uid = client
                .uid_of(netuid, &hotkey)
                .await?
                .ok_or(ChainError::NotRegistered { hotkey, netuid })?;
            uids.push(uid);
        }
        Ok(uids)
    }

    /// 5. Axons of the miners that have one.
    async fn serve_axons(&mut self, netuid: u16, miners: &[Account]) -> Result<(), BootstrapError> {
        for m in miners {
            if let Some(axon) = m.axon {
                let report = self.client.serve_axon(&m.hotkey, netuid, axon).await?;
                check(
                    format!("serving {}:{} for {}", axon.ip, axon.port, m.hotkey.account()),
                    report,
                )?;
                self.submitted += 1;
            }
        }
        Ok(())
    }

    /// 6. The validator's stake.
    async fn stake(&mut self, netuid: u16, validator: &Account, amount: u64) -> Result<(), BootstrapError> {
        if amount == 0 {
            return Ok(());
        }
        let call = SetupCall::AddStake {
            hotkey: validator.hotkey.account(),
            netuid,
            amount,
        };
        self.must("staking on the validator", call, &validator.coldkey)
            .await
    }
}

/// Waits until `hotkey` holds a validator permit on `netuid` (an epoch after it was staked), polling
/// the metagraph; returns the block it was seen at.
pub async fn wait_for_permit(
    client: &ChainClient,
    netuid: u16,
    hotkey: &AccountId,
    timeout: Duration,
) -> Result<u64, BootstrapError> {
    let started = Instant::now();
    loop {
        let graph = client.metagraph(netuid).await?;
        if graph.by_hotkey(hotkey).is_some_and(|n| n.validator_permit) {
            return Ok(graph.block);
        }
        if started.elapsed() >= timeout {
            return Err(BootstrapError::NoPermit {
                hotkey: *hotkey,
                netuid,
                waited: started.elapsed(),
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
