#!/usr/bin/env bash
# Create (once) the Python virtualenv that provides libtorch for tch/torch-sys.
# The venv lives in a cache outside the clone, keyed by the torch version, so
# fresh clones and CI reruns reuse it. Prints the venv path on stdout.
set -euo pipefail
TORCH_VERSION="${TORCH_VERSION:-2.11.0}"
CACHE="${LIKENESS_CACHE:-$HOME/.cache/likeness}"
VENV="$CACHE/torch-$TORCH_VERSION"
PY="${PYTHON:-python3}"

if [ -x "$VENV/bin/python" ] && [ -f "$VENV/.complete" ]; then
  echo "$VENV"
  exit 0
fi

echo "likeness: creating $VENV with torch==$TORCH_VERSION (one time, ~1 min, ~4.6 GB)" >&2
mkdir -p "$CACHE"
# A venv is not relocatable, so build it in place; the marker file written
# last says it is complete (an interrupted install is redone).
rm -rf "$VENV"
"$PY" -m venv "$VENV" >&2
"$VENV/bin/python" -m pip install --quiet --upgrade pip >&2
# numpy: tests check that numpy opens what likeness writes.
"$VENV/bin/python" -m pip install --quiet "torch==$TORCH_VERSION" numpy >&2
"$VENV/bin/python" -c "import torch; assert torch.__version__.startswith('$TORCH_VERSION'), torch.__version__" >&2
touch "$VENV/.complete"
echo "$VENV"
