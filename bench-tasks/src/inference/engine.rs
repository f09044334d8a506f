//! Continuous batching: many generations share one model on one device, joining and leaving a running
//! decode batch step by step.
//!
//! # How it runs
//! An [`Engine`] lives on the device's worker thread, beside the model. Work reaches it in two ways:
//! * [`Engine::join`] admits a [`SequenceRequest`]: it runs the prompt's prefill (one pass with a fresh
//!   per-sequence [`KvCache`]), chooses the first token and adds the sequence to the running batch;
//! * [`Engine::step`] runs **one** decoding step for every running sequence at once
//!   ([`Transformer::step_batch`] over a [`BatchCache`]: each sequence at its own position), chooses each
//!   next token, streams it, and drops every sequence that finished or whose receiver went away, so its
//!   slot is free for the next join at once.
//!
//! The worker interleaves the two with whatever else it runs (the miner runs a queued challenge between
//! two steps, so organic traffic never delays a challenge by more than one step).
//!
//! # Admission and memory
//! Capacity is reserved before anything is queued, on whichever thread receives the request:
//! [`SlotGate::reserve`] takes one of `max_sequences` slots and the KV-cache bytes of the whole sequence
//! (prompt plus `max_tokens`, [`kv_bytes_per_token`] each). When either is exhausted the request is refused
//! at once ([`Busy`]), never swapped or queued without bound; the [`Reservation`] is released when the
//! sequence ends, is cancelled, or is dropped before it joined.
//!
//! # Tokens, text and stopping (the documented rule)
//! Token `t` (0-based) of a sequence is chosen by [`Sampling::choose`] with sequence index 0 and position
//! `t`, the rule the inference challenge uses, so whoever chose the seed can replay it
//! ([`super::Verifier::check_tokens`]). Generation ends:
//! * with [`FinishReason::Stop`] after a token of the tokenizer's stop set (EOS, `<|im_end|>`); the token is
//!   counted and hashed in the receipt, but has no text;
//! * with [`FinishReason::Stop`] when the decoded text contains one of the request's stop strings: the text
//!   is cut where the earliest one begins, the tokens that formed it are kept;
//! * with [`FinishReason::Length`] after `max_tokens` tokens.
//!
//! Text is decoded incrementally and never splits a UTF-8 character; text that could be the beginning of
//! a stop string is held back until it cannot be, so a client never sees part of a stop string.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use burn::tensor::{Int, Tensor, TensorData};

use super::InferenceError;
use super::config::ModelConfig;
use super::model::{BatchCache, KvCache, Transformer};
use super::sampling::Sampling;
use super::tokenizer::{IncrementalDecoder, Tokenizer};
use crate::wire::FinishReason;

/// Most stop strings one request may give.
pub const MAX_STOP_STRINGS: usize = 4;
/// Longest stop string, in bytes.
pub const MAX_STOP_BYTES: usize = 64;

/// What one generation asks for, prompt already tokenized.
#[derive(Debug, Clone, PartialEq)]
pub struct SequenceRequest {
    /// The prompt's token ids (at least one).
    pub prompt: Vec<u32>,
    /// Most tokens to generate (at least one).
    pub max_tokens: usize,
    /// The decoding rule.
    pub sampling: Sampling,
    /// Strings that end generation (see the module docs).
    pub stop: Vec<String>,
}

/// Caps of one engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineLimits {
    /// Sequences decoded together.
    pub max_sequences: usize,
    /// Most tokens one request may generate.
    pub max_tokens: usize,
    /// Bytes of KV cache all sequences together may hold.
    pub kv_budget_bytes: u64,
}

