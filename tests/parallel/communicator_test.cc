// Tensor communicators across real ranks (run under mpiexec with 2 and 4 ranks by CTest): MPI on CPU tensors,
// MPI with host staging and NCCL on GPU tensors. Every rank regenerates every rank's inputs from seeds, so the
// expected results are computed independently of the communicator: exact sums in float64, rounded once to the
// dtype by a rounding written here (not the library's converters). GPU backends skip, saying why, where the
// build or the machine cannot run them (NCCL needs one GPU per rank).
#include <gtest/gtest.h>
#include <mpi.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <random>

#include "kernels/cpu/convert.h"
#include "parallel/communicator_choice.h"
#include "parallel/mpi_communicator.h"
#include "parallel/mpi_runtime.h"
#ifdef LATTICE_HAVE_CUDA
#include <cuda_runtime_api.h>

#include "engine/cuda/device_context.h"
#include "kernels/cuda/device_info.h"
#include "parallel/host_staged_communicator.h"
#endif
#ifdef LATTICE_HAVE_NCCL
#include "parallel/nccl_communicator.h"
#endif

namespace lattice::parallel {
namespace {

MpiRuntime* g_mpi = nullptr;

enum class Kind { mpi, staged, nccl };

const char* kind_name(Kind k) { return k == Kind::mpi ? "mpi" : k == Kind::staged ? "staged" : "nccl"; }

// Why `kind` cannot run in this process ("" when it can); the same answer on every rank of a node.
std::string unavailable(Kind kind) {
  if (kind == Kind::mpi) return "";
#ifdef LATTICE_HAVE_CUDA
  const auto& info = kernels::cuda::device_info();
  if (info.count == 0) return "no CUDA device visible: " + info.reason;
  if (kind == Kind::staged) return "";
  const CommunicatorChoice c = choose_device_communicator(*g_mpi);
  return c.backend == CommBackend::nccl ? "" : "the communicator here is " + c.describe();
#else
  return "this build has no CUDA backend";
#endif
}

#ifdef LATTICE_HAVE_CUDA
// This process's GPU, made once on the device the communicator choice gives it.
DeviceContext& device_context() {
  static DeviceContext ctx(choose_device_communicator(*g_mpi).device_id);
  return ctx;
}
#endif

// A fresh communicator of `kind` over every rank of the job.
std::unique_ptr<Communicator> make_world(Kind kind) {
  MPI_Comm world;
  MPI_Comm_dup(MPI_COMM_WORLD, &world);
  if (kind == Kind::mpi) return make_mpi_communicator(world);
#ifdef LATTICE_HAVE_CUDA
  const DeviceBinding device{device_context().device().index, device_context().stream()};
  if (kind == Kind::staged) return make_host_staged_communicator(make_mpi_communicator(world), device);
#endif
#ifdef LATTICE_HAVE_NCCL
  NcclOptions options;
  options.device = device.index;
  options.stream = device.stream;
  options.timeout_seconds = 60;
  auto nccl = make_nccl_communicator(world, options);
  MPI_Comm_free(&world);
  return nccl;
#else
  LATTICE_THROW(kind_name(kind), " is not in this build");
#endif
}

// `host` where `kind` keeps its tensors; on a GPU, copied and settled before the communicator's stream reads it.
Tensor place(const Tensor& host, Kind kind) {
  if (kind == Kind::mpi) return host;
#ifdef LATTICE_HAVE_CUDA
  Tensor t = host.to(device_context().device());
  // A pageable host-to-device cudaMemcpy may return before its DMA lands, and the communicator's stream does
  // not wait for the legacy stream.
  cudaDeviceSynchronize();
  return t;
#else
  LATTICE_THROW("no GPU in this build");
#endif
}

// The result on the host, once the communicator's enqueued work is done.
Tensor fetch(Communicator& comm, const Tensor& t) {
  comm.synchronize();
  return t.device().is_cpu() ? t : t.to(Device::cpu());
}

// x rounded to `bits` significant bits, ties to even (f32: 24, f16: 11, bf16: 8; normal range only).
double round_to_bits(double x, int bits) {
  if (x == 0) return 0;
  int exp = 0;
  const double frac = std::frexp(x, &exp);  // x = frac * 2^exp, |frac| in [0.5, 1)
  return std::ldexp(std::nearbyint(std::ldexp(frac, bits)), exp - bits);
}

int significant_bits(DType dtype) { return dtype == DType::f32 ? 24 : dtype == DType::f16 ? 11 : 8; }

// Rank r's contribution: n values exactly representable in `dtype`, of both signs, with magnitudes in
// [2^-8, 4] (f32 values: 12 significant bits). Any sum of up to 8 of them is exact in f32 (a multiple of
// 2^-8 * 2^-11 below 2^5 needs 24 bits; bf16 fewer), so the only rounding a correct all-reduce makes is the
// final one to the dtype, where summing in the half type would round at every addition.
std::vector<double> contribution(int rank, int64_t n, DType dtype) {
  std::mt19937 rng(1000 + rank);
  std::uniform_real_distribution<double> magnitude(-8, 2);  // log2
  std::bernoulli_distribution negative(0.5);
  const int bits = dtype == DType::f32 ? 12 : significant_bits(dtype);
  std::vector<double> v(static_cast<size_t>(n));
  for (double& x : v) x = (negative(rng) ? -1 : 1) * round_to_bits(std::exp2(magnitude(rng)), bits);
  return v;
}

Tensor host_tensor(const std::vector<double>& values, std::vector<int64_t> shape, DType dtype) {
  Tensor t = Tensor::empty(std::move(shape), dtype);
  for (size_t i = 0; i < values.size(); ++i) {
    const float f = static_cast<float>(values[i]);
    if (dtype == DType::f32)
      static_cast<float*>(t.raw())[i] = f;
    else
      static_cast<uint16_t*>(t.raw())[i] = dtype == DType::bf16 ? kernels::cpu::f32_to_bf16(f) : kernels::cpu::f32_to_f16(f);
  }
  return t;
}

std::vector<double> host_values(const Tensor& t) {
  std::vector<double> v(static_cast<size_t>(t.numel()));
  for (size_t i = 0; i < v.size(); ++i) {
    if (t.dtype() == DType::f32)
      v[i] = static_cast<const float*>(t.raw())[i];
    else {
      const uint16_t h = static_cast<const uint16_t*>(t.raw())[i];
      v[i] = t.dtype() == DType::bf16 ? kernels::cpu::bf16_to_f32(h) : kernels::cpu::f16_to_f32(h);
    }
  }
  return v;
}

class CommunicatorTest : public ::testing::TestWithParam<Kind> {
 protected:
  void SetUp() override {
    const std::string why = unavailable(GetParam());
    if (!why.empty()) GTEST_SKIP() << kind_name(GetParam()) << ": " << why;
    comm_ = make_world(GetParam());
  }
  int rank() const { return comm_->rank(); }
  int size() const { return comm_->size(); }

