#!/usr/bin/env bash
# One visit to a lent GPU machine (the `device` tool), prepared so that it fits one call: build
# against that machine's PyTorch (its LibTorch), run the tests that exercise CUDA paths, train the
# demo briefly on CUDA (the GPU step without host synchronisation, page-locked prefetch, fused AdamW,
# SDPA), and run `qa-train bench` beside the Hugging Face reference (bench/hf_reference.py) in bf16.
# Everything lands under $OUT; the last lines printed are a summary table.
#
# Here, once:   bash ../shared/device/pack-deps.sh .devdeps && echo /.devdeps/ >> .git/info/exclude
# Then:         run(command="bash scripts/gpu-check.sh", carry=[".devdeps"], timeout_s=540)
# Not yet run on a GPU machine (none was lent when it was written): expect to fix what differs.
set -uo pipefail
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
D=$PWD/.devdeps
PY=${PYTHON:-/opt/torch/.venv/bin/python3}
P=$("$PY" -c 'import torch; print(torch.utils.cmake_prefix_path)')
export PKG_CONFIG_PATH=$D/lib/x86_64-linux-gnu/pkgconfig:$D/share/pkgconfig
export LD_LIBRARY_PATH=$D/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}
note() { echo "== $*" | tee -a "$OUT/summary.txt"; }

note "build (torch prefix $P)"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee -a "$OUT/summary.txt"
if ! { cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$D;$P" &&
       cmake --build build-gpu -j "$(nproc)" --target qa-train qa_tests_torch; } > "$OUT/build.log" 2>&1; then
  tail -40 "$OUT/build.log"
  exit 1
fi

note "tests (CUDA allocator, SDPA vs explicit, optimizer device step incl. at::_fused_adamw_, checkpointing, parity)"
QA_TRAIN_SPM_PLUGIN=$PWD/build-gpu/libqa_spm.so build-gpu/tests/qa_tests_torch \
  --gtest_filter='CudaMemory*:Sdpa*:Optimizer*:ActivationCheckpoint*:GradientParity*:Fixtures/Parity*:BatchPrefetcher*' \
  > "$OUT/tests.log" 2>&1
tail -4 "$OUT/tests.log" | tee -a "$OUT/summary.txt"

note "demo training on CUDA, 600 steps"
build-gpu/qa-train --config configs/demo.json --device cuda --set train.max_steps=600 --set eval.every_steps=300 \
  --set output.dir="$OUT/demo" > "$OUT/demo.log" 2>&1
echo "exit $?" | tee -a "$OUT/summary.txt"
grep -E "runtime|cuda|done" "$OUT/demo.log" | tail -5 | tee -a "$OUT/summary.txt"

note "bench: qa-train vs transformers, bf16, batch 32, source 512, target 64"
for shape in flan-t5-small flan-t5-base; do
  build-gpu/qa-train bench --shape "$shape" --batch 32 --src-len 512 --tgt-len 64 --steps 10 --device cuda \
    --precision bf16 --json 2> "$OUT/bench-$shape.err" | tail -1 > "$OUT/qa-$shape.json"
  "$PY" bench/hf_reference.py --shape "$shape" --batch 32 --src-len 512 --tgt-len 64 --steps 10 --device cuda \
    --precision bf16 2> "$OUT/hf-$shape.err" | tail -1 > "$OUT/hf-$shape.json"
done
"$PY" - "$OUT" <<'PYEOF' | tee -a "$OUT/summary.txt"
import json, sys, os
out = sys.argv[1]
print("| shape | qa-train ms/step | HF ms/step | train ratio | qa-train MFU | gen ratio | peak MiB qa / HF |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for shape in ("flan-t5-small", "flan-t5-base"):
    try:
        q = json.load(open(os.path.join(out, "qa-%s.json" % shape)))
        h = json.load(open(os.path.join(out, "hf-%s.json" % shape)))
    except Exception as e:
        print("| %s | missing: %s |" % (shape, e))
        continue
    print("| %s | %.1f | %.1f | %.2fx | %.3f | %.2fx | %.0f / %.0f |" % (
        shape, q["ms_per_step"], h["ms_per_step"], h["ms_per_step"] / q["ms_per_step"], q["mfu"],
        q["gen_tokens_per_sec"] / h["gen_tokens_per_sec"], q["peak_mem_mb"], h["peak_mem_mb"]))
PYEOF
