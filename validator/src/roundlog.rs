//! The hash-chained, append-only round log.
//!
//! One JSON object per line: `{"seq":N,"prev":"<hex>","kind":"…","body":{…},"hash":"<hex>"}`. `hash` is
//! blake3 over a domain tag, `seq`, `prev`, `kind` and the body's exact bytes as written, and `prev` is the
//! previous line's `hash` (64 zeros for the first), so changing, dropping, inserting or reordering any line
//! breaks the chain at that line. Bodies hold everything a round used and produced (see
//! [`crate::record`]), so `validator replay` can recompute scores and weights from the log alone.
//!
//! Lines are written after the state database commits (see [`crate::state`]); [`RoundLog::open`] restores
//! the one line a crash can lose between the commit and the write, and drops a torn final fragment.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// `prev` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

const DOMAIN: &[u8] = b"tensorproof/roundlog/1\n";

/// An error reading or writing the round log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The file could not be read or written.
    #[error("round log {path}: {source}; check the path and its permissions")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A line is not a log entry.
    #[error(
        "round log line {line} is not a valid entry ({detail}); the file was edited or is not a round log"
    )]
    Malformed {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        detail: String,
    },
    /// The hash chain is broken.
    #[error(
        "round log chain broken at line {line} (seq {seq}): {detail}; the log was tampered with or truncated"
    )]
    Broken {
        /// 1-based line number.
        line: usize,
        /// The entry's sequence number.
        seq: u64,
        /// What does not match.
        detail: String,
    },
    /// The file and the state database disagree in a way a crash cannot explain.
    #[error(
        "round log {path} disagrees with the state database ({detail}); restore both from the same backup or start a new --state-dir"
    )]
    Diverged {
        /// The file.
        path: PathBuf,
        /// What disagrees.
        detail: String,
    },
}

/// Result alias for this module.
pub type Result<T, E = LogError> = std::result::Result<T, E>;

/// One entry of the round log.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogEntry {
    /// Sequence number, 1 for the first entry.
    pub seq: u64,
    /// Hex hash of the previous entry.
    pub prev: String,
    /// What the body holds (`policy`, `round`, `weights`).
    pub kind: String,
    /// The body, kept as the exact bytes that were hashed.
    pub body: Box<RawValue>,
    /// Hex blake3 chain hash of this entry.
    pub hash: String,
}

impl LogEntry {
    /// Computes the chain hash of an entry from its parts.
    pub fn compute_hash(seq: u64, prev: &str, kind: &str, body: &str) -> String {
        let mut h = blake3::Hasher::new();
        h.update(DOMAIN);
        h.update(seq.to_string().as_bytes());
        h.update(b"\n");
        h.update(prev.as_bytes());
        h.update(b"\n");
        h.update(kind.as_bytes());
        h.update(b"\n");
        h.update(body.as_bytes());
        h.finalize().to_hex().to_string()
    }

    /// Builds the entry following `prev_hash` at `seq`.
    pub fn new(
        seq: u64,
        prev_hash: &str,
        kind: &str,
        body: &impl Serialize,
    ) -> Result<Self, serde_json::Error> {
        let body = serde_json::value::to_raw_value(body)?;
        let hash = Self::compute_hash(seq, prev_hash, kind, body.get());
        Ok(Self {
            seq,
            prev: prev_hash.to_owned(),
            kind: kind.to_owned(),
            body,
            hash,
        })
    }

    /// Parses one line (without its newline).
    pub fn parse(line: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(line)
    }

    /// The entry as one line of JSON, without the newline.
    pub fn line(&self) -> String {
        // Serializing a struct of strings, integers and a raw value cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Whether `hash` matches the entry's contents.
    pub fn hash_ok(&self) -> bool {
        Self::compute_hash(self.seq, &self.prev, &self.kind, self.body.get()) == self.hash
    }

    /// Decodes the body.
    pub fn body_as<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.body.get())
    }
}

