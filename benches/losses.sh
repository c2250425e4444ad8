#!/usr/bin/env bash
# `make bench-losses`: the paper's claim on our data. Trains convnet on the
# Fashion-MNIST train split with npair-mc, npair-ovo and triplet at equal
# epochs and batch size (8 tuples x 10 classes x 2 images), evaluates each
# on the 10,000 test images (leave-one-out, cosine), and prints a markdown
# table. EPOCHS (default 2), PRECISION (fp32|bf16) and THREADS can be set in
# the environment.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/fashion-recipe.sh
CACHE="${LIKENESS_CACHE:-$HOME/.cache/likeness}"
PY="$CACHE/torch-2.11.0/bin/python"
F="$CACHE/data/fashion-mnist"
BIN_DIR=${LIKENESS_BIN_DIR:-$(scripts/target-dir.sh)/release}  # where cargo put the binaries
BIN=${LIKENESS_BIN:-$BIN_DIR/likeness}
EPOCHS="${EPOCHS:-2}"
PRECISION="${PRECISION:-fp32}"
THREADS="${THREADS:-$(nproc)}"
OUT="${OUT:-runs/bench-losses}"
mkdir -p "$OUT"
for loss in npair-mc npair-ovo triplet; do
  if [ ! -f "$OUT/$loss/model.json" ]; then
    "$BIN" --threads "$THREADS" --device cpu train \
      --data "$F/train-images-idx3-ubyte.gz" --val-data "$F/t10k-images-idx3-ubyte.gz" \
      --out "$OUT/$loss" --loss "$loss" --epochs "$EPOCHS" --precision "$PRECISION" --seed 0 --force \
      "${PLAIN_RECIPE[@]}"
  fi
done
"$PY" - "$OUT" "$EPOCHS" "$PRECISION" <<'PY' | tee "$OUT/table.md"
import json, sys
out, epochs, prec = sys.argv[1], sys.argv[2], sys.argv[3]
print(f"| loss ({epochs} epochs, 160 images/step, {prec}) | Recall@1 | Recall@2 | Recall@4 | Recall@8 | MAP@R | train s |")
print("|---|---|---|---|---|---|---|")
for loss in ["npair-mc", "npair-ovo", "triplet"]:
    c = json.load(open(f"{out}/{loss}/model.json"))
    v = next(e for e in c["epochs"] if e["epoch"] == c["best_epoch"])["validation"]
    print(f"| {loss} | {v['recall@1']:.4f} | {v['recall@2']:.4f} | {v['recall@4']:.4f} | {v['recall@8']:.4f} | {v['map@r']:.4f} | {c['train_seconds']:.0f} |")
PY
