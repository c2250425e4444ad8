#!/usr/bin/env bash
# The SYNTHETIC graded facial regions (issue 14): `likeness synth-swell`
# derives them, seeded, from the johns crops that scripts/fetch-data.sh
# fetched. Cached under $LIKENESS_CACHE/data/swell-v<VERSION>; VERSION must
# match `VERSION` in src/data/swell.rs (bumped whenever the output changes).
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=2
CACHE="${LIKENESS_CACHE:-$HOME/.cache/likeness}"
DEST="$CACHE/data/swell-v$VERSION"
BIN_DIR=${LIKENESS_BIN_DIR:-$(scripts/target-dir.sh)/release}  # where cargo put the binaries
BIN=${LIKENESS_BIN:-$BIN_DIR/likeness}
if [[ -f $DEST/.complete ]]; then echo "likeness data: swell-v$VERSION present"; exit 0; fi
tmp=$(mktemp -d "$CACHE/data/swell.XXXXXX")
"$BIN" synth-swell --johns "$CACHE/data/johns" --out "$tmp" --seed 0
rm -rf "$DEST"
mv "$tmp" "$DEST"
touch "$DEST/.complete"
