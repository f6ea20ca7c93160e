#!/usr/bin/env bash
# Writes signatures/apple-oui.txt: the MA-L prefixes (OUIs) the IEEE registry lists for
# "Apple, Inc.", from Debian's ieee-data package (installed by .ci/setup). The list is
# embedded in the binary; tests/devices.rs checks it against the registry file when present.
set -euo pipefail
src="${1:-/usr/share/ieee-data/oui.csv}"
out="$(dirname "$0")/../signatures/apple-oui.txt"
version="$(dpkg-query -W -f='${Version}' ieee-data 2>/dev/null || echo unknown)"
{
  echo "# Apple, Inc. MAC prefixes (IEEE MA-L registry), one per line, upper-case hex."
  echo "# Source: $src (Debian ieee-data $version, registry of $(date -u -d "@$(cat "$(dirname "$src")/.lastupdate" 2>/dev/null || echo 0)" +%F))."
  echo "# Made by: scripts/apple-oui.sh (the \"Apple, Inc.\" rows of oui.csv, sorted)."
  python3 - "$src" <<'PY'
import csv, sys
rows = csv.reader(open(sys.argv[1], newline="", encoding="utf-8"))
next(rows)
print("\n".join(sorted({r[1].upper() for r in rows if r[0] == "MA-L" and r[2].strip() == "Apple, Inc."})))
PY
} > "$out"
echo "$(grep -vc '^#' "$out") prefixes written to $out"
