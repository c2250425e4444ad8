"""ann-benchmarks' fashion-mnist-784-euclidean for `make bench-ann`: likeness
against hnswlib and faiss-cpu (HNSW), same M and ef_construction, search on
one thread, recall@10 against exact ground truth from `likeness query --exact`.

Subcommands (benches/ann/run.sh calls them in this order):
  prepare   IDX files -> base.npy (60000x784 f32), queries.npy (10000x784 f32)
  likeness  build (timed), exact ground truth, then one `query` run per ef
  hnswlib   build in one process (timed), load + search in another
  faiss     same for faiss.IndexHNSWFlat
  faiss-sq8 faiss.IndexHNSWSQ with 8-bit scalar quantization (no re-ranking)
  usearch-f32, usearch-f16, usearch-i8
            usearch (PyPI `usearch`) with each of its stores; the data are
            mapped from [0, 255] onto [-1, 1] for usearch only (its i8 maps
            [-1, 1] onto the codes; a shift and a uniform scale change no
            L2 neighbour)
  likeness --store f16|i8
            likeness's compact stores, re-ranked with float32 (rows
            likeness-f16, likeness-i8)
  filter    a label filter at 50/10/5/2/1/0.1 % selectivity: labels drawn
            uniformly from 1000, exact filtered ground truth, then the
            planner (auto) and the filtered graph alone ("graph", what every
            filter did before the planner) at one ef
  likeness-py  the index `likeness` built, searched through the Python
            package (`import likeness`, Index.search) in this same harness
  report    results.md (markdown tables) and recall_qps.png

Every Python API (hnswlib, faiss, likeness's) also times one query per call
(ef 10, k 10): the per-call time against the per-query time of the batched
call at the same ef is the cost of going through Python for a single query.

Every system appends JSON lines to WORK/results.jsonl. Recall follows
ann-benchmarks: a returned item counts when its true distance is within the
k-th exact distance (+1e-3 relative slack, for ties between duplicates).
"""
import argparse
import gzip
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time

import numpy as np

EFS = [10, 16, 24, 32, 48, 64, 96, 128, 256]
K = 10


