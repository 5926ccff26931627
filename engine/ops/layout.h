// Layout ops that move data without computing on it.
#pragma once

#include "engine/core/tensor.h"
#include "engine/ops/exec_context.h"

namespace lattice::ops {

// dst[:, col_begin : col_begin + cols] = src[:, :cols], for src [rows, w >= cols] and dst [rows, W] of one dtype
// on ctx.device (one strided copy on a GPU): e.g. a vocabulary shard's logits into the full row, without the
// shard's padding columns.
void copy_columns(const ExecContext& ctx, const Tensor& src, Tensor& dst, int64_t col_begin, int64_t cols);

}  // namespace lattice::ops
