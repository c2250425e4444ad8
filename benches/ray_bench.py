#!/usr/bin/env python3
"""`make bench-ray`: a sharded gallery on a local Ray cluster against one
index, on the same seeded data (N × DIM float32 around 1,000 centres, l2).

Prints: sharded build wall time against one `likeness build`; Recall@10
against exact search at the default ef (64), sharded (through Ray Serve) and single;
queries/s and p50/p99 latency of `POST /search` (one query per request,
benches/peers/load.py, each of C connections for SECONDS) for one `likeness
serve`; the sharded path unbatched through Serve's HTTP proxy
(`serve_sharded(max_batch_size=1, http="proxy")`: each request its own
call to every shard, as before batching); batched through the proxy; and
batched with the ingress listening itself (the defaults); the batches'
mean size; and the per-shard memory and build rate that the README's node
counts use.

On one machine the nodes share its cores, so this measures overhead, not
speed-up. Environment: N (1000000), DIM (128), SHARDS (4), QUERIES (1000),
SECONDS (10), C (connection counts, "8,32"), LIKENESS_BIN, BENCH_DIR (a
temporary folder); MAX_BATCH, BATCH_WAIT_MS, IN_FLIGHT override the batched
row's serve_sharded settings; SWEEP="32:5:2,8:5:2,..." adds a batched row for
each max_batch_size:batch_wait_ms:max_concurrent_batches (to tune them).
"""
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import numpy as np
import ray
from ray import serve
from ray.cluster_utils import Cluster

import likeness
from likeness import ray as lr

N = int(os.environ.get("N", 1_000_000))
DIM = int(os.environ.get("DIM", 128))
SHARDS = int(os.environ.get("SHARDS", 4))
QUERIES = int(os.environ.get("QUERIES", 1000))
SECONDS = float(os.environ.get("SECONDS", 10))
CONNECTIONS = [int(c) for c in os.environ.get("C", "8,32").split(",")]
HERE = pathlib.Path(__file__).resolve().parent


def bin_dir():
    """Where cargo put the binaries (`make` passes LIKENESS_BIN_DIR)."""
    d = os.environ.get("LIKENESS_BIN_DIR")
    if d:
        return pathlib.Path(d)
    target = subprocess.run([str(HERE.parent / "scripts" / "target-dir.sh")],
                            capture_output=True, text=True, check=True).stdout.strip()
    return pathlib.Path(target) / "release"


BIN = os.environ.get("LIKENESS_BIN") or str(bin_dir() / "likeness")
MB = 1 << 20


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, seconds=60):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within {seconds} s")


def post(url, body):
    req = urllib.request.Request(url, data=json.dumps(body).encode(),
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.loads(r.read())


def load(url, body_file, connections, seconds):
    p = subprocess.run([sys.executable, str(HERE / "peers" / "load.py"), "--url", url, "--body",
                        str(body_file), "--content-type", "application/json", "--connections",
                        str(connections), "--seconds", str(seconds)],
                       capture_output=True, text=True, check=True)
    return json.loads(p.stdout.strip().splitlines()[-1])


def recall(found, truth):
    return float(np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth)]))


