#!/usr/bin/env bash
# Soak benchmark (not a test): the embedded devnet, `validator localnet-setup`, N miners and a validator,
# each its own process, for a configurable time. Every minute it prints the resident memory (VmRSS) of
# every process and the rounds and weight submissions the validator has landed, so growth is visible.
#
#   scripts/soak.sh [MINUTES] [MINERS]          (defaults: 10 minutes, 2 miners)
#
# Binaries come from $BIN (default: $CARGO_TARGET_DIR/release or target/release); build them first with
#   cargo build --release -p chain --features devnet --bin devnet && cargo build --release -p miner -p validator
# Everything runs on loopback (miners on 127.0.0.2, 127.0.0.3, …) in a temporary folder, removed at the end.
set -euo pipefail

minutes=${1:-10}
miners=${2:-2}
bin=${BIN:-${CARGO_TARGET_DIR:-target}/release}
for b in devnet miner validator; do
  [[ -x "$bin/$b" ]] || { echo "soak: $bin/$b not found; build it first (see the header)" >&2; exit 2; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/tensorproof-soak-XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rss_mib() { awk '/^VmRSS:/ {printf "%.1f", $2/1024}' "/proc/$1/status" 2>/dev/null || echo "-"; }
metric() { # metric NAME [LABEL-FILTER]: the sum of a validator metric's samples
  curl -fsS "http://127.0.0.1:$vport/metrics" 2>/dev/null \
    | awk -v n="$1" -v f="${2:-}" '$1 ~ "^"n && index($1, f) {s += $2} END {print s+0}'
}

chain_port=$(free_port)
"$bin/devnet" --port "$chain_port" --block-time-ms 250 --tempo 10 >"$work/devnet.log" 2>&1 &
pids+=($!); names=(devnet)
url="ws://127.0.0.1:$chain_port"
for _ in $(seq 50); do grep -q "ws://" "$work/devnet.log" 2>/dev/null && break; sleep 0.2; done

"$bin/validator" --wallet-path "$work/wallets" localnet-setup --network "$url" --miners "$miners" \
  | tee "$work/setup.log"
netuid=$(sed -n 's/^subnet \([0-9]*\) .*/\1/p' "$work/setup.log")

for i in $(seq "$miners"); do
  ip="127.0.0.$((i + 1))"
  MINER_LOG=warn "$bin/miner" run --wallet-path "$work/wallets" --wallet "miner-$i" --hotkey default \
    --network "$url" --netuid "$netuid" --bind "$ip" --external-ip "$ip" --port "$(free_port)" \
    --state-dir "$work/miner-$i" >"$work/miner-$i.log" 2>&1 &
  pids+=($!); names+=("miner-$i")
done

vport=$(free_port)
RUST_LOG=warn "$bin/validator" --wallet-path "$work/wallets" --wallet validator --hotkey default \
  run --network "$url" --netuid "$netuid" --listen "127.0.0.1:$vport" --state-dir "$work/validator" \
  >"$work/validator.log" 2>&1 &
pids+=($!); names+=(validator)

printf '%-6s' "minute"
for n in "${names[@]}"; do printf '  %12s' "$n MiB"; done
printf '  %7s  %8s  %7s\n' rounds weights failed
for m in $(seq 0 "$minutes"); do
  printf '%-6s' "$m"
  for p in "${pids[@]}"; do printf '  %12s' "$(rss_mib "$p")"; done
  printf '  %7s  %8s  %7s\n' "$(metric validator_rounds_total)" \
    "$(metric validator_weight_submissions_total 'outcome="included"')" \
    "$(metric validator_weight_submissions_total 'outcome="failed"')"
  for p in "${pids[@]}"; do
    kill -0 "$p" 2>/dev/null || { echo "soak: a process exited; logs in $work" >&2; trap - EXIT; exit 1; }
  done
  [[ $m -lt $minutes ]] && sleep 60
done
