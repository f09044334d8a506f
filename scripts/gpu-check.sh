#!/usr/bin/env bash
# The prepared GPU check: burn's matmul per dtype class (cuda, vulkan) and the seeded model's prefill/decode
# tokens/s beside PyTorch on the same machine, printed as one JSON object (see scripts/gpu_check.py).
#
#   scripts/gpu-check.sh [BENCH_TASKS_BINARY]      from a checkout, with a binary built by
#                                                  `cargo build --release -p bench-tasks --features cuda,wgpu,vulkan`
#   bash gpu-bundle/run.sh                         from a bundle made by scripts/gpu-bundle.sh (no Rust needed:
#                                                  the binary travels xz-compressed and is unpacked here)
#
# Every step has a timeout inside an overall deadline (GPU_CHECK_DEADLINE seconds, default 450); a failing
# step is reported in the JSON and never stops the rest. The JSON also goes to $OUT/gpu-check.json when $OUT
# is set.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
deadline="${GPU_CHECK_DEADLINE:-450}"
bin="${1:-}"
tmp=""
if [ -z "$bin" ] && [ -f "$here/bench-tasks.xz" ]; then
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  echo "[gpu-check] unpacking bench-tasks" >&2
  timeout 120 python3 -c 'import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2],"wb"), 1<<22)' \
    "$here/bench-tasks.xz" "$tmp/bench-tasks" || { echo '{"errors":[{"step":"unpack","error":"could not unpack bench-tasks.xz"}]}'; exit 1; }
  chmod +x "$tmp/bench-tasks"
  bin="$tmp/bench-tasks"
fi
if [ -z "$bin" ]; then
  bin="${CARGO_TARGET_DIR:-$here/../target}/release/bench-tasks"
fi
lib="$here/lib"
py="$here/gpu_check.py"
[ -f "$py" ] || py="$here/../scripts/gpu_check.py"
timeout -k 10 $((deadline + 40)) python3 "$py" --bin "$bin" --lib "$lib" --deadline "$deadline" "${@:2}"
