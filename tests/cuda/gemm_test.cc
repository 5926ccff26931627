// cuBLASLt GEMM (c = a b^T, row-major, f32 accumulation) against kernels/cpu gemm_nt_f32, including odd
// shapes, a view that starts mid-buffer (alignment below 256 bytes), and the per-shape plan cache.
#include <gtest/gtest.h>

#include <cmath>

#include "kernels/cpu/gemm.h"
#include "kernels/cuda/gemm.cuh"
#include "tests/cuda/cuda_test_utils.h"

namespace lattice::testing::cuda {
namespace {

namespace cpu = kernels::cpu;
namespace gpu = kernels::cuda;

// Inputs are N(0, 1) rounded to TIn, so every product is exact in f32 and the CPU (OpenBLAS f32) and the GPU
// differ only in summation order: a sum of k terms of size ~1 carries ~sqrt(k) * 2^-24 * sqrt(k) absolute
// error, well under 1e-4 for k < 1000 (the outputs are ~sqrt(k) ~ 10-30, so rtol 1e-5 alone would be too
// tight where they are near 0). A T output adds its own rounding (Tolerance<TOut>, relative to |c|). A bias
// (TOut, the epilogue's type) is added in f32 before that rounding on both sides.
template <typename TIn, typename TOut>
void check_gemm(gpu::GemmLt& lt, int64_t m, int64_t n, int64_t k, int64_t a_offset = 0, bool with_bias = false) {
  const uint32_t seed = fresh_seed();
  SCOPED_TRACE(::testing::Message() << "seed " << seed << ", " << dtype_name<TIn>() << " -> " << dtype_name<TOut>()
                                    << ", m " << m << ", n " << n << ", k " << k << ", a offset " << a_offset
                                    << (with_bias ? ", bias" : ""));
  std::mt19937 rng(seed);
  const auto a = round_to<TIn>(random_values(static_cast<size_t>(a_offset + m * k), rng));
  const auto b = round_to<TIn>(random_values(static_cast<size_t>(n * k), rng));
  const auto bias = round_to<TOut>(random_values(static_cast<size_t>(n), rng));
  std::vector<float> want(static_cast<size_t>(m * n));
  cpu::gemm_nt_f32(a.data() + a_offset, b.data(), want.data(), m, n, k, with_bias ? bias.data() : nullptr);

  auto d_a = to_device<TIn>(a);
  auto d_b = to_device<TIn>(b);
  auto d_bias = to_device<TOut>(bias);
  DeviceBuffer<TOut> d_c(want.size());
  lt.gemm_nt(d_a.get() + a_offset, d_b.get(), d_c.get(), m, n, k, nullptr, with_bias ? d_bias.get() : nullptr);
  const auto got = d_c.download();
  const double rtol = std::is_same_v<TOut, float> ? 1e-5 : Tolerance<TOut>::rtol;
  EXPECT_TRUE(all_close(got.data(), want.data(), static_cast<int64_t>(want.size()), rtol, 1e-4));
}

struct CudaGemm : ::testing::Test {
  static constexpr size_t kWorkspace = 32u << 20;
  void* workspace = nullptr;
  void SetUp() override {
    LATTICE_SKIP_WITHOUT_CUDA();
    CUDA_CHECK(cudaMalloc(&workspace, kWorkspace));
  }
  void TearDown() override {
    if (workspace) cudaFree(workspace);
  }
};

TEST_F(CudaGemm, F32) {
  LATTICE_SKIP_WITHOUT_CUDA();
  gpu::GemmLt lt(workspace, kWorkspace);
  check_gemm<float, float>(lt, 7, 131, 67);
  check_gemm<float, float>(lt, 64, 256, 512);
}
TEST_F(CudaGemm, Bf16ToBf16) {
  LATTICE_SKIP_WITHOUT_CUDA();
  gpu::GemmLt lt(workspace, kWorkspace);
  check_gemm<__nv_bfloat16, __nv_bfloat16>(lt, 1, 1024, 256);   // a decode row
  check_gemm<__nv_bfloat16, __nv_bfloat16>(lt, 33, 200, 136);
}
TEST_F(CudaGemm, Bf16ToF32OddShape) {
  LATTICE_SKIP_WITHOUT_CUDA();
  gpu::GemmLt lt(workspace, kWorkspace);
  check_gemm<__nv_bfloat16, float>(lt, 5, 127, 63);
}
TEST_F(CudaGemm, F16) {
  LATTICE_SKIP_WITHOUT_CUDA();
  gpu::GemmLt lt(workspace, kWorkspace);
  check_gemm<__half, __half>(lt, 17, 96, 200);
  check_gemm<__half, float>(lt, 17, 96, 200);
}
// A view starting 8 bytes into the buffer must get an algorithm that accepts its alignment.
TEST_F(CudaGemm, UnalignedView) {
  LATTICE_SKIP_WITHOUT_CUDA();
  gpu::GemmLt lt(workspace, kWorkspace);
  check_gemm<__nv_bfloat16, __nv_bfloat16>(lt, 3, 64, 64, 4);
}
TEST_F(CudaGemm, PlansAreCachedPerShape) {
  LATTICE_SKIP_WITHOUT_CUDA();
  gpu::GemmLt lt(workspace, kWorkspace);
  check_gemm<__nv_bfloat16, __nv_bfloat16>(lt, 4, 64, 32);
  check_gemm<__nv_bfloat16, __nv_bfloat16>(lt, 4, 64, 32);
  EXPECT_EQ(lt.cached_plans(), 1u);
  check_gemm<__nv_bfloat16, __nv_bfloat16>(lt, 5, 64, 32);
  EXPECT_EQ(lt.cached_plans(), 2u);
  check_gemm<__nv_bfloat16, __nv_bfloat16>(lt, 5, 64, 32, 0, /*with_bias=*/true);  // the epilogue is its own plan
  EXPECT_EQ(lt.cached_plans(), 3u);
}
// The bias epilogue (Qwen2's q/k/v projections), on a decode row and an odd shape.
TEST_F(CudaGemm, BiasEpilogue) {
  LATTICE_SKIP_WITHOUT_CUDA();
  gpu::GemmLt lt(workspace, kWorkspace);
  check_gemm<float, float>(lt, 1, 96, 64, 0, true);
  check_gemm<float, float>(lt, 13, 131, 67, 0, true);
  check_gemm<__nv_bfloat16, __nv_bfloat16>(lt, 1, 1024, 256, 0, true);
  check_gemm<__half, __half>(lt, 17, 96, 200, 0, true);
}
TEST_F(CudaGemm, NoWorkspace) {
  LATTICE_SKIP_WITHOUT_CUDA();
  gpu::GemmLt lt(nullptr, 0);
  check_gemm<__nv_bfloat16, float>(lt, 9, 48, 40);
}

}  // namespace
}  // namespace lattice::testing::cuda
