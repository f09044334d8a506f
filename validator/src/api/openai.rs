//! The OpenAI-compatible wire types the validator's API speaks to its customers (`POST /v1/chat/completions`,
//! `POST /v1/completions`, `GET /v1/models`, server-sent event chunks, the error shape).
//!
//! They live here, not in `bench_tasks::wire` (the miner↔validator protocol): only the validator speaks
//! them, and their shape is OpenAI's, not ours. Requests are strict at the top level (an unknown field is
//! a 400 naming it, so a typo such as `max_token` is not silently ignored) but accept the OpenAI fields
//! that common clients send with their neutral values (`n: 1`, zero penalties, `user`).
//!
//! The workspace builds `serde_json` with `arbitrary_precision`, under which numbers inside untagged or
//! flattened types fail to parse: the untagged types here ([`Stop`], [`Content`], [`Prompt`]) hold
//! strings only.

use serde::{Deserialize, Serialize};

use bench_tasks::wire::{ChatMessage, FinishReason};

/// `POST`: chat completions.
pub const CHAT_COMPLETIONS_PATH: &str = "/v1/chat/completions";
/// `POST`: text completions.
pub const COMPLETIONS_PATH: &str = "/v1/completions";
/// `GET`: the models that serving miners hold.
pub const MODELS_PATH: &str = "/v1/models";
/// Content type of a streamed answer.
pub const SSE_CONTENT_TYPE: &str = "text/event-stream";
/// The last line of a streamed answer (OpenAI's terminator).
pub const SSE_DONE: &str = "data: [DONE]\n\n";

/// `stop`: one string or a list of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Stop {
    /// One stop string.
    One(String),
    /// Several (OpenAI allows up to 4).
    Many(Vec<String>),
}

impl Stop {
    /// The stop strings, as a list.
    pub fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(s) => vec![s],
            Self::Many(v) => v,
        }
    }
}

/// `stream_options`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamOptions {
    /// Send a last chunk with `usage` (and no choices) before `[DONE]`.
    #[serde(default)]
    pub include_usage: bool,
}

/// One part of a message's content in the array form (`[{"type":"text","text":"…"}]`); only text parts
/// are served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContentPart {
    /// `text`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The text.
    #[serde(default)]
    pub text: Option<String>,
}

/// A message's content: a string or an array of text parts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Content {
    /// Plain text.
    Text(String),
    /// Parts, concatenated.
    Parts(Vec<ContentPart>),
}

/// One chat message as OpenAI clients send it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Message {
    /// `system`, `developer` (read as `system`), `user` or `assistant`.
    pub role: String,
    /// The text.
    pub content: Content,
    /// A participant name (accepted, not used).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Body of `POST /v1/chat/completions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatCompletionRequest {
    /// The model: a name listed by `GET /v1/models` or a model file's sha256.
    pub model: String,
    /// The conversation.
    pub messages: Vec<Message>,
    /// Most tokens to generate (deprecated by OpenAI in favour of `max_completion_tokens`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    /// Most tokens to generate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u64>,
    /// Sampling temperature in `[0, 2]` (default 1; 0 is greedy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// Nucleus mass in `(0, 1]` (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    /// Sampler seed; the validator picks one (and records it) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Stop strings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Stop>,
    /// Stream server-sent events.
    #[serde(default)]
    pub stream: bool,
    /// Options of a streamed answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
    /// Choices to generate: only 1 is served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
    /// Must be 0 when given (not served).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f32>,
    /// Must be 0 when given (not served).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f32>,
    /// Must be false when given (not served).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<bool>,
    /// An end-user id (accepted, not used).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// `prompt` of a text completion: a string or a list holding one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Prompt {
    /// The prompt.
    Text(String),
    /// A batch of prompts; only a batch of one is served.
    Batch(Vec<String>),
}

