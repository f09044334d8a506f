//! API keys and usage rows, in SQLite (`api.sqlite` in the validator's state directory, WAL, migrated
//! like `state.sqlite`).
//!
//! Its own file rather than tables in `state.sqlite`: the API writes a row per answer, far more often
//! than rounds commit, and keeping those writes off the round commit's database (and its schema version)
//! means a busy API never waits on a round's `synchronous = FULL` commit or the other way round.
//!
//! Keys are `tp-` and 40 hex digits of randomness, shown once at creation; only their sha256 is stored.
//! A usage row holds what is needed to bill the key's owner and pay the miner, and to check the miner's
//! signature later: the request body exactly as sent to the miner and the miner's generation receipt.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::state::StateError;

/// Result alias for this module.
pub type Result<T, E = StateError> = std::result::Result<T, E>;

/// The file name inside the state directory.
pub const FILE: &str = "api.sqlite";

/// The newest schema version this build writes.
pub const SCHEMA_VERSION: i64 = 1;

const MIGRATIONS: &[&str] = &[r"
CREATE TABLE api_keys (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT NOT NULL,
    prefix        TEXT NOT NULL,
    hash          TEXT NOT NULL UNIQUE,
    created_ms    INTEGER NOT NULL,
    revoked_ms    INTEGER,
    rate_per_min  REAL,
    token_quota   INTEGER,
    tokens_used   INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE usage (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    key_id            INTEGER NOT NULL REFERENCES api_keys(id),
    created_ms        INTEGER NOT NULL,
    route             TEXT NOT NULL,
    stream            INTEGER NOT NULL,
    model             TEXT NOT NULL,
    model_sha256      TEXT NOT NULL,
    miner_uid         INTEGER,
    miner_hotkey      TEXT,
    seed              TEXT NOT NULL,
    prompt_tokens     INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    ttft_ms           REAL,
    duration_ms       REAL NOT NULL,
    finish_reason     TEXT,
    outcome           TEXT NOT NULL,
    detail            TEXT NOT NULL,
    receipt_ok        INTEGER NOT NULL,
    verification      TEXT NOT NULL,
    verification_detail TEXT NOT NULL DEFAULT '',
    request_body      BLOB,
    token_ids         TEXT,
    receipt           TEXT
);
CREATE INDEX usage_by_key ON usage(key_id, created_ms);
CREATE INDEX usage_by_time ON usage(created_ms);
"];

/// An API key as stored (never the key itself).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKey {
    /// Row id: what `api-key revoke` and `usage --key` take.
    pub id: i64,
    /// A label for people.
    pub name: String,
    /// The key's first characters (`tp-1a2b3c`), to recognize it.
    pub prefix: String,
    /// Unix ms of creation.
    pub created_ms: u64,
    /// Unix ms of revocation, once revoked.
    pub revoked_ms: Option<u64>,
    /// Requests per minute allowed (absent: no limit).
    pub rate_per_min: Option<f64>,
    /// Tokens (prompt and completion) allowed in all (absent: no quota).
    pub token_quota: Option<u64>,
    /// Tokens counted so far.
    pub tokens_used: u64,
}

/// What a new key is allowed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewKey {
    /// A label.
    pub name: String,
    /// Requests per minute (absent: no limit).
    pub rate_per_min: Option<f64>,
    /// Token quota (absent: none).
    pub token_quota: Option<u64>,
}

/// How an answer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The client got the whole answer.
    Complete,
    /// The client went away mid-stream; the miner's work was cancelled.
    Partial,
    /// The miner failed after tokens were sent (the client got an error event).
    Failed,
    /// No miner could serve it (nothing generated).
    Unserved,
}

impl Outcome {
    /// The `snake_case` name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Complete => "complete",
            Self::Partial => "partial",
            Self::Failed => "failed",
            Self::Unserved => "unserved",
        }
    }
}

