#!/usr/bin/env bash
# `make demo`: the main job on data that ships with Debian packages.
#
# 1. Fashion-MNIST: `likeness train` with no flags (its defaults are the
#    sweep's recipe; it holds out 10% of the train split, validates on them
#    and stops by itself), index the 10,000 test images, evaluate them
#    leave-one-out, draw 8 queries.
# 2. Faces: the dlib "johns" crops (5 people x 11): train with the defaults
#    on 8 per person (aligned face chips: they fine-tune dlib's face
#    descriptor; `make bench-faces` measures them against dlib's own), index
#    the other 3, evaluate; then a catalogue of the facial regions `likeness
#    regions` finds in all 55 photos (eyes, under-eyes, cheeks, brows, left
#    and right; nose; mouth), indexed with EfficientNet-Lite0 fine-tuned on
#    the same faces, and a region query ("find eyes like this one").
# 3. Scores: a model trained with --score-bins on four people's SYNTHETIC
#    graded regions (make data) predicts the fifth's; left/right asymmetry.
# 4. runs/demo/REPORT.md with the numbers, montages and training curves.
#
# Re-running replaces the previous results. Knobs (environment):
# DEMO_OUT (runs/demo), SEED (0), SCORE_BUDGET (150 s).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/fashion-recipe.sh

LIKENESS_CACHE=${LIKENESS_CACHE:-$HOME/.cache/likeness}
BIN_DIR=${LIKENESS_BIN_DIR:-$(scripts/target-dir.sh)/release}  # where cargo put the binaries
BIN=${LIKENESS_BIN:-$BIN_DIR/likeness}
PYTHON=${LIKENESS_PYTHON:-$LIKENESS_CACHE/torch-2.11.0/bin/python}
[[ -x $PYTHON ]] || PYTHON=python3  # the report needs only the standard library
OUT=${DEMO_OUT:-runs/demo}
FM=$LIKENESS_CACHE/data/fashion-mnist
JOHNS=$LIKENESS_CACHE/data/johns
SEED=${SEED:-0}

[[ -x $BIN ]] || { echo "$BIN missing: run \`make build\` first" >&2; exit 2; }
[[ -f $FM/t10k-images-idx3-ubyte.gz && -d $JOHNS ]] || { echo "data missing: run \`make data\` first" >&2; exit 2; }

start=$(date +%s)
mkdir -p "$OUT"
rm -rf "$OUT/fashion" "$OUT/faces" "$OUT/scores" "$OUT/REPORT.md"
mkdir -p "$OUT/fashion" "$OUT/faces"
step() { echo; echo "== $* ($(( $(date +%s) - start )) s)"; }

step "machine"
"$BIN" doctor | tee "$OUT/doctor.txt"

# ---------------------------------------------------------------- Fashion-MNIST
F=$OUT/fashion
step "Fashion-MNIST: train with the defaults"
"$BIN" train --data "$FM/train-images-idx3-ubyte.gz" --out "$F/model" --seed "$SEED" --force
step "Fashion-MNIST: index the 10,000 test images"
"$BIN" index --model "$F/model" --data "$FM/t10k-images-idx3-ubyte.gz" --out "$F/index"
step "Fashion-MNIST: evaluate (leave-one-out, cosine)"
"$BIN" eval --index "$F/index" --leave-one-out --out "$F/eval"
step "Fashion-MNIST: 8 queries"
"$BIN" query --index "$F/index" --id 0,1,2,3,4,5,6,7 -k 8 --montage "$F/montage.png" > "$F/queries.txt"

# ---------------------------------------------------------------------- Faces
D=$OUT/faces
step "faces: seeded split of $JOHNS (8 per person to train, 3 to query)"
scripts/johns-split.sh "$JOHNS" "$D" "$SEED"
echo "train: $(( $(wc -l < "$D/train.csv") - 1 )) crops, gallery: $(( $(wc -l < "$D/gallery.csv") - 1 )) crops"
step "faces: train with the defaults"
"$BIN" train --data "$D/train.csv" --val-data "$D/gallery.csv" --out "$D/model" --seed "$SEED" --force
step "faces: index the held-out crops, evaluate"
"$BIN" index --model "$D/model" --data "$D/gallery.csv" --out "$D/index"
"$BIN" eval --index "$D/index" --leave-one-out --ks 1,2 --out "$D/eval"
"$BIN" query --index "$D/index" --id 0,3,6,9,12 -k 4 --montage "$D/montage.png" > "$D/queries.txt"