/// Reads and verifies a whole log. A final fragment without a newline (a torn write) is reported through the
/// second value (its byte offset) instead of as an error.
pub fn read_verified(path: &Path) -> Result<(Vec<LogEntry>, Option<u64>)> {
    let io = |source| LogError::Io {
        path: path.to_owned(),
        source,
    };
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), None)),
        Err(e) => return Err(io(e)),
    };
    let mut reader = BufReader::new(file);
    let mut entries: Vec<LogEntry> = Vec::new();
    let mut offset = 0u64;
    let mut buf = String::new();
    let mut line_no = 0usize;
    loop {
        buf.clear();
        let n = reader.read_line(&mut buf).map_err(io)?;
        if n == 0 {
            return Ok((entries, None));
        }
        line_no += 1;
        if !buf.ends_with('\n') {
            return Ok((entries, Some(offset)));
        }
        offset += n as u64;
        let text = buf.trim_end_matches('\n');
        let entry = LogEntry::parse(text).map_err(|e| LogError::Malformed {
            line: line_no,
            detail: e.to_string(),
        })?;
        let (want_seq, want_prev) = match entries.last() {
            None => (1, GENESIS),
            Some(p) => (p.seq + 1, p.hash.as_str()),
        };
        if entry.seq != want_seq {
            return Err(LogError::Broken {
                line: line_no,
                seq: entry.seq,
                detail: format!("expected seq {want_seq}"),
            });
        }
        if entry.prev != want_prev {
            return Err(LogError::Broken {
                line: line_no,
                seq: entry.seq,
                detail: "prev does not equal the previous entry's hash".into(),
            });
        }
        if !entry.hash_ok() {
            return Err(LogError::Broken {
                line: line_no,
                seq: entry.seq,
                detail: "hash does not match the entry's contents".into(),
            });
        }
        entries.push(entry);
    }
}

/// The open round log, positioned for appending.
#[derive(Debug)]
pub struct RoundLog {
    path: PathBuf,
    file: File,
    last_seq: u64,
    last_hash: String,
}

