#!/usr/bin/env bash
# Builds the libFuzzer targets of the parsers that read untrusted bytes (JSONL records, config JSON and
# --set overrides, safetensors headers) with ASan + UBSan into build-fuzz/, then runs each one for
# SECONDS_PER_TARGET seconds (default 30) on a copy of its seed corpus tests/fuzz/corpus/<target>/.
# Prints the executions per target; exits non-zero when a target crashed (the input that did it is
# saved under build-fuzz/artifacts/<target>/). Installs nothing: needs clang++ with libFuzzer
# (Debian: clang libclang-rt-14-dev) and the project's libnlohmann-json3-dev, libspdlog-dev, libfmt-dev.
set -euo pipefail
seconds="${1:-30}"
[[ "$seconds" =~ ^[0-9]+$ ]] || { echo "usage: $0 [SECONDS_PER_TARGET]" >&2; exit 2; }
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
out="$root/build-fuzz"
jobs="${FUZZ_BUILD_JOBS:-$(nproc)}"

cxx="${CXX_FUZZ:-clang++}"
if ! command -v "$cxx" >/dev/null 2>&1 && [ -z "${CXX_FUZZ:-}" ] && command -v clang++-14 >/dev/null 2>&1; then
  cxx=clang++-14  # Debian's clang-14 without the unversioned `clang` package
fi
if ! command -v "$cxx" >/dev/null 2>&1; then
  echo "fuzz: '$cxx' not found: install clang with libFuzzer (Debian 12: apt-get install clang libclang-rt-14-dev)" >&2
  exit 2
fi
# libFuzzer's runtime is a separate package on Debian; without it linking fails with an unclear message.
probe_dir="$(mktemp -d)"
trap 'rm -rf "$probe_dir"' EXIT
printf 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }\n' >"$probe_dir/p.cpp"
if ! "$cxx" -fsanitize=fuzzer,address,undefined "$probe_dir/p.cpp" -o "$probe_dir/p" >"$probe_dir/log" 2>&1; then
  echo "fuzz: '$cxx' cannot link a libFuzzer + ASan + UBSan program (Debian 12: apt-get install libclang-rt-14-dev):" >&2
  cat "$probe_dir/log" >&2
  exit 2
fi

common=(-std=c++17 -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=undefined
        -Iinclude -DSPDLOG_SHARED_LIB -DSPDLOG_COMPILED_LIB -DSPDLOG_FMT_EXTERNAL)
# Every object gets libFuzzer's coverage instrumentation (the parsers are what it must explore);
# only the final link adds the libFuzzer runtime and its main().
compile_flags=("${common[@]}" -fsanitize=fuzzer-no-link)
libs=(-lspdlog -lfmt -lpthread)

# The torch-free sources each target needs (see CMakeLists.txt, qa_base).
declare -A sources=(
  [jsonl_record_fuzz]="src/data/jsonl_reader.cpp src/util/error.cpp src/util/json_text.cpp src/util/utf8.cpp"
  [config_fuzz]="src/config/config.cpp src/config/schema.cpp src/model/t5_config.cpp src/util/error.cpp src/util/fs.cpp src/util/json_text.cpp src/util/strings.cpp src/util/utf8.cpp"
  [safetensors_header_fuzz]="src/io/safetensors_header.cpp src/util/error.cpp src/util/utf8.cpp"
)
targets=(jsonl_record_fuzz config_fuzz safetensors_header_fuzz)
if [ -n "${FUZZ_TARGETS:-}" ]; then  # a subset, e.g. FUZZ_TARGETS="config_fuzz" tests/fuzz/run.sh 60
  read -r -a targets <<<"$FUZZ_TARGETS"
  for t in "${targets[@]}"; do
    [ -n "${sources[$t]+x}" ] || { echo "fuzz: unknown target '$t' (known: ${!sources[*]})" >&2; exit 2; }
  done
fi

