#!/usr/bin/env python3
"""One prepared GPU check of tensorproof: burn (via the `bench-tasks` binary) beside PyTorch, in one run.

Prints one JSON object on stdout (and writes it to $OUT/gpu-check.json when $OUT is set):

* matmul: burn's TFLOP/s per dtype class (f32, f16, bf16) at 4096³ and 8192³ on `cuda` and `vulkan`
  (`kernel_tflops`: the product alone; `round1_tflops`: the whole timed challenge round, generation and
  sketch included), PyTorch's TFLOP/s for the same products measured in the same run, the ratio, and
  whether every answer verified (burn: the validator's exact check on the CPU; PyTorch: sampled rows
  against exact float64 products rounded to the dtype).
* inference: the seeded `medium` model's prefill and decode tokens/s in burn (cuda) and in PyTorch on the
  same weights (exported by `bench-tasks export-weights`), plus a probe that the two frameworks compute
  the same model (argmax agreement and the largest logit difference on a fixed sequence).

Every step runs under a timeout inside one overall deadline; a failing or timed-out step is recorded in
the JSON (`errors`) and never stops the rest. Needs only Python 3, PyTorch and the NVIDIA driver; no
network, no Rust.

    python3 gpu_check.py --bin ./bench-tasks [--deadline 450] [--lib ./lib]
"""

import argparse
import glob
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

START = time.monotonic()
ERRORS = []
LOGS = {}
BUNDLED_USED = []


def elapsed():
    return time.monotonic() - START


def log(msg):
    print(f"[gpu-check {elapsed():6.1f}s] {msg}", file=sys.stderr, flush=True)


def remaining(deadline):
    return deadline - elapsed()


def run_step(name, argv, timeout, env=None, deadline=None):
    """Runs argv with a timeout (killing its whole process group); returns (rc, stdout, stderr, seconds)."""
    if deadline is not None:
        timeout = min(timeout, remaining(deadline) - 5)
    if timeout < 3:
        ERRORS.append({"step": name, "error": "skipped: the overall deadline was reached"})
        log(f"{name}: skipped (deadline)")
        return None
    log(f"{name}: start (timeout {timeout:.0f}s): {' '.join(argv)}")
    t0 = time.monotonic()
    try:
        proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,
            text=True,
        )
    except OSError as e:
        ERRORS.append({"step": name, "error": f"could not start: {e}"})
        return None
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        out, err = proc.communicate()
        secs = time.monotonic() - t0
        ERRORS.append({"step": name, "error": f"timed out after {secs:.0f}s", "stderr_tail": (err or "")[-1500:]})
        LOGS[name] = (err or "")[-4000:]
        log(f"{name}: TIMED OUT after {secs:.0f}s")
        return None
    secs = time.monotonic() - t0
    LOGS[name] = (err or "")[-4000:]
    if proc.returncode != 0:
        ERRORS.append(
            {"step": name, "error": f"exit code {proc.returncode}", "stderr_tail": (err or "")[-1500:]}
        )
        log(f"{name}: FAILED rc={proc.returncode} in {secs:.1f}s: {(err or '').strip()[-300:]}")
        return None
    log(f"{name}: ok in {secs:.1f}s")
    return proc.returncode, out, err, secs


