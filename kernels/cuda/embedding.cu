#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/embedding.cuh"

namespace lattice::kernels::cuda {

namespace {

// One block per token; threads stride over the row.
template <typename TTable, typename TOut>
__global__ void embedding_kernel(const TTable* __restrict__ table, int64_t first_id, int64_t rows,
                                 const int32_t* __restrict__ ids, TOut* __restrict__ out, int64_t dim) {
  const int64_t t = blockIdx.x;
  const int64_t row = static_cast<int64_t>(ids[t]) - first_id;
  TOut* dst = out + t * dim;
  if (row >= 0 && row < rows) {
    const TTable* src = table + row * dim;
    for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) dst[i] = detail::from_f32<TOut>(detail::to_f32(src[i]));
  } else {
    for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) dst[i] = detail::from_f32<TOut>(0.0f);
  }
}

}  // namespace

template <typename TTable, typename TOut>
void embedding(const TTable* table, int64_t first_id, int64_t rows, const int32_t* ids, TOut* out, int64_t tokens,
               int64_t dim, cudaStream_t stream) {
  if (tokens == 0 || dim == 0) return;
  LATTICE_CHECK(tokens <= INT32_MAX, "embedding: ", tokens, " tokens is more than one grid dimension holds");
  embedding_kernel<<<static_cast<unsigned>(tokens), 256, 0, stream>>>(table, first_id, rows, ids, out, dim);
  CUDA_CHECK_LAUNCH();
}

#define LATTICE_INSTANTIATE(TTable, TOut)                                                                   \
  template void embedding<TTable, TOut>(const TTable*, int64_t, int64_t, const int32_t*, TOut*, int64_t, int64_t, \
                                        cudaStream_t);
LATTICE_INSTANTIATE(float, float)
LATTICE_INSTANTIATE(__half, float)
LATTICE_INSTANTIATE(__half, __half)
LATTICE_INSTANTIATE(__nv_bfloat16, float)
LATTICE_INSTANTIATE(__nv_bfloat16, __nv_bfloat16)
#undef LATTICE_INSTANTIATE

}  // namespace lattice::kernels::cuda
