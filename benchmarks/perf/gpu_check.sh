#!/usr/bin/env bash
# GPU check of the paper path, about 9 minutes on one H100/H200:
#   1. pytest_cuda: the CUDA cases of the test suite (bf16 vs fp32 twins of every method at its
#      paper configuration on CUDA, augmentations on CUDA with a CPU generator);
#   2. smoke: the paper-size smoke of every Tables 1-3 job on CUDA under bf16 for every method
#      (the issue-11 crash was a bf16 one; fp32 runs in the perf stages);
#   3. perf_eager: python -m benchmarks.perf --device cuda (eager, paper sizes, ours + reference,
#      all phases, each method in its default precision: benchmarks.engine.precision.CUDA_DEFAULTS);
#   4. perf_bf16: MCC and CrosSCLR pre-training in bf16 (what their fp32 default costs);
#   5. perf_compile: --compile, ours pattern, pre-training (the phase of the MFU target).
# Every stage has its own time limit and a failed stage does not stop the next ones. Perf JSONs
# are rewritten after every measured row, so a stage stopped by its limit keeps its rows.
# $OUT gets few files (the device tool returns at most 8): status.txt (environment, every stage's
# exit code and the tail of its log), the perf JSONs, and logs.tar.gz (whole logs and the smoke
# records; no checkpoints).
#
#   OUT=/tmp/gpu bash benchmarks/perf/gpu_check.sh                       # on the GPU machine
#   DEVICE=cpu PRECISION=bf16 PERF_PROFILE=ci PERF_STEPS=1 PERF_METHODS=mcc T_SMOKE=600 T_EAGER=600 T_COMPILE=600 \
#       SMOKE_SCOPE="--method mcc --task prediction --fractions 1.0" OUT=/tmp/cpu bash benchmarks/perf/gpu_check.sh
set -uo pipefail

OUT="${OUT:-$PWD/gpu_check_out}"
WORK="${WORK:-$(mktemp -d)}"                     # smoke records, synthetic world, whole logs
PY="${PYTHON:-python3}"
DEVICE="${DEVICE:-cuda}"
PRECISION="${PRECISION:-}"                       # perf_eager / perf_compile: empty = each method's default
SMOKE_PRECISION="${SMOKE_PRECISION:-bf16}"
SMOKE_SCOPE="${SMOKE_SCOPE:---method all --task all}"
PERF_PROFILE="${PERF_PROFILE:-paper}"
PERF_STEPS="${PERF_STEPS:-10}"
PERF_METHODS="${PERF_METHODS:-hitrs,mcc,crossclr}"
T_PYTEST="${T_PYTEST:-60}" T_SMOKE="${T_SMOKE:-170}" T_EAGER="${T_EAGER:-160}" T_BF16="${T_BF16:-45}" \
    T_COMPILE="${T_COMPILE:-120}"                # 555 s + start-up: run it with a 590 s limit

mkdir -p "$OUT" "$WORK/logs"
STATUS="$OUT/status.txt"
: > "$STATUS"
prec_flag=()
[ -n "$PRECISION" ] && prec_flag=(--precision "$PRECISION")
export PYTHONUNBUFFERED=1

stage() {  # stage NAME SECONDS COMMAND...
    local name="$1" limit="$2"; shift 2
    local start rc
    start=$(date +%s)
    echo "[gpu_check] $name: $*" >> "$STATUS"
    timeout --signal=TERM --kill-after=10 "$limit" "$@" > "$WORK/logs/$name.log" 2>&1
    rc=$?
    { echo "[gpu_check] $name: exit $rc after $(( $(date +%s) - start )) s (limit $limit s)"
      grep -v '^W[0-9]\{4\} ' "$WORK/logs/$name.log" | tail -n "${TAIL:-30}"; echo; } >> "$STATUS"
}

{ command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
  "$PY" -c "import torch, sys; print(sys.version.split()[0], torch.__version__, torch.version.cuda, torch.cuda.is_available())"
  nproc; echo; } >> "$STATUS" 2>&1

stage pytest_cuda "$T_PYTEST" "$PY" -m pytest -p no:cacheprovider -q -k cuda \
    tests/methods/test_precision_bf16.py tests/datasets/test_data_augment.py
# shellcheck disable=SC2086  # SMOKE_SCOPE is a list of flags
stage smoke "$T_SMOKE" "$PY" -m benchmarks.run $SMOKE_SCOPE --profile paper --smoke --device "$DEVICE" \
    --precision "$SMOKE_PRECISION" --cache-dir "$WORK/cache" --out "$WORK/smoke" --no-progress --no-report
stage perf_eager "$T_EAGER" "$PY" -m benchmarks.perf --device "$DEVICE" --profile "$PERF_PROFILE" --steps "$PERF_STEPS" \
    --methods "$PERF_METHODS" "${prec_flag[@]}" --out "$OUT/perf_eager.json"
stage perf_bf16 "$T_BF16" "$PY" -m benchmarks.perf --device "$DEVICE" --profile "$PERF_PROFILE" --steps "$PERF_STEPS" \
    --methods mcc,crossclr --phases pretrain --patterns ours --precision bf16 --out "$OUT/perf_bf16.json"
stage perf_compile "$T_COMPILE" "$PY" -m benchmarks.perf --device "$DEVICE" --profile "$PERF_PROFILE" --steps "$PERF_STEPS" \
    --methods "$PERF_METHODS" --compile --patterns ours --phases pretrain "${prec_flag[@]}" --out "$OUT/perf_compile.json"

"$PY" - "$WORK/smoke" >> "$STATUS" 2>&1 <<'EOF'
import json, math, pathlib, sys
records = [json.loads(p.read_text()) for p in pathlib.Path(sys.argv[1]).rglob("*.json")
           if p.parent.name == "records"]
bad = [r.get("run_id") for r in records
       if any(isinstance(v, float) and not math.isfinite(v) for v in (r.get("metrics") or {}).values())]
print(f"[gpu_check] smoke records: {len(records)}, with a non-finite metric: {len(bad)} {bad[:5]}")
EOF
tar czf "$OUT/logs.tar.gz" -C "$WORK" --exclude='*.pt' --exclude='cache' --exclude='*.bin' logs smoke 2>> "$STATUS"
ls -l "$OUT" >> "$STATUS"
cat "$STATUS"
