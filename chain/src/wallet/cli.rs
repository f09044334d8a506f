//! The `wallet new` / `wallet show` subcommands and the `--wallet-path/--wallet/--hotkey` flags, shared by
//! the miner and validator binaries.
//!
//! ```
//! use clap::{Parser, Subcommand};
//! use chain::wallet::{WalletArgs, WalletCommand};
//!
//! #[derive(Parser)]
//! struct Cli {
//!     #[command(flatten)]
//!     wallet: WalletArgs,
//!     #[command(subcommand)]
//!     cmd: Cmd,
//! }
//! #[derive(Subcommand)]
//! enum Cmd {
//!     /// Manage keys.
//!     #[command(subcommand)]
//!     Wallet(WalletCommand),
//! }
//! let cli = Cli::parse_from(["miner", "--wallet", "w1", "wallet", "show"]);
//! assert_eq!(cli.wallet.wallet, "w1");
//! assert_eq!(cli.wallet.hotkey, "default");
//! ```

use std::io::{IsTerminal as _, Write};

use super::{COLDKEY_PASSWORD_ENV, DEFAULT_WALLET_PATH, KdfCost, Wallet, WalletError};

/// Which wallet and hotkey to use.
#[derive(Debug, Clone, clap::Args)]
pub struct WalletArgs {
    /// Folder holding btcli wallets.
    #[arg(long, env = "BT_WALLET_PATH", default_value = DEFAULT_WALLET_PATH, global = true)]
    pub wallet_path: String,
    /// Wallet (coldkey) name.
    #[arg(
        long = "wallet",
        alias = "wallet.name",
        env = "BT_WALLET_NAME",
        default_value = "default",
        global = true
    )]
    pub wallet: String,
    /// Hotkey name within the wallet.
    #[arg(
        long,
        alias = "wallet.hotkey",
        env = "BT_WALLET_HOTKEY",
        default_value = "default",
        global = true
    )]
    pub hotkey: String,
}

impl WalletArgs {
    /// The selected wallet.
    pub fn open(&self) -> Result<Wallet, WalletError> {
        Wallet::new(&self.wallet_path, &self.wallet, &self.hotkey)
    }
}

/// `wallet` subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum WalletCommand {
    /// Create a coldkey and hotkey, or only the hotkey when the wallet's coldkey exists.
    ///
    /// The coldkey password comes from TENSORPROOF_COLDKEY_PASSWORD, else a prompt; use --no-password for
    /// an unencrypted coldkey (test wallets only).
    New {
        /// Write the coldkey unencrypted (anyone who can read the file can spend its funds).
        #[arg(long)]
        no_password: bool,
    },
    /// Print the wallet's coldkey and hotkey SS58 addresses.
    Show,
}

impl WalletCommand {
    /// Runs the command, writing human-readable output to `out` and warnings to stderr.
    pub fn run(&self, args: &WalletArgs, out: &mut dyn Write) -> Result<(), WalletError> {
        let wallet = args.open()?;
        let io = |source| WalletError::Io {
            path: wallet.wallet_dir(),
            source,
        };
        match self {
            Self::Show => {
                let cold = wallet.coldkeypub()?;
                let hot = wallet.hotkey_account()?;
                writeln!(out, "wallet   {}", wallet.wallet_dir().display()).map_err(io)?;
                writeln!(out, "coldkey  {cold}").map_err(io)?;
                writeln!(out, "hotkey   {hot}  ({})", wallet.hotkey_name()).map_err(io)?;
            }
            Self::New { no_password } => {
                let has_cold = wallet.coldkeypub_path().exists() || wallet.coldkey_path().exists();
                if has_cold {
                    writeln!(out, "coldkey  {} (existing)", wallet.coldkeypub()?).map_err(io)?;
                } else {
                    let password = coldkey_password(*no_password)?;
                    if password.is_none() {
                        eprintln!(
                            "warning: writing the coldkey UNENCRYPTED to {}; anyone who can read it controls its funds",
                            wallet.coldkey_path().display()
                        );
                    }
                    let (cold, phrase) = wallet.create_coldkey(password.as_deref(), KdfCost::SENSITIVE)?;
                    writeln!(out, "coldkey  {}", cold.account()).map_err(io)?;
                    writeln!(
                        out,
                        "coldkey mnemonic (write it down; it is the only backup): {phrase}"
                    )
                    .map_err(io)?;
                }
                let (hot, phrase) = wallet.create_hotkey()?;
                writeln!(out, "hotkey   {}  ({})", hot.account(), wallet.hotkey_name()).map_err(io)?;
                writeln!(out, "hotkey mnemonic: {phrase}").map_err(io)?;
            }
        }
        Ok(())
    }
}

fn coldkey_password(no_password: bool) -> Result<Option<String>, WalletError> {
    if no_password {
        return Ok(None);
    }
    if let Ok(pw) = std::env::var(COLDKEY_PASSWORD_ENV) {
        if pw.is_empty() {
            return Err(WalletError::Password(format!(
                "{COLDKEY_PASSWORD_ENV} is empty; set a password or pass --no-password"
            )));
        }
        return Ok(Some(pw));
    }
    if !std::io::stdin().is_terminal() {
        return Err(WalletError::Password(format!(
            "no coldkey password: set {COLDKEY_PASSWORD_ENV}, run in a terminal, or pass --no-password"
        )));
    }
    let prompt_io = |source| WalletError::Io {
        path: "<terminal>".into(),
        source,
    };
    let first = rpassword::prompt_password("New coldkey password: ").map_err(prompt_io)?;
    if first.is_empty() {
        return Err(WalletError::Password(
            "the password is empty; type one or pass --no-password".into(),
        ));
    }
    let second = rpassword::prompt_password("Repeat the password: ").map_err(prompt_io)?;
    if first != second {
        return Err(WalletError::Password(
            "the passwords differ; run `wallet new` again".into(),
        ));
    }
    Ok(Some(first))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_then_show_then_new_hotkey_only() {
        let dir = tempfile::tempdir().unwrap();
        let mut args = WalletArgs {
            wallet_path: dir.path().to_string_lossy().into_owned(),
            wallet: "w".into(),
            hotkey: "default".into(),
        };
        let mut out = Vec::new();
        WalletCommand::New { no_password: true }
            .run(&args, &mut out)
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("coldkey mnemonic"), "{text}");
        let wallet = args.open().unwrap();
        let cold = wallet.coldkeypub().unwrap();
        let hot = wallet.hotkey().unwrap().account();

        let mut out = Vec::new();
        WalletCommand::Show.run(&args, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains(&cold.to_ss58()) && text.contains(&hot.to_ss58()),
            "{text}"
        );

        // A second hotkey reuses the coldkey.
        args.hotkey = "second".into();
        let mut out = Vec::new();
        WalletCommand::New { no_password: false }
            .run(&args, &mut out)
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("(existing)") && !text.contains("coldkey mnemonic"),
            "{text}"
        );
        assert_ne!(args.open().unwrap().hotkey().unwrap().account(), hot);
        // The same hotkey name again is refused.
        let err = WalletCommand::New { no_password: true }
            .run(&args, &mut Vec::new())
            .unwrap_err();
        assert!(matches!(err, WalletError::Exists { .. }), "{err}");
    }
}