def vm_hwm():
    """Peak resident set size of this process in bytes (VmHWM)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def read_idx_images(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, n, rows, cols = np.frombuffer(data[:16], dtype=">u4")
    assert magic == 2051, f"{path}: not an IDX image file"
    x = np.frombuffer(data[16:], dtype=np.uint8, count=n * rows * cols)
    return x.reshape(n, rows * cols).astype(np.float32)


def append(work, row):
    with open(os.path.join(work, "results.jsonl"), "a") as f:
        f.write(json.dumps(row) + "\n")
    keys = ("system", "ef", "recall", "qps")
    if row.get("kind") == "search":
        print("  {:<9} ef={:<4} recall@10={:.4f} {:>9.0f} q/s".format(
            row["system"], row["ef"], row["recall"], row["qps"]), flush=True)
    else:
        print("  " + ", ".join(f"{k}={v}" for k, v in row.items() if k not in keys or k == "system"),
              flush=True)


class Truth:
    """Exact neighbours and the recall of an answer against them."""

    def __init__(self, work):
        self.base = np.load(os.path.join(work, "base.npy"), mmap_mode="r")
        self.queries = np.load(os.path.join(work, "queries.npy"))
        self.ids = np.load(os.path.join(work, "gt.npy"))
        assert self.ids.shape == (len(self.queries), K), self.ids.shape
        self.kth = self.dist(self.ids)[:, K - 1]

    def dist(self, ids):
        """Squared L2 distance of each query to each of its ids (rows)."""
        out = np.empty(ids.shape, dtype=np.float64)
        for q in range(len(ids)):
            d = self.base[ids[q]].astype(np.float64) - self.queries[q]
            out[q] = np.einsum("ij,ij->i", d, d)
        return out

    def recall(self, ids):
        ids = np.asarray(ids, dtype=np.int64)
        valid = ids >= 0
        d = self.dist(np.where(valid, ids, 0))
        ok = valid & (d <= self.kth[:, None] * (1 + 1e-3) + 1e-6)
        return float(ok.sum()) / ids.size

    def id_recall(self, ids):
        hits = sum(len(np.intersect1d(a, b)) for a, b in zip(ids, self.ids))
        return hits / self.ids.size


def cmd_prepare(a):
    os.makedirs(a.work, exist_ok=True)
    for name, src in (("base.npy", "train-images-idx3-ubyte.gz"),
                      ("queries.npy", "t10k-images-idx3-ubyte.gz")):
        path = os.path.join(a.work, name)
        want = a.queries if name == "queries.npy" else None
        if os.path.exists(path) and want is not None:
            if np.load(path, mmap_mode="r").shape[0] != want:
                os.remove(path)
        if not os.path.exists(path):
            x = read_idx_images(os.path.join(a.data, src))
            np.save(path, x[:want] if want else x)
        x = np.load(path, mmap_mode="r")
        print(f"  {name}: {x.shape[0]} x {x.shape[1]} {x.dtype}")
    open(os.path.join(a.work, "results.jsonl"), "w").close()


def run_likeness(args, stderr_path=None):
    t = time.perf_counter()
    p = subprocess.run(args, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if p.returncode != 0:
        sys.exit(f"{' '.join(args)} failed:\n{p.stdout}{p.stderr}")
    return p, wall


def parse_query_stderr(text):
    """The numbers `likeness query` prints on stderr."""
    m = re.search(r"([\d.]+) queries/s \(([\d.]+)s\); index open ([\d.]+) ms; "
                  r"rss after open ([\d.]+) MB, peak rss ([\d.]+) MB", text)
    if not m:
        sys.exit(f"cannot parse likeness query output:\n{text}")
    out = dict(qps=float(m[1]), search_seconds=float(m[2]), open_ms=float(m[3]),
               rss_after_open_mb=float(m[4]), peak_rss_mb=float(m[5]))
    r = re.search(r"resident: ([^;\n]*)", text)
    if r:
        out["resident_mb"] = {f: float(v) for f, v in
                              re.findall(r"([\w.]+) ([\d.]+) MB", r[1])}
    p = re.search(r"plan (\w+)", text)
    if p:
        out["plan"] = p[1]
    return out


STORE_FILE = {"f32": "vectors.npy", "f16": "vectors.f16", "i8": "vectors.i8"}


def cmd_likeness(a):
    """Builds likeness's index with --store (f32: also the exact ground
    truth), then searches it on one thread at every ef."""
    w = a.work
    store = a.store or "f32"
    system = "likeness" if store == "f32" else f"likeness-{store}"
    ix = os.path.join(w, "likeness-index" if store == "f32" else f"likeness-index-{store}")
    base, queries, gt = (os.path.join(w, n) for n in ("base.npy", "queries.npy", "gt.npy"))
    def build(out, threads):
        b = [a.bin, "--threads", str(threads), "build", "--vectors", base, "--out", out,
             "--metric", "l2", "--m", str(a.m), "--ef-construction", str(a.ef_construction),
             "--seed", "1", "--store", store, "--force"]
        p, wall = run_likeness(b)
        graph = re.search(r"graph ([\d.]+)s", p.stdout)
        append(w, dict(system=system, kind="build", build_seconds=round(wall, 2),
                       graph_seconds=float(graph[1]) if graph else None, threads=threads,
                       index_mb=round(dir_size(out) / 1e6, 1)))

    if store == "f32":
        # The build time on --build-threads (against the peers'), then the
        # searched index on one thread: a one-thread build is reproducible,
        # so f32, f16 and i8 search the same graph and their recall differs
        # by the store alone.
        build(ix + "-timed", a.build_threads)
        shutil.rmtree(ix + "-timed")
    build(ix, 1)
    if store == "f32" or not os.path.exists(gt):
        q = [a.bin, "--threads", str(a.build_threads), "query", "--index", ix, "--vectors",
             queries, "-k", str(K), "--exact", "--out", gt]
        p, wall = run_likeness(q)
        s = parse_query_stderr(p.stderr)
        base_bytes = np.load(base, mmap_mode="r").nbytes
        nq = np.load(queries, mmap_mode="r").shape[0]
        append(w, dict(system="likeness", kind="exact", seconds=s["search_seconds"],
                       threads=a.build_threads, qps=s["qps"],
                       scan_gb_per_s=round(nq * base_bytes / s["search_seconds"] / 1e9, 1)))
    truth = Truth(w)
    for ef in a.efs:
        out = os.path.join(w, f"{system}-ef{ef}.npy")
        q = [a.bin, "--threads", "1", "query", "--index", ix, "--vectors", queries,
             "-k", str(K), "--ef", str(ef), "--out", out]
        # Best of --runs, as ann-benchmarks does: noise only slows a run down.
        s = max((parse_query_stderr(run_likeness(q)[0].stderr) for _ in range(a.runs)),
                key=lambda r: r["qps"])
        ids = np.load(out)
        res = s.get("resident_mb", {})
        append(w, dict(system=system, kind="search", ef=ef, recall=truth.recall(ids),
                       id_recall=truth.id_recall(ids), qps=s["qps"], open_ms=s["open_ms"],
                       peak_rss_mb=s["peak_rss_mb"], rss_after_open_mb=s["rss_after_open_mb"],
                       searched_resident_mb=res.get(STORE_FILE[store]),
                       float32_resident_mb=res.get("vectors.npy"),
                       graph_resident_mb=res.get("graph.bin")))


FILTER_LABELS = 1000
# Selectivity -> how many of the 1000 equally likely labels the filter keeps.
FILTER_FRACTIONS = [(0.5, 500), (0.1, 100), (0.05, 50), (0.02, 20), (0.01, 10), (0.001, 1)]


def cmd_filter(a):
    """The label-filter table: one index of the base with labels drawn
    uniformly from 1000 (seeded), filters keeping 50 % ... 0.1 % of it."""
    w = a.work
    base, queries = (os.path.join(w, n) for n in ("base.npy", "queries.npy"))
    n = np.load(base, mmap_mode="r").shape[0]
    labels = np.random.default_rng(17).integers(0, FILTER_LABELS, size=n).astype(np.int64)
    lpath = os.path.join(w, "filter-labels.npy")
    np.save(lpath, labels)
    ix = os.path.join(w, "likeness-index-labels")
    run_likeness([a.bin, "--threads", str(a.build_threads), "build", "--vectors", base,
                  "--labels", lpath, "--out", ix, "--metric", "l2", "--m", str(a.m),
                  "--ef-construction", str(a.ef_construction), "--seed", "1", "--force"])
    ef = a.filter_ef

    def query(extra, out, threads="1"):
        q = [a.bin, "--threads", threads, "query", "--index", ix, "--vectors", queries,
             "-k", str(K), "--ef", str(ef), "--out", out] + extra
        # At most two runs: the filtered graph alone walks most of the graph
        # at 0.1 % (tens of ms per query).
        return max((parse_query_stderr(run_likeness(q)[0].stderr)
                    for _ in range(min(a.runs, 2))), key=lambda r: r["qps"])

    s = query([], os.path.join(w, "filter-none.npy"))
    append(w, dict(system="filter", kind="filter", fraction=1.0, plan="graph", ef=ef,
                   qps=s["qps"], recall=None, passing=n))
    for frac, nl in FILTER_FRACTIONS:
        keep = ",".join(str(l) for l in range(nl))
        passing = int(np.isin(labels, np.arange(nl)).sum())
        gt = os.path.join(w, f"filter-gt-{nl}.npy")
        run_likeness([a.bin, "--threads", str(a.build_threads), "query", "--index", ix,
                      "--vectors", queries, "-k", str(K), "--exact", "--labels", keep,
                      "--out", gt])
        truth = np.load(gt)
        for plan in ("auto", "graph", "exact"):
            out = os.path.join(w, f"filter-{nl}-{plan}.npy")
            s = query(["--labels", keep, "--plan", plan], out)
            ids = np.load(out)
            hits = sum(len(np.intersect1d(x[x >= 0], t[t >= 0])) for x, t in zip(ids, truth))
            want = np.minimum((truth >= 0).sum(axis=1), K)
            short = int(((ids >= 0).sum(axis=1) < want).sum())
            append(w, dict(system="filter", kind="filter", fraction=frac, plan=plan,
                           ran=s.get("plan"), ef=ef, qps=s["qps"],
                           recall=hits / max(int(want.sum()), 1), short_rows=short,
                           passing=passing))


def dir_size(d):
    if os.path.isfile(d):
        return os.path.getsize(d)
    return sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))


def usearch_scale(x):
    """Pixels [0, 255] -> [-1, 1]: usearch's i8 maps [-1, 1] onto its codes."""
    return x / np.float32(127.5) - np.float32(1.0)


