"""What a notebook user passes: class names and sets as label filters,
pandas columns with missing values, an empty or single id, help()'s
defaults, and the message of a writer held by this very process."""
import inspect

import numpy as np
import pytest

import likeness
from conftest import clustered

CLASSES = ["brow", "cheek", "eye", "mouth", "nose", "under_eye"]


@pytest.fixture()
def regions(tmp_path):
    """An index of 600 vectors in 6 named classes (as `likeness index` of a
    regions manifest records them), and its labels."""
    x, labels = clustered(600, 16, len(CLASSES), seed=5)
    ix = likeness.build(x, tmp_path / "ix", labels=labels, classes=CLASSES, metric="l2", seed=1)
    return ix, x, labels


def test_label_filters_take_class_names_and_any_iterable(regions):
    """As `likeness query --labels eye` and `/search`'s `"labels": ["eye"]`:
    a filter names classes or numbers, in a list, a set, a NumPy array or
    alone; an unknown name is a ValueError naming the classes."""
    ix, x, labels = regions
    q = x[:20]
    eye, nose = CLASSES.index("eye"), CLASSES.index("nose")
    want = ix.search(q, k=8, labels=[eye, nose])
    assert (want[0] >= 0).all()
    assert set(labels[want[0].ravel()]) == {eye, nose}
    for given in (["eye", "nose"], {"eye", "nose"}, ("nose", eye), np.array(["eye", "nose"]),
                  {eye, nose}, np.array([nose, eye]), iter([eye, "nose"])):
        got = ix.search(q, k=8, labels=given)
        np.testing.assert_array_equal(got[0], want[0], err_msg=repr(given))
    one = ix.search(q, k=8, labels=eye)
    np.testing.assert_array_equal(ix.search(q, k=8, labels="eye")[0], one[0])
    np.testing.assert_array_equal(ix.search(q, k=8, labels=np.str_("eye"))[0], one[0])
    ids, _ = ix.search(q, k=8, exclude_labels={"eye", "brow", "cheek"})
    assert not set(labels[ids.ravel()]) & {0, 1, eye}
    with pytest.raises(ValueError, match=r"labels: no class `ear`: .*brow, cheek, eye"):
        ix.search(q, labels=["eye", "ear"])
    # A number past the classes matches nothing: refused, as by the server.
    with pytest.raises(ValueError, match=r"label 6 is out of range: .*0\.\.=5"):
        ix.search(q, exclude_labels=[1, 6])
    with pytest.raises(TypeError, match="integers or class names"):
        ix.search(q, labels=[1.5])
    plain = likeness.build(x, ix.path.parent / "plain", labels=labels, metric="l2")
    with pytest.raises(ValueError, match="no class `eye`: this index records no class names"):
        plain.search(q, labels="eye")


def test_build_takes_missing_subjects_and_sides_as_none(tmp_path):
    """`subjects` and `sides` as a notebook holds them: a list or a NumPy
    object array, NaN or None where a row has none (pandas reads an empty
    cell of items.csv as NaN); anything else that is not a str names the
    argument and the row."""
    x, labels = clustered(6, 8, 2, seed=2)
    subjects = ["ann", "ann", None, "bob", "bob", np.nan]
    sides = ["left", "right", np.nan, "left", None, "right"]
    for name, conv in (("list", list), ("array", lambda v: np.array(v, dtype=object))):
        ix = likeness.build(x, tmp_path / name, labels=labels, subjects=conv(subjects),
                            sides=conv(sides), metric="l2")
        got = ix.items(range(6))
        assert [g.get("subject") for g in got] == NONE_SUBJECTS, name
        assert [g.get("side") for g in got] == NONE_SIDES, name
    with pytest.raises(TypeError, match=r"sides\[2\] is 3: give a str"):
        likeness.build(x, tmp_path / "bad", sides=["left", "right", 3, None, None, None])
    with pytest.raises(TypeError, match="subjects must be"):
        likeness.build(x, tmp_path / "bad", subjects=5)


NONE_SUBJECTS = ["ann", "ann", None, "bob", "bob", None]
NONE_SIDES = ["left", "right", None, "left", None, "right"]


