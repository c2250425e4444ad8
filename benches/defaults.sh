#!/usr/bin/env bash
# `make bench-defaults`: `likeness train --data DIR --out M` with no flags,
# then `index` + `eval --leave-one-out` on held-out images, on three data sets
# (issue 12's targets), each row with the wall time of training:
#   1. Fashion-MNIST train split -> test split: Recall@1 >= 0.90, MAP@R >= 0.78,
#      training within 5 minutes scaled to the machine state of the PyTorch
#      reference (as `make bench-budget`: probes before and after).
#   2. scikit-learn's bundled 8x8 digits (scripts/digits-data.sh), train ->
#      test folder: defaults vs the best of a few flag sets given up to 10x
#      the defaults' training time; target: within 0.02 Recall@1.
#   3. the demo's johns split: defaults (convnet), `--arch resnet18` only, and
#      the demo's hand-picked flags; target: Recall@1 >= the demo's flags';
#      then each model on the demo's facial-region catalogue; and a model
#      trained on the catalogue itself (the regions of the 40 training crops,
#      evaluated on those of the 15 held out): defaults vs the demo's flags.
#   4. ROWS=placed: the regions `likeness regions` places on the same split,
#      trained on with no flags (issue 25: Recall@1 >= 0.90).
# ROWS (default "fashion digits johns") picks rows.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=${LIKENESS_CACHE:-$HOME/.cache/likeness}
PY=${LIKENESS_PYTHON:-$CACHE/torch-2.11.0/bin/python}
BIN_DIR=${LIKENESS_BIN_DIR:-$(scripts/target-dir.sh)/release}  # where cargo put the binaries
B=${LIKENESS_BIN:-$BIN_DIR/likeness}
F=$CACHE/data/fashion-mnist
source scripts/fashion-recipe.sh
ROWS=${ROWS:-fashion digits johns}
OUT=${BENCH_OUT:-$(mktemp -d)}
mkdir -p "$OUT"
[[ -n ${BENCH_OUT:-} ]] || trap 'rm -rf "$OUT"' EXIT
REFERENCE=1464

probe() {
  "$PY" benches/peers/train_pytorch.py --images "$F/train-images-idx3-ubyte.gz" \
    --labels "$F/train-labels-idx1-ubyte.gz" --steps 100 --threads 2 | grep -oP 'images/s \K[0-9.]+'
}

# row NAME TRAIN_DATA GALLERY [train flags...]: train, index GALLERY, evaluate;
# prints one line and appends "name r1 map seconds" to $OUT/rows.
row() {
  local name=$1 data=$2 gallery=$3; shift 3
  local m=$OUT/$name
  rm -rf "$m"
  "$B" train --data "$data" --out "$m/model" "$@" > "$m.train.log" 2>&1 \
    || { cat "$m.train.log" >&2; exit 1; }
  "$B" index --model "$m/model" --data "$gallery" --out "$m/index" > /dev/null 2>&1
  "$B" eval --index "$m/index" --leave-one-out --ks 1,2 --out "$m/eval" > /dev/null 2>&1
  "$PY" - "$m" "$name" "$*" <<'PYEOF' | tee -a "$OUT/rows"
import json, sys
m, name, flags = sys.argv[1:]
card = json.load(open(f"{m}/model/model.json"))
ev = json.load(open(f"{m}/eval/eval.json"))
run = card.get("run") or {}
stop = f", {run['stopped']} at step {run['steps']}" if run else ""
print(f"{name} {ev['recall@1']:.4f} {ev['map@r']:.4f} {card['total_seconds']:.1f} "
      f"# [{flags or 'defaults'}] {ev['queries']} queries; training {card['total_seconds']:.1f} s wall "
      f"({card['train_seconds']:.1f} s of steps{stop})")
PYEOF
}

: > "$OUT/rows"
echo "== PyTorch reference probe (fp32, batch 160, 2 threads)"
P1=$(probe); echo "$P1 images/s"

if [[ $ROWS == *fashion* ]]; then
  echo "== Fashion-MNIST: likeness train --data train-images --out M (defaults), index + eval the test split"
  row fashion "$F/train-images-idx3-ubyte.gz" "$F/t10k-images-idx3-ubyte.gz"
