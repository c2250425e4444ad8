# Sourced by scripts/tests/test-*.sh.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# A scratch folder (a space in its name, as users' paths may have), removed at exit.
T=$(mktemp -d "${TMPDIR:-/tmp}/likeness scripts.XXXXXX")
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
# A stub program NAME in folder DIR running the sh code BODY. Written as a
# new file (never through an existing link, which could be a system tool).
stub() { # dir name body
    mkdir -p "$1"; rm -f "$1/$2"
    printf '#!/bin/sh\n%s\n' "$3" > "$1/$2"; chmod +x "$1/$2"
}
# Run a command, keeping its exit status in $rc, stdout in $T/out, stderr in $T/err.
run() { rc=0; "$@" > "$T/out" 2> "$T/err" || rc=$?; }
