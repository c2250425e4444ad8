"""build_sharded and serve_sharded on a real 3-node Ray cluster: a seeded
20,000 × 64 gallery in 4 shards answers like one index; concurrent
requests are batched and answer as if sent alone, a bad one failing alone;
scores, an i8 store and label postings are carried by every shard; bad
files fail before serving starts."""
import json
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import likeness
from conftest import (INGRESS_OPTIONS, SHARD_OPTIONS, Http, free_port, ids_of, local_cluster,
                      recall_at_10, run)
from likeness import ray as lr

SHARDS = 4


@pytest.fixture(scope="module")
def cluster():
    with local_cluster() as c:
        yield c


@pytest.fixture(scope="module")
def built(cluster, gallery):
    return lr.build_sharded(gallery["root"] / "emb" / "shards.json", gallery["root"] / "idx",
                            metric="l2", seed=1)


@pytest.fixture(scope="module")
def served(cluster, gallery, built):
    """Through Serve's HTTP proxy (http="proxy"; `scored` is the other mode).
    The first serve_sharded of a cluster starts Serve, here with the proxy."""
    port = free_port()
    lr.serve_sharded(gallery["root"] / "idx" / "cluster.json", replicas=1, port=port,
                     name="likeness", shard_options=SHARD_OPTIONS, ingress_options=INGRESS_OPTIONS,
                     http="proxy")
    return Http(port)


def gallery_scores(labels):
    """A score per item (label / 10), NaN for every 7th: items without one."""
    return np.where(np.arange(len(labels)) % 7 == 0, np.nan, labels / 10).astype(np.float32)


# As `likeness build --metric cosine --store i8 --quantile 0.98`: cosine so
# that a zero query is a query the engine refuses (it cannot be normalised).
SCORED = {"metric": "cosine", "store": "i8", "quantile": 0.98, "seed": 1}


@pytest.fixture(scope="module")
def scored(cluster, gallery, served, tmp_path_factory):
    """The gallery with scores, built sharded and as one index with the same
    options, and served with the ingress listening itself (the default) on
    its own port, with a long batch wait (50 ms), so that concurrent
    requests surely share batches."""
    root = tmp_path_factory.mktemp("scored")
    x, labels = gallery["x"], gallery["labels"]
    scores = gallery_scores(labels)
    lr.write_shards(x, root / "emb", SHARDS, labels=labels, scores=scores)
    built = lr.build_sharded(root / "emb" / "shards.json", root / "idx", **SCORED)
    single = likeness.build(x, root / "single", labels=labels, scores=scores, **SCORED)
    port = free_port()
    lr.serve_sharded(root / "idx" / "cluster.json", port=port, name="scored",
                     batch_wait_timeout_s=0.05, shard_options=SHARD_OPTIONS,
                     ingress_options=INGRESS_OPTIONS)
    return {"root": root, "built": built, "single": single, "scores": scores,
            "http": Http(port)}


def concurrently(http, requests):
    """Posts every (path, body) at once (a thread each); returns (status,
    answer) in order, and how many batches the ingress formed meanwhile."""
    before = http.get("/stats")[1]["batching"]
    with ThreadPoolExecutor(len(requests)) as pool:
        out = list(pool.map(lambda r: http.post(*r, timeout=60), requests))
    after = http.get("/stats")[1]["batching"]
    return out, after["batches"] - before["batches"], after["requests"] - before["requests"]


def assert_same_hits(got, want):
    assert [h["id"] for h in got] == [h["id"] for h in want]
    np.testing.assert_allclose([h["distance"] for h in got], [h["distance"] for h in want],
                               rtol=0, atol=1e-5)
    # Scores are float32: the same value, though JSON may spell it longer.
    for g, w in zip(got, want):
        assert {k: v for k, v in g.items() if k not in ("distance", "score")} == \
            {k: v for k, v in w.items() if k not in ("distance", "score")}
        assert np.float32(g.get("score", np.nan)) == np.float32(w.get("score", np.nan)) or \
            ("score" not in g and "score" not in w)


