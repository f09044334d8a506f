//! Durable validator state in SQLite (WAL): the round counter, verdicts, EMA scores, the scoring state and
//! weight submissions.
//!
//! # Round commit protocol
//! A round becomes real in exactly one SQLite transaction ([`Store::commit_round`]) that writes the round
//! row, every miner's verdict, the new per-miner scores, the scoring state (the EMA, saved exactly) and the
//! round's round-log entry. Before that transaction nothing of the round is counted; after it, all of it is.
//! The transaction checks that the round number is exactly one past the last committed round, so a round
//! can never be counted twice, and `kill -9` at any instant leaves either the old state or the new one.
//!
//! Challenge seeds use an *attempt* number that is bumped and committed (in its own transaction) before a
//! round sends anything ([`Store::begin_attempt`]), so a round interrupted by a crash is retried with fresh
//! seeds: a miner never sees the same challenge twice, even across restarts.
//!
//! The round log file is written *after* the commit; the last committed entry is kept in the database so
//! that [`crate::roundlog::RoundLog::open`] can restore a line lost between the commit and the file write.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::roundlog::LogEntry;

/// An error from the state database.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// SQLite failed (disk full, locked, corrupt file).
    #[error("state database error: {0}; check the state directory's disk space and permissions")]
    Sqlite(#[from] rusqlite::Error),
    /// The database was written by a newer validator.
    #[error(
        "state database schema version {found} is newer than this validator understands ({supported}); run a newer validator or use another --state-dir"
    )]
    TooNew {
        /// Version in the file.
        found: i64,
        /// Newest version this build knows.
        supported: i64,
    },
    /// A commit would count a round twice or skip one.
    #[error(
        "round {got} cannot be committed: the last committed round is {last}; this round was already counted or one is missing"
    )]
    RoundOutOfOrder {
        /// The round the caller tried to commit.
        got: u64,
        /// The last committed round (0 when none).
        last: u64,
    },
    /// A stored value could not be decoded.
    #[error("state database holds a malformed {what}: {detail}; restore the state directory from a backup")]
    Corrupt {
        /// Which value.
        what: &'static str,
        /// Why.
        detail: String,
    },
}

/// Result alias for this module.
pub type Result<T, E = StateError> = std::result::Result<T, E>;

/// Opens the SQLite database at `path` (WAL, foreign keys, a 5 s busy timeout, `synchronous` as given)
/// and applies the `migrations` it has not yet run (`user_version` counts them), each in its own
/// transaction; the validator's state and its API store both open this way.
///
/// # Errors
/// [`StateError::TooNew`] when the file was written by a newer schema, or a SQLite error.
pub(crate) fn open_migrated(path: &Path, synchronous: &str, migrations: &[&str]) -> Result<Connection> {
    let mut conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", synchronous)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let supported = migrations.len() as i64;
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version > supported {
        return Err(StateError::TooNew {
            found: version,
            supported,
        });
    }
    for (i, sql) in migrations.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(conn)
}

/// One miner's result in one round, as stored and shown on `/scores`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MinerOutcome {
    /// The miner's uid at the round's block.
    pub uid: u16,
    /// The miner's hotkey (ss58).
    pub hotkey: String,
    /// The task class.
    pub task: bench_tasks::wire::TaskClass,
    /// The verdict.
    pub verdict: bench_tasks::Verdict,
    /// Round-trip time of the signed ping, in milliseconds (absent when the ping failed).
    pub rtt_ms: Option<f64>,
    /// Time from sending the challenge to receiving the full answer, in milliseconds.
    pub total_ms: Option<f64>,
    /// `total_ms - rtt_ms`, the miner's compute time as the validator sees it.
    pub compute_ms: Option<f64>,
    /// Hex of the challenge seed used for this miner.
    pub seed: String,
    /// blake3 of the miner's answer bodies (absent when there was none; for a device group, blake3 of
    /// its challenges' answer hashes in device order).
    pub answer_hash: Option<String>,
    /// The challenges this verdict sums: a miner advertising `d` devices in `/info` is sent
    /// `min(d, [round] max_devices)` challenges at once (seeds derived from `seed` and the device index,
    /// [`crate::round::device_seed`]), scored as one group whose `verdict.work_units` is their summed
    /// work and whose `total_ms` is the group's wall time, so `work_units / compute_ms` is the box's
    /// throughput. When some time out or are refused and none fails verification, the group is the
    /// ones that passed. 1 for a single challenge (absent from records written before device groups).
    #[serde(default = "one_device", skip_serializing_if = "is_one_device")]
    pub devices: u32,
    /// The dtype class of the matmul challenges (matmul outcomes only; absent for inference and in
    /// records written before it was recorded). The round's `matmul` parameters hold it too; kept per
    /// outcome so the state database can show throughput per class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dtype: Option<bench_tasks::matmul::MatmulDtype>,
    /// One entry per passed challenge of the group whose answer named the device that computed it
    /// ([`bench_tasks::wire::ChallengeResponse::device`]), with that challenge's own compute time; each
    /// challenge's work is `verdict.work_units / devices`. Empty when no answer named its device (older
    /// miners) and in older records. Informational, never scored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub device_runs: Vec<DeviceRun>,
}

