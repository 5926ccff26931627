#include <algorithm>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_math.cuh"
#include "kernels/cuda/fill_random.cuh"

namespace lattice::kernels::cuda {

namespace {

template <typename T>
__global__ void fill_hash_kernel(T* dst, int64_t count, HashFill fill) {
  for (int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; j < count;
       j += static_cast<int64_t>(gridDim.x) * blockDim.x)
    dst[j] = detail::from_f32<T>(hash_fill_value(fill, j));
}

}  // namespace

template <typename T>
void fill_hash(T* dst, int64_t count, const HashFill& fill, cudaStream_t stream) {
  if (count == 0) return;
  LATTICE_CHECK(fill.width > 0, "fill_hash: slice run width must be positive, got ", fill.width);
  const int threads = 256;
  const int64_t blocks = std::min<int64_t>((count + threads - 1) / threads, 65536);  // grid-stride beyond this
  fill_hash_kernel<<<static_cast<unsigned>(blocks), threads, 0, stream>>>(dst, count, fill);
  CUDA_CHECK_LAUNCH();
}

template void fill_hash<float>(float*, int64_t, const HashFill&, cudaStream_t);
template void fill_hash<__half>(__half*, int64_t, const HashFill&, cudaStream_t);
template void fill_hash<__nv_bfloat16>(__nv_bfloat16*, int64_t, const HashFill&, cudaStream_t);

}  // namespace lattice::kernels::cuda
