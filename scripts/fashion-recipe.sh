# The Fashion-MNIST training recipe of `make demo`, sourced by scripts/demo.sh,
# benches/budget.sh and benches/cuda.sh so that all three train the same
# network: convnet with channels widened by 1.25, dim 64, npair-mc with L2
# penalty 0.008, lr 4e-3, 2 tuples of 10 classes per step (40 images),
# test-time flip. The callers add --precision (bf16 in the demo), --seed (0),
# --epochs (5) and the validation flags.
# shellcheck shell=bash disable=SC2034
FASHION_RECIPE=(--arch convnet --dim 64 --loss npair-mc --width 1.25 --lr 4e-3 --l2-reg 0.008
    --flip-tta --tuples 2)