/// Body of `POST /v1/completions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompletionRequest {
    /// The model.
    pub model: String,
    /// The text to continue.
    pub prompt: Prompt,
    /// Most tokens to generate (OpenAI's default is 16).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    /// Sampling temperature in `[0, 2]` (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// Nucleus mass in `(0, 1]` (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    /// Sampler seed; the validator picks one when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Stop strings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Stop>,
    /// Stream server-sent events.
    #[serde(default)]
    pub stream: bool,
    /// Options of a streamed answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
    /// Only 1 is served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
    /// Must be false when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub echo: Option<bool>,
    /// Must be 0 when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f32>,
    /// Must be 0 when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f32>,
    /// An end-user id (accepted, not used).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// Token counts of one answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens (after the chat template).
    pub prompt_tokens: u64,
    /// Generated tokens.
    pub completion_tokens: u64,
    /// Their sum.
    pub total_tokens: u64,
}

impl Usage {
    /// Counts with their total.
    pub const fn new(prompt_tokens: u64, completion_tokens: u64) -> Self {
        Self {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens + completion_tokens,
        }
    }
}

/// Who served an answer and how to replay it: an extension field OpenAI clients ignore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Served {
    /// The miner's uid.
    pub miner_uid: u16,
    /// The miner's hotkey (ss58).
    pub miner_hotkey: String,
    /// The sampler seed used (the client's or the one the validator chose).
    pub seed: u64,
    /// sha256 of the model file, as the miner's receipt states it.
    pub model_sha256: String,
}

/// An assistant message in an answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnswerMessage {
    /// `assistant`.
    pub role: String,
    /// The generated text.
    pub content: String,
}

/// One choice of a chat completion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatChoice {
    /// Always 0.
    pub index: u32,
    /// The answer.
    pub message: AnswerMessage,
    /// `stop` or `length`.
    pub finish_reason: FinishReason,
    /// Always null (not served).
    pub logprobs: Option<()>,
}

/// Body of a non-streamed chat completion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatCompletion {
    /// `chatcmpl-…`.
    pub id: String,
    /// `chat.completion`.
    pub object: String,
    /// Unix seconds.
    pub created: u64,
    /// The model as asked for.
    pub model: String,
    /// One choice.
    pub choices: Vec<ChatChoice>,
    /// Token counts.
    pub usage: Usage,
    /// Who served it (extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tensorproof: Option<Served>,
}

/// The delta of a streamed chat chunk.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delta {
    /// `assistant`, in the first chunk only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// New text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

/// One choice of a streamed chat chunk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkChoice {
    /// Always 0.
    pub index: u32,
    /// What is new.
    pub delta: Delta,
    /// Set in the last content chunk.
    pub finish_reason: Option<FinishReason>,
}

/// One server-sent event of a streamed chat completion (`chat.completion.chunk`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatCompletionChunk {
    /// The same id in every chunk of one answer.
    pub id: String,
    /// `chat.completion.chunk`.
    pub object: String,
    /// Unix seconds.
    pub created: u64,
    /// The model as asked for.
    pub model: String,
    /// One choice, or none in the usage chunk.
    pub choices: Vec<ChunkChoice>,
    /// Only in the usage chunk (`stream_options.include_usage`); null otherwise when asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// Who served it (extension; in the last chunk).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tensorproof: Option<Served>,
}

/// One choice of a text completion (also of its streamed chunks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompletionChoice {
    /// The generated text (in a chunk: what is new).
    pub text: String,
    /// Always 0.
    pub index: u32,
    /// Always null (not served).
    pub logprobs: Option<()>,
    /// `stop` or `length` (null in chunks before the last).
    pub finish_reason: Option<FinishReason>,
}

/// Body of a text completion, and of each of its streamed chunks (`text_completion`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Completion {
    /// `cmpl-…`.
    pub id: String,
    /// `text_completion`.
    pub object: String,
    /// Unix seconds.
    pub created: u64,
    /// The model as asked for.
    pub model: String,
    /// One choice (none in a usage chunk).
    pub choices: Vec<CompletionChoice>,
    /// Token counts (in a stream: only in the usage chunk).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// Who served it (extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tensorproof: Option<Served>,
}

/// One entry of `GET /v1/models`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Model {
    /// The model's name (requests may also name it by its sha256).
    pub id: String,
    /// `model`.
    pub object: String,
    /// Unix seconds (0: unknown).
    pub created: u64,
    /// `tensorproof`.
    pub owned_by: String,
}

