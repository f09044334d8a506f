//! Which miner serves a request: the directory of serving miners (their `/info` models, their recent
//! challenge results and score) and a weighted random choice among those that hold the model and have a
//! free slot.
//!
//! A miner is eligible when its latest challenge passed and it is not benched. The choice is random with
//! weight `(score + floor) × free slots`, so a better miner gets more traffic, a new or low-scored one
//! still gets some, and a full one none: no deterministic tie-break starves or floods anyone. A miner
//! that fails organic verification is benched until a challenge in a later round passes, then is on
//! probation (every answer re-checked) until [`PROBATION_PASSES`] organic checks pass.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bench_tasks::wire::ModelInfo;
use exchange::{Budget, Client, MinerEndpoint};

use crate::dashboard::Dashboard;

/// Weight floor added to every eligible miner's score.
pub const SCORE_FLOOR: f64 = 0.05;

/// One miner the API may route to.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// Where and who.
    pub endpoint: MinerEndpoint,
    /// The real models it holds (`/info`).
    pub models: Vec<ModelInfo>,
    /// Its EMA score.
    pub score: f64,
    /// Whether its latest challenge passed (and it is not benched).
    pub eligible: bool,
}

impl Candidate {
    /// The model it holds that `name` names (its name or its sha256), if any.
    pub fn model(&self, name: &str) -> Option<&ModelInfo> {
        self.models
            .iter()
            .find(|m| m.name == name || m.sha256.eq_ignore_ascii_case(name))
    }
}

#[derive(Debug, Default)]
struct Inner {
    miners: Vec<Candidate>,
    inflight: HashMap<u16, usize>,
    /// uid → (hotkey, dashboard round when benched).
    benched: HashMap<u16, (String, u64)>,
    /// Miners back from a bench: every answer of theirs is re-checked until [`PROBATION_PASSES`] pass.
    probation: HashMap<u16, usize>,
}

/// Organic checks a miner back from a bench must pass before sampling goes back to the configured share.
pub const PROBATION_PASSES: usize = 5;

/// The miners the API routes to. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    inner: Arc<Mutex<Inner>>,
    round: Arc<RwLock<u64>>,
}

/// A slot held on a miner while a request runs there; released on drop.
#[derive(Debug)]
pub struct Slot {
    dir: Directory,
    uid: u16,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut inner = self.dir.lock();
        if let Some(n) = inner.inflight.get_mut(&self.uid) {
            *n = n.saturating_sub(1);
        }
    }
}

/// Why no miner was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoMiner {
    /// No miner in the directory lists the model.
    UnknownModel,
    /// Some do, but none is eligible, untried and free now.
    Busy,
}

impl Directory {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Replaces the miners (keeping in-flight counts and benches).
    pub fn set(&self, miners: Vec<Candidate>) {
        let mut inner = self.lock();
        let benched = inner.benched.clone();
        inner.miners = miners
            .into_iter()
            .map(|mut c| {
                if benched.contains_key(&c.endpoint.uid) {
                    c.eligible = false;
                }
                c
            })
            .collect();
    }

    /// Every miner, as last set.
    pub fn miners(&self) -> Vec<Candidate> {
        self.lock().miners.clone()
    }

    /// Requests in flight on `uid`.
    pub fn inflight(&self, uid: u16) -> usize {
        self.lock().inflight.get(&uid).copied().unwrap_or(0)
    }

    /// Benches `uid` (it failed organic verification) until a challenge passes in a later round.
    pub fn bench(&self, uid: u16, hotkey: &str) {
        let round = *self
            .round
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut inner = self.lock();
        inner.benched.insert(uid, (hotkey.to_owned(), round));
        for c in &mut inner.miners {
            if c.endpoint.uid == uid {
                c.eligible = false;
            }
        }
    }

    /// Whether every answer of `uid` is to be re-checked (it is back from a bench).
    pub fn on_probation(&self, uid: u16) -> bool {
        self.lock().probation.contains_key(&uid)
    }

    /// Counts a passed organic check of `uid` toward the end of its probation.
    pub fn passed_check(&self, uid: u16) {
        let mut inner = self.lock();
        if let Some(left) = inner.probation.get_mut(&uid) {
            *left = left.saturating_sub(1);
            if *left == 0 {
                inner.probation.remove(&uid);
            }
        }
    }

