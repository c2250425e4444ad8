#!/usr/bin/env bash
# `make bench-regions`: faces/s of `likeness regions` (SeetaFace detector +
# dlib's 5-point model in Rust, regions placed) against dlib's own HOG
# detector + 68-point model (PyPI dlib-bin, benches/peers/dlib_regions.py), on
# the same photos: dlib's examples/faces (9 photos of 360–500 px with 43
# marked faces, a 565x800 portrait, a group and a photo of dogs), each
# repeated REPEAT times so a run lasts seconds. Both count from the first
# photo decoded (models loaded). likeness runs with 1 thread (as dlib does)
# and with all cores. Runs are interleaved, RUNS rounds; the best of each is
# printed. LIKENESS_BIN overrides the binary.
set -euo pipefail
cd "$(dirname "$0")/.."
LIKENESS_CACHE=${LIKENESS_CACHE:-$HOME/.cache/likeness}
BIN_DIR=${LIKENESS_BIN_DIR:-$(scripts/target-dir.sh)/release}
BIN=${LIKENESS_BIN:-$BIN_DIR/likeness}
PHOTOS=$LIKENESS_CACHE/data/dlib-faces
MODELS=$LIKENESS_CACHE/models/faces
REPEAT=${REPEAT:-4}
RUNS=${RUNS:-3}
[[ -x $BIN ]] || { echo "$BIN missing: run \`make build\` first" >&2; exit 2; }
[[ -f $PHOTOS/.complete && -f $MODELS/SHA256SUMS ]] || { echo "run \`make data\` first" >&2; exit 2; }
VENV=$(scripts/dlib-venv.sh)

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/photos"
for r in $(seq "$REPEAT"); do
    for f in "$PHOTOS"/*.jpg; do ln -s "$f" "$WORK/photos/$r-$(basename "$f")"; done
done
mapfile -t list < <(ls "$WORK"/photos/*.jpg)

ours() { # threads -> faces/s
    "$BIN" --threads "$1" regions --data "$WORK/photos" --out "$WORK/r.csv" --force 2>/dev/null \
        | sed -nE 's/.* ([0-9]+) faces in ([0-9]+) photos \(([0-9.]+) faces\/s\)/\3 \1/p'
}
peer() {
    "$VENV/bin/python" benches/peers/dlib_regions.py "$MODELS" "${list[@]}" \
        | "$VENV/bin/python" -c 'import json,sys; d=json.load(sys.stdin); print(d["faces_per_s"], d["faces"])'
}
best() { sort -g -r | head -n1; }
declare -A rate faces
for run in $(seq "$RUNS"); do
    for who in ours1 ours2 peer; do
        case $who in
            ours1) out=$(ours 1) ;;
            ours2) out=$(ours "$(nproc)") ;;
            peer) out=$(peer) ;;
        esac
        read -r r n <<< "$out"
        rate[$who]="${rate[$who]:-} $r"
        faces[$who]=$n
    done
done
row() { printf '%-46s %8s %10s\n' "$1" "${faces[$2]}" "$(tr ' ' '\n' <<< "${rate[$2]}" | grep . | best)"; }
echo
echo "bench-regions: ${#list[@]} photos (dlib examples/faces x $REPEAT), best of $RUNS, $(nproc) cores"
printf '%-46s %8s %10s\n' "" faces "faces/s"
row "likeness regions, 1 thread" ours1
row "likeness regions, $(nproc) threads" ours2
row "dlib 20.0.1 HOG (upsample 1) + 68 points" peer
