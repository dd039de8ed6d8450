#!/usr/bin/env bash
# Installs the system tools the test suite drives for real, from Debian's packages.
# Idempotent: does nothing when they are already there. Needs root for apt-get.
set -euo pipefail

missing=()
command -v kubectl >/dev/null 2>&1 || missing+=(kubernetes-client)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-system-tools: need root to install: ${missing[*]}" >&2
  exit 1
fi
echo "install-system-tools: installing ${missing[*]}" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
