// One captured CUDA graph (CUDA builds only): the work a function enqueues on a stream, recorded once and
// replayed with one launch. The function must be capture-safe: no host synchronisation, no allocation, no
// copy from pageable memory; every address it enqueues is baked into the graph, so a replay reads whatever those
// buffers hold at the time (the step metadata's fixed device mirror, the runner's fixed activation buffers).
#pragma once

#include <functional>

struct CUstream_st;      // cudaStream_t
struct CUgraphExec_st;   // cudaGraphExec_t

namespace lattice {

class CudaGraph {
 public:
  // Captures what `enqueue` puts on `stream` (thread-local capture mode) and instantiates it. If `enqueue` throws
  // or the capture or instantiation fails (an op synchronised or allocated, a library refused to be captured), the
  // capture is ended and discarded, the CUDA error state cleared, and a lattice::Error says why.
  CudaGraph(CUstream_st* stream, const std::function<void()>& enqueue);
  ~CudaGraph();
  CudaGraph(const CudaGraph&) = delete;
  CudaGraph& operator=(const CudaGraph&) = delete;

  // Enqueues one replay on `stream` (asynchronous, like the work it recorded).
  void launch(CUstream_st* stream) const;

 private:
  CUgraphExec_st* exec_ = nullptr;
};

}  // namespace lattice