/// Body of `GET /v1/models`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelList {
    /// `list`.
    pub object: String,
    /// The models.
    pub data: Vec<Model>,
}

/// The error object of OpenAI's error shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorObject {
    /// What went wrong, in a sentence.
    pub message: String,
    /// `invalid_request_error`, `authentication_error`, `rate_limit_error`, `server_error`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// The request field at fault, when one is.
    pub param: Option<String>,
    /// A stable code (`model_not_found`, `invalid_api_key`, `rate_limit_exceeded`, …).
    pub code: Option<String>,
}

/// Body of every error answer: `{"error":{"message","type","param","code"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    /// The error.
    pub error: ErrorObject,
}

/// An API error: its HTTP status and OpenAI-shaped body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// The body.
    pub body: ErrorResponse,
}

impl ApiError {
    fn new(status: u16, kind: &str, code: Option<&str>, param: Option<&str>, message: String) -> Self {
        Self {
            status,
            body: ErrorResponse {
                error: ErrorObject {
                    message,
                    kind: kind.to_owned(),
                    param: param.map(str::to_owned),
                    code: code.map(str::to_owned),
                },
            },
        }
    }

    /// 400 for a request that cannot be served as written.
    pub fn invalid(param: Option<&str>, message: impl Into<String>) -> Self {
        Self::new(400, "invalid_request_error", None, param, message.into())
    }

    /// 400 with a specific code.
    pub fn invalid_code(param: Option<&str>, code: &str, message: impl Into<String>) -> Self {
        Self::new(400, "invalid_request_error", Some(code), param, message.into())
    }

    /// 401: no key, an unknown key or a revoked one.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(
            401,
            "authentication_error",
            Some("invalid_api_key"),
            None,
            message.into(),
        )
    }

    /// 404 `model_not_found`.
    pub fn model_not_found(model: &str) -> Self {
        Self::new(
            404,
            "invalid_request_error",
            Some("model_not_found"),
            Some("model"),
            format!(
                "The model `{model}` does not exist or no serving miner holds it; GET /v1/models lists those that do."
            ),
        )
    }

    /// 404 for a route that does not exist.
    pub fn not_found(path: &str) -> Self {
        Self::new(
            404,
            "invalid_request_error",
            Some("not_found"),
            None,
            format!("no route {path}"),
        )
    }

    /// 429: the key's rate limit or token quota.
    pub fn rate_limited(code: &str, message: impl Into<String>) -> Self {
        Self::new(429, "rate_limit_error", Some(code), None, message.into())
    }

    /// 503: no miner can serve the request now.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(
            503,
            "server_error",
            Some("no_miner_available"),
            None,
            message.into(),
        )
    }

    /// 500: the validator's own fault (its database).
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "server_error", Some("internal_error"), None, message.into())
    }

    /// 502: the miner's answer was unusable and no other miner could take the request.
    pub fn bad_gateway(message: impl Into<String>) -> Self {
        Self::new(502, "server_error", Some("miner_error"), None, message.into())
    }

    /// The error's code, or its type when it has none.
    pub fn code(&self) -> &str {
        self.body
            .error
            .code
            .as_deref()
            .unwrap_or(self.body.error.kind.as_str())
    }
}

/// What a parsed request asks for, whichever route it came by.
#[derive(Debug, Clone, PartialEq)]
pub struct Asked {
    /// The model as named.
    pub model: String,
    /// Chat messages, or a raw prompt.
    pub input: Input,
    /// Most tokens (absent: the model's default).
    pub max_tokens: Option<u64>,
    /// Temperature (0: greedy).
    pub temperature: f32,
    /// Nucleus mass.
    pub top_p: f32,
    /// The client's seed, if it gave one.
    pub seed: Option<u64>,
    /// Stop strings.
    pub stop: Vec<String>,
    /// Stream the answer.
    pub stream: bool,
    /// Send a usage chunk at the end of the stream.
    pub include_usage: bool,
}

/// What to continue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A conversation, rendered with the model's chat template by the miner.
    Chat(Vec<ChatMessage>),
    /// Text to continue (sent as a single user turn would change its meaning, so it is a `Prompt`).
    Text(String),
}

