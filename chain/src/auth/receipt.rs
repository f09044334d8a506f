//! Response receipts: the responder's hotkey signs the request it answered and the bytes it returned.
//!
//! Signed payload, UTF-8, six lines joined by `\n` (no trailing newline):
//! ```text
//! tensorproof-receipt/1
//! <requester ss58>          (the hotkey that signed the request)
//! <responder ss58>          (the hotkey that signs this receipt)
//! <request id>              (the btauth nonce or Epistula uuid, as sent)
//! <HTTP status code>        (decimal)
//! <sha256 hex of the response body bytes as sent>
//! ```
//! The requester's id and the request id make a receipt answer one request only; the body hash makes
//! it commit to one answer. A [`Receipt`] serializes to JSON so that any third party holding the
//! response body can check it later (for example from the validator's round log).
//!
//! Headers (all lower case on the wire; names are case-insensitive): [`H_VERSION`] = `1`,
//! [`H_HOTKEY`], [`H_REQUESTER`], [`H_REQUEST`], [`H_SIGNATURE`]. The status is the response's own
//! status line.

use http::{HeaderMap, HeaderValue};

use super::{AuthError, Verified, header, parse_account, parse_signature, required, sha256_hex};
use crate::keys::{AccountId, Keypair};

/// `X-Tensorproof-Receipt-Version` (value `1`).
pub const H_VERSION: &str = "x-tensorproof-receipt-version";
/// `X-Tensorproof-Receipt-Hotkey`: the responder ss58.
pub const H_HOTKEY: &str = "x-tensorproof-receipt-hotkey";
/// `X-Tensorproof-Receipt-Requester`: the requester ss58.
pub const H_REQUESTER: &str = "x-tensorproof-receipt-requester";
/// `X-Tensorproof-Receipt-Request`: the request id (nonce or uuid).
pub const H_REQUEST: &str = "x-tensorproof-receipt-request";
/// `X-Tensorproof-Receipt-Signature`: `0x` + hex of the sr25519 signature.
pub const H_SIGNATURE: &str = "x-tensorproof-receipt-signature";

/// A signed statement "`responder` answered request `request_id` from `requester` with `status` and a
/// body whose sha256 is `body_sha256`".
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Receipt {
    /// Who signed the request.
    pub requester: AccountId,
    /// Who answered and signs the receipt.
    pub responder: AccountId,
    /// The request's nonce or uuid.
    pub request_id: String,
    /// The HTTP status of the response.
    pub status: u16,
    /// Lowercase hex sha256 of the response body.
    pub body_sha256: String,
    /// `0x` + hex of the signature.
    pub signature: String,
}

/// Why a receipt does not check out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    /// Receipt headers are missing or malformed.
    #[error("the response carries no valid receipt: {0}")]
    Malformed(String),
    /// Signed by someone else than the expected responder.
    #[error(
        "the receipt is signed by {got}, expected the miner {expected}; the response did not come from that hotkey"
    )]
    WrongResponder {
        /// Hotkey expected to answer.
        expected: AccountId,
        /// Hotkey named in the receipt.
        got: AccountId,
    },
    /// The receipt answers another request (requester or id differ).
    #[error("the receipt answers another request; discard this response")]
    WrongRequest,
    /// The body does not hash to what was signed.
    #[error("the response body does not match the signed receipt; it was altered in transit")]
    BodyMismatch,
    /// The signature does not verify.
    #[error("the receipt signature does not verify for {0}")]
    BadSignature(AccountId),
}

impl From<AuthError> for ReceiptError {
    fn from(e: AuthError) -> Self {
        Self::Malformed(e.to_string())
    }
}

/// The exact bytes a receipt signs.
pub fn payload(
    requester: &AccountId,
    responder: &AccountId,
    request_id: &str,
    status: u16,
    body_sha256: &str,
) -> Vec<u8> {
    format!(
        "tensorproof-receipt/1\n{}\n{}\n{request_id}\n{status}\n{body_sha256}",
        requester.to_ss58(),
        responder.to_ss58()
    )
    .into_bytes()
}

impl Receipt {
    /// Signs a receipt for the response to `request` (as returned by the verifier).
    pub fn sign(responder: &Keypair, request: &Verified, status: u16, body: &[u8]) -> Self {
        Self::sign_for(responder, &request.hotkey, &request.request_id, status, body)
    }

    /// Signs a receipt given the requester and request id directly.
    pub fn sign_for(
        responder: &Keypair,
        requester: &AccountId,
        request_id: &str,
        status: u16,
        body: &[u8],
    ) -> Self {
        let body_sha256 = sha256_hex(body);
        let me = responder.account();
        let sig = responder.sign(&payload(requester, &me, request_id, status, &body_sha256));
        Self {
            requester: *requester,
            responder: me,
            request_id: request_id.to_owned(),
            status,
            body_sha256,
            signature: format!("0x{}", hex::encode(sig)),
        }
    }

