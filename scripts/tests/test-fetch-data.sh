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

# Two runs at once (two `make data`): both fetched into the same cache
# folders and raced to replace them. The second now waits for the first's
# lock before it looks at the cache. An empty cache, where apt-get (a stub
# that waits for the file $T/go, then fails as without network) is the
# first step that fetches: its calls must follow one another, never overlap.
if ! compgen -G '/etc/apt/sources.list.d/*.sources' > /dev/null && ! compgen -G '/etc/apt/sources.list*' > /dev/null; then
    echo "skipped the concurrent runs: no apt sources here, so fetch-data.sh stops before it fetches"; exit 0
fi
C2="$T/cache2"
stub "$T/bin" apt-get 'echo "start $PPID" >> "$APT_CALLS"
i=0; while [ ! -e "$APT_GO" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
echo "end $PPID" >> "$APT_CALLS"; echo "apt-get: no network in this test" >&2; exit 100'
export APT_CALLS="$T/apt-calls" APT_GO="$T/go"
LIKENESS_CACHE="$C2" "$ROOT/scripts/fetch-data.sh" > /dev/null 2> "$T/err1" & first=$!
for i in $(seq 100); do [[ -s $APT_CALLS ]] && break; sleep 0.1; done
[[ -s $APT_CALLS ]] || fail "the first run never reached apt-get: $(cat "$T/err1")"
LIKENESS_CACHE="$C2" "$ROOT/scripts/fetch-data.sh" > /dev/null 2> "$T/err2" & second=$!
for i in $(seq 100); do grep -q 'waiting for another run' "$T/err2" && break; sleep 0.1; done
sleep 0.5  # time for a second run that did not wait to reach apt-get too
calls_then=$(cat "$APT_CALLS")
touch "$APT_GO"
wait $first || true; wait $second || true
grep -q 'data: waiting for another run of fetch-data.sh to finish' "$T/err2" \
    || fail "the second run did not wait for the first: $(cat "$T/err2")"
[[ $calls_then == "start $first" ]] || fail "apt-get called by both runs at once: $calls_then"
[[ $(cut -d' ' -f1 "$APT_CALLS" | paste -sd' ') == "start end start end" ]] \
    || fail "the runs' fetches overlapped: $(cat "$APT_CALLS")"
[[ -z $(ls -d "$C2"/fmnist.* "$C2"/johns.* 2>/dev/null) ]] || fail "scratch folder left in the cache"
