#!/usr/bin/env bash
# The Python virtualenv that provides libtorch for tch/torch-sys (numpy:
# tests check that numpy opens what likeness writes). Keyed by the torch
# version (scripts/venv.sh), so fresh clones and CI reruns reuse it.
# Prints the venv path on stdout.
set -euo pipefail
TORCH_VERSION="${TORCH_VERSION:-2.11.0}"
PINS="torch==$TORCH_VERSION numpy"
VENV="${LIKENESS_CACHE:-$HOME/.cache/likeness}/torch-$TORCH_VERSION"
# Venvs made before venv.sh marked completion with an empty file; theirs are
# these pins, so keep them (a rebuild is 4.6 GB).
if [ -x "$VENV/bin/python" ] && [ -f "$VENV/.complete" ] && [ ! -s "$VENV/.complete" ]; then
  echo "$PINS" > "$VENV/.complete"
fi
exec "$(dirname "$0")/venv.sh" "torch-$TORCH_VERSION" "$PINS" "~1 min, ~4.6 GB" \
  "import torch; assert torch.__version__.startswith('$TORCH_VERSION'), torch.__version__"
