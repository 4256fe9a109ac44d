#include "models/nvidia/step_graph.hpp"

#include "device/nvidia/nvidia_common.cuh"

namespace llaisys::models::nvidia {

using namespace device::nvidia;

StepGraphs::~StepGraphs() {
    for (auto &[key, g] : graphs_)
        if (g.exec) cudaGraphExecDestroy(cudaGraphExec_t(g.exec));
}

void StepGraphs::run(size_t key, const std::vector<const void *> &buffers,
                     const std::function<void(bool executes)> &body) {
    auto it = graphs_.find(key);
    if (it != graphs_.end() && it->second.buffers == buffers && it->second.exec) {
        check_cuda(cudaGraphLaunch(cudaGraphExec_t(it->second.exec), stream()), "cudaGraphLaunch");
        return;
    }
    const bool seen = it != graphs_.end() && it->second.buffers == buffers;
    if (it != graphs_.end()) {
        if (it->second.exec) cudaGraphExecDestroy(cudaGraphExec_t(it->second.exec));
        graphs_.erase(it);
    }
    if (!seen) {
        body(true);
        graphs_.emplace(key, Graph{nullptr, buffers});
        return;
    }
    cudaGraph_t graph = nullptr;
    check_cuda(cudaStreamBeginCapture(stream(), cudaStreamCaptureModeThreadLocal),
               "cudaStreamBeginCapture");
    try {
        body(false);
    } catch (...) {
        cudaStreamEndCapture(stream(), &graph);
        if (graph) cudaGraphDestroy(graph);
        cudaGetLastError();
        throw;
    }
    check_cuda(cudaStreamEndCapture(stream(), &graph), "cudaStreamEndCapture");
    cudaGraphExec_t exec = nullptr;
    const cudaError_t err = cudaGraphInstantiate(&exec, graph, 0);
    cudaGraphDestroy(graph);
    check_cuda(err, "cudaGraphInstantiate");
    graphs_.emplace(key, Graph{exec, buffers});
    check_cuda(cudaGraphLaunch(exec, stream()), "cudaGraphLaunch");
}

} // namespace llaisys::models::nvidia