/// One answer's usage row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageRow {
    /// Row id (0 before insertion).
    pub id: i64,
    /// The API key's id.
    pub key_id: i64,
    /// Unix ms when the request arrived.
    pub created_ms: u64,
    /// `chat` or `completions`.
    pub route: String,
    /// Streamed or not.
    pub stream: bool,
    /// The model as the client named it.
    pub model: String,
    /// sha256 of the model file served.
    pub model_sha256: String,
    /// The miner that served it (absent when none did).
    pub miner_uid: Option<u16>,
    /// That miner's hotkey.
    pub miner_hotkey: Option<String>,
    /// The sampler seed (decimal).
    pub seed: String,
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Completion tokens delivered.
    pub completion_tokens: u64,
    /// Milliseconds from the request's arrival to its first token.
    pub ttft_ms: Option<f64>,
    /// Milliseconds from arrival to the end.
    pub duration_ms: f64,
    /// `stop` or `length`, when the generation finished.
    pub finish_reason: Option<String>,
    /// How the answer ended.
    pub outcome: Outcome,
    /// Failure detail, failover notes.
    pub detail: String,
    /// Whether the miner's generation receipt checked out.
    pub receipt_ok: bool,
    /// `pending`, `skipped`, `passed` or `failed`.
    pub verification: String,
    /// The verification's reason code and detail.
    pub verification_detail: String,
    /// The body sent to the miner, exactly (the receipt's request hash is over it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_body: Option<String>,
    /// The generated ids, as JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_ids: Option<String>,
    /// The miner's generation receipt, as JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receipt: Option<String>,
}

/// Totals of `validator usage`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UsageSummary {
    /// Rows counted.
    pub requests: u64,
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Completion tokens.
    pub completion_tokens: u64,
    /// Rows per outcome.
    pub by_outcome: Vec<(String, u64)>,
    /// Rows per verification state.
    pub by_verification: Vec<(String, u64)>,
    /// Per miner: uid, hotkey, requests, completion tokens.
    pub by_miner: Vec<(u16, String, u64, u64)>,
}

/// The API's database.
#[derive(Debug)]
pub struct ApiStore {
    conn: Connection,
}

/// Unix milliseconds now.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Lowercase hex sha256 of a key.
pub fn key_hash(key: &str) -> String {
    chain::auth::sha256_hex(key.as_bytes())
}

/// A fresh key: `tp-` and 40 hex digits (160 bits).
pub fn generate_key() -> String {
    let mut bytes = [0u8; 20];
    rand::fill(&mut bytes);
    format!("tp-{}", hex::encode(bytes))
}

impl ApiStore {
    /// Opens (creating and migrating) `api.sqlite` in `dir`.
    pub fn open_dir(dir: &Path) -> Result<Self> {
        Self::open(&dir.join(FILE))
    }