impl SequenceRequest {
    /// Checks the request against `limits` and the model before anything is reserved or queued.
    ///
    /// # Errors
    /// [`InferenceError::BadChallenge`] naming the field (`prompt`, `max_tokens`, `stop`, `temperature`,
    /// `top_p`), or [`InferenceError::OutOfVocab`].
    pub fn validate(&self, config: &ModelConfig, limits: &EngineLimits) -> Result<(), InferenceError> {
        let bad = |field: &'static str, why: String| Err(InferenceError::BadChallenge { field, why });
        self.sampling.validate()?;
        if self.prompt.is_empty() {
            return bad("prompt", "is empty".into());
        }
        if self.max_tokens == 0 || self.max_tokens > limits.max_tokens {
            return bad(
                "max_tokens",
                format!("{} is not in 1..={}", self.max_tokens, limits.max_tokens),
            );
        }
        let total = self.prompt.len().saturating_add(self.max_tokens);
        if total > config.max_seq_len {
            return bad(
                "max_tokens",
                format!(
                    "the prompt's {} tokens plus max_tokens {} exceed the model's context of {} tokens",
                    self.prompt.len(),
                    self.max_tokens,
                    config.max_seq_len
                ),
            );
        }
        if self.stop.len() > MAX_STOP_STRINGS
            || self.stop.iter().any(|s| s.is_empty() || s.len() > MAX_STOP_BYTES)
        {
            return bad(
                "stop",
                format!(
                    "give at most {MAX_STOP_STRINGS} non-empty stop strings of at most {MAX_STOP_BYTES} bytes"
                ),
            );
        }
        if let Some(&token) = self.prompt.iter().find(|&&t| t as usize >= config.vocab_size) {
            return Err(InferenceError::OutOfVocab {
                field: "prompt".into(),
                token,
                vocab_size: config.vocab_size,
            });
        }
        Ok(())
    }

    /// Positions this sequence may occupy: prompt plus `max_tokens`.
    pub fn positions(&self) -> usize {
        self.prompt.len().saturating_add(self.max_tokens)
    }
}

/// Bytes of f32 key and value cache one position of `config` takes (every layer).
pub const fn kv_bytes_per_token(config: &ModelConfig) -> u64 {
    (config.n_layers * 2 * config.n_kv_heads * config.head_dim() * 4) as u64
}

/// Why a request was refused for lack of capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Busy {
    /// Every slot of the batch is taken.
    #[error("all {0} sequence slots are in use; retry shortly")]
    Slots(usize),
    /// The KV-cache budget cannot hold the sequence beside those running.
    #[error("the sequence needs {needed} bytes of KV cache; {free} of {budget} are free; retry shortly")]
    Memory {
        /// Bytes the sequence would reserve.
        needed: u64,
        /// Bytes free now.
        free: u64,
        /// The whole budget.
        budget: u64,
    },
}

#[derive(Debug, Default)]
struct Usage {
    sequences: usize,
    bytes: u64,
}

/// The engine's capacity, shared with the threads that admit requests.
#[derive(Debug)]
pub struct SlotGate {
    limits: EngineLimits,
    bytes_per_token: u64,
    usage: Mutex<Usage>,
}

impl SlotGate {
    /// A gate for `config` under `limits`.
    pub fn new(config: &ModelConfig, limits: EngineLimits) -> Arc<Self> {
        Arc::new(Self {
            limits,
            bytes_per_token: kv_bytes_per_token(config),
            usage: Mutex::new(Usage::default()),
        })
    }

    /// The caps.
    pub const fn limits(&self) -> &EngineLimits {
        &self.limits
    }

    /// Sequences admitted and not yet ended.
    pub fn in_use(&self) -> usize {
        self.usage
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .sequences
    }

    /// Takes a slot and the KV bytes of `positions` positions, or says why not.
    ///
    /// # Errors
    /// [`Busy`] when the slots or the bytes are exhausted.
    pub fn reserve(self: &Arc<Self>, positions: usize) -> Result<Reservation, Busy> {
        let needed = self.bytes_per_token.saturating_mul(positions as u64);
        let mut usage = self.usage.lock().unwrap_or_else(PoisonError::into_inner);
        if usage.sequences >= self.limits.max_sequences {
            return Err(Busy::Slots(self.limits.max_sequences));
        }
        let free = self.limits.kv_budget_bytes.saturating_sub(usage.bytes);
        if needed > free {
            return Err(Busy::Memory {
                needed,
                free,
                budget: self.limits.kv_budget_bytes,
            });
        }
        usage.sequences += 1;
        usage.bytes += needed;
        Ok(Reservation {
            gate: Arc::clone(self),
            bytes: needed,
        })
    }
}

