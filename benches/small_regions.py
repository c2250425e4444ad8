"""How small a region `likeness asymmetry` can judge (docs/scores.md,
"Small regions").

Shrinks the swell set's test.csv photos so that each region's shorter box
edge measures SIZE px (cheek boxes are 36x30, under-eye 36x18 in the 150 px
photos: each label its own scale; none is enlarged), runs `likeness
asymmetry` on each shrunk set and on the photos as they are, and prints per
size and label the ROC AUC of unequal against equal pairs, the read-out's
mean absolute error against the true scores, and how far the read-out moved
from its full-size value on the same region.

    python3 benches/small_regions.py --likeness target/release/likeness \
        --model runs/demo/scores/model --out runs/small-regions 8 12 16 24

Needs NumPy and PyTorch (the torch venv's Python): PNGs are read and
written with zlib, shrunk with torch's antialiased bilinear resize (a
camera's smaller picture of the same face, not a crop of a blurred one).
"""
import argparse, csv, os, struct, subprocess, zlib

import numpy as np
import torch
import torch.nn.functional as F


def read_png(path):
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise SystemExit(f"{path}: not a PNG")
    pos, idat, hdr = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + n]
        if kind == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    w, h, depth, colour, _, _, interlace = hdr
    chans = {0: 1, 2: 3, 6: 4}.get(colour)
    if depth != 8 or chans is None or interlace:
        raise SystemExit(f"{path}: only 8-bit grey, RGB or RGBA PNGs, not interlaced")
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, 1 + w * chans)
    out = np.zeros((h, w * chans), np.int32)
    for y in range(h):
        f, line = raw[y, 0], raw[y, 1:].astype(np.int32)
        up = out[y - 1] if y else np.zeros_like(line)
        if f in (0, 2):
            out[y] = (line + up) % 256 if f == 2 else line
            continue
        row = np.zeros_like(line)
        for x in range(len(line)):
            a = row[x - chans] if x >= chans else 0
            c = up[x - chans] if x >= chans else 0
            if f == 1:
                p = a
            elif f == 3:
                p = (a + up[x]) // 2
            else:  # Paeth
                pa, pb, pc = abs(up[x] - c), abs(a - c), abs(a + up[x] - 2 * c)
                p = a if pa <= pb and pa <= pc else (up[x] if pb <= pc else c)
            row[x] = (line[x] + p) % 256
        out[y] = row
    img = out.reshape(h, w, chans).astype(np.uint8)
    return np.repeat(img, 3, 2) if chans == 1 else img[:, :, :3]


def write_png(path, img):
    h, w, _ = img.shape
    raw = b"".join(b"\0" + img[y].tobytes() for y in range(h))
    chunk = lambda k, b: struct.pack(">I", len(b)) + k + b + struct.pack(">I", zlib.crc32(k + b))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def shrink(sw, rows, size, out, photos):
    """The rows of a set whose regions' shorter edges measure `size` px
    (`photos`: those decoded so far, by path)."""
    shrunk, done = [], {}
    for r in rows:
        x, y, w, h = (int(r[k]) for k in "xywh")
        s = size / min(w, h)
        if s >= 1:
            continue
        dst = os.path.abspath(f"{out}/{size}/{r['path'][:-4]}_{r['label']}.png")
        if dst not in done:
            src = f"{sw}/{r['path']}"
            img = photos[src] = photos[src] if src in photos else read_png(src)
            t = torch.from_numpy(img).permute(2, 0, 1)[None].float()
            side = (round(img.shape[0] * s), round(img.shape[1] * s))
            small = F.interpolate(t, size=side, mode="bilinear", antialias=True)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            write_png(dst, small[0].permute(1, 2, 0).round().clamp(0, 255).byte().numpy())
            done[dst] = True
        shrunk.append(dict(r, path=dst, x=round(x * s), y=round(y * s),
                           w=max(1, round(w * s)), h=max(1, round(h * s))))
    return shrunk


def auc(values, positive):
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    v = np.asarray(values)[order]
    i = 0
    while i < len(v):  # ties share their mean rank
        j = i
        while j + 1 < len(v) and v[j + 1] == v[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    pos = np.asarray(positive)
    n_p, n_n = pos.sum(), (~pos).sum()
    return (ranks[pos].sum() - n_p * (n_p + 1) / 2) / (n_p * n_n)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--likeness", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--set", default=os.path.expanduser("~/.cache/likeness/data/swell-v2"))
    ap.add_argument("sizes", nargs="+", type=int)
    a = ap.parse_args()
    rows = list(csv.DictReader(open(f"{a.set}/test.csv")))
    runs, photos = {"full": f"{a.set}/test.csv"}, {}
    for size in sorted(a.sizes, reverse=True):
        shrunk = shrink(a.set, rows, size, a.out, photos)
        if shrunk:
            runs[size] = f"{a.out}/{size}.csv"
            with open(runs[size], "w", newline="") as f:
                wr = csv.DictWriter(f, fieldnames=list(rows[0]))
                wr.writeheader()
                wr.writerows(shrunk)
    results = {}
    for name, manifest in runs.items():
        dst = f"{a.out}/asymmetry-{name}"
        subprocess.run([a.likeness, "asymmetry", "--model", a.model, "--data", manifest,
                        "--out", dst], check=True, stdout=subprocess.DEVNULL)
        results[name] = list(csv.DictReader(open(f"{dst}/asymmetry.csv")))
    # The same pair at full size: the subject names the photograph, and the
    # shrunk file's name keeps the variant (..._v3_cheek.png).
    key = lambda r: (r["subject"], r["label"], os.path.basename(r["left_path"]).split(".")[0]
                     .removesuffix("_" + r["label"]))
    full = {key(r): r for r in results["full"]}
    print("| region's shorter edge | label | pairs | ROC AUC, read-out | ROC AUC, distance "
          "| read-out MAE | read-out moved from full size | mean distance "
          "| \\|read-out difference\\|, unequal / equal |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, res in results.items():
        for label in sorted({r["label"] for r in res}):
            rs = [r for r in res if r["label"] == label]
            unequal = [abs(float(r["left_score"]) - float(r["right_score"])) > 1e-6 for r in rs]
            ro = [abs(float(r["readout_difference"])) for r in rs]
            dist = [float(r["asymmetry"]) for r in rs]
            err = np.mean([abs(float(r[f"readout_{s}"]) - float(r[f"{s}_score"]))
                           for r in rs for s in ("left", "right")])
            moved = np.mean([abs(float(r[f"readout_{s}"]) - float(full[key(r)][f"readout_{s}"]))
                             for r in rs for s in ("left", "right")])
            diff = lambda want: np.mean([d for d, u in zip(ro, unequal) if u == want])
            edge = {"cheek": 30, "under_eye": 18}.get(label, "?") if name == "full" else name
            print(f"| {edge} px{' (full)' if name == 'full' else ''} | {label} | {len(rs)} "
                  f"| {auc(ro, unequal):.3f} | {auc(dist, unequal):.3f} | {err:.3f} | {moved:.3f} "
                  f"| {np.mean(dist):.3f} | {diff(True):.3f} / {diff(False):.3f} |")


if __name__ == "__main__":
    main()
