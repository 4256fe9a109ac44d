// Decode steps as CUDA graphs: the kernels of one step of a given batch size are captured
// once and replayed, so a step costs one launch instead of hundreds.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <vector>

namespace llaisys::models::nvidia {

class StepGraphs {
public:
    StepGraphs() = default;
    StepGraphs(const StepGraphs &) = delete;
    StepGraphs &operator=(const StepGraphs &) = delete;
    ~StepGraphs();

    // Replays the graph kept under key (a batch shape) when it was captured over the same
    // buffers.
    // Otherwise runs body directly the first time (cuBLAS and the allocator warm up) and
    // captures it the next: body only launches work on the device's stream (no copy, no
    // allocation, no synchronisation); the graph replaces a stale one and runs. body's
    // argument says whether its launches execute now (true) or are being captured (false),
    // so a caller knows what work an exception interrupted.
    void run(size_t key, const std::vector<const void *> &buffers,
             const std::function<void(bool executes)> &body);

private:
    struct Graph {
        void *exec; // cudaGraphExec_t; null: body ran once over these buffers, not captured
        std::vector<const void *> buffers;
    };
    std::map<size_t, Graph> graphs_;
};

} // namespace llaisys::models::nvidia
