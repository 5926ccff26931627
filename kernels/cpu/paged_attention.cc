#include "kernels/cpu/paged_attention.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/cpu/vec_math.h"

namespace lattice::kernels::cpu {

namespace {

// A work item is the query rows of tokens [j0, j1) of one sequence's chunk that read one KV head: the group's
// query heads of each token, packed as row (token i, head h) = i * group + h, so that each K/V position gathered
// from the cache serves every query head of its group. The keys are taken in chunks with an online softmax (the
// running max and sum per row rescale the output when a later chunk raises the max), so a long context needs
// no more scratch than one chunk. QK^T and PV are BLAS products over the gathered tiles (single-threaded inside
// the parallel loop); the work items spread over the threads.
constexpr int64_t kTileRows = 128;  // packed rows per work item (fewer when the group does not divide it)
constexpr int64_t kKeyChunk = 256;  // key positions per online-softmax step

struct Item {
  int64_t seq, kv_head, j0, j1;
};

// One thread's tiles, kept between calls (OpenMP's threads persist) and grown to the largest item seen, so a
// step allocates nothing here.
struct Scratch {
  std::vector<float> q, k, v, s, o, max, sum;
  void reserve(int64_t rows, int64_t hd) {
    const auto grow = [](std::vector<float>& b, int64_t n) {
      if (static_cast<int64_t>(b.size()) < n) b.resize(static_cast<size_t>(n));
    };
    grow(q, rows * hd);
    grow(k, kKeyChunk * hd);
    grow(v, kKeyChunk * hd);
    grow(s, rows * kKeyChunk);
    grow(o, rows * hd);
    grow(max, rows);
    grow(sum, rows);
  }
};

struct Operands {
  const float *q, *k_cache, *v_cache;
  const int32_t *block_tables, *q_begins, *q_lens, *context_lens;
  int64_t max_blocks_per_seq;
  float* out;
  PagedLayout layout;
  float scale;
  int64_t window;
};

// Rows r of the chunk [c0, c1) of scores: exponentials against the new running max, in place (0 outside the row's
// visible positions, so the PV product can take the whole chunk); rescales the row's output and sum.
void softmax_chunk(float* s, int64_t length, int64_t visible_begin, int64_t visible_end, float& max, float& sum,
                   float* o, int64_t hd) {
  if (visible_begin >= visible_end) {  // no key of this chunk is visible to the row
    std::fill_n(s, length, 0.0f);
    return;
  }
  float chunk_max = -INFINITY;
#pragma omp simd reduction(max : chunk_max)
  for (int64_t p = visible_begin; p < visible_end; ++p) chunk_max = s[p] > chunk_max ? s[p] : chunk_max;
  const float new_max = std::max(max, chunk_max);
  const float correction = exp_f32(max - new_max);  // 0 for the first chunk (max = -inf)
  float chunk_sum = 0;
  std::fill_n(s, visible_begin, 0.0f);
#pragma omp simd reduction(+ : chunk_sum)
  for (int64_t p = visible_begin; p < visible_end; ++p) {
    s[p] = exp_f32(s[p] - new_max);
    chunk_sum += s[p];
  }
  std::fill(s + visible_end, s + length, 0.0f);
  sum = sum * correction + chunk_sum;
  max = new_max;
  if (correction != 1.0f)
#pragma omp simd
    for (int64_t i = 0; i < hd; ++i) o[i] *= correction;
}

void attend_item(const Operands& a, const Item& item, Scratch& t) {
  const PagedLayout& L = a.layout;
  const int64_t hd = L.head_dim, group = L.heads / L.kv_heads, row_stride = L.kv_heads * hd;
  const int64_t s = item.seq, tokens = item.j1 - item.j0, rows = tokens * group;
  const int64_t past = a.context_lens[s] - a.q_lens[s];
  const int64_t first_token = a.q_begins[s] + item.j0;
  const int32_t* table = a.block_tables + s * a.max_blocks_per_seq;
  for (int64_t i = 0; i < tokens; ++i)
    std::memcpy(&t.q[static_cast<size_t>(i * group * hd)],
                a.q + ((first_token + i) * L.heads + item.kv_head * group) * hd, sizeof(float) * group * hd);
  std::fill_n(t.o.begin(), rows * hd, 0.0f);
  std::fill_n(t.max.begin(), rows, -INFINITY);
  std::fill_n(t.sum.begin(), rows, 0.0f);

  // Keys [lo, hi): the first token's window start to the last token's own position.
  const int64_t hi = past + item.j1;
  const int64_t lo = a.window > 0 ? std::max<int64_t>(0, past + item.j0 + 1 - a.window) : 0;
  for (int64_t c0 = lo; c0 < hi; c0 += kKeyChunk) {
    const int64_t len = std::min(hi, c0 + kKeyChunk) - c0;
    for (int64_t p = 0; p < len; ++p) {
      const int64_t pos = c0 + p;
      const int64_t slot = static_cast<int64_t>(table[pos / L.block_size]) * L.block_size + pos % L.block_size;
      std::memcpy(&t.k[static_cast<size_t>(p * hd)], a.k_cache + slot * row_stride + item.kv_head * hd,
                  sizeof(float) * hd);
      std::memcpy(&t.v[static_cast<size_t>(p * hd)], a.v_cache + slot * row_stride + item.kv_head * hd,
                  sizeof(float) * hd);
    }
    const auto m = static_cast<int>(rows), n = static_cast<int>(len), k = static_cast<int>(hd);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, a.scale, t.q.data(), k, t.k.data(), k, 0.0f,
                t.s.data(), n);
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t pos = past + item.j0 + r / group;  // the row's token sees [pos - window + 1, pos]
      const int64_t begin = a.window > 0 ? std::max(c0, pos + 1 - a.window) : c0;
      const int64_t end = std::min(c0 + len, pos + 1);
      softmax_chunk(&t.s[static_cast<size_t>(r * len)], len, std::max<int64_t>(begin - c0, 0),
                    std::max<int64_t>(end - c0, 0), t.max[static_cast<size_t>(r)], t.sum[static_cast<size_t>(r)],
                    &t.o[static_cast<size_t>(r * hd)], hd);
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, k, n, 1.0f, t.s.data(), n, t.v.data(), k, 1.0f,
                t.o.data(), k);
  }
  // Every row sees at least its own position, so its sum is >= 1.
  for (int64_t i = 0; i < tokens; ++i)
    for (int64_t h = 0; h < group; ++h) {
      const int64_t r = i * group + h;
      const float inv = 1.0f / t.sum[static_cast<size_t>(r)];
      const float* o = &t.o[static_cast<size_t>(r * hd)];
      float* dst = a.out + ((first_token + i) * L.heads + item.kv_head * group + h) * hd;
#pragma omp simd
      for (int64_t d = 0; d < hd; ++d) dst[d] = o[d] * inv;
    }
}

}  // namespace

