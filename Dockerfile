# qa-train container images.
#
#   docker build -t qa-train .                  CUDA image (the default target: the last stage, `cuda`)
#   docker build --target cpu -t qa-train:cpu .  CPU image with Debian 13's LibTorch 2.6
#
# Both targets go through the same stages with the same paths and build commands; only the base
# images and where LibTorch comes from differ:
#
#   stage        CPU (Debian 13, LibTorch 2.6 from apt)   CUDA (NVIDIA CUDA image, official LibTorch zip)
#   deps         cpu-deps                                 deps
#   build        cpu-build                                build      Release build, installed into /stage
#   test         cpu-test                                 test       ctest: unit and end-to-end tests
#   runtime      cpu                                      cuda       only what the binary needs
#
# The runtime stage copies /stage from the test stage, so an image is only made when the tests pass.
# Installed layout: /usr/local/bin/qa-train (also /app/qa-train), its SentencePiece plugin in
# /usr/local/lib/qa-train/ (found from the executable's own folder), /app/configs/, the demo data in
# /app/data/, /app/models/ (mount pretrained model folders here) and /app/output/ (a VOLUME).
# It runs as any uid, in any working directory, with a read-only root file system (Singularity /
# Apptainer): qa-train writes only under output.dir (/app/output) and needs no HOME.

# ---- versions (all pinned) ------------------------------------------------------------------------
# CPU: any Debian 13 image; CI passes a locally imported one (tests/container/run.sh).
ARG BASE=debian:trixie-slim
# CUDA: builder nvidia/cuda:${CUDA_VERSION}-cudnn-devel-${CUDA_OS}, runtime
# nvidia/cuda:${CUDA_VERSION}-${CUDA_RUNTIME}-${CUDA_OS}. LibTorch's zip carries its own copies of the
# CUDA libraries it links, so CUDA_RUNTIME=base (much smaller) should do too (not tested yet).
ARG CUDA_VERSION=12.6.3
ARG CUDA_OS=ubuntu24.04
ARG CUDA_RUNTIME=runtime
# Official LibTorch for that CUDA release, C++11 ABI (the ABI of the distribution's libraries).
ARG TORCH_VERSION=2.6.0
ARG TORCH_CUDA=cu126

