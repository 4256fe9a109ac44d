#!/usr/bin/env bash
# A/B on the lent GPU in one call: a base revision (A) and the working tree (B) built side by
# side, optionally B's GPU tests, then single-stream decode benchmarks interleaved A, B, A,
# B, so that both are measured under the same conditions (the machines are shared and noisy).
#
#   git archive --format=tar HEAD -o .devrun/base.tar       # here: A's sources (the device
#                                                          # copy of the tree has no .git)
#   scripts/gpu_ab.sh [runs] [bench_gpu.py args...]        # on the device, carrying .devrun
#                                                          # and .whl
#
# AB_TESTS="test/core/test_core_decode.py ..." runs those tests on B first. Logs go to $OUT
# (or /tmp/gpu_ab).
set -uo pipefail
runs=${1:-2}
shift || true
cd "$(dirname "$0")/.."
unset CC CXX # the system compiler: nvcc's host compiler must match Python's libstdc++
logs=${OUT:-/tmp/gpu_ab}
mkdir -p "$logs"
[ -f .devrun/base.tar ] || {
    echo "no .devrun/base.tar: git archive the base revision first"
    exit 2
}
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
fi
export PYTHONUNBUFFERED=1
base=/tmp/gpu_ab_base
rm -rf "$base" && mkdir -p "$base" && tar -xf .devrun/base.tar -C "$base"

build() {
    cmake -S "$1" -B "$1/build/gpu-check" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLLAISYS_CUDA=ON \
        >"$2" 2>&1 && cmake --build "$1/build/gpu-check" -j "$(($(nproc) / 2))" >>"$2" 2>&1
}
start=$(date +%s)
build "$base" "$logs/build_a.log" &
built_a=$!
build "$PWD" "$logs/build_b.log" || {
    tail -40 "$logs/build_b.log"
    exit 1
}
wait $built_a || {
    tail -40 "$logs/build_a.log"
    exit 1
}
echo "build: $(($(date +%s) - start)) s"

if [ -n "${AB_TESTS:-}" ]; then
    # shellcheck disable=SC2086 # a list of test files
    LLAISYS_LIBRARY=$PWD/build/gpu-check/libllaisys.so PYTHONPATH=/tmp/site \
        LLAISYS_TEST_DEVICE=nvidia LLAISYS_RUN_PARITY=always python3 -m pytest -q -rfE \
        -p no:cacheprovider $AB_TESTS 2>&1 | tail -15 | tee "$logs/tests.log"
fi

bench() { # a tree whose build/gpu-check holds its library, then bench_gpu.py's args
    local dir=$1
    shift
    (cd "$dir" && LLAISYS_LIBRARY=$dir/build/gpu-check/libllaisys.so PYTHONPATH=/tmp/site:$dir \
        python3 scripts/bench_gpu.py --skip-hf --skip prefill --skip throughput "$@" 2>&1 |
        grep -E "^decode  *llaisys")
}
for i in $(seq "$runs"); do
    echo "A $i: $(bench "$base" "$@")"
    echo "B $i: $(bench "$PWD" "$@")"
done | tee "$logs/bench.log"
