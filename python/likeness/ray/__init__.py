"""likeness on a Ray cluster: embed, build and serve a sharded gallery.

Install with ``pip install ./python[ray]`` (it pulls ``ray[serve]``). Every
node needs the ``likeness`` binary (on ``PATH`` or at ``LIKENESS_BIN``), the
model folder and the data, at the same paths: on a shared filesystem or
copied. Paths given here are made absolute on the driver.

- ``embed_sharded(model_dir, source, out_dir, shards=N)``: one Ray task per
  shard runs ``likeness embed --shard i/N``; writes ``out_dir/shard-XXXX/``
  and ``out_dir/shards.json`` (offsets, counts, files with CRC32s, the
  model's fingerprint).
- ``write_shards(vectors, out_dir, shards=N)``: the same layout from an
  array (vectors embedded elsewhere), with labels, scores, class names,
  subjects and sides when given.
- ``build_sharded(shards_json, out_dir, **build_params)``: one task per
  shard builds its index with ``likeness.build``, carrying the gallery's
  class names and each item's label, score, subject and side as ``likeness
  index`` records them; writes ``cluster.json``, which maps global ids to
  (shard, local id).
- ``serve_sharded(cluster_json, replicas=R)``: a Ray Serve application
  answering ``likeness serve``'s ``/search``, ``/search/batch``,
  ``/items/{id}``, ``/healthz`` and ``/stats``, fanning out to one ``Shard``
  deployment per shard; concurrent requests are batched into one call per
  shard, each keeping its own answer. Hits carry what one index's do
  (``class``, ``subject``, ``side``, ...), and label filters by class name
  are resolved by each shard's index, as ``likeness serve`` resolves them.
  A shard that does not answer within ``shard_timeout_s`` is reported in
  ``"missing_shards"`` with ``"partial": true``.

Also a command line: ``python -m likeness.ray embed|build|serve --help``.
"""
import csv
import ctypes
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import numpy as np

from ._files import (
    CLUSTER_FORMAT,
    SHARDS_FORMAT,
    VERSION,
    IncompatibleShardsError,
    ManifestError,
    MissingShardError,
    NodeSetupError,
    ShardChecksumError,
    ShardError,
    check_files,
    check_ids,
    crc32_file,
    file_records,
    read_manifest,
    write_json_atomic,
)

# likeness.build's options, which build_sharded passes through with their names.
BUILD_OPTIONS = {"metric", "m", "ef_construction", "seed", "store", "quantile", "builder"}

__all__ = [
    "embed_sharded",
    "write_shards",
    "build_sharded",
    "serve_sharded",
    "check_cluster",
    "read_manifest",
    "ShardError",
    "ShardChecksumError",
    "MissingShardError",
    "IncompatibleShardsError",
    "ManifestError",
    "NodeSetupError",
    "ShardTaskError",
]

# Every file `likeness embed` writes into a shard folder (scores.npy when the
# manifest has a score column, predicted_scores.npy when the model has a
# score read-out): each is checked and carried to the build.
EMBED_FILES = ("vectors.npy", "labels.npy", "scores.npy", "predicted_scores.npy", "items.csv",
               "embed.json", "skipped.csv")
# The columns of items.csv as `likeness embed` writes them (src/gallery.rs);
# write_shards writes the same file when it is given subjects or sides.
ITEMS_COLUMNS = ("id", "label", "class", "path", "row", "x", "y", "w", "h", "score", "subject",
                 "side")


class ShardTaskError(ShardError):
    """A shard's task failed (``likeness embed`` exited with an error, or
    ``likeness.build`` raised): the message names the node and the shard."""


class _Killed(Exception):
    """The ``likeness`` process was killed by a signal: Ray retries the task."""


def _node():
    """This process's node, as a message names it: host and Ray node id."""
    try:
        import ray

        nid = ray.get_runtime_context().get_node_id()[:12]
    except Exception:  # outside a Ray worker
        nid = "?"
    return f"{socket.gethostname()} (Ray node {nid})"


