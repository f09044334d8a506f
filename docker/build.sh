#!/usr/bin/env sh
# The one place that says how each image's binaries are compiled. The Dockerfiles call it, and CI runs
# the same invocations natively (`docker/build.sh <target> <outdir>`), so the two cannot drift.
#   miner-cpu   miner with burn's flex (CPU) backend (always compiled in)
#   miner-cuda  miner with the CUDA backend (builds without a GPU; needs one to run)
#   validator   validator (default features: includes `localnet-setup`, used by the compose setup
#               service) and the embedded devnet binary
set -eu
target="${1:?usage: docker/build.sh miner-cpu|miner-cuda|validator OUTDIR}"
out="${2:?usage: docker/build.sh miner-cpu|miner-cuda|validator OUTDIR}"
profile="${BUILD_PROFILE:-release}"
cd "$(dirname "$0")/.."
tdir="${CARGO_TARGET_DIR:-target}"
mkdir -p "$out"
case "$target" in
  miner-cpu)
    cargo build --locked --profile "$profile" -p miner
    cp "$tdir/$profile/miner" "$out/miner" ;;
  miner-cuda)
    cargo build --locked --profile "$profile" -p miner --features cuda
    cp "$tdir/$profile/miner" "$out/miner" ;;
  validator)
    cargo build --locked --profile "$profile" -p validator --bin validator
    cargo build --locked --profile "$profile" -p chain --bin devnet
    cp "$tdir/$profile/validator" "$tdir/$profile/devnet" "$out/" ;;
  *) echo "unknown target: $target" >&2; exit 2 ;;
esac
echo "built $target into $out"
