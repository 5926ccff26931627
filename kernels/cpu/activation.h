// SiLU-gated MLP activation and the row gather behind embedding and gather_rows (f32, CPU).
#pragma once

#include <cstdint>

namespace lattice::kernels::cpu {

// out[r, i] = silu(gate[r * in_stride + i]) * up[r * in_stride + i]; out: [rows, inter]. A fused
// [rows, 2 * inter] gate/up projection: gate = gate_up, up = gate_up + inter, in_stride = 2 * inter
// (separate buffers: in_stride = inter, and out may alias gate). Mirrors kernels/cuda/silu_mul.cuh.
void silu_mul_f32(const float* gate, const float* up, float* out, int64_t rows, int64_t inter, int64_t in_stride);

// out[t, :] = table[ids[t] - first_id, :] for ids in [first_id, first_id + rows), zeros for the others
// (a vocabulary-parallel shard holds rows [first_id, first_id + rows) of the full table).
void embedding_f32(const float* table, int64_t first_id, int64_t rows, const int32_t* ids, float* out, int64_t tokens,
                   int64_t dim);

}  // namespace lattice::kernels::cpu
