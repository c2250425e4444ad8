"""The Python package against the CLI (same files, same numbers), its input
checks, its array lifetimes, its threading and its errors."""
import gc
import json
import os
import subprocess
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import likeness
from conftest import clustered


def build_py(tmp_path, x, name="py", **kw):
    kw.setdefault("metric", "l2")
    return likeness.build(x, tmp_path / name, **kw)


# ---- same files, same results as the CLI ----------------------------------

def test_search_equals_cli_query(tmp_path, cli, data):
    x, labels, q, _ = data
    ix = build_py(tmp_path, x, labels=labels, seed=3)
    np.save(tmp_path / "q.npy", q)
    for extra, kw in (([], {}), (["--ef", "16"], {"ef": 16}), (["--exact"], {"exact": True})):
        rows = [r for r in cli.json_lines("query", "--index", ix.path, "--vectors",
                                          tmp_path / "q.npy", "-k", 10, "--json", *extra)
                if r["type"] == "query"]
        ids, dists = ix.search(q, k=10, **kw)
        assert ids.shape == (len(q), 10) and ids.dtype == np.int64
        assert dists.shape == (len(q), 10) and dists.dtype == np.float32
        np.testing.assert_array_equal(ids, np.array([r["ids"] for r in rows]), err_msg=str(extra))
        np.testing.assert_allclose(dists, np.array([r["distances"] for r in rows]),
                                   rtol=0, atol=1e-6, err_msg=str(extra))


def _post(url, body):
    req = urllib.request.Request(url, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def test_one_request_gives_the_same_ids_through_cli_http_and_python(tmp_path, cli, data):
    """Every front end goes through the engine's one search entry point: the
    same request (defaults, ef, a label filter, a query by stored item)
    gives identical ids from `likeness query`, `likeness serve` and Python."""
    x, labels, q, _ = data
    ix = build_py(tmp_path, x, labels=labels, seed=3)
    q = q[:20]
    np.save(tmp_path / "q.npy", q)
    srv = subprocess.Popen([str(cli.path), "serve", "--index", str(ix.path), "--no-model",
                            "--addr", "127.0.0.1:0", "--workers", "1"],
                           stdout=subprocess.PIPE, text=True)
    try:
        line = srv.stdout.readline()
        assert line.startswith("listening on "), line
        url = "http://" + line.split()[-1]
        with urllib.request.urlopen(url + "/info", timeout=30) as r:
            info = json.loads(r.read())
        shared = {"default_k": likeness.DEFAULT_K, "default_ef": likeness.DEFAULT_EF,
                  "max_k": likeness.MAX_K, "max_ef": likeness.MAX_EF}
        assert {k: info["limits"][k] for k in shared} == shared
        for flags, body, kw in (([], {}, {}),
                                (["--ef", "12", "-k", "5"], {"ef": 12, "k": 5}, {"ef": 12, "k": 5}),
                                (["--labels", "3,4"], {"labels": [3, 4]}, {"labels": [3, 4]})):
            rows = [r["ids"] for r in cli.json_lines("query", "--index", ix.path, "--vectors",
                                                    tmp_path / "q.npy", "--json", *flags)
                    if r["type"] == "query"]
            py_ids, _ = ix.search(q, **kw)
            batch = _post(url + "/search/batch", {"vectors": q.tolist(), **body})["results"]
            one = [_post(url + "/search", {"vector": v.tolist(), **body})["hits"] for v in q]
            for name, got in (("http batch", [[h["id"] for h in r["hits"]] for r in batch]),
                              ("http one", [[h["id"] for h in hits] for hits in one])):
                assert got == rows, f"{name} {flags}"
            np.testing.assert_array_equal(py_ids, np.array(rows), err_msg=str(flags))
        # A query by stored item leaves the item out, in the CLI and over HTTP.
        rows = [r["ids"] for r in cli.json_lines("query", "--index", ix.path, "--id", "7",
                                                "--json") if r["type"] == "query"]
        with urllib.request.urlopen(url + "/search/item/7", timeout=30) as r:
            hits = json.loads(r.read())["hits"]
        assert [h["id"] for h in hits] == rows[0] and 7 not in rows[0]
    finally:
        srv.terminate()
        srv.wait(timeout=30)


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64])
def test_built_from_python_equals_built_by_cli(tmp_path, cli, data, dtype):
    """One thread and the same seed: the CLI and Python write the same bytes,
    whatever the input's float type (both convert it the same way)."""
    x, labels, _, _ = data
    xs = x.astype(dtype)
    np.save(tmp_path / "x.npy", xs)
    np.save(tmp_path / "labels.npy", labels)
    cli("--threads", 1, "build", "--vectors", tmp_path / "x.npy", "--labels",
        tmp_path / "labels.npy", "--out", tmp_path / "cli", "--metric", "cosine",
        "--m", 8, "--ef-construction", 60, "--seed", 5)
    likeness.build(xs, tmp_path / "py", labels=labels, metric="cosine", m=8,
                   ef_construction=60, seed=5, threads=1)
    for f in ("graph.bin", "vectors.npy", "meta.bin"):
        assert (tmp_path / "cli" / f).read_bytes() == (tmp_path / "py" / f).read_bytes(), f
    a, b = (json.loads((tmp_path / d / "manifest.json").read_text()) for d in ("cli", "py"))
    a.pop("created_unix"), b.pop("created_unix")
    assert a == b


