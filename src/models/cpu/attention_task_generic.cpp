#include "models/cpu/attention_task_impl.hpp"

namespace llaisys::models::cpu {

AttentionTaskFn attention_task_generic(llaisysDataType_t dtype) {
    return attention_task_for(dtype);
}

} // namespace llaisys::models::cpu