step "faces: region catalogue (likeness regions: a face detector and landmarks place the boxes)"
"$BIN" regions --data "$JOHNS" --out "$D/regions.csv" --overlay "$D/regions-overlay" --force
# A face descriptor tells people apart, not eyes from cheeks: the catalogue
# indexed with the faces' dlib-resnet model gives Recall@1 0.82, with
# ImageNet's EfficientNet-Lite0 fine-tuned on the same faces 0.92.
"$BIN" train --data "$D/train.csv" --val-data "$D/gallery.csv" --out "$D/regions-model" \
    --arch efficientnet-lite0 --seed "$SEED" --force
"$BIN" index --model "$D/regions-model" --data "$D/regions.csv" --out "$D/regions-index"
"$BIN" eval --index "$D/regions-index" --leave-one-out --out "$D/regions-eval"
query_face=$(tail -n 1 "$D/gallery.csv" | cut -d, -f1)
# The query face's own left eye, as `regions` placed it (or the first left
# eye found, should the detector have missed that photo).
read -r query_image query_box < <(awk -F, -v p="$query_face" '
    NR > 1 && $2 == "eye" && $8 == "left" {
        if ($1 == p) { print $1, $3 "," $4 "," $5 "," $6; found = 1; exit }
        if (!first) first = $1 " " $3 "," $4 "," $5 "," $6
    }
    END { if (!found) print first }' "$D/regions.csv")
step "faces: find eyes like the left eye in $query_image"
"$BIN" query --index "$D/regions-index" --image "$query_image" --region "$query_box" --label eye \
    -k 8 --montage "$D/region-montage.png" | tee "$D/region-query.txt"
echo "$query_image $query_box" > "$D/region-query-box.txt"

# ------------------------------------------------ Scores (SYNTHETIC, issue 14)
S=$OUT/scores
SW=$LIKENESS_CACHE/data/swell-v2
if [[ -f $SW/.complete ]]; then
    step "scores: train on four people's graded regions (SYNTHETIC swells), --score-bins 5"
    # The defaults (EfficientNet-Lite0 fine-tuned; about 100 s on an idle
    # 2-core machine, docs/scores.md), held to the demo's budget.
    "$BIN" train --data "$SW/train.csv" --out "$S/model" --score-bins 5 \
        --time-budget "${SCORE_BUDGET:-150}" --seed "$SEED" --force
    step "scores: index the fifth person's regions, predict their scores, left vs right"
    "$BIN" index --model "$S/model" --data "$SW/test.csv" --out "$S/index"
    "$BIN" eval --index "$S/index" --leave-one-out --score --out "$S/eval" | tee "$S/eval.txt"
    "$BIN" asymmetry --model "$S/model" --data "$SW/test.csv" --index "$S/index" \
        --out "$S/asymmetry" | tee "$S/asymmetry.txt"
else
    echo "no synthetic swell set in $SW: run \`make data\`" >&2
fi

# ---------------------------------------------------------------------- report
step "report"
"$PYTHON" scripts/demo_report.py --out "$OUT" --seconds "$(( $(date +%s) - start ))" --query-face "$query_face"
echo
echo "demo finished in $(( $(date +%s) - start )) s: $OUT/REPORT.md"
echo
echo "browse the face regions and query them by a box drawn on a face, in a browser:"
echo "  $BIN serve --index $D/regions-index --eval $D/regions-eval"
echo "  then open http://127.0.0.1:7878/"
if [[ -f $S/index/manifest.json ]]; then
    echo "or grade a photo's cheeks and under-eyes, left against right (drop a photo on 'Query by image'):"
    echo "  $BIN serve --index $S/index --eval $S/eval"
fi
