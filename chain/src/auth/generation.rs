//! Generation receipts: the miner's signature over one generation it served, so that whoever paid for it
//! (and anyone holding the rows later) can prove who produced which tokens for which request.
//!
//! An HTTP [`Receipt`](super::receipt::Receipt) commits to a response body, which a streamed answer only
//! has once it is over; a generation receipt commits to what the body means instead, and travels in the
//! stream's final event. Signed payload, UTF-8, ten lines joined by `\n` (no trailing newline):
//! ```text
//! tensorproof-generation/1
//! <requester ss58>          (the hotkey that signed the request)
//! <responder ss58>          (the miner's hotkey, which signs this receipt)
//! <request id>              (the btauth nonce or Epistula uuid, as sent)
//! <sha256 hex of the request body bytes as received>
//! <sha256 hex of the model file>
//! <sha256 hex of the generated token ids, each as 4 little-endian bytes, in order>
//! <prompt tokens>           (decimal)
//! <completion tokens>       (decimal; the number of generated ids hashed above)
//! <finish reason>           (`stop` or `length`)
//! ```
//! The request hash ties the tokens to the prompt, model and sampler seed asked for; the token hash ties the
//! receipt to one exact continuation, so changing a single token breaks it.

use super::{AuthError, parse_signature, sha256_hex};
use crate::keys::{AccountId, Keypair};

/// First line of the signed payload.
pub const VERSION_LINE: &str = "tensorproof-generation/1";

/// Longest request id a receipt may name, in bytes (as for HTTP receipts).
pub const MAX_REQUEST_ID_LEN: usize = 64;

/// What a generation receipt states, before it is signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generation<'a> {
    /// Who signed the request.
    pub requester: &'a AccountId,
    /// The request's nonce or uuid.
    pub request_id: &'a str,
    /// The request body exactly as received.
    pub request_body: &'a [u8],
    /// Lowercase hex sha256 of the model file that generated the tokens.
    pub model_sha256: &'a str,
    /// Prompt length in tokens, after the chat template.
    pub prompt_tokens: usize,
    /// The generated token ids, in order.
    pub tokens: &'a [u32],
    /// Why generation ended (`stop` or `length`).
    pub finish_reason: &'a str,
}

/// A signed statement "`responder` generated the tokens hashing to `tokens_sha256` for request `request_id`
/// from `requester`, whose body hashes to `request_sha256`".
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GenerationReceipt {
    /// Who signed the request.
    pub requester: AccountId,
    /// Who generated the tokens and signs the receipt.
    pub responder: AccountId,
    /// The request's nonce or uuid.
    pub request_id: String,
    /// Lowercase hex sha256 of the request body.
    pub request_sha256: String,
    /// Lowercase hex sha256 of the model file.
    pub model_sha256: String,
    /// [`tokens_sha256`] of the generated ids.
    pub tokens_sha256: String,
    /// Prompt length in tokens.
    pub prompt_tokens: u64,
    /// Generated tokens.
    pub completion_tokens: u64,
    /// Why generation ended (`stop` or `length`).
    pub finish_reason: String,
    /// `0x` + hex of the sr25519 signature over [`payload`](Self::payload).
    pub signature: String,
}

/// Why a generation receipt does not check out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenerationReceiptError {
    /// A field is malformed (signature encoding, an over-long request id, a line break in a field).
    #[error("the generation receipt is malformed: {0}")]
    Malformed(String),
    /// Signed by someone else than the expected miner.
    #[error("the generation receipt is signed by {got}, expected the miner {expected}")]
    WrongResponder {
        /// The miner the request went to.
        expected: AccountId,
        /// The hotkey named in the receipt.
        got: AccountId,
    },
    /// The receipt answers another request (requester, id or body differ).
    #[error("the generation receipt answers another request")]
    WrongRequest,
    /// The tokens received or their count are not the ones signed.
    #[error("the tokens received do not match the generation receipt")]
    TokensMismatch,
    /// The signature does not verify.
    #[error("the generation receipt signature does not verify for {0}")]
    BadSignature(AccountId),
}

