//! Continuous batching on the real default model (SmolLM2-135M-Instruct): sequences that share the batch
//! get the tokens they would get alone, a seeded sampled generation replays on the verifier, cancellation
//! and finished sequences free their slots at once, a full engine refuses, and stop strings cut the text.
//!
//! Needs the model (`scripts/fetch-model.sh`, run by `scripts/install-deps.sh`).

use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use bench_tasks::inference::chat::chat_prompt;
use bench_tasks::inference::engine::{
    Busy, Engine, EngineLimits, EventSink, Finished, SequenceEvent, SequenceRequest, SlotGate,
};
use bench_tasks::inference::real::{REAL_MODEL_MARGIN, RealModel, SMOLLM2};
use bench_tasks::inference::{Limits, Sampling, Transformer, Verifier};
use bench_tasks::wire::FinishReason;
use burn::tensor::Device;

struct Loaded {
    real: RealModel,
    model: Transformer,
}

fn loaded() -> &'static Loaded {
    static CELL: OnceLock<Loaded> = OnceLock::new();
    CELL.get_or_init(|| {
        let real = RealModel::load(SMOLLM2).unwrap_or_else(|e| panic!("{e}"));
        let model = Transformer::from_weights(&real.weights, &Device::flex()).unwrap();
        Loaded { real, model }
    })
}

/// A channel end the engine writes to; dropping the [`Receiver`] cancels the sequence.
struct ChannelSink(SyncSender<SequenceEvent>, Arc<()>);

impl EventSink for ChannelSink {
    fn deliver(&mut self, event: SequenceEvent) -> bool {
        !matches!(
            self.0.try_send(event),
            Err(TrySendError::Disconnected(_) | TrySendError::Full(_))
        )
    }
    fn is_closed(&self) -> bool {
        // The receiver holds the other count of the Arc.
        Arc::strong_count(&self.1) == 1
    }
}

struct Stream {
    rx: Receiver<SequenceEvent>,
    _alive: Arc<()>,
}

fn limits() -> EngineLimits {
    EngineLimits {
        max_sequences: 4,
        max_tokens: 64,
        kv_budget_bytes: 1 << 30,
    }
}

fn request(user: &str, max_tokens: usize, sampling: Sampling) -> SequenceRequest {
    let prompt = chat_prompt(&loaded().real.tokenizer, None, user).unwrap();
    SequenceRequest {
        prompt,
        max_tokens,
        sampling,
        stop: Vec::new(),
    }
}

fn join(engine: &mut Engine, r: SequenceRequest) -> Stream {
    let l = loaded();
    let (tx, rx) = sync_channel(r.max_tokens + 2);
    let alive = Arc::new(());
    let reservation = engine.gate().reserve(r.positions()).unwrap();
    let sink = Box::new(ChannelSink(tx, Arc::clone(&alive)));
    engine
        .join(&l.model, &l.real.tokenizer, r, reservation, sink, Instant::now())
        .unwrap();
    Stream { rx, _alive: alive }
}

/// Every event received so far: the ids, the text and the end, if any.
fn drain(s: &Stream) -> (Vec<u32>, String, Option<Finished>) {
    let (mut ids, mut text, mut end) = (Vec::new(), String::new(), None);
    while let Ok(e) = s.rx.try_recv() {
        match e {
            SequenceEvent::Token { id, text: t } => {
                ids.push(id);
                text.push_str(&t);
            }
            SequenceEvent::Finished(f) => end = Some(f),
            SequenceEvent::Failed(e) => panic!("the engine failed: {e}"),
        }
    }
    (ids, text, end)
}

fn run_to_end(engine: &mut Engine) {
    let l = loaded();
    while engine.step(&l.model, &l.real.tokenizer).unwrap() > 0 {}
}

fn alone(r: &SequenceRequest) -> (Vec<u32>, String, Finished) {
    let mut engine = Engine::new(SlotGate::new(loaded().model.config(), limits()));
    let s = join(&mut engine, r.clone());
    run_to_end(&mut engine);
    let (ids, text, end) = drain(&s);
    (ids, text, end.expect("the sequence ended"))
}

#[test]
fn sequences_joining_a_running_batch_get_the_tokens_they_get_alone() {
    let greedy = request("Name three colours.", 24, Sampling::GREEDY);
    let sampled = request(
        "Write one sentence about the sea.",
        24,
        Sampling {
            temperature: 0.8,
            top_p: 0.9,
            seed: 7,
        },
    );
    let (greedy_alone, _, _) = alone(&greedy);
    let (sampled_alone, _, _) = alone(&sampled);

    // The second sequence joins after five steps of the first: different positions in every later step.
    let l = loaded();
    let mut engine = Engine::new(SlotGate::new(l.model.config(), limits()));
    let a = join(&mut engine, greedy.clone());
    for _ in 0..5 {
        engine.step(&l.model, &l.real.tokenizer).unwrap();
    }
    let b = join(&mut engine, sampled.clone());
    assert_eq!(engine.running(), 2);
    run_to_end(&mut engine);
    let (a_ids, _, a_end) = drain(&a);
    let (b_ids, _, b_end) = drain(&b);
    assert_eq!(a_ids, greedy_alone, "batching changed the greedy sequence");
    assert_eq!(b_ids, sampled_alone, "batching changed the sampled sequence");
    for (ids, end, r) in [(&a_ids, a_end, &greedy), (&b_ids, b_end, &sampled)] {
        let end = end.expect("ended");
        assert_eq!(end.completion_tokens, ids.len());
        assert_eq!(end.prompt_tokens, r.prompt.len());
        assert!(end.ttft <= end.total);
    }
    assert_eq!(engine.gate().in_use(), 0, "finished sequences keep their slots");
}

