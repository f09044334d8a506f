//! Interoperability with btcli's wallet library (PyPI `bittensor-wallet`).
//!
//! The fixtures under `tests/fixtures/btwallet/` were written by bittensor-wallet 4.1.1
//! (`make_fixtures.py` there). When a Python with `bittensor_wallet` is available (`TENSORPROOF_PYTHON`,
//! else `python3`), `python_reads_what_we_write` also checks the other direction live.

use std::path::PathBuf;
use std::process::Command;

use chain::keys::Keypair;
use chain::wallet::{KdfCost, KeyfileError, Password, Wallet, WalletError};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/btwallet")
}

fn expected() -> serde_json::Value {
    let raw = std::fs::read(fixtures().join("expected.json")).unwrap();
    serde_json::from_slice(&raw).unwrap()
}

fn wallet(name: &str, hotkey: &str) -> Wallet {
    Wallet::new(fixtures().join("wallets").to_str().unwrap(), name, hotkey).unwrap()
}

#[test]
fn reads_btcli_hotkeys_and_public_files() {
    let exp = expected();
    let w = wallet("fixture", "default");
    assert_eq!(w.hotkey().unwrap().ss58(), exp["hotkey_default_ss58"]);
    assert_eq!(w.hotkey_account().unwrap().to_ss58(), exp["hotkey_default_ss58"]);
    assert_eq!(w.coldkeypub().unwrap().to_ss58(), exp["coldkey_ss58"]);
    // A hotkey made from a URI carries only privateKey (no phrase or seed).
    let alice = wallet("fixture", "alice");
    assert_eq!(alice.hotkey().unwrap().ss58(), exp["hotkey_alice_ss58"]);
    assert_eq!(
        alice.hotkey().unwrap().account(),
        Keypair::from_uri("//Alice").unwrap().account()
    );
    // An unencrypted coldkey.
    let plain = wallet("plain", "default");
    assert_eq!(
        plain.coldkey(&Password::EnvOnly).unwrap().ss58(),
        exp["coldkey_ss58"]
    );
}

#[test]
fn decrypts_a_btcli_nacl_coldkey_and_rejects_a_wrong_password() {
    let exp = expected();
    let w = wallet("fixture", "default");
    let err = w.coldkey(&Password::Given("wrong".into())).unwrap_err();
    assert!(
        matches!(
            err,
            WalletError::Keyfile {
                source: KeyfileError::WrongPassword,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("wrong password"));
    let key = w
        .coldkey(&Password::Given(exp["password"].as_str().unwrap().into()))
        .unwrap();
    assert_eq!(key.ss58(), exp["coldkey_ss58"]);
}

fn python() -> Option<String> {
    let py = std::env::var("TENSORPROOF_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&py)
        .args(["-c", "import bittensor_wallet"])
        .output()
        .is_ok_and(|o| o.status.success());
    ok.then_some(py)
}

#[test]
fn python_reads_what_we_write() {
    // What we write must be what we read, with btcli's real KDF cost, Python or not.
    let dir = tempfile::tempdir().unwrap();
    let w = Wallet::new(dir.path().to_str().unwrap(), "ours", "hk").unwrap();
    let (cold, _) = w.create_coldkey(Some("s3cret"), KdfCost::SENSITIVE).unwrap();
    let (hot, _) = w.create_hotkey().unwrap();
    assert_eq!(
        w.coldkey(&Password::Given("s3cret".into())).unwrap().account(),
        cold.account()
    );

    let Some(py) = python() else {
        eprintln!("bittensor_wallet is not importable; set TENSORPROOF_PYTHON to cross-check live");
        return;
    };
    let script = r#"
import sys
from bittensor_wallet import Wallet
w = Wallet(name="ours", hotkey="hk", path=sys.argv[1])
print(w.coldkeypub.ss58_address)
print(w.hotkey.ss58_address)
print(w.get_hotkeypub().ss58_address)
w.coldkey_file.decrypt("s3cret")
print(w.coldkey_file.keypair.ss58_address)
"#;
    let out = Command::new(py)
        .args(["-c", script, dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().filter(|l| l.starts_with('5')).collect();
    assert_eq!(lines, [cold.ss58(), hot.ss58(), hot.ss58(), cold.ss58()]);
}
