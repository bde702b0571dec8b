#!/usr/bin/env bash
# One visit to a lent GPU machine (the `device` tool), prepared so that it fits one call: build
# against that machine's PyTorch (its LibTorch), run the LibTorch tests (CudaMemory needs the GPU),
# check CUDA against CPU on the Hugging Face fixture, train the demo briefly on CUDA, and run
# `qa-train bench` (eager and with CUDA graphs) beside the Hugging Face reference
# (bench/hf_reference.py) in bf16.
# Everything lands under $OUT in at most six files (the tool brings back eight); the last lines
# printed are a summary table.
#
# Here, once:   bash ../shared/device/pack-deps.sh .devdeps      (.gitignore already ignores it)
# Then:         run(command="bash scripts/gpu-check.sh", carry=[".devdeps"], timeout_s=540)
# GPU_CHECK_QUICK=1 skips the full qa_tests_torch run (~60 s) and the demo's CUDA-graph run when
# device time is short.
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
  g++ --version | head -1; cmake --version | head -1; command -v nvcc && nvcc --version | tail -1
  # pytorch/pytorch#133437: how many std::filesystem functions this LibTorch exports (util/fs remove_tree)
  echo "std::filesystem symbols exported by libtorch*.so: $(objdump -T "$P"/../../lib/libtorch*.so 2>/dev/null | grep -c _ZNSt10filesystem)"
} 2>&1 | tee -a "$S"

note "build qa-train and qa_tests_torch (torch prefix $P)"
build() {
  cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$D;$P" \
    -DCMAKE_GTEST_DISCOVER_TESTS_DISCOVERY_MODE=PRE_TEST "$@" >> "$OUT/build.log" 2>&1 &&
    cmake --build build-gpu -j "$(nproc)" --target qa-train qa_tests_torch -- -k 0 >> "$OUT/build.log" 2>&1
}
if ! build; then
  grep -E "error:|CMake Error" "$OUT/build.log" | head -20 | tee -a "$S"
  note "build failed: again without CUDA graphs (-DQA_CUDA_GRAPHS=OFF)"
  build -DQA_CUDA_GRAPHS=OFF || grep -E "error:|CMake Error" "$OUT/build.log" | tail -10 | tee -a "$S"
fi
[ -x build-gpu/qa-train ] || exit 1

note "CUDA graph and libstdc++ tests first"
timeout 60 build-gpu/tests/qa_tests_torch --gtest_filter='GraphedMicroSteps.*:StdSymbols.*:CudaMemory.*:KernelProfile.*:SdpaAttention.*:StackedProjections.*:StackedGatedGelu*' 2>&1 |
  grep -E "^\[  (FAILED|SKIPPED|PASSED) |Failure|Expected|Which is|error" | head -20 | tee -a "$S"

note "bench: qa-train variants vs transformers, bf16, batch 32, source 512, target 64"
# qa: defaults (eager); qas: separate projections; qag: CUDA graphs; hf: transformers. (Explicit bf16
# attention products, `--attention explicit`, were measured slower than the fused kernel on 2026-11-28;
# bench/RESULTS.md.)
variants() { [ "$1" = flan-t5-base ] && echo "qa qas qag hf" || echo "qa qag hf"; }
for shape in flan-t5-base flan-t5-small; do
  for side in $(variants $shape); do
    case $side in
      qa) cmd=(build-gpu/qa-train bench --json) ;;
      qas) cmd=(build-gpu/qa-train bench --json --stacked-projections off) ;;
      qag) cmd=(build-gpu/qa-train bench --json --cuda-graphs) ;;
      hf) cmd=("$PY" bench/hf_reference.py) ;;
    esac
    echo "--- $side $shape" >> "$OUT/bench.log"
    timeout 100 "${cmd[@]}" --shape "$shape" --batch 32 --src-len 512 --tgt-len 64 --steps 10 --device cuda \
      --precision bf16 > "$OUT/$side-$shape.out" 2>> "$OUT/bench.log"
    echo "exit $?" >> "$OUT/bench.log"
    cat "$OUT/$side-$shape.out" >> "$OUT/bench.log"
    tail -1 "$OUT/$side-$shape.out" > "/tmp/$side-$shape.json"; rm -f "$OUT/$side-$shape.out"
  done
done
note "where the GPU time of one flan-t5-base step goes (eager; kernels by GPU time)"
timeout 100 build-gpu/qa-train bench --json --shape flan-t5-base --batch 32 --src-len 512 --tgt-len 64 --steps 2 \
  --device cuda --precision bf16 --profile 60 > /tmp/profile.out 2> "$OUT/profile.txt"