impl From<AuthError> for GenerationReceiptError {
    fn from(e: AuthError) -> Self {
        Self::Malformed(e.to_string())
    }
}

/// Lowercase hex sha256 of `tokens`, each id as 4 little-endian bytes.
pub fn tokens_sha256(tokens: &[u32]) -> String {
    let bytes: Vec<u8> = tokens.iter().flat_map(|t| t.to_le_bytes()).collect();
    sha256_hex(&bytes)
}

impl GenerationReceipt {
    /// Signs a receipt for `generation` with the miner's hotkey.
    ///
    /// # Errors
    /// [`GenerationReceiptError::Malformed`] when the request id is over [`MAX_REQUEST_ID_LEN`] bytes or a
    /// text field holds a line break (the payload would be ambiguous).
    pub fn sign(responder: &Keypair, generation: &Generation<'_>) -> Result<Self, GenerationReceiptError> {
        let mut receipt = Self {
            requester: *generation.requester,
            responder: responder.account(),
            request_id: generation.request_id.to_owned(),
            request_sha256: sha256_hex(generation.request_body),
            model_sha256: generation.model_sha256.to_owned(),
            tokens_sha256: tokens_sha256(generation.tokens),
            prompt_tokens: generation.prompt_tokens as u64,
            completion_tokens: generation.tokens.len() as u64,
            finish_reason: generation.finish_reason.to_owned(),
            signature: String::new(),
        };
        let payload = receipt.payload()?;
        receipt.signature = format!("0x{}", hex::encode(responder.sign(&payload)));
        Ok(receipt)
    }

    /// The exact bytes the signature covers (see the module docs).
    ///
    /// # Errors
    /// [`GenerationReceiptError::Malformed`] for an over-long request id or a line break in a text field.
    pub fn payload(&self) -> Result<Vec<u8>, GenerationReceiptError> {
        if self.request_id.len() > MAX_REQUEST_ID_LEN {
            return Err(GenerationReceiptError::Malformed(format!(
                "request_id is {} bytes, at most {MAX_REQUEST_ID_LEN}",
                self.request_id.len()
            )));
        }
        for (name, value) in [
            ("request_id", &self.request_id),
            ("request_sha256", &self.request_sha256),
            ("model_sha256", &self.model_sha256),
            ("tokens_sha256", &self.tokens_sha256),
            ("finish_reason", &self.finish_reason),
        ] {
            if value.contains(['\n', '\r']) {
                return Err(GenerationReceiptError::Malformed(format!(
                    "{name} holds a line break"
                )));
            }
        }
        Ok(format!(
            "{VERSION_LINE}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}",
            self.requester.to_ss58(),
            self.responder.to_ss58(),
            self.request_id,
            self.request_sha256,
            self.model_sha256,
            self.tokens_sha256,
            self.prompt_tokens,
            self.completion_tokens,
            self.finish_reason,
        )
        .into_bytes())
    }

    /// Checks the signature alone: what a third party holding only the receipt can check.
    ///
    /// # Errors
    /// [`GenerationReceiptError::Malformed`] or [`GenerationReceiptError::BadSignature`].
    pub fn verify_signature(&self) -> Result<(), GenerationReceiptError> {
        let sig = parse_signature("signature", &self.signature)?;
        if self.responder.verify(&self.payload()?, &sig) {
            Ok(())
        } else {
            Err(GenerationReceiptError::BadSignature(self.responder))
        }
    }

