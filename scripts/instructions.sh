#!/usr/bin/env bash
# Instructions `appletap read --threads 1` executes on the first 100,000 packets of the
# benchmark capture, counted by callgrind: unlike seconds, the count does not depend on what
# else the machine is doing, so it tells whether a change made the code cheaper.
# Usage: scripts/instructions.sh [PACKETS]   (needs valgrind and editcap; builds the benchmark
#        capture with ../shared/bench/make-bench-pcap.sh if $OUT/bench.pcap is missing)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100000}
OUT=${OUT:-${TMPDIR:-/tmp}/appletap-bench}
for t in valgrind editcap; do
  command -v "$t" >/dev/null || { echo "missing $t (Debian: valgrind, wireshark-common)" >&2; exit 2; }
done
[[ -s $OUT/bench.pcap ]] || OUT=$OUT bash ../shared/bench/make-bench-pcap.sh >&2
first=$OUT/bench-first-$n.pcap
[[ -s $first ]] || editcap -F pcap -r "$OUT/bench.pcap" "$first" "1-$n"
cargo build --release --locked -q
out=$(mktemp)
trap 'rm -f "$out" "$out.log"' EXIT
valgrind --tool=callgrind --callgrind-out-file="$out" target/release/appletap read --threads 1 "$first" \
  >/dev/null 2>"$out.log"
total=$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$out.log")
sigs=$(callgrind_annotate --inclusive=yes "$out" 2>/dev/null |
  sed -n 's/^ *\([0-9,]*\) .*appletap::app::load_signatures \[.*/\1/p' | head -1 | tr -d ,)
echo "appletap $(git rev-parse --short HEAD): $total instructions on the first $n packets" \
  "($((total / n)) a packet; loading the signature set: ${sigs:-?})"
