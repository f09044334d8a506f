//! The documentation cannot drift from the code.
//!
//! * `docs/configuration.md`: every long flag of the real `miner` command tree (walked with
//!   `clap::CommandFactory`, subcommands included) has a row in its command's section, with its
//!   environment variable, and every row names a flag that exists; every key of the `[limits]` table
//!   is documented with the code's default, and every documented key exists.
//! * `docs/protocol.md`: every worked example (generator test vectors, the tiny matmul challenge, the
//!   JSON bodies, the `btauth/1` payload and signature, the receipt payload) is recomputed with the real
//!   code and compared byte for byte.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use bench_tasks::inference::seeded::SeededStream;
use bench_tasks::inference::weights::WEIGHTS_DOMAIN;
use bench_tasks::inference::{InferenceChallenge, ModelId, Preset};
use bench_tasks::matmul::generator::{MatrixGen, MatrixId};
use bench_tasks::matmul::{
    MatmulChallenge, MatmulJob, MatmulLimits, OpeningRequest, RoundParams, RoundSetup,
};
use bench_tasks::wire::{
    ChallengeRequest, ChallengeResponse, OpenRequest, OpenResponse, TaskAnswer, TaskChallenge,
    TaskOpenRequest, TaskOpenings,
};
use chain::auth::btauth::{self, Crypto};
use chain::auth::{Verifier, VerifierConfig, receipt, sha256_hex};
use chain::keys::Keypair;
use clap::CommandFactory;

fn doc(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("docs")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

// ---------------------------------------------------------------------------------------------------
// docs/configuration.md
// ---------------------------------------------------------------------------------------------------

/// One documented flag: the flag's long name and the text of its `env` cell.
#[derive(Debug)]
struct DocRow {
    env: String,
}

/// The `### \`<command>\`` sections of configuration.md, each with its documented flags.
fn documented_sections(text: &str) -> BTreeMap<String, BTreeMap<String, DocRow>> {
    let mut sections: BTreeMap<String, BTreeMap<String, DocRow>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if let Some(heading) = line.strip_prefix("### ") {
            let name = heading.trim().trim_matches('`').to_owned();
            sections.entry(name.clone()).or_default();
            current = Some(name);
            continue;
        }
        if line.starts_with("## ") {
            current = None;
            continue;
        }
        let Some(section) = &current else { continue };
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // "| `--flag <V>` | `ENV` | toml | default | meaning |" splits into ["", flag, env, …, ""].
        if cells.len() < 4 || !cells[1].starts_with("`--") {
            continue;
        }
        let flag: String = cells[1][3..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        let rows = sections.get_mut(section).expect("section exists");
        assert!(
            rows.insert(
                flag.clone(),
                DocRow {
                    env: cells[2].to_owned()
                }
            )
            .is_none(),
            "docs/configuration.md: `--{flag}` is listed twice in section `{section}`"
        );
    }
    sections
}

/// Every command of the tree (space-separated path) with its long flags and their env vars.
fn real_commands(
    cmd: &clap::Command,
    prefix: &str,
    out: &mut BTreeMap<String, BTreeMap<String, Option<String>>>,
) {
    let path = if prefix.is_empty() {
        cmd.get_name().to_owned()
    } else {
        format!("{prefix} {}", cmd.get_name())
    };
    let flags = cmd
        .get_arguments()
        .filter(|a| !matches!(a.get_id().as_str(), "help" | "version"))
        .filter_map(|a| {
            a.get_long().map(|l| {
                (
                    l.to_owned(),
                    a.get_env().map(|e| e.to_string_lossy().into_owned()),
                )
            })
        })
        .collect();
    out.insert(path.clone(), flags);
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        real_commands(sub, &path, out);
    }
}

/// Compares a binary's real command tree with its sections of configuration.md; returns every problem.
fn config_drift(root: &clap::Command, docs: &str) -> Vec<String> {
    let mut real = BTreeMap::new();
    real_commands(root, "", &mut real);
    let documented = documented_sections(docs);
    let bin = root.get_name();
    let mut problems = Vec::new();
    for (path, flags) in &real {
        let Some(rows) = documented.get(path) else {
            problems.push(format!("command `{path}` has no `### \\`{path}\\`` section"));
            continue;
        };
        for (flag, env) in flags {
            match rows.get(flag) {
                None => problems.push(format!("`{path} --{flag}` is not documented in its section")),
                Some(row) => {
                    let want = env.as_ref().map_or_else(|| "—".to_owned(), |e| format!("`{e}`"));
                    if row.env != want {
                        problems.push(format!(
                            "`{path} --{flag}`: env column says {:?}, the code says {want:?}",
                            row.env
                        ));
                    }
                }
            }
        }
        for flag in rows.keys() {
            if !flags.contains_key(flag) {
                problems.push(format!("`{path} --{flag}` is documented but does not exist"));
            }
        }
    }
    let own: BTreeSet<&String> = documented
        .keys()
        .filter(|k| k.as_str() == bin || k.starts_with(&format!("{bin} ")))
        .collect();
    for path in own {
        if !real.contains_key(path) {
            problems.push(format!(
                "section `{path}` documents a command that does not exist"
            ));
        }
    }
    problems
}

