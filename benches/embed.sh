#!/usr/bin/env bash
# `make bench-embed`: likeness embed vs a PyTorch eager script on >= 10,000
# real image files: the Fashion-MNIST test set written as PNG files (one
# folder per class) plus the 55 johns JPEG crops, embedded by a Fashion-MNIST
# convnet (28 px grey; the JPEGs are decoded, converted and resized).
#
# Peer: torchvision ImageFolder + DataLoader(num_workers=2) + the model's own
# TorchScript export (model.pt), same batch size, 2 intra-op threads.
# Also measures likeness's threading layouts: decode then forward (default),
# decode overlapped with the forward pass (--prefetch 1), and one
# single-threaded decode+forward worker per core (two --threads 1 processes,
# each on half of the files).
#
# Then in-memory images, decoding out of the picture: likeness's forward loop
# (examples/embed_forward.rs) against PyTorch eager
# (benches/peers/forward_pytorch.py) at batch 512, convnet 28 px and
# resnet18 112 px.
#
# On a GPU (DEV=cuda, or auto where CUDA is found): likeness with its
# defaults there (pinned batches, decode overlapped with the forward pass,
# torch 2 threads, loader all cores) against the DataLoader script with
# pinned memory and PEER_WORKERS workers (default: 8 and all cores, best
# taken). LIKENESS_BIN, EXAMPLE_BIN, LIKENESS_PYTHON override the programs.
set -euo pipefail
cd "$(dirname "$0")/.."

LIKENESS_CACHE=${LIKENESS_CACHE:-$HOME/.cache/likeness}
PYTHON=${LIKENESS_PYTHON:-$LIKENESS_CACHE/torch-2.11.0/bin/python}
BIN_DIR=${LIKENESS_BIN_DIR:-$(scripts/target-dir.sh)/release}  # where cargo put the binaries
BIN=${LIKENESS_BIN:-$BIN_DIR/likeness}
EXAMPLE_BIN=${EXAMPLE_BIN:-$BIN_DIR/examples/embed_forward}
DEV=${DEV:-auto}
FM=$LIKENESS_CACHE/data/fashion-mnist
JOHNS=$LIKENESS_CACHE/data/johns
WORK=${BENCH_EMBED_WORK:-$LIKENESS_CACHE/bench-embed}
BATCH=${BATCH:-256}
MODEL=${MODEL:-}
RUNS=${RUNS:-2}

[[ -x $BIN ]] || { echo "$BIN missing: run \`make build\` first" >&2; exit 2; }
if [[ $DEV == auto ]]; then
    DEV=$("$BIN" doctor --json | "$PYTHON" -c 'import json,sys; print("cuda" if json.load(sys.stdin)["cuda_available"] else "cpu")')
fi
echo "device: $DEV"
if ! "$PYTHON" -c 'import torchvision' 2>/dev/null; then
    echo "installing torchvision 0.26.0 (matches torch 2.11.0) into the venv" >&2
    "$PYTHON" -m pip install --quiet --no-deps torchvision==0.26.0 pillow
fi

mkdir -p "$WORK"
IMAGES=$WORK/images
if [[ ! -f $IMAGES/.complete ]]; then
    echo "== writing the Fashion-MNIST test set as PNG files and copying the johns crops into $IMAGES"
    rm -rf "$IMAGES"
    "$PYTHON" - "$FM" "$JOHNS" "$IMAGES" <<'PY'
import gzip, os, shutil, sys
from PIL import Image
fm, johns, out = sys.argv[1:]
names = ["T-shirt_top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle_boot"]
imgs = gzip.open(os.path.join(fm, "t10k-images-idx3-ubyte.gz")).read()[16:]
labels = gzip.open(os.path.join(fm, "t10k-labels-idx1-ubyte.gz")).read()[8:]
for i, l in enumerate(labels):
    d = os.path.join(out, names[l])
    os.makedirs(d, exist_ok=True)
    Image.frombytes("L", (28, 28), imgs[i * 784:(i + 1) * 784]).save(os.path.join(d, f"{i:05d}.png"))
