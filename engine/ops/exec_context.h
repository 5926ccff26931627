// Where and how an op runs: the device every operand lives on and, on a GPU, the compute stream, the
// cuBLASLt planner and a scratch buffer, all owned by the rank's DeviceContext (engine/cuda/device_context.h).
// Ops enqueue on the stream and never synchronise the host (except moe_group, which returns its per-expert
// counts to the host); a CPU op runs to completion before it returns.
#pragma once

#include "engine/core/tensor.h"

struct CUstream_st;  // cudaStream_t, without the CUDA headers

namespace lattice::kernels::cuda {
class GemmLt;
}

namespace lattice::ops {

class OpProfiler;

struct ExecContext {
  Device device = Device::cpu();
  CUstream_st* stream = nullptr;          // cuda only
  kernels::cuda::GemmLt* gemm = nullptr;  // cuda only
  Tensor scratch;                         // cuda only: bytes (i8 as u8 [n]) for ops' temporaries, sized at start-up
  OpProfiler* profiler = nullptr;         // when set, the model times its ops into it (engine/ops/op_profile.h)

  static ExecContext cpu() { return {}; }
};

}  // namespace lattice::ops
