"""Shared fixtures: test data, and the `likeness` CLI binary that the
interchangeability tests run (LIKENESS_BIN; `make test` sets it)."""
import json
import os
import pathlib
import subprocess

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def bin_dir():
    """Where cargo put the binaries: LIKENESS_BIN_DIR (`make` sets it), else
    cargo's target folder (CARGO_TARGET_DIR honoured)."""
    d = os.environ.get("LIKENESS_BIN_DIR")
    if d:
        return pathlib.Path(d)
    target = subprocess.run([str(ROOT / "scripts" / "target-dir.sh")], capture_output=True,
                            text=True, check=True).stdout.strip()
    return pathlib.Path(target) / "release"


class Cli:
    """Runs the front binary `likeness` and returns its stdout."""

    def __init__(self, path):
        self.path = path

    def __call__(self, *args):
        p = subprocess.run([str(self.path), *map(str, args)], capture_output=True, text=True,
                           timeout=300)
        if p.returncode != 0:
            raise AssertionError(f"likeness {' '.join(map(str, args))} exited {p.returncode}:\n"
                                 f"{p.stdout}{p.stderr}")
        return p.stdout

    def json_lines(self, *args):
        return [json.loads(line) for line in self(*args).splitlines() if line.strip()]


@pytest.fixture(scope="session")
def cli():
    env = os.environ.get("LIKENESS_BIN")
    path = pathlib.Path(env) if env else bin_dir() / "likeness"
    if not path.is_file():
        msg = (f"the likeness binary {path} is missing, and the tests that compare the "
               f"Python package with the CLI need it: run `make build` (or `make test`, "
               f"which builds it), or point LIKENESS_BIN at one")
        if env:
            # Under `make test`: a missing binary is a failure, not a skip.
            pytest.fail(msg)
        pytest.skip(msg)
    return Cli(path)


def clustered(n, dim, classes, seed, spread=0.6):
    """`n` float32 vectors around `classes` random centres, and their labels."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((classes, dim)).astype(np.float32)
    labels = rng.integers(0, classes, n)
    x = centres[labels] + spread * rng.standard_normal((n, dim)).astype(np.float32)
    return x.astype(np.float32), labels.astype(np.int64)


@pytest.fixture(scope="session")
def data():
    """1,500 labelled vectors of dimension 32 in 10 clusters, and 200 queries."""
    x, labels = clustered(1700, 32, 10, seed=1)
    return x[:1500], labels[:1500], x[1500:], labels[1500:]
