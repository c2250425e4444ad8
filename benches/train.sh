#!/usr/bin/env bash
# `make bench-train`: training throughput of likeness vs a PyTorch eager script
# of the same network, batch (8 tuples x 10 classes x 2 images = 160), loss
# (N-pair-mc + L2) and optimizer (Adam), on Fashion-MNIST, in one run.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${LIKENESS_CACHE:-$HOME/.cache/likeness}"
PY="$CACHE/torch-2.11.0/bin/python"
F="$CACHE/data/fashion-mnist"
STEPS="${STEPS:-100}"
THREADS="${THREADS:-$(nproc)}"
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT

for prec in ${PRECISIONS:-fp32 bf16}; do
  echo "== PyTorch eager ($THREADS threads, $STEPS steps, $prec)"
  "$PY" benches/peers/train_pytorch.py --images "$F/train-images-idx3-ubyte.gz" \
    --labels "$F/train-labels-idx1-ubyte.gz" --steps "$STEPS" --threads "$THREADS" \
    --precision "$prec" | tee "$OUT/pt-$prec.txt"
  echo "== likeness ($THREADS threads, $STEPS steps, $prec, no augmentation)"
  target/release/likeness --threads "$THREADS" --device cpu train \
    --data "$F/train-images-idx3-ubyte.gz" --out "$OUT/model-$prec" --epochs 1 \
    --steps-per-epoch "$STEPS" --val none --no-flip --seed 0 --precision "$prec" 2>&1 | tail -n 2
  LK=$("$PY" -c "import json,sys; e=json.load(open(sys.argv[1]))['epochs'][0]; print(round(e['images_per_s'],1))" "$OUT/model-$prec/model.json")
  PT=$(grep -oP 'images/s \K[0-9.]+' "$OUT/pt-$prec.txt")
  "$PY" -c "import sys; lk,pt=map(float,sys.argv[2:]); print(f'bench-train {sys.argv[1]}: likeness {lk:.1f} images/s, pytorch {pt:.1f} images/s, ratio {lk/pt:.2f}x')" "$prec" "$LK" "$PT" | tee -a "$OUT/summary.txt"
done
echo "== summary"; cat "$OUT/summary.txt"
