# scripts/digits-data.sh: a scikit-learn wheel cut short in the downloads
# cache is fetched again, not opened at every run ("BadZipFile").
source "$(dirname "$0")/lib.sh"
C="$T/cache"; mkdir -p "$C/downloads"
W="$C/downloads/scikit_learn-1.9.1-cp311-cp311-manylinux_2_17_x86_64.whl"
head -c 5000 /dev/urandom > "$W"
# The Python: zipfile checks are real, pip (the network) fails.
stub "$T/bin" python '[ "$1 $2" = "-m zipfile" ] && exec python3 "$@"
echo "stub pip: $*" >&2; exit 1'
run env LIKENESS_CACHE="$C" LIKENESS_PYTHON="$T/bin/python" "$ROOT/scripts/digits-data.sh"
grep -q 'is damaged .*fetching it again' "$T/err" || fail "damaged wheel reused (exit $rc): $(cat "$T/err")"
grep -q 'stub pip: -m pip download scikit-learn==1.9.1' "$T/err" || fail "not fetched again: $(cat "$T/err")"
[[ ! -e $W ]] || fail "damaged wheel left in the cache"
