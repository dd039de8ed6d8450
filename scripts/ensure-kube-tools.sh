#!/usr/bin/env bash
# ensure-kube-tools.sh: builds kube-apiserver, etcd and kubectl from the Go module
# proxy (tools/kube, pinned in its go.mod/go.sum) into a cache directory keyed by the
# Kubernetes, etcd and Go versions, reuses them when all three are there, and prints
# that directory on stdout (the only thing on stdout; progress goes to stderr).
#
#   dir=$(scripts/ensure-kube-tools.sh)   # "$dir/kube-apiserver", "$dir/etcd", "$dir/kubectl"
#
# FEDGATE_TOOLS_CACHE (default ~/.cache/fedgate-tools) sets where the cache lives.
# A cold build (empty module and build caches) takes minutes: see tools/kube/README.md.
# Beside them, crds/ holds the MCS API CRDs from sigs.k8s.io/mcs-api, crds/gateway-api/
# the Gateway API's standard-channel CRDs from sigs.k8s.io/gateway-api and
# crds/gateway-api-experimental/ its experimental-channel ones (versions in go.mod).
# Kept apart from scripts/ensure-tools.sh, which installs Debian packages.
set -euo pipefail

me=ensure-kube-tools
root=$(cd "$(dirname "$0")/.." && pwd)
mod="$root/tools/kube"
# shellcheck source=scripts/tools-cache.sh
. "$root/scripts/tools-cache.sh"

command -v go >/dev/null 2>&1 || { echo "$me: go is not on PATH" >&2; exit 1; }

# Versions come from go.mod (what is built), never from a second list kept by hand.
modver() { awk -v m="$1" '$1 == m && $2 ~ /^v/ { print $2; exit }' "$mod/go.mod"; }
kube=$(modver k8s.io/kubernetes)
etcd=$(modver go.etcd.io/etcd/server/v3)
gov=$(go env GOVERSION)
if [ -z "$kube" ] || [ -z "$etcd" ]; then
  echo "$me: cannot read versions from $mod/go.mod" >&2
  exit 1
fi

cache=${FEDGATE_TOOLS_CACHE:-$HOME/.cache/fedgate-tools}
dir="$cache/kube-$kube-etcd-$etcd-$gov"
bins=(kube-apiserver etcd kubectl)

complete() {
  local b
  for b in "${bins[@]}"; do [ -x "$dir/$b" ] || return 1; done
  [ -f "$dir/crds/multicluster.x-k8s.io_serviceexports.yaml" ]
}

# The version the binaries report (upstream sets it the same way, with -X); without it
# kube-apiserver and kubectl would say v0.0.0-master.
major=${kube#v}; minor=${major#*.}; major=${major%%.*}; minor=${minor%%.*}

# The Gateway API CRDs, copied from the module at the version go.mod pins: the standard
# channel into crds/gateway-api, the experimental one into crds/gateway-api-experimental
# (a scenario's gatewayAPIChannel picks one). Added beside binaries already built (a new
# CRD set does not rebuild them; a cache holding only the standard set gets the
# experimental one): each copied into a temporary directory renamed into place, so a
# reader never sees half a set.
gwv=$(modver sigs.k8s.io/gateway-api)
gateway_channel() {
  local into=$1 channel=$2 name=$3 src=$4
  [ "$(cat "$into/crds/$name/VERSION" 2>/dev/null)" = "$gwv" ] && return 0
  local tmp
  tmp=$(mktemp -d "$into/crds/.$name.XXXXXX")
  cp "$src"/config/crd/"$channel"/*.yaml "$tmp/"
  echo "$gwv" >"$tmp/VERSION"
  chmod -R u+w,a+rX "$tmp"
  rm -rf "${into:?}/crds/$name"
  mv -T "$tmp" "$into/crds/$name"
  echo "$me: Gateway API $gwv $channel CRDs copied to $into/crds/$name" >&2
}
gateway_current() {
  [ "$(cat "$1/crds/gateway-api/VERSION" 2>/dev/null)" = "$gwv" ] &&
    [ "$(cat "$1/crds/gateway-api-experimental/VERSION" 2>/dev/null)" = "$gwv" ]
}
gateway_crds() {
  local into=$1
  gateway_current "$into" && return 0
  # Two callers at once: one copies, the other waits and finds the sets there.
  exec 8>"$into/.gateway-api.lock"
  if command -v flock >/dev/null 2>&1; then flock -w 600 8; fi
  gateway_current "$into" && return 0
  local src
  src=$(cd "$mod" && go mod download sigs.k8s.io/gateway-api && go list -m -f '{{.Dir}}' sigs.k8s.io/gateway-api)
  mkdir -p "$into/crds"
  gateway_channel "$into" standard gateway-api "$src"
  gateway_channel "$into" experimental gateway-api-experimental "$src"
}
if complete; then gateway_crds "$dir"; fi

tools_cache_open "$me" "$dir" .build.lock complete

cd "$mod"
export CGO_ENABLED=0
start=$(date +%s)
echo "$me: downloading modules for Kubernetes $kube, etcd $etcd ($gov)" >&2
go mod download
dl=$(($(date +%s) - start))
echo "$me: modules ready in ${dl}s; building kube-apiserver, etcd, kubectl (a cold build takes minutes)" >&2
go build -trimpath -buildvcs=false -ldflags "-s -w \
  -X k8s.io/component-base/version.gitVersion=$kube \
  -X k8s.io/component-base/version.gitMajor=$major \
  -X k8s.io/component-base/version.gitMinor=$minor \
  -X k8s.io/component-base/version.gitTreeState=clean" \
  -o "$tools_tmp/" ./cmd/kube-apiserver ./cmd/etcd ./cmd/kubectl
total=$(($(date +%s) - start))

# The MCS API CRDs (ServiceExport, ServiceImport) as that module publishes them, at the
# version go.mod pins (tools.go imports the package so go.sum holds its checksum).
mcs=$(go list -m -f '{{.Dir}}' sigs.k8s.io/mcs-api)
mkdir -p "$tools_tmp/crds"
cp "$mcs"/config/crd/*.yaml "$tools_tmp/crds/"
chmod -R u+w "$tools_tmp/crds"
gateway_crds "$tools_tmp"

tools_cache_close "$dir"
echo "$me: built in ${total}s (module download ${dl}s, compile and link $((total - dl))s); $(du -sh "$dir" | cut -f1) in $dir" >&2
echo "$dir"
