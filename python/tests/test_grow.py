"""A gallery that grows, from Python: Index.add, delete, update, compact.
Each change is seen by the next search of the same object, survives
reopening, and a deleted item is never returned by any search path."""
import shutil
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import likeness
from conftest import ROOT, clustered

DIM = 32
CLASSES = [f"class-{c}" for c in range(10)]
# One draw of 10 clusters: indexes are built from its first rows and grow
# with later ones (the same distribution, none equal to a built one).
POOL, POOL_LABELS = clustered(12000, DIM, 10, seed=1)
NEW = 5000


def build(tmp_path, name="ix", n=1500, **kw):
    """A labelled l2 index of the pool's first `n` vectors (labels 0..9,
    named `CLASSES` unless told)."""
    x, labels = POOL[:n], POOL_LABELS[:n]
    kw.setdefault("classes", CLASSES)
    ix = likeness.build(x, tmp_path / name, labels=labels, metric="l2", m=8,
                        ef_construction=64, seed=3, threads=2, **kw)
    return ix, x, labels


def new_vectors(n, start):
    """`n` vectors (and labels) of the pool that no index was built with."""
    return POOL[NEW + start:NEW + start + n], POOL_LABELS[NEW + start:NEW + start + n]


def top1(ix, v, **kw):
    ids, dists = ix.search(v, k=1, **kw)
    return ids[:, 0], dists[:, 0]


def all_paths(ix, v, label):
    """Ids every search path returns for `v` (graph, exact, label filters)."""
    found = set()
    for exact in (False, True):
        for kw in ({}, {"labels": [label]}, {"exclude_labels": [(label + 1) % 10]}):
            ids, _ = ix.search(v, k=20, ef=128, exact=exact, **kw)
            found |= set(ids.ravel().tolist())
    return found


# ---- add ---------------------------------------------------------------------------

def test_a_small_add_is_searched_at_once_by_every_path(tmp_path):
    ix, x, _ = build(tmp_path)
    before = ix.vectors
    v, labels = new_vectors(5, 0)
    ids = ix.add(v, labels)
    assert ids.dtype == np.int64 and ids.tolist() == list(range(1500, 1505))
    assert (ix.count, ix.live_count, ix.deleted_count) == (1505, 1505, 0)
    assert ix.generation == 0, f"{len(v)} < FOLD_AT items are logged, not folded"
    for exact in (False, True):
        got, dist = top1(ix, v, exact=exact)
        assert got.tolist() == ids.tolist(), f"exact={exact}"
        np.testing.assert_allclose(dist, 0, atol=1e-3)
    for i, lab in zip(ids, labels):
        got, _ = top1(ix, v[i - 1500], labels=[int(lab)])
        assert got[0] == i
        assert ix.items([i])[0] == {"id": i, "label": lab, "class": CLASSES[lab]}
    # The files' view lags behind the log and says so by its shape; a view
    # taken before the change is untouched.
    assert ix.vectors.shape == (1500, DIM) and before.shape == (1500, DIM)
    np.testing.assert_array_equal(before, x)


def test_an_add_of_fold_at_items_folds_them_into_the_graph(tmp_path):
    ix, x, _ = build(tmp_path)
    before = ix.vectors
    small, small_labels = new_vectors(3, 400)
    ix.add(small, small_labels)
    v, labels = new_vectors(likeness.FOLD_AT, 800)
    ids = ix.add(v, labels, threads=2)
    assert ids.tolist() == list(range(1503, 1503 + likeness.FOLD_AT))
    assert ix.generation == 1
    # The fold wrote every item, the logged ones too, to the files.
    assert ix.vectors.shape == (1503 + likeness.FOLD_AT, DIM)
    np.testing.assert_array_equal(ix.vectors[1500:1503], small)
    np.testing.assert_array_equal(ix.labels[1503:], labels)
    got, _ = top1(ix, v, ef=64)
    assert np.mean(got == ids) > 0.98, "the graph finds most of the folded items"
    got, _ = top1(ix, v, exact=True)
    assert got.tolist() == ids.tolist()
    # The view of generation 0 outlives its files (removed by the fold).
    np.testing.assert_array_equal(before, x)
    assert ix.verify()["edges"] > 0


