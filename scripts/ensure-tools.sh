#!/usr/bin/env bash
# ensure-tools.sh TOOL...: makes sure each named system tool is installed, from
# Debian's packages. Tests and benchmarks call it before driving a real tool, so it
# is silent and quick when everything is there, and otherwise either installs what
# is missing or exits non-zero naming the tool that could not be had.
#
#   scripts/ensure-tools.sh dig dnsperf knotd
#
# Known tools (tool → Debian package, alternatives in order):
#   dig → bind9-dnsutils | dnsutils     kdig → knot-dnsutils
#   dnsperf → dnsperf                   knotd, knotc → knot
#   kubectl → kubectl | kubernetes-client        wrk → wrk
#   nginx → nginx                       chromium → chromium
#   curl → curl                         h2load → nghttp2-client
#   prometheus, promtool → prometheus
set -euo pipefail

me=ensure-tools

packages_for() {
  case "$1" in
    dig | nslookup | host) echo "bind9-dnsutils dnsutils" ;;
    kdig | khost) echo "knot-dnsutils" ;;
    dnsperf) echo "dnsperf" ;;
    knotd | knotc) echo "knot" ;;
    kubectl) echo "kubectl kubernetes-client" ;;
    wrk) echo "wrk" ;;
    nginx) echo "nginx" ;;
    curl) echo "curl" ;;
    h2load) echo "nghttp2-client" ;;
    shellcheck) echo "shellcheck" ;;
    chromium) echo "chromium" ;;
    prometheus | promtool) echo "prometheus" ;;
    *) return 1 ;;
  esac
}

# Daemons live in sbin, which a non-login PATH (CI, a child of Node) may lack.
have() {
  command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]
}

if [ $# -eq 0 ]; then
  echo "usage: $me TOOL... (e.g. $me dig dnsperf knotd)" >&2
  exit 2
fi

missing=()
for tool in "$@"; do
  if ! packages_for "$tool" >/dev/null; then
    echo "$me: unknown tool '$tool': add it to the map in $0" >&2
    exit 2
  fi
  have "$tool" || missing+=("$tool")
done
[ ${#missing[@]} -eq 0 ] && exit 0

# Installing needs root (or password-less sudo; CI has no stdin to type one).
if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  echo "$me: missing ${missing[*]}, and installing needs root (or password-less sudo)" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "$me: missing ${missing[*]}, and there is no apt-get to install it with" >&2
  exit 1
fi

# Two test workers may need a tool at once: one installs, the other waits and
# then finds it there. The dpkg lock timeout covers anyone else using apt.
lock=/tmp/fedgate-ensure-tools.lock
exec 9>"$lock"
if command -v flock >/dev/null 2>&1; then flock -w 600 9 || true; fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT

# Daemons (prometheus, nginx, knot) are installed to be run by tests on ports of their
# own, never as services: Debian's would start on the package's default port (prometheus
# on 9090, nginx on 80) and stay running. Without a policy-rc.d of its own the machine
# gets one saying "do not start" (exit 101) for the length of the install.
policy=/usr/sbin/policy-rc.d
apt_install() {
  local ours=no status=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# ensure-tools.sh: no service starts while tools install\nexit 101\n' |
      "${as_root[@]}" tee "$policy" >/dev/null && "${as_root[@]}" chmod 755 "$policy" && ours=yes
  fi
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
    --no-install-recommends -o DPkg::Lock::Timeout=300 "$@" >>"$log" 2>&1 || status=$?
  if [ "$ours" = yes ]; then "${as_root[@]}" rm -f "$policy"; fi
  return "$status"
}
updated=no
apt_update() {
  [ "$updated" = yes ] && return 0
  updated=yes
  echo "$me: apt-get update (package lists missing or stale)" >&2
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q \
    -o DPkg::Lock::Timeout=300 >>"$log" 2>&1
}
# An install that fails because apt does not know the package (no lists yet, or
# lists older than the mirror's files) is retried once after an update.
lists_problem() {
  grep -qE "Unable to locate package|has no installation candidate|Failed to fetch|404 +Not Found" "$log"
}

for tool in "${missing[@]}"; do
  have "$tool" && continue # installed meanwhile, by another worker or an earlier package
  read -r -a candidates <<<"$(packages_for "$tool")"
  ok=no
  for pkg in "${candidates[@]}"; do
    echo "$me: installing $pkg (for $tool)" >&2
    : >"$log"
    if apt_install "$pkg"; then
      ok=yes
    elif lists_problem && apt_update && apt_install "$pkg"; then
      ok=yes
    fi
    [ "$ok" = yes ] && break
  done
  if [ "$ok" != yes ]; then
    echo "$me: could not install $tool (tried packages: ${candidates[*]}); apt-get said:" >&2
    tail -n 15 "$log" >&2
    exit 1
  fi
  if ! have "$tool"; then
    echo "$me: installed ${candidates[*]} but $tool is still not on PATH" >&2
    exit 1
  fi
done
