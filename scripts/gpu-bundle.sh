#!/usr/bin/env bash
# Builds the GPU-check bundle: a folder to carry to a GPU machine that has NVIDIA's driver, CUDA and
# PyTorch but no Rust and no network (everything in it stays under 60 MiB).
#
#   scripts/gpu-bundle.sh DEST            (default DEST: ./gpu-bundle)
#
# Contents: bench-tasks.xz (the release binary with cuda + wgpu + vulkan, stripped and xz-compressed),
# lib/ (Debian's Vulkan loader libvulkan.so.1, for machines whose driver ships only the ICD, and the
# libz/libzstd the binary links), gpu_check.py
# and run.sh (= scripts/gpu-check.sh). Build the binary first:
#   eval "$(scripts/cuda-toolchain.sh)"; cargo build --release -p bench-tasks --features cuda,wgpu,vulkan
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${1:-gpu-bundle}"
bin="${BENCH_TASKS_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/bench-tasks}"
[ -x "$bin" ] || { echo "gpu-bundle: no binary at $bin" >&2; exit 1; }
mkdir -p "$dest/lib"
strip -o "$dest/bench-tasks.stripped" "$bin"
xz -T0 -9 -c "$dest/bench-tasks.stripped" > "$dest/bench-tasks.xz"
rm -f "$dest/bench-tasks.stripped"
loader="$(readlink -f /usr/lib/x86_64-linux-gnu/libvulkan.so.1 2>/dev/null || true)"
if [ -n "$loader" ] && [ -f "$loader" ]; then
  cp "$loader" "$dest/lib/libvulkan.so.1"
else
  echo "gpu-bundle: no libvulkan.so.1 here (apt-get install libvulkan1); the bundle goes without it" >&2
fi
# The binary links libz and libzstd (LLVM's); carry them in case the GPU machine lacks them.
for so in libz.so.1 libzstd.so.1; do
  f="$(readlink -f "/usr/lib/x86_64-linux-gnu/$so" 2>/dev/null || readlink -f "/lib/x86_64-linux-gnu/$so" 2>/dev/null || true)"
  [ -n "$f" ] && [ -f "$f" ] && cp "$f" "$dest/lib/$so"
done
cp "$root/scripts/gpu_check.py" "$dest/gpu_check.py"
cp "$root/scripts/gpu-check.sh" "$dest/run.sh"
chmod +x "$dest/run.sh"
du -sh "$dest" >&2
size=$(du -sb "$dest" | cut -f1)
[ "$size" -lt $((60 * 1024 * 1024)) ] || { echo "gpu-bundle: $size bytes is over 60 MiB" >&2; exit 1; }
