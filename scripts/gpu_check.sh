#!/usr/bin/env bash
# On a lent CUDA machine, in one call of under 5 minutes: the test suite on the cuda device, the
# benchmarks against PyTorch CUDA (autocast's speed-up among them), and a 40-second run of the
# character-level GPT. Results go under $OUT when it is set (else /tmp/gpuad-gpu-check).
#   PYTHONPATH=. bash scripts/gpu_check.sh
# Needs CuPy, numpy, pytest (and torch for the comparison) already installed; installs nothing.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
out="${OUT:-/tmp/gpuad-gpu-check}"
mkdir -p "$out"

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | tee "$out/gpu.txt"
python3 -c "import cupy, numpy, gpuad; print('cupy', cupy.__version__, 'numpy', numpy.__version__, \
'cuda available', gpuad.cuda.is_available())" 2>&1 | tee -a "$out/gpu.txt"
python3 -c "import gpuad, sys; sys.exit(0 if gpuad.cuda.is_available() else 1)" || {
    echo "gpu_check: CuPy sees no CUDA GPU here; nothing to check" | tee -a "$out/gpu.txt"; exit 1; }

# Every test that runs on the cuda device (the device fixture's 'cuda' ids) or is marked gpu, NCCL
# included (world size 1: NCCL refuses two ranks on one GPU); spread over 8 processes when
# pytest-xdist is there, since a fresh machine compiles every CuPy kernel once.
parallel=$(python3 -c "import xdist" 2>/dev/null && echo "-n 8")
timeout 130 python3 -m pytest -q -p no:cacheprovider -p no:benchmark $parallel -rfE -k "cuda or gpu" tests 2>&1 \
    | tee "$out/tests.txt"
tests_rc=${PIPESTATUS[0]}

timeout 110 python3 scripts/bench.py --all --device cuda --repeats 3 --json "$out/bench.jsonl" 2>&1 \
    | tee "$out/bench.txt"
bench_rc=${PIPESTATUS[0]}

# What the character-level GPT reaches on the GPU in 40 s (the CPU default run: 1.63 nats/char
# in 6 min 18 s), when the corpus is there.
text="${GPUAD_DATA:-../shared/data}/tinyshakespeare/input.txt"
charlm_rc=0
if [ -f "$text" ]; then
    timeout 60 python3 scripts/train_charlm.py --device cuda --text "$text" --time-limit 40 \
        --no-progress --metrics "$out/charlm.jsonl" --checkpoint /tmp/gpuad-charlm.ckpt 2>&1 \
        | tail -25 | tee "$out/charlm.txt"
    charlm_rc=${PIPESTATUS[0]}
fi

echo "gpu_check: tests rc=$tests_rc bench rc=$bench_rc charlm rc=$charlm_rc" | tee -a "$out/gpu.txt"
[ "$tests_rc" -eq 0 ] && [ "$bench_rc" -eq 0 ] && [ "$charlm_rc" -eq 0 ]
