#!/usr/bin/env bash
# Seeds fuzz/corpus/<target>/ from ../shared/pcaps, fixtures/ and signatures/apple.toml
# (see fuzz/seed.py for what each target gets). Deterministic; safe to rerun: seeds are named by
# their SHA-1, so existing corpus files (what fuzzing found) are kept.
# Usage: fuzz/seed.sh [CORPUS_DIR]   (default fuzz/corpus; needs python3)
set -euo pipefail
cd "$(dirname "$0")/.."
test -d ../shared/pcaps || { echo "fuzz/seed.sh: ../shared/pcaps not found" >&2; exit 1; }
exec python3 fuzz/seed.py "${1:-fuzz/corpus}"