for p in sorted(os.listdir(johns)):
    src = os.path.join(johns, p)
    if os.path.isdir(src):
        shutil.copytree(src, os.path.join(out, "johns_" + p))
PY
    touch "$IMAGES/.complete"
fi
count=$(find "$IMAGES" -type f \( -name '*.png' -o -name '*.jpg' \) | wc -l)
echo "images: $count files"

if [[ -z $MODEL ]]; then
    MODEL=$WORK/model
    if [[ ! -f $MODEL/model.pt ]]; then
        echo "== a Fashion-MNIST convnet to embed with (speed does not depend on its quality)"
        "$BIN" --device "$DEV" train --data "$FM/t10k-images-idx3-ubyte.gz" --out "$MODEL" --epochs 1 \
            --steps-per-epoch 50 --val none --force
    fi
fi

rss() { /usr/bin/time -f "%M" -o "$1" "${@:2}"; }
best() { sort -g | tail -1; }

in_memory() { # the in-memory forward loops, likeness then PyTorch, and their ratio
    local images=$1 n l p
    for arch in convnet resnet18; do
        n=$images; [[ $arch == resnet18 ]] && n=$(( images / 4 ))
        l=$("$EXAMPLE_BIN" "$n" 512 "$DEV" "$arch")
        p=$("$PYTHON" benches/peers/forward_pytorch.py --images "$n" --batch 512 --device "$DEV" --arch "$arch")
        echo "  $l"; echo "  $p"
        printf '  %s: likeness / PyTorch eager = %.2fx (target >= 1.0x)\n' "$arch" \
            "$(echo "$(awk '{print $3}' <<< "$l") / $(awk '{print $3}' <<< "$p")" | bc -l)"
    done
}

# GPU_LAYOUT=1 runs the GPU comparison on any device (a dry run on a CPU).
if [[ $DEV == cuda* || ${GPU_LAYOUT:-} == 1 ]]; then
    run_gpu() { # label, likeness args...
        local best=0
        for _ in $(seq "$RUNS"); do
            rm -rf "$WORK/out"
            s=$(date +%s.%N)
            "$BIN" --device "$DEV" embed --model "$MODEL" --data "$IMAGES" --out "$WORK/out" --batch "$BATCH" "${@:2}" > /dev/null
            e=$(date +%s.%N)
            best=$(printf '%s\n%s\n' "$best" "$(echo "$count / ($e - $s)" | bc -l)" | best)
        done
        printf '| likeness embed %s | %.0f |\n' "$1" "$best" >> "$WORK/gpu.rows"
        echo "$best"
    }
    : > "$WORK/gpu.rows"
    echo "== likeness embed on $DEV: defaults, then the defaults of before (all cores for torch, no prefetch)"
    G0=$(run_gpu "(defaults)")
    run_gpu "--threads $(nproc) --prefetch 0" --threads "$(nproc)" --prefetch 0 > /dev/null
    P=0
    for w in ${PEER_WORKERS:-8 $(nproc)}; do
        for _ in $(seq "$RUNS"); do
            j=$("$PYTHON" benches/peers/embed_pytorch.py --model "$MODEL" --data "$IMAGES" --batch "$BATCH" --workers "$w" --threads 2 --device "$DEV")
            echo "  workers $w: $j"
            P=$(printf '%s\n%s\n' "$P" "$(echo "$j" | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["images_per_second"])')" | best)
        done
    done
    echo "== in memory, batch 512"
    in_memory "${IN_MEMORY_IMAGES:-40960}"
    echo
    printf 'files: %d images, batch %d, best of %d runs, %s cores, %s\n' "$count" "$BATCH" "$RUNS" "$(nproc)" "$DEV"
    printf '| layout | images/s |\n|---|---:|\n'
    cat "$WORK/gpu.rows"
    printf '| PyTorch (ImageFolder, DataLoader pinned, best of workers %s, model.pt) | %.0f |\n' "${PEER_WORKERS:-8 $(nproc)}" "$P"
    printf 'likeness / PyTorch DataLoader = %.2fx (target >= 1.5x)\n' "$(echo "$G0 / $P" | bc -l)"
    exit 0