/// One passed challenge of a device group, on the device the miner named.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DeviceRun {
    /// The device index the miner named (the `index` of its `/info` `devices` entry).
    pub device: u32,
    /// From sending the challenge to its answer, less the ping RTT, in milliseconds.
    pub compute_ms: f64,
}

const fn one_device() -> u32 {
    1
}

#[allow(clippy::trivially_copy_pass_by_ref)]
const fn is_one_device(d: &u32) -> bool {
    *d == 1
}

/// One organic answer checked on the validator's CPU (the API's sampled re-check), as a round commits it:
/// the round that came after the check scores it (class `organic`) with the round's challenges.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrganicOutcome {
    /// The usage row in the API's `api.sqlite` this answer was recorded under.
    pub usage_id: i64,
    /// The miner's uid when it served.
    pub uid: u16,
    /// The miner's hotkey (ss58).
    pub hotkey: String,
    /// The model's sha256, lowercase hex.
    pub model_sha256: String,
    /// The verdict; `work_units` is the tokens checked.
    pub verdict: bench_tasks::Verdict,
    /// Time from the request's arrival to its first token, in milliseconds.
    pub ttft_ms: Option<f64>,
    /// Time from the request's arrival to its last token, in milliseconds.
    pub total_ms: f64,
    /// The sampler seed the validator chose, decimal.
    pub seed: String,
    /// blake3 of the generated token ids (little-endian u32s).
    pub answer_hash: String,
    /// Unix milliseconds when the check finished.
    pub checked_ms: u64,
}

/// A miner's score after a round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreRow {
    /// uid.
    pub uid: u16,
    /// Hotkey.
    pub hotkey: String,
    /// The EMA score after this round.
    pub ema: f64,
}

/// Everything a round commits at once.
#[derive(Debug, Clone)]
pub struct RoundCommit {
    /// The round number; must be one past the last committed round.
    pub round: u64,
    /// The attempt number the seeds were derived from.
    pub attempt: u64,
    /// Block number the round was bound to.
    pub block_number: u64,
    /// Hex block hash the round was bound to.
    pub block_hash: String,
    /// Unix milliseconds when the round started.
    pub started_ms: u64,
    /// Unix milliseconds when the round finished.
    pub finished_ms: u64,
    /// Per-miner outcomes.
    pub outcomes: Vec<MinerOutcome>,
    /// Organic answers checked since the previous round.
    pub organic: Vec<OrganicOutcome>,
    /// Per-miner EMA scores after the round (every miner scoring knows, not only this round's).
    pub scores: Vec<ScoreRow>,
    /// The scoring state (EMA) serialized by `scoring`, restored exactly on restart.
    pub scoring_state: String,
}

/// A weight submission and its outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeightSubmission {
    /// The round whose scores produced the weights.
    pub round: u64,
    /// Block at which the submission was attempted.
    pub block: u64,
    /// Destination uids.
    pub uids: Vec<u16>,
    /// u16 weights, aligned with `uids`.
    pub weights: Vec<u16>,
    /// `pending` (written before sending; a record left `pending` means the process stopped before the
    /// outcome was known), then `included`, `failed` or `skipped`.
    pub status: String,
    /// The chain client's message (dispatch error, mode used).
    pub detail: String,
    /// Attempts the chain client made.
    pub attempts: u32,
    /// Milliseconds from submission to the final status.
    pub latency_ms: f64,
}

/// The newest schema version this build writes.
pub const SCHEMA_VERSION: i64 = 4;

/// The migrations, in order; migration `i` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    r"
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE rounds (
    round        INTEGER PRIMARY KEY,
    attempt      INTEGER NOT NULL,
    block_number INTEGER NOT NULL,
    block_hash   TEXT NOT NULL,
    started_ms   INTEGER NOT NULL,
    finished_ms  INTEGER NOT NULL,
    miners       INTEGER NOT NULL,
    passed       INTEGER NOT NULL
);
CREATE TABLE verdicts (
    round       INTEGER NOT NULL REFERENCES rounds(round),
    uid         INTEGER NOT NULL,
    hotkey      TEXT NOT NULL,
    task        TEXT NOT NULL,
    passed      INTEGER NOT NULL,
    reason      TEXT NOT NULL,
    detail      TEXT NOT NULL,
    work_units  REAL NOT NULL,
    rtt_ms      REAL,
    total_ms    REAL,
    compute_ms  REAL,
    seed        TEXT NOT NULL,
    answer_hash TEXT,
    PRIMARY KEY (round, uid)
);
CREATE INDEX verdicts_by_uid ON verdicts(uid, round);
CREATE TABLE scores (
    uid     INTEGER PRIMARY KEY,
    hotkey  TEXT NOT NULL,
    ema     REAL NOT NULL,
    round   INTEGER NOT NULL
);
CREATE TABLE scoring_state (
    id    INTEGER PRIMARY KEY CHECK (id = 0),
    round INTEGER NOT NULL,
    json  TEXT NOT NULL
);
CREATE TABLE weight_submissions (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    round      INTEGER NOT NULL,
    block      INTEGER NOT NULL,
    uids       TEXT NOT NULL,
    weights    TEXT NOT NULL,
    status     TEXT NOT NULL,
    detail     TEXT NOT NULL,
    attempts   INTEGER NOT NULL,
    latency_ms REAL NOT NULL
);
CREATE TABLE last_log_entry (
    id   INTEGER PRIMARY KEY CHECK (id = 0),
    seq  INTEGER NOT NULL,
    line TEXT NOT NULL
);
",
    r"
