#!/usr/bin/env python3
"""An independent reference for bench-tasks' real-model inference: a plain numpy Llama forward pass over a
GGUF file, read and dequantized by PyPI's `gguf` package (the library of llama.cpp's own Python tools).

It shares no code with the Rust implementation, and on purpose uses llama.cpp's layout as stored: the rows of
attn_q/attn_k stay in the converter's permuted order and the rotary embedding rotates adjacent pairs
(llama.cpp's "normal" RoPE), where the Rust loader undoes the permutation and rotates halves. Computed in
float64.

Input (stdin, JSON): {"model": PATH, "sequences": [{"prompt": [ids], "generated": [ids]}, ...]}
Output (stdout, JSON): {"sequences": [[{"argmax": id, "max": logit, "chosen": logit}, ...], ...]}, one entry
per generated token: the logits that predict it (teacher-forced on prompt + generated[:t]).

Run it from the virtual environment scripts/reference-venv.sh creates.
"""
import json
import sys

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize


def field(reader, key, default=None):
    f = reader.fields.get(key)
    if f is None:
        return default
    v = f.parts[f.data[0]]
    if v.dtype == np.uint8 and len(f.types) and f.types[0].name == "STRING":
        return bytes(v).decode()
    return v.item() if v.size == 1 else v


class Llama:
    def __init__(self, path):
        r = GGUFReader(path)
        self.n_layers = int(field(r, "llama.block_count"))
        self.n_heads = int(field(r, "llama.attention.head_count"))
        self.n_kv = int(field(r, "llama.attention.head_count_kv", self.n_heads))
        self.theta = float(field(r, "llama.rope.freq_base", 10000.0))
        self.eps = float(field(r, "llama.attention.layer_norm_rms_epsilon"))
        self.w = {}
        for t in r.tensors:
            self.w[t.name] = np.asarray(dequantize(t.data, t.tensor_type), dtype=np.float32)
        d = self.w["token_embd.weight"].shape[1]
        self.hd = d // self.n_heads
        self.out = self.w.get("output.weight", self.w["token_embd.weight"])

    def norm(self, x, w):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + self.eps) * w

    def rope(self, x, pos):
        # x: [T, heads, hd]; rotate adjacent pairs (2i, 2i+1) by pos * theta^(-2i/hd).
        half = self.hd // 2
        inv = self.theta ** (-np.arange(half, dtype=np.float64) * 2.0 / self.hd)
        ang = pos[:, None] * inv[None, :]
        cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
        x0, x1 = x[..., 0::2], x[..., 1::2]
        out = np.empty_like(x)
        out[..., 0::2] = x0 * cos - x1 * sin
        out[..., 1::2] = x0 * sin + x1 * cos
        return out

    def logits(self, ids):
        T = len(ids)
        x = self.w["token_embd.weight"][ids].astype(np.float64)
        pos = np.arange(T, dtype=np.float64)
        mask = np.triu(np.full((T, T), -np.inf), 1)
        group = self.n_heads // self.n_kv
        for i in range(self.n_layers):
            p = f"blk.{i}."
            h = self.norm(x, self.w[p + "attn_norm.weight"])
            q = (h @ self.w[p + "attn_q.weight"].T.astype(np.float64)).reshape(T, self.n_heads, self.hd)
            k = (h @ self.w[p + "attn_k.weight"].T.astype(np.float64)).reshape(T, self.n_kv, self.hd)
            v = (h @ self.w[p + "attn_v.weight"].T.astype(np.float64)).reshape(T, self.n_kv, self.hd)
            q, k = self.rope(q, pos), self.rope(k, pos)
            k = np.repeat(k, group, axis=1)
            v = np.repeat(v, group, axis=1)
            s = np.einsum("qhd,khd->hqk", q, k) / np.sqrt(self.hd) + mask
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            a = np.einsum("hqk,khd->qhd", s, v).reshape(T, -1)
            x = x + a @ self.w[p + "attn_output.weight"].T.astype(np.float64)
            h = self.norm(x, self.w[p + "ffn_norm.weight"])
            g = h @ self.w[p + "ffn_gate.weight"].T.astype(np.float64)
            u = h @ self.w[p + "ffn_up.weight"].T.astype(np.float64)
            x = x + (g / (1.0 + np.exp(-g)) * u) @ self.w[p + "ffn_down.weight"].T.astype(np.float64)
        x = self.norm(x, self.w["output_norm.weight"])
        return x @ self.out.T.astype(np.float64)


def main():
    req = json.load(sys.stdin)
    model = Llama(req["model"])
    out = []
    for seq in req["sequences"]:
        prompt, gen = seq["prompt"], seq["generated"]
        ids = np.array(prompt + gen[:-1], dtype=np.int64)
        lg = model.logits(ids)[len(prompt) - 1:]
        out.append([
            {"argmax": int(row.argmax()), "max": float(row.max()), "chosen": float(row[tok])}
            for row, tok in zip(lg, gen)
        ])
    json.dump({"sequences": out}, sys.stdout)


if __name__ == "__main__":
    main()
