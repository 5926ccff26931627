#include "launcher/plan_calibrate.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <memory>
#include <vector>

#include <omp.h>

#include "engine/core/error.h"
#include "engine/ops/attention.h"
#include "engine/ops/ops.h"
#include "launcher/machine_ceilings.h"
#ifdef LATTICE_HAVE_CUDA
#include "engine/cuda/device_context.h"
#endif

namespace lattice::launcher {

namespace {

using planner::OpKind;

// Median seconds per call of `op` over 7 rounds, each long enough (>= 20 ms or 1000 calls) to be measured.
double time_op(const std::function<void()>& op, const std::function<void()>& sync) {
  op();
  sync();
  int calls = 1;
  for (;;) {  // calls per round
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < calls; ++i) op();
    sync();
    if (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() > 0.02 || calls >= 1000) break;
    calls *= 2;
  }
  std::vector<double> rounds;
  for (int r = 0; r < 7; ++r) {
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < calls; ++i) op();
    sync();
    rounds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / calls);
  }
  std::nth_element(rounds.begin(), rounds.begin() + 3, rounds.end());
  return rounds[3];
}

// Paged attention operands: `seqs` sequences of `q_len` new tokens after `past` cached positions.
struct AttentionCase {
  Tensor q, out, k, v;
  ops::AttentionInputs in;
  AttentionCase(const ModelConfig& c, int64_t seqs, int64_t q_len, int64_t past, DType dtype, Device device) {
    const int64_t block = 16, context = past + q_len, per_seq = (context + block - 1) / block;
    q = Tensor::zeros({seqs * q_len, c.num_heads, c.head_dim}, dtype, device);
    out = Tensor::zeros({seqs * q_len, c.num_heads, c.head_dim}, dtype, device);
    k = Tensor::zeros({seqs * per_seq, block, c.num_kv_heads, c.head_dim}, dtype, device);
    v = Tensor::zeros({seqs * per_seq, block, c.num_kv_heads, c.head_dim}, dtype, device);
    std::vector<int32_t> tables, begins, lens, contexts;
    for (int64_t s = 0; s < seqs; ++s) {
      for (int64_t b = 0; b < per_seq; ++b) tables.push_back(static_cast<int32_t>(s * per_seq + b));
      begins.push_back(static_cast<int32_t>(s * q_len));
      lens.push_back(static_cast<int32_t>(q_len));
      contexts.push_back(static_cast<int32_t>(context));
    }
    in.block_tables = Tensor::from_vector(tables, {seqs, per_seq}).to(device);
    in.q_begins = Tensor::from_vector(begins, {seqs}).to(device);
    in.q_lens = Tensor::from_vector(lens, {seqs}).to(device);
    in.context_lens = Tensor::from_vector(contexts, {seqs}).to(device);
    in.max_q_len = q_len;
    in.max_context_len = context;
  }
};

}  // namespace

