#!/usr/bin/env bash
# Installs the Debian 12 packages qa-train needs to build, test and run (only those missing).
# OpenBLAS (OpenMP flavour, matching LibTorch's libgomp) replaces the 10-25x slower reference BLAS
# that LibTorch's matrix products use otherwise. libgloo-dev: the headers c10d's Gloo backend needs.
set -euo pipefail
# Options add what CI needs besides: --fuzz (clang's libFuzzer for tests/fuzz), --container
# (podman, buildah, debootstrap for tests/container), --report (headless Chromium to render the report).
# python3-protobuf: the independent decoder of TensorBoard event files in the tests.
packages=(cmake ninja-build g++ pkg-config libtorch-dev libsentencepiece-dev nlohmann-json3-dev libcli11-dev
          libspdlog-dev libgtest-dev libopenblas0-openmp libgloo-dev python3-protobuf)
for opt in "$@"; do
  case "$opt" in
    --fuzz) packages+=(clang libclang-rt-14-dev) ;;
    --container) packages+=(podman buildah debootstrap) ;;
    --report) packages+=(chromium) ;;
    *) echo "install-deps: unknown option $opt (use --fuzz, --container, --report)" >&2; exit 2 ;;
  esac
done
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "install-deps: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