/// Most stop strings accepted (OpenAI's limit).
pub const MAX_STOP: usize = 4;
/// Longest stop string, in bytes.
pub const MAX_STOP_BYTES: usize = 256;

fn check_common(
    temperature: Option<f32>,
    top_p: Option<f32>,
    n: Option<u32>,
    penalties: [Option<f32>; 2],
    stop: Option<Stop>,
) -> Result<(f32, f32, Vec<String>), ApiError> {
    let temperature = temperature.unwrap_or(1.0);
    if !(0.0..=2.0).contains(&temperature) {
        return Err(ApiError::invalid(
            Some("temperature"),
            "temperature must be between 0 and 2",
        ));
    }
    let top_p = top_p.unwrap_or(1.0);
    if !(top_p > 0.0 && top_p <= 1.0) {
        return Err(ApiError::invalid(Some("top_p"), "top_p must be in (0, 1]"));
    }
    if n.is_some_and(|n| n != 1) {
        return Err(ApiError::invalid(Some("n"), "only n = 1 is served"));
    }
    for (name, p) in ["presence_penalty", "frequency_penalty"].iter().zip(penalties) {
        if p.is_some_and(|p| p != 0.0) {
            return Err(ApiError::invalid(
                Some(name),
                format!("{name} is not served; leave it out or 0"),
            ));
        }
    }
    let stop = stop.map(Stop::into_vec).unwrap_or_default();
    if stop.len() > MAX_STOP || stop.iter().any(|s| s.is_empty() || s.len() > MAX_STOP_BYTES) {
        return Err(ApiError::invalid(
            Some("stop"),
            format!("stop takes at most {MAX_STOP} non-empty strings of at most {MAX_STOP_BYTES} bytes"),
        ));
    }
    Ok((temperature, top_p, stop))
}

fn check_model(model: &str) -> Result<(), ApiError> {
    if model.is_empty() || model.len() > 128 {
        return Err(ApiError::invalid(
            Some("model"),
            "model must name a model (1 to 128 bytes)",
        ));
    }
    Ok(())
}

impl ChatCompletionRequest {
    /// What the request asks for, after the checks OpenAI makes.
    ///
    /// # Errors
    /// A 400 [`ApiError`] naming the field at fault.
    pub fn asked(self) -> Result<Asked, ApiError> {
        check_model(&self.model)?;
        if self.messages.is_empty() {
            return Err(ApiError::invalid(Some("messages"), "messages must not be empty"));
        }
        if self.logprobs == Some(true) {
            return Err(ApiError::invalid(Some("logprobs"), "logprobs are not served"));
        }
        if let (Some(a), Some(b)) = (self.max_tokens, self.max_completion_tokens)
            && a != b
        {
            return Err(ApiError::invalid(
                Some("max_completion_tokens"),
                "max_tokens and max_completion_tokens disagree; give one",
            ));
        }
        let max_tokens = self.max_completion_tokens.or(self.max_tokens);
        if max_tokens == Some(0) {
            return Err(ApiError::invalid(
                Some("max_tokens"),
                "max_tokens must be at least 1",
            ));
        }
        let (temperature, top_p, stop) = check_common(
            self.temperature,
            self.top_p,
            self.n,
            [self.presence_penalty, self.frequency_penalty],
            self.stop,
        )?;
        let mut messages = Vec::with_capacity(self.messages.len());
        for (i, m) in self.messages.into_iter().enumerate() {
            let role = match m.role.as_str() {
                "system" | "developer" => "system",
                "user" => "user",
                "assistant" => "assistant",
                other => {
                    return Err(ApiError::invalid(
                        Some(&format!("messages[{i}].role")),
                        format!("role {other:?} is not served (system, user, assistant)"),
                    ));
                }
            };
            let content = match m.content {
                Content::Text(t) => t,
                Content::Parts(parts) => {
                    let mut text = String::new();
                    for p in parts {
                        match (p.kind.as_str(), p.text) {
                            ("text", Some(t)) => text.push_str(&t),
                            _ => {
                                return Err(ApiError::invalid(
                                    Some(&format!("messages[{i}].content")),
                                    "only text content parts are served",
                                ));
                            }
                        }
                    }
                    text
                }
            };
            messages.push(ChatMessage {
                role: role.to_owned(),
                content,
            });
        }
        Ok(Asked {
            model: self.model,
            input: Input::Chat(messages),
            max_tokens,
            temperature,
            top_p,
            seed: self.seed,
            stop,
            stream: self.stream,
            include_usage: self.stream_options.is_some_and(|o| o.include_usage),
        })
    }
}