impl RoundLog {
    /// Opens (creating if needed) the log at `path`, verifies its whole chain and reconciles it with
    /// `committed`, the last entry the state database committed: a torn final fragment is cut off, and the
    /// committed entry is appended when the crash happened between the commit and the file write.
    pub fn open(path: &Path, committed: Option<&LogEntry>) -> Result<Self> {
        let io = |source| LogError::Io {
            path: path.to_owned(),
            source,
        };
        let (entries, torn) = read_verified(path)?;
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .map_err(io)?;
        if let Some(at) = torn {
            file.set_len(at).map_err(io)?;
            file.sync_data().map_err(io)?;
        }
        file.seek(SeekFrom::End(0)).map_err(io)?;
        let (last_seq, last_hash) = entries
            .last()
            .map(|e| (e.seq, e.hash.clone()))
            .unwrap_or_else(|| (0, GENESIS.to_owned()));
        let mut log = Self {
            path: path.to_owned(),
            file,
            last_seq,
            last_hash,
        };
        if let Some(c) = committed {
            let diverged = |detail: String| LogError::Diverged {
                path: path.to_owned(),
                detail,
            };
            if c.seq == log.last_seq + 1 {
                log.append(c)?;
            } else if c.seq <= log.last_seq {
                let on_file = &entries[(c.seq - 1) as usize];
                if on_file.hash != c.hash {
                    return Err(diverged(format!(
                        "entry {} has a different hash in the file",
                        c.seq
                    )));
                }
            } else {
                return Err(diverged(format!(
                    "the database committed entry {} but the file ends at {}",
                    c.seq, log.last_seq
                )));
            }
        }
        Ok(log)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sequence number of the last entry (0 when empty).
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Builds the next entry without writing it (commit it to the state database first, then
    /// [`append`](Self::append) it).
    pub fn next_entry(&self, kind: &str, body: &impl Serialize) -> Result<LogEntry, serde_json::Error> {
        LogEntry::new(self.last_seq + 1, &self.last_hash, kind, body)
    }

    /// Appends `entry` (which must follow the current last entry) and syncs it to disk.
    pub fn append(&mut self, entry: &LogEntry) -> Result<()> {
        if entry.seq != self.last_seq + 1 || entry.prev != self.last_hash || !entry.hash_ok() {
            return Err(LogError::Diverged {
                path: self.path.clone(),
                detail: format!("entry {} does not follow entry {}", entry.seq, self.last_seq),
            });
        }
        let mut line = entry.line();
        line.push('\n');
        let io = |source| LogError::Io {
            path: self.path.clone(),
            source,
        };
        self.file.write_all(line.as_bytes()).map_err(io)?;
        self.file.sync_data().map_err(io)?;
        self.last_seq = entry.seq;
        self.last_hash = entry.hash.clone();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_entries(log: &mut RoundLog, n: u64) {
        for i in 0..n {
            let e = log
                .next_entry("round", &serde_json::json!({"i": i, "x": [1.5, 2.25]}))
                .unwrap();
            log.append(&e).unwrap();
        }
    }

    #[test]
    fn chain_verifies_and_detects_every_kind_of_tampering() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rounds.log");
        let mut log = RoundLog::open(&path, None).unwrap();
        write_entries(&mut log, 5);
        drop(log);
        let (entries, torn) = read_verified(&path).unwrap();
        assert_eq!(entries.len(), 5);
        assert!(torn.is_none());

        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let check = |lines: Vec<String>| {
            let p = dir.path().join("t.log");
            std::fs::write(&p, lines.join("\n") + "\n").unwrap();
            read_verified(&p)
        };
        // Edited body.
        let mut edited: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
        edited[2] = edited[2].replace("\"i\":2", "\"i\":7");
        assert!(matches!(check(edited), Err(LogError::Broken { line: 3, .. })));
        // Dropped line.
        let mut dropped: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
        dropped.remove(1);
        assert!(matches!(check(dropped), Err(LogError::Broken { line: 2, .. })));
        // Swapped lines.
        let mut swapped: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
        swapped.swap(3, 4);
        assert!(matches!(check(swapped), Err(LogError::Broken { line: 4, .. })));
        // Re-hashed edit still breaks the next link.
        let mut rehashed: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
        let mut e = LogEntry::parse(&rehashed[1]).unwrap();
        e.body = serde_json::value::to_raw_value(&serde_json::json!({"i": 99})).unwrap();
        e.hash = LogEntry::compute_hash(e.seq, &e.prev, &e.kind, e.body.get());
        rehashed[1] = e.line();
        assert!(matches!(check(rehashed), Err(LogError::Broken { line: 3, .. })));
        // Garbage line.
        let mut garbage: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
        garbage[0] = "not json".into();
        assert!(matches!(check(garbage), Err(LogError::Malformed { line: 1, .. })));
    }

    #[test]
    fn torn_tail_is_cut_and_lost_committed_entry_restored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rounds.log");
        let mut log = RoundLog::open(&path, None).unwrap();
        write_entries(&mut log, 3);
        // The database committed entry 4, the process died after writing half of it.
        let e4 = log.next_entry("round", &serde_json::json!({"i": 3})).unwrap();
        drop(log);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        let line = e4.line();
        f.write_all(&line.as_bytes()[..line.len() / 2]).unwrap();
        drop(f);
        assert!(read_verified(&path).unwrap().1.is_some());

        let log = RoundLog::open(&path, Some(&e4)).unwrap();
        assert_eq!(log.last_seq(), 4);
        let (entries, torn) = read_verified(&path).unwrap();
        assert_eq!(entries.len(), 4);
        assert!(torn.is_none());
        assert_eq!(entries[3].hash, e4.hash);

        // Reopening with the same committed entry changes nothing.
        drop(log);
        let log = RoundLog::open(&path, Some(&e4)).unwrap();
        assert_eq!(log.last_seq(), 4);
        // A committed entry the file cannot explain is refused.
        let far = LogEntry::new(9, GENESIS, "round", &1).unwrap();
        drop(log);
        assert!(matches!(
            RoundLog::open(&path, Some(&far)),
            Err(LogError::Diverged { .. })
        ));
        let other = LogEntry::new(2, GENESIS, "round", &1).unwrap();
        assert!(matches!(
            RoundLog::open(&path, Some(&other)),
            Err(LogError::Diverged { .. })
        ));
    }

    #[test]
    fn append_refuses_an_entry_that_does_not_follow() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = RoundLog::open(&dir.path().join("l"), None).unwrap();
        let e1 = log.next_entry("policy", &"p").unwrap();
        log.append(&e1).unwrap();
        assert!(log.append(&e1).is_err());
    }
}
