#!/usr/bin/env bash
# Peak memory of `appletap read` on synthetic traffic (examples/synth_scan.rs), as Markdown
# tables:
#  1. synthetic scans of distinct flows (every packet a new flow) in the default configuration
#     (no --max-flows) at 1, 2 and the machine's core count of threads, and at 256: the peak
#     must stay flat as the flow count grows, and under 256 MiB;
#  2. the cost of a flow held: the peak's slope between two flow caps;
#  3. the cost of a name-store entry: the same with floods of DNS answers and of mDNS
#     announcements, each binding an address of its own (one flow each).
# Usage: scripts/scan-memory.sh [MAX_FLOWS]
#   MAX_FLOWS   run table 1 with --max-flows MAX_FLOWS (default: none, the default cap)
#   SIZES="1000000 5000000 10000000"   distinct flows of table 1
#   THREADS="1 2 N 256"                thread counts of table 1 (N: the machine's cores)
#   SLOPE_ONLY=1 / SCAN_ONLY=1         run only tables 2-3 / table 1
# Needs /usr/bin/time from Debian's `time` package.
set -euo pipefail
cd "$(dirname "$0")/.."
max=${1:-}
cores=$(nproc)
sizes=${SIZES:-1000000 5000000 10000000}
threads=${THREADS:-$(printf '%s\n' 1 2 "$cores" 256 | awk '!seen[$0]++' | tr '\n' ' ')}
command -v /usr/bin/time >/dev/null || { echo "install Debian's time package" >&2; exit 1; }
cargo build --release -q --example synth_scan
cargo build --release -q
report=$(mktemp /tmp/scan-memory.XXXXXX.json)
trap 'rm -f "$report"' EXIT

# peak_kib N MODE APPLETAP-ARGS...: peak RSS in KiB of `appletap read` on N packets of MODE.
peak_kib() {
  local n=$1 mode=$2
  shift 2
  { target/release/examples/synth_scan "$n" "$mode" |
      /usr/bin/time -f '%M' target/release/appletap read --format json "$@" - > "$report"; } 2>&1 |
    tail -1
}
mib() { echo "scale=1; $1 / 1024" | bc; }

echo "appletap $(git describe --always --dirty 2>/dev/null || echo '?'), $cores cores, $(date -u +%F)"
if [ -z "${SLOPE_ONLY:-}" ]; then
  echo
  echo "Synthetic scans, --max-flows ${max:-default}:"
  echo
  echo "| distinct flows | threads | peak RSS | flows reported | evicted |"
  echo "|---:|---:|---:|---:|---:|"
  for n in $sizes; do
    for t in $threads; do
      rss=$(peak_kib "$n" scan --threads "$t" ${max:+--max-flows "$max"})
      read -r flows evicted < <(python3 -c 'import json,sys; t=json.load(open(sys.argv[1]))["totals"]; print(t["flows"], t["flows_evicted"])' "$report")
      printf '| %s | %s | %s MiB | %s | %s |\n' "$n" "$t" "$(mib "$rss")" "$flows" "$evicted"
    done
  done
fi
[ -n "${SCAN_ONLY:-}" ] && exit 0

# slope WHAT N MODE LOW HIGH ENTRIES_LOW ENTRIES_HIGH: bytes per entry between two caps.
slope() {
  local what=$1 n=$2 mode=$3 lo=$4 hi=$5 elo=$6 ehi=$7
  local a b
  a=$(peak_kib "$n" "$mode" --threads 1 --max-flows "$lo")
  b=$(peak_kib "$n" "$mode" --threads 1 --max-flows "$hi")
  printf '| %s | %s %s packets, --max-flows %s / %s | %s / %s MiB | %s bytes |\n' \
    "$what" "$n" "$mode" "$lo" "$hi" "$(mib "$a")" "$(mib "$b")" \
    "$(( (b - a) * 1024 / (ehi - elo) ))"
}
echo
echo "Cost per entry held (peak RSS slope between two caps, --threads 1):"
echo
echo "| entry | run | peak RSS | per entry |"
echo "|---|---|---:|---:|"
slope "flow" 1000000 scan 25000 100000 25000 100000
slope "flow" 1000000 scan 100000 400000 100000 400000
# The name stores hold min(--max-flows, their own bound) entries; each of these runs is one
# flow, so the flow cap only sizes the store.
slope "DNS address (one binding)" 200000 dns 10000 40000 10000 40000
slope "mDNS endpoint" 100000 mdns 2000 8000 2000 8000
