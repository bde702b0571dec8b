#!/usr/bin/env bash
# Container test (called by .ci/run; needs root, as podman/buildah with chroot isolation do here).
#
#  0. lints the Dockerfile (tests/container/lint.sh);
#  1. makes a local Debian 13 base image, localhost/debian:trixie, with debootstrap + podman import
#     (once per machine: skipped when the image exists; podman, buildah and debootstrap are
#     installed with apt-get when missing);
#  2. builds the `cpu` target (Debian 13, LibTorch 2.6); it copies the installed files from the
#     `cpu-test` stage, so the unit and end-to-end tests (ctest) run against LibTorch 2.6 first;
#  3. runs the image's ENTRYPOINT the way Singularity/Apptainer does: a non-root uid that is not the
#     image's USER, working directory /tmp, HOME pointing nowhere, the host's data and output folders
#     bind-mounted; checks the default CMD's config resolves to /app/data and /app/output, then trains
#     configs/container-smoke.json on a few hundred lines of the demo data and checks that
#     output/model/ and output/logs/ were written, owned by that uid, and that nothing was written to
#     the image's file system outside /tmp;
#  4. runs it again with a malformed training file: exit code 3, a one-line `qa-train: error:
#     .../train.jsonl:7: ...`, and the model of step 3 untouched.
# Prints a summary; exits non-zero when any check fails.
#
# Environment (all optional):
#   QA_CONTAINER_WORK     scratch, cache and logs folder (default build-container/, git-ignored)
#   QA_CONTAINER_CONTEXT  build context (default: the repository root)
#   QA_CONTAINER_IMAGE    image name (default localhost/qa-train:cpu)
#   QA_CONTAINER_UID      uid:gid the image runs as (default 4321:4321)
#   QA_CONTAINER_JOBS     parallel compile jobs in the build (default: all cores)
#   DEBIAN_MIRROR         for debootstrap (default http://deb.debian.org/debian)
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
work=${QA_CONTAINER_WORK:-$root/build-container}
context=${QA_CONTAINER_CONTEXT:-$root}
image=${QA_CONTAINER_IMAGE:-localhost/qa-train:cpu}
base=localhost/debian:trixie
user=${QA_CONTAINER_UID:-4321:4321}
uid=${user%%:*}
gid=${user##*:}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
logs=$work/logs
mkdir -p "$logs"

t_start=$(date +%s)
summary=()
failures=0
pass() { summary+=("PASS  $*"); echo "container-test: PASS $*"; }
fail() { summary+=("FAIL  $*"); echo "container-test: FAIL $*" >&2; failures=$((failures + 1)); }
elapsed() { echo "$(($(date +%s) - $1))s"; }
finish() {
  echo
  echo "== container test summary ($image) =="
  printf '%s\n' "${summary[@]}"
  echo "total wall time: $(elapsed "$t_start"); logs in $logs"
  if [ "$failures" -gt 0 ]; then
    echo "container test: $failures check(s) failed"
    exit 1
  fi
  echo "container test: all checks passed"
  exit 0
}
# A step that cannot go on ends the test here (with the summary so far).
abort() { fail "$*"; finish; }

if [ "$(id -u)" -ne 0 ]; then
  echo "container-test: must run as root (podman build / buildah run with chroot isolation)" >&2
  exit 1
fi

# ---- 0. lint ---------------------------------------------------------------------------------------
t=$(date +%s)
if "$root/tests/container/lint.sh" "$context/Dockerfile" >"$logs/lint.log" 2>&1; then
  pass "lint: Dockerfile has no diagnostics (dockerfile-utils) [$(elapsed "$t")]"
else
  cat "$logs/lint.log" >&2
  fail "lint: Dockerfile diagnostics, see $logs/lint.log"
fi

# ---- 1. tools and base image -------------------------------------------------------------------
missing=()
for tool in podman buildah debootstrap; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "container-test: installing ${missing[*]}"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; } \
    >"$logs/apt.log" 2>&1 || abort "install ${missing[*]} (see $logs/apt.log)"
fi

t=$(date +%s)
if podman image exists "$base"; then
  pass "base image $base: cached"
else
  rootfs=$work/rootfs-trixie
  rm -rf "$rootfs"
  if debootstrap --variant=minbase trixie "$rootfs" "$mirror" >"$logs/debootstrap.log" 2>&1 \
     && rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
     && tar -C "$rootfs" -c . | podman import --message "debootstrap --variant=minbase trixie" - "$base" \
        >>"$logs/debootstrap.log" 2>&1; then
    pass "base image $base: made with debootstrap [$(elapsed "$t")]"
  else
    rm -rf "$rootfs"
    abort "base image: debootstrap/import failed (see $logs/debootstrap.log)"
  fi
  rm -rf "$rootfs"
