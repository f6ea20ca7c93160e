#!/usr/bin/env bash
# Times every input of every target's corpus (or of the targets named) and fails if one takes
# more than LIMIT_MS (default 10) milliseconds.
#
# libFuzzer run on files instead of a directory executes each file `-runs` times and prints
# "Executed FILE in N ms" for the lot; with -runs=10 that is the mean cost of one input to a
# tenth of a millisecond, file reading included (so an upper bound). The binaries are the
# fuzzing builds (coverage instrumentation, debug assertions and overflow checks on, and the
# sanitizer of the campaign), which are slower than a release build: also an upper bound.
# These machines are shared and now and then stall a process for tens of milliseconds, so the
# inputs that time over half the limit are timed again, alone, RETIMES (default 3) more times,
# and each keeps its fastest time: an input is slow only if it is slow every time.
# Usage: fuzz/check-slowest.sh [-s SANITIZER] [TARGET...]   (TARGET_DIR as in campaign.sh)
set -euo pipefail
cd "$(dirname "$0")"
sanitizer=none
while getopts "s:" o; do
  case $o in
    s) sanitizer=$OPTARG ;;
    *) echo "usage: $0 [-s SANITIZER] [TARGET...]" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
limit=${LIMIT_MS:-10}
runs=10
target_dir=${TARGET_DIR:-$PWD/target/sanitizer-$sanitizer}
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then mapfile -t targets < <(cargo fuzz list); fi
RUSTC_BOOTSTRAP=1 cargo fuzz build -s "$sanitizer" --target-dir "$target_dir" >/dev/null 2>&1
bin=$target_dir/$(rustc -vV | sed -n 's/^host: //p')/release
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
status=0
printf '%-20s %7s %12s %12s  %s\n' TARGET INPUTS "SLOWEST ms" "MEAN ms" "SLOWEST INPUT"
for t in "${targets[@]}"; do
  extra=()
  case $t in
    capture_file) extra=(-max_len=8192) ;;
    signature_file) extra=(-max_len=16384) ;;
  esac
  find "corpus/$t" -type f -print0 |
    xargs -0 -n 400 "$bin/$t" -runs=$runs -timeout=10 -rss_limit_mb=2048 "${extra[@]}" 2>&1 |
    sed -n 's/^Executed \(.*\) in \([0-9]*\) ms$/\2 \1/p' >"$out/$t.first"
  # Retime the slower ones alone; keep each input's fastest time.
  cp "$out/$t.first" "$out/$t"
  awk -v r=$runs -v l="$limit" '$1 / r > l / 2 {print $2}' "$out/$t.first" | while read -r f; do
    for ((k = 0; k < ${RETIMES:-3}; k++)); do
      "$bin/$t" -runs=$runs -timeout=10 -rss_limit_mb=2048 "${extra[@]}" "$f" 2>&1 |
        sed -n 's/^Executed \(.*\) in \([0-9]*\) ms$/\2 \1/p'
    done
  done >>"$out/$t"
  sort -k2,2 -k1,1n "$out/$t" | awk '!seen[$2]++' >"$out/$t.best"
  mv "$out/$t.best" "$out/$t"
  n=$(wc -l <"$out/$t")
  read -r worst file < <(sort -n -r "$out/$t" | head -1)
  mean=$(awk -v r=$runs '{s += $1} END {if (NR) printf "%.3f", s / NR / r; else print 0}' "$out/$t")
  worst_ms=$(awk -v w="$worst" -v r=$runs 'BEGIN {printf "%.1f", w / r}')
  printf '%-20s %7s %12s %12s  %s\n' "$t" "$n" "$worst_ms" "$mean" "$(basename "$file")"
  if awk -v w="$worst" -v r=$runs -v l="$limit" 'BEGIN {exit !(w / r > l)}'; then
    echo "  over ${limit} ms:"
    sort -n -r "$out/$t" | awk -v r=$runs -v l="$limit" '$1 / r > l {printf "    %.1f ms %s\n", $1 / r, $2}' | head -10
    status=1
  fi
done
exit $status