def main():
    work = pathlib.Path(os.environ.get("BENCH_DIR") or tempfile.mkdtemp(prefix="bench-ray-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"bench-ray: N={N} DIM={DIM} SHARDS={SHARDS} in {work}", flush=True)
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((1000, DIM)).astype(np.float32)
    which = rng.integers(0, 1000, N + QUERIES)
    x = np.empty((N + QUERIES, DIM), dtype=np.float32)
    for lo in range(0, N + QUERIES, 100_000):
        hi = min(lo + 100_000, N + QUERIES)
        x[lo:hi] = centres[which[lo:hi]] + 0.5 * rng.standard_normal((hi - lo, DIM),
                                                                     dtype=np.float32)
    x, q = x[:N], x[N:]
    np.save(work / "x.npy", x)
    lr.write_shards(x, work / "emb", SHARDS, force=True)

    # One `likeness build` on all cores.
    shutil.rmtree(work / "single", ignore_errors=True)
    t = time.perf_counter()
    subprocess.run([BIN, "build", "--vectors", work / "x.npy", "--out", work / "single",
                    "--metric", "l2"], check=True, stdout=subprocess.DEVNULL)
    single_build = time.perf_counter() - t
    print(f"single build: {single_build:.1f} s", flush=True)

    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "object_store_memory": 100 * MB, "include_dashboard": False})
    server = None
    try:
        for _ in range(SHARDS - 1):
            cluster.add_node(num_cpus=1, object_store_memory=100 * MB)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, logging_level="ERROR")
        t = time.perf_counter()
        built = lr.build_sharded(work / "emb" / "shards.json", work / "idx", metric="l2",
                                 force=True)
        sharded_build = time.perf_counter() - t
        print(f"sharded build: {sharded_build:.1f} s", flush=True)

        single = likeness.Index.open(work / "single")
        truth, _ = single.search(q, k=10, exact=True)
        single_ids, _ = single.search(q, k=10, ef=likeness.DEFAULT_EF)

        body = work / "query.json"
        body.write_text(json.dumps({"vector": q[0].tolist(), "k": 10, "ef": likeness.DEFAULT_EF}))
        res, batching = {}, {}

        def measure(name, url):
            load(url + "/search", body, 1, 2)  # warm-up
            res[name] = {c: load(url + "/search", body, c, SECONDS) for c in CONNECTIONS}
            print(f"{name}: " + ", ".join(f"{c} connections {r['requests_per_s']:.0f}/s"
                                          for c, r in res[name].items()), flush=True)

        lport = free_port()
        server = subprocess.Popen([BIN, "serve", "--index", work / "single", "--addr",
                                   f"127.0.0.1:{lport}"], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        l_url = f"http://127.0.0.1:{lport}"
        wait_http(l_url + "/healthz")
        measure("likeness serve", l_url)
        server.terminate()
        server.wait()
        server = None

        tuned = {k: t(os.environ[e]) for k, e, t in (
            ("max_batch_size", "MAX_BATCH", int),
            ("batch_wait_timeout_s", "BATCH_WAIT_MS", lambda v: float(v) / 1e3),
            ("max_concurrent_batches", "IN_FLIGHT", int)) if e in os.environ}
        sharded_ids = []
        proxy_port = free_port()
        # The proxy's rows first: the first serve_sharded starts Serve's proxy.
        sweep = [(f"batched {b}/{w} ms/{f}", {"max_batch_size": int(b),
                                               "batch_wait_timeout_s": float(w) / 1e3,
                                               "max_concurrent_batches": int(f)})
                 for b, w, f in (t.split(":") for t in os.environ.get("SWEEP", "").split(",")
                                 if t)]
        for name, opts in (("sharded, unbatched, proxy", {"max_batch_size": 1, "http": "proxy"}),
                           ("sharded, batched, proxy", {**tuned, "http": "proxy"}),
                           ("sharded, batched", tuned), *sweep):
            # Serve's proxy keeps the port it started on; the ingress takes a new one.
            port = proxy_port if opts.get("http") == "proxy" else free_port()
            ray_url = f"http://127.0.0.1:{port}"
            lr.serve_sharded(work / "idx" / "cluster.json", replicas=1, port=port,
                             shard_timeout_s=30, **opts)
            if not sharded_ids:  # recall, through the served path
                for lo in range(0, len(q), 200):
                    out = post(ray_url + "/search/batch", {"vectors": q[lo:lo + 200].tolist(),
                                                           "k": 10, "ef": likeness.DEFAULT_EF})
                    assert not out["partial"], out["missing_shards"]
                    sharded_ids += [[h["id"] for h in r["hits"]] for r in out["results"]]
            before = json.loads(urllib.request.urlopen(ray_url + "/stats").read())["batching"]
            measure(name, ray_url)
            after = json.loads(urllib.request.urlopen(ray_url + "/stats").read())["batching"]
            batching[name] = {**{k: after[k] for k in ("max_batch_size", "batch_wait_timeout_s",
                                                       "max_concurrent_batches")},
                              "mean_requests_per_batch":
                                  (after["requests"] - before["requests"])
                                  / max(1, after["batches"] - before["batches"])}
            serve.delete("likeness")
    finally:
        if server is not None:
            server.terminate()
            server.wait()
        try:
            serve.shutdown()
        finally:
            ray.shutdown()
            cluster.shutdown()

    per_shard_bytes = [s["bytes"] for s in built["shards"]]
    per_vector = sum(per_shard_bytes) / N
    rate = np.mean([s["count"] / s["build_seconds"] for s in built["shards"]])
    summary = {
        "n": N, "dim": DIM, "shards": SHARDS,
        "build_s": {"single_2_threads": single_build, "sharded_wall": sharded_build,
                    "per_shard": [round(s["build_seconds"], 1) for s in built["shards"]]},
        "recall_at_10_ef64": {"single": recall(single_ids.tolist(), truth.tolist()),
                              "sharded": recall(sharded_ids, truth.tolist())},
        "load_average": os.getloadavg(),
        "serve": {k: {c: {"qps": r["requests_per_s"], "p50_ms": r["p50_ms"],
                          "p99_ms": r["p99_ms"], "errors": r["errors"]}
                      for c, r in v.items()} for k, v in res.items()},
        "batching": batching,
        "index_bytes_per_vector": per_vector,
        "graph_bytes_per_vector": per_vector - 4 * DIM,
        "shard_build_vectors_per_s_per_thread": float(rate),
        "per_shard_mb": [round(b / MB, 1) for b in per_shard_bytes],
    }
    s = summary
    print()
    print(f"| N={N}, dim {DIM}, {SHARDS} shards, 2 cores | single | sharded (Ray) |")
    print("|---|---|---|")
    print(f"| build wall time | {single_build:.1f} s (`likeness build`, 2 threads) | "
          f"{sharded_build:.1f} s ({SHARDS} tasks × 1 thread) |")
    print(f"| Recall@10 at ef 64 vs exact | {s['recall_at_10_ef64']['single']:.4f} | "
          f"{s['recall_at_10_ef64']['sharded']:.4f} |")
    print(f"| index bytes per vector (vectors + graph) | {per_vector:.0f} "
          f"({4 * DIM} + {per_vector - 4 * DIM:.0f}) | |")
    print(f"| shard build rate | | {rate:.0f} vectors/s per thread |")
    print()
    b = batching["sharded, batched"]
    print(f"`POST /search`, one query per request, k 10, ef 64; load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; batched: max_batch_size "
          f"{b['max_batch_size']}, wait {b['batch_wait_timeout_s'] * 1e3:g} ms, "
          f"{b['max_concurrent_batches']} in flight")
    print()
    print("| path | connections | queries/s | p50 ms | p99 ms | errors | requests per batch |")
    print("|---|---|---|---|---|---|---|")
    for name, v in res.items():
        per = batching.get(name, {}).get("mean_requests_per_batch")
        for c, r in v.items():
            print(f"| {name} | {c} | {r['requests_per_s']:.0f} | {r['p50_ms']:.1f} | "
                  f"{r['p99_ms']:.1f} | {r['errors']} | {'' if per is None else f'{per:.1f}'} |")
    print()
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
