#!/usr/bin/env bash
# `make bench-serve`: `likeness serve` under load from wrk (Debian package),
# on loopback, against the same searches run in-process.
#
# Indexes: the Fashion-MNIST test index of `make demo` (10,000 x 64, cosine;
# runs/demo/fashion/index) and the ann-benchmarks fashion-mnist-784 base
# (60,000 x 784, l2; built here if `make bench-ann` has not left it).
# For each: in-process queries/s (`likeness query`, SERVER_WORKERS threads),
# then POST /search at k=10, ef=64 with CONNECTIONS connections for DURATION
# (wrk, 2 threads, --latency), and the server's RSS under load. Then
# POST /search/image on the Fashion-MNIST index (the demo model).
set -euo pipefail
cd "$(dirname "$0")/.."

LIKENESS_CACHE=${LIKENESS_CACHE:-$HOME/.cache/likeness}
PYTHON=${LIKENESS_PYTHON:-$LIKENESS_CACHE/torch-2.11.0/bin/python}
BIN_DIR=${LIKENESS_BIN_DIR:-$(scripts/target-dir.sh)/release}  # where cargo put the binaries
BIN=${LIKENESS_BIN:-$BIN_DIR/likeness}
DURATION=${DURATION:-30s}
CONNECTIONS=${CONNECTIONS:-32}
SERVER_WORKERS=${SERVER_WORKERS:-2}
FASHION_INDEX=${FASHION_INDEX:-runs/demo/fashion/index}
ANN_WORK=${BENCH_ANN_WORK:-$LIKENESS_CACHE/bench-ann}
WORK=${BENCH_SERVE_WORK:-$LIKENESS_CACHE/bench-serve}
mkdir -p "$WORK"

[[ -x $BIN ]] || { echo "$BIN missing: run \`make build\` first" >&2; exit 2; }
[[ -d $FASHION_INDEX ]] || { echo "$FASHION_INDEX missing: run \`make demo\` first" >&2; exit 2; }
if ! command -v wrk >/dev/null; then
    echo "installing wrk (apt)" >&2
    SUDO=; [[ $(id -u) -eq 0 ]] || SUDO=sudo
    $SUDO apt-get install -y -qq wrk >/dev/null
fi

if ! "$PYTHON" -c 'import PIL' 2>/dev/null; then
    echo "installing pillow into the venv (the query image is written as PNG)" >&2
    "$PYTHON" -m pip install --quiet pillow
fi

serve() { # index [extra args]; sets PID and ADDR
    # Emptied here, not by the child's redirect, so the loop below cannot
    # read the previous server's address before the new one starts.
    : > "$WORK/serve.out"
    "$BIN" --threads "$SERVER_WORKERS" serve --index "$1" --addr 127.0.0.1:0 --workers "$SERVER_WORKERS" "${@:2}" > "$WORK/serve.out" 2> "$WORK/serve.err" &
    PID=$!
    for _ in $(seq 600); do
        ADDR=$(sed -n 's/^listening on //p' "$WORK/serve.out")
        [[ -n $ADDR ]] && return 0
        sleep 0.1
    done
    echo "server did not start: $(cat "$WORK/serve.err")" >&2; exit 1
}
trap '[[ -n ${PID:-} ]] && kill "$PID" 2>/dev/null || true' EXIT
rss() { awk '/^VmRSS|^RssAnon|^RssFile/ {printf "%s %.1f MB  ", $1, $2/1024}' "/proc/$1/status"; }
files_mb() { du -sm --apparent-size "$1" | cut -f1; }

cat > "$WORK/image.lua" <<'LUA'
local f = io.open(os.getenv("IMAGE"), "rb"); local img = f:read("*all"); f:close()
request = function()
  return wrk.format("POST", "/search/image?k=10", {["Content-Type"] = "image/png"}, img)
end
LUA

# IMAGE_ONLY=1: only the /search/image comparison (needs no bench-ann data).
if [[ -z ${IMAGE_ONLY:-} ]]; then
if [[ ! -f $ANN_WORK/likeness-index/manifest.json ]]; then
    echo "== building the fashion-mnist-784 index (M 16, ef_construction 200)"
    "$PYTHON" benches/ann/peers.py prepare --data "$LIKENESS_CACHE/data/fashion-mnist" --work "$ANN_WORK" \
        --m 16 --ef-construction 200 --build-threads 2 --efs 64 --runs 1
    "$BIN" --threads 2 build --vectors "$ANN_WORK/base.npy" --out "$ANN_WORK/likeness-index" --metric l2 --force
fi

# Query vectors as request bodies: 1,000 rows (the index's own vectors for
# Fashion-MNIST, the ann-benchmarks queries for 784-d).
"$PYTHON" - "$FASHION_INDEX/vectors.npy" "$ANN_WORK/queries.npy" "$WORK" <<'PY'
import json, sys, numpy as np
fashion, ann, work = sys.argv[1:]
for name, path in (("fashion", fashion), ("ann", ann)):
    q = np.load(path, mmap_mode="r")[:1000].astype(np.float32)
    np.save(f"{work}/{name}-q.npy", q)
    with open(f"{work}/{name}-bodies.lua", "w") as f:
        f.write("bodies = {\n")
        for row in q:
            f.write("  [[" + json.dumps({"vector": [float(x) for x in row], "k": 10, "ef": 64}) + "]],\n")
        f.write("}\n")
