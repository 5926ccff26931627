#include "engine/cuda/cuda_graph.h"

#include <cuda_runtime_api.h>

#include <string>

#include "engine/core/error.h"
#include "kernels/cuda/cuda_check.h"

namespace lattice {

namespace {

// Ends a capture that failed or threw, discarding what it recorded, and clears the error it left.
void abandon_capture(cudaStream_t stream) {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  if (cudaStreamIsCapturing(stream, &status) == cudaSuccess && status != cudaStreamCaptureStatusNone) {
    cudaGraph_t partial = nullptr;
    cudaStreamEndCapture(stream, &partial);
    if (partial) cudaGraphDestroy(partial);
  }
  cudaGetLastError();
}

std::string describe(cudaError_t e) { return std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e); }

}  // namespace

CudaGraph::CudaGraph(CUstream_st* stream, const std::function<void()>& enqueue) {
  CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  try {
    enqueue();
  } catch (const std::exception& e) {
    abandon_capture(stream);
    LATTICE_THROW("CUDA graph capture failed: ", e.what());
  }
  cudaGraph_t graph = nullptr;
  const cudaError_t ended = cudaStreamEndCapture(stream, &graph);
  if (ended != cudaSuccess || graph == nullptr) {
    if (graph) cudaGraphDestroy(graph);
    abandon_capture(stream);
    LATTICE_THROW("CUDA graph capture failed: ", describe(ended),
                  " (something in the step synchronised the host or allocated)");
  }
  cudaGraphExec_t exec = nullptr;
  const cudaError_t made = cudaGraphInstantiateWithFlags(&exec, graph, 0);
  cudaGraphDestroy(graph);
  if (made != cudaSuccess) {
    cudaGetLastError();
    LATTICE_THROW("CUDA graph instantiation failed: ", describe(made));
  }
  exec_ = exec;
  // The one-time upload of the graph to the device happens now (start-up), not at the first replay.
  const cudaError_t uploaded = cudaGraphUpload(exec_, stream);
  if (uploaded != cudaSuccess) {
    cudaGetLastError();
    cudaGraphExecDestroy(exec_);
    exec_ = nullptr;
    LATTICE_THROW("CUDA graph upload failed: ", describe(uploaded));
  }
}

CudaGraph::~CudaGraph() {
  if (exec_) cudaGraphExecDestroy(exec_);
}

void CudaGraph::launch(CUstream_st* stream) const { CUDA_CHECK(cudaGraphLaunch(exec_, stream)); }

}  // namespace lattice
