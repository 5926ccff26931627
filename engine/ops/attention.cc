#include "engine/ops/attention.h"

#include "engine/ops/cuda_ops.h"
#include "engine/ops/dispatch.h"
#include "kernels/cpu/paged_attention.h"

namespace lattice::ops {

namespace {

constexpr const char* kOp = "paged_attention";

// The metadata values against the cache and the bounds (host memory on the CPU only).
void check_metadata_values(const AttentionInputs& in, int64_t tokens, const kernels::PagedLayout& layout,
                           int64_t num_blocks) {
  const int64_t seqs = in.q_lens.dim(0), max_blocks = in.block_tables.dim(1);
  const int32_t* tables = in.block_tables.data<int32_t>();
  for (int64_t s = 0; s < seqs; ++s) {
    const int64_t begin = in.q_begins.data<int32_t>()[s], q_len = in.q_lens.data<int32_t>()[s];
    const int64_t context = in.context_lens.data<int32_t>()[s];
    LATTICE_CHECK(q_len >= 0 && q_len <= in.max_q_len && q_len <= context && context <= in.max_context_len, kOp,
                  ": sequence ", s, " has ", q_len, " new tokens of a context of ", context, " (bounds ",
                  in.max_q_len, " and ", in.max_context_len, ")");
    LATTICE_CHECK(begin >= 0 && begin + q_len <= tokens, kOp, ": sequence ", s, " owns q rows [", begin, ", ",
                  begin + q_len, "), q has ", tokens);
    for (int64_t b = 0; b < (context + layout.block_size - 1) / layout.block_size; ++b)
      LATTICE_CHECK(tables[s * max_blocks + b] >= 0 && tables[s * max_blocks + b] < num_blocks, kOp, ": sequence ",
                    s, " block ", tables[s * max_blocks + b], " is outside the cache's ", num_blocks, " blocks");
  }
}

}  // namespace

void paged_attention(const ExecContext& ctx, const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                     const AttentionInputs& in, float scale, Tensor& out) {
  require_device(kOp, ctx, {{"q", q}, {"k_cache", k_cache}, {"v_cache", v_cache}, {"out", out},
                            {"block_tables", in.block_tables}, {"q_begins", in.q_begins}, {"q_lens", in.q_lens},
                            {"context_lens", in.context_lens}});
  require_same_dtype(kOp, {{"q", q}, {"k_cache", k_cache}, {"v_cache", v_cache}, {"out", out}});
  require_rank(kOp, {"q", q}, 3);
  require_rank(kOp, {"k_cache", k_cache}, 4);
  const kernels::PagedLayout layout{q.dim(1), k_cache.dim(2), q.dim(2), k_cache.dim(1)};
  LATTICE_CHECK(v_cache.shape() == k_cache.shape(), kOp, ": v_cache ", v_cache.describe(), " differs from k_cache ",
                k_cache.describe());
  LATTICE_CHECK(k_cache.dim(3) == layout.head_dim, kOp, ": cache head_dim ", k_cache.dim(3), ", q head_dim ",
                layout.head_dim);
  LATTICE_CHECK(layout.kv_heads > 0 && layout.heads % layout.kv_heads == 0, kOp, ": ", layout.heads,
                " query heads are not a multiple of ", layout.kv_heads, " kv heads");
  LATTICE_CHECK(out.shape() == q.shape(), kOp, ": out ", out.describe(), " differs from q ", q.describe());
  require_dtype(kOp, {"block_tables", in.block_tables}, DType::i32, 2);
  require_dtype(kOp, {"q_begins", in.q_begins}, DType::i32, 1);
  require_dtype(kOp, {"q_lens", in.q_lens}, DType::i32, 1);
  require_dtype(kOp, {"context_lens", in.context_lens}, DType::i32, 1);
  const int64_t seqs = in.block_tables.dim(0);
  LATTICE_CHECK(in.q_begins.dim(0) == seqs && in.q_lens.dim(0) == seqs && in.context_lens.dim(0) == seqs, kOp,
                ": block_tables has ", seqs, " sequences, q_begins ", in.q_begins.dim(0), ", q_lens ",
                in.q_lens.dim(0), ", context_lens ", in.context_lens.dim(0));
  LATTICE_CHECK(in.sliding_window >= 0, kOp, ": sliding_window ", in.sliding_window, " is negative");
  LATTICE_CHECK(in.max_q_len >= 0 && in.max_q_len <= in.max_context_len, kOp, ": max_q_len ", in.max_q_len,
                " is outside [0, max_context_len ", in.max_context_len, "]");
  LATTICE_CHECK(in.max_context_len <= in.block_tables.dim(1) * layout.block_size, kOp, ": block tables of ",
                in.block_tables.dim(1), " blocks of ", layout.block_size, " positions cannot hold max_context_len ",
                in.max_context_len);
  const auto cpu_call = [&] {
    check_metadata_values(in, q.dim(0), layout, k_cache.dim(0));
    kernels::cpu::paged_attention_f32(q.data<float>(), k_cache.data<float>(), v_cache.data<float>(),
                                      in.block_tables.data<int32_t>(), in.block_tables.dim(1),
                                      in.q_begins.data<int32_t>(), in.q_lens.data<int32_t>(),
                                      in.context_lens.data<int32_t>(), seqs, out.data<float>(), layout, scale,
                                      in.sliding_window);
  };
  LATTICE_DISPATCH_OP(kOp, ctx, q.dtype(), cpu_call(),
                      cuda_impl::paged_attention(ctx, q, k_cache, v_cache, in, scale, out));
}

size_t attention_scratch_bytes(int64_t seqs, int64_t heads, int64_t head_dim, int64_t max_context_len) {
#ifdef LATTICE_HAVE_CUDA
  return cuda_impl::attention_scratch_bytes(seqs, heads, head_dim, max_context_len);
#else
  return 0;  // no GPU backend in this build, so no GPU scratch
#endif
}

}  // namespace lattice::ops
