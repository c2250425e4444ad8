#!/usr/bin/env python3
"""The PyTorch eager peer of `likeness embed` (benches/embed.sh).

torchvision ImageFolder + DataLoader (2 workers) feeding the model that
likeness exported (`model.pt`, TorchScript), with the same batch size, input
size and normalisation (read from model.json), under torch.no_grad on the
given number of intra-op threads; with --device cuda the loader pins its
batches and they are copied without blocking (PyTorch's recipe). Prints one JSON line: images, seconds,
images/s, peak RSS of this process and of its loader workers.
"""
import argparse
import json
import os
import resource
import time

import torch
import torchvision
from torchvision import transforms


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--out")
    a = ap.parse_args()
    dev = torch.device(a.device)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    torch.set_num_threads(a.threads)
    card = json.load(open(os.path.join(a.model, "model.json")))
    spec = card["spec"]
    size = spec["input_size"]
    t = [transforms.Grayscale(1)] if spec["channels"] == 1 else [transforms.Lambda(lambda im: im.convert("RGB"))]
    t += [
        transforms.Resize((size, size)),
        transforms.ToTensor(),
        transforms.Normalize(spec["mean"], spec["std"]),
    ]
    start = time.perf_counter()
    ds = torchvision.datasets.ImageFolder(a.data, transform=transforms.Compose(t))
    dl = torch.utils.data.DataLoader(
        ds, batch_size=a.batch, num_workers=a.workers, shuffle=False, pin_memory=dev.type == "cuda"
    )
    model = torch.jit.load(os.path.join(a.model, "model.pt"), map_location=dev)
    model.eval()
    out = []
    n = 0
    with torch.no_grad():
        for x, _ in dl:
            out.append(model(x.to(dev, non_blocking=True)).cpu())
            n += x.shape[0]
    seconds = time.perf_counter() - start
    emb = torch.cat(out)
    if a.out:
        import numpy as np

        np.save(a.out, emb.numpy())
    print(
        json.dumps(
            {
                "images": n,
                "seconds": seconds,
                "images_per_second": n / seconds,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "peak_rss_workers_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
                "torch": torch.__version__,
                "torchvision": torchvision.__version__,
            }
        )
    )


if __name__ == "__main__":
    main()