CREATE TABLE organic_verdicts (
    round        INTEGER NOT NULL REFERENCES rounds(round),
    usage_id     INTEGER NOT NULL,
    uid          INTEGER NOT NULL,
    hotkey       TEXT NOT NULL,
    model_sha256 TEXT NOT NULL,
    passed       INTEGER NOT NULL,
    reason       TEXT NOT NULL,
    detail       TEXT NOT NULL,
    tokens       REAL NOT NULL,
    ttft_ms      REAL,
    total_ms     REAL NOT NULL,
    seed         TEXT NOT NULL,
    answer_hash  TEXT NOT NULL,
    checked_ms   INTEGER NOT NULL,
    PRIMARY KEY (round, usage_id)
);
",
    "ALTER TABLE verdicts ADD COLUMN devices INTEGER NOT NULL DEFAULT 1;",
    // Matmul outcomes' dtype class and per-device runs (JSON; NULL in rows written before).
    r"
ALTER TABLE verdicts ADD COLUMN dtype TEXT;
ALTER TABLE verdicts ADD COLUMN device_runs TEXT;
",
];

/// The validator's state database.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
}

impl Store {
    /// Opens (creating and migrating as needed) `state.sqlite` in `dir`.
    pub fn open_dir(dir: &Path) -> Result<Self> {
        Self::open(&dir.join("state.sqlite"))
    }

    /// Opens (creating and migrating as needed) the database at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        // FULL: a committed round survives power loss, not only a process kill.
        let conn = open_migrated(path, "FULL", MIGRATIONS)?;
        Ok(Self { conn })
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<i64> {
        Ok(self.conn.pragma_query_value(None, "user_version", |r| r.get(0))?)
    }

    fn meta_u64(&self, key: &str) -> Result<u64> {
        let v: Option<String> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?;
        match v {
            None => Ok(0),
            Some(s) => s.parse().map_err(|e| StateError::Corrupt {
                what: "meta counter",
                detail: format!("{key}: {e}"),
            }),
        }
    }

    /// Bumps and commits the attempt counter, returning the new attempt number (1, 2, …). Call before a
    /// round sends any challenge; seeds are derived from it.
    pub fn begin_attempt(&mut self) -> Result<u64> {
        let tx = self.conn.transaction()?;
        let next: Option<String> = tx
            .query_row("SELECT value FROM meta WHERE key = 'attempt'", [], |r| r.get(0))
            .optional()?;
        let n = match next {
            None => 1,
            Some(s) => {
                s.parse::<u64>().map_err(|e| StateError::Corrupt {
                    what: "attempt counter",
                    detail: e.to_string(),
                })? + 1
            }
        };
        tx.execute("INSERT INTO meta(key, value) VALUES ('attempt', ?1) ON CONFLICT(key) DO UPDATE SET value = excluded.value", [n.to_string()])?;
        tx.commit()?;
        Ok(n)
    }

    /// The last attempt number handed out (0 when none).
    pub fn last_attempt(&self) -> Result<u64> {
        self.meta_u64("attempt")
    }

    /// The last committed round (0 when none).
    pub fn last_round(&self) -> Result<u64> {
        let r: Option<i64> = self
            .conn
            .query_row("SELECT MAX(round) FROM rounds", [], |r| r.get(0))?;
        Ok(r.unwrap_or(0) as u64)
    }

    /// Deletes the rounds before `round` with their verdicts and weight submissions, in one
    /// transaction; the EMA scores, the scoring state and the log bookkeeping are untouched (they hold
    /// the latest state, not history). Returns the rows deleted.
    pub fn prune_before(&mut self, round: u64) -> Result<u64> {
        let tx = self.conn.transaction()?;
        let r = round as i64;
        let mut deleted = tx.execute("DELETE FROM verdicts WHERE round < ?1", params![r])?;
        deleted += tx.execute("DELETE FROM organic_verdicts WHERE round < ?1", params![r])?;
        deleted += tx.execute("DELETE FROM weight_submissions WHERE round < ?1", params![r])?;
        deleted += tx.execute("DELETE FROM rounds WHERE round < ?1", params![r])?;
        tx.commit()?;
        Ok(deleted as u64)
    }

