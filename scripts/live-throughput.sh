#!/usr/bin/env bash
# Live capture throughput, a benchmark (not a timed test): how many of the packets tcpreplay
# sends into a veth pair `appletap live` reads, next to tcpdump on the same replay.
#
# A veth pair lives in a network namespace of its own (IPv6 off, so the kernel adds nothing
# to what is captured). For each input and each rate, tcpreplay sends the capture into one end
# while one reader captures on the other: tcpdump -w /dev/null (the reference), appletap live
# with libpcap at 1 and 2 threads, and, when `appletap live --help` lists `--capture`, with
# AF_PACKET fanout at 1 and 2 readers. The table gives packets sent (tcpreplay's count),
# packets read, drops (tcpdump: kernel; appletap: kernel + interface + pipeline), and the share
# read. Where appletap read every packet sent, its per-service report (flows, packets and
# bytes per service) must equal `appletap read` of the same capture (re-timed to the pace of
# the replay, see below): `same` in the last column, `DIFF` otherwise; where tcpdump read every packet and appletap did not, `MISSED`
# (STRICT=1 then exits 1).
#
# Inputs: the first 300,000 packets of the benchmark capture (bench-small.pcap) and the whole
# capture (bench.pcap, about 4 million packets), both made by ../shared/bench/make-bench-pcap.sh.
# Rates: tcpreplay --topspeed, --topspeed --preload-pcap (the capture in memory first: sends
# faster), and --pps for each of PPS.
#
# Then an idle section: appletap live on the quiet veth for IDLE_SECS seconds, its CPU time
# (utime + stime of every thread, from /proc/PID/stat) as a share of one core.
#
# Usage: scripts/live-throughput.sh      (as root: namespaces, raw sockets)
# Env:   OUT=DIR       where the benchmark capture is (reused) or built (default
#                      ${TMPDIR:-/tmp}/appletap-bench); the table goes to DIR/live-throughput.md
#        BIN=PATH      the appletap binary (default: cargo build --release, target/release)
#        INPUTS="small full"   which captures (default both)
#        MODES="top preload 100000 300000 1000000"   topspeed, topspeed with --preload-pcap,
#                      and packets/s for --pps (default all five)
#        THREADS="1 2" appletap --threads (and AF_PACKET --readers) to run (default 1 2)
#        EXTRA="..."   more appletap live arguments (e.g. --buffer-size 64)
#        IDLE_SECS=N   seconds of the idle measurement (default 60; 0 skips it)
#        STRICT=1      exit 1 when a target is missed
# On DIFF the two per-service summaries are kept in OUT (diff-*.read.json, diff-*.live.json)
# and their first differing lines printed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=${OUT:-${TMPDIR:-/tmp}/appletap-bench}
INPUTS=${INPUTS:-small full}
MODES=${MODES:-top preload 100000 300000 1000000}
THREADS=${THREADS:-1 2}
EXTRA=${EXTRA:-}
IDLE_SECS=${IDLE_SECS:-60}
STRICT=${STRICT:-0}
MAKE_BENCH=$ROOT/../shared/bench/make-bench-pcap.sh

if [[ $(id -u) != 0 ]]; then
  echo "run as root: it creates a network namespace and captures on raw sockets" >&2
  exit 2
fi
for t in ip tcpreplay tcpdump capinfos python3; do
  command -v "$t" >/dev/null || { echo "missing: $t (Debian: iproute2 tcpreplay tcpdump wireshark-common python3)" >&2; exit 2; }
done

if [[ -z ${BIN:-} ]]; then
  cargo build --release --quiet
  BIN=$ROOT/target/release/appletap
fi

BENCH=$OUT/bench.pcap
SMALL=$OUT/bench-small.pcap
mkdir -p "$OUT"
if [[ ! -s $BENCH || ! -s $SMALL ]]; then
  echo "building $BENCH with $MAKE_BENCH (about a minute)" >&2
  OUT=$OUT bash "$MAKE_BENCH" >"$OUT/make-bench-pcap.log"
fi

