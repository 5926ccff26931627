// lattice bench-kernels: the paged attention kernels alone on one GPU, at Llama-3-8B's attention shapes by
// default (32 query / 8 KV heads, head_dim 128, blocks of 16, bf16), over block tables in shuffled order.
// Prefill reports TFLOP/s for each prefill kernel the device runs (the Hopper wgmma kernel, mma.sync), counting
// 4 x visible (query, key) pairs x heads x head_dim (QK^T and PV over the causal pairs only, FlashAttention's
// convention: the masked halves of diagonal tiles a kernel computes and discards are not counted), with PyTorch
// SDPA's TFLOP/s and the ratio beside it when --sdpa names scripts/bench_sdpa.py's JSON;
// decode reports GB/s of K and V read (every context position's K and V rows once per KV head), next to the
// device's measured read ceiling. scripts/bench_sdpa.py times PyTorch's SDPA on the same shapes and formulas.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <initializer_list>
#include <map>
#include <numeric>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/core/error.h"
#include "launcher/cli_args.h"
#include "launcher/commands.h"

#ifdef LATTICE_HAVE_CUDA
#include <cuda_runtime_api.h>

#include "engine/core/tensor.h"
#include "engine/cuda/device_context.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/fill_random.cuh"
#include "kernels/cuda/paged_attention_decode.cuh"
#include "kernels/cuda/paged_attention_prefill.cuh"
#include "kernels/cuda/paged_attention_prefill_mma.cuh"
#include "kernels/cuda/paged_attention_prefill_wgmma.cuh"
#include "launcher/machine_ceilings.h"
#endif

