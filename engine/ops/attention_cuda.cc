// CUDA implementation of engine/ops/attention.h: the split-K decode launcher for pure-decode steps, the prefill
// launcher for any other mix (operands already checked by the public op). Each launcher picks its kernel: decode
// by paged_attention_decode_kernel (tensor cores for f16/bf16 GQA groups of 4+, grouped SIMT below, SIMT for f32 and
// other head dims), prefill the tensor-core kernel for f16/bf16 at the head dims it takes, SIMT otherwise.
#include "engine/ops/cuda_dtype.h"
#include "engine/ops/cuda_ops.h"
#include "kernels/cuda/paged_attention_decode.cuh"
#include "kernels/cuda/paged_attention_prefill.cuh"

namespace lattice::ops::cuda_impl {

namespace gpu = kernels::cuda;

size_t attention_scratch_bytes(int64_t seqs, int64_t heads, int64_t head_dim, int64_t max_context_len) {
  // The decode workspace depends on the query heads and head_dim only (kv_heads and block_size do not enter).
  return gpu::paged_attention_decode_workspace_bytes(seqs, {heads, 1, head_dim, 1}, max_context_len);
}

void paged_attention(const ExecContext& ctx, const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                     const AttentionInputs& in, float scale, Tensor& out) {
  const kernels::PagedLayout layout{q.dim(1), k_cache.dim(2), q.dim(2), k_cache.dim(1)};
  const int64_t seqs = in.block_tables.dim(0), max_blocks = in.block_tables.dim(1);
  if (in.max_q_len == 1) {
    LATTICE_CHECK(q.dim(0) >= seqs, "paged_attention: a decode step of ", seqs,
                  " sequences needs as many q rows, q has ", q.dim(0));
    const size_t needed = attention_scratch_bytes(seqs, layout.heads, layout.head_dim, in.max_context_len);
    const size_t have = ctx.scratch.raw() != nullptr ? ctx.scratch.nbytes() : 0;
    LATTICE_CHECK(have >= needed, "paged_attention: decode of ", seqs, " sequences x ", layout.heads,
                  " heads up to ", in.max_context_len, " positions needs ", needed,
                  " bytes of scratch, ctx.scratch has ", have, " (reserve attention_scratch_bytes(...) at start-up)");
    with_float_type("paged_attention", q.dtype(), [&]<typename T>(std::type_identity<T>) {
      gpu::paged_attention_decode(ptr<const T>(q), ptr<const T>(k_cache), ptr<const T>(v_cache),
                                  ptr<const int32_t>(in.block_tables), max_blocks, ptr<const int32_t>(in.context_lens),
                                  seqs, in.max_context_len, ptr<T>(out), layout, scale, in.sliding_window,
                                  ctx.scratch.raw(), have, ctx.stream);
    });
    return;
  }
  with_float_type("paged_attention", q.dtype(), [&]<typename T>(std::type_identity<T>) {
    gpu::paged_attention_prefill(ptr<const T>(q), ptr<const T>(k_cache), ptr<const T>(v_cache),
                                 ptr<const int32_t>(in.block_tables), max_blocks, ptr<const int32_t>(in.q_begins),
                                 ptr<const int32_t>(in.q_lens), ptr<const int32_t>(in.context_lens), seqs,
                                 in.max_q_len, ptr<T>(out), layout, scale, in.sliding_window, ctx.stream);
  });
}

}  // namespace lattice::ops::cuda_impl
