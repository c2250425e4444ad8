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
# sha256 of each file's uncompressed bytes (Fashion-MNIST's own, whatever
# gzip made the .gz). A copy checked against them is recorded in the
# folder's SHA256SUMS, which every later run checks (0.1 s).
FMNIST_SHA="train-images-idx3-ubyte:c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888
train-labels-idx1-ubyte:bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9
t10k-images-idx3-ubyte:5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b
t10k-labels-idx1-ubyte:0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"
# sha256 of each dlib folder's file list (dlib_listing below: every file's
# sha256, as in the tarball). The list is kept as the folder's SHA256SUMS,
# which every later run checks (0.01 s): a file gone bad, or one added that
# it does not list, is named and the folder extracted again (an added file
# is first moved aside into $CACHE/set-aside, not deleted).
JOHNS_LIST_SHA="ea221fae70b97ac38757eba2dc53ff8ef720b9e4a5fc93a090fcbe288a5afdc1"
FACES_LIST_SHA="1fb5daa0a6b541178de9c4282f9e6174ccc603ecb90b80adf08a7db7f784e85b"

log() { echo "likeness data: $*" >&2; }
# sums_bad (what is missing, damaged or extra in a folder), set_aside, and
# one_run_at_a_time.
source "$(dirname "$0")/sums.sh"
source "$(dirname "$0")/lock.sh"
# Scratch folders of an unfinished step, removed however the script ends.
scratch=()
trap 'rm -rf "${scratch[@]}"' EXIT

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

# The .gz files of folder $1 that are missing or whose contents differ from
# the pins, space-separated (none: all good).
fmnist_bad() {
  local line got
  for line in $FMNIST_SHA; do
    got=$(gzip -cd "$1/${line%%:*}.gz" 2>/dev/null | sha256sum | cut -c1-64 || true)
    [ "$got" = "${line#*:}" ] || printf '%s.gz ' "${line%%:*}"
  done
}

# Copy the four files from folder $1 (checked) into the cache; SHA256SUMS last.
install_fmnist() {
  local dest="$DATA/fashion-mnist" bad f
  bad=$(fmnist_bad "$1")
  [ -z "$bad" ] || { log "fashion-mnist: ${bad% } in $1 missing or not the pinned sha256; not installed"; exit 1; }
  mkdir -p "$dest"
  rm -f "$dest/SHA256SUMS"
  for f in $FMNIST_FILES; do cp "$1/$f" "$dest/$f.tmp" && mv "$dest/$f.tmp" "$dest/$f"; done
  fmnist_recorded "$dest"
}
fmnist_recorded() { (cd "$1" && sha256sum $FMNIST_FILES > SHA256SUMS.part && mv SHA256SUMS.part SHA256SUMS); }

