// SiLU-gated MLP activation and embedding gather (f32, CPU).
#pragma once

#include <cstdint>

namespace lattice::kernels::cpu {

// out[i] = silu(gate[i]) * up[i]; out may alias gate.
void silu_mul_f32(const float* gate, const float* up, float* out, int64_t n);

// out[t, :] = table[ids[t] - first_id, :] for ids in [first_id, first_id + rows), zeros for the others
// (a vocabulary-parallel shard holds rows [first_id, first_id + rows) of the full table).
void embedding_f32(const float* table, int64_t first_id, int64_t rows, const int32_t* ids, float* out, int64_t tokens,
                   int64_t dim);

}  // namespace lattice::kernels::cpu