    /// Opens (creating and migrating) the database at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let conn = crate::state::open_migrated(path, "NORMAL", MIGRATIONS)?;
        Ok(Self { conn })
    }

    /// Creates a key; returns it (the only time it is seen) and its stored record.
    pub fn create_key(&mut self, new: &NewKey) -> Result<(String, ApiKey)> {
        let key = generate_key();
        let prefix: String = key.chars().take(9).collect();
        let created = now_ms();
        self.conn.execute(
            "INSERT INTO api_keys(name, prefix, hash, created_ms, rate_per_min, token_quota)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                new.name,
                prefix,
                key_hash(&key),
                created as i64,
                new.rate_per_min,
                new.token_quota.map(|q| q as i64)
            ],
        )?;
        let id = self.conn.last_insert_rowid();
        let record = self.key(id)?.ok_or_else(|| StateError::Corrupt {
            what: "api key",
            detail: "the key just inserted is missing".into(),
        })?;
        Ok((key, record))
    }

    /// Imports a key chosen by the caller (`localnet --api-key`): stored hashed like any other; an existing
    /// key with the same value is returned as it is.
    pub fn import_key(&mut self, key: &str, new: &NewKey) -> Result<ApiKey> {
        if let Some(existing) = self.key_by_secret(key)? {
            return Ok(existing);
        }
        let prefix: String = key.chars().take(9).collect();
        self.conn.execute(
            "INSERT INTO api_keys(name, prefix, hash, created_ms, rate_per_min, token_quota)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                new.name,
                prefix,
                key_hash(key),
                now_ms() as i64,
                new.rate_per_min,
                new.token_quota.map(|q| q as i64)
            ],
        )?;
        let id = self.conn.last_insert_rowid();
        self.key(id)?.ok_or_else(|| StateError::Corrupt {
            what: "api key",
            detail: "the key just inserted is missing".into(),
        })
    }

    const KEY_COLUMNS: &'static str =
        "id, name, prefix, created_ms, revoked_ms, rate_per_min, token_quota, tokens_used";

    fn key_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ApiKey> {
        Ok(ApiKey {
            id: r.get(0)?,
            name: r.get(1)?,
            prefix: r.get(2)?,
            created_ms: r.get::<_, i64>(3)? as u64,
            revoked_ms: r.get::<_, Option<i64>>(4)?.map(|v| v as u64),
            rate_per_min: r.get(5)?,
            token_quota: r.get::<_, Option<i64>>(6)?.map(|v| v as u64),
            tokens_used: r.get::<_, i64>(7)? as u64,
        })
    }

    /// The key with row id `id`.
    pub fn key(&self, id: i64) -> Result<Option<ApiKey>> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {} FROM api_keys WHERE id = ?1", Self::KEY_COLUMNS),
                [id],
                Self::key_from_row,
            )
            .optional()?)
    }

    /// The key whose secret is `key` (revoked or not), if any.
    pub fn key_by_secret(&self, key: &str) -> Result<Option<ApiKey>> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {} FROM api_keys WHERE hash = ?1", Self::KEY_COLUMNS),
                [key_hash(key)],
                Self::key_from_row,
            )
            .optional()?)
    }

    /// Every key, oldest first.
    pub fn keys(&self) -> Result<Vec<ApiKey>> {
        let mut st = self
            .conn
            .prepare(&format!("SELECT {} FROM api_keys ORDER BY id", Self::KEY_COLUMNS))?;
        let rows = st.query_map([], Self::key_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Revokes key `id`; false when there is no such key (revoking twice keeps the first time).
    pub fn revoke(&mut self, id: i64) -> Result<bool> {
        let found = self.conn.execute(
            "UPDATE api_keys SET revoked_ms = COALESCE(revoked_ms, ?2) WHERE id = ?1",
            params![id, now_ms() as i64],
        )?;
        Ok(found == 1)
    }

    /// Records one answer's usage and adds its tokens to the key's count, in one transaction; returns
    /// the row id.
    pub fn record_usage(&mut self, u: &UsageRow) -> Result<i64> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO usage(key_id, created_ms, route, stream, model, model_sha256, miner_uid, miner_hotkey,
             seed, prompt_tokens, completion_tokens, ttft_ms, duration_ms, finish_reason, outcome, detail,
             receipt_ok, verification, verification_detail, request_body, token_ids, receipt)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19,
             ?20, ?21, ?22)",
            params![
                u.key_id,
                u.created_ms as i64,
                u.route,
                u.stream,
                u.model,
                u.model_sha256,
                u.miner_uid,
                u.miner_hotkey,
                u.seed,
                u.prompt_tokens as i64,
                u.completion_tokens as i64,
                u.ttft_ms,
                u.duration_ms,
                u.finish_reason,
                u.outcome.as_str(),
                u.detail,
                u.receipt_ok,
                u.verification,
                u.verification_detail,
                u.request_body,
                u.token_ids,
                u.receipt
            ],
        )?;
        let id = tx.last_insert_rowid();
        tx.execute(
            "UPDATE api_keys SET tokens_used = tokens_used + ?2 WHERE id = ?1",
            params![u.key_id, (u.prompt_tokens + u.completion_tokens) as i64],
        )?;
        tx.commit()?;
        Ok(id)
    }

    /// Records the verification of usage row `id`.
    pub fn set_verification(&mut self, id: i64, state: &str, detail: &str) -> Result<()> {
        self.conn.execute(
            "UPDATE usage SET verification = ?2, verification_detail = ?3 WHERE id = ?1",
            params![id, state, detail],
        )?;
        Ok(())
    }

    /// Usage rows, oldest first, of key `key` (all keys when absent) since unix ms `since`, at most `limit`.
    pub fn usage(&self, key: Option<i64>, since_ms: u64, limit: usize) -> Result<Vec<UsageRow>> {
        let mut st = self.conn.prepare(
            "SELECT id, key_id, created_ms, route, stream, model, model_sha256, miner_uid, miner_hotkey, seed,
             prompt_tokens, completion_tokens, ttft_ms, duration_ms, finish_reason, outcome, detail, receipt_ok,
             verification, verification_detail, request_body, token_ids, receipt FROM usage
             WHERE (?1 IS NULL OR key_id = ?1) AND created_ms >= ?2 ORDER BY id LIMIT ?3",
        )?;
        let rows = st.query_map(params![key, since_ms as i64, limit as i64], |r| {
            let outcome: String = r.get(15)?;
            Ok((
                UsageRow {
                    id: r.get(0)?,
                    key_id: r.get(1)?,
                    created_ms: r.get::<_, i64>(2)? as u64,
                    route: r.get(3)?,
                    stream: r.get(4)?,
                    model: r.get(5)?,
                    model_sha256: r.get(6)?,
                    miner_uid: r.get(7)?,
                    miner_hotkey: r.get(8)?,
                    seed: r.get(9)?,
                    prompt_tokens: r.get::<_, i64>(10)? as u64,
                    completion_tokens: r.get::<_, i64>(11)? as u64,
                    ttft_ms: r.get(12)?,
                    duration_ms: r.get(13)?,
                    finish_reason: r.get(14)?,
                    outcome: Outcome::Complete,
                    detail: r.get(16)?,
                    receipt_ok: r.get(17)?,
                    verification: r.get(18)?,
                    verification_detail: r.get(19)?,
                    request_body: r.get(20)?,
                    token_ids: r.get(21)?,
                    receipt: r.get(22)?,
                },
                outcome,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (mut row, outcome) = row?;
            row.outcome = match outcome.as_str() {
                "complete" => Outcome::Complete,
                "partial" => Outcome::Partial,
                "failed" => Outcome::Failed,
                "unserved" => Outcome::Unserved,
                other => {
                    return Err(StateError::Corrupt {
                        what: "usage outcome",
                        detail: other.to_owned(),
                    });
                }
            };
            out.push(row);
        }
        Ok(out)
    }

    /// Totals over the same selection as [`Self::usage`].
    pub fn summary(&self, key: Option<i64>, since_ms: u64) -> Result<UsageSummary> {
        let filter = "WHERE (?1 IS NULL OR key_id = ?1) AND created_ms >= ?2";
        let (requests, prompt, completion): (i64, i64, i64) = self.conn.query_row(
            &format!(
                "SELECT COUNT(*), COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0) FROM usage {filter}"
            ),
            params![key, since_ms as i64],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let group = |col: &str| -> Result<Vec<(String, u64)>> {
            let mut st = self.conn.prepare(&format!(
                "SELECT {col}, COUNT(*) FROM usage {filter} GROUP BY {col} ORDER BY {col}"
            ))?;
            let rows = st.query_map(params![key, since_ms as i64], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        };
        let by_outcome = group("outcome")?;
        let by_verification = group("verification")?;
        let mut st = self.conn.prepare(&format!(
            "SELECT miner_uid, miner_hotkey, COUNT(*), SUM(completion_tokens) FROM usage {filter}
             AND miner_uid IS NOT NULL GROUP BY miner_uid, miner_hotkey ORDER BY miner_uid"
        ))?;
        let by_miner = st
            .query_map(params![key, since_ms as i64], |r| {
                Ok((
                    r.get::<_, u16>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)? as u64,
                    r.get::<_, i64>(3)? as u64,
                ))
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(UsageSummary {
            requests: requests as u64,
            prompt_tokens: prompt as u64,
            completion_tokens: completion as u64,
            by_outcome,
            by_verification,
            by_miner,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn row(key_id: i64, tokens: u64) -> UsageRow {
        UsageRow {
            id: 0,
            key_id,
            created_ms: now_ms(),
            route: "chat".into(),
            stream: true,
            model: "smollm2".into(),
            model_sha256: "ab".into(),
            miner_uid: Some(1),
            miner_hotkey: Some("hk".into()),
            seed: "7".into(),
            prompt_tokens: 3,
            completion_tokens: tokens,
            ttft_ms: Some(5.0),
            duration_ms: 9.0,
            finish_reason: Some("length".into()),
            outcome: Outcome::Complete,
            detail: String::new(),
            receipt_ok: true,
            verification: "pending".into(),
            verification_detail: String::new(),
            request_body: Some("{}".into()),
            token_ids: Some("[1]".into()),
            receipt: Some("{}".into()),
        }
    }

    #[test]
    fn keys_are_stored_hashed_shown_once_and_revocable() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = ApiStore::open_dir(dir.path()).unwrap();
        let (key, record) = s
            .create_key(&NewKey {
                name: "alice".into(),
                rate_per_min: Some(60.0),
                token_quota: Some(1000),
            })
            .unwrap();
        assert!(key.starts_with("tp-") && key.len() == 43, "{key}");
        assert!(key.starts_with(&record.prefix));
        // The database never holds the key itself.
        let raw = std::fs::read(dir.path().join(FILE)).unwrap();
        assert!(!raw.windows(key.len()).any(|w| w == key.as_bytes()));
        assert_eq!(s.key_by_secret(&key).unwrap().unwrap().id, record.id);
        assert!(s.key_by_secret("tp-nope").unwrap().is_none());
        assert!(s.revoke(record.id).unwrap());
        assert!(!s.revoke(999).unwrap());
        let revoked = s.key_by_secret(&key).unwrap().unwrap();
        assert!(revoked.revoked_ms.is_some());
        assert_eq!(s.keys().unwrap().len(), 1);
        // An imported key is found by its value and imported once.
        let a = s.import_key("tp-local", &NewKey::default()).unwrap();
        let b = s.import_key("tp-local", &NewKey::default()).unwrap();
        assert_eq!(a.id, b.id);
    }

    #[test]
    fn usage_rows_count_tokens_and_summarize() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = ApiStore::open_dir(dir.path()).unwrap();
        let (_, a) = s.create_key(&NewKey::default()).unwrap();
        let (_, b) = s.create_key(&NewKey::default()).unwrap();
        let id = s.record_usage(&row(a.id, 4)).unwrap();
        let mut partial = row(a.id, 2);
        partial.outcome = Outcome::Partial;
        s.record_usage(&partial).unwrap();
        s.record_usage(&row(b.id, 10)).unwrap();
        s.set_verification(id, "passed", "").unwrap();
        assert_eq!(s.key(a.id).unwrap().unwrap().tokens_used, 3 + 4 + 3 + 2);
        let rows = s.usage(Some(a.id), 0, 100).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[0].verification.as_str(), rows[1].outcome),
            ("passed", Outcome::Partial)
        );
        let sum = s.summary(None, 0).unwrap();
        assert_eq!(
            (sum.requests, sum.prompt_tokens, sum.completion_tokens),
            (3, 9, 16)
        );
        assert_eq!(
            sum.by_outcome,
            vec![("complete".into(), 2), ("partial".into(), 1)]
        );
        assert_eq!(sum.by_miner, vec![(1, "hk".into(), 3, 16)]);
        assert!(s.usage(None, now_ms() + 60_000, 10).unwrap().is_empty());
    }
}