def test_each_opens_the_others_index(tmp_path, cli, data):
    x, labels, q, _ = data
    # Python -> CLI
    ix = build_py(tmp_path, x, labels=labels)
    assert "ok" in cli("verify", "--index", ix.path)
    # CLI -> Python
    np.save(tmp_path / "x.npy", x)
    cli("build", "--vectors", tmp_path / "x.npy", "--out", tmp_path / "cli", "--metric", "l2")
    other = likeness.Index.open(tmp_path / "cli")
    assert (other.count, other.dim, other.metric, other.labels) == (len(x), 32, "l2", None)
    assert other.verify()["files"] == ["graph.bin", "vectors.npy"]
    np.testing.assert_array_equal(other.vectors, x)
    np.save(tmp_path / "q.npy", q)
    out = tmp_path / "ids.npy"
    cli("query", "--index", tmp_path / "cli", "--vectors", tmp_path / "q.npy", "-k", 5,
        "--out", out)
    np.testing.assert_array_equal(other.search(q, k=5)[0], np.load(out))


def test_evaluate_equals_cli_eval_json(tmp_path, cli, data):
    x, labels, _, _ = data
    ix = build_py(tmp_path, x, labels=labels)
    want = json.loads(cli("eval", "--index", ix.path, "--json", "--out", tmp_path / "eval"))
    got = likeness.evaluate(ix)
    assert set(got) == set(want)
    want.pop("seconds"), got.pop("seconds")
    assert got == want
    assert got["recall@1"] > 0.5 and "ann_recall@8" in got


