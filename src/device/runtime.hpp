// Per-device runtime tables (include/llaisys/runtime.h) and the CPU feature probe.
#pragma once

#include "core/error.hpp"
#include "llaisys/runtime.h"

namespace llaisys::device {

namespace cpu {
const LlaisysRuntimeAPI *runtime_api();
} // namespace cpu

#ifdef LLAISYS_ENABLE_NVIDIA
namespace nvidia {
const LlaisysRuntimeAPI *runtime_api();
// Free bytes (driver's free plus the allocator's cached blocks) and total of a device.
void memory_info(int device_id, size_t *free_bytes, size_t *total_bytes);
} // namespace nvidia
#endif

// Table of a device type; throws LLAISYS_ERR_DEVICE when that backend is not built.
const LlaisysRuntimeAPI *runtime_api(llaisysDeviceType_t device);

// Throws LLAISYS_ERR_DEVICE unless device_id names a present device of that type.
void check_device(llaisysDeviceType_t device, int device_id);

} // namespace llaisys::device
