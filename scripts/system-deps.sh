#!/usr/bin/env bash
# Install the few system tools likeness's build needs, only where missing.
set -euo pipefail
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
