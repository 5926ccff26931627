// Finds NaN and infinity in f32, bf16 or f16 data (a weight as it is loaded). A value is non-finite when
// all its exponent bits are set, so the scan is an integer mask-and-compare per element over blocks, which the
// compiler vectorises; a block with a hit is then searched element by element.
#pragma once

#include <cstdint>

#include "engine/core/dtype.h"

namespace lattice {

// The index of the first NaN or ±inf among `count` elements of `dtype` (f32, bf16 or f16) at `data`, which need
// not be aligned; -1 when every element is finite.
int64_t first_nonfinite(const void* data, DType dtype, int64_t count);

// "NaN", "inf" or "-inf" for element `index` of `data`, which first_nonfinite() found.
const char* nonfinite_kind(const void* data, DType dtype, int64_t index);

}  // namespace lattice
