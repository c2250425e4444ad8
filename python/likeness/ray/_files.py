"""The two files of a sharded gallery, and the checks made on them.

``shards.json`` (written by ``embed_sharded`` or ``write_shards``) lists
embeddings folders; ``cluster.json`` (written by ``build_sharded``) lists the
index of each. Both carry a magic (``format``), a ``format_version`` and a
``crc32`` of their own content, and are published atomically (temporary
file in the same folder, fsync, rename). Neither needs Ray.

Global ids: shard ``s`` holds the ids ``offset_s .. offset_s + count_s``;
its row ``r`` is the global id ``offset_s + r``. Without skipped images the
offsets are the source's item numbers, so the ids are those of one unsharded
``likeness embed``.
"""
import json
import os
import pathlib
import zlib

SHARDS_FORMAT = "likeness-shards"
CLUSTER_FORMAT = "likeness-cluster"
VERSION = 1


class ShardError(Exception):
    """Base of the errors about a sharded gallery's files."""


class ShardChecksumError(ShardError):
    """A shard's file does not match the CRC32 (or size) that shards.json or
    cluster.json records: it changed or is damaged. Re-run the step that
    wrote it."""


class MissingShardError(ShardError):
    """A shard folder (or one of its files) that the manifest lists is
    absent: copy it to every node that runs it, or re-run the step."""


class IncompatibleShardsError(ShardError):
    """Shards that cannot be searched as one gallery: embedded with
    different models, indexed with different metrics or dimensions, or ids
    that overlap."""


class ManifestError(ShardError):
    """shards.json or cluster.json is not one, is of a newer format version,
    or fails its own checksum."""


class NodeSetupError(ShardError):
    """A Ray node lacks something a task needs (the ``likeness`` binary, the
    model folder, the data): the message names the node and the path."""


def crc32_file(path, chunk=1 << 20):
    crc = 0
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                return crc & 0xFFFFFFFF
            crc = zlib.crc32(b, crc)


def _body_crc(doc):
    body = {k: v for k, v in doc.items() if k != "crc32"}
    return zlib.crc32(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()) & 0xFFFFFFFF


def write_json_atomic(path, doc):
    """Writes ``doc`` (with its ``crc32``) to ``path``: temp file, fsync, rename."""
    path = pathlib.Path(path)
    doc = dict(doc)
    doc["crc32"] = _body_crc(doc)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return doc


def read_manifest(path, fmt):
    """Reads and checks shards.json (``fmt=SHARDS_FORMAT``) or cluster.json."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (expected a {fmt} manifest)")
    try:
        doc = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise ManifestError(f"{path} is not JSON ({e}); re-run the step that wrote it") from e
    if not isinstance(doc, dict) or doc.get("format") != fmt:
        raise ManifestError(f"{path} is not a {fmt} manifest (its format is "
                            f"{doc.get('format') if isinstance(doc, dict) else None!r})")
    if doc.get("format_version", 0) > VERSION:
        raise ManifestError(f"{path} has format version {doc.get('format_version')}; this "
                            f"likeness reads up to {VERSION}: upgrade likeness")
    if doc.get("crc32") != _body_crc(doc):
        raise ManifestError(f"{path} fails its CRC32 (it was edited or damaged); "
                            f"re-run the step that wrote it")
    return doc


def shard_dir(root, entry):
    return pathlib.Path(root) / entry["dir"]


def check_files(folder, files, what):
    """Checks that every file of ``files`` ({name: {"crc32", "bytes"}}) in
    ``folder`` exists with that size and CRC32."""
    folder = pathlib.Path(folder)
    if not folder.is_dir():
        raise MissingShardError(f"{what}: the folder {folder} is missing")
    for name, rec in files.items():
        p = folder / name
        if not p.is_file():
            raise MissingShardError(f"{what}: {p} is missing")
        size = p.stat().st_size
        if size != rec["bytes"]:
            raise ShardChecksumError(f"{what}: {p} holds {size} bytes but the manifest "
                                     f"records {rec['bytes']}")
        crc = crc32_file(p)
        if crc != rec["crc32"]:
            raise ShardChecksumError(f"{what}: {p} has CRC32 {crc:08x} but the manifest "
                                     f"records {rec['crc32']:08x}")


def file_records(folder, names):
    folder = pathlib.Path(folder)
    return {n: {"bytes": (folder / n).stat().st_size, "crc32": crc32_file(folder / n)}
            for n in names if (folder / n).is_file()}


def check_ids(entries, where):
    """Shards must hold disjoint, increasing id ranges."""
    end = 0
    for e in sorted(entries, key=lambda e: e["offset"]):
        if e["offset"] < end:
            raise IncompatibleShardsError(
                f"{where}: shard {e['index']} starts at id {e['offset']}, inside the previous "
                f"shard's ids (which end at {end}); shards must hold disjoint id ranges")
        end = e["offset"] + e["count"]
