#!/usr/bin/env bash
# Peak memory of `appletap read` on synthetic scans of 5 and 10 million distinct flows, with the
# flow table capped by --max-flows: the peak must stay flat as the flow count doubles.
# Usage: scripts/scan-memory.sh [MAX_FLOWS]   (needs /usr/bin/time from Debian's `time`)
set -euo pipefail
cd "$(dirname "$0")/.."
max=${1:-100000}
command -v /usr/bin/time >/dev/null || { echo "install Debian's time package" >&2; exit 1; }
cargo build --release -q --example synth_scan
cargo build --release -q
for n in 5000000 10000000; do
  for t in 1 2; do
    rss=$( { target/release/examples/synth_scan "$n" |
             /usr/bin/time -f '%M' target/release/appletap read --threads "$t" --max-flows "$max" --format json - \
               > /tmp/scan-report.json; } 2>&1 | tail -1)
    read -r flows evicted < <(python3 -c 'import json; t=json.load(open("/tmp/scan-report.json"))["totals"]; print(t["flows"], t["flows_evicted"])')
    printf 'flows=%-9s threads=%s max_flows=%s peak_rss=%6.1f MiB  (flows reported %s, evicted %s)\n' \
      "$n" "$t" "$max" "$(echo "$rss / 1024" | bc -l)" "$flows" "$evicted"
  done
done
