#!/usr/bin/env bash
# End-to-end throughput of `appletap read` against its peers on the benchmark capture, in one
# run, on one machine: appletap --threads 1 and 2, nDPI's ndpiReader, tshark (SNI + DNS name
# fields) and tcpdump (the libpcap read floor). Every command is timed with /usr/bin/time
# (wall seconds and peak RSS) in R rounds that run each tool once in turn; the table shows the
# median time and the largest RSS, the targets the median of the per-round ratios. Then peak
# memory with the capture read 1, 2 and 4 times in one run (packets grow, flows held).
#
# Usage: scripts/throughput.sh            (as root on Debian it installs what is missing)
# Env:   OUT=DIR        where the benchmark capture is (reused if present) or built
#                       (default ${TMPDIR:-/tmp}/appletap-bench)
#        R=N            rounds (default 5)
#        TSHARK_INPUT=small|full
#                       tshark dissects ~30k packets/s: `small` (default) times it on
#                       bench-small.pcap and scales its seconds to the full capture's packet
#                       count; `full` times it on bench.pcap (about 2 minutes per run)
#        STRICT=1       exit 1 if a target is missed (default: report only)
#        BASELINE="BIN ..."
#                       also time other appletap binaries (say, builds of the commits before
#                       a change) in the same rounds, so before and after are compared in one
#                       run (several, separated by spaces, each compared with this build)
# Prints a markdown table plus the targets, and writes them to $OUT/throughput.md.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${OUT:-${TMPDIR:-/tmp}/appletap-bench}
R=${R:-5}
TSHARK_INPUT=${TSHARK_INPUT:-small}
STRICT=${STRICT:-0}
MAKE_BENCH=$ROOT/../shared/bench/make-bench-pcap.sh

# --- tools ---------------------------------------------------------------------------------
TOOLS=(tshark editcap mergecap capinfos tcprewrite ndpiReader tcpdump /usr/bin/time python3 cargo)
missing() { for t in "${TOOLS[@]}"; do command -v "$t" >/dev/null || echo "$t"; done; }
if [[ -n $(missing) ]]; then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    echo "installing: tshark wireshark-common tcpreplay libndpi-bin tcpdump time python3" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      tshark wireshark-common tcpreplay libndpi-bin tcpdump time python3 >/dev/null
  fi
  if [[ -n $(missing) ]]; then
    echo "missing: $(missing | tr '\n' ' ')(Debian: tshark wireshark-common tcpreplay libndpi-bin tcpdump time python3; cargo from rustup)" >&2
    exit 2
  fi
fi

# --- the benchmark capture -----------------------------------------------------------------
BENCH=$OUT/bench.pcap
SMALL=$OUT/bench-small.pcap
mkdir -p "$OUT"
if [[ -s $BENCH && -s $SMALL ]]; then
  echo "reusing $BENCH" >&2
else
  echo "building $BENCH with $MAKE_BENCH (about a minute)" >&2
  OUT=$OUT bash "$MAKE_BENCH" | tee "$OUT/make-bench-pcap.log" >&2
fi
PKTS=$(capinfos -T -r -c "$BENCH" | cut -f2)
SMALL_PKTS=$(capinfos -T -r -c "$SMALL" | cut -f2)
if ((PKTS < 3000000)); then
  echo "$BENCH has $PKTS packets, fewer than 3,000,000: remove it and run again" >&2
  exit 2
fi

