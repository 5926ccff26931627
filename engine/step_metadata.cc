#include "engine/step_metadata.h"

#include <algorithm>
#include <cstring>

#ifdef LATTICE_HAVE_CUDA
#include "engine/cuda/device_context.h"
#endif

namespace lattice {

// The host buffer the step is written into and, on a GPU, its device mirror.
struct StepMetadata::Storage {
  Tensor host_only;  // cpu: the kernels read this
#ifdef LATTICE_HAVE_CUDA
  std::unique_ptr<UploadBuffer> mirror;  // cuda
#endif
  void* host = nullptr;    // where build() writes (valid during build)
  void* device = nullptr;  // where the kernels read
};

namespace {

constexpr size_t kAlign = 256;

size_t aligned(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

}  // namespace

StepMetadata::StepMetadata(const StepCapacity& capacity, const ops::ExecContext& ctx)
    : cap_(capacity), ctx_(ctx), storage_(std::make_unique<Storage>()) {
  LATTICE_CHECK(cap_.max_tokens > 0 && cap_.max_seqs > 0 && cap_.max_blocks_per_seq > 0,
                "step capacity needs tokens, sequences and blocks > 0");
  auto add = [&](int64_t count, DType dtype) {
    const Segment s{bytes_, dtype};
    bytes_ = aligned(bytes_ + static_cast<size_t>(count) * dtype_size(dtype));
    return s;
  };
  // Block tables go last: a step copies only the prefix it uses.
  ids_ = add(cap_.max_tokens, DType::i32);
  positions_ = add(cap_.max_tokens, DType::i32);
  slots_ = add(cap_.max_tokens, DType::i64);
  logit_rows_seg_ = add(cap_.max_tokens, DType::i32);
  q_begins_ = add(cap_.max_seqs, DType::i32);
  q_lens_ = add(cap_.max_seqs, DType::i32);
  context_lens_ = add(cap_.max_seqs, DType::i32);
  fed_ = add(cap_.max_seqs * 2, DType::i32);
  block_tables_ = add(cap_.max_seqs * cap_.max_blocks_per_seq, DType::i32);
  if (ctx_.device.is_cpu()) {
    storage_->host_only = Tensor::zeros({static_cast<int64_t>(bytes_)}, DType::u8);
    storage_->host = storage_->device = storage_->host_only.raw();
  } else {
#ifdef LATTICE_HAVE_CUDA
    storage_->mirror = std::make_unique<UploadBuffer>(bytes_, ctx_.device, ctx_.stream);
    storage_->device = storage_->mirror->device();
#else
    LATTICE_THROW("step metadata on ", ctx_.device.str(), " needs the CUDA backend");
#endif
  }
}

StepMetadata::~StepMetadata() = default;

template <typename T>
T* StepMetadata::host(const Segment& s) const {
  return reinterpret_cast<T*>(static_cast<char*>(storage_->host) + s.offset);
}

Tensor StepMetadata::view(const Segment& s, std::vector<int64_t> shape) const {
  return Tensor::borrow(static_cast<char*>(storage_->device) + s.offset, std::move(shape), s.dtype, ctx_.device);
}

void StepMetadata::build(const StepBatch& batch, int64_t block_size, int32_t num_blocks, int64_t vocab,
                         int64_t max_positions, const DecodeBucket* pad, const std::vector<FedToken>& fed) {
  const int64_t seqs = static_cast<int64_t>(batch.seqs.size());
  const int64_t tokens = batch.num_tokens();
  LATTICE_CHECK(seqs > 0 || pad, "a step needs at least one sequence");
  LATTICE_CHECK(seqs <= cap_.max_seqs, "a step of ", seqs, " sequences exceeds the engine's ", cap_.max_seqs,
                " (--max-seqs)");
  LATTICE_CHECK(tokens <= cap_.max_tokens, "a step of ", tokens, " tokens exceeds the engine's ", cap_.max_tokens,
                " (--max-tokens-per-step)");
  int64_t stride = 1;
  for (const SequenceStep& s : batch.seqs) {
    LATTICE_CHECK(!s.tokens.empty(), "sequence ", s.seq_id, " contributes no tokens to the step");
    LATTICE_CHECK(s.start_pos >= 0, "sequence ", s.seq_id, " has negative start position ", s.start_pos);
    LATTICE_CHECK(s.context_len() <= max_positions, "sequence ", s.seq_id, " reaches position ", s.context_len(),
                  ", past the model's ", max_positions, " positions");
    stride = std::max(stride, (s.context_len() + block_size - 1) / block_size);
  }
  if (pad) {
    LATTICE_CHECK(pad->seqs >= seqs && pad->seqs <= cap_.max_seqs && pad->seqs <= cap_.max_tokens &&
                      tokens == seqs && pad->context <= max_positions,
                  "decode bucket of ", pad->seqs, " rows x ", pad->context, " positions does not hold a step of ",
                  seqs, " sequences and ", tokens, " tokens within the engine's ", cap_.max_seqs, " sequences, ",
                  cap_.max_tokens, " tokens and ", max_positions, " positions");
    const int64_t padded_stride = (pad->context + block_size - 1) / block_size;
    LATTICE_CHECK(padded_stride >= stride, "decode bucket of ", pad->context, " positions is shorter than the step's ",
                  "longest context (", stride, " blocks)");
    stride = padded_stride;
  }
  LATTICE_CHECK(static_cast<int64_t>(fed.size()) <= seqs, "a step of ", seqs, " sequences takes ", fed.size(),
                " tokens from the device");
  for (const FedToken& f : fed)
    LATTICE_CHECK(f.row >= 0 && f.row < tokens && f.source >= 0, "fed token row ", f.row, " (from ", f.source,
                  ") is outside the step's ", tokens, " tokens");
  LATTICE_CHECK(stride <= cap_.max_blocks_per_seq, "a context of ", stride, " blocks exceeds the engine's ",
                cap_.max_blocks_per_seq, " blocks per sequence");

#ifdef LATTICE_HAVE_CUDA
  if (storage_->mirror) storage_->host = storage_->mirror->host();  // waits for the previous step's copy
#endif
  int32_t* ids = host<int32_t>(ids_);
  int32_t* positions = host<int32_t>(positions_);
  int64_t* slots = host<int64_t>(slots_);
  int32_t* rows = host<int32_t>(logit_rows_seg_);
  int32_t* q_begins = host<int32_t>(q_begins_);
  int32_t* q_lens = host<int32_t>(q_lens_);
  int32_t* context_lens = host<int32_t>(context_lens_);
  int32_t* tables = host<int32_t>(block_tables_);
  row_begin_.assign(1, 0);
  int64_t t = 0, r = 0, max_q = 0, max_context = 0;
  double pairs = 0;
  for (int64_t i = 0; i < seqs; ++i) {
    const SequenceStep& s = batch.seqs[static_cast<size_t>(i)];
    const int64_t q_len = static_cast<int64_t>(s.tokens.size());
    const int64_t blocks = (s.context_len() + block_size - 1) / block_size;
    LATTICE_CHECK(static_cast<int64_t>(s.block_table.size()) >= blocks, "sequence ", s.seq_id, " needs ", blocks,
                  " KV blocks for ", s.context_len(), " tokens, its block table has ", s.block_table.size());
    int32_t* table = tables + i * stride;
    for (int64_t b = 0; b < stride; ++b) {
      const int32_t block = b < blocks ? s.block_table[static_cast<size_t>(b)] : 0;
      LATTICE_CHECK(block >= 0 && block < num_blocks, "sequence ", s.seq_id, " block ", block,
                    " is outside the cache's ", num_blocks, " blocks");
      table[b] = block;
    }
    q_begins[i] = static_cast<int32_t>(t);
    q_lens[i] = static_cast<int32_t>(q_len);
    context_lens[i] = static_cast<int32_t>(s.context_len());
    for (int64_t j = 0; j < q_len; ++j, ++t) {
      const int32_t id = s.tokens[static_cast<size_t>(j)];
      LATTICE_CHECK(id >= 0 && id < vocab, "sequence ", s.seq_id, ": token id ", id,
                    " is out of range for vocabulary size ", vocab);
      const int64_t pos = s.start_pos + j;
      ids[t] = id;
      positions[t] = static_cast<int32_t>(pos);
      slots[t] = static_cast<int64_t>(table[pos / block_size]) * block_size + pos % block_size;
      if (s.all_logits || j == q_len - 1) rows[r++] = static_cast<int32_t>(t);
    }
    row_begin_.push_back(r);
    pairs += static_cast<double>(q_len) * static_cast<double>(s.start_pos) + q_len * (q_len + 1) / 2.0;
    max_q = std::max(max_q, q_len);
    max_context = std::max(max_context, s.context_len());
  }
  const int64_t all_seqs = pad ? pad->seqs : seqs;
  for (int64_t i = seqs; i < all_seqs; ++i, ++t, ++r) {  // padding rows: attend to one position, write no K/V
    std::fill_n(tables + i * stride, stride, 0);
    q_begins[i] = static_cast<int32_t>(t);
    q_lens[i] = 1;
    context_lens[i] = 1;
    ids[t] = 0;
    positions[t] = 0;
    slots[t] = -1;
    rows[r] = static_cast<int32_t>(t);
  }
  int32_t* fed_pairs = host<int32_t>(fed_);
  for (size_t i = 0; i < fed.size(); ++i) {
    fed_pairs[2 * i] = fed[i].row;
    fed_pairs[2 * i + 1] = fed[i].source;
  }
  fed_count_ = static_cast<int64_t>(fed.size());
  if (pad) max_context = pad->context;
  tokens_ = t;
  seqs_ = all_seqs;
  logit_rows_ = r;
  block_stride_ = stride;
  max_q_len_ = max_q;
  max_context_len_ = max_context;
  attention_pairs_ = pairs;
#ifdef LATTICE_HAVE_CUDA
  if (storage_->mirror)
    storage_->mirror->upload(block_tables_.offset + static_cast<size_t>(seqs_ * stride) * sizeof(int32_t));
#endif
}

Tensor StepMetadata::ids() const { return view(ids_, {tokens_}); }
Tensor StepMetadata::positions() const { return view(positions_, {tokens_}); }
Tensor StepMetadata::slots() const { return view(slots_, {tokens_}); }
Tensor StepMetadata::logit_rows() const { return view(logit_rows_seg_, {logit_rows_}); }
Tensor StepMetadata::fed() const { return view(fed_, {fed_count_, 2}); }

ops::AttentionInputs StepMetadata::attention() const {
  return {view(block_tables_, {seqs_, block_stride_}), view(q_begins_, {seqs_}), view(q_lens_, {seqs_}),
          view(context_lens_, {seqs_}), max_q_len_, max_context_len_};
}

}  // namespace lattice
