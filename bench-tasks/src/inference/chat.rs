//! Text in, text out: chat prompts rendered with the model's template, decoded under a [`Sampling`] rule
//! with a KV cache, streamed as text without ever splitting a UTF-8 character, stopping at a stop token.

use burn::tensor::{Int, Tensor, TensorData};
use serde::Serialize;

use super::InferenceError;
use super::model::{KvCache, Transformer};
use super::sampling::Sampling;
use super::tokenizer::{ChatMessage, IncrementalDecoder, Tokenizer};

/// One finished completion.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Completion {
    /// The generated text (without the stop token).
    pub text: String,
    /// The generated token ids (without the stop token).
    pub tokens: Vec<u32>,
    /// Tokens of the prompt.
    pub prompt_tokens: usize,
    /// Tokens generated, the stop token included when one ended the reply.
    pub completion_tokens: usize,
    /// Whether a stop token ended the reply (otherwise `max_tokens` did).
    pub stopped: bool,
    /// Seconds of the prefill pass.
    pub prefill_seconds: f64,
    /// Seconds from the end of prefill to the last token.
    pub decode_seconds: f64,
}

/// The prompt ids of a single-turn chat: `user` (and `system` when given) rendered with the model's chat
/// template and the assistant's header.
///
/// # Errors
/// Those of [`Tokenizer::encode_chat`].
pub fn chat_prompt(
    tokenizer: &Tokenizer,
    system: Option<&str>,
    user: &str,
) -> Result<Vec<u32>, InferenceError> {
    let mut messages = Vec::new();
    if let Some(s) = system {
        messages.push(ChatMessage {
            role: "system".into(),
            content: s.into(),
        });
    }
    messages.push(ChatMessage {
        role: "user".into(),
        content: user.into(),
    });
    tokenizer.encode_chat(&messages, true)
}

/// Continues `prompt` by up to `max_tokens` tokens chosen by `sampling` (sequence 0, positions from 0),
/// calling `on_text` with each piece of text as soon as it is complete, and stopping after a stop token.
///
/// # Errors
/// [`InferenceError::BadChallenge`] for an empty prompt, `max_tokens` 0 or a total beyond the model's
/// context, [`InferenceError::OutOfVocab`], [`InferenceError::Backend`].
pub fn complete(
    model: &Transformer,
    tokenizer: &Tokenizer,
    prompt: &[u32],
    max_tokens: usize,
    sampling: &Sampling,
    mut on_text: impl FnMut(&str),
) -> Result<Completion, InferenceError> {
    sampling.validate()?;
    let config = model.config();
    if prompt.is_empty() || max_tokens == 0 {
        return Err(InferenceError::BadChallenge {
            field: "prompt",
            why: "the prompt and max_tokens must be non-empty".into(),
        });
    }
    if prompt.len() + max_tokens > config.max_seq_len {
        return Err(InferenceError::BadChallenge {
            field: "max_tokens",
            why: format!(
                "{max_tokens} plus the prompt's {} tokens exceeds the model's context of {}",
                prompt.len(),
                config.max_seq_len
            ),
        });
    }
    let ids = super::challenge::flatten_ids(&[prompt.to_vec()], config.vocab_size, "prompt")?;
    let device = model.device();
    let start = std::time::Instant::now();
    let mut cache = KvCache::new();
    let mut input = Tensor::<2, Int>::from_data(TensorData::new(ids, [1, prompt.len()]), &device);
    let mut decoder = IncrementalDecoder::new();
    let mut tokens = Vec::new();
    let mut text = String::new();
    let mut stopped = false;
    let mut prefill_seconds = 0.0;
    for t in 0..max_tokens {
        let logits: Vec<f32> = model
            .step(input, &mut cache)
            .try_into_data()
            .map_err(|e| backend_err(&device, e))?
            .iter::<f32>()
            .collect();
        if t == 0 {
            prefill_seconds = start.elapsed().as_secs_f64();
        }
        let next = sampling.choose(&logits, 0, t);
        if tokenizer.stop_tokens().contains(&next) {
            stopped = true;
            break;
        }
        tokens.push(next);
        let piece = decoder.push(tokenizer, next)?;
        if !piece.is_empty() {
            on_text(&piece);
            text.push_str(&piece);
        }
        input = Tensor::from_data(TensorData::new(vec![i64::from(next)], [1, 1]), &device);
    }
    let tail = decoder.finish();
    if !tail.is_empty() {
        on_text(&tail);
        text.push_str(&tail);
    }
    let completion_tokens = tokens.len() + usize::from(stopped);
    Ok(Completion {
        text,
        tokens,
        prompt_tokens: prompt.len(),
        completion_tokens,
        stopped,
        prefill_seconds,
        decode_seconds: start.elapsed().as_secs_f64() - prefill_seconds,
    })
}

fn backend_err(device: &burn::tensor::Device, e: impl std::fmt::Debug) -> InferenceError {
    InferenceError::Backend {
        backend: format!("{device:?}"),
        why: format!("{e:?}"),
    }
}
