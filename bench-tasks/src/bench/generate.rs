//! `bench-tasks bench generate`: the continuous-batching engine ([`crate::inference::engine`]) on a real
//! model, closed loop at several concurrencies: aggregate tokens/s, time to first token (p50, p99) and the
//! batching gain (tokens/s at 16 over tokens/s at 1), measured side by side in one run.
//!
//! At concurrency `c`, `c` chat requests start together and every one that finishes is replaced at once by
//! the next, until `requests` have finished. The loop is the miner worker's: join what arrived (prefill),
//! then one decoding step of the whole batch. A request's time to first token runs from its arrival to
//! its first token, so it includes the prefills of the requests that joined with it.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use burn::tensor::Device;
use serde::Serialize;

use crate::backend::{BackendKind, probe};
use crate::inference::chat::chat_prompt;
use crate::inference::engine::{
    Engine, EngineLimits, EventSink, SequenceEvent, SequenceRequest, SlotGate, kv_bytes_per_token,
};
use crate::inference::real::RealModel;
use crate::inference::{InferenceError, Sampling, Transformer};

/// What to measure.
#[derive(Debug, Clone)]
pub struct GenerateBenchOptions {
    /// `smollm2` or a GGUF path.
    pub model: String,
    /// The backend the engine runs on.
    pub backend: BackendKind,
    /// Its device index.
    pub device_index: usize,
    /// Concurrency levels.
    pub concurrency: Vec<usize>,
    /// Requests per level (at least the concurrency).
    pub requests: Option<usize>,
    /// Most tokens per request.
    pub max_tokens: usize,
}

/// One concurrency level.
#[derive(Debug, Clone, Serialize)]
pub struct LevelReport {
    /// Requests in flight.
    pub concurrency: usize,
    /// Requests completed.
    pub requests: usize,
    /// Tokens generated.
    pub tokens: usize,
    /// Wall seconds.
    pub seconds: f64,
    /// Aggregate generated tokens per second.
    pub tokens_per_second: f64,
    /// Median time to first token, seconds.
    pub ttft_p50: f64,
    /// 99th percentile time to first token, seconds.
    pub ttft_p99: f64,
    /// Decoding steps run.
    pub steps: u64,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct GenerateBenchReport {
    /// The model's name and sha256.
    pub model: String,
    /// The backend.
    pub backend: String,
    /// Arithmetic precision.
    pub precision: &'static str,
    /// `max_tokens` of every request.
    pub max_tokens: usize,
    /// Per level, in the order asked.
    pub levels: Vec<LevelReport>,
    /// Tokens/s at concurrency 16 over tokens/s at 1, when both were measured.
    pub batching_gain_16: Option<f64>,
}

const PROMPTS: [&str; 8] = [
    "Name three colours and one thing of each colour.",
    "Explain what a GPU is to a child.",
    "Write two sentences about the sea.",
    "What is the capital of France, and why is it famous?",
    "Give me a short recipe for pancakes.",
    "List four animals that live in the desert.",
    "Why is the sky blue? Answer briefly.",
    "Describe a bicycle in three sentences.",
];

#[derive(Default)]
struct Log {
    first: Option<Instant>,
    tokens: usize,
    done: bool,
}

struct LogSink(Arc<Mutex<Log>>);

impl EventSink for LogSink {
    fn deliver(&mut self, event: SequenceEvent) -> bool {
        let mut log = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match event {
            SequenceEvent::Token { .. } => {
                log.first.get_or_insert_with(Instant::now);
                log.tokens += 1;
            }
            SequenceEvent::Finished(_) | SequenceEvent::Failed(_) => log.done = true,
        }
        true
    }

    fn is_closed(&self) -> bool {
        false
    }
}

/// Runs every level.
///
/// # Errors
/// Loading the model, the backend, or a device failure.
pub fn run(opts: &GenerateBenchOptions) -> Result<GenerateBenchReport, InferenceError> {
    let real = RealModel::load(&opts.model)?;
    let device: Device = probe(opts.backend, opts.device_index).map_err(|e| InferenceError::Backend {
        backend: opts.backend.to_string(),
        why: e.to_string(),
    })?;
    let model = Transformer::from_weights(&real.weights, &device)?;
    let prompts = PROMPTS
        .iter()
        .map(|p| chat_prompt(&real.tokenizer, None, p))
        .collect::<Result<Vec<_>, _>>()?;
    let mut levels = Vec::new();
    for &c in &opts.concurrency {
        levels.push(level(&model, &real, &prompts, c, opts)?);
    }
    let rate = |c: usize| {
        levels
            .iter()
            .find(|l| l.concurrency == c)
            .map(|l| l.tokens_per_second)
    };
    let batching_gain_16 = rate(16).zip(rate(1)).map(|(a, b)| a / b);
    Ok(GenerateBenchReport {
        model: real.id.to_string(),
        backend: opts.backend.to_string(),
        precision: "f32",
        max_tokens: opts.max_tokens,
        levels,
        batching_gain_16,
    })
}

fn level(
    model: &Transformer,
    real: &RealModel,
    prompts: &[Vec<u32>],
    concurrency: usize,
    opts: &GenerateBenchOptions,
) -> Result<LevelReport, InferenceError> {
    let c = concurrency.max(1);
    let total = opts.requests.unwrap_or(2 * c).max(c);
    let longest = prompts.iter().map(Vec::len).max().unwrap_or(0) + opts.max_tokens;
    let gate = SlotGate::new(
        model.config(),
        EngineLimits {
            max_sequences: c,
            max_tokens: opts.max_tokens,
            kv_budget_bytes: kv_bytes_per_token(model.config()) * (longest * c) as u64,
        },
    );
    let mut engine = Engine::new(Arc::clone(&gate));
    let mut running: Vec<(Instant, Arc<Mutex<Log>>)> = Vec::new();
    let (mut started, mut tokens) = (0, 0);
    let mut ttfts = Vec::with_capacity(total);
    let begin = Instant::now();
    while started < total || !running.is_empty() {
        while running.len() < c && started < total {
            let request = SequenceRequest {
                prompt: prompts[started % prompts.len()].clone(),
                max_tokens: opts.max_tokens,
                sampling: Sampling::GREEDY,
                stop: Vec::new(),
            };
            let reservation =
                gate.reserve(request.positions())
                    .map_err(|e| InferenceError::BadChallenge {
                        field: "concurrency",
                        why: e.to_string(),
                    })?;
            let log = Arc::new(Mutex::new(Log::default()));
            let arrived = Instant::now();
            engine.join(
                model,
                &real.tokenizer,
                request,
                reservation,
                Box::new(LogSink(Arc::clone(&log))),
                arrived,
            )?;
            running.push((arrived, log));
            started += 1;
        }
        engine.step(model, &real.tokenizer)?;
        running.retain(|(arrived, log)| {
            let log = log.lock().unwrap_or_else(PoisonError::into_inner);
            if log.done {
                tokens += log.tokens;
                let first = log.first.map_or(Duration::ZERO, |f| f.duration_since(*arrived));
                ttfts.push(first.as_secs_f64());
            }
            !log.done
        });
    }
    let seconds = begin.elapsed().as_secs_f64();
    ttfts.sort_by(f64::total_cmp);
    let pct = |q: f64| ttfts[((ttfts.len() - 1) as f64 * q).round() as usize];
    Ok(LevelReport {
        concurrency: c,
        requests: total,
        tokens,
        seconds,
        tokens_per_second: tokens as f64 / seconds,
        ttft_p50: pct(0.5),
        ttft_p99: pct(0.99),
        steps: engine.steps(),
    })
}
