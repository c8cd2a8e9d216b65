#!/usr/bin/env bash
# Fill .whl/ (git-ignored) with what benchmarks/gpu_checks.sh installs on the GPU machine, which reaches no
# package index and has Python 3.12 with an older onnxruntime (STACK.md): onnxruntime at pyproject's floor for
# cp312 (edgesplit's INT8 export needs its calibration-cache API), onnxconverter-common (fp16 export) and
# polygraphy (the timing peer). About 28 MB, under the 64 MiB a device run carries.
#
#   bash benchmarks/gpu_wheels.sh            then: run with carry [".whl"]: bash benchmarks/gpu_checks.sh
set -eu
PY=${PYTHON:-python3}
ORT=$(sed -n 's/.*"onnxruntime>=\([0-9.]*\)".*/\1/p' pyproject.toml)
mkdir -p .whl
"$PY" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
    --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d .whl \
    "onnxruntime==${ORT:?no onnxruntime floor in pyproject.toml}.*" onnxconverter-common polygraphy
ls -l .whl
