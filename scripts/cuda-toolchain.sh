#!/usr/bin/env bash
# Prepares an offline CUDA build of burn (`--features cuda`) on Debian 12 and prints the environment to use.
#
# Why: `cubecl-cuda` depends on `cubecl-llvm` (its NVPTX kernel compiler), whose build dependency
# `tracel-llvm-bundler` downloads a prebuilt LLVM unless
# `$XDG_DATA_HOME/tracel/tracel-llvm-23.1.0-4/.tracel-llvm-installed` exists; everything after that calls
# `<that prefix>/bin/llvm-config`. Debian's LLVM 22 serves (it passes cubecl-llvm's own sm_90 and bf16 WMMA
# tests), so this script
#   1. installs llvm-22-dev, libpolly-22-dev, libzstd-dev and zlib1g-dev if missing (root or sudo);
#   2. writes the prefix with the marker file and a `bin/llvm-config` wrapper that execs Debian's
#      llvm-config but answers `--system-libs` with `-lrt -ldl -lm -lz -lzstd` (Debian's own list names
#      `libz3.so` in a form the build script mangles);
#   3. prints the `export` lines: XDG_DATA_HOME (if it was unset), CUDARC_CUDA_VERSION=13000 (CUDA 13.0,
#      driver 580; cudarc then loads libcuda/libnvrtc at run time, so no CUDA toolkit is needed to build).
#
# Use:   eval "$(scripts/cuda-toolchain.sh)"   then   cargo build --release -p miner --features cuda
# `DOCS_RS` must be unset (it switches the build scripts to a no-op mode). Safe to run again.
set -euo pipefail

LLVM_MAJOR=22
TRACEL_DIR_NAME=tracel-llvm-23.1.0-4
DATA_HOME="${XDG_DATA_HOME:-$HOME/.local/share}"
PREFIX="$DATA_HOME/tracel/$TRACEL_DIR_NAME"
LLVM_CONFIG="/usr/lib/llvm-$LLVM_MAJOR/bin/llvm-config"

need=()
for pkg in "llvm-$LLVM_MAJOR-dev" "libpolly-$LLVM_MAJOR-dev" libzstd-dev zlib1g-dev; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "cuda-toolchain: installing ${need[*]}" >&2
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi
[ -x "$LLVM_CONFIG" ] || { echo "cuda-toolchain: $LLVM_CONFIG missing after install" >&2; exit 1; }

mkdir -p "$PREFIX/bin"
cat >"$PREFIX/bin/llvm-config.new" <<EOF
#!/bin/sh
# Written by tensorproof scripts/cuda-toolchain.sh: Debian's LLVM $LLVM_MAJOR behind tracel's expected prefix.
for a in "\$@"; do
  if [ "\$a" = "--system-libs" ]; then
    echo "-lrt -ldl -lm -lz -lzstd"
    exit 0
  fi
done
exec "$LLVM_CONFIG" "\$@"
EOF
chmod +x "$PREFIX/bin/llvm-config.new"
mv -f "$PREFIX/bin/llvm-config.new" "$PREFIX/bin/llvm-config"
touch "$PREFIX/.tracel-llvm-installed"
echo "cuda-toolchain: prefix ready at $PREFIX (llvm-config $("$PREFIX/bin/llvm-config" --version))" >&2

[ -n "${XDG_DATA_HOME:-}" ] || echo "export XDG_DATA_HOME=\"$DATA_HOME\""
echo "export CUDARC_CUDA_VERSION=13000"
echo "unset DOCS_RS"
