"""Type stubs of `likeness` (the extension module `likeness._likeness`)."""

import os
import pathlib
from typing import Any, Dict, Iterable, List, Literal, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

__version__: str

_Path = Union[str, "os.PathLike[str]"]
_Floats = npt.NDArray[Union[np.float16, np.float32, np.float64]]
_Ints = Union[npt.NDArray[np.integer], Sequence[int]]
_LabelSet = Union[int, str, Iterable[Union[int, str]]]

class CorruptIndexError(Exception):
    """An index file is corrupt, truncated, of an unsupported format version,
    or not a likeness index file at all (wrong magic). The message names the
    file; rebuild the index."""

class IndexBusyError(RuntimeError):
    """Another writer holds the index's lock (its directory's ``.lock``):
    another process, or another Index object of this process that changed
    it and is still open (the message says which). Close that one or send
    the change to it."""

FOLD_AT: int
DEFAULT_K: int
DEFAULT_EF: int
MAX_K: int
MAX_EF: int
DEFAULT_M: int
DEFAULT_EF_CONSTRUCTION: int
DEFAULT_QUANTILE: float

_Labels = Union[_Ints, Sequence[Union[int, str]], npt.NDArray[np.str_], int, str]

class Index:
    """An open index: memory-mapped files, searched in place.

    Open one with ``Index.open(path)`` or get one from ``likeness.build``.
    Any number of Python threads may search one Index at once, also while
    another changes it."""

    @staticmethod
    def open(path: _Path) -> "Index":
        """Opens the index directory ``path`` (made by ``likeness build``,
        ``likeness index`` or ``likeness.build``). Raises FileNotFoundError
        when it or one of its files is missing, CorruptIndexError when a
        file is damaged or not an index. It holds the changes acknowledged
        before it was opened and those made through it; another process's
        later changes are seen once it is opened again."""
    @property
    def count(self) -> int:
        """Number of ids given: items are ``0..count``, deleted ones included
        (ids are never reused)."""
    @property
    def live_count(self) -> int:
        """Items not deleted: the ones a search can return."""
    @property
    def deleted_count(self) -> int:
        """Items deleted."""
    @property
    def deleted_ids(self) -> npt.NDArray[np.int64]:
        """The deleted ids, ascending."""
    @property
    def generation(self) -> int:
        """Generation of the index's files: 0 as built, one more per fold."""
    @property
    def dim(self) -> int:
        """Vector dimension."""
    @property
    def metric(self) -> Literal["cosine", "l2"]:
        """The metric: "cosine" or "l2" (squared Euclidean)."""
    @property
    def path(self) -> pathlib.Path:
        """The index directory."""
    @property
    def manifest(self) -> Dict[str, Any]:
        """manifest.json as a dict (parameters, sizes, CRC32s, tool, model)."""
    @property
    def vectors(self) -> npt.NDArray[np.float32]:
        """The stored vectors (for cosine: normalised), float32 [n, dim]:
        a read-only view on the memory map, no copy. It stays valid after
        ``close()``, after a change, or after this Index is dropped. It
        shows the items of the index's files: items added since the last
        fold are in the change log, not in it (``n < count``) until the
        next fold, and deleted rows stay until ``compact()``."""
    @property
    def labels(self) -> Optional[npt.NDArray[np.int64]]:
        """The items' labels, int64 [n] (a read-only view like ``vectors``,
        behind the change log until a fold), or None when the index was
        built without."""
    @property
    def scores(self) -> Optional[npt.NDArray[np.float32]]:
        """The items' scores, float32 [n], NaN where an item has none (a
        read-only view like ``vectors``, behind the change log until a
        fold), or None when the index was built without scores."""
    def items(
        self, ids: Union[int, _Ints], distances: Optional[Sequence[float]] = None
    ) -> List[Optional[Dict[str, Any]]]:
        """One dict per id (one int: a list of one): "id" and, when
        recorded, "label", "class", "path", "region" ([x0, y0, x1, y1]),
        "score", "subject" and "side" ("left" or "right"); "distance" when
        ``distances`` is given. Id -1 (search padding) gives None; a deleted
        id raises ValueError."""
    def search(
        self,
        queries: _Floats,
        k: int = 10,
        *,
        ef: int = 64,
        labels: Optional[_LabelSet] = None,
        exclude_labels: Optional[_LabelSet] = None,
        exact: bool = False,
        threads: Optional[int] = None,
    ) -> Tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """The k nearest items of each query, nearest first: ``(ids,
        distances)``, int64 and float32 of shape [q, k] (a 1-D query gives
        [1, k]), padded with -1 / +inf where fewer than k are found.
        ``ef``: beam width (raised to k). ``labels``/``exclude_labels``:
        keep only / drop items with these labels: one or an iterable (list,
        set, array) of ints or, where the index records class names,
        names (``labels="eye"``; an unknown one raises ValueError), as
        ``likeness query --labels``. ``exact``: brute force.
        ``threads``: None = all cores, 1 = the calling thread. The GIL is
        released for the whole search."""
    def add(
        self,
        vectors: _Floats,
        labels: Optional[_Labels] = None,
        scores: Optional[Union[npt.NDArray[np.floating], Sequence[float]]] = None,
        *,
        threads: Optional[int] = None,
    ) -> npt.NDArray[np.int64]:
        """Adds items (2-D [n, dim], or one 1-D vector); returns their new
        ids. ``labels``: one per item when the index has labels, ints or
        class names (when it records them); ``scores``: one float per item
        (NaN = none). On disk (fsync'd) when it returns and seen by the
        next search. Fewer than ``FOLD_AT`` items are logged; more fold
        into a new generation with the graph extended. The first change
        takes the index's lock until ``close()`` (IndexBusyError when
        another writer has it). The GIL is released."""
    def delete(self, ids: Union[int, _Ints]) -> int:
        """Deletes items; returns how many were not deleted before. Never
        returned again by any search; ids are not reused. The GIL is
        released."""
    def update(
        self,
        ids: Union[int, _Ints],
        labels: Optional[_Labels] = None,
        scores: Optional[Union[npt.NDArray[np.floating], Sequence[float]]] = None,
        *,
        threads: Optional[int] = None,
    ) -> Dict[str, Any]:
        """Sets the labels and/or scores of ``ids`` (vectors untouched);
        writes a new generation and returns its fold report."""
    def compact(self, *, threads: Optional[int] = None) -> Dict[str, Any]:
        """Folds every change into one clean generation, the graph rebuilt
        over the live items; returns the fold report: "generation",
        "count", "live", "deleted", "inserted", "rebuilt", "seconds"."""
    def fold(self, *, threads: Optional[int] = None) -> Dict[str, Any]:
        """Writes the logged changes into a new generation (the graph
        extended, deleted items kept as tombstones); returns the report."""
    def is_deleted(self, id: int) -> bool:
        """Whether item ``id`` was deleted."""
    def verify(self) -> Dict[str, Any]:
        """Checks sizes and CRC32s of every file, every graph link, the
        vectors and item records; returns {"files", "bytes", "edges"};
        raises CorruptIndexError."""
    def close(self) -> None:
        """Releases this object's reference to the index and its writer's
        lock (views from ``vectors``/``labels`` stay valid); later use
        raises ValueError."""
    def __enter__(self) -> "Index": ...
    def __exit__(self, *exc: object) -> None: ...
    def __len__(self) -> int: ...

