#!/usr/bin/env bash
# `make bench-cuda` (needs an NVIDIA GPU): the demo's Fashion-MNIST recipe
# trained with --device cuda in bf16 and fp32, validated after every epoch;
# the bf16 model indexed and evaluated on the GPU; then training throughput of
# likeness vs PyTorch eager on the GPU (batch 160, as `make bench-train`).
# Prints the per-epoch loss and Recall@1 beside a CPU run's when CPU_MODEL
# names one (for example runs/demo/fashion/model after `make demo`).
#
# To run a binary built elsewhere, set LD_LIBRARY_PATH to the GPU machine's
# torch/lib; LIKENESS_BIN, LIKENESS_PYTHON and FASHION (the folder of the
# Fashion-MNIST .gz files) override the defaults; THREADS sets likeness's
# --threads (on an H200 with 16 cores, 2 trained twice as fast as all 16); TRAIN_ARGS adds flags to the
# recipe (a quick dry run on a CPU: DEV=cpu EPOCHS=1 STEPS=3 TRAIN_ARGS="--steps-per-epoch 5").
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/fashion-recipe.sh
CACHE=${LIKENESS_CACHE:-$HOME/.cache/likeness}
B=${LIKENESS_BIN:-target/release/likeness}
PY=${LIKENESS_PYTHON:-$CACHE/torch-2.11.0/bin/python}
FM=${FASHION:-$CACHE/data/fashion-mnist}
OUT=${OUT:-runs/cuda}
DEV=${DEV:-cuda}
EPOCHS=${EPOCHS:-5}
STEPS=${STEPS:-300}
CPU_MODEL=${CPU_MODEL:-}
# --threads for likeness (torch and rayon); unset = all cores, likeness's default.
TH=(); [[ -n ${THREADS:-} ]] && TH=(--threads "$THREADS")
mkdir -p "$OUT"
t0=$(date +%s); step() { echo; echo "== [$(( $(date +%s) - t0 )) s] $*"; }

step "machine"
"$B" doctor --device "$DEV" | tee "$OUT/doctor.txt" || exit 2

for prec in bf16 fp32; do
  step "Fashion-MNIST, demo recipe on $DEV, $prec, $EPOCHS epochs"
  "$B" --device "$DEV" "${TH[@]}" train --data "$FM/train-images-idx3-ubyte.gz" \
    --val-data "$FM/t10k-images-idx3-ubyte.gz" --out "$OUT/fashion-$prec" "${FASHION_RECIPE[@]}" \
    --precision "$prec" --seed 0 --epochs "$EPOCHS" --val-every 1 --force ${TRAIN_ARGS:-} 2>&1 \
    | tee "$OUT/fashion-$prec.log" | grep -v '^model:' || exit 1
done

step "index and evaluate the 10,000 test images on $DEV (bf16 model)"
"$B" --device "$DEV" index --model "$OUT/fashion-bf16" --data "$FM/t10k-images-idx3-ubyte.gz" \
  --out "$OUT/index" --force | tail -n 2 || exit 1
"$B" --device "$DEV" eval --index "$OUT/index" --leave-one-out --out "$OUT/eval" | tail -n 3 || exit 1

if [[ -n $CPU_MODEL ]]; then
  step "per-epoch loss and validation Recall@1: CPU ($CPU_MODEL) vs $DEV"
  "$PY" - "$CPU_MODEL" "$OUT/fashion-bf16" "$OUT/fashion-fp32" <<'PYEOF'
import csv, sys
runs = [list(csv.DictReader(open(d + "/train_log.csv"))) for d in sys.argv[1:]]
print("| epoch | loss CPU | loss GPU bf16 | loss GPU fp32 | R@1 CPU | R@1 GPU bf16 | R@1 GPU fp32 |")
print("|---:|---:|---:|---:|---:|---:|---:|")
for rows in zip(*runs):
    f = lambda r, k: ("%.4f" % float(r[k])) if r[k] else "-"
    print(f"| {rows[0]['epoch']} | " + " | ".join(f(r, "loss") for r in rows) + " | "
          + " | ".join(f(r, "recall@1") for r in rows) + " |")
PYEOF
fi

for prec in fp32 bf16; do
  step "throughput on $DEV, $prec, 160 images per step"
  "$PY" benches/peers/train_pytorch.py --images "$FM/train-images-idx3-ubyte.gz" \
    --labels "$FM/train-labels-idx1-ubyte.gz" --steps "$STEPS" --device "$DEV" --precision "$prec" | tail -n 1
  # Two epochs: the first includes CUDA's start and cuDNN's kernel search,
  # the second is the steady state (PyTorch's script times after 5 warm-up steps).
  "$B" --device "$DEV" "${TH[@]}" train --data "$FM/train-images-idx3-ubyte.gz" --out "$OUT/bench-$prec" \
    --epochs 2 --steps-per-epoch "$STEPS" --val none --no-flip --seed 0 --precision "$prec" --force \
    > "$OUT/bench-$prec.log" 2>&1 || { cat "$OUT/bench-$prec.log"; exit 1; }
  "$PY" -c "import json,sys; e=json.load(open(sys.argv[1]))['epochs']; print('likeness images/s %.1f (epoch 2; epoch 1 with the start: %.1f)' % (e[1]['images_per_s'], e[0]['images_per_s']))" "$OUT/bench-$prec/model.json"
done
step done