echo "exit $?" >> "$OUT/profile.txt"
tail -1 /tmp/profile.out | "$PY" -c 'import sys, json
d = json.loads(sys.stdin.read()); print("ms_per_step", d["ms_per_step"])
for c in d["profile_categories"]: print("%-20s %6d calls %8.2f ms" % (c["name"], c["calls"], c["gpu_ms"]))
for k in d["profile"][:25]: print("%8.2f ms %5d  %s" % (k["self_ms"], k["calls"], k["name"][:160]))
print("-- by launching operator (input shapes, autograd node)")
for k in d.get("profile_by_op", []): print("%8.2f ms %5d  %s" % (k["gpu_ms"], k["calls"], k["name"][:200]))' 2>&1 | tee -a "$S"
note "CUDA vs CPU: eval of the Hugging Face fixture on data/validation.jsonl"
for dp in "cpu fp32" "cuda fp32" "cuda bf16"; do
  set -- $dp
  printf '%s %s: ' "$1" "$2" | tee -a "$S"
  timeout 60 build-gpu/qa-train eval --model tests/fixtures/hf-flan-tiny --data data/validation.jsonl \
    --device "$1" --precision "$2" 2>> "$OUT/demo.log" | tail -1 | tee -a "$S"
done

note "demo training on CUDA, 600 steps, eager then CUDA graphs"
for g in false $([ -n "${GPU_CHECK_QUICK:-}" ] || echo true); do
  timeout 80 build-gpu/qa-train --config configs/demo.json --device cuda --set train.max_steps=600 \
    --set eval.every_steps=600 --set train.cuda_graphs=$g --set output.dir=/tmp/demo-cuda-$g >> "$OUT/demo.log" 2>&1
  echo "cuda_graphs=$g exit $?" | tee -a "$S"
  grep -E '"step":(500|600)' /tmp/demo-cuda-$g/logs/metrics.jsonl 2>/dev/null |
    "$PY" -c 'import sys, json
for l in sys.stdin:
    d = json.loads(l); print({k: d.get(k) for k in ("step", "loss", "tokens_per_sec", "eval_loss", "exact_match", "padding_fraction")})' | tee -a "$S"
done
grep -E "error|warn" "$OUT/demo.log" | head -5 | tee -a "$S"

note "LibTorch tests (all of qa_tests_torch; CudaMemory uses the GPU)"
if [ -n "${GPU_CHECK_QUICK:-}" ]; then
  echo "skipped (GPU_CHECK_QUICK)" | tee -a "$S"
elif [ -x build-gpu/tests/qa_tests_torch ]; then
  timeout 100 build-gpu/tests/qa_tests_torch > "$OUT/tests.log" 2>&1
  echo "exit $?" | tee -a "$S"
  grep -E "^\[  (PASSED|FAILED|SKIPPED) |^\[  FAILED  \]|tests ran" "$OUT/tests.log" | tail -12 | tee -a "$S"
fi

note "summary"
"$PY" - <<'PYEOF' | tee -a "$S"
import json
def load(side, shape):
    try:
        return json.load(open("/tmp/%s-%s.json" % (side, shape)))
    except Exception as e:
        return {"missing": str(e)}
print("| shape | qa-train ms/step (eager / graphs) | HF ms/step | train ratio (eager / graphs) | MFU (eager / graphs) | gen ratio | peak MiB qa (eager / graphs) / HF |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for shape in ("flan-t5-base", "flan-t5-small"):
    q, g, h = load("qa", shape), load("qag", shape), load("hf", shape)
    for v, what in (("qas", "eager, separate projections"),):
        d = load(v, shape)
        if "ms_per_step" in d:
            print("%s %s: %.1f ms/step (%.2fx HF), MFU %.3f, generation %.0f tokens/s" % (shape, what, d["ms_per_step"],
                  h.get("ms_per_step", float("nan")) / d["ms_per_step"], d["mfu"], d["gen_tokens_per_sec"]))
    f = lambda d, k, fmt="%.1f": fmt % d[k] if k in d else "-"
    r = lambda d: "%.2fx" % (h["ms_per_step"] / d["ms_per_step"]) if "ms_per_step" in d and "ms_per_step" in h else "-"
    gen = "%.2fx" % (q["gen_tokens_per_sec"] / h["gen_tokens_per_sec"]) if "gen_tokens_per_sec" in q and "gen_tokens_per_sec" in h else "-"
    print("| %s | %s / %s | %s | %s / %s | %s / %s | %s | %s / %s / %s |" % (shape, f(q, "ms_per_step"), f(g, "ms_per_step"),
          f(h, "ms_per_step"), r(q), r(g), f(q, "mfu", "%.3f"), f(g, "mfu", "%.3f"), gen, f(q, "peak_mem_mb", "%.0f"),
          f(g, "peak_mem_mb", "%.0f"), f(h, "peak_mem_mb", "%.0f")))
    for name, d in (("qa-train", q), ("qa-train graphs", g), ("HF", h)):
        print(name + ":", json.dumps({k: d.get(k) for k in ("attention", "impl", "peak_tflops", "step_tflops", "tokens_per_sec", "gen_tokens_per_sec", "libtorch", "missing")}))
PYEOF