fi

# ---- 2. build the cpu target (its cpu-test stage runs ctest) ------------------------------------
t=$(date +%s)
revision=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
[ -n "$(git -C "$root" status --porcelain 2>/dev/null)" ] && revision="$revision-dirty"
build_args=(--build-arg "BASE=$base" --build-arg "REVISION=$revision"
            --build-arg "CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ)")
[ -n "${QA_CONTAINER_JOBS:-}" ] && build_args+=(--build-arg "JOBS=$QA_CONTAINER_JOBS")
echo "container-test: building $image (log: $logs/build.log)"
if podman build --isolation chroot "${build_args[@]}" --target cpu -t "$image" \
     -f "$context/Dockerfile" "$context" >"$logs/build.log" 2>&1; then
  ctest_line=$(grep -E 'tests passed, [0-9]+ tests failed out of' "$logs/build.log" | tail -n 1)
  pass "build --target cpu [$(elapsed "$t")]; ctest (LibTorch 2.6): ${ctest_line:-cached, passed in an earlier build}"
else
  tail -n 40 "$logs/build.log" >&2
  ctest_line=$(grep -E 'tests passed, [0-9]+ tests failed out of' "$logs/build.log" | tail -n 1)
  abort "build --target cpu failed [$(elapsed "$t")]: ${ctest_line:-compile error or earlier failure} (see $logs/build.log)"
fi
size_h=$(podman image ls --format '{{.Size}}' "$image" | head -n 1)
size_b=$(podman image inspect --format '{{.Size}}' "$image")
pass "image size: $size_h ($size_b bytes; podman image ls)"

