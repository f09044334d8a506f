#!/usr/bin/env bash
# Creates the Python virtual environment of the independent reference implementation
# (scripts/reference_llama.py: a numpy Llama that reads and dequantizes GGUF files with PyPI's `gguf`
# package, the library llama.cpp's own Python tools use). The tests in bench-tasks/tests/real_model.rs
# teacher-force it on the tokens our Rust model generates.
#
#   ${TENSORPROOF_REF_VENV:-$HOME/.cache/tensorproof/venv-ref}
#
# Wheels only (numpy, gguf and their dependencies; nothing compiles). Safe to run again.
set -euo pipefail
venv="${TENSORPROOF_REF_VENV:-$HOME/.cache/tensorproof/venv-ref}"
PY="${PYTHON:-python3}"
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import numpy, gguf" 2>/dev/null; then
  echo "reference-venv: $venv is ready"
  exit 0
fi
"$PY" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --only-binary=:all: "numpy>=1.26,<3" "gguf==0.17.1"
"$venv/bin/python" -c "import numpy, gguf; print('reference-venv: numpy', numpy.__version__, 'gguf ready in $venv')"
