#!/usr/bin/env python3
"""A small HTTP/1.1 load generator (standard library only, so it runs on a
GPU machine without wrk): C keep-alive connections each POST the same body
in a loop for D seconds. Prints one JSON line: requests/s, errors, and the
p50/p90/p99 latency in ms, with the status counts.

    python3 load.py --url http://127.0.0.1:7878/search/image?k=10 --body q.png \
        --connections 32 --seconds 10
"""
import argparse
import asyncio
import json
import time
from urllib.parse import urlsplit


async def worker(host, port, path, body, ctype, stop, lat, codes):
    reader, writer = await asyncio.open_connection(host, port)
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    try:
        while time.perf_counter() < stop:
            t = time.perf_counter()
            writer.write(head + body)
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
            await reader.readexactly(length)
            lat.append(time.perf_counter() - t)
            code = int(status.split()[1])
            codes[code] = codes.get(code, 0) + 1
    finally:
        writer.close()


async def main(a):
    u = urlsplit(a.url)
    path = u.path + ("?" + u.query if u.query else "")
    body = open(a.body, "rb").read()
    lat, codes = [], {}
    start = time.perf_counter()
    stop = start + a.seconds
    await asyncio.gather(*(worker(u.hostname, u.port, path, body, a.content_type, stop, lat, codes)
                           for _ in range(a.connections)))
    dt = time.perf_counter() - start
    lat.sort()
    q = lambda f: round(1e3 * lat[min(len(lat) - 1, int(f * len(lat)))], 3) if lat else None
    print(json.dumps({"connections": a.connections, "seconds": round(dt, 2), "requests": len(lat),
                      "requests_per_s": round(len(lat) / dt, 1),
                      "errors": sum(c for k, c in codes.items() if k != 200),
                      "p50_ms": q(0.5), "p90_ms": q(0.9), "p99_ms": q(0.99),
                      "status": {str(k): c for k, c in codes.items()}}))


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--body", required=True)
    p.add_argument("--content-type", default="image/png")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--seconds", type=float, default=10)
    asyncio.run(main(p.parse_args()))
