//! `bench-tasks`: run the task benchmarks.
//!
//! ```text
//! bench-tasks bench matmul --n 1024 --backend flex --dtype bf16 --json
//! bench-tasks bench matmul --n 8192 --dtype bf16 --validator-only --trials 10 --json
//! bench-tasks export-weights --preset medium --model-seed 1 --out medium.safetensors
//! bench-tasks bench inference --preset tiny --backend flex --json
//! bench-tasks generate --model smollm2 --chat --prompt "Name three primes." --max-tokens 64
//! ```

use std::process::ExitCode;

use bench_tasks::BackendKind;
use bench_tasks::bench::inference::{InferenceBenchOptions, InferenceBenchReport};
use bench_tasks::bench::matmul::{
    MatmulBenchOptions, MatmulBenchReport, ValidatorCostOptions, ValidatorCostReport,
};
use bench_tasks::inference::Preset;
use bench_tasks::matmul::params::{DEFAULT_H200_SECONDS, DEFAULT_SIZED_MAX_BATCH};
use bench_tasks::matmul::{MatmulDtype, RoundParams, batch_for_h200};
use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "bench-tasks",
    version,
    about = "Benchmarks of tensorproof's verifiable GPU challenges"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Measure a task: miner time, validator time, detection rates.
    #[command(subcommand)]
    Bench(Bench),
    /// Run a real model on a prompt and print the reply as it is generated.
    Generate(GenerateArgs),
    /// Write a seeded model's weights as a Llama-layout safetensors file (for running the same weights
    /// in another framework, e.g. the PyTorch side of scripts/gpu-check.sh).
    ExportWeights(ExportArgs),
}

#[derive(Debug, Args)]
struct ExportArgs {
    /// Model size: tiny, small or medium.
    #[arg(long, default_value = "tiny")]
    preset: Preset,
    /// Public seed of the model weights.
    #[arg(long, default_value_t = 1)]
    model_seed: u64,
    /// Output file.
    #[arg(long)]
    out: std::path::PathBuf,
}

#[derive(Debug, Args)]
struct GenerateArgs {
    /// `smollm2` (the default model, fetched by scripts/fetch-model.sh) or the path of a Llama GGUF file.
    #[arg(long, default_value = "smollm2")]
    model: String,
    /// The prompt text.
    #[arg(long)]
    prompt: String,
    /// Render the prompt as a user message with the model's chat template (and stop at its end token).
    #[arg(long)]
    chat: bool,
    /// A system message (with --chat).
    #[arg(long)]
    system: Option<String>,
    /// Most tokens to generate.
    #[arg(long, default_value_t = 128)]
    max_tokens: usize,
    /// 0 for greedy decoding; otherwise the sampling temperature.
    #[arg(long, default_value_t = 0.0)]
    temperature: f32,
    /// Nucleus mass for sampling (1 keeps every token).
    #[arg(long, default_value_t = 1.0)]
    top_p: f32,
    /// Seed of the sampler.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Backend: flex, wgpu, vulkan or cuda (must be compiled in).
    #[arg(long, default_value = "flex")]
    backend: BackendKind,
    /// Device index of the backend.
    #[arg(long, default_value_t = 0)]
    device: usize,
    /// Print one JSON object (text, tokens, prompt_tokens, completion_tokens, seconds) at the end instead of
    /// streaming text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum Bench {
    /// The matmul proof of work.
    Matmul(MatmulArgs),
    /// Greedy decoding of a Llama-style transformer, checked by a teacher-forced CPU pass.
    Inference(InferenceArgs),
    /// Continuous batching of chat requests on a real model: tokens/s and time to first token by
    /// concurrency.
    Generate(BenchGenerateArgs),
}