# --- the namespace ---------------------------------------------------------------------------
NS=atl-lt$$
TMP=$(mktemp -d)
cleanup() {
  ip netns pids "$NS" 2>/dev/null | xargs -r kill 2>/dev/null || true
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT
ip netns add "$NS"
ip netns exec "$NS" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ip -n "$NS" link add va type veth peer name vb
for d in va vb; do
  # The largest MTU a veth takes: the capture holds 37,506-byte frames (offloaded segments
  # as captured), which tcpreplay could not send through a 9000-byte MTU.
  ip -n "$NS" link set "$d" mtu 65535
  ip -n "$NS" link set "$d" up
done
inns() { ip netns exec "$NS" "$@"; }

# --- what appletap read says of each capture -------------------------------------------------
# A replay squeezes the capture's hours into seconds, so the flows a file splits at an idle
# timeout are one flow live, and at 100,000 packets/s the full capture lasts 40 s, past the
# 15 s a closed TCP flow is kept, where a fast replay keeps it to the end. So the reference is
# `appletap read` of the capture re-timed to the replay's pace: --pps, or for the top-speed
# replays the pace tcpreplay measured (rounded down to 50,000 packets/s). Packets and bytes per
# service are the same at any pace; only flow counts depend on time.
RETIME_PY='
import struct, sys
src, pps = sys.argv[1], int(sys.argv[2])
T0 = 1_700_000_000
o = sys.stdout.buffer
with open(src, "rb", buffering=1 << 20) as f:
    hdr = f.read(24); e = "<" if hdr[:4] == b"\xd4\xc3\xb2\xa1" else ">"
    o.write(hdr); i = 0
    while True:
        rh = f.read(16)
        if len(rh) < 16: break
        incl, orig = struct.unpack(e + "II", rh[8:])
        us = i * 1_000_000 // pps
        o.write(struct.pack(e + "IIII", T0 + us // 1_000_000, us % 1_000_000, incl, orig))
        o.write(f.read(incl)); i += 1
'
SUMMARY_PY='
import json, sys
text = sys.stdin.read().strip()
try:
    r = json.loads(text)  # appletap read: one document
except ValueError:
    r = json.loads(text.splitlines()[-1])  # appletap live: one line per report, the last final
t = r["totals"]
print(json.dumps({"packets": t["packets_read"], "bytes": t["bytes_read"], "flows": t["flows"],
                  "services": r["services"]}, sort_keys=True))
'
declare -A FILE
FILE[small]=$SMALL
FILE[full]=$BENCH
reference() { # INPUT PPS -> path of the summary of `appletap read` at that pace
  local f=$TMP/read-$1-$2.json
  if [[ ! -s $f ]]; then
    python3 -c "$RETIME_PY" "${FILE[$1]}" "$2" |
      "$BIN" read --format json --no-progress - | python3 -c "$SUMMARY_PY" >"$f"
  fi
  echo "$f"
}

# --- one replay ------------------------------------------------------------------------------
replay() { # MODE FILE -> prints packets sent
  local args=(-q -i va)
  case $1 in
    top) args+=(--topspeed) ;;
    preload) args+=(--topspeed --preload-pcap) ;;
    *) args+=("--pps=$1") ;;
  esac
  inns tcpreplay "${args[@]}" "$2" >"$TMP/tcpreplay.out" 2>&1 || { cat "$TMP/tcpreplay.out" >&2; return 1; }
  sed -n 's/^Actual: \([0-9]*\) packets.*/\1/p' "$TMP/tcpreplay.out" | head -1
}
rate_of() { sed -n 's/.*Rated: [0-9.]* Bps, [0-9.]* Mbps, \([0-9.]*\) pps.*/\1/p' "$TMP/tcpreplay.out" | head -1; }