    /// Whether `uid` is benched.
    pub fn is_benched(&self, uid: u16) -> bool {
        self.lock().benched.contains_key(&uid)
    }

    /// The model names eligible miners hold, sorted, each once.
    pub fn models(&self) -> Vec<String> {
        let inner = self.lock();
        let mut names: Vec<String> = inner
            .miners
            .iter()
            .filter(|c| c.eligible)
            .flat_map(|c| c.models.iter().map(|m| m.name.clone()))
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// The largest `max_tokens` any miner holding `model` accepts, and whether any miner lists it.
    pub fn max_tokens(&self, model: &str) -> Option<usize> {
        self.lock()
            .miners
            .iter()
            .filter_map(|c| c.model(model))
            .map(|m| m.max_tokens)
            .max()
    }

    /// Picks an eligible miner holding `model` with a free slot, not in `tried`, at random weighted by
    /// score and free slots; holds a slot on it.
    ///
    /// # Errors
    /// [`NoMiner::UnknownModel`] when no miner lists the model, [`NoMiner::Busy`] otherwise.
    pub fn pick(&self, model: &str, tried: &[u16]) -> Result<(Candidate, ModelInfo, Slot), NoMiner> {
        let mut inner = self.lock();
        let mut known = false;
        let mut options: Vec<(usize, ModelInfo, f64)> = Vec::new();
        for (i, c) in inner.miners.iter().enumerate() {
            let Some(m) = c.model(model) else { continue };
            known = true;
            if !c.eligible || tried.contains(&c.endpoint.uid) {
                continue;
            }
            let used = inner.inflight.get(&c.endpoint.uid).copied().unwrap_or(0);
            let free = m.max_sequences.max(1).saturating_sub(used);
            if free == 0 {
                continue;
            }
            let weight = (c.score.max(0.0) + SCORE_FLOOR) * free as f64;
            options.push((i, m.clone(), weight));
        }
        if !known {
            return Err(NoMiner::UnknownModel);
        }
        let total: f64 = options.iter().map(|o| o.2).sum();
        if options.is_empty() || total <= 0.0 {
            return Err(NoMiner::Busy);
        }
        let mut x = rand::random::<f64>() * total;
        let mut chosen = options.len() - 1;
        for (k, o) in options.iter().enumerate() {
            if x < o.2 {
                chosen = k;
                break;
            }
            x -= o.2;
        }
        let (i, info, _) = options.swap_remove(chosen);
        let candidate = inner.miners[i].clone();
        *inner.inflight.entry(candidate.endpoint.uid).or_insert(0) += 1;
        drop(inner);
        let slot = Slot {
            dir: self.clone(),
            uid: candidate.endpoint.uid,
        };
        Ok((candidate, info, slot))
    }

    /// Lifts the bench of `uid` (then on probation) when its latest challenge, `(passed, round)`, passed
    /// in a round after the bench; a new hotkey on the uid is a new miner and starts clean.
    pub fn lift(&self, uid: u16, hotkey: &str, latest: Option<(bool, u64)>) {
        let mut inner = self.lock();
        let Some((hk, at)) = inner.benched.get(&uid).cloned() else {
            return;
        };
        if hk != hotkey {
            inner.benched.remove(&uid);
            inner.probation.remove(&uid);
        } else if let Some((true, round)) = latest
            && round > at
        {
            inner.benched.remove(&uid);
            inner.probation.insert(uid, PROBATION_PASSES);
        }
    }

    /// Rebuilds the directory from `miners`: fetches each one's `/info` (concurrently, each within
    /// `timeout`), takes scores and latest verdicts from `dashboard`, and lifts benches for miners whose
    /// challenge passed in a round after the bench.
    pub async fn refresh(
        &self,
        client: &Client,
        miners: &[MinerEndpoint],
        dashboard: &Dashboard,
        timeout: Duration,
    ) {
        let view = dashboard.view();
        *self
            .round
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = view.round;
        let budget = Budget {
            timeout,
            cap: 1 << 20,
        };
        let infos = miners.iter().map(|m| {
            let client = client.clone();
            let base = m.target().base;
            async move { client.info(&base, budget).await }
        });
        let mut handles = Vec::new();
        for f in infos {
            handles.push(tokio::spawn(f));
        }
        let mut out = Vec::new();
        for (m, h) in miners.iter().zip(handles) {
            let info = match h.await {
                Ok(Ok(info)) => info,
                Ok(Err(e)) => {
                    tracing::debug!(uid = m.uid, "info for the API directory failed: {e}");
                    continue;
                }
                Err(_) => continue,
            };
            if info.hotkey != m.hotkey.to_ss58() || info.models.is_empty() {
                continue;
            }
            let row = view
                .miners
                .iter()
                .find(|r| r.uid == m.uid && r.hotkey == info.hotkey);
            let latest = row.and_then(|r| r.recent.first());
            let passed = latest.is_some_and(|v| v.passed);
            self.lift(m.uid, &info.hotkey, latest.map(|v| (v.passed, v.round)));
            out.push(Candidate {
                endpoint: m.clone(),
                models: info.models,
                score: row.map_or(0.0, |r| r.score),
                eligible: passed,
            });
        }
        self.set(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chain::keys::Keypair;

    fn candidate(uid: u16, score: f64, slots: usize, eligible: bool) -> Candidate {
        Candidate {
            endpoint: MinerEndpoint {
                uid,
                hotkey: Keypair::from_uri(&format!("//m{uid}")).unwrap().account(),
                addr: "127.0.0.1:1".parse().unwrap(),
            },
            models: vec![ModelInfo {
                name: "smollm2".into(),
                sha256: "AB".into(),
                precision: "f32".into(),
                context_length: 2048,
                max_sequences: slots,
                max_tokens: 512,
            }],
            score,
            eligible,
        }
    }

    #[test]
    fn picks_only_eligible_free_untried_miners_and_releases_slots() {
        let d = Directory::new();
        d.set(vec![candidate(1, 0.5, 1, true), candidate(2, 0.9, 2, false)]);
        assert_eq!(d.pick("gpt-4", &[]).unwrap_err(), NoMiner::UnknownModel);
        let (c, m, slot) = d.pick("ab", &[]).unwrap();
        assert_eq!((c.endpoint.uid, m.name.as_str()), (1, "smollm2"));
        assert_eq!(d.inflight(1), 1);
        // Its only slot is taken and the other miner is not eligible.
        assert_eq!(d.pick("smollm2", &[]).unwrap_err(), NoMiner::Busy);
        drop(slot);
        assert_eq!(d.inflight(1), 0);
        assert_eq!(d.pick("smollm2", &[1]).unwrap_err(), NoMiner::Busy);
        assert_eq!(d.models(), vec!["smollm2".to_owned()]);
        assert_eq!(d.max_tokens("smollm2"), Some(512));
        d.bench(1, "x");
        assert!(d.is_benched(1));
        assert_eq!(d.pick("smollm2", &[]).unwrap_err(), NoMiner::Busy);
        assert!(d.models().is_empty());
        // A failed or same-round challenge keeps the bench; a later pass lifts it into probation.
        d.lift(1, "x", Some((false, 3)));
        d.lift(1, "x", Some((true, 0)));
        assert!(d.is_benched(1));
        d.lift(1, "x", Some((true, 1)));
        assert!(!d.is_benched(1) && d.on_probation(1));
        for _ in 0..PROBATION_PASSES {
            assert!(d.on_probation(1));
            d.passed_check(1);
        }
        assert!(!d.on_probation(1));
    }

    #[test]
    fn the_choice_is_random_and_favours_score_without_starving_anyone() {
        let d = Directory::new();
        d.set(vec![candidate(1, 0.0, 8, true), candidate(2, 1.0, 8, true)]);
        let mut counts = [0usize; 3];
        for _ in 0..2000 {
            let (c, _, _slot) = d.pick("smollm2", &[]).unwrap();
            counts[usize::from(c.endpoint.uid)] += 1;
        }
        // Weights 0.05 : 1.05, so miner 1 gets about 1 in 21.
        assert!(counts[1] > 20 && counts[2] > counts[1] * 5, "{counts:?}");
    }
}
