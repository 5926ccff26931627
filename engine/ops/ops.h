// Tensor-level ops: each validates its operands (naming both sizes on a mismatch) and dispatches to
// the kernel for the tensor's device. Activations are f32 [tokens, ...] row-major.
#pragma once

#include <vector>

#include "engine/core/tensor.h"

namespace lattice::ops {

// out [tokens, hidden] = rows of table [rows, hidden] at ids [tokens] (i32). The table holds ids
// [first_id, first_id + rows) (a vocabulary-parallel shard; 0 for a whole table); other ids give zero rows.
void embedding(const Tensor& table, const Tensor& ids, int64_t first_id, Tensor& out);

// out [rows, dim] = rms_norm(x [rows, dim]) * weight [dim]; out may be x.
void rms_norm(const Tensor& x, const Tensor& weight, float eps, Tensor& out);

// x += y, same shape.
void add_(Tensor& x, const Tensor& y);

// out [m, n] = x [m, k] @ weight [n, k]^T (+ bias [n]).
void linear(const Tensor& x, const Tensor& weight, const Tensor* bias, Tensor& out);

// x [tokens, heads, head_dim] rotated in place at positions [tokens] (i32) with inv_freq [head_dim/2].
void rope_(Tensor& x, const Tensor& positions, const Tensor& inv_freq);

// out = silu(gate) * up, all the same shape; out may be gate.
void silu_mul(const Tensor& gate, const Tensor& up, Tensor& out);

}  // namespace lattice::ops