def build(
    vectors: _Floats,
    out: _Path,
    *,
    labels: Optional[_Ints] = None,
    scores: Optional[Union[npt.NDArray[np.floating], Sequence[float]]] = None,
    classes: Optional[Sequence[str]] = None,
    subjects: Optional[Iterable[Optional[str]]] = None,
    sides: Optional[Iterable[Optional[Literal["left", "right"]]]] = None,
    metric: Literal["cosine", "l2"] = "cosine",
    m: int = 16,
    ef_construction: int = 200,
    seed: int = 0,
    store: Literal["f32", "f16", "i8"] = "f32",
    quantile: float = 0.99,
    builder: Literal["native", "hnsw_rs"] = "native",
    threads: Optional[int] = None,
    force: bool = False,
) -> Index:
    """Builds an HNSW index of ``vectors`` (2-D float16/32/64; a
    non-contiguous array is copied once) into the directory ``out`` and
    opens it: the same files as ``likeness build``. Rows with NaN/Inf (and,
    for cosine, all-zero rows) raise ValueError naming the row; labels of
    the wrong length raise ValueError; an existing ``out`` raises
    FileExistsError unless ``force=True``. ``scores``: one float per row
    (NaN = none), for ``predicted_score``. ``classes``: the labels' names
    (``classes[label]``): hits get "class", and ``add``/``update`` take
    names as labels. ``subjects``/``sides``: one per row, None (or NaN,
    as pandas reads an empty cell) where a row has none (a side "left" or
    "right", the subject's own), as ``likeness index`` records a
    manifest's columns: ``Index.items`` names them (a side other than
    those raises ValueError); a list, array or pandas column will do.
    ``store``: "f32", "f16" or "i8" (compact copies searched, re-ranked
    with float32); ``quantile``: the i8 codes' central fraction; ``builder``: "native" or "hnsw_rs". The
    same options and defaults as ``likeness build``. The GIL is released."""

def predict_score(distances: Sequence[float], scores: Sequence[float]) -> Optional[float]:
    """The score predicted from a query's hits as ``likeness serve`` gives
    it (``predicted_score``): the 1/distance-weighted mean of the scores of
    the hits that have one (NaN = none); None when none has."""

def evaluate(
    index: Index,
    ks: Sequence[int] = (1, 2, 4, 8),
    queries: Optional[_Floats] = None,
    labels: Optional[_Ints] = None,
    *,
    ef: int = 64,
) -> Dict[str, Any]:
    """Retrieval metrics of an index with labels, the same keys and values
    as ``likeness eval --json``: leave-one-out when ``queries`` is None,
    else ``queries`` with ``labels`` against the index."""