    /// Number of committed rounds.
    pub fn round_count(&self) -> Result<u64> {
        let r: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM rounds", [], |r| r.get(0))?;
        Ok(r as u64)
    }

    /// The saved scoring state and the round it belongs to, if any round was committed.
    pub fn scoring_state(&self) -> Result<Option<(u64, String)>> {
        Ok(self
            .conn
            .query_row("SELECT round, json FROM scoring_state WHERE id = 0", [], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get::<_, String>(1)?))
            })
            .optional()?)
    }

    /// The last round-log entry committed with a round or a weight submission.
    pub fn last_log_entry(&self) -> Result<Option<LogEntry>> {
        let line: Option<String> = self
            .conn
            .query_row("SELECT line FROM last_log_entry WHERE id = 0", [], |r| r.get(0))
            .optional()?;
        line.map(|l| {
            LogEntry::parse(&l).map_err(|e| StateError::Corrupt {
                what: "round-log entry",
                detail: e.to_string(),
            })
        })
        .transpose()
    }

    fn put_log_entry(tx: &rusqlite::Transaction<'_>, entry: &LogEntry) -> Result<()> {
        tx.execute(
            "INSERT INTO last_log_entry(id, seq, line) VALUES (0, ?1, ?2)
             ON CONFLICT(id) DO UPDATE SET seq = excluded.seq, line = excluded.line",
            params![entry.seq as i64, entry.line()],
        )?;
        Ok(())
    }

    /// Records a log entry that belongs to no round or submission (the policy a run starts with), in its own
    /// transaction.
    pub fn commit_log_entry(&mut self, entry: &LogEntry) -> Result<()> {
        let tx = self.conn.transaction()?;
        Self::put_log_entry(&tx, entry)?;
        tx.commit()?;
        Ok(())
    }

    /// Commits a whole round, with its log entry, atomically. Fails without writing anything when `round` is
    /// not exactly one past the last committed round.
    pub fn commit_round(&mut self, c: &RoundCommit, entry: &LogEntry) -> Result<()> {
        let tx = self.conn.transaction()?;
        let last: Option<i64> = tx.query_row("SELECT MAX(round) FROM rounds", [], |r| r.get(0))?;
        let last = last.unwrap_or(0) as u64;
        if c.round != last + 1 {
            return Err(StateError::RoundOutOfOrder { got: c.round, last });
        }
        let passed = c.outcomes.iter().filter(|o| o.verdict.passed).count();
        tx.execute(
            "INSERT INTO rounds(round, attempt, block_number, block_hash, started_ms, finished_ms, miners, passed)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                c.round as i64,
                c.attempt as i64,
                c.block_number as i64,
                c.block_hash,
                c.started_ms as i64,
                c.finished_ms as i64,
                c.outcomes.len() as i64,
                passed as i64
            ],
        )?;
        {
            let mut ins = tx.prepare(
                "INSERT INTO verdicts(round, uid, hotkey, task, passed, reason, detail, work_units, rtt_ms, total_ms,
                 compute_ms, seed, answer_hash, devices, dtype, device_runs)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
            )?;
            for o in &c.outcomes {
                ins.execute(params![
                    c.round as i64,
                    o.uid,
                    o.hotkey,
                    o.task.name(),
                    o.verdict.passed,
                    o.verdict.reason.code(),
                    o.verdict.detail,
                    o.verdict.work_units,
                    o.rtt_ms,
                    o.total_ms,
                    o.compute_ms,
                    o.seed,
                    o.answer_hash,
                    o.devices,
                    o.dtype.map(bench_tasks::matmul::MatmulDtype::name),
                    (!o.device_runs.is_empty())
                        .then(|| serde_json::to_string(&o.device_runs).unwrap_or_default())
                ])?;
            }
            let mut org = tx.prepare(
                "INSERT INTO organic_verdicts(round, usage_id, uid, hotkey, model_sha256, passed, reason, detail, tokens,
                 ttft_ms, total_ms, seed, answer_hash, checked_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            )?;
            for o in &c.organic {
                org.execute(params![
                    c.round as i64,
                    o.usage_id,
                    o.uid,
                    o.hotkey,
                    o.model_sha256,
                    o.verdict.passed,
                    o.verdict.reason.code(),
                    o.verdict.detail,
                    o.verdict.work_units,
                    o.ttft_ms,
                    o.total_ms,
                    o.seed,
                    o.answer_hash,
                    o.checked_ms as i64
                ])?;
            }
            tx.execute("DELETE FROM scores", [])?;
            let mut sc = tx.prepare("INSERT INTO scores(uid, hotkey, ema, round) VALUES (?1, ?2, ?3, ?4)")?;
            for s in &c.scores {
                sc.execute(params![s.uid, s.hotkey, s.ema, c.round as i64])?;
            }
        }
        tx.execute(
            "INSERT INTO scoring_state(id, round, json) VALUES (0, ?1, ?2)
             ON CONFLICT(id) DO UPDATE SET round = excluded.round, json = excluded.json",
            params![c.round as i64, c.scoring_state],
        )?;
        Self::put_log_entry(&tx, entry)?;
        tx.commit()?;
        Ok(())
    }

    /// Records a weight submission and its log entry atomically; returns the submission's row id, which
    /// [`Self::finish_submission`] updates with the outcome.
    pub fn record_submission(&mut self, s: &WeightSubmission, entry: &LogEntry) -> Result<i64> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO weight_submissions(round, block, uids, weights, status, detail, attempts, latency_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                s.round as i64,
                s.block as i64,
                serde_json::to_string(&s.uids).unwrap_or_default(),
                serde_json::to_string(&s.weights).unwrap_or_default(),
                s.status,
                s.detail,
                s.attempts,
                s.latency_ms
            ],
        )?;
        let id = tx.last_insert_rowid();
        Self::put_log_entry(&tx, entry)?;
        tx.commit()?;
        Ok(id)
    }

    /// Replaces the submission recorded as `id` (its attempt, written before sending) with its outcome,
    /// and records the outcome's log entry, atomically.
    pub fn finish_submission(&mut self, id: i64, s: &WeightSubmission, entry: &LogEntry) -> Result<()> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "UPDATE weight_submissions SET block = ?2, status = ?3, detail = ?4, attempts = ?5, latency_ms = ?6
             WHERE id = ?1",
            params![id, s.block as i64, s.status, s.detail, s.attempts, s.latency_ms],
        )?;
        Self::put_log_entry(&tx, entry)?;
        tx.commit()?;
        Ok(())
    }

    /// The current EMA scores.
    pub fn scores(&self) -> Result<Vec<ScoreRow>> {
        let mut st = self
            .conn
            .prepare("SELECT uid, hotkey, ema FROM scores ORDER BY uid")?;
        let rows = st.query_map([], |r| {
            Ok(ScoreRow {
                uid: r.get(0)?,
                hotkey: r.get(1)?,
                ema: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The most recent `limit` outcomes of one uid, newest first, with their round numbers.
    pub fn recent_outcomes(&self, uid: u16, limit: usize) -> Result<Vec<(u64, MinerOutcome)>> {
        let mut st = self.conn.prepare(
            "SELECT round, uid, hotkey, task, passed, reason, detail, work_units, rtt_ms, total_ms, compute_ms, seed,
             answer_hash, devices, dtype, device_runs FROM verdicts WHERE uid = ?1 ORDER BY round DESC LIMIT ?2",
        )?;
        let rows = st.query_map(params![uid, limit as i64], |r| {
            Ok((r.get::<_, i64>(0)? as u64, OutcomeRow::from_row(r)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (round, row) = row?;
            out.push((round, row.into_outcome()?));
        }
        Ok(out)
    }

    /// The most recent `limit` passed matmul outcomes of one uid with a recorded dtype class and compute
    /// time, newest first, with their round numbers: what its throughput figures are made of.
    pub fn passed_matmul_outcomes(&self, uid: u16, limit: usize) -> Result<Vec<(u64, MinerOutcome)>> {
        let mut st = self.conn.prepare(
            "SELECT round, uid, hotkey, task, passed, reason, detail, work_units, rtt_ms, total_ms, compute_ms, seed,
             answer_hash, devices, dtype, device_runs FROM verdicts
             WHERE uid = ?1 AND task = 'matmul' AND passed = 1 AND dtype IS NOT NULL AND compute_ms IS NOT NULL
             ORDER BY round DESC LIMIT ?2",
        )?;
        let rows = st.query_map(params![uid, limit as i64], |r| {
            Ok((r.get::<_, i64>(0)? as u64, OutcomeRow::from_row(r)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (round, row) = row?;
            out.push((round, row.into_outcome()?));
        }
        Ok(out)
    }

    /// Every outcome of one round, ordered by uid.
    pub fn round_outcomes(&self, round: u64) -> Result<Vec<MinerOutcome>> {
        let mut st = self.conn.prepare(
            "SELECT round, uid, hotkey, task, passed, reason, detail, work_units, rtt_ms, total_ms, compute_ms, seed,
             answer_hash, devices, dtype, device_runs FROM verdicts WHERE round = ?1 ORDER BY uid",
        )?;
        let rows = st.query_map(params![round as i64], OutcomeRow::from_row)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row?.into_outcome()?);
        }
        Ok(out)
    }

    /// The organic answers round `round` scored, by usage id.
    pub fn organic_outcomes(&self, round: u64) -> Result<Vec<OrganicOutcome>> {
        let mut st = self.conn.prepare(
            "SELECT usage_id, uid, hotkey, model_sha256, passed, reason, detail, tokens, ttft_ms, total_ms, seed,
             answer_hash, checked_ms FROM organic_verdicts WHERE round = ?1 ORDER BY usage_id",
        )?;
        let rows = st.query_map(params![round as i64], |r| {
            Ok((
                OrganicOutcome {
                    usage_id: r.get(0)?,
                    uid: r.get(1)?,
                    hotkey: r.get(2)?,
                    model_sha256: r.get(3)?,
                    verdict: bench_tasks::Verdict {
                        passed: r.get(4)?,
                        reason: bench_tasks::Reason::Passed,
                        detail: r.get(6)?,
                        work_units: r.get(7)?,
                    },
                    ttft_ms: r.get(8)?,
                    total_ms: r.get(9)?,
                    seed: r.get(10)?,
                    answer_hash: r.get(11)?,
                    checked_ms: r.get::<_, i64>(12)? as u64,
                },
                r.get::<_, String>(5)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (mut o, reason) = row?;
            o.verdict.reason = reason.parse().map_err(|_| StateError::Corrupt {
                what: "organic verdict reason",
                detail: reason.clone(),
            })?;
            out.push(o);
        }
        Ok(out)
    }

    /// The most recent weight submission, if any.
    pub fn last_submission(&self) -> Result<Option<WeightSubmission>> {
        let row = self
            .conn
            .query_row(
                "SELECT round, block, uids, weights, status, detail, attempts, latency_ms FROM weight_submissions
                 ORDER BY id DESC LIMIT 1",
                [],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, String>(5)?,
                        r.get::<_, u32>(6)?,
                        r.get::<_, f64>(7)?,
                    ))
                },
            )
            .optional()?;
        row.map(
            |(round, block, uids, weights, status, detail, attempts, latency_ms)| {
                let corrupt = |e: serde_json::Error| StateError::Corrupt {
                    what: "weight vector",
                    detail: e.to_string(),
                };
                Ok(WeightSubmission {
                    round: round as u64,
                    block: block as u64,
                    uids: serde_json::from_str(&uids).map_err(corrupt)?,
                    weights: serde_json::from_str(&weights).map_err(corrupt)?,
                    status,
                    detail,
                    attempts,
                    latency_ms,
                })
            },
        )
        .transpose()
    }

    /// Counts of weight submissions by status.
    pub fn submission_counts(&self) -> Result<Vec<(String, u64)>> {
        let mut st = self
            .conn
            .prepare("SELECT status, COUNT(*) FROM weight_submissions GROUP BY status ORDER BY status")?;
        let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Per-uid counts of passed and failed verdicts over all rounds.
    pub fn verdict_counts(&self) -> Result<Vec<(u16, u64, u64)>> {
        let mut st = self
            .conn
            .prepare("SELECT uid, SUM(passed), SUM(1 - passed) FROM verdicts GROUP BY uid ORDER BY uid")?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, u16>(0)?,
                r.get::<_, i64>(1)? as u64,
                r.get::<_, i64>(2)? as u64,
            ))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

struct OutcomeRow {
    uid: u16,
    hotkey: String,
    task: String,
    passed: bool,
    reason: String,
    detail: String,
    work_units: f64,
    rtt_ms: Option<f64>,
    total_ms: Option<f64>,
    compute_ms: Option<f64>,
    seed: String,
    answer_hash: Option<String>,
    devices: u32,
    dtype: Option<String>,
    device_runs: Option<String>,
}

impl OutcomeRow {
    fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            uid: r.get(1)?,
            hotkey: r.get(2)?,
            task: r.get(3)?,
            passed: r.get(4)?,
            reason: r.get(5)?,
            detail: r.get(6)?,
            work_units: r.get(7)?,
            rtt_ms: r.get(8)?,
            total_ms: r.get(9)?,
            compute_ms: r.get(10)?,
            seed: r.get(11)?,
            answer_hash: r.get(12)?,
            devices: r.get(13)?,
            dtype: r.get(14)?,
            device_runs: r.get(15)?,
        })
    }

    /// The stored outcome, with its task class and reason code parsed (a name no build knows is a
    /// corrupt row).
    fn into_outcome(self) -> Result<MinerOutcome> {
        let task = self.task.parse().map_err(|_| StateError::Corrupt {
            what: "verdict task class",
            detail: self.task.clone(),
        })?;
        let reason = self.reason.parse().map_err(|_| StateError::Corrupt {
            what: "verdict reason",
            detail: self.reason.clone(),
        })?;
        let dtype = self
            .dtype
            .map(|d| {
                d.parse().map_err(|_| StateError::Corrupt {
                    what: "verdict dtype class",
                    detail: d.clone(),
                })
            })
            .transpose()?;
        let device_runs = self
            .device_runs
            .map(|j| {
                serde_json::from_str(&j).map_err(|e| StateError::Corrupt {
                    what: "verdict device runs",
                    detail: e.to_string(),
                })
            })
            .transpose()?
            .unwrap_or_default();
        Ok(MinerOutcome {
            uid: self.uid,
            hotkey: self.hotkey,
            task,
            verdict: bench_tasks::Verdict {
                passed: self.passed,
                reason,
                detail: self.detail,
                work_units: self.work_units,
            },
            rtt_ms: self.rtt_ms,
            total_ms: self.total_ms,
            compute_ms: self.compute_ms,
            seed: self.seed,
            answer_hash: self.answer_hash,
            devices: self.devices,
            dtype,
            device_runs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roundlog::{GENESIS, LogEntry};

    fn commit(round: u64) -> RoundCommit {
        RoundCommit {
            round,
            attempt: round,
            block_number: 100 + round,
            block_hash: "aa".into(),
            started_ms: 1,
            finished_ms: 2,
            outcomes: vec![MinerOutcome {
                uid: 3,
                hotkey: "hk".into(),
                task: bench_tasks::wire::TaskClass::Matmul,
                verdict: bench_tasks::Verdict::fail(bench_tasks::Reason::WrongRow, "row 1", 8.0),
                rtt_ms: Some(1.5),
                total_ms: None,
                compute_ms: None,
                seed: "01".into(),
                answer_hash: None,
                devices: 2,
                dtype: Some(bench_tasks::matmul::MatmulDtype::Bf16),
                device_runs: vec![DeviceRun {
                    device: 1,
                    compute_ms: 2.0,
                }],
            }],
            organic: vec![OrganicOutcome {
                usage_id: 7,
                uid: 3,
                hotkey: "hk".into(),
                model_sha256: "ab".into(),
                verdict: bench_tasks::Verdict::fail(bench_tasks::Reason::WrongToken, "token 2", 12.0),
                ttft_ms: Some(80.0),
                total_ms: 400.0,
                seed: "9".into(),
                answer_hash: "cd".into(),
                checked_ms: 5,
            }],
            scores: vec![ScoreRow {
                uid: 3,
                hotkey: "hk".into(),
                ema: 0.25,
            }],
            scoring_state: format!("{{\"round\":{round}}}"),
        }
    }

    #[test]
    fn migrates_commits_atomically_and_refuses_double_counting() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open_dir(dir.path()).unwrap();
        assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
        assert_eq!(s.begin_attempt().unwrap(), 1);
        assert_eq!(s.begin_attempt().unwrap(), 2);
        let e1 = LogEntry::new(1, GENESIS, "round", &1).unwrap();
        s.commit_round(&commit(1), &e1).unwrap();
        // The same round again, or a gap, is refused and changes nothing.
        let e2 = LogEntry::new(2, &e1.hash, "round", &2).unwrap();
        assert!(matches!(
            s.commit_round(&commit(1), &e2),
            Err(StateError::RoundOutOfOrder { got: 1, last: 1 })
        ));
        assert!(matches!(
            s.commit_round(&commit(3), &e2),
            Err(StateError::RoundOutOfOrder { got: 3, last: 1 })
        ));
        assert_eq!(s.last_log_entry().unwrap().unwrap().seq, 1);
        drop(s);

        // Reopening keeps everything and does not re-run migrations.
        let s = Store::open_dir(dir.path()).unwrap();
        assert_eq!(s.last_round().unwrap(), 1);
        assert_eq!(s.last_attempt().unwrap(), 2);
        assert_eq!(s.scoring_state().unwrap(), Some((1, "{\"round\":1}".into())));
        let recent = s.recent_outcomes(3, 5).unwrap();
        assert_eq!(recent.len(), 1);
        assert_eq!(recent[0].1, commit(1).outcomes[0]);
        assert_eq!(s.round_outcomes(1).unwrap(), commit(1).outcomes);
        assert_eq!(s.organic_outcomes(1).unwrap(), commit(1).organic);
        assert!(s.organic_outcomes(2).unwrap().is_empty());
        assert_eq!(s.scores().unwrap()[0].ema, 0.25);
        assert_eq!(s.verdict_counts().unwrap(), vec![(3, 0, 1)]);
    }

    #[test]
    fn pruning_drops_old_rounds_and_keeps_counting() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open_dir(dir.path()).unwrap();
        let mut prev = GENESIS.to_owned();
        for round in 1..=5 {
            let e = LogEntry::new(round, &prev, "round", &round).unwrap();
            s.commit_round(&commit(round), &e).unwrap();
            let sub = WeightSubmission {
                round,
                block: round,
                uids: vec![3],
                weights: vec![65535],
                status: "included".into(),
                detail: String::new(),
                attempts: 1,
                latency_ms: 1.0,
            };
            let e2 = LogEntry::new(round + 100, &e.hash, "weights", &0).unwrap();
            s.record_submission(&sub, &e2).unwrap();
            prev = e2.hash;
        }
        // Rounds 1..=3 go: one round row, one verdict, one organic verdict and one submission each.
        assert_eq!(s.prune_before(4).unwrap(), 12);
        assert_eq!(s.round_count().unwrap(), 2);
        assert!(s.round_outcomes(3).unwrap().is_empty());
        assert!(s.organic_outcomes(3).unwrap().is_empty());
        assert_eq!(s.organic_outcomes(4).unwrap(), commit(4).organic);
        assert_eq!(s.round_outcomes(4).unwrap(), commit(4).outcomes);
        assert_eq!(s.recent_outcomes(3, 10).unwrap().len(), 2);
        assert_eq!(s.submission_counts().unwrap(), vec![("included".into(), 2)]);
        // The latest state stays, and rounds go on from where they were.
        assert_eq!(s.last_round().unwrap(), 5);
        assert_eq!(s.scores().unwrap()[0].ema, 0.25);
        let e = LogEntry::new(200, &prev, "round", &6).unwrap();
        s.commit_round(&commit(6), &e).unwrap();
        assert!(matches!(
            s.commit_round(&commit(6), &e),
            Err(StateError::RoundOutOfOrder { got: 6, last: 6 })
        ));
        assert_eq!(s.prune_before(4).unwrap(), 0);
    }

    /// A database written by a build of schema 1 (before organic verdicts) opens, keeps its rounds and
    /// takes organic verdicts from then on.
    #[test]
    fn a_schema_1_database_migrates_to_organic_verdicts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.sqlite");
        let v1 = open_migrated(&path, "FULL", &MIGRATIONS[..1]).unwrap();
        v1.execute(
            "INSERT INTO rounds(round, attempt, block_number, block_hash, started_ms, finished_ms, miners, passed)
             VALUES (1, 1, 101, 'aa', 1, 2, 0, 0)",
            [],
        )
        .unwrap();
        drop(v1);
        let mut s = Store::open(&path).unwrap();
        assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
        assert_eq!(s.last_round().unwrap(), 1);
        let e2 = LogEntry::new(1, GENESIS, "round", &2).unwrap();
        s.commit_round(&commit(2), &e2).unwrap();
        assert_eq!(s.organic_outcomes(2).unwrap(), commit(2).organic);
    }

    /// A database written by a build of schema 3 (before verdicts recorded the dtype class and the
    /// device runs) opens; its verdicts read back without them, and new ones keep them.
    #[test]
    fn a_schema_3_database_migrates_to_dtype_and_device_runs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.sqlite");
        let v2 = open_migrated(&path, "FULL", &MIGRATIONS[..3]).unwrap();
        v2.execute(
            "INSERT INTO rounds(round, attempt, block_number, block_hash, started_ms, finished_ms, miners, passed)
             VALUES (1, 1, 101, 'aa', 1, 2, 1, 1)",
            [],
        )
        .unwrap();
        v2.execute(
            "INSERT INTO verdicts(round, uid, hotkey, task, passed, reason, detail, work_units, rtt_ms, total_ms,
             compute_ms, seed, answer_hash) VALUES (1, 3, 'hk', 'matmul', 1, 'passed', '', 64.0, 1.0, 3.0, 2.0,
             '01', NULL)",
            [],
        )
        .unwrap();
        drop(v2);
        let mut s = Store::open(&path).unwrap();
        assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
        let old = &s.round_outcomes(1).unwrap()[0];
        assert!(old.verdict.passed);
        assert_eq!((old.dtype, old.device_runs.len()), (None, 0));
        // Without a recorded class it yields no throughput sample.
        assert!(s.passed_matmul_outcomes(3, 10).unwrap().is_empty());
        let mut c = commit(2);
        c.outcomes[0].verdict = bench_tasks::Verdict::pass(64.0);
        c.outcomes[0].compute_ms = Some(2.0);
        s.commit_round(&c, &LogEntry::new(1, GENESIS, "round", &2).unwrap())
            .unwrap();
        assert_eq!(s.round_outcomes(2).unwrap(), c.outcomes);
        let passed = s.passed_matmul_outcomes(3, 10).unwrap();
        assert_eq!(passed.len(), 1);
        assert_eq!(passed[0].0, 2);
        assert_eq!(
            (passed[0].1.dtype, passed[0].1.device_runs.clone()),
            (
                Some(bench_tasks::matmul::MatmulDtype::Bf16),
                vec![DeviceRun {
                    device: 1,
                    compute_ms: 2.0
                }]
            )
        );
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.sqlite");
        drop(Store::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        drop(conn);
        assert!(matches!(Store::open(&path), Err(StateError::TooNew { .. })));
    }

    #[test]
    fn submissions_are_recorded_with_their_outcome() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open_dir(dir.path()).unwrap();
        let sub = WeightSubmission {
            round: 4,
            block: 9,
            uids: vec![1, 2],
            weights: vec![65535, 100],
            status: "included".into(),
            detail: "set_weights".into(),
            attempts: 2,
            latency_ms: 12.0,
        };
        s.record_submission(&sub, &LogEntry::new(1, GENESIS, "weights", &0).unwrap())
            .unwrap();
        assert_eq!(s.last_submission().unwrap(), Some(sub));
        assert_eq!(s.submission_counts().unwrap(), vec![("included".into(), 1)]);
    }
}