@pytest.mark.timeout(300)
def test_concurrent_requests_are_batched_and_answer_as_alone(gallery, scored):
    http, q = scored["http"], gallery["queries"][:40]
    requests = [("/search", {"vector": v.tolist(), "k": 10}) for v in q[:30]]
    requests += [("/search/batch", {"vectors": q[lo:lo + 5].tolist(), "k": 10})
                 for lo in (30, 35)]
    requests.append(("/search", {"vector": q[0].tolist(), "k": 4, "labels": [3, 5]}))
    assert http.get("/stats")[1]["http"] == "direct"
    together, batches, sent = concurrently(http, requests)
    # Requests shared batches: fewer batches than requests.
    assert sent == len(requests) and batches < sent, (batches, sent)
    for (path, body), (status, got) in zip(requests, together):
        assert status == 200, got
        assert not got["partial"] and got["missing_shards"] == []
        status, alone = http.post(path, body)
        assert status == 200, alone
        for g, a in zip(got.get("results", [got]), alone.get("results", [alone])):
            assert_same_hits(g["hits"], a["hits"])
            assert g["predicted_score"] == pytest.approx(a["predicted_score"], abs=1e-5)
    assert all(h["label"] in (3, 5) for h in together[-1][1]["hits"])


@pytest.mark.timeout(300)
def test_a_bad_query_in_a_batch_fails_alone(gallery, scored):
    http, q = scored["http"], gallery["queries"][:20]
    zero = [0.0] * q.shape[1]
    good = [("/search", {"vector": v.tolist(), "k": 10, "exact": True}) for v in q]
    bad = [("/search", {"vector": zero, "k": 10, "exact": True}),  # in a good group
           ("/search", {"vector": q[0].tolist(), "k": 5000}),
           ("/search/batch", {"vectors": [q[1].tolist(), zero], "k": 10, "exact": True}),
           # Too large for a machine integer: once failed its whole batch.
           ("/search", {"vector": q[2].tolist(), "k": 2 ** 63}),
           ("/search", {"vector": [10 ** 400] + q[3].tolist()[1:]})]
    out, batches, sent = concurrently(http, good[:10] + bad + good[10:])
    assert batches < sent, (batches, sent)
    answers = out[:10] + out[15:]
    (s0, zero_one), (s1, big_k), (s2, zero_in_batch), (s3, huge_k), (s4, huge_x) = out[10:15]
    assert s0 == 400 and "zero length" in zero_one["error"], zero_one
    assert s1 == 400 and "k = 5000" in big_k["error"], big_k
    assert s2 == 400 and zero_in_batch["error"].startswith("vectors[1]: "), zero_in_batch
    assert s3 == 400, huge_k
    assert s4 == 400 and "vector[0] is not a finite float32" in huge_x["error"], huge_x
    truth, dist = scored["single"].search(q, k=10, exact=True)
    for r, (status, got) in enumerate(answers):
        assert status == 200, got
        assert ids_of(got) == truth[r].tolist()
        np.testing.assert_allclose([h["distance"] for h in got["hits"]], dist[r], atol=1e-5)