# --- appletap ------------------------------------------------------------------------------
cargo build --release --locked -q
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
[[ $TARGET_DIR == /* ]] || TARGET_DIR=$ROOT/$TARGET_DIR
APPLETAP=$TARGET_DIR/release/appletap
# What was built: the commit, plus a digest of any uncommitted change to src/.
APPLETAP_REV=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if ! git diff --quiet HEAD -- src 2>/dev/null; then
  APPLETAP_REV+=" + uncommitted src diff $(git diff HEAD -- src | sha256sum | cut -c1-12)"
fi

# --- timing --------------------------------------------------------------------------------
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
LOAD_BEFORE=$(cut -d' ' -f1 /proc/loadavg)

# The tools, as "label|input packets|scale to|note|command". Each round runs every tool once,
# in this order, each right after its input is read into the page cache: on a shared virtual
# machine the speed drifts over minutes, and interleaving puts every tool under the same drift
# (ratios are also taken within each round, then their median).
TOOLS_RUN=(
  "appletap --threads 1|$PKTS|0||$APPLETAP read --threads 1 $BENCH"
  "appletap --threads 2|$PKTS|0||$APPLETAP read --threads 2 $BENCH"
  "ndpiReader -q|$PKTS|0||ndpiReader -i $BENCH -q"
  "tcpdump -w /dev/null|$PKTS|0||tcpdump -r $BENCH -w /dev/null"
)
if [[ $TSHARK_INPUT == full ]]; then
  TOOLS_RUN+=("tshark -T fields|$PKTS|0||tshark -n -r $BENCH -T fields -e tls.handshake.extensions_server_name -e dns.qry.name")
else
  TOOLS_RUN+=("tshark -T fields|$SMALL_PKTS|$PKTS|timed on bench-small.pcap ($SMALL_PKTS packets), seconds scaled to $PKTS packets; RSS is bench-small's|tshark -n -r $SMALL -T fields -e tls.handshake.extensions_server_name -e dns.qry.name")
fi

# After the peers (indices 0-4 stay as above): another build to compare with, in the same rounds.
read -ra BASES <<< "${BASELINE:-}"
for b in "${BASES[@]}"; do
  TOOLS_RUN+=(
    "appletap (baseline) --threads 1|$PKTS|0|baseline: $b|$b read --threads 1 $BENCH"
    "appletap (baseline) --threads 2|$PKTS|0|baseline: $b|$b read --threads 2 $BENCH"
  )
done

# appletap's own packet count must be capinfos'.
appletap_count() {
  sed -n 's/^totals: \([0-9]*\) packets read.*/\1/p' "$1"
}
FLOWS=
echo "timing, $R rounds, on $BENCH ($PKTS packets)" >&2
for ((round = 1; round <= R; round++)); do
  for i in "${!TOOLS_RUN[@]}"; do
    IFS='|' read -r label in_pkts scale_to note cmd <<<"${TOOLS_RUN[$i]}"
    input=$BENCH
    [[ $cmd == *"$SMALL"* ]] && input=$SMALL
    cat "$input" >/dev/null
    # shellcheck disable=SC2086 # the command line is split on purpose
    if ! /usr/bin/time -f '%e %M' -o "$TMP/time" $cmd >"$TMP/out" 2>"$TMP/err"; then
      echo "$label failed: $cmd" >&2
      tail -5 "$TMP/err" >&2
      exit 1
    fi
    read -r sec rss <"$TMP/time"
    if ((scale_to > 0)); then
      sec=$(awk -v s="$sec" -v a="$in_pkts" -v b="$scale_to" 'BEGIN {printf "%.2f", s * b / a}')
    fi
    echo "$sec $rss" >>"$TMP/tool.$i"
    echo "  round $round: $label ${sec}s ${rss} KiB" >&2
    if [[ $label == appletap* ]]; then
      got=$(appletap_count "$TMP/out")
      if [[ $got != "$PKTS" ]]; then
        echo "$label read $got packets, capinfos counts $PKTS" >&2
        exit 1
      fi
      FLOWS=$(sed -n 's/^totals: .*; \([0-9]*\) flows,.*/\1/p' "$TMP/out")
    fi
  done
done

# Per tool: median seconds, largest RSS; per round, seconds of appletap -t1 and -t2 against
# each peer (the ratios of packets per second are inverse ratios of seconds: same packets).
median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
ROWS=()  # "label|packets|seconds|rss_kib|note"
for i in "${!TOOLS_RUN[@]}"; do
  IFS='|' read -r label in_pkts scale_to note cmd <<<"${TOOLS_RUN[$i]}"
  pk=$PKTS
  med=$(cut -d' ' -f1 "$TMP/tool.$i" | median)
  max=$(cut -d' ' -f2 "$TMP/tool.$i" | sort -g | tail -1)
  ROWS+=("$label|$pk|$med|$max|$note")
done
# round_ratio A B: tool A's packets per second over tool B's, the median over rounds (same
# packets, so it is B's seconds over A's).
round_ratio() {
  paste -d' ' "$TMP/tool.$1" "$TMP/tool.$2" | awk '{print $3 / $1}' | median
}
# Indices into TOOLS_RUN: appletap -t1 and -t2, ndpiReader, tcpdump.
R_T1_NDPI=$(round_ratio 0 2)
R_T2_TCPDUMP=$(round_ratio 1 3)
# Baseline k (from 0) is at indices 5 + 2k (-t1) and 6 + 2k (-t2).
BASE_LINES=()
for k in "${!BASES[@]}"; do
  i1=$((5 + 2 * k)) i2=$((6 + 2 * k))
  BASE_LINES+=("$(printf -- '- baseline %s: --threads 1 at %.2fx ndpiReader, --threads 2 at %.2fx tcpdump; this build over the baseline: %.2fx (-t1), %.2fx (-t2) (medians of per-round ratios)' \
    "${BASES[$k]}" "$(round_ratio "$i1" 2)" "$(round_ratio "$i2" 3)" "$(round_ratio 0 "$i1")" "$(round_ratio 1 "$i2")")")
done

# Memory with the flow count held and the packet count growing: the same capture read 1, 2 and
# 4 times in one run. Each pass brings the same flows again; packet time goes back to the
# start, so each pass is a new stretch of capture (the flows of the one before end there):
# no more flows are alive at once. The reports must count every packet of every pass.
MEM=()
for n in 1 2 4; do
  args=()
  for ((k = 0; k < n; k++)); do args+=("$BENCH"); done
  for t in 1 2; do
    /usr/bin/time -f '%M' -o "$TMP/time" "$APPLETAP" read --threads "$t" "${args[@]}" >"$TMP/out" 2>/dev/null
    got=$(appletap_count "$TMP/out")
    if [[ $got != $((n * PKTS)) ]]; then
      echo "appletap --threads $t read $got packets of the capture read $n times ($((n * PKTS)))" >&2
      exit 1
    fi
    MEM+=("$n|$t|$(cat "$TMP/time")|$got")
    echo "  memory: capture x$n, --threads $t: $(cat "$TMP/time") KiB" >&2
  done
done

# nDPI prints nothing with -q; one untimed run without it shows it read every packet.
NDPI_PKTS=$(ndpiReader -i "$BENCH" 2>&1 | sed -n 's/.* of \([0-9]*\) packets total.*/\1/p' | head -1)

# --- report --------------------------------------------------------------------------------
{
  echo "Benchmark capture: \`$BENCH\`: $PKTS packets, $(stat -c %s "$BENCH") bytes, built by"
  echo "\`../shared/bench/make-bench-pcap.sh\`$(sed -n 's/.*bench.pcap: packets=[0-9]* distinct_flows=\([0-9]*\).*/ (\1 distinct flows)/p' "$OUT/make-bench-pcap.log" 2>/dev/null | head -1);"
  echo "appletap counted $FLOWS flows (idle timeouts split some). capinfos: $PKTS packets;"
  echo "appletap read $PKTS (both thread counts); ndpiReader (untimed run without -q): ${NDPI_PKTS:-?}."
  echo
  echo "Machine: $(nproc) cores, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1), Linux $(uname -r)."
  echo "Versions: appletap $APPLETAP_REV,"
  echo "$(ndpiReader -h 2>&1 | sed -n 's/.*Welcome to \(nDPI [0-9.]*\).*/\1/p' | head -1), $(tshark --version | head -1 | sed 's/\.$//'),"
  echo "$(tcpdump --version 2>&1 | head -2 | paste -sd ' ')."
  echo "$R rounds, each running every tool once in turn, right after its input was read into the"
  echo "page cache; seconds are the median, RSS the largest; the target ratios are the median of"
  echo "the ratios within each round."
  echo "Load average (1 min) before timing: $LOAD_BEFORE, after: $(cut -d' ' -f1 /proc/loadavg) (the machine may be shared: other work slows every tool, the 2-thread run most)."
  echo
  echo "| tool | packets | seconds | packets/s | x appletap -t1 pps | peak RSS MiB | x appletap -t1 RSS |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  base_pps= base_rss=
  notes=()
  for row in "${ROWS[@]}"; do
    IFS='|' read -r label pk sec rss note <<<"$row"
    pps=$(awk -v p="$pk" -v s="$sec" 'BEGIN {printf "%.0f", p / s}')
    rmib=$(awk -v k="$rss" 'BEGIN {printf "%.1f", k / 1024}')
    [[ -n $base_pps ]] || { base_pps=$pps; base_rss=$rmib; }
    star=
    if [[ -n $note ]]; then notes+=("$note"); star=" (${#notes[@]})"; fi
    awk -v l="$label" -v st="$star" -v p="$pk" -v s="$sec" -v pps="$pps" -v r="$rmib" -v bp="$base_pps" -v br="$base_rss" \
      'BEGIN {printf "| `%s`%s | %d | %.2f | %d | %.2f | %.1f | %.2f |\n", l, st, p, s, pps, pps / bp, r, r / br}'
    case $label in
      "appletap --threads 1") T1_PPS=$pps T1_RSS=$rmib ;;
      "appletap --threads 2") T2_PPS=$pps T2_RSS=$rmib ;;
      ndpiReader*) NDPI_PPS=$pps ;;
      tcpdump*) TCPDUMP_PPS=$pps ;;
    esac
  done
  for i in "${!notes[@]}"; do echo; echo "($((i + 1))) ${notes[$i]}"; done
  echo
  echo "Targets:"
  MISSED=0
  target() { # NAME OK(1/0) DETAIL
    local verdict=met
    if [[ $2 != 1 ]]; then verdict=MISSED; MISSED=1; fi
    echo "- $1: $verdict ($3)"
  }
  r=$(awk -v r="$R_T1_NDPI" 'BEGIN {printf "%.2f", r}')
  target "appletap --threads 1 >= 5x ndpiReader packets/s" "$(awk -v r="$r" 'BEGIN {print (r >= 5)}')" "${r}x"
  r=$(awk -v r="$R_T2_TCPDUMP" 'BEGIN {printf "%.2f", r}')
  target "appletap --threads 2 >= 0.8x tcpdump packets/s" "$(awk -v r="$r" 'BEGIN {print (r >= 0.8)}')" "${r}x"
  for line in "${BASE_LINES[@]}"; do
    echo "$line"
  done
  m=$(awk -v a="$T1_RSS" -v b="$T2_RSS" 'BEGIN {print (a > b) ? a : b}')
  target "appletap peak RSS <= 150 MiB on the $PKTS-packet capture" "$(awk -v m="$m" 'BEGIN {print (m <= 150)}')" "${m} MiB"
  echo
  echo "Peak memory as the packet count grows with the flows held (the capture read n times in"
  echo "one run):"
  echo
  echo "| reads | packets | --threads | peak RSS MiB |"
  echo "|---:|---:|---:|---:|"
  lo= hi=
  for row in "${MEM[@]}"; do
    IFS='|' read -r n t kib pk <<<"$row"
    mib=$(awk -v k="$kib" 'BEGIN {printf "%.1f", k / 1024}')
    echo "| $n | $pk | $t | $mib |"
    lo=$(awk -v a="${lo:-$mib}" -v b="$mib" 'BEGIN {print (b < a) ? b : a}')
    hi=$(awk -v a="${hi:-$mib}" -v b="$mib" 'BEGIN {print (b > a) ? b : a}')
  done
  echo
  flat=$(awk -v lo="$lo" -v hi="$hi" 'BEGIN {print (hi <= 150 && hi <= lo * 1.5 + 8)}')
  target "peak RSS flat as the packets grow 4x with the flows held (within 1.5x + 8 MiB, under 150)" "$flat" "${lo}-${hi} MiB"
  echo "MISSED=$MISSED" >"$TMP/missed"
} | tee "$OUT/throughput.md"
echo "(written to $OUT/throughput.md)" >&2
if [[ $STRICT == 1 ]] && grep -q 'MISSED=1' "$TMP/missed"; then exit 1; fi
