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
# The system's zstd instead of compiling it (see Makefile, ZSTD_ENV).
pkg-config --exists libzstd 2>/dev/null || need+=(libzstd-dev)
# Text in the PNG charts (training curves, eval bars, montages).
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)
if [ ${#need[@]} -gt 0 ]; then
  echo "likeness: installing ${need[*]}" >&2
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${need[@]}"
fi
if ! command -v cargo >/dev/null; then
  echo "likeness: cargo not found; install Rust from https://rustup.rs (or your distribution's rustup package) and re-run" >&2
  exit 1
fi
