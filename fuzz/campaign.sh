#!/usr/bin/env bash
# The long fuzzing campaign behind the figures in fuzz/README.md: every target (or those named)
# for RUNS executions (default 10 million), JOBS at a time (default 2), with -timeout=1.
# Usage: fuzz/campaign.sh [-j JOBS] [-r RUNS] [-s SANITIZER] [TARGET...]
#
# A target stops at its first failure. A crash, OOM or leak ends its run. A timeout (or an input
# reported slow, over a second) is replayed three times with a generous limit: if it runs in well
# under a second, the timeout was the machine (a shared host under load stalls a process now and
# then, and benchmarks pause the fuzzers with SIGSTOP), so the input is moved to
# artifacts/TARGET/spurious/ and the run resumes where it stopped, from the same corpus; if it is
# slow again, it is a real hang and ends the run. Progress per target is kept in
# $LOGDIR/TARGET.state ("executions seconds sessions spurious"), so a campaign can be resumed.
# Logs and a summary table go to $LOGDIR (default /tmp/appletap-fuzz-logs). Needs cargo-fuzz.
set -euo pipefail
cd "$(dirname "$0")"
jobs=2 runs=10000000 sanitizer=none
while getopts "j:r:s:" o; do
  case $o in
    j) jobs=$OPTARG ;; r) runs=$OPTARG ;; s) sanitizer=$OPTARG ;;
    *) echo "usage: $0 [-j JOBS] [-r RUNS] [-s SANITIZER] [TARGET...]" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
export LOGDIR=${LOGDIR:-/tmp/appletap-fuzz-logs} RUNS=$runs
export TARGET_DIR=${TARGET_DIR:-$PWD/target/sanitizer-$sanitizer}
mkdir -p "$LOGDIR"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then mapfile -t targets < <(cargo fuzz list); fi
[ -d corpus ] || ./seed.sh
RUSTC_BOOTSTRAP=1 cargo fuzz build -s "$sanitizer" --target-dir "$TARGET_DIR"
export BIN=$TARGET_DIR/$(rustc -vV | sed -n 's/^host: //p')/release

run_one() {
  local t=$1 extra=()
  case $t in
    capture_file) extra=(-max_len=8192) ;;
    signature_file) extra=(-max_len=16384) ;;
  esac
  mkdir -p "corpus/$t" "artifacts/$t"
  local dirs=("corpus/$t")
  if [ -d "regressions/$t" ]; then dirs+=("regressions/$t"); fi
  local state=$LOGDIR/$t.state done=0 secs=0 sessions=0 spurious=0 rc=0
  if [ -f "$state" ]; then read -r done secs sessions spurious <"$state"; fi
  # Replays a timed-out or slow input three times: if it runs in well under a second, the
  # machine stalled, not the input; it goes to artifacts/TARGET/spurious/ (counted), and the
  # call succeeds. Otherwise the input is slow for real: the call fails.
  set_aside_if_fast() {
    local ms
    ms=$("$BIN/$t" -runs=3 -timeout=10 "${extra[@]}" "$1" 2>&1 |
      sed -n 's/^Executed .* in \([0-9]*\) ms$/\1/p')
    [ -n "$ms" ] && [ "$ms" -lt 1500 ] || return 1
    mkdir -p "artifacts/$t/spurious"
    mv "$1" "artifacts/$t/spurious/"
    spurious=$((spurious + 1))
    echo "$done $secs $sessions $spurious" >"$state"
  }
  while [ "$done" -lt "$RUNS" ]; do
    sessions=$((sessions + 1))
    local log=$LOGDIR/$t.$sessions.log start end n
    start=$(date +%s)
    rc=0
    "$BIN/$t" -runs=$((RUNS - done)) -timeout=1 -rss_limit_mb=2048 -report_slow_units=1 \
      -print_final_stats=1 -artifact_prefix="artifacts/$t/" "${extra[@]}" "${dirs[@]}" \
      >"$log" 2>&1 || rc=$?
    end=$(date +%s)
    n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | head -1)
    done=$((done + ${n:-0})) secs=$((secs + end - start))
    echo "$done $secs $sessions $spurious" >"$state"
    [ "$rc" = 0 ] && break
    local f real=0 seen=0
    for f in "artifacts/$t"/*; do
      [ -f "$f" ] || continue
      seen=1
      case $(basename "$f") in
        timeout-* | slow-unit-*) set_aside_if_fast "$f" || real=1 ;;
        *) real=1 ;;
      esac
    done
    # No input to blame: the fuzzer was stopped from outside (a signal); stop too.
    [ "$seen" = 0 ] && break
    [ "$real" = 1 ] && break
    rc=0
  done
  # A run that ended normally may still have reported an input slow (over a second) on the
  # way, e.g. while paused: replay it as above; only one that is slow again counts.
  for f in "artifacts/$t"/slow-unit-*; do
    [ -f "$f" ] && set_aside_if_fast "$f"
  done
  local crashes
  crashes=$(find "artifacts/$t" -maxdepth 1 -type f | wc -l)
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$done" "$secs" "$((done / (secs > 0 ? secs : 1)))" \
    "$(find "corpus/$t" -type f | wc -l)" "$crashes" \
    "sessions=$sessions spurious_timeouts=$spurious rc=$rc" >>"$LOGDIR/summary.tsv"
}
export -f run_one
printf '%s\n' "${targets[@]}" | xargs -P "$jobs" -I{} bash -c 'run_one {}'
column -t -s $'\t' "$LOGDIR/summary.tsv"