# ---- compile: each source once (shared by the targets), in parallel; rebuilt when it or a header changed
mkdir -p "$out/obj"
newest_header="$(find include -name '*.hpp' -o -name '*.h' | xargs ls -t | head -1)"
flags_file="$out/obj/flags"
flags="$cxx ${compile_flags[*]}"
[ -f "$flags_file" ] && [ "$(cat "$flags_file")" = "$flags" ] || { rm -f "$out"/obj/*.o; echo "$flags" >"$flags_file"; }
compile_list=()
for t in "${targets[@]}"; do
  for src in ${sources[$t]} "tests/fuzz/$t.cpp"; do
    obj="$out/obj/$(echo "${src%.cpp}" | tr / _).o"
    if [ ! -f "$obj" ] || [ "$src" -nt "$obj" ] || [ "$newest_header" -nt "$obj" ]; then
      [[ " ${compile_list[*]-} " == *" $src "* ]] || compile_list+=("$src")
    fi
  done
done
build_start=$SECONDS
if [ ${#compile_list[@]} -gt 0 ]; then
  echo "fuzz: compiling ${#compile_list[@]} sources ($jobs at a time)"
  export out
  printf '%s\n' "${compile_list[@]}" | xargs -P "$jobs" -I{} bash -c '
    src="$1"; shift
    obj="$out/obj/$(echo "${src%.cpp}" | tr / _).o"
    "$@" -c "$src" -o "$obj.tmp" && mv "$obj.tmp" "$obj" || { echo "fuzz: compiling $src failed" >&2; exit 255; }
  ' _ {} "$cxx" "${compile_flags[@]}"
fi
for t in "${targets[@]}"; do
  objs=()
  for src in ${sources[$t]} "tests/fuzz/$t.cpp"; do objs+=("$out/obj/$(echo "${src%.cpp}" | tr / _).o"); done
  "$cxx" "${common[@]}" -fsanitize=fuzzer "${objs[@]}" "${libs[@]}" -o "$out/$t"
done
echo "fuzz: build took $((SECONDS - build_start)) s"

# ---- run: first replay the inputs that once crashed (corpus/<target>/crash-*, each run once: a fixed bug
# that is back fails fast), then fuzz from a fresh copy of the other seeds (the committed corpus is
# never modified). The crash inputs are not fuzzing seeds: some are 64 KiB of nesting, and mutating
# them slows a target down 5-20x.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
status=0
summary=()
for t in "${targets[@]}"; do
  work="$out/work/$t"
  rm -rf "$work"
  mkdir -p "$work/corpus" "$out/artifacts/$t"
  crashes=()
  for f in "tests/fuzz/corpus/$t"/*; do
    case "$(basename "$f")" in crash-*) crashes+=("$f") ;; *) cp "$f" "$work/corpus/" ;; esac
  done
  rc=0
  if [ ${#crashes[@]} -gt 0 ]; then
    echo "fuzz: replaying ${#crashes[@]} former crash inputs of $t"
    "$out/$t" -timeout=10 -rss_limit_mb=2048 "${crashes[@]}" >"$work/replay.log" 2>&1 || rc=$?
    if [ "$rc" -ne 0 ]; then
      status=1
      tail -n 60 "$work/replay.log" >&2
      summary+=("$t: a former crash input CRASHES AGAIN (exit $rc), log $work/replay.log")
      continue
    fi
  fi
  echo "fuzz: running $t for $seconds s"
  "$out/$t" -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -dict=tests/fuzz/json.dict -artifact_prefix="$out/artifacts/$t/" "$work/corpus" >"$work/log" 2>&1 || rc=$?
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -1)"
  if [ "$rc" -ne 0 ]; then
    status=1
    tail -n 60 "$work/log" >&2
    summary+=("$t: CRASHED (exit $rc) after ${execs:-?} executions; input saved in $out/artifacts/$t/, log $work/log")
  else
    summary+=("$t: ok, ${execs:-?} executions in $seconds s")
  fi
done
echo "fuzz: summary"
printf '  %s\n' "${summary[@]}"
exit "$status"