planner::HardwareProfile calibrate_profile(const std::string& device_name, const ModelConfig& c,
                                           const planner::HardwareProfile& base) {
  LATTICE_CHECK(device_name == "cpu" || device_name == "cuda", "--device must be cpu or cuda, got '", device_name, "'");
  planner::HardwareProfile p = base;
  ops::ExecContext exec = ops::ExecContext::cpu();
  std::function<void()> sync = [] {};
  DType dtype = DType::f32;
#ifdef LATTICE_HAVE_CUDA
  std::unique_ptr<DeviceContext> gpu;
#endif
  if (device_name == "cuda") {
#ifdef LATTICE_HAVE_CUDA
    gpu = std::make_unique<DeviceContext>(0);
    dtype = DType::bf16;
    p.name = gpu->name();
    p.notes["measured_read_gbps"] = measure_device_read_bandwidth_gbs(*gpu);
    p.notes["peaks"] = "datasheet (from the base profile); efficiencies measured by lattice plan calibrate";
    p.memory_bytes = static_cast<double>(gpu->total_bytes());
    // The decode attention's split-K scratch for the case below.
    gpu->reserve_scratch(ops::attention_scratch_bytes(32, c.num_heads, c.head_dim, 2048));
    exec = gpu->exec();
    sync = [&gpu] { gpu->synchronize(); };
#else
    LATTICE_THROW("--device cuda: this build has no CUDA backend");
#endif
  } else {
    p.name = "cpu";
    p.dtype = "f32";
    p.peak_memory_gbps = measure_read_bandwidth_gbs();
    p.peak_tflops = measure_sgemm_gflops(1024, 1024, 1024) / 1e3;
    p.notes = {{"peaks", "measured on this machine: read bandwidth of a 512 MiB array, sgemm 1024^3 (best of runs)"},
               {"threads", omp_get_max_threads()}};
  }
  const Device dev = exec.device;
  const double e = static_cast<double>(dtype_size(dtype)), peak_bw = p.peak_memory_gbps * 1e9,
               peak_flops = p.peak_tflops * 1e12;
  const int64_t H = c.hidden_size, N = 2 * c.intermediate_size;

  // Launch overhead: an op over one row of 64 values, where the data costs nothing.
  Tensor tiny = Tensor::zeros({1, 64}, dtype, dev), tiny_w = Tensor::zeros({64}, dtype, dev);
  const double launch = time_op([&] { ops::rms_norm(exec, tiny, tiny_w, 1e-5f, tiny); }, sync);
  p.launch_overhead_us = launch * 1e6;
  auto busy = [&](double seconds) { return std::max(seconds - launch, seconds * 0.05); };

  // GEMMs with the fused gate_up weight [2 intermediate, hidden]: m = 1 reads it (bandwidth), m = 512 computes.
  // The m = 1 calls cycle through copies of the weight totalling >= 2 GiB, so that each call reads memory and
  // not the last-level cache (up to hundreds of MiB on server CPUs), as a step over a whole model does.
  const double w_bytes = static_cast<double>(N * H) * e;
  std::vector<Tensor> w(static_cast<size_t>(std::ceil(2048.0 * (1 << 20) / w_bytes)));
  for (Tensor& t : w) t = Tensor::zeros({N, H}, dtype, dev);
  Tensor x = Tensor::zeros({512, H}, dtype, dev), y = Tensor::zeros({512, N}, dtype, dev);
  Tensor x1 = x.rows(0, 1), y1 = y.rows(0, 1);
  size_t next = 0;
  const double gemm_decode = time_op([&] { ops::linear(exec, x1, w[next++ % w.size()], nullptr, y1); }, sync);
  const double gemm_prefill = time_op([&] { ops::linear(exec, x, w[0], nullptr, y); }, sync);
  const double gemm_bw = (static_cast<double>(N * H) + H + N) * e / busy(gemm_decode) / peak_bw;
  const double gemm_fl = 2.0 * 512 * N * H / busy(gemm_prefill) / peak_flops;

  // Attention: decode of 32 sequences at 2048 positions (reads K/V); prefill of one 512-token prompt (computes).
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  AttentionCase dec(c, 32, 1, 2047, dtype, dev), pre(c, 1, 512, 0, dtype, dev);
  const double att_decode = time_op([&] { ops::paged_attention(exec, dec.q, dec.k, dec.v, dec.in, scale, dec.out); }, sync);
  const double att_prefill = time_op([&] { ops::paged_attention(exec, pre.q, pre.k, pre.v, pre.in, scale, pre.out); }, sync);
  const double hd = static_cast<double>(c.num_heads * c.head_dim);
  const double dec_bytes = 32.0 * 2048 * 2 * c.num_kv_heads * c.head_dim * e + 2 * 32 * hd * e;
  const double att_bw = dec_bytes / busy(att_decode) / peak_bw;
  const double att_fl = 4.0 * (512.0 * 513 / 2) * hd / busy(att_prefill) / peak_flops;

  // Elementwise: rms_norm over [512, hidden] reads and writes it.
  Tensor nw = Tensor::zeros({H}, dtype, dev), nx = Tensor::zeros({512, H}, dtype, dev),
         ny = Tensor::zeros({512, H}, dtype, dev);
  const double norm = time_op([&] { ops::rms_norm(exec, nx, nw, 1e-5f, ny); }, sync);
  const double ew_bw = (2.0 * 512 * H + H) * e / busy(norm) / peak_bw;

  p.efficiency[OpKind::gemm] = {gemm_bw, gemm_fl};
  p.efficiency[OpKind::attention_decode] = {att_bw, att_fl};
  p.efficiency[OpKind::attention_prefill] = {att_bw, att_fl};
  p.efficiency[OpKind::elementwise] = {ew_bw, 1.0};
  p.notes["measured_us"] = {{"launch (rms_norm 1x64)", launch * 1e6},
                            {"gemm m=1 " + std::to_string(N) + "x" + std::to_string(H), gemm_decode * 1e6},
                            {"gemm m=512", gemm_prefill * 1e6},
                            {"attention decode 32 x 2048", att_decode * 1e6},
                            {"attention prefill 512", att_prefill * 1e6},
                            {"rms_norm 512 x hidden", norm * 1e6}};
  return p;
}

}  // namespace lattice::launcher
