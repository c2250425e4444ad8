"""`make bench-grow` parts 1 and 2 (issue 26's acceptance 1 and 2): a
gallery that grows, likeness against hnswlib on fashion-mnist-784 (60,000
train vectors as the base, 10,000 test queries, squared L2, M 16,
ef_construction 200, both on the same threads).

1. **Adds.** A 50,000-item index built by each; then the remaining 10,000
   added: likeness `Index.add` (one call: it folds them into the graph,
   writes the new generation and fsyncs it before returning) against
   hnswlib `add_items` (in memory). Each round starts from a copy of the
   50,000-item index; rounds alternate which goes first; best of ROUNDS.
   Target: likeness ≤ 1.2× hnswlib.
2. **Deletes.** On the 60,000 of part 1, a seeded random 20% deleted
   (likeness `Index.delete`; hnswlib `mark_deleted`), then Recall@10 at
   ef 64 against brute-force ground truth over the live set, and QPS on one
   thread (best of ROUNDS; in each round the likeness indexes interleaved
   by chunks of 1,000 queries, then hnswlib), of: likeness before `compact()`, likeness
   after it, a fresh likeness build of the live set, and hnswlib with its
   marks (a peer row). Targets: recall within 0.01 of the fresh build; QPS
   ≥ 0.8× fresh before compact, ≥ 0.95× after.

Two interpreters: this script runs under the one with hnswlib (the bench
venv, `--hnswlib-python`, default: this one) and runs its likeness stages
as child processes under the one with the `likeness` package
(`--likeness-python`, `make python`'s venv). Each stage is a fresh process
that prints one JSON line; `run` gathers them, prints the figures and a
markdown table (for docs/benchmarks.md) and writes WORK/grow.md and
WORK/grow.jsonl.

Recall follows ann-benchmarks (benches/ann/peers.py): a returned item
counts when its true distance is within the 10th exact distance (+1e-3
relative slack, for ties between duplicates). A deleted item returned is
counted apart (it must be 0).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
K = 10
BASE, TOTAL = 50_000, 60_000


# ---- data and ground truth -----------------------------------------------------------

def prepare(a):
    """WORK/base.npy (60,000 × 784 f32) and WORK/queries.npy (10,000 × 784),
    read from the IDX files as bench-ann reads them."""
    sys.path.insert(0, os.path.join(HERE, "ann"))
    from peers import read_idx_images  # the same reader as `make bench-ann`

    os.makedirs(a.work, exist_ok=True)
    for name, src, n in (("base.npy", "train-images-idx3-ubyte.gz", TOTAL),
                         ("queries.npy", "t10k-images-idx3-ubyte.gz", a.queries)):
        path = os.path.join(a.work, name)
        if os.path.exists(path) and np.load(path, mmap_mode="r").shape[0] != n:
            os.remove(path)
        if not os.path.exists(path):
            x = read_idx_images(os.path.join(a.data, src))[:n]
            np.save(path, np.ascontiguousarray(x))
        x = np.load(path, mmap_mode="r")
        print(f"  {name}: {x.shape[0]} x {x.shape[1]} {x.dtype}", flush=True)


def deleted_ids(a):
    """The seeded 20% of the 60,000 that part 2 deletes, ascending."""
    rng = np.random.default_rng(a.seed)
    return np.sort(rng.choice(TOTAL, int(TOTAL * a.delete_fraction), replace=False))


def live_ids(a):
    return np.setdiff1d(np.arange(TOTAL), deleted_ids(a))


def sqdist(x, ids, q):
    """Squared L2 of each query `q[i]` to each of its ids `ids[i]`, float64."""
    d = x[ids].astype(np.float64) - q[:, None, :].astype(np.float64)
    return np.einsum("qkd,qkd->qk", d, d)


def ground_truth(a, base, queries):
    """Exact K nearest over the live set (ids of the 60,000): candidates by a
    float32 matrix product, ranked again in float64 (so that rounding in
    the product cannot swap near ties). Cached in WORK by seed."""
    path = os.path.join(a.work, f"gt-live-seed{a.seed}-{len(queries)}.npy")
    if os.path.exists(path):
        return np.load(path)
    live = live_ids(a)
    x = base[live]
    xx = np.einsum("ij,ij->i", x, x)
    wide = 4 * K
    out = np.empty((len(queries), K), dtype=np.int64)
    t = time.perf_counter()
    for s in range(0, len(queries), 500):
        q = queries[s:s + 500]
        d = xx[None, :] - 2 * (q @ x.T)            # + |q|², the same for a row
        cand = np.argpartition(d, wide, axis=1)[:, :wide]
        exact = sqdist(x, cand, q)
        order = np.argsort(exact, axis=1, kind="stable")[:, :K]
        out[s:s + 500] = live[np.take_along_axis(cand, order, axis=1)]
    np.save(path, out)
    print(f"  ground truth over {len(live)} live items: {time.perf_counter() - t:.1f}s",
          flush=True)
    return out


def recall(base, queries, gt, ids, dead):
    """ann-benchmarks' Recall@K, and how many deleted items were returned."""
    ids = np.asarray(ids, dtype=np.int64)
    valid = ids >= 0
    ok = 0
    for s in range(0, len(ids), 1000):             # float64 rows: 60 MB at a time
        c = slice(s, s + 1000)
        kth = sqdist(base, gt[c], queries[c])[:, K - 1]
        d = sqdist(base, np.where(valid[c], ids[c], 0), queries[c])
        ok += int((valid[c] & (d <= kth[:, None] * (1 + 1e-3) + 1e-6)).sum())
    return ok / ids.size, int(np.isin(ids[valid], dead).sum())


