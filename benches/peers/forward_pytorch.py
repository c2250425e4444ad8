#!/usr/bin/env python3
"""PyTorch eager peer of examples/embed_forward.rs: embed in-memory images in
batches (host tensor in pinned memory -> non-blocking copy to the device ->
forward under inference_mode -> embeddings back on the host), the same
network shape as likeness's (convnet width 1 at 28 px grey, the net of
train_pytorch.py; or torchvision's resnet18 at 112 px RGB with a 64-d head).
Prints one line: `pytorch images/s ...`."""
import argparse
import time

import torch
import torch.nn as nn

p = argparse.ArgumentParser()
p.add_argument("--images", type=int, default=20480)
p.add_argument("--batch", type=int, default=512)
p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
p.add_argument("--arch", choices=["convnet", "resnet18"], default="convnet")
p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
p.add_argument("--threads", type=int, default=2)
a = p.parse_args()
dev = torch.device(a.device)
torch.set_num_threads(a.threads)
torch.backends.cudnn.benchmark = True
torch.manual_seed(0)


def cbr(i, o):
    return [nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU()]


if a.arch == "resnet18":
    import torchvision

    net = torchvision.models.resnet18(num_classes=64)
    shape = (3, 112, 112)
else:
    net = nn.Sequential(*cbr(1, 32), *cbr(32, 32), nn.MaxPool2d(2), *cbr(32, 64), *cbr(64, 64),
                        nn.MaxPool2d(2), *cbr(64, 128), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(128, 64))
    shape = (1, 28, 28)
net = net.to(dev).eval()
x_host = torch.rand((a.images,) + shape) - 0.5
if dev.type == "cuda":
    x_host = x_host.pin_memory()


def run():
    out = []
    with torch.inference_mode(), torch.autocast(dev.type, dtype=torch.bfloat16, enabled=a.precision == "bf16"):
        for i in range(0, a.images, a.batch):
            x = x_host[i:i + a.batch].to(dev, non_blocking=True)
            out.append(net(x).float().cpu())
    return sum(o.shape[0] for o in out)


run()  # warm-up: CUDA's start, cuDNN's algorithm search
t = time.perf_counter()
n = run()
dt = time.perf_counter() - t
print(f"pytorch images/s {n / dt:.1f} ({n} in-memory images, batch {a.batch}, {a.arch}, {a.precision}, {a.device}, threads {a.threads})")
