#!/usr/bin/env bash
# Prints the absolute folder where cargo puts what it builds, so that the
# Makefile, scripts and benches find the binaries there. Cargo's own answer
# honours CARGO_TARGET_DIR, CARGO_BUILD_TARGET_DIR and build.target-dir in a
# .cargo/config.toml; a relative one is taken from the repository root,
# where `make` runs cargo. Without a working cargo (a GPU machine given only
# the binaries): $CARGO_TARGET_DIR, else ./target.
set -uo pipefail
cd "$(dirname "$0")/.."
dir=$(${CARGO:-cargo} metadata --format-version 1 --no-deps 2>/dev/null |
      grep -o '"target_directory":"[^"]*"' | head -n 1 | cut -d'"' -f4)
if [[ -z $dir ]]; then
    dir=${CARGO_TARGET_DIR:-target}
    [[ $dir == /* ]] || dir=$PWD/$dir
fi
# Tidy (cargo keeps "a/../b"); GNU realpath only, so the raw path otherwise.
realpath -ms -- "$dir" 2>/dev/null || echo "$dir"
