#!/usr/bin/env bash
# GPU check of issue 11, at most 8 minutes on one H100/H200:
#   1. the paper-size smoke of every Tables 1-3 job on CUDA in the default precision
#      (benchmarks.engine.precision.CUDA_DEFAULTS: Hi-TRS bf16, MCC / CrosSCLR fp32);
#   2. python -m benchmarks.perf --device cuda (eager, paper sizes, ours + reference, all phases);
#   3. the same with --compile (ours pattern, pre-training: the phase of the MFU target; the
#      reference pattern is never compiled, and compiling every phase does not fit 8 minutes).
# Leaves the JSON, logs and nvidia-smi under $OUT; every stage has its own time limit, and a
# failed stage does not stop the next ones (status.txt lists each stage's exit code).
#
#   OUT=/tmp/gpu bash benchmarks/perf/gpu_check.sh                       # on the GPU machine
#   DEVICE=cpu PRECISION=bf16 PERF_PROFILE=ci PERF_STEPS=1 PERF_METHODS=mcc T_SMOKE=600 T_EAGER=600 T_COMPILE=600 \
#       SMOKE_SCOPE="--method mcc --task prediction --fractions 1.0" OUT=/tmp/cpu bash benchmarks/perf/gpu_check.sh
#
# Not yet run on a GPU (no GPU was lent when it was written); see docs/perf.md.
set -uo pipefail

OUT="${OUT:-$PWD/gpu_check_out}"
PY="${PYTHON:-python}"
DEVICE="${DEVICE:-cuda}"
PRECISION="${PRECISION:-}"                       # empty: the device's default precision
SMOKE_SCOPE="${SMOKE_SCOPE:---method all --task all}"
PERF_PROFILE="${PERF_PROFILE:-paper}"
PERF_STEPS="${PERF_STEPS:-10}"
PERF_METHODS="${PERF_METHODS:-hitrs,mcc,crossclr}"
T_SMOKE="${T_SMOKE:-150}" T_EAGER="${T_EAGER:-150}" T_COMPILE="${T_COMPILE:-160}"   # 460 s + start-up < 8 min

mkdir -p "$OUT"
: > "$OUT/status.txt"
prec_flag=()
[ -n "$PRECISION" ] && prec_flag=(--precision "$PRECISION")

stage() {  # stage NAME SECONDS COMMAND...
    local name="$1" limit="$2"; shift 2
    local start rc
    start=$(date +%s)
    echo "[gpu_check] $name: $*" | tee -a "$OUT/status.txt"
    timeout --signal=TERM --kill-after=15 "$limit" "$@" > "$OUT/$name.log" 2>&1
    rc=$?
    echo "[gpu_check] $name: exit $rc after $(( $(date +%s) - start )) s" | tee -a "$OUT/status.txt"
    tail -n 25 "$OUT/$name.log"
}

{ command -v nvidia-smi > /dev/null && nvidia-smi; "$PY" -c "import torch; print(torch.__version__, torch.version.cuda, torch.cuda.is_available())"; } \
    > "$OUT/environment.txt" 2>&1

# shellcheck disable=SC2086  # SMOKE_SCOPE is a list of flags
stage smoke "$T_SMOKE" "$PY" -m benchmarks.run $SMOKE_SCOPE --profile paper --smoke --device "$DEVICE" "${prec_flag[@]}" \
    --out "$OUT/smoke" --no-progress --no-report
stage perf_eager "$T_EAGER" "$PY" -m benchmarks.perf --device "$DEVICE" --profile "$PERF_PROFILE" --steps "$PERF_STEPS" \
    --methods "$PERF_METHODS" "${prec_flag[@]}" --out "$OUT/perf_eager.json"
stage perf_compile "$T_COMPILE" "$PY" -m benchmarks.perf --device "$DEVICE" --profile "$PERF_PROFILE" --steps "$PERF_STEPS" \
    --methods "$PERF_METHODS" --compile --patterns ours --phases pretrain "${prec_flag[@]}" --out "$OUT/perf_compile.json"
ls -l "$OUT" | tee -a "$OUT/status.txt"
