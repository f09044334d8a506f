//! The text side of a real model: a byte-level BPE tokenizer and the chat template, both read from the
//! `tokenizer.*` metadata of a GGUF file.
//!
//! * Encoding uses Hugging Face's `tokenizers` crate: a BPE model built from `tokenizer.ggml.tokens` and
//!   `tokenizer.ggml.merges`, the GPT-2 byte-level pre-tokenizer (preceded by single-digit splitting for the
//!   `smollm`, `starcoder` and similar `tokenizer.ggml.pre` values, as in the models' `tokenizer.json`), and
//!   every control or user-defined token of `tokenizer.ggml.token_type` as a special token.
//! * Decoding maps each token back to its bytes (the GPT-2 byte-to-character table inverted; special tokens
//!   are their own text), so [`Tokenizer::decode`] round-trips any UTF-8 text and [`IncrementalDecoder`]
//!   emits text while streaming without ever splitting a UTF-8 character.
//! * [`Tokenizer::render_chat`] renders `tokenizer.chat_template` (Jinja) with `minijinja`.

use std::collections::HashMap;

use minijinja::{Environment, context};
use serde::{Deserialize, Serialize};
use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::{AddedToken, PreTokenizerWrapper};

use super::InferenceError;
use super::gguf::{GgufFile, MetaValue};

/// One chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The text.
    pub content: String,
}

/// A byte-level BPE tokenizer with its special tokens and chat template.
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    bytes: Vec<Vec<u8>>,
    special: Vec<bool>,
    /// The text of every special token, longest first.
    special_texts: Vec<String>,
    stop: Vec<u32>,
    bos: Option<u32>,
    chat_template: Option<String>,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("vocab_size", &self.bytes.len())
            .field("stop", &self.stop)
            .field("chat_template", &self.chat_template.is_some())
            .finish_non_exhaustive()
    }
}

fn tok_err(field: &str, why: impl std::fmt::Display) -> InferenceError {
    InferenceError::Tokenizer {
        field: field.to_owned(),
        why: why.to_string(),
    }
}

/// GPT-2's byte-to-character table: printable bytes map to themselves, the rest to U+0100 onwards.
fn byte_to_char() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut next = 256u32;
    for b in 0..=255u8 {
        let printable = matches!(b, b'!'..=b'~' | 0xa1..=0xac | 0xae..=0xff);
        table[b as usize] = if printable {
            char::from(b)
        } else {
            let c = char::from_u32(next).expect("U+0100..U+0143 are chars");
            next += 1;
            c
        };
    }
    table
}

