#!/usr/bin/env bash
# Create (once) a virtualenv in the cache outside the clone and print its
# path on stdout: the one home of what scripts/torch-venv.sh, py-venv.sh,
# ray-venv.sh and dlib-venv.sh share.
#   scripts/venv.sh NAME PINS NOTE [CHECK]
# NAME: the folder under $LIKENESS_CACHE, keyed by the caller's version;
# PINS: what pip installs; NOTE: the one-time cost, for the message; CHECK:
# Python run in the new venv before it counts as complete.
# A venv is not relocatable, so it is built in place; the marker written
# last holds the pins, so an interrupted install or a change of the pins
# rebuilds it.
set -euo pipefail
NAME="$1" PINS="$2" NOTE="$3" CHECK="${4:-}"
CACHE="${LIKENESS_CACHE:-$HOME/.cache/likeness}"
VENV="$CACHE/$NAME"
PY="${PYTHON:-python3}"

complete() { [ -x "$VENV/bin/python" ] && [ "$(cat "$VENV/.complete" 2>/dev/null)" = "$PINS" ]; }
if complete; then
  echo "$VENV"
  exit 0
fi

# One creator at a time: a second `make` beside the first (two terminals,
# two clones sharing the cache) would otherwise delete the venv the first
# is installing into. Whoever waited finds it complete and uses it.
log() { echo "likeness: $*" >&2; }
mkdir -p "$CACHE"
# shellcheck source=scripts/lock.sh
source "$(dirname "$0")/lock.sh"
one_run_at_a_time "$CACHE/.$NAME.lock" "$NAME"
if complete; then
  echo "$VENV"
  exit 0
fi

if [ ! -e "$VENV" ]; then why=""
elif [ ! -x "$VENV/bin/python" ]; then why=" (its python is missing: rebuilding)"
else why=" (unfinished, or made with other pins: rebuilding)"; fi
echo "likeness: creating $VENV with $PINS (one time, $NOTE)$why" >&2
rm -rf "$VENV"
"$PY" -m venv "$VENV" >&2
"$VENV/bin/python" -m pip install --quiet --upgrade pip >&2
# shellcheck disable=SC2086
"$VENV/bin/python" -m pip install --quiet $PINS >&2
if [ -n "$CHECK" ]; then "$VENV/bin/python" -c "$CHECK" >&2; fi
echo "$PINS" > "$VENV/.complete"
echo "$VENV"
