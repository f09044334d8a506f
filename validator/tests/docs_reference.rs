//! `docs/configuration.md` cannot drift from the `validator` command line: every long flag (and its
//! environment variable) of every `validator` subcommand has a row in that command's section, and every
//! row names a flag that exists.
//!
//! The binary's clap `Cli` is private to `src/main.rs`, so this test reads the real command tree from the
//! built binary's `--help` output (the same text clap renders from those definitions), recursing into
//! every subcommand listed under `Commands:`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

/// Command path (`validator run`) → long flag → environment variable.
type Tree = BTreeMap<String, BTreeMap<String, Option<String>>>;

fn doc(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("docs")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn help(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_validator"))
        .args(args)
        .arg("--help")
        .env_remove("RUST_LOG")
        .output()
        .expect("the validator binary runs");
    assert!(
        out.status.success(),
        "validator {args:?} --help failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("help is UTF-8")
}

/// The long flags of one help page, with their `[env: NAME=…]`, and its subcommands.
fn parse_help(text: &str) -> (BTreeMap<String, Option<String>>, Vec<String>) {
    let mut flags = BTreeMap::new();
    let mut subcommands = Vec::new();
    let mut section = "";
    let mut entry: Option<(String, String)> = None;
    let finish = |entry: &mut Option<(String, String)>, flags: &mut BTreeMap<String, Option<String>>| {
        if let Some((flag, body)) = entry.take() {
            let env = body
                .split("[env: ")
                .nth(1)
                .and_then(|rest| rest.split('=').next())
                .map(str::to_owned);
            flags.insert(flag, env);
        }
    };
    for line in text.lines() {
        if !line.starts_with(' ') && line.ends_with(':') {
            finish(&mut entry, &mut flags);
            section = line;
            continue;
        }
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if section == "Commands:" && indent == 2 {
            if let Some(name) = trimmed.split_whitespace().next()
                && name != "help"
            {
                subcommands.push(name.to_owned());
            }
            continue;
        }
        if section.ends_with("Options:") && indent <= 6 && trimmed.starts_with('-') {
            finish(&mut entry, &mut flags);
            let long = trimmed
                .split_whitespace()
                .find_map(|t| t.strip_prefix("--"))
                .map(|t| t.trim_end_matches(',').to_owned());
            entry = long.map(|l| (l, line.to_owned()));
            continue;
        }
        if let Some((_, body)) = &mut entry {
            body.push('\n');
            body.push_str(line);
        }
    }
    finish(&mut entry, &mut flags);
    flags.retain(|f, _| f != "help" && f != "version");
    (flags, subcommands)
}

/// Walks the binary's command tree. Global flags appear on every page; they are kept on the root only.
/// Hidden subcommands are not listed by clap and need no documentation.
fn real_tree() -> Tree {
    let mut tree = Tree::new();
    let (root_flags, subs) = parse_help(&help(&[]));
    let mut queue: Vec<Vec<String>> = subs.into_iter().map(|s| vec![s]).collect();
    tree.insert("validator".into(), root_flags.clone());
    while let Some(path) = queue.pop() {
        let args: Vec<&str> = path.iter().map(String::as_str).collect();
        let (mut flags, subs) = parse_help(&help(&args));
        // A subcommand's own flag may reuse a global's name (with other settings): keep it then.
        flags.retain(|f, env| root_flags.get(f) != Some(env));
        tree.insert(format!("validator {}", path.join(" ")), flags);
        for s in subs {
            let mut child = path.clone();
            child.push(s);
            queue.push(child);
        }
    }
    tree
}

/// The `### \`<command>\`` sections of configuration.md, each with its flags and their `env` cells.
fn documented(text: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut sections: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if let Some(heading) = line.strip_prefix("### ") {
            let name = heading.trim().trim_matches('`').to_owned();
            sections.entry(name.clone()).or_default();
            current = Some(name);
        } else if line.starts_with("## ") {
            current = None;
        } else if let Some(section) = &current {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            if cells.len() >= 4 && cells[1].starts_with("`--") {
                let flag: String = cells[1][3..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                    .collect();
                let rows = sections.entry(section.clone()).or_default();
                assert!(
                    rows.insert(flag.clone(), cells[2].to_owned()).is_none(),
                    "docs/configuration.md lists `--{flag}` twice in `{section}`"
                );
            }
        }
    }
    sections
}

fn drift(real: &Tree, docs: &str) -> Vec<String> {
    let documented = documented(docs);
    let mut problems = Vec::new();
    for (path, flags) in real {
        let Some(rows) = documented.get(path) else {
            problems.push(format!("command `{path}` has no `### \\`{path}\\`` section"));
            continue;
        };
        for (flag, env) in flags {
            let want = env.as_ref().map_or_else(|| "—".to_owned(), |e| format!("`{e}`"));
            match rows.get(flag) {
                None => problems.push(format!("`{path} --{flag}` is not documented in its section")),
                Some(cell) if *cell != want => problems.push(format!(
                    "`{path} --{flag}`: env column says {cell:?}, the code says {want:?}"
                )),
                Some(_) => {}
            }
        }
        problems.extend(
            rows.keys()
                .filter(|f| !flags.contains_key(*f))
                .map(|f| format!("`{path} --{f}` is documented but does not exist")),
        );
    }
    problems.extend(
        documented
            .keys()
            .filter(|k| (k.as_str() == "validator" || k.starts_with("validator ")) && !real.contains_key(*k))
            .map(|k| format!("section `{k}` documents a command that does not exist")),
    );
    problems
}

#[test]
fn every_validator_flag_and_env_var_is_in_the_configuration_reference() {
    let real = real_tree();
    assert!(
        real.contains_key("validator run"),
        "the help walk found no `run`: {:?}",
        real.keys()
    );
    assert!(
        real["validator run"].contains_key("netuid"),
        "the help walk missed `validator run --netuid`: {:?}",
        real["validator run"]
    );
    let problems = drift(&real, &doc("configuration.md"));
    assert!(
        problems.is_empty(),
        "docs/configuration.md is out of date:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn the_drift_check_catches_a_missing_flag_a_wrong_env_var_and_a_stale_flag() {
    let real = real_tree();
    let docs = doc("configuration.md");
    let missing = docs.replace("| `--netuid <N>` | `VALIDATOR_NETUID` |", "| (removed) | |");
    assert!(
        drift(&real, &missing)
            .iter()
            .any(|p| p.contains("`validator run --netuid` is not documented"))
    );
    let wrong_env = docs.replace("| `VALIDATOR_NETUID` |", "| `VALIDATOR_NET_UID` |");
    assert!(
        drift(&real, &wrong_env)
            .iter()
            .any(|p| p.contains("env column says"))
    );
    let stale = docs.replacen(
        "### `validator run`\n",
        "### `validator run`\n\n| `--no-such-flag` | — | — | — | — |\n",
        1,
    );
    assert!(
        drift(&real, &stale)
            .iter()
            .any(|p| p.contains("`validator run --no-such-flag` is documented"))
    );
}
