#!/usr/bin/env bash
# `make bench-cuda` (needs an NVIDIA GPU). PARTS picks what runs (default all):
#  recipe  the demo's Fashion-MNIST recipe trained with --device cuda in bf16
#          and fp32, validated after every epoch; the bf16 model indexed and
#          evaluated on the GPU; per-epoch loss and Recall@1 beside a CPU
#          run's when CPU_MODEL names one (e.g. runs/demo/fashion/model);
#  threads training throughput (160 images per step, as `make bench-train`):
#          likeness with its defaults, then a grid of --torch-threads /
#          --loader-threads (GRID), against PyTorch eager at 2, 4 and all
#          cores' threads; the ratio of likeness's defaults to PyTorch's best;
#  decode  resnet18 at 112 px on the johns JPEG crops repeated (REPEAT times):
#          training throughput at each --loader-threads, and the decode rate
#          alone (`inspect --check`): does the loader keep up with the GPU?
#  embed   `benches/embed.sh` on the GPU: files (likeness embed vs the
#          DataLoader script) and in-memory forward loops (vs PyTorch eager);
#  serve   POST /search/image with 32 connections (benches/peers/load.py),
#          unbatched (--max-batch 1) and batched at each --batch-wait-ms.
#
# To run a binary built elsewhere, set LD_LIBRARY_PATH to the GPU machine's
# torch/lib (scripts/gpu-carry.sh gathers binaries and data for such a machine
# and says how to start this there); LIKENESS_BIN, EXAMPLE_BIN, LIKENESS_PYTHON and FASHION (the
# folder of the Fashion-MNIST .gz files; the train split is used when there,
# else the test split) override the defaults; TRAIN_ARGS adds flags to the
# recipe (a quick dry run on a CPU: DEV=cpu EPOCHS=1 STEPS=3 TRAIN_ARGS="--steps-per-epoch 5").
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/fashion-recipe.sh
CACHE=${LIKENESS_CACHE:-$HOME/.cache/likeness}
BIN_DIR=${LIKENESS_BIN_DIR:-$(scripts/target-dir.sh)/release}  # where cargo put the binaries
B=${LIKENESS_BIN:-$BIN_DIR/likeness}
PY=${LIKENESS_PYTHON:-$CACHE/torch-2.11.0/bin/python}
FM=${FASHION:-$CACHE/data/fashion-mnist}
OUT=${OUT:-runs/cuda}
JOHNS=${JOHNS:-$CACHE/data/johns}
PARTS=${PARTS:-recipe threads decode embed serve}
has() { [[ " $PARTS " == *" $1 "* ]]; }
TRAIN=$FM/train-images-idx3-ubyte.gz; [[ -f $TRAIN ]] || TRAIN=$FM/t10k-images-idx3-ubyte.gz
DEV=${DEV:-cuda}
EPOCHS=${EPOCHS:-5}
STEPS=${STEPS:-300}
CPU_MODEL=${CPU_MODEL:-}
# --threads for likeness's recipe runs; unset = likeness's defaults.
TH=(); [[ -n ${THREADS:-} ]] && TH=(--threads "$THREADS")
mkdir -p "$OUT"
t0=$(date +%s); step() { echo; echo "== [$(( $(date +%s) - t0 )) s] $*"; }

step "machine"
"$B" doctor --device "$DEV" | tee "$OUT/doctor.txt" || exit 2

if has recipe; then
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

fi

epoch2() { "$PY" -c "import json,sys; e=json.load(open(sys.argv[1]))['epochs']; print('%.1f' % e[-1]['images_per_s'])" "$1/model.json"; }

if has threads; then
  NC=$(nproc)
  GRID=${GRID:-"$NC/$NC 2/2 1/$NC 2/$NC 4/$NC $NC/2 2/8"}
  step "training throughput on $DEV, fp32, 160 images per step, $STEPS steps (likeness: epoch 2 of 2)"
  rows=(); best_py=0
  for th in 2 4 "$NC"; do
    r=$("$PY" benches/peers/train_pytorch.py --images "$TRAIN" --labels "${TRAIN/images-idx3/labels-idx1}" \
      --steps "$STEPS" --device "$DEV" --threads "$th" | tail -n 1)
    echo "  $r"; v=$(awk '{print $3}' <<< "$r")
    rows+=("| PyTorch eager, torch.set_num_threads($th) | $v |")
    best_py=$(printf '%s\n%s\n' "$best_py" "$v" | sort -g | tail -1)
  done
  run_l() { # label, thread flags...
    "$B" --device "$DEV" "${@:2}" train --data "$TRAIN" --out "$OUT/bench-threads" --epochs 2 --steps-per-epoch "$STEPS" \
      --val none --no-flip --seed 0 --force --precision fp32 "${PLAIN_RECIPE[@]}" > "$OUT/bench-threads.log" 2>&1 || { cat "$OUT/bench-threads.log"; exit 1; }
    local v; v=$(epoch2 "$OUT/bench-threads")
    echo "  likeness $1: $v images/s ($(grep -m1 'threads:' "$OUT/bench-threads.log" | sed 's/.*threads: //'))"
    rows+=("| likeness $1 | $v |")
    echo "$v" > "$OUT/last"
  }
  run_l "defaults"; DEF=$(cat "$OUT/last")
  for g in $GRID; do run_l "--torch-threads ${g%/*} --loader-threads ${g#*/}" --torch-threads "${g%/*}" --loader-threads "${g#*/}"; done
  echo; printf '| %s | images/s |\n|---|---:|\n' "$DEV, fp32, $NC cores"; printf '%s\n' "${rows[@]}"
  printf 'likeness defaults / PyTorch eager best = %.2fx (target >= 1.3x)\n' "$(echo "$DEF / $best_py" | bc -l)"