def last_json(text):
    for line in reversed((text or "").strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise ValueError("no JSON line in the output")


def lib_env(lib_dir):
    """The environment for the burn binary: bundled libvulkan, CUDA/NVRTC from the system or PyTorch's wheels."""
    env = dict(os.environ)
    dirs = []
    if lib_dir and os.path.isdir(lib_dir):
        # Only the bundled libraries this machine lacks: its own loader finds its own driver best.
        try:
            known = subprocess.run(
                ["ldconfig", "-p"], capture_output=True, text=True, timeout=10
            ).stdout
        except Exception:  # noqa: BLE001
            known = ""
        fallback = tempfile.mkdtemp(prefix="gpu-check-lib-")
        for name in sorted(os.listdir(lib_dir)):
            if name not in known:
                os.symlink(os.path.join(os.path.abspath(lib_dir), name), os.path.join(fallback, name))
                BUNDLED_USED.append(name)
        dirs.append(fallback)
    for pattern in ("/usr/local/cuda/lib64", "/usr/local/cuda-*/lib64", "/usr/local/cuda/targets/*/lib"):
        dirs.extend(sorted(glob.glob(pattern)))
    try:
        import torch  # noqa: F401  (only to find its bundled NVIDIA libraries)

        site = os.path.dirname(os.path.dirname(torch.__file__))
        dirs.extend(sorted(glob.glob(os.path.join(site, "nvidia", "*", "lib"))))
        dirs.append(os.path.join(os.path.dirname(torch.__file__), "lib"))
    except Exception:  # noqa: BLE001
        pass
    old = env.get("LD_LIBRARY_PATH", "")
    env["LD_LIBRARY_PATH"] = ":".join([d for d in dirs if os.path.isdir(d)] + ([old] if old else []))
    env.setdefault("RUST_LOG", "warn")
    return env


# ---------------------------------------------------------------------------------------------- machine


def machine_info(deadline):
    info = {}
    r = run_step(
        "nvidia-smi",
        ["nvidia-smi", "--query-gpu=name,memory.total,driver_version,clocks.max.sm", "--format=csv,noheader"],
        20,
        deadline=deadline,
    )
    if r:
        info["gpus"] = [line.strip() for line in r[1].strip().splitlines()]
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_cuda"] = torch.version.cuda
        info["cuda_available"] = torch.cuda.is_available()
        if torch.cuda.is_available():
            info["device"] = torch.cuda.get_device_name(0)
    except Exception as e:  # noqa: BLE001
        ERRORS.append({"step": "torch-import", "error": repr(e)})
    icds = sorted(
        glob.glob("/usr/share/vulkan/icd.d/*.json") + glob.glob("/etc/vulkan/icd.d/*.json")
    )
    info["vulkan_icds"] = icds
    r = run_step("ldconfig", ["sh", "-c", "ldconfig -p | grep -E 'libcuda.so|libnvrtc|libvulkan' | head -20"], 10)
    if r:
        info["ldconfig"] = [line.strip() for line in r[1].strip().splitlines()]
    return info


# ----------------------------------------------------------------------------------------------- matmul


def torch_matmul(n, dtype_name, reps=10):
    """PyTorch's TFLOP/s for the same product (integers in [-8, 8]) and an exactness check of sampled rows."""
    import torch

    dt = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}[dtype_name]
    dev = "cuda"
    g = torch.Generator(device=dev).manual_seed(n)
    a = torch.randint(-8, 9, (n, n), device=dev, generator=g).to(dt)
    b = torch.randint(-8, 9, (n, n), device=dev, generator=g).to(dt)
    out = {}
    for label, tf32 in (("torch", False), ("torch_tf32", True)):
        if dtype_name != "f32" and tf32:
            continue
        torch.backends.cuda.matmul.allow_tf32 = tf32
        c = a @ b
        torch.cuda.synchronize()
        times = []
        for _ in range(reps):
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record()
            c = a @ b
            e.record()
            torch.cuda.synchronize()
            times.append(s.elapsed_time(e) / 1000.0)
        times.sort()
        secs = times[len(times) // 2]
        rows = torch.randint(0, n, (8,), device=dev, generator=g)
        exact = a[rows].double() @ b.double()
        verified = bool(torch.equal(c[rows], exact.to(dt)))
        out[label] = {"seconds": secs, "tflops": 2 * n**3 / secs / 1e12, "verified": verified}
    torch.backends.cuda.matmul.allow_tf32 = False
    del a, b, c
    torch.cuda.empty_cache()
    return out


def burn_matmul(binary, env, backend, dtype_name, n, deadline, timeout):
    argv = [
        binary, "bench", "matmul", "--backend", backend, "--dtype", dtype_name, "--n", str(n),
        "--trials", "2", "--reps", "5", "--json",
    ]
    r = run_step(f"burn-matmul-{backend}-{dtype_name}-{n}", argv, timeout, env=env, deadline=deadline)
    if not r:
        return None
    try:
        rep = last_json(r[1])
    except Exception as e:  # noqa: BLE001
        ERRORS.append({"step": f"burn-matmul-{backend}-{dtype_name}-{n}", "error": f"bad output: {e}"})
        return None
    adversaries_caught = all(v > 0.0 for k, v in rep.get("detection", {}).items() if k != "lazy_0.05")
    return {
        "native_dtype": rep.get("native_dtype"),
        "kernel_tflops": rep["kernel_tflops"],
        "round1_tflops": rep["tflops"],
        "kernel_seconds": rep["kernel_seconds"],
        "round1_seconds": rep["miner_seconds"],
        "cold_seconds": rep["miner_cold_seconds"],
        "verify_seconds_per_miner": rep["verify_seconds_per_miner"],
        "round_setup_seconds": rep["round_setup_seconds"],
        "validator_over_h200": rep["validator_over_h200"],
        "honest_passed": rep["honest_passed"],
        "detection": rep["detection"],
        "adversaries_caught": adversaries_caught,
        "wall_seconds": r[3],
    }


# -------------------------------------------------------------------------------------------- inference


def load_safetensors(path):
    """A minimal safetensors reader (f32 only, what `export-weights` writes): no extra package needed."""
    import struct

    import torch

    with open(path, "rb") as f:
        (header_len,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(header_len))
        data = bytearray(f.read())
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        if meta["dtype"] != "F32":
            raise ValueError(f"{name}: dtype {meta['dtype']} (only F32 is read)")
        start, end = meta["data_offsets"]
        t = torch.frombuffer(data, dtype=torch.float32, count=(end - start) // 4, offset=start)
        out[name] = t.reshape(meta["shape"])
    return out


def torch_llama(path, cfg, device):
    """A Llama forward in PyTorch on the exported weights (HF layout, f32), with a KV cache."""
    import torch

    w = {k: v.to(device) for k, v in load_safetensors(path).items()}
    d, nh, nkv = cfg["d_model"], cfg["n_heads"], cfg["n_kv_heads"]
    hd = d // nh
    eps, theta = cfg["norm_eps"], cfg["rope_theta"]
    inv_freq = torch.tensor(
        [theta ** (-(2 * i) / hd) for i in range(hd // 2)], dtype=torch.float64, device=device
    )

    def rope(start, length):
        pos = torch.arange(start, start + length, dtype=torch.float64, device=device)
        ang = torch.outer(pos, inv_freq)
        ang = torch.cat([ang, ang], dim=-1)
        return ang.cos().float()[None, None], ang.sin().float()[None, None]

    def rms(x, weight):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight

    def apply_rope(x, cos, sin):
        half = x.shape[-1] // 2
        rot = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
        return x * cos + rot * sin

    def forward(tokens, cache):
        bsz, length = tokens.shape
        past = cache[0][0].shape[2] if cache else 0
        cos, sin = rope(past, length)
        x = w["model.embed_tokens.weight"][tokens]
        mask = None
        if length > 1:
            total = past + length
            i = torch.arange(length, device=device)[:, None]
            j = torch.arange(total, device=device)[None, :]
            mask = torch.where(j <= past + i, 0.0, -1e9).to(torch.float32)[None, None]
        new_cache = []
        for layer in range(cfg["n_layers"]):
            p = f"model.layers.{layer}"
            h = rms(x, w[f"{p}.input_layernorm.weight"])
            q = (h @ w[f"{p}.self_attn.q_proj.weight"].T).view(bsz, length, nh, hd).transpose(1, 2)
            k = (h @ w[f"{p}.self_attn.k_proj.weight"].T).view(bsz, length, nkv, hd).transpose(1, 2)
            v = (h @ w[f"{p}.self_attn.v_proj.weight"].T).view(bsz, length, nkv, hd).transpose(1, 2)
            q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
            if cache:
                k = torch.cat([cache[layer][0], k], dim=2)
                v = torch.cat([cache[layer][1], v], dim=2)
            new_cache.append((k, v))
            rep = nh // nkv
            kk = k.repeat_interleave(rep, dim=1)
            vv = v.repeat_interleave(rep, dim=1)
            scores = (q @ kk.transpose(2, 3)) / (hd**0.5)
            if mask is not None:
                scores = scores + mask
            att = torch.softmax(scores, dim=-1) @ vv
            att = att.transpose(1, 2).reshape(bsz, length, d)
            x = x + att @ w[f"{p}.self_attn.o_proj.weight"].T
            h = rms(x, w[f"{p}.post_attention_layernorm.weight"])
            gate = torch.nn.functional.silu(h @ w[f"{p}.mlp.gate_proj.weight"].T)
            up = h @ w[f"{p}.mlp.up_proj.weight"].T
            x = x + (gate * up) @ w[f"{p}.mlp.down_proj.weight"].T
        x = rms(x, w["model.norm.weight"])
        return x, new_cache

    def logits(hidden):
        return hidden @ w["lm_head.weight"].T

    return forward, logits


def torch_generate(forward, logits, prompts, new_tokens):
    import torch

    h, cache = forward(prompts, None)
    nxt = logits(h[:, -1]).argmax(-1, keepdim=True)
    steps = [nxt]
    for _ in range(new_tokens - 1):
        h, cache = forward(nxt, cache)
        nxt = logits(h[:, -1]).argmax(-1, keepdim=True)
        steps.append(nxt)
    return torch.cat(steps, dim=1).cpu()


def torch_inference(path, export, shapes, reps=3):
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    cfg = export["config"]
    forward, logits = torch_llama(path, cfg, "cuda")
    out = {}
    with torch.no_grad():
        probe = torch.tensor([export["probe_tokens"]], device="cuda")
        lg, _ = forward(probe, None)
        lg = logits(lg)[0]
        argmax = lg.argmax(-1).cpu().tolist()
        last = lg[-1, : len(export["probe_last_logits"])].cpu().tolist()
        out["probe"] = {
            "argmax_agree": sum(int(a == b) for a, b in zip(argmax, export["probe_argmax"])),
            "positions": len(argmax),
            "max_logit_difference_vs_burn_flex": max(
                abs(a - b) for a, b in zip(last, export["probe_last_logits"])
            ),
        }
        for name, (batch, prompt_len, new_tokens) in shapes.items():
            g = torch.Generator(device="cuda").manual_seed(7)
            prompts = torch.randint(0, cfg["vocab_size"], (batch, prompt_len), device="cuda", generator=g)
            torch_generate(forward, logits, prompts, new_tokens)
            torch.cuda.synchronize()
            times = []
            for _ in range(reps):
                t0 = time.perf_counter()
                torch_generate(forward, logits, prompts, new_tokens)
                torch.cuda.synchronize()
                times.append(time.perf_counter() - t0)
            times.sort()
            secs = times[len(times) // 2]
            out[name] = {"seconds": secs, **tokens_per_second(name, batch, prompt_len, new_tokens, secs)}
    return out


def tokens_per_second(name, batch, prompt_len, new_tokens, secs):
    if name == "prefill":
        return {"tokens_per_second": batch * prompt_len / secs}
    return {"tokens_per_second": batch * new_tokens / secs}


def burn_inference(binary, env, shapes, deadline, backend, preset):
    out = {}
    for name, (batch, prompt_len, new_tokens) in shapes.items():
        argv = [
            binary, "bench", "inference", "--backend", backend, "--preset", preset, "--batch", str(batch),
            "--prompt-len", str(prompt_len), "--new-tokens", str(new_tokens), "--trials", "0", "--reps", "3",
            "--sample", "1", "--json",
        ]
        r = run_step(f"burn-inference-{backend}-{name}", argv, 150, env=env, deadline=deadline)
        if not r:
            continue
        try:
            rep = last_json(r[1])
        except Exception as e:  # noqa: BLE001
            ERRORS.append({"step": f"burn-inference-{name}", "error": f"bad output: {e}"})
            continue
        secs = rep["miner_seconds"]
        out[name] = {
            "seconds": secs,
            **tokens_per_second(name, batch, prompt_len, new_tokens, secs),
            "honest_passed": rep["honest_passed"],
            "max_logit_difference_vs_flex": rep["max_logit_difference"],
            "verify_seconds": rep["verify_seconds"],
            "wall_seconds": r[3],
        }
    return out


# ------------------------------------------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", required=True, help="the bench-tasks binary (features cuda, vulkan)")
    ap.add_argument("--lib", default=None, help="folder with the bundled libvulkan.so.1")
    ap.add_argument("--deadline", type=float, default=450.0, help="overall seconds (default 450)")
    ap.add_argument("--sizes", default="8192,4096")
    ap.add_argument("--dtypes", default="bf16,f16,f32")
    ap.add_argument("--backends", default="cuda,vulkan")
    ap.add_argument("--skip-torch", action="store_true", help="no PyTorch steps (a CPU dry run)")
    ap.add_argument("--skip-inference", action="store_true")
    ap.add_argument("--inference-backend", default="cuda")
    ap.add_argument("--preset", default="medium", help="seeded model preset (tiny for a CPU dry run)")
    args = ap.parse_args()
    deadline = args.deadline
    binary = os.path.abspath(args.bin)
    env = lib_env(args.lib)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    dtypes = [d for d in args.dtypes.split(",") if d]
    backends = [b for b in args.backends.split(",") if b]

    summary = {"machine": machine_info(deadline)}
    summary["machine"]["ld_library_path"] = env.get("LD_LIBRARY_PATH", "")
    summary["machine"]["bundled_libraries_used"] = BUNDLED_USED
    torch_ok = not args.skip_torch and summary["machine"].get("cuda_available", False)

    # 1. PyTorch's products (fast; the reference for every ratio).
    torch_mm = {}
    if torch_ok:
        for n in sizes:
            for dt in dtypes:
                if remaining(deadline) < 30:
                    break
                try:
                    log(f"torch matmul {dt} {n}")
                    torch_mm[(dt, n)] = torch_matmul(n, dt)
                except Exception as e:  # noqa: BLE001
                    ERRORS.append({"step": f"torch-matmul-{dt}-{n}", "error": repr(e)[:500]})

    # 2. burn's products, by priority: cuda at the largest size first, vulkan last.
    plan = []
    for backend in backends:
        # Off CUDA, f32 first: the format every driver runs, so its failure means the backend is absent.
        order = dtypes if backend == "cuda" else sorted(dtypes, key=lambda d: d != "f32")
        for n in sizes:
            for dt in order:
                plan.append((backend, dt, n))
    matmul = []
    inference_done = False
    shapes = {"prefill": (8, 512, 1), "decode": (16, 16, 128)}
    if args.preset == "tiny":
        shapes = {"prefill": (2, 64, 1), "decode": (2, 8, 16)}
    inference = {}

    def run_inference():
        if args.skip_inference:
            return
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "medium.safetensors")
            r = run_step(
                "export-weights",
                [binary, "export-weights", "--preset", args.preset, "--model-seed", "1", "--out", path],
                120,
                env=env,
                deadline=deadline,
            )
            export = None
            if r:
                try:
                    export = last_json(r[1])
                except Exception as e:  # noqa: BLE001
                    ERRORS.append({"step": "export-weights", "error": f"bad output: {e}"})
            inference["burn"] = burn_inference(binary, env, shapes, deadline, args.inference_backend, args.preset)
            if torch_ok and export is not None and remaining(deadline) > 30:
                try:
                    log("torch inference")
                    inference["torch"] = torch_inference(path, export, shapes)
                except Exception as e:  # noqa: BLE001
                    ERRORS.append({"step": "torch-inference", "error": repr(e)[:500]})
        inference["shapes"] = {k: {"batch": b, "prompt_len": l, "new_tokens": t} for k, (b, l, t) in shapes.items()}
        inference["model"] = f"seeded {args.preset} (f32), model seed 1"
        for name in shapes:
            b = inference.get("burn", {}).get(name)
            t = inference.get("torch", {}).get(name)
            if b and t:
                inference.setdefault("ratio_burn_to_torch", {})[name] = b["tokens_per_second"] / t["tokens_per_second"]

    dead_backends = set()
    for backend, dt, n in plan:
        if backend in dead_backends:
            matmul.append({"backend": backend, "dtype": dt, "n": n, "skipped": "the backend failed to run"})
            continue
        # Inference after cuda's largest size, before the rest.
        if not inference_done and (backend != "cuda" or n != sizes[0]):
            run_inference()
            inference_done = True
        first_of_backend = not any(m["backend"] == backend for m in matmul)
        timeout = 150 if first_of_backend else 90
        res = burn_matmul(binary, env, backend, dt, n, deadline, timeout)
        entry = {"backend": backend, "dtype": dt, "n": n}
        if res:
            entry["burn"] = res
        t = torch_mm.get((dt, n))
        if t:
            entry["torch"] = t
            if res:
                entry["ratio_kernel_to_torch"] = res["kernel_tflops"] / t["torch"]["tflops"]
                if "torch_tf32" in t:
                    entry["ratio_kernel_to_torch_tf32"] = res["kernel_tflops"] / t["torch_tf32"]["tflops"]
        matmul.append(entry)
        if res is None and first_of_backend and backend != "cuda":
            # The backend does not start (no Vulkan driver, say): one failure is enough to report it.
            dead_backends.add(backend)
    if not inference_done:
        run_inference()

    # burn's answers, checked by the validator's own verifier (the project's claim); PyTorch's products
    # are checked separately (cuBLAS may reduce split-K partial sums in 16 bits by default).
    verified = []
    torch_exact = []
    for m in matmul:
        if "burn" in m:
            verified.append(m["burn"]["honest_passed"] and m["burn"]["adversaries_caught"])
        if "torch" in m:
            torch_exact.extend(v["verified"] for v in m["torch"].values())
    for b in inference.get("burn", {}).values():
        verified.append(b["honest_passed"])
    summary["torch_products_exact"] = bool(torch_exact) and all(torch_exact)
    summary["matmul"] = matmul
    summary["inference"] = inference
    summary["all_verified"] = bool(verified) and all(verified)
    summary["answers_checked"] = len(verified)
    summary["errors"] = ERRORS
    summary["elapsed_seconds"] = round(elapsed(), 1)
    text = json.dumps(summary, indent=1, sort_keys=True)
    print(text, flush=True)
    out_dir = os.environ.get("OUT")
    if out_dir and os.path.isdir(out_dir):
        with open(os.path.join(out_dir, "gpu-check.json"), "w") as f:
            f.write(text)
        with open(os.path.join(out_dir, "gpu-check-logs.json"), "w") as f:
            json.dump(LOGS, f, indent=1)


if __name__ == "__main__":
    main()
