"""likeness: an HNSW index served from memory-mapped files, from Python.

Build an index from a NumPy array, open one made by the ``likeness`` CLI
(the files are the same), search it with the GIL released, and evaluate it
with the same numbers as ``likeness eval --json``::

    import numpy as np, likeness
    x = np.random.default_rng(0).standard_normal((1000, 64), dtype=np.float32)
    index = likeness.build(x, "example-index", metric="l2", force=True)
    ids, distances = index.search(x[:5], k=3)

Names:

- ``build(vectors, out, ...) -> Index``: write an index directory and open it.
- ``Index.open(path)``: open an index directory; ``search``, ``items``,
  ``verify``, ``close``; ``count``, ``live_count``, ``deleted_count``,
  ``generation``, ``dim``, ``metric``, ``manifest``, ``vectors`` and
  ``labels`` (read-only views on the memory map).
- ``Index.add(vectors, labels=None, scores=None) -> ids``, ``Index.delete(ids)``,
  ``Index.update(ids, labels=None, scores=None)``, ``Index.compact()``: change
  the index in place (on disk when they return, seen by the next search;
  ``IndexBusyError`` when another writer has it).
- ``evaluate(index, ks, queries, labels) -> dict``: Recall@K, Precision@1,
  R-Precision, MAP@R and the graph's agreement with exact search.
- ``predict_score(distances, scores)``: a query's ``predicted_score`` from
  its hits, as ``likeness serve`` computes it.
- ``CorruptIndexError``: a damaged, foreign or too-new index file.
- ``IndexBusyError``: another writer (process or Index object) holds the
  index's lock.
- ``DEFAULT_K``, ``DEFAULT_EF``, ``MAX_K``, ``MAX_EF``, ``DEFAULT_M``,
  ``DEFAULT_EF_CONSTRUCTION``, ``DEFAULT_QUANTILE``: the engine's defaults
  and limits (the CLI's and the server's too); ``FOLD_AT``: adds of this
  many items or more fold into the graph at once (smaller ones are logged).

The package holds the index only (no libtorch); embed images with the
``likeness`` CLI (``likeness embed`` writes ``vectors.npy``, ``labels.npy``
and ``items.csv``) or with PyTorch: ``torch.jit.load(model_dir + "/model.pt")`` opens a
trained model (``torch.load`` refuses it), taking float32 images [n,
channels, size, size] as ``model.json``'s ``spec`` describes them
(``input_size``, ``channels``, ``mean``, ``std``).
"""

from ._likeness import (
    DEFAULT_EF,
    DEFAULT_EF_CONSTRUCTION,
    DEFAULT_K,
    DEFAULT_M,
    DEFAULT_QUANTILE,
    FOLD_AT,
    MAX_EF,
    MAX_K,
    CorruptIndexError,
    Index,
    IndexBusyError,
    __version__,
    build,
    evaluate,
    predict_score,
)

__all__ = ["CorruptIndexError", "IndexBusyError", "Index", "build", "evaluate", "predict_score", "__version__",
           "DEFAULT_K", "DEFAULT_EF", "MAX_K", "MAX_EF", "DEFAULT_M", "DEFAULT_EF_CONSTRUCTION",
           "DEFAULT_QUANTILE", "FOLD_AT"]