#[derive(Debug, Args)]
struct BenchGenerateArgs {
    /// `smollm2` or the path of a Llama GGUF file.
    #[arg(long, default_value = "smollm2")]
    model: String,
    /// Backend: flex, wgpu, vulkan or cuda (must be compiled in).
    #[arg(long, default_value = "flex")]
    backend: BackendKind,
    /// Device index of the backend.
    #[arg(long, default_value_t = 0)]
    device: usize,
    /// Concurrency levels, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 4, 16, 64])]
    concurrency: Vec<usize>,
    /// Requests per level (default twice the concurrency).
    #[arg(long)]
    requests: Option<usize>,
    /// Most tokens per request.
    #[arg(long, default_value_t = 32)]
    max_tokens: usize,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct InferenceArgs {
    /// A real model instead of a seeded preset: `smollm2` or the path of a Llama GGUF file.
    #[arg(long)]
    model: Option<String>,
    /// Model size: tiny, small or medium.
    #[arg(long, default_value = "tiny")]
    preset: Preset,
    /// Public seed of the model weights.
    #[arg(long, default_value_t = 1)]
    model_seed: u64,
    /// Backend of the miner: flex, wgpu, vulkan or cuda (must be compiled in). The verifier runs on flex.
    #[arg(long, default_value = "flex")]
    backend: BackendKind,
    /// Device index of the backend.
    #[arg(long, default_value_t = 0)]
    device: usize,
    /// Prompts per challenge (B).
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Tokens per prompt (L).
    #[arg(long, default_value_t = 16)]
    prompt_len: usize,
    /// Generated tokens per prompt (T).
    #[arg(long, default_value_t = 32)]
    new_tokens: usize,
    /// Sequences the validator checks (s).
    #[arg(long, default_value_t = 2)]
    sample: usize,
    /// Challenges per adversary (and honest challenges).
    #[arg(long, default_value_t = 50)]
    trials: usize,
    /// Warm miner and verifier runs to time.
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// Logit margin of the verifier (default 0.01 for presets, 0.3 for real models).
    #[arg(long)]
    margin: Option<f32>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct MatmulArgs {
    /// Matrix side n.
    #[arg(long, default_value_t = 1024)]
    n: u32,
    /// Backend of the miner: flex, wgpu, vulkan or cuda (must be compiled in).
    #[arg(long, default_value = "flex")]
    backend: BackendKind,
    /// Dtype class of the product: f32, f16 or bf16.
    #[arg(long, default_value = "f32")]
    dtype: MatmulDtype,
    /// Device index of the backend.
    #[arg(long, default_value_t = 0)]
    device: usize,
    /// Rows opened per miner (default min(40, n)).
    #[arg(long)]
    k: Option<u32>,
    /// Sketch width.
    #[arg(long)]
    m: Option<u32>,
    /// Sketch modulus (prime).
    #[arg(long)]
    p: Option<u32>,
    /// Validator rounds per adversary.
    #[arg(long, default_value_t = 200)]
    trials: u32,
    /// Warm miner runs to time.
    #[arg(long, default_value_t = 5)]
    reps: u32,
    /// Products per challenge [default: 1; with --validator-only, sized as the validator sizes them:
    /// the smallest batch that keeps an H200 busy --h200-ms at the class's peak, at most 64].
    #[arg(long)]
    batch: Option<u32>,
    /// Size the batch for this many milliseconds of an H200 at the class's peak (as the validator's
    /// `matmul_h200_ms`) [default with --validator-only: 50].
    #[arg(long)]
    h200_ms: Option<f64>,
    /// Measure the validator's side alone (setup, verification, JSON decoding) against the challenge's
    /// H200 time; the miner's side is not run, so GPU-sized batches run here in seconds.
    #[arg(long)]
    validator_only: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Bench(Bench::Matmul(args)) => bench_matmul(&args),
        Command::Bench(Bench::Inference(args)) => bench_inference(&args),
        Command::Bench(Bench::Generate(args)) => bench_generate(&args),
        Command::Generate(args) => match generate(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("bench-tasks: {e}");
                ExitCode::FAILURE
            }
        },
        Command::ExportWeights(args) => export_weights(&args),
    }
}

/// Tokens of the export's probe: a fixed sequence whose logits (on flex) let another framework check that
/// it runs the same model on the exported weights.
const PROBE_LEN: usize = 16;

