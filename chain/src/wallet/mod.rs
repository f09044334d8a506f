//! btcli-compatible wallets: read and write `~/.bittensor/wallets/<wallet>/…` exactly as btcli does.
//!
//! ```text
//! <path>/<wallet>/coldkey                 encrypted ($NACL) keyfile JSON
//! <path>/<wallet>/coldkeypub.txt          public-only JSON
//! <path>/<wallet>/hotkeys/<hotkey>        keyfile JSON, unencrypted by default
//! <path>/<wallet>/hotkeys/<hotkey>pub.txt public-only JSON
//! ```
//! Passwords for encrypted keyfiles come, in order, from: the caller; btwallet's `BT_PW_<PATH>` variable
//! (see [`keyfile::password_env_name`]); `TENSORPROOF_COLDKEY_PASSWORD` (or
//! `TENSORPROOF_HOTKEY_PASSWORD`), the plain password; an interactive prompt when stdin is a terminal.
//!
//! ```no_run
//! use chain::wallet::Wallet;
//! let wallet = Wallet::new("~/.bittensor/wallets", "default", "default").unwrap();
//! let hotkey = wallet.hotkey().unwrap(); // signs requests and weights
//! println!("{}", hotkey.ss58());
//! ```

pub mod cli;
pub mod keyfile;

use std::fs;
use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};

pub use cli::{WalletArgs, WalletCommand};
pub use keyfile::{KdfCost, KeyfileData, KeyfileError};

use crate::keys::{AccountId, Keypair};

/// The plain-text coldkey password variable (simpler than btwallet's `BT_PW_*`).
pub const COLDKEY_PASSWORD_ENV: &str = "TENSORPROOF_COLDKEY_PASSWORD";
/// The plain-text hotkey password variable, for encrypted hotkeys.
pub const HOTKEY_PASSWORD_ENV: &str = "TENSORPROOF_HOTKEY_PASSWORD";
/// btcli's default wallet folder.
pub const DEFAULT_WALLET_PATH: &str = "~/.bittensor/wallets";

/// What went wrong with a wallet file; every message names the file and the fix.
#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    /// The file does not exist.
    #[error(
        "no {what} at {path}; create it with `wallet new` (or btcli), or pass --wallet-path/--wallet/--hotkey"
    )]
    NotFound {
        /// "hotkey", "coldkey"…
        what: &'static str,
        /// The file looked for.
        path: PathBuf,
    },
    /// The file exists but cannot be used.
    #[error("{path} {source}")]
    Keyfile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: KeyfileError,
    },
    /// The file is encrypted and no password is available.
    #[error("{path} is encrypted; set {env} (or btcli's {bt_env}) or run in a terminal to be asked")]
    NoPassword {
        /// The file.
        path: PathBuf,
        /// Our plain env var.
        env: &'static str,
        /// btwallet's env var.
        bt_env: String,
    },
    /// Creating a file that exists.
    #[error("{path} already exists; choose another --wallet/--hotkey name (btcli keeps one key per name)")]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// A wallet or hotkey name that would escape the wallet folder.
    #[error("`{0}` is not a valid wallet or hotkey name; use letters, digits, `-`, `_` or `.` (not leading)")]
    BadName(String),
    /// The passwords typed at the prompt differ, or are empty.
    #[error("{0}")]
    Password(String),
    /// A filesystem error.
    #[error("cannot access {path}: {source}; check the path and its permissions")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// Where a password comes from.
#[derive(Debug, Clone, Default)]
pub enum Password {
    /// Environment variables, then a prompt if stdin is a terminal.
    #[default]
    Auto,
    /// Environment variables only: never prompt (for services).
    EnvOnly,
    /// This password.
    Given(String),
}

/// One wallet (a coldkey and a named hotkey) under a wallets folder.
#[derive(Debug, Clone)]
pub struct Wallet {
    dir: PathBuf,
    name: String,
    hotkey: String,
}

/// Expands a leading `~` to `$HOME`.
pub fn expand_home(path: &str) -> PathBuf {
    if (path == "~" || path.starts_with("~/"))
        && let Some(home) = std::env::var_os("HOME")
    {
        return PathBuf::from(home).join(path.trim_start_matches('~').trim_start_matches('/'));
    }
    PathBuf::from(path)
}

