#include "kernels/cpu/fill_random.h"

#include "kernels/cpu/convert.h"

namespace lattice::kernels::cpu {

namespace {

template <typename Out, typename Round>
void fill(Out* dst, int64_t first, int64_t count, const HashFill& f, Round round) {
#pragma omp parallel for schedule(static) if (count > (1 << 16))
  for (int64_t k = 0; k < count; ++k) dst[k] = round(hash_fill_value(f, first + k));
}

}  // namespace

void fill_hash_f32(float* dst, int64_t first, int64_t count, const HashFill& f) {
  fill(dst, first, count, f, [](float x) { return x; });
}

void fill_hash_bf16(uint16_t* dst, int64_t first, int64_t count, const HashFill& f) {
  fill(dst, first, count, f, [](float x) { return f32_to_bf16(x); });
}

void fill_hash_f16(uint16_t* dst, int64_t first, int64_t count, const HashFill& f) {
  fill(dst, first, count, f, [](float x) { return f32_to_f16(x); });
}

}  // namespace lattice::kernels::cpu
