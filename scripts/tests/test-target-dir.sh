# Where the scripts and make look for the binaries: where cargo puts them.
# `make data` with CARGO_TARGET_DIR set looked in ./target/release, and
# swell-data.sh stopped ("target/release/likeness not found").
source "$(dirname "$0")/lib.sh"
# What make or the caller may have set would hide the lookup under test.
unset LIKENESS_BIN LIKENESS_BIN_DIR CARGO_TARGET_DIR CARGO_BUILD_TARGET_DIR

# scripts/target-dir.sh: cargo's folder, CARGO_TARGET_DIR absolute or
# relative (to the repository root, where make runs cargo), with cargo or without.
for cargo in cargo false; do
    run env CARGO=$cargo CARGO_TARGET_DIR="$T/tgt" "$ROOT/scripts/target-dir.sh"
    [[ $rc == 0 && $(cat "$T/out") == "$T/tgt" ]] || fail "CARGO=$cargo, absolute: exit $rc, $(cat "$T/out" "$T/err")"
    run env CARGO=$cargo CARGO_TARGET_DIR=a/../tgt2 "$ROOT/scripts/target-dir.sh"
    [[ $rc == 0 && $(cat "$T/out") == "$ROOT/tgt2" ]] || fail "CARGO=$cargo, relative: exit $rc, $(cat "$T/out" "$T/err")"
done

# The Makefile's LIKENESS_BIN_DIR (which every recipe and script gets),
# from CARGO_TARGET_DIR in the environment or on make's command line.
show='show-bin-dir: ; @echo "$(LIKENESS_BIN_DIR)"'
run env CARGO_TARGET_DIR="$T/tgt" make -s -C "$ROOT" --eval "$show" show-bin-dir
[[ $(cat "$T/out") == "$T/tgt/release" ]] || fail "make, CARGO_TARGET_DIR in the environment: $(cat "$T/out" "$T/err")"
run make -s -C "$ROOT" --eval "$show" show-bin-dir CARGO_TARGET_DIR="$T/tgt"
[[ $(cat "$T/out") == "$T/tgt/release" ]] || fail "make CARGO_TARGET_DIR=...: $(cat "$T/out" "$T/err")"

# scripts/swell-data.sh run by hand: it finds likeness under $CARGO_TARGET_DIR/release.
C="$T/cache"; mkdir -p "$C/data/johns"
stub "$T/tgt/release" likeness '
while [ $# -gt 0 ]; do [ "$1" = --out ] && out=$2; shift; done
printf "path,label\n" | tee "$out/regions.csv" "$out/train.csv" > "$out/test.csv"
echo strip > "$out/strengths.png"; echo "SYNTHETIC (stub)" > "$out/README.txt"'
run env CARGO_TARGET_DIR="$T/tgt" LIKENESS_CACHE="$C" "$ROOT/scripts/swell-data.sh"
[[ $rc == 0 ]] && grep -q stub "$C/data/swell-v2/README.txt" || fail "swell-data.sh with CARGO_TARGET_DIR: exit $rc, $(cat "$T/err")"
