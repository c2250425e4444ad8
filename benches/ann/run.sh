#!/usr/bin/env bash
# `make bench-ann`: ann-benchmarks' fashion-mnist-784-euclidean, likeness
# against hnswlib and faiss-cpu (HNSW, M=16, ef_construction=200; builds on
# BUILD_THREADS threads, search on one). Writes benches/ann/results.md and
# benches/ann/recall_qps.png. The peers are pip-installed into the torch venv
# on first use (benchmark only; nothing else depends on them). The row
# "likeness (Python API)" searches likeness's index through `import likeness`
# with the interpreter of `make python` (LIKENESS_PY_PYTHON).
# Also: likeness's compact stores (--store f16, i8: re-ranked with float32),
# faiss IndexHNSWSQ (SQ8), usearch (PyPI `usearch`, pinned below) with f32,
# f16 and i8, and the label-filter table (planner vs the filtered graph alone).
# Knobs: QUERIES (first N of the 10,000 queries), EFS, RUNS, FILTER_EF and
# SYSTEMS (a subset, e.g. SYSTEMS="likeness likeness-i8 usearch-i8 filter").
set -euo pipefail
cd "$(dirname "$0")/../.."

LIKENESS_CACHE=${LIKENESS_CACHE:-$HOME/.cache/likeness}
PYTHON=${LIKENESS_PYTHON:-$LIKENESS_CACHE/torch-2.11.0/bin/python}
PYPKG=${LIKENESS_PY_PYTHON:-$LIKENESS_CACHE/py-1.16.0/bin/python}
BIN_DIR=${LIKENESS_BIN_DIR:-$(scripts/target-dir.sh)/release}  # where cargo put the binaries
BIN=${LIKENESS_BIN:-$BIN_DIR/likeness}
DATA=${FASHION_MNIST:-$LIKENESS_CACHE/data/fashion-mnist}
WORK=${BENCH_ANN_WORK:-$LIKENESS_CACHE/bench-ann}
BUILD_THREADS=${BUILD_THREADS:-2}
EFS=${EFS:-10,16,24,32,48,64,96,128,256}
RUNS=${RUNS:-3}
QUERIES=${QUERIES:-10000}
FILTER_EF=${FILTER_EF:-64}
USEARCH_VERSION=2.26.6
SYSTEMS=${SYSTEMS:-likeness likeness-f16 likeness-i8 hnswlib faiss faiss-sq8 usearch-f32 usearch-f16 usearch-i8 likeness-py filter}
OUT=benches/ann

for f in train-images-idx3-ubyte.gz t10k-images-idx3-ubyte.gz; do
    [[ -f $DATA/$f ]] || { echo "$DATA/$f missing: run \`make data\` first" >&2; exit 2; }
done
[[ -x $BIN ]] || { echo "$BIN missing: run \`make build\` first" >&2; exit 2; }
[[ -x $PYTHON ]] || { echo "$PYTHON missing: run \`make venv\` first" >&2; exit 2; }
if [[ " $SYSTEMS " == *" likeness-py "* ]]; then
    "$PYPKG" -c 'import likeness' 2>/dev/null || { echo "$PYPKG cannot import likeness: run \`make python\` first" >&2; exit 2; }
fi
if ! "$PYTHON" -c 'import hnswlib, faiss, matplotlib' 2>/dev/null; then
    echo "installing the benchmark peers into $("$PYTHON" -c 'import sys; print(sys.prefix)')" >&2
    "$PYTHON" -m pip install --quiet hnswlib faiss-cpu matplotlib
fi
# usearch, pinned: installed once into the same cached venv (outside the clone).
if [[ $("$PYTHON" -c 'import usearch; print(usearch.__version__)' 2>/dev/null) != "$USEARCH_VERSION" ]]; then
    echo "installing usearch $USEARCH_VERSION into $("$PYTHON" -c 'import sys; print(sys.prefix)')" >&2
    "$PYTHON" -m pip install --quiet "usearch==$USEARCH_VERSION"
fi

P=("$PYTHON" "$OUT/peers.py")
common=(--work "$WORK" --m 16 --ef-construction 200 --build-threads "$BUILD_THREADS" --efs "$EFS" --runs "$RUNS")
echo "== data: $DATA -> $WORK"
"${P[@]}" prepare --data "$DATA" --queries "$QUERIES" "${common[@]}"
# likeness f32 first: it writes the exact ground truth the others are scored on.
for s in likeness $SYSTEMS; do
    case $s in
        likeness) [[ ${done_f32:-} ]] && continue; done_f32=1
            echo "== likeness f32: build, exact ground truth, search"
            "${P[@]}" likeness --bin "$BIN" --store f32 "${common[@]}" ;;
        likeness-f16|likeness-i8)
            echo "== $s: build, search"
            "${P[@]}" likeness --bin "$BIN" --store "${s#likeness-}" "${common[@]}" ;;
        likeness-py)
            echo "== likeness (Python API)"
            "${P[@]}" likeness-py --python "$PYPKG" "${common[@]}" ;;
        filter)
            echo "== label filters (ef $FILTER_EF)"
            "${P[@]}" filter --bin "$BIN" --filter-ef "$FILTER_EF" "${common[@]}" ;;
        *)
            echo "== $s"
            "${P[@]}" "$s" "${common[@]}" ;;
    esac
done
echo "== report"
"${P[@]}" report "${common[@]}" --out "$OUT/results.md" --plot "$OUT/recall_qps.png"