def _die_with_parent():
    # The child `likeness` must not outlive its Ray worker: when a node is
    # lost, the retried task on another node would race an orphan.
    PR_SET_PDEATHSIG = 1
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass


def _ray():
    import ray

    if not ray.is_initialized():
        # Joins RAY_ADDRESS or a cluster started with `ray start` on this
        # machine, else starts a local one.
        ray.init()
    return ray


def _gather(ray, refs):
    """ray.get, raising a task's own ShardError rather than Ray's wrapper."""
    try:
        return ray.get(refs)
    except ray.exceptions.RayTaskError as e:
        cause = getattr(e, "cause", None)
        if isinstance(cause, ShardError):
            raise cause from None
        raise


# ---------------------------------------------------------------- embed --


def _find_binary(binary):
    exe = binary or os.environ.get("LIKENESS_BIN") or shutil.which("likeness")
    if not exe or not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
        raise NodeSetupError(
            f"node {_node()}: the likeness binary {exe or '`likeness` (searched on PATH)'} is "
            f"missing; install it at the same path on every node (or set LIKENESS_BIN)")
    return exe


def _embed_shard(exe, model_dir, source, out_dir, i, n, batch, threads, device):
    node = _node()
    exe = _find_binary(exe)
    if not (pathlib.Path(model_dir) / "model.json").is_file():
        raise NodeSetupError(f"node {node}: the model folder {model_dir} is missing (no "
                             f"model.json there); copy it to the same path on every node")
    if not pathlib.Path(source).exists():
        raise NodeSetupError(f"node {node}: the data {source} is missing; copy it to the same "
                             f"path on every node")
    name = f"shard-{i:04d}"
    target = pathlib.Path(out_dir) / name
    try:
        weights = json.loads((pathlib.Path(model_dir) / "model.json").read_text())["weights_crc32"]
    except (OSError, ValueError, KeyError) as e:
        raise NodeSetupError(f"node {node}: {model_dir}/model.json cannot be read ({e}); the "
                             f"model folder must be a finished `likeness train` output") from e
    want = {"source": str(source), "model_fingerprint": weights}
    card = _shard_card(target, i, n, want)
    if card is None:
        # Leftovers of a killed attempt (embed builds in a hidden sibling
        # and renames it into place, so `target` itself is never partial).
        for stale in pathlib.Path(out_dir).glob(f".{name}.building-*"):
            shutil.rmtree(stale, ignore_errors=True)
        cmd = [exe, "--threads", str(threads), "--device", device, "embed", "--model",
               str(model_dir), "--data", str(source), "--out", str(target), "--shard",
               f"{i}/{n}", "--batch", str(batch)]
        if target.exists():
            cmd.append("--force")  # a folder from another run: replace it
        p = subprocess.run(cmd, capture_output=True, text=True, preexec_fn=_die_with_parent)
        if p.returncode < 0:
            raise _Killed(f"node {node}: likeness embed of shard {i}/{n} was killed by signal "
                          f"{-p.returncode}")
        if p.returncode != 0:
            raise ShardTaskError(f"node {node}: `{' '.join(cmd)}` exited {p.returncode}:\n"
                                 f"{p.stderr.strip()[-2000:]}")
        card = _shard_card(target, i, n, {"model_fingerprint": weights})
        if card is None:
            raise ShardTaskError(f"node {node}: likeness embed of shard {i}/{n} wrote no "
                                 f"embed.json with that shard into {target}")
    sh = card["shard"]
    return {
        "index": i,
        "dir": name,
        "offset": sh["offset"],
        "count": card["count"],
        "items": sh["items"],
        "source_items": sh["source_items"],
        "skipped": card.get("skipped", 0),
        "dim": card["dim"],
        "model_fingerprint": card["model_fingerprint"],
        "classes": card.get("classes", []),
        "files": file_records(target, EMBED_FILES),
        "node": node,
    }


def _shard_card(target, i, n, want):
    """embed.json of a complete shard folder `i/n` of this source and model
    (a retried task keeps it), or None."""
    try:
        card = json.loads((target / "embed.json").read_text())
    except (OSError, ValueError):
        return None
    sh = card.get("shard") or {}
    same = all(card.get(k) == v for k, v in want.items())
    return card if same and (sh.get("index"), sh.get("count")) == (i, n) else None


