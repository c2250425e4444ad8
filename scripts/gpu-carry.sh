#!/usr/bin/env bash
# Gathers into carry/ (git-ignored) what `make bench-cuda` needs on a GPU
# machine that has PyTorch but no Rust: the release binaries built here, the
# embed_forward example, the Fashion-MNIST test split and the johns crops
# (about 19 MB), and a `bc` stand-in in Python for machines without bc.
# On the GPU machine, from the repository root:
#   export LD_LIBRARY_PATH=$(python3 -c 'import torch,os;print(os.path.dirname(torch.__file__)+"/lib")')
#   command -v bc || { mkdir -p /tmp/shim; cp carry/bin/bc-shim /tmp/shim/bc; export PATH=/tmp/shim:$PATH; }
#   LIKENESS_CACHE=$PWD/carry/cache PARTS="threads decode embed serve" LIKENESS_BIN=$PWD/carry/bin/likeness \
#     EXAMPLE_BIN=$PWD/carry/bin/embed_forward LIKENESS_PYTHON=python3 OUT=/tmp/cudarun benches/cuda.sh
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=${LIKENESS_CACHE:-$HOME/.cache/likeness}
BIN_DIR=${LIKENESS_BIN_DIR:-$(scripts/target-dir.sh)/release}  # where cargo put the binaries
BINS=("$BIN_DIR/likeness" "$BIN_DIR/likeness-torch" "$BIN_DIR/examples/embed_forward")
for f in "${BINS[@]}"; do
    [[ -x $f ]] || { echo "$f missing: run \`make build\` and \`cargo build --release --example embed_forward\` (with the Makefile's torch environment)" >&2; exit 2; }
done
rm -rf carry
mkdir -p carry/bin carry/cache/data/fashion-mnist
cp "${BINS[@]}" carry/bin/
cp "$CACHE"/data/fashion-mnist/t10k-* carry/cache/data/fashion-mnist/
cp -r "$CACHE/data/johns" carry/cache/data/
cat > carry/bin/bc-shim <<'SH'
#!/bin/sh
# `bc -l` for machines without bc: evaluates the expression in Python.
exec python3 -c "import sys; v=eval(sys.stdin.read()); print(int(v) if isinstance(v,bool) else v)"
SH
chmod +x carry/bin/bc-shim
du -sh carry
