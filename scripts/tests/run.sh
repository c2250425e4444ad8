#!/usr/bin/env bash
# The setup scripts' own tests: each scripts/tests/test-*.sh runs a script
# against a temporary LIKENESS_CACHE (never the real one), offline (a stub
# stands in for pip or apt-get where a repair would download), in seconds.
# `make test` runs them; `scripts/tests/run.sh [test-x.sh ...]` runs some.
set -uo pipefail
cd "$(dirname "$0")"
failed=0
tests=("$@"); [[ $# -gt 0 ]] || tests=(test-*.sh)
for t in "${tests[@]}"; do
    if out=$(bash "$t" 2>&1); then
        echo "ok   $t"
    else
        echo "FAIL $t"; printf '%s\n' "$out" | sed 's/^/     /'; failed=1
    fi
done
exit $failed
