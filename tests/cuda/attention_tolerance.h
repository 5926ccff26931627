// Tolerance of a 16-bit attention output against the CPU op (kernels/cpu paged_attention_f32) when a
// tensor-core kernel (prefill, or decode at GQA groups of 4+) computed it: like FlashAttention it rounds the
// softmax weights p_i to T before the P V product (the denominator sums them unrounded). Each weight's relative error is at most u (2^-8 bf16,
// 2^-11 f16), so the output moves by at most u * sum_i p_i |v_i| / sum_i p_i <= u * max |v|; the tests draw v
// from N(0, 1), and max |v| < 5.5 over the few million draws a test makes, so the absolute term is 5.5 u
// (0.021 bf16, 2.7e-3 f16), plus the output's own rounding (the relative term of Tolerance<T>). f32 and the
// SIMT kernels keep Tolerance<T>: their weights stay f32.
#pragma once

#include "tests/cuda/cuda_test_utils.h"

namespace lattice::testing::cuda {

template <typename T> struct AttentionTolerance;
template <> struct AttentionTolerance<float> { static constexpr double rtol = 1e-5, atol = 1e-5; };
template <> struct AttentionTolerance<__nv_bfloat16> { static constexpr double rtol = 1e-2, atol = 2.5e-2; };
template <> struct AttentionTolerance<__half> { static constexpr double rtol = 2e-3, atol = 3e-3; };

}  // namespace lattice::testing::cuda