fi

if has decode; then
  REPEAT=${REPEAT:-40}
  step "decode-bound: resnet18 112 px on the johns JPEG crops x $REPEAT, on $DEV"
  { echo "path,label"; for r in $(seq "$REPEAT"); do
      for f in "$JOHNS"/*/*.jpg; do n=${f%/*}; echo "$f,${n##*/}"; done; done; } > "$OUT/johns-repeat.csv"
  echo "  $(($(wc -l < "$OUT/johns-repeat.csv") - 1)) rows"
  for lt in 2 4 8 "$(nproc)"; do
    s0=$(date +%s.%N)
    "$B" --loader-threads "$lt" inspect "$OUT/johns-repeat.csv" --check > /dev/null
    s1=$(date +%s.%N)
    d=$(echo "($(wc -l < "$OUT/johns-repeat.csv") - 1) / ($s1 - $s0)" | bc -l)
    "$B" --device "$DEV" --loader-threads "$lt" train --data "$OUT/johns-repeat.csv" --out "$OUT/bench-decode" --arch resnet18 \
      --input-size 112 --epochs 2 --steps-per-epoch "${DECODE_STEPS:-60}" --val none --seed 0 --force > "$OUT/bench-decode.log" 2>&1 \
      || { cat "$OUT/bench-decode.log"; exit 1; }
    printf '  --loader-threads %s: decode alone %.0f images/s; resnet18 training %s images/s (%s)\n' "$lt" "$d" \
      "$(epoch2 "$OUT/bench-decode")" "$(grep -m1 'threads:' "$OUT/bench-decode.log" | sed 's/.*threads: //')"
  done
fi

if has embed; then
  step "embedding on $DEV (benches/embed.sh)"
  DEV=$DEV LIKENESS_BIN=$B LIKENESS_PYTHON=$PY RUNS=${EMBED_RUNS:-2} benches/embed.sh || exit 1
fi

if has serve; then
  step "POST /search/image on $DEV, 32 connections, ${SERVE_SECONDS:-10} s each"
  W=${BENCH_EMBED_WORK:-$CACHE/bench-embed}
  [[ -f $W/model/model.json ]] || "$B" --device "$DEV" train --data "$FM/t10k-images-idx3-ubyte.gz" --out "$W/model" \
    --epochs 1 --steps-per-epoch 50 --val none --force > /dev/null 2>&1
  "$B" --device "$DEV" index --model "$W/model" --data "$FM/t10k-images-idx3-ubyte.gz" --out "$OUT/serve-index" --force | tail -n 1
  "$PY" -c "
import gzip,sys
from PIL import Image
b=gzip.open(sys.argv[1]).read()[16:16+784]
Image.frombytes('L',(28,28),b).save(sys.argv[2])" "$FM/t10k-images-idx3-ubyte.gz" "$OUT/query.png"
  for mode in "--max-batch 1" "--batch-wait-ms 0" "--batch-wait-ms 2" "--batch-wait-ms 5"; do
    : > "$OUT/serve.out"  # emptied before the server starts: no stale address
    # shellcheck disable=SC2086
    "$B" --device "$DEV" serve --index "$OUT/serve-index" --addr 127.0.0.1:0 $mode > "$OUT/serve.out" 2> "$OUT/serve.err" &
    SP=$!
    for _ in $(seq 600); do ADDR=$(sed -n 's/^listening on //p' "$OUT/serve.out"); [[ -n $ADDR ]] && break; sleep 0.1; done
    [[ -n $ADDR ]] || { cat "$OUT/serve.err"; kill $SP; exit 1; }
    r=$("$PY" benches/peers/load.py --url "http://$ADDR/search/image?k=10" --body "$OUT/query.png" --connections 32 --seconds "${SERVE_SECONDS:-10}")
    b=$("$PY" -c 'import json,sys,urllib.request; b=json.load(urllib.request.urlopen(sys.argv[1])).get("image_batches"); print("-" if not b else "mean batch %.1f, largest %d" % (b["mean_size"], b["largest"]))' "http://$ADDR/stats" || echo "?")
    echo "  $mode: $r $b"
    kill -TERM $SP; wait $SP 2>/dev/null; ADDR=
  done
fi
step done