fn check_name(name: &str) -> Result<(), WalletError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(WalletError::BadName(name.to_owned()))
    }
}

impl Wallet {
    /// The wallet `name` with hotkey `hotkey` under `path` (`~` is expanded).
    pub fn new(path: impl AsRef<str>, name: &str, hotkey: &str) -> Result<Self, WalletError> {
        check_name(name)?;
        check_name(hotkey)?;
        Ok(Self {
            dir: expand_home(path.as_ref()),
            name: name.to_owned(),
            hotkey: hotkey.to_owned(),
        })
    }

    /// The wallet's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The hotkey's name.
    pub fn hotkey_name(&self) -> &str {
        &self.hotkey
    }

    /// `<path>/<wallet>`.
    pub fn wallet_dir(&self) -> PathBuf {
        self.dir.join(&self.name)
    }

    /// `<path>/<wallet>/coldkey`.
    pub fn coldkey_path(&self) -> PathBuf {
        self.wallet_dir().join("coldkey")
    }

    /// `<path>/<wallet>/coldkeypub.txt`.
    pub fn coldkeypub_path(&self) -> PathBuf {
        self.wallet_dir().join("coldkeypub.txt")
    }

    /// `<path>/<wallet>/hotkeys/<hotkey>`.
    pub fn hotkey_path(&self) -> PathBuf {
        self.wallet_dir().join("hotkeys").join(&self.hotkey)
    }

    /// `<path>/<wallet>/hotkeys/<hotkey>pub.txt`.
    pub fn hotkeypub_path(&self) -> PathBuf {
        self.wallet_dir()
            .join("hotkeys")
            .join(format!("{}pub.txt", self.hotkey))
    }

    /// The hotkey's secret (passwords per [`Password::Auto`] if it is encrypted).
    pub fn hotkey(&self) -> Result<Keypair, WalletError> {
        self.hotkey_with(&Password::Auto)
    }

    /// The hotkey's secret with an explicit password source.
    pub fn hotkey_with(&self, password: &Password) -> Result<Keypair, WalletError> {
        load_keypair(&self.hotkey_path(), "hotkey", HOTKEY_PASSWORD_ENV, password)
    }

    /// The coldkey's secret (needed only to register or stake).
    pub fn coldkey(&self, password: &Password) -> Result<Keypair, WalletError> {
        load_keypair(&self.coldkey_path(), "coldkey", COLDKEY_PASSWORD_ENV, password)
    }

    /// The coldkey's address from `coldkeypub.txt` (no password needed).
    pub fn coldkeypub(&self) -> Result<AccountId, WalletError> {
        let path = self.coldkeypub_path();
        let data = read_plain(&path, "coldkeypub.txt")?;
        data.account()
            .map_err(|source| WalletError::Keyfile { path, source })
    }

    /// The hotkey's address: from `hotkeys/<name>pub.txt` if present, else the (unencrypted) keyfile.
    pub fn hotkey_account(&self) -> Result<AccountId, WalletError> {
        let pub_path = self.hotkeypub_path();
        if pub_path.exists() {
            let data = read_plain(&pub_path, "hotkey public file")?;
            return data.account().map_err(|source| WalletError::Keyfile {
                path: pub_path,
                source,
            });
        }
        let path = self.hotkey_path();
        let data = read_plain(&path, "hotkey")?;
        data.account()
            .map_err(|source| WalletError::Keyfile { path, source })
    }

    /// Creates a coldkey from a fresh mnemonic: `coldkey` (encrypted unless `password` is `None`) and
    /// `coldkeypub.txt`. Returns the key and its mnemonic, which the user must back up.
    pub fn create_coldkey(
        &self,
        password: Option<&str>,
        cost: KdfCost,
    ) -> Result<(Keypair, String), WalletError> {
        let (key, phrase, seed) = Keypair::generate();
        self.write_coldkey(&key, Some(&phrase), Some(&seed), password, cost)?;
        Ok((key, phrase))
    }

