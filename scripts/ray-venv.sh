#!/usr/bin/env bash
# Create (once) the virtualenv that runs `likeness.ray` and its tests
# (python/tests/ray): Ray with Serve from PyPI, numpy, pytest. It lives in
# the cache outside the clone, keyed by the Ray version; a change of the
# pins below rebuilds it. `make pytest-ray` installs the likeness wheel into
# it (the package's `ray` extra pulls the same `ray[serve]`).
# Prints the venv path on stdout.
set -euo pipefail
RAY_VERSION="${RAY_VERSION:-2.60.0}"
CACHE="${LIKENESS_CACHE:-$HOME/.cache/likeness}"
VENV="$CACHE/ray-$RAY_VERSION"
PY="${PYTHON:-python3}"
# pytest-timeout bounds each Ray test's run time (a hung cluster fails the
# test instead of holding CI until its 90-minute limit).
PINS="ray[serve]==$RAY_VERSION numpy==2.4.6 pytest==9.2.0 pytest-timeout==2.4.0"

if [ -x "$VENV/bin/python" ] && [ "$(cat "$VENV/.complete" 2>/dev/null)" = "$PINS" ]; then
  echo "$VENV"
  exit 0
fi

echo "likeness: creating $VENV with $PINS (one time, ~30 s, 500 MB)" >&2
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