void paged_attention_f32(const float* q, const float* k_cache, const float* v_cache, const int32_t* block_tables,
                         int64_t max_blocks_per_seq, const int32_t* q_begins, const int32_t* q_lens,
                         const int32_t* context_lens, int64_t num_seqs, float* out, const PagedLayout& layout,
                         float scale, int64_t sliding_window) {
  const int64_t group = layout.heads / layout.kv_heads;
  const int64_t tile_tokens = std::max<int64_t>(1, kTileRows / group);
  std::vector<Item> items;
  for (int64_t s = 0; s < num_seqs; ++s)
    for (int64_t g = 0; g < layout.kv_heads; ++g)
      for (int64_t j0 = 0; j0 < q_lens[s]; j0 += tile_tokens)
        items.push_back({s, g, j0, std::min<int64_t>(q_lens[s], j0 + tile_tokens)});
  const Operands a{q,   k_cache, v_cache, block_tables, q_begins, q_lens, context_lens, max_blocks_per_seq,
                   out, layout,  scale,   sliding_window};
  const auto count = static_cast<int64_t>(items.size());
#pragma omp parallel if (count > 1)
  {
    thread_local Scratch scratch;
    scratch.reserve(tile_tokens * group, layout.head_dim);
#pragma omp for schedule(dynamic, 1)
    for (int64_t i = 0; i < count; ++i) attend_item(a, items[static_cast<size_t>(i)], scratch);
  }
}

}  // namespace lattice::kernels::cpu