def test_class_names_as_labels(tmp_path):
    ix, _, _ = build(tmp_path)
    v, _ = new_vectors(3, 1200)
    ids = ix.add(v, ["class-2", "class-7", 4])
    assert [ix.items([i])[0]["label"] for i in ids] == [2, 7, 4]
    one = ix.add(v[0], "class-9")
    assert ix.items(one)[0]["class"] == "class-9"
    # A new name is a new class, kept in the manifest (the add folds).
    new = ix.add(v[1], "class-new")
    assert ix.items(new)[0] == {"id": int(new[0]), "label": 10, "class": "class-new"}
    assert ix.manifest["classes"][-1] == "class-new"
    assert ix.search(v[1], k=1, labels=[10])[0][0, 0] == new[0]
    reopened = likeness.Index.open(ix.path)
    assert reopened.manifest["classes"] == CLASSES + ["class-new"]


def test_add_with_scores(tmp_path):
    x, labels = POOL[:400], POOL_LABELS[:400]
    ix = likeness.build(x, tmp_path / "ix", labels=labels,
                        scores=np.linspace(0, 1, len(x), dtype=np.float32), metric="l2")
    v, vl = new_vectors(2, 1600)
    ids = ix.add(v, vl, scores=[0.25, np.nan])
    first, second = ix.items(ids)
    assert first["score"] == 0.25 and "score" not in second
    ix.update(ids[1:], scores=[0.75])
    assert ix.items(ids[1:])[0]["score"] == 0.75


# ---- delete ------------------------------------------------------------------------

def test_a_deleted_item_is_never_returned(tmp_path):
    ix, x, labels = build(tmp_path)
    v, vl = new_vectors(4, 2000)
    added = ix.add(v, vl)
    gone = [0, 7, 1499, int(added[1])]
    vec = {i: (x[i] if i < 1500 else v[i - 1500]) for i in gone}
    lab = {i: int(labels[i] if i < 1500 else vl[i - 1500]) for i in gone}
    for i in gone:
        assert i in all_paths(ix, vec[i], lab[i]), "found before the delete"
    assert ix.delete(gone) == 4
    assert ix.delete(gone + [3]) == 1, "only item 3 was not deleted yet"
    assert ix.delete(3) == 0
    for i in gone + [3]:
        assert ix.is_deleted(i)
        assert i not in all_paths(ix, vec.get(i, x[3]), lab.get(i, int(labels[3])))
        with pytest.raises(ValueError, match="deleted"):
            ix.items([i])
    assert (ix.count, ix.live_count, ix.deleted_count) == (1504, 1499, 5)
    assert ix.deleted_ids.tolist() == sorted(gone + [3])
    assert not ix.is_deleted(1)
    # The 1,000 nearest (MAX_K) hold no deleted item, and none twice.
    ids, _ = ix.search(x[0], k=likeness.MAX_K, exact=True)
    assert (ids >= 0).all() and len(set(ids.ravel().tolist())) == likeness.MAX_K
    assert not set(ids.ravel().tolist()) & set(gone + [3])


def test_deleting_a_label_empties_its_filter(tmp_path):
    ix, x, labels = build(tmp_path)
    of3 = np.flatnonzero(labels == 3)
    ix.delete(of3)
    for exact in (False, True):
        ids, _ = ix.search(x[of3[:20]], k=5, labels=[3], exact=exact)
        assert (ids == -1).all(), f"exact={exact}"


# ---- reopen, update, compact -------------------------------------------------------

def test_reopening_keeps_every_change(tmp_path):
    ix, x, _ = build(tmp_path)
    v, vl = new_vectors(likeness.FOLD_AT + 10, 2400)
    ix.add(v[:10], vl[:10])                      # logged
    ix.add(v[10:], vl[10:])                      # folded
    ix.delete([5, 1501])
    tail = ix.add(v[:2] + 0.5, vl[:2])           # logged in the new generation
    ix.update([6], labels=[9])
    ix.delete([int(tail[0])])
    q = np.concatenate([x[:50], v[:50]]) + 0.01
    want = ix.search(q, k=10, exact=True)
    state = (ix.count, ix.live_count, ix.deleted_ids.tolist(), ix.generation)
    ix.close()
    again = likeness.Index.open(tmp_path / "ix")
    assert (again.count, again.live_count, again.deleted_ids.tolist(),
            again.generation) == state
    got = again.search(q, k=10, exact=True)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_allclose(got[1], want[1], rtol=1e-6)
    assert again.items([6, int(tail[1])])[0]["label"] == 9
    assert again.items([int(tail[1])])[0]["label"] == vl[1]
    assert again.verify()["edges"] > 0


