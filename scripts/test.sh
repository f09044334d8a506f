#!/usr/bin/env bash
# The project's test command (README "Run the tests"): every crate, with the wgpu backend enabled so the
# GPU kernel path runs on Mesa's software Vulkan driver when there is no GPU; then the miner's server
# tests with wgpu pinned to Vulkan. Extra arguments go to the workspace run only (and skip the second).
set -euo pipefail
cd "$(dirname "$0")/.."
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
icd=$(ls /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json 2>/dev/null | head -n 1 || true)
if [ "$(uname -s)" = Linux ] && [ -z "$icd" ]; then
  echo "test.sh: no Vulkan driver is installed; run 'sudo scripts/install-deps.sh' first (Mesa's software Vulkan driver)" >&2
  exit 1
fi
cargo test --workspace --features bench-tasks/wgpu "$@"
# With no arguments, also the miner's server on wgpu pinned to Vulkan (SPIR-V kernels, and /info
# reading the Vulkan heap size), a feature set the workspace run above does not build.
if [ $# -eq 0 ]; then
  cargo test -p miner --features miner/vulkan --test server
fi