@pytest.mark.timeout(300)
def test_shards_carry_scores_store_and_postings(gallery, scored, binary, tmp_path):
    built, single, http = scored["built"], scored["single"], scored["http"]
    assert built["has_scores"] and built["has_labels"]
    for e in built["shards"]:
        assert e["build"]["store"] == "i8" and e["postings"], e
        ix = likeness.Index.open(scored["root"] / "idx" / e["dir"])
        assert ix.manifest["store"] == "i8" and (ix.path / "vectors.i8").is_file()
        assert ix.manifest["quantizer"]["quantile"] == pytest.approx(0.98)
        lo = e["offset"]
        np.testing.assert_array_equal(ix.scores, scored["scores"][lo:lo + e["count"]])
    # Exact answers and predicted scores equal `likeness query` on one index.
    q = gallery["queries"][:20]
    np.save(tmp_path / "q.npy", q)
    rows = [r for r in json.loads("[" + ",".join(run(
        binary, "query", "--index", single.path, "--vectors", tmp_path / "q.npy", "-k", 10,
        "--exact", "--json").splitlines()) + "]") if r["type"] == "query"]
    status, out = http.post("/search/batch", {"vectors": q.tolist(), "k": 10, "exact": True})
    assert status == 200, out
    for got, want in zip(out["results"], rows):
        assert_same_hits(got["hits"], want["hits"])
        assert got["predicted_score"] == pytest.approx(want["predicted_score"], abs=1e-5)
        assert got["predicted_score"] == pytest.approx(likeness.predict_score(
            [h["distance"] for h in got["hits"]], [h.get("score", np.nan) for h in got["hits"]]))
    # The i8 graph search keeps the recall of one i8 index.
    truth, _ = single.search(gallery["queries"], k=10, exact=True)
    one, _ = single.search(gallery["queries"], k=10)
    status, out = http.post("/search/batch", {"vectors": gallery["queries"].tolist(), "k": 10})
    assert status == 200, out
    sharded = [ids_of(r) for r in out["results"]]
    assert recall_at_10(sharded, truth) >= recall_at_10(one, truth) - 0.005
    # A label filter runs on every shard's postings.
    want, _ = single.search(q, k=10, labels=[3], exact=True)
    status, out = http.post("/search/batch", {"vectors": q.tolist(), "k": 10, "labels": [3],
                                              "exact": True})
    assert status == 200 and [ids_of(r) for r in out["results"]] == want.tolist()


@pytest.mark.timeout(120)
def test_build_sharded_refuses_options_likeness_build_lacks(cluster, gallery, tmp_path):
    with pytest.raises(TypeError, match=r"unknown options \['ef'\]"):
        lr.build_sharded(gallery["root"] / "emb" / "shards.json", tmp_path / "x", ef=10)
    # A bad value fails in every shard's task, with likeness.build's message.
    with pytest.raises(lr.ShardTaskError, match="store.*i4"):
        lr.build_sharded(gallery["root"] / "emb" / "shards.json", tmp_path / "y", store="i4")
    assert not (tmp_path / "y" / "cluster.json").exists()


@pytest.mark.timeout(300)
def test_sharded_exact_search_equals_one_index(gallery, built, served):
    q = gallery["queries"]
    truth, tdist = gallery["single"].search(q, k=10, exact=True)
    status, out = served.post("/search/batch", {"vectors": q.tolist(), "k": 10, "exact": True})
    assert status == 200, out
    assert not out["partial"] and out["missing_shards"] == []
    got = [ids_of(r) for r in out["results"]]
    assert got == truth.tolist()
    d = np.array([[h["distance"] for h in r["hits"]] for r in out["results"]], dtype=np.float32)
    np.testing.assert_array_equal(d, tdist)
    # Labels come with the hits, from the shard that holds the item.
    r0 = out["results"][0]["hits"]
    assert [h["label"] for h in r0] == gallery["labels"][truth[0]].tolist()
    assert [h["rank"] for h in r0] == list(range(1, 11))
    # The cluster manifest maps global ids to (shard, local id).
    assert [(s["offset"], s["count"]) for s in built["shards"]] == \
        [(i * 5000, 5000) for i in range(SHARDS)]


@pytest.mark.timeout(300)
def test_sharded_hnsw_recall_is_at_least_one_index(gallery, served):
    q = gallery["queries"]
    truth, _ = gallery["single"].search(q, k=10, exact=True)
    single, _ = gallery["single"].search(q, k=10)
    status, out = served.post("/search/batch", {"vectors": q.tolist(), "k": 10})
    assert status == 200, out
    sharded = [ids_of(r) for r in out["results"]]
    r_single, r_sharded = recall_at_10(single, truth), recall_at_10(sharded, truth)
    print(f"recall@10 at the default ef: single {r_single:.4f}, sharded {r_sharded:.4f}")
    assert r_sharded >= r_single