fn export_weights(args: &ExportArgs) -> ExitCode {
    let config = args.preset.config();
    let weights = bench_tasks::inference::HostWeights::seeded(config, args.model_seed);
    let probe = probe_logits(&weights);
    match weights
        .save_safetensors(&args.out)
        .and_then(|sha| Ok((sha, probe?)))
    {
        Ok((sha256, (probe_tokens, probe_argmax, probe_last_logits))) => {
            println!(
                "{}",
                serde_json::json!({
                    "preset": args.preset,
                    "model_seed": args.model_seed,
                    "config": args.preset.config(),
                    "path": args.out,
                    "sha256": sha256,
                    "probe_tokens": probe_tokens,
                    "probe_argmax": probe_argmax,
                    "probe_last_logits": probe_last_logits,
                })
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench-tasks: {e}");
            ExitCode::FAILURE
        }
    }
}

fn generate(args: &GenerateArgs) -> Result<(), Box<dyn std::error::Error>> {
    use std::io::Write;

    use bench_tasks::inference::chat::{chat_prompt, complete};
    use bench_tasks::inference::real::RealModel;
    use bench_tasks::inference::{Sampling, Transformer};

    let started = std::time::Instant::now();
    let real = RealModel::load(&args.model)?;
    let device = args.backend.device(args.device)?;
    let model = Transformer::from_weights(&real.weights, &device)?;
    let load_seconds = started.elapsed().as_secs_f64();
    let prompt = if args.chat {
        chat_prompt(&real.tokenizer, args.system.as_deref(), &args.prompt)?
    } else {
        real.tokenizer.encode(&args.prompt)?
    };
    let sampling = Sampling {
        temperature: args.temperature,
        top_p: args.top_p,
        seed: args.seed,
    };
    let stream = !args.json;
    let mut out = std::io::stdout();
    let done = complete(
        &model,
        &real.tokenizer,
        &prompt,
        args.max_tokens,
        &sampling,
        |piece| {
            if stream {
                let _ = out.write_all(piece.as_bytes());
                let _ = out.flush();
            }
        },
    )?;
    let seconds = done.prefill_seconds + done.decode_seconds;
    if args.json {
        let report = serde_json::json!({
            "model": real.id,
            "text": done.text,
            "tokens": done.tokens,
            "prompt_tokens": done.prompt_tokens,
            "completion_tokens": done.completion_tokens,
            "stopped": done.stopped,
            "seconds": seconds,
            "prefill_seconds": done.prefill_seconds,
            "decode_seconds": done.decode_seconds,
            "load_seconds": load_seconds,
        });
        println!("{report}");
    } else {
        println!();
        eprintln!(
            "[{} prompt tokens, {} completion tokens in {seconds:.2} s; prefill {:.1} tokens/s, decode {:.1} tokens/s; load {load_seconds:.1} s]",
            done.prompt_tokens,
            done.completion_tokens,
            done.prompt_tokens as f64 / done.prefill_seconds.max(1e-9),
            done.completion_tokens.saturating_sub(1) as f64 / done.decode_seconds.max(1e-9),
        );
    }
    Ok(())
}

fn bench_matmul(args: &MatmulArgs) -> ExitCode {
    let defaults = RoundParams::new(args.n, 0x7e57_0001);
    let params = RoundParams {
        k: args.k.unwrap_or(defaults.k),
        m: args.m.unwrap_or(defaults.m),
        p: args.p.unwrap_or(defaults.p),
        ..defaults
    }
    .with_dtype(args.dtype);
    let h200_ms = args
        .h200_ms
        .or_else(|| args.validator_only.then_some(DEFAULT_H200_SECONDS * 1e3));
    let batch = args.batch.unwrap_or_else(|| {
        h200_ms.map_or(1, |ms| {
            batch_for_h200(args.n, args.dtype, ms / 1e3, DEFAULT_SIZED_MAX_BATCH)
        })
    });
    if args.validator_only {
        return bench_validator(
            &ValidatorCostOptions {
                backend: args.backend,
                device_index: args.device,
                params,
                batch,
                trials: args.trials,
            },
            args.json,
        );
    }
    let opts = MatmulBenchOptions {
        backend: args.backend,
        device_index: args.device,
        params,
        batch,
        trials: args.trials,
        reps: args.reps,
    };
    match bench_tasks::bench::matmul::run(&opts) {
        Ok(report) if args.json => {
            println!(
                "{}",
                serde_json::to_string(&report).expect("the report is plain data")
            );
            ExitCode::SUCCESS
        }
        Ok(report) => {
            print_text(&report);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench-tasks: {e}");
            ExitCode::FAILURE
        }
    }
}

fn bench_validator(opts: &ValidatorCostOptions, json: bool) -> ExitCode {
    match bench_tasks::bench::matmul::validator_cost(opts) {
        Ok(report) if json => {
            println!(
                "{}",
                serde_json::to_string(&report).expect("the report is plain data")
            );
            ExitCode::SUCCESS
        }
        Ok(report) => {
            print_validator(&report);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench-tasks: {e}");
            ExitCode::FAILURE
        }
    }
}

fn print_validator(r: &ValidatorCostReport) {
    println!(
        "matmul validator cost in {} (n = {}, batch = {}, k = {}, m = {}, p = {}; {:.3e} FLOP)",
        r.dtype, r.n, r.batch, r.k, r.m, r.p, r.flops
    );
    println!("  H200 at class peak {:>10.6} s", r.h200_seconds);
    println!(
        "  validator setup    {:>10.6} s per round, {:.6} CPU s (shared by {} miners)",
        r.round_setup_seconds, r.round_setup_cpu_seconds, r.miners_per_round
    );
    println!(
        "  validator verify   {:>10.6} s per miner",
        r.verify_seconds_per_miner
    );
    println!(
        "  validator CPU      {:>10.6} s per challenge = {:.4} × the H200 time",
        r.validator_seconds_per_challenge, r.validator_over_h200
    );
    println!(
        "  openings JSON      {:>10.6} s to parse {} bytes ({:.4} × the H200 time with it)",
        r.decode_seconds_per_miner, r.openings_bytes, r.validator_with_decode_over_h200
    );
    println!("  honest passed      {} ({} trials)", r.honest_passed, r.trials);
}

fn bench_generate(args: &BenchGenerateArgs) -> ExitCode {
    let opts = bench_tasks::bench::generate::GenerateBenchOptions {
        model: args.model.clone(),
        backend: args.backend,
        device_index: args.device,
        concurrency: args.concurrency.clone(),
        requests: args.requests,
        max_tokens: args.max_tokens,
    };
    match bench_tasks::bench::generate::run(&opts) {
        Ok(report) if args.json => {
            println!(
                "{}",
                serde_json::to_string(&report).expect("the report is plain data")
            );
            ExitCode::SUCCESS
        }
        Ok(r) => {
            println!(
                "{} on {} ({}), max_tokens {}",
                r.model, r.backend, r.precision, r.max_tokens
            );
            println!("concurrency  requests  tokens  seconds  tokens/s  ttft p50  ttft p99  steps");
            for l in &r.levels {
                println!(
                    "{:>11}  {:>8}  {:>6}  {:>7.1}  {:>8.1}  {:>8.3}  {:>8.3}  {:>5}",
                    l.concurrency,
                    l.requests,
                    l.tokens,
                    l.seconds,
                    l.tokens_per_second,
                    l.ttft_p50,
                    l.ttft_p99,
                    l.steps
                );
            }
            if let Some(g) = r.batching_gain_16 {
                println!("batching gain (tokens/s at 16 / at 1): {g:.2}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench-tasks: {e}");
            ExitCode::FAILURE
        }
    }
}

fn bench_inference(args: &InferenceArgs) -> ExitCode {
    let opts = InferenceBenchOptions {
        model: args.model.clone(),
        backend: args.backend,
        device_index: args.device,
        preset: args.preset,
        model_seed: args.model_seed,
        batch: args.batch,
        prompt_len: args.prompt_len,
        new_tokens: args.new_tokens,
        sample: args.sample,
        trials: args.trials,
        reps: args.reps,
        margin: args.margin,
    };
    match bench_tasks::bench::inference::run(&opts) {
        Ok(report) if args.json => {
            println!(
                "{}",
                serde_json::to_string(&report).expect("the report is plain data")
            );
            ExitCode::SUCCESS
        }
        Ok(report) => {
            print_inference_text(&report);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench-tasks: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The probe's tokens, the argmax at each position, and the first logits at the last position.
type Probe = (Vec<u32>, Vec<u32>, Vec<f32>);

/// The probe sequence, the argmax of the logits at each of its positions, and the first 32 logits at its
/// last position, computed on flex.
fn probe_logits(
    weights: &bench_tasks::inference::HostWeights,
) -> Result<Probe, bench_tasks::inference::InferenceError> {
    use burn::tensor::{Device, Int, Tensor, TensorData};
    let vocab = weights.config().vocab_size;
    let tokens: Vec<u32> = (0..PROBE_LEN).map(|i| ((i * 7_919 + 3) % vocab) as u32).collect();
    let model = bench_tasks::inference::Transformer::from_weights(weights, &Device::flex())?;
    let ids: Vec<i64> = tokens.iter().map(|&t| i64::from(t)).collect();
    let input = Tensor::<2, Int>::from_data(TensorData::new(ids, [1, PROBE_LEN]), &Device::flex());
    let logits = model.logits(model.hidden(input, None));
    let flat: Vec<f32> = logits.into_data().try_into_vec_as::<f32>().map_err(|e| {
        bench_tasks::inference::InferenceError::Backend {
            backend: "flex".into(),
            why: format!("{e:?}"),
        }
    })?;
    let argmax = flat
        .chunks_exact(vocab)
        .map(|row| {
            row.iter()
                .enumerate()
                .fold(
                    (0, f32::NEG_INFINITY),
                    |best, (i, &v)| if v > best.1 { (i, v) } else { best },
                )
                .0 as u32
        })
        .collect();
    let last = flat[(PROBE_LEN - 1) * vocab..][..32.min(vocab)].to_vec();
    Ok((tokens, argmax, last))
}

fn print_inference_text(r: &InferenceBenchReport) {
    println!(
        "inference on {} ({}, {} parameters, {}; B = {}, L = {}, T = {}, s = {})",
        r.backend, r.model, r.params, r.precision, r.batch, r.prompt_len, r.new_tokens, r.sample
    );
    println!(
        "  prefill {:.1} tokens/s; decode {:.1} tokens/s at batch 1, {:.1} at batch {}; verify {:.1} tokens/s",
        r.prefill_tokens_per_second,
        r.decode_tokens_per_second_batch1,
        r.decode_tokens_per_second,
        r.batch,
        r.verify_tokens_per_second
    );
    println!("  model build        {:>10.4} s", r.model_build_seconds);
    println!(
        "  miner              {:>10.4} s  ({:.1} tokens/s)",
        r.miner_seconds, r.tokens_per_second
    );
    println!(
        "  validator verify   {:>10.6} s  ({:.4} × miner)",
        r.verify_seconds, r.verify_ratio
    );
    println!(
        "  honest passed      {} ({} trials, largest deficit {:e}, margin {})",
        r.honest_passed, r.honest_trials, r.max_honest_deficit, r.margin
    );
    println!(
        "  logit difference   {:e} (miner's device vs flex)",
        r.max_logit_difference
    );
    for (name, rate) in &r.detection {
        println!("  detected {name:<18} {rate:>6.3}  ({} trials)", r.trials);
    }
    if let (Some(q), Some(n)) = (r.requantized_token_fail_rate, r.requantized_tokens_to_detect_99) {
        println!("  requantized: {q:.4} of checked tokens fail; {n:.0} tokens to catch it at 0.99");
    }
    println!(
        "  peak resident memory {:.1} MiB",
        r.peak_rss_bytes as f64 / 1_048_576.0
    );
}

fn print_text(r: &MatmulBenchReport) {
    println!(
        "matmul on {} in {} (n = {}, batch = {}, k = {}, m = {}, p = {})",
        r.backend, r.dtype, r.n, r.batch, r.k, r.m, r.p
    );
    println!(
        "  product alone      {:>10.6} s  ({:.4} TFLOP/s)",
        r.kernel_seconds, r.kernel_tflops
    );
    println!(
        "  miner round 1      {:>10.4} s  ({:.4} TFLOP/s; cold {:.4} s)",
        r.miner_seconds, r.tflops, r.miner_cold_seconds
    );
    println!("  miner openings     {:>10.6} s", r.open_seconds);
    println!(
        "  validator setup    {:>10.6} s  ({:.4} × miner)",
        r.round_setup_seconds, r.setup_ratio
    );
    println!(
        "  validator verify   {:>10.6} s  ({:.5} × miner)",
        r.verify_seconds_per_miner, r.verify_ratio
    );
    println!(
        "  H200 at class peak {:>10.6} s  (validator CPU per challenge = {:.4} × that, setup shared by {} miners)",
        r.h200_seconds, r.validator_over_h200, r.miners_per_round
    );
    println!("  honest passed      {}", r.honest_passed);
    for (name, rate) in &r.detection {
        let predicted = r.predicted_detection.get(name).copied().unwrap_or(f64::NAN);
        println!(
            "  detected {name:<14} {rate:>6.3}  (predicted {predicted:.3}, {} trials)",
            r.trials
        );
    }
}
