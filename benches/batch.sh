#!/usr/bin/env bash
# Embedding time and peak memory against `--batch` on this machine, with the
# models and data of `make demo` (run it first): the demo's 540 regions with
# its EfficientNet-Lite0 (160 px), the synthetic swell set's 1,320 test
# regions with the scores model (96 px), Fashion-MNIST's 10,000 test images
# with the convnet (28 px) and the 15 held-out johns crops with dlib's face
# network (150 px). Interleaved, ROUNDS rounds. What chose the default
# `--batch` (app/src/args/mod.rs, DEFAULT_BATCH_CPU).
#   benches/batch.sh [BATCHES...]    (default: 16 32 64 256)
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=${LIKENESS_CACHE:-$HOME/.cache/likeness}
BIN=${LIKENESS_BIN:-$(scripts/target-dir.sh)/release/likeness}
DEMO=${DEMO:-runs/demo}
ROUNDS=${ROUNDS:-2}
BATCHES=("${@:-16 32 64 256}")
read -r -a BATCHES <<< "${BATCHES[*]}"
[[ -x $BIN ]] || { echo "$BIN missing: run \`make build\` first" >&2; exit 2; }
[[ -f $DEMO/REPORT.md ]] || { echo "$DEMO has no demo: run \`make demo\` first" >&2; exit 2; }
WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT
SETS=(
  "regions $DEMO/faces/regions-model $DEMO/faces/regions.csv"
  "swell $DEMO/scores/model $CACHE/data/swell-v2/test.csv"
  "fashion $DEMO/fashion/model $CACHE/data/fashion-mnist/t10k-images-idx3-ubyte.gz"
  "faces $DEMO/faces/model $DEMO/faces/gallery.csv"
)
echo "| set | --batch | seconds | peak memory (MB) |"
echo "|---|---:|---:|---:|"
for _ in $(seq "$ROUNDS"); do
  for set in "${SETS[@]}"; do
    read -r name model data <<< "$set"
    for b in "${BATCHES[@]}"; do
      rm -rf "$WORK/out"
      /usr/bin/time -f "%e %M" -o "$WORK/time" \
        "$BIN" embed --model "$model" --data "$data" --out "$WORK/out" --batch "$b" > /dev/null 2> "$WORK/err" \
        || { echo "$name --batch $b failed: $(tail -n 2 "$WORK/err")" >&2; exit 1; }
      read -r s kb < "$WORK/time"
      echo "| $name | $b | $s | $((kb / 1024)) |"
    done
  done
done