    /// Adds the receipt headers to a response.
    pub fn write_headers(&self, headers: &mut HeaderMap) {
        let mut put = |name: &'static str, value: &str| {
            if let Ok(v) = HeaderValue::from_str(value) {
                headers.insert(name, v);
            }
        };
        put(H_VERSION, "1");
        put(H_HOTKEY, &self.responder.to_ss58());
        put(H_REQUESTER, &self.requester.to_ss58());
        put(H_REQUEST, &self.request_id);
        put(H_SIGNATURE, &self.signature);
    }

    /// Reads a receipt from response headers, hashing the body as received. Does not verify it.
    pub fn from_headers(headers: &HeaderMap, status: u16, body: &[u8]) -> Result<Self, ReceiptError> {
        if header(headers, H_VERSION)? != Some("1") {
            return Err(ReceiptError::Malformed(
                "X-Tensorproof-Receipt-Version is not 1".into(),
            ));
        }
        let responder = parse_account("X-Tensorproof-Receipt-Hotkey", required(headers, H_HOTKEY)?)?;
        let requester = parse_account("X-Tensorproof-Receipt-Requester", required(headers, H_REQUESTER)?)?;
        let request_id = required(headers, H_REQUEST)?;
        if request_id.len() > 64 {
            return Err(ReceiptError::Malformed(
                "X-Tensorproof-Receipt-Request is too long".into(),
            ));
        }
        let sig = required(headers, H_SIGNATURE)?;
        parse_signature("X-Tensorproof-Receipt-Signature", sig)?;
        Ok(Self {
            requester,
            responder,
            request_id: request_id.to_owned(),
            status,
            body_sha256: sha256_hex(body),
            signature: sig.to_owned(),
        })
    }

    /// Checks the signature alone (what a third party holding only the receipt can check).
    pub fn verify_signature(&self) -> Result<(), ReceiptError> {
        let sig = parse_signature("signature", &self.signature)?;
        let msg = payload(
            &self.requester,
            &self.responder,
            &self.request_id,
            self.status,
            &self.body_sha256,
        );
        if self.responder.verify(&msg, &sig) {
            Ok(())
        } else {
            Err(ReceiptError::BadSignature(self.responder))
        }
    }

    /// Full check by the requester: right responder, right request, body matches, signature verifies.
    pub fn verify(
        &self,
        expected_responder: &AccountId,
        requester: &AccountId,
        request_id: &str,
        body: &[u8],
    ) -> Result<(), ReceiptError> {
        if self.responder != *expected_responder {
            return Err(ReceiptError::WrongResponder {
                expected: *expected_responder,
                got: self.responder,
            });
        }
        if self.requester != *requester || self.request_id != request_id {
            return Err(ReceiptError::WrongRequest);
        }
        if self.body_sha256 != sha256_hex(body) {
            return Err(ReceiptError::BodyMismatch);
        }
        self.verify_signature()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> (Keypair, Keypair) {
        (
            Keypair::from_uri("//Alice").unwrap(),
            Keypair::from_uri("//Bob").unwrap(),
        )
    }

    #[test]
    fn payload_is_pinned() {
        let (v, m) = keys();
        let p = payload(&v.account(), &m.account(), "42", 200, &sha256_hex(b""));
        assert_eq!(
            String::from_utf8(p).unwrap(),
            "tensorproof-receipt/1\n5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY\n\
             5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty\n42\n200\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn headers_round_trip_and_every_binding_is_checked() {
        let (validator, miner) = keys();
        let receipt = Receipt::sign_for(&miner, &validator.account(), "1790", 200, b"answer");
        let mut h = HeaderMap::new();
        receipt.write_headers(&mut h);
        let got = Receipt::from_headers(&h, 200, b"answer").unwrap();
        assert_eq!(got, receipt);
        got.verify(&miner.account(), &validator.account(), "1790", b"answer")
            .unwrap();

        let altered = Receipt::from_headers(&h, 200, b"answeR").unwrap();
        assert_eq!(
            altered.verify(&miner.account(), &validator.account(), "1790", b"answeR"),
            Err(ReceiptError::BadSignature(miner.account()))
        );
        assert_eq!(
            got.verify(&miner.account(), &validator.account(), "1790", b"other"),
            Err(ReceiptError::BodyMismatch)
        );
        assert_eq!(
            got.verify(&miner.account(), &validator.account(), "1791", b"answer"),
            Err(ReceiptError::WrongRequest)
        );
        assert!(matches!(
            got.verify(&validator.account(), &validator.account(), "1790", b"answer"),
            Err(ReceiptError::WrongResponder { .. })
        ));
        // A different status than the one signed fails.
        let wrong_status = Receipt::from_headers(&h, 500, b"answer").unwrap();
        assert!(wrong_status.verify_signature().is_err());
    }

    #[test]
    fn json_round_trip_keeps_it_verifiable() {
        let (validator, miner) = keys();
        let receipt = Receipt::sign_for(&miner, &validator.account(), "u", 200, b"x");
        let json = serde_json::to_string(&receipt).unwrap();
        let back: Receipt = serde_json::from_str(&json).unwrap();
        back.verify_signature().unwrap();
        assert!(Receipt::from_headers(&HeaderMap::new(), 200, b"x").is_err());
    }
}
