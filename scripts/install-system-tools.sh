#!/usr/bin/env bash
# Installs the system tools the test suite drives for real (dig, and prometheus with
# promtool for the observability tests), from Debian's packages, before the tests
# start. kubectl is not among them: the tests use the one built from the same
# Kubernetes release as their kube-apiserver (scripts/ensure-kube-tools.sh). Idempotent; ensure-tools.sh does the work (tests also call
# it on demand for what they need).
set -euo pipefail
exec "$(dirname "$0")/ensure-tools.sh" dig prometheus promtool
