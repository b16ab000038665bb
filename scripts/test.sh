#!/usr/bin/env bash
# The whole test suite: installs what the tests need, then runs unit and end-to-end tests
# (a real scheduler and daemons on loopback, compiling with the system's gcc in bubblewrap sandboxes).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
swift build --build-tests
swift test --skip-build "$@"