impl Tokenizer {
    /// Builds the tokenizer of a GGUF file (`tokenizer.ggml.model` must be `gpt2`).
    ///
    /// # Errors
    /// [`InferenceError::Gguf`] for missing or mistyped keys, [`InferenceError::Tokenizer`] naming the field
    /// for an unsupported model, a malformed merge or a token id out of range.
    pub fn from_gguf(file: &GgufFile<'_>) -> Result<Self, InferenceError> {
        let model = file.string("tokenizer.ggml.model")?;
        if model != "gpt2" {
            return Err(tok_err(
                "tokenizer.ggml.model",
                format!("{model:?} is not supported (only byte-level BPE, \"gpt2\")"),
            ));
        }
        let tokens = file.strings("tokenizer.ggml.tokens")?;
        let n = tokens.len();
        if n == 0 || n > 1 << 24 {
            return Err(tok_err("tokenizer.ggml.tokens", format!("lists {n} tokens")));
        }
        let types: Vec<i64> = match file.metadata.get("tokenizer.ggml.token_type") {
            None => vec![1; n],
            Some(_) => file
                .array("tokenizer.ggml.token_type")?
                .iter()
                .map(|v| match v {
                    MetaValue::Int(i) => Ok(*i),
                    MetaValue::Uint(u) => Ok(*u as i64),
                    _ => Err(tok_err("tokenizer.ggml.token_type", "holds a non-integer")),
                })
                .collect::<Result<_, _>>()?,
        };
        if types.len() != n {
            return Err(tok_err(
                "tokenizer.ggml.token_type",
                format!("has {} entries for {n} tokens", types.len()),
            ));
        }
        let merges = file
            .strings("tokenizer.ggml.merges")?
            .into_iter()
            .enumerate()
            .map(|(i, m)| {
                m.split_once(' ')
                    .map(|(a, b)| (a.to_owned(), b.to_owned()))
                    .ok_or_else(|| tok_err("tokenizer.ggml.merges", format!("entry {i} {m:?} has no space")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        // Control (3) and user-defined (4) tokens are matched whole, before BPE.
        let special: Vec<bool> = types.iter().map(|&t| t == 3 || t == 4).collect();
        let vocab: Vocab = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| ((*t).to_owned(), i as u32))
            .collect();
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .build()
            .map_err(|e| tok_err("tokenizer.ggml.merges", e))?;
        let mut inner = tokenizers::Tokenizer::new(bpe);
        let byte_level = ByteLevel::new(false, true, true);
        let pre = file.string("tokenizer.ggml.pre").unwrap_or("default");
        let digits_first = matches!(
            pre,
            "smollm" | "starcoder" | "refact" | "command-r" | "codeshell" | "exaone" | "minerva-7b"
        );
        if digits_first {
            let seq = Sequence::new(vec![
                PreTokenizerWrapper::Digits(Digits::new(true)),
                PreTokenizerWrapper::ByteLevel(byte_level),
            ]);
            inner.with_pre_tokenizer(Some(seq));
        } else {
            inner.with_pre_tokenizer(Some(byte_level));
        }
        let added: Vec<AddedToken> = tokens
            .iter()
            .zip(&special)
            .filter(|(_, s)| **s)
            .map(|(t, _)| AddedToken::from((*t).to_owned(), true))
            .collect();
        inner.add_special_tokens(&added);

        let inverse: HashMap<char, u8> = byte_to_char()
            .iter()
            .enumerate()
            .map(|(b, &c)| (c, b as u8))
            .collect();
        let bytes = tokens
            .iter()
            .zip(&special)
            .map(|(t, &s)| {
                if s {
                    return t.as_bytes().to_vec();
                }
                t.chars()
                    .map(|c| inverse.get(&c).copied())
                    .collect::<Option<Vec<u8>>>()
                    .unwrap_or_else(|| t.as_bytes().to_vec())
            })
            .collect();
        let id = |key: &str| -> Result<Option<u32>, InferenceError> {
            if !file.metadata.contains_key(key) {
                return Ok(None);
            }
            let v = file.uint(key)?;
            if v >= n as u64 {
                return Err(tok_err(key, format!("{v} is not below the {n} tokens")));
            }
            Ok(Some(v as u32))
        };
        let mut stop: Vec<u32> = id("tokenizer.ggml.eos_token_id")?.into_iter().collect();
        for name in ["<|im_end|>", "<|endoftext|>", "<|eot_id|>"] {
            if let Some(i) = tokens.iter().position(|t| *t == name)
                && special[i]
                && !stop.contains(&(i as u32))
            {
                stop.push(i as u32);
            }
        }
        let chat_template = file.string("tokenizer.chat_template").ok().map(str::to_owned);
        let mut special_texts: Vec<String> = tokens
            .iter()
            .zip(&special)
            .filter(|(t, s)| **s && !t.is_empty())
            .map(|(t, _)| (*t).to_owned())
            .collect();
        special_texts.sort_by_key(|t| std::cmp::Reverse(t.len()));
        Ok(Self {
            inner,
            bytes,
            special,
            special_texts,
            stop,
            bos: id("tokenizer.ggml.bos_token_id")?,
            chat_template,
        })
    }

    /// Number of token ids.
    pub fn vocab_size(&self) -> usize {
        self.bytes.len()
    }

    /// Ids that end a reply (EOS, `<|im_end|>`, `<|endoftext|>` where present).
    pub fn stop_tokens(&self) -> &[u32] {
        &self.stop
    }

    /// Whether `id` is a control or user-defined token.
    pub fn is_special(&self, id: u32) -> bool {
        self.special.get(id as usize).copied().unwrap_or(false)
    }

    /// Token ids of `text`; special-token text (`<|im_start|>`, …) becomes its special token.
    ///
    /// # Errors
    /// [`InferenceError::Tokenizer`] if the tokenizer fails (it does not for valid UTF-8).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, InferenceError> {
        let enc = self
            .inner
            .encode_fast(text, false)
            .map_err(|e| tok_err("text", e))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Token ids of a prompt given as bytes, refusing invalid UTF-8 with the offset of the first bad byte.
    ///
    /// # Errors
    /// [`InferenceError::Tokenizer`] (field `prompt`) for invalid UTF-8, then those of [`encode`](Self::encode).
    pub fn encode_bytes(&self, bytes: &[u8]) -> Result<Vec<u32>, InferenceError> {
        let text = std::str::from_utf8(bytes).map_err(|e| {
            tok_err(
                "prompt",
                format!("is not UTF-8: bad byte at offset {}", e.valid_up_to()),
            )
        })?;
        self.encode(text)
    }

    /// The bytes of `ids`, concatenated.
    ///
    /// # Errors
    /// [`InferenceError::OutOfVocab`] for an id outside the vocabulary.
    pub fn decode_bytes(&self, ids: &[u32]) -> Result<Vec<u8>, InferenceError> {
        let mut out = Vec::new();
        for (i, &id) in ids.iter().enumerate() {
            let b = self
                .bytes
                .get(id as usize)
                .ok_or_else(|| InferenceError::OutOfVocab {
                    field: format!("tokens[{i}]"),
                    token: id,
                    vocab_size: self.bytes.len(),
                })?;
            out.extend(b);
        }
        Ok(out)
    }

    /// The text of `ids` (invalid UTF-8, possible only from a token sequence no tokenizer produces, becomes
    /// U+FFFD).
    ///
    /// # Errors
    /// [`InferenceError::OutOfVocab`] for an id outside the vocabulary.
    pub fn decode(&self, ids: &[u32]) -> Result<String, InferenceError> {
        Ok(String::from_utf8_lossy(&self.decode_bytes(ids)?).into_owned())
    }

    /// The prompt ids of a chat: `messages` rendered with the chat template (and the assistant's header
    /// when `add_generation_prompt`), then encoded. The one way a chat becomes tokens, for the miner that
    /// decodes it and the validator that checks it alike.
    ///
    /// A message whose text contains a special token's text (`<|im_start|>`, `<|im_end|>`, …) is refused,
    /// as OpenAI's tokenizer refuses disallowed special tokens: the rendered prompt is encoded with special
    /// tokens recognized (as reference chat tokenization does), so such text would become a control
    /// token and let a user forge the chat's structure (a fake `system` turn).
    ///
    /// # Errors
    /// [`InferenceError::Tokenizer`] naming `messages[i].content` for such a message, then those of
    /// [`render_chat`](Self::render_chat) and [`encode`](Self::encode).
    pub fn encode_chat(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<Vec<u32>, InferenceError> {
        for (i, m) in messages.iter().enumerate() {
            for text in [&m.content, &m.role] {
                if let Some(token) = self.special_texts.iter().find(|t| text.contains(t.as_str())) {
                    return Err(tok_err(
                        &format!("messages[{i}]"),
                        format!("contains the control token `{token}`, which message text may not hold"),
                    ));
                }
            }
        }
        let text = self.render_chat(messages, add_generation_prompt)?;
        self.encode(&text)
    }

    /// Renders the file's chat template over `messages`, ending with the assistant's header when
    /// `add_generation_prompt`.
    ///
    /// # Errors
    /// [`InferenceError::Tokenizer`] (field `tokenizer.chat_template`) when the file has none or it fails
    /// to render.
    pub fn render_chat(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String, InferenceError> {
        let field = "tokenizer.chat_template";
        let template = self
            .chat_template
            .as_deref()
            .ok_or_else(|| tok_err(field, "is missing from the model file"))?;
        let mut env = Environment::new();
        env.add_function(
            "raise_exception",
            |msg: String| -> Result<String, minijinja::Error> {
                Err(minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, msg))
            },
        );
        env.add_template("chat", template)
            .map_err(|e| tok_err(field, e))?;
        let tmpl = env.get_template("chat").map_err(|e| tok_err(field, e))?;
        let token_text = |id: Option<u32>| {
            id.map(|i| String::from_utf8_lossy(&self.bytes[i as usize]).into_owned())
                .unwrap_or_default()
        };
        tmpl.render(context! {
            messages => messages,
            add_generation_prompt => add_generation_prompt,
            bos_token => token_text(self.bos),
            eos_token => token_text(self.stop.first().copied()),
        })
        .map_err(|e| tok_err(field, e))
    }
}

/// Streams text out of token ids, holding back the bytes of an unfinished UTF-8 character.
#[derive(Debug, Default)]
pub struct IncrementalDecoder {
    pending: Vec<u8>,
}

impl IncrementalDecoder {
    /// An empty decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one token and returns the text it completes (possibly empty). Bytes that can never form a
    /// character become U+FFFD; an unfinished character waits for the next token.
    ///
    /// # Errors
    /// [`InferenceError::OutOfVocab`] for an id outside the vocabulary.
    pub fn push(&mut self, tokenizer: &Tokenizer, id: u32) -> Result<String, InferenceError> {
        self.pending.extend(tokenizer.decode_bytes(&[id])?);
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(s) => {
                    out.push_str(s);
                    self.pending.clear();
                    break;
                }
                Err(e) => {
                    let good = e.valid_up_to();
                    out.push_str(std::str::from_utf8(&self.pending[..good]).expect("checked prefix"));
                    match e.error_len() {
                        None => {
                            self.pending.drain(..good);
                            break;
                        }
                        Some(bad) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            self.pending.drain(..good + bad);
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// The text held back (an unfinished character, as U+FFFD), emptying the decoder.
    pub fn finish(&mut self) -> String {
        let s = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_table_is_a_bijection_matching_gpt2() {
        let t = byte_to_char();
        let set: std::collections::HashSet<char> = t.iter().copied().collect();
        assert_eq!(set.len(), 256);
        assert_eq!(t[b' ' as usize], 'Ġ');
        assert_eq!(t[b'\n' as usize], 'Ċ');
        assert_eq!(t[b'A' as usize], 'A');
    }
}