@pytest.mark.timeout(300)
def test_batch_answers_equal_per_query_answers(gallery, served):
    q = gallery["queries"][:25]
    for exact in (False, True):
        status, batch = served.post("/search/batch", {"vectors": q.tolist(), "k": 7,
                                                      "exact": exact})
        assert status == 200, batch
        for v, b in zip(q, batch["results"]):
            status, one = served.post("/search", {"vector": v.tolist(), "k": 7, "exact": exact})
            assert status == 200, one
            assert one["hits"] == b["hits"]


@pytest.mark.timeout(120)
def test_items_health_stats_and_bad_requests(gallery, served):
    labels = gallery["labels"]
    for g in (0, 4999, 5000, 12345, 19999):
        status, item = served.get(f"/items/{g}")
        assert status == 200, item
        assert item["id"] == g and item["label"] == labels[g]
    status, out = served.get("/items/20000")
    assert status == 404 and "no item 20000" in out["error"]
    status, out = served.get("/items/x")
    assert status == 400
    assert served.get("/healthz") == (200, {"status": "ok", "shards": SHARDS})
    v = gallery["queries"][0].tolist()
    for body, msg in (({"vector": v[:5]}, "dimension 64"), ({"vector": v, "k": 0}, "k = 0"),
                      ({"vector": v, "nope": 1}, "unknown field `nope`"),
                      ({"vector": v, "labels": [1], "exclude_labels": [2]}, "not both"),
                      ({"vector": v, "labels": ["eye"]}, "no class `eye`: this index records "
                                                         "no class names"),
                      ({"vector": v, "labels": [1.5]}, "an integer or a class name"),
                      ({"vectors": []}, None)):
        status, out = served.post("/search", body)
        assert status == 400 and (msg is None or msg in out["error"]), out
    # A label filter is applied in every shard.
    status, out = served.post("/search", {"vector": v, "k": 10, "labels": [3]})
    assert status == 200 and out["hits"] and all(h["label"] == 3 for h in out["hits"])
    status, stats = served.get("/stats")
    assert status == 200 and stats["http"] == "proxy"
    assert stats["batching"]["max_batch_size"] == lr.MAX_BATCH_SIZE
    assert stats["count"] == 20_000 and stats["dim"] == 64 and stats["metric"] == "l2"
    assert len(stats["shards"]) == SHARDS
    assert all(s["answers"] > 0 and s["latency_ms"]["p50"] > 0 for s in stats["shards"])


@pytest.mark.timeout(180)
def test_command_line_builds_and_reports_errors(cluster, gallery, tmp_path):
    def cli(*args):
        return subprocess.run([sys.executable, "-m", "likeness.ray", "--address",
                               cluster.cluster.address, *map(str, args)], capture_output=True,
                              text=True, timeout=150)

    p = cli("build", "--shards", gallery["root"] / "emb" / "shards.json", "--out",
            tmp_path / "idx", "--metric", "l2", "--seed", "1")
    assert p.returncode == 0, p.stderr
    assert "built 4 shard indexes of 20000 items (l2)" in p.stdout
    doc = lr.read_manifest(tmp_path / "idx" / "cluster.json", "likeness-cluster")
    assert [s["count"] for s in doc["shards"]] == [5000] * 4
    p = cli("build", "--shards", tmp_path / "nope.json", "--out", tmp_path / "x")
    assert p.returncode == 2 and "nope.json: no such file" in p.stderr, p.stderr


# ---------------------------------------------------------- bad input --


