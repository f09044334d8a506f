#!/usr/bin/env bash
# Creates the Python virtual environment with the unchanged Bittensor SDK (PyPI `bittensor`), used by
# chain/devnet/tests/sdk_client.rs and chain/devnet/tests/sdk/everyday.py to drive the devnet as an
# ordinary SDK user would. Cached per SDK version:
#
#   ${TENSORPROOF_SDK_VENV:-$HOME/.cache/tensorproof/venv-sdk-$BITTENSOR_VERSION}
#
# Wheels only (nothing compiles). Safe to run again; prints the venv's python path on its last line.
set -euo pipefail
version="${BITTENSOR_VERSION:-11.3.0}"
venv="${TENSORPROOF_SDK_VENV:-$HOME/.cache/tensorproof/venv-sdk-$version}"
PY="${PYTHON:-python3}"
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import bittensor, sys; sys.exit(0 if bittensor.__version__ == '$version' else 1)" 2>/dev/null; then
  echo "sdk-venv: $venv is ready" >&2
  echo "$venv/bin/python"
  exit 0
fi
rm -rf "$venv"
"$PY" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --only-binary=:all: "bittensor==$version" >&2
"$venv/bin/python" -c "import bittensor; print('sdk-venv: bittensor', bittensor.__version__, 'ready in $venv')" >&2
echo "$venv/bin/python"