def test_items_after_a_rebuild_describe_the_new_gallery(tmp_path):
    """`items` kept the records it decoded by generation: once the folder was
    rebuilt (`force=True`: the generation starts again at 0) and the object's
    next change opened the new index, it gave the old gallery's paths."""
    path = tmp_path / "ix"
    # 300 items of dimension 8 with their sources (as `likeness index`).
    shutil.copytree(ROOT / "index" / "tests" / "data" / "golden-v2", path)
    ix = likeness.Index.open(path)
    assert ix.items([0])[0]["path"] == "gallery/000.png"
    x = np.random.default_rng(0).standard_normal((300, 8)).astype(np.float32)
    likeness.build(x, path, metric="l2", threads=2, force=True)
    assert ix.add(x[:1]).tolist() == [300]
    assert ix.generation == 0
    assert ix.items([0, 300]) == [{"id": 0}, {"id": 300}]


def test_an_index_an_interrupted_rebuild_left_hidden_is_put_back(tmp_path):
    """Where a filesystem cannot swap two folders, `force=True` renames the
    old index aside, then the new one in; a crash between the two left no
    index at the path. Opening puts the old one back; two such copies are
    refused with FileNotFoundError naming both, not a bare RuntimeError."""
    ix, x, _ = build(tmp_path)
    ix.close()
    path = tmp_path / "ix"
    new = tmp_path / ".ix.building-4242-00000001"
    shutil.copytree(path, new)
    path.rename(tmp_path / ".ix.replaced-4242-00000002")
    again = likeness.Index.open(path)
    assert len(again) == len(x)
    again.close()
    for pid in ("4242", "4243"):
        shutil.copytree(path, tmp_path / f".ix.building-{pid}-00000001", dirs_exist_ok=True)
        shutil.copytree(path, tmp_path / f".ix.replaced-{pid}-00000002")
    shutil.rmtree(path)
    with pytest.raises(FileNotFoundError, match="replaced-4243") as e:
        likeness.Index.open(path)
    assert "replaced-4242" in str(e.value)


def test_update_changes_a_label_for_every_filter(tmp_path):
    ix, x, labels = build(tmp_path)
    i = int(np.flatnonzero(labels == 1)[0])
    report = ix.update([i], labels=["class-8"])
    assert report["generation"] == ix.generation == 1
    assert ix.items([i])[0] == {"id": i, "label": 8, "class": "class-8"}
    assert ix.labels[i] == 8
    for exact in (False, True):
        assert top1(ix, x[i], labels=[8], exact=exact)[0][0] == i
        assert i not in ix.search(x[i], k=20, labels=[1], exact=exact)[0]
    with pytest.raises(ValueError, match="nothing to update"):
        ix.update([i])
    ix.delete([i])
    with pytest.raises(ValueError, match=f"item {i} was deleted"):
        ix.update([i], labels=[2])


def test_compact_keeps_the_answers(tmp_path):
    ix, x, _ = build(tmp_path, n=3000)
    v, vl = new_vectors(300, 2800)
    ix.add(v, vl)
    rng = np.random.default_rng(5)
    gone = rng.choice(3300, 660, replace=False)
    ix.delete(gone)
    q = POOL[-200:]
    exact_before = ix.search(q, k=10, exact=True)
    graph_before = ix.search(q, k=10)[0]
    report = ix.compact(threads=2)
    assert report["rebuilt"] and report["live"] == 2640 and report["deleted"] == 660
    assert report["count"] == ix.count == 3300 and report["generation"] == ix.generation
    exact_after = ix.search(q, k=10, exact=True)
    np.testing.assert_array_equal(exact_after[0], exact_before[0])
    graph_after = ix.search(q, k=10)[0]
    for name, g in (("before", graph_before), ("after", graph_after)):
        recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(g, exact_before[0])])
        assert recall > 0.95, f"graph recall {name} compact: {recall:.3f}"
        assert not set(g.ravel().tolist()) & set(gone.tolist())
    # Deleted items' vectors are wiped; the live ones keep their ids.
    assert not ix.vectors[np.sort(gone)].any()
    np.testing.assert_array_equal(ix.vectors[3000:][~np.isin(np.arange(3000, 3300), gone)],
                                  v[~np.isin(np.arange(3000, 3300), gone)])
    assert ix.verify()["edges"] > 0


# ---- one writer, errors ------------------------------------------------------------