@pytest.mark.timeout(180)
def test_bad_shards_raise_named_errors_before_serving(cluster, gallery, built, tmp_path):
    from ray import serve

    x, labels = gallery["x"][:2000], gallery["labels"][:2000]
    # A shard file that does not match its CRC32 in shards.json.
    lr.write_shards(x, tmp_path / "crc", 2, labels=labels)
    p = tmp_path / "crc" / "shard-0001" / "vectors.npy"
    b = bytearray(p.read_bytes())
    b[-1] ^= 1
    p.write_bytes(bytes(b))
    with pytest.raises(lr.ShardChecksumError, match="shard-0001"):
        lr.build_sharded(tmp_path / "crc" / "shards.json", tmp_path / "crc-idx")
    # Shards embedded with different models.
    a = lr.write_shards(x, tmp_path / "ma", 2, model_fingerprint="aaaa")
    lr.write_shards(x, tmp_path / "mb", 2, model_fingerprint="bbbb")
    shutil.rmtree(tmp_path / "ma" / "shard-0001")
    shutil.copytree(tmp_path / "mb" / "shard-0001", tmp_path / "ma" / "shard-0001")
    b = json.loads((tmp_path / "mb" / "shards.json").read_text())
    mixed = dict(a, shards=[a["shards"][0], b["shards"][1]])
    lr._files.write_json_atomic(tmp_path / "ma" / "shards.json", mixed)
    with pytest.raises(lr.IncompatibleShardsError, match="bbbb"):
        lr.build_sharded(tmp_path / "ma" / "shards.json", tmp_path / "ma-idx")
    # A missing shard folder.
    lr.write_shards(x, tmp_path / "gone", 2)
    shutil.rmtree(tmp_path / "gone" / "shard-0000")
    with pytest.raises(lr.MissingShardError, match="shard-0000"):
        lr.build_sharded(tmp_path / "gone" / "shards.json", tmp_path / "gone-idx")
    assert not (tmp_path / "gone-idx" / "cluster.json").exists()
    # Labels that are not integers (0.5 was written as 0).
    with pytest.raises(TypeError, match="labels must be integers, got dtype float64"):
        lr.write_shards(x, tmp_path / "floats", 2, labels=labels + 0.5)
    assert not (tmp_path / "floats").exists()

    # The same at serving time: indexes of different metrics, a changed or
    # a missing index folder. Nothing is deployed.
    src = gallery["root"] / "emb" / "shards.json"
    lr.build_sharded(src, tmp_path / "cos", metric="cosine", seed=1)
    lr.build_sharded(src, tmp_path / "seed2", metric="l2", seed=2)

    def broken(name, replace_with):
        d = tmp_path / name
        shutil.copytree(gallery["root"] / "idx", d)
        shutil.rmtree(d / "shard-0002")
        if replace_with:
            shutil.copytree(tmp_path / replace_with / "shard-0002", d / "shard-0002")
        return d / "cluster.json"

    with pytest.raises(lr.IncompatibleShardsError, match="cosine"):
        lr.serve_sharded(broken("metrics", "cos"), port=free_port(), name="bad")
    with pytest.raises(lr.ShardChecksumError, match="shard 2"):
        lr.serve_sharded(broken("rebuilt", "seed2"), port=free_port(), name="bad")
    with pytest.raises(lr.MissingShardError, match="shard-0002"):
        lr.serve_sharded(broken("no-shard", None), port=free_port(), name="bad")
    assert "bad" not in serve.status().applications


def test_label_filters_pass_names_and_numbers_to_the_shards():
    # The shards' indexes resolve them (test_faces.py): here only the shape.
    from likeness.ray._serve import _Bad, _label_set

    assert _label_set({"labels": ["eye", 0]}, "labels") == ("eye", 0)
    assert _label_set({"exclude_labels": "cheek"}, "exclude_labels") == ("cheek",)
    assert _label_set({"labels": 7}, "labels") == (7,)
    assert _label_set({}, "labels") is None
    for bad in ([True], [1.5], {"a": 1}):
        with pytest.raises(_Bad, match="an integer or a class name"):
            _label_set({"labels": bad}, "labels")


def test_loopback_gallery_answers_only_loopback_names(served, scored):
    from likeness.ray._serve import _is_loopback_name

    # Both ways in: Serve's proxy (served) and the ingress's own (scored).
    for http in (served, scored["http"]):
        status, out = http.get("/healthz", headers={"Host": "rebound.example:8000"})
        assert status == 403 and "`rebound.example:8000`" in out["error"], out
        for name in ("localhost:1", "127.0.0.1", "[::1]:80", "a.localhost"):
            assert http.get("/healthz", headers={"Host": name})[0] == 200, name
    assert not any(map(_is_loopback_name, ("", "0.0.0.0:80", "127.0.0.1.evil", "[::2]:1")))
