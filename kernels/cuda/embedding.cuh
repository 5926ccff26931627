// Embedding gather (CUDA), mirroring kernels/cpu/activation.h embedding_f32.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace lattice::kernels::cuda {

// out[t, :] = table[ids[t] - first_id, :] for ids in [first_id, first_id + rows), zeros for the others (a
// vocabulary-parallel shard holds rows [first_id, first_id + rows)). ids live on the device.
// Instantiated for TTable in {float, __half, __nv_bfloat16} and TOut in {float, TTable}.
template <typename TTable, typename TOut>
void embedding(const TTable* table, int64_t first_id, int64_t rows, const int32_t* ids, TOut* out, int64_t tokens,
               int64_t dim, cudaStream_t stream);

}  // namespace lattice::kernels::cuda
