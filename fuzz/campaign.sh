#!/usr/bin/env bash
# The long fuzzing campaign behind the figures in fuzz/README.md: every target (or those named)
# for RUNS executions (default 10 million), two at a time, then the per-input timing check.
# Usage: fuzz/campaign.sh [-j JOBS] [-r RUNS] [-s SANITIZER] [TARGET...]
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
export BIN=$TARGET_DIR/x86_64-unknown-linux-gnu/release

run_one() {
  local t=$1 extra=()
  case $t in
    capture_file) extra=(-max_len=8192) ;;
    signature_file) extra=(-max_len=16384) ;;
  esac
  mkdir -p "corpus/$t" "artifacts/$t"
  local start end rc=0
  start=$(date +%s)
  "$BIN/$t" -runs="$RUNS" -timeout=1 -rss_limit_mb=2048 -report_slow_units=1 \
    -print_final_stats=1 -artifact_prefix="artifacts/$t/" "${extra[@]}" "corpus/$t" \
    >"$LOGDIR/$t.log" 2>&1 || rc=$?
  end=$(date +%s)
  local execs eps slowest
  execs=$(grep -m1 'stat::number_of_executed_units' "$LOGDIR/$t.log" | awk '{print $2}')
  eps=$(grep -m1 'stat::average_exec_per_sec' "$LOGDIR/$t.log" | awk '{print $2}')
  slowest=$(grep -m1 'stat::slowest_unit_time_sec' "$LOGDIR/$t.log" | awk '{print $2}')
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "${execs:-?}" "$((end - start))" "${eps:-?}" \
    "$(find "corpus/$t" -type f | wc -l)" "$(find "artifacts/$t" -type f | wc -l)" "rc=$rc slowest_unit_s=${slowest:-?}" \
    >>"$LOGDIR/summary.tsv"
}
export -f run_one
printf '%s\n' "${targets[@]}" | xargs -P "$jobs" -I{} bash -c 'run_one {}'
column -t -s $'\t' "$LOGDIR/summary.tsv"
