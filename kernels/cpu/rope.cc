#include "kernels/cpu/rope.h"

#include <cmath>
#include <cstring>
#include <vector>

namespace lattice::kernels::cpu {

namespace {

// dst[h] = src[h] rotated, for `heads` rows of head_dim with the token's cos/sin tables.
void rotate_heads(const float* src, float* dst, int64_t heads, int64_t head_dim, const float* cos_t,
                  const float* sin_t) {
  const int64_t half = head_dim / 2;
  for (int64_t h = 0; h < heads; ++h) {
    const float* in = src + h * head_dim;
    float* out = dst + h * head_dim;
    for (int64_t i = 0; i < half; ++i) {
      const float a = in[i], b = in[i + half];
      out[i] = a * cos_t[i] - b * sin_t[i];
      out[i + half] = b * cos_t[i] + a * sin_t[i];
    }
  }
}

}  // namespace

void rope_write_kv_f32(const float* qkv, const int32_t* positions, const float* inv_freq, const int64_t* slots,
                       float* k_cache, float* v_cache, float* q_out, int64_t tokens, const PagedLayout& layout) {
  const int64_t hd = layout.head_dim, half = hd / 2;
  const int64_t q_row = layout.heads * hd, kv_row = layout.kv_heads * hd;
  const int64_t qkv_row = q_row + 2 * kv_row;
#pragma omp parallel for schedule(static) if (tokens > 1)
  for (int64_t t = 0; t < tokens; ++t) {
    std::vector<float> cos_t(half), sin_t(half);
    for (int64_t i = 0; i < half; ++i) {
      const double angle = static_cast<double>(positions[t]) * inv_freq[i];
      cos_t[i] = static_cast<float>(std::cos(angle));
      sin_t[i] = static_cast<float>(std::sin(angle));
    }
    const float* row = qkv + t * qkv_row;
    rotate_heads(row, q_out + t * q_row, layout.heads, hd, cos_t.data(), sin_t.data());
    if (slots[t] < 0) continue;
    rotate_heads(row + q_row, k_cache + slots[t] * kv_row, layout.kv_heads, hd, cos_t.data(), sin_t.data());
    std::memcpy(v_cache + slots[t] * kv_row, row + q_row + kv_row, sizeof(float) * kv_row);
  }
}

}  // namespace lattice::kernels::cpu
