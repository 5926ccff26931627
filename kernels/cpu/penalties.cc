#include "kernels/cpu/penalties.h"

#include <algorithm>
#include <vector>

namespace lattice::kernels::cpu {

// Built with -ffp-contract=off (kernels/CMakeLists.txt): presence + frequency * n must round twice, as the
// GPU kernel's __fadd_rn(__fmul_rn(...)) does.
void apply_penalties_f32(float* x, int64_t vocab, const int32_t* context, int64_t context_len, int64_t prompt_len,
                         float repetition, float presence, float frequency) {
  auto in_vocab = [vocab](int32_t t) { return t >= 0 && t < vocab; };
  if (repetition != 1.0f) {
    std::vector<bool> seen(static_cast<size_t>(vocab), false);
    for (int64_t j = 0; j < context_len; ++j) {
      const int32_t t = context[j];
      if (!in_vocab(t) || seen[t]) continue;
      seen[t] = true;
      x[t] = x[t] > 0 ? x[t] / repetition : x[t] * repetition;
    }
  }
  if (presence != 0.0f || frequency != 0.0f) {
    std::vector<int32_t> generated(context + std::min(prompt_len, context_len), context + context_len);
    std::erase_if(generated, [&](int32_t t) { return !in_vocab(t); });
    std::sort(generated.begin(), generated.end());
    for (size_t j = 0; j < generated.size();) {
      size_t end = j;
      while (end < generated.size() && generated[end] == generated[j]) ++end;
      x[generated[j]] -= presence + frequency * static_cast<float>(end - j);
      j = end;
    }
  }
}

}  // namespace lattice::kernels::cpu