PY
cat > "$WORK/search.lua" <<'LUA'
-- POST /search with bodies[] in turn (loaded from the file named by BODIES).
dofile(os.getenv("BODIES"))
local i = 0
request = function()
  i = i % #bodies + 1
  return wrk.format("POST", "/search", {["Content-Type"] = "application/json"}, bodies[i])
end
LUA

for name in fashion ann; do
    if [[ $name == fashion ]]; then ix=$FASHION_INDEX; else ix=$ANN_WORK/likeness-index; fi
    echo
    echo "== $name: $ix ($(files_mb "$ix") MB of files)"
    "$BIN" --threads "$SERVER_WORKERS" query --index "$ix" --vectors "$WORK/$name-q.npy" -k 10 --ef 64 --out "$WORK/out.npy" 2>&1 | sed 's/^/in-process: /'
    serve "$ix" --no-model
    echo "server rss after start: $(rss $PID)"
    BODIES="$WORK/$name-bodies.lua" wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -s "$WORK/search.lua" "http://$ADDR" | sed 's/^/  /' &
    WRK=$!
    sleep 5; echo "server rss under load: $(rss $PID)"
    wait $WRK
    kill -TERM $PID; wait $PID || true
done

fi
echo
echo "== fashion: POST /search/image (one 28x28 PNG, the demo model), $CONNECTIONS connections"
"$PYTHON" -c "
import gzip,sys
from PIL import Image
b=gzip.open(sys.argv[1]).read()[16:16+784]
Image.frombytes('L',(28,28),b).save(sys.argv[2])" "$LIKENESS_CACHE/data/fashion-mnist/t10k-images-idx3-ubyte.gz" "$WORK/query.png"
# Unbatched (--max-batch 1: each request embeds its own image on the search
# threads, as before batching) against batched with each --batch-wait-ms in
# BATCH_WAITS (the default, 2 ms, was chosen from this sweep).
BATCH_WAITS=${BATCH_WAITS:-0 1 2 5}
rows=()
image_run() { # label, serve args...
    serve "$FASHION_INDEX" "${@:2}"
    IMAGE="$WORK/query.png" wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -s "$WORK/image.lua" "http://$ADDR" > "$WORK/wrk.out"
    local rps p50 p99 batch
    rps=$(awk '/^Requests\/sec/ {print $2}' "$WORK/wrk.out")
    p50=$(awk '$1 == "50%" {print $2}' "$WORK/wrk.out")
    p99=$(awk '$1 == "99%" {print $2}' "$WORK/wrk.out")
    batch=$(curl -s "http://$ADDR/stats" | "$PYTHON" -c 'import json,sys; b=json.load(sys.stdin)["image_batches"]; print("-" if b is None else "%.1f (largest %d)" % (b["mean_size"], b["largest"]))')
    kill -TERM $PID; wait $PID || true
    echo "  $1: $rps requests/s, p50 $p50, p99 $p99, mean batch $batch"
    rows+=("| $1 | $rps | $p50 | $p99 | $batch |")
    echo "$rps $p99" > "$WORK/image.last"
}
ms() { # wrk latency (e.g. 812.00us, 12.3ms, 1.2s) in ms
    awk -v x="$1" 'BEGIN { v = x + 0; if (x ~ /us$/) v /= 1000; else if (x ~ /[0-9]s$/ && x !~ /ms$/) v *= 1000; print v }'
}
image_run "unbatched (--max-batch 1)" --max-batch 1
read -r U_RPS U_P99 < "$WORK/image.last"
best_rps=0; best_p99=; best_w=
for w in $BATCH_WAITS; do
    image_run "batched, --batch-wait-ms $w (--max-batch 32)" --batch-wait-ms "$w"
    read -r rps p99 < "$WORK/image.last"
    if awk -v a="$rps" -v b="$best_rps" 'BEGIN { exit !(a > b) }'; then best_rps=$rps; best_p99=$p99; best_w=$w; fi
done
echo
echo "/search/image, $CONNECTIONS connections, $DURATION each, $(nproc) cores, server --threads $SERVER_WORKERS --workers $SERVER_WORKERS:"
printf '| server | requests/s | p50 | p99 | mean batch |\n|---|---:|---:|---:|---:|\n'
printf '%s\n' "${rows[@]}"
printf 'best batched (--batch-wait-ms %s) / unbatched: %.2fx requests/s (target >= 1.5x), p99 %.2fx (target <= 2x)\n' \
    "$best_w" "$(awk -v a="$best_rps" -v b="$U_RPS" 'BEGIN { print a / b }')" \
    "$(awk -v a="$(ms "$best_p99")" -v b="$(ms "$U_P99")" 'BEGIN { print a / b }')"

[[ -n ${IMAGE_ONLY:-} ]] && exit 0

# The page (GET /): gallery first paint, thumbnail server time, and an image
# query's round trip from the page against the server's own /search/image
# time, measured in headless chromium (examples/page_bench.rs).
echo
echo "== the page: headless chromium on the Fashion-MNIST test index (the demo model)"
command -v chromedriver >/dev/null || scripts/system-deps.sh
${CARGO:-cargo} build --release --quiet --example page_bench
serve "$FASHION_INDEX"
"$BIN_DIR/examples/page_bench" "http://$ADDR" "$WORK/query.png" 20
kill -TERM $PID; wait $PID || true
