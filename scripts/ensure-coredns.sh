#!/usr/bin/env bash
# ensure-coredns.sh: builds CoreDNS from the Go module proxy (tools/coredns, pinned in
# its go.mod/go.sum: upstream's coremain with only the plugins the DNS benchmark uses)
# into a cache directory keyed by the CoreDNS and Go versions and by tools/coredns's
# main.go (which picks the plugins), reuses it when the binary is there, and prints
# that directory on stdout (the only thing on stdout; progress goes to stderr).
#
#   dir=$(scripts/ensure-coredns.sh)   # "$dir/coredns"
#
# FEDGATE_TOOLS_CACHE (default ~/.cache/fedgate-tools) sets where the cache lives.
# The conventions are scripts/ensure-kube-tools.sh's; see tools/coredns/README.md.
set -euo pipefail

me=ensure-coredns
root=$(cd "$(dirname "$0")/.." && pwd)
mod="$root/tools/coredns"
# shellcheck source=scripts/tools-cache.sh
. "$root/scripts/tools-cache.sh"

command -v go >/dev/null 2>&1 || { echo "$me: go is not on PATH" >&2; exit 1; }

# Versions come from go.mod (what is built), never from a second list kept by hand.
# (`require X v` on one line, or X inside a require block.)
coredns=$(awk '{ if ($1 == "require") $1 = ""; $0 = $0 }
  $1 == "github.com/coredns/coredns" && $2 ~ /^v/ { print $2; exit }' "$mod/go.mod")
gov=$(go env GOVERSION)
if [ -z "$coredns" ]; then
  echo "$me: cannot read the CoreDNS version from $mod/go.mod" >&2
  exit 1
fi
# main.go chooses the plugins: another list is another binary, so it is in the key.
plugins=$(sha256sum "$mod/main.go" | cut -c1-8)

cache=${FEDGATE_TOOLS_CACHE:-$HOME/.cache/fedgate-tools}
dir="$cache/coredns-$coredns-$gov-$plugins"

complete() { [ -x "$dir/coredns" ]; }
# A lock of its own, so a CoreDNS build does not wait for a Kubernetes one.
tools_cache_open "$me" "$dir" .coredns.lock complete

cd "$mod"
export CGO_ENABLED=0
start=$(date +%s)
echo "$me: downloading modules for CoreDNS $coredns ($gov)" >&2
go mod download
dl=$(($(date +%s) - start))
echo "$me: modules ready in ${dl}s; building coredns" >&2
go build -trimpath -buildvcs=false -ldflags "-s -w" -o "$tools_tmp/coredns" .
total=$(($(date +%s) - start))

tools_cache_close "$dir"
echo "$me: built in ${total}s (module download ${dl}s, compile and link $((total - dl))s); $(du -sh "$dir" | cut -f1) in $dir" >&2
echo "$dir"
