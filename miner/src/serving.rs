//! Organic generation on the devices: the real models a miner serves, and on each device's worker thread
//! one continuous-batching [`Engine`] per model.
//!
//! The async side ([`crate::generate`]) validates a request, reserves a slot and KV-cache bytes on a
//! device's [`SlotGate`], and queues a *join* job on that device's work queue; the worker runs the
//! prefill and adds the sequence to the running batch. Between jobs the worker runs decoding steps
//! ([`Serving::step`], the queue's background work), so:
//!
//! **Scheduling policy.** Queued jobs (challenges, openings, joins) always run before the next decoding
//! step, highest validator stake first. A challenge therefore waits for at most one decoding step of the
//! organic batch, however many organic requests are running; organic streams pause while a challenge
//! runs. Organic requests cannot crowd challenges out of the queue either: a join is one short job, and the
//! batch's capacity is reserved before the join is queued.

use std::sync::Arc;
use std::time::Instant;

use bench_tasks::inference::engine::{
    Engine, EngineLimits, EventSink, Reservation, SequenceRequest, SlotGate,
};
use bench_tasks::inference::real::RealModel;
use bench_tasks::inference::{InferenceError, Transformer};
use bench_tasks::wire::ModelInfo;
use burn::tensor::Device;

use crate::config::{GenerateLimits, Limits};
use crate::models::HeldModels;

/// A real model the miner serves, on the host: what `/info` says of it and its weights and tokenizer.
#[derive(Debug)]
pub struct ServedModel {
    /// The file, its weights and tokenizer.
    pub real: Arc<RealModel>,
    /// `/info`'s entry.
    pub info: ModelInfo,
}

impl ServedModel {
    /// Every held model with what `/info` says of it.
    pub fn all(held: &HeldModels, limits: &Limits) -> Vec<Arc<Self>> {
        held.models()
            .iter()
            .zip(held.infos(limits))
            .map(|(real, info)| {
                Arc::new(Self {
                    real: Arc::clone(real),
                    info,
                })
            })
            .collect()
    }

    /// Whether `name` names this model: its name (any case) or its sha256 (hex, any case).
    pub fn answers_to(&self, name: &str) -> bool {
        self.info.name.eq_ignore_ascii_case(name) || self.info.sha256.eq_ignore_ascii_case(name)
    }

    /// The engine caps for this model.
    pub const fn engine_limits(limits: &GenerateLimits) -> EngineLimits {
        EngineLimits {
            max_sequences: limits.max_sequences,
            max_tokens: limits.max_tokens,
            kv_budget_bytes: limits.kv_cache_bytes,
        }
    }
}

/// One served model on one device (worker thread only).
struct Generator {
    served: Arc<ServedModel>,
    model: Transformer,
    engine: Engine,
}

/// The organic side of one device's worker: an engine per served model.
pub struct Serving {
    generators: Vec<Generator>,
}

impl std::fmt::Debug for Serving {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Serving")
            .field("models", &self.generators.len())
            .field("running", &self.running())
            .finish()
    }
}

impl Serving {
    /// Uploads every served model to `device` (worker thread), with `gates[i]` the capacity of
    /// `served[i]` on this device.
    ///
    /// # Errors
    /// Those of [`Transformer::from_weights`].
    pub fn new(
        served: &[Arc<ServedModel>],
        gates: &[Arc<SlotGate>],
        device: &Device,
    ) -> Result<Self, InferenceError> {
        let generators = served
            .iter()
            .zip(gates)
            .map(|(s, gate)| {
                Ok(Generator {
                    served: Arc::clone(s),
                    model: Transformer::from_weights(&s.real.weights, device)?,
                    engine: Engine::new(Arc::clone(gate)),
                })
            })
            .collect::<Result<_, InferenceError>>()?;
        Ok(Self { generators })
    }

    /// No models (a miner that serves seeded challenges only).
    pub const fn none() -> Self {
        Self {
            generators: Vec::new(),
        }
    }

    /// The device model of the served model with this sha256, for the inference challenge.
    pub fn model(&self, sha256: &str) -> Option<&Transformer> {
        self.generators
            .iter()
            .find(|g| g.served.info.sha256.eq_ignore_ascii_case(sha256))
            .map(|g| &g.model)
    }

    /// Sequences running on this device, every model together.
    pub fn running(&self) -> usize {
        self.generators.iter().map(|g| g.engine.running()).sum()
    }

    /// Prefills `request` on model `index` and adds it to that model's batch.
    ///
    /// # Errors
    /// Those of [`Engine::join`]; [`InferenceError::BadChallenge`] for an unknown index.
    pub fn join(
        &mut self,
        index: usize,
        request: SequenceRequest,
        reservation: Reservation,
        sink: Box<dyn EventSink>,
        arrived: Instant,
    ) -> Result<(), InferenceError> {
        let g = self
            .generators
            .get_mut(index)
            .ok_or_else(|| InferenceError::BadChallenge {
                field: "model",
                why: format!("model {index} is not served on this device"),
            })?;
        g.engine.join(
            &g.model,
            &g.served.real.tokenizer,
            request,
            reservation,
            sink,
            arrived,
        )
    }

    /// One decoding step of every model with running sequences; whether any is still running. A device
    /// failure ends that model's sequences with an error event and is logged.
    pub fn step(&mut self) -> bool {
        let mut any = false;
        for g in &mut self.generators {
            if g.engine.is_idle() {
                continue;
            }
            match g.engine.step(&g.model, &g.served.real.tokenizer) {
                Ok(n) => any |= n > 0,
                Err(e) => tracing::error!(model = %g.served.info.name, error = %e, "a decoding step failed"),
            }
        }
        any
    }
}