# ================================ CPU: Debian 13, LibTorch 2.6 ===================================
FROM ${BASE} AS cpu-deps
ENV DEBIAN_FRONTEND=noninteractive
# OpenBLAS (OpenMP build, matching LibTorch's libgomp) instead of the much slower reference BLAS.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      cmake ninja-build g++ pkg-config libtorch-dev libsentencepiece-dev nlohmann-json3-dev \
      libcli11-dev libspdlog-dev libgtest-dev libgloo-dev libopenblas0-openmp \
 && rm -rf /var/lib/apt/lists/*

FROM cpu-deps AS cpu-build
ARG JOBS=
WORKDIR /src
# configs/demo.json is compiled in (the built-in default config), so it is needed to configure.
COPY CMakeLists.txt ./
COPY configs/ configs/
COPY include/ include/
COPY src/ src/
COPY tests/ tests/
COPY bench/ bench/
RUN cmake -S /src -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release -DQA_BUILD_TESTS=ON \
      -DCMAKE_INSTALL_PREFIX=/usr/local -DCMAKE_INSTALL_LIBDIR=lib \
 && cmake --build /build --parallel "${JOBS:-$(nproc)}" \
 && DESTDIR=/stage cmake --install /build --strip

FROM cpu-build AS cpu-test
ARG JOBS=
# The end-to-end tests read the demo data and README.md (the config table must match the schema).
COPY data/ data/
COPY README.md ./
RUN ctest --test-dir /build --output-on-failure --timeout 900 --parallel "${JOBS:-$(nproc)}"

FROM ${BASE} AS cpu
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libtorch2.6 libopenblas0-openmp libsentencepiece0 libspdlog1.15 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=cpu-test /stage/ /
COPY configs/ /app/configs/
COPY data/ /app/data/
RUN if ldd /usr/local/bin/qa-train /usr/local/lib/qa-train/libqa_spm.so | grep 'not found'; then exit 1; fi \
 && ln -s /usr/local/bin/qa-train /app/qa-train \
 && mkdir -p /app/output /app/models \
 && chmod 1777 /app/output \
 && qa-train --version
WORKDIR /app
VOLUME ["/app/output"]
USER 1000:1000
ENTRYPOINT ["/usr/local/bin/qa-train"]
CMD ["--config", "/app/configs/demo.json"]
ARG BASE
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="qa-train" \
      org.opencontainers.image.description="Fine-tunes T5 / Flan-T5 for question answering (C++17, LibTorch 2.6, CPU)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.base.name="${BASE}"

# ================================ CUDA: NVIDIA image, official LibTorch ==========================
FROM docker.io/nvidia/cuda:${CUDA_VERSION}-cudnn-devel-${CUDA_OS} AS deps
ARG TORCH_VERSION
ARG TORCH_CUDA
# Optional: the zip's SHA-256, checked when given.
ARG TORCH_SHA256=
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      cmake ninja-build g++ pkg-config libsentencepiece-dev nlohmann-json3-dev \
      libcli11-dev libspdlog-dev libgtest-dev ca-certificates curl unzip \
 && rm -rf /var/lib/apt/lists/*
RUN curl -fsSL -o /tmp/libtorch.zip \
      "https://download.pytorch.org/libtorch/${TORCH_CUDA}/libtorch-cxx11-abi-shared-with-deps-${TORCH_VERSION}%2B${TORCH_CUDA}.zip" \
 && if [ -n "${TORCH_SHA256}" ]; then echo "${TORCH_SHA256}  /tmp/libtorch.zip" | sha256sum -c -; fi \
 && unzip -q /tmp/libtorch.zip -d /opt \
 && rm /tmp/libtorch.zip
# qa-train has no CUDA sources of its own; these tell LibTorch's CMake config (and CMake) which GPUs
# to target instead of probing for one: A100 (sm_80) and H100 (sm_90).
ENV CMAKE_PREFIX_PATH=/opt/libtorch \
    TORCH_CUDA_ARCH_LIST="8.0;9.0" \
    CUDAARCHS="80;90"

FROM deps AS build
ARG JOBS=
WORKDIR /src
COPY CMakeLists.txt ./
COPY configs/ configs/
COPY include/ include/
COPY src/ src/
COPY tests/ tests/
COPY bench/ bench/
RUN cmake -S /src -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release -DQA_BUILD_TESTS=ON \
      -DCMAKE_INSTALL_PREFIX=/usr/local -DCMAKE_INSTALL_LIBDIR=lib \
 && cmake --build /build --parallel "${JOBS:-$(nproc)}" \
 && DESTDIR=/stage cmake --install /build --strip

# No GPU while building: the tests run on the CPU (device auto falls back to it).
FROM build AS test
ARG JOBS=
COPY data/ data/
COPY README.md ./
RUN ctest --test-dir /build --output-on-failure --timeout 900 --parallel "${JOBS:-$(nproc)}"

FROM docker.io/nvidia/cuda:${CUDA_VERSION}-${CUDA_RUNTIME}-${CUDA_OS} AS cuda
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libgomp1 libsentencepiece0 libspdlog1.12 \
 && rm -rf /var/lib/apt/lists/*
# LibTorch's shared libraries (they bundle the CUDA libraries they were built with).
COPY --from=build /opt/libtorch/lib/ /opt/libtorch/lib/
RUN echo /opt/libtorch/lib > /etc/ld.so.conf.d/libtorch.conf && ldconfig
COPY --from=test /stage/ /
COPY configs/ /app/configs/
COPY data/ /app/data/
RUN if ldd /usr/local/bin/qa-train /usr/local/lib/qa-train/libqa_spm.so | grep 'not found'; then exit 1; fi \
 && ln -s /usr/local/bin/qa-train /app/qa-train \
 && mkdir -p /app/output /app/models \
 && chmod 1777 /app/output \
 && qa-train --version
WORKDIR /app
VOLUME ["/app/output"]
USER 1000:1000
ENTRYPOINT ["/usr/local/bin/qa-train"]
CMD ["--config", "/app/configs/demo.json"]
ARG CUDA_VERSION
ARG CUDA_OS
ARG CUDA_RUNTIME
ARG TORCH_VERSION
ARG TORCH_CUDA
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="qa-train" \
      org.opencontainers.image.description="Fine-tunes T5 / Flan-T5 for question answering (C++17, LibTorch ${TORCH_VERSION}+${TORCH_CUDA}, CUDA ${CUDA_VERSION})" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.base.name="docker.io/nvidia/cuda:${CUDA_VERSION}-${CUDA_RUNTIME}-${CUDA_OS}"
