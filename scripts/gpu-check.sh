#!/usr/bin/env bash
# One visit to a lent GPU machine (the `device` tool), prepared so that it fits one call: build
# against that machine's PyTorch (its LibTorch), run the LibTorch tests (CudaMemory needs the GPU),
# check CUDA against CPU on the Hugging Face fixture, train the demo briefly on CUDA, and run
# `qa-train bench` beside the Hugging Face reference (bench/hf_reference.py) in bf16.
# Everything lands under $OUT in at most six files (the tool brings back eight); the last lines
# printed are a summary table.
#
# Here, once:   bash ../shared/device/pack-deps.sh .devdeps      (.gitignore already ignores it)
# Then:         run(command="bash scripts/gpu-check.sh", carry=[".devdeps"], timeout_s=540)
set -uo pipefail
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
D=$PWD/.devdeps
PY=/opt/torch/.venv/bin/python3
[ -x "$PY" ] || PY=python3
[ -d /usr/local/cuda/bin ] && export PATH=/usr/local/cuda/bin:$PATH
P=$("$PY" -c 'import torch; print(torch.utils.cmake_prefix_path)')
export PKG_CONFIG_PATH=$D/lib/x86_64-linux-gnu/pkgconfig:$D/share/pkgconfig
export LD_LIBRARY_PATH=$D/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
export QA_TRAIN_SPM_PLUGIN=$PWD/build-gpu/libqa_spm.so
S=$OUT/summary.txt
t0=$(date +%s)
note() { echo "== [$(( $(date +%s) - t0 )) s] $*" | tee -a "$S"; }

note "machine"
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  "$PY" -c 'import torch, transformers; print("torch", torch.__version__, "cuda", torch.version.cuda, "transformers", transformers.__version__)'
  g++ --version | head -1; cmake --version | head -1; command -v nvcc && nvcc --version | tail -1; } 2>&1 | tee -a "$S"

note "build qa-train and qa_tests_torch (torch prefix $P)"
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$D;$P" \
  -DCMAKE_GTEST_DISCOVER_TESTS_DISCOVERY_MODE=PRE_TEST > "$OUT/build.log" 2>&1 &&
  cmake --build build-gpu -j "$(nproc)" --target qa-train qa_tests_torch -- -k 0 >> "$OUT/build.log" 2>&1 ||
  grep -E "error:|CMake Error" "$OUT/build.log" | head -30 | tee -a "$S"
[ -x build-gpu/qa-train ] || exit 1

note "bench: qa-train vs transformers, bf16, batch 32, source 512, target 64"
for shape in flan-t5-base flan-t5-small; do
  for side in qa hf; do
    if [ $side = qa ]; then cmd=(build-gpu/qa-train bench); else cmd=("$PY" bench/hf_reference.py); fi
    echo "--- $side $shape" >> "$OUT/bench.log"
    timeout 100 "${cmd[@]}" --shape "$shape" --batch 32 --src-len 512 --tgt-len 64 --steps 10 --device cuda \
      --precision bf16 $([ $side = qa ] && echo --json) > "$OUT/$side-$shape.out" 2>> "$OUT/bench.log"
    cat "$OUT/$side-$shape.out" >> "$OUT/bench.log"
    tail -1 "$OUT/$side-$shape.out" > "/tmp/$side-$shape.json"; rm -f "$OUT/$side-$shape.out"
  done
done
note "CUDA vs CPU: eval of the Hugging Face fixture on data/validation.jsonl"
for dp in "cpu fp32" "cuda fp32" "cuda bf16"; do
  set -- $dp
  printf '%s %s: ' "$1" "$2" | tee -a "$S"
  timeout 60 build-gpu/qa-train eval --model tests/fixtures/hf-flan-tiny --data data/validation.jsonl \
    --device "$1" --precision "$2" 2>> "$OUT/demo.log" | tail -1 | tee -a "$S"
done

note "demo training on CUDA, 1,000 steps"
timeout 90 build-gpu/qa-train --config configs/demo.json --device cuda --set train.max_steps=1000 \
  --set eval.every_steps=500 --set output.dir=/tmp/demo-cuda >> "$OUT/demo.log" 2>&1
echo "exit $?" | tee -a "$S"
grep -E "cuda|device|steps/s|tok/s|exact|done|error" "$OUT/demo.log" | tail -8 | tee -a "$S"
tail -3 /tmp/demo-cuda/logs/metrics.jsonl 2>/dev/null | cut -c1-400 | tee -a "$S"

note "LibTorch tests (all of qa_tests_torch; CudaMemory uses the GPU)"
if [ -x build-gpu/tests/qa_tests_torch ]; then
  timeout 100 build-gpu/tests/qa_tests_torch > "$OUT/tests.log" 2>&1
  echo "exit $?" | tee -a "$S"
  grep -E "^\[  (PASSED|FAILED|SKIPPED) |^\[  FAILED  \]|tests ran" "$OUT/tests.log" | tail -12 | tee -a "$S"
fi

note "summary"
"$PY" - <<'PYEOF' | tee -a "$S"
import json
print("| shape | qa-train ms/step | HF ms/step | train ratio | qa-train MFU | gen ratio | peak MiB qa / HF |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for shape in ("flan-t5-base", "flan-t5-small"):
    try:
        q = json.load(open("/tmp/qa-%s.json" % shape))
        h = json.load(open("/tmp/hf-%s.json" % shape))
    except Exception as e:
        print("| %s | missing: %s |" % (shape, e))
        continue
    print("| %s | %.1f | %.1f | %.2fx | %.3f | %.2fx | %.0f / %.0f |" % (
        shape, q["ms_per_step"], h["ms_per_step"], h["ms_per_step"] / q["ms_per_step"], q["mfu"],
        q["gen_tokens_per_sec"] / h["gen_tokens_per_sec"], q["peak_mem_mb"], h["peak_mem_mb"]))
    print("qa-train:", json.dumps({k: q.get(k) for k in ("attention", "peak_tflops", "step_tflops", "tokens_per_sec", "gen_tokens_per_sec", "libtorch")}))
    print("HF:", json.dumps({k: h.get(k) for k in ("impl", "tokens_per_sec", "gen_tokens_per_sec")}))
PYEOF
