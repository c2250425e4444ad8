# Sourced by scripts/fetch-data.sh and scripts/swell-data.sh: a data folder
# checked against the SHA256SUMS that lists its files (paths as sha256sum
# writes them, "./" or not). Uses the sourcing script's `log`.

# The files in folder $1 that SHA256SUMS file $2 (a path from $1) does not
# list, one a line: a user's own photo copied in, say, which would otherwise
# join the set unnoticed and change what is trained and measured on it. The
# folder's own records (SHA256SUMS, .complete) aside.
sums_extra() { # dir sums
    (cd "$1" && LC_ALL=C comm -13 \
        <(cut -c67- "$2" | sed 's|^\./||' | LC_ALL=C sort -u) \
        <(find . ! -type d ! -path ./SHA256SUMS ! -path ./SHA256SUMS.part ! -path ./.complete \
            | sed 's|^\./||' | LC_ALL=C sort))
}

# What is wrong with folder $1 against SHA256SUMS file $2, as
# "a missing, b damaged, c extra" (none: all good).
sums_bad() { # dir sums
    {
        (cd "$1" && sha256sum -c --quiet "$2" 2>/dev/null || true) \
            | sed -E 's/^\.\///; s/: FAILED open or read$/ missing/; s/: FAILED$/ damaged/'
        sums_extra "$1" "$2" | sed 's/$/ extra/'
    } | paste -sd, - | sed 's/,/, /g'
}

# Before cache folder $1 is replaced by a fresh copy of the set listed in
# $2: the files it holds that the list does not are moved, under the same
# paths, into a new folder $3/$4.XXXXXX and that folder named, so that a
# user's own files are kept rather than deleted with the folder. A folder
# that is a link is left alone: replacing it removes only the link.
set_aside() { # dir sums into name
    [[ -d $1 && ! -L $1 ]] || return 0
    local extra to f
    extra=$(sums_extra "$1" "$2")
    [[ -n $extra ]] || return 0
    mkdir -p "$3"
    to=$(mktemp -d "$3/$4.XXXXXX")
    while IFS= read -r f; do
        mkdir -p "$to/$(dirname "$f")"
        mv -- "$1/$f" "$to/$f"
    done <<< "$extra"
    log "$4: $(wc -l <<< "$extra") file(s) not part of the set moved to $to (yours? take them from there)"
}
