// Which SIMD kernel family this CPU runs, decided once at run time.
#pragma once

namespace llaisys::device::cpu {

enum class KernelPath { Generic, Avx2, Avx512 };

KernelPath kernel_path();
// Threads the CPU kernels use (OpenMP and BLAS alike).
int num_threads();

} // namespace llaisys::device::cpu
