# shellcheck shell=bash
# tools-cache.sh: sourced by scripts/ensure-kube-tools.sh and scripts/ensure-coredns.sh,
# the cache protocol they share. A build goes to a temporary directory beside the final
# one, renamed into place, so an interrupted build never leaves a directory that looks
# complete; a lock makes a second caller wait and then reuse. Only the directory goes
# to stdout; progress goes to stderr.
#
#   tools_cache_open ME DIR LOCK COMPLETE   # prints DIR and exits if COMPLETE (a function) holds;
#                                           # else sets $tools_tmp, the directory to build into
#   ...build into "$tools_tmp"...
#   tools_cache_close DIR                   # renames it into place

tools_cache_open() {
  local me=$1 dir=$2 lock=$3 complete=$4
  if "$complete"; then
    echo "$me: reusing $dir" >&2
    echo "$dir"
    exit 0
  fi
  mkdir -p "$(dirname "$dir")"
  # Two callers at once (say two test workers): one builds, the other waits and reuses.
  exec 9>"$(dirname "$dir")/$lock"
  if command -v flock >/dev/null 2>&1; then flock -w 3600 9; fi
  if "$complete"; then
    echo "$me: reusing $dir (built meanwhile)" >&2
    echo "$dir"
    exit 0
  fi
  tools_tmp=$(mktemp -d "$(dirname "$dir")/.building.XXXXXX")
  # shellcheck disable=SC2064 # expand now: the path is fixed for this build
  trap "rm -rf '$tools_tmp'" EXIT
}

tools_cache_close() {
  local dir=$1
  chmod 755 "$tools_tmp" # mktemp made it 0700; the binaries are for any user of the cache
  rm -rf "$dir"
  mv "$tools_tmp" "$dir"
  trap - EXIT
}
