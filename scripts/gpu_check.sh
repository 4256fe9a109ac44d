#!/usr/bin/env bash
# One call on the lent GPU: build the CUDA core, run its tests, time the benchmarks, and
# print a short summary last (logs under $OUT, or /tmp/gpu_check).
#
#   scripts/gpu_check.sh quick   # attention, decode and GPU parity tests; benchmarks
#                                # without transformers, kernels of a prefill and the
#                                # engine's step phases profiled
#   scripts/gpu_check.sh tests   # stage0, parity and the server end to end on the GPU
#   scripts/gpu_check.sh bench   # every benchmark with transformers as the peer (the
#                                # figures of the notes; about 5 minutes)
#
# Wheels in .whl (pytest, hypothesis, gguf, scipy-openblas32, ...) are installed first
# when the folder is there: the device machine has no network.
set -uo pipefail
mode=${1:-quick}
cd "$(dirname "$0")/.."
unset CC CXX # the system compiler: nvcc's host compiler must match Python's libstdc++
logs=${OUT:-/tmp/gpu_check}
mkdir -p "$logs"
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site
fi
export PYTHONUNBUFFERED=1

start=$(date +%s)
cmake -S . -B build/gpu-check -G Ninja -DCMAKE_BUILD_TYPE=Release -DLLAISYS_CUDA=ON \
    >"$logs/build.log" 2>&1 &&
    cmake --build build/gpu-check -j "$(nproc)" >>"$logs/build.log" 2>&1 ||
    {
        tail -40 "$logs/build.log"
        exit 1
    }
echo "build: $(($(date +%s) - start)) s"
export LLAISYS_LIBRARY=$PWD/build/gpu-check/libllaisys.so

start=$(date +%s)
bench=(--skip-hf --profile)
case $mode in
tests)
    python3 scripts/run_tests.py --suite stage0 --device nvidia 2>&1 | tee "$logs/tests.log"
    python3 scripts/run_tests.py --suite parity --device nvidia --run-parity always 2>&1 |
        tee -a "$logs/tests.log"
    # The OpenAI-compatible server end to end on the GPU (fastapi, uvicorn and openai travel
    # as wheels in .whl).
    LLAISYS_TEST_DEVICE=nvidia python3 -m pytest -q -rfEs -p no:cacheprovider \
        test/online/test_online_engine_e2e.py 2>&1 | tee -a "$logs/tests.log"
    ;;
bench) bench=() ;;
*)
    LLAISYS_TEST_DEVICE=nvidia LLAISYS_RUN_PARITY=always python3 -m pytest -q -rfEs \
        -p no:cacheprovider test/ops/test_ops_self_attention.py test/ops/test_ops_add.py \
        test/ops/test_ops_swiglu.py test/ops/test_ops_linear_swiglu.py \
        test/core/test_core_prefill_attention.py \
        test/core/test_core_decode.py test/core/test_core_decode_graph.py \
        test/parity/test_parity_gpu.py 2>&1 | tee "$logs/tests.log"
    ;;
esac
echo "tests: $(($(date +%s) - start)) s"

if [ "$mode" != tests ]; then
    start=$(date +%s)
    python3 scripts/bench_gpu.py "${bench[@]}" 2>&1 | tee "$logs/bench.log"
    echo "bench: $(($(date +%s) - start)) s"
fi

echo "==== summary ($mode) ===="
[ -f "$logs/tests.log" ] && grep -E "^(FAILED|ERROR)|passed|failed|\[run_tests\].*rc=" \
    "$logs/tests.log" | tail -12
[ -f "$logs/bench.log" ] &&
    grep -E "^(decode|prefill|throughput) |TFLOP|transformers .* s$" "$logs/bench.log"
