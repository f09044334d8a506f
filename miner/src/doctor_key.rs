//! The self-test key: `miner run` writes a fresh one to its state folder at every start, and
//! `miner doctor` signs with it (the miner accepts it only from a loopback peer).

use std::path::{Path, PathBuf};

use anyhow::Context;
use chain::keys::Keypair;

/// `~/.tensorproof/miner` (or `./.tensorproof/miner` without a home folder).
pub fn default_state_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map_or_else(|| PathBuf::from("."), PathBuf::from)
        .join(".tensorproof")
        .join("miner")
}

/// Where `miner run` writes the self-test key that `miner doctor` reads.
pub fn doctor_key_path(state_dir: &Path) -> PathBuf {
    state_dir.join("doctor-key")
}

/// Creates a fresh self-test key and writes its seed to `path` (mode 0600).
pub fn write_doctor_key(path: &Path) -> anyhow::Result<Keypair> {
    let (key, _phrase, seed) = Keypair::generate();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| {
            format!(
                "cannot create {}; pass --state-dir with a writable folder",
                dir.display()
            )
        })?;
    }
    let text = format!("0x{}\n", hex::encode(seed));
    #[cfg(unix)]
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .with_context(|| {
                format!(
                    "cannot write {}; pass --state-dir with a writable folder",
                    path.display()
                )
            })?;
        file.write_all(text.as_bytes())?;
    }
    #[cfg(not(unix))]
    std::fs::write(path, text)?;
    Ok(key)
}

/// Reads the self-test key written by [`write_doctor_key`].
pub fn read_doctor_key(path: &Path) -> anyhow::Result<Keypair> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "no self-test key at {}; start `miner run` first or pass --state-dir",
            path.display()
        )
    })?;
    let seed = hex::decode(text.trim().trim_start_matches("0x")).with_context(|| {
        format!(
            "{} is not a hex seed; restart `miner run` to rewrite it",
            path.display()
        )
    })?;
    Keypair::from_seed_slice(&seed).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doctor_key_round_trips_through_its_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = doctor_key_path(dir.path());
        let written = write_doctor_key(&path).expect("writes");
        assert_eq!(
            read_doctor_key(&path).expect("reads").account(),
            written.account()
        );
    }
}
