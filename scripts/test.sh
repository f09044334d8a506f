#!/usr/bin/env bash
# The project's test command (README "Run the tests"): every crate, with the wgpu backend enabled so the
# GPU kernel path runs on Mesa's software Vulkan driver when there is no GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
exec cargo test --workspace --features bench-tasks/wgpu "$@"
