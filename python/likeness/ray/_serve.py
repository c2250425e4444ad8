"""The Ray Serve application of ``serve_sharded``: ``Shard`` (one shard's
index, memory-mapped) and ``Ingress`` (HTTP, fan-out, merge).

The JSON is ``likeness serve``'s: ``POST /search`` ``{"vector", "k", "ef",
"labels" | "exclude_labels"}`` -> ``{"hits": [{"rank", "id", "distance",
"label"?, "class"?, "path"?, "region"?}], "took_ms"}``; ``POST
/search/batch`` ``{"vectors", ...}`` -> ``{"results": [{"hits"}], ...}``;
``GET /items/{id}``; ``GET /healthz``; ``GET /stats``. Added here: the
answers carry ``"partial"`` and ``"missing_shards"``, ``/stats`` has
per-shard latencies, and a search may ask ``"exact": true`` (brute force
in every shard: the sharded answer then equals one index's exact search).
"""
import asyncio
import collections
import csv
import math
import time

import numpy as np
import ray
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from ray import serve

from likeness import DEFAULT_EF, DEFAULT_K, MAX_EF, MAX_K

# As `likeness serve` (app/src/serve.rs).
MAX_BATCH = 1024
SEARCH_KEYS = {"vector", "k", "ef", "labels", "exclude_labels", "exact"}
BATCH_KEYS = {"vectors", "k", "ef", "labels", "exclude_labels", "exact"}


def _read_items(path):
    """items.csv rows -> (source, region) per row, as `likeness serve` shows them."""
    out = []
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            src = r["path"] + (f"#{r['row']}" if r.get("row") else "")
            region = None
            if r.get("x"):
                x, y, w, h = (float(r[k]) for k in ("x", "y", "w", "h"))
                region = [x, y, x + w, y + h]
            out.append((src, region))
    return out


@serve.deployment
class Shard:
    """One shard: its index opened memory-mapped (replicas on one node
    share the page cache), answering in global ids."""

    def __init__(self, path, entry, classes, items_csv):
        import likeness

        self.index = likeness.Index.open(path)
        self.offset = int(entry["offset"])
        self.number = int(entry["index"])
        self.classes = classes
        self.labels = self.index.labels
        self.items = _read_items(items_csv) if items_csv else None
        self.node = ray.get_runtime_context().get_node_id()

    def _record(self, local):
        rec = {}
        if self.labels is not None:
            label = int(self.labels[local])
            rec["label"] = label
            if 0 <= label < len(self.classes):
                rec["class"] = self.classes[label]
        if self.items is not None and local < len(self.items):
            src, region = self.items[local]
            if src:
                rec["path"] = src
            if region is not None:
                rec["region"] = region
        return rec

    def search(self, queries, k, ef, labels, exclude_labels, exact):
        """Per query, the shard's hits (global id, distance, label, ...)."""
        ids, dists = self.index.search(queries, k, ef=ef, labels=labels,
                                       exclude_labels=exclude_labels, exact=exact, threads=1)
        out = []
        for row_ids, row_d in zip(ids.tolist(), dists.tolist()):
            hits = []
            for i, d in zip(row_ids, row_d):
                if i < 0:
                    break
                hits.append({"id": self.offset + i, "distance": d, **self._record(i)})
            out.append(hits)
        return out

    def item(self, local):
        rec = self._record(local)
        return {"id": self.offset + local, "label": rec.get("label"), "class": rec.get("class"),
                "path": rec.get("path"), "region": rec.get("region")}

    def where(self):
        """(shard number, node id) of this replica."""
        return self.number, self.node


class _Latencies:
    """The last 10,000 latencies, for quantiles in /stats."""

    def __init__(self):
        self.last = collections.deque(maxlen=10_000)
        self.count = 0

    def record(self, seconds):
        self.last.append(seconds)
        self.count += 1

    def json(self):
        if not self.last:
            return {"p50": None, "p90": None, "p99": None}
        a = np.asarray(self.last) * 1e3
        return {f"p{q}": float(np.percentile(a, q)) for q in (50, 90, 99)}


app = FastAPI()


class _Bad(Exception):
    def __init__(self, status, message):
        self.status, self.message = status, message


def _error(status, message, **extra):
    return JSONResponse({"error": message, **extra}, status_code=status)


