#!/usr/bin/env bash
# Fetch the real datasets likeness uses into the data cache, from Debian
# packages only (no other network access is assumed). Idempotent: a dataset
# already present and verified is left alone.
#
#   Fashion-MNIST (MIT)       binary package dataset-fashion-mnist
#   dlib "johns" face crops   source package dlib, orig tarball (Boost-1.0)
#   dlib examples/faces       the same tarball: 9 photos, 43 faces with 68
#                             landmarks each (the `regions` test's truth)
#
# Nothing on the system is changed: apt runs with a private sources list and
# list cache under $CACHE/apt, built from the system's own apt sources (so no
# registry host name is written here).
set -euo pipefail
CACHE="${LIKENESS_CACHE:-$HOME/.cache/likeness}"
DATA="$CACHE/data"
APT="$CACHE/apt"
DLIB_TARBALL="dlib_19.24+dfsg.orig.tar.bz2"
DLIB_SHA256="66b4263822a2ff91a3e769e501c7d7927a13089e178c1427ec19cb0475823cf6"
FMNIST_FILES="train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz"

log() { echo "likeness data: $*" >&2; }

apt_opts=(
  -o "Dir::Etc::SourceList=$APT/sources.list"
  -o "Dir::Etc::SourceParts=$APT/sources.list.d"
  -o "Dir::State::Lists=$APT/lists"
  -o "Dir::Cache::Archives=$APT/archives"
  -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache="
  -o "Debug::NoLocking=1" -o "APT::Sandbox::User=root"
)

private_apt() {
  # Build a private copy of the system's apt sources with both deb and
  # deb-src types, then refresh its package lists (once a day at most).
  mkdir -p "$APT/sources.list.d" "$APT/lists/partial" "$APT/archives/partial"
  : > "$APT/sources.list"
  local found=0 f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    sed -E 's/^Types:.*/Types: deb deb-src/' "$f" > "$APT/sources.list.d/$(basename "$f")"
    found=1
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    grep -E '^deb ' "$f" | sed -E 's/^deb /deb-src /' >> "$APT/sources.list" || true
    grep -E '^deb ' "$f" >> "$APT/sources.list" || true
    found=1
  done
  if [ "$found" = 0 ]; then
    log "no apt sources found under /etc/apt; cannot fetch datasets"; exit 1
  fi
  if [ -z "$(find "$APT/lists" -maxdepth 1 -name '*Sources*' -mtime -1 2>/dev/null)" ]; then
    log "refreshing package lists (private copy under $APT)"
    apt-get "${apt_opts[@]}" -qq update >&2
  fi
}

have_fmnist() {
  local d="$1" f
  for f in $FMNIST_FILES; do [ -s "$d/$f" ] || return 1; done
}

fetch_fmnist() {
  local dest="$DATA/fashion-mnist"
  if have_fmnist "$dest"; then log "fashion-mnist present"; return; fi
  mkdir -p "$dest"
  if have_fmnist /usr/share/datasets/fashion-mnist; then
    log "fashion-mnist: copying from the installed Debian package"
    for f in $FMNIST_FILES; do cp /usr/share/datasets/fashion-mnist/$f "$dest/$f.tmp" && mv "$dest/$f.tmp" "$dest/$f"; done
    return
  fi
  private_apt
  local tmp; tmp="$(mktemp -d "$CACHE/fmnist.XXXXXX")"
  log "fashion-mnist: downloading Debian package dataset-fashion-mnist"
  (cd "$tmp" && apt-get "${apt_opts[@]}" -qq download dataset-fashion-mnist >&2)
  dpkg-deb -x "$tmp"/dataset-fashion-mnist_*.deb "$tmp/x"
  for f in $FMNIST_FILES; do
    cp "$tmp/x/usr/share/datasets/fashion-mnist/$f" "$dest/$f.tmp" && mv "$dest/$f.tmp" "$dest/$f"
  done
  rm -rf "$tmp"
  have_fmnist "$dest" || { log "fashion-mnist: package did not contain the expected files"; exit 1; }
}

# The dlib source tarball, downloaded once and checked.
dlib_tarball() {
  local tarball="$CACHE/downloads/$DLIB_TARBALL"
  mkdir -p "$CACHE/downloads"
  if [ ! -f "$tarball" ] || ! echo "$DLIB_SHA256  $tarball" | sha256sum -c --status; then
    private_apt
    local uri
    uri="$(apt-get "${apt_opts[@]}" -qq source --print-uris dlib 2>/dev/null \
      | grep -F "'" | grep -F 'dfsg.orig.tar' | grep -v -i models | head -n1 | cut -d"'" -f2)"
    if [ -z "$uri" ]; then log "could not find the dlib source tarball in the apt sources"; exit 1; fi
    log "johns: downloading $DLIB_TARBALL (~10 MB)"
    /usr/lib/apt/apt-helper -o APT::Sandbox::User=root download-file "$uri" "$tarball.part" >&2
    mv "$tarball.part" "$tarball"
  fi
  if ! echo "$DLIB_SHA256  $tarball" | sha256sum -c --status; then
    log "dlib: sha256 of $tarball does not match $DLIB_SHA256; delete it and retry"
    exit 1
  fi
}

# One folder of the tarball's examples/ into $DATA/<name>.
fetch_dlib_example() { # example name
  local dest="$DATA/$2"
  if [ -f "$dest/.complete" ]; then log "$2 present"; return; fi
  dlib_tarball
  local tarball="$CACHE/downloads/$DLIB_TARBALL"
  local tmp; tmp="$(mktemp -d "$CACHE/$2.XXXXXX")"
  tar -xjf "$tarball" -C "$tmp" --wildcards "dlib-19.24+dfsg/examples/$1/*"
  rm -rf "$dest"
  mv "$tmp/dlib-19.24+dfsg/examples/$1" "$dest"
  rm -rf "$tmp"
  touch "$dest/.complete"
  log "$2: $(find "$dest" -name '*.jpg' | wc -l) images"
}

mkdir -p "$DATA"
fetch_fmnist
fetch_dlib_example johns johns
fetch_dlib_example faces dlib-faces