def peer_build(a):
    """Builds the peer's index in this process; the search runs in a fresh one."""
    base = np.load(os.path.join(a.work, "base.npy"))
    path = os.path.join(a.work, f"{a.system}.index")
    t = time.perf_counter()
    if a.system == "hnswlib":
        import hnswlib
        ix = hnswlib.Index(space="l2", dim=base.shape[1])
        ix.init_index(max_elements=len(base), ef_construction=a.ef_construction, M=a.m,
                      random_seed=1)
        ix.add_items(base, np.arange(len(base)), num_threads=a.build_threads)
        build = time.perf_counter() - t
        ix.save_index(path)
    elif a.system.startswith("usearch-"):
        from usearch.index import Index as UIndex
        ix = UIndex(ndim=base.shape[1], metric="l2sq", dtype=a.system.split("-")[1],
                    connectivity=a.m, expansion_add=a.ef_construction)
        t = time.perf_counter()
        ix.add(np.arange(len(base)), usearch_scale(base), threads=a.build_threads)
        build = time.perf_counter() - t
        ix.save(path)
    elif a.system == "faiss-sq8":
        import faiss
        faiss.omp_set_num_threads(a.build_threads)
        ix = faiss.IndexHNSWSQ(base.shape[1], faiss.ScalarQuantizer.QT_8bit, a.m)
        ix.hnsw.efConstruction = a.ef_construction
        ix.train(base)
        ix.add(base)
        build = time.perf_counter() - t
        faiss.write_index(ix, path)
    else:
        import faiss
        faiss.omp_set_num_threads(a.build_threads)
        ix = faiss.IndexHNSWFlat(base.shape[1], a.m)
        ix.hnsw.efConstruction = a.ef_construction
        ix.add(base)
        build = time.perf_counter() - t
        faiss.write_index(ix, path)
    print(json.dumps(dict(system=a.system, kind="build", build_seconds=round(build, 2),
                          threads=a.build_threads, index_mb=round(dir_size(path) / 1e6, 1))))