def embed_sharded(model_dir, source, out_dir, shards, num_gpus=0, *, num_cpus=1, batch=256,
                  binary=None, max_retries=3, force=False):
    """Embeds ``source`` (image folder, CSV manifest or IDX file) with the
    model ``model_dir`` in ``shards`` contiguous ranges, one Ray task per
    shard, each running ``likeness embed --shard i/N`` with ``num_cpus``
    threads (and ``num_gpus`` GPUs: Ray sets ``CUDA_VISIBLE_DEVICES``).

    Writes ``out_dir/shard-XXXX/`` (each published atomically by ``embed``)
    and then ``out_dir/shards.json``; returns the latter as a dict. A task
    whose process or node dies is retried (``max_retries``); a shard that
    is already complete is kept. Raises ``NodeSetupError`` when a node lacks
    the binary, the model or the data, ``ShardTaskError`` when ``embed``
    fails, ``IncompatibleShardsError`` when shards disagree on the model."""
    ray = _ray()
    model_dir, source = (pathlib.Path(p).resolve() for p in (model_dir, source))
    out_dir = pathlib.Path(out_dir).resolve()
    if shards < 1:
        raise ValueError(f"shards = {shards}: give at least 1")
    manifest = out_dir / "shards.json"
    if manifest.exists() and not force:
        raise FileExistsError(f"{manifest} exists; choose another out_dir or pass force=True")
    out_dir.mkdir(parents=True, exist_ok=True)
    task = ray.remote(_embed_shard).options(
        num_cpus=num_cpus, num_gpus=num_gpus, max_retries=max_retries,
        retry_exceptions=[_Killed], name="likeness-embed-shard")
    device = "cuda" if num_gpus else "cpu"
    threads = max(1, int(num_cpus))
    refs = [task.remote(binary, str(model_dir), str(source), str(out_dir), i, shards, batch,
                        threads, device) for i in range(shards)]
    entries = _gather(ray, refs)
    fps = {e["model_fingerprint"] for e in entries}
    dims = {e["dim"] for e in entries}
    if len(fps) != 1 or len(dims) != 1:
        raise IncompatibleShardsError(f"{out_dir}: the shards were embedded with different "
                                      f"models (fingerprints {sorted(fps)}, dims {sorted(dims)})")
    doc = {
        "format": SHARDS_FORMAT,
        "format_version": VERSION,
        "source": str(source),
        "model_dir": str(model_dir),
        "model_fingerprint": entries[0]["model_fingerprint"],
        "dim": entries[0]["dim"],
        "classes": entries[0]["classes"],
        "source_items": entries[0]["source_items"],
        "count": sum(e["count"] for e in entries),
        "shards": [{k: v for k, v in e.items() if k not in ("classes", "source_items")}
                   for e in entries],
    }
    return write_json_atomic(manifest, doc)


def _optional_strings(values, name, n):
    """``subjects`` / ``sides`` as ``likeness.build`` takes them: one str
    per vector, None where it has none (None, NaN, an empty str, as pandas
    reads an empty cell); "" stands for none in items.csv."""
    values = list(values)
    if len(values) != n:
        raise ValueError(f"vectors holds {n} rows but {name} holds {len(values)}; give one "
                         f"per vector (None where an item has none)")
    out = []
    for i, v in enumerate(values):
        if v is None or (isinstance(v, float) and v != v):
            out.append("")
        elif isinstance(v, str):
            out.append(v)
        else:
            raise TypeError(f"{name}[{i}] = {v!r} is not a str or None")
    return out


