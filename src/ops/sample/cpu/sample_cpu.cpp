#include "ops/sample/cpu/sample_cpu.hpp"

#include "core/vec16.hpp"
#include "ops/argmax/cpu/argmax_cpu.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <type_traits>
#include <vector>

namespace llaisys::ops::cpu {

namespace {

// splitmix64 finaliser: a counter-based generator, so a draw depends on the seed alone.
double uniform01(uint64_t seed) {
    uint64_t z = seed + 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return double(z >> 11) * 0x1.0p-53;
}

// Candidate token ids with their unnormalised probabilities, indexed by token id.
struct RowScratch {
    std::vector<int32_t> ids;
    std::vector<float> prob;
};

// prob[id] = exp((logit - max) / T) for the candidate ids; returns their sum.
template <typename T>
double candidate_weights(const T *logits, const int32_t *ids, size_t n, float inv_t, float *prob) {
    float max_logit = -INFINITY;
    for (size_t c = 0; c < n; ++c) max_logit = std::max(max_logit, to_f32(logits[ids[c]]));
    double total = 0.0;
    for (size_t c = 0; c < n; ++c) {
        prob[ids[c]] = std::exp((to_f32(logits[ids[c]]) - max_logit) * inv_t);
        total += prob[ids[c]];
    }
    return total;
}

// The same over the whole row, 16 at a time: a step at batch 32 spent 5% of its time in
// the scalar loop above.
template <typename T> double row_weights(const T *logits, size_t vocab, float inv_t, float *prob) {
    const size_t full = vocab / kVec * kVec;
    f32x16 vmax = f32x16{} - INFINITY;
    for (size_t c = 0; c < full; c += kVec) vmax = max16(vmax, load16(logits + c));
    float max_logit = hmax(vmax);
    for (size_t c = full; c < vocab; ++c) max_logit = std::max(max_logit, to_f32(logits[c]));
    // Summed block by block as draw_in_id_order walks them, so its walk ends inside the total.
    double total = 0.0;
    for (size_t c = 0; c < full; c += kVec) {
        const f32x16 e = exp16((load16(logits + c) - max_logit) * inv_t);
        store16(prob + c, e);
        total += hsum(e);
    }
    for (size_t c = full; c < vocab; ++c) {
        f32x16 x = {};
        x[0] = (to_f32(logits[c]) - max_logit) * inv_t;
        total += prob[c] = exp16(x)[0];
    }
    return total;
}

// The id whose cumulative weight, in id order, first passes a uniform draw of the total:
// whole blocks of 16 are skipped by their sums.
int64_t draw_in_id_order(const float *prob, size_t vocab, double total, uint64_t seed) {
    const double target = uniform01(seed) * total;
    double cumulative = 0.0;
    size_t c = 0;
    for (; c + kVec <= vocab; c += kVec) {
        const double block = hsum(load16(prob + c));
        if (cumulative + block > target) break;
        cumulative += block;
    }
    for (; c < vocab; ++c) {
        cumulative += prob[c];
        if (target < cumulative) return int64_t(c);
    }
    // The sums' rounding left the target past the whole mass: the last id with any weight.
    size_t last = vocab - 1;
    while (last > 0 && !(prob[last] > 0.0f)) --last;
    return int64_t(last);
}

template <typename T>
int64_t sample_row(const T *logits, size_t vocab, const LlaisysSamplingParams &p, RowScratch &s) {
    if (p.temperature <= 0.0f || p.top_k == 1) return int64_t(argmax_row(logits, vocab));

    // More probable first; equal ones by lower id, so every order below is deterministic.
    auto higher = [&](int32_t a, int32_t b) {
        const float la = to_f32(logits[a]), lb = to_f32(logits[b]);
        return la > lb || (la == lb && a < b);
    };
    const bool top_k = p.top_k > 0 && size_t(p.top_k) < vocab;
    const float inv_t = 1.0f / p.temperature;
    s.prob.resize(vocab);
    if (!top_k && p.top_p >= 1.0f && p.min_p <= 0.0f) // plain temperature: no candidate list
        return draw_in_id_order(s.prob.data(), vocab,
                                row_weights(logits, vocab, inv_t, s.prob.data()), p.seed);
    s.ids.resize(vocab);
    std::iota(s.ids.begin(), s.ids.end(), 0);
    size_t n = vocab;
    bool sorted = false;
    if (top_k) {
        n = size_t(p.top_k);
        std::partial_sort(s.ids.begin(), s.ids.begin() + ptrdiff_t(n), s.ids.end(), higher);
        sorted = true;
    }

    // softmax(logits / T) over the candidates, unnormalised.
    const double total = sorted ? candidate_weights(logits, s.ids.data(), n, inv_t, s.prob.data())
                                : row_weights(logits, vocab, inv_t, s.prob.data());
    if (p.top_p < 1.0f) {
        // Sort only as deep as the nucleus reaches: a widening prefix, rarely the whole row.
        const double target = double(p.top_p) * total;
        size_t depth = std::min(n, size_t(256));
        size_t keep = n;
        for (;;) {
            if (!sorted)
                std::partial_sort(s.ids.begin(), s.ids.begin() + ptrdiff_t(depth),
                                  s.ids.begin() + ptrdiff_t(n), higher);
            double mass = 0.0;
            keep = 0;
            while (keep < depth && mass < target) mass += s.prob[s.ids[keep++]];
            if (mass >= target || depth == n) break;
            depth = std::min(n, depth * 8);
        }
        n = keep;
        sorted = true;
    }

    if (p.min_p > 0.0f) {
        float max_prob = 0.0f;
        for (size_t c = 0; c < n; ++c) max_prob = std::max(max_prob, s.prob[s.ids[c]]);
        const float threshold = p.min_p * max_prob;
        n = size_t(std::remove_if(s.ids.begin(), s.ids.begin() + ptrdiff_t(n),
                                  [&](int32_t id) { return s.prob[id] < threshold; }) -
                   s.ids.begin());
    }

    double kept = 0.0;
    for (size_t c = 0; c < n; ++c) kept += s.prob[s.ids[c]];
    const double target = uniform01(p.seed) * kept;
    double cumulative = 0.0;
    for (size_t c = 0; c < n; ++c) {
        cumulative += s.prob[s.ids[c]];
        if (target < cumulative) return s.ids[c];
    }
    return s.ids[n - 1]; // target rounded up to the whole mass
}

} // namespace

void sample(int64_t *out_ids, const std::byte *logits, llaisysDataType_t dtype, size_t rows,
            size_t vocab, ptrdiff_t row_stride, const LlaisysSamplingParams *params) {
    dispatch_float(dtype, "sample", [&](auto tag) {
        using T = std::remove_pointer_t<decltype(tag)>;
        auto *pl = reinterpret_cast<const T *>(logits);
#pragma omp parallel if (rows > 1)
        {
            RowScratch scratch;
#pragma omp for schedule(dynamic, 1)
            for (size_t r = 0; r < rows; ++r)
                out_ids[r] = sample_row(pl + ptrdiff_t(r) * row_stride, vocab, params[r], scratch);
        }
    });
}

} // namespace llaisys::ops::cpu
