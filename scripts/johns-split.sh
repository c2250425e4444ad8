#!/usr/bin/env bash
# The seeded split of the dlib "johns" crops used by `make demo` and
# `make bench-defaults`: per person, 8 crops to train and 3 to query, in an
# order set by a hash of the seed and the file name.
# Usage: scripts/johns-split.sh JOHNS_DIR OUT_DIR [SEED]  -> OUT_DIR/{train,gallery}.csv
set -euo pipefail
JOHNS=$1 D=$2 SEED=${3:-0}
mkdir -p "$D"
echo "path,label" > "$D/train.csv"
echo "path,label" > "$D/gallery.csv"
for person in "$JOHNS"/*/; do
    name=$(basename "$person")
    i=0
    for f in "$person"*.jpg; do
        printf '%s %s\n' "$(printf '%s/%s' "$SEED" "$(basename "$f")" | md5sum | cut -c1-12)" "$f"
    done | sort | while read -r _ f; do
        if (( i < 8 )); then echo "$f,$name" >> "$D/train.csv"; else echo "$f,$name" >> "$D/gallery.csv"; fi
        i=$((i + 1))
    done
done