fetch_fmnist() {
  local dest="$DATA/fashion-mnist" bad
  if [ -f "$dest/SHA256SUMS" ] && (cd "$dest" && sha256sum -c --status SHA256SUMS 2>/dev/null); then
    log "fashion-mnist present"; return
  fi
  if [ -d "$dest" ]; then
    # Unrecorded (an older cache) or changed since: check the contents.
    bad=$(fmnist_bad "$dest")
    if [ -z "$bad" ]; then fmnist_recorded "$dest"; log "fashion-mnist present (checked)"; return; fi
    log "fashion-mnist: ${bad% } in $dest missing or damaged; fetching again"
  fi
  if [ -z "$(fmnist_bad /usr/share/datasets/fashion-mnist)" ]; then
    log "fashion-mnist: copying from the installed Debian package"
    install_fmnist /usr/share/datasets/fashion-mnist
    return
  fi
  private_apt
  local tmp; tmp="$(mktemp -d "$CACHE/fmnist.XXXXXX")"; scratch+=("$tmp")
  log "fashion-mnist: downloading Debian package dataset-fashion-mnist"
  (cd "$tmp" && apt-get "${apt_opts[@]}" -qq download dataset-fashion-mnist >&2)
  dpkg-deb -x "$tmp"/dataset-fashion-mnist_*.deb "$tmp/x"
  install_fmnist "$tmp/x/usr/share/datasets/fashion-mnist"
  rm -rf "$tmp"
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

# The sha256 of every file of folder $1 (its records aside), by path.
dlib_listing() {
  (cd "$1" && find . -type f ! -name SHA256SUMS ! -name SHA256SUMS.part ! -name .complete -print0 \
    | LC_ALL=C sort -z | xargs -0 -r sha256sum)
}
# Whether folder $1's SHA256SUMS is the pinned list $2.
dlib_recorded() { [ -f "$1/SHA256SUMS" ] && [ "$(sha256sum < "$1/SHA256SUMS" | cut -c1-64)" = "$2" ]; }
# Whether folder $1 holds the files whose list has sha256 $2 (recording the
# list in its SHA256SUMS if not there yet); if not, names what is wrong.
dlib_ok() { # dir list-sha name
  local sums="$1/SHA256SUMS" bad
  if dlib_recorded "$1" "$2"; then
    bad=$(sums_bad "$1" SHA256SUMS)
    [ -z "$bad" ] && return 0
    log "$3: $bad (in $1); fetching again"; return 1
  fi
  [ -d "$1" ] || return 1
  # Unrecorded (an older cache) or its record changed: check the contents.
  if [ "$(dlib_listing "$1" | sha256sum | cut -c1-64)" = "$2" ]; then
    dlib_listing "$1" > "$sums.part" && mv "$sums.part" "$sums"
    log "$3 present (checked)"; return 2
  fi
  log "$3: the files in $1 are not the pinned ones (missing, damaged or extra); fetching again"
  return 1
}

# One folder of the tarball's examples/ into $DATA/<name>, checked against
# its pinned file list; a folder gone bad is named and extracted again.
fetch_dlib_example() { # example name list-sha
  local dest="$DATA/$2" rc=0 bad
  dlib_ok "$dest" "$3" "$2" || rc=$?
  if [ $rc = 0 ]; then log "$2 present"; return; fi
  if [ $rc = 2 ]; then return; fi
  dlib_tarball
  local tarball="$CACHE/downloads/$DLIB_TARBALL"
  local tmp; tmp="$(mktemp -d "$CACHE/$2.XXXXXX")"; scratch+=("$tmp")
  tar -xjf "$tarball" -C "$tmp" --wildcards "dlib-19.24+dfsg/examples/$1/*"
  local new="$tmp/dlib-19.24+dfsg/examples/$1"
  dlib_listing "$new" > "$tmp/SHA256SUMS"
  if [ "$(sha256sum < "$tmp/SHA256SUMS" | cut -c1-64)" != "$3" ]; then
    log "$2: examples/$1 of $tarball is not the pinned file list; not installed"; exit 1
  fi
  mv "$tmp/SHA256SUMS" "$new/SHA256SUMS"
  touch "$new/.complete"
  # A folder whose record was not the pinned one: name what was wrong in it.
  if [ -d "$dest" ] && ! dlib_recorded "$dest" "$3"; then
    bad=$(sums_bad "$dest" "$new/SHA256SUMS")
    [ -z "$bad" ] || log "$2: it had $bad"
  fi
  set_aside "$dest" "$new/SHA256SUMS" "$CACHE/set-aside" "$2"
  rm -rf "$dest"
  mv "$new" "$dest"
  rm -rf "$tmp"
  log "$2: $(find "$dest" -name '*.jpg' | wc -l) images"
}

mkdir -p "$DATA"
# One run at a time: a second `make data` started beside the first waits
# here, then finds the sets present, rather than fetching them again into
# the same scratch and cache folders and racing the first to replace them.
one_run_at_a_time "$DATA/.fetch-data.lock" "data"
fetch_fmnist
fetch_dlib_example johns johns "$JOHNS_LIST_SHA"
fetch_dlib_example faces dlib-faces "$FACES_LIST_SHA"
