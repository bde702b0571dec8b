#!/usr/bin/env bash
# The quick start: install what is missing, build, and train the demo model (configs/demo.json).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
./build/qa-train --config configs/demo.json "$@"