/// One slot and its KV bytes, released when dropped.
#[derive(Debug)]
pub struct Reservation {
    gate: Arc<SlotGate>,
    bytes: u64,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut usage = self.gate.usage.lock().unwrap_or_else(PoisonError::into_inner);
        usage.sequences -= 1;
        usage.bytes -= self.bytes;
    }
}

/// What the engine tells a sequence's owner.
#[derive(Debug, Clone, PartialEq)]
pub enum SequenceEvent {
    /// One new token and the text it completes (possibly empty: see the module docs).
    Token {
        /// The token id.
        id: u32,
        /// Text now safe to show.
        text: String,
    },
    /// The sequence ended; nothing follows.
    Finished(Finished),
    /// The device failed; nothing follows.
    Failed(String),
}

/// How a sequence ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Finished {
    /// Why.
    pub reason: FinishReason,
    /// Prompt tokens.
    pub prompt_tokens: usize,
    /// Generated tokens (a final stop token included).
    pub completion_tokens: usize,
    /// From [`SequenceRequest`] arrival (the `arrived` given to [`Engine::join`]) to the first token.
    pub ttft: Duration,
    /// From arrival to the last token.
    pub total: Duration,
}

/// Where a sequence's events go: the engine's side of a channel.
pub trait EventSink: Send {
    /// Delivers one event. `false` when the receiver is gone or cannot take it (a reader too slow for a
    /// channel sized for the whole sequence): the sequence is then cancelled.
    fn deliver(&mut self, event: SequenceEvent) -> bool;
    /// Whether the receiver is gone (checked before every step, so a cancelled sequence leaves the batch
    /// within one step).
    fn is_closed(&self) -> bool;
}

struct Running {
    sink: Box<dyn EventSink>,
    _reservation: Reservation,
    sampling: Sampling,
    stop: Vec<String>,
    max_tokens: usize,
    prompt_tokens: usize,
    generated: usize,
    last: u32,
    decoder: IncrementalDecoder,
    /// Decoded text not yet sent (it could begin a stop string).
    held: String,
    arrived: Instant,
    first_token: Duration,
}

/// The running batch of one model on one device (worker thread only).
pub struct Engine {
    gate: Arc<SlotGate>,
    /// The running sequences; `cache` row `i` is `running[i]`'s.
    running: Vec<Running>,
    cache: BatchCache,
    steps: u64,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("running", &self.running.len())
            .field("steps", &self.steps)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// An idle engine whose capacity is `gate`.
    pub fn new(gate: Arc<SlotGate>) -> Self {
        Self {
            gate,
            running: Vec::new(),
            cache: BatchCache::new(),
            steps: 0,
        }
    }

    /// The capacity gate requests reserve from.
    pub fn gate(&self) -> &Arc<SlotGate> {
        &self.gate
    }

    /// Sequences in the running batch.
    pub fn running(&self) -> usize {
        self.running.len()
    }

    /// Whether a [`step`](Self::step) has work.
    pub fn is_idle(&self) -> bool {
        self.running.is_empty()
    }

    /// Decoding steps run so far.
    pub const fn steps(&self) -> u64 {
        self.steps
    }

