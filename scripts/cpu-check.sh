#!/usr/bin/env bash
# The CPU speed goals checked in one command: interleaved rounds of the Hugging Face reference
# (bench/hf_reference.py, fp32) and `qa-train bench` in fp32 and bf16 on flan-t5-small shapes (batch 8,
# source 256, target 32), then a table of ratios and MFU against the goals (fp32 >= 1.1x the reference
# and >= 85% MFU; bf16 >= 5x the reference's fp32).
# Interleaved because a shared VM's speed drifts by 10-30% over minutes: a round's ratios compare runs
# a few seconds apart, and the table gives every round.
#
# Needs ./build/qa-train and a Python with torch and transformers. On the development machine
# (../shared/peer/README.md sets up transformers 4.35.2 in /tmp/hf):
#   PYTHON=/usr/bin/python3 PYTHONPATH=/tmp/hf/transformers/src:../shared/peer/stubs \
#     OPENBLAS_CORETYPE=Cooperlake scripts/cpu-check.sh
# Both sides run in the same environment (OPENBLAS_CORETYPE included) on CPU_CHECK_THREADS threads (2).
# CPU_CHECK_ROUNDS (3), CPU_CHECK_STEPS (timed steps per run, 5), QA_TRAIN (./build/qa-train). Results
# land in $OUT (cpu-out/); relative paths are taken from the repository's root.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-cpu-out}
PY=${PYTHON:-python3}
QA=${QA_TRAIN:-./build/qa-train}
threads=${CPU_CHECK_THREADS:-2}
rounds=${CPU_CHECK_ROUNDS:-3}
steps=${CPU_CHECK_STEPS:-5}
for v in CPU_CHECK_THREADS="$threads" CPU_CHECK_ROUNDS="$rounds" CPU_CHECK_STEPS="$steps"; do
  [[ ${v#*=} =~ ^[1-9][0-9]*$ ]] || { echo "cpu-check: ${v%%=*} must be a positive integer, got '${v#*=}'" >&2; exit 2; }
done
shape=(--shape flan-t5-small --batch 8 --src-len 256 --tgt-len 32 --steps "$steps" --threads "$threads")
[ -x "$QA" ] || { echo "cpu-check: $QA not found or not executable (build first: scripts/build.sh)" >&2; exit 2; }
"$PY" -c 'import torch, transformers' 2>/dev/null ||
  { echo "cpu-check: $PY cannot import torch and transformers (set PYTHON and PYTHONPATH; see the header)" >&2; exit 2; }
mkdir -p "$OUT" || exit 2
# Another busy process slows the runs unevenly: say so rather than mislead. The CPUs' busy share over
# one second (/proc/stat), not the load average, which still counts work that has just ended.
busy() { awk '/^cpu /{ print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8 }' /proc/stat; }
read -r b0 t0 < <(busy); sleep 1; read -r b1 t1 < <(busy)
awk -v b=$((b1 - b0)) -v t=$((t1 - t0)) 'BEGIN { exit !(t > 0 && b / t > 0.2) }' &&
  echo "cpu-check: warning: the CPUs are $(( 100 * (b1 - b0) / (t1 - t0) ))% busy before starting; the ratios need an otherwise idle machine" >&2

{ grep -m1 'model name' /proc/cpuinfo; echo "cores: $(nproc)"
  echo "bf16 instructions: $(grep -o -w -E 'amx_bf16|avx512_bf16' /proc/cpuinfo | sort -u | tr '\n' ' ')"
  echo "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-(unset)}"; } | tee "$OUT/machine.txt"

# Each run's last stdout line is its JSON; stderr goes to its log. A failed run leaves no JSON.
run() {  # name command...
  local name=$1; shift
  if "$@" > "$OUT/$name.out" 2> "$OUT/$name.log"; then tail -1 "$OUT/$name.out" > "$OUT/$name.json"
  else echo "cpu-check: $name failed (exit $?), see $OUT/$name.log" >&2; rm -f "$OUT/$name.json"; fi
}
for r in $(seq 1 "$rounds"); do
  run "ref-$r" "$PY" bench/hf_reference.py --device cpu --precision fp32 "${shape[@]}"
  run "fp32-$r" "$QA" bench --device cpu --precision fp32 --json "${shape[@]}"
  run "bf16-$r" "$QA" bench --device cpu --precision bf16 --json "${shape[@]}"
  echo "round $r of $rounds done"
done

"$PY" - "$OUT" "$rounds" <<'PYEOF' | tee "$OUT/summary.md"
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def read(name):
    try:
        return json.load(open("%s/%s.json" % (out, name)))
    except (OSError, ValueError):
        return None
fp32_ratio, fp32_mfu, bf16_ratio = [], [], []
num = lambda d, k, fmt: fmt % d[k] if d is not None and d.get(k) is not None else "-"
def cell(ref, d, ratios, mfus):  # "ms (ratio to the reference, MFU)", collecting the ratio and MFU
    if d is None or ref is None:
        return "-"
    ratios.append(ref["ms_per_step"] / d["ms_per_step"])
    mfus.append(100 * d["mfu"])
    return "%.0f (%.2fx, %.1f%%)" % (d["ms_per_step"], ratios[-1], mfus[-1])
print("| round | reference ms/step | qa-train fp32 ms (ratio, MFU) | qa-train bf16 ms (ratio, MFU) | generation tokens/s: reference / fp32 / bf16 | peak MB: reference / fp32 / bf16 |")
print("| --- | --- | --- | --- | --- | --- |")
for r in range(1, rounds + 1):
    ref, f, b = read("ref-%d" % r), read("fp32-%d" % r), read("bf16-%d" % r)
    print("| %d | %s | %s | %s | %s / %s / %s | %s / %s / %s |" % (
        r, num(ref, "ms_per_step", "%.0f"), cell(ref, f, fp32_ratio, fp32_mfu), cell(ref, b, bf16_ratio, []),
        num(ref, "gen_tokens_per_sec", "%.0f"), num(f, "gen_tokens_per_sec", "%.0f"), num(b, "gen_tokens_per_sec", "%.0f"),
        num(ref, "peak_mem_mb", "%.0f"), num(f, "peak_mem_mb", "%.0f"), num(b, "peak_mem_mb", "%.0f")))
print()
first = read("fp32-1") or {}
print("qa-train: %s, BLAS core %s, fp32 matmul peak %s TFLOP/s (round 1); reference: %s" % (first.get("libtorch"),
      first.get("blas_core"), num(first, "peak_tflops", "%.3f"), (read("ref-1") or {}).get("impl")))
def goal(what, values, target, fmt):
    if not values:
        print("- %s: no runs" % what)
        return
    med = statistics.median(values)
    print("- %s: median %s over %d rounds (range %s-%s), goal %s: %s" % (what, fmt % med, len(values), fmt % min(values),
          fmt % max(values), fmt % target, "met" if med >= target else "not met"))
goal("fp32 vs the reference", fp32_ratio, 1.1, "%.2fx")
goal("fp32 MFU", fp32_mfu, 85.0, "%.1f%%")
goal("bf16 vs the reference's fp32", bf16_ratio, 5.0, "%.2fx")
PYEOF
