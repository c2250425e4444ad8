"""A faces gallery sharded on a real Ray cluster (a head and one worker)
keeps what one index of it has: the class names (hits' "class", label
filters by name, resolved by each shard's index with the engine's rule)
and each region's subject and side (a face's left/right pairing), from
`embed_sharded` of a regions manifest and from `write_shards` of arrays."""
import csv
import json
import os
import pathlib

import numpy as np
import pytest

import likeness
from conftest import INGRESS_OPTIONS, SHARD_OPTIONS, Http, free_port, local_cluster, run
from likeness import ray as lr

CLASSES = ["cheek", "eye", "nose"]  # the manifest's labels, in text order
# (label, x, y, w, h, side) of each region of a 150 x 150 johns face crop.
REGIONS = (("eye", 40, 50, 30, 20, "left"), ("eye", 80, 50, 30, 20, "right"),
           ("cheek", 35, 85, 30, 25, "left"), ("cheek", 85, 85, 30, 25, "right"),
           ("nose", 60, 70, 30, 30, ""))


@pytest.fixture(scope="module")
def cluster():
    with local_cluster(workers=1) as c:
        yield c


@pytest.fixture(scope="module")
def regions(tmp_path_factory):
    """A manifest of 5 regions of each of 8 johns photos: `path,label,x,y,w,h,
    subject,side`, as `likeness regions` writes one (subject: the photo)."""
    cache = pathlib.Path(os.environ.get("LIKENESS_CACHE", pathlib.Path.home() / ".cache/likeness"))
    photos = sorted((cache / "data" / "johns").glob("*/*.jpg"))[:8]
    if len(photos) < 8:
        pytest.fail(f"{cache / 'data' / 'johns'} is missing: run `make data` (or `make test`, "
                    f"which fetches it)")
    path = tmp_path_factory.mktemp("regions") / "regions.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "x", "y", "w", "h", "subject", "side"])
        for p in photos:
            for label, x, y, width, height, side in REGIONS:
                w.writerow([p, label, x, y, width, height, p.stem, side])
    return path


def query_json(binary, index, vectors, *args):
    """`likeness query --exact --json`'s answers (one per row of `vectors`)."""
    out = run(binary, "query", "--index", index, "--vectors", vectors, "-k", 10, "--exact",
              "--json", *args)
    return [r for r in map(json.loads, out.splitlines()) if r["type"] == "query"]


def assert_same_hits(got, want):
    """Equal hits, every field (class, path, region, subject, side, ...);
    distances to float32 rounding (JSON spells them differently)."""
    assert [h["id"] for h in got] == [h["id"] for h in want]
    np.testing.assert_allclose([h["distance"] for h in got], [h["distance"] for h in want],
                               rtol=0, atol=1e-6)
    assert [{k: v for k, v in h.items() if k != "distance"} for h in got] == \
        [{k: v for k, v in h.items() if k != "distance"} for h in want]


@pytest.mark.timeout(420)
def test_sharded_regions_answer_as_one_index_with_classes_subjects_and_sides(
        cluster, binary, tiny_model, regions, tmp_path):
    from ray import serve

    emb = lr.embed_sharded(tiny_model, regions, tmp_path / "emb", shards=2, binary=binary)
    assert emb["classes"] == CLASSES
    built = lr.build_sharded(tmp_path / "emb" / "shards.json", tmp_path / "idx")
    run(binary, "index", "--model", tiny_model, "--data", regions, "--out", tmp_path / "single")
    single = likeness.Index.open(tmp_path / "single")
    # Each shard's index records what one index of the gallery records.
    for e in built["shards"]:
        assert e["pairings"], e
        ix = likeness.Index.open(tmp_path / "idx" / e["dir"])
        assert ix.manifest["classes"] == CLASSES
        local = ix.items(np.arange(ix.count))
        want = single.items(np.arange(e["offset"], e["offset"] + ix.count))
        assert [(r["class"], r.get("subject"), r.get("side")) for r in local] == \
            [(r["class"], r.get("subject"), r.get("side")) for r in want]
        # The engine's rule for names, on the shard alone.
        ids, _ = ix.search(ix.vectors[:2], k=5, labels="eye", exact=True)
        assert {ix.items(i)[0]["class"] for i in ids.ravel() if i >= 0} == {"eye"}

    port = free_port()
    lr.serve_sharded(tmp_path / "idx" / "cluster.json", port=port, name="faces",
                     shard_options=SHARD_OPTIONS, ingress_options=INGRESS_OPTIONS)
    http = Http(port)
    try:
        # Queries from both shards.
        q = np.concatenate([np.load(tmp_path / "emb" / s["dir"] / "vectors.npy")[:4]
                            for s in emb["shards"]])
        np.save(tmp_path / "q.npy", q)
        answers = []
        for args, body in (((), {}),
                           (("--labels", "eye"), {"labels": "eye"}),
                           (("--labels", "eye,0"), {"labels": ["eye", 0]}),
                           (("--exclude-labels", "nose"), {"exclude_labels": ["nose"]})):
            want = query_json(binary, single.path, tmp_path / "q.npy", *args)
            status, got = http.post("/search/batch", {"vectors": q.tolist(), "k": 10,
                                                      "exact": True, **body})
            assert status == 200, got
            for g, w in zip(got["results"], want):
                assert_same_hits(g["hits"], w["hits"])
            answers.append(got)
        # Left, right and no side (the nose) all came back unfiltered.
        hits = [h for r in answers[0]["results"] for h in r["hits"]]
        assert {h.get("side") for h in hits} == {"left", "right", None}
        assert all(h["subject"] and h["class"] in CLASSES for h in hits)
        # Names and numbers the index does not have: the engine's messages.
        v = q[0].tolist()
        for labels, msg in (("mouth", "no class `mouth`: the index's classes are cheek, eye, "
                                      "nose"),
                            ([7], "label 7 is out of range")):
            status, out = http.post("/search", {"vector": v, "labels": labels})
            assert status == 400 and msg in out["error"], out
        # /items/{id} as `likeness serve` shows an item.
        for g in (1, 22, 39):
            status, item = http.get(f"/items/{g}")
            assert status == 200, item
            want = single.items(g)[0]
            assert {k: item[k] for k in ("class", "subject", "side") if k in item} == \
                {k: want[k] for k in ("class", "subject", "side") if k in want}
            assert ("side" in item) == (g % 5 != 4)  # every fifth region is a nose
    finally:
        serve.delete("faces")


