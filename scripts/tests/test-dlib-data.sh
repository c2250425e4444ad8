# scripts/fetch-data.sh: a johns or dlib-faces file deleted or cut short was
# trusted (the folder's .complete marker was all it checked), and later steps
# failed confusingly or used bad data. Each folder's file list is now pinned;
# an older folder is checked once and recorded (SHA256SUMS), then checked at
# each run; what is missing or damaged is named and extracted again. A file
# added to a folder silently joined the set: it is named and moved aside.
source "$(dirname "$0")/lib.sh"
REAL="${LIKENESS_CACHE:-$HOME/.cache/likeness}"
TARBALL=dlib_19.24+dfsg.orig.tar.bz2
for f in data/fashion-mnist/t10k-labels-idx1-ubyte.gz data/johns data/dlib-faces "downloads/$TARBALL"; do
    [[ -e $REAL/$f ]] || { echo "skipped: no $REAL/$f to copy (run make data)"; exit 0; }
done
C="$T/cache"; D="$C/data"
mkdir -p "$D/fashion-mnist" "$C/downloads"
cp "$REAL"/data/fashion-mnist/*.gz "$D/fashion-mnist/"
cp "$REAL/downloads/$TARBALL" "$C/downloads/"
# As an older cache left them: the files and a .complete marker, no record.
for d in johns dlib-faces; do
    cp -a "$REAL/data/$d" "$D/"; rm -f "$D/$d/SHA256SUMS"; touch "$D/$d/.complete"
done
# apt-get stands for the network: it fails, so a repair without the tarball stops there.
stub "$T/bin" apt-get 'echo "apt-get: no network in this test" >&2; exit 100'
export PATH="$T/bin:$PATH" LIKENESS_CACHE="$C"
S="$ROOT/scripts/fetch-data.sh"

run "$S"
[[ $rc == 0 ]] && grep -q 'johns present (checked)' "$T/err" && grep -q 'dlib-faces present (checked)' "$T/err" \
    || fail "intact older folders: exit $rc, $(cat "$T/err")"
[[ -f $D/johns/SHA256SUMS && -f $D/dlib-faces/SHA256SUMS ]] || fail "intact folders not recorded"
run "$S"
grep -q 'likeness data: johns present$' "$T/err" || fail "recorded folder not trusted: $(cat "$T/err")"

# A photo deleted, another cut short: named, and extracted again from the tarball.
rm "$D/johns/John_Simm/000297_00470170.jpg"
truncate -s 100 "$D/dlib-faces/dogs.jpg"
run "$S"
[[ $rc == 0 ]] || fail "repair: exit $rc, $(cat "$T/err")"
grep -q 'johns: John_Simm/000297_00470170.jpg missing .*fetching again' "$T/err" || fail "deleted photo not named: $(cat "$T/err")"
grep -q 'dlib-faces: dogs.jpg damaged .*fetching again' "$T/err" || fail "cut photo not named: $(cat "$T/err")"
(cd "$D/johns" && sha256sum -c --quiet SHA256SUMS) && (cd "$D/dlib-faces" && sha256sum -c --quiet SHA256SUMS) \
    || fail "not repaired"

# A photo of the user's own copied into a recorded folder: named, moved
# aside into the cache's set-aside/ (kept, not deleted), and the folder
# extracted again; it no longer joins the set unnoticed.
mine="$D/johns/John_Savage/$(ls "$D/johns/John_Savage" | head -n1)"
cp "$mine" "$D/johns/John_Simm/mine.jpg"
run "$S"
[[ $rc == 0 ]] && grep -q 'johns: John_Simm/mine.jpg extra .*fetching again' "$T/err" \
    || fail "added photo not named: exit $rc, $(cat "$T/err")"
[[ ! -e $D/johns/John_Simm/mine.jpg ]] || fail "added photo still in the set"
cmp -s "$mine" "$(ls "$C"/set-aside/johns.*/John_Simm/mine.jpg)" || fail "added photo not kept: $(cat "$T/err")"
run "$S"
grep -q 'likeness data: johns present$' "$T/err" || fail "set not as pinned after the photo moved aside: $(cat "$T/err")"

# An unrecorded folder with a file cut short, and no tarball to repair it from:
# named as not the pinned files, and the fetch stops at apt-get (no scratch left).
rm "$D/johns/SHA256SUMS" "$C/downloads/$TARBALL"
truncate -s 10 "$D/johns/John_Savage/"$(ls "$D/johns/John_Savage" | head -n1)
run "$S"
[[ $rc != 0 ]] && grep -q 'johns: the files in .* are not the pinned ones' "$T/err" && grep -q 'apt-get: no network' "$T/err" \
    || fail "unrecorded damaged folder trusted (exit $rc): $(cat "$T/err")"
[[ -z $(ls -d "$C"/johns.* 2>/dev/null) ]] || fail "scratch folder left in the cache"
