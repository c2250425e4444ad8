#!/usr/bin/env bash
# `make bench-latency`: `likeness query --image` on the Fashion-MNIST index of
# `make demo`, from process start to printed result (model load included),
# and where the time goes: the start of the libtorch binary alone
# (`likeness-torch --version`), index open, model load, decode + embed, and
# the torch-free path (`query --id`, no libtorch). Median of RUNS runs each.
set -euo pipefail
cd "$(dirname "$0")/.."
LIKENESS_CACHE=${LIKENESS_CACHE:-$HOME/.cache/likeness}
PYTHON=${LIKENESS_PYTHON:-$LIKENESS_CACHE/torch-2.11.0/bin/python}
BIN_DIR=${LIKENESS_BIN_DIR:-$(scripts/target-dir.sh)/release}  # where cargo put the binaries
BIN=${LIKENESS_BIN:-$BIN_DIR/likeness}
INDEX=${FASHION_INDEX:-runs/demo/fashion/index}
RUNS=${RUNS:-20}
WORK=${BENCH_LATENCY_WORK:-$LIKENESS_CACHE/bench-latency}
[[ -d $INDEX ]] || { echo "$INDEX missing: run \`make demo\` first" >&2; exit 2; }
mkdir -p "$WORK"
"$PYTHON" -c "
import gzip,sys
from PIL import Image
b=gzip.open(sys.argv[1]).read()[16:16+784]
Image.frombytes('L',(28,28),b).save(sys.argv[2])" "$LIKENESS_CACHE/data/fashion-mnist/t10k-images-idx3-ubyte.gz" "$WORK/query.png"
"$PYTHON" - "$BIN" "$INDEX" "$WORK/query.png" "$RUNS" <<'PY'
import re, statistics, subprocess, sys, time, os
bin_, index, image, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
torch_bin = os.path.join(os.path.dirname(bin_), "likeness-torch")
def wall(args, env=None):
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        p = subprocess.run(args, capture_output=True, text=True, env=env)
        ts.append(time.perf_counter() - t)
        if p.returncode != 0:
            sys.exit(f"{args} failed: {p.stderr}")
    return statistics.median(ts) * 1e3, p
env = dict(os.environ, LIKENESS_TIMING="1")
q, p = wall([bin_, "--threads", "2", "query", "--index", index, "--image", image, "-k", "10"], env)
parts = [re.search(r"timing: (.*)", l).group(1) for l in p.stderr.splitlines() if l.startswith("timing:")]
start, _ = wall([torch_bin, "--version"])
ident, _ = wall([bin_, "query", "--index", index, "--id", "0", "-k", "10"])
print(f"query --image, process start to printed result: median {q:.0f} ms over {runs} runs")
print(f"  inside the process (last run): {parts[0] if parts else 'n/a'}")
print(f"  libtorch binary start alone (likeness-torch --version): median {start:.0f} ms")
print(f"query --id (torch-free front binary): median {ident:.1f} ms")
PY
