#!/usr/bin/env bash
# The virtualenv of the Python package `likeness` (python/): maturin builds
# the wheel, numpy and pytest run python/tests (pandas too: what a
# notebook passes, such as a column read from items.csv), and `make
# python` installs the wheel here. Keyed by the maturin version (scripts/venv.sh). Prints
# the venv path on stdout.
set -euo pipefail
MATURIN_VERSION="${MATURIN_VERSION:-1.16.0}"
exec "$(dirname "$0")/venv.sh" "py-$MATURIN_VERSION" \
  "maturin==$MATURIN_VERSION numpy==2.4.6 pytest==9.2.0 pandas==3.1.1" "~40 s"