# ---- stages (child processes; each prints one JSON line) ---------------------------

def likeness_dir(a, name):
    return os.path.join(a.work, name)


def copy_index(src, dst):
    if os.path.exists(dst):
        shutil.rmtree(dst)
    # The lock file is the writer's, not the index's.
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".lock"))


def stage_likeness_build(a):
    import likeness
    base = np.load(os.path.join(a.work, "base.npy"))
    if a.what == "base":
        x, out = base[:BASE], likeness_dir(a, "likeness-50k")
    else:                                          # the fresh build of the live set
        x, out = base[live_ids(a)], likeness_dir(a, "likeness-fresh")
    t = time.perf_counter()
    likeness.build(x, out, metric="l2", m=a.m, ef_construction=a.ef_construction,
                   threads=a.threads, seed=a.build_seed, force=True)
    return dict(build_seconds=time.perf_counter() - t, count=len(x))


def stage_likeness_add(a):
    import likeness
    base = np.load(os.path.join(a.work, "base.npy"))
    new = np.ascontiguousarray(base[BASE:])
    out = likeness_dir(a, "likeness-60k")
    copy_index(likeness_dir(a, "likeness-50k"), out)
    ix = likeness.Index.open(out)
    t, tc = time.perf_counter(), time.process_time()
    ids = ix.add(new, threads=a.threads)
    seconds, cpu = time.perf_counter() - t, time.process_time() - tc
    assert ids.tolist() == list(range(BASE, TOTAL)), (ids[:3], ids[-3:])
    assert ix.count == TOTAL and ix.generation == 1, (ix.count, ix.generation)
    return dict(add_seconds=seconds, add_cpu_seconds=cpu, generation=ix.generation)


def stage_likeness_delete(a):
    """Deletes the seeded 20% from the 60,000 (logged), then compacts a copy."""
    import likeness
    dead = deleted_ids(a)
    before = likeness_dir(a, "likeness-60k")
    ix = likeness.Index.open(before)
    t = time.perf_counter()
    n = ix.delete(dead)
    delete_seconds = time.perf_counter() - t
    assert n == len(dead) and ix.live_count == TOTAL - len(dead), (n, ix.live_count)
    ix.close()
    after = likeness_dir(a, "likeness-compacted")
    copy_index(before, after)
    cx = likeness.Index.open(after)
    report = cx.compact(threads=a.threads)
    return dict(delete_seconds=delete_seconds, deleted=n, compact=report)


