"""The Ray Serve application of ``serve_sharded``: ``Shard`` (one shard's
index, memory-mapped) and ``Ingress`` (HTTP, batching, fan-out, merge).

A request is parsed once (``_Query``), waits for others in
``@serve.batch``, and its batch goes to every shard as one ``search`` call:
requests with equal parameters form one group, one engine call per group,
its rows searched in parallel. Each request gets back its own rows: hits
(with ``predicted_score`` from the engine's ``likeness.predict_score`` when
the shards have scores) or the engine's error for them.

The JSON is ``likeness serve``'s: ``POST /search`` ``{"vector", "k", "ef",
"labels" | "exclude_labels"}`` -> ``{"hits": [{"rank", "id", "distance",
"label"?, "class"?, "path"?, "region"?, "score"?, "subject"?, "side"?}],
"took_ms"}`` (label filters by number or class name, resolved by each
shard's index with the engine's rule); ``POST
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
# np.percentile imports numpy.ma on first use, which parses signatures with
# `ast`; in the ingress's HTTP thread that once raced another thread and
# failed (CPython 3.11.7: "SystemError: AST constructor recursion depth
# mismatch"), and /stats answered 500. Imported here, before any thread.
import numpy.ma  # noqa: F401
import ray
from ray import serve
from starlette.requests import Request
from starlette.responses import JSONResponse

from likeness import DEFAULT_EF, DEFAULT_K

# What the engine raises for a request it refuses; OverflowError: a k or ef
# too large for a machine integer (one such request once failed every
# request batched with it).
_REFUSED = (ValueError, TypeError, OverflowError)
# The largest finite float32: a larger number becomes inf in the rows.
_F32_MAX = float(np.finfo(np.float32).max)

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

    def __init__(self, path, entry, classes, items_csv, threads):
        import likeness

        self.index = likeness.Index.open(path)
        self.offset = int(entry["offset"])
        self.number = int(entry["index"])
        self.classes = classes
        # Filters by class name are resolved by the index (the engine's
        # rule, as `likeness serve`); a shard built before build_sharded
        # recorded class names in it has only cluster.json's, which then
        # turn names into numbers first.
        self.names = None if self.index.manifest.get("classes") else list(classes or [])
        # Subjects and sides, from the index, where build_sharded recorded
        # them: decoded here, once (3.4 ms for 100,000 items), not by the
        # first query; then 0.09 ms per 320 hits, against 0.85 ms for
        # searching them (32 queries, k 10, 16 dimensions, one thread).
        self.paired = bool(entry.get("pairings")) and self.index.count > 0
        if self.paired:
            self.index.items(0)
        self.labels = self.index.labels
        self.scores = self.index.scores
        self.items = _read_items(items_csv) if items_csv else None
        self.threads = threads
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
        if self.scores is not None and math.isfinite(self.scores[local]):
            rec["score"] = float(self.scores[local])
        if self.paired:
            rec.update(self._pairs([local])[0] or {})
        return rec

    def _pairs(self, local):
        """{"subject"?, "side"?} of each local id (None for -1 padding), as
        the index records them."""
        return [None if r is None else {k: r[k] for k in ("subject", "side") if k in r}
                for r in self.index.items(local)]

    def _filter(self, labels):
        if labels is None or not self.names:
            return labels
        return tuple(self.names.index(x) if isinstance(x, str) and x in self.names else x
                     for x in labels)

    def _search_one_group(self, queries, k, ef, labels, exclude_labels, exact):
        """(ids, distances, errors): the engine's answer for these rows. When
        the engine refuses the group, each row is asked alone, so that a bad
        row gets its own message in `errors` (else None) and the others
        their hits. Refused rows hold padding; when every row is refused
        (k or ef out of range) the arrays are 0 wide, never k wide."""
        labels, exclude_labels = self._filter(labels), self._filter(exclude_labels)

        def run(q, threads):
            return self.index.search(q, k, ef=ef, labels=labels, exclude_labels=exclude_labels,
                                     exact=exact, threads=threads)
        try:
            ids, dists = run(queries, self.threads)
            return ids, dists, None
        except _REFUSED as e:
            if len(queries) == 1:
                return (np.empty((1, 0), np.int64), np.empty((1, 0), np.float32), [str(e)])
        rows, errors = [], [None] * len(queries)
        for r in range(len(queries)):
            try:
                rows.append(run(queries[r:r + 1], 1))
            except _REFUSED as e:
                rows.append(None)
                errors[r] = str(e)
        width = next((a[0].shape[1] for a in rows if a is not None), 0)
        ids = np.full((len(queries), width), -1, np.int64)
        dists = np.full((len(queries), width), np.inf, np.float32)
        for r, a in enumerate(rows):
            if a is not None:
                ids[r], dists[r] = a[0][0], a[1][0]
        return ids, dists, errors

    def search(self, groups):
        """Searches each group ``(queries, k, ef, labels, exclude_labels,
        exact)`` (one engine call per group: its rows run in parallel, the
        GIL released) and returns per group a dict: ``ids`` (global, -1
        padding) and ``distances`` [rows, k], per-hit ``labels`` /
        ``scores`` arrays, ``items`` (path, region) and ``pairs``
        ({"subject"?, "side"?}) lists when the shard has them, and
        ``errors`` (a message per refused row, or None)."""
        out = []
        for queries, k, ef, only, excl, exact in groups:
            local, dists, errors = self._search_one_group(queries, k, ef, only, excl, exact)
            found = local >= 0
            safe = np.where(found, local, 0)
            ans = {"ids": np.where(found, local + self.offset, -1), "distances": dists,
                   "errors": errors, "labels": None, "scores": None, "items": None,
                   "pairs": None}
            if self.labels is not None:
                ans["labels"] = np.asarray(self.labels)[safe]
            if self.scores is not None:
                ans["scores"] = np.where(found, np.asarray(self.scores)[safe], np.nan)
            if self.items is not None:
                ans["items"] = [[self.items[i] if i >= 0 and i < len(self.items) else None
                                 for i in row] for row in local.tolist()]
            if self.paired and local.size:
                flat = self._pairs(local.reshape(-1))
                w = local.shape[1]
                ans["pairs"] = [flat[r * w:(r + 1) * w] for r in range(len(local))]
            out.append(ans)
        return out

    def item(self, local):
        rec = self._record(local)
        return {"id": self.offset + local, "label": rec.get("label"), "class": rec.get("class"),
                "path": rec.get("path"), "region": rec.get("region"),
                **{k: rec[k] for k in ("score", "subject", "side") if k in rec}}

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


class _Bad(Exception):
    def __init__(self, status, message):
        self.status, self.message = status, message


def _error(status, message, **extra):
    return JSONResponse({"error": message, **extra}, status_code=status)


class _Query:
    """One request's rows and parameters; requests with equal parameters
    (``key``) share one engine call per shard."""

    __slots__ = ("rows", "k", "ef", "only", "excl", "exact", "key")

    def __init__(self, rows, k, ef, only, excl, exact):
        self.rows, self.k, self.ef, self.only, self.excl, self.exact = \
            rows, k, ef, only, excl, exact
        self.key = (k, ef, only, excl, exact)


def _label_set(body, name):
    """The labels of filter `name` in `body`, alone or in a list: integers or
    class names, as given. Each shard's index resolves them (the engine's
    one rule, as `likeness serve` and `Index.search(labels=...)`: an unknown
    name, or a number past the class names, is refused with its message)."""
    v = body.get(name)
    if v is None:
        return None
    out = []
    for x in v if isinstance(v, list) else [v]:
        if isinstance(x, str) or (isinstance(x, int) and not isinstance(x, bool)):
            out.append(x)
        else:
            raise _Bad(400, f"malformed JSON body: {name} must be a label (an integer or a "
                            f"class name) or a list of them")
    return tuple(out)


def _is_loopback_name(host):
    """Whether a Host header names this machine's loopback (`localhost`,
    `127.0.0.1:8000`, `[::1]:8000`), as `likeness serve` checks it."""
    import ipaddress

    if host.startswith("["):
        name = host[1:].split("]", 1)[0]
    else:
        name, _, port = host.rpartition(":")
        if not (name and port.isdigit()):
            name = host
    name = name.rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


ROUTES = "POST /search, POST /search/batch, GET /items/{id}, GET /healthz, GET /stats"


@serve.deployment
class Ingress:
    """HTTP in, one ``search`` call per shard per batch, merged answers out.

    With ``http="direct"`` this replica serves HTTP itself on ``host:port``
    (uvicorn in a thread of the replica; Serve's proxy is not on the path):
    on this 2-core machine a no-op endpoint answers about 200 requests/s
    through Serve's proxy, where the proxy's HTTP parsing and its actor
    call to the replica cost about 5 ms of CPU per request, and about
    3,400/s from uvicorn in the replica (`make bench-ray`,
    docs/benchmarks.md). Ray Serve's own RAY_SERVE_ENABLE_DIRECT_INGRESS
    does the same but is experimental and takes its ports from a range.
    With ``http="proxy"`` Serve's proxy routes to ``__call__``. Both go
    through ``_dispatch``."""

    def __init__(self, cluster, shards, shard_timeout_s, batching, http):
        import likeness

        self.cluster = cluster
        self.shards = shards
        self.entries = cluster["shards"]
        self.offsets = [e["offset"] for e in self.entries]
        self.dim = cluster["dim"]
        self.classes = cluster.get("classes", [])
        self.has_scores = bool(cluster.get("has_scores"))
        self.predict_score = likeness.predict_score
        self.timeout = shard_timeout_s
        self.shard_lat = [_Latencies() for _ in shards]
        self.shard_missing = [0] * len(shards)
        self.lat = _Latencies()
        self.queries = 0
        self.partial = 0
        self.batches = 0
        self.batched_requests = 0
        self.largest_batch = 0
        self.started = time.time()
        self.node = ray.get_runtime_context().get_node_id()
        self.batching = dict(batching)
        if batching["max_batch_size"] > 1:
            # Concurrent requests wait up to batch_wait_timeout_s for each
            # other, then go to every shard as one call (serve_sharded says
            # why the defaults are what they are).
            self._submit = serve.batch(**batching)(self._run_batch)
        else:
            self._submit = self._run_one
        # Listening on loopback, it answers only requests addressed to a
        # loopback name: a web page elsewhere could otherwise read its
        # answers (the gallery's paths) under its own name, by DNS
        # rebinding. (`likeness serve` does the same.)
        self.loopback = _is_loopback_name(http["host"])
        self.prefix = http["route_prefix"].rstrip("/")
        self.server = self.thread = None
        self.http_mode = http["mode"]
        if http["mode"] == "direct":
            self._serve_http(http["host"], http["port"])

    def _serve_http(self, host, port, wait_s=30.0):
        """Starts uvicorn on host:port in a thread of this replica. The
        socket has SO_REUSEPORT, so replicas on one node share the port; a
        port held by something else is retried for `wait_s` (a replica of a
        deleted application may still be stopping), then refused."""
        import socket
        import threading

        import uvicorn

        deadline = time.monotonic() + wait_s
        while True:
            sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            try:
                sock.bind((host, port))
                break
            except OSError as e:
                sock.close()
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"likeness.ray: the ingress on node {self.node} cannot listen on "
                        f"{host}:{port} ({e}); stop what holds the port or pass another "
                        f"port to serve_sharded") from e
                time.sleep(0.2)

        async def asgi(scope, receive, send):
            response = await self._dispatch(Request(scope, receive))
            await response(scope, receive, send)

        config = uvicorn.Config(asgi, log_level="warning", access_log=False, lifespan="off")
        self.server = uvicorn.Server(config)
        self.server.install_signal_handlers = lambda: None  # not the main thread
        thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]},
                                  name="likeness-http", daemon=True)
        thread.start()
        while not self.server.started:
            if not thread.is_alive():
                raise RuntimeError(f"likeness.ray: the ingress's HTTP server on {host}:{port} "
                                   f"stopped while starting; see the replica's log")
            time.sleep(0.01)
        self.thread = thread  # from here on, __del__ stops the server

    def __del__(self):
        # Serve calls this on graceful shutdown: free the port at once.
        if getattr(self, "thread", None) is not None:
            self.server.should_exit = True
            self.thread.join(timeout=5)

    async def __call__(self, request: Request):
        """Requests from Serve's proxy (``http="proxy"``)."""
        return await self._dispatch(request)

    async def _dispatch(self, request):
        host = request.headers.get("host", "")
        if self.loopback and not _is_loopback_name(host):
            return _error(403, f"this gallery listens on loopback and answers only requests "
                               f"addressed to it as localhost or a loopback address, not "
                               f"`{host}`; open http://127.0.0.1:PORT/")
        path = request.url.path
        if self.prefix and (path == self.prefix or path.startswith(self.prefix + "/")):
            path = path[len(self.prefix):] or "/"
        method = request.method
        if path == "/search" and method == "POST":
            return await self._search(request, SEARCH_KEYS, batch=False)
        if path == "/search/batch" and method == "POST":
            return await self._search(request, BATCH_KEYS, batch=True)
        if path.startswith("/items/") and method == "GET":
            return await self.item(path[len("/items/"):])
        if path == "/healthz" and method == "GET":
            return JSONResponse({"status": "ok", "shards": len(self.shards)})
        if path == "/stats" and method == "GET":
            return self.stats()
        return _error(404, f"no route {method} {path}; the routes are {ROUTES}")

    async def _run_one(self, query):
        return (await self._run_batch([query]))[0]

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

    async def _run_batch(self, queries):
        """The answers to a batch of parsed requests: one ``search`` call
        per shard holding every request (grouped by parameters), then the
        top k of each row merged by (distance, id). Each request keeps its
        own answer: hits, or the engine's error for its rows; all carry the
        shards that did not answer."""
        self.batches += 1
        self.batched_requests += len(queries)
        self.largest_batch = max(self.largest_batch, len(queries))
        groups = {}
        for n, q in enumerate(queries):
            groups.setdefault(q.key, []).append(n)
        order = list(groups.values())
        payload = []
        for members in order:
            q0 = queries[members[0]]
            rows = np.concatenate([queries[n].rows for n in members]) if len(members) > 1 \
                else q0.rows
            payload.append((rows, q0.k, q0.ef, q0.only, q0.excl, q0.exact))
        answers = await asyncio.gather(*(self._ask(s, "search", payload)
                                         for s in range(len(self.shards))))
        missing = [self.entries[s]["index"] for s, a in enumerate(answers) if a is None]
        got = [a for a in answers if a is not None]
        out = [None] * len(queries)
        for g, members in enumerate(order):
            k = queries[members[0]].k
            results = self._merge([a[g] for a in got], k, len(payload[g][0]))
            errors = [None] * len(results)
            for a in got:
                for r, e in enumerate(a[g]["errors"] or ()):
                    errors[r] = errors[r] or e
            lo = 0
            for n in members:
                hi = lo + len(queries[n].rows)
                mine = errors[lo:hi]
                bad = [(r, e) for r, e in enumerate(mine) if e]
                if not bad:
                    out[n] = {"results": results[lo:hi]}
                elif len(bad) == len(mine) and len(set(mine)) == 1:
                    out[n] = {"error": bad[0][1]}  # the request's parameters
                else:
                    out[n] = {"error": f"vectors[{bad[0][0]}]: {bad[0][1]}"}
                out[n]["missing"] = missing
                lo = hi
        return out

    def _merge(self, parts, k, rows):
        """Per row, the k nearest of the shards' hits (ties by id), as
        `likeness serve` shows hits."""
        if not parts:
            return [{"hits": []} for _ in range(rows)]
        ids = np.concatenate([p["ids"] for p in parts], axis=1)
        dists = np.concatenate([p["distances"] for p in parts], axis=1)
        # Padding (-1, +inf) sorts last; lexsort's last key is the primary.
        order = np.lexsort((ids, dists), axis=-1)[:, :k]
        ids = np.take_along_axis(ids, order, 1).tolist()
        dists = np.take_along_axis(dists, order, 1).tolist()

        def pick(key):
            if any(p[key] is None for p in parts):
                return None
            return np.take_along_axis(np.concatenate([p[key] for p in parts], axis=1), order,
                                      1).tolist()

        labels, scores = pick("labels"), pick("scores")
        items = None
        if all(p["items"] is not None for p in parts):
            flat = [[it for p in parts for it in p["items"][r]] for r in range(rows)]
            items = [[flat[r][c] for c in row] for r, row in enumerate(order.tolist())]
        pairs = None
        if any(p.get("pairs") is not None for p in parts):
            # A shard whose items have no subject or side gives none.
            flat = [[x for p in parts
                     for x in (p["pairs"][r] if p.get("pairs") is not None
                               else [None] * p["ids"].shape[1])] for r in range(rows)]
            pairs = [[flat[r][c] for c in row] for r, row in enumerate(order.tolist())]
        results = []
        for r in range(rows):
            hits = []
            for c in range(len(ids[r])):
                if ids[r][c] < 0:
                    break
                h = {"rank": c + 1, "id": ids[r][c], "distance": dists[r][c]}
                if labels is not None:
                    label = labels[r][c]
                    h["label"] = label
                    if 0 <= label < len(self.classes):
                        h["class"] = self.classes[label]
                if items is not None and items[r][c] is not None:
                    src, region = items[r][c]
                    if src:
                        h["path"] = src
                    if region is not None:
                        h["region"] = region
                if scores is not None and math.isfinite(scores[r][c]):
                    h["score"] = scores[r][c]
                if pairs is not None and pairs[r][c]:
                    h.update(pairs[r][c])
                hits.append(h)
            res = {"hits": hits}
            if self.has_scores:
                res["predicted_score"] = self.predict_score(
                    [h["distance"] for h in hits], [h.get("score", math.nan) for h in hits])
            results.append(res)
        return results

    def _parse(self, body, keys, batch):
        """A request as a _Query. The JSON's shape is checked here; the
        ranges of k and ef by the engine (one validation), per request."""
        if not isinstance(body, dict):
            raise _Bad(400, "malformed JSON body: expected an object")
        unknown = sorted(set(body) - keys)
        if unknown:
            raise _Bad(400, f"malformed JSON body: unknown field `{unknown[0]}`, expected one "
                            f"of {sorted(keys)}")
        k, ef = body.get("k", DEFAULT_K), body.get("ef", DEFAULT_EF)
        for name, v in (("k", k), ("ef", ef)):
            if not isinstance(v, int) or isinstance(v, bool):
                raise _Bad(400, f"malformed JSON body: {name} = {v!r} is not an integer")
        only = _label_set(body, "labels")
        excl = _label_set(body, "exclude_labels")
        if only is not None and excl is not None:
            raise _Bad(400, "give labels or exclude_labels, not both")
        if (only is not None or excl is not None) and not self.cluster.get("has_labels"):
            raise _Bad(400, "this index has no labels to filter by")
        exact = body.get("exact", False)
        if not isinstance(exact, bool):
            raise _Bad(400, f"malformed JSON body: exact = {exact!r} is not true or false")
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
                if (not isinstance(x, (int, float)) or isinstance(x, bool)
                        or not -_F32_MAX <= x <= _F32_MAX):  # also NaN; ints of any size
                    raise _Bad(400, f"{name}[{i}] is not a finite float32 number")
        rows = np.asarray(vs, dtype=np.float32)
        # ef below k is raised to k, as the engine does.
        return _Query(rows, k, max(ef, k) if k > 0 else ef, only, excl, exact)

    async def _search(self, request, keys, batch):
        start = time.perf_counter()
        try:
            body = await request.json()
        except ValueError as e:
            return _error(400, f"malformed JSON body: {e}")
        try:
            query = self._parse(body, keys, batch)
        except _Bad as e:
            return _error(e.status, e.message)
        answer = await self._submit(query)
        if "error" in answer:
            return _error(400, answer["error"])
        missing = answer["missing"]
        took = time.perf_counter() - start
        self.queries += len(query.rows)
        self.lat.record(took)
        if missing:
            self.partial += 1
        out = {"results": answer["results"]} if batch else dict(answer["results"][0])
        out.update({"partial": bool(missing), "missing_shards": missing, "took_ms": took * 1e3})
        return JSONResponse(out)

    async def item(self, item_id):
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

    def stats(self):
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
            "http": self.http_mode,
            "batching": {**self.batching, "batches": self.batches,
                         "requests": self.batched_requests,
                         "mean_requests_per_batch": (self.batched_requests / self.batches
                                                     if self.batches else None),
                         "largest_batch": self.largest_batch},
            "shards": [{"index": e["index"], "offset": e["offset"], "count": e["count"],
                        "answers": self.shard_lat[s].count,
                        "missing": self.shard_missing[s],
                        "latency_ms": self.shard_lat[s].json()}
                       for s, e in enumerate(self.entries)],
        })