    /// Writes an existing coldkey (e.g. regenerated from a mnemonic). Refuses to overwrite.
    pub fn write_coldkey(
        &self,
        key: &Keypair,
        phrase: Option<&str>,
        seed: Option<&[u8; 32]>,
        password: Option<&str>,
        cost: KdfCost,
    ) -> Result<(), WalletError> {
        let path = self.coldkey_path();
        refuse_existing(&path)?;
        refuse_existing(&self.coldkeypub_path())?;
        let json = KeyfileData::from_keypair(key, phrase, seed).to_json();
        let bytes = match password {
            Some(pw) => keyfile::encrypt(&json, pw, cost).map_err(|source| WalletError::Keyfile {
                path: path.clone(),
                source,
            })?,
            None => json,
        };
        write_file(&path, &bytes, true)?;
        write_file(
            &self.coldkeypub_path(),
            &KeyfileData::public_only(&key.account()).to_json(),
            false,
        )
    }

    /// Creates an unencrypted hotkey from a fresh mnemonic (btcli's default), plus `<name>pub.txt`.
    pub fn create_hotkey(&self) -> Result<(Keypair, String), WalletError> {
        let (key, phrase, seed) = Keypair::generate();
        self.write_hotkey(&key, Some(&phrase), Some(&seed))?;
        Ok((key, phrase))
    }

    /// Writes an existing hotkey, unencrypted. Refuses to overwrite.
    pub fn write_hotkey(
        &self,
        key: &Keypair,
        phrase: Option<&str>,
        seed: Option<&[u8; 32]>,
    ) -> Result<(), WalletError> {
        let path = self.hotkey_path();
        refuse_existing(&path)?;
        refuse_existing(&self.hotkeypub_path())?;
        write_file(
            &path,
            &KeyfileData::from_keypair(key, phrase, seed).to_json(),
            true,
        )?;
        write_file(
            &self.hotkeypub_path(),
            &KeyfileData::public_only(&key.account()).to_json(),
            false,
        )
    }
}

fn refuse_existing(path: &Path) -> Result<(), WalletError> {
    if path.exists() {
        Err(WalletError::Exists {
            path: path.to_owned(),
        })
    } else {
        Ok(())
    }
}

fn write_file(path: &Path, bytes: &[u8], secret: bool) -> Result<(), WalletError> {
    let io = |source| WalletError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(io)?;
    }
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(if secret { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut f = opts.open(path).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)
}

/// Largest keyfile read; real ones are under 1 KiB.
const MAX_KEYFILE_BYTES: u64 = 64 * 1024;

fn read_bytes(path: &Path, what: &'static str) -> Result<Vec<u8>, WalletError> {
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(WalletError::NotFound {
                what,
                path: path.to_owned(),
            });
        }
        Err(source) => {
            return Err(WalletError::Io {
                path: path.to_owned(),
                source,
            });
        }
    };
    if meta.len() > MAX_KEYFILE_BYTES {
        return Err(WalletError::Keyfile {
            path: path.to_owned(),
            source: KeyfileError::Malformed(format!("{} bytes is too large for a keyfile", meta.len())),
        });
    }
    fs::read(path).map_err(|source| WalletError::Io {
        path: path.to_owned(),
        source,
    })
}

fn read_plain(path: &Path, what: &'static str) -> Result<KeyfileData, WalletError> {
    let bytes = read_bytes(path, what)?;
    if keyfile::encoding(&bytes) != keyfile::Encoding::Plain {
        return Err(WalletError::Keyfile {
            path: path.to_owned(),
            source: KeyfileError::Malformed("is encrypted, expected a public keyfile".into()),
        });
    }
    KeyfileData::from_json(&bytes).map_err(|source| WalletError::Keyfile {
        path: path.to_owned(),
        source,
    })
}

/// Loads a secret keypair from a keyfile, decrypting it if needed.
pub fn load_keypair(
    path: &Path,
    what: &'static str,
    env: &'static str,
    password: &Password,
) -> Result<Keypair, WalletError> {
    let bytes = read_bytes(path, what)?;
    let kerr = |source| WalletError::Keyfile {
        path: path.to_owned(),
        source,
    };
    let json = match keyfile::encoding(&bytes) {
        keyfile::Encoding::Plain => bytes,
        keyfile::Encoding::AnsibleVault => return Err(kerr(KeyfileError::Legacy("ansible-vault"))),
        keyfile::Encoding::Fernet => return Err(kerr(KeyfileError::Legacy("Fernet"))),
        keyfile::Encoding::Nacl => {
            let pw = resolve_password(path, env, password)?;
            keyfile::decrypt(&bytes, &pw, KdfCost::SENSITIVE).map_err(kerr)?
        }
    };
    KeyfileData::from_json(&json)
        .and_then(|d| d.keypair())
        .map_err(kerr)
}

