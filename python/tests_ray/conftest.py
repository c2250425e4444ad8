"""Fixtures of the Ray tests: real local multi-node clusters
(``ray.cluster_utils.Cluster``: a head and two workers, 1 CPU and an 80 MB
object store each), the ``likeness`` binary, Fashion-MNIST and a tiny model.

Every cluster is shut down in a ``finally`` (Serve, the driver, then the
nodes), so a failing test leaves no Ray process behind. Serve's HTTP proxy
binds 127.0.0.1 on a free port. `make pytest-ray` runs these with a
per-test time limit (pytest-timeout)."""
import contextlib
import json
import os
import pathlib
import socket
import subprocess
import urllib.error
import urllib.request

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
MB = 1 << 20
# Custom resources place the deployments in the tests: shards on the
# workers (so that removing a worker loses shard replicas), the ingress on
# the head (which is never removed, like Serve's controller and proxy).
SHARD_OPTIONS = {"resources": {"shards": 1}}
INGRESS_OPTIONS = {"resources": {"ingress": 0.01}}


def bin_dir():
    """Where cargo put the binaries: LIKENESS_BIN_DIR (`make` sets it), else
    cargo's target folder (CARGO_TARGET_DIR honoured)."""
    d = os.environ.get("LIKENESS_BIN_DIR")
    if d:
        return pathlib.Path(d)
    target = subprocess.run([str(ROOT / "scripts" / "target-dir.sh")], capture_output=True,
                            text=True, check=True).stdout.strip()
    return pathlib.Path(target) / "release"


@pytest.fixture(scope="session")
def binary():
    env = os.environ.get("LIKENESS_BIN")
    path = pathlib.Path(env) if env else bin_dir() / "likeness"
    if not path.is_file():
        pytest.fail(f"the likeness binary {path} is missing: run `make build` (or `make "
                    f"test`, which builds it), or point LIKENESS_BIN at one")
    return path


def run(binary, *args):
    p = subprocess.run([str(binary), *map(str, args)], capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, f"likeness {' '.join(map(str, args))}:\n{p.stdout}{p.stderr}"
    return p.stdout


@pytest.fixture(scope="session")
def fashion_test_set():
    cache = pathlib.Path(os.environ.get("LIKENESS_CACHE", pathlib.Path.home() / ".cache/likeness"))
    p = cache / "data" / "fashion-mnist" / "t10k-images-idx3-ubyte.gz"
    if not p.is_file():
        pytest.fail(f"{p} is missing: run `make data` (or `make test`, which fetches it)")
    return p


@pytest.fixture(scope="session")
def tiny_model(binary, fashion_test_set, tmp_path_factory):
    """A small convnet trained for 2 steps (about 2 s): enough for
    embeddings that depend on every weight."""
    out = tmp_path_factory.mktemp("model") / "model"
    run(binary, "--threads", "1", "train", "--data", fashion_test_set, "--out", out, "--arch",
        "convnet", "--input-size", "28", "--dim", "16", "--epochs", "1", "--steps-per-epoch",
        "2", "--val", "none")
    return out


class LocalCluster:
    """A head and `workers` worker nodes on this machine, and the driver
    connected to them."""

    def __init__(self, workers=2):
        import ray
        from ray.cluster_utils import Cluster

        self.ray = ray
        self.cluster = Cluster(initialize_head=True, head_node_args={
            "num_cpus": 1, "object_store_memory": 80 * MB, "include_dashboard": False,
            "resources": {"ingress": 1}})
        self.workers = [self.cluster.add_node(num_cpus=1, object_store_memory=80 * MB,
                                              resources={"shards": 8})
                        for _ in range(workers)]
        self.cluster.wait_for_nodes()
        ray.init(address=self.cluster.address)

    def worker_by_id(self, node_id):
        return next(w for w in self.workers if w.node_id == node_id)

    def remove(self, node):
        self.cluster.remove_node(node, allow_graceful=False)
        self.workers.remove(node)

    def shutdown(self):
        from ray import serve

        with contextlib.suppress(Exception):
            serve.shutdown()
        with contextlib.suppress(Exception):
            self.ray.shutdown()
        self.cluster.shutdown()


@contextlib.contextmanager
def local_cluster(workers=2):
    c = LocalCluster(workers)
    try:
        yield c
    finally:
        c.shutdown()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Http:
    """JSON over HTTP to the Serve proxy on 127.0.0.1:port."""

    def __init__(self, port):
        self.base = f"http://127.0.0.1:{port}"

    def _do(self, req, timeout):
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def get(self, path, timeout=30, headers=None):
        return self._do(urllib.request.Request(self.base + path, headers=headers or {}), timeout)

    def post(self, path, body, timeout=30):
        data = json.dumps(body).encode()
        return self._do(urllib.request.Request(self.base + path, data=data, headers={
            "content-type": "application/json"}), timeout)


def seeded_gallery(n=20_000, dim=64, seed=7):
    """`n` × `dim` float32 vectors around 50 random centres, labels, and
    200 queries from the same distribution."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((50, dim)).astype(np.float32)
    labels = rng.integers(0, 50, n + 200)
    x = centres[labels] + 0.5 * rng.standard_normal((n + 200, dim)).astype(np.float32)
    return x[:n], labels[:n].astype(np.int64), x[n:]


@pytest.fixture(scope="session")
def gallery(tmp_path_factory):
    """A seeded 20,000 × 64 gallery written as 4 shards (`root/emb`), and
    one unsharded index of it (l2, built on one thread)."""
    import likeness
    from likeness import ray as lr

    root = tmp_path_factory.mktemp("gallery")
    x, labels, queries = seeded_gallery()
    lr.write_shards(x, root / "emb", 4, labels=labels, model_fingerprint="f00d")
    single = likeness.build(x, root / "single", labels=labels, metric="l2", threads=1)
    return {"root": root, "x": x, "labels": labels, "queries": queries, "single": single}


def ids_of(answer):
    return [h["id"] for h in answer["hits"]]


def recall_at_10(found, truth):
    return np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth)])