def test_a_second_writer_is_refused(tmp_path):
    ix, x, labels = build(tmp_path)
    ix.delete([0])                               # takes the lock, kept
    other = likeness.Index.open(tmp_path / "ix")
    assert other.is_deleted(0), "a reader sees what was acknowledged"
    with pytest.raises(likeness.IndexBusyError, match=r"\.lock"):
        other.delete([1])
    with pytest.raises(likeness.IndexBusyError):
        other.add(x[:1], labels[:1])
    code = ("import likeness, sys\n"
            "ix = likeness.Index.open(sys.argv[1])\n"
            "try:\n    ix.delete([2])\n"
            "except likeness.IndexBusyError as e:\n    print('busy:', e)\n")
    p = subprocess.run([sys.executable, "-c", code, str(tmp_path / "ix")],
                       capture_output=True, text=True, timeout=60)
    assert p.stdout.startswith("busy:") and "another process" in p.stdout, p.stdout + p.stderr
    assert not other.is_deleted(1) and not ix.is_deleted(2)
    ix.close()                                   # releases the lock
    assert other.delete([1]) == 1
    with pytest.raises(ValueError, match="closed"):
        ix.add(x[:1], labels[:1])


def test_bad_input_raises_and_changes_nothing(tmp_path):
    ix, x, labels = build(tmp_path)
    bad = [
        (lambda: ix.add(np.zeros((2, DIM + 1), np.float32), [1, 2]), ValueError,
         f"dimension {DIM + 1}.*dimension {DIM}"),
        (lambda: ix.add(x[:2]), ValueError, "has labels: give one"),
        (lambda: ix.add(x[:2], [1]), ValueError, "2 vectors but 1 labels"),
        (lambda: ix.add(x[:1], [0.5]), TypeError, "integers or class names"),
        (lambda: ix.add(np.full((1, DIM), np.nan, np.float32), [1]), ValueError, "finite"),
        (lambda: ix.add(x[:0], []), ValueError, "no vectors"),
        (lambda: ix.add(x[:1].tolist(), [1]), TypeError, "numpy.ndarray"),
        (lambda: ix.add(x[:1], [1], scores=[0.5]), ValueError, "has no scores"),
        (lambda: ix.delete([1, 1500]), ValueError, r"no item 1500: ids of this index are 0\.\.1500"),
        (lambda: ix.delete([-1]), ValueError, "id -1 is negative"),
        (lambda: ix.delete("3"), TypeError, "integers"),
        (lambda: ix.update([1], labels=[1, 2]), ValueError, "1 ids but 2 labels"),
        (lambda: ix.update([9999], labels=[1]), ValueError, "no item 9999"),
        (lambda: ix.add(x[:1], [1], threads=0), ValueError, "threads = 0"),
        # A number past the ten classes, as `likeness update` and
        # /admin/items refuse it (a list and an array were taken).
        (lambda: ix.add(x[:1], [10]), ValueError, "label 10 is no class of this index"),
        (lambda: ix.add(x[:1], np.array([10])), ValueError, "label 10 is no class"),
        (lambda: ix.update([1], labels=np.array([12])), ValueError, "label 12 is no class"),
    ]
    for call, kind, match in bad:
        with pytest.raises(kind, match=match):
            call()
    assert (ix.count, ix.deleted_count, ix.generation) == (1500, 0, 0)
    assert ix.search(x[1], k=1)[0][0, 0] == 1
    plain = likeness.build(x, tmp_path / "plain", metric="l2")
    with pytest.raises(ValueError, match="has no labels"):
        plain.add(x[:1], [1])
    with pytest.raises(ValueError, match="records none; give integer labels"):
        build(tmp_path, "unnamed", classes=None)[0].add(x[:1], ["class-1"])


# ---- the GIL ---------------------------------------------------------------------

def test_changes_release_the_gil_and_searches_go_on(tmp_path):
    """A fold (add of many items) runs with the GIL released: another
    Python thread keeps searching the same object meanwhile, and sees the
    new items once the add has returned."""
    ix, x, labels = build(tmp_path, n=4000)
    v, vl = new_vectors(3000, 3200)
    window = {}

    def add():
        window["start"] = time.perf_counter()
        window["ids"] = ix.add(v, vl, threads=1)
        window["end"] = time.perf_counter()

    t = threading.Thread(target=add)
    searched = []
    t.start()
    while t.is_alive():
        ix.search(x[:1], k=1, threads=1)
        searched.append(time.perf_counter())
    t.join()
    start, end = window["start"], window["end"]
    assert end - start > 0.05, "the add was too short to tell"
    inside = [s for s in searched if start < s < end]
    assert len(inside) > 10, f"{len(inside)} searches ran during a {end - start:.2f}s add"
    assert top1(ix, v[:50], exact=True)[0].tolist() == window["ids"][:50].tolist()