    /// Prefills `request`, sends its first token and adds it to the batch (or ends it at once when one
    /// token is all it asked for or the first token stops it). `arrived` is when the request reached the
    /// server, for time to first token.
    ///
    /// # Errors
    /// Those of [`SequenceRequest::validate`] (nothing is sent then), and [`InferenceError::Backend`]
    /// (a [`SequenceEvent::Failed`] is sent too).
    pub fn join(
        &mut self,
        model: &Transformer,
        tokenizer: &Tokenizer,
        request: SequenceRequest,
        reservation: Reservation,
        mut sink: Box<dyn EventSink>,
        arrived: Instant,
    ) -> Result<(), InferenceError> {
        request.validate(model.config(), self.gate.limits())?;
        if sink.is_closed() {
            return Ok(());
        }
        let device = model.device();
        let ids: Vec<i64> = request.prompt.iter().map(|&t| i64::from(t)).collect();
        let input = Tensor::<2, Int>::from_data(TensorData::new(ids, [1, request.prompt.len()]), &device);
        let mut cache = KvCache::new();
        let logits = match read_logits(model.step(input, &mut cache)) {
            Ok(l) => l,
            Err(e) => {
                sink.deliver(SequenceEvent::Failed(e.to_string()));
                return Err(e);
            }
        };
        let first = request.sampling.choose(&logits, 0, 0);
        let mut running = Running {
            sink,
            _reservation: reservation,
            sampling: request.sampling,
            stop: request.stop,
            max_tokens: request.max_tokens,
            prompt_tokens: request.prompt.len(),
            generated: 0,
            last: first,
            decoder: IncrementalDecoder::new(),
            held: String::new(),
            arrived,
            first_token: arrived.elapsed(),
        };
        if running.accept(tokenizer, first) {
            self.running.push(running);
            self.cache.push(cache);
        }
        Ok(())
    }

    /// One decoding step over every running sequence; returns how many are still running.
    ///
    /// # Errors
    /// [`InferenceError::Backend`] when the device fails: every running sequence gets
    /// [`SequenceEvent::Failed`] and is dropped.
    pub fn step(&mut self, model: &Transformer, tokenizer: &Tokenizer) -> Result<usize, InferenceError> {
        let open: Vec<bool> = self.running.iter().map(|r| !r.sink.is_closed()).collect();
        self.retain(&open);
        if self.running.is_empty() {
            return Ok(0);
        }
        self.steps += 1;
        let tokens: Vec<u32> = self.running.iter().map(|r| r.last).collect();
        let vocab = model.config().vocab_size;
        let logits = match model.step_batch(&tokens, &mut self.cache).and_then(read_logits) {
            Ok(l) => l,
            Err(e) => {
                for mut r in self.running.drain(..) {
                    r.sink.deliver(SequenceEvent::Failed(e.to_string()));
                }
                self.cache = BatchCache::new();
                return Err(e);
            }
        };
        let going_on: Vec<bool> = self
            .running
            .iter_mut()
            .zip(logits.chunks_exact(vocab))
            .map(|(r, row)| {
                let next = r.sampling.choose(row, 0, r.generated);
                r.last = next;
                r.accept(tokenizer, next)
            })
            .collect();
        self.retain(&going_on);
        Ok(self.running.len())
    }

    /// Keeps the sequences (and cache rows) whose `keep` is true; the others' slots are freed.
    fn retain(&mut self, keep: &[bool]) {
        self.cache.retain(keep);
        let mut i = 0;
        self.running.retain(|_| {
            i += 1;
            keep[i - 1]
        });
    }
}

impl Running {
    /// Records the generated `token`, streams what it completes, and returns whether the sequence goes on.
    fn accept(&mut self, tokenizer: &Tokenizer, token: u32) -> bool {
        self.generated += 1;
        if tokenizer.stop_tokens().contains(&token) {
            let mut text = std::mem::take(&mut self.held);
            text.push_str(&self.decoder.finish());
            return self.send_token(token, text) && self.finish(FinishReason::Stop);
        }
        let piece = match self.decoder.push(tokenizer, token) {
            Ok(p) => p,
            Err(e) => {
                self.sink.deliver(SequenceEvent::Failed(e.to_string()));
                return false;
            }
        };
        self.held.push_str(&piece);
        if let Some(cut) = earliest_stop(&self.held, &self.stop) {
            let text = self.held[..cut].to_owned();
            self.held.clear();
            return self.send_token(token, text) && self.finish(FinishReason::Stop);
        }
        if self.generated >= self.max_tokens {
            let mut text = std::mem::take(&mut self.held);
            text.push_str(&self.decoder.finish());
            return self.send_token(token, text) && self.finish(FinishReason::Length);
        }
        let keep = held_back(&self.held, &self.stop);
        let text: String = self.held.drain(..self.held.len() - keep).collect();
        self.send_token(token, text)
    }

