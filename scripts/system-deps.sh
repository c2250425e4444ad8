#!/usr/bin/env bash
# Install the few system tools likeness's build needs, only where missing.
#   scripts/system-deps.sh [--lints]
# --lints (make test, fmt, clippy): also rustfmt and clippy.
set -euo pipefail
LINTS=0
[[ ${1:-} != --lints ]] || LINTS=1
need=()
command -v cc >/dev/null || need+=(build-essential)
command -v python3 >/dev/null || need+=(python3)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
command -v dpkg-deb >/dev/null || need+=(dpkg)
command -v bzip2 >/dev/null || need+=(bzip2)
command -v pkg-config >/dev/null || need+=(pkg-config)
command -v readelf >/dev/null || need+=(binutils)
# Text in the PNG charts (training curves, eval bars, montages).
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)
# The page's browser tests (tests/browser.rs): headless chromium driven
# through chromedriver, both from Debian.
command -v chromium >/dev/null || need+=(chromium)
command -v chromedriver >/dev/null || need+=(chromium-driver)
# apt-get as root, or through sudo; none: say so (the caller names the packages).
SUDO=
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null; then SUDO=sudo; else SUDO=none; fi
fi
if [ ${#need[@]} -gt 0 ]; then
  again="install them as root (apt-get install ${need[*]}) and re-run"
  if [ "$SUDO" = none ]; then
    echo "likeness: needs the Debian packages ${need[*]}, and is neither root nor has sudo: $again" >&2
    exit 1
  fi
  echo "likeness: installing ${need[*]}" >&2
  { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "${need[@]}"; } || {
    echo "likeness: apt-get could not install ${need[*]} (its message is above): $again" >&2
    exit 1
  }
fi
# Optional: the system's zstd saves compiling it from C (about a minute of
# CPU; see ZSTD_ENV in the Makefile). Without it the build still works.
if ! pkg-config --exists libzstd 2>/dev/null; then
  { [ "$SUDO" != none ] && { $SUDO apt-get install -y -qq libzstd-dev || { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq libzstd-dev; }; }; } >/dev/null 2>&1 \
    || echo "likeness: libzstd-dev not installed; zstd will be compiled from source" >&2
fi
if ! command -v cargo >/dev/null; then
  echo "likeness: cargo not found; install Rust from https://rustup.rs (or your distribution's rustup package) and re-run" >&2
  exit 1
fi
# The oldest Rust the workspace builds with: its one home is rust-version in
# Cargo.toml. A distribution's cargo may be older (Debian 12's is 1.63,
# which cannot even read Cargo.lock's version 4), and then fails with a
# message that does not say this.
want=$(sed -n 's/^rust-version *= *"\(.*\)"/\1/p' "$(dirname "$0")/../Cargo.toml" | head -n 1)
have=$(rustc --version 2>/dev/null | cut -d' ' -f2)
if [[ -n $want && $(printf '%s\n' "$want" "${have:-0}" | sort -V | head -n 1) != "$want" ]]; then
  echo "likeness: needs Rust $want or newer, and rustc is ${have:-missing}; run \`rustup update\`, or install Rust from https://rustup.rs, and re-run" >&2
  exit 1
fi
# rustfmt and clippy, for `make test`: rustup's minimal profile (the rust
# Docker images use it) installs neither.
if [[ $LINTS == 1 ]] && ! { cargo fmt --version && cargo clippy --version; } >/dev/null 2>&1; then
  if ! command -v rustup >/dev/null; then
    echo "likeness: cargo fmt and cargo clippy are needed (make test); install them (rustup component add rustfmt clippy) and re-run" >&2
    exit 1
  fi
  echo "likeness: installing rustfmt and clippy (rustup component add)" >&2
  rustup component add rustfmt clippy >&2
  { cargo fmt --version && cargo clippy --version; } >/dev/null 2>&1 || {
    echo "likeness: cargo fmt or cargo clippy still fails after rustup component add rustfmt clippy; see \`cargo fmt --version\`, \`cargo clippy --version\`" >&2
    exit 1
  }
fi