#[test]
fn every_miner_flag_and_env_var_is_in_the_configuration_reference() {
    let problems = config_drift(&miner::cli::Cli::command(), &doc("configuration.md"));
    assert!(
        problems.is_empty(),
        "docs/configuration.md is out of date:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn the_drift_check_catches_a_missing_flag_and_a_stale_one() {
    let docs = doc("configuration.md");
    let without_port = docs.replace("| `--port <PORT>` |", "| (removed) |");
    let problems = config_drift(&miner::cli::Cli::command(), &without_port);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("`miner run --port` is not documented")),
        "{problems:?}"
    );
    let stale = docs.replacen(
        "### `miner run`\n",
        "### `miner run`\n\n| `--no-such-flag` | — | — | — | — |\n",
        1,
    );
    let problems = config_drift(&miner::cli::Cli::command(), &stale);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("--no-such-flag` is documented but does not exist")),
        "{problems:?}"
    );
}

/// `key → default` of the `[limits]` rows of configuration.md (`| \`limits.<key>\` | \`<default>\` | …`),
/// each default parsed as a TOML value.
fn documented_limits(text: &str) -> BTreeMap<String, toml::Value> {
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("| `limits.")?;
            let (key, rest) = rest.split_once("` | `")?;
            let (default, _) = rest.split_once('`')?;
            let value: toml::Table = toml::from_str(&format!("v = {default}"))
                .unwrap_or_else(|e| panic!("limits.{key}: default `{default}` is not TOML: {e}"));
            Some((key.to_owned(), value["v"].clone()))
        })
        .collect()
}

/// `key → default` of every key the `[limits]` table accepts, from the code's defaults.
fn real_limits() -> BTreeMap<String, toml::Value> {
    fn flatten(prefix: &str, table: &toml::Table, out: &mut BTreeMap<String, toml::Value>) {
        for (key, value) in table {
            let key = format!("{prefix}{key}");
            match value {
                toml::Value::Table(inner) => flatten(&format!("{key}."), inner, out),
                other => {
                    out.insert(key, other.clone());
                }
            }
        }
    }
    let file = miner::cli::LimitsFile::from_limits(&miner::Limits::default());
    let table = toml::Table::try_from(&file).expect("the limits table serializes");
    let mut out = BTreeMap::new();
    flatten("", &table, &mut out);
    out
}

fn limits_drift(docs: &str) -> Vec<String> {
    let documented = documented_limits(docs);
    let real = real_limits();
    let mut problems = Vec::new();
    for (key, value) in &real {
        match documented.get(key) {
            None => problems.push(format!("`limits.{key}` is not documented (default {value})")),
            Some(doc) if doc != value => problems.push(format!(
                "`limits.{key}` is documented with default {doc}, the code has {value}"
            )),
            Some(_) => {}
        }
    }
    for key in documented.keys().filter(|k| !real.contains_key(*k)) {
        problems.push(format!(
            "`limits.{key}` is documented but the [limits] table has no such key"
        ));
    }
    problems
}