def faces_arrays(n=600, dim=8, seed=3):
    """Vectors, labels (0..2), subjects (6 regions each) and sides (left,
    right, none: None or NaN, as pandas reads an empty cell)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim)).astype(np.float32)
    labels = rng.integers(0, 3, n)
    subjects = [f"p{i // 6}" for i in range(n)]
    sides = [("left", "right", None, float("nan"))[i % 4] for i in range(n)]
    return x, labels, subjects, sides


@pytest.mark.timeout(300)
def test_write_shards_carries_classes_subjects_and_sides(cluster, tmp_path):
    from ray import serve

    x, labels, subjects, sides = faces_arrays()
    classes = ["brow", "cheek", "eye"]
    lr.write_shards(x, tmp_path / "emb", 3, labels=labels, classes=classes, subjects=subjects,
                    sides=sides)
    built = lr.build_sharded(tmp_path / "emb" / "shards.json", tmp_path / "idx", metric="l2")
    single = likeness.build(x, tmp_path / "single", labels=labels, classes=classes,
                            subjects=subjects, sides=sides, metric="l2")
    for e in built["shards"]:
        assert e["pairings"], e
        ix = likeness.Index.open(tmp_path / "idx" / e["dir"])
        assert ix.manifest["classes"] == classes
        lo = e["offset"]
        assert [{k: v for k, v in r.items() if k != "id"} for r in ix.items(np.arange(ix.count))] \
            == [{k: v for k, v in r.items() if k != "id"}
                for r in single.items(np.arange(lo, lo + ix.count))]

    # A cluster whose shard 0 was built before shards recorded class names,
    # subjects and sides (its index has none; cluster.json has the names):
    # it still opens, names still filter, and its hits have no pairing.
    old = likeness.Index.open(tmp_path / "idx" / "shard-0000")
    n0 = old.count
    likeness.build(np.asarray(old.vectors), tmp_path / "idx" / "shard-0000",
                   labels=np.asarray(old.labels), metric="l2", force=True)
    doc = lr.read_manifest(tmp_path / "idx" / "cluster.json", "likeness-cluster")
    s0 = doc["shards"][0]
    s0["manifest_crc32"] = lr._files.crc32_file(tmp_path / "idx" / "shard-0000" /
                                                "manifest.json")
    del s0["pairings"]
    lr._files.write_json_atomic(tmp_path / "idx" / "cluster.json", doc)
    port = free_port()
    lr.serve_sharded(tmp_path / "idx" / "cluster.json", port=port, name="arrays",
                     shard_options=SHARD_OPTIONS, ingress_options=INGRESS_OPTIONS)
    http = Http(port)
    try:
        q = x[::100] + 0.01
        ids, dists = single.search(q, k=10, labels="eye", exact=True)
        status, got = http.post("/search/batch", {"vectors": q.tolist(), "k": 10,
                                                  "labels": ["eye"], "exact": True})
        assert status == 200, got
        for r, res in enumerate(got["results"]):
            want = single.items(ids[r], dists[r])
            for w in want:
                if w["id"] < n0:  # the old shard's items: no subject or side
                    w.pop("subject", None)
                    w.pop("side", None)
            assert_same_hits(res["hits"], [{"rank": c + 1, **w} for c, w in enumerate(want)])
        hits = [h for r in got["results"] for h in r["hits"]]
        assert any(h["id"] < n0 for h in hits) and any("side" in h for h in hits)
    finally:
        serve.delete("arrays")


@pytest.mark.timeout(120)
def test_bad_subjects_and_sides_are_refused(cluster, tmp_path):
    x, labels, subjects, sides = faces_arrays(n=20)
    with pytest.raises(ValueError, match="vectors holds 20 rows but sides holds 19"):
        lr.write_shards(x, tmp_path / "short", 2, sides=sides[:19])
    with pytest.raises(TypeError, match=r"subjects\[3\] = 3 is not a str"):
        lr.write_shards(x, tmp_path / "ints", 2, subjects=[*subjects[:3], 3, *subjects[4:]])
    assert not (tmp_path / "short").exists() and not (tmp_path / "ints").exists()
    # A side that is neither left nor right: refused by the engine's rule.
    lr.write_shards(x, tmp_path / "up", 2, sides=["up"] * 20)
    with pytest.raises(lr.ShardTaskError, match="side `up` must be `left`, `right` or empty"):
        lr.build_sharded(tmp_path / "up" / "shards.json", tmp_path / "up-idx")
    assert not (tmp_path / "up-idx" / "cluster.json").exists()
