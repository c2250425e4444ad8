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

# A Rust older than Cargo.toml's rust-version (Debian 12's own cargo is
# 1.63): the build failed on Cargo.lock with a message that did not say
# so. It is now named, with what to do, before anything is built.
B2="$T/bin2"; mkdir -p "$B2"
for t in bash env cat sed head cut sort dirname python3 cc dpkg-deb bzip2 pkg-config readelf chromium chromedriver; do
    p=$(command -v "$t" || true); [[ -z $p ]] || ln -s "$p" "$B2/$t"
done
stub "$B2" id 'echo 0'
stub "$B2" apt-get 'exit 0'  # whatever this machine lacks is "installed"
stub "$B2" rustc 'echo "rustc $RUSTC_VERSION (stub)"'
want=$(sed -n 's/^rust-version *= *"\(.*\)"/\1/p' "$ROOT/Cargo.toml")
# A cargo whose fmt and clippy work once rustup has added them.
stub "$B2" cargo 'case "$1" in fmt|clippy) [ -e "$LINTS_ADDED" ] || { echo "error: no such command: \`$1\`" >&2; exit 101; };; esac; echo "cargo stub $*"'
export LINTS_ADDED="$T/lints-added"
run env PATH="$B2" RUSTC_VERSION=1.63.0 "$ROOT/scripts/system-deps.sh"
[[ $rc != 0 ]] && grep -q "needs Rust $want or newer, and rustc is 1.63.0; run \`rustup update\`" "$T/err" \
    || fail "an old rustc passed: exit $rc, $(cat "$T/err")"
run env PATH="$B2" RUSTC_VERSION="$want" "$ROOT/scripts/system-deps.sh"
[[ $rc == 0 ]] || fail "rustc $want refused: $(cat "$T/err")"

# rustfmt and clippy missing (rustup's minimal profile): `make test` failed
# at `cargo fmt` after building everything. --lints (make test, fmt,
# clippy) adds them with rustup, or says how when there is no rustup;
# without --lints (make build, demo) they are not asked for.
run env PATH="$B2" RUSTC_VERSION=1.95.0 "$ROOT/scripts/system-deps.sh" --lints
[[ $rc != 0 ]] && grep -q 'rustup component add rustfmt clippy) and re-run' "$T/err" \
    || fail "no rustfmt, no rustup: exit $rc, $(cat "$T/err")"
stub "$B2" rustup 'echo "$*" >> "$LINTS_ADDED"'
run env PATH="$B2" RUSTC_VERSION=1.95.0 "$ROOT/scripts/system-deps.sh"
[[ $rc == 0 && ! -e $LINTS_ADDED ]] || fail "lints installed without --lints: exit $rc, $(cat "$T/err")"
run env PATH="$B2" RUSTC_VERSION=1.95.0 "$ROOT/scripts/system-deps.sh" --lints
[[ $rc == 0 && $(cat "$LINTS_ADDED") == "component add rustfmt clippy" ]] \
    || fail "rustfmt and clippy not added: exit $rc, $(cat "$T/err")"
run env PATH="$B2" RUSTC_VERSION=1.95.0 "$ROOT/scripts/system-deps.sh" --lints
[[ $rc == 0 && $(wc -l < "$LINTS_ADDED") == 1 ]] || fail "added again though present: $(cat "$T/err")"