def peer_search(a):
    queries = np.load(os.path.join(a.work, "queries.npy"))
    path = os.path.join(a.work, f"{a.system}.index")
    t = time.perf_counter()
    if a.system == "hnswlib":
        import hnswlib
        ix = hnswlib.Index(space="l2", dim=queries.shape[1])
        ix.load_index(path)
        ix.set_num_threads(1)
    elif a.system in ("faiss", "faiss-sq8"):
        import faiss
        faiss.omp_set_num_threads(1)
        ix = faiss.read_index(path)
    elif a.system.startswith("usearch-"):
        from usearch.index import Index as UIndex
        ix = UIndex.restore(path)
        queries = usearch_scale(queries)
    else:
        import likeness
        ix = likeness.Index.open(os.path.join(a.work, "likeness-index"))
    open_ms = (time.perf_counter() - t) * 1e3

    def search(q, ef):
        """ids of `q`'s K nearest, one thread, through each library's Python API."""
        if a.system == "hnswlib":
            ix.set_ef(ef)
            return ix.knn_query(q, k=K, num_threads=1)[0]
        if a.system in ("faiss", "faiss-sq8"):
            ix.hnsw.efSearch = ef
            return ix.search(q, K)[1]
        if a.system.startswith("usearch-"):
            ix.expansion_search = ef
            return ix.search(q, K, threads=1).keys.astype(np.int64)
        return ix.search(q, k=K, ef=ef, threads=1)[0]

    runs = []
    for ef in a.efs:
        best = 0.0
        for _ in range(a.runs):
            t = time.perf_counter()
            ids = search(queries, ef)
            best = max(best, len(queries) / (time.perf_counter() - t))
        runs.append((ef, ids, best))
    # One query per call: the per-call cost of each Python API (the
    # original three only; the store peers skip it).
    ef, n = 10, min(2000, len(queries))
    best_batch = best_call = float("inf")
    for _ in range(a.runs if a.system in API else 0):
        t = time.perf_counter()
        search(queries[:n], ef)
        best_batch = min(best_batch, (time.perf_counter() - t) / n * 1e6)
        t = time.perf_counter()
        for i in range(n):
            search(queries[i:i + 1], ef)
        best_call = min(best_call, (time.perf_counter() - t) / n * 1e6)
    # Peak RSS before the ground truth is loaded for scoring.
    peak = vm_hwm()
    truth = Truth(a.work)
    for ef_, ids, qps in runs:
        print(json.dumps(dict(system=a.system, kind="search", ef=ef_,
                              recall=truth.recall(ids), id_recall=truth.id_recall(ids),
                              qps=qps, open_ms=round(open_ms, 2),
                              peak_rss_mb=round(peak / 1e6, 1))), flush=True)
    if a.system in API:
        print(json.dumps(dict(system=a.system, kind="per_call", ef=ef, k=K, calls=n,
                              call_us=round(best_call, 2),
                              batch_query_us=round(best_batch, 2))), flush=True)