def stage_likeness_search(a):
    """One pass of the queries over each likeness index, one thread, the
    indexes interleaved by chunks of 1,000 queries (the order rotated from
    chunk to chunk) so that the machine's drift falls on each alike."""
    import likeness
    queries = np.load(os.path.join(a.work, "queries.npy"))
    live = live_ids(a)
    names = a.order.split(",")
    ixs = {n: likeness.Index.open(likeness_dir(a, n)) for n in names}
    for ix in ixs.values():
        ix.search(queries[:200], k=K, ef=a.ef, threads=1)   # touch the maps
    seconds = dict.fromkeys(names, 0.0)
    cpu = dict.fromkeys(names, 0.0)
    ids = {n: [] for n in names}
    for c, s in enumerate(range(0, len(queries), 1000)):
        q = queries[s:s + 1000]
        for n in names[c % len(names):] + names[:c % len(names)]:
            t, tc = time.perf_counter(), time.thread_time()
            got, _ = ixs[n].search(q, k=K, ef=a.ef, threads=1)   # on this thread
            cpu[n] += time.thread_time() - tc
            seconds[n] += time.perf_counter() - t
            ids[n].append(got)
    out = {}
    for n in names:
        got = np.concatenate(ids[n])
        if n == "likeness-fresh":                           # positions in the live set
            got = np.where(got >= 0, live[np.maximum(got, 0)], -1)
        np.save(os.path.join(a.work, f"ids-{n}.npy"), got)
        out[n] = dict(qps=len(queries) / seconds[n], cpu_qps=len(queries) / cpu[n],
                      generation=ixs[n].generation,
                      deleted=ixs[n].deleted_count)
    return out


def stage_hnswlib_build(a):
    import hnswlib
    base = np.load(os.path.join(a.work, "base.npy"))
    ix = hnswlib.Index(space="l2", dim=base.shape[1])
    ix.init_index(max_elements=TOTAL, ef_construction=a.ef_construction, M=a.m,
                  random_seed=a.build_seed + 1)
    t = time.perf_counter()
    ix.add_items(base[:BASE], np.arange(BASE), num_threads=a.threads)
    seconds = time.perf_counter() - t
    ix.save_index(os.path.join(a.work, "hnswlib-50k.bin"))
    return dict(build_seconds=seconds, count=BASE)


def stage_hnswlib_add(a):
    import hnswlib
    base = np.load(os.path.join(a.work, "base.npy"))
    new = np.ascontiguousarray(base[BASE:])
    ix = hnswlib.Index(space="l2", dim=base.shape[1])
    ix.load_index(os.path.join(a.work, "hnswlib-50k.bin"), max_elements=TOTAL)
    t, tc = time.perf_counter(), time.process_time()
    ix.add_items(new, np.arange(BASE, TOTAL), num_threads=a.threads)
    seconds, cpu = time.perf_counter() - t, time.process_time() - tc
    assert ix.get_current_count() == TOTAL
    ix.save_index(os.path.join(a.work, "hnswlib-60k.bin"))
    return dict(add_seconds=seconds, add_cpu_seconds=cpu)


def stage_hnswlib_search(a):
    import hnswlib
    queries = np.load(os.path.join(a.work, "queries.npy"))
    ix = hnswlib.Index(space="l2", dim=queries.shape[1])
    ix.load_index(os.path.join(a.work, "hnswlib-60k.bin"), max_elements=TOTAL)
    for i in deleted_ids(a):
        ix.mark_deleted(int(i))
    ix.set_num_threads(1)
    ix.set_ef(a.ef)
    ix.knn_query(queries[:200], k=K, num_threads=1)
    t, tc = time.perf_counter(), time.thread_time()
    ids, _ = ix.knn_query(queries, k=K, num_threads=1)        # on this thread
    cpu_qps = len(queries) / (time.thread_time() - tc)
    qps = len(queries) / (time.perf_counter() - t)
    np.save(os.path.join(a.work, "ids-hnswlib.npy"), ids.astype(np.int64))
    return {"hnswlib": dict(qps=qps, cpu_qps=cpu_qps)}


STAGES = {
    "likeness-build": stage_likeness_build, "likeness-add": stage_likeness_add,
    "likeness-delete": stage_likeness_delete, "likeness-search": stage_likeness_search,
    "hnswlib-build": stage_hnswlib_build, "hnswlib-add": stage_hnswlib_add,
    "hnswlib-search": stage_hnswlib_search,
}