fn resolve_password(path: &Path, env: &'static str, password: &Password) -> Result<String, WalletError> {
    if let Password::Given(pw) = password {
        return Ok(pw.clone());
    }
    let bt_env = keyfile::password_env_name(&path.to_string_lossy());
    if let Ok(value) = std::env::var(&bt_env)
        && let Some(pw) = keyfile::decode_env_password(&bt_env, &value)
    {
        return Ok(pw);
    }
    if let Ok(pw) = std::env::var(env) {
        return Ok(pw);
    }
    if matches!(password, Password::Auto) && std::io::stdin().is_terminal() {
        return rpassword::prompt_password(format!("Password for {}: ", path.display())).map_err(|source| {
            WalletError::Io {
                path: path.to_owned(),
                source,
            }
        });
    }
    Err(WalletError::NoPassword {
        path: path.to_owned(),
        env,
        bt_env,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_escape_the_wallet_folder() {
        assert!(matches!(
            Wallet::new("/w", "../x", "default"),
            Err(WalletError::BadName(_))
        ));
        assert!(matches!(
            Wallet::new("/w", "a", "h/../../etc"),
            Err(WalletError::BadName(_))
        ));
        assert!(matches!(Wallet::new("/w", "", "h"), Err(WalletError::BadName(_))));
        let w = Wallet::new("/w", "my-wallet", "hk_1").unwrap();
        assert_eq!(w.hotkey_path(), PathBuf::from("/w/my-wallet/hotkeys/hk_1"));
        assert_eq!(
            w.hotkeypub_path(),
            PathBuf::from("/w/my-wallet/hotkeys/hk_1pub.txt")
        );
    }

    #[test]
    fn hotkey_round_trip_and_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        let w = Wallet::new(dir.path().to_str().unwrap(), "w", "h").unwrap();
        let err = w.hotkey().unwrap_err();
        assert!(
            matches!(err, WalletError::NotFound { what: "hotkey", .. }),
            "{err}"
        );
        assert!(err.to_string().contains("wallet new"));
        let (key, _) = w.create_hotkey().unwrap();
        assert_eq!(w.hotkey().unwrap().account(), key.account());
        assert_eq!(w.hotkey_account().unwrap(), key.account());
        assert!(matches!(w.create_hotkey(), Err(WalletError::Exists { .. })));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(w.hotkey_path()).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn encrypted_coldkey_with_cheap_kdf_round_trips_through_the_file() {
        let cheap = KdfCost {
            ops: 1,
            mem_bytes: 64 * 1024,
        };
        let dir = tempfile::tempdir().unwrap();
        let w = Wallet::new(dir.path().to_str().unwrap(), "w", "h").unwrap();
        let (key, _) = w.create_coldkey(Some("pw"), cheap).unwrap();
        assert_eq!(w.coldkeypub().unwrap(), key.account());
        let bytes = fs::read(w.coldkey_path()).unwrap();
        let plain = keyfile::decrypt(&bytes, "pw", cheap).unwrap();
        assert_eq!(
            KeyfileData::from_json(&plain)
                .unwrap()
                .keypair()
                .unwrap()
                .account(),
            key.account()
        );
    }

    #[test]
    fn malformed_and_legacy_files_say_so() {
        let dir = tempfile::tempdir().unwrap();
        let w = Wallet::new(dir.path().to_str().unwrap(), "w", "h").unwrap();
        fs::create_dir_all(w.hotkey_path().parent().unwrap()).unwrap();
        fs::write(w.hotkey_path(), b"{not json").unwrap();
        let err = w.hotkey().unwrap_err().to_string();
        assert!(err.contains("is not a valid keyfile"), "{err}");
        fs::write(w.hotkey_path(), b"gAAAAABfoo").unwrap();
        let err = w.hotkey().unwrap_err().to_string();
        assert!(err.contains("legacy Fernet"), "{err}");
        fs::write(w.hotkey_path(), b"$NACLxxxxxxxx").unwrap();
        let err = w.hotkey_with(&Password::EnvOnly).unwrap_err();
        assert!(matches!(err, WalletError::NoPassword { .. }), "{err}");
    }
}
