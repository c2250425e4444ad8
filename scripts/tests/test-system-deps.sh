# scripts/system-deps.sh when it cannot install: not root and no sudo, or
# apt-get failing (a held lock, no network). It names the packages and says
# what to do, instead of "sudo: command not found" or apt's bare error.
source "$(dirname "$0")/lib.sh"
B="$T/bin"; mkdir -p "$B"
# The tools it looks for, except cc (so build-essential is needed). Links
# to the system's programs, never written through: stubs are new files.
for t in bash env cat python3 dpkg-deb bzip2 pkg-config readelf chromium chromedriver cargo; do
    p=$(command -v "$t" || true); [[ -z $p ]] || ln -s "$p" "$B/$t"
done
# Not root, no sudo.
stub "$B" id 'echo 1000'
run env PATH="$B" "$ROOT/scripts/system-deps.sh"
[[ $rc != 0 ]] || fail "exit 0 without a compiler"
grep -q 'build-essential.*neither root nor has sudo.*apt-get install .*build-essential' "$T/err" \
    || fail "not root, no sudo: $(cat "$T/err")"
# Root, and apt-get fails.
stub "$B" id 'echo 0'
stub "$B" apt-get 'echo "E: Could not get lock /var/lib/dpkg/lock-frontend" >&2; exit 100'
run env PATH="$B" "$ROOT/scripts/system-deps.sh"
[[ $rc != 0 ]] || fail "exit 0 though apt-get failed"
grep -q 'apt-get could not install .*build-essential.*and re-run' "$T/err" \
    || fail "apt-get failing: $(cat "$T/err")"