def test_build_takes_pandas_columns_with_missing_values(tmp_path):
    """The same from a DataFrame's columns, object or string dtype (whose
    missing value is NaN or pandas.NA)."""
    pd = pytest.importorskip("pandas")
    x, labels = clustered(6, 8, 2, seed=2)
    df = pd.DataFrame({"subject": ["ann", "ann", None, "bob", "bob", np.nan],
                       "side": ["left", "right", np.nan, "left", None, "right"]})
    for kind in ("object", "string", pd.StringDtype("python", na_value=pd.NA)):
        d = df.astype(kind)
        ix = likeness.build(x, tmp_path / "ix", labels=labels, subjects=d["subject"],
                            sides=d["side"], metric="l2", force=True)
        got = ix.items(range(6))
        assert [g.get("subject") for g in got] == NONE_SUBJECTS, kind
        assert [g.get("side") for g in got] == NONE_SIDES, kind


def test_items_take_an_empty_list_and_a_single_id(regions):
    ix, x, labels = regions
    assert ix.items([]) == []
    assert ix.items(np.array([], dtype=np.int64)) == []
    assert ix.items(7) == ix.items([7]) == [{"id": 7, "label": int(labels[7]),
                                             "class": CLASSES[labels[7]]}]
    assert ix.items(np.int64(7)) == ix.items([7])


def test_help_shows_the_defaults(regions):
    """help() and inspect.signature give each default's value (they once
    showed `k=...`, `m=...`), the engine's own."""
    ix, _, _ = regions
    for fn in (likeness.build, likeness.Index.search, likeness.evaluate):
        for p in inspect.signature(fn).parameters.values():
            assert p.default is not Ellipsis, f"{fn.__name__}({p.name}=...)"
    search = inspect.signature(likeness.Index.search).parameters
    assert search["k"].default == likeness.DEFAULT_K
    assert search["ef"].default == likeness.DEFAULT_EF
    assert inspect.signature(likeness.evaluate).parameters["ef"].default == likeness.DEFAULT_EF
    build = inspect.signature(likeness.build).parameters
    assert build["m"].default == likeness.DEFAULT_M
    assert build["ef_construction"].default == likeness.DEFAULT_EF_CONSTRUCTION
    assert build["quantile"].default == pytest.approx(likeness.DEFAULT_QUANTILE)
    assert list(inspect.signature(likeness.evaluate).parameters["ks"].default) == [1, 2, 4, 8]


def test_evaluate_names_an_empty_ks(regions):
    ix, _, _ = regions
    with pytest.raises(ValueError, match="ks is empty"):
        likeness.evaluate(ix, ks=[])


def test_a_writer_held_by_this_process_is_named(regions):
    """A second writer in the same process (another Index object, or a
    rebuild) is told which one holds the lock, not "another process"."""
    ix, x, labels = regions
    ix.delete([0])                                 # ix holds the writer
    other = likeness.Index.open(ix.path)
    for change in (lambda: other.delete([1]),
                   lambda: likeness.build(x, ix.path, labels=labels, force=True)):
        with pytest.raises(likeness.IndexBusyError) as e:
            change()
        msg = str(e.value)
        assert "another likeness.Index of this process" in msg and "close()" in msg, msg
        assert "another process" not in msg, msg
    ix.close()
    assert other.delete([1]) == 1
    other.close()


def misaligned(a):
    """`a` copied into a buffer one byte in: the array NumPy makes of
    `np.frombuffer(..., offset=1)`, which is not aligned."""
    buf = np.zeros(a.nbytes + 1, dtype=np.uint8)
    buf[1:] = np.frombuffer(a.tobytes(), dtype=np.uint8)
    v = np.frombuffer(buf, dtype=a.dtype, offset=1).reshape(a.shape)
    assert not v.flags.aligned
    return v


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_misaligned_queries_and_vectors_read_as_aligned_ones(tmp_path, regions, dtype):
    """A NumPy view need not be aligned (a buffer read from a byte offset);
    searching with one, or building from one, answers as its aligned copy
    does (Rust reads floats only where they are aligned; ndarray asserts it
    in debug builds, and a release build read such a view in place)."""
    ix, x, _ = regions
    q = x[:10].astype(dtype)
    ids, dist = ix.search(misaligned(q), k=5)
    want_ids, want_dist = ix.search(q, k=5)
    assert np.array_equal(ids, want_ids)
    assert np.allclose(dist, want_dist)
    # One thread: a parallel build's graph differs from run to run.
    one = dict(metric="l2", seed=1, threads=1)
    built = likeness.build(misaligned(x.astype(dtype)), tmp_path / "mis", **one)
    aligned = likeness.build(x.astype(dtype), tmp_path / "al", **one)
    assert np.array_equal(built.search(q, k=5)[0], aligned.search(q, k=5)[0])
