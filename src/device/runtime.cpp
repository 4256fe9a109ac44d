#include "device/runtime.hpp"

namespace llaisys::device {

const LlaisysRuntimeAPI *runtime_api(llaisysDeviceType_t device) {
    switch (device) {
    case LLAISYS_DEVICE_CPU:
        return cpu::runtime_api();
#ifdef LLAISYS_ENABLE_NVIDIA
    case LLAISYS_DEVICE_NVIDIA:
        return nvidia::runtime_api();
#endif
    default:
        fail(LLAISYS_ERR_DEVICE, "device type ", int(device), " is not built into this library");
    }
}

void check_device(llaisysDeviceType_t device, int device_id) {
    const LlaisysRuntimeAPI *api = runtime_api(device);
    int count = api->get_device_count();
    CHECK_DEVICE(device_id >= 0 && device_id < count, "device id ", device_id,
                 " out of range: ", count, " device(s) of type ", int(device), " present");
}

} // namespace llaisys::device

__C const LlaisysRuntimeAPI *llaisysGetRuntimeAPI(llaisysDeviceType_t device) {
    try {
        return llaisys::device::runtime_api(device);
    } catch (const llaisys::Error &e) {
        llaisys::set_last_error(e.what());
        return nullptr;
    }
}

__C int llaisysDeviceBuilt(llaisysDeviceType_t device) {
#ifdef LLAISYS_ENABLE_NVIDIA
    return device == LLAISYS_DEVICE_CPU || device == LLAISYS_DEVICE_NVIDIA;
#else
    return device == LLAISYS_DEVICE_CPU;
#endif
}

__C int llaisysDeviceCount(llaisysDeviceType_t device) {
    if (!llaisysDeviceBuilt(device)) return 0;
    return llaisys::device::runtime_api(device)->get_device_count();
}

__C llaisysStatus_t llaisysDeviceMemoryInfo(llaisysDeviceType_t device, int device_id,
                                            size_t *free_bytes, size_t *total_bytes) {
    return llaisys::api_guard([&] {
        CHECK_ARG(free_bytes && total_bytes, "llaisysDeviceMemoryInfo: null output");
        llaisys::device::check_device(device, device_id);
#ifdef LLAISYS_ENABLE_NVIDIA
        if (device == LLAISYS_DEVICE_NVIDIA)
            return llaisys::device::nvidia::memory_info(device_id, free_bytes, total_bytes);
#endif
        llaisys::fail(LLAISYS_ERR_DEVICE,
                      "llaisysDeviceMemoryInfo: no memory query for device "
                      "type ",
                      int(device));
    });
}