# Image configuration: ENTRYPOINT, CMD with absolute paths, VOLUME, labels.
mapfile -t entrypoint < <(podman image inspect --format '{{range .Config.Entrypoint}}{{println .}}{{end}}' "$image" | sed '/^$/d')
mapfile -t cmd < <(podman image inspect --format '{{range .Config.Cmd}}{{println .}}{{end}}' "$image" | sed '/^$/d')
volumes=$(podman image inspect --format '{{range $k, $v := .Config.Volumes}}{{$k}} {{end}}' "$image")
labels=$(podman image inspect --format '{{range $k, $v := .Labels}}{{$k}}={{$v}}{{println}}{{end}}' "$image")
relative=$(printf '%s\n' "${cmd[@]}" | grep -E '/' | grep -vE '^/' || true)
if [ "${entrypoint[*]:-}" = "/usr/local/bin/qa-train" ] && [ ${#cmd[@]} -gt 0 ] && [ -z "$relative" ] \
   && [[ " $volumes " == *" /app/output "* ]] && grep -q '^org.opencontainers.image.title=qa-train$' <<<"$labels" \
   && grep -q '^org.opencontainers.image.revision=' <<<"$labels"; then
  pass "image config: ENTRYPOINT ${entrypoint[*]}, CMD ${cmd[*]}, VOLUME $volumes, OCI labels"
else
  fail "image config: ENTRYPOINT '${entrypoint[*]:-}', CMD '${cmd[*]:-}' (relative: '$relative'), VOLUME '$volumes', labels: $(tr '\n' ' ' <<<"$labels")"
fi
[ ${#entrypoint[@]} -gt 0 ] || abort "the image has no ENTRYPOINT"

# ---- 3. run it as Singularity would ------------------------------------------------------------
smoke=$work/smoke
rm -rf "$smoke"
mkdir -p "$smoke/data" "$smoke/output"
head -n 300 "$root/data/train.jsonl" >"$smoke/data/train.jsonl"
head -n 60 "$root/data/validation.jsonl" >"$smoke/data/validation.jsonl"
chmod -R a+rX "$smoke/data"
chown "$uid:$gid" "$smoke/output"

container=$(buildah from --pull-never "$image") || abort "buildah from $image"
# Singularity ignores VOLUME, and buildah 1.28's `run -v` onto a VOLUME path sometimes mounts the
# image's anonymous volume instead of the host folder: drop the VOLUME from this working container.
buildah config --volume /app/output- "$container" || abort "buildah config --volume /app/output-"
mnt=""
cleanup() {
  [ -n "$mnt" ] && buildah umount "$container" >/dev/null 2>&1
  buildah rm "$container" >/dev/null 2>&1
}
trap cleanup EXIT
# Singularity-like: another uid, cwd outside /app, HOME unusable, host variables leaking in.
run_as_user() {
  buildah run --isolation chroot --user "$user" --workingdir /tmp \
    --env HOME=/nonexistent/home --env LD_LIBRARY_PATH=/.singularity.d/libs \
    --volume "$smoke/data:/app/data:ro" --volume "$smoke/output:/app/output" \
    "$container" -- "$@"
}

# The default CMD (the demo config): paths must resolve into /app.
run_as_user "${entrypoint[@]}" config "${cmd[@]}" >"$logs/default-config.json" 2>"$logs/default-config.err"
rc=$?
if [ $rc -eq 0 ] && grep -q '"train": "/app/data/train.jsonl"' "$logs/default-config.json" \
   && grep -q '"validation": "/app/data/validation.jsonl"' "$logs/default-config.json" \
   && grep -q '"dir": "/app/output"' "$logs/default-config.json"; then
  pass "default CMD (${cmd[*]}): data /app/data/{train,validation}.jsonl, output /app/output"
else
  fail "default CMD config (rc $rc): see $logs/default-config.json / .err"
fi

mnt=$(buildah mount "$container") || abort "buildah mount"
marker=$work/smoke/.marker
touch "$marker"
sleep 1
t=$(date +%s)
run_as_user "${entrypoint[@]}" --config /app/configs/container-smoke.json >"$logs/smoke.out" 2>"$logs/smoke.err"
rc=$?
if [ $rc -eq 0 ]; then
  pass "training run as uid $user in /tmp exited 0 [$(elapsed "$t")]"
else
  tail -n 20 "$logs/smoke.err" >&2
  fail "training run exited $rc (see $logs/smoke.err)"
fi
missing_files=()
for f in model/config.json model/model.safetensors model/spiece.model model/tokenizer_config.json \
         logs/train.log logs/metrics.jsonl logs/config.json; do
  [ -s "$smoke/output/$f" ] || missing_files+=("$f")
done
if [ ${#missing_files[@]} -eq 0 ]; then
  pass "output/model/ and output/logs/ written ($(find "$smoke/output" -type f | wc -l) files)"
else
  fail "missing in output/: ${missing_files[*]}"
fi
foreign=$(find "$smoke/output" \( ! -uid "$uid" -o ! -gid "$gid" \) -printf '%p %U:%G\n')
if [ -z "$foreign" ] && [ -n "$(find "$smoke/output" -mindepth 1 -print -quit)" ]; then
  pass "every file in output/ is owned by $uid:$gid"
else
  fail "files in output/ not owned by $uid:$gid: $(head -n 5 <<<"$foreign" | tr '\n' ' ')"
fi
if grep -q 'auto: no CUDA device' "$logs/smoke.err"; then
  pass "device auto: logged the CPU fallback ('auto: no CUDA device')"
else
  fail "the log does not say that device auto fell back to the CPU"
fi
# The image's file system: nothing changed since the run started but under /tmp (the VOLUME is gone,
# so output that missed the host folder would land in the image's /app/output and show up here).
written=$(find "$mnt" -xdev \( -path "$mnt/tmp" -o -path "$mnt/proc" -o -path "$mnt/sys" -o -path "$mnt/dev" \
            -o -path "$mnt/run" \) -prune \
            -o -cnewer "$marker" -print | sed "s|^$mnt||")
tmp_entries=$(find "$mnt/tmp" -mindepth 1 -cnewer "$marker" | wc -l)
if [ -z "$written" ]; then
  pass "nothing written to the image outside /app/output and /tmp ($tmp_entries new entries under /tmp)"
else
  fail "written to the image's file system: $(head -n 10 <<<"$written" | tr '\n' ' ')"
fi

# ---- 4. malformed data -------------------------------------------------------------------------
sum_before=$(md5sum <"$smoke/output/model/model.safetensors" 2>/dev/null)
sed -i '7s/.*/{"question": 42, "context": "Ana lives in Lima.", "answer": "Lima"}/' "$smoke/data/train.jsonl"
run_as_user "${entrypoint[@]}" --config /app/configs/container-smoke.json >"$logs/malformed.out" 2>"$logs/malformed.err"
rc=$?
error_line=$(grep -m 1 '^qa-train: error:' "$logs/malformed.err")
if [ $rc -eq 3 ] && [[ "$error_line" =~ ^qa-train:\ error:\ /app/data/train\.jsonl:7:\  ]]; then
  pass "malformed data: exit 3, \"$error_line\""
else
  fail "malformed data: exit $rc (want 3), error line '$error_line' (see $logs/malformed.err)"
fi
if [ -n "$sum_before" ] && [ "$(md5sum <"$smoke/output/model/model.safetensors")" = "$sum_before" ]; then
  pass "malformed data: output/model/ from the previous run untouched"
else
  fail "malformed data: output/model/model.safetensors changed or missing"
fi

finish
