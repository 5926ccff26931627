// The sampling rules (CPU, f64 arithmetic), the reference definition that engine/sampler runs and that the GPU
// kernel (kernels/cuda/sample_top_k.cu) approximates in f32: given adjusted logits (after penalties) and one
// uniform u in [0, 1) (kernels/sampling_rng.h), which token is drawn.
#pragma once

#include <cstdint>

namespace lattice::kernels::cpu {

// The largest top_k the GPU kernel selects by rank (k passes over the row); an engine sampling on a GPU refuses
// kMaxTopK < top_k < vocab (SamplingParams::validate's max_top_k). This reference takes any top_k.
inline constexpr int32_t kMaxTopK = 64;

// Whether a row of adjusted logits (after penalties) defines a distribution to sample from. A -inf logit is a
// token of probability 0 and is fine while one logit is finite; a NaN, or a +inf (exp(+inf - max) is NaN), is
// not, and neither is a row of nothing but -inf. When several apply, the first in this order is reported.
enum class LogitsCheck : int32_t { ok = 0, nan = 1, positive_infinity = 2, all_negative_infinity = 3 };
LogitsCheck check_logits(const float* x, int64_t vocab);

#ifdef __CUDACC__
#define LATTICE_HOST_DEVICE __host__ __device__
#else
#define LATTICE_HOST_DEVICE
#endif
// The verdict from what a row holds (any NaN, any +inf, any finite value), in the order above: check_logits's and
// that of the GPU kernels that check rows within their own pass over them.
LATTICE_HOST_DEVICE inline LogitsCheck classify_logits(bool nan, bool positive_infinity, bool finite) {
  if (nan) return LogitsCheck::nan;
  if (positive_infinity) return LogitsCheck::positive_infinity;
  return finite ? LogitsCheck::ok : LogitsCheck::all_negative_infinity;
}
#undef LATTICE_HOST_DEVICE
const char* logits_check_name(LogitsCheck check);  // "a logit is NaN", ...

struct SamplingRule {
  float temperature = 1.0f;  // 0: greedy
  int32_t top_k = 0;         // [1, vocab): by rank; <= 0 or >= vocab: the whole vocabulary
  float top_p = 1.0f;        // (0, 1]
  float min_p = 0.0f;        // [0, 1]
};

// x: f32 [vocab] logits that check_logits passes (-inf allowed: weight 0, never drawn). Weights are
// w_i = exp((x_i - max x) / temperature) (the top token's is 1).
//  - temperature 0: the first maximum.
//  - top_k in [1, vocab): the candidates are the top_k largest logits, larger first and the
//    lower index first among equals. Keep the shortest prefix whose weight reaches top_p x the candidates'
//    total, then of that the prefix whose weights are >= min_p. Walk the kept candidates in that order.
//  - otherwise (the whole vocabulary): keep every token whose weight is >= floor, where floor is the weight of
//    the token at which a walk of the weights in decreasing order first reaches top_p x the total (0 when
//    top_p = 1; every token tied with it is kept too), raised to min_p. Walk the kept tokens in index order.
// The walk returns the first kept token whose running weight exceeds u x (the kept weight), or the last kept
// token if rounding leaves none.
int32_t sample_token(const float* x, int64_t vocab, const SamplingRule& rule, double u);

}  // namespace lattice::kernels::cpu