  std::unique_ptr<Communicator> comm_;
};

class AllReduceTest : public ::testing::TestWithParam<std::tuple<Kind, DType>> {};

// MPI (and staging over it) sums half types in f32 and rounds once: the result is the exact sum rounded to the
// dtype, bit for bit. NCCL adds in f32 but stores each partial sum in the dtype at every hop of its ring or
// tree, so its half-type result may carry up to size - 1 more roundings, each within 2^-bits of the magnitudes
// summed; f32 sums here are exact, so NCCL must match them bit for bit too.
TEST_P(AllReduceTest, SumsEveryRankAndRoundsOnce) {
  const auto [kind, dtype] = GetParam();
  const std::string why = unavailable(kind);
  if (!why.empty()) GTEST_SKIP() << kind_name(kind) << ": " << why;
  auto comm = make_world(kind);
  const int64_t n = 1031;  // not a multiple of any vector width or chunk
  Tensor t = place(host_tensor(contribution(comm->rank(), n, dtype), {n}, dtype), kind);
  comm->all_reduce_sum(t);
  const std::vector<double> got = host_values(fetch(*comm, t));

  std::vector<double> exact(static_cast<size_t>(n), 0.0), magnitude(static_cast<size_t>(n), 0.0);
  for (int r = 0; r < comm->size(); ++r) {
    const std::vector<double> part = contribution(r, n, dtype);
    for (size_t i = 0; i < exact.size(); ++i) {
      exact[i] += part[i];
      magnitude[i] += std::fabs(part[i]);
    }
  }
  const int bits = significant_bits(dtype);
  const bool rounds_once = kind != Kind::nccl || dtype == DType::f32;
  int64_t mismatches = 0, first = -1;
  for (size_t i = 0; i < exact.size(); ++i) {
    const double want = round_to_bits(exact[i], bits);
    const bool ok = rounds_once ? got[i] == want
                                : std::fabs(got[i] - exact[i]) <= comm->size() * magnitude[i] * std::ldexp(1.0, -bits);
    if (ok) continue;
    if (first < 0) first = static_cast<int64_t>(i);
    ++mismatches;
  }
  EXPECT_EQ(mismatches, 0) << dtype_name(dtype) << " over " << comm->size() << " ranks: first mismatch at " << first
                           << ": got " << (first >= 0 ? got[first] : 0) << ", exact sum "
                           << (first >= 0 ? exact[first] : 0);
}

INSTANTIATE_TEST_SUITE_P(Backends, AllReduceTest,
                         ::testing::Combine(::testing::Values(Kind::mpi, Kind::staged, Kind::nccl),
                                            ::testing::Values(DType::f32, DType::bf16, DType::f16)),
                         [](const auto& info) {
                           return std::string(kind_name(std::get<0>(info.param))) + "_" +
                                  dtype_name(std::get<1>(info.param));
                         });

// Sums whose f32 result depends on the order of additions: every rank must still get the same bits (TP ranks
// hold replicated activations), within float64's sum by n ulps of the largest partial sum.
TEST_P(CommunicatorTest, AllReduceGivesEveryRankTheSameBits) {
  const int64_t n = 4096;
  std::mt19937 rng(7 + rank());
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> mine(static_cast<size_t>(n));
  for (float& x : mine) x = dist(rng) * std::exp2(static_cast<float>(static_cast<int>(rng() % 20) - 10));
  Tensor t = place(Tensor::from_vector(mine, {n}), GetParam());
  comm_->all_reduce_sum(t);
  const std::vector<float> got = to_vector<float>(fetch(*comm_, t));

  std::vector<float> first(got.size());
  if (rank() == 0) first = got;
  MPI_Bcast(first.data(), static_cast<int>(n), MPI_FLOAT, 0, MPI_COMM_WORLD);
  EXPECT_EQ(std::memcmp(first.data(), got.data(), sizeof(float) * got.size()), 0) << "rank " << rank();
  std::vector<double> sum(got.size(), 0.0), bound(got.size(), 0.0);
  for (int r = 0; r < size(); ++r) {
    std::mt19937 other(7 + r);
    for (size_t i = 0; i < sum.size(); ++i) {
      const float x = dist(other) * std::exp2(static_cast<float>(static_cast<int>(other() % 20) - 10));
      sum[i] += x;
      bound[i] += std::fabs(x);
    }
  }
  for (size_t i = 0; i < sum.size(); ++i)
    ASSERT_LE(std::fabs(got[i] - sum[i]), size() * bound[i] * std::ldexp(1.0, -24)) << "element " << i;
}

// Rank r sends rows [r * 1000 + k]; only the root (the last rank, to keep root != 0 covered) receives them,
// rank-major; the others pass no output tensor at all.
TEST_P(CommunicatorTest, GatherCollectsOnTheRootOnly) {
  const int root = size() - 1;
  std::vector<float> mine(15);
  for (size_t k = 0; k < mine.size(); ++k) mine[k] = static_cast<float>(rank() * 1000 + static_cast<int>(k));
  const Tensor in = place(Tensor::from_vector(mine, {3, 5}), GetParam());
  Tensor out;
  if (rank() == root) out = place(Tensor::zeros({size(), 3, 5}, DType::f32), GetParam());
  comm_->gather(in, out, root);
  comm_->synchronize();  // a non-root NCCL send still reads `in` until then
  if (rank() != root) return;
  const std::vector<float> got = to_vector<float>(fetch(*comm_, out));
  for (int r = 0; r < size(); ++r)
    for (int k = 0; k < 15; ++k) EXPECT_EQ(got[r * 15 + k], static_cast<float>(r * 1000 + k)) << "rank " << r;
}

TEST_P(CommunicatorTest, AllGatherAndBroadcastMoveEveryRanksBytes) {
  std::vector<int32_t> mine = {rank(), 10 + rank(), 100 + rank()};
  const Tensor in = place(Tensor::from_vector(mine, {3}), GetParam());
  Tensor all = place(Tensor::zeros({size(), 3}, DType::i32), GetParam());
  comm_->all_gather(in, all);
  Tensor b = place(Tensor::from_vector(std::vector<int32_t>{rank() * 7, -rank()}, {2}), GetParam());
  comm_->broadcast(b, size() - 1);
  const std::vector<int32_t> gathered = to_vector<int32_t>(fetch(*comm_, all));
  for (int r = 0; r < size(); ++r)
    EXPECT_EQ(std::vector<int32_t>(gathered.begin() + 3 * r, gathered.begin() + 3 * r + 3),
              (std::vector<int32_t>{r, 10 + r, 100 + r}));
  EXPECT_EQ(to_vector<int32_t>(fetch(*comm_, b)), (std::vector<int32_t>{(size() - 1) * 7, -(size() - 1)}));
}

// Around the ring: even ranks send first, odd ranks receive first, so blocking sends cannot deadlock.
TEST_P(CommunicatorTest, SendRecvAroundTheRing) {
  const int next = (rank() + 1) % size(), prev = (rank() + size() - 1) % size();
  const Tensor out = place(host_tensor({rank() + 0.5, -rank() - 0.25, 3.0}, {3}, DType::bf16), GetParam());
  Tensor in = place(Tensor::zeros({3}, DType::bf16), GetParam());
  if (rank() % 2 == 0) {
    comm_->send(out, next);
    comm_->recv(in, prev);
  } else {
    comm_->recv(in, prev);
    comm_->send(out, next);
  }
  EXPECT_EQ(host_values(fetch(*comm_, in)), (std::vector<double>{prev + 0.5, -prev - 0.25, 3.0}));
}

// seconds(): each operation's time, counted once it has run. MPI's is wall time inside the call; NCCL's the
// device time between CUDA events around the enqueue, read at synchronize() (so nothing before it). Either way
// it lies within the host's wall time from before the call to after the wait.
TEST_P(CommunicatorTest, SecondsCountEachOperationOnceItHasRun) {
  Tensor t = place(Tensor::zeros({1 << 20}, DType::bf16), GetParam());
  comm_->synchronize();
  const double before = comm_->seconds();
  const auto start = std::chrono::steady_clock::now();
  comm_->all_reduce_sum(t);
  if (GetParam() == Kind::nccl) {
    EXPECT_EQ(comm_->seconds(), before) << "counted before the stream ran it";
  }
  comm_->synchronize();
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double counted = comm_->seconds() - before;
  EXPECT_GT(counted, 0);
  EXPECT_LE(counted, wall);
}

INSTANTIATE_TEST_SUITE_P(Backends, CommunicatorTest, ::testing::Values(Kind::mpi, Kind::staged, Kind::nccl),
                         [](const auto& info) { return std::string(kind_name(info.param)); });

// make_parallel_context over the whole job as one TP group: the recorded choice, and the group it built.
TEST(ParallelContext, CpuRanksUseMpiAndSayWhy) {
  ParallelContext ctx = make_parallel_context(*g_mpi, g_mpi->world_size(), 1, 1, nullptr);
  EXPECT_EQ(ctx.comm.describe(), "mpi (CPU tensors)");
  EXPECT_STREQ(ctx.tp->backend(), "mpi");
  EXPECT_EQ(ctx.prev, nullptr);
  EXPECT_EQ(ctx.next, nullptr);
  Tensor t = Tensor::from_vector(std::vector<float>{1.0f}, {1});
  ctx.tp->all_reduce_sum(t);
  ctx.synchronize();
  EXPECT_EQ(t.data<float>()[0], static_cast<float>(g_mpi->world_size()));
}

// With a GPU the choice follows choose_device_communicator, and a one-stage pipeline of tp = 1 gets PP links.
TEST(ParallelContext, GpuRanksUseTheChosenBackendForTpAndPp) {
  const std::string why = unavailable(Kind::staged);
  if (!why.empty()) GTEST_SKIP() << why;
#ifdef LATTICE_HAVE_CUDA
  const DeviceBinding device{device_context().device().index, device_context().stream()};
  ParallelContext ctx = make_parallel_context(*g_mpi, 1, g_mpi->world_size(), 1, &device);
  const auto& info = kernels::cuda::device_info();
  const CommunicatorChoice want =
      choose_device_communicator(g_mpi->local_rank(), g_mpi->local_size(), info.count, nccl_built());
  EXPECT_EQ(ctx.comm.backend, want.backend) << ctx.comm.describe();  // one node: nothing to agree on
  EXPECT_EQ(ctx.topo.device_id, want.device_id);
  EXPECT_STREQ(ctx.next ? ctx.next->backend() : ctx.prev->backend(), backend_name(want.backend));
  // Stage k sends its stage number to stage k + 1.
  const int stage = ctx.topo.pp_rank;
  Tensor got = place(Tensor::zeros({1}, DType::f32), Kind::staged);
  const Tensor sent = place(Tensor::from_vector(std::vector<float>{static_cast<float>(stage)}, {1}), Kind::staged);
  if (ctx.prev) ctx.prev->recv(got, 0);
  if (ctx.next) ctx.next->send(sent, 1);
  ctx.synchronize();
  if (ctx.prev) {
    EXPECT_EQ(to_vector<float>(got)[0], static_cast<float>(stage - 1));
  }
#endif
}

}  // namespace
}  // namespace lattice::parallel

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  lattice::parallel::MpiRuntime mpi(&argc, &argv);
  lattice::parallel::g_mpi = &mpi;
  return RUN_ALL_TESTS();
}
