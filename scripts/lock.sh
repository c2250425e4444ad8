# Sourced by scripts/fetch-data.sh, swell-data.sh and venv.sh: one run of a
# script at a time per cache. Two `make data` started together (two
# terminals, two clones sharing the cache) otherwise both fetch or derive
# into the same folder and race to replace it. Uses the sourcing script's
# `log`.

# Holds an exclusive flock on file $1 (created if need be) on descriptor 9
# until the script exits (the kernel drops it then, however it ends, so no
# stale lock is ever left). A run that finds it held says so and waits,
# then goes on: it finds what the first one published present and leaves it.
one_run_at_a_time() { # lockfile what
    exec 9> "$1"
    if ! flock -n 9; then
        log "$2: waiting for another run of $(basename "$0") to finish (it holds $1)"
        flock 9
    fi
}
