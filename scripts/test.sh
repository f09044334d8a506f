#!/usr/bin/env bash
# The project's test command (README "Run the tests"): every crate, with the wgpu backend enabled so the
# GPU kernel path runs on Mesa's software Vulkan driver when there is no GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
icd=$(ls /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json 2>/dev/null | head -n 1 || true)
if [ "$(uname -s)" = Linux ] && [ -z "$icd" ]; then
  echo "test.sh: no Vulkan driver is installed; run 'sudo scripts/install-deps.sh' first (Mesa's software Vulkan driver)" >&2
  exit 1
fi
exec cargo test --workspace --features bench-tasks/wgpu "$@"
