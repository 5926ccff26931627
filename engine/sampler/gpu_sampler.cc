#include "engine/sampler/gpu_sampler.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include <cuda_runtime_api.h>

#include "engine/core/error.h"
#include "kernels/cuda/check_logits.cuh"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/penalties.cuh"
#include "kernels/cuda/sample_top_k.cuh"
#include "kernels/cuda/sampling.cuh"

namespace lattice {

namespace gpu = kernels::cuda;

namespace {

constexpr size_t kAlign = 256;

size_t aligned(size_t bytes) { return (bytes + kAlign - 1) / kAlign * kAlign; }

// Byte offsets of the sections of the packed input: [SamplingRow n][PenaltyRow n][int32 context tokens].
struct InputLayout {
  size_t sampling = 0, penalties, tokens, total;
  InputLayout(size_t rows, size_t tokens_count)
      : penalties(aligned(rows * sizeof(gpu::SamplingRow))),
        tokens(penalties + aligned(rows * sizeof(gpu::PenaltyRow))),
        total(tokens + aligned(tokens_count * sizeof(int32_t))) {}
};

// ... and of the packed output: [int32 tokens n][f32 logprobs n][int32 top tokens n x m][f32 top logprobs n x m]
// [int32 check_logits status n].
struct OutputLayout {
  size_t tokens = 0, logprobs, top_tokens, top_logprobs, status, total;
  OutputLayout(size_t rows, size_t top_n)
      : logprobs(aligned(rows * sizeof(int32_t))),
        top_tokens(logprobs + aligned(rows * sizeof(float))),
        top_logprobs(top_tokens + aligned(rows * top_n * sizeof(int32_t))),
        status(top_logprobs + aligned(rows * top_n * sizeof(float))),
        total(status + aligned(rows * sizeof(int32_t))) {}
};

// Grows (never shrinks) a buffer; the old contents are not kept. Called only while no work uses the buffers.
void reserve(PinnedBuffer& buffer, size_t bytes) {
  if (buffer.size() < bytes) buffer = PinnedBuffer(std::max(bytes, 2 * buffer.size()));
}
// A device buffer in use by work still queued on `stream` (a step in flight) is replaced only after that work.
void reserve(Tensor& buffer, size_t bytes, Device device, cudaStream_t stream) {
  if (buffer.defined() && buffer.nbytes() >= bytes) return;
  if (buffer.defined()) CUDA_CHECK(cudaStreamSynchronize(stream));
  const size_t grown = std::max(bytes, buffer.defined() ? 2 * buffer.nbytes() : 0);
  buffer = Tensor::empty({static_cast<int64_t>(grown)}, DType::u8, device);
}

template <typename T>
T* at(void* base, size_t offset) {
  return reinterpret_cast<T*>(static_cast<char*>(base) + offset);
}

}  // namespace

GpuSampler::GpuSampler(const ops::ExecContext& exec) : exec_(exec) {
  LATTICE_CHECK(!exec.device.is_cpu(), "GpuSampler needs a GPU context, got ", exec.device.str());
  for (Slot& slot : slots_) CUDA_CHECK(cudaEventCreateWithFlags(&slot.done, cudaEventDisableTiming));
}

GpuSampler::~GpuSampler() {
  for (Slot& slot : slots_)
    if (slot.done) cudaEventDestroy(slot.done);
}

std::vector<SampledToken> GpuSampler::sample(const Tensor& logits, const std::vector<GpuSampleRequest>& requests) {
  return finish(enqueue(logits, requests));
}

const int32_t* GpuSampler::device_tokens(int slot) const {
  const Slot& s = slots_[slot];
  return s.logprobs.empty() ? nullptr : static_cast<const int32_t*>(s.device_out.raw());  // tokens come first
}

int GpuSampler::enqueue(const Tensor& logits, const std::vector<GpuSampleRequest>& requests) {
  const int index = next_;
  Slot& slot = slots_[index];
  LATTICE_CHECK(!slot.busy, "GpuSampler: two steps' sampling are already in flight");
  slot.logprobs.clear();
  slot.context_sizes.clear();
  if (requests.empty()) {
    next_ ^= 1;
    slot.busy = true;
    return index;
  }
  LATTICE_CHECK(logits.device() == exec_.device && logits.dtype() == DType::f32 && logits.rank() == 2,
                "GpuSampler samples f32 [rows, vocab] logits on ", exec_.device.str(), ", got ", logits.describe());
  const int64_t vocab = logits.dim(1);
  const size_t n = requests.size();
  cudaStream_t stream = exec_.stream;

  // What this step needs: the top-n list length, whether any row is penalised or drawn, its context tokens.
  int32_t top_n = 0;
  bool any_penalty = false, all_greedy = true, one_run = true;
  size_t context_tokens = 0;
  for (size_t i = 0; i < n; ++i) {
    const GpuSampleRequest& r = requests[i];
    LATTICE_CHECK(r.row >= 0 && r.row < logits.dim(0), "row ", r.row, " is outside the ", logits.dim(0),
                  " rows of logits");
    LATTICE_CHECK(r.prompt_len >= 0 && r.prompt_len <= static_cast<int64_t>(r.context->size()), "prompt of ",
                  r.prompt_len, " tokens in a context of ", r.context->size());
    const SamplingParams& p = *r.params;
    LATTICE_CHECK(p.top_k <= gpu::kMaxTopK || p.top_k >= vocab, "top_k = ", p.top_k,
                  " is not supported on the GPU (at most ", gpu::kMaxTopK, ", or the whole vocabulary)");
    top_n = std::max(top_n, p.logprobs);
    all_greedy = all_greedy && p.temperature == 0.0f;
    if (p.has_penalties()) {
      any_penalty = true;
      context_tokens += r.context->size();
    }
    one_run = one_run && r.row == requests[0].row + static_cast<int64_t>(i);
  }

  // Pack the parameters and contexts, and send them in one copy.
  const InputLayout in(n, context_tokens);
  reserve(slot.host_in, in.total);  // the slot's last copy from it ran before its event, which finish() waited for
  reserve(slot.device_in, in.total, exec_.device, stream);
  auto* sampling_rows = at<gpu::SamplingRow>(slot.host_in.data(), in.sampling);
  auto* penalty_rows = at<gpu::PenaltyRow>(slot.host_in.data(), in.penalties);
  auto* tokens = at<int32_t>(slot.host_in.data(), in.tokens);
  int32_t token_count = 0;
  for (size_t i = 0; i < n; ++i) {
    const GpuSampleRequest& r = requests[i];
    const SamplingParams& p = *r.params;
    const uint64_t offset = r.context->size() - static_cast<size_t>(r.prompt_len);  // tokens generated so far
    // A greedy row inside a drawn batch is top_k = 1: the first maximum, as greedy_sample picks.
    sampling_rows[i] = p.temperature == 0.0f
                           ? gpu::SamplingRow{1.0f, 1, 1.0f, 0.0f, r.seed, offset}
                           : gpu::SamplingRow{p.temperature, p.top_k, p.top_p, p.min_p, r.seed, offset};
    const bool penalised = p.has_penalties();
    const int32_t len = penalised ? static_cast<int32_t>(r.context->size()) : 0;
    penalty_rows[i] = {p.repetition_penalty, p.presence_penalty, p.frequency_penalty, token_count, len,
                       static_cast<int32_t>(std::min<int64_t>(r.prompt_len, len))};
    if (penalised) std::memcpy(tokens + token_count, r.context->data(), sizeof(int32_t) * r.context->size());
    token_count += len;
  }
  copy_async(slot.device_in.raw(), slot.host_in.data(), in.total, stream);
  const auto* d_sampling = at<const gpu::SamplingRow>(slot.device_in.raw(), in.sampling);
  const auto* d_penalties = at<const gpu::PenaltyRow>(slot.device_in.raw(), in.penalties);
  const auto* d_tokens = at<const int32_t>(slot.device_in.raw(), in.tokens);

  // The sampled rows as one [n, vocab] array: the logits themselves when the rows are one run, else gathered
  // with one device copy per run of consecutive rows.
  const size_t row_bytes = sizeof(float) * static_cast<size_t>(vocab);
  const float* raw = static_cast<const float*>(logits.raw()) + requests[0].row * vocab;
  if (!one_run) {
    reserve(gathered_, n * row_bytes, exec_.device, stream);
    for (size_t begin = 0; begin < n;) {
      size_t end = begin + 1;
      while (end < n && requests[end].row == requests[end - 1].row + 1) ++end;
      copy_async(at<float>(gathered_.raw(), begin * row_bytes),
                 static_cast<const float*>(logits.raw()) + requests[begin].row * vocab, (end - begin) * row_bytes,
                 stream);
      begin = end;
    }
    raw = static_cast<const float*>(gathered_.raw());
  }
  const int64_t rows = static_cast<int64_t>(n);
  const float* adjusted = raw;
  if (any_penalty) {
    const size_t workspace_bytes = gpu::penalties_workspace_bytes(rows, vocab);
    reserve(penalised_, n * row_bytes, exec_.device, stream);
    reserve(penalty_workspace_, workspace_bytes, exec_.device, stream);
    gpu::apply_penalties(raw, static_cast<float*>(penalised_.raw()), rows, vocab, d_penalties, d_tokens,
                         penalty_workspace_.raw(), penalty_workspace_.nbytes(), stream);
    adjusted = static_cast<const float*>(penalised_.raw());
  }

  const OutputLayout out(n, static_cast<size_t>(top_n));
  reserve(slot.host_out, out.total);
  reserve(slot.device_out, out.total, exec_.device, stream);
  void* d_out = slot.device_out.raw();
  auto* d_chosen = at<int32_t>(d_out, out.tokens);
  auto* d_logprobs = at<float>(d_out, out.logprobs);
  // Rows that cannot be sampled are drawn from all the same (the kernels never fault on them) and reported: the
  // greedy kernel checks each row in its one pass; drawn batches take a separate check.
  auto* d_status = at<int32_t>(d_out, out.status);
  // The kernels report the log-softmax of what they sample from; with penalties that is not the model's.
  float* draw_logprobs = any_penalty ? nullptr : d_logprobs;
  if (all_greedy) {
    gpu::greedy_sample(adjusted, rows, vocab, d_chosen, draw_logprobs, d_status, stream);
  } else {
    gpu::check_logits(adjusted, rows, vocab, d_status, stream);
    gpu::sample_top_k(adjusted, rows, vocab, d_sampling, d_chosen, draw_logprobs, stream);
  }
  if (any_penalty) gpu::token_logprobs(raw, rows, vocab, d_chosen, d_logprobs, stream);
  if (top_n > 0)
    gpu::top_logprobs(raw, rows, vocab, top_n, at<int32_t>(d_out, out.top_tokens),
                      at<float>(d_out, out.top_logprobs), stream);
  copy_async(slot.host_out.data(), d_out, out.total, stream);
  CUDA_CHECK(cudaEventRecord(slot.done, stream));
  slot.vocab = vocab;
  slot.top_n = top_n;
  for (const GpuSampleRequest& r : requests) {
    slot.logprobs.push_back(r.params->logprobs);
    slot.context_sizes.push_back(static_cast<int64_t>(r.context->size()));
  }
  next_ ^= 1;
  slot.busy = true;
  return index;
}

std::vector<SampledToken> GpuSampler::finish(int index) {
  LATTICE_CHECK(index == 0 || index == 1, "GpuSampler: no sampling slot ", index);
  Slot& slot = slots_[index];
  LATTICE_CHECK(slot.busy, "GpuSampler: slot ", index, " has no sampling in flight");
  slot.busy = false;
  const size_t n = slot.logprobs.size();
  if (n == 0) return {};
  CUDA_CHECK(cudaEventSynchronize(slot.done));
  const int64_t vocab = slot.vocab;
  const int32_t top_n = slot.top_n;
  const OutputLayout out(n, static_cast<size_t>(top_n));
  const auto* chosen = at<const int32_t>(slot.host_out.data(), out.tokens);
  const auto* logprobs = at<const float>(slot.host_out.data(), out.logprobs);
  const auto* top_tokens = at<const int32_t>(slot.host_out.data(), out.top_tokens);
  const auto* top_logprobs = at<const float>(slot.host_out.data(), out.top_logprobs);
  const auto* status = at<const int32_t>(slot.host_out.data(), out.status);
  std::vector<SampledToken> result(n);
  for (size_t i = 0; i < n; ++i) {
    SampledToken& t = result[i];
    const auto check = static_cast<kernels::cpu::LogitsCheck>(status[i]);
    if (check != kernels::cpu::LogitsCheck::ok) {
      t.error = unsampleable_logits_error(check, slot.context_sizes[i]);
      continue;
    }
    t.token = chosen[i];
    t.logprob = logprobs[i];
    if (t.token < 0 || t.token >= vocab || !std::isfinite(t.logprob)) {  // not expected of checked logits
      t = SampledToken{};
      t.error = "sampling on the GPU gave token " + std::to_string(chosen[i]) + " with log-probability " +
                std::to_string(logprobs[i]) + " at position " + std::to_string(slot.context_sizes[i]);
      continue;
    }
    for (int32_t j = 0; j < slot.logprobs[i]; ++j) {
      const size_t k = i * static_cast<size_t>(top_n) + static_cast<size_t>(j);
      if (top_tokens[k] >= 0) t.top.push_back({top_tokens[k], top_logprobs[k]});
    }
  }
  return result;
}

}  // namespace lattice
