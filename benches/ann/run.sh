#!/usr/bin/env bash
# `make bench-ann`: ann-benchmarks' fashion-mnist-784-euclidean, likeness
# against hnswlib and faiss-cpu (HNSW, M=16, ef_construction=200; builds on
# BUILD_THREADS threads, search on one). Writes benches/ann/results.md and
# benches/ann/recall_qps.png. The peers are pip-installed into the torch venv
# on first use (benchmark only; nothing else depends on them). The row
# "likeness (Python API)" searches likeness's index through `import likeness`
# with the interpreter of `make python` (LIKENESS_PY_PYTHON).
set -euo pipefail
cd "$(dirname "$0")/../.."

LIKENESS_CACHE=${LIKENESS_CACHE:-$HOME/.cache/likeness}
PYTHON=${LIKENESS_PYTHON:-$LIKENESS_CACHE/torch-2.11.0/bin/python}
PYPKG=${LIKENESS_PY_PYTHON:-$LIKENESS_CACHE/py-1.16.0/bin/python}
BIN=${LIKENESS_BIN:-target/release/likeness}
DATA=${FASHION_MNIST:-$LIKENESS_CACHE/data/fashion-mnist}
WORK=${BENCH_ANN_WORK:-$LIKENESS_CACHE/bench-ann}
BUILD_THREADS=${BUILD_THREADS:-2}
EFS=${EFS:-10,16,24,32,48,64,96,128,256}
RUNS=${RUNS:-3}
OUT=benches/ann

for f in train-images-idx3-ubyte.gz t10k-images-idx3-ubyte.gz; do
    [[ -f $DATA/$f ]] || { echo "$DATA/$f missing: run \`make data\` first" >&2; exit 2; }
done
[[ -x $BIN ]] || { echo "$BIN missing: run \`make build\` first" >&2; exit 2; }
[[ -x $PYTHON ]] || { echo "$PYTHON missing: run \`make venv\` first" >&2; exit 2; }
"$PYPKG" -c 'import likeness' 2>/dev/null || { echo "$PYPKG cannot import likeness: run \`make python\` first" >&2; exit 2; }
if ! "$PYTHON" -c 'import hnswlib, faiss, matplotlib' 2>/dev/null; then
    echo "installing the benchmark peers into $("$PYTHON" -c 'import sys; print(sys.prefix)')" >&2
    "$PYTHON" -m pip install --quiet hnswlib faiss-cpu matplotlib
fi

P=("$PYTHON" "$OUT/peers.py")
common=(--work "$WORK" --m 16 --ef-construction 200 --build-threads "$BUILD_THREADS" --efs "$EFS" --runs "$RUNS")
echo "== data: $DATA -> $WORK"
"${P[@]}" prepare --data "$DATA" "${common[@]}"
echo "== likeness: build, exact ground truth, search"
"${P[@]}" likeness --bin "$BIN" "${common[@]}"
echo "== hnswlib"
"${P[@]}" hnswlib "${common[@]}"
echo "== faiss"
"${P[@]}" faiss "${common[@]}"
echo "== likeness (Python API)"
"${P[@]}" likeness-py --python "$PYPKG" "${common[@]}"
echo "== report"
"${P[@]}" report "${common[@]}" --out "$OUT/results.md" --plot "$OUT/recall_qps.png"