    /// Full check by the requester: the expected miner signed it, for this request (requester, id and body
    /// bytes as sent), over exactly the tokens received.
    ///
    /// # Errors
    /// The first [`GenerationReceiptError`] that applies.
    pub fn verify(
        &self,
        expected_responder: &AccountId,
        requester: &AccountId,
        request_id: &str,
        request_body: &[u8],
        tokens: &[u32],
    ) -> Result<(), GenerationReceiptError> {
        if self.responder != *expected_responder {
            return Err(GenerationReceiptError::WrongResponder {
                expected: *expected_responder,
                got: self.responder,
            });
        }
        if self.requester != *requester
            || self.request_id != request_id
            || self.request_sha256 != sha256_hex(request_body)
        {
            return Err(GenerationReceiptError::WrongRequest);
        }
        if self.completion_tokens != tokens.len() as u64 || self.tokens_sha256 != tokens_sha256(tokens) {
            return Err(GenerationReceiptError::TokensMismatch);
        }
        self.verify_signature()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(tokens: &[u32]) -> (Keypair, Keypair, GenerationReceipt) {
        let validator = Keypair::from_uri("//Alice").unwrap();
        let miner = Keypair::from_uri("//Bob").unwrap();
        let receipt = GenerationReceipt::sign(
            &miner,
            &Generation {
                requester: &validator.account(),
                request_id: "7",
                request_body: br#"{"model":"smollm2"}"#,
                model_sha256: "ab",
                prompt_tokens: 12,
                tokens,
                finish_reason: "stop",
            },
        )
        .unwrap();
        (validator, miner, receipt)
    }

    #[test]
    fn payload_is_pinned() {
        let (_, _, receipt) = signed(&[1, 2]);
        assert_eq!(
            String::from_utf8(receipt.payload().unwrap()).unwrap(),
            format!(
                "tensorproof-generation/1\n5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY\n\
                 5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty\n7\n{}\nab\n{}\n12\n2\nstop",
                sha256_hex(br#"{"model":"smollm2"}"#),
                sha256_hex(&[1, 0, 0, 0, 2, 0, 0, 0]),
            )
        );
    }

    #[test]
    fn verifies_for_the_tokens_signed_and_fails_when_one_changes() {
        let tokens = [5, 6, 7];
        let (validator, miner, receipt) = signed(&tokens);
        let body = br#"{"model":"smollm2"}"#;
        receipt
            .verify(&miner.account(), &validator.account(), "7", body, &tokens)
            .unwrap();
        assert_eq!(
            receipt.verify(&miner.account(), &validator.account(), "7", body, &[5, 6, 8]),
            Err(GenerationReceiptError::TokensMismatch)
        );
        assert_eq!(
            receipt.verify(&miner.account(), &validator.account(), "7", body, &[5, 6]),
            Err(GenerationReceiptError::TokensMismatch)
        );
        assert_eq!(
            receipt.verify(&miner.account(), &validator.account(), "8", body, &tokens),
            Err(GenerationReceiptError::WrongRequest)
        );
        assert_eq!(
            receipt.verify(&miner.account(), &validator.account(), "7", b"{}", &tokens),
            Err(GenerationReceiptError::WrongRequest)
        );
        assert!(matches!(
            receipt.verify(&validator.account(), &validator.account(), "7", body, &tokens),
            Err(GenerationReceiptError::WrongResponder { .. })
        ));
    }

    #[test]
    fn a_tampered_count_or_signature_fails() {
        let (_, miner, receipt) = signed(&[1]);
        let mut forged = receipt.clone();
        forged.prompt_tokens += 1;
        assert_eq!(
            forged.verify_signature(),
            Err(GenerationReceiptError::BadSignature(miner.account()))
        );
        let mut forged = receipt;
        forged.finish_reason = "stop\nlength".into();
        assert!(matches!(
            forged.verify_signature(),
            Err(GenerationReceiptError::Malformed(_))
        ));
    }

    #[test]
    fn survives_json() {
        let (_, _, receipt) = signed(&[9]);
        let back: GenerationReceipt =
            serde_json::from_str(&serde_json::to_string(&receipt).unwrap()).unwrap();
        assert_eq!(back, receipt);
        back.verify_signature().unwrap();
    }
}