/// OpenAI's default `max_tokens` for text completions.
pub const COMPLETIONS_DEFAULT_MAX_TOKENS: u64 = 16;

impl CompletionRequest {
    /// What the request asks for, after the checks OpenAI makes.
    ///
    /// # Errors
    /// A 400 [`ApiError`] naming the field at fault.
    pub fn asked(self) -> Result<Asked, ApiError> {
        check_model(&self.model)?;
        if self.echo == Some(true) {
            return Err(ApiError::invalid(Some("echo"), "echo is not served"));
        }
        let prompt = match self.prompt {
            Prompt::Text(t) => t,
            Prompt::Batch(mut v) if v.len() == 1 => v.remove(0),
            Prompt::Batch(_) => {
                return Err(ApiError::invalid(
                    Some("prompt"),
                    "only one prompt per request is served",
                ));
            }
        };
        if prompt.is_empty() {
            return Err(ApiError::invalid(Some("prompt"), "prompt must not be empty"));
        }
        let max_tokens = self.max_tokens.unwrap_or(COMPLETIONS_DEFAULT_MAX_TOKENS);
        if max_tokens == 0 {
            return Err(ApiError::invalid(
                Some("max_tokens"),
                "max_tokens must be at least 1",
            ));
        }
        let (temperature, top_p, stop) = check_common(
            self.temperature,
            self.top_p,
            self.n,
            [self.presence_penalty, self.frequency_penalty],
            self.stop,
        )?;
        Ok(Asked {
            model: self.model,
            input: Input::Text(prompt),
            max_tokens: Some(max_tokens),
            temperature,
            top_p,
            seed: self.seed,
            stop,
            stream: self.stream,
            include_usage: self.stream_options.is_some_and(|o| o.include_usage),
        })
    }
}

/// Reads a JSON body into `T`, mapping serde's complaint to a 400 that names the field when it can.
///
/// # Errors
/// A 400 [`ApiError`].
pub fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        let msg = e.to_string();
        // serde's "unknown field `x`, expected one of …"
        let param = msg
            .strip_prefix("unknown field `")
            .and_then(|rest| rest.split('`').next())
            .map(str::to_owned);
        ApiError::invalid(param.as_deref(), format!("the request body is not valid: {msg}"))
    })
}