def test_evaluate_query_vs_gallery_counts_like_numpy(tmp_path, data):
    x, labels, q, ql = data
    ix = build_py(tmp_path, x, labels=labels)
    r = likeness.evaluate(ix, ks=[1, 5], queries=q, labels=ql)
    d = ((q[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    nearest = np.argsort(d, axis=1, kind="stable")
    hits1 = labels[nearest[:, 0]] == ql
    hits5 = (labels[nearest[:, :5]] == ql[:, None]).any(axis=1)
    assert r["protocol"] == "query-vs-gallery" and r["queries"] == len(q)
    assert r["recall@1"] == pytest.approx(hits1.mean(), abs=1e-12)
    assert r["recall@5"] == pytest.approx(hits5.mean(), abs=1e-12)
    with pytest.raises(ValueError, match="together"):
        likeness.evaluate(ix, queries=q)
    # Queries of another dimension: it used to speak of rows or labels.
    for wrong in (q[:, :16], np.repeat(q, 2, axis=1)):
        with pytest.raises(ValueError, match=f"expected vectors of dimension 32, got {wrong.shape[1]}"):
            likeness.evaluate(ix, queries=wrong, labels=ql)
    with pytest.raises(ValueError, match="no labels"):
        likeness.evaluate(build_py(tmp_path, x, name="nolabels"))


# ---- search contract --------------------------------------------------------

def test_search_shapes_padding_and_filters(tmp_path, data):
    x, labels, q, _ = data
    ix = build_py(tmp_path, x, labels=labels)
    ids, dists = ix.search(q[0], k=4)
    assert ids.shape == (1, 4) and dists.shape == (1, 4)
    np.testing.assert_array_equal(ids, ix.search(q[:1], k=4)[0])
    small = build_py(tmp_path, x[:5], name="small")
    ids, dists = small.search(q[:3], k=8)
    assert ids.shape == (3, 8)
    assert (ids[:, :5] >= 0).all() and (ids[:, 5:] == -1).all()
    assert np.isinf(dists[:, 5:]).all() and np.isfinite(dists[:, :5]).all()
    ids, _ = ix.search(q, k=10, labels=[3, 4])
    assert set(np.unique(labels[ids[ids >= 0]])) <= {3, 4}
    ids, _ = ix.search(q, k=10, exclude_labels=3)
    assert 3 not in labels[ids[ids >= 0]]
    # Threads: the same answers on the calling thread, a pool of 2 and all cores.
    one = ix.search(q, k=10, threads=1)
    for t in (2, None):
        two = ix.search(q, k=10, threads=t)
        np.testing.assert_array_equal(one[0], two[0])
        np.testing.assert_array_equal(one[1], two[1])


def test_items_describe_ids(tmp_path, data):
    x, labels, q, _ = data
    ix = build_py(tmp_path, x[:5], labels=labels[:5])
    ids, dists = ix.search(q[0], k=7)
    items = ix.items(ids[0], dists[0])
    assert items[5] is None and items[6] is None
    assert items[0] == {"id": int(ids[0, 0]), "label": int(labels[ids[0, 0]]),
                        "distance": pytest.approx(float(dists[0, 0]))}
    assert ix.items([2]) == [{"id": 2, "label": int(labels[2])}]
    with pytest.raises(ValueError, match="out of range"):
        ix.items([5])


def test_items_name_subject_and_side_as_the_cli_hits_do(tmp_path, cli, data):
    """`build(subjects=..., sides=...)` records each item's subject and side;
    `items` names them where recorded (as `likeness query --json`'s hits and
    `likeness serve` do: "left"/"right"), and gives neither elsewhere."""
    x, labels, _, _ = data
    n = 40
    subjects = [f"p{i // 2}" if i < 30 else None for i in range(n)]
    sides = [("left", "right")[i % 2] if i < 30 else None for i in range(n)]
    sides[0] = "left"
    subjects[31] = "alone"  # a subject with no side
    ix = build_py(tmp_path, x[:n], labels=labels[:n], subjects=subjects, sides=sides)
    got = ix.items(range(n))
    for i, d in enumerate(got):
        assert d.get("subject") == subjects[i], d
        assert d.get("side") == sides[i], d
    assert "side" not in got[31] and got[31]["subject"] == "alone"
    assert "side" not in got[35] and "subject" not in got[35]
    # The CLI's hits of the same index say the same of each id.
    rows = cli.json_lines("query", "--index", ix.path, "--id", 3, "-k", 12, "--json")
    hits = rows[0]["hits"]
    assert len(hits) == 12
    by_id = {d["id"]: d for d in got}
    for h in hits:
        mine = by_id[h["id"]]
        assert (h.get("subject"), h.get("side")) == (mine.get("subject"), mine.get("side")), h
    # Without them: no such keys.
    plain = build_py(tmp_path, x[:n], name="plain", labels=labels[:n])
    assert all("side" not in d and "subject" not in d for d in plain.items(range(n)))
    with pytest.raises(ValueError, match="must be `left`, `right`"):
        build_py(tmp_path, x[:n], name="bad", sides=["up"] + [None] * (n - 1))
    with pytest.raises(ValueError, match="sides holds 3"):
        build_py(tmp_path, x[:n], name="short", sides=["left"] * 3)


def test_scores_and_compact_stores_give_the_cli_predicted_score(tmp_path, cli, data):
    """`build(scores=..., store=...)` writes what `likeness query` reads: each
    hit's score and the query's predicted_score, which `predict_score`
    computes from the hits as the CLI does."""
    x, labels, q, _ = data
    scores = np.where(np.arange(len(x)) % 5 == 0, np.nan, labels * 0.5).astype(np.float32)
    np.save(tmp_path / "q.npy", q[:20])
    for store in ("f32", "i8"):
        ix = build_py(tmp_path, x, name=store, labels=labels, scores=scores, store=store,
                      quantile=0.97, seed=2)
        assert ix.manifest.get("store", "f32") == store
        np.testing.assert_array_equal(ix.scores, scores)  # NaN where none
        rows = [r for r in cli.json_lines("query", "--index", ix.path, "--vectors",
                                          tmp_path / "q.npy", "-k", 10, "--json")
                if r["type"] == "query"]
        ids, dists = ix.search(q[:20], k=10)
        for r, row in enumerate(rows):
            assert [h["id"] for h in row["hits"]] == ids[r].tolist()
            items = ix.items(ids[r], dists[r])
            assert [it.get("score") for it in items] == \
                [h.get("score") and pytest.approx(h["score"]) for h in row["hits"]]
            got = likeness.predict_score(dists[r].tolist(),
                                         [it.get("score", np.nan) for it in items])
            assert got == pytest.approx(row["predicted_score"], abs=1e-5), store
    assert build_py(tmp_path, x, name="none").scores is None
    assert likeness.predict_score([1.0, 2.0], [np.nan, np.nan]) is None
    with pytest.raises(ValueError, match="one score per vector"):
        build_py(tmp_path, x, name="short", scores=scores[:-1])
    with pytest.raises(ValueError, match="one score per hit"):
        likeness.predict_score([1.0], [])


# ---- bad input ----------------------------------------------------------------

def test_build_refuses_bad_arrays(tmp_path, data):
    x, labels, _, _ = data
    out = tmp_path / "ix"
    cases = [
        (x.tolist(), TypeError, "numpy.ndarray"),
        (x.astype(np.int32), TypeError, "int32"),
        (x.astype(np.complex64), TypeError, "expected float16, float32 or float64"),
        (x[0], ValueError, "2-D"),
        (x.reshape(10, 150, 32), ValueError, "2-D"),
        (np.zeros((0, 32), np.float32), ValueError, "no vectors"),
    ]
    for arr, exc, msg in cases:
        with pytest.raises(exc, match=msg):
            likeness.build(arr, out)
    for bad, row in ((np.nan, 7), (np.inf, 3), (-np.inf, 1499)):
        y = x.copy()
        y[row, 2] = bad
        with pytest.raises(ValueError, match=f"row {row}, column 2"):
            likeness.build(y, out, metric="l2")
    y = x.copy()
    y[11] = 0
    with pytest.raises(ValueError, match="row 11 has zero length"):
        likeness.build(y, out, metric="cosine")
    with pytest.raises(ValueError, match="1500 rows but labels holds 1499"):
        likeness.build(x, out, labels=labels[:-1])
    with pytest.raises(TypeError, match="integers"):
        likeness.build(x, out, labels=labels.astype(np.float32))
    with pytest.raises(ValueError, match="shape"):
        likeness.build(x, out, labels=np.stack([labels, labels], 1))
    with pytest.raises(ValueError, match="metric"):
        likeness.build(x, out, metric="dot")
    with pytest.raises(ValueError, match="m = 0"):
        likeness.build(x, out, m=0)
    assert not out.exists()
    likeness.build(x[:10], out)
    with pytest.raises(FileExistsError, match="force=True"):
        likeness.build(x[:10], out)
    assert likeness.build(x[:20], out, force=True).count == 20


def test_non_contiguous_and_other_float_types_are_converted(tmp_path, data):
    x, _, q, _ = data
    f = np.asfortranarray(x)
    assert not f.flags.c_contiguous
    a = build_py(tmp_path, f, name="f", threads=1, seed=2)
    b = build_py(tmp_path, x, name="c", threads=1, seed=2)
    assert (tmp_path / "f/graph.bin").read_bytes() == (tmp_path / "c/graph.bin").read_bytes()
    want = b.search(q, k=5)
    for qq in (q[:, ::1][::1].copy(order="F"), np.repeat(q, 2, axis=1)[:, ::2],
               q.astype(np.float64)):
        got = a.search(qq, k=5)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_allclose(got[1], want[1], atol=1e-6)


def test_search_refuses_bad_queries(tmp_path, data):
    x, _, q, _ = data
    ix = build_py(tmp_path, x)
    with pytest.raises(ValueError, match="dimension mismatch: expected vectors of dimension 32, got 31"):
        ix.search(q[:, :31])
    y = q.copy()
    y[4, 0] = np.nan
    with pytest.raises(ValueError, match="row 4"):
        ix.search(y)
    y = q.copy()
    y[3] = 1e30  # l2: its distances used to come back as inf, in no order
    with pytest.raises(ValueError, match="row 3 has length .*scale the vectors down"):
        ix.search(y)
    with pytest.raises(ValueError, match="row 2 has length"):
        likeness.build(np.repeat(y[2:], 2, axis=0), tmp_path / "big", metric="l2")
    with pytest.raises(TypeError, match="numpy.ndarray"):
        ix.search(q[0].tolist())
    with pytest.raises(TypeError, match="int64"):
        ix.search(q.astype(np.int64))
    with pytest.raises(ValueError, match="2-D"):
        ix.search(q.reshape(4, 50, 32))
    for kw, msg in (({"k": 0}, "k = 0"), ({"ef": -1}, "ef = -1"), ({"threads": 0}, "threads"),
                    ({"labels": [1]}, "no labels to filter by; build it with labels"),
                    ({"labels": [1], "exclude_labels": [2]}, "not both")):
        with pytest.raises(ValueError, match=msg):
            ix.search(q, **kw)


# ---- memory-mapped views --------------------------------------------------------

def test_vectors_view_outlives_the_index(tmp_path, data):
    x, labels, _, _ = data
    path = build_py(tmp_path, x, labels=labels).path
    ix = likeness.Index.open(path)
    v, lab = ix.vectors, ix.labels
    assert v.shape == (len(x), 32) and v.dtype == np.float32
    assert not v.flags.owndata and not v.flags.writeable
    np.testing.assert_array_equal(v, x)
    np.testing.assert_array_equal(lab, labels)
    with pytest.raises(ValueError):
        v[0, 0] = 1.0
    with pytest.raises(ValueError):
        v.flags.writeable = True
    ix.close()
    with pytest.raises(ValueError, match="closed"):
        ix.search(x[:1])
    del ix
    gc.collect()
    # The map stays alive for the views: reading them is still valid.
    np.testing.assert_array_equal(v, x)
    np.testing.assert_array_equal(lab, labels)
    assert float(v.sum(dtype=np.float64)) == pytest.approx(float(x.sum(dtype=np.float64)))
    with likeness.Index.open(path) as again:
        assert again.count == len(x)
    with pytest.raises(ValueError, match="closed"):
        again.count


def test_manifest_and_attributes(tmp_path, data):
    x, _, _, _ = data
    ix = build_py(tmp_path, x, m=12, ef_construction=80, seed=9, threads=1)
    m = ix.manifest
    assert m["format"] == "likeness-index" and m["count"] == len(x) and m["dim"] == 32
    assert m["build"]["m"] == 12 and m["build"]["ef_construction"] == 80
    assert m["build"]["seed"] == 9 and m["build"]["threads"] == 1 and m["metric"] == "l2"
    assert len(ix) == ix.count == len(x) and ix.labels is None
    assert ix.verify()["edges"] > 0


# ---- threads ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def big(tmp_path_factory):
    x, _ = clustered(20000, 64, 50, seed=4, spread=1.0)
    ix = likeness.build(x, tmp_path_factory.mktemp("big") / "ix", metric="l2", m=16,
                        ef_construction=100)
    return ix, x


def test_four_threads_give_the_answers_of_one(big):
    ix, x = big
    q = x[:2000] + 0.1
    want = ix.search(q, k=10, threads=1)
    chunks = np.array_split(np.arange(len(q)), 8)

    def work(rows):
        return ix.search(q[rows], k=10, threads=1)

    with ThreadPoolExecutor(4) as pool:
        for _ in range(3):
            got = list(pool.map(work, chunks))
            np.testing.assert_array_equal(np.concatenate([g[0] for g in got]), want[0])
            np.testing.assert_array_equal(np.concatenate([g[1] for g in got]), want[1])


def test_search_releases_the_gil(big):
    """While one thread searches, another runs Python code: with the GIL
    held it could not run at all between the start and the end of the call."""
    ix, x = big
    q = np.repeat(x[:1000], 4, axis=0)
    window = {}

    def search():
        window["start"] = time.perf_counter()
        ix.search(q, k=10, ef=256, threads=1)
        window["end"] = time.perf_counter()

    t = threading.Thread(target=search)
    ticks = []
    t.start()
    while t.is_alive():
        ticks.append(time.perf_counter())
    t.join()
    start, end = window["start"], window["end"]
    assert end - start > 0.05, "the search was too short to tell"
    inside = [s for s in ticks if start < s < end]
    assert len(inside) > 100, f"{len(inside)} Python steps ran during a {end - start:.2f}s search"


def test_two_threads_search_faster_than_one(big):
    """With the GIL released, two Python threads searching one index answer
    more queries per second than one. The two cores are shared with other
    work, so each setting runs 5 times, interleaved, and the best counts."""
    ix, x = big
    q = x[:8000] + 0.1
    batches = np.array_split(q, 160)

    def qps(threads):
        def work(part):
            for b in part:
                ix.search(b, k=10, threads=1)
        parts = [batches[i::threads] for i in range(threads)]
        t = time.perf_counter()
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(work, parts))
        return len(q) / (time.perf_counter() - t)

    qps(2)  # warm up both threads' scratch
    one, two = [], []
    for _ in range(5):
        one.append(qps(1))
        two.append(qps(2))
    print(f"queries/s, 1 thread: {max(one):,.0f}; 2 threads: {max(two):,.0f} "
          f"({max(two) / max(one):.2f}x)")
    if max(two) <= max(one) and os.getloadavg()[0] > os.cpu_count():
        # Other processes hold the cores: two threads cannot get more CPU
        # than one, so the comparison says nothing (test_search_releases_the_gil
        # still checks the GIL). Said, not hidden: `make test` runs pytest -rs.
        pytest.skip(f"inconclusive on a busy machine (load {os.getloadavg()[0]:.1f} on "
                    f"{os.cpu_count()} cores): 1 thread {max(one):,.0f} q/s, "
                    f"2 threads {max(two):,.0f} q/s")
    assert max(two) > max(one), f"1 thread: {one}, 2 threads: {two}"


# ---- damaged files ------------------------------------------------------------------

def test_corrupt_and_foreign_files_raise_corrupt_index_error(tmp_path, data):
    x, labels, q, _ = data
    assert not issubclass(likeness.CorruptIndexError, IndexError)

    def fresh(name):
        return build_py(tmp_path, x, name=name, labels=labels).path

    # A damaged header.
    p = fresh("magic")
    g = bytearray((p / "graph.bin").read_bytes())
    g[0] ^= 0xFF
    (p / "graph.bin").write_bytes(bytes(g))
    with pytest.raises(likeness.CorruptIndexError, match="graph.bin"):
        likeness.Index.open(p)
    # A truncated file.
    p = fresh("short")
    v = (p / "vectors.npy").read_bytes()
    (p / "vectors.npy").write_bytes(v[:-100])
    with pytest.raises(likeness.CorruptIndexError, match="vectors.npy"):
        likeness.Index.open(p)
    # A flipped byte in the body: found by verify, and search does not crash.
    p = fresh("body")
    g = bytearray((p / "graph.bin").read_bytes())
    for i in range(len(g) // 2, len(g) // 2 + 64):
        g[i] ^= 0x5A
    (p / "graph.bin").write_bytes(bytes(g))
    ix = likeness.Index.open(p)
    with pytest.raises(likeness.CorruptIndexError, match="checksum mismatch"):
        ix.verify()
    try:
        ix.search(q, k=10)
    except likeness.CorruptIndexError:
        pass
    # Not a likeness index.
    p = tmp_path / "foreign"
    p.mkdir()
    (p / "manifest.json").write_text('{"format": "something-else"}')
    with pytest.raises(likeness.CorruptIndexError, match="not a likeness index"):
        likeness.Index.open(p)
    (p / "manifest.json").write_text("not json")
    with pytest.raises(likeness.CorruptIndexError, match="not valid JSON"):
        likeness.Index.open(p)
    # Missing files.
    with pytest.raises(FileNotFoundError, match="nowhere: no such directory; an index is"):
        likeness.Index.open(tmp_path / "nowhere")
    p = fresh("missing")
    (p / "graph.bin").unlink()
    with pytest.raises(FileNotFoundError, match="graph.bin"):
        likeness.Index.open(p)


# ---- threads: forked children, pool counts --------------------------------

def _search_in_child(path_and_queries):
    path, q = path_and_queries
    ids, _ = likeness.Index.open(path).search(q, k=3)
    return ids


def test_a_forked_child_searches(tmp_path, data):
    """multiprocessing forks on Linux: a child inherits the parent's search
    pools without their threads, and its searches once waited for ever."""
    import multiprocessing as mp
    x, _, q, _ = data
    ix = build_py(tmp_path, x)
    want, _ = ix.search(q[:50], k=3)            # the parent's pools exist now
    ix.search(q[:50], k=3, threads=2)
    with mp.get_context("fork").Pool(2) as pool:
        got = pool.map_async(_search_in_child, [(str(tmp_path / "py"), q[:50])] * 2).get(timeout=120)
    for ids in got:
        np.testing.assert_array_equal(ids, want)


def _threads():
    return len(os.listdir("/proc/self/task"))


def test_threads_are_bounded_and_pools_do_not_pile_up(tmp_path, data):
    x, _, q, _ = data
    ix = build_py(tmp_path, x)
    with pytest.raises(ValueError, match=r"threads = 5000: give 1\.\.=1024"):
        ix.search(q[:4], k=3, threads=5000)
    before = _threads()
    for n in range(1, 41):
        ix.search(q[:4], k=3, threads=n)
    # A pool a size once kept 820 threads here; 4 are kept now (37..40).
    deadline = time.time() + 10
    while _threads() - before > 4 * 40 and time.time() < deadline:
        time.sleep(0.1)
    assert _threads() - before <= 4 * 40, _threads() - before