    fn send_token(&mut self, id: u32, text: String) -> bool {
        self.sink.deliver(SequenceEvent::Token { id, text })
    }

    /// Sends the end of the sequence; always `false` (the sequence leaves the batch).
    fn finish(&mut self, reason: FinishReason) -> bool {
        self.sink.deliver(SequenceEvent::Finished(Finished {
            reason,
            prompt_tokens: self.prompt_tokens,
            completion_tokens: self.generated,
            ttft: self.first_token,
            total: self.arrived.elapsed(),
        }));
        false
    }
}

fn read_logits(t: Tensor<2>) -> Result<Vec<f32>, InferenceError> {
    let device = t.device();
    t.try_into_data()
        .map(|d| d.iter::<f32>().collect())
        .map_err(|e| InferenceError::Backend {
            backend: format!("{device:?}"),
            why: format!("{e:?}"),
        })
}

/// Byte offset of the earliest stop string in `text`.
fn earliest_stop(text: &str, stops: &[String]) -> Option<usize> {
    stops.iter().filter_map(|s| text.find(s.as_str())).min()
}

/// Bytes at the end of `text` to hold back: the longest suffix (on a character boundary) that is a proper
/// prefix of some stop string.
fn held_back(text: &str, stops: &[String]) -> usize {
    stops
        .iter()
        .flat_map(|stop| {
            (1..stop.len().min(text.len() + 1))
                .rev()
                .filter(|&n| stop.is_char_boundary(n) && text.is_char_boundary(text.len() - n))
                .find(|&n| text.ends_with(&stop[..n]))
        })
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_strings_are_found_and_their_beginnings_held_back() {
        let stops = vec!["END".to_owned(), "\n\n".to_owned()];
        assert_eq!(earliest_stop("abc END x\n\n", &stops), Some(4));
        assert_eq!(earliest_stop("abc EN", &stops), None);
        assert_eq!(held_back("abc EN", &stops), 2);
        assert_eq!(held_back("abc E", &stops), 1);
        assert_eq!(held_back("abc\n", &stops), 1);
        assert_eq!(held_back("abc", &stops), 0);
        assert_eq!(held_back("", &stops), 0);
        // Multi-byte characters: only whole characters are held.
        let stops = vec!["é!".to_owned()];
        assert_eq!(held_back("café", &stops), "é".len());
        assert_eq!(held_back("caf", &stops), 0);
    }

    #[test]
    fn the_gate_refuses_beyond_its_slots_and_bytes_and_frees_on_drop() {
        let config = super::super::Preset::Tiny.config();
        let per = kv_bytes_per_token(&config);
        let gate = SlotGate::new(
            &config,
            EngineLimits {
                max_sequences: 2,
                max_tokens: 8,
                kv_budget_bytes: per * 25,
            },
        );
        let a = gate.reserve(10).unwrap();
        let b = gate.reserve(10).unwrap();
        assert_eq!(gate.reserve(1).unwrap_err(), Busy::Slots(2));
        drop(a);
        // One slot is free again, but only 15 positions' bytes are.
        assert_eq!(
            gate.reserve(16).unwrap_err(),
            Busy::Memory {
                needed: per * 16,
                free: per * 15,
                budget: per * 25,
            }
        );
        let c = gate.reserve(10).unwrap();
        assert_eq!(gate.in_use(), 2);
        drop((b, c));
        assert_eq!(gate.in_use(), 0);
    }
}
