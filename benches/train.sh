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

echo "== PyTorch eager ($THREADS threads, $STEPS steps)"
"$PY" benches/peers/train_pytorch.py --images "$F/train-images-idx3-ubyte.gz" \
  --labels "$F/train-labels-idx1-ubyte.gz" --steps "$STEPS" --threads "$THREADS" | tee "$OUT/pt.txt"
echo "== likeness ($THREADS threads, $STEPS steps, no augmentation, constant lr)"
target/release/likeness --threads "$THREADS" --device cpu train \
  --data "$F/train-images-idx3-ubyte.gz" --out "$OUT/model" --epochs 1 \
  --steps-per-epoch "$STEPS" --val none --no-flip --seed 0 2>&1 | tail -n 3
LK=$("$PY" -c "import json,sys; e=json.load(open(sys.argv[1]))['epochs'][0]; print(round(e['images_per_s'],1))" "$OUT/model/model.json")
PT=$(grep -oP 'images/s \K[0-9.]+' "$OUT/pt.txt")
echo "likeness images/s $LK"
"$PY" -c "import sys; lk,pt=map(float,sys.argv[1:]); print(f'bench-train: likeness {lk:.1f} images/s, pytorch {pt:.1f} images/s, ratio {lk/pt:.2f}x')" "$LK" "$PT"
