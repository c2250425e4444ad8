#!/usr/bin/env bash
# `make bench-regions`: faces/s of `likeness regions` (SeetaFace detector +
# dlib's 5-point model in Rust, regions placed) against dlib's own HOG
# detector (upsampled once, so that it finds faces down to about 40 px, as
# likeness's default --min-face 40 does) + its 68-point model (PyPI dlib-bin,
# benches/peers/dlib_regions.py), on the same photos:
#
#   portraits  the 55 johns crops enlarged to 300 px on 512x512 canvases
#              (benches/peers/portraits.py): one face a photo
#   groups     dlib's examples/faces, 12 photos of 360–565 px with 0–14
#              faces each, REPEAT times
#
# Both count from the first photo decoded (models loaded, as each prints its
# own faces/s). likeness runs on 1 thread (as dlib does) and on all cores.
# Runs are interleaved, RUNS rounds; the best of each is printed.
# LIKENESS_BIN overrides the binary.
set -euo pipefail
cd "$(dirname "$0")/.."
LIKENESS_CACHE=${LIKENESS_CACHE:-$HOME/.cache/likeness}
BIN_DIR=${LIKENESS_BIN_DIR:-$(scripts/target-dir.sh)/release}
BIN=${LIKENESS_BIN:-$BIN_DIR/likeness}
GROUPS_DIR=$LIKENESS_CACHE/data/dlib-faces
JOHNS=$LIKENESS_CACHE/data/johns
MODELS=$LIKENESS_CACHE/models/faces
REPEAT=${REPEAT:-4}
RUNS=${RUNS:-3}
[[ -x $BIN ]] || { echo "$BIN missing: run \`make build\` first" >&2; exit 2; }
[[ -f $GROUPS_DIR/.complete && -f $MODELS/SHA256SUMS ]] || { echo "run \`make data\` first" >&2; exit 2; }
VENV=$(scripts/dlib-venv.sh)

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
"$VENV/bin/python" benches/peers/portraits.py "$JOHNS" "$WORK/portraits"
mkdir -p "$WORK/groups"
for r in $(seq "$REPEAT"); do
    for f in "$GROUPS_DIR"/*.jpg; do ln -s "$f" "$WORK/groups/$r-$(basename "$f")"; done
done

ours() { # set threads -> "faces/s faces"
    "$BIN" --threads "$2" regions --data "$WORK/$1" --out "$WORK/r.csv" --force 2>/dev/null \
        | sed -nE 's/.* ([0-9]+) faces in ([0-9]+) photos \(([0-9.]+) faces\/s\)/\3 \1/p'
}
peer() { # set -> "faces/s faces"
    "$VENV/bin/python" benches/peers/dlib_regions.py "$MODELS" "$WORK/$1"/*.jpg \
        | "$VENV/bin/python" -c 'import json,sys; d=json.load(sys.stdin); print(d["faces_per_s"], d["faces"])'
}
declare -A rate faces
for run in $(seq "$RUNS"); do
    for set in portraits groups; do
        for who in ours1 oursN peer; do
            case $who in
                ours1) out=$(ours "$set" 1) ;;
                oursN) out=$(ours "$set" "$(nproc)") ;;
                peer) out=$(peer "$set") ;;
            esac
            read -r r n <<< "$out"
            rate[$set.$who]="${rate[$set.$who]:-} $r"
            faces[$set.$who]=$n
        done
    done
done
best() { tr ' ' '\n' <<< "${rate[$1]}" | grep . | sort -g -r | head -n1; }
echo
echo "bench-regions: best of $RUNS interleaved runs, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-11s %-44s %6s %8s\n' photos "" faces "faces/s"
for set in portraits groups; do
    case $set in
        portraits) what="55 of 512x512, one face each" ;;
        groups) what="$(( 12 * REPEAT )) of 360–565 px, examples/faces" ;;
    esac
    echo "$set: $what"
    printf '%-11s %-44s %6s %8s\n' "" "likeness regions, 1 thread" "${faces[$set.ours1]}" "$(best "$set.ours1")"
    printf '%-11s %-44s %6s %8s\n' "" "likeness regions, $(nproc) threads" "${faces[$set.oursN]}" "$(best "$set.oursN")"
    printf '%-11s %-44s %6s %8s\n' "" "dlib 20.0.1 HOG (upsample 1) + 68 points" "${faces[$set.peer]}" "$(best "$set.peer")"
done
