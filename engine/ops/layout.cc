#include "engine/ops/layout.h"

#include <cstring>

#ifdef LATTICE_HAVE_CUDA
#include <cuda_runtime_api.h>

#include "kernels/cuda/cuda_check.h"
#endif

namespace lattice::ops {

void copy_columns(const ExecContext& ctx, const Tensor& src, Tensor& dst, int64_t col_begin, int64_t cols) {
  LATTICE_CHECK(src.rank() == 2 && dst.rank() == 2 && src.dim(0) == dst.dim(0) && src.dtype() == dst.dtype() &&
                    0 <= cols && cols <= src.dim(1) && col_begin >= 0 && col_begin + cols <= dst.dim(1),
                "copy_columns: ", cols, " columns of ", src.describe(), " do not fit into ", dst.describe(),
                " at column ", col_begin);
  LATTICE_CHECK(src.device() == ctx.device && dst.device() == ctx.device, "copy_columns: ", src.describe(), " and ",
                dst.describe(), " must live on ", ctx.device.str());
  const size_t elem = dtype_size(src.dtype());
  const size_t width = static_cast<size_t>(cols) * elem, src_pitch = static_cast<size_t>(src.dim(1)) * elem;
  const size_t pitch = static_cast<size_t>(dst.dim(1)) * elem;
  char* out = static_cast<char*>(dst.raw()) + static_cast<size_t>(col_begin) * elem;
  const auto* in = static_cast<const char*>(src.raw());
  if (ctx.device.is_cpu()) {
    for (int64_t r = 0; r < src.dim(0); ++r) std::memcpy(out + r * pitch, in + r * src_pitch, width);
    return;
  }
#ifdef LATTICE_HAVE_CUDA
  if (src.dim(0) > 0 && cols > 0)
    CUDA_CHECK(cudaMemcpy2DAsync(out, pitch, in, src_pitch, width, static_cast<size_t>(src.dim(0)),
                                 cudaMemcpyDeviceToDevice, ctx.stream));
#else
  LATTICE_THROW("copy_columns on ", ctx.device.str(), " needs the CUDA backend");
#endif
}

}  // namespace lattice::ops
