#!/usr/bin/env bash
# Installs the system tools the test suite drives for real (kubectl, dig, and
# prometheus with promtool for the observability tests), from Debian's packages,
# before the tests start. Idempotent; ensure-tools.sh does the work (tests also call
# it on demand for what they need).
set -euo pipefail
exec "$(dirname "$0")/ensure-tools.sh" kubectl dig prometheus promtool
