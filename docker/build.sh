#!/usr/bin/env sh
# The one place that says how each image's binaries are compiled. The Dockerfiles call it, and CI runs
# the same invocations natively (`docker/build.sh <target> <outdir>`), so the two cannot drift.
#   miner-cpu   miner with burn's flex (CPU) backend (always compiled in)
#   miner-cuda  miner with the CUDA backend (builds without a GPU; needs one to run)
#   validator   the production validator: `--no-default-features`, so no devnet and no adversary
#               miners (`localnet-setup`, used by the compose setup service, needs neither)
#   devnet      the embedded devnet binary (docker-compose.devnet.yml's chain)
set -eu
target="${1:?usage: docker/build.sh miner-cpu|miner-cuda|validator|devnet OUTDIR}"
out="${2:?usage: docker/build.sh miner-cpu|miner-cuda|validator|devnet OUTDIR}"
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
    cargo build --locked --profile "$profile" -p validator --no-default-features --bin validator
    cp "$tdir/$profile/validator" "$out/validator" ;;
  devnet)
    cargo build --locked --profile "$profile" -p devnet --bin devnet
    cp "$tdir/$profile/devnet" "$out/devnet" ;;
  *) echo "unknown target: $target" >&2; exit 2 ;;
esac
echo "built $target into $out"
