#!/usr/bin/env bash
# The SYNTHETIC graded facial regions (issue 14): `likeness synth-swell`
# derives them, seeded, from the johns crops that scripts/fetch-data.sh
# fetched. Cached under $LIKENESS_CACHE/data/swell-v<VERSION>; VERSION must
# match `VERSION` in src/data/swell.rs (bumped whenever the output changes).
#
# The derivation's own file list (README.txt, the CSVs, strengths.png and
# every image regions.csv names) is recorded with each file's sha256 in the
# folder's SHA256SUMS when it is published, and checked at each run (0.1 s):
# a file missing or damaged, or one added that it does not list, is named
# and the set derived again (an added file is first moved aside into
# $LIKENESS_CACHE/set-aside, not deleted). An older
# folder (no record) is checked once against a fresh derivation (seeded, so
# the same bytes; a few seconds) and recorded, its files left as they are.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=2
CACHE="${LIKENESS_CACHE:-$HOME/.cache/likeness}"
DEST="$CACHE/data/swell-v$VERSION"
JOHNS="$CACHE/data/johns"
BIN_DIR=${LIKENESS_BIN_DIR:-$(scripts/target-dir.sh)/release}  # where cargo put the binaries
BIN=${LIKENESS_BIN:-$BIN_DIR/likeness}
log() { echo "likeness data: $*" >&2; }
# The scratch folder of an unfinished derivation, removed however this ends.
tmp=
trap '[[ -z $tmp ]] || rm -rf "$tmp"' EXIT

# sums_bad (what is missing, damaged or extra in a folder) and set_aside.
source scripts/sums.sh
# one_run_at_a_time.
source scripts/lock.sh
# The derivation's own file list (see generate in src/data/swell.rs).
swell_files() { # dir
    printf '%s\n' README.txt regions.csv train.csv test.csv strengths.png
    tail -n +2 "$1/regions.csv" | cut -d, -f1 | LC_ALL=C sort -u
}
# Whether folder $1's SHA256SUMS lists exactly its derivation's files.
recorded() { # dir
    [[ -f $1/SHA256SUMS && -f $1/regions.csv ]] &&
        cmp -s <(swell_files "$1") <(cut -c67- "$1/SHA256SUMS")
}

mkdir -p "$CACHE/data"
# One run at a time: a second `make data` started beside the first waits
# here, then finds the set present, rather than deriving it again and
# racing the first to replace $DEST.
one_run_at_a_time "$CACHE/data/.swell-data.lock" "swell-v$VERSION"
# Scratch folders (58 MB each) left by runs killed before their trap ran,
# or that failed before it was added. Each run records its pid in its
# folder's .owner; a folder is removed when that pid no longer runs, or
# when untouched for an hour: a derivation takes 6 s here, and an older
# copy of this script (another clone sharing the cache), which records no
# pid and takes no lock, may be deriving into one now. So a live run's
# folder is never removed.
for d in "$CACHE"/data/swell.??????; do
    [[ -d $d && ! -L $d ]] || continue
    pid=$(cat "$d/.owner" 2>/dev/null || true)
    if [[ $pid =~ ^[0-9]+$ ]] && ! kill -0 "$pid" 2>/dev/null \
        || [[ -n $(find "$d" -maxdepth 0 -mmin +60) ]]; then
        log "removing $d, the scratch folder of an earlier run that did not finish"
        rm -rf "$d"
    fi
done

if recorded "$DEST"; then
    bad=$(sums_bad "$DEST" SHA256SUMS)
    if [[ -z $bad ]]; then log "swell-v$VERSION present"; exit 0; fi
    log "swell-v$VERSION: $bad (in $DEST); deriving it again"
elif [[ -d $DEST ]]; then
    log "swell-v$VERSION: no record of its files (an older cache); checking it against a fresh derivation"
fi

# The johns crops it derives from, checked (scripts/fetch-data.sh records them).
if [[ -f $JOHNS/SHA256SUMS ]]; then
    bad=$(sums_bad "$JOHNS" SHA256SUMS)
    if [[ -n $bad ]]; then
        log "swell-v$VERSION: its input johns has $bad (in $JOHNS); run scripts/fetch-data.sh (make data) to repair it"
        exit 1
    fi
fi
if [[ ! -x $BIN ]]; then
    log "swell-v$VERSION: $BIN not found; build it first (make build, or cargo build --release --bin likeness)"
    exit 1
fi
tmp=$(mktemp -d "$CACHE/data/swell.XXXXXX")
echo $$ > "$tmp/.owner"
if ! "$BIN" synth-swell --johns "$JOHNS" --out "$tmp" --seed 0; then
    log "swell-v$VERSION: likeness synth-swell failed; nothing published"
    exit 1
fi
for f in README.txt regions.csv; do
    [[ -s $tmp/$f ]] || { log "swell-v$VERSION: synth-swell wrote no $f; nothing published"; exit 1; }
done
if ! (cd "$tmp" && swell_files . | xargs -d '\n' sha256sum > SHA256SUMS.part); then
    log "swell-v$VERSION: synth-swell did not write every file regions.csv names; nothing published"
    exit 1
fi
mv "$tmp/SHA256SUMS.part" "$tmp/SHA256SUMS"
if [[ -d $DEST ]] && ! recorded "$DEST"; then
    bad=$(sums_bad "$DEST" "$tmp/SHA256SUMS")
    if [[ -z $bad ]]; then
        # The same files: keep them, add the record.
        cp "$tmp/SHA256SUMS" "$DEST/SHA256SUMS.part" && mv "$DEST/SHA256SUMS.part" "$DEST/SHA256SUMS"
        log "swell-v$VERSION present (checked, recorded)"
        exit 0
    fi
    log "swell-v$VERSION: $bad (in $DEST); replacing it"
fi
rm "$tmp/.owner"
touch "$tmp/.complete"
chmod 755 "$tmp"
set_aside "$DEST" "$tmp/SHA256SUMS" "$CACHE/set-aside" "swell-v$VERSION"
rm -rf "$DEST"
mv "$tmp" "$DEST"
tmp=
log "swell-v$VERSION: derived into $DEST"