#[test]
fn every_limits_key_and_default_is_in_the_configuration_reference() {
    let problems = limits_drift(&doc("configuration.md"));
    assert!(
        problems.is_empty(),
        "docs/configuration.md is out of date:\n  {}",
        problems.join("\n  ")
    );
    // The check itself sees a missing key, a wrong default and a stale key.
    let docs = doc("configuration.md");
    let broken = docs
        .replace("| `limits.inference.max-batch` |", "| (removed) |")
        .replace(
            "| `limits.queue-capacity` | `32` |",
            "| `limits.queue-capacity` | `33` |",
        )
        .replacen(
            "| `limits.max-body-bytes` |",
            "| `limits.no-such-limit` | `1` | — |\n| `limits.max-body-bytes` |",
            1,
        );
    let problems = limits_drift(&broken);
    for expected in [
        "`limits.inference.max-batch` is not documented",
        "`limits.queue-capacity` is documented with default 33",
        "`limits.no-such-limit` is documented but",
    ] {
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "{expected}: {problems:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------------
// docs/protocol.md
// ---------------------------------------------------------------------------------------------------

/// The fenced block that follows `<!-- marker -->`, without its fences.
fn block(text: &str, marker: &str) -> String {
    let tag = format!("<!-- {marker} -->");
    let start = text
        .find(&tag)
        .unwrap_or_else(|| panic!("docs/protocol.md has no {tag}"));
    let mut lines = text[start + tag.len()..]
        .lines()
        .skip_while(|l| !l.starts_with("```"));
    lines.next();
    lines
        .take_while(|l| !l.starts_with("```"))
        .collect::<Vec<_>>()
        .join("\n")
}

const NONCE: u64 = 1_790_000_000_123_456_789;

fn example_challenge() -> MatmulChallenge {
    MatmulChallenge {
        n: 4,
        m: 2,
        p: 251,
        round_seed: 1234,
        miner_seed: 5678,
        dtype: bench_tasks::matmul::MatmulDtype::F32,
        batch: 1,
    }
}

fn as_ints(values: &[f32], cols: usize) -> Vec<Vec<i64>> {
    values
        .chunks(cols)
        .map(|r| r.iter().map(|&v| v as i64).collect())
        .collect()
}

#[test]
fn generator_test_vectors_match_the_generator() {
    let rows = |seed, id, bound, row: u32| -> Vec<i32> {
        let g = MatrixGen::new(seed, id, row + 1, 6, bound);
        g.to_vec()[(row as usize) * 6..].to_vec()
    };
    let want = [
        format!("A, miner_seed 5678, row 0: {:?}", rows(5678, MatrixId::A, 8, 0)),
        format!("A, miner_seed 5678, row 1: {:?}", rows(5678, MatrixId::A, 8, 1)),
        format!("B, round_seed 1234, row 0: {:?}", rows(1234, MatrixId::B, 8, 0)),
        format!("R, round_seed 1234, row 0: {:?}", rows(1234, MatrixId::R, 4, 0)),
        format!("R, round_seed 1234, row 1: {:?}", rows(1234, MatrixId::R, 4, 1)),
    ]
    .join("\n");
    assert_eq!(block(&doc("protocol.md"), "generator-vectors"), want);
}

#[test]
fn seeded_stream_test_vectors_match_the_inference_code() {
    let challenge = InferenceChallenge {
        model: ModelId::Seeded {
            preset: Preset::Tiny,
            seed: 7,
        },
        seed: 42,
        batch: 2,
        prompt_len: 4,
        new_tokens: 1,
    };
    let stream = SeededStream::new(WEIGHTS_DOMAIN, 7, "model.embed_tokens.weight");
    let units: Vec<f32> = (0..3).map(|i| stream.symmetric_unit(i)).collect();
    let want = [
        format!("prompts (tiny, seed 42, batch 2, prompt_len 4): {:?}", challenge.prompts()),
        format!(
            "weights/v1, seed 7, model.embed_tokens.weight: word(0) = {:#018x}, symmetric_unit(0..3) = {units:?}",
            stream.word(0)
        ),
    ]
    .join("\n");
    assert_eq!(block(&doc("protocol.md"), "seeded-vectors"), want);
}

#[test]
fn the_worked_matmul_example_is_what_the_miner_and_verifier_compute() {
    let text = doc("protocol.md");
    let c = example_challenge();
    let device = burn::tensor::Device::flex();
    let (answer, state) = MatmulJob::run(&c, &device).expect("the example challenge runs");
    let all = state
        .open(&OpeningRequest {
            rows: vec![0, 1, 2, 3],
        })
        .expect("opens");
    let c_rows: Vec<Vec<i64>> = all
        .rows
        .iter()
        .map(|r| r.values.iter().map(|&v| v as i64).collect())
        .collect();
    let matrix = |seed, id, cols: u32, bound| -> Vec<Vec<i32>> {
        MatrixGen::new(seed, id, 4, cols, bound)
            .to_vec()
            .chunks(cols as usize)
            .map(<[i32]>::to_vec)
            .collect()
    };
    let want = [
        format!("A = {:?}", matrix(5678, MatrixId::A, 4, 8)),
        format!("B = {:?}", matrix(1234, MatrixId::B, 4, 8)),
        format!("R = {:?}", matrix(1234, MatrixId::R, 2, 4)),
        format!("C = {c_rows:?}"),
        format!("S = {:?}", as_ints(&answer.sketch, 2)),
    ]
    .join("\n");
    assert_eq!(block(&text, "example-matrices"), want);

    // The request body: parses as the wire type and serializes back to the same bytes.
    let body = block(&text, "example-challenge-body");
    let request: ChallengeRequest =
        serde_json::from_str(&body).expect("the example body is a ChallengeRequest");
    assert_eq!(
        request,
        ChallengeRequest {
            id: "7-3".into(),
            challenge: TaskChallenge::Matmul(c)
        }
    );
    assert_eq!(serde_json::to_string(&request).expect("serializes"), body);
    assert!(
        text.contains(&format!("Body (exact bytes, {} bytes)", body.len())),
        "byte count of the example body"
    );

    // The honest answer, as a one-device miner serializes it (with zero timings).
    let response = ChallengeResponse {
        id: "7-3".into(),
        answer: TaskAnswer::Matmul(answer.clone()),
        queue_seconds: 0.0,
        compute_seconds: 0.0,
        device: Some(0),
    };
    assert_eq!(
        block(&text, "example-challenge-response"),
        serde_json::to_string(&response).expect("serializes")
    );

    // Round 2 for rows 1 and 3, and the verifier accepts it.
    let rows = OpeningRequest { rows: vec![1, 3] };
    let openings = state.open(&rows).expect("opens");
    let open_request = OpenRequest {
        id: "7-3".into(),
        open: TaskOpenRequest::Matmul(rows.clone()),
    };
    let open_response = OpenResponse {
        id: "7-3".into(),
        openings: TaskOpenings::Matmul(openings.clone()),
    };
    let want = format!(
        "{}\n{}",
        serde_json::to_string(&open_request).expect("serializes"),
        serde_json::to_string(&open_response).expect("serializes")
    );
    assert_eq!(block(&text, "example-open"), want);
    let params = RoundParams {
        n: 4,
        m: 2,
        p: 251,
        k: 2,
        round_seed: 1234,
        dtype: bench_tasks::matmul::MatmulDtype::F32,
    };
    let setup = RoundSetup::new(params, [7; 32], &MatmulLimits::default()).expect("valid round");
    let verdict = setup.verify(&c, &answer, &rows, &openings);
    assert!(verdict.passed, "{verdict:?}");
}

#[test]
fn the_worked_btauth_example_verifies() {
    let text = doc("protocol.md");
    let (alice, bob) = (
        Keypair::from_uri("//Alice").expect("dev key"),
        Keypair::from_uri("//Bob").expect("dev key"),
    );
    let body = block(&text, "example-challenge-body");
    let payload = btauth::payload(
        Crypto::Sr25519,
        "POST",
        "/v1/challenge",
        body.as_bytes(),
        NONCE,
        &alice.account(),
        Some(&bob.account()),
    );
    assert_eq!(
        block(&text, "example-btauth-payload"),
        String::from_utf8(payload).expect("utf-8")
    );

    let mut headers = http::HeaderMap::new();
    for line in block(&text, "example-btauth-headers").lines() {
        let (name, value) = line.split_once(": ").expect("`Name: value` lines");
        headers.insert(
            http::HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            http::HeaderValue::from_str(value).expect("header value"),
        );
    }
    let verifier = Verifier::new(bob.account(), VerifierConfig::default());
    let now = NONCE + 1_000_000;
    let verified = verifier.verify_at(
        "POST",
        "/v1/challenge",
        &headers,
        body.as_bytes(),
        now,
        std::time::Instant::now(),
    );
    let fresh = btauth::sign(
        &alice,
        "POST",
        "/v1/challenge",
        body.as_bytes(),
        NONCE,
        Some(&bob.account()),
    );
    let fresh_sig = fresh
        .headers
        .get(btauth::H_SIGNATURE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let verified = verified.unwrap_or_else(|e| {
        panic!("the documented headers do not verify ({e}); a valid signature is X-Bittensor-Signature: {fresh_sig}")
    });
    assert_eq!(verified.hotkey, alice.account());
    assert_eq!(verified.request_id, NONCE.to_string());
}

#[test]
fn the_worked_receipt_payload_matches_the_code() {
    let text = doc("protocol.md");
    let (alice, bob) = (
        Keypair::from_uri("//Alice").expect("dev key"),
        Keypair::from_uri("//Bob").expect("dev key"),
    );
    let response = block(&text, "example-challenge-response");
    let payload = receipt::payload(
        &alice.account(),
        &bob.account(),
        &NONCE.to_string(),
        200,
        &sha256_hex(response.as_bytes()),
    );
    assert_eq!(
        block(&text, "example-receipt-payload"),
        String::from_utf8(payload).expect("utf-8")
    );
}
