#!/usr/bin/env bash
# `make bench-budget`: the demo's Fashion-MNIST recipe (5 epochs) timed
# against the speed this machine has right now. Its speed drifts by up to 40%
# within an hour, so the training time alone says little; the issue's PyTorch
# reference (batch 160, fp32, 2 threads) was measured at 1,464 images/s. This
# script runs that PyTorch reference's throughput probe (benches/peers/
# train_pytorch.py, 100 steps) before and after the training and reports the
# training time also scaled to the machine state in which the reference ran:
# seconds x (probe images/s / 1,464).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/fashion-recipe.sh
CACHE=${LIKENESS_CACHE:-$HOME/.cache/likeness}
PY=${LIKENESS_PYTHON:-$CACHE/torch-2.11.0/bin/python}
F=$CACHE/data/fashion-mnist
BIN_DIR=${LIKENESS_BIN_DIR:-$(scripts/target-dir.sh)/release}  # where cargo put the binaries
B=${LIKENESS_BIN:-$BIN_DIR/likeness}
OUT=$(mktemp -d); trap 'rm -rf "$OUT"' EXIT
REFERENCE=1464

probe() {
  "$PY" benches/peers/train_pytorch.py --images "$F/train-images-idx3-ubyte.gz" \
    --labels "$F/train-labels-idx1-ubyte.gz" --steps 100 --threads 2 | grep -oP 'images/s \K[0-9.]+'
}
echo "== PyTorch reference probe (fp32, batch 160, 2 threads)"
P1=$(probe); echo "$P1 images/s"
echo "== likeness: the make demo recipe, 5 epochs, 2 threads"
"$B" --threads 2 --device cpu train --data "$F/train-images-idx3-ubyte.gz" \
  --val-data "$F/t10k-images-idx3-ubyte.gz" --out "$OUT/model" "${FASHION_RECIPE[@]}" \
  --precision bf16 --seed 0 --epochs 5 --val-every 5 2>&1 | grep -v '^model:'
echo "== PyTorch reference probe again"
P2=$(probe); echo "$P2 images/s"
"$PY" - "$OUT/model/model.json" "$P1" "$P2" "$REFERENCE" <<'PYEOF'
import json, sys
card = json.load(open(sys.argv[1]))
p1, p2, ref = map(float, sys.argv[2:])
steps = card["train_seconds"]
v = card["epochs"][-1]["validation"]
scale = (p1 + p2) / 2 / ref
print(f"bench-budget: {steps:.1f} s of training steps, Recall@1 {v['recall@1']:.4f}, MAP@R {v['map@r']:.4f}; "
      f"machine at {scale:.2f}x the reference's speed (probes {p1:.0f} and {p2:.0f} images/s vs {ref:.0f}); "
      f"scaled to the reference's machine state: {steps * scale:.1f} s (budget 300 s)")
PYEOF
