#!/usr/bin/env bash
# Create (once) the virtualenv of the Python package `likeness` (python/):
# maturin builds the wheel, numpy and pytest run python/tests, and `make
# python` installs the wheel here. It lives in the cache outside the clone,
# keyed by the maturin version; a change of the pins below rebuilds it.
# Prints the venv path on stdout.
set -euo pipefail
MATURIN_VERSION="${MATURIN_VERSION:-1.16.0}"
CACHE="${LIKENESS_CACHE:-$HOME/.cache/likeness}"
VENV="$CACHE/py-$MATURIN_VERSION"
PY="${PYTHON:-python3}"
PINS="maturin==$MATURIN_VERSION numpy==2.4.6 pytest==9.2.0"

if [ -x "$VENV/bin/python" ] && [ "$(cat "$VENV/.complete" 2>/dev/null)" = "$PINS" ]; then
  echo "$VENV"
  exit 0
fi

echo "likeness: creating $VENV with $PINS (one time, ~30 s)" >&2
mkdir -p "$CACHE"
# A venv is not relocatable, so build it in place; the marker written last
# (holding the pins) says it is complete.
rm -rf "$VENV"
"$PY" -m venv "$VENV" >&2
"$VENV/bin/python" -m pip install --quiet --upgrade pip >&2
# shellcheck disable=SC2086
"$VENV/bin/python" -m pip install --quiet $PINS >&2
echo "$PINS" > "$VENV/.complete"
echo "$VENV"