# Waits until the last JSON report's packets_read stays put for 2 s (at most 60 s).
settle() {
  local last=-1 now same=0
  for _ in $(seq 1 120); do
    sleep 0.5
    now=$(tail -n 1 "$1" 2>/dev/null | python3 -c 'import json,sys
try: print(json.loads(sys.stdin.read())["totals"]["packets_read"])
except Exception: print(-1)')
    if [[ $now == "$last" ]]; then same=$((same + 1)); else same=0; fi
    ((same >= 4)) && return 0
    last=$now
  done
}

ROWS=()
MISSED=0
REF_ALL=0
row() { ROWS+=("$1"); echo "$1" >&2; }

run_tcpdump() { # INPUT MODE
  ip netns exec "$NS" tcpdump -n -i vb -B 32768 -w /dev/null 2>"$TMP/tcpdump.err" &
  local pid=$!
  for _ in $(seq 1 50); do grep -q listening "$TMP/tcpdump.err" && break; sleep 0.1; done
  local sent; sent=$(replay "$2" "${FILE[$1]}")
  local pps; pps=$(rate_of)
  sleep 1
  kill -INT "$pid"; wait "$pid" || true
  local got drop
  got=$(sed -n 's/^\([0-9]*\) packets captured.*/\1/p' "$TMP/tcpdump.err")
  drop=$(sed -n 's/^\([0-9]*\) packets dropped by kernel.*/\1/p' "$TMP/tcpdump.err")
  REF_ALL=0
  [[ $got == "$sent" ]] && REF_ALL=1
  row "| $1 | $2 | ${pps%.*} | tcpdump -w /dev/null | $sent | $got | $drop | $(pct "$got" "$sent") | |"
}

pct() { python3 -c "import sys; s=int(sys.argv[2]); print(f'{100*int(sys.argv[1])/s:.2f}%' if s else '-')" "$1" "$2"; }

# On DIFF: keeps both summaries (pretty-printed) in $OUT/diff-INPUT-MODE-LABEL.{live,read}.json
# and prints the first differing lines, so a DIFF says what differs.
keep_diff() { # INPUT MODE LABEL LIVE_LINE REFERENCE_FILE
  local base=$OUT/diff-$1-$2-${3//[^a-z0-9-]/_}
  python3 -c "$SUMMARY_PY" <<<"$4" | python3 -m json.tool --sort-keys >"$base.live.json"
  python3 -m json.tool --sort-keys "$5" >"$base.read.json"
  echo "DIFF ($3): read (-) vs live (+), kept in $base.{read,live}.json" >&2
  diff -U 2 "$base.read.json" "$base.live.json" | sed -n '3,40p' >&2 || true
}

run_appletap() { # INPUT MODE LABEL ARGS...
  local input=$1 mode=$2 label=$3
  shift 3
  # shellcheck disable=SC2086
  ip netns exec "$NS" "$BIN" live -i vb --interval 1 --format json "$@" $EXTRA >"$TMP/live.out" 2>"$TMP/live.err" &
  local pid=$!
  for _ in $(seq 1 100); do [[ -s $TMP/live.out ]] && break; sleep 0.1; done
  local sent; sent=$(replay "$mode" "${FILE[$input]}")
  local pps; pps=$(rate_of)
  settle "$TMP/live.out"
  kill -INT "$pid"; wait "$pid" || true
  local line; line=$(tail -n 1 "$TMP/live.out")
  local got drops
  read -r got drops < <(python3 -c 'import json,sys
r=json.loads(sys.stdin.read()); d=r["drops"]
print(r["totals"]["packets_read"], sum(d.get(k) or 0 for k in ("kernel","interface","pipeline")))' <<<"$line")
  local same="" pace=$mode
  if [[ $mode == top || $mode == preload ]]; then pace=$(( ${pps%.*} / 50000 * 50000 )); fi
  ((pace > 0)) || pace=50000
  if [[ $got == "$sent" && $drops == 0 ]]; then
    if [[ $(python3 -c "$SUMMARY_PY" <<<"$line") == "$(cat "$(reference "$input" "$pace")")" ]]; then
      same=same
    else
      same=DIFF; MISSED=1
      keep_diff "$input" "$mode" "$label" "$line" "$(reference "$input" "$pace")"
    fi
  elif ((REF_ALL)); then
    same="MISSED (tcpdump read all)"; MISSED=1
  fi
  row "| $input | $mode | ${pps%.*} | $label | $sent | $got | $drops | $(pct "$got" "$sent") | $same |"
}

AFP=0
if "$BIN" live --help | grep -q -- '--capture'; then AFP=1; fi

echo "appletap: $("$BIN" --version); $(nproc) cores; $(uname -r)" >&2
HEADER="| input | rate | sent pps | reader | sent | read | dropped (kernel + interface + pipeline) | read % | report = read |
|---|---|---:|---|---:|---:|---:|---:|---|"
echo "$HEADER" >&2
for input in $INPUTS; do
  for mode in $MODES; do
    run_tcpdump "$input" "$mode"
    for n in $THREADS; do
      run_appletap "$input" "$mode" "appletap libpcap --threads $n" --threads "$n"
    done
    if ((AFP)); then
      for n in $THREADS; do
        run_appletap "$input" "$mode" "appletap af-packet --readers $n" --capture af-packet --readers "$n"
      done
    fi
  done
done

IDLE=""
if ((IDLE_SECS > 0)); then
  # shellcheck disable=SC2086
  ip netns exec "$NS" "$BIN" live -i vb --interval 10 --format json $EXTRA >/dev/null 2>&1 &
  pid=$!
  sleep 2
  ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
  t0=$(ticks "$pid"); s0=$(date +%s.%N)
  sleep "$IDLE_SECS"
  t1=$(ticks "$pid"); s1=$(date +%s.%N)
  kill -INT "$pid" 2>/dev/null || true
  IDLE=$(python3 -c "import os,sys; t=(int(sys.argv[2])-int(sys.argv[1]))/os.sysconf('SC_CLK_TCK'); w=float(sys.argv[4])-float(sys.argv[3]); print(f'idle appletap live (default threads): {t:.2f} s of CPU in {w:.0f} s = {100*t/w:.2f}% of a core')" "$t0" "$t1" "$s0" "$s1")
  echo "$IDLE" >&2
fi

{
  echo "$HEADER"
  printf '%s\n' "${ROWS[@]}"
  [[ -n $IDLE ]] && echo && echo "$IDLE"
} | tee "$OUT/live-throughput.md"
if [[ $STRICT == 1 && $MISSED == 1 ]]; then exit 1; fi