# ---- the run ---------------------------------------------------------------------

class Runner:
    """Runs stages as child processes under the right interpreter."""

    def __init__(self, a):
        self.a = a
        self.log = open(os.path.join(a.work, "grow.jsonl"), "w")

    def __call__(self, stage, **extra):
        a = self.a
        py = a.likeness_python if stage.startswith("likeness") else a.hnswlib_python
        args = [py, os.path.abspath(__file__), "stage", stage, "--work", a.work,
                "--m", str(a.m), "--ef-construction", str(a.ef_construction),
                "--threads", str(a.threads), "--ef", str(a.ef), "--seed", str(a.seed),
                "--delete-fraction", str(a.delete_fraction), "--build-seed", str(a.build_seed)]
        for k, v in extra.items():
            args += [f"--{k.replace('_', '-')}", str(v)]
        env = dict(os.environ, OMP_NUM_THREADS="1")
        p = subprocess.run(args, capture_output=True, text=True, env=env)
        if p.returncode != 0:
            sys.exit(f"stage {stage} failed:\n{p.stdout}{p.stderr}")
        row = json.loads(p.stdout.strip().splitlines()[-1])
        self.log.write(json.dumps(dict(stage=stage, **extra, **row)) + "\n")
        self.log.flush()
        return row


def verdict(ok):
    return "met" if ok else "NOT met"