/// One server-sent event carrying `value` as JSON.
pub fn sse_data<T: Serialize>(value: &T) -> String {
    format!(
        "data: {}\n\n",
        serde_json::to_string(value).unwrap_or_else(|_| "{}".to_owned())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chat_request_round_trips_and_reads_as_openai_means_it() {
        let body = r#"{"model":"smollm2","messages":[{"role":"system","content":"be brief"},
            {"role":"user","content":[{"type":"text","text":"hi"},{"type":"text","text":"!"}]}],
            "max_completion_tokens":8,"temperature":0.5,"top_p":0.9,"seed":7,"stop":"\n",
            "stream":true,"stream_options":{"include_usage":true},"n":1,"user":"u1"}"#;
        let r: ChatCompletionRequest = parse(body.as_bytes()).unwrap();
        let back: ChatCompletionRequest = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
        let a = r.asked().unwrap();
        assert_eq!(a.max_tokens, Some(8));
        assert_eq!((a.temperature, a.top_p, a.seed), (0.5, 0.9, Some(7)));
        assert_eq!(a.stop, vec!["\n".to_owned()]);
        assert!(a.stream && a.include_usage);
        let Input::Chat(m) = a.input else {
            panic!("not chat")
        };
        assert_eq!((m[0].role.as_str(), m[1].content.as_str()), ("system", "hi!"));
        // Defaults: OpenAI's temperature 1, no seed, no stream.
        let r: ChatCompletionRequest =
            parse(br#"{"model":"m","messages":[{"role":"user","content":"x"}],"stop":["a","b"]}"#).unwrap();
        let a = r.asked().unwrap();
        assert_eq!(
            (a.temperature, a.seed, a.stream, a.max_tokens),
            (1.0, None, false, None)
        );
        assert_eq!(a.stop.len(), 2);
    }

    #[test]
    fn bad_requests_are_400_naming_the_field() {
        let err =
            parse::<ChatCompletionRequest>(br#"{"model":"m","messages":[],"max_token":3}"#).unwrap_err();
        assert_eq!(
            (err.status, err.body.error.param.as_deref()),
            (400, Some("max_token"))
        );
        assert_eq!(
            parse::<ChatCompletionRequest>(b"{not json").unwrap_err().status,
            400
        );
        let asked = |body: &str| {
            parse::<ChatCompletionRequest>(body.as_bytes()).and_then(ChatCompletionRequest::asked)
        };
        for (body, param) in [
            (r#"{"model":"m","messages":[]}"#, "messages"),
            (
                r#"{"model":"m","messages":[{"role":"user","content":"x"}],"n":2}"#,
                "n",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":3}"#,
                "temperature",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user","content":"x"}],"top_p":0}"#,
                "top_p",
            ),
            (
                r#"{"model":"m","messages":[{"role":"tool","content":"x"}]}"#,
                "messages[0].role",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":0}"#,
                "max_tokens",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user","content":"x"}],"stop":["a","b","c","d","e"]}"#,
                "stop",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user","content":"x"}],"presence_penalty":1}"#,
                "presence_penalty",
            ),
            (
                r#"{"model":"","messages":[{"role":"user","content":"x"}]}"#,
                "model",
            ),
        ] {
            let err = asked(body).unwrap_err();
            assert_eq!(
                (err.status, err.body.error.param.as_deref()),
                (400, Some(param)),
                "{body}"
            );
        }
    }

    #[test]
    fn completions_take_one_prompt_and_default_to_16_tokens() {
        let r: CompletionRequest = parse(br#"{"model":"m","prompt":["once upon"]}"#).unwrap();
        let a = r.asked().unwrap();
        assert_eq!(a.input, Input::Text("once upon".into()));
        assert_eq!(a.max_tokens, Some(16));
        let r: CompletionRequest = parse(br#"{"model":"m","prompt":["a","b"]}"#).unwrap();
        assert_eq!(r.asked().unwrap_err().body.error.param.as_deref(), Some("prompt"));
    }

    #[test]
    fn answers_and_errors_have_openai_shapes() {
        let chunk = ChatCompletionChunk {
            id: "chatcmpl-1".into(),
            object: "chat.completion.chunk".into(),
            created: 1,
            model: "m".into(),
            choices: vec![ChunkChoice {
                index: 0,
                delta: Delta {
                    role: None,
                    content: Some("hi".into()),
                },
                finish_reason: None,
            }],
            usage: None,
            tensorproof: None,
        };
        assert_eq!(
            sse_data(&chunk),
            "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\
             \"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"},\"finish_reason\":null}]}\n\n"
        );
        let e = ApiError::model_not_found("gpt-9");
        let v = serde_json::to_value(&e.body).unwrap();
        assert_eq!(v["error"]["code"], "model_not_found");
        assert_eq!(v["error"]["type"], "invalid_request_error");
        assert_eq!(v["error"]["param"], "model");
        assert_eq!(e.status, 404);
        let done = ChatCompletion {
            id: "x".into(),
            object: "chat.completion".into(),
            created: 1,
            model: "m".into(),
            choices: vec![ChatChoice {
                index: 0,
                message: AnswerMessage {
                    role: "assistant".into(),
                    content: "ok".into(),
                },
                finish_reason: FinishReason::Length,
                logprobs: None,
            }],
            usage: Usage::new(3, 1),
            tensorproof: None,
        };
        let v = serde_json::to_value(&done).unwrap();
        assert_eq!(v["choices"][0]["finish_reason"], "length");
        assert_eq!(v["usage"]["total_tokens"], 4);
        assert!(v["choices"][0]["logprobs"].is_null());
        let back: ChatCompletion = serde_json::from_value(v).unwrap();
        assert_eq!(back, done);
    }
}