fi

# Halves for the one-worker-per-core layout.
find "$IMAGES" -type f \( -name '*.png' -o -name '*.jpg' \) | sort > "$WORK/all.txt"
for h in 0 1; do
    { echo "path,label"; awk -v h=$h 'NR % 2 == h { n = split($0, p, "/"); print $0 "," p[n-1] }' "$WORK/all.txt"; } > "$WORK/half$h.csv"
done


run_likeness() { # prefetch
    local ips=() peak=0
    for _ in $(seq "$RUNS"); do
        rm -rf "$WORK/out"
        s=$(date +%s.%N)
        rss "$WORK/rss" "$BIN" --threads 2 embed --model "$MODEL" --data "$IMAGES" --out "$WORK/out" \
            --batch "$BATCH" --prefetch "$1" > /dev/null
        e=$(date +%s.%N)
        ips+=("$(echo "$count / ($e - $s)" | bc -l)")
        peak=$(cat "$WORK/rss")
    done
    printf '%s\n' "${ips[@]}" | best
    echo "$peak" > "$WORK/rss.likeness.$1"
}

echo "== likeness embed (default: decode, then forward)"
L0=$(run_likeness 0); echo "  $L0 images/s (process start to exit), peak RSS $(( $(cat "$WORK/rss.likeness.0") / 1024 )) MB"
echo "== likeness embed --prefetch 1 (decode of the next batch overlapped with the forward pass)"
L1=$(run_likeness 1); echo "  $L1 images/s"
echo "== likeness: one --threads 1 process per core, each on half of the files"
best_w=0
for _ in $(seq "$RUNS"); do
    rm -rf "$WORK/out0" "$WORK/out1"
    s=$(date +%s.%N)
    "$BIN" --threads 1 embed --model "$MODEL" --data "$WORK/half0.csv" --out "$WORK/out0" --batch "$BATCH" > /dev/null &
    "$BIN" --threads 1 embed --model "$MODEL" --data "$WORK/half1.csv" --out "$WORK/out1" --batch "$BATCH" > /dev/null
    wait
    e=$(date +%s.%N)
    best_w=$(printf '%s\n%s\n' "$best_w" "$(echo "$count / ($e - $s)" | bc -l)" | best)
done
LW=$best_w; echo "  $LW images/s"
echo "== PyTorch eager: ImageFolder + DataLoader(2 workers) + model.pt"
P=0
for _ in $(seq "$RUNS"); do
    j=$("$PYTHON" benches/peers/embed_pytorch.py --model "$MODEL" --data "$IMAGES" --batch "$BATCH" --workers 2 --threads 2)
    echo "  $j"
    P=$(printf '%s\n%s\n' "$P" "$(echo "$j" | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["images_per_second"])')" | best)
done
echo
printf 'images: %d, batch %d, best of %d runs, %s\n' "$count" "$BATCH" "$RUNS" "$(nproc) cores"
printf '| layout | images/s |\n|---|---:|\n'
printf '| likeness, decode then forward (default) | %.0f |\n' "$L0"
printf '| likeness, decode overlapped with forward (--prefetch 1) | %.0f |\n' "$L1"
printf '| likeness, one --threads 1 process per core | %.0f |\n' "$LW"
printf '| PyTorch eager (ImageFolder, DataLoader 2 workers, model.pt) | %.0f |\n' "$P"
printf 'likeness / PyTorch = %.2fx (target >= 1.5x)\n' "$(echo "$L0 / $P" | bc -l)"
echo
echo "== in memory, batch 512 (likeness forward loop vs PyTorch eager, $DEV)"
in_memory "${IN_MEMORY_IMAGES:-4096}"