def cmd_peer(a):
    """Runs the build and the search as two child processes of this script."""
    me = [sys.executable, os.path.abspath(__file__)]
    common = ["--work", a.work, "--m", str(a.m), "--ef-construction", str(a.ef_construction),
              "--build-threads", str(a.build_threads), "--efs", ",".join(map(str, a.efs)),
              "--runs", str(a.runs)]
    stages = ("peer-build", "peer-search")
    if a.system == "likeness-py":
        # Searches the index `likeness build` wrote (cmd_likeness), with the
        # interpreter that has the package installed (`make python`).
        me[0] = a.python or sys.executable
        stages = ("peer-search",)
    for stage in stages:
        env = dict(os.environ)
        if stage == "peer-search":
            env["OMP_NUM_THREADS"] = "1"
        p = subprocess.run(me + [stage, a.system] + common, capture_output=True, text=True,
                           env=env)
        if p.returncode != 0:
            sys.exit(f"{a.system} {stage} failed:\n{p.stdout}{p.stderr}")
        for line in p.stdout.splitlines():
            if line.startswith("{"):
                append(a.work, json.loads(line))


NAMES = {"likeness-py": "likeness (Python API)", "likeness": "likeness f32",
         "likeness-f16": "likeness f16", "likeness-i8": "likeness i8",
         "faiss": "faiss HNSWFlat", "faiss-sq8": "faiss HNSWSQ8",
         "usearch-f32": "usearch f32", "usearch-f16": "usearch f16", "usearch-i8": "usearch i8"}
API = {"likeness-py": "likeness `Index.search`", "hnswlib": "hnswlib `knn_query`",
       "faiss": "faiss `search`"}
ORDER = ("likeness", "likeness-f16", "likeness-i8", "hnswlib", "faiss", "faiss-sq8",
         "usearch-f32", "usearch-f16", "usearch-i8", "likeness-py")


def best_at(rows, threshold):
    ok = [r for r in rows if r["recall"] >= threshold]
    return max(ok, key=lambda r: r["qps"]) if ok else None


def fmt(x, spec=",.0f"):
    return "–" if x is None else format(x, spec)


