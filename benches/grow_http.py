#!/usr/bin/env python3
"""`make bench-grow`, part 3: single-item HTTP adds into a served index
while 8 connections search it (standard library and numpy only).

Builds an index of the first BASE_ROWS rows of VECTORS (`likeness build`,
l2, M 16, ef_construction 200); the adds are the rows after them,
serves it on a loopback port, then
  A. 8 keep-alive connections POST /search (k 10, ef 64, a random query row
     each) for as long as phase B took in the previous round, without writes;
  B. the same load while one more connection POSTs ADDS one row at a time
     to /admin/items and, after each answer, searches that row (k 1): the
     new id must be the first hit ("searchable on the next request").
Prints one JSON line per phase and a markdown table: errors, ids not found
next, search p50/p99 in each phase and their ratio (target: p99 during the
writes <= 3x without them), adds/s.

    python3 benches/grow_http.py --likeness target/release/likeness \
        --vectors base.npy --base-rows 50000 --queries queries.npy --work /tmp/g
"""
import argparse
import asyncio
import json
import os
import random
import shutil
import subprocess
import sys
import time

import numpy as np


async def post(reader, writer, host, path, body):
    writer.write((f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                  f"Content-Length: {len(body)}\r\n\r\n").encode() + body)
    await writer.drain()
    status = await reader.readline()
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        k, _, v = line.decode().partition(":")
        if k.lower() == "content-length":
            length = int(v)
    data = await reader.readexactly(length)
    return int(status.split()[1]), data


async def searcher(host, port, bodies, stop, lat, errors):
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while not stop.is_set():
            t = time.perf_counter()
            code, _ = await post(reader, writer, host, "/search", random.choice(bodies))
            lat.append(time.perf_counter() - t)
            if code != 200:
                errors.append(code)
    finally:
        writer.close()


async def adder(host, port, adds, result):
    reader, writer = await asyncio.open_connection(host, port)
    lat, missing, errors = [], 0, 0
    try:
        for row in adds:
            v = [float(x) for x in row]
            t = time.perf_counter()
            code, data = await post(reader, writer, host, "/admin/items",
                                    json.dumps({"vectors": [v]}).encode())
            lat.append(time.perf_counter() - t)
            if code != 200:
                errors += 1
                continue
            new_id = json.loads(data)["ids"][0]
            code, data = await post(reader, writer, host, "/search",
                                    json.dumps({"vector": v, "k": 1}).encode())
            hits = json.loads(data).get("hits", []) if code == 200 else []
            if not hits or hits[0]["id"] != new_id:
                missing += 1
    finally:
        writer.close()
    result.update(add_lat=lat, missing=missing, add_errors=errors)


def quantile(lat, q):
    lat = sorted(lat)
    return round(1e3 * lat[min(len(lat) - 1, int(q * len(lat)))], 3) if lat else None


async def phase(host, port, bodies, adds, seconds, connections):
    lat, errors, result = [], [], {}
    stop = asyncio.Event()
    start = time.perf_counter()
    tasks = [asyncio.create_task(searcher(host, port, bodies, stop, lat, errors))
             for _ in range(connections)]
    if adds is not None:
        await adder(host, port, adds, result)
    else:
        await asyncio.sleep(seconds)
    stop.set()
    await asyncio.gather(*tasks)
    dt = time.perf_counter() - start
    out = {"seconds": round(dt, 2), "searches": len(lat), "search_errors": len(errors),
           "searches_per_s": round(len(lat) / dt, 1),
           "search_p50_ms": quantile(lat, 0.5), "search_p99_ms": quantile(lat, 0.99)}
    if adds is not None:
        out.update(adds=len(adds), add_errors=result["add_errors"],
                   not_found_next=result["missing"],
                   adds_per_s=round(len(adds) / dt, 1),
                   add_p50_ms=quantile(result["add_lat"], 0.5),
                   add_p99_ms=quantile(result["add_lat"], 0.99))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--likeness", required=True)
    ap.add_argument("--vectors", required=True)
    ap.add_argument("--base-rows", type=int, default=50000)
    ap.add_argument("--queries", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--n-adds", type=int, default=1000)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    ix = os.path.join(a.work, "grow-http-index")
    shutil.rmtree(ix, ignore_errors=True)
    allv = np.load(a.vectors, mmap_mode="r")
    base_npy = os.path.join(a.work, "grow-http-base.npy")
    np.save(base_npy, np.ascontiguousarray(allv[: a.base_rows], dtype=np.float32))
    subprocess.run([a.likeness, "build", "--vectors", base_npy, "--metric", "l2", "--m", "16",
                    "--ef-construction", "200", "--out", ix], check=True,
                   stdout=subprocess.DEVNULL)
    adds = np.asarray(allv[a.base_rows:], dtype=np.float32)
    queries = np.load(a.queries)
    rng = random.Random(5)
    bodies = [json.dumps({"vector": [float(x) for x in queries[i]], "k": 10, "ef": 64}).encode()
              for i in rng.sample(range(len(queries)), min(500, len(queries)))]
    server = subprocess.Popen([a.likeness, "serve", "--index", ix, "--addr", "127.0.0.1:0"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = server.stdout.readline().strip()
        if not line.startswith("listening on "):
            sys.exit(f"serve did not start: {line!r}")
        host, port = line.removeprefix("listening on ").rsplit(":", 1)
        port = int(port)
        rows = []
        seconds = 10.0
        # Each round: the adds under load, then the same time without them.
        # Later rounds add more rows (ids keep growing), so the index grows
        # by n_adds per round.
        for r in range(a.rounds):
            chunk = adds[a.n_adds * r: a.n_adds * (r + 1)]
            if len(chunk) == 0:
                break
            b = asyncio.run(phase(host, port, bodies, chunk, 0, a.connections))
            seconds = b["seconds"]
            base = asyncio.run(phase(host, port, bodies, None, seconds, a.connections))
            b["p99_ratio"] = round(b["search_p99_ms"] / base["search_p99_ms"], 2)
            print(json.dumps({"round": r, "without_writes": base, "with_writes": b}), flush=True)
            rows.append((r, base, b))
    finally:
        server.terminate()
        server.wait(timeout=30)
    print("\n| round | adds | add errors | not found next | search errors | p99 without writes (ms) | p99 with writes (ms) | ratio | adds/s |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r, base, b in rows:
        print(f"| {r} | {b['adds']} | {b['add_errors']} | {b['not_found_next']} | "
              f"{b['search_errors'] + base['search_errors']} | {base['search_p99_ms']} | "
              f"{b['search_p99_ms']} | {b['p99_ratio']}x | {b['adds_per_s']} |")
    bad = any(b["add_errors"] or b["not_found_next"] or b["search_errors"] for _, _, b in rows)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