def cmd_run(a):
    t0 = time.perf_counter()
    print(f"== data: {a.data} -> {a.work}", flush=True)
    prepare(a)
    run = Runner(a)
    load = os.getloadavg()
    lines = []

    def say(s=""):
        print(s, flush=True)
        lines.append(s)

    # ---- part 1
    print(f"== part 1: build {BASE} (M {a.m}, ef_construction {a.ef_construction}, "
          f"{a.threads} threads), then add {TOTAL - BASE}, best of {a.rounds}", flush=True)
    lb = run("likeness-build", what="base")
    hb = run("hnswlib-build")
    print(f"  build {BASE}: likeness {lb['build_seconds']:.2f}s, hnswlib "
          f"{hb['build_seconds']:.2f}s", flush=True)
    adds = {"likeness": [], "hnswlib": []}
    add_cpu = {"likeness": [], "hnswlib": []}
    for r in range(a.rounds):
        order = ("likeness", "hnswlib") if r % 2 == 0 else ("hnswlib", "likeness")
        for s in order:
            row = run(f"{s}-add")
            adds[s].append(row["add_seconds"])
            add_cpu[s].append(row["add_cpu_seconds"])
            print(f"  round {r + 1}: {s} add {row['add_seconds']:.2f}s "
                  f"({row['add_cpu_seconds']:.2f} CPU seconds)", flush=True)
    l_add, h_add = min(adds["likeness"]), min(adds["hnswlib"])
    ratio = l_add / h_add

    # ---- part 2
    dead = deleted_ids(a)
    print(f"== part 2: delete {len(dead)} of {TOTAL} (seed {a.seed}), fresh build of "
          f"the {TOTAL - len(dead)} live, search ef {a.ef} on 1 thread, best of {a.rounds}",
          flush=True)
    de = run("likeness-delete")
    print(f"  likeness delete {de['delete_seconds']:.3f}s; compact "
          f"{de['compact']['seconds']:.2f}s", flush=True)
    fb = run("likeness-build", what="fresh")
    print(f"  fresh build of the live set: {fb['build_seconds']:.2f}s", flush=True)
    base = np.load(os.path.join(a.work, "base.npy"))
    queries = np.load(os.path.join(a.work, "queries.npy"))
    gt = ground_truth(a, base, queries)
    names = ["likeness-60k", "likeness-compacted", "likeness-fresh"]
    qps = {n: [] for n in names + ["hnswlib"]}
    cpu_qps = {n: [] for n in names + ["hnswlib"]}
    each = {"before": [], "after": [], "before_cpu": [], "after_cpu": []}
    results = {}
    for r in range(a.rounds):
        order = names[r % 3:] + names[:r % 3]
        rows = run("likeness-search", order=",".join(order))
        rows.update(run("hnswlib-search"))
        for n, row in rows.items():
            qps[n].append(row["qps"])
            cpu_qps[n].append(row["cpu_qps"])
        # The ratios within a round, where the three ran interleaved.
        for what, n in (("before", "likeness-60k"), ("after", "likeness-compacted")):
            each[what].append(rows[n]["qps"] / rows["likeness-fresh"]["qps"])
            each[what + "_cpu"].append(rows[n]["cpu_qps"] / rows["likeness-fresh"]["cpu_qps"])
        print(f"  round {r + 1}: " + ", ".join(
            f"{n} {rows[n]['qps']:,.0f} q/s ({rows[n]['cpu_qps']:,.0f} per CPU second)"
            for n in order + ["hnswlib"]), flush=True)
        # Answers are the same in every round (one thread, fixed ef); the
        # last round's are scored.
    for n in qps:
        rec, returned_dead = recall(base, queries, gt, np.load(
            os.path.join(a.work, f"ids-{n}.npy")), dead)
        results[n] = dict(recall=rec, qps=max(qps[n]), cpu_qps=max(cpu_qps[n]),
                          dead_returned=returned_dead)
    fresh = results["likeness-fresh"]
    before, after = results["likeness-60k"], results["likeness-compacted"]

    # ---- report
    say(f"Issue 26 acceptance 1-2 (`make bench-grow`), fashion-mnist-784: {TOTAL:,} train "
        f"vectors, {len(queries):,} queries, squared L2, M {a.m}, ef_construction "
        f"{a.ef_construction}, {a.threads} threads for builds and adds, search on 1 thread "
        f"at ef {a.ef}, k {K}; best of {a.rounds} rounds (adds: the two systems alternate "
        f"which goes first; searches: the likeness indexes interleaved by chunks of 1,000 "
        f"queries in each round, then hnswlib). Load average at the "
        f"start {load[0]:.2f}, at the end {os.getloadavg()[0]:.2f} ({os.cpu_count()} cores).")
    say()
    say(f"**Adds**: {TOTAL - BASE:,} vectors added to a {BASE:,}-item index (likeness "
        f"`Index.add`: one call, folded into the graph, new generation written and "
        f"fsync'd; hnswlib `add_items` in memory).")
    say()
    say("| system | build 50,000 (s) | add 10,000 (s), best | add, each round (s) "
        "| add, CPU seconds (all threads), best |")
    say("|---|---:|---:|---|---:|")
    for s in ("likeness", "hnswlib"):
        say(f"| {s} | {(lb if s == 'likeness' else hb)['build_seconds']:.2f} | "
            f"{min(adds[s]):.2f} | {', '.join(f'{t:.2f}' for t in adds[s])} | "
            f"{min(add_cpu[s]):.2f} |")
    say()
    cpu_ratio = min(add_cpu["likeness"]) / min(add_cpu["hnswlib"])
    say(f"- add time likeness/hnswlib = {ratio:.2f} (target ≤ 1.2: {verdict(ratio <= 1.2)}); "
        f"in CPU seconds {cpu_ratio:.2f}")
    say()
    say(f"**Deletes**: {len(dead):,} of the {TOTAL:,} deleted (seeded, {a.seed}); Recall@{K} "
        f"against exact search of the {TOTAL - len(dead):,} live items. likeness delete "
        f"took {de['delete_seconds'] * 1e3:.0f} ms (logged, fsync'd), compact "
        f"{de['compact']['seconds']:.2f}s, the fresh build {fb['build_seconds']:.2f}s.")
    say()
    say(f"QPS: queries per second of wall time; per CPU: per second of the searching "
        f"thread's CPU time (`time.thread_time`), which other jobs on the machine do not "
        f"take from; both best of {a.rounds}.")
    say()
    say(f"| index | Recall@{K} | − fresh | QPS | QPS / fresh | QPS per CPU | per CPU / fresh "
        f"| deleted returned |")
    say("|---|---:|---:|---:|---:|---:|---:|---:|")
    label = {"likeness-60k": "likeness, before compact (tombstones)",
             "likeness-compacted": "likeness, after compact",
             "likeness-fresh": "likeness, fresh build of the live set",
             "hnswlib": "hnswlib, mark_deleted (peer)"}
    for n in names + ["hnswlib"]:
        r = results[n]
        say(f"| {label[n]} | {r['recall']:.4f} | {r['recall'] - fresh['recall']:+.4f} | "
            f"{r['qps']:,.0f} | {r['qps'] / fresh['qps']:.2f} | {r['cpu_qps']:,.0f} | "
            f"{r['cpu_qps'] / fresh['cpu_qps']:.2f} | {r['dead_returned']} |")
    say()
    checks = [
        ("recall before compact − fresh", before["recall"] - fresh["recall"],
         abs(before["recall"] - fresh["recall"]) <= 0.01, "within ±0.01", "+.4f"),
        ("recall after compact − fresh", after["recall"] - fresh["recall"],
         abs(after["recall"] - fresh["recall"]) <= 0.01, "within ±0.01", "+.4f"),
        ("QPS before compact / fresh", before["qps"] / fresh["qps"],
         before["qps"] / fresh["qps"] >= 0.8, "≥ 0.8", ".2f"),
        ("QPS after compact / fresh", after["qps"] / fresh["qps"],
         after["qps"] / fresh["qps"] >= 0.95, "≥ 0.95", ".2f"),
        ("QPS per CPU second before compact / fresh", before["cpu_qps"] / fresh["cpu_qps"],
         before["cpu_qps"] / fresh["cpu_qps"] >= 0.8, "≥ 0.8", ".2f"),
        ("QPS per CPU second after compact / fresh", after["cpu_qps"] / fresh["cpu_qps"],
         after["cpu_qps"] / fresh["cpu_qps"] >= 0.95, "≥ 0.95", ".2f"),
        ("deleted items returned by likeness",
         before["dead_returned"] + after["dead_returned"],
         before["dead_returned"] + after["dead_returned"] == 0, "0", "d"),
    ]
    rounds = {"QPS before compact / fresh": each["before"],
              "QPS after compact / fresh": each["after"],
              "QPS per CPU second before compact / fresh": each["before_cpu"],
              "QPS per CPU second after compact / fresh": each["after_cpu"]}
    for what, v, ok, target, spec in checks:
        within = (f"; within each round: {', '.join(f'{r:.2f}' for r in rounds[what])}"
                  if what in rounds else "")
        say(f"- {what} = {v:{spec}} (target {target}: {verdict(ok)}{within})")
    with open(os.path.join(a.work, "grow.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"== {time.perf_counter() - t0:.0f}s; the table is in {a.work}/grow.md, "
          f"every stage's numbers in {a.work}/grow.jsonl", flush=True)
    met = ratio <= 1.2 and all(ok for _, _, ok, _, _ in checks)
    return 0 if met or not a.strict else 1


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--work", required=True)
    common.add_argument("--m", type=int, default=16)
    common.add_argument("--ef-construction", type=int, default=200)
    common.add_argument("--threads", type=int, default=2, help="of builds and adds")
    common.add_argument("--ef", type=int, default=64)
    common.add_argument("--seed", type=int, default=26, help="of the deleted 20%%")
    common.add_argument("--delete-fraction", type=float, default=0.2)
    common.add_argument("--build-seed", type=int, default=0)
    r = sub.add_parser("run", parents=[common])
    r.add_argument("--data", required=True, help="folder of the fashion-mnist IDX files")
    r.add_argument("--queries", type=int, default=10_000)
    r.add_argument("--rounds", type=int, default=3)
    r.add_argument("--likeness-python", required=True)
    r.add_argument("--hnswlib-python", default=sys.executable)
    r.add_argument("--strict", action="store_true", help="exit 1 when a target is not met")
    s = sub.add_parser("stage", parents=[common])
    s.add_argument("stage", choices=sorted(STAGES))
    s.add_argument("--what", choices=("base", "fresh"), default="base")
    s.add_argument("--order", default="likeness-60k,likeness-compacted,likeness-fresh")
    a = p.parse_args()
    if a.cmd == "run":
        sys.exit(cmd_run(a))
    print(json.dumps(STAGES[a.stage](a)), flush=True)


if __name__ == "__main__":
    main()