def cmd_report(a):
    rows = [json.loads(l) for l in open(os.path.join(a.work, "results.jsonl")) if l.strip()]
    systems = [s for s in ORDER if any(r["system"] == s for r in rows)]
    search = {s: sorted((r for r in rows if r["system"] == s and r["kind"] == "search"),
                        key=lambda r: r["ef"]) for s in systems}
    build = {s: next((r for r in rows if r["system"] == s and r["kind"] == "build"), {})
             for s in systems}
    exact = next((r for r in rows if r["kind"] == "exact"), None)
    nq = np.load(os.path.join(a.work, "queries.npy"), mmap_mode="r").shape[0]
    cpu = "unknown CPU"
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                   if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    name = lambda s: NAMES.get(s, s)  # noqa: E731
    md = []
    md.append("# ANN benchmark: fashion-mnist-784-euclidean\n")
    md.append(f"60,000 base vectors × 784 (f32), {nq:,} queries, k = {K}, squared L2. "
              f"HNSW with M = {a.m}, ef_construction = {a.ef_construction}; builds on "
              f"{build[systems[0]].get('threads', '?')} threads (likeness's searched indexes "
              f"on one, so that f32, f16 and i8 share one graph), search on 1 thread "
              f"(best of {a.runs} runs per ef). "
              f"Recall@10 as in ann-benchmarks (distance within the 10th exact distance). "
              f"likeness f16/i8 search compact vectors and re-rank the best `ef` with float32 "
              f"(exact distances); faiss HNSWSQ8 and usearch return their compact distances. "
              f"Machine: {cpu}, {os.cpu_count()} cores, shared with other jobs (compare "
              f"within a run). Produced by `make bench-ann` (benches/ann/run.sh) on "
              f"{time.strftime('%Y-%m-%d')}.\n")
    md.append("## Build, open and memory\n")
    md.append("Resident memory after a full query pass: the peak RSS of the search process "
              "(for the Python peers it includes the interpreter, numpy and the queries); for "
              "likeness also the resident bytes of each mapped file (/proc/self/smaps): the "
              "searched vectors (`vectors.npy` for f32, the compact file for f16/i8) and the "
              "float32 vectors the re-ranking reads.\n")
    md.append("| system | build (s) | build threads | index size (MB) | open (ms) | "
              "peak RSS (MB) | searched vectors resident (MB) | float32 resident (MB) |")
    md.append("|---|---:|---:|---:|---:|---:|---:|---:|")
    for s in systems:
        b, srch = build[s], search[s]
        sr = [r.get("searched_resident_mb") for r in srch if r.get("searched_resident_mb")]
        fr = [r.get("float32_resident_mb") for r in srch if r.get("float32_resident_mb")]
        md.append("| {} | {} | {} | {} | {} | {} | {} | {} |".format(
            name(s), b.get("build_seconds", "–"), b.get("threads", "–"), b.get("index_mb", "–"),
            srch[0]["open_ms"] if srch else "–",
            max(r["peak_rss_mb"] for r in srch) if srch else "–",
            max(sr) if sr else "–", max(fr) if fr and s != "likeness" else "–"))
    if exact:
        md.append(f"\nExact ground truth (`likeness query --exact`, {exact['threads']} threads): "
                  f"{exact['seconds']:.1f} s, {exact['qps']:.0f} queries/s, "
                  f"{exact['scan_gb_per_s']} GB/s of base vectors compared.\n")
    efs = sorted({r["ef"] for s in systems for r in search[s]})
    for title, key, spec in (("Recall@10", "recall", ".4f"),
                             ("Queries per second (1 thread)", "qps", ",.0f")):
        md.append(f"## {title}\n")
        md.append("| ef | " + " | ".join(name(s) for s in systems) + " |")
        md.append("|---:|" + "---:|" * len(systems))
        for ef in efs:
            cells = [fmt(next((r[key] for r in search[s] if r["ef"] == ef), None), spec)
                     for s in systems]
            md.append(f"| {ef} | " + " | ".join(cells) + " |")
        md.append("")
    md.append("## Targets\n")
    md.append("Best QPS among the ef values that reach the recall:\n")
    md.append("| recall ≥ | " + " | ".join(name(s) for s in systems) + " |")
    md.append("|---:|" + "---:|" * len(systems))
    best = {thr: {s: best_at(search[s], thr) for s in systems} for thr in (0.95, 0.99)}
    for thr in (0.95, 0.99):
        cells = [f"{b['qps']:,.0f} (ef {b['ef']})" if b else "–" for b in best[thr].values()]
        md.append(f"| {thr} | " + " | ".join(cells) + " |")
    verdicts = []

    def ratio(s, peer, thr, target, what):
        b, p = best[thr].get(s), best[thr].get(peer)
        if not (b and p):
            return
        x = b["qps"] / p["qps"]
        verdicts.append(f"recall ≥ {thr}: {name(s)} / {name(peer)} QPS = {x:.2f} "
                        f"({what} ≥ {target}: {'met' if x >= target else 'NOT met'})")

    for thr in (0.95, 0.99):
        ratio("likeness-i8", "likeness", thr, 1.0, "target")
        ratio("likeness-i8", "usearch-i8", thr, 1.0, "target")
        ratio("likeness-i8", "faiss-sq8", thr, 1.0, "target")
        ratio("likeness", "usearch-f32", thr, 1.0, "target")
        ratio("likeness", "faiss", thr, 1.2, "earlier target")
    if "likeness-i8" in systems and "likeness" in systems:
        f32 = {r["ef"]: r for r in search["likeness"]}
        diffs = [abs(r["recall"] - f32[r["ef"]]["recall"]) for r in search["likeness-i8"]
                 if r["ef"] in f32]
        if diffs:
            d = max(diffs)
            verdicts.append(f"i8 recall@10 vs f32 at the same ef: largest difference {d:.4f} "
                            f"(target ≤ 0.005: {'met' if d <= 0.005 else 'NOT met'})")
        res = lambda s: max((r.get("searched_resident_mb") or 0) for r in search[s])  # noqa
        if res("likeness") and res("likeness-i8"):
            x = res("likeness-i8") / res("likeness")
            verdicts.append(f"resident searched vectors i8 / f32 = {x:.3f} "
                            f"(target ≤ 0.3: {'met' if x <= 0.3 else 'NOT met'})")
    if build.get("hnswlib", {}).get("build_seconds") and build.get("likeness"):
        x = build["likeness"]["build_seconds"] / build["hnswlib"]["build_seconds"]
        verdicts.append(f"build time likeness/hnswlib = {x:.2f} on {build['likeness']['threads']} "
                        f"threads (target ≤ 1.0: {'met' if x <= 1.0 else 'NOT met'})")
    md.append("")
    md += [f"- {v}" for v in verdicts]

    frows = [r for r in rows if r["kind"] == "filter"]
    if frows:
        none = next((r for r in frows if r["fraction"] == 1.0), None)
        ef = frows[0]["ef"]
        md.append(f"\n## Label filters (ef {ef}, 1 thread)\n")
        md.append("The base with labels drawn uniformly from 1000 (seeded); a filter keeps "
                  "the items of the first n labels. Ground truth: exact filtered search. "
                  "*planner*: the default (`--plan auto`: exact scan of the passing items "
                  "when at most `--exact-below` pass, else the graph with the filter inside "
                  "the beam); *graph only*: the filtered graph at every selectivity (what every "
                  "filter did before the planner); *exact*: the exact scan at every "
                  "selectivity. Short rows: queries with fewer than k hits although at "
                  f"least k items pass. Unfiltered at ef {ef}: "
                  f"{fmt(none['qps'] if none else None)} queries/s.\n")
        md.append("| keeps | items passing | planner ran | planner recall | planner QPS | "
                  "graph-only recall | graph-only QPS | exact-scan QPS | short rows | "
                  "unfiltered QPS |")
        md.append("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|")
        for frac in sorted({r["fraction"] for r in frows if r["fraction"] < 1}, reverse=True):
            by = {r["plan"]: r for r in frows if r["fraction"] == frac}
            au, gr, ex = by.get("auto", {}), by.get("graph", {}), by.get("exact", {})
            md.append(f"| {frac * 100:g} % | {au.get('passing', 0):,} | {au.get('ran', '–')} | "
                      f"{fmt(au.get('recall'), '.4f')} | {fmt(au.get('qps'))} | "
                      f"{fmt(gr.get('recall'), '.4f')} | {fmt(gr.get('qps'))} | "
                      f"{fmt(ex.get('qps'))} | "
                      f"{sum(r.get('short_rows', 0) for r in by.values())} | "
                      f"{fmt(none['qps'] if none else None)} |")
        worst = min((r["recall"] for r in frows if r["plan"] == "auto"), default=None)
        if worst is not None:
            md.append(f"\n- planner: lowest recall@10 {worst:.4f} (target ≥ 0.99: "
                      f"{'met' if worst >= 0.99 else 'NOT met'}); rows short of k: "
                      f"{sum(r.get('short_rows', 0) for r in frows if r['plan'] == 'auto')}")
    calls = {r["system"]: r for r in rows if r["kind"] == "per_call"}
    if calls:
        c0 = next(iter(calls.values()))
        md.append(f"\n## One query per call through Python (ef {c0['ef']}, k {c0['k']}, "
                  f"1 thread)\n")
        md.append(f"Mean time of {c0['calls']:,} calls with one query each, against the "
                  f"per-query time of one call with the same {c0['calls']:,} queries; the "
                  f"difference is what a call costs beyond the search (best of {a.runs}).\n")
        md.append("| Python API | µs per single-query call | µs per query in a batch | "
                  "per-call overhead (µs) |")
        md.append("|---|---:|---:|---:|")
        for s in ("likeness-py", "hnswlib", "faiss"):
            if s in calls:
                c = calls[s]
                md.append(f"| {API.get(s, s)} | {c['call_us']:.1f} | {c['batch_query_us']:.1f} | "
                          f"{c['call_us'] - c['batch_query_us']:.1f} |")
    md.append(f"\n![recall vs QPS]({os.path.basename(a.plot)})\n")
    with open(a.out, "w") as f:
        f.write("\n".join(md))
    print("\n".join(md))

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    for s, marker in zip(systems, "osD^v<>pPX*h"):
        rs = search[s]
        style = "-" if s.startswith("likeness") else "--"
        ax.plot([r["recall"] for r in rs], [r["qps"] for r in rs], style, marker=marker,
                label=name(s))
    ax.set_yscale("log")
    ax.set_xlabel("recall@10")
    ax.set_ylabel("queries per second (1 thread, log scale)")
    ax.set_title(f"fashion-mnist-784-euclidean, M={a.m}, ef_construction={a.ef_construction}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(a.plot)
    print(f"wrote {a.out} and {a.plot}")


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("cmd", choices=["prepare", "likeness", "hnswlib", "faiss", "faiss-sq8",
                                   "usearch-f32", "usearch-f16", "usearch-i8", "likeness-py",
                                   "filter", "report", "peer-build", "peer-search"])
    p.add_argument("system", nargs="?")
    p.add_argument("--work", required=True)
    p.add_argument("--data")
    p.add_argument("--bin")
    p.add_argument("--python", help="interpreter with `likeness` installed (likeness-py)")
    p.add_argument("--m", type=int, default=16)
    p.add_argument("--ef-construction", type=int, default=200)
    p.add_argument("--build-threads", type=int, default=2)
    p.add_argument("--efs", default=",".join(map(str, EFS)))
    p.add_argument("--runs", type=int, default=3, help="search runs per ef; the best counts")
    p.add_argument("--store", choices=["f32", "f16", "i8"], help="likeness: --store")
    p.add_argument("--queries", type=int, help="prepare: keep the first N queries")
    p.add_argument("--filter-ef", type=int, default=64, help="filter: the ef of every run")
    p.add_argument("--out")
    p.add_argument("--plot")
    a = p.parse_args()
    a.efs = [int(x) for x in a.efs.split(",")]
    if a.cmd == "prepare":
        cmd_prepare(a)
    elif a.cmd == "likeness":
        cmd_likeness(a)
    elif a.cmd == "filter":
        cmd_filter(a)
    elif a.cmd in ("hnswlib", "faiss", "faiss-sq8", "usearch-f32", "usearch-f16", "usearch-i8",
                   "likeness-py"):
        a.system = a.cmd
        cmd_peer(a)
    elif a.cmd == "peer-build":
        peer_build(a)
    elif a.cmd == "peer-search":
        peer_search(a)
    else:
        cmd_report(a)


if __name__ == "__main__":
    main()
