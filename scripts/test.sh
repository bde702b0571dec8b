#!/usr/bin/env bash
# Installs what is missing, builds everything and runs the whole test suite (unit + end-to-end).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh -DQA_BUILD_TESTS=ON
ctest --test-dir build --output-on-failure --parallel "$(nproc)" --timeout 900
