#!/usr/bin/env bash
# `make bench-asymmetry`: the swell set's left/right target on each of its
# five people, not only on the fifth (docs/scores.md). Each person is held
# out in turn: `likeness train --data <the other four> --out M
# --score-bins 5` (the defaults otherwise), then `likeness asymmetry` on the
# held-out person's 660 left/right pairs. Prints per person the training
# time and the ROC AUC of unequal against equal true sides, by the distance
# of the left and mirrored right crops and by the score read-out, then the
# mean. About 2 minutes a person on 2 cores. PEOPLE picks fewer.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=${LIKENESS_CACHE:-$HOME/.cache/likeness}
BIN_DIR=${LIKENESS_BIN_DIR:-$(scripts/target-dir.sh)/release}  # where cargo put the binaries
B=${LIKENESS_BIN:-$BIN_DIR/likeness}
SW=$CACHE/data/swell-v2  # scripts/swell-data.sh (`make data`) makes it
[[ -f $SW/.complete ]] || { echo "$SW missing: run \`make data\` first" >&2; exit 2; }
PEOPLE=${PEOPLE:-$(cut -d, -f1 "$SW/regions.csv" | sed -n 's|^images/\([^/]*\)/.*|\1|p' | sort -u)}
OUT=${BENCH_OUT:-$(mktemp -d)}
mkdir -p "$OUT"
[[ -n ${BENCH_OUT:-} ]] || trap 'rm -rf "$OUT"' EXIT
[[ -x $B ]] || { echo "$B missing: run \`make build\` first" >&2; exit 2; }

# A number from summary.json ("null" when the model has no read-out).
field() { grep -o "\"$2\": [^,}]*" "$1" | head -n 1 | cut -d' ' -f2; }

printf "%-16s %10s %14s %14s\n" "held out" "train (s)" "AUC distance" "AUC read-out"
for p in $PEOPLE; do
  D=$OUT/$p
  mkdir -p "$D"
  # The manifests' paths are relative to their folder, as in the set's own.
  ln -sfn "$SW/images" "$D/images"
  head -n 1 "$SW/regions.csv" | tee "$D/train.csv" > "$D/test.csv"
  tail -n +2 "$SW/regions.csv" | grep -v "^images/$p/" >> "$D/train.csv"
  tail -n +2 "$SW/regions.csv" | grep "^images/$p/" >> "$D/test.csv"
  start=$(date +%s)
  "$B" train --data "$D/train.csv" --out "$D/model" --score-bins 5 > "$D/train.log" 2>&1 \
    || { cat "$D/train.log" >&2; exit 1; }
  secs=$(( $(date +%s) - start ))
  "$B" asymmetry --model "$D/model" --data "$D/test.csv" --out "$D/asym" > "$D/asym.log" 2>&1 \
    || { cat "$D/asym.log" >&2; exit 1; }
  printf "%-16s %10d %14.4f %14.4f\n" "$p" "$secs" \
    "$(field "$D/asym/summary.json" auc_unequal)" "$(field "$D/asym/summary.json" auc_unequal_readout)"
done | tee "$OUT/table.txt"
awk '{ d += $3; r += $4; n++ } END { if (n) printf "%-16s %10s %14.4f %14.4f\n", "mean", "", d / n, r / n }' "$OUT/table.txt"
