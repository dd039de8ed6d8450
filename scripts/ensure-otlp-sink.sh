#!/usr/bin/env bash
# ensure-otlp-sink.sh: builds tools/otelcol (the OpenTelemetry Collector's OTLP receiver
# with a consumer that writes the spans it accepts as OTLP JSON lines; pinned in its
# go.mod/go.sum) into a cache directory keyed by the receiver and Go versions and by
# main.go, reuses it when the binary is there, and prints that directory on stdout (the
# only thing on stdout; progress goes to stderr).
#
#   dir=$(scripts/ensure-otlp-sink.sh)   # "$dir/otlp-sink"
#
# FEDGATE_TOOLS_CACHE (default ~/.cache/fedgate-tools) sets where the cache lives.
# The conventions are scripts/ensure-kube-tools.sh's; see tools/otelcol/README.md.
set -euo pipefail

me=ensure-otlp-sink
root=$(cd "$(dirname "$0")/.." && pwd)
mod="$root/tools/otelcol"
# shellcheck source=scripts/tools-cache.sh
. "$root/scripts/tools-cache.sh"

command -v go >/dev/null 2>&1 || { echo "$me: go is not on PATH" >&2; exit 1; }

# Versions come from go.mod (what is built), never from a second list kept by hand.
receiver=$(awk '{ if ($1 == "require") $1 = ""; $0 = $0 }
  $1 == "go.opentelemetry.io/collector/receiver/otlpreceiver" && $2 ~ /^v/ { print $2; exit }' "$mod/go.mod")
gov=$(go env GOVERSION)
if [ -z "$receiver" ]; then
  echo "$me: cannot read the otlpreceiver version from $mod/go.mod" >&2
  exit 1
fi
main=$(sha256sum "$mod/main.go" | cut -c1-8)

cache=${FEDGATE_TOOLS_CACHE:-$HOME/.cache/fedgate-tools}
dir="$cache/otlp-sink-$receiver-$gov-$main"

complete() { [ -x "$dir/otlp-sink" ]; }
tools_cache_open "$me" "$dir" .otlp-sink.lock complete

cd "$mod"
export CGO_ENABLED=0
start=$(date +%s)
echo "$me: downloading modules for otlpreceiver $receiver ($gov)" >&2
go mod download
dl=$(($(date +%s) - start))
echo "$me: modules ready in ${dl}s; building otlp-sink" >&2
go build -trimpath -buildvcs=false -ldflags "-s -w" -o "$tools_tmp/otlp-sink" .
total=$(($(date +%s) - start))

tools_cache_close "$dir"
echo "$me: built in ${total}s (module download ${dl}s, compile and link $((total - dl))s); $(du -sh "$dir" | cut -f1) in $dir" >&2
echo "$dir"
