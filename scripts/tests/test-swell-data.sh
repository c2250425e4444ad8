# scripts/swell-data.sh: a swell-v2 image deleted or cut short was trusted
# (the folder's .complete marker was all it checked), and a failed
# synth-swell left its swell.XXXXXX scratch folder in the cache. The set's
# own file list is now recorded with sha256s when it is published and checked
# at each run; what is missing or damaged (or added: moved aside, kept) is
# named and the set derived again; an older folder is checked once against
# a fresh derivation and recorded. Scratch folders of runs killed before
# their trap ran were never removed: those no live run owns now are; and two
# runs at once both derived and raced to publish: the second now waits.
source "$(dirname "$0")/lib.sh"
C="$T/cache"; D="$C/data/swell-v2"
mkdir -p "$C/data/johns/A" "$C/data/johns/B"
echo a > "$C/data/johns/A/1.jpg"; echo b > "$C/data/johns/B/1.jpg"
(cd "$C/data/johns" && sha256sum A/1.jpg B/1.jpg > SHA256SUMS)
# A stub likeness: synth-swell writes a small, fixed set (as the real one
# does, seeded), or fails half-way when STUB_FAIL is set, or waits half-way
# (30 s at most) for the file STUB_WAIT when that is set; calls are counted.
stub "$T/bin" likeness '
echo call >> "$STUB_CALLS"
while [ $# -gt 0 ]; do [ "$1" = --out ] && out=$2; shift; done
mkdir -p "$out/images/A" "$out/images/B"
echo png-a > "$out/images/A/1_v0.png"
i=0; while [ -n "$STUB_WAIT" ] && [ ! -e "$STUB_WAIT" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
[ -z "$STUB_FAIL" ] || { echo "synth-swell: failing on purpose" >&2; exit 1; }
echo png-b > "$out/images/B/1_v0.png"
printf "path,label\nimages/A/1_v0.png,cheek\nimages/A/1_v0.png,eye\nimages/B/1_v0.png,cheek\n" > "$out/regions.csv"
head -n 3 "$out/regions.csv" > "$out/train.csv"; sed -n "1p;4p" "$out/regions.csv" > "$out/test.csv"
echo strip > "$out/strengths.png"; echo SYNTHETIC > "$out/README.txt"'
export LIKENESS_CACHE="$C" LIKENESS_BIN="$T/bin/likeness" STUB_CALLS="$T/calls" STUB_FAIL= STUB_WAIT=
S="$ROOT/scripts/swell-data.sh"
calls() { cat "$T/calls" 2>/dev/null | wc -l; }
no_scratch() { [[ -z $(ls -d "$C"/data/swell.* 2>/dev/null) ]] || fail "scratch folder left: $(ls -d "$C"/data/swell.*)"; }

run "$S"
[[ $rc == 0 && -f $D/SHA256SUMS && -f $D/images/B/1_v0.png ]] || fail "first derivation: exit $rc, $(cat "$T/err")"
[[ $(wc -l < "$D/SHA256SUMS") == 7 ]] || fail "record is not the set's file list: $(cat "$D/SHA256SUMS")"
run "$S"
[[ $rc == 0 && $(calls) == 1 ]] && grep -q 'swell-v2 present$' "$T/err" || fail "intact set not trusted: $(cat "$T/err")"

# An image deleted, another cut short: named, derived again.
rm "$D/images/A/1_v0.png"; truncate -s 2 "$D/images/B/1_v0.png"
run "$S"
[[ $rc == 0 ]] || fail "repair: exit $rc, $(cat "$T/err")"
grep -q 'swell-v2: images/A/1_v0.png missing, images/B/1_v0.png damaged .*deriving it again' "$T/err" \
    || fail "damage not named: $(cat "$T/err")"
(cd "$D" && sha256sum -c --quiet SHA256SUMS) || fail "not repaired"

# An older folder (a .complete marker, no record): intact, it is kept as it
# is and recorded; with an image cut short, that is named and it is replaced.
rm "$D/SHA256SUMS"; touch -d 2001-01-01 "$D/regions.csv"
run "$S"
[[ $rc == 0 ]] && grep -q 'swell-v2 present (checked, recorded)' "$T/err" || fail "older intact set: exit $rc, $(cat "$T/err")"
[[ -f $D/SHA256SUMS && $(stat -c %Y "$D/regions.csv") == $(date -d 2001-01-01 +%s) ]] || fail "older intact set changed or not recorded"
rm "$D/SHA256SUMS"; truncate -s 0 "$D/images/A/1_v0.png"
run "$S"
[[ $rc == 0 ]] && grep -q 'swell-v2: images/A/1_v0.png damaged .*replacing it' "$T/err" || fail "older damaged set: exit $rc, $(cat "$T/err")"
(cd "$D" && sha256sum -c --quiet SHA256SUMS) || fail "older damaged set not repaired"
no_scratch

# A file added to the set: named, moved aside into the cache's set-aside/
# (kept, not deleted), and the set derived again.
echo mine > "$D/images/A/mine.png"
run "$S"
[[ $rc == 0 ]] && grep -q 'swell-v2: images/A/mine.png extra .*deriving it again' "$T/err" \
    || fail "added file not named: exit $rc, $(cat "$T/err")"
[[ ! -e $D/images/A/mine.png ]] || fail "added file still in the set"
[[ $(cat "$C"/set-aside/swell-v2.*/images/A/mine.png) == mine ]] || fail "added file not kept: $(cat "$T/err")"
(cd "$D" && sha256sum -c --quiet SHA256SUMS) || fail "not derived again"

# synth-swell failing: said, no scratch folder left, nothing published.
rm "$D/images/B/1_v0.png"
run env STUB_FAIL=1 "$S"
[[ $rc != 0 ]] && grep -q 'synth-swell failed' "$T/err" || fail "failed derivation: exit $rc, $(cat "$T/err")"
no_scratch
[[ ! -e $D/images/B/1_v0.png ]] || fail "half a derivation published"

# A photo added to its input: named, with where to repair it; nothing derived.
n=$(calls); echo c > "$C/data/johns/B/2.jpg"
run "$S"
[[ $rc != 0 && $(calls) == "$n" ]] && grep -q 'johns has B/2.jpg extra .*fetch-data.sh' "$T/err" \
    || fail "johns with an added photo used: exit $rc, $(cat "$T/err")"
rm "$C/data/johns/B/2.jpg"

# Its input damaged: named, with where to repair it; nothing derived.
n=$(calls); echo x > "$C/data/johns/B/1.jpg"
run "$S"
[[ $rc != 0 && $(calls) == "$n" ]] && grep -q 'johns has B/1.jpg damaged .*fetch-data.sh' "$T/err" \
    || fail "damaged johns used: exit $rc, $(cat "$T/err")"
echo b > "$C/data/johns/B/1.jpg"

# Scratch folders of runs that did not finish (killed before their trap ran):
# removed when the pid recorded in them no longer runs, or when untouched for
# an hour (an older script recorded none); a live run's folder is kept, and
# so is anything not of the script's own naming.
dead=$(bash -c 'echo $$')
mkdir -p "$C"/data/swell.{dead01,old001,live01,new001}/images "$C/data/swell.keep-me"
echo "$dead" > "$C/data/swell.dead01/.owner"; echo $$ > "$C/data/swell.live01/.owner"
touch -d '2 hours ago' "$C/data/swell.old001"
run "$S"
[[ $rc == 0 ]] || fail "with old scratch folders: exit $rc, $(cat "$T/err")"
for d in dead01 old001; do
    [[ ! -e $C/data/swell.$d ]] || fail "stale swell.$d left: $(cat "$T/err")"
    grep -q "removing .*/swell.$d, the scratch folder" "$T/err" || fail "swell.$d removed unsaid: $(cat "$T/err")"
done
for d in live01 new001 keep-me; do [[ -d $C/data/swell.$d ]] || fail "swell.$d removed: $(cat "$T/err")"; done
rm -rf "$C"/data/swell.*

# Two runs at once: the second waits for the first (whose scratch folder it
# leaves alone), then finds the set present; one derivation, no scratch left.
rm -rf "$D"; n=$(calls)
STUB_WAIT="$T/go" "$S" > /dev/null 2> "$T/err1" & first=$!
for i in $(seq 100); do [[ -z $(ls "$C"/data/swell.*/images/A/1_v0.png 2>/dev/null) ]] || break; sleep 0.1; done
"$S" > /dev/null 2> "$T/err2" & second=$!
for i in $(seq 100); do grep -q 'waiting for another run' "$T/err2" && break; sleep 0.1; done
[[ -n $(ls "$C"/data/swell.*/images/A/1_v0.png 2>/dev/null) ]] || fail "the first run's scratch folder is gone: $(cat "$T/err2")"
touch "$T/go"
rc1=0; wait $first || rc1=$?; rc2=0; wait $second || rc2=$?
[[ $rc1 == 0 && $rc2 == 0 ]] || fail "concurrent runs: exit $rc1 and $rc2: $(cat "$T/err1" "$T/err2")"
grep -q 'waiting for another run' "$T/err2" && grep -q 'swell-v2 present$' "$T/err2" \
    || fail "the second run did not wait for the first: $(cat "$T/err2")"
[[ $(( $(calls) - n )) == 1 ]] || fail "derived $(( $(calls) - n )) times: $(cat "$T/err1" "$T/err2")"
no_scratch
(cd "$D" && sha256sum -c --quiet SHA256SUMS) || fail "concurrent runs published a bad set"
