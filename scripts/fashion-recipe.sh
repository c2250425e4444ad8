# The Fashion-MNIST training recipe of `make demo`, sourced by scripts/demo.sh,
# benches/budget.sh and benches/cuda.sh so that all three train the same
# network: convnet with channels widened by 1.25, dim 64, npair-mc with L2
# penalty 0.008, lr 4e-3, 2 tuples of 10 classes per step (40 images),
# test-time flip. The callers add --precision (bf16 in the demo), --seed (0),
# --epochs (5) and the validation flags.
# These are now `likeness train`'s defaults (issue 12); the flags stay so
# that the benchmarks that time 5 epochs of this recipe keep doing so.
# PLAIN_RECIPE: the earlier defaults (160 images per step, width 1, lr 1e-3,
# L2 0.002, no test-time flip, fp32 unless --precision), the throughput
# benchmarks' batch against PyTorch (benches/peers/train_pytorch.py).
# shellcheck shell=bash disable=SC2034
FASHION_RECIPE=(--arch convnet --dim 64 --loss npair-mc --width 1.25 --lr 4e-3 --l2-reg 0.008
    --flip-tta --tuples 2)
PLAIN_RECIPE=(--width 1 --tuples 8 --lr 1e-3 --l2-reg 0.002 --no-flip-tta)
