#!/usr/bin/env bash
# A small public image folder for `make bench-defaults`: scikit-learn's
# bundled handwritten digits (`sklearn.datasets.load_digits`: 1,797 8x8
# greyscale images of 10 digits, UCI ML hand-written digits, shipped inside
# the scikit-learn wheel as sklearn/datasets/data/digits.csv.gz). The wheel
# comes from PyPI through pip (no install, no other download); a seeded 80/20
# split per image is written as PNG folders DIR/{train,test}/<digit>/<n>.png.
# Usage: scripts/digits-data.sh  -> prints DIR
set -euo pipefail
CACHE=${LIKENESS_CACHE:-$HOME/.cache/likeness}
PY=${LIKENESS_PYTHON:-$CACHE/torch-2.11.0/bin/python}  # numpy + Pillow
VERSION=1.9.1
DIR=$CACHE/data/digits-sklearn-$VERSION
if [[ ! -f $DIR/.complete ]]; then
    mkdir -p "$CACHE/downloads"
    wheel=$(ls "$CACHE"/downloads/scikit_learn-$VERSION-*.whl 2>/dev/null | head -n 1 || true)
    # A wheel cut short (an interrupted download) is fetched again, not reused.
    if [[ -n $wheel ]] && ! "$PY" -m zipfile -t "$wheel" > /dev/null 2>&1; then
        echo "likeness: $wheel is damaged (an interrupted download?); fetching it again" >&2
        rm -f "$wheel"; wheel=
    fi
    if [[ -z $wheel ]]; then
        "$PY" -m pip download "scikit-learn==$VERSION" --no-deps --only-binary :all: \
            -d "$CACHE/downloads" >&2
        wheel=$(ls "$CACHE"/downloads/scikit_learn-$VERSION-*.whl | head -n 1)
    fi
    rm -rf "$DIR"
    "$PY" - "$wheel" "$DIR" <<'PYEOF'
import gzip, io, os, sys, zipfile
import numpy as np
from PIL import Image
wheel, out = sys.argv[1:]
raw = zipfile.ZipFile(wheel).read("sklearn/datasets/data/digits.csv.gz")
d = np.loadtxt(io.BytesIO(gzip.decompress(raw)), delimiter=",")
x, y = d[:, :64].reshape(-1, 8, 8), d[:, 64].astype(int)
order = np.random.default_rng(0).permutation(len(y))
for k, i in enumerate(order):
    part = "test" if k < len(y) // 5 else "train"
    p = f"{out}/{part}/{y[i]}"
    os.makedirs(p, exist_ok=True)
    Image.fromarray((x[i] * 255 / 16).round().astype(np.uint8), "L").save(f"{p}/{i:04d}.png")
PYEOF
    touch "$DIR/.complete"
fi
echo "$DIR"
