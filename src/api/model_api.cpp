// C API of models and KV caches (include/llaisys/model.h).
#include "models/model.hpp"

using llaisys::api_guard;
using llaisys::models::KvCache;
using llaisys::models::Model;

struct LlaisysModel {
    Model model;
};
struct LlaisysKvCache {
    KvCache cache;
};

namespace {
Model &unwrap(llaisysModel_t m) {
    CHECK_ARG(m != nullptr, "null model handle");
    return m->model;
}
KvCache &unwrap(llaisysKvCache_t kv) {
    CHECK_ARG(kv != nullptr, "null KV cache handle");
    return kv->cache;
}
} // namespace

__C llaisysStatus_t llaisysModelCreate(const LlaisysModelMeta *meta, llaisysDeviceType_t device,
                                       int device_id, llaisysModel_t *out) {
    return api_guard([&] {
        CHECK_ARG(meta != nullptr && out != nullptr, "llaisysModelCreate: null argument");
        *out = new LlaisysModel{Model(*meta, device, device_id)};
    });
}

__C void llaisysModelDestroy(llaisysModel_t model) { delete model; }

__C llaisysStatus_t llaisysModelGetMeta(llaisysModel_t model, LlaisysModelMeta *out) {
    return api_guard([&] {
        CHECK_ARG(out != nullptr, "llaisysModelGetMeta: null out");
        *out = unwrap(model).meta();
    });
}

__C llaisysStatus_t llaisysModelSetWeight(llaisysModel_t model, const char *name, const void *data,
                                          llaisysDataType_t dtype, const size_t *shape,
                                          size_t ndim) {
    return api_guard([&] {
        CHECK_ARG(name != nullptr, "llaisysModelSetWeight: null name");
        CHECK_ARG(shape != nullptr || ndim == 0, "llaisysModelSetWeight: null shape");
        unwrap(model).set_weight(name, data, dtype, std::vector<size_t>(shape, shape + ndim));
    });
}

__C llaisysStatus_t llaisysModelCheckWeights(llaisysModel_t model) {
    return api_guard([&] { unwrap(model).check_weights(); });
}

__C llaisysStatus_t llaisysKvCacheCreate(llaisysModel_t model, const LlaisysKvCacheParams *params,
                                         llaisysKvCache_t *out) {
    return api_guard([&] {
        CHECK_ARG(params != nullptr && out != nullptr, "llaisysKvCacheCreate: null argument");
        *out = new LlaisysKvCache{KvCache(unwrap(model), *params)};
    });
}

__C void llaisysKvCacheDestroy(llaisysKvCache_t kv) { delete kv; }

__C llaisysStatus_t llaisysKvCacheGetStats(llaisysKvCache_t kv, LlaisysKvCacheStats *out) {
    return api_guard([&] {
        CHECK_ARG(out != nullptr, "llaisysKvCacheGetStats: null out");
        *out = unwrap(kv).stats();
    });
}

__C llaisysStatus_t llaisysKvCacheClear(llaisysKvCache_t kv) {
    return api_guard([&] { unwrap(kv).clear(); });
}

__C llaisysStatus_t llaisysKvCacheReleaseBlocks(llaisysKvCache_t kv, const int32_t *block_ids,
                                                size_t n) {
    return api_guard([&] { unwrap(kv).release_blocks(block_ids, n); });
}

__C llaisysStatus_t llaisysKvSeqRemove(llaisysKvCache_t kv, int32_t seq_id, int64_t p0,
                                       int64_t p1) {
    return api_guard([&] { unwrap(kv).seq_remove(seq_id, p0, p1); });
}

__C llaisysStatus_t llaisysKvSeqCopy(llaisysKvCache_t kv, int32_t src, int32_t dst, int64_t p0,
                                     int64_t p1) {
    return api_guard([&] { unwrap(kv).seq_copy(src, dst, p0, p1); });
}

__C llaisysStatus_t llaisysKvSeqKeep(llaisysKvCache_t kv, int32_t seq_id) {
    return api_guard([&] { unwrap(kv).seq_keep(seq_id); });
}

__C llaisysStatus_t llaisysKvSeqPosMax(llaisysKvCache_t kv, int32_t seq_id, int64_t *out) {
    return api_guard([&] {
        CHECK_ARG(out != nullptr, "llaisysKvSeqPosMax: null out");
        *out = unwrap(kv).seq_pos_max(seq_id);
    });
}

__C llaisysStatus_t llaisysModelDecode(llaisysModel_t model, llaisysKvCache_t kv,
                                       const LlaisysBatch *batch) {
    return api_guard([&] {
        CHECK_ARG(batch != nullptr, "llaisysModelDecode: null batch");
        unwrap(model).decode(unwrap(kv), *batch, true);
    });
}

__C llaisysStatus_t llaisysModelDecodeAsync(llaisysModel_t model, llaisysKvCache_t kv,
                                            const LlaisysBatch *batch) {
    return api_guard([&] {
        CHECK_ARG(batch != nullptr, "llaisysModelDecodeAsync: null batch");
        unwrap(model).decode(unwrap(kv), *batch, false);
    });
}

__C llaisysStatus_t llaisysModelFailAtLayer(llaisysModel_t model, int32_t layer) {
    return api_guard([&] { unwrap(model).fail_at_layer(layer); });
}

__C llaisysStatus_t llaisysModelSynchronize(llaisysModel_t model, int32_t max_pending) {
    return api_guard([&] {
        CHECK_ARG(max_pending >= 0, "llaisysModelSynchronize: max_pending must be >= 0, got ",
                  max_pending);
        unwrap(model).synchronize(size_t(max_pending));
    });
}
