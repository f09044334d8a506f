#!/usr/bin/env bash
# Memory growth of idle devnets, side by side (issue 19: per-block state must not pile up).
#
# Usage:
#   scripts/devnet-rss.sh LABEL=BINARY [LABEL=BINARY ...]
#   e.g. scripts/devnet-rss.sh old=/tmp/devnet-old new="$CARGO_TARGET_DIR/release/devnet"
#
# Starts every binary at once, idle (no subnet, no transactions), each on its own port from
# BASE_PORT up, with the same block time. Once a devnet answers `chain_getHeader` it takes the
# start sample; then it samples VmRSS (/proc/PID/status) every INTERVAL seconds for DURATION
# seconds, and reads the block number again at the end. Prints every sample, then per binary:
# RSS at start and end (MB), blocks produced, and growth per block (KB/block).
#
# Environment: DURATION (s, default 90), INTERVAL (s, default 5), BLOCK_TIME_MS (default 250),
# BASE_PORT (default 19944). Needs curl and jq. Linux only (/proc).
set -euo pipefail

DURATION=${DURATION:-90}
INTERVAL=${INTERVAL:-5}
BLOCK_TIME_MS=${BLOCK_TIME_MS:-250}
BASE_PORT=${BASE_PORT:-19944}

if [ $# -eq 0 ]; then
    sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
for tool in curl jq; do
    command -v "$tool" >/dev/null || { echo "error: $tool not found" >&2; exit 1; }
done

labels=() pids=() ports=()
logdir=$(mktemp -d)
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

# Block number of the devnet on port $1 (empty if it does not answer within 2 s).
block_number() {
    local hex
    hex=$(curl -s -m 2 -H 'Content-Type: application/json' \
        -d '{"jsonrpc":"2.0","id":1,"method":"chain_getHeader","params":[]}' \
        "http://127.0.0.1:$1" | jq -r '.result.number // empty' 2>/dev/null) || return 0
    [ -n "$hex" ] && printf '%d\n' "$hex"
}

# VmRSS of process $1, in KB.
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# $1 KB in MB, one decimal.
mb() { awk -v kb="$1" 'BEGIN { printf "%.1f", kb / 1024 }'; }

# $1 / $2, one decimal.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a / b }'; }

i=0
for arg in "$@"; do
    label=${arg%%=*} bin=${arg#*=}
    [ -x "$bin" ] || { echo "error: $bin is not an executable" >&2; exit 1; }
    port=$((BASE_PORT + i))
    "$bin" --port "$port" --block-time-ms "$BLOCK_TIME_MS" >"$logdir/$label.log" 2>&1 &
    labels+=("$label") pids+=("$!") ports+=("$port")
    i=$((i + 1))
done

# Wait (at most 60 s) until every devnet answers, then take the start samples together.
start_rss=() start_block=() end_rss=()
for _ in $(seq 120); do
    ready=1
    for k in "${!labels[@]}"; do
        kill -0 "${pids[$k]}" 2>/dev/null || {
            echo "error: ${labels[$k]} exited; its output:" >&2
            cat "$logdir/${labels[$k]}.log" >&2
            exit 1
        }
        [ -n "$(block_number "${ports[$k]}")" ] || ready=0
    done
    [ "$ready" = 1 ] && break
    sleep 0.5
done
[ "$ready" = 1 ] || { echo "error: devnets did not answer within 60 s" >&2; exit 1; }

echo "block time ${BLOCK_TIME_MS} ms, ${DURATION} s, VmRSS every ${INTERVAL} s"
printf '%6s' "t(s)"
for l in "${labels[@]}"; do printf ' %14s' "$l RSS(MB)"; done
echo
t0=$(date +%s)
for t in $(seq 0 "$INTERVAL" "$DURATION"); do
    while [ $(($(date +%s) - t0)) -lt "$t" ]; do sleep 0.2; done
    printf '%6d' "$t"
    for k in "${!labels[@]}"; do
        kb=$(rss_kb "${pids[$k]}")
        if [ "$t" = 0 ]; then
            start_rss[$k]=$kb
            start_block[$k]=$(block_number "${ports[$k]}")
        fi
        end_rss[$k]=$kb
        printf ' %14s' "$(mb "$kb")"
    done
    echo
done

echo
printf '%-10s %10s %10s %8s %8s %10s\n' label "start(MB)" "end(MB)" blocks "KB/s" "KB/block"
for k in "${!labels[@]}"; do
    end_block=$(block_number "${ports[$k]}")
    blocks=$((end_block - start_block[$k]))
    growth=$((end_rss[$k] - start_rss[$k]))
    per_block=n/a
    [ "$blocks" -gt 0 ] && per_block=$(ratio "$growth" "$blocks")
    printf '%-10s %10s %10s %8d %8s %10s\n' "${labels[$k]}" "$(mb "${start_rss[$k]}")" \
        "$(mb "${end_rss[$k]}")" "$blocks" "$(ratio "$growth" "$DURATION")" "$per_block"
    echo "           (blocks #${start_block[$k]} to #$end_block)"
done
