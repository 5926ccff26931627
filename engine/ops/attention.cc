#include "engine/ops/attention.h"

#include "engine/ops/device_check.h"

namespace lattice::ops {

AttentionMetadata::AttentionMetadata(const StepBatch& batch, int64_t block_size, int64_t num_blocks)
    : block_size_(block_size) {
  int64_t row = 0;
  for (const SequenceStep& s : batch.seqs) {
    const int64_t q_len = static_cast<int64_t>(s.tokens.size());
    LATTICE_CHECK(q_len > 0, "sequence ", s.seq_id, " contributes no tokens to the step");
    LATTICE_CHECK(s.start_pos >= 0, "sequence ", s.seq_id, " has negative start position ", s.start_pos);
    const int64_t blocks_needed = (s.context_len() + block_size - 1) / block_size;
    LATTICE_CHECK(static_cast<int64_t>(s.block_table.size()) >= blocks_needed, "sequence ", s.seq_id, " needs ",
                  blocks_needed, " KV blocks for ", s.context_len(), " tokens, its block table has ",
                  s.block_table.size());
    for (int64_t b = 0; b < blocks_needed; ++b)
      LATTICE_CHECK(s.block_table[b] >= 0 && s.block_table[b] < num_blocks, "sequence ", s.seq_id, " block ",
                    s.block_table[b], " is outside the cache's ", num_blocks, " blocks");
    seqs_.push_back({row, q_len, s.context_len(), s.block_table.data()});
    for (int64_t j = 0; j < q_len; ++j) {
      const int64_t pos = s.start_pos + j;
      slots_.push_back(static_cast<int64_t>(s.block_table[pos / block_size]) * block_size + pos % block_size);
    }
    row += q_len;
  }
}

void paged_attention(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionMetadata& meta,
                     Tensor& k_cache, Tensor& v_cache, float scale, Tensor& out) {
  for (const auto& [name, t] : {std::pair<const char*, const Tensor*>{"q", &q}, {"k", &k}, {"v", &v},
                                {"k_cache", &k_cache}, {"v_cache", &v_cache}, {"out", &out}})
    require_cpu_f32("paged_attention", name, *t);
  require_shape("paged_attention", "q", q, 3);
  require_shape("paged_attention", "k", k, 3);
  require_shape("paged_attention", "k_cache", k_cache, 4);
  const kernels::cpu::PagedLayout layout{q.dim(1), k.dim(1), q.dim(2), k_cache.dim(1)};
  const int64_t tokens = static_cast<int64_t>(meta.slots().size());
  LATTICE_CHECK(q.dim(0) == tokens && k.dim(0) == tokens && v.shape() == k.shape(), "paged_attention: q ",
                q.describe(), ", k ", k.describe(), ", v ", v.describe(), " for a step of ", tokens, " tokens");
  LATTICE_CHECK(layout.heads % layout.kv_heads == 0, "paged_attention: ", layout.heads, " query heads are not a multiple of ",
                layout.kv_heads, " KV heads");
  LATTICE_CHECK(k.dim(2) == layout.head_dim, "paged_attention: k head_dim ", k.dim(2), ", q head_dim ", layout.head_dim);
  LATTICE_CHECK(k_cache.dim(2) == layout.kv_heads && k_cache.dim(3) == layout.head_dim &&
                    v_cache.shape() == k_cache.shape(),
                "paged_attention: k has ", layout.kv_heads, " heads of ", layout.head_dim, ", cache is ",
                k_cache.describe());
  LATTICE_CHECK(layout.block_size == meta.block_size(), "paged_attention: cache block size ", layout.block_size,
                ", metadata block size ", meta.block_size());
  LATTICE_CHECK(out.shape() == q.shape(), "paged_attention: out ", out.describe(), " differs from q ", q.describe());
  kernels::cpu::write_kv_f32(k.data<float>(), v.data<float>(), meta.slots().data(), k_cache.data<float>(),
                             v_cache.data<float>(), tokens, layout);
  kernels::cpu::paged_attention_f32(q.data<float>(), k_cache.data<float>(), v_cache.data<float>(),
                                    meta.seqs().data(), static_cast<int64_t>(meta.seqs().size()), out.data<float>(),
                                    layout, scale);
}

}  // namespace lattice::ops