def write_shards(vectors, out_dir, shards, *, labels=None, scores=None, classes=None,
                 subjects=None, sides=None, model_fingerprint=None, force=False):
    """Writes an array of vectors (embedded elsewhere) as ``shards``
    contiguous shard folders and ``shards.json``, the layout that
    ``embed_sharded`` writes and ``build_sharded`` reads: ``labels``
    (integers) and ``scores`` (floats, NaN = none) one per vector, as
    ``likeness embed`` writes them; ``classes`` the labels' names
    (``classes[label]``). ``subjects`` and ``sides`` (``"left"``,
    ``"right"``: the subject's own), one per vector, None where an item has
    none, go into each shard's ``items.csv`` as ``likeness embed`` writes a
    manifest's columns; ``build_sharded`` records them in every shard's
    index (and refuses a side that is neither). Returns the manifest as a
    dict."""
    vectors = np.asarray(vectors)
    if vectors.ndim != 2:
        raise ValueError(f"vectors must be 2-D, got shape {vectors.shape}")
    n = len(vectors)
    if not 1 <= shards <= n:
        raise ValueError(f"shards = {shards}: give 1..={n} (one item at least per shard)")
    if labels is not None:
        labels = np.asarray(labels)
        # As likeness.build: float labels were cut to integers in silence.
        if labels.dtype.kind not in "iu":
            raise TypeError(f"labels must be integers, got dtype {labels.dtype}; convert with "
                            f"labels.astype(numpy.int64)")
        labels = labels.astype(np.int64).reshape(-1)
        if len(labels) != n:
            raise ValueError(f"vectors holds {n} rows but labels holds {len(labels)}")
    if scores is not None:
        scores = np.asarray(scores, dtype=np.float32).reshape(-1)
        if len(scores) != n:
            raise ValueError(f"vectors holds {n} rows but scores holds {len(scores)}; give "
                             f"one score per vector (NaN where an item has none)")
    if subjects is not None:
        subjects = _optional_strings(subjects, "subjects", n)
    if sides is not None:
        sides = _optional_strings(sides, "sides", n)
    classes = list(classes or [])
    out_dir = pathlib.Path(out_dir).resolve()
    manifest = out_dir / "shards.json"
    if manifest.exists() and not force:
        raise FileExistsError(f"{manifest} exists; choose another out_dir or pass force=True")
    out_dir.mkdir(parents=True, exist_ok=True)
    entries = []
    for i in range(shards):
        lo, hi = i * n // shards, (i + 1) * n // shards
        name = f"shard-{i:04d}"
        tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{name}.building-", dir=out_dir))
        np.save(tmp / "vectors.npy", np.ascontiguousarray(vectors[lo:hi], dtype=np.float32))
        if labels is not None:
            np.save(tmp / "labels.npy", labels[lo:hi])
        if scores is not None:
            np.save(tmp / "scores.npy", scores[lo:hi])
        if subjects is not None or sides is not None:
            _write_items(tmp / "items.csv", lo, hi, labels, classes, scores, subjects, sides)
        card = {"format": "likeness-embeddings", "format_version": 1, "count": hi - lo,
                "dim": int(vectors.shape[1]), "model_fingerprint": model_fingerprint,
                "classes": classes,
                "shard": {"index": i, "count": shards, "offset": lo, "items": hi - lo,
                          "source_items": n}}
        (tmp / "embed.json").write_text(json.dumps(card, indent=2))
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        target = out_dir / name
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
        entries.append({"index": i, "dir": name, "offset": lo, "count": hi - lo,
                        "items": hi - lo, "skipped": 0, "dim": int(vectors.shape[1]),
                        "model_fingerprint": model_fingerprint,
                        "files": file_records(target, EMBED_FILES)})
    doc = {"format": SHARDS_FORMAT, "format_version": VERSION, "source": None,
           "model_dir": None, "model_fingerprint": model_fingerprint,
           "dim": int(vectors.shape[1]), "classes": classes, "source_items": n,
           "count": n, "shards": entries}
    return write_json_atomic(manifest, doc)


