#!/usr/bin/env python3
"""The one test entry point: `python scripts/run_tests.py --suite all`.

Stages follow the architecture milestones (see the seed description):
  stage0  core: C API, tensors, ops, model decode, KV semantics, loaders (test/core, test/ops)
  stage1  offline engine: scheduler, block manager, executor, LLM (test/engine, test/offline)
  stage2  online serving and sampling (test/online)
  parity  against Hugging Face transformers (test/parity), gated by --run-parity
  sanitize  stage0 and stage1 again against the core built with AddressSanitizer +
          UndefinedBehaviorSanitizer (LLAISYS_SANITIZE=ON, in build/asan; cmake and ninja
          come with the test extras), --run-sanitize auto|always|never
  cuda    stage0 again against the core built with the NVIDIA backend (LLAISYS_CUDA=ON, in
          build/cuda): compiles the CUDA sources wherever nvcc is; without a GPU the device
          tests skip and the CPU ones check that the CUDA build serves the CPU unchanged;
          --run-cuda auto|always|never (auto: when nvcc and cuBLAS are there; cuBLAS
          comes with the toolkit or the `cuda` extra: pip install -e ".[test,cuda]")
Each stage runs as its own pytest process; the exit code is non-zero when any stage fails
or a selected stage has no tests yet.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STAGES = {
    "stage0": ["test/core", "test/ops"],
    "stage1": ["test/engine", "test/offline"],
    "stage2": ["test/online"],
    "parity": ["test/parity"],
    "sanitize": ["test/core", "test/ops", "test/engine", "test/offline"],
    "cuda": ["test/core", "test/ops"],
}
# Stages that rerun the tests above against a core rebuilt with these CMake options, in
# build/<dir>.
REBUILT = {
    "sanitize": ("asan", ["-DCMAKE_BUILD_TYPE=RelWithDebInfo", "-DLLAISYS_SANITIZE=ON"]),
    "cuda": ("cuda", ["-DCMAKE_BUILD_TYPE=Release", "-DLLAISYS_CUDA=ON"]),
}
POLICIES = ("auto", "always", "never")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--suite", choices=[*STAGES, "all"], default="all")
    p.add_argument("--model-path", default=None,
                   help="a Hugging Face model directory for the infer/parity baselines")
    p.add_argument("--run-parity", choices=POLICIES, default="auto",
                   help="auto: run parity when torch and transformers are importable")
    p.add_argument("--run-hf", choices=POLICIES, default="auto",
                   help="HF-dependent checks inside stage0 (auto: when transformers is importable)")
    p.add_argument("--run-sanitize", choices=POLICIES, default="auto",
                   help="the sanitize stage in --suite all (auto: when cmake and ninja are "
                        "on PATH)")
    p.add_argument("--run-cuda", choices=POLICIES, default="auto",
                   help="the cuda stage in --suite all (auto: when nvcc, cmake and ninja are "
                        "on PATH)")
    p.add_argument("--device", choices=["cpu", "nvidia"], default="cpu")
    p.add_argument("-k", dest="keyword", default=None, help="pytest -k expression")
    p.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    return p.parse_args()


def hf_available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("torch", "transformers"))


def selected_stages(args: argparse.Namespace) -> list[str]:
    if args.suite != "all":
        return [args.suite]
    stages = ["stage0", "stage1", "stage2"]
    optional = [
        ("parity", args.run_parity, hf_available(), "transformers/torch not installed"),
        ("sanitize", args.run_sanitize, build_tools() and asan_runtime(),
         "no cmake/ninja, or no ASan runtime"),
        ("cuda", args.run_cuda, cuda_toolchain() and build_tools(),
         "no nvcc + cuBLAS, or no cmake/ninja"),
    ]
    for stage, policy, available, missing in optional:
        if policy == "always" or (policy == "auto" and available):
            stages.append(stage)
        else:
            print(f"[run_tests] {stage} skipped (--run-{stage} {policy}"
                  f"{'' if available else ', ' + missing})")
    return stages


def build_tools() -> bool:
    return all(shutil.which(tool) for tool in ("cmake", "ninja"))


def compiler_file(compiler: str, name: str) -> str:
    """The path the compiler links name from (the bare name when it has none)."""
    return subprocess.run([compiler, f"-print-file-name={name}"], capture_output=True,
                          text=True).stdout.strip()


def asan_runtime() -> bool:
    """Whether the C++ compiler finds an ASan runtime to preload (sanitizer_env)."""
    cxx = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++")
    found = compiler_file(cxx, "libasan.so") if cxx else ""
    return os.path.isabs(found) and os.path.exists(found)


def cuda_toolchain() -> bool:
    """nvcc on PATH and cuBLAS's header where CMakeLists.txt looks: the toolkit or the
    nvidia-cublas wheel."""
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        return False
    places = [Path(nvcc).resolve().parent.parent / "include"]
    spec = importlib.util.find_spec("nvidia")
    if spec is not None and spec.submodule_search_locations:
        places += [Path(p) / "cu13" / "include" for p in spec.submodule_search_locations]
    return any((p / "cublas_v2.h").is_file() for p in places)


def rebuilt_env(stage: str, env: dict[str, str]) -> dict[str, str] | None:
    """Builds the core with the stage's CMake options (incrementally) and returns the
    environment that runs Python against it; None when the build failed."""
    folder, options = REBUILT[stage]
    build_dir = ROOT / "build" / folder
    start = time.monotonic()
    configure = ["cmake", "-S", str(ROOT), "-B", str(build_dir), "-G", "Ninja", *options]
    build = ["cmake", "--build", str(build_dir), "-j", str(os.cpu_count() or 1)]
    for cmd in (configure, build):
        print(f"[run_tests] {stage}: {' '.join(cmd)}", flush=True)
        if subprocess.run(cmd, cwd=ROOT).returncode != 0:
            return None
    print(f"[run_tests] {stage}: built in {time.monotonic() - start:.0f}s", flush=True)
    env = {**env, "LLAISYS_LIBRARY": str(build_dir / "libllaisys.so")}
    return sanitizer_env(build_dir, env) if stage == "sanitize" else env


def sanitizer_env(build_dir: Path, env: dict[str, str]) -> dict[str, str]:
    cache = (build_dir / "CMakeCache.txt").read_text()
    compiler = re.search(r"^CMAKE_CXX_COMPILER:\w+=(.+)$", cache, re.M).group(1)

    # The ASan runtime must come first; libstdc++ is preloaded with it so ASan's __cxa_throw
    # interceptor finds the real one (python itself does not link libstdc++).
    preload = f"{compiler_file(compiler, 'libasan.so')} {compiler_file(compiler, 'libstdc++.so')}"
    return {**env, "LD_PRELOAD": preload,
            # CPython keeps its allocations to the end: leak reports would be noise.
            "ASAN_OPTIONS": "detect_leaks=0",
            "UBSAN_OPTIONS": "halt_on_error=1:print_stacktrace=1"}


def has_tests(dirs: list[str]) -> bool:
    return any((ROOT / d).rglob("test_*.py") for d in dirs if (ROOT / d).is_dir())


SUMMARY = re.compile(r"(\d+) (passed|failed|error|errors|skipped)")


def run_stage(stage: str, args: argparse.Namespace, env: dict[str, str]) -> dict[str, int]:
    dirs = STAGES[stage]
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    if not has_tests(dirs):
        print(f"[run_tests] {stage}: NO TESTS WRITTEN in {', '.join(dirs)} — counted as failed")
        counts["failed"] = 1
        return counts
    cmd = [sys.executable, "-m", "pytest", "-q", "-rfEs", "-p", "no:cacheprovider", *dirs]
    if args.keyword:
        cmd += ["-k", args.keyword]
    cmd += args.pytest_args
    print(f"[run_tests] {stage}: {' '.join(cmd[1:])}", flush=True)
    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    last = ""
    assert proc.stdout is not None
    for line in proc.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        if line.strip():
            last = line
    rc = proc.wait()
    for n, what in SUMMARY.findall(last):
        key = {"error": "failed", "errors": "failed"}.get(what, what)
        counts[key] += int(n)
    if rc not in (0, 5) and counts["failed"] == 0:
        counts["failed"] = 1  # pytest itself failed (collection, internal error)
    if rc == 5:
        print(f"[run_tests] {stage}: no test was collected — counted as failed")
        counts["failed"] += 1
    print(f"[run_tests] {stage}: rc={rc} in {time.monotonic() - start:.0f}s", flush=True)
    return counts


def main() -> int:
    args = parse_args()
    env = dict(os.environ)
    # Tests share two cores with the servers they start: idle OpenMP workers sleep instead
    # of spinning on a core another process needs (a speed setting, not a correctness one).
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    env["LLAISYS_RUN_PARITY"] = args.run_parity
    env["LLAISYS_RUN_HF"] = args.run_hf
    env["LLAISYS_TEST_DEVICE"] = args.device
    if args.model_path:
        env["LLAISYS_TEST_MODEL_PATH"] = str(Path(args.model_path).resolve())
    total = {"passed": 0, "failed": 0, "skipped": 0}
    results = {}
    for stage in selected_stages(args):
        stage_env = rebuilt_env(stage, env) if stage in REBUILT else env
        if stage_env is None:
            print(f"[run_tests] {stage}: the build failed — counted as failed")
            counts = {"passed": 0, "failed": 1, "skipped": 0}
        else:
            counts = run_stage(stage, args, stage_env)
        results[stage] = counts
        for k in total:
            total[k] += counts[k]
    print("\n[run_tests] summary")
    for stage, c in results.items():
        print(f"  {stage:8s} {c['passed']} passed, {c['failed']} failed, {c['skipped']} skipped")
    print(f"{total['passed']} passed, {total['failed']} failed, {total['skipped']} skipped")
    return 1 if total["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