#[test]
fn a_seeded_sampled_generation_replays_on_the_verifier_and_a_changed_token_fails() {
    let l = loaded();
    let sampling = Sampling {
        temperature: 0.7,
        top_p: 0.95,
        seed: 4242,
    };
    let r = request("Tell me a fact about owls.", 32, sampling);
    let (ids, text, end) = alone(&r);
    assert!(!text.is_empty());
    let verifier =
        Verifier::new(l.real.id.clone(), l.model.clone(), Limits::default()).with_margin(REAL_MODEL_MARGIN);
    let verdict = verifier.verify_generation(&r.prompt, &ids, &sampling);
    assert!(verdict.passed, "{verdict:?} ({end:?})");
    // Another seed's continuation is not this seed's: replaying it under this seed fails.
    let other = Sampling {
        seed: 4243,
        ..sampling
    };
    let (other_ids, _, _) = alone(&SequenceRequest {
        sampling: other,
        ..r.clone()
    });
    assert_ne!(other_ids, ids, "two seeds gave the same 32 tokens");
    assert!(
        !verifier
            .verify_generation(&r.prompt, &other_ids, &sampling)
            .passed
    );
    // The greedy rule is checked too.
    let mut forged = ids.clone();
    forged[ids.len() / 2] = (forged[ids.len() / 2] + 1) % 49152;
    assert!(!verifier.verify_generation(&r.prompt, &forged, &sampling).passed);
}

#[test]
fn a_cancelled_sequence_leaves_within_one_step_and_a_full_engine_refuses() {
    let l = loaded();
    let gate = SlotGate::new(
        l.model.config(),
        EngineLimits {
            max_sequences: 2,
            ..limits()
        },
    );
    let mut engine = Engine::new(Arc::clone(&gate));
    let a = join(&mut engine, request("Count to twenty.", 60, Sampling::GREEDY));
    let b = join(&mut engine, request("Say hello.", 60, Sampling::GREEDY));
    assert_eq!(gate.in_use(), 2);
    assert_eq!(gate.reserve(10).unwrap_err(), Busy::Slots(2));
    engine.step(&l.model, &l.real.tokenizer).unwrap();
    drop(a);
    engine.step(&l.model, &l.real.tokenizer).unwrap();
    assert_eq!(engine.running(), 1, "the cancelled sequence is still decoding");
    assert_eq!(gate.in_use(), 1);
    let c = gate.reserve(10).expect("the freed slot is free");
    drop((b, c));
    engine.step(&l.model, &l.real.tokenizer).unwrap();
    assert_eq!((engine.running(), gate.in_use()), (0, 0));
}

#[test]
fn stop_strings_cut_the_text_and_eos_and_length_end_as_documented() {
    let r = request(
        "List the numbers from 1 to 10, separated by commas.",
        40,
        Sampling::GREEDY,
    );
    let (ids, text, end) = alone(&r);
    assert!(text.contains('5'), "the model did not count: {text:?}");
    let cut = text.find('5').unwrap();

    let stopped = SequenceRequest {
        stop: vec!["5".into()],
        ..r.clone()
    };
    let (s_ids, s_text, s_end) = alone(&stopped);
    assert_eq!(s_end.reason, FinishReason::Stop);
    assert_eq!(s_text, text[..cut], "text up to the stop string, without it");
    assert!(
        s_ids.len() < ids.len() && ids.starts_with(&s_ids),
        "the stop string's token is kept"
    );

    let short = SequenceRequest { max_tokens: 3, ..r };
    let (short_ids, _, short_end) = alone(&short);
    assert_eq!((short_end.reason, short_ids.len()), (FinishReason::Length, 3));
    assert_eq!(short_ids, ids[..3]);
    // Without a stop string the reply ends at <|im_end|> (counted, no text) or at max_tokens.
    match end.reason {
        FinishReason::Stop => assert!(
            loaded()
                .real
                .tokenizer
                .stop_tokens()
                .contains(ids.last().unwrap())
        ),
        FinishReason::Length => assert_eq!(ids.len(), 40),
    }
}

#[test]
fn bad_requests_are_refused_before_any_work() {
    let l = loaded();
    let config = l.model.config();
    let lim = limits();
    let ok = request("hi", 8, Sampling::GREEDY);
    assert!(ok.validate(config, &lim).is_ok());
    let cases = [
        SequenceRequest {
            prompt: vec![],
            ..ok.clone()
        },
        SequenceRequest {
            max_tokens: 0,
            ..ok.clone()
        },
        SequenceRequest {
            max_tokens: 65,
            ..ok.clone()
        },
        SequenceRequest {
            prompt: vec![1; config.max_seq_len - 4],
            ..ok.clone()
        },
        SequenceRequest {
            prompt: vec![49152],
            ..ok.clone()
        },
        SequenceRequest {
            stop: vec![String::new()],
            ..ok.clone()
        },
        SequenceRequest {
            stop: vec!["x".repeat(65)],
            ..ok.clone()
        },
        SequenceRequest {
            sampling: Sampling {
                temperature: 11.0,
                ..Sampling::GREEDY
            },
            ..ok.clone()
        },
        SequenceRequest {
            sampling: Sampling {
                temperature: 1.0,
                top_p: 0.0,
                seed: 1,
            },
            ..ok
        },
    ];
    for bad in cases {
        assert!(bad.validate(config, &lim).is_err(), "accepted {bad:?}");
    }
}
