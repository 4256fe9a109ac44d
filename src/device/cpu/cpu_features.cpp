#include "device/cpu/cpu_features.hpp"

#include "core/error.hpp"
#include "llaisys/runtime.h"

#include <cblas.h>
#include <cstdlib>
#include <fstream>
#include <omp.h>
#include <set>
#include <string>
#include <thread>

namespace llaisys::device::cpu {

namespace {

KernelPath detect() {
    if (const char *forced = std::getenv("LLAISYS_CPU_PATH")) { // for tests of every path
        std::string f = forced;
        if (f == "generic") return KernelPath::Generic;
        if (f == "avx2" && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
            return KernelPath::Avx2;
    }
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("fma") &&
        __builtin_cpu_supports("f16c"))
        return KernelPath::Avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
        __builtin_cpu_supports("f16c"))
        return KernelPath::Avx2;
    return KernelPath::Generic;
}

// Physical cores: distinct (package, core id) pairs; hyperthreads share a core's FMA
// units, so using them slows dense kernels down.
int physical_cores() {
    std::set<std::string> cores;
    unsigned n = std::thread::hardware_concurrency();
    for (unsigned i = 0; i < n; ++i) {
        std::string base = "/sys/devices/system/cpu/cpu" + std::to_string(i) + "/topology/";
        std::ifstream pkg(base + "physical_package_id"), core(base + "core_id");
        std::string p, c;
        if (!(pkg >> p) || !(core >> c)) return n > 0 ? int(n) : 1;
        cores.insert(p + ":" + c);
    }
    return cores.empty() ? 1 : int(cores.size());
}

int default_threads() {
    if (const char *env = std::getenv("LLAISYS_NUM_THREADS")) {
        int n = std::atoi(env);
        if (n > 0) return n;
    }
    return physical_cores();
}

int g_threads = 0;

void apply_threads(int n) {
    g_threads = n;
    omp_set_num_threads(n);
    scipy_openblas_set_num_threads(1); // linear runs sgemm inside its own OpenMP threads
}

} // namespace

KernelPath kernel_path() {
    static const KernelPath path = detect();
    return path;
}

int num_threads() {
    if (g_threads == 0) apply_threads(default_threads());
    return g_threads;
}

} // namespace llaisys::device::cpu

__C llaisysStatus_t llaisysSetNumThreads(int n) {
    return llaisys::api_guard([&] {
        llaisys::device::cpu::apply_threads(n > 0 ? n : llaisys::device::cpu::default_threads());
    });
}

__C int llaisysGetNumThreads(void) { return llaisys::device::cpu::num_threads(); }

__C const char *llaisysCpuKernelPath(void) {
    switch (llaisys::device::cpu::kernel_path()) {
    case llaisys::device::cpu::KernelPath::Avx512:
        return "avx512";
    case llaisys::device::cpu::KernelPath::Avx2:
        return "avx2";
    default:
        return "generic";
    }
}
