"""PyTorch eager reference for `make bench-train`: the same convnet, batch
(T tuples x N classes x 2 images), loss (N-pair-mc + L2) and optimizer (Adam)
as `likeness train --arch convnet`, on Fashion-MNIST, reporting images/s."""
import argparse, gzip, time, sys
import numpy as np
import torch, torch.nn as nn, torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--images", required=True)
p.add_argument("--labels", required=True)
p.add_argument("--steps", type=int, default=100)
p.add_argument("--tuples", type=int, default=8)
p.add_argument("--classes", type=int, default=10)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--dim", type=int, default=64)
p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
p.add_argument("--device", default="cpu", help="cpu or cuda")
a = p.parse_args()
dev = torch.device(a.device)
torch.set_num_threads(a.threads)
torch.manual_seed(0)

def idx(path):
    b = gzip.open(path).read() if path.endswith(".gz") else open(path, "rb").read()
    nd = b[3]
    dims = [int.from_bytes(b[4 + 4 * i: 8 + 4 * i], "big") for i in range(nd)]
    return np.frombuffer(b, np.uint8, offset=4 + 4 * nd).reshape(dims)

X = idx(a.images); Y = idx(a.labels)
by = [np.flatnonzero(Y == c) for c in range(10)]
mean, std = 0.2860, 0.3530

def cbr(i, o):
    return [nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU()]

net = nn.Sequential(*cbr(1, 32), *cbr(32, 32), nn.MaxPool2d(2), *cbr(32, 64), *cbr(64, 64),
                    nn.MaxPool2d(2), *cbr(64, 128), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                    nn.Linear(128, a.dim)).to(dev)
opt = torch.optim.Adam(net.parameters(), 1e-3)
rng = np.random.default_rng(0)
T, N = a.tuples, a.classes

def batch():
    anc, pos = [], []
    for _ in range(T):
        for c in rng.permutation(10)[:N]:
            i, j = rng.choice(by[c], 2, replace=False)
            anc.append(i); pos.append(j)
    x = X[np.concatenate([anc, pos])].astype(np.float32) / 255.0
    return torch.from_numpy((x - mean) / std).unsqueeze(1).to(dev)

def step(x):
    if a.precision == "bf16":
        with torch.autocast(dev.type, dtype=torch.bfloat16):
            f = net(x)
        f = f.float()
    else:
        f = net(x)
    fa, fp = f[:T * N].view(T, N, -1), f[T * N:].view(T, N, -1)
    logits = fa @ fp.transpose(1, 2)
    tgt = torch.arange(N, device=dev).repeat(T)
    loss = F.cross_entropy(logits.reshape(T * N, N), tgt)
    loss = loss + 0.002 * 0.25 * ((fa ** 2).sum(-1).mean() + (fp ** 2).sum(-1).mean())
    opt.zero_grad(); loss.backward(); opt.step()
    return loss.item()

net.train()
for _ in range(5):
    step(batch())
t = time.perf_counter()
for _ in range(a.steps):
    step(batch())
dt = time.perf_counter() - t
print(f"pytorch images/s {a.steps * 2 * T * N / dt:.1f} ({a.steps} steps, {dt:.2f}s, threads {a.threads}, {a.precision}, {a.device})")