def _write_items(path, lo, hi, labels, classes, scores, subjects, sides):
    """items.csv of the rows lo..hi, with `likeness embed`'s columns (no
    sources: the vectors came from elsewhere)."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(ITEMS_COLUMNS)
        for g in range(lo, hi):
            label = "" if labels is None else int(labels[g])
            name = classes[label] if label != "" and 0 <= label < len(classes) else ""
            score = "" if scores is None or not np.isfinite(scores[g]) else repr(float(scores[g]))
            w.writerow([g, label, name, "", "", "", "", "", "", score,
                        "" if subjects is None else subjects[g],
                        "" if sides is None else sides[g]])


def _read_pairings(path, count, what):
    """The subject and side of each row of a shard's items.csv (as
    ``likeness.build`` takes them, "" = none), or (None, None) when it
    names none: ``likeness index`` then records none either."""
    if not path.is_file():
        return None, None
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if len(rows) != count:
        raise ShardTaskError(f"{what}: {path} lists {len(rows)} items but the shard holds "
                             f"{count} vectors; embed the shard again")
    subjects = [r.get("subject") or "" for r in rows]
    sides = [r.get("side") or "" for r in rows]
    if not any(subjects) and not any(sides):
        return None, None
    return subjects, sides


# ---------------------------------------------------------------- build --


def _build_shard(root, entry, fingerprint, classes, out_dir, params, threads):
    import likeness

    node = _node()
    i = entry["index"]
    folder = pathlib.Path(root) / entry["dir"]
    check_files(folder, entry["files"], f"node {node}: shard {i}")
    card = json.loads((folder / "embed.json").read_text())
    if card.get("model_fingerprint") != fingerprint:
        raise IncompatibleShardsError(
            f"shard {i} ({folder}) was embedded with model {card.get('model_fingerprint')!r}, "
            f"the gallery with {fingerprint!r}; embed every shard with one model")
    vectors = np.load(folder / "vectors.npy", mmap_mode="r")
    labels = np.load(folder / "labels.npy") if (folder / "labels.npy").is_file() else None
    # As `likeness index` records a manifest's score column: NaN = none.
    scores = np.load(folder / "scores.npy") if (folder / "scores.npy").is_file() else None
    # And its subject and side columns, and the class names: each shard's
    # index holds them as one index of the gallery would (hits name them,
    # `Index.search(labels="eye")` takes the names).
    subjects, sides = _read_pairings(folder / "items.csv", len(vectors), f"node {node}: shard {i}")
    target = pathlib.Path(out_dir) / entry["dir"]
    start = time.perf_counter()
    try:
        index = likeness.build(vectors, target, labels=labels, scores=scores,
                               classes=classes or None, subjects=subjects, sides=sides,
                               threads=threads, force=True, **params)
    except (ValueError, OSError) as e:
        raise ShardTaskError(f"node {node}: building shard {i} from {folder} failed: {e}") from e
    seconds = time.perf_counter() - start
    items = None
    if (folder / "items.csv").is_file():
        # The items' sources, for /items/{id} and the hits' paths.
        items = f"{entry['dir']}.items.csv"
        tmp = pathlib.Path(out_dir) / f".{items}.tmp-{os.getpid()}"
        shutil.copyfile(folder / "items.csv", tmp)
        os.replace(tmp, pathlib.Path(out_dir) / items)
    files = sorted(p.name for p in target.iterdir() if p.is_file())
    return {
        "index": i,
        "dir": entry["dir"],
        "offset": entry["offset"],
        "count": index.count,
        "dim": index.dim,
        "metric": index.metric,
        "model_fingerprint": fingerprint,
        "has_labels": labels is not None,
        "has_scores": index.scores is not None,
        # Whether its items have subjects and sides, which the hits then carry.
        "pairings": subjects is not None,
        "postings": bool(index.manifest.get("postings", False)),
        "items_csv": items,
        "manifest_crc32": crc32_file(target / "manifest.json"),
        "bytes": sum((target / f).stat().st_size for f in files),
        "build_seconds": seconds,
        "build": {**index.manifest.get("build", {}), "store": index.manifest.get("store", "f32")},
        "node": node,
    }


def build_sharded(shards_json, out_dir, *, num_cpus=1, max_retries=3, force=False,
                  **options):
    """Builds one index per shard of ``shards_json`` (one Ray task each,
    ``likeness.build`` with ``num_cpus`` threads) into ``out_dir/shard-XXXX``
    and writes ``out_dir/cluster.json``, which maps global ids to (shard,
    local id). Returns the cluster manifest as a dict.

    ``options`` are ``likeness.build``'s, with its names and defaults
    (``metric``, ``m``, ``ef_construction``, ``seed``, ``store``,
    ``quantile``, ``builder``): every shard is built as ``likeness index``
    would build the whole gallery, with the gallery's class names and the
    shard's labels (and their filter postings), scores
    (``predicted_score``), subjects and sides (items.csv's columns) when it
    has them.

    Raises, before building: ``ManifestError`` (not a shards.json, or
    damaged), ``MissingShardError`` (a shard folder or file is absent),
    ``ShardChecksumError`` (a file's CRC32 or size differs from
    shards.json's), ``IncompatibleShardsError`` (shards embedded with
    different models or dimensions, or overlapping ids)."""
    unknown = sorted(set(options) - BUILD_OPTIONS)
    if unknown:
        raise TypeError(f"build_sharded got unknown options {unknown}; likeness.build takes "
                        f"{sorted(BUILD_OPTIONS)}")
    shards_json = pathlib.Path(shards_json).resolve()
    doc = read_manifest(shards_json, SHARDS_FORMAT)
    root = shards_json.parent
    entries = doc["shards"]
    if not entries:
        raise ManifestError(f"{shards_json} lists no shards")
    fp = doc.get("model_fingerprint")
    for e in entries:
        if e.get("model_fingerprint") != fp:
            raise IncompatibleShardsError(
                f"{shards_json}: shard {e['index']} was embedded with model "
                f"{e.get('model_fingerprint')!r} but the gallery with {fp!r}; embed every "
                f"shard with one model")
        if e.get("dim") != doc.get("dim"):
            raise IncompatibleShardsError(f"{shards_json}: shard {e['index']} has dimension "
                                          f"{e.get('dim')}, the gallery {doc.get('dim')}")
    check_ids(entries, str(shards_json))
    # Checked here too where this machine sees the files, so that a bad
    # gallery fails before any task starts; the tasks check them again on
    # their nodes (which may hold copies).
    for e in entries:
        if (root / e["dir"]).is_dir():
            check_files(root / e["dir"], e["files"], f"shard {e['index']}")
    out_dir = pathlib.Path(out_dir).resolve()
    manifest = out_dir / "cluster.json"
    if manifest.exists() and not force:
        raise FileExistsError(f"{manifest} exists; choose another out_dir or pass force=True")
    out_dir.mkdir(parents=True, exist_ok=True)
    ray = _ray()
    params = dict(options)
    task = ray.remote(_build_shard).options(num_cpus=num_cpus, max_retries=max_retries,
                                            name="likeness-build-shard")
    classes = list(doc.get("classes") or [])
    refs = [task.remote(str(root), e, fp, classes, str(out_dir), params, max(1, int(num_cpus)))
            for e in entries]
    built = _gather(ray, refs)
    cluster = {
        "format": CLUSTER_FORMAT,
        "format_version": VERSION,
        "shards_json": str(shards_json),
        "metric": built[0]["metric"],
        "dim": built[0]["dim"],
        "count": sum(b["count"] for b in built),
        "model_fingerprint": fp,
        "classes": classes,
        "has_labels": all(b["has_labels"] for b in built),
        "has_scores": all(b["has_scores"] for b in built),
        "build": built[0]["build"],
        "shards": built,
    }
    return write_json_atomic(manifest, cluster)


# ---------------------------------------------------------------- serve --


def _check_shard(root, entry, cluster):
    import likeness

    node = _node()
    i = entry["index"]
    path = pathlib.Path(root) / entry["dir"]
    if not path.is_dir():
        raise MissingShardError(f"node {node}: shard {i}'s index {path} is missing; copy it "
                                f"there or rebuild with build_sharded")
    try:
        index = likeness.Index.open(path)
    except FileNotFoundError as e:
        raise MissingShardError(f"node {node}: shard {i}: {e}") from e
    except likeness.CorruptIndexError as e:
        raise ShardChecksumError(f"node {node}: shard {i}: {e}") from e
    if index.metric != cluster["metric"] or index.dim != cluster["dim"]:
        raise IncompatibleShardsError(
            f"shard {i} ({path}) is a {index.metric} index of dimension {index.dim}, the "
            f"gallery {cluster['metric']} of dimension {cluster['dim']}: rebuild it with "
            f"build_sharded")
    if index.count != entry["count"]:
        raise IncompatibleShardsError(f"shard {i} ({path}) holds {index.count} items; "
                                      f"cluster.json records {entry['count']}")
    crc = crc32_file(path / "manifest.json")
    if crc != entry["manifest_crc32"]:
        raise ShardChecksumError(f"shard {i} ({path}): manifest.json has CRC32 {crc:08x}, "
                                 f"cluster.json records {entry['manifest_crc32']:08x}: the "
                                 f"shard was rebuilt or replaced; rebuild with build_sharded")
    return node


def check_cluster(cluster_json):
    """Checks a cluster manifest and every shard's index (on the cluster's
    nodes): returns the manifest. Raises ``ManifestError``,
    ``MissingShardError``, ``ShardChecksumError`` or
    ``IncompatibleShardsError``."""
    path = pathlib.Path(cluster_json).resolve()
    doc = read_manifest(path, CLUSTER_FORMAT)
    for e in doc["shards"]:
        for key in ("metric", "dim"):
            if e.get(key) != doc.get(key):
                raise IncompatibleShardsError(
                    f"{path}: shard {e['index']} has {key} {e.get(key)!r}, the gallery "
                    f"{doc.get(key)!r}")
        if e.get("model_fingerprint") != doc.get("model_fingerprint"):
            raise IncompatibleShardsError(
                f"{path}: shard {e['index']} was embedded with model "
                f"{e.get('model_fingerprint')!r}, the gallery with "
                f"{doc.get('model_fingerprint')!r}")
    check_ids(doc["shards"], str(path))
    ray = _ray()
    task = ray.remote(_check_shard).options(num_cpus=0, max_retries=1)
    _gather(ray, [task.remote(str(path.parent), e, doc) for e in doc["shards"]])
    return doc


# The ingress's request batching (Ray Serve's @serve.batch): concurrent
# /search requests wait up to BATCH_WAIT_S for each other and go to every
# shard as one call of at most MAX_BATCH_SIZE requests; BATCHES_IN_FLIGHT
# batches are at the shards at once, so the next one gathers while one is
# searched. Swept with bench-ray's SWEEP (10^5 x 128, 4 shards, 32
# connections, 2 cores at load 12; docs/benchmarks.md): these gave 788
# queries/s; a 1 ms wait 732, 20 ms 657, batches of 8 367 and of 128 593,
# 1 batch in flight 310 and 4 640.
MAX_BATCH_SIZE = 32
BATCH_WAIT_S = 0.005
BATCHES_IN_FLIGHT = 2


def serve_sharded(cluster_manifest, replicas=1, route_prefix="/", *, shard_timeout_s=5.0,
                  name="likeness", host="127.0.0.1", port=8000, shard_options=None,
                  ingress_options=None, max_replicas_per_node=None, ingress_replicas=1,
                  max_batch_size=MAX_BATCH_SIZE, batch_wait_timeout_s=BATCH_WAIT_S,
                  max_concurrent_batches=BATCHES_IN_FLIGHT, search_threads=None,
                  http="direct"):
    """Serves the sharded gallery of ``cluster_manifest`` (cluster.json) with
    Ray Serve and returns the ingress's DeploymentHandle.

    One ``Shard-XXXX`` deployment per shard with ``replicas`` replicas, each
    opening its shard memory-mapped; an ``Ingress`` deployment (HTTP on
    ``host:port`` under ``route_prefix``, on the head node unless
    ``ingress_options`` names other resources) fans each query out to every shard
    and merges the top-k by distance; ids are global. Concurrent requests
    (``/search`` and ``/search/batch`` alike) are gathered for up to
    ``batch_wait_timeout_s`` into batches of at most ``max_batch_size``
    requests, each sent to every shard as one call (``max_batch_size=1``:
    every request alone, no waiting); each request keeps its own answer,
    error, ``partial`` flag and ``missing_shards``. A shard searches a
    batch's rows in parallel on ``search_threads`` threads (None: all cores
    of its node). A shard that does not
    answer within ``shard_timeout_s`` seconds (after asking again while a
    lost replica is replaced) is listed in ``"missing_shards"`` and the
    answer carries ``"partial": true``.

    ``http="direct"``: the ingress replica listens on ``host:port`` itself,
    so a request costs no hop through Serve's HTTP proxy (`make bench-ray`
    at 32 connections: 681 queries/s against 126 through the proxy, see
    ``_serve.Ingress``); ``http="proxy"``: Serve's proxy listens there and
    routes to the ingress (the first ``serve_sharded`` of a Ray cluster
    starts Serve in its mode).

    ``max_replicas_per_node=1`` spreads a shard's replicas over distinct
    nodes. ``shard_options`` / ``ingress_options`` are extra Ray actor
    options (e.g. ``{"resources": {"shards": 1}}`` to keep shards on the
    nodes that hold their files). The files are checked first
    (``check_cluster``): bad ones raise before anything is deployed."""
    from ray import serve

    from . import _serve

    if not (isinstance(max_batch_size, int) and max_batch_size >= 1):
        raise ValueError(f"max_batch_size = {max_batch_size!r}: give an integer >= 1 (1 turns "
                         f"batching off)")
    if not (isinstance(max_concurrent_batches, int) and max_concurrent_batches >= 1):
        raise ValueError(f"max_concurrent_batches = {max_concurrent_batches!r}: give an "
                         f"integer >= 1")
    if not batch_wait_timeout_s >= 0:
        raise ValueError(f"batch_wait_timeout_s = {batch_wait_timeout_s!r}: give seconds >= 0")
    if http not in ("direct", "proxy"):
        raise ValueError(f"http = {http!r}: give \"direct\" (the ingress listens itself) or "
                         f"\"proxy\" (Serve's HTTP proxy)")
    if search_threads is not None and not (isinstance(search_threads, int)
                                           and search_threads >= 1):
        raise ValueError(f"search_threads = {search_threads!r}: give an integer >= 1, or None "
                         f"for all cores")
    path = pathlib.Path(cluster_manifest).resolve()
    doc = check_cluster(path)
    if http == "direct":
        serve.start(proxy_location="Disabled")
    else:
        serve.start(http_options={"host": host, "port": port}, proxy_location="HeadOnly")
    shard_apps = []
    for e in doc["shards"]:
        opts = {"num_cpus": 0, **(shard_options or {})}
        shard_apps.append(_serve.Shard.options(
            name=f"Shard-{e['index']:04d}", num_replicas=replicas,
            max_replicas_per_node=max_replicas_per_node, ray_actor_options=opts,
        ).bind(str(path.parent / e["dir"]), e, doc.get("classes", []),
               str(path.parent / e["items_csv"]) if e.get("items_csv") else None,
               search_threads))
    batching = {"max_batch_size": max_batch_size,
                "batch_wait_timeout_s": float(batch_wait_timeout_s),
                "max_concurrent_batches": max_concurrent_batches}
    ingress_extra = {}
    if max_batch_size > 1:
        # The proxy hands a replica at most max_ongoing_requests requests at
        # once (Ray's default: 5), which would cap every batch at 5.
        ingress_extra["max_ongoing_requests"] = max_batch_size * max_concurrent_batches
    # On the head node (as Serve's proxy is), so that host:port is the head's.
    placement = {"num_cpus": 0, "resources": {"node:__internal_head__": 0.001}}
    ingress = _serve.Ingress.options(
        num_replicas=ingress_replicas,
        ray_actor_options={**placement, **(ingress_options or {})}, **ingress_extra,
    ).bind(doc, shard_apps, float(shard_timeout_s), batching,
           {"mode": http, "host": host, "port": port, "route_prefix": route_prefix})
    return serve.run(ingress, name=name,
                     route_prefix=route_prefix if http == "proxy" else None)