namespace lattice::launcher {

namespace {

struct Shape {
  int64_t heads, kv_heads, head_dim, block_size;
};

// One timed call: sequences of (q_len, context_len), all q_len 1 for decode.
struct Case {
  std::string kernel;  // "prefill" or "decode"
  std::string name;
  std::vector<std::pair<int64_t, int64_t>> seqs;
};

#ifdef LATTICE_HAVE_CUDA

std::vector<Case> default_cases() {
  std::vector<Case> cases = {
      {"prefill", "4096 causal", {{4096, 4096}}},
      {"prefill", "8 x 1024 causal", std::vector<std::pair<int64_t, int64_t>>(8, {1024, 1024})},
      {"prefill", "512 after 3584 cached", {{512, 4096}}},
  };
  for (int64_t batch : {1, 64, 256})
    for (int64_t context : {512, 2048, 8192})
      cases.push_back({"decode", "batch " + std::to_string(batch) + " x " + std::to_string(context),
                       std::vector<std::pair<int64_t, int64_t>>(static_cast<size_t>(batch), {1, context})});
  return cases;
}

double causal_flops(const Case& c, const Shape& s) {
  double pairs = 0;
  for (const auto& [q, ctx] : c.seqs) pairs += static_cast<double>(q) * (ctx - q) + 0.5 * q * (q + 1);
  return 4.0 * pairs * static_cast<double>(s.heads * s.head_dim);
}

double kv_bytes(const Case& c, const Shape& s, int64_t elem_bytes) {
  double positions = 0;
  for (const auto& seq : c.seqs) positions += static_cast<double>(seq.second);
  return 2.0 * positions * static_cast<double>(s.kv_heads * s.head_dim * elem_bytes);
}

// Device operands of one case: a cache of exactly the blocks the batch uses, handed out in shuffled order.
struct Operands {
  Tensor q, k_cache, v_cache, out, block_tables, q_begins, q_lens, context_lens, workspace;
  int64_t max_blocks = 0, max_q_len = 0, max_context_len = 0, tokens = 0;
};

Operands make_operands(const Case& c, const Shape& s, DType dtype, DeviceContext& device, std::mt19937& rng) {
  Operands o;
  int64_t total_blocks = 0;
  std::vector<int32_t> q_begins, q_lens, context_lens;
  for (const auto& [q, ctx] : c.seqs) {
    const int64_t blocks = (ctx + s.block_size - 1) / s.block_size;
    o.max_blocks = std::max(o.max_blocks, blocks);
    total_blocks += blocks;
    o.max_q_len = std::max(o.max_q_len, q);
    o.max_context_len = std::max(o.max_context_len, ctx);
    q_begins.push_back(static_cast<int32_t>(o.tokens));
    q_lens.push_back(static_cast<int32_t>(q));
    context_lens.push_back(static_cast<int32_t>(ctx));
    o.tokens += q;
  }
  std::vector<int32_t> ids(static_cast<size_t>(total_blocks));
  std::iota(ids.begin(), ids.end(), 0);
  std::shuffle(ids.begin(), ids.end(), rng);
  const int64_t seqs = static_cast<int64_t>(c.seqs.size());
  std::vector<int32_t> tables(static_cast<size_t>(seqs * o.max_blocks), 0);
  size_t next = 0;
  for (int64_t i = 0; i < seqs; ++i)
    for (int64_t b = 0; b < (c.seqs[i].second + s.block_size - 1) / s.block_size; ++b)
      tables[i * o.max_blocks + b] = ids[next++];

  const Device gpu = device.device();
  o.q = Tensor::empty({o.tokens, s.heads, s.head_dim}, dtype, gpu);
  o.out = Tensor::empty(o.q.shape(), dtype, gpu);
  o.k_cache = Tensor::empty({total_blocks, s.block_size, s.kv_heads, s.head_dim}, dtype, gpu);
  o.v_cache = Tensor::empty(o.k_cache.shape(), dtype, gpu);
  uint64_t seed = rng();
  for (Tensor* t : {&o.q, &o.k_cache, &o.v_cache}) {
    const kernels::HashFill fill{seed++, 0.0f, 1.0f, 0, 1, 1};
    if (dtype == DType::bf16)
      kernels::cuda::fill_hash(static_cast<__nv_bfloat16*>(t->raw()), t->numel(), fill, device.stream());
    else
      kernels::cuda::fill_hash(static_cast<__half*>(t->raw()), t->numel(), fill, device.stream());
  }
  o.block_tables = Tensor::from_vector(tables, {seqs, o.max_blocks}).to(gpu);
  o.q_begins = Tensor::from_vector(q_begins, {seqs}).to(gpu);
  o.q_lens = Tensor::from_vector(q_lens, {seqs}).to(gpu);
  o.context_lens = Tensor::from_vector(context_lens, {seqs}).to(gpu);
  const kernels::PagedLayout layout{s.heads, s.kv_heads, s.head_dim, s.block_size};
  const size_t workspace = kernels::cuda::paged_attention_decode_workspace_bytes(seqs, layout, o.max_context_len);
  o.workspace = Tensor::empty({static_cast<int64_t>(std::max<size_t>(workspace, 1))}, DType::u8, gpu);
  device.synchronize();
  return o;
}

// decode_kernel: the decode kernel to run, or none for paged_attention_decode's choice.
using DecodeChoice = std::optional<kernels::cuda::DecodeKernel>;

// One prefill kernel by name ("wgmma", "mma" or "simt"), called directly rather than through the launcher's choice.
template <typename T>
void launch_prefill(const std::string& kernel, const T* q, const T* k, const T* v, const int32_t* tables,
                    int64_t max_blocks, const int32_t* q_begins, const int32_t* q_lens, const int32_t* lens,
                    int64_t seqs, int64_t max_q_len, T* out, const kernels::PagedLayout& layout, float scale,
                    cudaStream_t stream) {
  namespace detail = kernels::cuda::detail;
  if (kernel == "simt") {
    detail::paged_attention_prefill_simt(q, k, v, tables, max_blocks, q_begins, q_lens, lens, seqs, max_q_len, out,
                                         layout, scale, /*window=*/0, stream);
    return;
  }
  const bool ran = kernel == "wgmma"
                       ? detail::paged_attention_prefill_wgmma(q, k, v, tables, max_blocks, q_begins, q_lens, lens,
                                                               seqs, max_q_len, out, layout, scale, 0, stream)
                       : detail::paged_attention_prefill_mma(q, k, v, tables, max_blocks, q_begins, q_lens, lens,
                                                             seqs, max_q_len, out, layout, scale, 0, stream);
  LATTICE_CHECK(ran, "bench-kernels: the ", kernel, " prefill kernel declined head_dim ", layout.head_dim);
}

// The prefill kernels timed one by one for a head_dim: wgmma where the device and build run it, mma.sync, and
// the SIMT kernel only where neither takes the head_dim.
std::vector<std::string> prefill_kernels(int64_t head_dim) {
  std::vector<std::string> names;
  const auto in = [&](std::initializer_list<int64_t> dims) {
    return std::find(dims.begin(), dims.end(), head_dim) != dims.end();
  };
  if (in({64, 128, 256}) && kernels::cuda::detail::paged_attention_prefill_wgmma_available()) names.push_back("wgmma");
  if (in({64, 80, 96, 128, 256})) names.push_back("mma");
  if (names.empty()) names.push_back("simt");
  return names;
}

// SDPA's prefill TFLOP/s by case name from scripts/bench_sdpa.py --json output (empty without --sdpa).
std::map<std::string, double> sdpa_prefill_tflops(const std::string& path) {
  std::map<std::string, double> tflops;
  if (path.empty()) return tflops;
  std::ifstream in(path);
  LATTICE_CHECK(in, "bench-kernels: cannot read --sdpa ", path);
  const nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  LATTICE_CHECK(j.is_object() && j.contains("results"), "bench-kernels: --sdpa ", path,
                " is not scripts/bench_sdpa.py --json output");
  for (const auto& r : j["results"])
    if (r.value("kernel", "") == "prefill" && r.contains("tflops"))
      tflops[r.value("case", "")] = r["tflops"].get<double>();
  return tflops;
}

// prefill_kernel: one of prefill_kernels() (ignored for decode).
template <typename T>
void launch(const Case& c, const Shape& s, const Operands& o, const DecodeChoice& decode_kernel,
            const std::string& prefill_kernel, cudaStream_t stream) {
  const kernels::PagedLayout layout{s.heads, s.kv_heads, s.head_dim, s.block_size};
  const float scale = 1.0f / std::sqrt(static_cast<float>(s.head_dim));
  const int64_t seqs = static_cast<int64_t>(c.seqs.size());
  const auto* q = static_cast<const T*>(o.q.raw());
  const auto* k = static_cast<const T*>(o.k_cache.raw());
  const auto* v = static_cast<const T*>(o.v_cache.raw());
  const auto* tables = static_cast<const int32_t*>(o.block_tables.raw());
  const auto* lens = static_cast<const int32_t*>(o.context_lens.raw());
  if (c.kernel == "decode")
    kernels::cuda::paged_attention_decode(q, k, v, tables, o.max_blocks, lens, seqs, o.max_context_len,
                                          static_cast<T*>(o.out.raw()), layout, scale, /*sliding_window=*/0,
                                          o.workspace.raw(), o.workspace.nbytes(), stream, decode_kernel);
  else
    launch_prefill<T>(prefill_kernel, q, k, v, tables, o.max_blocks, static_cast<const int32_t*>(o.q_begins.raw()),
                      static_cast<const int32_t*>(o.q_lens.raw()), lens, seqs, o.max_q_len,
                      static_cast<T*>(o.out.raw()), layout, scale, stream);
}

// Mean seconds per call over `iters` calls after two warm-up calls, timed with events on the device's stream.
double time_case(const Case& c, const Shape& s, DType dtype, const Operands& o, const DecodeChoice& decode_kernel,
                 const std::string& prefill_kernel, DeviceContext& device, int iters) {
  cudaStream_t stream = device.stream();
  auto run = [&] {
    if (dtype == DType::bf16)
      launch<__nv_bfloat16>(c, s, o, decode_kernel, prefill_kernel, stream);
    else
      launch<__half>(c, s, o, decode_kernel, prefill_kernel, stream);
  };
  run();
  run();
  cudaEvent_t start = nullptr, stop = nullptr;
  CUDA_CHECK(cudaEventCreate(&start));
  CUDA_CHECK(cudaEventCreate(&stop));
  CUDA_CHECK(cudaEventRecord(start, stream));
  for (int i = 0; i < iters; ++i) run();
  CUDA_CHECK(cudaEventRecord(stop, stream));
  CUDA_CHECK(cudaEventSynchronize(stop));
  float ms = 0;
  CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
  CUDA_CHECK(cudaEventDestroy(start));
  CUDA_CHECK(cudaEventDestroy(stop));
  return ms / 1e3 / iters;
}

// The decode kernel that runs: the one named, else the one paged_attention_decode picks for the shape (the
// benchmark's tensors are cudaMalloc'd, so 16-byte aligned).
kernels::cuda::DecodeKernel decode_kernel_run(const DecodeChoice& named, const Shape& s, DType dtype) {
  if (named) return *named;
  const kernels::PagedLayout layout{s.heads, s.kv_heads, s.head_dim, s.block_size};
  return dtype == DType::bf16 ? kernels::cuda::paged_attention_decode_kernel<__nv_bfloat16>(layout, true)
                              : kernels::cuda::paged_attention_decode_kernel<__half>(layout, true);
}

// --decode-kernel: auto (paged_attention_decode's choice) or a kernel's name.
DecodeChoice parse_decode_kernel(const std::string& name) {
  using kernels::cuda::DecodeKernel;
  if (name == "auto") return std::nullopt;
  for (DecodeKernel k : {DecodeKernel::tensor_core, DecodeKernel::grouped_simt, DecodeKernel::simt})
    if (name == kernels::cuda::decode_kernel_name(k)) return k;
  LATTICE_THROW("bench-kernels: --decode-kernel must be auto, tensor_core, grouped_simt or simt, not '", name, "'");
}

#endif  // LATTICE_HAVE_CUDA

}  // namespace

int bench_kernels_command(const Args& argv, parallel::MpiRuntime* /*mpi*/) {
  const CliArgs args(argv, {"json", "help"});
  if (args.has("help")) {
    std::puts(
        "usage: lattice bench-kernels [--device N] [--dtype bf16|f16] [--iters N] [--heads H] [--kv-heads K]\n"
        "                             [--head-dim D] [--block-size B] [--decode-kernel NAME] [--sdpa FILE] [--json]\n"
        "Times paged_attention_prefill (4096 causal, 8 x 1024 causal, 512 after 3584 cached) and\n"
        "paged_attention_decode (batch 1/64/256 x context 512/2048/8192) on one GPU; defaults are Llama-3-8B's\n"
        "attention (32 / 8 heads, head_dim 128, blocks of 16, bf16). Prefill in TFLOP/s, decode in GB/s of K+V\n"
        "read beside the device's read ceiling and the decode kernel that ran: --decode-kernel auto (default: the\n"
        "one paged_attention_decode picks for the GQA group and head_dim), tensor_core, grouped_simt or simt.\n"
        "Each prefill kernel is timed (wgmma on sm_90a, mma.sync); TFLOP/s count 4 x visible (query, key) pairs\n"
        "x heads x head_dim (causal pairs only, as FlashAttention counts; masked work is not counted).\n"
        "scripts/bench_sdpa.py gives PyTorch SDPA on the same shapes; --sdpa FILE (its --json output) puts SDPA's\n"
        "prefill TFLOP/s and the ratio beside each prefill kernel's.");
    return 0;
  }
  const int device_index = static_cast<int>(args.get_int("device", 0));
  const std::string dtype_name = args.get("dtype", "bf16");
  const int iters = static_cast<int>(args.get_int("iters", 20));
  const Shape shape{args.get_int("heads", 32), args.get_int("kv-heads", 8), args.get_int("head-dim", 128),
                    args.get_int("block-size", 16)};
  const std::string decode_kernel_flag = args.get("decode-kernel", "auto");
  const bool json_out = args.has("json");
  const std::string sdpa_path = args.get("sdpa", "");
  args.reject_unknown();
  LATTICE_CHECK(dtype_name == "bf16" || dtype_name == "f16", "bench-kernels: --dtype must be bf16 or f16, not ",
                dtype_name);
  LATTICE_CHECK(iters > 0, "bench-kernels: --iters must be positive");
  LATTICE_CHECK(shape.kv_heads > 0 && shape.heads % shape.kv_heads == 0 && shape.head_dim > 0 &&
                    shape.block_size > 0,
                "bench-kernels: heads must be a positive multiple of kv-heads, head-dim and block-size positive");
#ifdef LATTICE_HAVE_CUDA
  const DType dtype = dtype_name == "bf16" ? DType::bf16 : DType::f16;
  const DecodeChoice decode_choice = parse_decode_kernel(decode_kernel_flag);
  const char* decode_kernel = kernels::cuda::decode_kernel_name(decode_kernel_run(decode_choice, shape, dtype));
  const std::map<std::string, double> sdpa = sdpa_prefill_tflops(sdpa_path);
  DeviceContext device(device_index);
  const double ceiling = measure_device_read_bandwidth_gbs(device);
  std::mt19937 rng(2026);
  nlohmann::ordered_json results = nlohmann::ordered_json::array();
  if (!json_out)
    std::printf("%s, %s, heads %lld/%lld, head_dim %lld, block %lld; device read ceiling %.0f GB/s\n",
                device.name().c_str(), dtype_name.c_str(), static_cast<long long>(shape.heads),
                static_cast<long long>(shape.kv_heads), static_cast<long long>(shape.head_dim),
                static_cast<long long>(shape.block_size), ceiling);
  for (const Case& c : default_cases()) {
    const Operands o = make_operands(c, shape, dtype, device, rng);  // freed before the next case
    const std::vector<std::string> variants =
        c.kernel == "prefill" ? prefill_kernels(shape.head_dim) : std::vector<std::string>{""};
    for (const std::string& prefill_kernel : variants) {
      const double seconds = time_case(c, shape, dtype, o, decode_choice, prefill_kernel, device, iters);
      nlohmann::ordered_json row = {{"kernel", c.kernel}, {"case", c.name}, {"ms", seconds * 1e3}};
      if (c.kernel == "prefill") {
        const double tflops = causal_flops(c, shape) / seconds / 1e12;
        row["prefill_kernel"] = prefill_kernel;
        row["tflops"] = tflops;
        const auto baseline = sdpa.find(c.name);
        if (baseline != sdpa.end()) {
          row["sdpa_tflops"] = baseline->second;
          row["vs_sdpa"] = tflops / baseline->second;
        }
        if (!json_out) {
          std::printf("  %-8s %-24s %9.3f ms  %7.1f TFLOP/s (%s kernel)", "prefill", c.name.c_str(), seconds * 1e3,
                      tflops, prefill_kernel.c_str());
          if (baseline != sdpa.end())
            std::printf("  SDPA %.1f TFLOP/s, %.2fx", baseline->second, tflops / baseline->second);
          std::printf("\n");
        }
      } else {
        const double gbs = kv_bytes(c, shape, static_cast<int64_t>(dtype_size(dtype))) / seconds / 1e9;
        row["kv_gbs"] = gbs;
        row["fraction_of_ceiling"] = gbs / ceiling;
        row["decode_kernel"] = decode_kernel;
        if (!json_out)
          std::printf("  %-8s %-24s %9.3f ms  %7.0f GB/s of K+V (%.0f%% of the read ceiling, %s kernel)\n", "decode",
                      c.name.c_str(), seconds * 1e3, gbs, 100.0 * gbs / ceiling, decode_kernel);
      }
      results.push_back(row);
    }
  }
  if (json_out) {
    const nlohmann::ordered_json j = {{"device", device.name()},
                                      {"dtype", dtype_name},
                                      {"heads", shape.heads},
                                      {"kv_heads", shape.kv_heads},
                                      {"head_dim", shape.head_dim},
                                      {"block_size", shape.block_size},
                                      {"read_ceiling_gbs", ceiling},
                                      {"results", results}};
    std::puts(j.dump(2).c_str());
  }
  return 0;
#else
  (void)device_index;
  (void)decode_kernel_flag;
  (void)json_out;
  (void)sdpa_path;
  LATTICE_THROW("bench-kernels needs a build with the CUDA backend (LATTICE_WITH_CUDA=ON)");
#endif
}

}  // namespace lattice::launcher