fi

if [[ $ROWS == *digits* ]]; then
  D=$(scripts/digits-data.sh)
  echo "== sklearn digits ($D): defaults, then flag sets within 10x their time"
  row digits "$D/train" "$D/test"
  row digits-steps "$D/train" "$D/test" --max-steps 3000 --patience 1000
  row digits-32px "$D/train" "$D/test" --input-size 32 --max-steps 1500
  row digits-lr1e-3 "$D/train" "$D/test" --lr 1e-3 --max-steps 1500
  row digits-tuples8 "$D/train" "$D/test" --tuples 8 --max-steps 1000
fi

if [[ $ROWS == *johns* ]]; then
  J=$OUT/johns-split
  scripts/johns-split.sh "$CACHE/data/johns" "$J" 0
  echo "== johns crops (the demo's split: 40 to train, 15 held out)"
  row johns "$J/train.csv" "$J/gallery.csv" --val-data "$J/gallery.csv"
  row johns-resnet18 "$J/train.csv" "$J/gallery.csv" --val-data "$J/gallery.csv" --arch resnet18
  row johns-demo-flags "$J/train.csv" "$J/gallery.csv" --val-data "$J/gallery.csv" --arch resnet18 \
    --input-size 112 --dim 64 --epochs 12 --seed 0 "${PLAIN_RECIPE[@]}" --precision fp32
  # The demo's region catalogue (six fixed boxes on every crop) with each
  # model; regions.csv has all 55 crops, rtrain/rheld those of each split.
  boxes=("left_eye 22 32 40 28" "right_eye 88 32 40 28" "nose 55 50 40 40" "mouth 45 88 60 32"
         "left_cheek 15 62 36 36" "right_cheek 99 62 36 36")
  regions_of() {
    echo "path,label,x,y,w,h"
    while read -r f; do
      for r in "${boxes[@]}"; do
        read -r name x y w h <<< "$r"; echo "$f,$name,$x,$y,$w,$h"
      done
    done
  }
  printf "%s\n" "$CACHE"/data/johns/*/*.jpg | regions_of > "$J/regions.csv"
  tail -n +2 "$J/train.csv" | cut -d, -f1 | regions_of > "$J/rtrain.csv"
  tail -n +2 "$J/gallery.csv" | cut -d, -f1 | regions_of > "$J/rheld.csv"
  echo "== the region catalogue as training data (240 regions to train, 90 held out)"
  row regions "$J/rtrain.csv" "$J/rheld.csv" --val-data "$J/rheld.csv"
  row regions-demo-flags "$J/rtrain.csv" "$J/rheld.csv" --val-data "$J/rheld.csv" --arch resnet18 \
    --input-size 112 --dim 64 --epochs 12 --seed 0 "${PLAIN_RECIPE[@]}" --precision fp32
  echo "== each face model on the catalogue of all 55 crops (330 regions)"
  for k in johns johns-resnet18 johns-demo-flags; do
    "$B" index --model "$OUT/$k/model" --data "$J/regions.csv" --out "$OUT/$k/regions" > /dev/null 2>&1
    "$B" eval --index "$OUT/$k/regions" --leave-one-out --out "$OUT/$k/regions-eval" > /dev/null 2>&1
    "$PY" -c "import json,sys; e=json.load(open(sys.argv[1])); print(f\"{sys.argv[2]} regions: Recall@1 {e['recall@1']:.4f}, MAP@R {e['map@r']:.4f} ({e['queries']} queries)\")" \
      "$OUT/$k/regions-eval/eval.json" "$k"
  done
fi

if [[ $ROWS == *placed* ]]; then
  # The regions `likeness regions` places (a face detector and landmarks,
  # as `make demo` makes its catalogue) on the 40 training crops train a
  # model with no flags at all (it holds out its own tenth); those on the 15
  # held-out crops are indexed and evaluated by label (eye, under_eye, ...).
  J=$OUT/johns-split
  scripts/johns-split.sh "$CACHE/data/johns" "$J" 0
  "$B" regions --data "$CACHE/data/johns" --out "$J/placed.csv" --force > "$J/placed.log" 2>&1 \
    || { cat "$J/placed.log" >&2; exit 1; }
  "$PY" - "$J" <<'PYEOF'
import csv, sys
j = sys.argv[1]
def paths(name):
    with open(f"{j}/{name}") as f:
        return {r["path"] for r in csv.DictReader(f)}
train, held = paths("train.csv"), paths("gallery.csv")
with open(f"{j}/placed.csv") as f:
    rows = list(csv.reader(f))
for name, keep in (("ptrain.csv", train), ("pheld.csv", held)):
    with open(f"{j}/{name}", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(rows[0])
        w.writerows(r for r in rows[1:] if r[0] in keep)
PYEOF
  echo "== regions placed by \`likeness regions\`: $(($(wc -l < "$J/ptrain.csv") - 1)) to train (defaults, no flags), $(($(wc -l < "$J/pheld.csv") - 1)) held out"
  row placed "$J/ptrain.csv" "$J/pheld.csv"
fi

echo "== PyTorch reference probe again"
P2=$(probe); echo "$P2 images/s"
"$PY" - "$OUT/rows" "$P1" "$P2" "$REFERENCE" <<'PYEOF'
import sys
rows = {}
for line in open(sys.argv[1]):
    name, r1, mapr, secs = line.split()[:4]
    rows[name] = (float(r1), float(mapr), float(secs))
p1, p2, ref = map(float, sys.argv[2:])
scale = (p1 + p2) / 2 / ref
print(f"\nmachine at {scale:.2f}x the reference's speed (probes {p1:.0f} and {p2:.0f} images/s vs {ref:.0f})")
if "fashion" in rows:
    r1, m, s = rows["fashion"]
    ok = r1 >= 0.90 and m >= 0.78 and s * scale <= 300
    print(f"fashion: Recall@1 {r1:.4f} (>= 0.90), MAP@R {m:.4f} (>= 0.78), training {s:.1f} s wall, "
          f"{s * scale:.1f} s scaled (<= 300): {'met' if ok else 'NOT met'}")
if "digits" in rows:
    r1, m, s = rows["digits"]
    others = {k: v for k, v in rows.items() if k.startswith("digits-") and v[2] <= 10 * s}
    best = max(others.items(), key=lambda kv: kv[1][0], default=("digits", rows["digits"]))
    gap = best[1][0] - r1
    print(f"digits: defaults Recall@1 {r1:.4f} in {s:.1f} s; best within 10x the time: {best[0]} "
          f"{best[1][0]:.4f} in {best[1][2]:.1f} s; gap {gap:+.4f} (<= 0.02): {'met' if gap <= 0.02 else 'NOT met'}")
    slow = [k for k, v in rows.items() if k.startswith("digits-") and v[2] > 10 * s]
    if slow:
        print(f"  (over 10x the time, not compared: {', '.join(slow)})")
if "regions" in rows and "regions-demo-flags" in rows:
    r1, m, s = rows["regions"]
    d1, dm, ds = rows["regions-demo-flags"]
    print(f"regions: defaults Recall@1 {r1:.4f} MAP@R {m:.4f} in {s:.1f} s; the demo's flags "
          f"{d1:.4f} / {dm:.4f} in {ds:.1f} s: {'met' if r1 >= d1 else 'NOT met'}")
if "placed" in rows:
    r1, m, s = rows["placed"]
    print(f"placed regions: defaults Recall@1 {r1:.4f} (>= 0.90), MAP@R {m:.4f}, training {s:.1f} s: "
          f"{'met' if r1 >= 0.90 else 'NOT met'}")
if "johns" in rows:
    # The target is the demo's hand-picked flags on the same split (0.6667).
    goal = rows.get("johns-demo-flags", (2 / 3,))[0]
    for k in ("johns", "johns-resnet18"):
        if k in rows:
            r1, m, s = rows[k]
            print(f"{k}: Recall@1 {r1:.4f} (>= the demo's flags' {goal:.4f}), MAP@R {m:.4f}, "
                  f"training {s:.1f} s: {'met' if r1 >= goal else 'NOT met'}")
PYEOF
