#!/usr/bin/env bash
# `make bench-train`: training throughput of likeness vs a PyTorch eager script
# of the same network, batch (8 tuples x 10 classes x 2 images = 160), loss
# (N-pair-mc + L2) and optimizer (Adam), on Fashion-MNIST, in one run.
# This machine's speed drifts by tens of percent within minutes, so the two
# alternate for ROUNDS rounds (default 3) and the summary gives each round's
# ratio and their median.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/fashion-recipe.sh
CACHE="${LIKENESS_CACHE:-$HOME/.cache/likeness}"
PY="$CACHE/torch-2.11.0/bin/python"
F="$CACHE/data/fashion-mnist"
BIN_DIR=${LIKENESS_BIN_DIR:-$(scripts/target-dir.sh)/release}  # where cargo put the binaries
BIN=${LIKENESS_BIN:-$BIN_DIR/likeness}
STEPS="${STEPS:-100}"
THREADS="${THREADS:-$(nproc)}"
ROUNDS="${ROUNDS:-3}"
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT

for prec in ${PRECISIONS:-fp32 bf16}; do
  for round in $(seq "$ROUNDS"); do
    echo "== round $round, $prec: PyTorch eager ($THREADS threads, $STEPS steps)"
    "$PY" benches/peers/train_pytorch.py --images "$F/train-images-idx3-ubyte.gz" \
      --labels "$F/train-labels-idx1-ubyte.gz" --steps "$STEPS" --threads "$THREADS" \
      --precision "$prec" | tee "$OUT/pt.txt"
    echo "== round $round, $prec: likeness ($THREADS threads, $STEPS steps, no augmentation)"
    "$BIN" --threads "$THREADS" --device cpu train \
      --data "$F/train-images-idx3-ubyte.gz" --out "$OUT/model" --epochs 1 --force \
      --steps-per-epoch "$STEPS" --val none --no-flip --seed 0 --precision "$prec" "${PLAIN_RECIPE[@]}" 2>&1 | tail -n 2
    LK=$("$PY" -c "import json,sys; e=json.load(open(sys.argv[1]))['epochs'][0]; print(round(e['images_per_s'],1))" "$OUT/model/model.json")
    PT=$(grep -oP 'images/s \K[0-9.]+' "$OUT/pt.txt")
    echo "$prec $LK $PT" >> "$OUT/rounds.txt"
  done
done
echo "== summary"
"$PY" - "$OUT/rounds.txt" <<'PYEOF'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    prec, lk, pt = line.split()
    rows.setdefault(prec, []).append((float(lk), float(pt)))
for prec, rs in rows.items():
    ratios = [lk / pt for lk, pt in rs]
    each = ", ".join(f"{lk:.1f} vs {pt:.1f}" for lk, pt in rs)
    print(f"bench-train {prec}: likeness vs pytorch images/s per round: {each}; "
          f"ratios {', '.join(f'{r:.2f}x' for r in ratios)}; median {statistics.median(ratios):.2f}x")
PYEOF
