"""embed_sharded on a real 3-node Ray cluster: the shards concatenate to one
`likeness embed`, bit for bit; a node lost mid-run changes nothing; a node
without the binary or the model says so."""
import csv
import json
import threading
import time

import numpy as np
import pytest

from conftest import local_cluster, run
from likeness import ray as lr

SHARDS = 4


@pytest.fixture(scope="module")
def single(binary, tiny_model, fashion_test_set, tmp_path_factory):
    """One unsharded `likeness embed` of the whole Fashion-MNIST test set."""
    out = tmp_path_factory.mktemp("single") / "emb"
    run(binary, "embed", "--model", tiny_model, "--data", fashion_test_set, "--out", out)
    return out


def concat(out_dir, name):
    doc = json.loads((out_dir / "shards.json").read_text())
    return np.concatenate([np.load(out_dir / s["dir"] / name) for s in doc["shards"]])


def check_same_as_single(out_dir, single, doc):
    ref = np.load(single / "vectors.npy")
    got = concat(out_dir, "vectors.npy")
    assert got.dtype == ref.dtype and got.shape == ref.shape
    # Bit for bit, not approximately.
    assert got.tobytes() == ref.tobytes()
    assert np.array_equal(concat(out_dir, "labels.npy"), np.load(single / "labels.npy"))
    assert doc["count"] == len(ref) == doc["source_items"]


@pytest.mark.timeout(240)
def test_sharded_embed_equals_one_embed_bit_for_bit(binary, tiny_model, fashion_test_set,
                                                     single, tmp_path):
    out = tmp_path / "sharded"
    with local_cluster() as c:
        doc = lr.embed_sharded(tiny_model, fashion_test_set, out, shards=SHARDS, binary=binary)
        nodes = {s["node"] for s in doc["shards"]}
    check_same_as_single(out, single, doc)
    # More than one node did the work (3 nodes of 1 CPU, 4 tasks).
    assert len(nodes) >= 2, nodes
    # shards.json: contiguous global ranges, the model, each file's CRC32.
    embed_card = json.loads((single / "embed.json").read_text())
    assert doc["model_fingerprint"] == embed_card["model_fingerprint"]
    offset = 0
    for i, s in enumerate(doc["shards"]):
        assert (s["index"], s["dir"], s["offset"]) == (i, f"shard-{i:04d}", offset)
        offset += s["count"]
        for name, rec in s["files"].items():
            assert lr._files.crc32_file(out / s["dir"] / name) == rec["crc32"]
        with open(out / s["dir"] / "items.csv", newline="") as f:
            ids = [int(r["id"]) for r in csv.DictReader(f)]
        # items.csv keeps the global ids (those of the single embed).
        assert ids == list(range(s["offset"], s["offset"] + s["count"]))
    assert offset == 10_000
    # No half-written shard or temporary folder is left.
    assert sorted(p.name for p in out.iterdir()) == \
        [f"shard-{i:04d}" for i in range(SHARDS)] + ["shards.json"]
    # The manifest fails its checksum once edited.
    text = (out / "shards.json").read_text().replace('"offset": 2500', '"offset": 2501')
    (out / "shards.json").write_text(text)
    with pytest.raises(lr.ManifestError, match="CRC32"):
        lr.read_manifest(out / "shards.json", lr._files.SHARDS_FORMAT)


@pytest.mark.timeout(300)
def test_embed_survives_the_loss_of_a_worker_node(binary, tiny_model, fashion_test_set, single,
                                                 tmp_path):
    out = tmp_path / "sharded"
    result, error = {}, []

    def job():
        try:
            result["doc"] = lr.embed_sharded(tiny_model, fashion_test_set, out, shards=SHARDS,
                                              binary=binary)
        except BaseException as e:  # reported by the test below
            error.append(e)

    with local_cluster() as c:
        t = threading.Thread(target=job)
        t.start()
        # Wait until a shard is being written (its hidden temporary folder
        # exists) on every node, then remove a worker: its task dies with it.
        deadline = time.monotonic() + 60
        while len(list(out.glob(".shard-*.building-*"))) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not list(out.glob("shard-*")), "a shard finished before the node was removed"
        c.remove(c.workers[0])
        t.join(timeout=200)
        assert not t.is_alive(), "embed_sharded did not finish after the node was lost"
    assert not error, error
    doc = result["doc"]
    check_same_as_single(out, single, doc)
    assert sorted(p.name for p in out.iterdir()) == \
        [f"shard-{i:04d}" for i in range(SHARDS)] + ["shards.json"]


@pytest.mark.timeout(120)
def test_a_node_without_the_binary_or_the_model_is_named(binary, tiny_model, fashion_test_set,
                                                          tmp_path):
    with local_cluster(workers=1):
        with pytest.raises(lr.NodeSetupError) as e:
            lr.embed_sharded(tiny_model, fashion_test_set, tmp_path / "a", shards=2,
                             binary=tmp_path / "no" / "likeness")
        msg = str(e.value)
        assert "Ray node" in msg and str(tmp_path / "no" / "likeness") in msg, msg
        with pytest.raises(lr.NodeSetupError) as e:
            lr.embed_sharded(tmp_path / "no-model", fashion_test_set, tmp_path / "b", shards=2,
                             binary=binary)
        msg = str(e.value)
        assert "Ray node" in msg and str(tmp_path / "no-model") in msg, msg
    assert not (tmp_path / "a" / "shards.json").exists()
