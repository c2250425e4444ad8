# scripts/fetch-data.sh: a Fashion-MNIST file cut short (an interrupted copy,
# a full disk) is noticed and fetched again, not trusted because it is
# not empty; an intact folder is recorded and then checked in 0.1 s.
source "$(dirname "$0")/lib.sh"
C="$T/cache"; F="$C/data/fashion-mnist"
mkdir -p "$F"
# apt-get stands for the network: it fails, so a repair stops there.
stub "$T/bin" apt-get 'echo "apt-get: no network in this test" >&2; exit 100'
export PATH="$T/bin:$PATH"
REAL="${LIKENESS_CACHE:-$HOME/.cache/likeness}/data/fashion-mnist"
if [[ -f $REAL/t10k-labels-idx1-ubyte.gz ]]; then
    cp "$REAL"/*.gz "$F/"
    # The dlib folders it checks next (test-dlib-data.sh tests those).
    cp -a "$REAL/../johns" "$REAL/../dlib-faces" "$C/data/"
    run env LIKENESS_CACHE="$C" "$ROOT/scripts/fetch-data.sh"
    [[ $rc == 0 ]] && grep -q 'fashion-mnist present' "$T/err" || fail "intact: exit $rc, $(cat "$T/err")"
    [[ -f $F/SHA256SUMS ]] || fail "intact folder not recorded"
    truncate -s 1000 "$F/t10k-labels-idx1-ubyte.gz"
else
    # No real copy on this machine: four small gzip files of the wrong bytes.
    for f in train-images-idx3 train-labels-idx1 t10k-images-idx3 t10k-labels-idx1; do
        echo "not fashion-mnist" | gzip > "$F/$f-ubyte.gz"
    done
fi
run env LIKENESS_CACHE="$C" "$ROOT/scripts/fetch-data.sh"
grep -q 'fashion-mnist: .*t10k-labels-idx1-ubyte.gz in .* missing or damaged; fetching again' "$T/err" \
    || fail "damaged file trusted (exit $rc): $(cat "$T/err")"
# Repaired from an installed dataset-fashion-mnist, or stopped at apt-get.
if [[ $rc == 0 ]]; then (cd "$F" && sha256sum -c --status SHA256SUMS) || fail "exit 0, still damaged"
else grep -q 'apt-get: no network' "$T/err" || fail "exit $rc: $(cat "$T/err")"; fi
[[ -z $(ls -d "$C"/fmnist.* 2>/dev/null) ]] || fail "scratch folder left in the cache"
