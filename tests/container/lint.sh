#!/usr/bin/env bash
# Lints the whole Dockerfile with dockerfile-utils (the linter behind VS Code's Dockerfile support,
# from npm). Any diagnostic, warning or error, fails. The linter is installed once into a git-ignored
# cache folder (build-container/lint/ by default; QA_CONTAINER_LINT_DIR overrides).
# Usage: tests/container/lint.sh [DOCKERFILE]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dockerfile=${1:-$root/Dockerfile}
version=0.16.3
prefix=${QA_CONTAINER_LINT_DIR:-$root/build-container/lint}
bin=$prefix/node_modules/.bin/dockerfile-utils

if ! command -v npm >/dev/null; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "lint: npm is missing (apt-get install nodejs npm)" >&2
    exit 1
  fi
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
if [ ! -x "$bin" ] || ! "$bin" --version 2>/dev/null | grep -q "version $version "; then
  mkdir -p "$prefix"
  npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error "dockerfile-utils@$version" >&2
fi

# Human-readable report (exit code 1 only on errors), then a count that includes warnings.
"$bin" lint "$dockerfile" || true
count=$("$bin" lint --json "$dockerfile" | node -e \
  'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).length))')
if [ "$count" != 0 ]; then
  echo "lint: $count diagnostic(s) in $dockerfile (dockerfile-utils $version)" >&2
  exit 1
fi
echo "lint: $dockerfile clean (dockerfile-utils $version)"
