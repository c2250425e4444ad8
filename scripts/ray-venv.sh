#!/usr/bin/env bash
# The virtualenv that runs `likeness.ray` and its tests (python/tests_ray):
# Ray with Serve from PyPI, numpy, pytest. Keyed by the Ray version
# (scripts/venv.sh). `make pytest-ray` installs the likeness wheel into it
# (the package's `ray` extra pulls the same `ray[serve]`). Prints the venv
# path on stdout.
set -euo pipefail
RAY_VERSION="${RAY_VERSION:-2.60.0}"
# pytest-timeout bounds each Ray test's run time (a hung cluster fails the
# test instead of holding CI until its 90-minute limit).
exec "$(dirname "$0")/venv.sh" "ray-$RAY_VERSION" \
  "ray[serve]==$RAY_VERSION numpy==2.4.6 pytest==9.2.0 pytest-timeout==2.4.0" "~30 s, 500 MB"
