#!/usr/bin/env bash
# Issue 16's GPU checks in one prepared run, for a session lent a GPU machine (STACK.md: Python 3.12 with torch
# and CUDA, no package index, nothing of ours installed). Each step has its own time limit, so one that hangs
# cannot take the others' time; every step's output goes to $OUT (what the device tool brings back).
#
#   first, on this machine: bash benchmarks/gpu_wheels.sh   (fills .whl/: onnxruntime for Python 3.12 at the
#          version pyproject asks for, onnxconverter-common and polygraphy; the GPU machine reaches no index)
#   run: bash benchmarks/gpu_checks.sh            (carry ".whl")
#   rehearse on a CPU machine: GPU_CHECKS_REHEARSE=1 bash benchmarks/gpu_checks.sh   (short limits; the CUDA
#   steps then say "needs a CUDA GPU" or skip, which is what a rehearsal checks)
#
# Steps, most valuable first: the gpu tests (graph capture, event windows, NVML by UUID, attackers on the
# device), gpu_latency --quick (ours vs torch.utils.benchmark, eager and graph, samplers on and off),
# decoder_throughput (CPU vs CUDA images/s, goal >= 20x), and one `audit --device cuda` end to end.
set -u
OUT=${OUT:-/tmp/gpu_checks_out}
mkdir -p "$OUT"
SITE=${GPU_CHECKS_SITE:-/tmp/edgesplit-site}
export PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
if [ -n "${GPU_CHECKS_REHEARSE:-}" ]; then scale=4; else scale=1; fi

step() {  # step NAME SECONDS COMMAND...: run it under a limit, log to $OUT/NAME.txt, note its status
    local name=$1 limit=$(( $2 / scale )); shift 2
    local start=$SECONDS
    echo "== $name (limit ${limit}s): $*" | tee -a "$OUT/steps.txt"
    timeout -k 10 "$limit" "$@" >"$OUT/$name.txt" 2>&1  # -k: a child that ignores TERM (NCCL, elastic) is killed
    local rc=$?
    echo "== $name: exit $rc after $(( SECONDS - start ))s" | tee -a "$OUT/steps.txt"
    tail -n 25 "$OUT/$name.txt"
}

{
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 || echo "no nvidia-smi"
    $PY -c 'import sys, torch; print(sys.version.split()[0], torch.__version__, torch.version.cuda, torch.cuda.is_available())'
    lscpu | grep -E '^(Model name|CPU\(s\))' || true
} >"$OUT/machine.txt" 2>&1
cat "$OUT/machine.txt"

if [ -z "${GPU_CHECKS_REHEARSE:-}" ] || [ ! -d "$SITE/edgesplit" ]; then
    mkdir -p "$SITE"
    for wheel in .whl/*.whl; do  # one at a time: a rehearsal's Python takes the pure ones, not a cp312 build
        [ -e "$wheel" ] || continue
        $PY -m pip install -q --upgrade --no-index --no-deps --target "$SITE" "$wheel" 2>/dev/null \
            || echo "not installed here (not for this Python): $wheel"
    done
    # --upgrade: a rerun on a warm machine replaces the copy installed by the run before
    $PY -m pip install -q --upgrade --no-index --no-deps --no-build-isolation --target "$SITE" . \
        || { echo "install failed"; exit 2; }
fi
export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
# what the steps will import, first: an onnxruntime older than pyproject's floor fails every INT8 export (its
# calibration cache API), which would cost every step below its time
$PY -c 'import onnxruntime, torch; from onnxruntime.quantization.calibrate import save_tensors_data; print("onnxruntime", onnxruntime.__version__, "from", onnxruntime.__file__, "torch", torch.__version__)' \
    2>&1 | tee -a "$OUT/machine.txt" | tail -n 3

step gpu_tests 130 $PY -m pytest -q -p no:cacheprovider \
    tests/runners tests/runtime/test_timing_windows.py tests/models/test_gpu.py tests/attacks/test_gpu_training.py
step gpu_latency 150 $PY benchmarks/gpu_latency.py --quick  # prints each row as it is measured
step decoder_throughput 100 $PY -u benchmarks/decoder_throughput.py --seconds 10 --samples 512 --cpu-threads 2
step audit_cuda 60 $PY -m edgesplit.cli.main audit --preset gpz-classifier4 --cuts features.1 --precisions int8 \
    --data digits --device cuda --train-epochs 1 --epochs 3 --out /tmp/gpu_checks_audit
cp /tmp/gpu_checks_audit/preset.json "$OUT/audit_preset.json" 2>/dev/null
cp /tmp/gpu_checks_audit/features.1-int8/audit.json "$OUT/audit_int8.json" 2>/dev/null
# 440 s of limits in all (480 s with each step's 10 s kill grace), under the device tool's 600 s a command with
# the install, and short enough that a machine started for it (minutes of the 15-minute budget) still runs it;
# $OUT holds 8 files, the most the tool brings back
echo "all steps ran; see $OUT/steps.txt"
