#!/usr/bin/env bash
# Two `likeness` binaries against each other, interleaved, for a change that
# must not move the numbers (the reshape of issue 23 was checked with it):
#   OLD=/path/to/old/likeness benches/ab.sh        (NEW: this checkout's build)
# 1. `make bench-ann`'s likeness f32 and hnswlib rows (SYSTEMS="likeness
#    hnswlib"), ROUNDS times each binary in turn: compare likeness/hnswlib
#    ratios from the same run, not raw figures (speed drifts by tens of
#    percent within an hour here).
# 2. `likeness serve` of that index under wrk: POST /search, k 10, ef 64,
#    32 connections, 2 workers, DURATION each, ROUNDS+1 times each in turn.
# Needs `make build data python` (bench-ann's venv and peers install on first
# use). benches/ann/results.md is restored afterwards; the tables of each run
# go to $WORK.
set -euo pipefail
cd "$(dirname "$0")/.."
LIKENESS_CACHE=${LIKENESS_CACHE:-$HOME/.cache/likeness}
PYTHON=${LIKENESS_PYTHON:-$LIKENESS_CACHE/torch-2.11.0/bin/python}
BIN_DIR=${LIKENESS_BIN_DIR:-$(scripts/target-dir.sh)/release}
NEW=${NEW:-$BIN_DIR/likeness}
OLD=${OLD:?set OLD to the binary to compare with (e.g. one built from an earlier commit)}
ROUNDS=${ROUNDS:-2}
DURATION=${DURATION:-15s}
ANN_WORK=${BENCH_ANN_WORK:-$LIKENESS_CACHE/bench-ann}
WORK=${BENCH_AB_WORK:-$LIKENESS_CACHE/bench-ab}
mkdir -p "$WORK"
for b in "$OLD" "$NEW"; do [[ -x $b ]] || { echo "$b missing" >&2; exit 2; }; done
if ! command -v wrk >/dev/null; then
    SUDO=; [[ $(id -u) -eq 0 ]] || SUDO=sudo
    $SUDO apt-get install -y -qq wrk >/dev/null
fi
bin() { if [[ $1 == old ]]; then echo "$OLD"; else echo "$NEW"; fi; }

for round in $(seq "$ROUNDS"); do for who in old new; do
    echo "== ann: $who, round $round ($(date +%T))"
    SYSTEMS="likeness hnswlib" EFS=${EFS:-16,32,64} RUNS=3 LIKENESS_BIN=$(bin $who) \
        benches/ann/run.sh > "$WORK/ann-$who-$round.log" 2>&1
    grep -E '^\| ' benches/ann/results.md > "$WORK/ann-$who-$round.md"
    awk -F'|' '/^\| ef \| likeness f32 \| hnswlib \|/ {t++; next} /^\| recall/ {t = 99}
        t == 2 && $2 ~ /[0-9]/ { gsub(/[ ,]/, "", $3); gsub(/[ ,]/, "", $4);
            printf "  ef %s: likeness %s QPS, hnswlib %s QPS, ratio %.2f\n", $2+0, $3, $4, $3/$4 }' \
        "$WORK/ann-$who-$round.md"
done; done
git checkout -- benches/ann/results.md benches/ann/recall_qps.png 2>/dev/null || true

"$PYTHON" - "$ANN_WORK/queries.npy" "$WORK" <<'PY'
import json, sys, numpy as np
q = np.load(sys.argv[1], mmap_mode="r")[:1000].astype(np.float32)
with open(f"{sys.argv[2]}/bodies.lua", "w") as f:
    f.write("bodies = {\n")
    for row in q:
        f.write("  [[" + json.dumps({"vector": [float(x) for x in row], "k": 10, "ef": 64}) + "]],\n")
    f.write("}\n")
PY
cat > "$WORK/search.lua" <<'LUA'
dofile(os.getenv("BODIES"))
local i = 0
request = function()
  i = i % #bodies + 1
  return wrk.format("POST", "/search", {["Content-Type"] = "application/json"}, bodies[i])
end
LUA
PID=
trap '[[ -n $PID ]] && kill "$PID" 2>/dev/null || true' EXIT
for round in $(seq $((ROUNDS + 1))); do for who in old new; do
    : > "$WORK/serve.out"
    "$(bin $who)" --threads 2 serve --index "$ANN_WORK/likeness-index" --addr 127.0.0.1:0 \
        --workers 2 --no-model > "$WORK/serve.out" 2>/dev/null &
    PID=$!
    ADDR=
    for _ in $(seq 300); do
        ADDR=$(sed -n 's/^listening on //p' "$WORK/serve.out"); [[ -n $ADDR ]] && break; sleep 0.1
    done
    [[ -n $ADDR ]] || { echo "the $who server did not start" >&2; exit 1; }
    out="$WORK/wrk-$who-$round.txt"
    BODIES="$WORK/bodies.lua" wrk -t2 -c32 -d"$DURATION" --latency -s "$WORK/search.lua" "http://$ADDR" > "$out"
    kill -TERM "$PID"; wait "$PID" || true; PID=
    echo "== serve: $who, round $round: $(awk '/^Requests\/sec/ {print $2}' "$out") req/s," \
        "p50 $(awk '$1 == "50%" {print $2}' "$out"), p99 $(awk '$1 == "99%" {print $2}' "$out")"
done; done