@serve.deployment
@serve.ingress(app)
class Ingress:
    def __init__(self, cluster, shards, shard_timeout_s):
        self.cluster = cluster
        self.shards = shards
        self.entries = cluster["shards"]
        self.offsets = [e["offset"] for e in self.entries]
        self.dim = cluster["dim"]
        self.timeout = shard_timeout_s
        self.shard_lat = [_Latencies() for _ in shards]
        self.shard_missing = [0] * len(shards)
        self.lat = _Latencies()
        self.queries = 0
        self.partial = 0
        self.started = time.time()
        self.node = ray.get_runtime_context().get_node_id()

    async def _ask(self, s, method, *args):
        """Shard `s`'s answer, or None when it gives none within the
        timeout. A request that fails because its replica was lost is asked
        again (Serve routes it to a live replica, or to the replacement)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        start = time.perf_counter()
        while True:
            left = deadline - loop.time()
            if left <= 0:
                break
            resp = getattr(self.shards[s], method).remote(*args)
            try:
                out = await asyncio.wait_for(resp, left)
            except asyncio.TimeoutError:
                resp.cancel()
                break
            except ray.exceptions.RayTaskError:
                raise  # the shard's own code failed: a bug, not a lost node
            except Exception:
                await asyncio.sleep(min(0.1, max(0.0, deadline - loop.time())))
                continue
            self.shard_lat[s].record(time.perf_counter() - start)
            return out
        self.shard_missing[s] += 1
        return None

    def _parse(self, body, keys, batch):
        if not isinstance(body, dict):
            raise _Bad(400, "malformed JSON body: expected an object")
        unknown = sorted(set(body) - keys)
        if unknown:
            raise _Bad(400, f"malformed JSON body: unknown field `{unknown[0]}`, expected one "
                            f"of {sorted(keys)}")
        k, ef = body.get("k", DEFAULT_K), body.get("ef", DEFAULT_EF)
        for name, v, hi in (("k", k, MAX_K), ("ef", ef, MAX_EF)):
            if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= hi:
                raise _Bad(400, f"{name} = {v} is out of range 1..={hi}")
        only, excl = body.get("labels"), body.get("exclude_labels")
        if only is not None and excl is not None:
            raise _Bad(400, "give labels or exclude_labels, not both")
        if (only is not None or excl is not None) and not self.cluster.get("has_labels"):
            raise _Bad(400, "this index has no labels to filter by")
        if batch:
            vs = body.get("vectors")
            if not isinstance(vs, list) or not 1 <= len(vs) <= MAX_BATCH:
                n = len(vs) if isinstance(vs, list) else 0
                raise _Bad(400, f"vectors must hold 1..={MAX_BATCH} vectors, got {n}")
            names = [f"vectors[{i}]" for i in range(len(vs))]
        else:
            if "vector" not in body:
                raise _Bad(400, "malformed JSON body: missing field `vector`")
            vs, names = [body["vector"]], ["vector"]
        for v, name in zip(vs, names):
            if not isinstance(v, list):
                raise _Bad(400, f"malformed JSON body: {name} must be a list of numbers")
            if len(v) != self.dim:
                raise _Bad(400, f"{name} has {len(v)} values but the index has dimension "
                                f"{self.dim}")
            for i, x in enumerate(v):
                if not isinstance(x, (int, float)) or isinstance(x, bool) or not math.isfinite(x):
                    raise _Bad(400, f"{name}[{i}] is not a finite number")
        q = np.asarray(vs, dtype=np.float32)
        return q, k, max(ef, k), only, excl, bool(body.get("exact", False))

    async def _search(self, request, keys, batch):
        start = time.perf_counter()
        try:
            body = await request.json()
        except ValueError as e:
            return _error(400, f"malformed JSON body: {e}")
        try:
            q, k, ef, only, excl, exact = self._parse(body, keys, batch)
        except _Bad as e:
            return _error(e.status, e.message)
        answers = await asyncio.gather(*(self._ask(s, "search", q, k, ef, only, excl, exact)
                                         for s in range(len(self.shards))))
        missing = [self.entries[s]["index"] for s, a in enumerate(answers) if a is None]
        results = []
        for r in range(len(q)):
            hits = [h for a in answers if a is not None for h in a[r]]
            hits.sort(key=lambda h: (h["distance"], h["id"]))
            results.append({"hits": [{"rank": n + 1, **h} for n, h in enumerate(hits[:k])]})
        took = time.perf_counter() - start
        self.queries += len(q)
        self.lat.record(took)
        if missing:
            self.partial += 1
        out = {"results": results} if batch else {"hits": results[0]["hits"]}
        out.update({"partial": bool(missing), "missing_shards": missing, "took_ms": took * 1e3})
        return JSONResponse(out)

    @app.post("/search")
    async def search(self, request: Request):
        return await self._search(request, SEARCH_KEYS, batch=False)

    @app.post("/search/batch")
    async def search_batch(self, request: Request):
        return await self._search(request, BATCH_KEYS, batch=True)

    @app.get("/items/{item_id}")
    async def item(self, item_id: str):
        try:
            g = int(item_id)
            if g < 0:
                raise ValueError
        except ValueError:
            return _error(400, f"item id `{item_id}` is not a non-negative integer")
        s = next((s for s, e in enumerate(self.entries)
                  if e["offset"] <= g < e["offset"] + e["count"]), None)
        if s is None:
            return _error(404, f"no item {g}: the gallery holds {self.cluster['count']} items "
                               f"in {len(self.entries)} shards (ids by shard: "
                               + ", ".join(f"{e['offset']}..{e['offset'] + e['count']}"
                                           for e in self.entries) + ")")
        out = await self._ask(s, "item", g - self.entries[s]["offset"])
        if out is None:
            n = self.entries[s]["index"]
            return _error(503, f"shard {n}, which holds item {g}, did not answer within "
                               f"{self.timeout} s", partial=True, missing_shards=[n])
        return JSONResponse(out)

    @app.get("/healthz")
    async def healthz(self):
        return JSONResponse({"status": "ok", "shards": len(self.shards)})

    @app.get("/stats")
    async def stats(self):
        c = self.cluster
        return JSONResponse({
            "count": c["count"],
            "dim": c["dim"],
            "metric": c["metric"],
            "model_fingerprint": c.get("model_fingerprint"),
            "uptime_seconds": time.time() - self.started,
            "queries_served": self.queries,
            "partial_responses": self.partial,
            "latency_ms": self.lat.json(),
            "shard_timeout_s": self.timeout,
            "ingress_node": self.node,
            "shards": [{"index": e["index"], "offset": e["offset"], "count": e["count"],
                        "answers": self.shard_lat[s].count,
                        "missing": self.shard_missing[s],
                        "latency_ms": self.shard_lat[s].json()}
                       for s, e in enumerate(self.entries)],
        })
