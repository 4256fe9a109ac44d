// Before any llaisys header: llaisys.h defines __C, a parameter name in the intrinsics headers.
#include <immintrin.h>

#include "models/cpu/attention_task_impl.hpp"

namespace llaisys::models::cpu {

AttentionTaskFn attention_task_avx512(llaisysDataType_t dtype) { return attention_task_for(dtype); }

} // namespace llaisys::models::cpu
