#!/usr/bin/env bash
# What the metrics sensor costs (README "live --listen"), as root:
#  1. `appletap read` of the small benchmark capture with and without --metrics-file
#     (R rounds, interleaved; median seconds);
#  2. `appletap live --listen` on a veth pair in a network namespace of its own while tcpreplay
#     replays the same capture at PPS packets/s, once with no client and once with a scrape every
#     second, alternated R times: packets read and drops (kernel + pipeline) of each run.
# Usage: scripts/sensor-cost.sh [CAPTURE]  (default: the small benchmark capture of
# scripts/throughput.sh, built there first). PPS (default 30000), R (default 3), THREADS (2).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CAP=${1:-${TMPDIR:-/tmp}/appletap-bench/bench-small.pcap}
PPS=${PPS:-30000}
R=${R:-3}
THREADS=${THREADS:-2}
[[ -s $CAP ]] || { echo "no capture $CAP: run scripts/throughput.sh first, or name one" >&2; exit 2; }
cargo build --release --locked -q --manifest-path "$ROOT/Cargo.toml"
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/appletap
TMP=$(mktemp -d)
NS=ats-cost$$
cleanup() { ip netns del "$NS" 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT

secs() { local s; s=$(date +%s.%N); "$@" >/dev/null; echo "$(date +%s.%N) - $s" | bc; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
: > "$TMP/plain"; : > "$TMP/file"
for ((i = 0; i < R; i++)); do
  secs "$BIN" read --threads "$THREADS" "$CAP" >> "$TMP/plain"
  secs "$BIN" read --threads "$THREADS" --metrics-file "$TMP/m.prom" "$CAP" >> "$TMP/file"
done
echo "read --threads $THREADS: $(median < "$TMP/plain") s; with --metrics-file: $(median < "$TMP/file") s (median of $R)"

ip netns add "$NS"
for k in all default; do ip netns exec "$NS" sysctl -qw "net.ipv6.conf.$k.disable_ipv6=1"; done
ip -n "$NS" link set lo up
ip -n "$NS" link add va type veth peer name vb
for d in va vb; do ip -n "$NS" link set "$d" mtu 9000; ip -n "$NS" link set "$d" up; done

live_run() { # $1: scrape every second (1) or not (0)
  ip netns exec "$NS" "$BIN" live -i vb --threads "$THREADS" --interval 3600 --format json \
    --listen 127.0.0.1:9477 > "$TMP/live.json" 2> "$TMP/live.err" &
  local pid=$! scraper=""
  sleep 2
  if [[ $1 == 1 ]]; then
    ( while sleep 1; do ip netns exec "$NS" curl -sf -o /dev/null http://127.0.0.1:9477/metrics || true; done ) &
    scraper=$!
  fi
  ip netns exec "$NS" tcpreplay -q -i va --pps="$PPS" "$CAP" > "$TMP/replay" 2>&1
  sleep 2
  [[ -n $scraper ]] && kill "$scraper"
  kill -INT "$pid"; wait "$pid" || true
  python3 - "$TMP/live.json" <<'PY'
import json, sys
r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
d = r["drops"]
print(f'packets read {r["totals"]["packets_read"]}, drops kernel {d["kernel"]} interface {d["interface"]} pipeline {d["pipeline"]}')
PY
}
for ((i = 0; i < R; i++)); do
  echo "live, no client:             $(live_run 0)"
  echo "live, a scrape every second: $(live_run 1)"
done
echo "(tcpreplay at $PPS packets/s: $(grep -o 'Rated: [^,]*, [^,]*pps' "$TMP/replay" || true))"
